/*
 * Fuzz target for common/bus_frame.h. The input after two parameter bytes is
 * a byte stream from the bus socket. It is decoded twice: frame by frame
 * with ab_bus_frame_decode, and through the streaming decoder in chunks whose
 * sizes come from byte 0; both must yield the same messages and end the same
 * way. Every decoded frame must re-encode to exactly its bytes (the encoder
 * accepts what the decoder accepts, and the format has one encoding).
 */
#include <stdlib.h>
#include <string.h>

#include "common/bus_frame.h"
#include "common/err.h"
#include "fuzz/targets.h"

#define BUS_MAX_MSGS 64

/* Checks a decoded message against the header's promises and re-encodes it. */
static void bus_check_msg(const struct ab_bus_msg *m, const uint8_t *frame, size_t flen)
{
    AB_FUZZ_CHECK(flen >= AB_BUS_HDR_SIZE && flen <= AB_BUS_FRAME_MAX);
    bool data = ab_bus_type_is_data(m->type);
    AB_FUZZ_CHECK(data ? m->seq >= 1 : m->seq == 0);
    AB_FUZZ_CHECK(strcmp(ab_bus_type_name(m->type), "?") != 0);
    switch (m->type) {
    case AB_BUS_HELLO:
        AB_FUZZ_CHECK(ab_fuzz_terminated(m->u.hello.name, sizeof(m->u.hello.name)));
        AB_FUZZ_CHECK(m->u.hello.instance_id != 0);
        break;
    case AB_BUS_CANDLE:
        AB_FUZZ_CHECK(ab_symbol_valid(m->u.candle.c.symbol, strlen(m->u.candle.c.symbol)));
        AB_FUZZ_CHECK((unsigned)m->u.candle.c.interval < AB_I_COUNT);
        break;
    case AB_BUS_BOOK_SNAPSHOT:
        AB_FUZZ_CHECK(ab_symbol_valid(m->u.snapshot.s.symbol, strlen(m->u.snapshot.s.symbol)));
        ab_fuzz_check_levels(m->u.snapshot.s.bids, m->u.snapshot.s.n_bids, false, 0);
        ab_fuzz_check_levels(m->u.snapshot.s.asks, m->u.snapshot.s.n_asks, false, 0);
        break;
    case AB_BUS_BOOK_DELTA:
        AB_FUZZ_CHECK(ab_symbol_valid(m->u.delta.d.symbol, strlen(m->u.delta.d.symbol)));
        AB_FUZZ_CHECK(m->u.delta.d.first_id <= m->u.delta.d.last_id);
        ab_fuzz_check_levels(m->u.delta.d.bids, m->u.delta.d.n_bids, false, 0);
        ab_fuzz_check_levels(m->u.delta.d.asks, m->u.delta.d.n_asks, false, 0);
        break;
    case AB_BUS_STATUS:
        AB_FUZZ_CHECK(ab_symbol_valid(m->u.status.symbol, strlen(m->u.status.symbol)));
        AB_FUZZ_CHECK(ab_fuzz_terminated(m->u.status.reason, sizeof(m->u.status.reason)));
        break;
    case AB_BUS_RESYNC:
        AB_FUZZ_CHECK(ab_fuzz_terminated(m->u.resync_symbol, sizeof(m->u.resync_symbol)));
        break;
    case AB_BUS_ACK:
        break;
    default:
        AB_FUZZ_CHECK(!"unknown frame type");
    }

    size_t len = 0;
    const char *why = NULL;
    AB_FUZZ_CHECK(ab_bus_frame_size(m, &len, &why) == 0);
    AB_FUZZ_CHECK(len == flen);
    uint8_t *buf = malloc(len);
    AB_FUZZ_CHECK(buf != NULL);
    size_t got = 0;
    AB_FUZZ_CHECK(ab_bus_frame_encode(m, buf, len, &got, &why) == 0 && got == len);
    AB_FUZZ_CHECK(memcmp(buf, frame, len) == 0);
    if (len > AB_BUS_HDR_SIZE) /* one byte short is refused */
        AB_FUZZ_CHECK(ab_bus_frame_encode(m, buf, len - 1, &got, &why) == AB_ENOMEM);
    free(buf);
}

/* Same message (levels compared by content). */
static void bus_check_same(const struct ab_bus_msg *a, const struct ab_bus_msg *b)
{
    size_t la = 0, lb = 0;
    AB_FUZZ_CHECK(a->type == b->type && a->seq == b->seq && a->flags == b->flags);
    AB_FUZZ_CHECK(ab_bus_frame_size(a, &la, NULL) == 0 && ab_bus_frame_size(b, &lb, NULL) == 0);
    AB_FUZZ_CHECK(la == lb);
    uint8_t *ea = malloc(la), *eb = malloc(lb);
    AB_FUZZ_CHECK(ea && eb);
    AB_FUZZ_CHECK(ab_bus_frame_encode(a, ea, la, &la, NULL) == 0);
    AB_FUZZ_CHECK(ab_bus_frame_encode(b, eb, lb, &lb, NULL) == 0);
    AB_FUZZ_CHECK(memcmp(ea, eb, la) == 0);
    free(ea);
    free(eb);
}

int ab_fuzz_bus_frame(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t chunking = data[0];
    size_t max_frame = data[1] ? (size_t)data[1] * 8 : 0; /* 0: the default cap */
    const uint8_t *p = data + 2;
    size_t n = size - 2;

    /* Frame by frame. */
    struct ab_bus_msg *msgs = calloc(BUS_MAX_MSGS, sizeof(*msgs));
    AB_FUZZ_CHECK(msgs != NULL);
    size_t n_msgs = 0, off = 0;
    int end_rc = 0;
    while (off < n && n_msgs < BUS_MAX_MSGS) {
        size_t used = 0;
        const char *why = NULL;
        int rc = ab_bus_frame_decode(p + off, n - off, max_frame, &msgs[n_msgs], &used, &why);
        if (rc) {
            AB_FUZZ_CHECK(rc == AB_ETRUNC || rc == AB_EINVAL || rc == AB_ERANGE);
            AB_FUZZ_CHECK(why != NULL);
            end_rc = rc;
            break;
        }
        AB_FUZZ_CHECK(used >= AB_BUS_HDR_SIZE && used <= n - off);
        AB_FUZZ_CHECK(max_frame == 0 || used <= max_frame);
        bus_check_msg(&msgs[n_msgs], p + off, used);
        off += used;
        n_msgs++;
    }
    size_t stream_end = off; /* bytes the streaming decoder must accept without error */

    /* The same bytes through the streaming decoder, in chunks. */
    struct ab_bus_decoder dec;
    ab_bus_decoder_init(&dec, max_frame);
    size_t pos = 0, k = 0, step = 0;
    int srw = 0;
    while (pos < n && k < n_msgs + 1) {
        size_t chunk = 1 + (size_t)((chunking >> (step % 8)) & 7) * (step % 3 ? 1 : 37);
        step++;
        if (chunk > n - pos)
            chunk = n - pos;
        size_t used = 0;
        struct ab_bus_msg m;
        const char *why = NULL;
        int rc = ab_bus_decoder_push(&dec, p + pos, chunk, &used, &m, &why);
        AB_FUZZ_CHECK(used <= chunk);
        pos += used;
        if (rc < 0) {
            srw = rc;
            break;
        }
        if (rc == 1) {
            AB_FUZZ_CHECK(k < n_msgs);
            bus_check_same(&m, &msgs[k]);
            ab_bus_msg_deinit(&m);
            k++;
            if (k == BUS_MAX_MSGS)
                break;
        } else {
            AB_FUZZ_CHECK(used == chunk); /* 0: everything consumed */
        }
    }
    if (n_msgs < BUS_MAX_MSGS) {
        AB_FUZZ_CHECK(k == n_msgs);
        if (end_rc == 0) {
            AB_FUZZ_CHECK(srw == 0 && pos == n && !ab_bus_decoder_partial(&dec));
        } else if (end_rc == AB_ETRUNC) {
            /* The stream stopped mid-frame: the decoder waits for more. */
            AB_FUZZ_CHECK(srw == 0 && pos == n && ab_bus_decoder_partial(&dec));
        } else {
            AB_FUZZ_CHECK(srw == end_rc && pos >= stream_end);
            size_t used = 0;
            struct ab_bus_msg m;
            AB_FUZZ_CHECK(ab_bus_decoder_push(&dec, p, n, &used, &m, NULL) == end_rc);
            AB_FUZZ_CHECK(used == 0); /* the error is sticky */
        }
    }
    AB_FUZZ_CHECK(dec.frames == k);
    ab_bus_decoder_deinit(&dec);
    for (size_t i = 0; i < n_msgs; i++)
        ab_bus_msg_deinit(&msgs[i]);
    free(msgs);
    return 0;
}

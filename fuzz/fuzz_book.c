/*
 * Fuzz target for common/book.h: a structured fuzzer. The input is a small
 * program of book operations; each runs against struct ab_book and against a
 * naive reference model written from the header's description (sorted
 * arrays, the snapshot procedure, the per-side cap, the buffer caps), and
 * after every step the two must agree on the action, the state, the update
 * id, the buffer and every level.
 *
 * Input: byte 0: max_levels - 1 (low 4 bits), byte 1: max_buffered_events - 1
 * (low 3 bits), byte 2: max_buffered_levels - 1 (low 6 bits); then ops, each
 * an opcode byte (kind = op % 8, 0x80 = may carry invalid levels, 0x40 = empty
 * symbol) and its operands:
 *   0-2 delta     [dU:int8][w][counts] levels...  U = cursor + 1 + dU, u = U + (w & 15)
 *                 (u = U - 1 when w & 0x80 and the op may be invalid)
 *   3 snapshot    [dL:int8][counts] levels...     lastUpdateId = cursor + dL
 *   4 load        the same operands, through ab_book_load
 *   5 reset
 *   6 delta naming another symbol (operands as 0-2)
 *   7 snapshot naming another symbol (operands as 3)
 * counts: low 3 bits bids, next 3 bits asks; a level is [price][qty] with
 * price = byte + 1 units (byte units when invalid levels are allowed, so 0 is
 * possible) and qty = byte units (-1 for 255 when invalid levels are allowed).
 */
#include <stdlib.h>
#include <string.h>

#include "common/book.h"
#include "common/err.h"
#include "fuzz/targets.h"

#define BK_SYMBOL     "BTCUSDT"
#define BK_MAX_LEVELS 16 /* per side, the largest cap the header can ask for */
#define BK_MAX_EVENTS 8
#define BK_OP_LEVELS  7 /* per side per op */

struct bk_input {
    const uint8_t *p;
    size_t n, pos;
};

static uint8_t bk_byte(struct bk_input *in)
{
    return in->pos < in->n ? in->p[in->pos++] : 0;
}

/* One delta as the fuzzer keeps it (own arrays, no pointers). */
struct bk_event {
    uint64_t first_id, last_id;
    struct ab_level bids[BK_OP_LEVELS], asks[BK_OP_LEVELS];
    size_t n_bids, n_asks;
};

struct bk_model {
    struct ab_book_limits lim;
    enum ab_book_state state;
    uint64_t id;
    bool snapshot_wanted;
    struct ab_level lv[2][BK_MAX_LEVELS]; /* best first */
    size_t n[2];
    struct bk_event buf[BK_MAX_EVENTS];
    size_t n_buf, n_buf_levels;
};

static bool bk_better(int side, struct ab_dec a, struct ab_dec b)
{
    return side == AB_BOOK_BID ? a.v > b.v : a.v < b.v;
}

/* The per-side rule: set, remove on zero, keep the best max_levels. */
static void bk_model_set(struct bk_model *m, int side, struct ab_level l)
{
    struct ab_level *v = m->lv[side];
    size_t *n = &m->n[side];
    size_t i = 0;
    while (i < *n && bk_better(side, v[i].price, l.price))
        i++;
    if (i < *n && v[i].price.v == l.price.v) {
        if (l.qty.v == 0) {
            memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
            (*n)--;
        } else {
            v[i].qty = l.qty;
        }
        return;
    }
    if (l.qty.v == 0)
        return;
    if (*n == m->lim.max_levels) {
        if (i == *n)
            return; /* the new level would be the worst: dropped */
        (*n)--;     /* the worst level goes */
    }
    memmove(&v[i + 1], &v[i], (*n - i) * sizeof(*v));
    v[i] = l;
    (*n)++;
}

static void bk_model_apply(struct bk_model *m, const struct ab_level *bids, size_t nb,
                           const struct ab_level *asks, size_t na)
{
    for (size_t i = 0; i < nb; i++)
        bk_model_set(m, AB_BOOK_BID, bids[i]);
    for (size_t i = 0; i < na; i++)
        bk_model_set(m, AB_BOOK_ASK, asks[i]);
}

static void bk_model_clear_book(struct bk_model *m)
{
    m->n[0] = m->n[1] = 0;
    m->id = 0;
}

static void bk_model_clear_buf(struct bk_model *m)
{
    m->n_buf = 0;
    m->n_buf_levels = 0;
}

static bool bk_model_fits(const struct bk_model *m, const struct bk_event *e)
{
    return m->n_buf < m->lim.max_buffered_events &&
           e->n_bids + e->n_asks <= m->lim.max_buffered_levels - m->n_buf_levels;
}

static void bk_model_push(struct bk_model *m, const struct bk_event *e)
{
    m->buf[m->n_buf++] = *e;
    m->n_buf_levels += e->n_bids + e->n_asks;
}

/* Restarts the buffer with e; EMPTY when e alone does not fit. */
static void bk_model_restart(struct bk_model *m, const struct bk_event *e)
{
    bk_model_clear_buf(m);
    if (bk_model_fits(m, e)) {
        bk_model_push(m, e);
        m->state = AB_BOOK_BUFFERING;
    } else {
        m->state = AB_BOOK_EMPTY;
    }
}

static bool bk_levels_valid(const struct ab_level *lv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lv[i].price.v <= 0 || lv[i].qty.v < 0)
            return false;
    return true;
}

static size_t bk_read_levels(struct bk_input *in, bool bad, struct ab_level *lv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t p = bk_byte(in), q = bk_byte(in);
        lv[i].price = ab_dec_from_units(bad ? (int64_t)p : (int64_t)p + 1);
        lv[i].qty = ab_dec_from_units(bad && q == 255 ? -1 : (int64_t)q);
    }
    return n;
}

static uint64_t bk_offset(uint64_t base, int64_t delta)
{
    if (delta < 0 && (uint64_t)(-delta) > base)
        return 0;
    return base + (uint64_t)delta;
}

/* Compares everything observable about the book with the model. */
static void bk_compare(const struct ab_book *b, const struct bk_model *m)
{
    AB_FUZZ_CHECK(ab_book_state(b) == m->state);
    AB_FUZZ_CHECK(ab_book_last_update_id(b) == (m->state == AB_BOOK_LIVE ? m->id : 0));
    AB_FUZZ_CHECK(ab_book_buffered(b) == m->n_buf);
    AB_FUZZ_CHECK(strcmp(ab_book_symbol(b), BK_SYMBOL) == 0);
    if (m->state != AB_BOOK_LIVE)
        AB_FUZZ_CHECK(m->n[0] == 0 && m->n[1] == 0);
    for (int side = 0; side < 2; side++) {
        AB_FUZZ_CHECK(ab_book_count(b, (enum ab_book_side)side) == m->n[side]);
        struct ab_level top[BK_MAX_LEVELS + 1], best;
        size_t got = ab_book_top(b, (enum ab_book_side)side, top, BK_MAX_LEVELS + 1);
        AB_FUZZ_CHECK(got == m->n[side]);
        AB_FUZZ_CHECK(got == 0 || memcmp(top, m->lv[side], got * sizeof(top[0])) == 0);
        if (got > 1) /* a prefix is the same prefix */
            AB_FUZZ_CHECK(ab_book_top(b, (enum ab_book_side)side, top, 1) == 1 &&
                          top[0].price.v == m->lv[side][0].price.v);
        bool has = ab_book_best(b, (enum ab_book_side)side, &best);
        AB_FUZZ_CHECK(has == (m->n[side] > 0));
        if (has)
            AB_FUZZ_CHECK(best.price.v == m->lv[side][0].price.v &&
                          best.qty.v == m->lv[side][0].qty.v);
    }
    bool crossed = m->state == AB_BOOK_LIVE && m->n[0] && m->n[1] &&
                   m->lv[AB_BOOK_BID][0].price.v >= m->lv[AB_BOOK_ASK][0].price.v;
    AB_FUZZ_CHECK(ab_book_is_crossed(b) == crossed);

    struct ab_book_snapshot s;
    int rc = ab_book_export(b, 2, &s);
    if (m->state != AB_BOOK_LIVE) {
        AB_FUZZ_CHECK(rc == AB_ESTATE);
        return;
    }
    AB_FUZZ_CHECK(rc == 0);
    AB_FUZZ_CHECK(s.last_update_id == m->id && strcmp(s.symbol, BK_SYMBOL) == 0);
    AB_FUZZ_CHECK(s.n_bids == (m->n[0] < 2 ? m->n[0] : 2));
    AB_FUZZ_CHECK(s.n_asks == (m->n[1] < 2 ? m->n[1] : 2));
    AB_FUZZ_CHECK(s.n_bids == 0 || memcmp(s.bids, m->lv[0], s.n_bids * sizeof(*s.bids)) == 0);
    AB_FUZZ_CHECK(s.n_asks == 0 || memcmp(s.asks, m->lv[1], s.n_asks * sizeof(*s.asks)) == 0);
    ab_book_snapshot_deinit(&s);
}

static void bk_delta(struct ab_book *b, struct bk_model *m, struct bk_input *in, uint8_t op,
                     uint64_t *cursor)
{
    bool bad = op & 0x80, foreign = op % 8 == 6;
    int64_t du = (int8_t)bk_byte(in);
    uint8_t w = bk_byte(in), counts = bk_byte(in);
    struct bk_event e;
    memset(&e, 0, sizeof(e));
    e.first_id = bk_offset(*cursor + 1, du);
    e.last_id = bad && (w & 0x80) ? e.first_id - 1 : e.first_id + (w & 15);
    e.n_bids = bk_read_levels(in, bad, e.bids, counts & 7);
    e.n_asks = bk_read_levels(in, bad, e.asks, (counts >> 3) & 7);
    if (e.last_id > *cursor && e.first_id <= e.last_id)
        *cursor = e.last_id;

    struct ab_book_delta d;
    memset(&d, 0, sizeof(d));
    if (foreign)
        memset(d.symbol, 'E', sizeof(d.symbol)); /* not even NUL-terminated */
    else if (!(op & 0x40))
        memcpy(d.symbol, BK_SYMBOL, sizeof(BK_SYMBOL));
    d.first_id = e.first_id;
    d.last_id = e.last_id;
    d.bids = e.n_bids ? e.bids : NULL;
    d.asks = e.n_asks ? e.asks : NULL;
    d.n_bids = e.n_bids;
    d.n_asks = e.n_asks;

    struct ab_book_result r;
    int rc = ab_book_on_delta(b, &d, &r);
    if (foreign) {
        AB_FUZZ_CHECK(rc == AB_EINVAL && r.action == AB_BOOK_IGNORED_INVALID &&
                      r.reason == AB_BOOK_R_WRONG_SYMBOL);
        return;
    }
    if (e.first_id > e.last_id || !bk_levels_valid(e.bids, e.n_bids) ||
        !bk_levels_valid(e.asks, e.n_asks)) {
        AB_FUZZ_CHECK(rc == AB_EINVAL && r.action == AB_BOOK_RESYNC &&
                      r.reason == AB_BOOK_R_INVALID);
        bk_model_clear_book(m);
        bk_model_clear_buf(m);
        m->state = AB_BOOK_EMPTY;
        m->snapshot_wanted = true;
        return;
    }
    AB_FUZZ_CHECK(rc == 0);
    if (m->state == AB_BOOK_LIVE) {
        if (e.last_id <= m->id) {
            AB_FUZZ_CHECK(r.action == AB_BOOK_IGNORED_STALE && r.reason == AB_BOOK_R_STALE);
        } else if (e.first_id > m->id + 1) {
            AB_FUZZ_CHECK(r.action == AB_BOOK_RESYNC && r.reason == AB_BOOK_R_GAP);
            bk_model_clear_book(m);
            bk_model_restart(m, &e);
            m->snapshot_wanted = true;
        } else {
            AB_FUZZ_CHECK(r.action == AB_BOOK_APPLIED && r.prev_id == m->id);
            AB_FUZZ_CHECK(r.first_id == e.first_id && r.last_id == e.last_id);
            bk_model_apply(m, e.bids, e.n_bids, e.asks, e.n_asks);
            m->id = e.last_id;
        }
        return;
    }
    if (m->n_buf > 0 && e.last_id <= m->buf[m->n_buf - 1].last_id) {
        AB_FUZZ_CHECK(r.action == AB_BOOK_IGNORED_STALE && r.reason == AB_BOOK_R_STALE);
    } else if (m->n_buf > 0 && e.first_id > m->buf[m->n_buf - 1].last_id + 1) {
        AB_FUZZ_CHECK(r.action == AB_BOOK_RESYNC && r.reason == AB_BOOK_R_GAP);
        bk_model_restart(m, &e);
        m->snapshot_wanted = true;
    } else if (!bk_model_fits(m, &e)) {
        AB_FUZZ_CHECK(r.action == AB_BOOK_RESYNC && r.reason == AB_BOOK_R_BUFFER_FULL);
        bk_model_restart(m, &e);
        m->snapshot_wanted = true;
    } else {
        AB_FUZZ_CHECK(r.action == (m->snapshot_wanted ? AB_BOOK_BUFFERED : AB_BOOK_NEED_SNAPSHOT));
        bk_model_push(m, &e);
        m->state = AB_BOOK_BUFFERING;
        m->snapshot_wanted = true;
    }
}

/* Loads a validated snapshot into the model (the book's load_levels). */
static void bk_model_load(struct bk_model *m, const struct ab_book_snapshot *s)
{
    bk_model_clear_book(m);
    bk_model_apply(m, s->bids, s->n_bids, s->asks, s->n_asks);
    m->id = s->last_update_id;
    m->state = AB_BOOK_LIVE;
    m->snapshot_wanted = false;
}

static void bk_snapshot(struct ab_book *b, struct bk_model *m, struct bk_input *in, uint8_t op,
                        uint64_t cursor)
{
    bool bad = op & 0x80, foreign = op % 8 == 7, load = op % 8 == 4;
    int64_t dl = (int8_t)bk_byte(in);
    uint8_t counts = bk_byte(in);
    struct ab_level bids[BK_OP_LEVELS], asks[BK_OP_LEVELS];
    struct ab_book_snapshot s;
    memset(&s, 0, sizeof(s));
    if (foreign)
        memcpy(s.symbol, "ETHUSDT", sizeof("ETHUSDT"));
    else if (!(op & 0x40))
        memcpy(s.symbol, BK_SYMBOL, sizeof(BK_SYMBOL));
    s.last_update_id = bk_offset(cursor, dl);
    s.n_bids = bk_read_levels(in, bad, bids, counts & 7);
    s.n_asks = bk_read_levels(in, bad, asks, (counts >> 3) & 7);
    s.bids = s.n_bids ? bids : NULL;
    s.asks = s.n_asks ? asks : NULL;
    bool valid = bk_levels_valid(bids, s.n_bids) && bk_levels_valid(asks, s.n_asks);

    if (load || (foreign && (op & 0x08))) {
        int rc = ab_book_load(b, &s);
        if (foreign || !valid) {
            AB_FUZZ_CHECK(rc == AB_EINVAL);
            return;
        }
        AB_FUZZ_CHECK(rc == 0);
        bk_model_clear_buf(m);
        bk_model_load(m, &s);
        return;
    }

    struct ab_book_result r;
    int rc = ab_book_on_snapshot(b, &s, &r);
    if (foreign) {
        AB_FUZZ_CHECK(rc == AB_EINVAL && r.action == AB_BOOK_IGNORED_INVALID &&
                      r.reason == AB_BOOK_R_WRONG_SYMBOL);
        return;
    }
    if (!valid) {
        AB_FUZZ_CHECK(rc == AB_EINVAL);
        if (m->state == AB_BOOK_LIVE) {
            AB_FUZZ_CHECK(r.action == AB_BOOK_IGNORED_INVALID);
        } else {
            AB_FUZZ_CHECK(r.action == AB_BOOK_NEED_SNAPSHOT);
            m->snapshot_wanted = true;
        }
        return;
    }
    AB_FUZZ_CHECK(rc == 0);
    if (m->state == AB_BOOK_LIVE) {
        AB_FUZZ_CHECK(r.action == AB_BOOK_IGNORED_STALE && r.reason == AB_BOOK_R_ALREADY_LIVE);
        return;
    }
    if (m->n_buf > 0 && m->buf[0].first_id > s.last_update_id + 1) {
        AB_FUZZ_CHECK(r.action == AB_BOOK_SNAPSHOT_TOO_OLD && r.reason == AB_BOOK_R_SNAPSHOT_OLD);
        m->snapshot_wanted = true;
        return;
    }
    bk_model_load(m, &s);
    size_t replayed = 0, dropped = 0;
    for (size_t i = 0; i < m->n_buf; i++) {
        const struct bk_event *e = &m->buf[i];
        if (e->last_id <= m->id) {
            dropped++;
            continue;
        }
        /* A continuous buffer that passed the age check always bridges. */
        AB_FUZZ_CHECK(e->first_id <= m->id + 1);
        bk_model_apply(m, e->bids, e->n_bids, e->asks, e->n_asks);
        m->id = e->last_id;
        replayed++;
    }
    bk_model_clear_buf(m);
    AB_FUZZ_CHECK(r.action == AB_BOOK_APPLIED && r.reason == AB_BOOK_R_NONE);
    AB_FUZZ_CHECK(r.first_id == s.last_update_id && r.last_id == m->id && r.prev_id == 0);
    AB_FUZZ_CHECK(r.replayed == replayed && r.dropped == dropped);
}

int ab_fuzz_book(const uint8_t *data, size_t size)
{
    struct bk_input in = {data, size, 0};
    struct bk_model *m = calloc(1, sizeof(*m));
    AB_FUZZ_CHECK(m != NULL);
    m->lim.max_levels = 1 + (bk_byte(&in) & 15);
    m->lim.max_buffered_events = 1 + (bk_byte(&in) & 7);
    m->lim.max_buffered_levels = 1 + (bk_byte(&in) & 63);
    m->state = AB_BOOK_EMPTY;

    struct ab_book *b = NULL;
    AB_FUZZ_CHECK(ab_book_new(BK_SYMBOL, &m->lim, &b) == 0);
    struct ab_book_stats prev, now;
    ab_book_get_stats(b, &prev);
    uint64_t cursor = 1000;
    while (in.pos < in.n) {
        uint8_t op = bk_byte(&in);
        switch (op % 8) {
        case 0:
        case 1:
        case 2:
        case 6:
            bk_delta(b, m, &in, op, &cursor);
            break;
        case 3:
        case 4:
        case 7:
            bk_snapshot(b, m, &in, op, cursor);
            break;
        default:
            ab_book_reset(b);
            bk_model_clear_book(m);
            bk_model_clear_buf(m);
            m->state = AB_BOOK_EMPTY;
            m->snapshot_wanted = false;
            break;
        }
        bk_compare(b, m);
        /* Counters never go back. */
        ab_book_get_stats(b, &now);
        AB_FUZZ_CHECK(now.deltas_applied >= prev.deltas_applied && now.resyncs >= prev.resyncs &&
                      now.crossed >= prev.crossed &&
                      now.snapshots_loaded >= prev.snapshots_loaded &&
                      now.levels_trimmed >= prev.levels_trimmed);
        prev = now;
    }
    ab_book_free(b);
    free(m);
    return 0;
}

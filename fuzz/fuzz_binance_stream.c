/*
 * Fuzz target for ab_binance_decode_stream: whatever a WebSocket frame holds,
 * the decoder either fails with a reason or returns a message that keeps
 * every promise of common/binance.h. Each input is decoded twice; both
 * results must be identical (no dependence on uninitialised memory).
 */
#include <jansson.h>
#include <string.h>

#include "common/binance.h"
#include "common/err.h"
#include "fuzz/targets.h"

/* The symbol part of a combined stream name must be the symbol in lower case. */
static void bs_check_stream_symbol(const char *stream, const char *symbol)
{
    const char *at = strchr(stream, '@');
    if (!at || stream[0] == '!' || at == stream)
        return;
    size_t n = (size_t)(at - stream);
    AB_FUZZ_CHECK(n == strlen(symbol));
    for (size_t i = 0; i < n; i++) {
        char c = symbol[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        AB_FUZZ_CHECK(stream[i] == c);
    }
}

static void bs_check_symbol(const char *symbol)
{
    AB_FUZZ_CHECK(ab_fuzz_terminated(symbol, AB_SYMBOL_MAX));
    AB_FUZZ_CHECK(ab_symbol_valid(symbol, strlen(symbol)));
}

static void bs_check_id(const struct ab_binance_req_id *id)
{
    AB_FUZZ_CHECK(id->kind == AB_BINANCE_ID_NONE || id->kind == AB_BINANCE_ID_INT ||
                  id->kind == AB_BINANCE_ID_STR);
    if (id->kind == AB_BINANCE_ID_STR) {
        AB_FUZZ_CHECK(ab_fuzz_terminated(id->str, sizeof(id->str)));
        AB_FUZZ_CHECK(ab_fuzz_utf8_valid(id->str, strlen(id->str)));
    }
}

static void bs_check_msg(const struct ab_binance_msg *m)
{
    AB_FUZZ_CHECK(ab_fuzz_terminated(m->stream, sizeof(m->stream)));
    AB_FUZZ_CHECK(ab_fuzz_terminated(m->event, sizeof(m->event)));
    switch (m->kind) {
    case AB_BINANCE_IGNORED:
        AB_FUZZ_CHECK(ab_fuzz_utf8_valid(m->event, strlen(m->event)));
        break;
    case AB_BINANCE_KLINE: {
        const struct ab_candle *c = &m->kline;
        const char *why = NULL;
        AB_FUZZ_CHECK(ab_candle_validate(c, &why) == 0);
        bs_check_symbol(c->symbol);
        bs_check_stream_symbol(m->stream, c->symbol);
        AB_FUZZ_CHECK(c->event_time >= 0 && c->open_time >= 0 && c->num_trades >= 0);
        AB_FUZZ_CHECK(c->first_trade_id >= -1 && c->last_trade_id >= -1);
        if (c->first_trade_id >= 0)
            AB_FUZZ_CHECK(c->last_trade_id >= c->first_trade_id);
        break;
    }
    case AB_BINANCE_DEPTH_UPDATE: {
        const struct ab_book_delta *d = &m->depth;
        bs_check_symbol(d->symbol);
        bs_check_stream_symbol(m->stream, d->symbol);
        AB_FUZZ_CHECK(d->first_id >= 1 && d->first_id <= d->last_id);
        AB_FUZZ_CHECK(d->event_time >= 0);
        AB_FUZZ_CHECK(d->n_bids <= AB_BINANCE_DELTA_LEVELS_MAX);
        AB_FUZZ_CHECK(d->n_asks <= AB_BINANCE_DELTA_LEVELS_MAX);
        ab_fuzz_check_levels(d->bids, d->n_bids, false, 0);
        ab_fuzz_check_levels(d->asks, d->n_asks, false, 0);
        break;
    }
    case AB_BINANCE_PARTIAL_DEPTH: {
        const struct ab_book_snapshot *s = &m->partial;
        AB_FUZZ_CHECK(ab_fuzz_terminated(s->symbol, AB_SYMBOL_MAX));
        if (s->symbol[0])
            bs_check_symbol(s->symbol);
        AB_FUZZ_CHECK(s->n_bids <= AB_BINANCE_SNAPSHOT_LEVELS_MAX);
        AB_FUZZ_CHECK(s->n_asks <= AB_BINANCE_SNAPSHOT_LEVELS_MAX);
        ab_fuzz_check_levels(s->bids, s->n_bids, true, -1);
        ab_fuzz_check_levels(s->asks, s->n_asks, true, 1);
        if (s->n_bids && s->n_asks)
            AB_FUZZ_CHECK(ab_dec_cmp(s->bids[0].price, s->asks[0].price) < 0);
        break;
    }
    case AB_BINANCE_BOOK_TICKER: {
        const struct ab_binance_book_ticker *t = &m->book_ticker;
        bs_check_symbol(t->symbol);
        bs_check_stream_symbol(m->stream, t->symbol);
        AB_FUZZ_CHECK(t->update_id >= 1);
        AB_FUZZ_CHECK(!ab_dec_is_neg(t->bid_price) && !ab_dec_is_neg(t->bid_qty));
        AB_FUZZ_CHECK(!ab_dec_is_neg(t->ask_price) && !ab_dec_is_neg(t->ask_qty));
        break;
    }
    case AB_BINANCE_AGG_TRADE:
    case AB_BINANCE_TRADE: {
        const struct ab_binance_trade *t = &m->trade;
        bs_check_symbol(t->symbol);
        bs_check_stream_symbol(m->stream, t->symbol);
        AB_FUZZ_CHECK(t->price.v > 0 && t->qty.v > 0);
        AB_FUZZ_CHECK(t->event_time >= 0 && t->trade_time >= 0 && t->id >= 0);
        AB_FUZZ_CHECK(t->first_trade_id >= 0 && t->first_trade_id <= t->last_trade_id);
        if (m->kind == AB_BINANCE_TRADE)
            AB_FUZZ_CHECK(t->first_trade_id == t->id && t->last_trade_id == t->id);
        break;
    }
    case AB_BINANCE_SERVER_SHUTDOWN:
        AB_FUZZ_CHECK(m->shutdown.event_time >= 0);
        break;
    case AB_BINANCE_RESULT: {
        const struct ab_binance_result *r = &m->result;
        bs_check_id(&r->id);
        AB_FUZZ_CHECK(ab_fuzz_terminated(r->result_json, sizeof(r->result_json)));
        size_t len = strlen(r->result_json);
        AB_FUZZ_CHECK(ab_fuzz_utf8_valid(r->result_json, len));
        if (r->result_null) {
            AB_FUZZ_CHECK(len == 0 && !r->result_truncated);
        } else if (!r->result_truncated) {
            /* A complete result is the compact JSON of a value: it parses. */
            json_t *v = json_loadb(r->result_json, len, JSON_DECODE_ANY, NULL);
            AB_FUZZ_CHECK(v != NULL);
            json_decref(v);
        }
        break;
    }
    case AB_BINANCE_WS_ERROR:
        bs_check_id(&m->ws_error.id);
        AB_FUZZ_CHECK(ab_fuzz_terminated(m->ws_error.msg, sizeof(m->ws_error.msg)));
        AB_FUZZ_CHECK(ab_fuzz_utf8_valid(m->ws_error.msg, strlen(m->ws_error.msg)));
        break;
    default:
        AB_FUZZ_CHECK(!"unknown message kind");
    }
}

static bool bs_levels_equal(const struct ab_level *a, const struct ab_level *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(*a)) == 0;
}

/* Two decodes of the same bytes must agree field for field. */
static void bs_check_same(const struct ab_binance_msg *a, const struct ab_binance_msg *b)
{
    struct ab_binance_msg x, y;
    memcpy(&x, a, sizeof(x)); /* memcpy, unlike assignment, copies the padding */
    memcpy(&y, b, sizeof(y));
    AB_FUZZ_CHECK(x.kind == y.kind);
    if (x.kind == AB_BINANCE_DEPTH_UPDATE) {
        AB_FUZZ_CHECK(x.depth.n_bids == y.depth.n_bids && x.depth.n_asks == y.depth.n_asks);
        AB_FUZZ_CHECK(bs_levels_equal(x.depth.bids, y.depth.bids, x.depth.n_bids));
        AB_FUZZ_CHECK(bs_levels_equal(x.depth.asks, y.depth.asks, x.depth.n_asks));
        x.depth.bids = y.depth.bids = NULL;
        x.depth.asks = y.depth.asks = NULL;
    } else if (x.kind == AB_BINANCE_PARTIAL_DEPTH) {
        AB_FUZZ_CHECK(x.partial.n_bids == y.partial.n_bids && x.partial.n_asks == y.partial.n_asks);
        AB_FUZZ_CHECK(bs_levels_equal(x.partial.bids, y.partial.bids, x.partial.n_bids));
        AB_FUZZ_CHECK(bs_levels_equal(x.partial.asks, y.partial.asks, x.partial.n_asks));
        x.partial.bids = y.partial.bids = NULL;
        x.partial.asks = y.partial.asks = NULL;
    }
    /* The decoder zeroes *out first, so padding and unused bytes compare too. */
    AB_FUZZ_CHECK(memcmp(&x, &y, sizeof(x)) == 0);
}

int ab_fuzz_binance_stream(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct ab_binance_msg m1, m2;
    struct ab_decode_err e1, e2;
    memset(&e1, 0x5a, sizeof(e1));
    memset(&e2, 0xa5, sizeof(e2));
    int rc1 = ab_binance_decode_stream(buf, size, &m1, &e1);
    int rc2 = ab_binance_decode_stream(buf, size, &m2, &e2);
    ab_fuzz_check_decode_err(rc1, &e1);
    AB_FUZZ_CHECK(rc1 == rc2);
    AB_FUZZ_CHECK(strcmp(e1.reason, e2.reason) == 0);
    if (rc1 == 0) {
        bs_check_msg(&m1);
        bs_check_same(&m1, &m2);
    } else {
        /* On failure *out owns nothing: deinit is a no-op (ASan sees double frees). */
        AB_FUZZ_CHECK(m1.kind != AB_BINANCE_DEPTH_UPDATE || m1.depth.bids == NULL);
    }
    ab_binance_msg_deinit(&m1);
    ab_binance_msg_deinit(&m2);
    /* err may be NULL. */
    rc2 = ab_binance_decode_stream(buf, size, &m2, NULL);
    AB_FUZZ_CHECK(rc1 == rc2);
    ab_binance_msg_deinit(&m2);
    return 0;
}

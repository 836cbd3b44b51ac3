/*
 * Tests for common/binance: every recorded Binance message in shared/data
 * decodes with zero errors and the README's per-kind counts; decoded fields
 * equal the raw text; hostile JSON yields the right code and a reason naming
 * the field.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/binance.h"
#include "common/capture.h"
#include "common/decimal.h"
#include "common/err.h"

#define DATA AB_SHARED_DATA "/binance/"

/* ---- helpers ------------------------------------------------------------ */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "recorded data missing: %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long sz = ftell(f);
    cr_assert(sz >= 0);
    rewind(f);
    char *buf = malloc((size_t)sz + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    buf[sz] = '\0';
    fclose(f);
    *len = (size_t)sz;
    return buf;
}

static const char *fmt8(struct ab_dec d, char *buf)
{
    ab_dec_format_fixed(d, 8, buf);
    return buf;
}

static const char *fmt(struct ab_dec d, char *buf)
{
    ab_dec_format(d, buf);
    return buf;
}

/* Compares a decoded decimal with a raw JSON string holding 8 fractional digits. */
static void expect_dec_raw(struct ab_dec d, const json_t *raw, const char *what)
{
    char buf[AB_DEC_STR_MAX];
    cr_assert(json_is_string(raw), "%s: raw value is not a string", what);
    cr_expect_str_eq(fmt8(d, buf), json_string_value(raw), "%s", what);
}

static void expect_int_raw(int64_t v, const json_t *raw, const char *what)
{
    cr_assert(json_is_integer(raw), "%s: raw value is not an integer", what);
    cr_expect_eq(v, (int64_t)json_integer_value(raw), "%s: %lld vs %lld", what, (long long)v,
                 (long long)json_integer_value(raw));
}

static void expect_levels_raw(const struct ab_level *lv, size_t n, const json_t *raw,
                              const char *what)
{
    cr_assert(json_is_array(raw));
    cr_assert_eq(n, json_array_size(raw), "%s: %zu levels vs %zu raw", what, n,
                 json_array_size(raw));
    for (size_t i = 0; i < n; i++) {
        const json_t *pair = json_array_get(raw, i);
        expect_dec_raw(lv[i].price, json_array_get(pair, 0), what);
        expect_dec_raw(lv[i].qty, json_array_get(pair, 1), what);
    }
}

/*
 * Checks a decoded frame field by field against an independent jansson read
 * of the raw text, so a swapped or dropped field cannot pass.
 */
static void cross_check(const struct ab_binance_msg *m, const char *raw, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(raw, len, 0, &je);
    cr_assert_not_null(root);
    const json_t *d = json_object_get(root, "data");
    cr_assert_not_null(d, "capture frames are combined");
    cr_expect_str_eq(m->stream, json_string_value(json_object_get(root, "stream")));
    switch (m->kind) {
    case AB_BINANCE_DEPTH_UPDATE:
        cr_expect_str_eq(m->depth.symbol, json_string_value(json_object_get(d, "s")));
        expect_int_raw(m->depth.event_time, json_object_get(d, "E"), "E");
        expect_int_raw((int64_t)m->depth.first_id, json_object_get(d, "U"), "U");
        expect_int_raw((int64_t)m->depth.last_id, json_object_get(d, "u"), "u");
        expect_levels_raw(m->depth.bids, m->depth.n_bids, json_object_get(d, "b"), "b");
        expect_levels_raw(m->depth.asks, m->depth.n_asks, json_object_get(d, "a"), "a");
        break;
    case AB_BINANCE_KLINE: {
        const json_t *k = json_object_get(d, "k");
        const struct ab_candle *c = &m->kline;
        cr_expect_str_eq(c->symbol, json_string_value(json_object_get(d, "s")));
        cr_expect_str_eq(ab_interval_name(c->interval), json_string_value(json_object_get(k, "i")));
        expect_int_raw(c->event_time, json_object_get(d, "E"), "E");
        expect_int_raw(c->open_time, json_object_get(k, "t"), "k.t");
        expect_int_raw(c->close_time, json_object_get(k, "T"), "k.T");
        expect_int_raw(c->first_trade_id, json_object_get(k, "f"), "k.f");
        expect_int_raw(c->last_trade_id, json_object_get(k, "L"), "k.L");
        expect_int_raw(c->num_trades, json_object_get(k, "n"), "k.n");
        cr_expect_eq(c->closed, json_is_true(json_object_get(k, "x")));
        expect_dec_raw(c->open, json_object_get(k, "o"), "k.o");
        expect_dec_raw(c->high, json_object_get(k, "h"), "k.h");
        expect_dec_raw(c->low, json_object_get(k, "l"), "k.l");
        expect_dec_raw(c->close, json_object_get(k, "c"), "k.c");
        expect_dec_raw(c->volume, json_object_get(k, "v"), "k.v");
        expect_dec_raw(c->quote_volume, json_object_get(k, "q"), "k.q");
        expect_dec_raw(c->taker_buy_volume, json_object_get(k, "V"), "k.V");
        expect_dec_raw(c->taker_buy_quote_volume, json_object_get(k, "Q"), "k.Q");
        break;
    }
    case AB_BINANCE_BOOK_TICKER:
        cr_expect_str_eq(m->book_ticker.symbol, json_string_value(json_object_get(d, "s")));
        expect_int_raw((int64_t)m->book_ticker.update_id, json_object_get(d, "u"), "u");
        expect_dec_raw(m->book_ticker.bid_price, json_object_get(d, "b"), "b");
        expect_dec_raw(m->book_ticker.bid_qty, json_object_get(d, "B"), "B");
        expect_dec_raw(m->book_ticker.ask_price, json_object_get(d, "a"), "a");
        expect_dec_raw(m->book_ticker.ask_qty, json_object_get(d, "A"), "A");
        break;
    case AB_BINANCE_AGG_TRADE:
        cr_expect_str_eq(m->trade.symbol, json_string_value(json_object_get(d, "s")));
        expect_int_raw(m->trade.event_time, json_object_get(d, "E"), "E");
        expect_int_raw(m->trade.id, json_object_get(d, "a"), "a");
        expect_int_raw(m->trade.first_trade_id, json_object_get(d, "f"), "f");
        expect_int_raw(m->trade.last_trade_id, json_object_get(d, "l"), "l");
        expect_int_raw(m->trade.trade_time, json_object_get(d, "T"), "T");
        expect_dec_raw(m->trade.price, json_object_get(d, "p"), "p");
        expect_dec_raw(m->trade.qty, json_object_get(d, "q"), "q");
        cr_expect_eq(m->trade.buyer_maker, json_is_true(json_object_get(d, "m")));
        break;
    default:
        cr_expect_fail("unexpected kind %d in a capture", (int)m->kind);
    }
    json_decref(root);
}

#define MAX_SYMS  16
#define MAX_SNAPS 16

struct tally {
    size_t kind[AB_BINANCE_WS_ERROR + 1];
    size_t closed_klines;
    size_t errors;
    size_t connects, skips;
    size_t exchange_info;
    /* depthUpdate count per symbol */
    char sym[MAX_SYMS][AB_SYMBOL_MAX];
    size_t sym_depth[MAX_SYMS];
    size_t n_syms;
    /* snapshots in file order */
    char snap_sym[MAX_SNAPS][AB_SYMBOL_MAX];
    uint64_t snap_id[MAX_SNAPS];
    size_t snap_bids[MAX_SNAPS], snap_asks[MAX_SNAPS];
    size_t n_snaps;
    struct ab_binance_exchange_info info;
};

static void count_depth(struct tally *t, const char *symbol)
{
    for (size_t i = 0; i < t->n_syms; i++) {
        if (strcmp(t->sym[i], symbol) == 0) {
            t->sym_depth[i]++;
            return;
        }
    }
    cr_assert_lt(t->n_syms, (size_t)MAX_SYMS);
    snprintf(t->sym[t->n_syms], AB_SYMBOL_MAX, "%s", symbol);
    t->sym_depth[t->n_syms++] = 1;
}

static size_t depth_count(const struct tally *t, const char *symbol)
{
    for (size_t i = 0; i < t->n_syms; i++)
        if (strcmp(t->sym[i], symbol) == 0)
            return t->sym_depth[i];
    return 0;
}

static void on_snapshot(struct tally *t, const struct ab_capture_rec *r)
{
    const char *q = strstr(r->url, "symbol=");
    cr_assert_not_null(q, "depth URL without symbol: %s", r->url);
    q += strlen("symbol=");
    size_t n = strcspn(q, "&");
    cr_assert_lt(n, (size_t)AB_SYMBOL_MAX);
    char symbol[AB_SYMBOL_MAX];
    memcpy(symbol, q, n);
    symbol[n] = '\0';

    struct ab_book_snapshot s;
    struct ab_decode_err e;
    int rc = ab_binance_decode_depth(r->payload, r->payload_len, symbol, &s, &e);
    if (rc) {
        cr_log_error("line %zu: depth %s: %s", r->line_no, symbol, e.reason);
        t->errors++;
        return;
    }
    cr_expect_str_eq(s.symbol, symbol);
    /* Independent check of every level against the raw body. */
    json_error_t je;
    json_t *root = json_loadb(r->payload, r->payload_len, 0, &je);
    cr_assert_not_null(root);
    expect_int_raw((int64_t)s.last_update_id, json_object_get(root, "lastUpdateId"),
                   "lastUpdateId");
    expect_levels_raw(s.bids, s.n_bids, json_object_get(root, "bids"), "bids");
    expect_levels_raw(s.asks, s.n_asks, json_object_get(root, "asks"), "asks");
    json_decref(root);

    cr_assert_lt(t->n_snaps, (size_t)MAX_SNAPS);
    snprintf(t->snap_sym[t->n_snaps], AB_SYMBOL_MAX, "%s", symbol);
    t->snap_id[t->n_snaps] = s.last_update_id;
    t->snap_bids[t->n_snaps] = s.n_bids;
    t->snap_asks[t->n_snaps] = s.n_asks;
    t->n_snaps++;
    ab_book_snapshot_deinit(&s);
}

typedef void (*msg_cb)(const struct ab_binance_msg *m, void *ctx);

/* Decodes every record of one capture file into t; cb (optional) sees each frame. */
static void run_capture(const char *path, struct tally *t, msg_cb cb, void *ctx)
{
    struct ab_capture *cap = NULL;
    int rc = ab_capture_open(path, 0, &cap);
    cr_assert_eq(rc, 0, "recorded data missing or unreadable: %s (%s)", path, ab_err_str(rc));
    struct ab_capture_rec r;
    const char *why = NULL;
    while ((rc = ab_capture_next(cap, &r, &why)) != 0) {
        cr_assert_eq(rc, 1, "%s:%zu: capture line unreadable: %s", path, r.line_no,
                     why ? why : "?");
        if (r.kind == AB_CAP_CONNECT) {
            t->connects++;
            continue;
        }
        if (r.kind == AB_CAP_SKIP) {
            t->skips++;
            continue;
        }
        if (r.kind == AB_CAP_HTTP) {
            if (strstr(r.url, "/depth?")) {
                on_snapshot(t, &r);
            } else if (strstr(r.url, "/exchangeInfo")) {
                struct ab_decode_err e;
                ab_binance_exchange_info_deinit(&t->info);
                if (ab_binance_decode_exchange_info(r.payload, r.payload_len, &t->info, &e)) {
                    cr_log_error("line %zu: exchangeInfo: %s", r.line_no, e.reason);
                    t->errors++;
                } else {
                    t->exchange_info++;
                }
            } else {
                cr_expect_fail("unexpected HTTP record %s", r.url);
            }
            continue;
        }
        struct ab_binance_msg m;
        struct ab_decode_err e;
        rc = ab_binance_decode_stream(r.payload, r.payload_len, &m, &e);
        if (rc) {
            cr_log_error("%s:%zu: %s (%s)", path, r.line_no, e.reason, ab_err_str(rc));
            t->errors++;
            continue;
        }
        t->kind[m.kind]++;
        if (m.kind == AB_BINANCE_KLINE && m.kline.closed)
            t->closed_klines++;
        if (m.kind == AB_BINANCE_DEPTH_UPDATE)
            count_depth(t, m.depth.symbol);
        cross_check(&m, r.payload, r.payload_len);
        if (cb)
            cb(&m, ctx);
        ab_binance_msg_deinit(&m);
    }
    ab_capture_free(cap);
}

static void tally_free(struct tally *t)
{
    ab_binance_exchange_info_deinit(&t->info);
    free(t);
}

static struct tally *tally_new(void)
{
    struct tally *t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    return t;
}

/* ---- recorded captures -------------------------------------------------- */

struct spot {
    int seen_first_depth, seen_closed_btc, seen_first_agg;
};

static void spot_2997020(const struct ab_binance_msg *m, void *ctx)
{
    struct spot *s = ctx;
    char buf[AB_DEC_STR_MAX];
    /* First frame of the file, checked against its raw text. */
    if (m->kind == AB_BINANCE_DEPTH_UPDATE && !s->seen_first_depth++) {
        cr_expect_str_eq(m->stream, "dotusdt@depth@100ms");
        cr_expect_str_eq(m->depth.symbol, "DOTUSDT");
        cr_expect_eq(m->depth.event_time, 1617566591307);
        cr_expect_eq(m->depth.first_id, 1513939202u);
        cr_expect_eq(m->depth.last_id, 1513939205u);
        cr_assert_eq(m->depth.n_bids, 4);
        cr_expect_eq(m->depth.n_asks, 0);
        cr_expect_null(m->depth.asks);
        cr_expect_str_eq(fmt(m->depth.bids[0].price, buf), "43.5083");
        cr_expect_str_eq(fmt(m->depth.bids[0].qty, buf), "7");
        cr_expect(ab_dec_is_zero(m->depth.bids[1].qty));
        cr_expect_str_eq(fmt(m->depth.bids[3].price, buf), "43.4909");
        cr_expect_str_eq(fmt(m->depth.bids[3].qty, buf), "180");
    }
    if (m->kind == AB_BINANCE_AGG_TRADE && !s->seen_first_agg++) {
        cr_expect_str_eq(m->trade.symbol, "BTCUSDT");
        cr_expect_eq(m->trade.id, 665076760);
        cr_expect_str_eq(fmt(m->trade.price, buf), "58001.03");
        cr_expect_str_eq(fmt(m->trade.qty, buf), "0.086205");
        cr_expect_eq(m->trade.first_trade_id, 745522877);
        cr_expect_eq(m->trade.last_trade_id, 745522877);
        cr_expect_eq(m->trade.trade_time, 1617566591314);
        cr_expect(m->trade.buyer_maker);
    }
    if (m->kind == AB_BINANCE_KLINE && m->kline.closed && !strcmp(m->kline.symbol, "BTCUSDT")) {
        s->seen_closed_btc++;
        const struct ab_candle *c = &m->kline;
        cr_expect_eq(c->interval, AB_I_1M);
        cr_expect_eq(c->open_time, 1617566580000);
        cr_expect_eq(c->close_time, 1617566639999);
        cr_expect_eq(c->event_time, 1617566640068);
        cr_expect_eq(c->first_trade_id, 745522651);
        cr_expect_eq(c->last_trade_id, 745523670);
        cr_expect_eq(c->num_trades, 1020);
        cr_expect_str_eq(fmt(c->open, buf), "57994.6");
        cr_expect_str_eq(fmt(c->high, buf), "58018.03");
        cr_expect_str_eq(fmt(c->low, buf), "57974.41");
        cr_expect_str_eq(fmt(c->close, buf), "57999.99");
        cr_expect_str_eq(fmt(c->volume, buf), "23.067122");
        cr_expect_str_eq(fmt(c->quote_volume, buf), "1337913.58654308");
        cr_expect_str_eq(fmt(c->taker_buy_volume, buf), "11.413347");
        cr_expect_str_eq(fmt(c->taker_buy_quote_volume, buf), "661954.86510045");
    }
}

Test(binance_capture, cryptofeed_2997020)
{
    struct tally *t = tally_new();
    struct spot s = {0};
    run_capture(DATA "cryptofeed-2997020/BINANCE-ee25be.0", t, spot_2997020, &s);
    cr_expect_eq(t->errors, 0);
    cr_expect_eq(t->kind[AB_BINANCE_DEPTH_UPDATE], 2688);
    cr_expect_eq(t->kind[AB_BINANCE_AGG_TRADE], 1910);
    cr_expect_eq(t->kind[AB_BINANCE_KLINE], 118);
    cr_expect_eq(t->closed_klines, 3);
    cr_expect_eq(t->kind[AB_BINANCE_BOOK_TICKER], 0);
    cr_expect_eq(t->kind[AB_BINANCE_IGNORED], 0);
    cr_expect_eq(depth_count(t, "BTCUSDT"), 899);
    cr_expect_eq(depth_count(t, "ETHUSDT"), 909);
    cr_expect_eq(depth_count(t, "DOTUSDT"), 880);
    cr_expect_eq(t->connects, 1);
    cr_assert_eq(t->n_snaps, 3);
    const char *syms[3] = {"BTCUSDT", "ETHUSDT", "DOTUSDT"};
    const uint64_t ids[3] = {9893033066u, 6591598839u, 1513939277u};
    for (size_t k = 0; k < 3; k++) {
        size_t i = 0;
        while (i < t->n_snaps && strcmp(t->snap_sym[i], syms[k]) != 0)
            i++;
        cr_assert_lt(i, t->n_snaps, "no snapshot for %s", syms[k]);
        cr_expect_eq(t->snap_id[i], ids[k], "%s lastUpdateId", syms[k]);
        cr_expect_eq(t->snap_bids[i], 1000);
        cr_expect_eq(t->snap_asks[i], 1000);
    }
    cr_expect_eq(s.seen_first_depth, 2688);
    cr_expect_eq(s.seen_closed_btc, 1);
    tally_free(t);
}

static void spot_1312c06(const struct ab_binance_msg *m, void *ctx)
{
    int *first = ctx;
    char buf[AB_DEC_STR_MAX];
    if (m->kind != AB_BINANCE_BOOK_TICKER || (*first)++)
        return;
    cr_expect_str_eq(m->stream, "zilusdt@bookTicker");
    cr_expect_str_eq(m->book_ticker.symbol, "ZILUSDT");
    cr_expect_eq(m->book_ticker.update_id, 499822861u);
    cr_expect_str_eq(fmt(m->book_ticker.bid_price, buf), "0.21437");
    cr_expect_str_eq(fmt(m->book_ticker.bid_qty, buf), "2800");
    cr_expect_str_eq(fmt(m->book_ticker.ask_price, buf), "0.21449");
    cr_expect_str_eq(fmt(m->book_ticker.ask_qty, buf), "11400");
}

Test(binance_capture, cryptofeed_1312c06)
{
    struct tally *t = tally_new();
    int first = 0;
    run_capture(DATA "cryptofeed-1312c06/BINANCE-b38f7c.0", t, spot_1312c06, &first);
    cr_expect_eq(t->errors, 0);
    cr_expect_eq(t->kind[AB_BINANCE_BOOK_TICKER], 5408);
    cr_expect_eq(t->kind[AB_BINANCE_DEPTH_UPDATE], 4709);
    cr_expect_eq(t->kind[AB_BINANCE_AGG_TRADE], 1240);
    cr_expect_eq(t->kind[AB_BINANCE_KLINE], 0);
    cr_expect_eq(t->kind[AB_BINANCE_IGNORED], 0);
    cr_expect_eq(t->skips, 1, "the configuration line");
    cr_expect_eq(t->n_snaps, 10);
    for (size_t i = 0; i < t->n_snaps; i++) {
        cr_expect_geq(t->snap_bids[i], 98);
        cr_expect_leq(t->snap_bids[i], 1000);
    }
    cr_expect_eq(first, 5408);
    tally_free(t);
}

Test(binance_capture, cryptofeed_3525dc8)
{
    struct tally *t = tally_new();
    run_capture(DATA "cryptofeed-3525dc8/BINANCE.ws.1.0", t, NULL, NULL);
    run_capture(DATA "cryptofeed-3525dc8/BINANCE.http.0.0", t, NULL, NULL);
    cr_expect_eq(t->errors, 0);
    cr_expect_eq(t->kind[AB_BINANCE_DEPTH_UPDATE], 614);
    cr_expect_eq(t->kind[AB_BINANCE_BOOK_TICKER], 570);
    cr_expect_eq(t->kind[AB_BINANCE_AGG_TRADE], 24);
    cr_expect_eq(t->kind[AB_BINANCE_KLINE], 20);
    cr_expect_eq(t->closed_klines, 0);
    cr_expect_eq(t->n_snaps, 10);
    bool thin = false; /* ONTTRY has a thin book: 67 bids */
    for (size_t i = 0; i < t->n_snaps; i++)
        if (!strcmp(t->snap_sym[i], "ONTTRY"))
            thin = t->snap_bids[i] == 67;
    cr_expect(thin);
    tally_free(t);
}

Test(binance_capture, cryptofeed_ce58c2a)
{
    struct tally *t = tally_new();
    run_capture(DATA "cryptofeed-ce58c2a/BINANCE.ws.1.0", t, NULL, NULL);
    run_capture(DATA "cryptofeed-ce58c2a/BINANCE.http.0.0", t, NULL, NULL);
    run_capture(DATA "cryptofeed-ce58c2a/BINANCE.0", t, NULL, NULL);
    cr_expect_eq(t->errors, 0);
    cr_expect_eq(t->kind[AB_BINANCE_DEPTH_UPDATE], 177);
    cr_expect_eq(depth_count(t, "NKNUSDT"), 150);
    cr_expect_eq(depth_count(t, "LRCBTC"), 15);
    cr_expect_eq(depth_count(t, "BLZETH"), 10);
    cr_expect_eq(depth_count(t, "RUNEEUR"), 2);
    cr_expect_eq(t->kind[AB_BINANCE_BOOK_TICKER], 84);
    cr_expect_eq(t->kind[AB_BINANCE_KLINE], 2);
    cr_expect_eq(t->kind[AB_BINANCE_AGG_TRADE], 2);
    cr_assert_eq(t->n_snaps, 4);
    const char *syms[4] = {"NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"};
    const uint64_t ids[4] = {499869752u, 281916627u, 259345543u, 15602511u};
    for (size_t k = 0; k < 4; k++) {
        size_t i = 0;
        while (i < t->n_snaps && strcmp(t->snap_sym[i], syms[k]) != 0)
            i++;
        cr_assert_lt(i, t->n_snaps, "no snapshot for %s", syms[k]);
        cr_expect_eq(t->snap_id[i], ids[k]);
        cr_expect_geq(t->snap_bids[i] < t->snap_asks[i] ? t->snap_bids[i] : t->snap_asks[i], 174);
    }

    /* exchangeInfo: 1695 symbols, 1262 TRADING, 433 BREAK. */
    cr_assert_eq(t->exchange_info, 1);
    const struct ab_binance_exchange_info *info = &t->info;
    cr_expect_eq(info->server_time, 1633998511098);
    cr_expect_eq(info->n_symbols, 1695);
    cr_expect_eq(info->n_skipped, 0);
    size_t trading = 0, brk = 0, no_tick = 0, no_step = 0;
    for (size_t i = 0; i < info->n_symbols; i++) {
        trading += info->symbols[i].status == AB_BINANCE_STATUS_TRADING;
        brk += info->symbols[i].status == AB_BINANCE_STATUS_BREAK;
        no_tick += ab_dec_is_zero(info->symbols[i].tick_size);
        no_step += ab_dec_is_zero(info->symbols[i].step_size);
    }
    cr_expect_eq(trading, 1262);
    cr_expect_eq(brk, 433);
    cr_expect_eq(no_tick, 0);
    cr_expect_eq(no_step, 0);
    char buf[AB_DEC_STR_MAX];
    const struct ab_binance_symbol_info *si = ab_binance_exchange_info_find(info, "BTCUSDT");
    cr_assert_not_null(si);
    cr_expect_str_eq(si->base_asset, "BTC");
    cr_expect_str_eq(si->quote_asset, "USDT");
    cr_expect_str_eq(ab_binance_status_name(si->status), "TRADING");
    cr_expect_str_eq(fmt(si->tick_size, buf), "0.01");
    cr_expect_str_eq(fmt(si->step_size, buf), "0.00001");
    si = ab_binance_exchange_info_find(info, "NKNUSDT");
    cr_assert_not_null(si);
    cr_expect_str_eq(fmt(si->tick_size, buf), "0.0001");
    cr_expect_str_eq(fmt(si->step_size, buf), "1");
    si = ab_binance_exchange_info_find(info, "SHIBUSDT"); /* stepSize is "1.00" there */
    cr_assert_not_null(si);
    cr_expect_str_eq(fmt(si->tick_size, buf), "0.00000001");
    cr_expect_str_eq(fmt(si->step_size, buf), "1");
    cr_expect_null(ab_binance_exchange_info_find(info, "NOSUCHSYMBOL"));
    tally_free(t);
}

/* ---- recorded REST klines ----------------------------------------------- */

Test(binance_klines, python_binance_30m)
{
    size_t len;
    char *body =
        slurp(DATA "python-binance-c22c7de/klines_30m_2019-04-11_to_2019-04-21.json", &len);
    struct ab_candle *c = NULL;
    size_t n = 0;
    struct ab_decode_err e;
    int64_t last_close = 1555889400000 + 1799999;
    int rc = ab_binance_decode_klines(body, len, "BTCUSDT", AB_I_30M, last_close + 1, &c, &n, &e);
    cr_assert_eq(rc, 0, "%s", e.reason);
    cr_assert_eq(n, 500);
    cr_expect_eq(c[0].open_time, 1554991200000);
    cr_expect_eq(c[n - 1].open_time, 1555889400000);
    char buf[AB_DEC_STR_MAX];
    cr_expect_str_eq(fmt(c[0].open, buf), "4986.23");
    cr_expect_str_eq(fmt(c[0].high, buf), "5009");
    cr_expect_str_eq(fmt(c[0].low, buf), "4961.01");
    cr_expect_str_eq(fmt(c[0].close, buf), "5000.36");
    cr_expect_str_eq(fmt(c[0].volume, buf), "1176.52828");
    cr_expect_eq(c[0].close_time, 1554992999999);
    cr_expect_str_eq(fmt(c[0].quote_volume, buf), "5865414.08229088");
    cr_expect_eq(c[0].num_trades, 8094);
    cr_expect_str_eq(fmt(c[0].taker_buy_volume, buf), "585.13867");
    cr_expect_str_eq(fmt(c[0].taker_buy_quote_volume, buf), "2917410.36916521");
    cr_expect_eq(c[n - 1].num_trades, 2176);
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(c[i].symbol, "BTCUSDT");
        cr_expect_eq(c[i].interval, AB_I_30M);
        cr_expect(c[i].closed, "row %zu", i);
        cr_expect_eq(c[i].event_time, 0);
        cr_expect_eq(c[i].first_trade_id, -1);
        cr_expect_eq(c[i].last_trade_id, -1);
        if (i > 0)
            cr_expect_eq(c[i].open_time, c[i - 1].close_time + 1, "contiguous at %zu", i);
    }
    free(c);

    /* One ms before the last close time, that row is still open. */
    rc = ab_binance_decode_klines(body, len, "BTCUSDT", AB_I_30M, last_close, &c, &n, &e);
    cr_assert_eq(rc, 0);
    cr_expect(!c[n - 1].closed);
    cr_expect(c[n - 2].closed);
    free(c);

    /* The body is 30m data: reading it as 1h fails the alignment/close checks. */
    rc = ab_binance_decode_klines(body, len, "BTCUSDT", AB_I_1H, last_close, &c, &n, &e);
    cr_expect_eq(rc, AB_EVALIDATE);
    cr_expect_null(c);
    cr_expect_eq(n, 0);
    free(body);
}

Test(binance_klines, nautilus_1m_last_row_open)
{
    size_t len;
    char *body = slurp(DATA "nautilus-209a58e/http_spot_market_klines.json", &len);
    struct ab_candle *c = NULL;
    size_t n = 0;
    struct ab_decode_err e;
    int64_t last_open = 1634943780000 + 9 * 60000;
    int64_t last_close = last_open + 59999;
    /* Mid-way through the last minute: nine closed rows, the last one open. */
    int rc = ab_binance_decode_klines(body, len, "BTCUSDT", AB_I_1M, last_open + 30000, &c, &n, &e);
    cr_assert_eq(rc, 0, "%s", e.reason);
    cr_assert_eq(n, 10);
    cr_expect_eq(c[0].open_time, 1634943780000);
    cr_expect_eq(c[9].open_time, last_open);
    cr_expect_eq(c[9].close_time, last_close);
    cr_expect_eq(c[9].num_trades, 7);
    char buf[AB_DEC_STR_MAX];
    cr_expect_str_eq(fmt(c[9].volume, buf), "0.04734");
    cr_expect_str_eq(fmt(c[0].open, buf), "60685.22");
    for (size_t i = 0; i < 9; i++)
        cr_expect(c[i].closed, "row %zu", i);
    cr_expect(!c[9].closed);
    free(c);
    /* At exactly the close time the candle is still open; one ms later it is closed. */
    rc = ab_binance_decode_klines(body, len, "BTCUSDT", AB_I_1M, last_close, &c, &n, &e);
    cr_assert_eq(rc, 0);
    cr_expect(!c[9].closed);
    free(c);
    rc = ab_binance_decode_klines(body, len, "BTCUSDT", AB_I_1M, last_close + 1, &c, &n, &e);
    cr_assert_eq(rc, 0);
    cr_expect(c[9].closed);
    free(c);
    free(body);
}

/* ---- official docs examples --------------------------------------------- */

static char *dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert_not_null(s);
    return s;
}

static int decode_str(const char *s, struct ab_binance_msg *m, struct ab_decode_err *e)
{
    return ab_binance_decode_stream(s, strlen(s), m, e);
}

Test(binance_docs, every_example)
{
    size_t len;
    char *text = slurp(DATA "official-docs/doc_examples.json", &len);
    json_error_t je;
    json_t *doc = json_loadb(text, len, 0, &je);
    cr_assert_not_null(doc, "%s", je.text);
    free(text);
    char buf[AB_DEC_STR_MAX];
    size_t handled = 0;
    const char *key;
    json_t *val;
    json_object_foreach(doc, key, val)
    {
        char *s = dump(val);
        size_t sl = strlen(s);
        struct ab_binance_msg m = {0};
        struct ab_decode_err e = {0};
        int rc = 0;
        handled++;
        if (!strcmp(key, "_source")) {
        } else if (strstr(key, "_request")) {
            /* Client requests are not messages for the client. */
            rc = decode_str(s, &m, &e);
            cr_expect_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_IGNORED, "%s", key);
        } else if (!strcmp(key, "ws_subscribe_response") ||
                   !strcmp(key, "ws_unsubscribe_response")) {
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_RESULT);
            cr_expect(m.result.result_null);
            cr_expect_eq(m.result.id.kind, AB_BINANCE_ID_INT);
            cr_expect_eq(m.result.id.num, key[3] == 's' ? 1 : 312);
        } else if (!strcmp(key, "ws_list_subscriptions_response")) {
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_RESULT);
            cr_expect(!m.result.result_null);
            cr_expect_str_eq(m.result.result_json, "[\"btcusdt@aggTrade\"]");
            cr_expect_eq(m.result.id.num, 3);
        } else if (!strcmp(key, "ws_get_property_response")) {
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_RESULT);
            cr_expect_str_eq(m.result.result_json, "true");
            cr_expect_eq(m.result.id.num, 2);
        } else if (!strcmp(key, "ws_error_invalid_json")) {
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_WS_ERROR);
            cr_expect_eq(m.ws_error.code, 3);
            cr_expect_eq(m.ws_error.id.kind, AB_BINANCE_ID_NONE);
            cr_expect(strstr(m.ws_error.msg, "Invalid JSON") == m.ws_error.msg);
        } else if (!strncmp(key, "ws_server_shutdown", 18)) {
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_SERVER_SHUTDOWN);
            cr_expect_eq(m.shutdown.event_time, 1770123456789);
            cr_expect_str_eq(m.stream, strstr(key, "combined") ? "!serverShutdown" : "");
        } else if (!strcmp(key, "ws_aggTrade") || !strcmp(key, "ws_trade")) {
            bool agg = key[3] == 'a';
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, agg ? AB_BINANCE_AGG_TRADE : AB_BINANCE_TRADE);
            cr_expect_str_eq(m.trade.symbol, "BNBBTC");
            cr_expect_eq(m.trade.id, 12345);
            cr_expect_eq(m.trade.first_trade_id, agg ? 100 : 12345);
            cr_expect_eq(m.trade.last_trade_id, agg ? 105 : 12345);
            cr_expect_str_eq(fmt(m.trade.price, buf), "0.001");
            cr_expect_str_eq(fmt(m.trade.qty, buf), "100");
            cr_expect_eq(m.trade.event_time, 1672515782136);
            cr_expect_eq(m.trade.trade_time, 1672515782136);
            cr_expect(m.trade.buyer_maker);
        } else if (!strcmp(key, "ws_kline")) {
            /* The docs' illustrative kline has low 0.0015 above open 0.0010. */
            rc = decode_str(s, &m, &e);
            cr_expect_eq(rc, AB_EVALIDATE, "%s", key);
            cr_expect(strstr(e.reason, "low above open"), "%s", e.reason);
            /* Fixing the low makes it decode, with every field mapped. */
            json_t *fixed = json_deep_copy(val);
            json_object_set_new(json_object_get(fixed, "k"), "l", json_string("0.0010"));
            char *s2 = dump(fixed);
            json_decref(fixed);
            rc = decode_str(s2, &m, &e);
            free(s2);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_KLINE);
            cr_expect_str_eq(m.kline.symbol, "BNBBTC");
            cr_expect_eq(m.kline.interval, AB_I_1M);
            cr_expect_eq(m.kline.open_time, 1672515780000);
            cr_expect_eq(m.kline.close_time, 1672515839999);
            cr_expect_eq(m.kline.first_trade_id, 100);
            cr_expect_eq(m.kline.last_trade_id, 200);
            cr_expect_eq(m.kline.num_trades, 100);
            cr_expect(!m.kline.closed);
            cr_expect_str_eq(fmt(m.kline.close, buf), "0.002");
            cr_expect_str_eq(fmt(m.kline.high, buf), "0.0025");
            cr_expect_str_eq(fmt(m.kline.quote_volume, buf), "1");
            cr_expect_str_eq(fmt(m.kline.taker_buy_volume, buf), "500");
            cr_expect_str_eq(fmt(m.kline.taker_buy_quote_volume, buf), "0.5");
        } else if (!strcmp(key, "ws_bookTicker")) {
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_BOOK_TICKER);
            cr_expect_eq(m.book_ticker.update_id, 400900217u);
            cr_expect_str_eq(m.book_ticker.symbol, "BNBUSDT");
            cr_expect_str_eq(fmt(m.book_ticker.bid_price, buf), "25.3519");
            cr_expect_str_eq(fmt(m.book_ticker.bid_qty, buf), "31.21");
            cr_expect_str_eq(fmt(m.book_ticker.ask_price, buf), "25.3652");
            cr_expect_str_eq(fmt(m.book_ticker.ask_qty, buf), "40.66");
        } else if (!strcmp(key, "ws_partial_depth")) {
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_PARTIAL_DEPTH);
            cr_expect_str_eq(m.partial.symbol, "", "raw partial depth names no symbol");
            cr_expect_eq(m.partial.last_update_id, 160u);
            cr_assert_eq(m.partial.n_bids, 1);
            cr_assert_eq(m.partial.n_asks, 1);
            cr_expect_str_eq(fmt(m.partial.bids[0].price, buf), "0.0024");
            cr_expect_str_eq(fmt(m.partial.asks[0].qty, buf), "100");
        } else if (!strcmp(key, "ws_depthUpdate")) {
            rc = decode_str(s, &m, &e);
            cr_assert_eq(rc, 0, "%s: %s", key, e.reason);
            cr_expect_eq(m.kind, AB_BINANCE_DEPTH_UPDATE);
            cr_expect_eq(m.depth.first_id, 157u);
            cr_expect_eq(m.depth.last_id, 160u);
            cr_assert_eq(m.depth.n_bids, 1);
            cr_expect_str_eq(fmt(m.depth.bids[0].qty, buf), "10");
            cr_expect_str_eq(fmt(m.depth.asks[0].price, buf), "0.0026");
        } else if (!strcmp(key, "ws_combined_wrapper_shape")) {
            /* A placeholder: "data" is a string there, not an object. */
            rc = decode_str(s, &m, &e);
            cr_expect_eq(rc, AB_ETYPE);
            cr_expect(strstr(e.reason, "data"), "%s", e.reason);
        } else if (!strcmp(key, "rest_ping_response")) {
            rc = decode_str(s, &m, &e);
            cr_expect_eq(rc, 0);
            cr_expect_eq(m.kind, AB_BINANCE_IGNORED);
        } else if (!strcmp(key, "rest_time_response")) {
            int64_t ms = 0;
            rc = ab_binance_decode_server_time(s, sl, &ms, &e);
            cr_expect_eq(rc, 0, "%s", e.reason);
            cr_expect_eq(ms, 1499827319559);
        } else if (!strcmp(key, "rest_depth_response")) {
            struct ab_book_snapshot snap;
            rc = ab_binance_decode_depth(s, sl, "BNBBTC", &snap, &e);
            cr_assert_eq(rc, 0, "%s", e.reason);
            cr_expect_eq(snap.last_update_id, 1027024u);
            cr_assert_eq(snap.n_bids, 1);
            cr_assert_eq(snap.n_asks, 1);
            cr_expect_str_eq(fmt(snap.bids[0].qty, buf), "431");
            cr_expect_str_eq(fmt(snap.asks[0].price, buf), "4.000002");
            ab_book_snapshot_deinit(&snap);
        } else if (!strcmp(key, "rest_klines_response")) {
            /* One weekly candle opening Monday 2017-07-03. */
            struct ab_candle *c;
            size_t n;
            rc = ab_binance_decode_klines(s, sl, "BNBBTC", AB_I_1W, 1499644800000, &c, &n, &e);
            cr_assert_eq(rc, 0, "%s", e.reason);
            cr_assert_eq(n, 1);
            cr_expect(c[0].closed);
            cr_expect_eq(c[0].num_trades, 308);
            cr_expect_str_eq(fmt(c[0].volume, buf), "148976.11427815");
            free(c);
            rc = ab_binance_decode_klines(s, sl, "BNBBTC", AB_I_1D, 1499644800000, &c, &n, &e);
            cr_expect_eq(rc, AB_EVALIDATE, "a week is not a day");
            cr_expect(strstr(e.reason, "close time"), "%s", e.reason);
        } else if (!strcmp(key, "rest_error")) {
            int code = 0;
            char msg[64];
            rc = ab_binance_decode_error(s, sl, &code, msg, sizeof(msg), &e);
            cr_expect_eq(rc, 0, "%s", e.reason);
            cr_expect_eq(code, -1121);
            cr_expect_str_eq(msg, "Invalid symbol.");
        } else if (!strcmp(key, "exchangeInfo_PRICE_FILTER")) {
            char body[512];
            snprintf(body, sizeof(body),
                     "{\"serverTime\":1,\"symbols\":[{\"symbol\":\"BNBBTC\",\"status\":"
                     "\"TRADING\",\"baseAsset\":\"BNB\",\"quoteAsset\":\"BTC\",\"filters\":[%s,"
                     "%s]}]}",
                     s, "{\"filterType\":\"LOT_SIZE\",\"stepSize\":\"0.5\"}");
            struct ab_binance_exchange_info info;
            rc = ab_binance_decode_exchange_info(body, strlen(body), &info, &e);
            cr_assert_eq(rc, 0, "%s", e.reason);
            cr_assert_eq(info.n_symbols, 1);
            cr_expect_str_eq(fmt(info.symbols[0].tick_size, buf), "0.000001");
            ab_binance_exchange_info_deinit(&info);
        } else if (!strcmp(key, "exchangeInfo_LOT_SIZE")) {
            char body[512];
            snprintf(body, sizeof(body),
                     "{\"serverTime\":1,\"symbols\":[{\"symbol\":\"BNBBTC\",\"status\":"
                     "\"BREAK\",\"baseAsset\":\"BNB\",\"quoteAsset\":\"BTC\",\"filters\":[%s]}]}",
                     s);
            struct ab_binance_exchange_info info;
            rc = ab_binance_decode_exchange_info(body, strlen(body), &info, &e);
            cr_assert_eq(rc, 0, "%s", e.reason);
            cr_assert_eq(info.n_symbols, 1);
            cr_expect_eq(info.symbols[0].status, AB_BINANCE_STATUS_BREAK);
            cr_expect_str_eq(fmt(info.symbols[0].step_size, buf), "0.001");
            cr_expect(ab_dec_is_zero(info.symbols[0].tick_size), "no PRICE_FILTER");
            ab_binance_exchange_info_deinit(&info);
        } else if (!strncmp(key, "exchangeInfo_rateLimit_", 23)) {
            /* Rate limits are not decoded; the example is not a stream frame either. */
            rc = decode_str(s, &m, &e);
            cr_expect_eq(rc, 0);
            cr_expect_eq(m.kind, AB_BINANCE_IGNORED);
        } else {
            handled--;
            cr_expect_fail("doc example %s has no check", key);
        }
        ab_binance_msg_deinit(&m);
        free(s);
    }
    cr_expect_eq(handled, json_object_size(doc));
    cr_expect_eq(handled, 29);
    json_decref(doc);
}

/* ---- hostile input: field mutations ------------------------------------- */

/* A real closed BTCUSDT kline from cryptofeed-2997020. */
static const char *const kline_base =
    "{\"stream\":\"btcusdt@kline_1m\",\"data\":{\"e\":\"kline\",\"E\":1617566640068,\"s\":"
    "\"BTCUSDT\",\"k\":{\"t\":1617566580000,\"T\":1617566639999,\"s\":\"BTCUSDT\",\"i\":\"1m\","
    "\"f\":745522651,\"L\":745523670,\"o\":\"57994.60000000\",\"c\":\"57999.99000000\",\"h\":"
    "\"58018.03000000\",\"l\":\"57974.41000000\",\"v\":\"23.06712200\",\"n\":1020,\"x\":true,"
    "\"q\":\"1337913.58654308\",\"V\":\"11.41334700\",\"Q\":\"661954.86510045\",\"B\":\"0\"}}}";

static const char *const depth_base =
    "{\"stream\":\"dotusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1617566591307,"
    "\"s\":\"DOTUSDT\",\"U\":1513939202,\"u\":1513939205,\"b\":[[\"43.50830000\",\"7.00000000\"],"
    "[\"43.50500000\",\"0.00000000\"]],\"a\":[[\"43.60000000\",\"1.00000000\"]]}}";

static const char *const agg_base =
    "{\"stream\":\"btcusdt@aggTrade\",\"data\":{\"e\":\"aggTrade\",\"E\":1617566591315,\"s\":"
    "\"BTCUSDT\",\"a\":665076760,\"p\":\"58001.03000000\",\"q\":\"0.08620500\",\"f\":745522877,"
    "\"l\":745522877,\"T\":1617566591314,\"m\":true,\"M\":true}}";

static const char *const trade_base =
    "{\"e\":\"trade\",\"E\":1672515782136,\"s\":\"BNBBTC\",\"t\":12345,\"p\":\"0.001\",\"q\":"
    "\"100\",\"T\":1672515782136,\"m\":true,\"M\":true}";

static const char *const ticker_base =
    "{\"stream\":\"zilusdt@bookTicker\",\"data\":{\"u\":499822861,\"s\":\"ZILUSDT\",\"b\":"
    "\"0.21437000\",\"B\":\"2800.00000000\",\"a\":\"0.21449000\",\"A\":\"11400.00000000\"}}";

static const char *const partial_base =
    "{\"stream\":\"bnbbtc@depth5@100ms\",\"data\":{\"lastUpdateId\":160,\"bids\":[[\"0.0024\","
    "\"10\"],[\"0.0023\",\"5\"]],\"asks\":[[\"0.0026\",\"100\"],[\"0.0027\",\"1\"]]}}";

/* The object a dotted path ("k.t") lives in, relative to "data" when wrapped. */
static json_t *nav(json_t *root, const char *path, char *last, size_t cap)
{
    json_t *o = json_object_get(root, "data") ? json_object_get(root, "data") : root;
    const char *dot;
    while ((dot = strchr(path, '.'))) {
        char seg[32];
        size_t n = (size_t)(dot - path);
        cr_assert_lt(n, sizeof(seg));
        memcpy(seg, path, n);
        seg[n] = '\0';
        o = json_object_get(o, seg);
        cr_assert_not_null(o, "bad test path %s", path);
        path = dot + 1;
    }
    snprintf(last, cap, "%s", path);
    return o;
}

/* Decodes base with path set to val (stolen; NULL deletes the field). */
static int decode_mut(const char *base, const char *path, json_t *val, struct ab_binance_msg *m,
                      struct ab_decode_err *e)
{
    json_error_t je;
    json_t *root = json_loads(base, 0, &je);
    cr_assert_not_null(root, "test base: %s", je.text);
    char key[32];
    json_t *o = nav(root, path, key, sizeof(key));
    if (val)
        cr_assert_eq(json_object_set_new(o, key, val), 0);
    else
        cr_assert_eq(json_object_del(o, key), 0, "no field %s", path);
    char *s = dump(root);
    json_decref(root);
    int rc = ab_binance_decode_stream(s, strlen(s), m, e);
    free(s);
    return rc;
}

static void expect_mut(const char *base, const char *path, json_t *val, int code,
                       const char *needle)
{
    struct ab_binance_msg m;
    struct ab_decode_err e = {0};
    int rc = decode_mut(base, path, val, &m, &e);
    cr_expect_eq(rc, code, "%s: rc %d (%s), want %d (%s); reason \"%s\"", path, rc, ab_err_str(rc),
                 code, ab_err_str(code), e.reason);
    cr_expect_eq(e.code, code, "%s: err.code", path);
    cr_expect(strstr(e.reason, needle) != NULL, "%s: reason \"%s\" lacks \"%s\"", path, e.reason,
              needle);
    if (rc != 0)
        cr_expect_eq(m.kind, AB_BINANCE_IGNORED, "%s: a failed decode leaves a zeroed message",
                     path);
    ab_binance_msg_deinit(&m);
}

enum ftype { F_INT, F_DEC, F_STR, F_BOOL, F_OBJ, F_ARR };

struct field {
    const char *path;
    enum ftype type;
};

/* Wrong-typed replacements for a field of type t; n returned in *n. */
static json_t *wrong_value(enum ftype t, int variant)
{
    switch (t) {
    case F_INT:
        return variant == 0 ? json_string("1") : variant == 1 ? json_real(1.0) : json_true();
    case F_DEC:
        return variant == 0 ? json_real(1.5) : variant == 1 ? json_integer(1) : json_null();
    case F_STR:
        return variant == 0 ? json_integer(1) : variant == 1 ? json_null() : json_array();
    case F_BOOL:
        return variant == 0 ? json_integer(1) : variant == 1 ? json_string("true") : json_null();
    case F_OBJ:
        return variant == 0 ? json_integer(1) : variant == 1 ? json_array() : json_string("x");
    case F_ARR:
        return variant == 0 ? json_string("x") : variant == 1 ? json_object() : json_integer(0);
    }
    return NULL;
}

/* For every required field: missing is AB_EMISSING, each wrong type AB_ETYPE, both named. */
static void check_fields(const char *base, const struct field *f, size_t n)
{
    struct ab_binance_msg m;
    struct ab_decode_err e;
    int rc = ab_binance_decode_stream(base, strlen(base), &m, &e);
    cr_assert_eq(rc, 0, "base message must decode: %s", e.reason);
    ab_binance_msg_deinit(&m);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof(want), "missing field %s", f[i].path);
        expect_mut(base, f[i].path, NULL, AB_EMISSING, want);
        snprintf(want, sizeof(want), "%s: expected", f[i].path);
        for (int v = 0; v < 3; v++)
            expect_mut(base, f[i].path, wrong_value(f[i].type, v), AB_ETYPE, want);
    }
}

Test(binance_hostile, kline_fields)
{
    static const struct field f[] = {
        {"E", F_INT},    {"s", F_STR},   {"k", F_OBJ},   {"k.t", F_INT}, {"k.T", F_INT},
        {"k.s", F_STR},  {"k.i", F_STR}, {"k.f", F_INT}, {"k.L", F_INT}, {"k.o", F_DEC},
        {"k.c", F_DEC},  {"k.h", F_DEC}, {"k.l", F_DEC}, {"k.v", F_DEC}, {"k.n", F_INT},
        {"k.x", F_BOOL}, {"k.q", F_DEC}, {"k.V", F_DEC}, {"k.Q", F_DEC},
    };
    check_fields(kline_base, f, sizeof(f) / sizeof(f[0]));
}

Test(binance_hostile, depth_trade_ticker_fields)
{
    static const struct field depth[] = {
        {"E", F_INT}, {"s", F_STR}, {"U", F_INT}, {"u", F_INT}, {"b", F_ARR}, {"a", F_ARR},
    };
    static const struct field agg[] = {
        {"E", F_INT}, {"s", F_STR}, {"a", F_INT}, {"p", F_DEC},  {"q", F_DEC},
        {"f", F_INT}, {"l", F_INT}, {"T", F_INT}, {"m", F_BOOL},
    };
    static const struct field trade[] = {
        {"E", F_INT}, {"s", F_STR}, {"t", F_INT},  {"p", F_DEC},
        {"q", F_DEC}, {"T", F_INT}, {"m", F_BOOL},
    };
    static const struct field ticker[] = {
        {"u", F_INT}, {"s", F_STR}, {"b", F_DEC}, {"B", F_DEC}, {"a", F_DEC}, {"A", F_DEC},
    };
    static const struct field partial[] = {
        {"lastUpdateId", F_INT},
        {"bids", F_ARR},
        {"asks", F_ARR},
    };
    check_fields(depth_base, depth, sizeof(depth) / sizeof(depth[0]));
    check_fields(agg_base, agg, sizeof(agg) / sizeof(agg[0]));
    check_fields(trade_base, trade, sizeof(trade) / sizeof(trade[0]));
    check_fields(ticker_base, ticker, sizeof(ticker) / sizeof(ticker[0]));
    check_fields(partial_base, partial, sizeof(partial) / sizeof(partial[0]));
}

static json_t *levels(const char *p, const char *q)
{
    json_t *pair = json_array();
    if (p)
        json_array_append_new(pair, json_string(p));
    if (q)
        json_array_append_new(pair, json_string(q));
    json_t *arr = json_array();
    json_array_append_new(arr, pair);
    return arr;
}

Test(binance_hostile, kline_semantics)
{
    expect_mut(kline_base, "k.h", json_string("57000"), AB_EVALIDATE, "high below");
    expect_mut(kline_base, "k.l", json_string("59000"), AB_EVALIDATE, "low above");
    expect_mut(kline_base, "k.v", json_string("-1"), AB_EVALIDATE, "negative volume");
    expect_mut(kline_base, "k.V", json_string("24"), AB_EVALIDATE, "taker-buy volume");
    expect_mut(kline_base, "k.t", json_integer(1617566580001), AB_EVALIDATE, "not aligned");
    expect_mut(kline_base, "k.T", json_integer(1617566640000), AB_EVALIDATE, "close time");
    expect_mut(kline_base, "k.i", json_string("7m"), AB_EINVAL, "k.i: unknown interval");
    expect_mut(kline_base, "k.i", json_string("1m "), AB_EINVAL, "k.i: unknown interval");
    expect_mut(kline_base, "k.i", json_string("1M"), AB_EVALIDATE, "aligned");
    expect_mut(kline_base, "s", json_string("btcusdt"), AB_EINVAL, "s: not a valid symbol");
    expect_mut(kline_base, "s", json_string("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), AB_EINVAL,
               "s: not a valid symbol");
    expect_mut(kline_base, "s", json_string(""), AB_EINVAL, "s: not a valid symbol");
    expect_mut(kline_base, "s", json_string("BTC-USDT"), AB_EINVAL, "s: not a valid symbol");
    expect_mut(kline_base, "k.s", json_string("ETHUSDT"), AB_EVALIDATE, "k.s: does not match");
    expect_mut(kline_base, "k.o", json_string("1e5"), AB_EINVAL, "k.o: not a decimal");
    expect_mut(kline_base, "k.c", json_string("5."), AB_EINVAL, "k.c: not a decimal");
    expect_mut(kline_base, "k.c", json_string("+5"), AB_EINVAL, "k.c: not a decimal");
    expect_mut(kline_base, "k.c", json_string(" 5"), AB_EINVAL, "k.c: not a decimal");
    expect_mut(kline_base, "k.c", json_string("NaN"), AB_EINVAL, "k.c: not a decimal");
    expect_mut(kline_base, "k.c", json_string(""), AB_EINVAL, "k.c: not a decimal");
    expect_mut(kline_base, "k.c", json_string("0x10"), AB_EINVAL, "k.c: not a decimal");
    expect_mut(kline_base, "k.q", json_string("0.000000001"), AB_ERANGE, "k.q: decimal out");
    expect_mut(kline_base, "k.q", json_string("1234567890123456789012345"), AB_ERANGE, "k.q");
    expect_mut(kline_base, "k.n", json_integer(-1), AB_ERANGE, "k.n");
    expect_mut(kline_base, "k.f", json_integer(-2), AB_ERANGE, "k.f");
    expect_mut(kline_base, "k.L", json_integer(1), AB_EVALIDATE, "k.L: below k.f");
    expect_mut(kline_base, "k.t", json_integer(-60000), AB_ERANGE, "k.t");
    expect_mut(kline_base, "E", json_integer(-1), AB_ERANGE, "E");

    /* Payload symbol consistent with k.s but not with the stream name. */
    json_error_t je;
    json_t *root = json_loads(kline_base, 0, &je);
    json_t *d = json_object_get(root, "data");
    json_object_set_new(d, "s", json_string("ETHUSDT"));
    json_object_set_new(json_object_get(d, "k"), "s", json_string("ETHUSDT"));
    char *s = dump(root);
    json_decref(root);
    struct ab_binance_msg m;
    struct ab_decode_err e;
    cr_expect_eq(decode_str(s, &m, &e), AB_EVALIDATE);
    cr_expect(strstr(e.reason, "stream"), "%s", e.reason);
    free(s);

    /* f = L = -1 (no trades) is allowed. */
    root = json_loads(kline_base, 0, &je);
    json_t *k = json_object_get(json_object_get(root, "data"), "k");
    json_object_set_new(k, "f", json_integer(-1));
    json_object_set_new(k, "L", json_integer(-1));
    s = dump(root);
    json_decref(root);
    cr_expect_eq(decode_str(s, &m, &e), 0, "%s", e.reason);
    cr_expect_eq(m.kline.first_trade_id, -1);
    ab_binance_msg_deinit(&m);
    free(s);
}

Test(binance_hostile, depth_semantics)
{
    expect_mut(depth_base, "U", json_integer(0), AB_ERANGE, "U");
    expect_mut(depth_base, "u", json_integer(-5), AB_ERANGE, "u");
    expect_mut(depth_base, "U", json_integer(1513939206), AB_EVALIDATE, "U: 1513939206 is above u");
    expect_mut(depth_base, "b", levels("1", NULL), AB_ETYPE, "b[0]: expected 2 elements, got 1");
    expect_mut(depth_base, "a", json_pack("[[s,s,s]]", "1", "2", "3"), AB_ETYPE,
               "a[0]: expected 2 elements, got 3");
    expect_mut(depth_base, "b", json_pack("[s]", "x"), AB_ETYPE, "b[0]: expected a [price, qty]");
    expect_mut(depth_base, "b", json_pack("[[f,s]]", 1.5, "2"), AB_ETYPE, "b[0][0] (price)");
    expect_mut(depth_base, "b", json_pack("[[s,i]]", "1", 2), AB_ETYPE, "b[0][1] (qty)");
    expect_mut(depth_base, "b", levels("0", "1"), AB_EVALIDATE, "b[0][0] (price): must be pos");
    expect_mut(depth_base, "a", levels("-1", "1"), AB_EVALIDATE, "a[0][0] (price)");
    expect_mut(depth_base, "b", levels("1", "-1"), AB_EVALIDATE, "b[0][1] (qty): must not be");
    expect_mut(depth_base, "b", levels("1e5", "1"), AB_EINVAL, "b[0][0] (price): not a decimal");
    expect_mut(depth_base, "s", json_string("ETHUSDT"), AB_EVALIDATE, "stream");
    /* An error in asks after valid bids must not leak the bids array (ASan run). */
    expect_mut(depth_base, "a", levels("1", "x"), AB_EINVAL, "a[0][1] (qty)");

    /* Hostile ids: beyond int64 in the text itself. */
    struct ab_binance_msg m;
    struct ab_decode_err e;
    const char *big = "{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"BTCUSDT\",\"U\":"
                      "9223372036854775808,\"u\":9223372036854775809,\"b\":[],\"a\":[]}";
    cr_expect_eq(decode_str(big, &m, &e), AB_ERANGE, "%s", e.reason);
    const char *huge = "{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"BTCUSDT\",\"U\":1,\"u\":"
                       "18446744073709551616999,\"b\":[],\"a\":[]}";
    cr_expect_eq(decode_str(huge, &m, &e), AB_ERANGE, "%s", e.reason);
    /* The largest int64 is a valid id. */
    const char *max = "{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"BTCUSDT\",\"U\":1,\"u\":"
                      "9223372036854775807,\"b\":[],\"a\":[]}";
    cr_assert_eq(decode_str(max, &m, &e), 0, "%s", e.reason);
    cr_expect_eq(m.depth.last_id, (uint64_t)INT64_MAX);
    cr_expect_null(m.depth.bids);
    cr_expect_null(m.depth.asks);
    ab_binance_msg_deinit(&m);
}

Test(binance_hostile, trade_ticker_partial_semantics)
{
    expect_mut(agg_base, "a", json_integer(-5), AB_ERANGE, "a: -5 is below 0");
    expect_mut(agg_base, "p", json_string("0"), AB_EVALIDATE, "p: must be positive");
    expect_mut(agg_base, "q", json_string("-0.1"), AB_EVALIDATE, "q: must be positive");
    expect_mut(agg_base, "p", json_string("1e5"), AB_EINVAL, "p: not a decimal string");
    expect_mut(agg_base, "l", json_integer(1), AB_EVALIDATE, "l: below f");
    expect_mut(agg_base, "s", json_string("ETHUSDT"), AB_EVALIDATE, "stream");
    expect_mut(trade_base, "t", json_integer(-1), AB_ERANGE, "t");
    expect_mut(ticker_base, "u", json_integer(0), AB_ERANGE, "u");
    expect_mut(ticker_base, "b", json_string("-1"), AB_EVALIDATE, "b: must not be negative");
    expect_mut(ticker_base, "A", json_string("1.2.3"), AB_EINVAL, "A: not a decimal");
    expect_mut(partial_base, "bids", json_pack("[[s,s],[s,s]]", "1", "1", "2", "1"), AB_EVALIDATE,
               "bids[1]: price not below");
    expect_mut(partial_base, "asks", json_pack("[[s,s],[s,s]]", "2", "1", "2", "1"), AB_EVALIDATE,
               "asks[1]: price not above");
    expect_mut(partial_base, "bids", levels("0.0030", "1"), AB_EVALIDATE, "crossed");
    expect_mut(partial_base, "bids", levels("0.0020", "0"), AB_EVALIDATE, "bids[0][1] (qty)");

    struct ab_binance_msg m;
    struct ab_decode_err e;
    cr_assert_eq(decode_str(partial_base, &m, &e), 0, "%s", e.reason);
    cr_expect_eq(m.kind, AB_BINANCE_PARTIAL_DEPTH);
    cr_expect_str_eq(m.partial.symbol, "BNBBTC", "symbol from the stream name");
    cr_expect_eq(m.partial.n_bids, 2);
    ab_binance_msg_deinit(&m);
    /* Trades: the plain trade maps t to all three ids. */
    cr_assert_eq(decode_str(trade_base, &m, &e), 0, "%s", e.reason);
    cr_expect_eq(m.kind, AB_BINANCE_TRADE);
    cr_expect_eq(m.trade.first_trade_id, 12345);
    ab_binance_msg_deinit(&m);
}

/* ---- hostile input: whole frames ---------------------------------------- */

struct frame_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int code;
    const char *needle;
};

Test(binance_hostile, frames)
{
    static const struct frame_case cases[] = {
        {"", 0, AB_EJSON, "empty input"},
        {"not json", 0, AB_EJSON, "JSON:"},
        {"[1,2,3]", 0, AB_EJSON, "top level: expected an object"},
        {"[]", 0, AB_EJSON, "top level"},
        {"null", 0, AB_EJSON, "JSON:"},
        {"42", 0, AB_EJSON, "JSON:"},
        {"\"s\"", 0, AB_EJSON, "JSON:"},
        {"{\"e\":\"kline\"", 0, AB_ETRUNC, "JSON:"},
        {"{\"e\":\"kline\",\"E\":", 0, AB_ETRUNC, "JSON:"},
        {"{\"e\":\"kline\"} trailing", 0, AB_EJSON, "JSON:"},
        {"{\"e\":\"trade\",\"e\":\"kline\"}", 0, AB_EJSON, "duplicate"},
        {"{\"e\":5}", 0, AB_ETYPE, "e: expected a string"},
        {"{\"e\":\"aggTrade\",\"E\":1,\"s\":\"BTCUSDT\",\"a\":1,\"p\":1e400}", 0, AB_ERANGE,
         "JSON:"},
        {"{\"e\":\"aggTrade\",\"E\":1e400}", 0, AB_ERANGE, "JSON:"},
        {"{\"e\":\"aggTrade\",\"E\":1,\"s\":\"BTCUSDT\",\"a\":-9223372036854775809}", 0, AB_ERANGE,
         "JSON:"},
        {"{\"e\":\"aggTrade\",\"E\":1.0}", 0, AB_ETYPE, "E: expected an integer"},
        {"{\"e\":\"serverShutdown\"}", 0, AB_EMISSING, "missing field E"},
        {"{\"e\":\"serverShutdown\",\"E\":-1}", 0, AB_ERANGE, "E"},
        {"{\"s\":\"\\u0000\"}", 0, AB_EJSON, "JSON:"},
        {"{\"e\":\"aggTrade\"\0}", 17, AB_EJSON, "JSON:"},
        {"{\"s\":\"\xff\"}", 0, AB_EJSON, "JSON:"},
        {"{\"s\":\"\xc0\xaf\"}", 0, AB_EJSON, "JSON:"},
        {"{\"s\":\"\xed\xa0\x80\"}", 0, AB_EJSON, "JSON:"},
        {"{\"stream\":\"btcusdt@trade\",\"data\":[1]}", 0, AB_ETYPE, "data: expected an object"},
        {"{\"stream\":5,\"data\":{}}", 0, AB_ETYPE, "stream: expected a string"},
        {"{\"data\":{}}", 0, AB_EMISSING, "missing field stream"},
        {"{\"stream\":\"btcusdt@trade\"}", 0, AB_EMISSING, "missing field data"},
        {"{\"stream\":\"btcusdt@bookTicker\",\"data\":{}}", 0, AB_EMISSING, "missing field u"},
        {"{\"stream\":\"btcusdt@depth5\",\"data\":{}}", 0, AB_EMISSING,
         "missing field lastUpdateId"},
        {"{\"stream\":\"btc-usdt@depth5\",\"data\":{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}}",
         0, AB_EINVAL, "stream"},
        {"{\"result\":null,\"id\":1.5}", 0, AB_ETYPE, "id: expected"},
        {"{\"result\":null,\"id\":\"0123456789012345678901234567890123456789\"}", 0, AB_ERANGE,
         "id: string longer"},
        {"{\"id\":7}", 0, AB_EMISSING, "missing field result"},
        {"{\"code\":\"2\",\"msg\":\"x\"}", 0, AB_ETYPE, "code: expected an integer"},
        {"{\"code\":2}", 0, AB_EMISSING, "missing field msg"},
        {"{\"code\":2,\"msg\":5}", 0, AB_ETYPE, "msg: expected a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct frame_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        struct ab_binance_msg m;
        struct ab_decode_err e = {0};
        int rc = ab_binance_decode_stream(c->text, len, &m, &e);
        cr_expect_eq(rc, c->code, "case %zu (%.40s): rc %d (%s), want %d; reason \"%s\"", i,
                     c->text, rc, ab_err_str(rc), c->code, e.reason);
        cr_expect_eq(e.code, c->code, "case %zu", i);
        cr_expect(strstr(e.reason, c->needle) != NULL, "case %zu: reason \"%s\" lacks \"%s\"", i,
                  e.reason, c->needle);
        ab_binance_msg_deinit(&m);
    }
}

Test(binance_hostile, control_and_ignored)
{
    struct ab_binance_msg m;
    struct ab_decode_err e;
    cr_assert_eq(decode_str("{\"e\":\"24hrTicker\",\"E\":1,\"s\":\"BTCUSDT\"}", &m, &e), 0);
    cr_expect_eq(m.kind, AB_BINANCE_IGNORED);
    cr_expect_str_eq(m.event, "24hrTicker");
    cr_assert_eq(decode_str("{}", &m, &e), 0);
    cr_expect_eq(m.kind, AB_BINANCE_IGNORED);
    cr_assert_eq(decode_str("{\"result\":[\"a@b\"],\"id\":\"req-1\"}", &m, &e), 0);
    cr_expect_eq(m.kind, AB_BINANCE_RESULT);
    cr_expect_eq(m.result.id.kind, AB_BINANCE_ID_STR);
    cr_expect_str_eq(m.result.id.str, "req-1");
    cr_expect_str_eq(m.result.result_json, "[\"a@b\"]");
    cr_assert_eq(decode_str("{\"result\":null,\"id\":null}", &m, &e), 0);
    cr_expect_eq(m.result.id.kind, AB_BINANCE_ID_NONE);
    cr_expect(m.result.result_null);
    cr_assert_eq(decode_str("{\"code\":2,\"msg\":\"Invalid request\",\"id\":9}", &m, &e), 0);
    cr_expect_eq(m.kind, AB_BINANCE_WS_ERROR);
    cr_expect_eq(m.ws_error.code, 2);
    cr_expect_eq(m.ws_error.id.num, 9);
    cr_expect_str_eq(m.ws_error.msg, "Invalid request");

    /* A long LIST_SUBSCRIPTIONS result is cut, flagged, and NUL-terminated. */
    json_t *list = json_array();
    for (int i = 0; i < 100; i++)
        json_array_append_new(list, json_string("btcusdt@depth@100ms"));
    json_t *root = json_pack("{s:o,s:i}", "result", list, "id", 3);
    char *s = dump(root);
    json_decref(root);
    cr_assert_eq(decode_str(s, &m, &e), 0, "%s", e.reason);
    cr_expect(m.result.result_truncated);
    cr_expect_eq(strlen(m.result.result_json), AB_BINANCE_RESULT_MAX - 1);
    free(s);

    /* A long error message is cut at a character boundary. */
    char big[400];
    size_t p = (size_t)snprintf(big, sizeof(big), "{\"code\":1,\"msg\":\"");
    for (int i = 0; i < 100; i++) {
        memcpy(big + p, "\xc3\xa9", 2); /* é */
        p += 2;
    }
    snprintf(big + p, sizeof(big) - p, "\"}");
    cr_assert_eq(decode_str(big, &m, &e), 0, "%s", e.reason);
    size_t ml = strlen(m.ws_error.msg);
    cr_expect_leq(ml, (size_t)AB_BINANCE_TEXT_MAX - 1);
    cr_expect_eq(ml % 2, 0, "cut inside a UTF-8 character");
}

Test(binance_hostile, truncation_every_prefix)
{
    const char *bases[] = {kline_base, depth_base, agg_base, ticker_base, partial_base};
    for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
        size_t len = strlen(bases[b]);
        size_t trunc = 0;
        for (size_t n = 0; n < len; n++) {
            struct ab_binance_msg m;
            struct ab_decode_err e = {0};
            int rc = ab_binance_decode_stream(bases[b], n, &m, &e);
            cr_assert(rc == AB_ETRUNC || rc == AB_EJSON, "base %zu prefix %zu: rc %d (%s)", b, n,
                      rc, e.reason);
            cr_assert_neq(e.reason[0], '\0');
            trunc += rc == AB_ETRUNC;
            ab_binance_msg_deinit(&m);
        }
        cr_expect_geq(trunc, len / 2, "most prefixes are reported as truncated");
    }
}

Test(binance_hostile, nesting_and_size)
{
    struct ab_binance_msg m;
    struct ab_decode_err e;
    size_t n = 200000;
    char *deep = malloc(n + 1);
    cr_assert_not_null(deep);
    memset(deep, '[', n);
    deep[n] = '\0';
    cr_expect_eq(ab_binance_decode_stream(deep, n, &m, &e), AB_EJSON, "%s", e.reason);
    /* Deep objects inside an otherwise plausible frame. */
    size_t p = 0;
    p += (size_t)snprintf(deep, n, "{\"e\":\"kline\",\"E\":1,\"s\":\"BTCUSDT\",\"k\":");
    while (p + 10 < n - 100000)
        p += (size_t)snprintf(deep + p, n - p, "{\"k\":");
    cr_expect_eq(ab_binance_decode_stream(deep, p, &m, &e), AB_EJSON, "%s", e.reason);
    /* Nesting below jansson's limit parses, then fails on the type of k. */
    p = (size_t)snprintf(deep, n, "{\"e\":\"kline\",\"E\":1,\"s\":\"BTCUSDT\",\"k\":");
    for (int i = 0; i < 500; i++)
        deep[p++] = '[';
    for (int i = 0; i < 500; i++)
        deep[p++] = ']';
    deep[p++] = '}';
    cr_expect_eq(ab_binance_decode_stream(deep, p, &m, &e), AB_ETYPE, "%s", e.reason);
    cr_expect(strstr(e.reason, "k: expected an object"), "%s", e.reason);
    free(deep);

    /* A 10 MB symbol and a 10 MB price are rejected by length, not scanned. */
    size_t big = 10u * 1024 * 1024;
    char *buf = malloc(big + 256);
    cr_assert_not_null(buf);
    p = (size_t)snprintf(buf, 256, "{\"e\":\"aggTrade\",\"E\":1,\"s\":\"");
    memset(buf + p, 'A', big);
    p += big;
    p += (size_t)snprintf(buf + p, 64, "\"}");
    cr_expect_eq(ab_binance_decode_stream(buf, p, &m, &e), AB_EINVAL, "%s", e.reason);
    cr_expect(strstr(e.reason, "s: not a valid symbol"), "%s", e.reason);
    p = (size_t)snprintf(buf, 256,
                         "{\"e\":\"aggTrade\",\"E\":1,\"s\":\"BTCUSDT\",\"a\":1,\"p\":\"");
    memset(buf + p, '1', big);
    p += big;
    p += (size_t)snprintf(buf + p, 64, "\"}");
    cr_expect_eq(ab_binance_decode_stream(buf, p, &m, &e), AB_ERANGE, "%s", e.reason);
    cr_expect(strstr(e.reason, "p: decimal string too long"), "%s", e.reason);
    free(buf);

    /* A frame above the cap is refused before parsing. */
    size_t over = AB_BINANCE_FRAME_MAX + 1;
    buf = malloc(over);
    cr_assert_not_null(buf);
    memset(buf, ' ', over);
    cr_expect_eq(ab_binance_decode_stream(buf, over, &m, &e), AB_ERANGE);
    cr_expect(strstr(e.reason, "cap"), "%s", e.reason);
    free(buf);
}

/* ---- hostile REST bodies ------------------------------------------------ */

struct body_case {
    const char *body;
    int code;
    const char *needle;
};

Test(binance_hostile, depth_snapshot)
{
    static const struct body_case cases[] = {
        {"[]", AB_EJSON, "top level"},
        {"{\"bids\":[],\"asks\":[]}", AB_EMISSING, "missing field lastUpdateId"},
        {"{\"lastUpdateId\":\"1\",\"bids\":[],\"asks\":[]}", AB_ETYPE, "lastUpdateId: expected"},
        {"{\"lastUpdateId\":-1,\"bids\":[],\"asks\":[]}", AB_ERANGE, "lastUpdateId"},
        {"{\"lastUpdateId\":1,\"asks\":[]}", AB_EMISSING, "missing field bids"},
        {"{\"lastUpdateId\":1,\"bids\":[]}", AB_EMISSING, "missing field asks"},
        {"{\"lastUpdateId\":1,\"bids\":{},\"asks\":[]}", AB_ETYPE, "bids: expected an array"},
        {"{\"lastUpdateId\":1,\"bids\":[[\"5\",\"1\"],[\"6\",\"1\"]],\"asks\":[]}", AB_EVALIDATE,
         "bids[1]: price not below bids[0]"},
        {"{\"lastUpdateId\":1,\"bids\":[[\"5\",\"1\"],[\"5\",\"1\"]],\"asks\":[]}", AB_EVALIDATE,
         "bids[1]"},
        {"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[[\"6\",\"1\"],[\"5\",\"1\"]]}", AB_EVALIDATE,
         "asks[1]: price not above asks[0]"},
        {"{\"lastUpdateId\":1,\"bids\":[[\"5\",\"0\"]],\"asks\":[]}", AB_EVALIDATE,
         "bids[0][1] (qty): must be positive"},
        {"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[[\"5\",\"-2\"]]}", AB_EVALIDATE,
         "asks[0][1] (qty)"},
        {"{\"lastUpdateId\":1,\"bids\":[[\"5\",\"1\"]],\"asks\":[[\"5\",\"1\"]]}", AB_EVALIDATE,
         "crossed"},
        {"{\"lastUpdateId\":1,\"bids\":[[\"5\",\"1\",[]]],\"asks\":[]}", AB_ETYPE,
         "bids[0]: expected 2 elements, got 3"},
        {"{\"lastUpdateId\":1,\"bids\":[[5.0,\"1\"]],\"asks\":[]}", AB_ETYPE,
         "bids[0][0] (price): expected a decimal string"},
        {"{\"lastUpdateId\":1,\"bids\":[[\"5e1\",\"1\"]],\"asks\":[]}", AB_EINVAL,
         "bids[0][0] (price): not a decimal string"},
        {"{\"lastUpdateId\":1,\"bids\":[],\"asks\":[]", AB_ETRUNC, "JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ab_book_snapshot s;
        struct ab_decode_err e = {0};
        int rc = ab_binance_decode_depth(cases[i].body, strlen(cases[i].body), "BTCUSDT", &s, &e);
        cr_expect_eq(rc, cases[i].code, "case %zu: rc %d, reason \"%s\"", i, rc, e.reason);
        cr_expect(strstr(e.reason, cases[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
                  e.reason, cases[i].needle);
        cr_expect_null(s.bids, "case %zu: nothing owned on failure", i);
        cr_expect_null(s.asks);
        ab_book_snapshot_deinit(&s);
    }
    struct ab_book_snapshot s;
    struct ab_decode_err e;
    const char *empty = "{\"lastUpdateId\":0,\"bids\":[],\"asks\":[]}";
    cr_assert_eq(ab_binance_decode_depth(empty, strlen(empty), "BTCUSDT", &s, &e), 0);
    cr_expect_eq(s.n_bids + s.n_asks, 0);
    cr_expect_str_eq(s.symbol, "BTCUSDT");
    ab_book_snapshot_deinit(&s);
    cr_expect_eq(ab_binance_decode_depth(empty, strlen(empty), "btcusdt", &s, &e), AB_EINVAL);
    cr_expect(strstr(e.reason, "symbol"), "%s", e.reason);
    cr_expect_eq(ab_binance_decode_depth(empty, strlen(empty), NULL, &s, &e), AB_EINVAL);

    /* More levels than the cap. */
    json_t *bids = json_array();
    for (int i = AB_BINANCE_SNAPSHOT_LEVELS_MAX + 1; i > 0; i--) {
        char p[16];
        snprintf(p, sizeof(p), "%d", i);
        json_array_append_new(bids, json_pack("[s,s]", p, "1"));
    }
    json_t *root = json_pack("{s:i,s:o,s:[]}", "lastUpdateId", 1, "bids", bids, "asks");
    char *body = dump(root);
    json_decref(root);
    cr_expect_eq(ab_binance_decode_depth(body, strlen(body), "BTCUSDT", &s, &e), AB_ERANGE);
    cr_expect(strstr(e.reason, "bids: 5001 levels exceed"), "%s", e.reason);
    free(body);
}

static const char *const row_ok = "[1499040000000,\"0.01634790\",\"0.80000000\",\"0.01575800\","
                                  "\"0.01577100\",\"148976.11427815\",1499644799999,"
                                  "\"2434.19055334\",308,\"1756.87402397\",\"28.46694368\",\"0\"]";

static int klines_str(const char *body, struct ab_candle **c, size_t *n, struct ab_decode_err *e)
{
    return ab_binance_decode_klines(body, strlen(body), "BNBBTC", AB_I_1W, 0, c, n, e);
}

static void expect_row_mut(size_t col, json_t *val, int code, const char *needle)
{
    json_error_t je;
    json_t *row = json_loads(row_ok, 0, &je);
    cr_assert_not_null(row);
    json_array_set_new(row, col, val);
    json_t *arr = json_array();
    json_array_append_new(arr, row);
    char *body = dump(arr);
    json_decref(arr);
    struct ab_candle *c = (struct ab_candle *)1;
    size_t n = 99;
    struct ab_decode_err e = {0};
    int rc = klines_str(body, &c, &n, &e);
    cr_expect_eq(rc, code, "col %zu: rc %d, reason \"%s\"", col, rc, e.reason);
    cr_expect(strstr(e.reason, needle) != NULL, "col %zu: \"%s\" lacks \"%s\"", col, e.reason,
              needle);
    cr_expect_null(c);
    cr_expect_eq(n, 0);
    free(body);
}

Test(binance_hostile, klines_body)
{
    static const char *const names[11] = {
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_volume",
        "num_trades",
        "taker_buy_volume",
        "taker_buy_quote_volume",
    };
    static const bool is_int[11] = {1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0};
    for (size_t col = 0; col < 11; col++) {
        char want[64];
        snprintf(want, sizeof(want), "klines[0].%s: expected", names[col]);
        expect_row_mut(col, is_int[col] ? json_string("1") : json_real(1.5), AB_ETYPE, want);
        expect_row_mut(col, json_null(), AB_ETYPE, want);
    }
    expect_row_mut(2, json_string("0.01"), AB_EVALIDATE, "klines[0]: high below");
    expect_row_mut(3, json_string("0.9"), AB_EVALIDATE, "klines[0]: low above");
    expect_row_mut(5, json_string("-1"), AB_EVALIDATE, "negative volume");
    expect_row_mut(0, json_integer(1499040000001), AB_EVALIDATE, "not aligned");
    expect_row_mut(6, json_integer(1499644800000), AB_EVALIDATE, "close time");
    expect_row_mut(1, json_string("1e5"), AB_EINVAL, "klines[0].open: not a decimal");
    expect_row_mut(8, json_integer(-3), AB_ERANGE, "klines[0].num_trades");

    struct ab_candle *c;
    size_t n;
    struct ab_decode_err e;
    cr_expect_eq(klines_str("{}", &c, &n, &e), AB_EJSON);
    cr_expect(strstr(e.reason, "top level"), "%s", e.reason);
    cr_expect_eq(klines_str("[5]", &c, &n, &e), AB_ETYPE);
    cr_expect(strstr(e.reason, "klines[0]: expected an array"), "%s", e.reason);
    cr_expect_eq(klines_str("[[1,\"1\"]]", &c, &n, &e), AB_ETYPE);
    cr_expect(strstr(e.reason, "klines[0]: expected 12 elements, got 2"), "%s", e.reason);
    cr_assert_eq(klines_str("[]", &c, &n, &e), 0);
    cr_expect_eq(n, 0);
    cr_expect_null(c);

    char body[1024];
    snprintf(body, sizeof(body), "[%s,%s]", row_ok, row_ok);
    cr_expect_eq(klines_str(body, &c, &n, &e), AB_EVALIDATE);
    cr_expect(strstr(e.reason, "klines[1]: open time not after"), "%s", e.reason);
    cr_expect_eq(
        ab_binance_decode_klines(row_ok, strlen(row_ok), "BNBBTC", AB_I_COUNT, 0, &c, &n, &e),
        AB_EINVAL);
    cr_expect(strstr(e.reason, "interval"), "%s", e.reason);
    cr_expect_eq(ab_binance_decode_klines(row_ok, strlen(row_ok), "bnb", AB_I_1W, 0, &c, &n, &e),
                 AB_EINVAL);
    cr_expect(strstr(e.reason, "symbol"), "%s", e.reason);

    /* More rows than the cap. */
    json_t *arr = json_array();
    for (int i = 0; i <= AB_BINANCE_KLINES_MAX; i++)
        json_array_append_new(arr, json_array());
    char *big = dump(arr);
    json_decref(arr);
    cr_expect_eq(klines_str(big, &c, &n, &e), AB_ERANGE);
    cr_expect(strstr(e.reason, "cap"), "%s", e.reason);
    free(big);
}

Test(binance_hostile, error_time_and_exchange_info)
{
    int code = 0;
    char msg[8];
    struct ab_decode_err e;
    const char *ok = "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}";
    cr_assert_eq(ab_binance_decode_error(ok, strlen(ok), &code, msg, sizeof(msg), &e), 0);
    cr_expect_eq(code, -1121);
    cr_expect_str_eq(msg, "Invalid", "cut to the buffer");
    static const struct body_case errs[] = {
        {"{\"code\":-1121}", AB_EMISSING, "missing field msg"},
        {"{\"msg\":\"x\"}", AB_EMISSING, "missing field code"},
        {"{\"code\":\"-1121\",\"msg\":\"x\"}", AB_ETYPE, "code: expected an integer"},
        {"{\"code\":-1121,\"msg\":null}", AB_ETYPE, "msg: expected a string"},
        {"{\"code\":99999999999,\"msg\":\"x\"}", AB_ERANGE, "code"},
        {"[]", AB_EJSON, "top level"},
        {"<html>", AB_EJSON, "JSON"},
    };
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        int rc = ab_binance_decode_error(errs[i].body, strlen(errs[i].body), &code, msg,
                                         sizeof(msg), &e);
        cr_expect_eq(rc, errs[i].code, "error case %zu: %s", i, e.reason);
        cr_expect(strstr(e.reason, errs[i].needle), "error case %zu: %s", i, e.reason);
    }

    int64_t ms = 0;
    static const struct body_case times[] = {
        {"{}", AB_EMISSING, "missing field serverTime"},
        {"{\"serverTime\":\"1\"}", AB_ETYPE, "serverTime: expected an integer"},
        {"{\"serverTime\":1.5}", AB_ETYPE, "serverTime"},
        {"{\"serverTime\":-1}", AB_ERANGE, "serverTime"},
        {"[1]", AB_EJSON, "top level"},
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int rc = ab_binance_decode_server_time(times[i].body, strlen(times[i].body), &ms, &e);
        cr_expect_eq(rc, times[i].code, "time case %zu: %s", i, e.reason);
        cr_expect(strstr(e.reason, times[i].needle), "time case %zu: %s", i, e.reason);
    }

    struct ab_binance_exchange_info info;
    static const struct body_case infos[] = {
        {"{\"serverTime\":1}", AB_EMISSING, "missing field symbols"},
        {"{\"serverTime\":1,\"symbols\":{}}", AB_ETYPE, "symbols: expected an array"},
        {"{\"symbols\":[]}", AB_EMISSING, "missing field serverTime"},
        {"{\"serverTime\":1,\"symbols\":[1]}", AB_ETYPE, "symbols[0]: expected an object"},
        {"{\"serverTime\":1,\"symbols\":[{\"symbol\":\"A\",\"status\":\"TRADING\","
         "\"baseAsset\":\"A\",\"quoteAsset\":\"B\"}]}",
         AB_EMISSING, "missing field symbols[0].filters"},
        {"{\"serverTime\":1,\"symbols\":[{\"symbol\":\"A\",\"status\":5,"
         "\"baseAsset\":\"A\",\"quoteAsset\":\"B\",\"filters\":[]}]}",
         AB_ETYPE, "symbols[0].status: expected a string"},
        {"{\"serverTime\":1,\"symbols\":[{\"symbol\":\"A\",\"status\":\"TRADING\","
         "\"baseAsset\":\"A\",\"quoteAsset\":\"B\",\"filters\":[{\"filterType\":\"PRICE_FILTER\","
         "\"tickSize\":\"x\"}]}]}",
         AB_EINVAL, "symbols[0].filters[0].tickSize: not a decimal"},
        {"{\"serverTime\":1,\"symbols\":[{\"symbol\":\"A\",\"status\":\"TRADING\","
         "\"baseAsset\":\"A\",\"quoteAsset\":\"B\",\"filters\":[{\"filterType\":\"LOT_SIZE\","
         "\"stepSize\":0.1}]}]}",
         AB_ETYPE, "symbols[0].filters[0].stepSize: expected a decimal"},
        {"{\"serverTime\":1,\"symbols\":[{\"symbol\":\"A\",\"status\":\"TRADING\","
         "\"baseAsset\":\"A\",\"quoteAsset\":\"B\",\"filters\":[{\"filterType\":\"LOT_SIZE\"}]}]}",
         AB_EMISSING, "missing field symbols[0].filters[0].stepSize"},
    };
    for (size_t i = 0; i < sizeof(infos) / sizeof(infos[0]); i++) {
        int rc = ab_binance_decode_exchange_info(infos[i].body, strlen(infos[i].body), &info, &e);
        cr_expect_eq(rc, infos[i].code, "info case %zu: %s", i, e.reason);
        cr_expect(strstr(e.reason, infos[i].needle), "info case %zu: %s", i, e.reason);
        cr_expect_null(info.symbols);
    }
    /* Names we cannot hold are skipped and counted, the rest decoded. */
    const char *mixed =
        "{\"serverTime\":5,\"symbols\":["
        "{\"symbol\":\"\xe5\xb8\x81USDT\",\"status\":\"TRADING\",\"baseAsset\":\"\xe5\xb8\x81\","
        "\"quoteAsset\":\"USDT\",\"filters\":[]},"
        "{\"symbol\":\"ETHBTC\",\"status\":\"HALT\",\"baseAsset\":\"ETH\",\"quoteAsset\":\"BTC\","
        "\"filters\":[{\"filterType\":\"PRICE_FILTER\",\"tickSize\":\"0.000001\"}]},"
        "{\"symbol\":\"XYZBTC\",\"status\":\"PRE_TRADING\",\"baseAsset\":\"XYZ\","
        "\"quoteAsset\":\"BTC\",\"filters\":[]}]}";
    cr_assert_eq(ab_binance_decode_exchange_info(mixed, strlen(mixed), &info, &e), 0, "%s",
                 e.reason);
    cr_expect_eq(info.server_time, 5);
    cr_expect_eq(info.n_symbols, 2);
    cr_expect_eq(info.n_skipped, 1);
    cr_expect_str_eq(info.symbols[0].symbol, "ETHBTC");
    cr_expect_eq(info.symbols[0].status, AB_BINANCE_STATUS_HALT);
    cr_expect_eq(info.symbols[1].status, AB_BINANCE_STATUS_OTHER);
    cr_expect_str_eq(ab_binance_status_name(AB_BINANCE_STATUS_OTHER), "OTHER");
    ab_binance_exchange_info_deinit(&info);
    ab_binance_exchange_info_deinit(NULL);
    ab_binance_msg_deinit(NULL);
}

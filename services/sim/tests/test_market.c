/* Unit tests of the simulator's pure market model (services/sim/market.c). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "services/sim/market.h"

/* 2024-01-01T00:00:00Z: aligned to every fixed interval up to 1d, a Monday. */
#define T0 1704067200000LL

static struct market *make(uint64_t seed, uint64_t freeze_after)
{
    struct market_cfg cfg = {.seed = seed, .start_time = T0, .freeze_after = freeze_after};
    cfg.n_symbols = 2;
    cfg.symbols[0] = "BTCUSDT";
    cfg.symbols[1] = "ETHUSDT";
    struct market *m = NULL;
    cr_assert_eq(market_new(&cfg, &m), 0);
    return m;
}

/* FNV-1a over a textual rendering of every event field. */
struct digest {
    uint64_t h;
    size_t n;
    size_t kinds[4];
};

static void mix(struct digest *d, const char *s)
{
    for (; *s; s++)
        d->h = (d->h ^ (unsigned char)*s) * 1099511628211ULL;
}

static void mix_dec(struct digest *d, struct ab_dec v)
{
    char buf[AB_DEC_STR_MAX];
    ab_dec_format_fixed(v, 8, buf);
    mix(d, buf);
    mix(d, ",");
}

static void digest_cb(const struct market_event *ev, void *ud)
{
    struct digest *d = ud;
    char buf[128];
    snprintf(buf, sizeof(buf), "%d|%zu|%" PRId64 "|", (int)ev->kind, ev->sym, ev->time);
    mix(d, buf);
    d->n++;
    d->kinds[ev->kind]++;
    switch (ev->kind) {
    case MARKET_EV_TRADE:
        snprintf(buf, sizeof(buf), "%" PRId64 ",%" PRId64 ",%" PRId64 ",%d,", ev->u.trade.id,
                 ev->u.trade.agg_id, ev->u.trade.time, ev->u.trade.buyer_maker);
        mix(d, buf);
        mix_dec(d, ev->u.trade.price);
        mix_dec(d, ev->u.trade.qty);
        break;
    case MARKET_EV_BOOK_TICKER:
        snprintf(buf, sizeof(buf), "%" PRIu64 ",", ev->u.ticker.update_id);
        mix(d, buf);
        mix_dec(d, ev->u.ticker.bid.price);
        mix_dec(d, ev->u.ticker.ask.qty);
        break;
    case MARKET_EV_DEPTH:
        snprintf(buf, sizeof(buf), "%d,%" PRIu64 ",%" PRIu64 ",", ev->u.depth.speed_ms,
                 ev->u.depth.first_id, ev->u.depth.last_id);
        mix(d, buf);
        for (size_t i = 0; i < ev->u.depth.n_bids; i++) {
            mix_dec(d, ev->u.depth.bids[i].price);
            mix_dec(d, ev->u.depth.bids[i].qty);
        }
        for (size_t i = 0; i < ev->u.depth.n_asks; i++) {
            mix_dec(d, ev->u.depth.asks[i].price);
            mix_dec(d, ev->u.depth.asks[i].qty);
        }
        break;
    case MARKET_EV_KLINE: {
        const struct ab_candle *c = ev->u.kline.candle;
        snprintf(buf, sizeof(buf), "%d,%" PRId64 ",%" PRId64 ",%" PRId64 ",%d,", (int)c->interval,
                 c->open_time, c->num_trades, c->last_trade_id, c->closed);
        mix(d, buf);
        mix_dec(d, c->close);
        mix_dec(d, c->quote_volume);
        break;
    }
    }
}

Test(market, same_seed_same_events_whatever_the_slicing)
{
    struct market *a = make(42, 0), *b = make(42, 0);
    struct digest da = {1469598103934665603ULL, 0, {0}}, db = da;
    /* a: one big jump; b: ragged small steps that often end mid-step. */
    cr_assert_eq(market_advance(a, T0 + 120000, digest_cb, &da), 0);
    for (int64_t t = T0; t <= T0 + 120000; t += 37)
        cr_assert_eq(market_advance(b, t, digest_cb, &db), 0);
    cr_assert_eq(market_advance(b, T0 + 120000, digest_cb, &db), 0);
    cr_assert_gt(da.n, 1000);
    cr_assert_eq(da.n, db.n);
    cr_assert_eq(da.h, db.h);
    for (int k = 0; k < 4; k++)
        cr_assert_gt(da.kinds[k], 0, "event kind %d never happened", k);
    cr_assert_eq(market_time(a), T0 + 120000);
    market_free(a);
    market_free(b);
}

Test(market, different_seed_different_events)
{
    struct market *a = make(1, 0), *b = make(2, 0);
    struct digest da = {1469598103934665603ULL, 0, {0}}, db = da;
    market_advance(a, T0 + 10000, digest_cb, &da);
    market_advance(b, T0 + 10000, digest_cb, &db);
    cr_assert_neq(da.h, db.h);
    market_free(a);
    market_free(b);
}

Test(market, bad_configs_are_refused)
{
    struct market *m = NULL;
    struct market_cfg cfg = {.seed = 1, .start_time = T0};
    cr_assert_eq(market_new(&cfg, &m), AB_EINVAL);
    cfg.n_symbols = 2;
    cfg.symbols[0] = "BTCUSDT";
    cfg.symbols[1] = "BTCUSDT";
    cr_assert_eq(market_new(&cfg, &m), AB_EINVAL);
    cfg.symbols[1] = "btcusdt";
    cr_assert_eq(market_new(&cfg, &m), AB_EINVAL);
    cfg.symbols[1] = "XRPUSDT"; /* unknown symbols get a generated price */
    cr_assert_eq(market_new(&cfg, &m), 0);
    cr_assert_str_eq(market_symbol(m, 1)->base, "XRP");
    cr_assert_str_eq(market_symbol(m, 1)->quote, "USDT");
    cr_assert_gt(market_symbol(m, 1)->start_price.v, 0);
    market_free(m);
}

/* ---- a local book rebuilt from the depth events ---- */

#define LOCAL_MAX 8192

struct local_book {
    struct ab_level side[2][LOCAL_MAX];
    size_t n[2];
};

static void local_set(struct local_book *b, int side, struct ab_level lv)
{
    size_t i;
    for (i = 0; i < b->n[side]; i++)
        if (ab_dec_cmp(b->side[side][i].price, lv.price) == 0)
            break;
    if (ab_dec_is_zero(lv.qty)) {
        if (i < b->n[side])
            b->side[side][i] = b->side[side][--b->n[side]];
        return;
    }
    if (i == b->n[side]) {
        cr_assert_lt(b->n[side], LOCAL_MAX);
        b->n[side]++;
    }
    b->side[side][i] = lv;
}

static int cmp_desc(const void *pa, const void *pb)
{
    return ab_dec_cmp(((const struct ab_level *)pb)->price, ((const struct ab_level *)pa)->price);
}

static int cmp_asc(const void *pa, const void *pb)
{
    return ab_dec_cmp(((const struct ab_level *)pa)->price, ((const struct ab_level *)pb)->price);
}

struct seq_check {
    uint64_t last_u[2][2]; /* [sym][speed 100 / 1000] */
    size_t events[2][2];
    struct local_book *book; /* rebuilt for symbol 0 from the 100 ms stream */
    int64_t tick_units;
};

static void seq_cb(const struct market_event *ev, void *ud)
{
    struct seq_check *c = ud;
    if (ev->kind != MARKET_EV_DEPTH)
        return;
    int k = ev->u.depth.speed_ms == 100 ? 0 : 1;
    cr_assert(ev->u.depth.speed_ms == 100 || ev->u.depth.speed_ms == 1000);
    cr_assert_eq(ev->u.depth.first_id, c->last_u[ev->sym][k] + 1,
                 "gap: U %" PRIu64 " after u %" PRIu64, ev->u.depth.first_id,
                 c->last_u[ev->sym][k]);
    cr_assert_geq(ev->u.depth.last_id, ev->u.depth.first_id);
    c->last_u[ev->sym][k] = ev->u.depth.last_id;
    c->events[ev->sym][k]++;
    if (k == 1)
        cr_assert_eq(ev->time % 1000, 0);
    /* Levels are sorted best first and each appears once. */
    for (size_t i = 1; i < ev->u.depth.n_bids; i++)
        cr_assert_gt(ab_dec_cmp(ev->u.depth.bids[i - 1].price, ev->u.depth.bids[i].price), 0);
    for (size_t i = 1; i < ev->u.depth.n_asks; i++)
        cr_assert_lt(ab_dec_cmp(ev->u.depth.asks[i - 1].price, ev->u.depth.asks[i].price), 0);
    if (ev->sym == 0 && k == 0) {
        for (size_t i = 0; i < ev->u.depth.n_bids; i++) {
            cr_assert_eq(ev->u.depth.bids[i].price.v % c->tick_units, 0);
            local_set(c->book, 0, ev->u.depth.bids[i]);
        }
        for (size_t i = 0; i < ev->u.depth.n_asks; i++)
            local_set(c->book, 1, ev->u.depth.asks[i]);
    }
}

static struct ab_level dbids[MARKET_DEPTH_MAX], dasks[MARKET_DEPTH_MAX];

Test(market, depth_ids_are_continuous_and_rebuild_the_book)
{
    struct market *m = make(7, 0);
    struct seq_check *c = calloc(1, sizeof(*c));
    c->book = calloc(1, sizeof(*c->book));
    c->tick_units = (int64_t)market_symbol(m, 0)->tick.v;
    size_t nb, na;
    uint64_t id;
    market_depth(m, 0, MARKET_DEPTH_MAX, dbids, &nb, dasks, &na, &id);
    cr_assert_gt(nb, 100);
    cr_assert_gt(na, 100);
    memcpy(c->book->side[0], dbids, nb * sizeof(dbids[0]));
    memcpy(c->book->side[1], dasks, na * sizeof(dasks[0]));
    c->book->n[0] = nb;
    c->book->n[1] = na;
    for (int s = 0; s < 2; s++) {
        uint64_t sid;
        market_depth(m, (size_t)s, 1, dbids, &nb, dasks, &na, &sid);
        c->last_u[s][0] = c->last_u[s][1] = sid;
    }
    cr_assert_eq(market_advance(m, T0 + 300000, seq_cb, c), 0);
    cr_assert_eq(c->events[0][0], 3000);
    cr_assert_eq(c->events[0][1], 300);
    /* Both speeds end at the same id, and that is the book's id. */
    market_depth(m, 0, MARKET_DEPTH_MAX, dbids, &nb, dasks, &na, &id);
    cr_assert_eq(c->last_u[0][0], id);
    cr_assert_eq(c->last_u[0][1], id);
    cr_assert_gt(id, 1000000 + 3000);
    /* The rebuilt book equals the true one, level for level. */
    qsort(c->book->side[0], c->book->n[0], sizeof(struct ab_level), cmp_desc);
    qsort(c->book->side[1], c->book->n[1], sizeof(struct ab_level), cmp_asc);
    cr_assert_eq(c->book->n[0], nb);
    cr_assert_eq(c->book->n[1], na);
    for (size_t i = 0; i < nb; i++) {
        cr_assert_eq(ab_dec_cmp(c->book->side[0][i].price, dbids[i].price), 0);
        cr_assert_eq(ab_dec_cmp(c->book->side[0][i].qty, dbids[i].qty), 0);
    }
    for (size_t i = 0; i < na; i++) {
        cr_assert_eq(ab_dec_cmp(c->book->side[1][i].price, dasks[i].price), 0);
        cr_assert_eq(ab_dec_cmp(c->book->side[1][i].qty, dasks[i].qty), 0);
    }
    free(c->book);
    free(c);
    market_free(m);
}

struct ticker_check {
    struct market *m;
    size_t n;
};

Test(market, book_is_never_crossed_and_stays_on_the_grid)
{
    struct market *m = make(99, 0);
    for (int64_t t = T0 + 100; t <= T0 + 600000; t += 100) {
        cr_assert_eq(market_advance(m, t, NULL, NULL), 0);
        if ((t / 100) % 50 != 0)
            continue;
        for (size_t s = 0; s < 2; s++) {
            size_t nb, na;
            uint64_t id;
            int64_t tick = (int64_t)market_symbol(m, s)->tick.v;
            int64_t step = (int64_t)market_symbol(m, s)->step.v;
            market_depth(m, s, MARKET_DEPTH_MAX, dbids, &nb, dasks, &na, &id);
            cr_assert_geq(nb, 50);
            cr_assert_geq(na, 50);
            cr_assert_leq(nb, 2000);
            cr_assert_lt(ab_dec_cmp(dbids[0].price, dasks[0].price), 0, "crossed book");
            for (size_t i = 0; i < nb; i++) {
                cr_assert_eq(dbids[i].price.v % tick, 0);
                cr_assert_eq(dbids[i].qty.v % step, 0);
                cr_assert_gt(dbids[i].qty.v, 0);
                if (i)
                    cr_assert_gt(ab_dec_cmp(dbids[i - 1].price, dbids[i].price), 0);
            }
            for (size_t i = 0; i < na; i++) {
                cr_assert_eq(dasks[i].price.v % tick, 0);
                cr_assert_gt(dasks[i].qty.v, 0);
                if (i)
                    cr_assert_lt(ab_dec_cmp(dasks[i - 1].price, dasks[i].price), 0);
            }
        }
    }
    market_free(m);
}

/* ---- candles ---- */

struct trade_sum {
    struct ab_dec vol, quote, taker_vol;
    int64_t n, first, last;
    struct ab_dec hi, lo;
    int64_t from, to; /* trade time window [from, to) for symbol 0 */
    size_t finals[AB_I_COUNT];
    size_t bad_order;
    int64_t last_push[AB_I_COUNT];
    struct market *m;
};

static void trade_cb(const struct market_event *ev, void *ud)
{
    struct trade_sum *s = ud;
    if (ev->sym != 0)
        return;
    if (ev->kind == MARKET_EV_KLINE) {
        const struct ab_candle *c = ev->u.kline.candle;
        if (c->closed) {
            s->finals[c->interval]++;
            cr_assert_gt(ev->time, c->close_time, "final before close");
            cr_assert_leq(ev->time, c->close_time + 1 + MARKET_STEP_MS);
        } else {
            int64_t period = c->interval == AB_I_1S ? 1000 : 2000;
            if (ev->time - s->last_push[c->interval] < period)
                s->bad_order++;
        }
        s->last_push[c->interval] = ev->time;
        cr_assert_eq(c->event_time, ev->time);
        cr_assert_eq(c->num_trades, c->last_trade_id - c->first_trade_id + 1);
        const char *why = NULL;
        cr_assert_eq(ab_candle_validate(c, &why), 0, "invalid candle: %s", why ? why : "");
        return;
    }
    if (ev->kind != MARKET_EV_TRADE || ev->u.trade.time < s->from || ev->u.trade.time >= s->to)
        return;
    const struct market_trade *t = &ev->u.trade;
    /* An independent price * qty: both are whole ticks/steps. */
    struct ab_dec q = {t->price.v * t->qty.v / AB_DEC_SCALE};
    cr_assert_eq(t->price.v * t->qty.v % AB_DEC_SCALE, 0);
    ab_dec_add(s->vol, t->qty, &s->vol);
    ab_dec_add(s->quote, q, &s->quote);
    if (!t->buyer_maker)
        ab_dec_add(s->taker_vol, t->qty, &s->taker_vol);
    if (s->n == 0) {
        s->first = t->id;
        s->hi = s->lo = t->price;
    }
    if (ab_dec_cmp(t->price, s->hi) > 0)
        s->hi = t->price;
    if (ab_dec_cmp(t->price, s->lo) < 0)
        s->lo = t->price;
    s->last = t->id;
    s->n++;
}

static struct ab_candle rows[1500], rows2[1500];

Test(market, candles_match_trades_and_aggregate_across_intervals)
{
    struct market *m = make(5, 0);
    struct trade_sum *s = calloc(1, sizeof(*s));
    s->from = T0 + 60000;
    s->to = T0 + 120000; /* the second 1m candle */
    for (int i = 0; i < AB_I_COUNT; i++)
        s->last_push[i] = INT64_MIN / 2;
    /* 16 minutes: three complete 5m candles and one open. */
    cr_assert_eq(market_advance(m, T0 + 16 * 60000 + 500, trade_cb, s), 0);
    cr_assert_eq(s->bad_order, 0, "kline updates closer than their period");
    cr_assert_eq(s->finals[AB_I_1S], 16 * 60);
    cr_assert_eq(s->finals[AB_I_1M], 16);
    cr_assert_eq(s->finals[AB_I_5M], 3);
    cr_assert_eq(s->finals[AB_I_1H], 0);

    /* The 1m candle equals its trades, exactly. */
    size_t n = market_klines(m, 0, AB_I_1M, true, s->from, true, s->from, 10, rows);
    cr_assert_eq(n, 1);
    cr_assert_eq(rows[0].open_time, s->from);
    cr_assert_eq(rows[0].close_time, s->from + 59999);
    cr_assert(rows[0].closed);
    cr_assert_eq(rows[0].num_trades, s->n);
    cr_assert_eq(rows[0].first_trade_id, s->first);
    cr_assert_eq(rows[0].last_trade_id, s->last);
    cr_assert_eq(ab_dec_cmp(rows[0].volume, s->vol), 0);
    cr_assert_eq(ab_dec_cmp(rows[0].quote_volume, s->quote), 0);
    cr_assert_eq(ab_dec_cmp(rows[0].taker_buy_volume, s->taker_vol), 0);
    cr_assert_eq(ab_dec_cmp(rows[0].high, s->hi), 0);
    cr_assert_eq(ab_dec_cmp(rows[0].low, s->lo), 0);

    /* Five 1m candles make the 5m candle; sixty 1s candles make each 1m. */
    size_t n1 = market_klines(m, 0, AB_I_1M, false, 0, false, 0, 1000, rows);
    size_t n5 = market_klines(m, 0, AB_I_5M, false, 0, false, 0, 1000, rows2);
    cr_assert_eq(n1, 17); /* 16 closed + the open one */
    cr_assert_eq(n5, 4);
    cr_assert_not(rows[16].closed);
    cr_assert_not(rows2[3].closed);
    for (size_t k = 0; k < n5; k++) {
        const struct ab_candle *big = &rows2[k];
        struct ab_candle agg = rows[k * 5];
        size_t parts = k * 5 + 5 <= n1 ? 5 : n1 - k * 5;
        for (size_t j = 1; j < parts; j++) {
            const struct ab_candle *c = &rows[k * 5 + j];
            if (ab_dec_cmp(c->high, agg.high) > 0)
                agg.high = c->high;
            if (ab_dec_cmp(c->low, agg.low) < 0)
                agg.low = c->low;
            agg.close = c->close;
            ab_dec_add(agg.volume, c->volume, &agg.volume);
            ab_dec_add(agg.quote_volume, c->quote_volume, &agg.quote_volume);
            ab_dec_add(agg.taker_buy_volume, c->taker_buy_volume, &agg.taker_buy_volume);
            ab_dec_add(agg.taker_buy_quote_volume, c->taker_buy_quote_volume,
                       &agg.taker_buy_quote_volume);
            agg.num_trades += c->num_trades;
            agg.last_trade_id = c->last_trade_id;
        }
        cr_assert_eq(big->open_time, agg.open_time);
        cr_assert_eq(ab_dec_cmp(big->open, agg.open), 0);
        cr_assert_eq(ab_dec_cmp(big->high, agg.high), 0);
        cr_assert_eq(ab_dec_cmp(big->low, agg.low), 0);
        cr_assert_eq(ab_dec_cmp(big->close, agg.close), 0);
        cr_assert_eq(ab_dec_cmp(big->volume, agg.volume), 0);
        cr_assert_eq(ab_dec_cmp(big->quote_volume, agg.quote_volume), 0);
        cr_assert_eq(ab_dec_cmp(big->taker_buy_volume, agg.taker_buy_volume), 0);
        cr_assert_eq(ab_dec_cmp(big->taker_buy_quote_volume, agg.taker_buy_quote_volume), 0);
        cr_assert_eq(big->num_trades, agg.num_trades);
        cr_assert_eq(big->first_trade_id, agg.first_trade_id);
        cr_assert_eq(big->last_trade_id, agg.last_trade_id);
    }
    size_t ns = market_klines(m, 0, AB_I_1S, true, T0 + 60000, true, T0 + 119999, 1000, rows2);
    cr_assert_eq(ns, 60);
    int64_t trades = 0;
    for (size_t i = 0; i < ns; i++)
        trades += rows2[i].num_trades;
    cr_assert_eq(trades, rows[1].num_trades);
    cr_assert_eq(rows2[0].first_trade_id, rows[1].first_trade_id);
    cr_assert_eq(rows2[59].last_trade_id, rows[1].last_trade_id);
    /* Larger intervals hold everything so far: 1M, 1w, 1d agree with the open 1h. */
    size_t nh = market_klines(m, 0, AB_I_1H, false, 0, false, 0, 10, rows2);
    cr_assert_eq(nh, 1);
    struct ab_candle hour = rows2[0];
    for (int iv = AB_I_2H; iv < AB_I_COUNT; iv++) {
        cr_assert_eq(market_klines(m, 0, (enum ab_interval)iv, false, 0, false, 0, 10, rows2), 1);
        cr_assert_eq(rows2[0].num_trades, hour.num_trades);
        cr_assert_eq(ab_dec_cmp(rows2[0].quote_volume, hour.quote_volume), 0);
        cr_assert_eq(rows2[0].open_time, ab_interval_align((enum ab_interval)iv, T0));
    }
    free(s);
    market_free(m);
}

Test(market, klines_row_selection_follows_binance)
{
    struct market *m = make(3, 0);
    market_advance(m, T0 + 10 * 60000 + 500, NULL, NULL); /* 10 closed 1m + 1 open */
    size_t n = market_klines(m, 0, AB_I_1M, false, 0, false, 0, 3, rows);
    cr_assert_eq(n, 3);
    cr_assert_eq(rows[0].open_time, T0 + 8 * 60000); /* newest three */
    cr_assert_eq(rows[2].open_time, T0 + 10 * 60000);
    cr_assert_not(rows[2].closed);
    n = market_klines(m, 0, AB_I_1M, true, T0 + 60000 + 1, false, 0, 2, rows);
    cr_assert_eq(n, 2);
    cr_assert_eq(rows[0].open_time, T0 + 2 * 60000); /* oldest from start (by open time) */
    n = market_klines(m, 0, AB_I_1M, false, 0, true, T0 + 5 * 60000, 2, rows);
    cr_assert_eq(n, 2);
    cr_assert_eq(rows[1].open_time, T0 + 5 * 60000); /* newest up to end */
    n = market_klines(m, 0, AB_I_1M, true, T0 + 60000, true, T0 + 4 * 60000, 500, rows);
    cr_assert_eq(n, 4);
    n = market_klines(m, 0, AB_I_1M, true, T0 + 60000, true, T0 + 4 * 60000, 2, rows);
    cr_assert_eq(n, 2);
    cr_assert_eq(rows[0].open_time, T0 + 60000);
    n = market_klines(m, 0, AB_I_1M, true, T0 + 4 * 60000, true, T0 + 60000, 10, rows);
    cr_assert_eq(n, 0);
    n = market_klines(m, 0, AB_I_1M, true, T0 + 3600000, false, 0, 10, rows);
    cr_assert_eq(n, 0);
    market_free(m);
}

struct freeze_check {
    size_t after_freeze;
    size_t depth100;
    struct ab_candle last_kline[AB_I_COUNT];
    bool frozen_seen;
    struct market *m;
};

static void freeze_cb(const struct market_event *ev, void *ud)
{
    struct freeze_check *f = ud;
    if (ev->sym != 0)
        return;
    if (f->frozen_seen)
        f->after_freeze++;
    if (ev->kind == MARKET_EV_DEPTH && ev->u.depth.speed_ms == 100)
        f->depth100++;
    if (ev->kind == MARKET_EV_KLINE)
        f->last_kline[ev->u.kline.candle->interval] = *ev->u.kline.candle;
}

Test(market, events_limit_freezes_the_market)
{
    struct market *m = make(11, 655); /* freezes mid-second, mid-candle */
    struct freeze_check *f = calloc(1, sizeof(*f));
    cr_assert_eq(market_advance(m, T0 + 65400, freeze_cb, f), 0);
    cr_assert_not(market_frozen(m, 0));
    cr_assert_eq(market_advance(m, T0 + 65500, freeze_cb, f), 0);
    cr_assert(market_frozen(m, 0));
    cr_assert(market_frozen(m, 1));
    cr_assert_eq(f->depth100, 655);
    cr_assert_eq(market_steps(m, 0), 655);
    size_t nb, na;
    uint64_t id1, id2;
    market_depth(m, 0, MARKET_DEPTH_MAX, dbids, &nb, dasks, &na, &id1);
    f->frozen_seen = true;
    cr_assert_eq(market_advance(m, T0 + 3600000, freeze_cb, f), 0);
    cr_assert_eq(f->after_freeze, 0);
    cr_assert_eq(market_steps(m, 0), 655);
    market_depth(m, 0, MARKET_DEPTH_MAX, dbids, &nb, dasks, &na, &id2);
    cr_assert_eq(id1, id2);
    /* Every interval's last pushed kline equals the REST truth: the open candle as frozen. */
    for (int iv = 0; iv < AB_I_COUNT; iv++) {
        size_t n = market_klines(m, 0, (enum ab_interval)iv, false, 0, false, 0, 1, rows);
        cr_assert_eq(n, 1);
        const struct ab_candle *ev = &f->last_kline[iv];
        cr_assert_eq(rows[0].open_time, ev->open_time, "interval %d", iv);
        cr_assert_eq(rows[0].num_trades, ev->num_trades, "interval %d", iv);
        cr_assert_eq(ab_dec_cmp(rows[0].close, ev->close), 0);
        cr_assert_eq(ab_dec_cmp(rows[0].quote_volume, ev->quote_volume), 0);
        cr_assert_eq(rows[0].closed, ev->closed);
    }
    cr_assert_not(rows[0].closed);
    /* The 1s candle of the freeze second is still open (65.4 s .. 65.5 s traded). */
    cr_assert_eq(market_klines(m, 0, AB_I_1S, false, 0, false, 0, 1, rows), 1);
    cr_assert_eq(rows[0].open_time, T0 + 65000);
    cr_assert_not(rows[0].closed);
    free(f);
    market_free(m);
}

Test(market, prices_are_exact_decimals)
{
    struct market *m = make(1, 0);
    char buf[AB_DEC_STR_MAX];
    ab_dec_format_fixed(market_symbol(m, 0)->start_price, 8, buf);
    cr_assert_str_eq(buf, "50000.00000000");
    ab_dec_format_fixed(market_symbol(m, 0)->tick, 8, buf);
    cr_assert_str_eq(buf, "0.01000000");
    ab_dec_format_fixed(market_symbol(m, 0)->step, 8, buf);
    cr_assert_str_eq(buf, "0.00001000");
    ab_dec_format_fixed(market_symbol(m, 1)->start_price, 8, buf);
    cr_assert_str_eq(buf, "3000.00000000");
    size_t nb, na;
    uint64_t id;
    market_depth(m, 0, 5, dbids, &nb, dasks, &na, &id);
    cr_assert_eq(nb, 5);
    cr_assert_lt(dbids[0].price.v, 5000000000000LL);
    cr_assert_gt(dasks[0].price.v, 5000000000000LL);
    market_free(m);
}

/* The capacity benchmark's 1500 symbols fit; more than MARKET_MAX_SYMBOLS do not. */
Test(market, symbol_cap)
{
    static struct market_cfg cfg;
    static char names[1500][AB_SYMBOL_MAX];
    cfg.seed = 1;
    cfg.start_time = T0;
    for (size_t i = 0; i < 1500; i++) {
        snprintf(names[i], sizeof(names[i]), "C%04zuUSDT", i);
        cfg.symbols[i] = names[i];
    }
    struct market *m = NULL;
    cfg.n_symbols = MARKET_MAX_SYMBOLS + 1;
    cr_assert_eq(market_new(&cfg, &m), AB_EINVAL);
    cr_assert_null(m);
    cfg.n_symbols = 1500;
    cr_assert_geq(MARKET_MAX_SYMBOLS, 1500);
    cr_assert_eq(market_new(&cfg, &m), 0);
    cr_assert_eq(market_n_symbols(m), 1500);
    cr_assert_str_eq(market_symbol(m, 1499)->symbol, "C1499USDT");
    cr_assert_str_eq(market_symbol(m, 1499)->quote, "USDT");
    market_free(m);
}

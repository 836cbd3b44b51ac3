/* live.c: candle rings, coverage, books, the broadcast hook. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "live.h"

#define MIN 60000LL
#define T0  1700000040000LL /* a minute boundary */

static struct ab_candle candle(const char *sym, int64_t open, int64_t close_units, int64_t trades,
                               bool closed, int64_t event_time)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "%s", sym);
    c.interval = AB_I_1M;
    c.open_time = open;
    c.close_time = open + MIN - 1;
    c.open = ab_dec_from_units(100 * AB_DEC_SCALE);
    c.close = ab_dec_from_units(close_units);
    c.high = ab_dec_from_units(200 * AB_DEC_SCALE);
    c.low = ab_dec_from_units(50 * AB_DEC_SCALE);
    c.volume = ab_dec_from_units(trades * 1000);
    c.num_trades = trades;
    c.first_trade_id = c.last_trade_id = -1;
    c.closed = closed;
    c.event_time = event_time;
    return c;
}

/* ---- hook recorder ---- */

#define REC_MAX 64
struct rec {
    int candles, deltas, snapshots, statuses;
    uint64_t last_seq, last_gen, last_prev, last_delta_u;
    enum live_book_state last_state;
    size_t last_snap_bids;
    int64_t candle_open[REC_MAX];
};

static void rc_candle(void *arg, const struct ab_candle *c, uint64_t seq)
{
    struct rec *r = arg;
    if (r->candles < REC_MAX)
        r->candle_open[r->candles] = c->open_time;
    r->candles++;
    r->last_seq = seq;
}
static void rc_delta(void *arg, const struct ab_book_delta *d, uint64_t gen, uint64_t prev)
{
    struct rec *r = arg;
    r->deltas++;
    r->last_gen = gen;
    r->last_prev = prev;
    r->last_delta_u = d->last_id;
}
static void rc_snapshot(void *arg, const struct ab_book_snapshot *s, uint64_t gen,
                        enum live_book_state st)
{
    struct rec *r = arg;
    r->snapshots++;
    r->last_gen = gen;
    r->last_state = st;
    r->last_snap_bids = s->n_bids;
}
static void rc_status(void *arg, const char *sym, uint64_t gen, enum live_book_state st,
                      uint64_t last)
{
    struct rec *r = arg;
    r->statuses++;
    r->last_gen = gen;
    r->last_state = st;
}

static struct live *mk(size_t cap, struct rec *r)
{
    struct live_config cfg = {.candle_cap = cap};
    struct live *lv = NULL;
    cr_assert_eq(live_new(&cfg, &lv), 0);
    if (r) {
        memset(r, 0, sizeof(*r));
        struct live_hook h = {rc_candle, rc_delta, rc_snapshot, rc_status, r};
        live_set_hook(lv, &h);
    }
    return lv;
}

static enum live_action apply(struct live *lv, struct ab_candle c)
{
    enum live_action a = LIVE_IGNORED;
    cr_assert_eq(live_apply_candle(lv, &c, &a), 0);
    return a;
}

Test(live, append_and_recent_ascending)
{
    struct rec r;
    struct live *lv = mk(100, &r);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(apply(lv, candle("BTCUSDT", T0 + i * MIN, i, 1, i < 4, 10 + i)), LIVE_APPLIED);
    struct ab_candle *cs;
    size_t n;
    uint64_t seq;
    cr_assert_eq(live_candles_recent(lv, "BTCUSDT", AB_I_1M, 3, &cs, &n, &seq), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(seq, 5);
    cr_assert_eq(r.candles, 5);
    cr_assert_eq(r.last_seq, 5);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(cs[i].open_time, T0 + (int64_t)(i + 2) * MIN);
    cr_assert_not(cs[2].closed);
    free(cs);
    /* unknown series: empty, seq 0, not an error */
    cr_assert_eq(live_candles_recent(lv, "ETHUSDT", AB_I_1M, 3, &cs, &n, &seq), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(seq, 0);
    cr_assert_null(cs);
    live_free(lv);
}

Test(live, open_candle_overwritten_by_open_time)
{
    struct rec r;
    struct live *lv = mk(100, &r);
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 1, 1, false, 100)), LIVE_APPLIED);
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 2, 2, false, 200)), LIVE_APPLIED);
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 2, 2, false, 200)), LIVE_DUPLICATE);
    /* an older version (bus replay) does not roll it back */
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 1, 1, false, 100)), LIVE_IGNORED);
    struct ab_candle *cs;
    size_t n;
    uint64_t seq;
    cr_assert_eq(live_candles_recent(lv, "BTCUSDT", AB_I_1M, 10, &cs, &n, &seq), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(cs[0].num_trades, 2);
    cr_assert_eq(cs[0].close.v, 2);
    cr_assert_eq(seq, 2);
    cr_assert_eq(r.candles, 2);
    free(cs);
    struct live_stats st;
    live_get_stats(lv, &st);
    cr_assert_eq(st.candles_applied, 2);
    cr_assert_eq(st.candles_duplicate, 1);
    cr_assert_eq(st.candles_ignored, 1);
    live_free(lv);
}

Test(live, closed_candle_is_final)
{
    struct rec r;
    struct live *lv = mk(100, &r);
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 5, 5, true, 100)), LIVE_APPLIED);
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 9, 9, false, 300)), LIVE_IGNORED);
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 9, 9, true, 300)), LIVE_IGNORED);
    /* the REST copy of the same closed candle (no event time) is a duplicate */
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 5, 5, true, 0)), LIVE_DUPLICATE);
    struct ab_candle *cs;
    size_t n;
    uint64_t seq;
    cr_assert_eq(live_candles_recent(lv, "BTCUSDT", AB_I_1M, 10, &cs, &n, &seq), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(cs[0].num_trades, 5);
    cr_assert(cs[0].closed);
    cr_assert_eq(r.candles, 1);
    free(cs);
    live_free(lv);
}

Test(live, ring_cap_evicts_oldest_and_passes_on_older)
{
    struct rec r;
    struct live *lv = mk(4, &r);
    for (int i = 0; i < 6; i++)
        apply(lv, candle("BTCUSDT", T0 + i * MIN, i, 1, true, 1));
    struct live_series_info info[2];
    cr_assert_eq(live_series_list(lv, info, 2), 1);
    cr_assert_eq(info[0].count, 4);
    cr_assert_eq(info[0].oldest_open, T0 + 2 * MIN);
    cr_assert_eq(info[0].newest.open_time, T0 + 5 * MIN);
    struct live_stats st;
    live_get_stats(lv, &st);
    cr_assert_eq(st.candles_evicted, 2);
    /* older than the full window: broadcast (backfill) but not stored */
    cr_assert_eq(apply(lv, candle("BTCUSDT", T0, 0, 1, true, 1)), LIVE_APPLIED);
    cr_assert_eq(r.candles, 7);
    cr_assert_eq(r.candle_open[6], T0);
    live_series_list(lv, info, 2);
    cr_assert_eq(info[0].count, 4);
    cr_assert_eq(info[0].oldest_open, T0 + 2 * MIN);
    live_free(lv);
}

Test(live, backfill_fills_a_hole_in_order)
{
    struct live *lv = mk(10, NULL);
    apply(lv, candle("BTCUSDT", T0, 0, 1, true, 1));
    apply(lv, candle("BTCUSDT", T0 + 1 * MIN, 1, 1, true, 1));
    apply(lv, candle("BTCUSDT", T0 + 4 * MIN, 4, 1, false, 1));
    struct live_window w = {.has_start = true, .start = T0, .limit = 10};
    cr_assert_not(live_candles_covers(lv, "BTCUSDT", AB_I_1M, &w));
    apply(lv, candle("BTCUSDT", T0 + 3 * MIN, 3, 1, true, 1));
    apply(lv, candle("BTCUSDT", T0 + 2 * MIN, 2, 1, true, 1));
    struct ab_candle *cs;
    size_t n;
    cr_assert_eq(live_candles_read(lv, "BTCUSDT", AB_I_1M, &w, &cs, &n), 0);
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(cs[i].open_time, T0 + (int64_t)i * MIN);
    free(cs);
    live_free(lv);
}

Test(live, coverage_rules)
{
    struct live *lv = mk(100, NULL);
    for (int i = 0; i < 10; i++)
        apply(lv, candle("BTCUSDT", T0 + i * MIN, i, 1, i < 9, 1));
    struct ab_candle *cs;
    size_t n;
    /* from start, limited */
    struct live_window w = {.has_start = true, .start = T0 + 2 * MIN, .limit = 3};
    cr_assert_eq(live_candles_read(lv, "BTCUSDT", AB_I_1M, &w, &cs, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(cs[0].open_time, T0 + 2 * MIN);
    cr_assert_eq(cs[2].open_time, T0 + 4 * MIN);
    free(cs);
    /* unaligned start: the first candle opening at or after it */
    w.start = T0 + 2 * MIN + 1;
    cr_assert_eq(live_candles_read(lv, "BTCUSDT", AB_I_1M, &w, &cs, &n), 0);
    cr_assert_eq(cs[0].open_time, T0 + 3 * MIN);
    free(cs);
    /* start before the oldest in memory: storage may hold more */
    w.start = T0 - MIN;
    cr_assert_eq(live_candles_read(lv, "BTCUSDT", AB_I_1M, &w, &cs, &n), AB_ENOTFOUND);
    cr_assert_null(cs);
    /* start..end inside memory */
    w = (struct live_window){
        .has_start = true, .start = T0 + MIN, .has_end = true, .end = T0 + 3 * MIN, .limit = 100};
    cr_assert_eq(live_candles_read(lv, "BTCUSDT", AB_I_1M, &w, &cs, &n), 0);
    cr_assert_eq(n, 3);
    free(cs);
    /* newest limit */
    w = (struct live_window){.limit = 4};
    cr_assert_eq(live_candles_read(lv, "BTCUSDT", AB_I_1M, &w, &cs, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_eq(cs[0].open_time, T0 + 6 * MIN);
    cr_assert_eq(cs[3].open_time, T0 + 9 * MIN);
    free(cs);
    /* newest limit larger than memory */
    w.limit = 11;
    cr_assert_not(live_candles_covers(lv, "BTCUSDT", AB_I_1M, &w));
    w.limit = 10;
    cr_assert(live_candles_covers(lv, "BTCUSDT", AB_I_1M, &w));
    /* newest limit up to an end */
    w = (struct live_window){.has_end = true, .end = T0 + 5 * MIN + 30000, .limit = 2};
    cr_assert_eq(live_candles_read(lv, "BTCUSDT", AB_I_1M, &w, &cs, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(cs[1].open_time, T0 + 5 * MIN);
    free(cs);
    /* end before everything in memory */
    w.end = T0 - 1;
    cr_assert_not(live_candles_covers(lv, "BTCUSDT", AB_I_1M, &w));
    /* unknown series, other interval */
    w = (struct live_window){.limit = 1};
    cr_assert_not(live_candles_covers(lv, "ETHUSDT", AB_I_1M, &w));
    cr_assert_not(live_candles_covers(lv, "BTCUSDT", AB_I_1H, &w));
    /* limit 0 is invalid */
    w.limit = 0;
    cr_assert_eq(live_candles_read(lv, "BTCUSDT", AB_I_1M, &w, &cs, &n), AB_EINVAL);
    live_free(lv);
}

Test(live, hole_breaks_newest_limit_coverage)
{
    struct live *lv = mk(100, NULL);
    apply(lv, candle("BTCUSDT", T0, 0, 1, true, 1));
    apply(lv, candle("BTCUSDT", T0 + 2 * MIN, 2, 1, true, 1));
    apply(lv, candle("BTCUSDT", T0 + 3 * MIN, 3, 1, true, 1));
    struct live_window w = {.limit = 2};
    cr_assert(live_candles_covers(lv, "BTCUSDT", AB_I_1M, &w));
    w.limit = 3;
    cr_assert_not(live_candles_covers(lv, "BTCUSDT", AB_I_1M, &w));
    /* a window whose end falls in the hole */
    w = (struct live_window){.has_end = true, .end = T0 + MIN, .limit = 1};
    cr_assert_not(live_candles_covers(lv, "BTCUSDT", AB_I_1M, &w));
    live_free(lv);
}

Test(live, invalid_candles_rejected)
{
    struct live *lv = mk(10, NULL);
    struct ab_candle c = candle("BTCUSDT", T0 + 1, 1, 1, false, 1);
    enum live_action a;
    cr_assert_eq(live_apply_candle(lv, &c, &a), AB_EINVAL);
    c = candle("btc", T0, 1, 1, false, 1);
    cr_assert_eq(live_apply_candle(lv, &c, &a), AB_EINVAL);
    c = candle("BTCUSDT", T0, 1, 1, false, 1);
    c.interval = AB_I_COUNT;
    cr_assert_eq(live_apply_candle(lv, &c, &a), AB_EINVAL);
    struct live_stats st;
    live_get_stats(lv, &st);
    cr_assert_eq(st.series, 0);
    live_free(lv);
}

Test(live, max_series_is_a_hard_cap)
{
    struct live_config cfg = {.candle_cap = 4, .max_series = 2};
    struct live *lv;
    cr_assert_eq(live_new(&cfg, &lv), 0);
    struct ab_candle c = candle("AAA", T0, 1, 1, false, 1);
    cr_assert_eq(live_apply_candle(lv, &c, NULL), 0);
    c = candle("BBB", T0, 1, 1, false, 1);
    cr_assert_eq(live_apply_candle(lv, &c, NULL), 0);
    c = candle("CCC", T0, 1, 1, false, 1);
    cr_assert_eq(live_apply_candle(lv, &c, NULL), AB_ENOMEM);
    struct live_stats st;
    live_get_stats(lv, &st);
    cr_assert_eq(st.series, 2);
    cr_assert_eq(st.series_refused, 1);
    live_free(lv);
    cfg.candle_cap = LIVE_CANDLE_CAP_MAX + 1;
    cr_assert_eq(live_new(&cfg, &lv), AB_ERANGE);
}

/* ---- books ---- */

static struct ab_level lvl(int64_t price, int64_t qty)
{
    struct ab_level l = {ab_dec_from_units(price * AB_DEC_SCALE),
                         ab_dec_from_units(qty * AB_DEC_SCALE)};
    return l;
}

static void snap(struct live *lv, uint64_t id, enum live_action expect)
{
    struct ab_level bids[3] = {lvl(99, 1), lvl(98, 2), lvl(97, 3)};
    struct ab_level asks[3] = {lvl(101, 1), lvl(102, 2), lvl(103, 3)};
    struct ab_book_snapshot s = {
        .last_update_id = id, .bids = bids, .asks = asks, .n_bids = 3, .n_asks = 3};
    snprintf(s.symbol, sizeof(s.symbol), "BTCUSDT");
    enum live_action a;
    cr_assert_eq(live_apply_book_snapshot(lv, &s, 1000, &a), 0);
    cr_assert_eq(a, expect);
}

static int delta(struct live *lv, uint64_t U, uint64_t u, struct ab_level bid, enum live_action *a)
{
    struct ab_book_delta d = {.first_id = U, .last_id = u, .bids = &bid, .n_bids = 1};
    snprintf(d.symbol, sizeof(d.symbol), "BTCUSDT");
    return live_apply_book_delta(lv, &d, 2000, a);
}

Test(live, book_snapshot_then_continuous_deltas)
{
    struct rec r;
    struct live *lv = mk(10, &r);
    struct ab_book_snapshot out;
    cr_assert_eq(live_book_get(lv, "BTCUSDT", 0, &out, NULL), AB_ENOTFOUND);
    ab_book_snapshot_deinit(&out);
    snap(lv, 100, LIVE_APPLIED);
    cr_assert_eq(r.snapshots, 1);
    cr_assert_eq(r.last_gen, 1);
    cr_assert_eq(r.last_state, LIVE_BOOK_LIVE);
    cr_assert_eq(r.last_snap_bids, 3);
    snap(lv, 100, LIVE_DUPLICATE);
    cr_assert_eq(r.snapshots, 1);
    enum live_action a;
    /* bridging delta: U <= 101 <= u */
    cr_assert_eq(delta(lv, 95, 105, lvl(99, 5), &a), 0);
    cr_assert_eq(a, LIVE_APPLIED);
    cr_assert_eq(r.last_prev, 100);
    cr_assert_eq(r.last_delta_u, 105);
    cr_assert_eq(delta(lv, 106, 110, lvl(98, 0), &a), 0);
    cr_assert_eq(a, LIVE_APPLIED);
    cr_assert_eq(r.last_prev, 105);
    /* replayed delta */
    cr_assert_eq(delta(lv, 106, 110, lvl(98, 0), &a), 0);
    cr_assert_eq(a, LIVE_DUPLICATE);
    cr_assert_eq(r.deltas, 2);
    struct live_book_info info;
    cr_assert_eq(live_book_get(lv, "BTCUSDT", 0, &out, &info), 0);
    cr_assert_eq(out.last_update_id, 110);
    cr_assert_eq(info.state, LIVE_BOOK_LIVE);
    cr_assert_eq(info.gen, 1);
    cr_assert_eq(out.n_bids, 2); /* 98 removed */
    cr_assert_eq(out.bids[0].qty.v, 5 * AB_DEC_SCALE);
    cr_assert_eq(out.bids[1].price.v, 97 * AB_DEC_SCALE);
    cr_assert_eq(out.n_asks, 3);
    cr_assert_eq(out.asks[0].price.v, 101 * AB_DEC_SCALE);
    ab_book_snapshot_deinit(&out);
    /* depth */
    cr_assert_eq(live_book_get(lv, "BTCUSDT", 1, &out, &info), 0);
    cr_assert_eq(out.n_bids, 1);
    cr_assert_eq(out.n_asks, 1);
    cr_assert_eq(info.bids_total, 2);
    cr_assert_str_eq(out.symbol, "BTCUSDT");
    ab_book_snapshot_deinit(&out);
    live_free(lv);
}

Test(live, gap_makes_the_book_stale_until_a_snapshot)
{
    struct rec r;
    struct live *lv = mk(10, &r);
    snap(lv, 100, LIVE_APPLIED);
    enum live_action a;
    cr_assert_eq(delta(lv, 101, 102, lvl(99, 2), &a), 0);
    cr_assert_eq(delta(lv, 104, 105, lvl(99, 3), &a), 0); /* 103 missing */
    cr_assert_eq(a, LIVE_NEED_SNAPSHOT);
    cr_assert_eq(r.statuses, 1);
    cr_assert_eq(r.last_state, LIVE_BOOK_STALE);
    cr_assert_eq(r.last_gen, 2);
    struct ab_book_snapshot out;
    struct live_book_info info;
    cr_assert_eq(live_book_get(lv, "BTCUSDT", 0, &out, &info), 0);
    cr_assert_eq(info.state, LIVE_BOOK_STALE);
    cr_assert_eq(out.n_bids + out.n_asks, 0);
    cr_assert_eq(out.last_update_id, 0);
    ab_book_snapshot_deinit(&out);
    /* further deltas keep asking for a snapshot and are not broadcast */
    cr_assert_eq(delta(lv, 106, 106, lvl(99, 3), &a), 0);
    cr_assert_eq(a, LIVE_NEED_SNAPSHOT);
    cr_assert_eq(r.deltas, 1);
    snap(lv, 200, LIVE_APPLIED);
    cr_assert_eq(r.last_gen, 3);
    cr_assert_eq(live_book_get(lv, "BTCUSDT", 0, &out, &info), 0);
    cr_assert_eq(info.state, LIVE_BOOK_LIVE);
    cr_assert_eq(out.last_update_id, 200);
    ab_book_snapshot_deinit(&out);
    struct live_stats st;
    live_get_stats(lv, &st);
    cr_assert_eq(st.book_gaps, 1);
    cr_assert_eq(st.snapshots_loaded, 2);
    live_free(lv);
}

Test(live, malformed_delta_discards_the_book)
{
    struct live *lv = mk(10, NULL);
    snap(lv, 100, LIVE_APPLIED);
    enum live_action a;
    cr_assert_eq(delta(lv, 101, 102, lvl(-5, 1), &a), AB_EINVAL);
    cr_assert_eq(a, LIVE_NEED_SNAPSHOT);
    struct live_book_summary sum[4];
    cr_assert_eq(live_book_list(lv, sum, 4), 1);
    cr_assert_eq(sum[0].state, LIVE_BOOK_STALE);
    cr_assert_str_eq(live_book_state_name(sum[0].state), "stale");
    live_free(lv);
}

Test(live, ingest_status_drives_the_state)
{
    struct rec r;
    struct live *lv = mk(10, &r);
    enum live_action a;
    cr_assert_eq(live_apply_book_status(lv, "BTCUSDT", LIVE_INGEST_SYNCING, 1, &a), 0);
    struct live_book_summary sum[1];
    live_book_list(lv, sum, 1);
    cr_assert_eq(sum[0].state, LIVE_BOOK_SYNCING);
    /* delta before any snapshot: nothing to apply it to */
    cr_assert_eq(delta(lv, 1, 2, lvl(99, 1), &a), 0);
    cr_assert_eq(a, LIVE_IGNORED);
    snap(lv, 100, LIVE_APPLIED);
    live_book_list(lv, sum, 1);
    cr_assert_eq(sum[0].state, LIVE_BOOK_LIVE);
    cr_assert_eq(sum[0].last_update_id, 100);
    int st0 = r.statuses;
    cr_assert_eq(live_apply_book_status(lv, "BTCUSDT", LIVE_INGEST_RESYNCING, 2, &a), 0);
    cr_assert_eq(a, LIVE_APPLIED);
    cr_assert_eq(r.statuses, st0 + 1);
    cr_assert_eq(r.last_state, LIVE_BOOK_RESYNCING);
    live_book_list(lv, sum, 1);
    cr_assert_eq(sum[0].state, LIVE_BOOK_RESYNCING);
    cr_assert_eq(live_apply_book_status(lv, "BTCUSDT", LIVE_INGEST_RESYNCING, 3, &a), 0);
    cr_assert_eq(a, LIVE_DUPLICATE);
    cr_assert_eq(r.statuses, st0 + 1);
    snap(lv, 150, LIVE_APPLIED);
    live_book_list(lv, sum, 1);
    cr_assert_eq(sum[0].state, LIVE_BOOK_LIVE);
    cr_assert_eq(live_apply_book_status(lv, "bad", LIVE_INGEST_LIVE, 3, &a), AB_EINVAL);
    live_free(lv);
}

/* ---- one writer, concurrent readers ---- */

struct race {
    struct live *lv;
    int n;
    bool bad;
};

static void *writer(void *arg)
{
    struct race *rc = arg;
    for (int i = 0; i < rc->n; i++) {
        struct ab_candle c = candle("BTCUSDT", T0 + i * MIN, i, 1, true, 1);
        live_apply_candle(rc->lv, &c, NULL);
        struct ab_level b = lvl(100 + i % 7, i % 3);
        struct ab_book_delta d = {
            .first_id = (uint64_t)i + 2, .last_id = (uint64_t)i + 2, .bids = &b, .n_bids = 1};
        snprintf(d.symbol, sizeof(d.symbol), "BTCUSDT");
        live_apply_book_delta(rc->lv, &d, i, NULL);
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct race *rc = arg;
    for (int i = 0; i < rc->n; i++) {
        struct live_window w = {.limit = 5};
        struct ab_candle *cs;
        size_t n;
        if (live_candles_read(rc->lv, "BTCUSDT", AB_I_1M, &w, &cs, &n) == 0) {
            for (size_t k = 1; k < n; k++)
                if (cs[k].open_time != cs[k - 1].open_time + MIN)
                    rc->bad = true;
            free(cs);
        }
        struct ab_book_snapshot s;
        if (live_book_get(rc->lv, "BTCUSDT", 10, &s, NULL) == 0 && s.last_update_id == 0 &&
            s.n_bids)
            rc->bad = true;
        ab_book_snapshot_deinit(&s);
    }
    return NULL;
}

Test(live, one_writer_many_readers)
{
    struct live *lv = mk(64, NULL);
    snap(lv, 1, LIVE_APPLIED);
    struct race rc = {.lv = lv, .n = 3000};
    pthread_t w, r1, r2;
    pthread_create(&w, NULL, writer, &rc);
    pthread_create(&r1, NULL, reader, &rc);
    pthread_create(&r2, NULL, reader, &rc);
    pthread_join(w, NULL);
    pthread_join(r1, NULL);
    pthread_join(r2, NULL);
    cr_assert_not(rc.bad);
    struct ab_book_snapshot s;
    cr_assert_eq(live_book_get(lv, "BTCUSDT", 0, &s, NULL), 0);
    cr_assert_eq(s.last_update_id, 3001);
    ab_book_snapshot_deinit(&s);
    live_free(lv);
}

/* Unit tests of the candle tracker: dedup, finality, which candles are
 * missing and when to ask REST. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "candles.h"
#include "common/err.h"

#define MIN 60000LL
#define T0  1700000040000LL /* an aligned minute */

static const char syms[2][AB_SYMBOL_MAX] = {"BTCUSDT", "ETHUSDT"};
static const enum ab_interval ivs[2] = {AB_I_1M, AB_I_1H};

static struct candle_tracker *mk(void)
{
    struct candle_tracker *t = NULL;
    cr_assert_eq(candle_tracker_new(syms, 2, ivs, 2, &t), 0);
    return t;
}

static struct ab_candle candle(const char *sym, int64_t open, int64_t trades, bool closed,
                               int64_t event_time)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "%s", sym);
    c.interval = AB_I_1M;
    c.open_time = open;
    c.close_time = open + MIN - 1;
    c.open = c.high = c.low = c.close = ab_dec_from_units(100 * AB_DEC_SCALE);
    c.volume = ab_dec_from_units(trades * 1000);
    c.num_trades = trades;
    c.closed = closed;
    c.event_time = event_time;
    c.first_trade_id = c.last_trade_id = -1;
    return c;
}

Test(candles, new_rejects_bad_input)
{
    struct candle_tracker *t = NULL;
    static const char bad[1][AB_SYMBOL_MAX] = {"btc"};
    cr_assert_eq(candle_tracker_new(bad, 1, ivs, 1, &t), AB_EINVAL);
    cr_assert_null(t);
    const enum ab_interval dup[2] = {AB_I_1M, AB_I_1M};
    cr_assert_eq(candle_tracker_new(syms, 2, dup, 2, &t), AB_EINVAL);
    cr_assert_eq(candle_tracker_new(syms, 0, ivs, 1, &t), AB_EINVAL);
}

Test(candles, find_series)
{
    struct candle_tracker *t = mk();
    size_t s;
    cr_assert_eq(candle_tracker_count(t), 4);
    cr_assert_eq(candle_tracker_find(t, "ETHUSDT", AB_I_1H, &s), 0);
    cr_assert_eq(s, 3);
    cr_assert_str_eq(candle_tracker_symbol(t, s), "ETHUSDT");
    cr_assert_eq(candle_tracker_interval(t, s), AB_I_1H);
    cr_assert_eq(candle_tracker_find(t, "ETHUSDT", AB_I_5M, &s), AB_ENOTFOUND);
    cr_assert_eq(candle_tracker_find(t, "XRPUSDT", AB_I_1M, &s), AB_ENOTFOUND);
    candle_tracker_free(t);
}

Test(candles, start_sets_backfill_point)
{
    struct candle_tracker *t = mk();
    size_t s;
    cr_assert_eq(candle_tracker_find(t, "BTCUSDT", AB_I_1M, &s), 0);
    cr_assert_eq(candle_tracker_closed_through(t, s), INT64_MIN);
    /* now = T0 + 30 s, lookback 10 min: the candle containing T0-9.5min is
     * T0-10min, so everything from there is due: closed_through = T0-11min. */
    candle_tracker_start(t, T0 + 30000, 10 * MIN);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 - 11 * MIN);
    /* Idempotent. */
    candle_tracker_start(t, T0 + 99 * MIN, 0);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 - 11 * MIN);
    candle_tracker_free(t);
}

Test(candles, duplicates_and_finality)
{
    struct candle_tracker *t = mk();
    candle_tracker_start(t, T0 + 1000, 0); /* closed_through = T0 - 1min */
    struct ab_candle a = candle("BTCUSDT", T0, 5, false, T0 + 2000);
    cr_assert_eq(candle_tracker_offer(t, &a, false), CANDLE_PUBLISH);
    cr_assert_eq(candle_tracker_offer(t, &a, false), CANDLE_DUPLICATE);
    /* Same content, later event time (another connection): still a duplicate. */
    struct ab_candle a2 = a;
    a2.event_time += 500;
    cr_assert_eq(candle_tracker_offer(t, &a2, false), CANDLE_DUPLICATE);
    struct ab_candle b = candle("BTCUSDT", T0, 7, false, T0 + 4000);
    cr_assert_eq(candle_tracker_offer(t, &b, false), CANDLE_PUBLISH);
    /* An older version arriving late must not move the candle backwards. */
    struct ab_candle old = candle("BTCUSDT", T0, 6, false, T0 + 3000);
    cr_assert_eq(candle_tracker_offer(t, &old, false), CANDLE_DUPLICATE);
    struct ab_candle fin = candle("BTCUSDT", T0, 9, true, T0 + MIN);
    cr_assert_eq(candle_tracker_offer(t, &fin, false), CANDLE_PUBLISH);
    size_t s;
    candle_tracker_find(t, "BTCUSDT", AB_I_1M, &s);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0);
    /* After the close, nothing for that open time is published. */
    struct ab_candle late = candle("BTCUSDT", T0, 10, false, T0 + MIN + 10);
    cr_assert_eq(candle_tracker_offer(t, &late, false), CANDLE_FINAL);
    struct ab_candle rest = candle("BTCUSDT", T0, 9, true, 0);
    cr_assert_eq(candle_tracker_offer(t, &rest, true), CANDLE_FINAL);
    /* An open REST row is never published. */
    struct ab_candle open_rest = candle("BTCUSDT", T0 + MIN, 1, false, 0);
    cr_assert_eq(candle_tracker_offer(t, &open_rest, true), CANDLE_NOT_FINAL);
    struct ab_candle other = candle("XRPUSDT", T0, 1, false, 1);
    cr_assert_eq(candle_tracker_offer(t, &other, false), CANDLE_UNTRACKED);
    struct candle_tracker_stats st;
    candle_tracker_stats(t, &st);
    cr_assert_eq(st.published, 3);
    cr_assert_eq(st.duplicates, 3);
    cr_assert_eq(st.final_ignored, 2);
    candle_tracker_free(t);
}

Test(candles, due_after_close_plus_grace)
{
    struct candle_tracker *t = mk();
    size_t s;
    candle_tracker_find(t, "BTCUSDT", AB_I_1M, &s);
    int64_t start = 0;
    /* Before start nothing is due. */
    cr_assert_not(candle_tracker_due(t, s, T0, 5000, &start));
    candle_tracker_start(t, T0 + 1000, 0); /* closed_through = T0 - 1min */
    /* The candle T0 closes at T0+59999; with 5 s grace it is due from T0+65s. */
    cr_assert_not(candle_tracker_due(t, s, T0 + MIN + 4000, 5000, &start));
    cr_assert(candle_tracker_due(t, s, T0 + MIN + 5000, 5000, &start));
    cr_assert_eq(start, T0);
    /* The WebSocket close arrives: nothing due any more. */
    struct ab_candle fin = candle("BTCUSDT", T0, 3, true, T0 + MIN);
    cr_assert_eq(candle_tracker_offer(t, &fin, false), CANDLE_PUBLISH);
    cr_assert_not(candle_tracker_due(t, s, T0 + MIN + 5000, 5000, &start));
    candle_tracker_free(t);
}

Test(candles, quiet_symbol_closed_from_rest)
{
    /* No x:true ever comes: REST closes the candle, once. */
    struct candle_tracker *t = mk();
    size_t s;
    candle_tracker_find(t, "BTCUSDT", AB_I_1M, &s);
    candle_tracker_start(t, T0 + 1000, 0);
    struct ab_candle upd = candle("BTCUSDT", T0, 2, false, T0 + 2000);
    cr_assert_eq(candle_tracker_offer(t, &upd, false), CANDLE_PUBLISH);
    int64_t start = 0, now = T0 + MIN + 6000;
    cr_assert(candle_tracker_due(t, s, now, 5000, &start));
    candle_tracker_fetch_begin(t, s);
    cr_assert_not(candle_tracker_due(t, s, now, 5000, &start), "in flight");
    struct ab_candle row = candle("BTCUSDT", T0, 2, true, 0);
    cr_assert_eq(candle_tracker_offer(t, &row, true), CANDLE_PUBLISH);
    struct ab_candle open_row = candle("BTCUSDT", T0 + MIN, 0, false, 0);
    cr_assert_eq(candle_tracker_offer(t, &open_row, true), CANDLE_NOT_FINAL);
    candle_tracker_fetch_end(t, s, true, now, 5000);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0);
    cr_assert_not(candle_tracker_due(t, s, now, 5000, &start));
    /* The late x:true is then a duplicate of a final candle. */
    struct ab_candle fin = candle("BTCUSDT", T0, 2, true, T0 + MIN + 7000);
    cr_assert_eq(candle_tracker_offer(t, &fin, false), CANDLE_FINAL);
    struct candle_tracker_stats st;
    candle_tracker_stats(t, &st);
    cr_assert_eq(st.published_rest, 1);
    candle_tracker_free(t);
}

Test(candles, backfill_hole_and_out_of_order_closes)
{
    struct candle_tracker *t = mk();
    size_t s;
    candle_tracker_find(t, "BTCUSDT", AB_I_1M, &s);
    candle_tracker_start(t, T0 + 1000, 3 * MIN); /* closed_through = T0 - 4min */
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 - 4 * MIN);
    /* The stream delivers the close of T0 before the backfill answered. */
    struct ab_candle ws = candle("BTCUSDT", T0, 4, true, T0 + MIN);
    cr_assert_eq(candle_tracker_offer(t, &ws, false), CANDLE_PUBLISH);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 - 4 * MIN, "hole before T0");
    int64_t start = 0, now = T0 + MIN + 500;
    cr_assert(candle_tracker_due(t, s, now, 0, &start));
    cr_assert_eq(start, T0 - 3 * MIN);
    candle_tracker_fetch_begin(t, s);
    for (int64_t k = 3; k >= 1; k--) {
        struct ab_candle r = candle("BTCUSDT", T0 - k * MIN, 10 + k, true, 0);
        cr_assert_eq(candle_tracker_offer(t, &r, true), CANDLE_PUBLISH);
    }
    /* The REST copy of T0 is already final. */
    struct ab_candle r0 = candle("BTCUSDT", T0, 4, true, 0);
    cr_assert_eq(candle_tracker_offer(t, &r0, true), CANDLE_FINAL);
    candle_tracker_fetch_end(t, s, true, now, 5000);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0);
    candle_tracker_free(t);
}

Test(candles, rest_skipping_open_times_moves_on)
{
    /* A halted symbol: REST has no rows for some open times. */
    struct candle_tracker *t = mk();
    size_t s;
    candle_tracker_find(t, "BTCUSDT", AB_I_1M, &s);
    candle_tracker_start(t, T0 + 1000, 5 * MIN); /* closed_through = T0 - 6min */
    int64_t start = 0, now = T0 + 2000;
    cr_assert(candle_tracker_due(t, s, now, 0, &start));
    candle_tracker_fetch_begin(t, s);
    struct ab_candle r = candle("BTCUSDT", T0 - 2 * MIN, 1, true, 0);
    cr_assert_eq(candle_tracker_offer(t, &r, true), CANDLE_PUBLISH);
    candle_tracker_fetch_end(t, s, true, now, 5000);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 - 2 * MIN);
    /* T0 - 1min is still due (its close passed): asked again at once. */
    cr_assert(candle_tracker_due(t, s, now, 0, &start));
    cr_assert_eq(start, T0 - MIN);
    /* An answer with nothing new waits retry_ms. */
    candle_tracker_fetch_begin(t, s);
    candle_tracker_fetch_end(t, s, true, now, 5000);
    cr_assert_not(candle_tracker_due(t, s, now + 4999, 0, &start));
    cr_assert(candle_tracker_due(t, s, now + 5000, 0, &start));
    /* A failed request waits too; a kick (reconnect) lifts the wait. */
    candle_tracker_fetch_begin(t, s);
    candle_tracker_fetch_end(t, s, false, now + 5000, 5000);
    cr_assert_not(candle_tracker_due(t, s, now + 6000, 0, &start));
    candle_tracker_kick(t);
    cr_assert(candle_tracker_due(t, s, now + 6000, 0, &start));
    candle_tracker_free(t);
}

Test(candles, monthly_interval)
{
    static const char one[1][AB_SYMBOL_MAX] = {"BTCUSDT"};
    const enum ab_interval mo[1] = {AB_I_1MO};
    struct candle_tracker *t = NULL;
    cr_assert_eq(candle_tracker_new(one, 1, mo, 1, &t), 0);
    /* 2024-03-15: the candle before February opens 2024-01-01. */
    candle_tracker_start(t, 1710460800000LL, 30LL * 24 * 3600 * 1000);
    cr_assert_eq(candle_tracker_closed_through(t, 0), 1704067200000LL);
    int64_t start = 0;
    cr_assert(candle_tracker_due(t, 0, 1710460800000LL, 0, &start));
    cr_assert_eq(start, 1706745600000LL); /* 2024-02-01 */
    candle_tracker_free(t);
}

Test(candles, hash_ignores_event_time_and_trade_ids)
{
    struct ab_candle a = candle("BTCUSDT", T0, 5, true, 1);
    struct ab_candle b = a;
    b.event_time = 99;
    b.first_trade_id = 10;
    b.last_trade_id = 20;
    cr_assert_eq(candle_content_hash(&a), candle_content_hash(&b));
    b.volume = ab_dec_from_units(1);
    cr_assert_neq(candle_content_hash(&a), candle_content_hash(&b));
    b = a;
    b.closed = false;
    cr_assert_neq(candle_content_hash(&a), candle_content_hash(&b));
}

Test(candles, rewind_asks_rest_again_for_a_lost_close)
{
    /* The bus sink had to drop the close of T0 after it was published. */
    struct candle_tracker *t = mk();
    size_t s;
    candle_tracker_find(t, "BTCUSDT", AB_I_1M, &s);
    candle_tracker_start(t, T0 + 1000, 0); /* closed_through = T0 - 1min */
    struct ab_candle fin = candle("BTCUSDT", T0, 3, true, T0 + MIN);
    cr_assert_eq(candle_tracker_offer(t, &fin, false), CANDLE_PUBLISH);
    struct ab_candle fin1 = candle("BTCUSDT", T0 + MIN, 4, true, T0 + 2 * MIN);
    cr_assert_eq(candle_tracker_offer(t, &fin1, false), CANDLE_PUBLISH);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 + MIN);
    int64_t start = 0, now = T0 + 2 * MIN + 6000;
    cr_assert_not(candle_tracker_due(t, s, now, 5000, &start));
    candle_tracker_rewind(t, "BTCUSDT", AB_I_1M, T0);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 - MIN);
    cr_assert(candle_tracker_due(t, s, now, 5000, &start));
    cr_assert_eq(start, T0);
    /* The identical REST row is no duplicate now; the later one went
     * through already (an identical copy is still caught by the ring). */
    candle_tracker_fetch_begin(t, s);
    struct ab_candle r0 = candle("BTCUSDT", T0, 3, true, 0);
    cr_assert_eq(candle_tracker_offer(t, &r0, true), CANDLE_PUBLISH);
    struct ab_candle r1 = candle("BTCUSDT", T0 + MIN, 4, true, 0);
    cr_assert_eq(candle_tracker_offer(t, &r1, true), CANDLE_DUPLICATE);
    candle_tracker_fetch_end(t, s, true, now, 5000);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 + MIN);
    cr_assert_not(candle_tracker_due(t, s, now, 5000, &start));
    candle_tracker_free(t);
}

Test(candles, rewind_during_a_fetch_holds_closed_through)
{
    struct candle_tracker *t = mk();
    size_t s;
    candle_tracker_find(t, "BTCUSDT", AB_I_1M, &s);
    candle_tracker_start(t, T0 + 1000, 3 * MIN); /* closed_through = T0 - 4min */
    int64_t start = 0, now = T0 + MIN + 500;
    cr_assert(candle_tracker_due(t, s, now, 0, &start));
    candle_tracker_fetch_begin(t, s);
    for (int64_t k = 3; k >= 0; k--) {
        struct ab_candle r = candle("BTCUSDT", T0 - k * MIN, 10 + k, true, 0);
        cr_assert_eq(candle_tracker_offer(t, &r, true), CANDLE_PUBLISH);
        if (k == 2) /* this one could not be delivered */
            candle_tracker_rewind(t, "BTCUSDT", AB_I_1M, T0 - 2 * MIN);
    }
    candle_tracker_fetch_end(t, s, true, now, 5000);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0 - 3 * MIN, "stops before the lost one");
    cr_assert(candle_tracker_due(t, s, now + 5000, 0, &start));
    cr_assert_eq(start, T0 - 2 * MIN);
    candle_tracker_fetch_begin(t, s);
    struct ab_candle again = candle("BTCUSDT", T0 - 2 * MIN, 12, true, 0);
    cr_assert_eq(candle_tracker_offer(t, &again, true), CANDLE_PUBLISH);
    candle_tracker_fetch_end(t, s, true, now + 5000, 5000);
    cr_assert_eq(candle_tracker_closed_through(t, s), T0);
    candle_tracker_free(t);
}

#include <criterion/criterion.h>

#include "common/err.h"
#include "progress.h"

#define MIN_MS 60000LL
/* 2024-01-01T00:00:00Z */
#define T0 1704067200000LL

Test(progress, count_fixed_intervals)
{
    uint64_t n = 0;
    cr_assert_eq(progress_count(AB_I_1M, T0, T0 + 119 * MIN_MS, &n), 0);
    cr_assert_eq(n, 120);
    cr_assert_eq(progress_count(AB_I_1M, T0, T0, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(progress_count(AB_I_1H, T0, T0 - 3600000, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(progress_count(AB_I_1S, T0, T0 + 86399000, &n), 0);
    cr_assert_eq(n, 86400);
    /* 1w opens on Mondays: 2024-01-01 was a Monday. */
    cr_assert_eq(progress_count(AB_I_1W, T0, T0 + 3 * 7 * 86400000LL, &n), 0);
    cr_assert_eq(n, 4);
}

Test(progress, count_months_by_calendar)
{
    uint64_t n = 0;
    int64_t mar = ab_interval_next(AB_I_1MO, ab_interval_next(AB_I_1MO, T0));
    cr_assert_eq(progress_count(AB_I_1MO, T0, mar, &n), 0);
    cr_assert_eq(n, 3);
    /* 2023-11 .. 2024-02: across the year end. */
    int64_t nov = ab_interval_align(AB_I_1MO, T0 - 40LL * 86400000);
    int64_t feb = ab_interval_next(AB_I_1MO, T0);
    cr_assert_eq(progress_count(AB_I_1MO, nov, feb, &n), 0);
    cr_assert_eq(n, 4);
    /* Before the epoch, 1969-12 .. 1970-01. */
    int64_t dec69 = ab_interval_align(AB_I_1MO, -1);
    cr_assert_eq(progress_count(AB_I_1MO, dec69, 0, &n), 0);
    cr_assert_eq(n, 2);
    /* Ten years. */
    int64_t t = T0;
    for (int i = 0; i < 120; i++)
        t = ab_interval_next(AB_I_1MO, t);
    cr_assert_eq(progress_count(AB_I_1MO, T0, t, &n), 0);
    cr_assert_eq(n, 121);
}

Test(progress, count_rejects_bad_input)
{
    uint64_t n = 7;
    cr_assert_eq(progress_count(AB_I_1M, T0 + 1, T0 + MIN_MS, &n), AB_EINVAL);
    cr_assert_eq(progress_count(AB_I_1MO, T0, T0 + MIN_MS, &n), AB_EINVAL);
    cr_assert_eq(progress_count(AB_I_COUNT, T0, T0, &n), AB_EINVAL);
    cr_assert_eq(progress_count((enum ab_interval) - 1, T0, T0, &n), AB_EINVAL);
    struct progress *p = NULL;
    cr_assert_eq(progress_new(0, &p), AB_EINVAL);
    cr_assert_eq(progress_new(PROGRESS_SERIES_MAX + 1, &p), AB_EINVAL);
    cr_assert_eq(progress_new(2, &p), 0);
    cr_assert_eq(progress_begin(p, 2, AB_I_1M, T0, T0, 0), AB_EINVAL);
    cr_assert_eq(progress_begin(p, 0, AB_I_1M, T0 + 5, T0 + MIN_MS, 0), AB_EINVAL);
    cr_assert_eq(progress_begin(p, 0, AB_I_1M, T0, T0, 0), 1);
    cr_assert_eq(progress_begin(p, 0, AB_I_1H, T0, T0, 0), AB_ESTATE);
    cr_assert_eq(progress_update(p, 5, T0, 0), 0);
    struct progress_view v;
    progress_run(p, 9, 0, &v);
    cr_assert_not(v.started);
    progress_free(p);
}

Test(progress, one_run_done_rate_eta)
{
    struct progress *p = NULL;
    cr_assert_eq(progress_new(1, &p), 0);
    struct progress_view v;
    progress_total(p, 0, &v);
    cr_assert_not(v.started);
    /* 120 candles, started at t=1000 ms. */
    cr_assert_eq(progress_begin(p, 0, AB_I_1M, T0, T0 + 119 * MIN_MS, 1000), 1);
    progress_run(p, 0, 1000, &v);
    cr_assert(v.active);
    cr_assert_eq(v.todo, 120);
    cr_assert_eq(v.done, 0);
    cr_assert_eq(v.eta_s, -1);
    cr_assert_float_eq(v.rate, 0.0, 1e-9);
    /* closed_through still before the run: nothing done. */
    cr_assert_eq(progress_update(p, 0, T0 - MIN_MS, 2000), 0);
    progress_run(p, 0, 2000, &v);
    cr_assert_eq(v.done, 0);
    /* 30 candles after 3 s: 10/s, 90 left -> 9 s. */
    cr_assert_eq(progress_update(p, 0, T0 + 29 * MIN_MS, 4000), 0);
    progress_run(p, 0, 4000, &v);
    cr_assert_eq(v.done, 30);
    cr_assert_float_eq(v.pct, 25.0, 1e-9);
    cr_assert_float_eq(v.rate, 10.0, 1e-9);
    cr_assert_eq(v.eta_s, 9);
    cr_assert_eq(v.elapsed_ms, 3000);
    /* done never goes back (a rewind moves closed_through back). */
    cr_assert_eq(progress_update(p, 0, T0 + 9 * MIN_MS, 5000), 0);
    progress_run(p, 0, 5000, &v);
    cr_assert_eq(v.done, 30);
    /* A second ask while going extends the run, no new start. */
    cr_assert_eq(progress_begin(p, 0, AB_I_1M, T0 + 30 * MIN_MS, T0 + 129 * MIN_MS, 5000), 0);
    progress_run(p, 0, 5000, &v);
    cr_assert_eq(v.todo, 130);
    cr_assert_eq(v.from, T0);
    cr_assert_eq(v.to, T0 + 129 * MIN_MS);
    /* Beyond `to` (REST skipped missing candles): finished, done = todo. */
    int ev = progress_update(p, 0, T0 + 140 * MIN_MS, 11000);
    cr_assert_eq(ev, PROGRESS_RUN_FINISHED | PROGRESS_ROUND_FINISHED);
    progress_run(p, 0, 50000, &v);
    cr_assert_not(v.active);
    cr_assert_eq(v.done, 130);
    cr_assert_eq(v.elapsed_ms, 10000);
    cr_assert_float_eq(v.rate, 13.0, 1e-9);
    cr_assert_eq(v.eta_s, 0);
    /* Finished runs ignore updates. */
    cr_assert_eq(progress_update(p, 0, T0 + 200 * MIN_MS, 12000), 0);
    progress_free(p);
}

Test(progress, round_sums_runs_and_finishes_with_the_last)
{
    struct progress *p = NULL;
    cr_assert_eq(progress_new(3, &p), 0);
    int64_t h0 = T0;
    cr_assert_eq(progress_begin(p, 0, AB_I_1M, T0, T0 + 59 * MIN_MS, 0), 1);
    cr_assert_eq(progress_begin(p, 2, AB_I_1H, h0, h0 + 3 * 3600000LL, 0), 1);
    struct progress_view v;
    progress_total(p, 0, &v);
    cr_assert(v.active);
    cr_assert_eq(v.todo, 64);
    cr_assert_eq(v.runs, 2);
    cr_assert_eq(v.runs_active, 2);
    cr_assert_eq(progress_update(p, 0, T0 + 59 * MIN_MS, 2000), PROGRESS_RUN_FINISHED);
    progress_total(p, 2000, &v);
    cr_assert(v.active);
    cr_assert_eq(v.done, 60);
    cr_assert_eq(v.runs_active, 1);
    cr_assert_float_eq(v.rate, 30.0, 1e-9);
    cr_assert_eq(v.eta_s, 0); /* 4 left at 30/s rounds to 0 */
    cr_assert_eq(progress_update(p, 2, h0 + 1 * 3600000LL, 4000), 0);
    progress_total(p, 4000, &v);
    cr_assert_eq(v.done, 62);
    cr_assert_eq(progress_update(p, 2, h0 + 3 * 3600000LL, 4000),
                 PROGRESS_RUN_FINISHED | PROGRESS_ROUND_FINISHED);
    progress_total(p, 9000, &v);
    cr_assert_not(v.active);
    cr_assert_eq(v.done, 64);
    cr_assert_eq(v.todo, 64);
    cr_assert_eq(v.elapsed_ms, 4000);
    /* A new round counts only its own runs. */
    cr_assert_eq(progress_begin(p, 1, AB_I_1M, T0, T0 + 9 * MIN_MS, 10000), 1);
    progress_total(p, 10000, &v);
    cr_assert(v.active);
    cr_assert_eq(v.todo, 10);
    cr_assert_eq(v.done, 0);
    cr_assert_eq(v.runs, 1);
    progress_free(p);
}

Test(progress, log_every)
{
    struct progress *p = NULL;
    cr_assert_eq(progress_new(1, &p), 0);
    cr_assert_not(progress_log_due(p, 100000, 5000));
    cr_assert_eq(progress_begin(p, 0, AB_I_1M, T0, T0 + 9 * MIN_MS, 1000), 1);
    cr_assert_not(progress_log_due(p, 5999, 5000));
    cr_assert(progress_log_due(p, 6000, 5000));
    cr_assert_not(progress_log_due(p, 10999, 5000));
    cr_assert(progress_log_due(p, 11000, 5000));
    progress_update(p, 0, T0 + 9 * MIN_MS, 12000);
    cr_assert_not(progress_log_due(p, 30000, 5000));
    progress_free(p);
}

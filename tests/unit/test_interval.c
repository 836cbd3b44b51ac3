#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/interval.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

/* Test oracle: days from 1970-01-01, by counting whole years and months. */
static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t ymd_ms(int y, int m, int d)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += leap(yy) ? 366 : 365;
    for (int yy = y; yy < 1970; yy++)
        days -= leap(yy) ? 366 : 365;
    for (int mm = 1; mm < m; mm++)
        days += mdays[mm - 1] + (mm == 2 && leap(y));
    return (days + d - 1) * DAY;
}

static const struct {
    const char *name;
    enum ab_interval iv;
    int64_t ms;
} expected[] = {
    {"1s", AB_I_1S, SEC},      {"1m", AB_I_1M, MIN},        {"3m", AB_I_3M, 3 * MIN},
    {"5m", AB_I_5M, 5 * MIN},  {"15m", AB_I_15M, 15 * MIN}, {"30m", AB_I_30M, 30 * MIN},
    {"1h", AB_I_1H, HOUR},     {"2h", AB_I_2H, 2 * HOUR},   {"4h", AB_I_4H, 4 * HOUR},
    {"6h", AB_I_6H, 6 * HOUR}, {"8h", AB_I_8H, 8 * HOUR},   {"12h", AB_I_12H, 12 * HOUR},
    {"1d", AB_I_1D, DAY},      {"3d", AB_I_3D, 3 * DAY},    {"1w", AB_I_1W, 7 * DAY},
    {"1M", AB_I_1MO, 0},
};

Test(interval, names_round_trip)
{
    cr_assert_eq(sizeof expected / sizeof *expected, (size_t)AB_I_COUNT);
    for (size_t i = 0; i < AB_I_COUNT; i++) {
        enum ab_interval iv = AB_I_COUNT;
        const char *n = expected[i].name;
        cr_assert_eq(ab_interval_parse(n, strlen(n), &iv), 0, "parse %s", n);
        cr_assert_eq(iv, expected[i].iv, "parse %s", n);
        cr_assert_str_eq(ab_interval_name(iv), n);
        cr_assert_eq(ab_interval_ms(iv), expected[i].ms, "ms of %s", n);
    }
    cr_assert_str_eq(ab_interval_name(AB_I_COUNT), "?");
    cr_assert_str_eq(ab_interval_name((enum ab_interval) - 1), "?");
    cr_assert_eq(ab_interval_ms(AB_I_COUNT), 0);
}

Test(interval, bad_names)
{
    const char *bad[] = {"1H", "2m", "",    "1mo", "1W",   "1D",  "1S",  "60m",
                         "1",  "m",  "1m ", " 1m", "1d\n", "01m", "1Mo", "4H"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        enum ab_interval iv = AB_I_5M;
        cr_assert_eq(ab_interval_parse(bad[i], strlen(bad[i]), &iv), AB_EINVAL, "\"%s\"", bad[i]);
        cr_assert_eq(iv, AB_I_5M, "output touched for \"%s\"", bad[i]);
    }
    enum ab_interval iv;
    /* length is honoured: "1mo" cut to 2 bytes is "1m" */
    cr_assert_eq(ab_interval_parse("1mo", 2, &iv), 0);
    cr_assert_eq(iv, AB_I_1M);
    cr_assert_eq(ab_interval_parse("1m", 1, &iv), AB_EINVAL);
}

Test(interval, fixed_alignment)
{
    int64_t t = ymd_ms(2024, 3, 15) + 13 * HOUR + 47 * MIN + 12 * SEC + 345;
    cr_assert_eq(ab_interval_align(AB_I_1S, t), t - 345);
    cr_assert_eq(ab_interval_align(AB_I_1M, t), t - 12 * SEC - 345);
    cr_assert_eq(ab_interval_align(AB_I_15M, t), ymd_ms(2024, 3, 15) + 13 * HOUR + 45 * MIN);
    cr_assert_eq(ab_interval_align(AB_I_4H, t), ymd_ms(2024, 3, 15) + 12 * HOUR);
    cr_assert_eq(ab_interval_align(AB_I_12H, t), ymd_ms(2024, 3, 15) + 12 * HOUR);
    cr_assert_eq(ab_interval_align(AB_I_1D, t), ymd_ms(2024, 3, 15));
    /* 3d: multiples of 3 days since the epoch */
    int64_t a3 = ab_interval_align(AB_I_3D, t);
    cr_assert_eq(a3 % (3 * DAY), 0);
    cr_assert(a3 <= t && t < a3 + 3 * DAY);
    cr_assert_eq(ab_interval_align(AB_I_3D, 3 * DAY - 1), 0);
    cr_assert_eq(ab_interval_align(AB_I_3D, 3 * DAY), 3 * DAY);

    for (size_t i = 0; i + 1 < AB_I_COUNT; i++) {
        enum ab_interval iv = expected[i].iv;
        int64_t ms = expected[i].ms;
        for (int64_t probe = -5 * ms - 1; probe <= 5 * ms + 1; probe += ms / 2 + 1) {
            int64_t a = ab_interval_align(iv, probe);
            cr_assert(a <= probe && probe - a < ms, "%s align(%lld) = %lld", expected[i].name,
                      (long long)probe, (long long)a);
            cr_assert(ab_interval_is_aligned(iv, a));
            cr_assert_eq(ab_interval_align(iv, a), a);
            cr_assert_eq(ab_interval_next(iv, a), a + ms);
            cr_assert_eq(ab_interval_is_aligned(iv, probe), a == probe);
        }
    }
}

Test(interval, negative_times)
{
    cr_assert_eq(ab_interval_align(AB_I_1M, -1), -MIN);
    cr_assert_eq(ab_interval_align(AB_I_1M, -MIN), -MIN);
    cr_assert_eq(ab_interval_align(AB_I_1M, -MIN - 1), -2 * MIN);
    cr_assert_eq(ab_interval_align(AB_I_1D, -1), -DAY);
    cr_assert_eq(ab_interval_align(AB_I_3D, -1), -3 * DAY);
    cr_assert_eq(ab_interval_align(AB_I_1S, -999), -SEC);
    cr_assert(!ab_interval_is_aligned(AB_I_1H, -1));
    cr_assert(ab_interval_is_aligned(AB_I_1H, -HOUR));
    /* 1969-12-29 was the Monday before the epoch */
    cr_assert_eq(ab_interval_align(AB_I_1W, -1), -3 * DAY);
    cr_assert_eq(ab_interval_align(AB_I_1W, 0), -3 * DAY);
    cr_assert_eq(ab_interval_align(AB_I_1MO, -1), ymd_ms(1969, 12, 1));
    cr_assert_eq(ab_interval_align(AB_I_1MO, ymd_ms(1900, 2, 28) + 5), ymd_ms(1900, 2, 1));
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(1900, 2, 1)), ymd_ms(1900, 3, 1));
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(1969, 12, 1)), 0);
    /* extreme inputs saturate instead of overflowing (checked under UBSan) */
    cr_assert_eq(ab_interval_next(AB_I_1W, INT64_MAX), INT64_MAX);
    cr_assert(ab_interval_align(AB_I_1MO, INT64_MIN) <= INT64_MIN + 31 * DAY);
    cr_assert(ab_interval_align(AB_I_1W, INT64_MIN + 1) <= INT64_MIN + 1);
    cr_assert(ab_interval_align(AB_I_1MO, INT64_MAX) <= INT64_MAX);
}

Test(interval, week_opens_monday)
{
    const int64_t mon = 1704067200000LL; /* 2024-01-01 00:00 UTC, a Monday */
    cr_assert_eq(mon, ymd_ms(2024, 1, 1));
    cr_assert(ab_interval_is_aligned(AB_I_1W, mon));
    cr_assert_eq(ab_interval_align(AB_I_1W, mon + 6 * DAY + 23 * HOUR), mon);
    cr_assert_eq(ab_interval_align(AB_I_1W, mon - 1), mon - 7 * DAY);
    cr_assert_eq(ab_interval_next(AB_I_1W, mon), mon + 7 * DAY);
    cr_assert(!ab_interval_is_aligned(AB_I_1W, ymd_ms(2024, 1, 4))); /* a Thursday */
    cr_assert(!ab_interval_is_aligned(AB_I_1W, 0));                  /* epoch: Thursday */
    cr_assert(ab_interval_is_aligned(AB_I_1W, 4 * DAY));             /* 1970-01-05: Monday */
    cr_assert_eq((ab_interval_align(AB_I_1W, 1555889400000LL) - 4 * DAY) % (7 * DAY), 0);
}

Test(interval, calendar_months)
{
    /* across year ends and leap Februaries */
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(2023, 12, 1)), ymd_ms(2024, 1, 1));
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(2024, 1, 1)), ymd_ms(2024, 2, 1));
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(2024, 2, 1)), ymd_ms(2024, 3, 1));
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(2024, 2, 1)) - ymd_ms(2024, 2, 1), 29 * DAY);
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(2023, 2, 1)) - ymd_ms(2023, 2, 1), 28 * DAY);
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(2000, 2, 1)) - ymd_ms(2000, 2, 1), 29 * DAY);
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(2100, 2, 1)) - ymd_ms(2100, 2, 1), 28 * DAY);
    cr_assert_eq(ab_interval_align(AB_I_1MO, ymd_ms(2024, 2, 29) + DAY - 1), ymd_ms(2024, 2, 1));
    cr_assert_eq(ab_interval_align(AB_I_1MO, ymd_ms(2024, 3, 1)), ymd_ms(2024, 3, 1));
    cr_assert_eq(ab_interval_align(AB_I_1MO, ymd_ms(2024, 12, 31) + 12 * HOUR),
                 ymd_ms(2024, 12, 1));
    cr_assert(ab_interval_is_aligned(AB_I_1MO, ymd_ms(2024, 3, 1)));
    cr_assert(!ab_interval_is_aligned(AB_I_1MO, ymd_ms(2024, 3, 2)));
    cr_assert(!ab_interval_is_aligned(AB_I_1MO, ymd_ms(2024, 3, 1) + 1));
    /* next from an unaligned time steps from the candle containing it */
    cr_assert_eq(ab_interval_next(AB_I_1MO, ymd_ms(2024, 2, 10)), ymd_ms(2024, 3, 1));
    /* walk every month from 1960 to 2100 against the oracle */
    int64_t open = ymd_ms(1960, 1, 1);
    for (int y = 1960; y <= 2100; y++) {
        for (int m = 1; m <= 12; m++) {
            cr_assert_eq(open, ymd_ms(y, m, 1), "%04d-%02d", y, m);
            cr_assert_eq(ab_interval_align(AB_I_1MO, open + 15 * DAY + 7), open);
            cr_assert(ab_interval_align(AB_I_1MO, open - 1) < open);
            int64_t next = ab_interval_next(AB_I_1MO, open);
            cr_assert_eq(ab_interval_align(AB_I_1MO, next - 1), open, "%04d-%02d", y, m);
            open = next;
        }
    }
}

/* Every kline in a recorded REST response: aligned open, close == next - 1. */
static size_t check_klines(const char *rel, enum ab_interval iv)
{
    char path[512];
    snprintf(path, sizeof path, "%s/binance/%s", AB_SHARED_DATA, rel);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    cr_assert_not_null(root, "%s: %s", path, jerr.text);
    cr_assert(json_is_array(root));
    size_t i;
    json_t *row;
    int64_t prev_open = 0;
    json_array_foreach(root, i, row)
    {
        cr_assert(json_is_array(row) && json_array_size(row) == 12, "%s row %zu", rel, i);
        int64_t open = json_integer_value(json_array_get(row, 0));
        int64_t close = json_integer_value(json_array_get(row, 6));
        cr_assert(ab_interval_is_aligned(iv, open), "%s row %zu open %lld", rel, i,
                  (long long)open);
        cr_assert_eq(close, ab_interval_next(iv, open) - 1, "%s row %zu", rel, i);
        if (i > 0)
            cr_assert_eq(open, ab_interval_next(iv, prev_open), "%s row %zu: gap", rel, i);
        prev_open = open;
    }
    size_t n = json_array_size(root);
    json_decref(root);
    return n;
}

Test(interval, recorded_klines)
{
    cr_assert_eq(
        check_klines("python-binance-c22c7de/klines_30m_2019-04-11_to_2019-04-21.json", AB_I_30M),
        500);
    cr_assert_eq(check_klines("nautilus-209a58e/http_spot_market_klines.json", AB_I_1M), 10);
}

/*
 * Tests for common/indicators: the C results against pandas reference
 * vectors (the CSV files in tests/data/indicators, made by make_indicator_vectors.py),
 * parameter validation, empty/short input, and a 100k-point precision check
 * against a straightforward O(n*period) long double recomputation.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/indicators.h"

/* ---- a tiny CSV reader for the vectors (header row, then numbers) ---- */

#define CSV_MAX_BYTES (4u << 20)
#define CSV_MAX_COLS  64
#define CSV_MAX_ROWS  4096
#define CSV_NAME_MAX  48

struct csv {
    size_t ncols, nrows;
    char names[CSV_MAX_COLS][CSV_NAME_MAX];
    double *vals; /* column-major: vals[c * nrows + r]; owned */
};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t got;

    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    buf = malloc(CSV_MAX_BYTES + 1);
    cr_assert_not_null(buf);
    got = fread(buf, 1, CSV_MAX_BYTES + 1, f);
    fclose(f);
    cr_assert(got > 0 && got <= CSV_MAX_BYTES, "%s: bad size %zu", path, got);
    buf[got] = '\0';
    *len = got;
    return buf;
}

static void csv_load(struct csv *t, const char *name)
{
    char path[512];
    size_t len, c = 0, r = 0;
    char *buf, *p, *line_end;

    snprintf(path, sizeof(path), "%s/indicators/%s", AB_TEST_DATA, name);
    buf = slurp(path, &len);
    memset(t, 0, sizeof(*t));
    /* header */
    p = buf;
    line_end = strchr(p, '\n');
    cr_assert_not_null(line_end);
    while (p < line_end) {
        size_t w = strcspn(p, ",\n");
        cr_assert(t->ncols < CSV_MAX_COLS && w > 0 && w < CSV_NAME_MAX);
        memcpy(t->names[t->ncols], p, w);
        t->names[t->ncols][w] = '\0';
        t->ncols++;
        p += w;
        if (*p == ',')
            p++;
    }
    p = line_end + 1;
    for (const char *q = p; *q; q++)
        t->nrows += *q == '\n';
    cr_assert(t->nrows > 0 && t->nrows <= CSV_MAX_ROWS);
    t->vals = calloc(t->ncols * t->nrows, sizeof(double));
    cr_assert_not_null(t->vals);
    for (r = 0; r < t->nrows; r++) {
        for (c = 0; c < t->ncols; c++) {
            char *end;
            double v = strtod(p, &end);
            cr_assert(end != p, "%s row %zu col %zu: not a number", name, r, c);
            cr_assert(*end == (c + 1 == t->ncols ? '\n' : ','), "%s row %zu col %zu", name, r, c);
            t->vals[c * t->nrows + r] = v;
            p = end + 1;
        }
    }
    cr_assert_eq(*p, '\0');
    free(buf);
}

static const double *csv_col(const struct csv *t, const char *name)
{
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(t->names[c], name) == 0)
            return t->vals + c * t->nrows;
    cr_assert_fail("column %s missing", name);
    return NULL;
}

static bool csv_has(const struct csv *t, const char *name)
{
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(t->names[c], name) == 0)
            return true;
    return false;
}

/*
 * Agreement: NaN exactly where pandas has NaN; otherwise 1e-9 relative
 * (zeros must be exact zeros). Most values are in fact bit-identical: the
 * kernels replay pandas' arithmetic; wma and the bands' width differ by a few
 * ulps (running identity vs numpy sums).
 */
static bool close_enough(double want, double got)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got))
        return want == got;
    return fabs(want - got) <= 1e-9 * fmax(fabs(want), fabs(got));
}

/* Returns the number of compared values; asserts every one agrees. */
static size_t expect_col(const struct csv *t, const char *col, const double *got)
{
    const double *want = csv_col(t, col);
    size_t bad = 0, first = 0;

    for (size_t i = 0; i < t->nrows; i++) {
        if (!close_enough(want[i], got[i])) {
            if (bad++ == 0)
                first = i;
        }
    }
    cr_expect_eq(bad, 0, "%s: %zu mismatches, first at %zu: pandas %.17g, C %.17g", col, bad, first,
                 want[first], got[first]);
    return t->nrows;
}

static const int ma_periods[] = {1, 2, 5, 14, 20, 50};

static size_t check_close_based(const char *file)
{
    struct csv t;
    char name[64];
    size_t checked = 0;
    const double *x;
    double *a, *b, *c;

    csv_load(&t, file);
    x = csv_col(&t, "close");
    a = malloc(t.nrows * sizeof(double));
    b = malloc(t.nrows * sizeof(double));
    c = malloc(t.nrows * sizeof(double));
    cr_assert(a && b && c);

    for (size_t k = 0; k < sizeof(ma_periods) / sizeof(ma_periods[0]); k++) {
        int p = ma_periods[k];
        cr_assert_eq(ab_ind_sma(x, t.nrows, p, a), 0);
        snprintf(name, sizeof(name), "sma_%d", p);
        checked += expect_col(&t, name, a);
        cr_assert_eq(ab_ind_ema(x, t.nrows, p, a), 0);
        snprintf(name, sizeof(name), "ema_%d", p);
        checked += expect_col(&t, name, a);
        cr_assert_eq(ab_ind_wma(x, t.nrows, p, a), 0);
        snprintf(name, sizeof(name), "wma_%d", p);
        checked += expect_col(&t, name, a);
    }
    for (int p = 2; p <= 14; p += 12) {
        cr_assert_eq(ab_ind_rsi(x, t.nrows, p, AB_RSI_SIMPLE, a), 0);
        snprintf(name, sizeof(name), "rsi_simple_%d", p);
        checked += expect_col(&t, name, a);
        cr_assert_eq(ab_ind_rsi(x, t.nrows, p, AB_RSI_WILDER, a), 0);
        snprintf(name, sizeof(name), "rsi_wilder_%d", p);
        checked += expect_col(&t, name, a);
    }
    static const int macds[][3] = {{12, 26, 9}, {5, 35, 5}};
    for (size_t k = 0; k < 2; k++) {
        const int *m = macds[k];
        cr_assert_eq(ab_ind_macd(x, t.nrows, m[0], m[1], m[2], a, b, c), 0);
        snprintf(name, sizeof(name), "macd_%d_%d_%d", m[0], m[1], m[2]);
        checked += expect_col(&t, name, a);
        snprintf(name, sizeof(name), "macdsig_%d_%d_%d", m[0], m[1], m[2]);
        checked += expect_col(&t, name, b);
        snprintf(name, sizeof(name), "macdhist_%d_%d_%d", m[0], m[1], m[2]);
        checked += expect_col(&t, name, c);
    }
    cr_assert_eq(ab_ind_bbands(x, t.nrows, 20, 2.0, a, b, c), 0);
    checked += expect_col(&t, "bbup_20_2", a);
    checked += expect_col(&t, "bbmid_20_2", b);
    checked += expect_col(&t, "bblow_20_2", c);

    if (csv_has(&t, "high")) {
        const double *h = csv_col(&t, "high"), *l = csv_col(&t, "low");
        const double *v = csv_col(&t, "volume");
        cr_assert_eq(ab_ind_atr(h, l, x, t.nrows, 14, a), 0);
        checked += expect_col(&t, "atr_14", a);
        cr_assert_eq(ab_ind_vwap(h, l, x, v, t.nrows, 20, a), 0);
        checked += expect_col(&t, "vwap_20", a);
    }
    free(a);
    free(b);
    free(c);
    free(t.vals);
    return checked;
}

Test(indicators_vectors, binance_klines)
{
    /* 500 real candles x (18 MA + 4 RSI + 6 MACD + 3 BB + ATR + VWAP) columns */
    cr_assert_eq(check_close_based("klines.csv"), 500u * 33u);
}

Test(indicators_vectors, synthetic_ohlcv)
{
    cr_assert_eq(check_close_based("synthetic.csv"), 2000u * 33u);
}

Test(indicators_vectors, signed_series)
{
    cr_assert_eq(check_close_based("signed.csv"), 400u * 31u);
}

Test(indicators_vectors, nan_inputs)
{
    cr_assert_eq(check_close_based("nan.csv"), 80u * 31u);
}

/* The vectors' input must be the recorded candles, not a stale copy. */
Test(indicators_vectors, klines_input_is_the_recording)
{
    char path[512];
    size_t len;
    struct csv t;
    char *json, *p;
    const double *close;
    size_t i = 0;

    snprintf(path, sizeof(path),
             "%s/binance/python-binance-c22c7de/"
             "klines_30m_2019-04-11_to_2019-04-21.json",
             AB_SHARED_DATA);
    json = slurp(path, &len);
    csv_load(&t, "klines.csv");
    close = csv_col(&t, "close");
    /* each kline row: [open_time,"open","high","low","close",...] */
    for (p = strstr(json, "\n["); p != NULL; p = strstr(p + 1, "\n[")) {
        const char *q = p + 2;
        for (int field = 0; field < 4; field++) {
            q = strchr(q, ',');
            cr_assert_not_null(q);
            q++;
        }
        cr_assert_eq(*q, '"');
        cr_assert(i < t.nrows);
        cr_expect_eq(strtod(q + 1, NULL), close[i], "candle %zu", i);
        i++;
    }
    cr_assert_eq(i, 500);
    cr_assert_eq(t.nrows, 500);
    free(json);
    free(t.vals);
}

/* ---- hand-checked semantics ---- */

Test(indicators, rsi_flat_rising_falling)
{
    double x[12] = {10, 10, 10, 10, 11, 12, 13, 14, 13, 12, 11, 10};
    double out[12];

    cr_assert_eq(ab_ind_rsi(x, 12, 3, AB_RSI_SIMPLE, out), 0);
    for (int i = 0; i < 3; i++)
        cr_expect(isnan(out[i]), "warm-up %d", i);
    cr_expect(isnan(out[3]), "flat window: 0/0 is NaN");
    cr_expect_eq(out[6], 100.0, "only gains: avg_loss 0 gives 100");
    cr_expect_eq(out[7], 100.0);
    cr_expect_eq(out[11], 0.0, "only losses gives 0");
    /* window 8..10 (diffs +1, -1, -1): gain 1/3, loss 2/3 -> rs 0.5 */
    cr_expect(fabs(out[9] - (100.0 - 100.0 / 1.5)) < 1e-12, "%.17g", out[9]);

    cr_assert_eq(ab_ind_rsi(x, 12, 3, AB_RSI_WILDER, out), 0);
    cr_expect(isnan(out[2]));
    cr_expect(isnan(out[3]), "flat seed window is NaN");
    /* i=4: ag = (0*2 + 1)/3, al = 0 -> 100 */
    cr_expect_eq(out[4], 100.0);
}

Test(indicators, constant_series_is_exact)
{
    double x[64], out[64], up[64], mid[64], lo[64];

    for (int i = 0; i < 64; i++)
        x[i] = 0.1 * 3; /* not representable: rounding noise would show */
    cr_assert_eq(ab_ind_sma(x, 64, 7, out), 0);
    for (int i = 6; i < 64; i++)
        cr_expect_eq(out[i], x[0]);
    cr_assert_eq(ab_ind_ema(x, 64, 7, out), 0);
    for (int i = 0; i < 64; i++)
        cr_expect_eq(out[i], x[0]);
    cr_assert_eq(ab_ind_bbands(x, 64, 7, 2.0, up, mid, lo), 0);
    for (int i = 6; i < 64; i++) {
        cr_expect_eq(up[i], x[0]);
        cr_expect_eq(lo[i], x[0]);
    }
}

Test(indicators, ema_first_value_and_in_place)
{
    double x[5] = {1, 2, 3, 4, 5}, ref[5];

    cr_assert_eq(ab_ind_ema(x, 5, 3, ref), 0); /* alpha 0.5 */
    cr_expect_eq(ref[0], 1.0);
    cr_expect_eq(ref[1], 1.5);
    cr_expect_eq(ref[2], 2.25);
    cr_assert_eq(ab_ind_ema(x, 5, 3, x), 0);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(x[i], ref[i]);
    double y[3] = {1, 2, 3};
    cr_assert_eq(ab_ind_ema_alpha(y, 3, 1.0, ref), 0);
    cr_expect_eq(ref[2], 3.0, "alpha 1 is the input");
}

Test(indicators, wma_and_atr_and_vwap_by_hand)
{
    double x[4] = {1, 2, 3, 4}, out[4];

    cr_assert_eq(ab_ind_wma(x, 4, 3, out), 0);
    cr_expect(isnan(out[0]) && isnan(out[1]));
    cr_expect(fabs(out[2] - 14.0 / 6.0) < 1e-15); /* (1*1 + 2*2 + 3*3) / 6 */
    cr_expect(fabs(out[3] - 20.0 / 6.0) < 1e-15);

    double h[4] = {10, 12, 11, 15}, l[4] = {8, 9, 10, 11}, c[4] = {9, 11, 10, 14};
    /* TR1 = max(3, 3, 0) = 3; TR2 = max(1, 0, 1) = 1; TR3 = max(4, 5, 1) = 5 */
    cr_assert_eq(ab_ind_atr(h, l, c, 4, 2, out), 0);
    cr_expect(isnan(out[0]) && isnan(out[1]));
    cr_expect_eq(out[2], 2.0);
    cr_expect_eq(out[3], 3.5);

    double v[4] = {0, 0, 1, 3};
    cr_assert_eq(ab_ind_vwap(h, l, c, v, 4, 2, out), 0);
    cr_expect(isnan(out[0]));
    cr_expect(isnan(out[1]), "no volume in the window: NaN");
    cr_expect(fabs(out[2] - 31.0 / 3.0) < 1e-12, "%.17g", out[2]);
    /* (31/3 * 1 + 40/3 * 3) / 4 */
    cr_expect(fabs(out[3] - (31.0 / 3.0 + 40.0) / 4.0) < 1e-12, "%.17g", out[3]);
}

/* ---- parameters, empty and short input ---- */

Test(indicators, parameter_errors)
{
    double x[4] = {1, 2, 3, 4}, a[4], b[4], c[4];

    cr_expect_eq(ab_ind_sma(x, 4, 0, a), AB_EINVAL);
    cr_expect_eq(ab_ind_sma(x, 4, -3, a), AB_EINVAL);
    cr_expect_eq(ab_ind_sma(x, 4, AB_IND_PERIOD_MAX + 1, a), AB_EINVAL);
    cr_expect_eq(ab_ind_sma(NULL, 4, 2, a), AB_EINVAL);
    cr_expect_eq(ab_ind_sma(x, 4, 2, NULL), AB_EINVAL);
    cr_expect_eq(ab_ind_ema(x, 4, 0, a), AB_EINVAL);
    cr_expect_eq(ab_ind_ema_alpha(x, 4, 0.0, a), AB_EINVAL);
    cr_expect_eq(ab_ind_ema_alpha(x, 4, 1.5, a), AB_EINVAL);
    cr_expect_eq(ab_ind_ema_alpha(x, 4, NAN, a), AB_EINVAL);
    cr_expect_eq(ab_ind_wma(x, 4, 0, a), AB_EINVAL);
    cr_expect_eq(ab_ind_rsi(x, 4, 0, AB_RSI_SIMPLE, a), AB_EINVAL);
    cr_expect_eq(ab_ind_rsi(x, 4, 2, (enum ab_rsi_smoothing)7, a), AB_EINVAL);
    cr_expect_eq(ab_ind_macd(x, 4, 26, 12, 9, a, b, c), AB_EINVAL);
    cr_expect_eq(ab_ind_macd(x, 4, 12, 12, 9, a, b, c), AB_EINVAL);
    cr_expect_eq(ab_ind_macd(x, 4, 12, 26, 0, a, b, c), AB_EINVAL);
    cr_expect_eq(ab_ind_macd(x, 4, 12, 26, 9, a, NULL, c), AB_EINVAL);
    cr_expect_eq(ab_ind_bbands(x, 4, 2, -1.0, a, b, c), AB_EINVAL);
    cr_expect_eq(ab_ind_bbands(x, 4, 2, NAN, a, b, c), AB_EINVAL);
    cr_expect_eq(ab_ind_bbands(x, 4, 0, 2.0, a, b, c), AB_EINVAL);
    cr_expect_eq(ab_ind_atr(x, x, NULL, 4, 2, a), AB_EINVAL);
    cr_expect_eq(ab_ind_atr(x, x, x, 4, 0, a), AB_EINVAL);
    cr_expect_eq(ab_ind_vwap(x, x, x, NULL, 4, 2, a), AB_EINVAL);
    cr_expect_eq(ab_ind_vwap(x, x, x, x, 4, 0, a), AB_EINVAL);
    /* nothing written on error */
    a[0] = 42.0;
    cr_expect_eq(ab_ind_wma(x, 4, -1, a), AB_EINVAL);
    cr_expect_eq(a[0], 42.0);
}

Test(indicators, empty_input)
{
    cr_expect_eq(ab_ind_sma(NULL, 0, 3, NULL), 0);
    cr_expect_eq(ab_ind_ema(NULL, 0, 3, NULL), 0);
    cr_expect_eq(ab_ind_wma(NULL, 0, 3, NULL), 0);
    cr_expect_eq(ab_ind_rsi(NULL, 0, 3, AB_RSI_SIMPLE, NULL), 0);
    cr_expect_eq(ab_ind_rsi(NULL, 0, 3, AB_RSI_WILDER, NULL), 0);
    cr_expect_eq(ab_ind_macd(NULL, 0, 3, 5, 2, NULL, NULL, NULL), 0);
    cr_expect_eq(ab_ind_bbands(NULL, 0, 3, 2.0, NULL, NULL, NULL), 0);
    cr_expect_eq(ab_ind_atr(NULL, NULL, NULL, 0, 3, NULL), 0);
    cr_expect_eq(ab_ind_vwap(NULL, NULL, NULL, NULL, 0, 3, NULL), 0);
}

Test(indicators, shorter_than_period_is_all_nan)
{
    double x[3] = {1, 2, 3}, a[3], b[3], c[3];

    cr_assert_eq(ab_ind_sma(x, 3, 4, a), 0);
    cr_assert_eq(ab_ind_wma(x, 3, 4, b), 0);
    for (int i = 0; i < 3; i++)
        cr_expect(isnan(a[i]) && isnan(b[i]));
    cr_assert_eq(ab_ind_rsi(x, 3, 3, AB_RSI_SIMPLE, a), 0);
    cr_assert_eq(ab_ind_rsi(x, 3, 3, AB_RSI_WILDER, b), 0);
    for (int i = 0; i < 3; i++)
        cr_expect(isnan(a[i]) && isnan(b[i]), "rsi needs period+1 points");
    cr_assert_eq(ab_ind_atr(x, x, x, 3, 3, a), 0);
    cr_assert_eq(ab_ind_vwap(x, x, x, x, 3, 4, b), 0);
    for (int i = 0; i < 3; i++)
        cr_expect(isnan(a[i]) && isnan(b[i]));
    cr_assert_eq(ab_ind_bbands(x, 3, 4, 2.0, a, b, c), 0);
    for (int i = 0; i < 3; i++)
        cr_expect(isnan(a[i]) && isnan(b[i]) && isnan(c[i]));
    cr_assert_eq(ab_ind_ema(x, 1, 50, a), 0);
    cr_expect_eq(a[0], 1.0, "ema is defined from the first value");
    /* period 1: sma, wma are the input */
    cr_assert_eq(ab_ind_sma(x, 3, 1, a), 0);
    cr_assert_eq(ab_ind_wma(x, 3, 1, b), 0);
    for (int i = 0; i < 3; i++)
        cr_expect(a[i] == x[i] && b[i] == x[i]);
}

/* ---- 100k points against O(n*period) long double ---- */

#define LONG_N 100000

static uint64_t lcg_state;

static double lcg_u(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg_state >> 11) / 9007199254740992.0;
}

/* A random walk with x1000 level shifts: stresses running-sum cancellation. */
static void long_series(double *h, double *l, double *c, double *v)
{
    double x = 100.0;

    lcg_state = 12345;
    for (size_t i = 0; i < LONG_N; i++) {
        if (i % 20000 == 10000)
            x *= 1000.0;
        else if (i % 20000 == 15000)
            x /= 1000.0;
        else
            x *= 1.0 + (lcg_u() - 0.5) * 0.02;
        c[i] = x;
        h[i] = x * (1.0 + lcg_u() * 0.005);
        l[i] = x * (1.0 - lcg_u() * 0.005);
        v[i] = lcg_u() * 1000.0;
    }
}

static bool rel_ok(long double want, double got, double tol)
{
    long double d = fabsl(want - (long double)got);
    return d <= (long double)tol * fmaxl(fabsl(want), fabsl((long double)got));
}

Test(indicators_long, hundred_thousand_points_vs_long_double, .timeout = 120)
{
    double *h = malloc(LONG_N * sizeof(double)), *l = malloc(LONG_N * sizeof(double));
    double *c = malloc(LONG_N * sizeof(double)), *v = malloc(LONG_N * sizeof(double));
    double *a = malloc(LONG_N * sizeof(double)), *b = malloc(LONG_N * sizeof(double));
    double *m = malloc(LONG_N * sizeof(double));
    static const int periods[] = {14, 50, 200};
    size_t bad_sma = 0, bad_wma = 0, bad_bb = 0, bad_rsi = 0, bad_vwap = 0, bad_ema = 0;

    cr_assert(h && l && c && v && a && b && m);
    long_series(h, l, c, v);
    for (size_t k = 0; k < 3; k++) {
        int p = periods[k];
        size_t pp = (size_t)p;

        cr_assert_eq(ab_ind_sma(c, LONG_N, p, a), 0);
        cr_assert_eq(ab_ind_wma(c, LONG_N, p, b), 0);
        for (size_t i = 0; i < LONG_N; i++) {
            if (i + 1 < pp) {
                cr_assert(isnan(a[i]) && isnan(b[i]));
                continue;
            }
            long double s = 0, w = 0;
            for (size_t j = 0; j < pp; j++) {
                s += c[i + 1 - pp + j];
                w += (long double)(j + 1) * c[i + 1 - pp + j];
            }
            bad_sma += !rel_ok(s / p, a[i], 1e-9);
            bad_wma += !rel_ok(w / ((long double)p * (p + 1) / 2), b[i], 1e-9);
        }

        cr_assert_eq(ab_ind_bbands(c, LONG_N, p, 2.0, a, m, b), 0);
        for (size_t i = pp - 1; i < LONG_N; i++) {
            long double s = 0, ss = 0, mean, sd;
            for (size_t j = i + 1 - pp; j <= i; j++)
                s += c[j];
            mean = s / p;
            for (size_t j = i + 1 - pp; j <= i; j++)
                ss += (c[j] - mean) * (c[j] - mean);
            sd = sqrtl(ss / p);
            /* the band width itself, not just the sum with the middle */
            bad_bb += !rel_ok(2 * sd, a[i] - m[i], 1e-9) || !rel_ok(mean + 2 * sd, a[i], 1e-9) ||
                      !rel_ok(mean - 2 * sd, b[i], 1e-9);
        }

        cr_assert_eq(ab_ind_rsi(c, LONG_N, p, AB_RSI_SIMPLE, a), 0);
        for (size_t i = pp; i < LONG_N; i++) {
            long double g = 0, lo = 0;
            for (size_t j = i + 1 - pp; j <= i; j++) {
                long double d = (long double)c[j] - c[j - 1];
                if (d > 0)
                    g += d;
                else
                    lo -= d;
            }
            bad_rsi += !rel_ok(100.0L - 100.0L / (1.0L + g / lo), a[i], 1e-9);
        }

        cr_assert_eq(ab_ind_vwap(h, l, c, v, LONG_N, p, a), 0);
        for (size_t i = pp - 1; i < LONG_N; i++) {
            long double pv = 0, vs = 0;
            for (size_t j = i + 1 - pp; j <= i; j++) {
                pv += ((long double)h[j] + l[j] + c[j]) / 3 * v[j];
                vs += v[j];
            }
            bad_vwap += !rel_ok(pv / vs, a[i], 1e-9);
        }

        cr_assert_eq(ab_ind_ema(c, LONG_N, p, a), 0);
        long double e = c[0], alpha = 2.0L / (p + 1);
        for (size_t i = 0; i < LONG_N; i++) {
            if (i > 0)
                e = (1 - alpha) * e + alpha * c[i];
            bad_ema += !rel_ok(e, a[i], 1e-9);
        }
    }
    cr_expect_eq(bad_sma, 0);
    cr_expect_eq(bad_wma, 0);
    cr_expect_eq(bad_bb, 0);
    cr_expect_eq(bad_rsi, 0);
    cr_expect_eq(bad_vwap, 0);
    cr_expect_eq(bad_ema, 0);
    free(h);
    free(l);
    free(c);
    free(v);
    free(a);
    free(b);
    free(m);
}

/*
 * ---- the fast paths against a plain transliteration of pandas' loops ----
 *
 * sma, ema, rsi(simple) and macd run most values through fast paths (two
 * outputs per step, vector divisions, no NaN branches) and fall back to the
 * general step around NaN, infinities and odd ends. Their promise is the
 * general step's exact bits; this reference is pandas 1.5's roll_mean /
 * ewm loop written out as simply as possible, one value at a time, and
 * every output must be bit-identical (NaN where NaN).
 */
struct ref_roll {
    double sum, comp_add, comp_rem, prev;
    int64_t nobs, neg, nsame;
};

static void ref_add(struct ref_roll *r, double v)
{
    if (isnan(v))
        return;
    r->nobs++;
    double y = v - r->comp_add, t = r->sum + y;
    r->comp_add = t - r->sum - y;
    r->sum = t;
    if (signbit(v))
        r->neg++;
    if (v == r->prev)
        r->nsame++;
    else
        r->nsame = 1;
    r->prev = v;
}

static void ref_remove(struct ref_roll *r, double v)
{
    if (isnan(v))
        return;
    r->nobs--;
    double y = -v - r->comp_rem, t = r->sum + y;
    r->comp_rem = t - r->sum - y;
    r->sum = t;
    if (signbit(v))
        r->neg--;
}

static double ref_mean(const struct ref_roll *r, int64_t minp)
{
    if (r->nobs < minp || r->nobs <= 0)
        return NAN;
    double res = r->sum / (double)r->nobs;
    if (r->nsame >= r->nobs)
        return r->prev;
    if (r->neg == 0 && res < 0)
        return 0.0;
    if (r->neg == r->nobs && res > 0)
        return 0.0;
    return res;
}

static void ref_sma(const double *x, size_t n, int p, double *out)
{
    struct ref_roll r = {.prev = NAN};

    for (size_t i = 0; i < n; i++) {
        if (i >= (size_t)p)
            ref_remove(&r, x[i - (size_t)p]);
        ref_add(&r, x[i]);
        out[i] = ref_mean(&r, p);
    }
}

/* delta.clip(lower=0) and -delta.clip(upper=0) of diff i (i == 0: NaN) */
static void ref_gain_loss(const double *x, size_t i, double *g, double *l)
{
    double d = i == 0 ? NAN : x[i] - x[i - 1];

    *g = isnan(d) ? d : (d < 0 ? 0.0 : d);
    *l = isnan(d) ? d : -(d > 0 ? 0.0 : d);
}

static void ref_rsi(const double *x, size_t n, int p, double *out)
{
    struct ref_roll rg = {.prev = NAN}, rl = {.prev = NAN};
    double g, l;

    for (size_t i = 0; i < n; i++) {
        if (i >= (size_t)p) {
            ref_gain_loss(x, i - (size_t)p, &g, &l);
            ref_remove(&rg, g);
            ref_remove(&rl, l);
        }
        ref_gain_loss(x, i, &g, &l);
        ref_add(&rg, g);
        ref_add(&rl, l);
        out[i] = 100.0 - 100.0 / (1.0 + ref_mean(&rg, p) / ref_mean(&rl, p));
    }
}

/* pandas ewma, adjust=False, ignore_na=False, min_periods=1 */
static void ref_ewm(const double *x, size_t n, double alpha_in, double *out)
{
    double com = (1.0 - alpha_in) / alpha_in, alpha = 1.0 / (1.0 + com);
    double f = 1.0 - alpha, old_wt = 1.0, weighted = x[0];
    int64_t nobs = !isnan(weighted);

    out[0] = nobs >= 1 ? weighted : NAN;
    for (size_t i = 1; i < n; i++) {
        double cur = x[i];
        bool obs = !isnan(cur);

        nobs += obs;
        if (!isnan(weighted)) {
            old_wt *= f;
            if (obs) {
                if (weighted != cur) {
                    weighted = old_wt * weighted + alpha * cur;
                    weighted /= old_wt + alpha;
                }
                old_wt = 1.0;
            }
        } else if (obs) {
            weighted = cur;
        }
        out[i] = nobs >= 1 ? weighted : NAN;
    }
}

static bool same_bits(double a, double b)
{
    return isnan(a) ? isnan(b) : memcmp(&a, &b, sizeof(a)) == 0;
}

/* Returns the number of differing outputs of the four indicators on x[0..n-1]. */
static size_t diff_vs_reference(const double *x, size_t n, int p)
{
    double *want = malloc(3 * n * sizeof(double)), *got = malloc(3 * n * sizeof(double));
    double *mid = malloc(n * sizeof(double));
    size_t bad = 0;

    cr_assert(want && got && mid);
    ref_sma(x, n, p, want);
    cr_assert_eq(ab_ind_sma(x, n, p, got), 0);
    for (size_t i = 0; i < n; i++)
        bad += !same_bits(want[i], got[i]);
    ref_ewm(x, n, 2.0 / (p + 1.0), want);
    cr_assert_eq(ab_ind_ema(x, n, p, got), 0);
    for (size_t i = 0; i < n; i++)
        bad += !same_bits(want[i], got[i]);
    ref_rsi(x, n, p, want);
    cr_assert_eq(ab_ind_rsi(x, n, p, AB_RSI_SIMPLE, got), 0);
    for (size_t i = 0; i < n; i++)
        bad += !same_bits(want[i], got[i]);
    /* macd(p, 2p + 1, p / 2 + 1): pandas' three ewm calls */
    ref_ewm(x, n, 2.0 / (p + 1.0), want);
    ref_ewm(x, n, 2.0 / (2.0 * p + 2.0), mid);
    for (size_t i = 0; i < n; i++)
        want[i] -= mid[i];
    ref_ewm(want, n, 2.0 / (p / 2 + 2.0), want + n);
    for (size_t i = 0; i < n; i++)
        want[2 * n + i] = want[i] - want[n + i];
    cr_assert_eq(ab_ind_macd(x, n, p, 2 * p + 1, p / 2 + 1, got, got + n, got + 2 * n), 0);
    for (size_t i = 0; i < 3 * n; i++)
        bad += !same_bits(want[i], got[i]);
    free(want);
    free(got);
    free(mid);
    return bad;
}

Test(indicators_fast, bit_identical_to_pandas_loops, .timeout = 60)
{
    static const int periods[] = {1, 2, 3, 14, 20};
    enum { N = 20001 }; /* odd: the pairwise loops leave a last value */
    double *x = malloc(N * sizeof(double));
    size_t bad = 0, runs = 0;

    cr_assert_not_null(x);
    for (int kind = 0; kind < 7; kind++) {
        double level = 30000.0;

        lcg_state = 777 + (uint64_t)kind;
        for (size_t i = 0; i < N; i++) {
            double u = lcg_u();
            switch (kind) {
            case 0: /* the benchmark's walk */
                x[i] = level *= 1.0 + (u - 0.5) * 0.002;
                break;
            case 1: /* NaN holes, some adjacent */
                x[i] = (i % 37 == 5 || i % 211 < 3) ? NAN : (level *= 1.0 + (u - 0.5) * 0.01);
                break;
            case 2: /* runs of equal values (flat windows, RSI 0/0) */
                x[i] = (i / 25) % 3 == 0 ? 7.25 : 7.0 + floor(u * 3.0) * 0.5;
                break;
            case 3: /* signed values and signed zeros (the sign clamps) */
                x[i] = u < 0.2 ? -0.0 : (u < 0.4 ? 0.0 : (u - 0.7) * 1e-3);
                break;
            case 4: /* infinities */
                x[i] = i % 501 == 17 ? INFINITY : (i % 733 == 40 ? -INFINITY : u * 100.0);
                break;
            case 5: /* all negative: neg_ct == nobs */
                x[i] = -1.0 - u;
                break;
            default: /* a x1000 level shift and back */
                level *= (i == 7000) ? 1000.0 : (i == 14000 ? 0.001 : 1.0 + (u - 0.5) * 0.02);
                x[i] = level;
                break;
            }
        }
        for (size_t k = 0; k < sizeof(periods) / sizeof(periods[0]); k++) {
            bad += diff_vs_reference(x, N, periods[k]);
            for (size_t n = 1; n < 24; n++) /* short inputs: every path boundary */
                bad += diff_vs_reference(x + 100, n, periods[k]);
            runs++;
        }
    }
    cr_expect_eq(runs, 35);
    cr_expect_eq(bad, 0, "%zu outputs differ from pandas' loops", bad);
    free(x);
}

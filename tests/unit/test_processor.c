/*
 * Tests for common/processor: the seed's DataProcessor scenarios
 * (test_clean_data, test_normalize_data) against pandas vectors in
 * tests/data/indicators (processor_seed.csv, processor_fill.csv, klines.csv), plus the edge cases
 * the seed leaves open (constant, all-NaN and single-element columns).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/processor.h"

/* ---- the vectors' CSV: header row, then numbers ("nan" for NaN) ---- */

#define CSV_MAX_BYTES (1u << 20)
#define CSV_MAX_COLS  64
#define CSV_MAX_ROWS  1024
#define CSV_NAME_MAX  48

struct csv {
    size_t ncols, nrows;
    char names[CSV_MAX_COLS][CSV_NAME_MAX];
    double *vals; /* column-major; owned */
};

static void csv_load(struct csv *t, const char *name)
{
    char path[512], *buf, *p, *eol;
    FILE *f;
    size_t got;

    snprintf(path, sizeof(path), "%s/indicators/%s", AB_TEST_DATA, name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    buf = malloc(CSV_MAX_BYTES + 1);
    cr_assert_not_null(buf);
    got = fread(buf, 1, CSV_MAX_BYTES + 1, f);
    fclose(f);
    cr_assert(got > 0 && got <= CSV_MAX_BYTES);
    buf[got] = '\0';
    memset(t, 0, sizeof(*t));
    p = buf;
    eol = strchr(p, '\n');
    cr_assert_not_null(eol);
    while (p < eol) {
        size_t w = strcspn(p, ",\n");
        cr_assert(t->ncols < CSV_MAX_COLS && w > 0 && w < CSV_NAME_MAX);
        memcpy(t->names[t->ncols], p, w);
        t->names[t->ncols++][w] = '\0';
        p += w + (p[w] == ',');
    }
    p = eol + 1;
    for (const char *q = p; *q; q++)
        t->nrows += *q == '\n';
    cr_assert(t->nrows > 0 && t->nrows <= CSV_MAX_ROWS);
    t->vals = calloc(t->ncols * t->nrows, sizeof(double));
    cr_assert_not_null(t->vals);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            char *end;
            double v = strtod(p, &end);
            cr_assert(end != p && *end == (c + 1 == t->ncols ? '\n' : ','), "%s %zu/%zu", name, r,
                      c);
            t->vals[c * t->nrows + r] = v;
            p = end + 1;
        }
    }
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

/* A fresh malloc'd copy of a column, for the in-place functions. */
static double *col_copy(const struct csv *t, const char *name)
{
    double *d = malloc(t->nrows * sizeof(double));

    cr_assert_not_null(d);
    memcpy(d, csv_col(t, name), t->nrows * sizeof(double));
    return d;
}

/* NaN where pandas has NaN; 1e-9 relative, or 1e-12 absolute (z-scores are O(1)). */
static void expect_vec(const double *want, const double *got, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]) || isnan(got[i])) {
            cr_expect(isnan(want[i]) && isnan(got[i]), "%s[%zu]: pandas %g, C %g", what, i, want[i],
                      got[i]);
            continue;
        }
        double d = fabs(want[i] - got[i]);
        cr_expect(d <= 1e-9 * fmax(fabs(want[i]), fabs(got[i])) || d <= 1e-12,
                  "%s[%zu]: pandas %.17g, C %.17g", what, i, want[i], got[i]);
    }
}

static const char *const ohlcv[5] = {"open", "high", "low", "close", "volume"};

/* ---- the seed's scenarios ---- */

Test(processor_seed, clean_data)
{
    struct csv t;
    double *c[5];
    size_t filled = 99, replaced = 99;
    char name[32];

    csv_load(&t, "processor_seed.csv");
    cr_assert_eq(t.nrows, 5);
    for (int k = 0; k < 5; k++)
        c[k] = col_copy(&t, ohlcv[k]);
    cr_assert(isnan(c[0][2]), "the seed's input has a missing open");

    cr_assert_eq(ab_proc_clean_ohlcv(c[0], c[1], c[2], c[3], c[4], 5, &filled, &replaced), 0);
    cr_expect_eq(filled, 1);
    cr_expect_eq(replaced, 1);
    /* Then missing values should be filled */
    for (int i = 0; i < 5; i++)
        cr_expect(!isnan(c[0][i]), "open[%d] still NaN", i);
    cr_expect_eq(c[0][2], 101.0, "ffill takes the previous open");
    /* And outliers should be handled */
    cr_expect(c[0][4] < 150.0, "open[4] = %g", c[0][4]);
    cr_expect_eq(c[0][4], 101.0, "replaced by the column median");
    /* The linear columns are left exactly as they were. */
    for (int k = 1; k < 5; k++)
        for (int i = 0; i < 5; i++)
            cr_expect_eq(c[k][i], csv_col(&t, ohlcv[k])[i], "%s[%d] changed", ohlcv[k], i);
    /* And everything equals the pandas rendition of the rule. */
    for (int k = 0; k < 5; k++) {
        snprintf(name, sizeof(name), "clean_%s", ohlcv[k]);
        for (int i = 0; i < 5; i++)
            cr_expect_eq(c[k][i], csv_col(&t, name)[i], "%s[%d]", name, i);
        free(c[k]);
    }
    free(t.vals);
}

Test(processor_seed, normalize_data)
{
    struct csv t;
    static const char *const cols[2] = {"close", "volume"};
    char name[32];

    csv_load(&t, "processor_seed.csv");
    for (int k = 0; k < 2; k++) {
        double *x = col_copy(&t, cols[k]);
        cr_assert_eq(ab_proc_normalize(x, t.nrows, AB_NORM_MINMAX), 0);
        /* Then values should be scaled to [0, 1] range */
        for (size_t i = 0; i < t.nrows; i++)
            cr_expect(x[i] >= 0.0 && x[i] <= 1.0, "%s[%zu] = %g", cols[k], i, x[i]);
        cr_expect_eq(x[0], 0.0);
        cr_expect_eq(x[4], 1.0);
        snprintf(name, sizeof(name), "minmax_%s", cols[k]);
        expect_vec(csv_col(&t, name), x, t.nrows, name);
        free(x);

        x = col_copy(&t, cols[k]);
        cr_assert_eq(ab_proc_normalize(x, t.nrows, AB_NORM_ZSCORE), 0);
        snprintf(name, sizeof(name), "zscore_%s", cols[k]);
        expect_vec(csv_col(&t, name), x, t.nrows, name);
        free(x);
    }
    free(t.vals);
}

Test(processor, zscore_and_minmax_match_pandas_on_real_candles)
{
    struct csv t;
    static const char *const cols[2] = {"close", "volume"};
    char name[32];

    csv_load(&t, "klines.csv");
    cr_assert_eq(t.nrows, 500);
    for (int k = 0; k < 2; k++) {
        double *x = col_copy(&t, cols[k]);
        cr_assert_eq(ab_proc_normalize(x, t.nrows, AB_NORM_ZSCORE), 0);
        snprintf(name, sizeof(name), "zscore_%s", cols[k]);
        expect_vec(csv_col(&t, name), x, t.nrows, name);
        free(x);
        x = col_copy(&t, cols[k]);
        cr_assert_eq(ab_proc_normalize(x, t.nrows, AB_NORM_MINMAX), 0);
        snprintf(name, sizeof(name), "minmax_%s", cols[k]);
        expect_vec(csv_col(&t, name), x, t.nrows, name);
        free(x);
    }
    free(t.vals);
}

/* ---- fill ---- */

Test(processor, fill_matches_pandas_ffill_bfill)
{
    struct csv t;
    size_t filled = 0;
    double *x;

    csv_load(&t, "processor_fill.csv");
    x = col_copy(&t, "gaps");
    cr_assert_eq(ab_proc_fill(x, t.nrows, &filled), 0);
    cr_expect_eq(filled, 6);
    for (size_t i = 0; i < t.nrows; i++)
        cr_expect_eq(x[i], csv_col(&t, "filled_gaps")[i], "gaps[%zu]", i);
    free(x);

    x = col_copy(&t, "allnan");
    cr_assert_eq(ab_proc_fill(x, t.nrows, &filled), 0);
    cr_expect_eq(filled, 0);
    for (size_t i = 0; i < t.nrows; i++)
        cr_expect(isnan(x[i]) && isnan(csv_col(&t, "filled_allnan")[i]));
    free(x);
    free(t.vals);
}

/* ---- edge cases the seed leaves open ---- */

Test(processor, constant_column_normalizes_to_zero)
{
    double a[6], b[6];

    for (int i = 0; i < 6; i++)
        a[i] = b[i] = 42.5;
    a[3] = b[3] = NAN;
    cr_assert_eq(ab_proc_normalize(a, 6, AB_NORM_MINMAX), 0);
    cr_assert_eq(ab_proc_normalize(b, 6, AB_NORM_ZSCORE), 0);
    for (int i = 0; i < 6; i++) {
        if (i == 3) {
            cr_expect(isnan(a[i]) && isnan(b[i]), "missing stays missing");
            continue;
        }
        cr_expect_eq(a[i], 0.0, "minmax[%d] = %g", i, a[i]);
        cr_expect_eq(b[i], 0.0, "zscore[%d] = %g", i, b[i]);
    }
}

Test(processor, all_nan_column)
{
    double x[4] = {NAN, NAN, NAN, NAN};
    size_t k = 7;

    cr_assert_eq(ab_proc_fill(x, 4, &k), 0);
    cr_expect_eq(k, 0);
    cr_assert_eq(ab_proc_replace_outliers(x, 4, &k), 0);
    cr_expect_eq(k, 0);
    cr_assert_eq(ab_proc_normalize(x, 4, AB_NORM_MINMAX), 0);
    cr_assert_eq(ab_proc_normalize(x, 4, AB_NORM_ZSCORE), 0);
    for (int i = 0; i < 4; i++)
        cr_expect(isnan(x[i]));
}

Test(processor, single_element)
{
    double x = 5.0, y = 5.0, z = 5.0;
    size_t k = 7;

    cr_assert_eq(ab_proc_fill(&x, 1, &k), 0);
    cr_expect_eq(k, 0);
    cr_expect_eq(x, 5.0);
    cr_assert_eq(ab_proc_replace_outliers(&x, 1, &k), 0);
    cr_expect_eq(k, 0);
    cr_expect_eq(x, 5.0);
    cr_assert_eq(ab_proc_normalize(&y, 1, AB_NORM_MINMAX), 0);
    cr_expect_eq(y, 0.0);
    cr_assert_eq(ab_proc_normalize(&z, 1, AB_NORM_ZSCORE), 0);
    cr_expect_eq(z, 0.0, "pandas would give NaN (std of one value)");
}

Test(processor, zscore_skips_nan_like_pandas)
{
    double x[5] = {1.0, NAN, 2.0, 3.0, NAN};

    cr_assert_eq(ab_proc_normalize(x, 5, AB_NORM_ZSCORE), 0);
    /* mean 2, sample std 1 */
    cr_expect_eq(x[0], -1.0);
    cr_expect_eq(x[2], 0.0);
    cr_expect_eq(x[3], 1.0);
    cr_expect(isnan(x[1]) && isnan(x[4]));
}

Test(processor, outliers_mad_zero_fallback_and_infinity)
{
    double a[7] = {100, 100, 100, 100, 100, 100, 200};
    double b[5] = {7, 7, 7, 7, 7};
    double c[6] = {10, 11, INFINITY, 12, NAN, 13};
    size_t k = 0;

    /* MAD is 0; meanAD = 100/7 -> M(200) = 100 / (1.253314 * 14.29) = 5.6 */
    cr_assert_eq(ab_proc_replace_outliers(a, 7, &k), 0);
    cr_expect_eq(k, 1);
    cr_expect_eq(a[6], 100.0);
    cr_assert_eq(ab_proc_replace_outliers(b, 5, &k), 0);
    cr_expect_eq(k, 0, "constant column: nothing to replace");
    cr_assert_eq(ab_proc_replace_outliers(c, 6, &k), 0);
    cr_expect_eq(k, 1);
    cr_expect_eq(c[2], 11.5, "infinity -> median of the finite values");
    cr_expect(isnan(c[4]), "NaN is not an outlier");
    cr_expect_eq(c[0], 10.0);
    cr_expect_eq(c[5], 13.0);
}

Test(processor, trend_is_not_an_outlier)
{
    double x[50];
    size_t k = 99;

    for (int i = 0; i < 50; i++)
        x[i] = 100.0 + i; /* a steady trend: max M = 0.6745 * 25 / 12.5 */
    cr_assert_eq(ab_proc_replace_outliers(x, 50, &k), 0);
    cr_expect_eq(k, 0);
    for (int i = 0; i < 50; i++)
        cr_expect_eq(x[i], 100.0 + i);
}

Test(processor, parameter_errors)
{
    double x[3] = {1, INFINITY, 3};

    cr_expect_eq(ab_proc_fill(NULL, 3, NULL), AB_EINVAL);
    cr_expect_eq(ab_proc_replace_outliers(NULL, 3, NULL), AB_EINVAL);
    cr_expect_eq(ab_proc_normalize(NULL, 3, AB_NORM_MINMAX), AB_EINVAL);
    cr_expect_eq(ab_proc_fill(x, AB_PROC_N_MAX + 1, NULL), AB_ERANGE);
    cr_expect_eq(ab_proc_replace_outliers(x, AB_PROC_N_MAX + 1, NULL), AB_ERANGE);
    cr_expect_eq(ab_proc_normalize(x, 3, (enum ab_norm)9), AB_EINVAL);
    cr_expect_eq(ab_proc_normalize(x, 3, AB_NORM_ZSCORE), AB_EINVAL, "infinity");
    cr_expect_eq(x[0], 1.0, "unchanged on error");
    cr_expect_eq(x[2], 3.0);
    cr_expect_eq(ab_proc_clean_ohlcv(x, x, NULL, x, x, 3, NULL, NULL), AB_EINVAL);
    /* empty columns are fine */
    cr_expect_eq(ab_proc_fill(NULL, 0, NULL), 0);
    cr_expect_eq(ab_proc_normalize(NULL, 0, AB_NORM_ZSCORE), 0);
    cr_expect_eq(ab_proc_clean_ohlcv(NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL), 0);
}

/*
 * processor: see processor.h.
 */
#include "common/processor.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/err.h"

static int check(const double *x, size_t n)
{
    if (n > AB_PROC_N_MAX)
        return AB_ERANGE;
    if (n > 0 && x == NULL)
        return AB_EINVAL;
    return 0;
}

int ab_proc_fill(double *x, size_t n, size_t *filled)
{
    size_t count = 0, first = n;
    int rc = check(x, n);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (!isnan(x[i])) {
            if (first == n)
                first = i;
        } else if (first != n) {
            x[i] = x[i - 1]; /* forward fill */
            count++;
        }
    }
    for (size_t i = 0; i < first && first < n; i++) {
        x[i] = x[first]; /* back fill the leading gap */
        count++;
    }
    if (filled != NULL)
        *filled = count;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Median of v[0..m-1], m >= 1, sorting v (pandas/numpy: mean of the middle two). */
static double median_sorting(double *v, size_t m)
{
    qsort(v, m, sizeof(double), cmp_double);
    if (m % 2 == 1)
        return v[m / 2];
    return (v[m / 2 - 1] + v[m / 2]) / 2.0;
}

/* The outlier rule of processor.h, with caller-provided scratch of n doubles. */
static void replace_outliers(double *x, size_t n, double *scratch, size_t *replaced)
{
    size_t m = 0, count = 0;
    double med, mad, scale = 0.0, k;

    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]))
            scratch[m++] = x[i];
    *replaced = 0;
    if (m == 0)
        return;
    med = median_sorting(scratch, m);
    for (size_t i = 0; i < m; i++)
        scratch[i] = fabs(scratch[i] - med);
    mad = median_sorting(scratch, m);
    if (mad > 0) {
        k = 0.6745; /* M = 0.6745 * d / MAD */
        scale = mad;
    } else {
        double sum = 0.0;
        for (size_t i = 0; i < m; i++)
            sum += scratch[i];
        k = 1.0; /* M = d / (1.253314 * meanAD) */
        scale = 1.253314 * (sum / (double)m);
    }
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            continue;
        if (!isfinite(x[i])) {
            x[i] = med;
            count++;
            continue;
        }
        if (scale > 0 && k * fabs(x[i] - med) / scale > 3.5) {
            x[i] = med;
            count++;
        }
    }
    *replaced = count;
}

int ab_proc_replace_outliers(double *x, size_t n, size_t *replaced)
{
    double *scratch;
    size_t count = 0;
    int rc = check(x, n);

    if (rc != 0)
        return rc;
    if (n > 0) {
        scratch = malloc(n * sizeof(double));
        if (scratch == NULL)
            return AB_ENOMEM;
        replace_outliers(x, n, scratch, &count);
        free(scratch);
    }
    if (replaced != NULL)
        *replaced = count;
    return 0;
}

/* Sets every non-NaN element to 0.0 (the no-spread result). */
static void zero_valid(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]))
            x[i] = 0.0;
}

static void minmax(double *x, size_t n, double lo, double hi)
{
    if (!(hi > lo)) {
        zero_valid(x, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - lo) / (hi - lo);
}

static void zscore(double *x, size_t n, size_t m)
{
    double sum = 0.0, c = 0.0, mean, ss = 0.0, sd;

    if (m < 2) {
        zero_valid(x, n);
        return;
    }
    /* Neumaier-compensated sum: the mean close to correctly rounded. */
    for (size_t i = 0; i < n; i++) {
        double t;
        if (isnan(x[i]))
            continue;
        t = sum + x[i];
        if (fabs(sum) >= fabs(x[i]))
            c += (sum - t) + x[i];
        else
            c += (x[i] - t) + sum;
        sum = t;
    }
    mean = (sum + c) / (double)m;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]))
            ss += (x[i] - mean) * (x[i] - mean);
    sd = sqrt(ss / (double)(m - 1));
    if (!(sd > 0)) {
        zero_valid(x, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - mean) / sd;
}

int ab_proc_normalize(double *x, size_t n, enum ab_norm method)
{
    double lo = INFINITY, hi = -INFINITY;
    size_t m = 0;
    int rc = check(x, n);

    if (rc != 0)
        return rc;
    if (method != AB_NORM_MINMAX && method != AB_NORM_ZSCORE)
        return AB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            continue;
        if (isinf(x[i]))
            return AB_EINVAL;
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        m++;
    }
    if (method == AB_NORM_MINMAX)
        minmax(x, n, lo, hi);
    else
        zscore(x, n, m);
    return 0;
}

int ab_proc_clean_ohlcv(double *open, double *high, double *low, double *close, double *volume,
                        size_t n, size_t *filled, size_t *replaced)
{
    double *cols[5] = {open, high, low, close, volume};
    double *scratch = NULL;
    size_t nf = 0, nr = 0, k;

    if (n > AB_PROC_N_MAX)
        return AB_ERANGE;
    for (int c = 0; c < 5; c++)
        if (n > 0 && cols[c] == NULL)
            return AB_EINVAL;
    /* Allocate first so that nothing can fail after the first change. */
    if (n > 0) {
        scratch = malloc(n * sizeof(double));
        if (scratch == NULL)
            return AB_ENOMEM;
    }
    for (int c = 0; c < 5; c++) {
        (void)ab_proc_fill(cols[c], n, &k); /* cannot fail: checked above */
        nf += k;
    }
    for (int c = 0; c < 4 && n > 0; c++) { /* prices only, never volume */
        replace_outliers(cols[c], n, scratch, &k);
        nr += k;
    }
    free(scratch);
    if (filled != NULL)
        *filled = nf;
    if (replaced != NULL)
        *replaced = nr;
    return 0;
}

/*
 * processor: cleaning and normalisation of candle columns (the seed's
 * DataProcessor), for indicator input and analysis. Not for storage: the
 * stored candles stay exact (struct ab_dec); this works on double copies.
 *
 * A column is an array of n doubles with NaN meaning "missing". Functions
 * work in place on caller-owned arrays, keep no state and may be called
 * from any thread. Every function returns 0, AB_EINVAL (NULL array with
 * n > 0, unknown method, infinite value where documented), AB_ERANGE
 * (n > AB_PROC_N_MAX) or AB_ENOMEM (the one scratch allocation failed); on
 * error the column is unchanged.
 *
 * Outlier rule. The seed flagged |z| > 3 with the plain z-score, which can
 * never fire on its own five-row test (with n points |z| <= (n-1)/sqrt(n),
 * 1.79 for n = 5) although that test expects open = 200 among ~100 to be
 * replaced. We use the robust modified z-score of Iglewicz and Hoaglin:
 *     M_i = 0.6745 * |x_i - median| / MAD,   MAD = median(|x - median|),
 * and replace x_i by the column median when M_i > 3.5. When MAD == 0 (more
 * than half the values equal the median) we fall back, as IBM SPSS does, to
 *     M_i = |x_i - median| / (1.253314 * meanAD),  meanAD = mean(|x - median|),
 * and when meanAD is 0 too the column is constant: nothing is replaced.
 * Consequence of the fallback: in a column that is mostly one value, a rare
 * different value is flagged whatever its size (M = n / 1.25 for a single
 * deviating value), which is the intended reading of "mostly flat prices
 * with a spike". NaN is skipped; +-infinity is excluded from the statistics
 * and always replaced by the median.
 *
 * Normalisation of a column with no spread: min-max and z-score would divide
 * by zero (pandas gives NaN or inf). We define the result as 0.0 for every
 * non-NaN element: a constant column, a single value, and (z-score) any
 * column with fewer than two values.
 */
#ifndef AB_PROCESSOR_H
#define AB_PROCESSOR_H

#include <stddef.h>

/* Hard cap on the column length (the outlier scratch buffer is n doubles). */
#define AB_PROC_N_MAX ((size_t)1 << 24)

enum ab_norm {
    AB_NORM_MINMAX = 0, /* (x - min) / (max - min), into [0, 1] */
    AB_NORM_ZSCORE = 1, /* (x - mean) / std, std with ddof = 1 like pandas .std() */
};

/*
 * Forward fill then back fill (pandas ffill().bfill()): each NaN takes the
 * last earlier value, leading NaNs take the first value. An all-NaN column
 * stays NaN. *filled (may be NULL) receives the number of values filled.
 */
int ab_proc_fill(double *x, size_t n, size_t *filled);

/*
 * Replaces anomalous values by the column median (rule above). Allocates
 * one scratch buffer of n doubles, freed before returning. *replaced (may be
 * NULL) receives the number of values replaced.
 */
int ab_proc_replace_outliers(double *x, size_t n, size_t *replaced);

/*
 * Normalises x in place over its non-NaN values; NaN stays NaN. An infinite
 * value is AB_EINVAL. No-spread columns give 0.0 (see above).
 */
int ab_proc_normalize(double *x, size_t n, enum ab_norm method);

/*
 * The seed's clean_data: ab_proc_fill on all five columns, then
 * ab_proc_replace_outliers on open, high, low and close (never volume).
 * All five arrays have n rows. *filled and *replaced (each may be NULL)
 * receive the totals over the columns.
 */
int ab_proc_clean_ohlcv(double *open, double *high, double *low, double *close, double *volume,
                        size_t n, size_t *filled, size_t *replaced);

#endif

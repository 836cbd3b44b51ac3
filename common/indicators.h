/*
 * indicators: technical indicators over series of doubles.
 *
 * Each function reads an input series x[0..n-1] and writes n outputs, with
 * NaN exactly where the seed's pandas code (pandas 1.5) has NaN. Outputs are
 * caller-owned arrays of n doubles that must not overlap any input or each
 * other. The functions allocate nothing, keep no state and may be called
 * from any thread. Indicator math is the one place the project uses double;
 * convert prices from struct ab_dec at the edge.
 *
 * Numerics. The rolling means and sums reproduce pandas' rolling kernels
 * step for step (Kahan-compensated running sums with separate add/remove
 * compensations, the "consecutive equal values" rule that makes a constant
 * window return that value exactly, the sign clamps) and ema reproduces
 * pandas' ewm loop, so sma, ema, rsi, macd, atr, vwap and the middle band
 * are bit-identical to pandas on the reference vectors. wma uses the running
 * identity N_t = N_{t-1} - S_{t-1} + p x_t with an exact recomputation every
 * `period` slides (error ~ period * 1e-16 * max|x| over the last 2 periods
 * / |result|; a constant window returns its value exactly). The bands' std
 * is computed accurately, not the pandas way: see ab_ind_bbands. Tests hold
 * everything to 1e-9 relative against tests/data/make_indicator_vectors.py
 * and against long double on 100k points. Everything is O(n).
 *
 * NaN inputs: sma, ema, wma, rsi(simple), macd and bbands follow pandas
 * (a rolling window containing NaN gives NaN; ewm carries the last value
 * across NaN, adjust=False, ignore_na=False). The recursive Wilder forms
 * (rsi wilder, atr) do not skip NaN: one NaN makes every later value NaN.
 * Candles never have NaN prices, so this only matters for hand-made input.
 *
 * Errors: every function returns 0, or AB_EINVAL for a NULL array with
 * n > 0, a period outside 1..AB_IND_PERIOD_MAX, or another bad parameter
 * (nothing is written then). n == 0 is valid and writes nothing. A period
 * longer than the series is valid: every output is NaN.
 */
#ifndef AB_INDICATORS_H
#define AB_INDICATORS_H

#include <stddef.h>

/* Largest accepted period (keeps weight sums exact in double). */
#define AB_IND_PERIOD_MAX 1000000

/*
 * Simple moving average: pandas x.rolling(window=period).mean().
 * out[i] is NaN for i < period-1 and whenever the window holds a NaN.
 */
int ab_ind_sma(const double *x, size_t n, int period, double *out);

/*
 * Exponential moving average: pandas x.ewm(alpha=2/(period+1), adjust=False)
 * .mean(): out[0] = x[0], out[t] = (1-a) out[t-1] + a x[t]. Defined from the
 * first non-NaN input on; a NaN input repeats the previous output (and decays
 * the old weight once, as pandas does). May run in place (out == x).
 */
int ab_ind_ema(const double *x, size_t n, int period, double *out);

/* The same with an explicit smoothing factor, 0 < alpha <= 1. */
int ab_ind_ema_alpha(const double *x, size_t n, double alpha, double *out);

/*
 * Weighted moving average: weights 1..period, newest heaviest, divided by
 * period*(period+1)/2 (the seed's rolling(...).apply). NaN for
 * i < period-1 and when the window holds a NaN or an infinity.
 */
int ab_ind_wma(const double *x, size_t n, int period, double *out);

enum ab_rsi_smoothing {
    /*
     * The seed's RSI: d = diff(x); gain = max(d, 0), loss = max(-d, 0);
     * averages are plain rolling means over `period` diffs, so the first
     * value is at index `period`.
     */
    AB_RSI_SIMPLE = 0,
    /*
     * Wilder's smoothing as TA-Lib averages it: the first average is the
     * mean of the first `period` gains (losses) at index `period`, then
     * avg = (prev * (period - 1) + cur) / period.
     */
    AB_RSI_WILDER = 1,
};

/*
 * Relative strength index, 100 - 100 / (1 + avg_gain / avg_loss), with
 * pandas' division in both smoothings: avg_loss == 0 with avg_gain > 0 gives
 * 100; both zero (a flat window) gives NaN (TA-Lib would print 0 there).
 * out[i] is NaN for i < period. NaN inputs: see the file comment.
 */
int ab_ind_rsi(const double *x, size_t n, int period, enum ab_rsi_smoothing smoothing, double *out);

/*
 * MACD: macd = ema(fast) - ema(slow); signal = ema(macd, signal_period);
 * hist = macd - signal. Requires 1 <= fast < slow. With no NaN input every
 * output is defined from index 0 (pandas' adjust=False ewm).
 */
int ab_ind_macd(const double *x, size_t n, int fast, int slow, int signal_period, double *macd,
                double *signal, double *hist);

/*
 * Bollinger bands: middle = sma(period); upper/lower = middle +/- k * sd,
 * where sd is the POPULATION standard deviation of the window (ddof = 0, as
 * TA-Lib and Bollinger define it). sd is the accurate value (shifted sums
 * with exact recomputation), not pandas' rolling std(ddof=0), whose running
 * Welford update drifts (5% off after a x1000 price shift on 100k points);
 * the reference vectors use numpy's per-window std. A constant window has
 * sd = 0 exactly. k must be finite and >= 0. NaN where the sma is NaN or the
 * window holds a NaN or an infinity.
 */
int ab_ind_bbands(const double *x, size_t n, int period, double k, double *upper, double *middle,
                  double *lower);

/*
 * Average true range, TA-Lib's convention: TR[t] = max(h-l, |h-c[t-1]|,
 * |l-c[t-1]|) for t >= 1 (TR[0] is not used); the first ATR is the mean of
 * TR[1..period] at index `period`; then atr = (prev * (period-1) + TR) /
 * period. out[i] is NaN for i < period.
 */
int ab_ind_atr(const double *high, const double *low, const double *close, size_t n, int period,
               double *out);

/*
 * Rolling VWAP over `period` candles: sum(tp * volume) / sum(volume) with
 * typical price tp = (high + low + close) / 3, both sums pandas rolling sums.
 * NaN for i < period-1 and when the window's volume sum is 0 (no trades).
 */
int ab_ind_vwap(const double *high, const double *low, const double *close, const double *volume,
                size_t n, int period, double *out);

#endif

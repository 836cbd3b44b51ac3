/*
 * indicators: see indicators.h.
 *
 * The rolling kernels below follow the arithmetic of pandas 1.5's rolling
 * windows (pandas/_libs/window/aggregations.pyx, BSD-3-Clause: Kahan-
 * compensated add/remove, the equal-run rule, min_periods, ewm), written
 * in C from that description. The rolling standard deviation is the exception:
 * see struct rstd. Keeping pandas'
 * operation order, its separate add/remove Kahan compensations and its
 * special cases is what makes our output match the seed's numbers, including
 * the exact zeros (flat windows) that decide between RSI NaN and RSI 100.
 * Do not "simplify" the arithmetic: every parenthesis is deliberate, and the
 * file relies on -std=c11 (no FMA contraction, no reassociation).
 */
#include "common/indicators.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

/* Running state of pandas' rolling mean / rolling sum (fixed window). */
struct roll {
    double sum;
    double comp_add; /* Kahan compensation of the additions */
    double comp_rem; /* ... and, separately, of the removals */
    double prev;     /* last value added */
    int64_t nobs;    /* non-NaN values in the window */
    int64_t neg_ct;  /* values with the sign bit set (including -0.0) */
    int64_t nsame;   /* run length of equal values ending at prev */
};

static void roll_init(struct roll *r)
{
    r->sum = r->comp_add = r->comp_rem = 0.0;
    r->prev = NAN;
    r->nobs = r->neg_ct = r->nsame = 0;
}

static inline void roll_add(struct roll *r, double v)
{
    double y, t;

    if (isnan(v))
        return;
    r->nobs++;
    y = v - r->comp_add;
    t = r->sum + y;
    r->comp_add = t - r->sum - y;
    r->sum = t;
    r->neg_ct += signbit(v) != 0; /* branch-free: the sign is data */
    /* pandas GH#42064: a run of equal values returns that value exactly. */
    r->nsame = (v == r->prev) * r->nsame + 1;
    r->prev = v;
}

static inline void roll_remove(struct roll *r, double v)
{
    double y, t;

    if (isnan(v))
        return;
    r->nobs--;
    y = -v - r->comp_rem;
    t = r->sum + y;
    r->comp_rem = t - r->sum - y;
    r->sum = t;
    r->neg_ct -= signbit(v) != 0;
}

/* pandas calc_mean with min_periods = minp. */
static inline double roll_mean(const struct roll *r, int64_t minp)
{
    double res;

    if (r->nobs < minp || r->nobs <= 0)
        return NAN;
    res = r->sum / (double)r->nobs;
    if (r->nsame >= r->nobs)
        res = r->prev;
    else if (r->neg_ct == 0 && res < 0)
        res = 0.0; /* all non-negative: rounding must not go below 0 */
    else if (r->neg_ct == r->nobs && res > 0)
        res = 0.0;
    return res;
}

/* pandas calc_sum with min_periods = minp >= 1. */
static inline double roll_sum(const struct roll *r, int64_t minp)
{
    if (r->nobs < minp)
        return NAN;
    if (r->nsame >= r->nobs)
        return r->prev * (double)r->nobs;
    return r->sum;
}

/*
 * Rolling population standard deviation, accurately. pandas' rolling var
 * (Welford add/remove) drifts: after a x1000 level shift its std was 5% off
 * on a 100k-point walk, so we do not copy it. Instead we keep sums of
 * d = x - K and d^2 around a shift K (the window mean at the last exact
 * recomputation): var = (S2 - S1^2/p) / p. The sums are recomputed exactly
 * (two passes) every p slides, after a NaN, and whenever S2 exceeds
 * 1e3 * p * var, i.e. when cancellation could cost more than ~1e-13 * p of
 * relative accuracy. O(n) for real data; a constant window is exactly 0.
 */
struct rstd {
    double k;      /* shift */
    double s1, s2; /* sum of d and of d^2 over the window */
    size_t since;  /* slides since the last recomputation */
    double prev;   /* last value, and the run of equal values ending there */
    size_t nsame;
    bool valid; /* s1, s2 describe the previous window */
};

static void rstd_recompute(struct rstd *r, const double *w, size_t p)
{
    double sum = 0.0;

    for (size_t j = 0; j < p; j++)
        sum += w[j];
    r->k = sum / (double)p;
    r->s1 = r->s2 = 0.0;
    for (size_t j = 0; j < p; j++) {
        double d = w[j] - r->k;
        r->s1 += d;
        r->s2 += d * d;
    }
    r->since = 0;
    r->valid = true;
}

static inline double rstd_var(const struct rstd *r, size_t p)
{
    double var = (r->s2 - r->s1 * r->s1 / (double)p) / (double)p;
    return var < 0 ? 0.0 : var;
}

/*
 * Standard deviation of the window x[i+1-p..i]; NaN while the window is
 * incomplete or holds a NaN (nan_until: first index whose window is clean).
 */
static double rstd_step(struct rstd *r, const double *x, size_t i, size_t p, size_t nan_until)
{
    double var;

    if (x[i] == r->prev)
        r->nsame++;
    else
        r->nsame = 1;
    r->prev = x[i];
    if (i + 1 < p || i < nan_until) {
        r->valid = false;
        return NAN;
    }
    if (!r->valid || r->since >= p) {
        rstd_recompute(r, x + (i + 1 - p), p);
    } else {
        double dn = x[i] - r->k, dold = x[i - p] - r->k;
        r->s1 += dn - dold;
        r->s2 += dn * dn - dold * dold;
        r->since++;
    }
    if (r->nsame >= p)
        return 0.0;
    var = rstd_var(r, p);
    if (!(r->s2 <= 1e3 * (double)p * var) && r->since > 0) {
        rstd_recompute(r, x + (i + 1 - p), p);
        var = rstd_var(r, p);
    }
    return sqrt(var);
}

static bool period_ok(int period)
{
    return period >= 1 && period <= AB_IND_PERIOD_MAX;
}

static void fill_nan(double *out, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        out[i] = NAN;
}

int ab_ind_sma(const double *x, size_t n, int period, double *out)
{
    struct roll r;
    size_t p = (size_t)period;

    if (!period_ok(period) || (n > 0 && (x == NULL || out == NULL)))
        return AB_EINVAL;
    roll_init(&r);
    for (size_t i = 0; i < n; i++) {
        if (i >= p)
            roll_remove(&r, x[i - p]);
        roll_add(&r, x[i]);
        out[i] = roll_mean(&r, period);
    }
    return 0;
}

/*
 * pandas ewm(..., adjust=False, ignore_na=False).mean(), min_periods = 1, as
 * a state machine: ewm_first for x[0], then ewm_next for each later value.
 * One step is a short chain of dependent operations, so ab_ind_macd runs
 * its three EMAs interleaved in one pass (same arithmetic per chain, so the
 * same bits as three separate passes, in about a third of the time).
 */
struct ewm {
    double old_wt_factor, new_wt, old_wt;
    double weighted;
    bool seen;
};

static void ewm_init(struct ewm *e, double alpha_in)
{
    /* pandas converts alpha to a centre of mass and back; so do we. */
    double com = (1.0 - alpha_in) / alpha_in;
    double alpha = 1.0 / (1.0 + com);

    e->old_wt_factor = 1.0 - alpha;
    e->new_wt = alpha;
    e->old_wt = 1.0;
    e->weighted = NAN;
    e->seen = false;
}

static inline double ewm_first(struct ewm *e, double cur)
{
    e->weighted = cur;
    e->seen = !isnan(cur);
    return e->seen ? cur : NAN;
}

static inline double ewm_next(struct ewm *e, double cur)
{
    if (!isnan(e->weighted)) {
        /* ignore_na=False: a missing value still ages the old weight. */
        e->old_wt *= e->old_wt_factor;
        if (!isnan(cur)) {
            /* pandas: avoid rounding noise on a constant series */
            if (e->weighted != cur) {
                double den = e->old_wt + e->new_wt;
                e->weighted = e->old_wt * e->weighted + e->new_wt * cur;
                /* x / 1.0 == x exactly: skip the slow division when
                 * the weights sum to 1, as they do for most alphas. */
                if (den != 1.0)
                    e->weighted /= den;
            }
            e->old_wt = 1.0;
        }
    } else if (!isnan(cur)) {
        e->weighted = cur;
    }
    e->seen = e->seen || !isnan(cur);
    return e->seen ? e->weighted : NAN;
}

static void ewm_mean(const double *x, size_t n, double alpha_in, double *out)
{
    struct ewm e;

    if (n == 0)
        return;
    ewm_init(&e, alpha_in);
    out[0] = ewm_first(&e, x[0]);
    for (size_t i = 1; i < n; i++)
        out[i] = ewm_next(&e, x[i]);
}

int ab_ind_ema_alpha(const double *x, size_t n, double alpha, double *out)
{
    if (!(alpha > 0.0 && alpha <= 1.0) || (n > 0 && (x == NULL || out == NULL)))
        return AB_EINVAL;
    ewm_mean(x, n, alpha, out);
    return 0;
}

int ab_ind_ema(const double *x, size_t n, int period, double *out)
{
    if (!period_ok(period))
        return AB_EINVAL;
    return ab_ind_ema_alpha(x, n, 2.0 / ((double)period + 1.0), out);
}

int ab_ind_wma(const double *x, size_t n, int period, double *out)
{
    size_t p = (size_t)period;
    double wsum = (double)p * (double)(p + 1) / 2.0; /* exact: p <= 1e6 */
    double num = 0.0, sum = 0.0;
    size_t bad_until = 0; /* windows ending before this index hold a non-finite value */
    size_t since = 0;     /* slides since the last exact recomputation */
    size_t nsame = 0;     /* run of equal values ending at i */
    bool valid = false;

    if (!period_ok(period) || (n > 0 && (x == NULL || out == NULL)))
        return AB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            bad_until = i + p;
        nsame = (i > 0 && x[i] == x[i - 1]) ? nsame + 1 : 1;
        if (i + 1 < p || i < bad_until) {
            out[i] = NAN;
            valid = false;
            continue;
        }
        if (!valid || since >= p) {
            /* Exact recomputation every p slides bounds the drift of the
             * running identity to p roundings: O(n) overall. */
            const double *w = x + (i + 1 - p);
            num = 0.0;
            sum = 0.0;
            for (size_t j = 0; j < p; j++) {
                num += (double)(j + 1) * w[j];
                sum += w[j];
            }
            valid = true;
            since = 0;
        } else {
            /* N_i = N_{i-1} - S_{i-1} + p x_i ; S_i = S_{i-1} - x_{i-p} + x_i */
            num = num - sum + (double)p * x[i];
            sum = sum - x[i - p] + x[i];
            since++;
        }
        /* A constant window is that value (pandas: exact 0 for zeros),
         * not the running identity's leftover rounding. */
        out[i] = nsame >= p ? x[i] : num / wsum;
    }
    return 0;
}

/* pandas: 100 - 100 / (1 + g / l), with IEEE division spelled out. */
static inline double rsi_value(double g, double l)
{
    if (isnan(g) || isnan(l))
        return NAN;
    if (l == 0.0)
        return g == 0.0 ? NAN : 100.0; /* 0/0 -> NaN; g/0 -> inf -> 100 */
    return 100.0 - 100.0 / (1.0 + g / l);
}

/*
 * Gain and loss of diff i exactly as pandas' clip(lower=0) and
 * -clip(upper=0) produce them, signed zeros included (-0.0 losses count as
 * negative in the rolling mean's sign clamp). i == 0 is NaN.
 */
static inline void gain_loss(const double *x, size_t i, double *gain, double *loss)
{
    double d;

    if (i == 0) {
        *gain = *loss = NAN;
        return;
    }
    d = x[i] - x[i - 1];
    if (isnan(d)) {
        *gain = *loss = NAN;
        return;
    }
    /* Table selects instead of branches: the sign of d is random data. */
    const double g[2] = {0.0, d}, l[2] = {-0.0, -d};
    *gain = g[d >= 0];
    *loss = l[d <= 0];
}

static void rsi_simple(const double *x, size_t n, size_t p, double *out)
{
    struct roll rg, rl;
    double g, l;

    roll_init(&rg);
    roll_init(&rl);
    for (size_t i = 0; i < n; i++) {
        if (i >= p) {
            gain_loss(x, i - p, &g, &l);
            roll_remove(&rg, g);
            roll_remove(&rl, l);
        }
        gain_loss(x, i, &g, &l);
        roll_add(&rg, g);
        roll_add(&rl, l);
        out[i] = rsi_value(roll_mean(&rg, (int64_t)p), roll_mean(&rl, (int64_t)p));
    }
}

static void rsi_wilder(const double *x, size_t n, size_t p, double *out)
{
    double sg = 0.0, sl = 0.0, g, l, ag, al;
    double pd = (double)p, pm1 = (double)(p - 1);

    fill_nan(out, 0, n < p + 1 ? n : p + 1);
    if (n <= p)
        return;
    for (size_t i = 1; i <= p; i++) {
        gain_loss(x, i, &g, &l);
        sg += g;
        sl += l;
    }
    ag = sg / pd;
    al = sl / pd;
    out[p] = rsi_value(ag, al);
    for (size_t i = p + 1; i < n; i++) {
        gain_loss(x, i, &g, &l);
        ag = (ag * pm1 + g) / pd;
        al = (al * pm1 + l) / pd;
        out[i] = rsi_value(ag, al);
    }
}

int ab_ind_rsi(const double *x, size_t n, int period, enum ab_rsi_smoothing smoothing, double *out)
{
    if (!period_ok(period) || (n > 0 && (x == NULL || out == NULL)))
        return AB_EINVAL;
    switch (smoothing) {
    case AB_RSI_SIMPLE:
        rsi_simple(x, n, (size_t)period, out);
        return 0;
    case AB_RSI_WILDER:
        rsi_wilder(x, n, (size_t)period, out);
        return 0;
    }
    return AB_EINVAL;
}

int ab_ind_macd(const double *x, size_t n, int fast, int slow, int signal_period, double *macd,
                double *signal, double *hist)
{
    if (!period_ok(fast) || !period_ok(slow) || !period_ok(signal_period) || fast >= slow)
        return AB_EINVAL;
    if (n > 0 && (x == NULL || macd == NULL || signal == NULL || hist == NULL))
        return AB_EINVAL;
    if (n == 0)
        return 0;
    /* One pass, three interleaved EMA chains (see struct ewm). */
    struct ewm ef, es, eg;
    ewm_init(&ef, 2.0 / ((double)fast + 1.0));
    ewm_init(&es, 2.0 / ((double)slow + 1.0));
    ewm_init(&eg, 2.0 / ((double)signal_period + 1.0));
    macd[0] = ewm_first(&ef, x[0]) - ewm_first(&es, x[0]);
    signal[0] = ewm_first(&eg, macd[0]);
    hist[0] = macd[0] - signal[0];
    for (size_t i = 1; i < n; i++) {
        double f = ewm_next(&ef, x[i]);
        double s = ewm_next(&es, x[i]);
        macd[i] = f - s;
        signal[i] = ewm_next(&eg, macd[i]);
        hist[i] = macd[i] - signal[i];
    }
    return 0;
}

int ab_ind_bbands(const double *x, size_t n, int period, double k, double *upper, double *middle,
                  double *lower)
{
    struct roll rm;
    struct rstd rs = {.prev = NAN};
    size_t p = (size_t)period, nan_until = 0;
    double mid, sd;

    if (!period_ok(period) || !isfinite(k) || k < 0)
        return AB_EINVAL;
    if (n > 0 && (x == NULL || upper == NULL || middle == NULL || lower == NULL))
        return AB_EINVAL;
    roll_init(&rm);
    for (size_t i = 0; i < n; i++) {
        if (i >= p)
            roll_remove(&rm, x[i - p]);
        roll_add(&rm, x[i]);
        if (!isfinite(x[i]))
            nan_until = i + p;
        mid = roll_mean(&rm, period);
        sd = rstd_step(&rs, x, i, p, nan_until);
        middle[i] = mid;
        upper[i] = mid + k * sd;
        lower[i] = mid - k * sd;
    }
    return 0;
}

/* True range of candle i >= 1; NaN if any input is NaN. */
static inline double true_range(const double *h, const double *l, const double *c, size_t i)
{
    double a = h[i] - l[i], b = fabs(h[i] - c[i - 1]), d = fabs(l[i] - c[i - 1]);
    double m = a;

    if (isnan(a) || isnan(b) || isnan(d))
        return NAN;
    if (b > m)
        m = b;
    if (d > m)
        m = d;
    return m;
}

int ab_ind_atr(const double *high, const double *low, const double *close, size_t n, int period,
               double *out)
{
    size_t p = (size_t)period;
    double s = 0.0, a;
    double pd = (double)p, pm1 = (double)(p - 1);

    if (!period_ok(period))
        return AB_EINVAL;
    if (n > 0 && (high == NULL || low == NULL || close == NULL || out == NULL))
        return AB_EINVAL;
    fill_nan(out, 0, n < p + 1 ? n : p + 1);
    if (n <= p)
        return 0;
    for (size_t i = 1; i <= p; i++)
        s += true_range(high, low, close, i);
    a = s / pd;
    out[p] = a;
    for (size_t i = p + 1; i < n; i++) {
        a = (a * pm1 + true_range(high, low, close, i)) / pd;
        out[i] = a;
    }
    return 0;
}

static inline double price_volume(const double *h, const double *l, const double *c,
                                  const double *v, size_t i)
{
    return (h[i] + l[i] + c[i]) / 3.0 * v[i];
}

int ab_ind_vwap(const double *high, const double *low, const double *close, const double *volume,
                size_t n, int period, double *out)
{
    struct roll rpv, rv;
    size_t p = (size_t)period;
    double pv, vs;

    if (!period_ok(period))
        return AB_EINVAL;
    if (n > 0 && (high == NULL || low == NULL || close == NULL || volume == NULL || out == NULL))
        return AB_EINVAL;
    roll_init(&rpv);
    roll_init(&rv);
    for (size_t i = 0; i < n; i++) {
        if (i >= p) {
            roll_remove(&rpv, price_volume(high, low, close, volume, i - p));
            roll_remove(&rv, volume[i - p]);
        }
        roll_add(&rpv, price_volume(high, low, close, volume, i));
        roll_add(&rv, volume[i]);
        pv = roll_sum(&rpv, period);
        vs = roll_sum(&rv, period);
        out[i] = (isnan(pv) || isnan(vs) || vs == 0.0) ? NAN : pv / vs;
    }
    return 0;
}

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
 *
 * Speed (issue #7). sma, ema, rsi(simple) and macd run their common case
 * (a full window, or a steady EMA state, without NaN) in fast paths that do
 * the same operations in the same order as the general step, so the same
 * bits (tests/unit/test_indicators.c checks every output against pandas'
 * loops written out, including NaN, inf, signed zeros and equal runs), and
 * fall back to the general step for one value whenever the common case does
 * not apply. Measured on 100k closes (bench/bench_indicators.c, the
 * workload of bench/run.sh; 2-core AMD EPYC VM, same-run medians, ns per
 * candle, before -> after): sma(20) 2.40 -> 1.95, ema(20) 1.36 -> 1.36
 * (already at its floor), rsi(14) 7.1 -> 3.3-3.6, macd(12,26,9) 3.0 -> 1.4-1.5;
 * the set 14.1 -> ~8.5 (1.7x). What is left is mostly dependency chains:
 * 4 dependent adds per value in the Kahan sums, a multiply + add per EMA
 * step; both are fixed by the bit-identity with pandas.
 */
#include "common/indicators.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/*
 * Two doubles in one register (GCC/Clang vector extension, plain IEEE
 * elementwise operations: the same roundings as scalar code). On x86-64
 * this is baseline SSE2, no extra -m flags: a divpd does two divisions in
 * the time of one divsd (~4.5 cycles here), and RSI's four divisions per
 * output were its bottleneck (divsd: ~18 cycles per output).
 */
typedef double v2d __attribute__((vector_size(16)));
typedef long long v2i __attribute__((vector_size(16)));
typedef unsigned long long v2u __attribute__((vector_size(16)));

static inline v2d v2d_load(const double *p)
{
    v2d v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void v2d_store(double *p, v2d v)
{
    memcpy(p, &v, sizeof(v));
}

/* Sign bits of the two lanes as bits 0 and 1 (a true compare lane is all ones). */
static inline unsigned v2d_signs(v2d v)
{
#ifdef __SSE2__
    return (unsigned)_mm_movemask_pd((__m128d)v);
#else
    return (unsigned)(signbit(v[0]) != 0) | (unsigned)(signbit(v[1]) != 0) << 1;
#endif
}

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

/* calc_mean's special cases, applied to res = sum / nobs (nobs >= 1). */
static inline double mean_rules(double res, int64_t nobs, int64_t nsame, int64_t neg_ct,
                                double prev)
{
    if (nsame >= nobs)
        res = prev;
    else if (neg_ct == 0 && res < 0)
        res = 0.0; /* all non-negative: rounding must not go below 0 */
    else if (neg_ct == nobs && res > 0)
        res = 0.0;
    return res;
}

/* pandas calc_mean with min_periods = minp. */
static inline double roll_mean(const struct roll *r, int64_t minp)
{
    if (r->nobs < minp || r->nobs <= 0)
        return NAN;
    return mean_rules(r->sum / (double)r->nobs, r->nobs, r->nsame, r->neg_ct, r->prev);
}

/*
 * The fast paths below (sma_fast, rsi_fast) run a full window without NaN
 * (nobs == p) two outputs per step: the Kahan updates in registers (they
 * are the dependency chain: 4 dependent adds per value, ~8 cycles, the
 * floor of a rolling mean), nsame and neg_ct branch-free, two divisions
 * per divpd, and mean_rules only where a cheap superset test says it could
 * apply (rules_risk, or a sum with its sign bit set). sma(20): 2.40 -> 1.95
 * ns per value, which is that floor.
 */

/* roll_remove(v) then roll_add(in), neg_v = -v, neither NaN: the same operations. */
static inline void kahan_slide(double *sum, double *comp_add, double *comp_rem, double neg_v,
                               double in)
{
    double y = neg_v - *comp_rem, t = *sum + y;

    *comp_rem = t - *sum - y;
    *sum = t;
    y = in - *comp_add;
    t = *sum + y;
    *comp_add = t - *sum - y;
    *sum = t;
}

/* kahan_slide on two independent windows at once (lane by lane, the same roundings). */
static inline void kahan_slide2(v2d *sum, v2d *comp_add, v2d *comp_rem, v2d neg_v, v2d in)
{
    v2d y = neg_v - *comp_rem, t = *sum + y;

    *comp_rem = t - *sum - y;
    *sum = t;
    y = in - *comp_add;
    t = *sum + y;
    *comp_add = t - *sum - y;
    *sum = t;
}

/* nsame after adding a value that does (eq) or does not equal the previous one. */
static inline int64_t nsame_next(int64_t nsame, unsigned eq)
{
    return (nsame & -(int64_t)(eq & 1)) + 1; /* branch-free: equal values are random */
}

/* Negative when nsame or neg_ct reaches nobs: mean_rules may apply. */
static inline int64_t rules_risk(int64_t nobs, int64_t nsame, int64_t neg_ct)
{
    return (nobs - 1 - nsame) | (nobs - 1 - neg_ct);
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

/*
 * ab_ind_sma's steady state from x[i] on (i >= p, r->nobs == p): see
 * kahan_slide. Stops before a pair holding a NaN (or inf and -inf: the test
 * is isunordered) and before a last odd value; returns the first index not
 * written.
 */
static size_t sma_fast(struct roll *r, const double *x, size_t i, size_t n, size_t p, double *out)
{
    double sum = r->sum, comp_add = r->comp_add, comp_rem = r->comp_rem;
    int64_t nsame = r->nsame, neg = r->neg_ct, np = (int64_t)p;
    const v2d div = {(double)np, (double)np};
    size_t start = i;

    for (; i + 1 < n; i += 2) {
        double a0 = x[i], a1 = x[i + 1], r0 = x[i - p], r1 = x[i + 1 - p], s0;
        int64_t nsame0, neg0;
        v2d res;

        if (isunordered(a0, a1))
            break;
        kahan_slide(&sum, &comp_add, &comp_rem, -r0, a0);
        s0 = sum;
        kahan_slide(&sum, &comp_add, &comp_rem, -r1, a1);
        nsame0 = nsame_next(nsame, a0 == x[i - 1]);
        nsame = nsame_next(nsame0, a1 == a0);
        neg0 = neg + (signbit(a0) != 0) - (signbit(r0) != 0);
        neg = neg0 + (signbit(a1) != 0) - (signbit(r1) != 0);
        res = (v2d){s0, sum} / div;
        if ((rules_risk(np, nsame0, neg0) | rules_risk(np, nsame, neg)) < 0 ||
            (signbit(s0) | signbit(sum))) {
            res[0] = mean_rules(res[0], np, nsame0, neg0, a0);
            res[1] = mean_rules(res[1], np, nsame, neg, a1);
        }
        v2d_store(out + i, res);
    }
    if (i > start) {
        r->sum = sum;
        r->comp_add = comp_add;
        r->comp_rem = comp_rem;
        r->nsame = nsame;
        r->neg_ct = neg;
        r->prev = x[i - 1];
    }
    return i;
}

int ab_ind_sma(const double *x, size_t n, int period, double *out)
{
    struct roll r;
    size_t p = (size_t)period;

    if (!period_ok(period) || (n > 0 && (x == NULL || out == NULL)))
        return AB_EINVAL;
    roll_init(&r);
    for (size_t i = 0; i < n; i++) {
        if (i >= p && r.nobs == (int64_t)p) {
            i = sma_fast(&r, x, i, n, p, out);
            if (i == n)
                break;
        }
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
 *
 * ewm_next is the general step. Almost every step takes its common case:
 * weighted and cur not NaN, so old_wt is 1 before the step and
 * old_wt_factor after the aging multiply (1.0 * f == f exactly), and
 * weighted = (f * weighted + a * cur) / (f + a). ewm_fast (and the fused
 * loop of ab_ind_macd) run that case with the state in registers and no
 * NaN branches in the arithmetic, dropping back to ewm_next for one step
 * whenever an input or the state is NaN, then resuming. Same operations
 * in the same order, so the same bits (checked against the previous
 * implementation on 100k closes and on NaN / inf / signed-zero / constant-run
 * series). One step is a dependent multiply + add (~5 cycles): that chain,
 * not the instruction count, is the floor of a single EMA, and ema(20) was
 * already there (1.36 ns per value, unchanged). macd(12,26,9) was not (3.0
 * ns: ~12 compares and branches per step): 2.1 with the states in
 * registers, 1.7 with loop-invariant factors in locals (stores to the
 * outputs could alias them), 1.4 with one NaN test per step.
 */
struct ewm {
    double old_wt_factor, new_wt, old_wt;
    double den;    /* old_wt_factor + new_wt: the common case's divisor */
    bool need_div; /* den != 1.0; x / 1.0 == x exactly, so skip the slow division */
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
    e->den = e->old_wt_factor + e->new_wt;
    e->need_div = e->den != 1.0;
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

/*
 * True when the next ewm_next would take the common case for any non-NaN
 * cur, without the division: (1 - a) + a rounds to exactly 1 for every
 * alpha tried (all periods to 1e5, 1e8 random alphas), so need_div is in
 * practice never set; if it were, every step would take ewm_next.
 */
static inline bool ewm_steady(const struct ewm *e)
{
    return e->old_wt == 1.0 && !isnan(e->weighted) && !e->need_div;
}

/* ewm_next's common case: w and cur not NaN, old_wt 1, den 1 (see struct ewm). */
static inline double ewm_fast_step(double w, double cur, double f, double a)
{
    if (w != cur) /* a branch, not a select: it stays off the dependency chain */
        w = f * w + a * cur;
    return w;
}

/*
 * Runs the common case from x[i] on while it applies (e steady); returns
 * the index of the first value it did not consume.
 */
static size_t ewm_fast(struct ewm *e, const double *x, size_t i, size_t n, double *out)
{
    /* locals, not e->...: the stores to out could alias them */
    double w = e->weighted, f = e->old_wt_factor, a = e->new_wt;

    for (; i < n; i++) {
        double cur = x[i];

        if (isunordered(cur, w))
            break;
        w = ewm_fast_step(w, cur, f, a);
        out[i] = w;
    }
    e->weighted = w;
    return i;
}

static void ewm_mean(const double *x, size_t n, double alpha_in, double *out)
{
    struct ewm e;
    size_t i = 1;

    if (n == 0)
        return;
    ewm_init(&e, alpha_in);
    out[0] = ewm_first(&e, x[0]);
    while (i < n) {
        if (ewm_steady(&e)) {
            i = ewm_fast(&e, x, i, n, out);
            if (i == n)
                break;
        }
        out[i] = ewm_next(&e, x[i]);
        i++;
    }
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

/* rsi_value(g, l) from rs = g / l (see rsi_fast), for two outputs. */
static inline v2d rsi_finish(v2d rs)
{
    const v2d one = {1.0, 1.0}, hundred = {100.0, 100.0}, nan = {NAN, NAN};
    v2d rsi = hundred - hundred / (one + rs);
    v2i bad = (v2i)(rsi != rsi);

    return (v2d)(((v2i)rsi & ~bad) | ((v2i)nan & bad));
}

/*
 * rsi_simple's steady state from x[i] on (i >= p + 1, both windows full
 * without NaN), two outputs per step:
 * - the gains and losses (gain_loss: max(d, 0), -min(d, 0), signed zeros
 *   included) of the two added diffs and of the two removed ones, the
 *   latter negated for the removal, as masks on vectors of diffs;
 * - then, per output, lane 0 is the gain window and lane 1 the loss window:
 *   one vector Kahan slide updates both (the same roundings per lane),
 *   and one divpd gives both means;
 * - the two outputs' g / l and 100 / (1 + rs) are one divpd each: four
 *   divisions per output in two divpd, against four divsd before;
 * - the divisions are software-pipelined: g / l of a pair one step later
 *   (its gain means wait in out, its loss means in loss_means) and
 *   100 / (1 + rs) two steps later, so the ~45-cycle division chain of a
 *   pair never stalls the Kahan chain of the next ones.
 * Measured (rsi(14), 100k closes, ns per output): 7.1 before; 5.4 with
 * divpd (and 8.0 while nsame was a branch: equal gains are random); 3.6
 * with one vector Kahan slide for both windows; 3.2-3.5 pipelined.
 * rsi_value's special cases are IEEE's own results of that formula (l == 0
 * gives +-inf -> 100, 0/0 gives NaN), except that rsi_value returns the
 * positive quiet NaN, so NaN results are replaced by NAN. Stops before a
 * pair whose added diffs are NaN; returns the first index not written.
 */
static size_t rsi_fast(struct roll *rg, struct roll *rl, const double *x, size_t i, size_t n,
                       size_t p, double *out)
{
    v2d sum = {rg->sum, rl->sum}, comp_add = {rg->comp_add, rl->comp_add};
    v2d comp_rem = {rg->comp_rem, rl->comp_rem}, prev = {rg->prev, rl->prev};
    v2i same = {rg->nsame, rl->nsame}, neg = {rg->neg_ct, rl->neg_ct};
    const int64_t np = (int64_t)p;
    const v2i one = {1, 1}, last = {np - 1, np - 1};
    const v2d zero = {0.0, 0.0}, div = {(double)np, (double)np};
    double loss_means[2] = {0.0, 0.0}; /* stage 1 -> 2 (the gain means wait in out) */
    size_t start = i;

    for (; i + 1 < n; i += 2) {
        v2d d = v2d_load(x + i) - v2d_load(x + i - 1);
        v2d e = v2d_load(x + i - p) - v2d_load(x + i - p - 1);
        /*
         * The two gains and losses added, and minus the two removed:
         * gain = d >= 0 ? d : 0.0 and loss = -(d <= 0 ? d : 0.0) (that is
         * -d, or -0.0), as in gain_loss.
         */
        v2d g = (v2d)((v2i)d & (v2i)(d >= zero));
        v2d l = -(v2d)((v2i)d & (v2i)(d <= zero));
        v2d ng = -(v2d)((v2i)e & (v2i)(e >= zero));
        v2d nl = (v2d)((v2i)e & (v2i)(e <= zero));
        /* per output: {gain, loss} added and minus {gain, loss} removed */
        v2d in0 = {g[0], l[0]}, in1 = {g[1], l[1]}, gone0 = {ng[0], nl[0]}, gone1 = {ng[1], nl[1]};
        v2d s0, m0, m1;
        v2i same0, neg0, risk;

        if (v2d_signs((v2d)(d != d)) != 0)
            break;
        /* the later stages for the pairs before (see above) */
        if (i - start >= 4)
            v2d_store(out + i - 4, rsi_finish(v2d_load(out + i - 4)));
        if (i - start >= 2)
            v2d_store(out + i - 2, v2d_load(out + i - 2) / v2d_load(loss_means));
        /*
         * nsame and neg_ct of both windows, lane by lane as in roll_add and
         * roll_remove: a true compare is all ones, sign bits are >> 63, and
         * a removed value's own sign bit is 1 - that of its negation.
         */
        same0 = (same & (v2i)(in0 == prev)) + one;
        same = (same0 & (v2i)(in1 == in0)) + one;
        prev = in1;
        neg0 = neg + (v2i)((v2u)in0 >> 63) + (v2i)((v2u)gone0 >> 63) - one;
        neg = neg0 + (v2i)((v2u)in1 >> 63) + (v2i)((v2u)gone1 >> 63) - one;
        kahan_slide2(&sum, &comp_add, &comp_rem, gone0, in0);
        s0 = sum;
        kahan_slide2(&sum, &comp_add, &comp_rem, gone1, in1);
        m0 = s0 / div;
        m1 = sum / div;
        /* a sign bit set: a count reached nobs, or a sum is negative (rules_risk) */
        risk = (last - same0) | (last - neg0) | (last - same) | (last - neg) | (v2i)s0 | (v2i)sum;
        if (v2d_signs((v2d)risk) != 0) {
            double g0, l0, g1, l1; /* recomputed: keeping in0, in1 costs registers */

            gain_loss(x, i, &g0, &l0);
            gain_loss(x, i + 1, &g1, &l1);
            m0[0] = mean_rules(m0[0], np, same0[0], neg0[0], g0);
            m0[1] = mean_rules(m0[1], np, same0[1], neg0[1], l0);
            m1[0] = mean_rules(m1[0], np, same[0], neg[0], g1);
            m1[1] = mean_rules(m1[1], np, same[1], neg[1], l1);
        }
        v2d_store(out + i, (v2d){m0[0], m1[0]});
        v2d_store(loss_means, (v2d){m0[1], m1[1]});
    }
    /* drain the pipeline */
    if (i - start >= 4)
        v2d_store(out + i - 4, rsi_finish(v2d_load(out + i - 4)));
    if (i - start >= 2)
        v2d_store(out + i - 2, rsi_finish(v2d_load(out + i - 2) / v2d_load(loss_means)));
    if (i > start) {
        rg->sum = sum[0], rl->sum = sum[1];
        rg->comp_add = comp_add[0], rl->comp_add = comp_add[1];
        rg->comp_rem = comp_rem[0], rl->comp_rem = comp_rem[1];
        rg->prev = prev[0], rl->prev = prev[1];
        rg->nsame = same[0], rl->nsame = same[1];
        rg->neg_ct = neg[0], rl->neg_ct = neg[1];
    }
    return i;
}

static void rsi_simple(const double *x, size_t n, size_t p, double *out)
{
    struct roll rg, rl;
    double g, l;

    roll_init(&rg);
    roll_init(&rl);
    for (size_t i = 0; i < n; i++) {
        if (i > p && rg.nobs == (int64_t)p && rl.nobs == (int64_t)p) {
            i = rsi_fast(&rg, &rl, x, i, n, p, out);
            if (i == n)
                break;
        }
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

/*
 * ab_ind_macd's common-case loop (see struct ewm), all three chains
 * steady: the states in registers; a step it cannot take (a NaN input or
 * state, or a NaN macd from inf - inf) is left uncommitted to the general
 * ewm_next. Returns the first index not consumed.
 */
static size_t macd_fast(struct ewm *ef, struct ewm *es, struct ewm *eg, const double *x, size_t i,
                        size_t n, double *macd, double *signal, double *hist)
{
    double wf = ef->weighted, ws = es->weighted, wg = eg->weighted;
    double ff = ef->old_wt_factor, af = ef->new_wt, fs = es->old_wt_factor, as = es->new_wt;
    double fg = eg->old_wt_factor, ag = eg->new_wt;

    for (; i < n; i++) {
        double cur = x[i], nf, ns, m;

        /*
         * One test for all: a NaN cur, wf or ws makes m NaN (w != NaN is
         * true, so the step computes with it), and wg is the last operand.
         */
        nf = ewm_fast_step(wf, cur, ff, af);
        ns = ewm_fast_step(ws, cur, fs, as);
        m = nf - ns;
        if (isunordered(m, wg))
            break;
        wf = nf;
        ws = ns;
        wg = ewm_fast_step(wg, m, fg, ag);
        macd[i] = m;
        signal[i] = wg;
        hist[i] = m - wg;
    }
    ef->weighted = wf;
    es->weighted = ws;
    eg->weighted = wg;
    return i;
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
    /*
     * One pass, three interleaved EMA chains (see struct ewm): the chains
     * are independent from step to step, so they overlap and the pass
     * costs about one EMA. The common-case loop keeps the states in
     * registers and leaves a step it cannot take (a NaN input or state, or
     * a NaN macd from inf - inf) to the general ewm_next, uncommitted.
     */
    struct ewm ef, es, eg;
    size_t i = 1;
    ewm_init(&ef, 2.0 / ((double)fast + 1.0));
    ewm_init(&es, 2.0 / ((double)slow + 1.0));
    ewm_init(&eg, 2.0 / ((double)signal_period + 1.0));
    macd[0] = ewm_first(&ef, x[0]) - ewm_first(&es, x[0]);
    signal[0] = ewm_first(&eg, macd[0]);
    hist[0] = macd[0] - signal[0];
    while (i < n) {
        if (ewm_steady(&ef) && ewm_steady(&es) && ewm_steady(&eg)) {
            i = macd_fast(&ef, &es, &eg, x, i, n, macd, signal, hist);
            if (i == n)
                break;
        }
        double f = ewm_next(&ef, x[i]);
        double s = ewm_next(&es, x[i]);
        macd[i] = f - s;
        signal[i] = ewm_next(&eg, macd[i]);
        hist[i] = macd[i] - signal[i];
        i++;
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

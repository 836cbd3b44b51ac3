/*
 * bench_indicators: sma, ema, rsi and macd over 100k closes.
 *
 *   bench_indicators CLOSES_FILE [N [SECONDS]]
 *
 * Workload: N (default 100000) closes of a geometric random walk (splitmix64,
 * fixed seed; start 30000, steps of about 0.1%), written to CLOSES_FILE one
 * per line with 17 significant digits so that bench/seed_indicators.py (the
 * seed's pandas functions) reads exactly the same doubles. One "set" is
 * sma(20), ema(20), rsi(14) and macd(12, 26, 9) over all N closes, each into
 * its own output arrays (the periods are the seed's defaults where it has
 * them). Sets are repeated for at least SECONDS (default 3); the figure is
 * the median time of one set, reported as candles per second (N / time).
 * The pandas side reports the same way; bench/report.py forms the ratio.
 * The median time of each indicator within the sets is printed too (not a
 * RESULT): where a set's time goes, for profiling.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "common/indicators.h"

#define MAX_SETS 100000

static double set_times[MAX_SETS];
static double part_times[4][MAX_SETS];
static const char *const part_names[4] = {"sma(20)", "ema(20)", "rsi(14)", "macd(12,26,9)"};

int main(int argc, char **argv)
{
    size_t n;
    double secs, *x, *o, t0;
    uint64_t rng = 0x1d1ca7025ULL;
    FILE *f;
    size_t sets = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_indicators CLOSES_FILE [N [SECONDS]]\n");
        return 2;
    }
    n = argc > 2 ? (size_t)bench_arg_long(argv[2], 100, 100000000, "N") : 100000;
    secs = argc > 3 ? (double)bench_arg_long(argv[3], 1, 3600, "seconds") : 3.0;
    x = malloc(n * sizeof *x);
    o = malloc(6 * n * sizeof *o);
    f = fopen(argv[1], "w");
    if (x == NULL || o == NULL || f == NULL) {
        bench_die("bench_indicators: out of memory or cannot write %s", argv[1]);
    }
    x[0] = 30000.0;
    for (size_t i = 1; i < n; i++) {
        x[i] = x[i - 1] * (1.0 + (bench_rand01(&rng) - 0.5) * 0.002);
    }
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%.17g\n", x[i]);
    }
    if (fclose(f) != 0) {
        bench_die("bench_indicators: cannot write %s", argv[1]);
    }
    printf("workload: %zu closes (random walk from 30000); one set = sma(20), ema(20),"
           " rsi(14), macd(12,26,9)\n",
           n);
    t0 = bench_now();
    while (sets < MAX_SETS && (sets < 5 || bench_now() - t0 < secs)) {
        double t[5];
        int rc;

        t[0] = bench_now();
        rc = ab_ind_sma(x, n, 20, o);
        t[1] = bench_now();
        rc |= ab_ind_ema(x, n, 20, o + n);
        t[2] = bench_now();
        rc |= ab_ind_rsi(x, n, 14, AB_RSI_SIMPLE, o + 2 * n);
        t[3] = bench_now();
        rc |= ab_ind_macd(x, n, 12, 26, 9, o + 3 * n, o + 4 * n, o + 5 * n);
        t[4] = bench_now();
        if (rc != 0) {
            bench_die("bench_indicators: indicator failed");
        }
        for (int k = 0; k < 4; k++) {
            part_times[k][sets] = t[k + 1] - t[k];
        }
        set_times[sets++] = t[4] - t[0];
    }
    if (!isfinite(o[n - 1]) || !isfinite(o[6 * n - 1])) {
        bench_die("bench_indicators: non-finite result");
    }
    {
        double med = bench_median(set_times, sets);

        printf("one set: median %.3f ms over %zu sets\n", med * 1e3, sets);
        for (int k = 0; k < 4; k++) {
            printf("  %-14s median %.3f ms (%.2f ns/candle)\n", part_names[k],
                   bench_median(part_times[k], sets) * 1e3,
                   bench_median(part_times[k], sets) * 1e9 / (double)n);
        }
        bench_result("id=indicators value=%.0f unit=candles/s", (double)n / med);
    }
    free(x);
    free(o);
    return 0;
}

/*
 * bench_feed: plays the ingest on the bus (common/bus_client.h) for the
 * memory figure, and samples the query process's resident memory.
 *
 *   bench_feed BUS_PATH QUERY_PID SYMBOLS CANDLES RATE SECONDS
 *
 * Workload. Load: CANDLES closed 1m candles for each of SYMBOLS symbols
 * (BENCH0USDT, BENCH1USDT, ...), oldest first, interleaved across symbols;
 * the bus's buffer cap pushes back (AB_ENOMEM: retry after 1 ms) and the
 * load waits until the query has acknowledged every frame (acknowledged =
 * committed to PostgreSQL). Steady run: for SECONDS, RATE candles per
 * second round-robin over the symbols, each symbol's next minute (so every
 * series' ring stays full and evicts one candle per insert: the memory
 * state is the steady state), each update published twice (open, then
 * closed), as the exchange sends a minute.
 *
 * Resident memory (VmRSS of /proc/QUERY_PID/status) is sampled every
 * second. Printed: RSS after the load (warm), at the end, the maximum during
 * the steady run and the least-squares slope over the steady run's second
 * half (MB/min; "no growth" means about zero), as RESULT id=mem_rss.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "common/bus_client.h"
#include "common/err.h"
#include "common/log.h"

#define T0      1599999960000LL /* a minute boundary (2020-09-13) */
#define MAX_SYM 1000

static const char *pid_s;

static double rss_mb(void)
{
    char path[64], line[256];
    FILE *f;
    double kb = -1;

    snprintf(path, sizeof path, "/proc/%s/status", pid_s);
    f = fopen(path, "r");
    if (f == NULL) {
        bench_die("bench_feed: query process %s is gone", pid_s);
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtod(line + 6, NULL);
        }
    }
    fclose(f);
    return kb / 1024.0;
}

static void make(int sym, int64_t minute, bool closed, struct ab_candle *c)
{
    char t[48];
    int64_t p = 1000000 + (minute * 7919 + sym * 104729) % 50000;

    memset(c, 0, sizeof *c);
    snprintf(c->symbol, sizeof c->symbol, "BENCH%dUSDT", sym);
    c->interval = AB_I_1M;
    c->open_time = T0 + minute * 60000;
    c->close_time = c->open_time + 59999;
    snprintf(t, sizeof t, "%" PRId64 ".%02" PRId64, p / 100, p % 100);
    ab_dec_parse_cstr(t, &c->open);
    ab_dec_parse_cstr(t, &c->close);
    snprintf(t, sizeof t, "%" PRId64 ".%02" PRId64, (p + 500) / 100, (p + 500) % 100);
    ab_dec_parse_cstr(t, &c->high);
    snprintf(t, sizeof t, "%" PRId64 ".%02" PRId64, (p - 500) / 100, (p - 500) % 100);
    ab_dec_parse_cstr(t, &c->low);
    ab_dec_parse_cstr("12.3456789", &c->volume);
    ab_dec_parse_cstr("123456.78901234", &c->quote_volume);
    ab_dec_parse_cstr("6.1", &c->taker_buy_volume);
    ab_dec_parse_cstr("61728.39", &c->taker_buy_quote_volume);
    c->num_trades = closed ? 200 : 100;
    c->first_trade_id = minute * 1000;
    c->last_trade_id = c->first_trade_id + c->num_trades - 1;
    c->closed = closed;
    c->event_time = closed ? c->close_time + 1 : c->open_time + 30000;
}

static void publish(struct ab_bus_client *cl, const struct ab_candle *c)
{
    int rc;

    while ((rc = ab_bus_client_publish_candle(cl, c, AB_BUS_ORIGIN_WS, 0, NULL)) == AB_ENOMEM) {
        usleep(1000);
    }
    if (rc != 0) {
        struct ab_bus_msg m = {.type = AB_BUS_CANDLE, .seq = 1};
        const char *why = "?";
        size_t len;

        m.u.candle.c = *c;
        ab_bus_frame_size(&m, &len, &why);
        bench_die("bench_feed: publish %s %" PRId64 ": %s (%s)", c->symbol, c->open_time,
                  ab_err_str(rc), why);
    }
}

int main(int argc, char **argv)
{
    struct ab_bus_client_config cfg = {0};
    struct ab_bus_client *cl = NULL;
    long syms, candles, rate, secs;
    double t0, warm, rss_max = 0, rss_end = 0, *samples;
    size_t ns = 0;
    int64_t minute;

    if (argc < 7) {
        fprintf(stderr, "usage: bench_feed BUS_PATH QUERY_PID SYMBOLS CANDLES RATE SECONDS\n");
        return 2;
    }
    pid_s = argv[2];
    syms = bench_arg_long(argv[3], 1, MAX_SYM, "symbols");
    candles = bench_arg_long(argv[4], 1, 1000000, "candles");
    rate = bench_arg_long(argv[5], 1, 1000000, "rate");
    secs = bench_arg_long(argv[6], 2, 3600, "seconds");
    samples = calloc((size_t)secs + 8, sizeof *samples);
    ab_log_init(AB_LOG_TEXT, AB_LOG_ERROR); /* the bus client warns on every full buffer */
    cfg.path = argv[1];
    cfg.name = "bench_feed";
    if (samples == NULL || ab_bus_client_new(&cfg, &cl) != 0 || ab_bus_client_start(cl) != 0) {
        bench_die("bench_feed: cannot start the bus client");
    }
    printf("workload: %ld symbols x %ld closed 1m candles loaded through the bus, then %ld"
           " candle updates/s (each minute open then closed) for %ld s\n",
           syms, candles, rate, secs);
    printf("rss before load: %.1f MB\n", rss_mb());
    t0 = bench_now();
    for (minute = 0; minute < candles; minute++) {
        for (int s = 0; s < syms; s++) {
            struct ab_candle c;

            make(s, minute, true, &c);
            publish(cl, &c);
        }
    }
    if (ab_bus_client_wait_acked(cl, 600000) != 0) {
        bench_die("bench_feed: the query did not acknowledge the load");
    }
    warm = rss_mb();
    printf("load: %ld candles acknowledged in %.1f s; rss %.1f MB\n", syms * candles,
           bench_now() - t0, warm);
    fflush(stdout);
    {
        long per_tick = rate / 10 > 0 ? rate / 10 : 1; /* 10 ticks per second */
        long sym = 0, tick = 0;
        double next_sample = bench_now() + 1;

        t0 = bench_now();
        while (bench_now() - t0 < (double)secs) {
            for (long i = 0; i < per_tick; i += 2) {
                struct ab_candle c;

                make((int)sym, minute, false, &c);
                publish(cl, &c);
                make((int)sym, minute, true, &c);
                publish(cl, &c);
                if (++sym == syms) {
                    sym = 0;
                    minute++;
                }
            }
            tick++;
            {
                double wake = t0 + (double)tick / 10.0 - bench_now();

                if (wake > 0) {
                    usleep((useconds_t)(wake * 1e6));
                }
            }
            if (bench_now() >= next_sample) {
                samples[ns] = rss_mb();
                if (samples[ns] > rss_max) {
                    rss_max = samples[ns];
                }
                ns++;
                next_sample += 1;
            }
        }
    }
    ab_bus_client_wait_acked(cl, 60000);
    rss_end = rss_mb();
    {
        /* slope over the second half, MB per minute */
        size_t a = ns / 2;
        double sx = 0, sy = 0, sxx = 0, sxy = 0, m = (double)(ns - a), slope = 0;

        for (size_t i = a; i < ns; i++) {
            sx += (double)i;
            sy += samples[i];
            sxx += (double)i * (double)i;
            sxy += (double)i * samples[i];
        }
        if (m >= 2 && m * sxx - sx * sx != 0) {
            slope = (m * sxy - sx * sy) / (m * sxx - sx * sx) * 60.0;
        }
        printf("steady run: rss warm %.1f MB, max %.1f MB, end %.1f MB, slope over the second"
               " half %.2f MB/min (%zu samples)\n",
               warm, rss_max, rss_end, slope, ns);
        bench_result("id=mem_rss value=%.1f unit=MB warm=%.1f max=%.1f end=%.1f"
                     " slope_mb_per_min=%.2f",
                     rss_end, warm, rss_max, rss_end, slope);
    }
    ab_bus_client_free(cl);
    free(samples);
    return 0;
}

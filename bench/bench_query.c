/*
 * bench_query: the query service's REST and WebSocket servers in one process,
 * fed directly through live.h (no bus, no ingest), for the REST and fan-out
 * figures. It uses the same modules abidance-query runs (store.h, live.h,
 * http.h, ws.h) with the service's defaults.
 *
 *   bench_query http DATABASE_URL PORT live|db [CANDLES]
 *       CANDLES (default 2000) 1m candles of BTCUSDT are written to
 *       PostgreSQL (store_put_candle + store_flush) and, in `live` mode, to
 *       the in-memory state too; then the REST server listens on
 *       127.0.0.1:PORT (4 worker threads, the service default). In `db`
 *       mode the server has no live state, so every /v1/candles request
 *       reads PostgreSQL. Prints "ready" and serves until SIGINT/SIGTERM.
 *
 *   bench_query ws PORT SHM_FILE SUBSCRIBERS RATE SECONDS
 *       The fan-out server (ws.h defaults; the connection cap raised to fit
 *       and the per-address cap off: every subscriber is on 127.0.0.1)
 *       listening on 127.0.0.1:PORT. Once SUBSCRIBERS subscriptions exist (bench_wsclient
 *       makes them), a publisher thread applies RATE candle updates per
 *       second to candles:BTCUSDT:1m for SECONDS, each a new version of the
 *       open candle (num_trades = base + k), and writes each update's
 *       publish time (CLOCK_MONOTONIC ns) into SHM_FILE for the client's
 *       latency figures (layout: struct bench_shm, bench_shm.h). Prints
 *       the frames written per CPU-second of this process over the
 *       publishing window (plus the drain after it) as
 *       RESULT id=ws_fanout, then exits once the clients have gone (or
 *       after 30 s).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_shm.h"
#include "bench_util.h"
#include "book_source.h"
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "http.h"
#include "live.h"
#include "store.h"
#include "ws.h"

#define T_OPEN 1700000040000LL /* a minute boundary (2023-11-14) */

/* A plausible 1m candle of symbol at open_time; k varies the values. */
static void make_candle(const char *symbol, int64_t open_time, int64_t k, struct ab_candle *c)
{
    char txt[64];
    int64_t p = 3000000 + (k * 7919) % 20000; /* cents */

    memset(c, 0, sizeof *c);
    snprintf(c->symbol, sizeof c->symbol, "%s", symbol);
    c->interval = AB_I_1M;
    c->open_time = open_time;
    c->close_time = open_time + 59999;
    snprintf(txt, sizeof txt, "%lld.%02lld", (long long)(p / 100), (long long)(p % 100));
    ab_dec_parse_cstr(txt, &c->open);
    snprintf(txt, sizeof txt, "%lld.%02lld", (long long)((p + 1234) / 100),
             (long long)((p + 1234) % 100));
    ab_dec_parse_cstr(txt, &c->high);
    snprintf(txt, sizeof txt, "%lld.%02lld", (long long)((p - 987) / 100),
             (long long)((p - 987) % 100));
    ab_dec_parse_cstr(txt, &c->low);
    snprintf(txt, sizeof txt, "%lld.%02lld", (long long)((p + 321) / 100),
             (long long)((p + 321) % 100));
    ab_dec_parse_cstr(txt, &c->close);
    ab_dec_parse_cstr("123.45678901", &c->volume);
    ab_dec_parse_cstr("3712345.12345678", &c->quote_volume);
    ab_dec_parse_cstr("61.2345", &c->taker_buy_volume);
    ab_dec_parse_cstr("1841234.5678", &c->taker_buy_quote_volume);
    c->num_trades = 1000 + k;
    c->first_trade_id = 500000000 + k * 1000;
    c->last_trade_id = c->first_trade_id + c->num_trades - 1;
    c->closed = true;
    c->event_time = open_time + 60000;
}

static sigset_t stop_set;

static void block_stop_signals(void)
{
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
}

static int run_http(int argc, char **argv)
{
    const char *url = argv[2];
    uint16_t port = (uint16_t)bench_arg_long(argv[3], 1, 65535, "port");
    bool live_mode = strcmp(argv[4], "live") == 0;
    long n = argc > 5 ? bench_arg_long(argv[5], 1, 100000, "candles") : 2000;
    struct store_config scfg = {.database_url = url};
    struct store *st = NULL;
    struct live *lv = NULL;
    struct http_server *hs = NULL;
    struct ab_config_symbols syms = {.n = 1};
    struct ab_config_intervals ivs = {.v = {AB_I_1M}, .n = 1};
    struct store_stats ss;
    int64_t t0 = T_OPEN - (int64_t)n * 60000;
    int sig;

    if (!live_mode && strcmp(argv[4], "db") != 0) {
        bench_die("bench_query: mode must be live or db");
    }
    snprintf(syms.v[0], sizeof syms.v[0], "BTCUSDT");
    if (store_new(&scfg, &st) != 0 || store_start(st) != 0 ||
        (live_mode && live_new(NULL, &lv) != 0)) {
        bench_die("bench_query: cannot create the store or live state");
    }
    for (long i = 0; i < n; i++) {
        struct ab_candle c;

        make_candle("BTCUSDT", t0 + i * 60000, i, &c);
        while (store_put_candle(st, &c, STORE_ORIGIN_WS, (uint64_t)i + 1) == AB_ENOMEM) {
            usleep(1000);
        }
        if (lv != NULL && live_apply_candle(lv, &c, NULL) != 0) {
            bench_die("bench_query: live_apply_candle failed");
        }
    }
    if (store_flush(st, 120000) != 0) {
        store_get_stats(st, &ss);
        bench_die("bench_query: store flush failed: %s", ss.last_error);
    }
    {
        struct http_config hc = {
            .host = "127.0.0.1",
            .port = port,
            .threads = 4,
            .store = st,
            .books = book_source_store(st),
            .symbols = &syms,
            .intervals = &ivs,
            .stale_after_ms = 120000,
            .db_timeout_ms = 2000,
            .live = lv,
        };

        if (http_new(&hc, &hs) != 0 || http_start(hs) != 0) {
            bench_die("bench_query: cannot start the REST server on port %u", (unsigned)port);
        }
    }
    printf("ready: %ld candles, %s\n", n, live_mode ? "memory" : "PostgreSQL only");
    fflush(stdout);
    sigwait(&stop_set, &sig);
    http_free(hs);
    live_free(lv);
    store_free(st);
    return 0;
}

/* ---- ws ---- */

struct pub {
    struct live *lv;
    struct bench_shm *shm;
    long rate, total;
};

static void *publisher(void *arg)
{
    struct pub *p = arg;
    struct timespec next;
    struct ab_candle c;

    make_candle("BTCUSDT", T_OPEN, 0, &c);
    c.closed = false;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long k = 0; k < p->total; k++) {
        enum live_action act;

        c.num_trades = p->shm->base + k;
        c.last_trade_id = c.first_trade_id + c.num_trades - 1;
        c.event_time = T_OPEN + 1 + k / 10;
        p->shm->t_pub[k] = bench_now_ns();
        if (live_apply_candle(p->lv, &c, &act) != 0 || act != LIVE_APPLIED) {
            bench_die("bench_query: update %ld not applied", k);
        }
        atomic_store(&p->shm->published, k + 1);
        next.tv_nsec += 1000000000L / p->rate;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    return NULL;
}

static int run_ws(char **argv)
{
    uint16_t port = (uint16_t)bench_arg_long(argv[2], 1, 65535, "port");
    const char *shm_path = argv[3];
    long subs = bench_arg_long(argv[4], 1, 50000, "subscribers");
    long rate = bench_arg_long(argv[5], 1, 100000, "rate");
    long secs = bench_arg_long(argv[6], 1, 3600, "seconds");
    struct live *lv = NULL;
    struct ws_server *ws = NULL;
    struct ws_config wc;
    struct ws_stats s0, s1;
    struct pub p = {.rate = rate, .total = rate * secs};
    struct ab_candle c;
    pthread_t th;
    double cpu0, cpu1, t0, t1;
    uint64_t expect;

    p.shm = bench_shm_create(shm_path, p.total);
    p.shm->base = 1000000;
    if (live_new(NULL, &lv) != 0) {
        bench_die("bench_query: live_new");
    }
    /* A few closed candles before the open one, for the snapshots. */
    for (int i = 10; i > 0; i--) {
        make_candle("BTCUSDT", T_OPEN - i * 60000LL, i, &c);
        live_apply_candle(lv, &c, NULL);
    }
    ws_config_defaults(&wc);
    wc.addr.port = port;
    wc.max_connections = (size_t)subs + 16;
    wc.max_connections_per_ip = 0; /* every subscriber comes from 127.0.0.1 */
    if (ws_server_new(&wc, lv, &ws) != 0 || ws_server_start(ws) != 0) {
        bench_die("bench_query: cannot start the WebSocket server on port %u", (unsigned)port);
    }
    p.lv = lv;
    printf("ready: waiting for %ld subscribers\n", subs);
    fflush(stdout);
    t0 = bench_now();
    do {
        usleep(10000);
        ws_server_stats(ws, &s0);
        if (bench_now() - t0 > 120) {
            bench_die("bench_query: only %llu of %ld subscribers after 120 s",
                      (unsigned long long)s0.subscriptions, subs);
        }
    } while (s0.subscriptions < (uint64_t)subs);
    usleep(200000); /* let the snapshots go out */
    ws_server_stats(ws, &s0);
    cpu0 = bench_cpu();
    t0 = bench_now();
    atomic_store(&p.shm->total, p.total);
    if (pthread_create(&th, NULL, publisher, &p) != 0) {
        bench_die("bench_query: pthread_create");
    }
    pthread_join(th, NULL);
    /* Drain: every update to every subscriber. */
    expect = s0.messages_sent + (uint64_t)p.total * (uint64_t)subs;
    do {
        usleep(1000);
        ws_server_stats(ws, &s1);
    } while (s1.messages_sent < expect && bench_now() - t0 < (double)secs + 30);
    t1 = bench_now();
    cpu1 = bench_cpu();
    {
        double frames = (double)(s1.messages_sent - s0.messages_sent);
        double writes = (double)(s1.writes - s0.writes);
        double cpu = cpu1 - cpu0;

        printf("fan-out: %ld subscribers x %ld msg/s for %ld s: %.0f frames in %.2f s, server"
               " CPU %.2f s (%.0f%% of one core, %.2f us per frame); %.0f writes (%.2f frames"
               " per write); handoff_dropped=%llu closes_slow=%llu closes_overloaded=%llu\n",
               subs, rate, secs, frames, t1 - t0, cpu, 100 * cpu / (t1 - t0), 1e6 * cpu / frames,
               writes, writes > 0 ? frames / writes : 0.0, (unsigned long long)s1.handoff_dropped,
               (unsigned long long)s1.closes_slow, (unsigned long long)s1.closes_overloaded);
        bench_result("id=ws_fanout value=%.0f unit=frames/s/core frames=%.0f cpu_s=%.3f"
                     " wall_s=%.3f writes=%.0f",
                     frames / cpu, frames, cpu, t1 - t0, writes);
    }
    /* Wait for the clients to leave (they check delivery first). */
    t0 = bench_now();
    do {
        usleep(20000);
        ws_server_stats(ws, &s1);
    } while (s1.connections > 0 && bench_now() - t0 < 30);
    ws_server_free(ws);
    live_free(lv);
    bench_shm_close(p.shm);
    return 0;
}

int main(int argc, char **argv)
{
    block_stop_signals();
    ab_log_init(AB_LOG_TEXT, AB_LOG_WARN);
    if (argc >= 5 && strcmp(argv[1], "http") == 0) {
        return run_http(argc, argv);
    }
    if (argc >= 7 && strcmp(argv[1], "ws") == 0) {
        return run_ws(argv);
    }
    fprintf(stderr, "usage: bench_query http DATABASE_URL PORT live|db [CANDLES]\n"
                    "       bench_query ws PORT SHM_FILE SUBSCRIBERS RATE SECONDS\n");
    return 2;
}

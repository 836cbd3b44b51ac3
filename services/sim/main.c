/*
 * abidance-sim: a Binance-compatible exchange simulator.
 *
 * Parse the settings, build the source (the seeded market model, or a
 * recording to replay), start the server, print "listening on HOST:PORT" as
 * the first stdout line, serve until SIGINT/SIGTERM, stop the parts.
 * Exit codes: 0 ok, 1 runtime failure, 2 usage error.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/stopsig.h"
#include "services/sim/market.h"
#include "services/sim/opts.h"
#include "services/sim/replay.h"
#include "services/sim/server.h"
#include "services/sim/streams.h"

extern char **environ;

static struct server *g_server;

static void on_stop(void *server)
{
    server_stop(server);
}

static int64_t now_minute_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return ms - ms % 60000;
}

int main(int argc, char **argv)
{
    static struct sim_opts o;
    char why[AB_CONFIG_WHY_MAX];
    enum ab_config_action action;
    struct market *market = NULL;
    struct replay *replay = NULL;
    struct streams *streams = NULL;
    int rc = sim_opts_parse(&o, argc, argv, environ, &action, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "abidance-sim: %s (try --help)\n", why);
        return 2;
    }
    if (action == AB_CONFIG_HELP) {
        sim_opts_usage(stdout);
        return 0;
    }
    if (action == AB_CONFIG_VERSION) {
        printf("abidance-sim %s\n", ABIDANCE_VERSION);
        return 0;
    }
    enum ab_log_level level = AB_LOG_INFO;
    if (ab_log_level_parse(o.log_level, &level) != 0) {
        fprintf(stderr, "abidance-sim: --log-level: \"%s\": expected debug, info, warn or error\n",
                o.log_level);
        return 2;
    }
    ab_log_init(AB_LOG_TEXT, level);

    int64_t start = o.start_time >= 0 ? o.start_time : now_minute_ms();
    int exit_code = 1;
    /* SIGINT/SIGTERM wait (blocked, so a signal during start-up is kept)
     * for a thread of their own: server_stop wakes the lws loop, which may
     * log, and doing that in a handler could deadlock on the log lock. */
    struct ab_stopsig ss;
    bool ss_started = false;
    if (ab_stopsig_block(&ss) < 0)
        return 1;
    if (o.n_replay) {
        rc = streams_new(NULL, &streams);
        if (rc == 0)
            rc = replay_load(o.replay, o.n_replay, streams, &replay, why, sizeof(why));
        if (rc != 0) {
            ab_log(AB_LOG_ERROR, "sim", "cannot load the replay: %s", rc ? why : "");
            goto out;
        }
        ab_log(AB_LOG_INFO, "sim", "replay loaded files=%zu records=%zu symbols=%zu", o.n_replay,
               replay_count(replay), replay_n_symbols(replay));
    } else {
        struct market_cfg mc = {.seed = (uint64_t)o.seed,
                                .start_time = start,
                                .freeze_after = (uint64_t)o.events,
                                .n_symbols = o.symbols.n};
        for (size_t i = 0; i < o.symbols.n && i < MARKET_MAX_SYMBOLS; i++)
            mc.symbols[i] = o.symbols.v[i];
        rc = market_new(&mc, &market);
        if (rc == 0)
            rc = streams_new(market, &streams);
        if (rc != 0) {
            ab_log(AB_LOG_ERROR, "sim", "cannot build the market: %s", ab_err_str(rc));
            goto out;
        }
    }

    struct server_cfg sc = {
        .host = o.listen.host,
        .port = o.listen.port,
        .tls_cert = o.tls_cert,
        .tls_key = o.tls_key,
        .speed = o.speed,
        .start_time = market ? market_time(market) : 0,
        .ping_interval_ms = o.ping_interval_ms,
        .pong_timeout_ms = o.pong_timeout_ms,
        .max_streams = (size_t)o.max_streams,
        .queue_cap = (size_t)o.queue_cap,
        .replay_hold_ms = o.replay_hold_ms,
        .seed = (uint64_t)o.seed,
        .lws_debug = o.lws_debug,
        .market = market,
        .replay = replay,
        .streams = streams,
        .trace_file = o.trace_file,
    };
    sim_opts_faults(&o, &sc.faults);
    rc = server_new(&sc, &g_server);
    if (rc != 0) {
        ab_log(AB_LOG_ERROR, "sim", "cannot listen on %s:%u: %s", o.listen.host, o.listen.port,
               ab_err_str(rc));
        goto out;
    }
    /* Tests read the port from this line: it must come first and be flushed. */
    printf("listening on %s:%d\n", o.listen.host, server_port(g_server));
    fflush(stdout);
    ab_log(AB_LOG_INFO, "sim", "serving mode=%s port=%d speed=%g start_time=%lld tls=%s",
           market ? "model" : "replay", server_port(g_server), o.speed, (long long)sc.start_time,
           o.tls_cert ? "on" : "off");

    signal(SIGPIPE, SIG_IGN);
    if (ab_stopsig_start(&ss, on_stop, g_server) < 0) {
        ab_log(AB_LOG_ERROR, "sim", "cannot start the signal thread");
        goto out;
    }
    ss_started = true;
    rc = server_run(g_server);
    char summary[512];
    server_summary(g_server, summary, sizeof(summary));
    ab_log(AB_LOG_INFO, "sim", "stopped %s", summary);
    exit_code = rc == 0 ? 0 : 1;
out:
    if (ss_started)
        ab_stopsig_join(&ss);
    server_free(g_server);
    g_server = NULL;
    replay_free(replay);
    streams_free(streams);
    market_free(market);
    return exit_code;
}

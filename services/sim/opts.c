#include "services/sim/opts.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define OPT(field) offsetof(struct sim_opts, field)

static const struct ab_config_opt table[] = {
    {"listen", "ABIDANCE_SIM_LISTEN", "127.0.0.1:9443", "ADDR:PORT",
     "where to listen (HTTP and WebSocket on one port); port 0 picks a free port and the "
     "first stdout line says which",
     AB_CONFIG_ADDR, OPT(listen), 0, 0, NULL, false},
    {"symbols", "ABIDANCE_SIM_SYMBOLS", "BTCUSDT,ETHUSDT", "LIST", "symbols to simulate",
     AB_CONFIG_SYMBOLS, OPT(symbols), 0, 0, NULL, false},
    {"seed", "ABIDANCE_SIM_SEED", "1", "N", "seed of the market's random generator", AB_CONFIG_INT,
     OPT(seed), 0, INT64_MAX, NULL, false},
    {"speed", "ABIDANCE_SIM_SPEED", "1", "F",
     "sim clock rate: 60 closes a 1m candle every real second; with --replay, 0 replays as "
     "fast as clients read and F > 0 scales the recorded pace",
     AB_CONFIG_STRING, OPT(speed_text), 0, 32, NULL, false},
    {"start-time", "ABIDANCE_SIM_START_TIME", NULL, "MS",
     "sim time at start, epoch ms (default: now, rounded down to the minute)", AB_CONFIG_INT,
     OPT(start_time), 0, 4102444800000LL, NULL, false},
    {"events", "ABIDANCE_SIM_EVENTS", "0", "N",
     "freeze the market after N depth updates (100 ms steps) per symbol; 0 = never", AB_CONFIG_INT,
     OPT(events), 0, INT64_MAX, NULL, false},
    {"replay", "ABIDANCE_SIM_REPLAY", NULL, "FILE",
     "serve this recording instead of the model; repeat the flag for split files (the "
     "variable takes a comma-separated list)",
     AB_CONFIG_STRING, OPT(replay_env), 0, 4000, NULL, false},
    {"replay-hold", "ABIDANCE_SIM_REPLAY_HOLD", "2s", "DURATION",
     "replay: pause at a recorded snapshot until it was fetched, at most this long (0 = never)",
     AB_CONFIG_DURATION, OPT(replay_hold_ms), 0, 3600000, NULL, false},
    {"ping-interval", "ABIDANCE_SIM_PING_INTERVAL", "20s", "DURATION",
     "send a ping to every stream client this often (0 = never)", AB_CONFIG_DURATION,
     OPT(ping_interval_ms), 0, 86400000, NULL, false},
    {"pong-timeout", "ABIDANCE_SIM_PONG_TIMEOUT", "60s", "DURATION",
     "close a client that has not answered a ping within this time", AB_CONFIG_DURATION,
     OPT(pong_timeout_ms), 1, 86400000, NULL, false},
    {"max-streams", "ABIDANCE_SIM_MAX_STREAMS", "1024", "N", "streams allowed per connection",
     AB_CONFIG_INT, OPT(max_streams), 1, 1024, NULL, false},
    {"queue", "ABIDANCE_SIM_QUEUE", "4096", "N",
     "messages queued per client; a client that falls further behind is closed", AB_CONFIG_INT,
     OPT(queue_cap), 4, 1000000, NULL, false},
    {"tls-cert", "ABIDANCE_SIM_TLS_CERT", NULL, "FILE",
     "PEM certificate: serve https:// and wss:// (needs --tls-key)", AB_CONFIG_STRING,
     OPT(tls_cert), 0, 0, NULL, false},
    {"tls-key", "ABIDANCE_SIM_TLS_KEY", NULL, "FILE", "PEM private key for --tls-cert",
     AB_CONFIG_STRING, OPT(tls_key), 0, 0, NULL, false},
    {"fault-close-every", "ABIDANCE_SIM_FAULT_CLOSE_EVERY", "0", "SECS",
     "fault: close every WebSocket connection every SECS real seconds (0 = off)", AB_CONFIG_INT,
     OPT(fault_close_every_s), 0, 86400, NULL, false},
    {"fault-gap-every", "ABIDANCE_SIM_FAULT_GAP_EVERY", "0", "N",
     "fault: do not send every N-th event of each depth stream (an update id gap)", AB_CONFIG_INT,
     OPT(fault_gap_every), 0, INT64_MAX, NULL, false},
    {"fault-malformed-every", "ABIDANCE_SIM_FAULT_MALFORMED_EVERY", "0", "N",
     "fault: cut every N-th stream message to a client in half (invalid JSON)", AB_CONFIG_INT,
     OPT(fault_malformed_every), 0, INT64_MAX, NULL, false},
    {"fault-out-of-range-every", "ABIDANCE_SIM_FAULT_OUT_OF_RANGE_EVERY", "0", "N",
     "fault: every N-th event of each kline stream has high < low or a negative volume",
     AB_CONFIG_INT, OPT(fault_out_of_range_every), 0, INT64_MAX, NULL, false},
    {"fault-no-pong", "ABIDANCE_SIM_FAULT_NO_PONG", "false", NULL,
     "fault: send no pings and stop reading stream connections, so client pings go "
     "unanswered",
     AB_CONFIG_BOOL, OPT(fault_no_pong), 0, 0, NULL, false},
    {"fault-rest-429", "ABIDANCE_SIM_FAULT_REST_429", "0", "PCT",
     "fault: answer PCT% of REST requests with 429, Retry-After and -1003", AB_CONFIG_INT,
     OPT(fault_rest_429), 0, 100, NULL, false},
    {"fault-rest-418", "ABIDANCE_SIM_FAULT_REST_418", "0", "PCT",
     "fault: answer PCT% of REST requests with 418 (IP ban), Retry-After and -1003", AB_CONFIG_INT,
     OPT(fault_rest_418), 0, 100, NULL, false},
    {"fault-rest-delay-ms", "ABIDANCE_SIM_FAULT_REST_DELAY_MS", "0", "MS",
     "fault: hold every REST reply back this many milliseconds", AB_CONFIG_INT,
     OPT(fault_rest_delay_ms), 0, 600000, NULL, false},
    {"fault-retry-after", "ABIDANCE_SIM_FAULT_RETRY_AFTER", "1", "SECS",
     "Retry-After seconds sent with the injected 429 and 418", AB_CONFIG_INT,
     OPT(fault_retry_after_s), 0, 259200, NULL, false},
    {"log-level", "ABIDANCE_SIM_LOG_LEVEL", "info", "LEVEL", "debug, info, warn or error",
     AB_CONFIG_STRING, OPT(log_level), 0, 16, NULL, false},
    {"lws-debug", "ABIDANCE_SIM_LWS_DEBUG", "false", NULL, "pass libwebsockets' notices to the log",
     AB_CONFIG_BOOL, OPT(lws_debug), 0, 0, NULL, false},
    {"trace-file", "ABIDANCE_SIM_TRACE_FILE", NULL, "PATH",
     "benchmarks (model mode): write one line \"SYMBOL U NS\" per depth frame sent to a stream "
     "client "
     "(final update id U, CLOCK_MONOTONIC ns just before the write); buffered, flushed every "
     "second and at exit",
     AB_CONFIG_STRING, OPT(trace_file), 0, 4000, NULL, false},
};

static const struct ab_config_spec spec = {
    "abidance-sim",
    ABIDANCE_VERSION,
    "A Binance-compatible exchange simulator: Binance's WebSocket streams "
    "(/ws/<stream>, /stream?streams=...) and REST market data (/api/v3/ping, time, "
    "exchangeInfo, depth, klines) on one port, driven by a deterministic seeded market or by "
    "a recording, with optional fault injection. GET /sim/stats reports counters.",
    table,
    sizeof(table) / sizeof(table[0]),
};

void sim_opts_usage(FILE *out)
{
    ab_config_usage(&spec, out);
}

/* Splits the comma-separated variable into o->replay (copy in replay_buf). */
static int split_replay_env(struct sim_opts *o, char *why, size_t why_len)
{
    size_t len = strlen(o->replay_env);
    if (len >= sizeof(o->replay_buf)) {
        snprintf(why, why_len, "ABIDANCE_SIM_REPLAY: too long");
        return AB_ERANGE;
    }
    memcpy(o->replay_buf, o->replay_env, len + 1);
    char *p = o->replay_buf;
    while (*p) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p) {
            if (o->n_replay == REPLAY_FILES_MAX) {
                snprintf(why, why_len, "--replay: at most %d files", REPLAY_FILES_MAX);
                return AB_ERANGE;
            }
            o->replay[o->n_replay++] = p;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

int sim_opts_parse(struct sim_opts *o, int argc, char *const *argv, char *const *envp,
                   enum ab_config_action *action, char *why, size_t why_len)
{
    memset(o, 0, sizeof(*o));
    o->start_time = -1;
    if (argc < 1 || argc > 1024) {
        snprintf(why, why_len, "bad argument count");
        return AB_EINVAL;
    }
    /* Pull every --replay out of argv: the generic parser keeps only the last. */
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    if (!rest)
        return AB_ENOMEM;
    int n = 0, rc = 0;
    rest[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *path = NULL;
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                rest[n++] = argv[i++];
            break;
        }
        if (strcmp(a, "--replay") == 0) {
            if (i + 1 >= argc) {
                snprintf(why, why_len, "--replay: missing value");
                rc = AB_EINVAL;
                goto out;
            }
            path = argv[++i];
        } else if (strncmp(a, "--replay=", 9) == 0) {
            path = a + 9;
        } else {
            rest[n++] = argv[i];
            continue;
        }
        if (!*path || o->n_replay == REPLAY_FILES_MAX) {
            snprintf(why, why_len, "--replay: %s", *path ? "too many files" : "empty path");
            rc = AB_EINVAL;
            goto out;
        }
        o->replay[o->n_replay++] = path;
    }
    rc = ab_config_parse(&spec, n, rest, envp, o, action, why, why_len);
    if (rc != 0 || *action != AB_CONFIG_RUN)
        goto out;
    if (o->n_replay == 0 && o->replay_env && *o->replay_env) {
        rc = split_replay_env(o, why, why_len);
        if (rc != 0)
            goto out;
    }
    errno = 0;
    char *end = NULL;
    o->speed = strtod(o->speed_text, &end);
    if (errno || !end || *end || !isfinite(o->speed) || o->speed < 0 || o->speed > 1e6 ||
        (o->speed == 0 && o->n_replay == 0)) {
        snprintf(why, why_len,
                 "--speed (ABIDANCE_SIM_SPEED): \"%.32s\": expected a number > 0 (0 only with "
                 "--replay), at most 1000000",
                 o->speed_text);
        rc = AB_EINVAL;
        goto out;
    }
    if (!o->tls_cert != !o->tls_key) {
        snprintf(why, why_len, "--tls-cert and --tls-key go together");
        rc = AB_EINVAL;
        goto out;
    }
out:
    free(rest);
    return rc;
}

void sim_opts_faults(const struct sim_opts *o, struct faults_cfg *out)
{
    memset(out, 0, sizeof(*out));
    out->close_every_ms = o->fault_close_every_s * 1000;
    out->gap_every = (uint64_t)o->fault_gap_every;
    out->malformed_every = (uint64_t)o->fault_malformed_every;
    out->out_of_range_every = (uint64_t)o->fault_out_of_range_every;
    out->no_pong = o->fault_no_pong;
    out->rest_429_pct = (int)o->fault_rest_429;
    out->rest_418_pct = (int)o->fault_rest_418;
    out->rest_delay_ms = o->fault_rest_delay_ms;
    out->retry_after_s = (int)o->fault_retry_after_s;
}

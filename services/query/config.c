#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

#ifndef ABIDANCE_VERSION
#define ABIDANCE_VERSION "0.0.0"
#endif

#define F(field) offsetof(struct query_config, field)

static const struct ab_config_opt query_opts[] = {
    {.flag = "database-url",
     .env = "DATABASE_URL",
     .def = "",
     .metavar = "URL",
     .help = "PostgreSQL connection URI or conninfo (empty: libpq's PG* variables and local "
             "socket)",
     .type = AB_CONFIG_STRING,
     .offset = F(database_url),
     .secret = true},
    {.flag = "http",
     .env = "ABIDANCE_HTTP_ADDR",
     .def = "127.0.0.1:8080",
     .help = "REST listen address (port 0: any free port)",
     .type = AB_CONFIG_ADDR,
     .offset = F(http)},
    {.flag = "ws",
     .env = "ABIDANCE_WS_ADDR",
     .def = "127.0.0.1:8081",
     .help = "WebSocket stream listen address",
     .type = AB_CONFIG_ADDR,
     .offset = F(ws)},
    {.flag = "data-dir",
     .env = "ABIDANCE_DATA_DIR",
     .def = "./abidance-data",
     .metavar = "DIR",
     .help = "directory for local state such as the bus socket",
     .type = AB_CONFIG_STRING,
     .offset = F(data_dir),
     .max = QUERY_PATH_MAX - 16},
    {.flag = "bus",
     .env = "ABIDANCE_BUS",
     .def = "",
     .metavar = "PATH",
     .help = "Unix socket the ingest connects to (empty: <data-dir>/bus.sock; \"none\": no "
             "bus, serve stored data only)",
     .type = AB_CONFIG_STRING,
     .offset = F(bus),
     .max = QUERY_PATH_MAX - 1},
    {.flag = "symbols",
     .env = "ABIDANCE_SYMBOLS",
     .def = "BTCUSDT,ETHUSDT",
     .help = "tracked symbols (readiness and /v1/symbols)",
     .type = AB_CONFIG_SYMBOLS,
     .offset = F(symbols)},
    {.flag = "intervals",
     .env = "ABIDANCE_INTERVALS",
     .def = "1m",
     .help = "tracked candle intervals",
     .type = AB_CONFIG_INTERVALS,
     .offset = F(intervals)},
    AB_CONFIG_LOG_OPTIONS(F(log_format), F(log_level)),
    {.flag = "http-threads",
     .env = "ABIDANCE_HTTP_THREADS",
     .def = "4",
     .help = "REST worker threads",
     .type = AB_CONFIG_INT,
     .offset = F(http_threads),
     .min = 1,
     .max = 64},
    {.flag = "stale-after",
     .env = "ABIDANCE_STALE_AFTER",
     .def = "2m",
     .help = "/readyz fails when a tracked series' newest candle is this late",
     .type = AB_CONFIG_DURATION,
     .offset = F(stale_after_ms),
     .min = 1000,
     .max = 7 * 24 * 3600000LL},
    {.flag = "db-readers",
     .env = "ABIDANCE_DB_READERS",
     .def = "4",
     .help = "PostgreSQL connections for REST reads",
     .type = AB_CONFIG_INT,
     .offset = F(db_readers),
     .min = 1,
     .max = 64},
    {.flag = "db-timeout",
     .env = "ABIDANCE_DB_TIMEOUT",
     .def = "2s",
     .help = "database probe timeout for /readyz",
     .type = AB_CONFIG_DURATION,
     .offset = F(db_timeout_ms),
     .min = 100,
     .max = 60000},
    {.flag = "bus-window",
     .env = "ABIDANCE_BUS_WINDOW",
     .def = "262144",
     .help = "bus frames delivered but not yet durably handled before the query stops "
             "reading (rounded up to a power of 2)",
     .type = AB_CONFIG_INT,
     .offset = F(bus_window),
     .min = 64,
     .max = 16777216},
    {.flag = "book-persist-every",
     .env = "ABIDANCE_BOOK_PERSIST_EVERY",
     .def = "60s",
     .help = "store each live order book at most this often (and on every resync)",
     .type = AB_CONFIG_DURATION,
     .offset = F(book_persist_every_ms),
     .min = 1000,
     .max = 24 * 3600000LL},
    {.flag = "store-queue",
     .env = "ABIDANCE_STORE_QUEUE",
     .def = "100000",
     .help = "distinct candles waiting for PostgreSQL before the bus is slowed down",
     .type = AB_CONFIG_INT,
     .offset = F(store_queue),
     .min = 16,
     .max = 10000000},
    {.flag = "live-candles",
     .env = "ABIDANCE_LIVE_CANDLES",
     .def = "10000",
     .help = "recent candles kept in memory per series (answers /v1/candles without the "
             "database)",
     .type = AB_CONFIG_INT,
     .offset = F(live_candles),
     .min = 10,
     .max = 1000000},
    {.flag = "api-token",
     .env = "ABIDANCE_API_TOKEN",
     .def = "",
     .metavar = "TOKEN",
     .help = "require \"Authorization: Bearer TOKEN\" on REST (not /healthz, /readyz) and "
             "WebSocket; 16-256 of A-Za-z0-9._~- (empty: no authentication)",
     .type = AB_CONFIG_STRING,
     .offset = F(api_token),
     .max = AUTH_TOKEN_MAX,
     .secret = true},
    {.flag = "api-token-file",
     .env = "ABIDANCE_API_TOKEN_FILE",
     .def = "",
     .metavar = "PATH",
     .help = "read the API token from this file instead (first line; keeps it out of the "
             "environment and the process list)",
     .type = AB_CONFIG_STRING,
     .offset = F(api_token_file),
     .max = QUERY_PATH_MAX - 1},
    {.flag = "metrics-open",
     .env = "ABIDANCE_METRICS_OPEN",
     .def = "false",
     .help = "serve /metrics without the API token",
     .type = AB_CONFIG_BOOL,
     .offset = F(metrics_open)},
    {.flag = "http-max-connections",
     .env = "ABIDANCE_HTTP_MAX_CONNECTIONS",
     .def = "1024",
     .help = "REST connections in total (at least --http-threads; shared out among the "
             "threads); more wait in the listen backlog",
     .type = AB_CONFIG_INT,
     .offset = F(http_max_connections),
     .min = 1,
     .max = 100000},
    {.flag = "http-max-connections-per-ip",
     .env = "ABIDANCE_HTTP_MAX_CONNECTIONS_PER_IP",
     .def = "64",
     .help = "REST connections per client address; more are closed at once (0: no limit)",
     .type = AB_CONFIG_INT,
     .offset = F(http_max_conns_per_ip),
     .min = 0,
     .max = 100000},
    {.flag = "http-max-inflight-per-ip",
     .env = "ABIDANCE_HTTP_MAX_INFLIGHT_PER_IP",
     .def = "32",
     .help = "REST requests in progress per client address; more get 429 (0: no limit)",
     .type = AB_CONFIG_INT,
     .offset = F(http_max_inflight_per_ip),
     .min = 0,
     .max = 100000},
    {.flag = "http-timeout",
     .env = "ABIDANCE_HTTP_TIMEOUT",
     .def = "30s",
     .help = "close a REST connection idle (or stalled mid-request) this long",
     .type = AB_CONFIG_DURATION,
     .offset = F(http_timeout_ms),
     .min = 1000,
     .max = 3600000},
    {.flag = "ws-max-connections",
     .env = "ABIDANCE_WS_MAX_CONNECTIONS",
     .def = "1000",
     .help = "WebSocket connections in total; more are closed with 1013",
     .type = AB_CONFIG_INT,
     .offset = F(ws_max_connections),
     .min = 1,
     .max = 100000},
    {.flag = "ws-max-connections-per-ip",
     .env = "ABIDANCE_WS_MAX_CONNECTIONS_PER_IP",
     .def = "32",
     .help = "WebSocket connections per client address; more are refused with 429 (0: no "
             "limit)",
     .type = AB_CONFIG_INT,
     .offset = F(ws_max_conns_per_ip),
     .min = 0,
     .max = 100000},
    {.flag = "ws-max-channels",
     .env = "ABIDANCE_WS_MAX_CHANNELS",
     .def = "100",
     .help = "channels per WebSocket connection",
     .type = AB_CONFIG_INT,
     .offset = F(ws_max_channels),
     .min = 1,
     .max = 10000},
    {.flag = "ws-max-message",
     .env = "ABIDANCE_WS_MAX_MESSAGE",
     .def = "4096",
     .help = "bytes per WebSocket client message; larger ones get message_too_large",
     .type = AB_CONFIG_INT,
     .offset = F(ws_max_message),
     .min = 256,
     .max = 1048576},
    {.flag = "ws-rate",
     .env = "ABIDANCE_WS_RATE",
     .def = "20",
     .help = "WebSocket client requests per second per connection; more get rate_limited, "
             "a sustained flood is closed with 1008 (0: no limit)",
     .type = AB_CONFIG_INT,
     .offset = F(ws_rate),
     .min = 0,
     .max = 100000},
    {.flag = "ws-burst",
     .env = "ABIDANCE_WS_BURST",
     .def = "40",
     .help = "WebSocket client requests accepted at once before --ws-rate applies",
     .type = AB_CONFIG_INT,
     .offset = F(ws_burst),
     .min = 1,
     .max = 100000},
};

const struct ab_config_spec query_config_spec = {
    .prog = "abidance-query",
    .version = ABIDANCE_VERSION,
    .summary = "Stores market data from abidance-ingest in PostgreSQL and serves it over REST\n"
               "(GET /v1/candles, /v1/indicators/{name}, /v1/book, /v1/symbols, /healthz,\n"
               "/readyz, /metrics; see api/openapi.yaml) and WebSocket.",
    .opts = query_opts,
    .n_opts = sizeof(query_opts) / sizeof(query_opts[0]),
};

/* Reads the token file's first line into out->token. Never quotes the contents. */
static int read_token_file(struct query_config *out, char *why, size_t why_len)
{
    static const char who[] = "--api-token-file (ABIDANCE_API_TOKEN_FILE)";
    FILE *f = fopen(out->api_token_file, "r");
    if (!f) {
        snprintf(why, why_len, "%s: cannot open \"%.200s\": %s", who, out->api_token_file,
                 strerror(errno));
        return AB_EIO;
    }
    char buf[QUERY_TOKEN_FILE_MAX + 1];
    size_t n = fread(buf, 1, sizeof(buf), f);
    bool err = ferror(f) != 0;
    fclose(f);
    int rc = 0;
    if (err) {
        snprintf(why, why_len, "%s: cannot read \"%.200s\"", who, out->api_token_file);
        rc = AB_EIO;
        goto out;
    }
    if (n > QUERY_TOKEN_FILE_MAX) {
        snprintf(why, why_len, "%s: the file is longer than %d bytes", who, QUERY_TOKEN_FILE_MAX);
        rc = AB_ERANGE;
        goto out;
    }
    char *nl = memchr(buf, '\n', n);
    size_t len = nl ? (size_t)(nl - buf) : n;
    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    char what[160];
    if (auth_token_check(buf, len, what, sizeof(what)) < 0) {
        snprintf(why, why_len, "%s: %s", who, what);
        rc = AB_EINVAL;
        goto out;
    }
    memcpy(out->token, buf, len);
    out->token[len] = '\0';
out:
    memset(buf, 0, sizeof(buf)); /* no copy of the secret left on the stack */
    return rc;
}

/* Resolves out->token from --api-token or --api-token-file. */
static int resolve_token(struct query_config *out, char *why, size_t why_len)
{
    bool direct = out->api_token && *out->api_token;
    bool file = out->api_token_file && *out->api_token_file;
    out->token[0] = '\0';
    if (direct && file) {
        snprintf(why, why_len,
                 "--api-token (ABIDANCE_API_TOKEN) and --api-token-file "
                 "(ABIDANCE_API_TOKEN_FILE) are both set; use one");
        return AB_EINVAL;
    }
    if (file)
        return read_token_file(out, why, why_len);
    if (!direct)
        return 0;
    char what[160];
    size_t len = strlen(out->api_token);
    if (auth_token_check(out->api_token, len, what, sizeof(what)) < 0) {
        snprintf(why, why_len, "--api-token (ABIDANCE_API_TOKEN): %s", what);
        return AB_EINVAL;
    }
    memcpy(out->token, out->api_token, len + 1);
    return 0;
}

int query_config_parse(int argc, char *const *argv, char *const *envp, struct query_config *out,
                       enum ab_config_action *action, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    int rc = ab_config_parse(&query_config_spec, argc, argv, envp, out, action, why, why_len);
    if (rc < 0 || *action != AB_CONFIG_RUN)
        return rc;
    rc = resolve_token(out, why, why_len);
    if (rc < 0)
        return rc;
    if (out->http_max_connections < out->http_threads) {
        snprintf(why, why_len,
                 "--http-max-connections (ABIDANCE_HTTP_MAX_CONNECTIONS): %lld is below "
                 "--http-threads (%lld); each thread needs at least one connection",
                 (long long)out->http_max_connections, (long long)out->http_threads);
        return AB_ERANGE;
    }
    int n;
    if (out->bus && strcmp(out->bus, "none") == 0) {
        out->bus_path[0] = '\0';
        return 0;
    }
    if (out->bus && *out->bus)
        n = snprintf(out->bus_path, sizeof(out->bus_path), "%s", out->bus);
    else
        n = snprintf(out->bus_path, sizeof(out->bus_path), "%s/bus.sock", out->data_dir);
    if (n < 0 || (size_t)n >= sizeof(out->bus_path)) {
        snprintf(why, why_len, "--bus (ABIDANCE_BUS): path longer than %d bytes",
                 QUERY_PATH_MAX - 1);
        return AB_ERANGE;
    }
    /* A Unix socket path must fit sockaddr_un.sun_path (108 bytes on Linux). */
    if (strlen(out->bus_path) >= 108) {
        snprintf(why, why_len,
                 "--bus (ABIDANCE_BUS): socket path \"%.60s...\" is longer than 107 bytes",
                 out->bus_path);
        return AB_ERANGE;
    }
    return 0;
}

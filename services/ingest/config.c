#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#ifndef ABIDANCE_VERSION
#define ABIDANCE_VERSION "0.0.0"
#endif

static const char *const depth_speeds[] = {"100ms", "1000ms", NULL};

#define F(field) offsetof(struct ingest_config, field)
#define HOUR_MS  3600000LL

static const struct ab_config_opt ingest_opts[] = {
    {.flag = "symbols",
     .env = "ABIDANCE_SYMBOLS",
     .def = "BTCUSDT,ETHUSDT",
     .help = "symbols to follow (upper case, comma-separated)",
     .type = AB_CONFIG_SYMBOLS,
     .offset = F(symbols)},
    {.flag = "intervals",
     .env = "ABIDANCE_INTERVALS",
     .def = "1m",
     .help = "candle intervals to follow",
     .type = AB_CONFIG_INTERVALS,
     .offset = F(intervals)},
    {.flag = "depth-speed",
     .env = "ABIDANCE_DEPTH_SPEED",
     .def = "100ms",
     .help = "diff-depth stream speed",
     .type = AB_CONFIG_ENUM,
     .offset = F(depth_speed),
     .choices = depth_speeds},
    {.flag = "ws-url",
     .env = "ABIDANCE_WS_URL",
     .def = "wss://stream.binance.com:9443",
     .metavar = "URL",
     .help = "exchange WebSocket base URL (ws:// or wss://)",
     .type = AB_CONFIG_STRING,
     .offset = F(ws_url),
     .max = INGEST_URL_HOST_MAX},
    {.flag = "rest-url",
     .env = "ABIDANCE_REST_URL",
     .def = "https://api.binance.com",
     .metavar = "URL",
     .help = "exchange REST base URL (http:// or https://)",
     .type = AB_CONFIG_STRING,
     .offset = F(rest_url),
     .max = INGEST_URL_HOST_MAX},
    {.flag = "credentials",
     .env = "ABIDANCE_CREDENTIALS",
     .def = "",
     .metavar = "FILE",
     .help = "encrypted API credentials (abidance-cred); key from CREDENTIAL_KEY; optional",
     .type = AB_CONFIG_STRING,
     .offset = F(credentials),
     .max = 4096},
    {.flag = "bus",
     .env = "ABIDANCE_BUS",
     .def = "",
     .metavar = "PATH",
     .help = "bus socket of abidance-query (empty: <data-dir>/bus.sock, or no bus with --stdout; "
             "\"none\": no bus)",
     .type = AB_CONFIG_STRING,
     .offset = F(bus),
     .max = 107},
    {.flag = "data-dir",
     .env = "ABIDANCE_DATA_DIR",
     .def = "./abidance-data",
     .metavar = "DIR",
     .help = "directory of the default bus socket (the query's --data-dir)",
     .type = AB_CONFIG_STRING,
     .offset = F(data_dir),
     .max = 4096},
    {.flag = "bus-max-frames",
     .env = "ABIDANCE_BUS_MAX_FRAMES",
     .def = "200000",
     .help = "frames kept until the query acknowledges them (book frames: at most half)",
     .type = AB_CONFIG_INT,
     .offset = F(bus_max_frames),
     .min = 16,
     .max = 100000000},
    {.flag = "bus-max-bytes",
     .env = "ABIDANCE_BUS_MAX_BYTES",
     .def = "268435456",
     .help = "bytes kept until the query acknowledges them (half must hold a whole book)",
     .type = AB_CONFIG_INT,
     .offset = F(bus_max_bytes),
     .min = 1048576,
     .max = 68719476736LL},
    {.flag = "bus-retry-max",
     .env = "ABIDANCE_BUS_RETRY_MAX",
     .def = "65536",
     .help = "candles kept while the bus buffer is full (beyond: open updates are dropped, "
             "closed candles fetched again over REST)",
     .type = AB_CONFIG_INT,
     .offset = F(bus_retry_max),
     .min = 1,
     .max = 4194304},
    {.flag = "ca-file",
     .env = "ABIDANCE_CA_FILE",
     .def = "",
     .metavar = "FILE",
     .help = "PEM CA bundle to trust for wss/https (empty: system CAs)",
     .type = AB_CONFIG_STRING,
     .offset = F(ca_file),
     .max = 4096},
    {.flag = "stdout",
     .env = "ABIDANCE_STDOUT",
     .def = "false",
     .help = "publish normalized messages as JSON lines on stdout",
     .type = AB_CONFIG_BOOL,
     .offset = F(stdout_json)},
    {.flag = "record",
     .env = "ABIDANCE_RECORD",
     .def = "",
     .metavar = "FILE",
     .help = "append every raw exchange message to FILE (cryptofeed capture format)",
     .type = AB_CONFIG_STRING,
     .offset = F(record),
     .max = 4096},
    {.flag = "health",
     .env = "ABIDANCE_INGEST_HEALTH_ADDR",
     .def = "127.0.0.1:8082",
     .help = "listen address for /healthz and /metrics (port 0: any free port)",
     .type = AB_CONFIG_ADDR,
     .offset = F(health)},
    {.flag = "no-health",
     .env = "ABIDANCE_INGEST_NO_HEALTH",
     .def = "false",
     .help = "do not open the health port",
     .type = AB_CONFIG_BOOL,
     .offset = F(no_health)},
    AB_CONFIG_LOG_OPTIONS(F(log_format), F(log_level)),
    {.flag = "depth-limit",
     .env = "ABIDANCE_DEPTH_LIMIT",
     .def = "1000",
     .help = "levels per side in REST depth snapshots (1000 costs weight 50, 5000 costs 250)",
     .type = AB_CONFIG_INT,
     .offset = F(depth_limit),
     .min = 1,
     .max = 5000},
    {.flag = "backfill",
     .env = "ABIDANCE_BACKFILL",
     .def = "1h",
     .help = "on start, backfill closed candles this far back over REST",
     .type = AB_CONFIG_DURATION,
     .offset = F(backfill_ms),
     .min = 0,
     .max = 366 * 24 * HOUR_MS},
    {.flag = "max-age",
     .env = "ABIDANCE_WS_MAX_AGE",
     .def = "1410m",
     .help = "replace each WebSocket connection after this age (1410m = 23h30m; Binance cuts "
             "at 24h)",
     .type = AB_CONFIG_DURATION,
     .offset = F(max_age_ms),
     .min = 1000,
     .max = 24 * HOUR_MS},
    {.flag = "silence-timeout",
     .env = "ABIDANCE_WS_SILENCE_TIMEOUT",
     .def = "5m",
     .help = "reconnect a WebSocket that delivered no data for this long",
     .type = AB_CONFIG_DURATION,
     .offset = F(silence_ms),
     .min = 500,
     .max = 24 * HOUR_MS},
    {.flag = "close-grace",
     .env = "ABIDANCE_CLOSE_GRACE",
     .def = "5s",
     .help = "ask REST for a candle whose close event did not come by close time + this",
     .type = AB_CONFIG_DURATION,
     .offset = F(close_grace_ms),
     .min = 0,
     .max = HOUR_MS},
    {.flag = "streams-per-conn",
     .env = "ABIDANCE_WS_STREAMS_PER_CONN",
     .def = "1024",
     .help = "streams per WebSocket connection (Binance allows at most 1024)",
     .type = AB_CONFIG_INT,
     .offset = F(streams_per_conn),
     .min = 1,
     .max = 1024},
    {.flag = "url-streams-max",
     .env = "ABIDANCE_WS_URL_STREAMS_MAX",
     .def = "200",
     .help = "streams named in the connect URL (fewer if the URL would pass 2000 bytes); the rest "
             "are sent as SUBSCRIBE requests",
     .type = AB_CONFIG_INT,
     .offset = F(url_streams_max),
     .min = 1,
     .max = 1024},
    {.flag = "weight-limit",
     .env = "ABIDANCE_REST_WEIGHT_LIMIT",
     .def = "6000",
     .help = "REST request weight budget per minute (exchangeInfo REQUEST_WEIGHT)",
     .type = AB_CONFIG_INT,
     .offset = F(weight_limit),
     .min = 10,
     .max = 1000000},
    {.flag = "rest-parallel",
     .env = "ABIDANCE_REST_PARALLEL",
     .def = "4",
     .help = "REST requests in flight at once",
     .type = AB_CONFIG_INT,
     .offset = F(rest_parallel),
     .min = 1,
     .max = 32},
    {.flag = "switch-timeout",
     .env = "ABIDANCE_WS_SWITCH_TIMEOUT",
     .def = "10s",
     .help = "rollover: switch to the new connection after this overlap at the latest",
     .type = AB_CONFIG_DURATION,
     .offset = F(switch_timeout_ms),
     .min = 100,
     .max = HOUR_MS},
};

const struct ab_config_spec ingest_config_spec = {
    .prog = "abidance-ingest",
    .version = ABIDANCE_VERSION,
    .summary = "Follows Binance Spot market data (klines, diff depth) over WebSocket and REST,\n"
               "keeps every order book in sync, backfills missed candles, and publishes\n"
               "normalized candles, book snapshots, book deltas and symbol status.\n"
               "Serves /healthz and /metrics on the health port.",
    .opts = ingest_opts,
    .n_opts = sizeof(ingest_opts) / sizeof(ingest_opts[0]),
};

int ingest_url_parse(const char *text, struct ingest_url *out)
{
    memset(out, 0, sizeof(*out));
    if (!text)
        return AB_EINVAL;
    static const struct {
        const char *scheme;
        bool tls, ws;
        uint16_t port;
    } schemes[] = {
        {"ws://", false, true, 80},
        {"wss://", true, true, 443},
        {"http://", false, false, 80},
        {"https://", true, false, 443},
    };
    const char *p = NULL;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i].scheme);
        if (strncmp(text, schemes[i].scheme, n) == 0) {
            p = text + n;
            out->tls = schemes[i].tls;
            out->websocket = schemes[i].ws;
            out->port = schemes[i].port;
            break;
        }
    }
    if (!p)
        return AB_EINVAL;
    const char *host = p, *host_end;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return AB_EINVAL;
        p = host_end + 1;
    } else {
        host_end = p;
        while (*host_end && *host_end != ':' && *host_end != '/')
            host_end++;
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0)
        return AB_EINVAL;
    if (hlen >= sizeof(out->host))
        return AB_ERANGE;
    for (size_t i = 0; i < hlen; i++) {
        char c = host[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':' || c == '_';
        if (!ok)
            return AB_EINVAL;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (*p == ':') {
        p++;
        char *end = NULL;
        if (*p < '0' || *p > '9')
            return AB_EINVAL;
        long port = strtol(p, &end, 10);
        if (port < 1 || port > 65535)
            return AB_ERANGE;
        out->port = (uint16_t)port;
        p = end;
    }
    if (*p && *p != '/')
        return AB_EINVAL;
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(out->prefix))
        return AB_ERANGE;
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c >= 0x7f || c == '?' || c == '#')
            return AB_EINVAL;
    }
    memcpy(out->prefix, p, plen);
    out->prefix[plen] = '\0';
    return 0;
}

static int url_setting(const char *text, bool want_ws, const char *name, struct ingest_url *out,
                       char *why, size_t why_len)
{
    int rc = ingest_url_parse(text, out);
    if (rc == 0 && out->websocket != want_ws)
        rc = AB_EINVAL;
    if (rc < 0)
        snprintf(why, why_len, "%s: \"%.200s\": expected %s", name, text,
                 want_ws ? "ws://HOST[:PORT] or wss://HOST[:PORT]"
                         : "http://HOST[:PORT] or https://HOST[:PORT]");
    return rc;
}

int ingest_config_parse(int argc, char *const *argv, char *const *envp, struct ingest_config *out,
                        enum ab_config_action *action, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    int rc = ab_config_parse(&ingest_config_spec, argc, argv, envp, out, action, why, why_len);
    if (rc < 0 || *action != AB_CONFIG_RUN)
        return rc;
    rc = url_setting(out->ws_url, true, "--ws-url (ABIDANCE_WS_URL)", &out->ws, why, why_len);
    if (rc < 0)
        return rc;
    rc = url_setting(out->rest_url, false, "--rest-url (ABIDANCE_REST_URL)", &out->rest, why,
                     why_len);
    if (rc < 0)
        return rc;
    if (out->url_streams_max > out->streams_per_conn)
        out->url_streams_max = out->streams_per_conn;
    int n = 0;
    if (out->bus && strcmp(out->bus, "none") == 0)
        out->bus_path[0] = '\0';
    else if (out->bus && out->bus[0])
        n = snprintf(out->bus_path, sizeof(out->bus_path), "%s", out->bus);
    else if (!out->stdout_json)
        n = snprintf(out->bus_path, sizeof(out->bus_path), "%s/bus.sock", out->data_dir);
    if (n < 0 || (size_t)n >= sizeof(out->bus_path)) {
        snprintf(why, why_len, "--bus (ABIDANCE_BUS): socket path longer than %zu bytes",
                 sizeof(out->bus_path) - 1);
        return AB_ERANGE;
    }
    return 0;
}

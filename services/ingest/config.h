/*
 * config: abidance-ingest's settings (one table in config.c, parsed by
 * common/config) and the exchange URL parser.
 *
 * Every setting has a flag and an environment variable, the flag wins;
 * `abidance-ingest --help` lists them with their defaults. The names of the
 * design's Configuration table (ABIDANCE_SYMBOLS, ABIDANCE_WS_URL, ...) are
 * kept; the rest are ingest-only tuning knobs, most of them there so tests
 * can shrink hours into seconds (--max-age, --silence-timeout).
 *
 * Call ingest_config_parse once from main() before anything starts. The
 * URL parser is pure and thread-safe.
 */
#ifndef ABIDANCE_INGEST_CONFIG_H
#define ABIDANCE_INGEST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define INGEST_URL_HOST_MAX 256
#define INGEST_URL_PATH_MAX 256

enum ingest_depth_speed { INGEST_DEPTH_100MS = 0, INGEST_DEPTH_1000MS = 1 };
enum ingest_log_format { INGEST_LOG_TEXT = 0, INGEST_LOG_JSON = 1 };
enum ingest_log_level { INGEST_LOG_DEBUG, INGEST_LOG_INFO, INGEST_LOG_WARN, INGEST_LOG_ERROR };

/* A parsed ws://, wss://, http:// or https:// base URL. */
struct ingest_url {
    bool tls;                         /* wss or https */
    bool websocket;                   /* ws or wss */
    char host[INGEST_URL_HOST_MAX];   /* without brackets for IPv6 literals */
    uint16_t port;                    /* explicit, or 443/80 by scheme */
    char prefix[INGEST_URL_PATH_MAX]; /* path prefix without trailing '/', "" for none */
};

struct ingest_config {
    struct ab_config_symbols symbols;
    struct ab_config_intervals intervals;
    int depth_speed;              /* enum ingest_depth_speed */
    const char *ws_url;           /* borrowed (argv/env/table) */
    const char *rest_url;         /* borrowed */
    const char *credentials;      /* encrypted credentials file, "" = none */
    const char *bus;              /* bus socket as given: "" = default, "none" = off */
    const char *data_dir;         /* directory of the default bus socket */
    int64_t bus_max_frames;       /* bus client buffer cap, frames */
    int64_t bus_max_bytes;        /* bus client buffer cap, bytes */
    int64_t bus_retry_max;        /* candles kept when the bus buffer is full */
    const char *ca_file;          /* extra CA bundle for TLS, "" = system CAs only */
    bool stdout_json;             /* publish JSON lines on stdout */
    const char *record;           /* raw capture file, "" = off */
    struct ab_config_addr health; /* /healthz and /metrics; port 0 = any */
    bool no_health;               /* do not open the health port */
    int log_format;               /* enum ingest_log_format */
    int log_level;                /* enum ingest_log_level */
    int64_t depth_limit;          /* REST snapshot limit (1..5000) */
    int64_t backfill_ms;          /* first start: backfill this far back */
    int64_t max_age_ms;           /* replace a WS connection after this age */
    int64_t silence_ms;           /* no data for this long: the connection is dead */
    int64_t close_grace_ms;       /* a candle not closed by close_time + grace is asked from REST */
    int64_t streams_per_conn;     /* streams per WS connection (Binance: at most 1024) */
    int64_t url_streams_max;      /* streams put in the URL; the rest are SUBSCRIBEd */
    int64_t weight_limit;         /* REST weight budget per minute */
    int64_t rest_parallel;        /* REST requests in flight at once */
    int64_t switch_timeout_ms;    /* rollover: longest overlap before switching anyway */

    /* Derived by ingest_config_parse. */
    struct ingest_url ws;
    struct ingest_url rest;
    /* The bus socket used: --bus, else <data-dir>/bus.sock unless --stdout
     * is on (debugging without a query); "" = no bus. */
    char bus_path[108];
};

/* The table, exposed for tests and --help. */
extern const struct ab_config_spec ingest_config_spec;

/*
 * Parses argv/envp into *out (zeroed first) and the two URLs. Returns 0 with
 * *action set, or a negative ab_err code with a message in why naming the
 * setting. Strings in *out are borrowed from argv/envp/the table.
 */
int ingest_config_parse(int argc, char *const *argv, char *const *envp, struct ingest_config *out,
                        enum ab_config_action *action, char *why, size_t why_len);

/*
 * Parses a base URL: scheme (ws, wss, http, https; lower case), host (name,
 * IPv4 or [IPv6]), optional :port (1..65535), optional path prefix (no query,
 * no fragment, no spaces). Returns 0 or AB_EINVAL / AB_ERANGE.
 */
int ingest_url_parse(const char *text, struct ingest_url *out);

#endif

/*
 * config: abidance-query's settings (one table in config.c, parsed by
 * common/config).
 *
 * Every setting has a flag and an environment variable, the flag wins;
 * `abidance-query --help` lists them with their defaults. Call once from
 * main() before any thread starts.
 */
#ifndef ABIDANCE_QUERY_CONFIG_H
#define ABIDANCE_QUERY_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "common/config.h"

#define QUERY_PATH_MAX       1024
#define QUERY_TOKEN_FILE_MAX 4096 /* bytes read from --api-token-file */

enum query_log_format { QUERY_LOG_TEXT, QUERY_LOG_JSON };
enum query_log_level { QUERY_LOG_DEBUG, QUERY_LOG_INFO, QUERY_LOG_WARN, QUERY_LOG_ERROR };

struct query_config {
    const char *database_url;         /* libpq conninfo/URI; "" = libpq's PG* defaults. Secret. */
    struct ab_config_addr http;       /* REST listen address; port 0 = any free port */
    struct ab_config_addr ws;         /* WebSocket listen address (used by the stream server) */
    const char *data_dir;             /* where local state (the bus socket) lives */
    const char *bus;                  /* bus socket path as given; "" = <data_dir>/bus.sock;
                                         "none" = no bus (serve stored data only) */
    char bus_path[QUERY_PATH_MAX];    /* resolved bus socket path; "" when the bus is off */
    struct ab_config_symbols symbols; /* tracked symbols (readiness, /v1/symbols) */
    struct ab_config_intervals intervals; /* tracked intervals */
    int log_format;                       /* enum query_log_format */
    int log_level;                        /* enum query_log_level */
    int64_t http_threads;                 /* REST worker threads */
    int64_t stale_after_ms;        /* /readyz: newest candle may lag its due time by this much */
    int64_t db_readers;            /* reader connections to PostgreSQL */
    int64_t db_timeout_ms;         /* /readyz database ping timeout */
    int64_t bus_window;            /* bus frames delivered and not yet durably handled */
    int64_t book_persist_every_ms; /* periodic book snapshot persistence per symbol */
    int64_t store_queue;           /* pending candle rows the writer holds */
    int64_t live_candles;          /* recent candles kept in memory per series */

    /* Client limits (api/openapi.yaml, api/websocket.md). 0 = off where noted. */
    const char *api_token;            /* --api-token as given; "" = none. Secret. */
    const char *api_token_file;       /* --api-token-file as given; "" = none */
    char token[AUTH_TOKEN_MAX + 1];   /* the resolved token; "" = no authentication. Secret. */
    bool metrics_open;                /* /metrics without the token */
    int64_t http_max_connections;     /* REST connections in total */
    int64_t http_max_conns_per_ip;    /* REST connections per client address (0 = off) */
    int64_t http_max_inflight_per_ip; /* REST requests in progress per address (0 = off) */
    int64_t http_timeout_ms;          /* idle REST connection timeout */
    int64_t ws_max_connections;       /* WebSocket connections in total */
    int64_t ws_max_conns_per_ip;      /* WebSocket connections per address (0 = off) */
    int64_t ws_max_channels;          /* channels per WebSocket connection */
    int64_t ws_max_message;           /* bytes per client message */
    int64_t ws_rate;                  /* client requests per second per connection (0 = off) */
    int64_t ws_burst;                 /* ... in a burst */
};

/* The table, exposed for tests and for printing. */
extern const struct ab_config_spec query_config_spec;

/*
 * Parses argv/envp into *out (zeroed first), resolves bus_path and the API
 * token (from --api-token, or read from --api-token-file: its first line,
 * trailing white space dropped; setting both is an error; the token must
 * pass auth_token_check) and checks settings against each other
 * (http_max_connections >= http_threads). Returns 0 with *action set, or a
 * negative code with a message in why naming the setting (never quoting the
 * token). Strings in *out are borrowed from argv/envp/the table.
 */
int query_config_parse(int argc, char *const *argv, char *const *envp, struct query_config *out,
                       enum ab_config_action *action, char *why, size_t why_len);

#endif

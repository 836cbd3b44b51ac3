/*
 * http: abidance-query's REST server (libmicrohttpd).
 *
 * One const route table (http.c) maps GET paths to handlers (api_*.c); the
 * dispatcher here checks, in order: the length of the request target (414
 * above HTTP_URI_MAX), the header block (431 above HTTP_HEADERS_MAX fields
 * or HTTP_HEADER_BYTES_MAX bytes), the client address's requests in progress
 * (429 above max_inflight_per_ip, with Retry-After), the API token when one
 * is set (401 with WWW-Authenticate: Bearer; /healthz and /readyz are always
 * open, /metrics when metrics_open), the path (404), the method (405 with
 * Allow), the query parameters each route accepts (400 on unknown or
 * repeated ones), then calls the handler. All bodies and errors are built by
 * reply.c. api/openapi.yaml documents every route and limit; tests compare
 * it with http_route_path().
 *
 * Connection limits are libmicrohttpd's: max_connections in total (shared
 * out among the threads; when a thread is full it stops accepting and new
 * connections wait in the listen backlog), max_conns_per_ip per client
 * address (more are closed at once), an idle/stalled connection timeout,
 * and HTTP_CONN_MEMORY per connection (targets or header blocks beyond it
 * get libmicrohttpd's own plain-text 414/431).
 *
 * The token is compared in constant time (auth.h) and never logged.
 *
 * Threads: libmicrohttpd runs `threads` worker threads with epoll, each
 * serving its connections to completion (handlers block on PostgreSQL reads,
 * so threads should match the store's reader pool). http_new/start/stop/free
 * are called from one controlling thread (main).
 */
#ifndef ABIDANCE_QUERY_HTTP_H
#define ABIDANCE_QUERY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "book_source.h"
#include "common/config.h"
#include "feed.h"
#include "live.h"
#include "store.h"
#include "ws.h"

/* Longest request target (path + query) answered normally; longer is a 414.
 * Targets beyond libmicrohttpd's read buffer (HTTP_CONN_MEMORY / 2) are
 * refused by libmicrohttpd itself with a 414 and a plain-text body. */
#define HTTP_URI_MAX          4096
#define HTTP_CONN_MEMORY      (64 * 1024)
#define HTTP_MAX_CONNS        1024        /* default of max_connections */
#define HTTP_HEADERS_MAX      64          /* header fields per request; more: 431 */
#define HTTP_HEADER_BYTES_MAX (16 * 1024) /* names + values of all header fields; more: 431 */
#define HTTP_TIMEOUT_DEFAULT  30          /* seconds */
#define HTTP_RETRY_AFTER      1           /* seconds, in 429 responses */

struct http_config {
    const char *host;                            /* listen host (numeric or resolvable), borrowed */
    uint16_t port;                               /* 0: any free port, see http_port */
    unsigned threads;                            /* worker threads, 1..64 */
    struct store *store;                         /* borrowed; outlives the server */
    struct book_source books;                    /* borrowed */
    const struct ab_config_symbols *symbols;     /* tracked symbols, borrowed */
    const struct ab_config_intervals *intervals; /* tracked intervals, borrowed */
    int64_t stale_after_ms; /* /readyz: allowed lateness of a series' newest candle */
    int db_timeout_ms;      /* /readyz: database probe timeout */
    /* Optional parts, each borrowed and outliving the server (NULL: absent). */
    struct live *live;    /* /v1/candles answers from memory when it covers the window */
    struct feed *feed;    /* bus state in /v1/symbols and /readyz, bus metrics */
    struct ws_server *ws; /* WebSocket metrics */
    /* Client limits. */
    const char *token;            /* API token (copied); NULL or "": no authentication */
    bool metrics_open;            /* /metrics without the token */
    unsigned max_connections;     /* in total, >= threads; 0: HTTP_MAX_CONNS */
    unsigned max_conns_per_ip;    /* per client address; 0: no limit */
    unsigned max_inflight_per_ip; /* requests in progress per client address; 0: no limit */
    unsigned timeout_secs;        /* idle connection timeout; 0: HTTP_TIMEOUT_DEFAULT */
};

struct http_server;

/* Copies cfg (its pointers stay borrowed, the token is copied). Returns 0,
 * AB_EINVAL (also: a token auth_token_check refuses, max_connections below
 * threads) or AB_ENOMEM. */
int http_new(const struct http_config *cfg, struct http_server **out);

/* Binds and starts serving. Returns 0, AB_EINVAL (bad host) or AB_EIO
 * (cannot bind: address in use, permission). */
int http_start(struct http_server *s);

/* The port actually bound (useful with port 0), 0 before http_start. */
uint16_t http_port(const struct http_server *s);

/* Stops accepting, finishes or closes connections, joins the threads. */
void http_stop(struct http_server *s);

void http_free(struct http_server *s); /* stops first; accepts NULL */

/* The route table, for documentation checks: OpenAPI-style paths
 * ("/v1/indicators/{name}"), all answering GET and HEAD. */
size_t http_route_count(void);
const char *http_route_path(size_t i); /* NULL when i is out of range */

#endif

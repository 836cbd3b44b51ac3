/*
 * api: the REST endpoint handlers (api_candles.c, api_indicators.c,
 * api_book.c, api_status.c), called by the dispatcher in http.c.
 *
 * A handler receives the server's shared context, the connection, the path
 * suffix after its route's prefix ("" for exact routes) and the collected
 * query parameters (already checked against the route's list when the route
 * has one). It queues exactly one response through reply.c and returns what
 * that returned. Handlers run on REST worker threads, concurrently: the
 * context is read-only.
 */
#ifndef ABIDANCE_QUERY_API_H
#define ABIDANCE_QUERY_API_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "book_source.h"
#include "common/config.h"
#include "feed.h"
#include "live.h"
#include "metrics.h"
#include "params.h"
#include "store.h"

struct ws_server;

#define API_LIMIT_DEFAULT 500
#define API_LIMIT_MAX     5000
#define API_PERIOD_MAX    1000  /* indicator periods: 1..API_PERIOD_MAX */
#define API_WARMUP_MAX    25000 /* candles loaded before the window for indicators */
#define API_DEPTH_DEFAULT 100
#define API_DEPTH_MAX     5000

struct api_ctx {
    struct store *store;
    struct book_source books;
    const struct ab_config_symbols *symbols;
    const struct ab_config_intervals *intervals;
    int64_t stale_after_ms;
    int db_timeout_ms;
    struct metrics *metrics;
    struct live *live;    /* may be NULL: candles from storage only */
    struct feed *feed;    /* may be NULL: no bus */
    struct ws_server *ws; /* may be NULL: no stream server */
};

typedef enum MHD_Result (*api_handler_cb)(const struct api_ctx *ctx, struct MHD_Connection *conn,
                                          const char *rest, const struct params *p);

enum MHD_Result api_candles(const struct api_ctx *ctx, struct MHD_Connection *conn,
                            const char *rest, const struct params *p);
enum MHD_Result api_indicators(const struct api_ctx *ctx, struct MHD_Connection *conn,
                               const char *rest, const struct params *p);
enum MHD_Result api_book(const struct api_ctx *ctx, struct MHD_Connection *conn, const char *rest,
                         const struct params *p);
enum MHD_Result api_symbols(const struct api_ctx *ctx, struct MHD_Connection *conn,
                            const char *rest, const struct params *p);
enum MHD_Result api_healthz(const struct api_ctx *ctx, struct MHD_Connection *conn,
                            const char *rest, const struct params *p);
enum MHD_Result api_readyz(const struct api_ctx *ctx, struct MHD_Connection *conn, const char *rest,
                           const struct params *p);
enum MHD_Result api_metrics(const struct api_ctx *ctx, struct MHD_Connection *conn,
                            const char *rest, const struct params *p);

/* ---- shared by the candle and indicator handlers (api_candles.c) ---- */

/* The window common to /v1/candles and /v1/indicators. */
struct api_window {
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval interval;
    int64_t start, end; /* inclusive open times, valid when has_start / has_end */
    bool has_start, has_end;
    int64_t limit;
};

/* Parses symbol, interval, start, end and limit. Returns 0 or -1 with *e. */
int api_window_parse(const struct params *p, struct api_window *w, struct api_error *e);

/*
 * Reads the window: with start, the first `limit` candles from start (up to
 * end); without, the newest `limit` up to end (or now). Ascending. *out is
 * malloc'd (free()). With live state: from memory alone when it covers the
 * window (live_candles_read), else from storage merged with the newest (up
 * to 1000) candles in memory, which may not be committed yet; memory wins
 * for an open time both have. Returns a store code (0, AB_EDB_RETRY,
 * AB_EDB, ...).
 */
int api_window_read(const struct api_ctx *ctx, const struct api_window *w, struct ab_candle **out,
                    size_t *n);

/* Replies to a failed store call: 503 db_unavailable for AB_EDB_RETRY,
 * 500 internal otherwise (logged). */
enum MHD_Result api_reply_store_error(struct MHD_Connection *conn, int rc, const char *what);

#endif

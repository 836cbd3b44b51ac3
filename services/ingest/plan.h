/*
 * plan: which streams the ingest subscribes to and how they are split over
 * WebSocket connections. Pure.
 *
 * Per symbol, in this order: <sym>@kline_<iv> for every interval, then the
 * diff-depth stream <sym>@depth@100ms (or <sym>@depth for 1000 ms); <sym> is
 * the lower-case symbol. All streams of a symbol share one connection, so a
 * connection problem touches only its own symbols. Symbols are packed in
 * order into connections of at most per_conn streams (Binance: 1024); a
 * limit below one symbol's stream count is raised to it.
 *
 * A connection subscribes to its first url_max streams in the connect URL
 * (<prefix>/stream?streams=a/b/c), as many of them as fit in
 * PLAN_URL_PATH_MAX bytes, and to the rest with SUBSCRIBE requests of at
 * most PLAN_SUBSCRIBE_MAX streams each (sent under the control-message rate
 * limit).
 *
 * Why the byte cap: libwebsockets 4.1's client formats the request line
 * "GET <path> HTTP/1.1\r\n" into a fixed 2048-byte buffer and silently cuts
 * a longer one (a NUL in the middle, no "HTTP/1.1"); the server then drops
 * the connection ("read failed") and the ingest reconnects forever. That is
 * what broke the first 64-symbol run: 64 x (kline_1m + depth@100ms) = 128
 * names made a 2.7 kB path.
 */
#ifndef ABIDANCE_INGEST_PLAN_H
#define ABIDANCE_INGEST_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define PLAN_STREAM_NAME_MAX 64
#define PLAN_CONNS_MAX       64
#define PLAN_SUBSCRIBE_MAX   200 /* streams per SUBSCRIBE request */
#define PLAN_PATH_MAX        16384
#define PLAN_URL_PATH_MAX    2000 /* bytes of a connect path (request line: 2048 - 15) */

struct plan_conn {
    size_t first_symbol, n_symbols; /* symbols (indices into the config list) */
    size_t first_stream, n_streams; /* streams (indices into plan.streams) */
};

struct plan {
    char (*streams)[PLAN_STREAM_NAME_MAX]; /* owned */
    size_t *stream_symbol;                 /* owned: symbol index of each stream */
    size_t n_streams;
    size_t streams_per_symbol;
    struct plan_conn conns[PLAN_CONNS_MAX];
    size_t n_conns;
};

/*
 * Builds the plan. depth_1000ms picks <sym>@depth over <sym>@depth@100ms.
 * Returns 0 (release with plan_deinit), AB_EINVAL (no symbols/intervals),
 * AB_ERANGE (more than PLAN_CONNS_MAX connections needed) or AB_ENOMEM.
 */
int plan_build(const struct ab_config_symbols *symbols, const struct ab_config_intervals *ivs,
               bool depth_1000ms, size_t per_conn, struct plan *out);

/* Frees what the plan owns and zeroes it. Accepts a zeroed plan. */
void plan_deinit(struct plan *p);

/*
 * Writes the connect path of connection conn: prefix + "/stream?streams=" +
 * its first min(url_max, n_streams) streams joined by '/', fewer when the
 * path would pass min(cap - 1, PLAN_URL_PATH_MAX) bytes (always at least
 * one). *n_in_url gets how many were put in. Returns 0, AB_EINVAL or
 * AB_ERANGE (not even one stream fits).
 */
int plan_url_path(const struct plan *p, size_t conn, const char *prefix, size_t url_max, char *buf,
                  size_t cap, size_t *n_in_url);

/*
 * Writes {"method":"SUBSCRIBE","params":[...],"id":id} for streams
 * [from, from + count) of connection conn, count at most PLAN_SUBSCRIBE_MAX
 * and cut at the end of the connection's streams. *taken gets the number
 * included. Returns the length written, or a negative ab_err code.
 */
int plan_subscribe_msg(const struct plan *p, size_t conn, size_t from, size_t count, int64_t id,
                       char *buf, size_t cap, size_t *taken);

#endif

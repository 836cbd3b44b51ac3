/*
 * publish: where the ingest's normalized messages go.
 *
 * The ingest produces four kinds of message, the ones the bus carries
 * (api/bus.md):
 *
 *   candle         every kline update, open and closed, with its origin
 *                  (ws, or rest for backfilled / closed-from-REST candles),
 *                  the exchange event time and the ingest receive time;
 *   book snapshot  a full book at last_update_id (after every (re)sync);
 *   book delta     one applied diff event: symbol, first/last update id
 *                  (U/u) and the levels as the exchange sent them;
 *   symbol status  book state (syncing, live, resyncing) and connection
 *                  state (connecting, connected, disconnected).
 *
 * A publisher is a fan-out over up to PUB_SINKS_MAX sinks. A sink is a
 * struct pub_sink_ops table plus an opaque context; the stdout sink
 * (pub_stdout_new) writes JSON lines, the bus sink (bus_sink.h) sends
 * frames to abidance-query.
 * A sink call returns 0 or a negative ab_err code; the publisher counts
 * failures and carries on with the other sinks.
 *
 * JSON lines (one object per line; decimals as exact canonical strings):
 *   {"type":"candle","symbol":"BTCUSDT","interval":"1m","open_time":..,
 *    "close_time":..,"open":"..","high":"..","low":"..","close":"..",
 *    "volume":"..","quote_volume":"..","taker_buy_volume":"..",
 *    "taker_buy_quote_volume":"..","num_trades":..,"first_trade_id":..,
 *    "last_trade_id":..,"closed":true,"origin":"ws","event_time":..,
 *    "recv_time":..}
 *   {"type":"book_snapshot","symbol":..,"last_update_id":..,
 *    "bids":[["p","q"],..],"asks":[..],"recv_time":..}
 *   {"type":"book_delta","symbol":..,"first_update_id":U,"last_update_id":u,
 *    "event_time":..,"bids":[..],"asks":[..],"recv_time":..}
 *   {"type":"status","symbol":..,"book":"live","connection":"connected",
 *    "last_update_id":..,"time":..}
 * Times are epoch ms; recv_time is the ingest's wall clock when the data
 * arrived.
 *
 * Threads: the publisher and its sinks are used by the ingest loop thread
 * only.
 */
#ifndef ABIDANCE_INGEST_PUBLISH_H
#define ABIDANCE_INGEST_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/model.h"

#define PUB_SINKS_MAX 4
/* Hard cap on one encoded JSON line (a 5000-level snapshot is about 500 KB). */
#define PUB_LINE_MAX (8u * 1024 * 1024)

enum pub_origin { PUB_ORIGIN_WS = 0, PUB_ORIGIN_REST = 1 };
enum pub_book_state { PUB_BOOK_SYNCING = 0, PUB_BOOK_LIVE, PUB_BOOK_RESYNCING };
enum pub_conn_state { PUB_CONN_CONNECTING = 0, PUB_CONN_CONNECTED, PUB_CONN_DISCONNECTED };

struct pub_status {
    const char *symbol; /* borrowed */
    enum pub_book_state book;
    enum pub_conn_state conn;
    uint64_t last_update_id; /* book id when live, else 0 */
    int64_t time_ms;         /* wall clock of the change */
};

/*
 * recv_us: the ingest's wall clock when the data arrived, epoch
 * MICROseconds (the bus carries it at that precision; the JSON lines round
 * it down to ms). prev_id: the book's last update id before the delta was
 * applied (0 unknown).
 */
typedef int (*pub_candle_fn)(void *ctx, const struct ab_candle *c, enum pub_origin origin,
                             int64_t recv_us);
typedef int (*pub_snapshot_fn)(void *ctx, const struct ab_book_snapshot *s, int64_t recv_us);
typedef int (*pub_delta_fn)(void *ctx, const struct ab_book_delta *d, uint64_t prev_id,
                            int64_t recv_us);
typedef int (*pub_status_fn)(void *ctx, const struct pub_status *st);
typedef void (*pub_flush_fn)(void *ctx);
typedef void (*pub_free_fn)(void *ctx);

/* A sink. Every pointer is required except flush and free. */
struct pub_sink_ops {
    const char *name; /* "stdout", "bus": for logs and metrics */
    pub_candle_fn candle;
    pub_snapshot_fn snapshot;
    pub_delta_fn delta;
    pub_status_fn status;
    pub_flush_fn flush; /* end of a loop turn: push buffered output */
    pub_free_fn free;   /* releases ctx */
};

struct publisher {
    struct {
        const struct pub_sink_ops *ops; /* borrowed (static tables) */
        void *ctx;                      /* owned: released with ops->free */
    } sinks[PUB_SINKS_MAX];
    size_t n_sinks;
    uint64_t failures; /* sink calls that returned an error */
    uint64_t sent[4];  /* candle, snapshot, delta, status */
};

/* Zeroes *p. */
void publisher_init(struct publisher *p);

/* Adds a sink; takes ctx (freed by publisher_deinit). Returns 0 or AB_ENOMEM (full). */
int publisher_add(struct publisher *p, const struct pub_sink_ops *ops, void *ctx);

/* Frees every sink. Accepts a zeroed publisher. */
void publisher_deinit(struct publisher *p);

/* Fan-out calls; each returns 0 or the first sink error. */
int publisher_candle(struct publisher *p, const struct ab_candle *c, enum pub_origin origin,
                     int64_t recv_us);
int publisher_snapshot(struct publisher *p, const struct ab_book_snapshot *s, int64_t recv_us);
int publisher_delta(struct publisher *p, const struct ab_book_delta *d, uint64_t prev_id,
                    int64_t recv_us);
int publisher_status(struct publisher *p, const struct pub_status *st);
void publisher_flush(struct publisher *p);

/* Names for JSON and logs. */
const char *pub_origin_name(enum pub_origin o);
const char *pub_book_state_name(enum pub_book_state s);
const char *pub_conn_state_name(enum pub_conn_state s);

/* ---- JSON encoding (the stdout sink's format; pure) ---- */

/* A growable text buffer with a hard cap. */
struct pub_buf {
    char *p;
    size_t len, cap, max;
};

void pub_buf_init(struct pub_buf *b, size_t max);
void pub_buf_deinit(struct pub_buf *b);

/*
 * Each encoder clears b and writes one JSON object plus '\n'. Returns 0 or
 * AB_ENOMEM (allocation failed or the line would exceed b->max).
 */
int pub_json_candle(struct pub_buf *b, const struct ab_candle *c, enum pub_origin origin,
                    int64_t recv_ms);
int pub_json_snapshot(struct pub_buf *b, const struct ab_book_snapshot *s, int64_t recv_ms);
int pub_json_delta(struct pub_buf *b, const struct ab_book_delta *d, int64_t recv_ms);
int pub_json_status(struct pub_buf *b, const struct pub_status *st);

/* ---- the stdout sink ---- */

extern const struct pub_sink_ops pub_stdout_ops;

/*
 * Creates a JSON-lines sink writing to out (borrowed; stays open). Lines are
 * buffered and written at flush. Returns 0 (*ctx for publisher_add) or
 * AB_ENOMEM.
 */
int pub_stdout_new(FILE *out, void **ctx);

#endif

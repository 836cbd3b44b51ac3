/*
 * feed: the query's consumer of the bus (api/bus.md). It owns the bus server
 * (common/bus_server.h) and routes every data frame the ingest sends:
 *
 *   candle         live_apply_candle (memory + WebSocket broadcast), then
 *                  store_put_candle; the frame stays PENDING until the
 *                  store's commit callback says the row is durable, and only
 *                  then is its bus token done (so the ingest's ack means
 *                  "in PostgreSQL").
 *   book_snapshot  live_apply_book_snapshot, and the snapshot is persisted
 *                  (store_put_book_snapshot: every resync lands in the
 *                  database); done at once.
 *   book_delta     live_apply_book_delta; a delta the live book cannot take
 *                  (gap, stale, no book yet) asks the ingest for a fresh
 *                  snapshot (ab_bus_server_request_resync, at most once per
 *                  FEED_RESYNC_MIN_MS per symbol until a snapshot arrives);
 *                  done at once.
 *   status         live_apply_book_status; done at once.
 *
 * Tokens. The bus numbers every delivered frame with a token (1, 2, ... for
 * the server's lifetime). The store numbers candle puts with a token of the
 * caller's choosing and reports a watermark: every put with a token <= it is
 * durable; a refused put (AB_ENOMEM) is not tracked. The feed therefore
 * draws its OWN store tokens (1, 2, ...) at each ACCEPTED put and keeps a
 * FIFO of (store token, bus token) pairs, ordered by store token; the commit
 * callback pops every pair at or below the watermark and marks those bus
 * tokens done. A bus token is never passed to the store and vice versa.
 *
 * Back-pressure. When the store's queue is full (AB_ENOMEM), the candle goes
 * to a retry list (bus order) and its frame stays pending; while that list
 * is not empty every later candle joins it too, so updates of one candle
 * reach the store in the order they were sent. The list is retried after
 * each commit, on every bus frame and once a second. Nothing is acked
 * before it is durable, and the bus server's window (frames delivered and
 * not done) bounds both lists: once it is full the server stops reading the
 * socket and the ingest's buffer fills behind it. Both lists are capped at
 * the window; they grow on demand.
 *
 * Ingest restarts. A new ingest instance makes the bus server forget the old
 * instance's tokens; the feed then drops its token pairs (the rows are still
 * committed) and keeps the old retry entries without a token, dropping them
 * first (counted in retry_dropped) should the list fill up: the new ingest
 * backfills candles over REST. When a new ingest instance connects (also
 * the first one after the query started) the feed asks for a snapshot of
 * each tracked symbol without a live book and of each stale book.
 *
 * Periodic persistence. A thread of its own (feed_start) persists each live
 * book whose id moved, at most every book_persist_every_ms, and retries the
 * retry list once a second.
 *
 * Threads: the message and event callbacks run on the bus thread; the
 * commit callback on the store's writer thread; the timer on the feed's own
 * thread. feed_get_stats, feed_metrics_render and feed_ingest_status may be
 * called from any thread. feed_new/start/stop/free: one owner thread.
 */
#ifndef ABIDANCE_QUERY_FEED_H
#define ABIDANCE_QUERY_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "live.h"
#include "store.h"

#define FEED_PERSIST_EVERY_DEFAULT 60000 /* ms between periodic book snapshots per symbol */
#define FEED_RESYNC_MIN_MS         1000  /* least time between resync requests per symbol */
#define FEED_WINDOW_MIN            64
#define FEED_WINDOW_MAX            ((size_t)1 << 24)
#define FEED_BOOKS_MAX             LIVE_MAX_BOOKS_MAX /* symbols with per-book bookkeeping */

struct feed; /* opaque */

struct feed_config {
    const char *bus_path;          /* Unix socket path (copied; < 108 bytes) */
    struct live *live;             /* borrowed; outlives the feed */
    struct store *store;           /* borrowed; outlives the feed */
    size_t window;                 /* bus delivery window: 0 = AB_BUS_SERVER_WINDOW_DEFAULT;
                                      FEED_WINDOW_MIN..FEED_WINDOW_MAX, rounded up to a power of 2 */
    int64_t book_persist_every_ms; /* 0 = FEED_PERSIST_EVERY_DEFAULT; < 0: only on resync */
    size_t max_books;              /* 0 = LIVE_MAX_BOOKS_DEFAULT; <= FEED_BOOKS_MAX */
    const struct ab_config_symbols *symbols; /* tracked (borrowed; may be NULL) */
    int ack_interval_ms;                     /* 0: the bus server's default (5 ms) */
    uint64_t instance_id;                    /* 0 = random (tests may fix it) */
};

/*
 * Creates the feed and its bus server (listening, not yet reading) and
 * installs the feed as the store's commit callback (so call it before
 * store_start). Returns 0, AB_EINVAL (missing path, live or store; window
 * or max_books out of range), AB_ENOMEM, or the errors of
 * ab_bus_server_new (AB_ERANGE path too long, AB_EPERM a live server
 * listens on the path or it is not a socket, AB_EIO). *out: free with
 * feed_free.
 */
int feed_new(const struct feed_config *cfg, struct feed **out);

/* Starts the bus thread and the feed's timer thread. Returns 0, AB_ESTATE or AB_EIO. */
int feed_start(struct feed *f);

/*
 * Stops the bus server (closing the ingest connection; pending frames stay
 * unacknowledged: the ingest sends them again to the next process) and the
 * timer thread. Commit callbacks that still arrive (store_stop flushes) are
 * absorbed. Idempotent.
 */
void feed_stop(struct feed *f);

/* Stops if needed and frees. Accepts NULL. Call after store_stop. */
void feed_free(struct feed *f);

struct feed_stats {
    uint64_t candles;                  /* candle frames received */
    uint64_t candles_put;              /* accepted by the store (first try or retry) */
    uint64_t candles_acked;            /* bus tokens done after their commit */
    uint64_t candles_invalid;          /* refused by the store as invalid: done, not stored */
    uint64_t store_full;               /* puts refused because the store queue was full */
    uint64_t retry_dropped;            /* old-instance retry entries dropped at the cap */
    uint64_t untracked;                /* frames that could not be tracked (cap; should stay 0) */
    size_t pending;                    /* candles put, waiting for their commit */
    size_t retry_depth;                /* candles waiting for room in the store queue */
    uint64_t snapshots;                /* book snapshot frames */
    uint64_t deltas;                   /* book delta frames */
    uint64_t statuses;                 /* status frames */
    uint64_t resync_requests;          /* resyncs asked of the ingest */
    uint64_t books_persisted;          /* snapshots handed to the store: on resync */
    uint64_t books_persisted_periodic; /* ... by the periodic timer */
    uint64_t books_persist_failed;     /* refused by the store (cap, size) */
    uint64_t live_errors;              /* live_apply_* errors (logged) */
    uint64_t latency_count;            /* frames with a receive time, not resent */
    uint64_t latency_sum_us;           /* sum of (query clock - recv_us) */
    uint64_t latency_max_us;
};

void feed_get_stats(struct feed *f, struct feed_stats *out);

/* What /v1/symbols and /readyz say about the ingest. */
struct feed_ingest_status {
    bool connected;        /* an ingest completed its hello and is still connected */
    uint64_t instance_id;  /* the current (or last) ingest instance, 0 before any */
    char name[64];         /* its hello name, "" before any */
    int64_t since_ms;      /* wall time of the last connect/disconnect, 0 before any */
    int64_t last_frame_ms; /* wall time of the last data frame, 0 before any */
    uint64_t acked_seq;    /* last ack sent */
    char path[108];        /* the bus socket */
};

void feed_ingest_status(struct feed *f, struct feed_ingest_status *out);

/*
 * Appends the bus, feed and live-state metrics (abidance_bus_*,
 * abidance_feed_*, abidance_live_*) in Prometheus text format to the
 * NUL-terminated text already in buf (cap bytes). Returns the new total
 * length, or AB_ERANGE when cap was too small (buf holds a cut text).
 */
int feed_metrics_render(struct feed *f, char *buf, size_t cap);

#endif

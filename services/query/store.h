/*
 * store: PostgreSQL storage for abidance-query (candles, book snapshots).
 *
 * Contract first drafted by the lead; owned and implemented by the storage
 * helper. Changes against the draft (all additive, names and semantics of the
 * draft kept): store_flush; store_config.snapshot_cap/snapshot_keep;
 * store_stats.inflight, rows_dropped, snapshots_written,
 * snapshots_dropped and schema_version; the exact
 * meaning of the commit token (a watermark, see store_commit_cb); limit 0 in
 * store_read_candles means STORE_READ_MAX; AB_ERANGE for times outside
 * STORE_MS_MIN..STORE_MS_MAX.
 *
 * Writer. One writer thread owns one PGconn and drains a bounded queue of
 * pending candle upserts in batches (one transaction each: a single
 * INSERT ... SELECT FROM unnest($1..$15 arrays) ... ON CONFLICT DO UPDATE,
 * see store.c for the measured alternatives). Pending candles are coalesced
 * by key (symbol, interval, open_time): a newer update of the same candle
 * replaces the queued one, so the queue holds at most one row per key. A
 * closed candle is final, in the queue and in the table: a later not-closed
 * update of a key whose stored/queued row is closed changes nothing. Writing
 * the same candle twice leaves one row with the newest values (idempotent).
 *
 * Queue cap policy: the queue holds at most queue_cap distinct keys (plus at
 * most batch_max rows in flight in the writer). An update of a key already
 * queued always succeeds (it replaces the row in place). A new key when the
 * queue is full is refused with AB_ENOMEM and counted (rejected_full): the
 * caller keeps the data (the bus does not acknowledge it, so the ingest sends
 * it again); nothing is silently dropped.
 *
 * Database down. The service stays up: store_start never fails because the
 * database is unreachable. The writer reconnects with exponential backoff
 * (100 ms doubling to 5 s), reports db_up=false and last_error in the stats,
 * keeps pending writes in the queue and catches up when the database returns.
 * A batch whose transaction failed is retried whole (upserts are idempotent).
 * A batch that fails with a non-retryable error (which validation should make
 * impossible) is retried row by row; rows that still fail are dropped, logged
 * and counted (rows_dropped), so one bad row can never wedge the writer.
 *
 * Schema. On every (re)connect the writer applies pending migrations (the
 * deploy/sql/NNN_*.sql files, embedded in the binary at build time), each in
 * one transaction, recorded in schema_migrations, under a PostgreSQL advisory
 * lock so two instances starting together do not race.
 *
 * Readers (REST threads) use a small pool of their own connections with
 * statements prepared at connect time; a broken connection is reopened on the
 * next read. Every candle read walks the primary-key index
 * (symbol, timeframe, timestamp) forwards or backwards, never a sort.
 *
 * Decimals travel as text (ab_dec_format / ab_dec_parse) into numeric
 * columns: exact. Times are epoch ms, exact to the millisecond both ways.
 *
 * Thread safety: every function may be called from any thread after
 * store_new, except store_free (and store_start/store_stop, which one
 * controlling thread calls). Reads work without store_start.
 */
#ifndef ABIDANCE_QUERY_STORE_H
#define ABIDANCE_QUERY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/model.h"

struct store;

enum store_origin { STORE_ORIGIN_WS, STORE_ORIGIN_REST };

/* Most rows one store_read_candles call returns. */
#define STORE_READ_MAX 100000
/* Times (epoch ms) stored exactly to the millisecond: years 1684..2255
 * (|ms| * 1000 < 2^53, see pgsql.h). Reads clamp their range to it; puts
 * outside it are AB_ERANGE. */
#define STORE_MS_MIN (-9000000000000LL)
#define STORE_MS_MAX 9000000000000LL
/* Most levels per side of a persisted book snapshot (Binance sends <= 5000). */
#define STORE_BOOK_LEVELS_MAX 10000

struct store_config {
    const char *database_url; /* libpq conninfo or URI; borrowed, copied by store_new */
    size_t queue_cap;         /* max pending candle rows (default 100000 when 0) */
    size_t batch_max;         /* max rows per write transaction (default 5000 when 0) */
    size_t reader_conns;      /* reader connection pool size (default 4 when 0) */
    size_t snapshot_cap;      /* max symbols with a snapshot pending (default 256 when 0) */
    size_t snapshot_keep;     /* snapshots kept per symbol in the table (default 100 when 0) */
};

/*
 * Called on the writer thread after a batch commits, with a watermark: every
 * candle put with a token <= committed_token is durable (written, or
 * superseded by a newer write of the same key that is). Tokens of 0 are
 * ignored. Called only when the watermark advances. Must not block for long
 * and must not call store_stop/store_free.
 * The watermark covers accepted puts only: a put refused with AB_ENOMEM is
 * not tracked, so after a refusal the caller must not acknowledge past the
 * refused token until it has put that candle again successfully (the bus
 * simply stops reading until the retry goes through).
 */
typedef void (*store_commit_cb)(uint64_t committed_token, void *arg);

/* Allocates a store (no connection yet). Returns 0, AB_EINVAL (no URL),
 * AB_ENOMEM. Caller frees *out with store_free. */
int store_new(const struct store_config *cfg, struct store **out);
void store_free(struct store *st); /* stops first if running; accepts NULL */

/* Starts the writer thread, which connects and applies migrations. Never
 * fails because the database is down: it keeps retrying in the background.
 * Returns 0, AB_ESTATE (already started) or AB_EIO (thread creation). */
int store_start(struct store *st);
/* Flushes what it can within timeout_ms, then stops the writer. Rows still
 * pending are left in memory (lost when the store is freed; the bus did not
 * acknowledge them). Accepts a store that is not running. */
void store_stop(struct store *st, int timeout_ms);

/* Sets the commit callback (call before store_start). arg is borrowed. */
void store_set_commit_cb(struct store *st, store_commit_cb cb, void *arg);

/* Enqueues an upsert. token is the caller's increasing sequence number (0 if
 * unused). Returns 0, AB_ENOMEM when the queue is full, AB_EINVAL for a candle
 * that fails ab_candle_validate or has a bad symbol, AB_ERANGE for times
 * outside STORE_MS_MIN..STORE_MS_MAX. The candle is copied. */
int store_put_candle(struct store *st, const struct ab_candle *c, enum store_origin origin,
                     uint64_t token);

/* Persists a book snapshot (best effort, queued; a newer pending snapshot of
 * the same symbol replaces an older one). The levels are copied. Returns 0,
 * AB_ENOMEM (snapshot_cap symbols pending, or allocation), AB_EINVAL (bad
 * symbol), AB_ERANGE (more than STORE_BOOK_LEVELS_MAX levels on a side, or a
 * time outside STORE_MS_MIN..STORE_MS_MAX). */
int store_put_book_snapshot(struct store *st, const struct ab_book_snapshot *snap,
                            int64_t taken_at_ms);

/*
 * Waits until everything put before this call is committed (queue and
 * in-flight batch empty, snapshots written) or timeout_ms passes. Returns 0,
 * AB_EDB_RETRY on timeout, AB_ESTATE when the writer is not running.
 */
int store_flush(struct store *st, int timeout_ms);

/* Candle range query. With most_recent, the newest `limit` candles with
 * open_time in [start, end] are returned, still ascending; otherwise the
 * oldest `limit` ones. start/end are inclusive open times in ms (INT64_MIN /
 * INT64_MAX for open; clamped to STORE_MS_MIN..STORE_MS_MAX). limit 0 or above
 * STORE_READ_MAX means STORE_READ_MAX. first_trade_id/last_trade_id come back
 * -1 and event_time 0 (not stored). *out is malloc'd (caller frees with
 * free(); NULL when *n is 0), *n its length. Returns 0, AB_EINVAL (bad symbol
 * or interval), AB_EDB_RETRY when the database is unreachable (or the schema
 * not yet created), AB_EDB otherwise. */
int store_read_candles(struct store *st, const char *symbol, enum ab_interval iv, int64_t start,
                       int64_t end, size_t limit, bool most_recent, struct ab_candle **out,
                       size_t *n);

/* Latest persisted snapshot of a symbol; AB_ENOTFOUND when none. Caller
 * releases *out with ab_book_snapshot_deinit (also on error: *out is zeroed
 * first). Other errors as store_read_candles. */
int store_read_book_snapshot(struct store *st, const char *symbol, struct ab_book_snapshot *out,
                             int64_t *taken_at_ms);

struct store_series {
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval interval;
    int64_t newest_open_time;
    int64_t count;
};

/* Distinct (symbol, interval) series with their newest open time and row
 * count, ordered by symbol then interval name. *out malloc'd (caller frees
 * with free(); NULL when *n is 0). Errors as store_read_candles. */
int store_list_series(struct store *st, struct store_series **out, size_t *n);

struct store_stats {
    bool db_up;           /* writer connection currently healthy */
    int64_t last_ok_ms;   /* wall time of last successful DB round trip, 0 never */
    char last_error[256]; /* last database error message, "" if none */
    size_t queue_depth, queue_cap;
    size_t inflight; /* rows taken by the writer, not yet committed */
    uint64_t rows_written, batches, db_errors, rejected_full;
    uint64_t batch_size_sum; /* for mean batch size */
    uint64_t batch_size_max;
    uint64_t rows_dropped;      /* rows a hard (non-retryable) error made the writer drop */
    uint64_t snapshots_written; /* book snapshots committed */
    uint64_t snapshots_dropped; /* refused (cap) or failed hard */
    int schema_version;         /* highest applied migration, 0 before the first connect */
};

void store_get_stats(struct store *st, struct store_stats *out);

/* Synchronous health probe used by /readyz: a round trip on a reader
 * connection within timeout_ms. Returns 0 or AB_EDB_RETRY with *why set
 * (static string). */
int store_ping(struct store *st, int timeout_ms, const char **why);

#endif

/*
 * live: the query service's in-memory market state, fed by the bus.
 *
 * Two kinds of state, both created on first sight and never removed:
 *
 *   series  recent candles of one (symbol, interval): a ring of at most
 *           candle_cap candles (default LIVE_CANDLE_CAP_DEFAULT = 10000, set
 *           at creation), ascending by open time. An update of a candle
 *           overwrites it by open time; a closed candle is final (later
 *           updates of it are ignored). Updates older than the stored
 *           version (smaller event time or trade count: a bus replay) are
 *           ignored, identical ones are duplicates. A candle older than the
 *           whole ring when the ring is full is not stored but still
 *           broadcast (a backfilled closed candle subscribers must see). When
 *           the ring is full the oldest candle is evicted.
 *   book    the live order book of one symbol (common/book.h): loaded from
 *           each snapshot the ingest sends (ab_book_load), then advanced by
 *           continuity-checked deltas. A delta that does not continue the
 *           book (U > id + 1) or is malformed discards the book: state
 *           "stale" until the ingest sends a new snapshot.
 *
 * Book states (live_book_state_name):
 *   syncing    no snapshot yet
 *   live       the book is valid at last_update_id and advancing
 *   resyncing  the ingest reports it lost sync: the book is frozen at its
 *              last id until the next snapshot
 *   stale      a delta did not continue the book: the book was discarded and
 *              the ingest must send a snapshot (LIVE_NEED_SNAPSHOT)
 *
 * Versions, so that a consumer reading state and receiving broadcasts can
 * order them: every broadcast candle carries its series' seq (1, 2, ...: +1
 * per broadcast), every book broadcast its book's generation (gen: +1 on
 * every snapshot load and every discard) and update ids. Readers get the seq
 * or gen together with the state they copied (one lock), so a broadcast with
 * a version at or below what was read is already contained in it.
 *
 * Broadcast hook: an optional struct live_hook, set once before any writer
 * runs (live_set_hook). Its callbacks run on the writer's thread while the
 * series' or book's lock is held, so they are called in exactly the order
 * the state changed; they must be quick, must not block and must not call
 * back into live.
 *
 * Memory coverage for /v1/candles: every candle reaches this state no later
 * than storage (the bus delivers to both), so for open times at or after the
 * ring's oldest candle memory is at least as new as the database. A window is
 * "covered" when the candles it asks for are present and contiguous in the
 * ring (each one's open time is the previous one's next open time);
 * live_candles_read then answers it without the database.
 *
 * Threads: one writer (the bus thread) calls live_apply_*; any number of
 * readers (REST workers, the WebSocket thread) call the readers at the same
 * time. Each series and each book has its own rwlock; the tables have one.
 * No lock is ever held across I/O. live_new/live_free/live_set_hook: owner
 * thread only, with no other thread using the state.
 */
#ifndef ABIDANCE_QUERY_LIVE_H
#define ABIDANCE_QUERY_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/book.h"
#include "common/model.h"

#define LIVE_CANDLE_CAP_DEFAULT 10000
#define LIVE_CANDLE_CAP_MAX     1000000
/*
 * Table caps (hard caps; each table is an array of pointers allocated at
 * live_new, 8 bytes per slot; a series or book itself is allocated on first
 * sight). The defaults follow AB_CONFIG_MAX_SYMBOLS (2048 symbols, enough for
 * every Binance USDT symbol): one book per symbol, four intervals per symbol.
 * A series ring is allocated whole (candle_cap candles of 240 bytes;
 * untouched pages cost no memory), a book grows with its levels.
 */
#define LIVE_MAX_SERIES_DEFAULT 8192 /* (symbol, interval) pairs */
#define LIVE_MAX_SERIES_MAX     65536
#define LIVE_MAX_BOOKS_DEFAULT  2048 /* symbols with a book */
#define LIVE_MAX_BOOKS_MAX      4096

struct live; /* opaque */

struct live_config {
    size_t candle_cap;                 /* candles kept per series; 0 = LIVE_CANDLE_CAP_DEFAULT */
    size_t max_series;                 /* (symbol, interval) pairs; 0 = LIVE_MAX_SERIES_DEFAULT */
    size_t max_books;                  /* symbols with a book; 0 = LIVE_MAX_BOOKS_DEFAULT */
    struct ab_book_limits book_limits; /* zero fields: common/book.h defaults */
};

enum live_book_state {
    LIVE_BOOK_SYNCING = 0,
    LIVE_BOOK_LIVE,
    LIVE_BOOK_RESYNCING,
    LIVE_BOOK_STALE,
};

/* What the ingest reports about its own book (the bus's symbol status). */
enum live_ingest_state {
    LIVE_INGEST_SYNCING = 0,
    LIVE_INGEST_LIVE,
    LIVE_INGEST_RESYNCING,
};

/* What one apply call did. */
enum live_action {
    LIVE_APPLIED = 0,   /* state changed (or a candle was passed on): broadcast */
    LIVE_DUPLICATE,     /* already known (bus replay): nothing changed */
    LIVE_IGNORED,       /* refused by the rules (final candle, older version, no book) */
    LIVE_NEED_SNAPSHOT, /* the book is stale: ask the ingest for a snapshot */
};

/* ---- broadcast hook ---- */

/* A candle was stored or passed on. c borrowed; seq as described above. */
typedef void (*live_candle_cb)(void *arg, const struct ab_candle *c, uint64_t seq);
/* A delta was applied to the live book: book id went from prev_id to d->last_id. */
typedef void (*live_delta_cb)(void *arg, const struct ab_book_delta *d, uint64_t gen,
                              uint64_t prev_id);
/* A snapshot was loaded: s (borrowed) is the whole book, best levels first. */
typedef void (*live_snapshot_cb)(void *arg, const struct ab_book_snapshot *s, uint64_t gen,
                                 enum live_book_state state);
/* The book's state changed without a new snapshot (stale, resyncing, ...);
 * last_id is the book's id (0 when it has none). */
typedef void (*live_status_cb)(void *arg, const char *symbol, uint64_t gen,
                               enum live_book_state state, uint64_t last_id);

struct live_hook {
    live_candle_cb candle; /* each may be NULL */
    live_delta_cb delta;
    live_snapshot_cb snapshot;
    live_status_cb status;
    void *arg; /* borrowed; outlives the live state or the next live_set_hook */
};

/*
 * Creates the state. cfg may be NULL for the defaults. *out owns it: release
 * with live_free. Returns 0, AB_ERANGE (a cap above its _MAX) or AB_ENOMEM.
 */
int live_new(const struct live_config *cfg, struct live **out);
void live_free(struct live *lv); /* accepts NULL */

/* Installs (or, with NULL, removes) the broadcast hook (copied). */
void live_set_hook(struct live *lv, const struct live_hook *hook);

/* ---- writer (the bus thread) ---- */

/*
 * Applies one candle update (borrowed). *act (may be NULL) says what
 * happened. Returns 0, AB_EINVAL (invalid symbol, interval or unaligned open
 * time) or AB_ENOMEM (max_series reached for a new series: counted).
 */
int live_apply_candle(struct live *lv, const struct ab_candle *c, enum live_action *act);

/*
 * Replaces symbol s->symbol's book with snapshot s (borrowed), as sent by the
 * ingest after every (re)sync; now_ms is the receive time. A snapshot equal
 * to the live book's id is a DUPLICATE. Returns 0, AB_EINVAL (malformed
 * snapshot: the book is unchanged) or AB_ENOMEM.
 */
int live_apply_book_snapshot(struct live *lv, const struct ab_book_snapshot *s, int64_t now_ms,
                             enum live_action *act);

/*
 * Applies delta d (borrowed) with the continuity rule of common/book.h.
 * APPLIED, DUPLICATE (u <= id), IGNORED (no book yet) or NEED_SNAPSHOT (gap,
 * or the book was already stale). Returns 0, AB_EINVAL (malformed delta: the
 * book is discarded, NEED_SNAPSHOT) or AB_ENOMEM.
 */
int live_apply_book_delta(struct live *lv, const struct ab_book_delta *d, int64_t now_ms,
                          enum live_action *act);

/* Records what the ingest reports for symbol's book. Returns 0, AB_EINVAL, AB_ENOMEM. */
int live_apply_book_status(struct live *lv, const char *symbol, enum live_ingest_state st,
                           int64_t now_ms, enum live_action *act);

/* ---- readers (any thread) ---- */

/* A /v1/candles window: see live_candles_read. */
struct live_window {
    bool has_start, has_end;
    int64_t start, end; /* inclusive open times (ms) when the has_ flag is set */
    size_t limit;       /* at most this many candles (>= 1) */
};

/*
 * Answers a window from memory, with the semantics of /v1/candles: with a
 * start, the first `limit` candles with open_time >= start (and <= end);
 * without, the newest `limit` candles with open_time <= end (or any).
 * Ascending. Returns 0 with *out (malloc'd, caller free()s; NULL when *n is
 * 0) when memory fully covers the window, AB_ENOTFOUND when it does not
 * (read storage instead), AB_EINVAL (limit 0, bad interval) or AB_ENOMEM.
 */
int live_candles_read(struct live *lv, const char *symbol, enum ab_interval iv,
                      const struct live_window *w, struct ab_candle **out, size_t *n);

/*
 * The same, also storing in *version (may be NULL) the series' version of
 * the state the answer was copied from (see live_candles_version; 0 when the
 * series was never seen).
 */
int live_candles_read_versioned(struct live *lv, const char *symbol, enum ab_interval iv,
                                const struct live_window *w, struct ab_candle **out, size_t *n,
                                uint64_t *version);

/*
 * The series' version: a new value on every change of its candles (each
 * LIVE_APPLIED candle), read under the series lock. Versions come from one
 * process-wide counter, so a value is never reused, not even by another live
 * state: equal versions mean the same state of the same series (used to keep
 * response caches exact). 0 for a series never seen.
 */
uint64_t live_candles_version(struct live *lv, const char *symbol, enum ab_interval iv);

/* True when live_candles_read would answer w from memory (at this instant). */
bool live_candles_covers(struct live *lv, const char *symbol, enum ab_interval iv,
                         const struct live_window *w);

/*
 * Copies the newest (up to) max candles of a series, ascending, into *out
 * (malloc'd, caller free()s; NULL when *n is 0) and the series' seq into
 * *seq (0 for a series not seen yet, which is not an error). Returns 0,
 * AB_EINVAL or AB_ENOMEM.
 */
int live_candles_recent(struct live *lv, const char *symbol, enum ab_interval iv, size_t max,
                        struct ab_candle **out, size_t *n, uint64_t *seq);

struct live_series_info {
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval interval;
    size_t count;            /* candles in memory */
    int64_t oldest_open;     /* open time of the oldest in memory (0 when count is 0) */
    struct ab_candle newest; /* valid when count > 0 */
    uint64_t seq;
};

/* Fills up to cap entries (in creation order). Returns the number of series. */
size_t live_series_list(struct live *lv, struct live_series_info *out, size_t cap);

struct live_book_info {
    enum live_book_state state;
    uint64_t gen;
    int64_t updated_ms;            /* receive time of the last change; 0 when none */
    size_t bids_total, asks_total; /* levels held per side (before depth) */
};

/*
 * Exports symbol's book: the best `depth` levels per side (0: all), symbol
 * and last_update_id into *out (caller releases with ab_book_snapshot_deinit,
 * also after an error), and its state into *info (may be NULL). A book that
 * is not valid (syncing, stale) exports no levels and id 0. Returns 0,
 * AB_ENOTFOUND (nothing ever received for symbol) or AB_ENOMEM.
 */
int live_book_get(struct live *lv, const char *symbol, size_t depth, struct ab_book_snapshot *out,
                  struct live_book_info *info);

struct live_book_summary {
    char symbol[AB_SYMBOL_MAX];
    enum live_book_state state;
    uint64_t last_update_id;
    int64_t updated_ms;
};

/* Fills up to cap entries (in creation order). Returns the number of books. */
size_t live_book_list(struct live *lv, struct live_book_summary *out, size_t cap);

struct live_stats {
    uint64_t candles_applied;   /* stored or passed on (broadcast) */
    uint64_t candles_duplicate; /* identical to the stored version */
    uint64_t candles_ignored;   /* final candle or older version */
    uint64_t candles_evicted;   /* dropped from a full ring */
    uint64_t series_refused;    /* new series beyond max_series */
    uint64_t snapshots_loaded;
    uint64_t deltas_applied;
    uint64_t deltas_duplicate;
    uint64_t deltas_ignored; /* no valid book to apply them to */
    uint64_t book_gaps;      /* deltas that did not continue: book went stale */
    uint64_t books_refused;  /* new books beyond max_books */
    size_t series, books;
};

void live_get_stats(struct live *lv, struct live_stats *out);

/* "syncing", "live", "resyncing", "stale" (static). */
const char *live_book_state_name(enum live_book_state st);

#endif

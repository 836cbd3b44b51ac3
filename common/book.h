/*
 * book: one symbol's order book, kept in sync with Binance's diff-depth
 * stream by the official snapshot procedure, as a pure state machine.
 *
 * The module does no I/O and reads no clock. The caller feeds it what arrives
 * (diff events with ab_book_on_delta, REST snapshots with ab_book_on_snapshot)
 * and each call says what to do next in a struct ab_book_result:
 *
 *   action            meaning for the caller
 *   BUFFERED          kept until a snapshot arrives; nothing to do
 *   NEED_SNAPSHOT     first event buffered: fetch a REST depth snapshot now
 *   APPLIED           the book changed (delta applied, or snapshot loaded and
 *                     the buffered events replayed); forward it downstream
 *   IGNORED_STALE     u <= the book's (or buffer's) last id: already covered
 *   IGNORED_INVALID   not for this book (symbol mismatch); nothing changed
 *   SNAPSHOT_TOO_OLD  the snapshot ends before the first buffered event:
 *                     fetch another one (events keep being buffered)
 *   RESYNC            continuity was lost (gap, buffer overflow, malformed
 *                     event, out of memory): the book was discarded; keep
 *                     feeding events and fetch a new snapshot (one already in
 *                     flight may be used: it is checked against the buffer
 *                     when it arrives)
 *   IGNORED_STALE and IGNORED_INVALID also answer snapshots: a snapshot for a
 *   book that is already live, and a malformed or foreign one.
 *
 * The procedure (binance-protocol.md section 3), with the two corrections of
 * section 0:
 *   - Before a snapshot, events are buffered. The buffer must itself be
 *     continuous: an event with U > (last buffered u) + 1 restarts the buffer
 *     at that event (RESYNC); one with u <= last buffered u is stale.
 *   - A snapshot with lastUpdateId L is too old when L + 1 < first buffered U.
 *     (The docs say "L < U"; but L == U - 1 means the snapshot ends exactly
 *     where the first event starts, so it is accepted, like the bridging rule.)
 *   - Otherwise the snapshot becomes the book with id L, and the buffered
 *     events are replayed with the live rule below: those with u <= L are
 *     dropped, and the first one kept satisfies U <= L + 1 <= u (bridging).
 *   - Live rule, book id `id`: u <= id is stale (ignored); U > id + 1 is a gap
 *     (book discarded, the event starts a new buffer, RESYNC); otherwise every
 *     level is set (quantity zero removes it; removing an absent level is
 *     normal) and id = u. The bridging rule is this same rule applied to the
 *     first event after the snapshot.
 * A snapshot fed with an empty buffer is loaded as is; the live rule then
 * checks the first event against it, so nothing can be missed silently.
 * A snapshot fed to a LIVE book is ignored (IGNORED_STALE): it was a
 * duplicate fetch.
 *
 * Services that receive snapshots from an ordered source (the query service,
 * fed by the ingest over the bus) call ab_book_load instead: it replaces the
 * book unconditionally and clears the buffer; later deltas go through
 * ab_book_on_delta with the same live rule. There is deliberately no way to
 * apply a delta without the continuity checks.
 *
 * Bad input never crashes: an event with U > u, a price <= 0 or a negative
 * quantity is rejected (AB_EINVAL) and, as its update ids are lost, the book
 * and buffer are discarded (RESYNC). A crossed book (best bid >= best ask
 * after an event or snapshot) is kept and counted, and reported by
 * ab_book_is_crossed. Everything unusual is counted in struct ab_book_stats.
 *
 * Limits (all set at creation, all hard):
 *   - max_levels per side. When a new level would exceed it, the worst level
 *     of that side (or the new level, if it is the worst) is dropped and
 *     counted in levels_trimmed. Binance's own snapshots stop at 5000 levels,
 *     so the deep book is incomplete anyway; the top is always exact.
 *   - max_buffered_events and max_buffered_levels for the pre-snapshot
 *     buffer. Overflow drops the buffer, restarts it with the current event
 *     and returns RESYNC (counted in buffer_overflows).
 *
 * Data structure and complexity (n = levels on a side): each side is a skip
 * list (deterministic xorshift PRNG, p = 1/4) keyed by exact price, with a
 * doubly linked bottom level. Best bid/ask and worst level: O(1). Top-N:
 * O(N). Setting or removing a level: O(log n) expected. A delta with k levels:
 * O(k log n). A snapshot in Binance's order (best first) loads in O(n): each
 * level is appended at the tail. Nodes come from a per-book pool that grows
 * in chunks of 256 (so it never holds much more than 2 * max_levels nodes)
 * and recycles freed nodes, so the steady state never allocates.
 * Discarding the book (resync, reset, a new snapshot) is O(1): the whole
 * pool is taken back at once.
 *
 * Threading: a book is used by one thread at a time (no internal locking).
 * Concurrent read-only calls (const parameters) are safe when no thread
 * writes. Ownership: the book copies everything it keeps; the caller keeps
 * ownership of the deltas and snapshots it passes in.
 */
#ifndef AB_BOOK_H
#define AB_BOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/model.h"

/* Defaults used for a zero field in struct ab_book_limits. */
#define AB_BOOK_DEFAULT_MAX_LEVELS          10000
#define AB_BOOK_DEFAULT_MAX_BUFFERED_EVENTS 1000
#define AB_BOOK_DEFAULT_MAX_BUFFERED_LEVELS 100000

/* Upper bounds accepted for the limits (AB_ERANGE above them). */
#define AB_BOOK_LIMIT_MAX_LEVELS          1000000
#define AB_BOOK_LIMIT_MAX_BUFFERED_EVENTS 1000000
#define AB_BOOK_LIMIT_MAX_BUFFERED_LEVELS 10000000

struct ab_book; /* opaque */

enum ab_book_side {
    AB_BOOK_BID = 0,
    AB_BOOK_ASK = 1,
};

enum ab_book_state {
    AB_BOOK_EMPTY = 0, /* no book, nothing buffered */
    AB_BOOK_BUFFERING, /* events buffered, waiting for a snapshot */
    AB_BOOK_LIVE,      /* synchronised: the book is valid at last_update_id */
};

enum ab_book_action {
    AB_BOOK_BUFFERED = 0,
    AB_BOOK_NEED_SNAPSHOT,
    AB_BOOK_APPLIED,
    AB_BOOK_IGNORED_STALE,
    AB_BOOK_IGNORED_INVALID,
    AB_BOOK_SNAPSHOT_TOO_OLD,
    AB_BOOK_RESYNC,
};

/* Why an action other than BUFFERED/APPLIED happened (for logs). */
enum ab_book_reason {
    AB_BOOK_R_NONE = 0,
    AB_BOOK_R_GAP,          /* U > id + 1 (live) or U > last buffered u + 1 */
    AB_BOOK_R_STALE,        /* u <= id */
    AB_BOOK_R_BUFFER_FULL,  /* buffer cap reached */
    AB_BOOK_R_INVALID,      /* malformed event or snapshot */
    AB_BOOK_R_WRONG_SYMBOL, /* the event or snapshot names another symbol */
    AB_BOOK_R_SNAPSHOT_OLD, /* lastUpdateId + 1 < first buffered U */
    AB_BOOK_R_ALREADY_LIVE, /* a snapshot arrived for a live book */
    AB_BOOK_R_NOMEM,        /* malloc failed: book and buffer discarded */
};

struct ab_book_limits {
    size_t max_levels;          /* per side; 0 = AB_BOOK_DEFAULT_MAX_LEVELS */
    size_t max_buffered_events; /* 0 = AB_BOOK_DEFAULT_MAX_BUFFERED_EVENTS */
    size_t max_buffered_levels; /* total levels in buffered events; 0 = default */
};

/*
 * What one call did. For APPLIED after a delta: prev_id is the book id before
 * it, first_id/last_id the event's U/u (forward the delta with these ids).
 * For APPLIED after a snapshot: first_id is the snapshot's lastUpdateId,
 * last_id the book id after replaying `replayed` buffered events (of which
 * `dropped` were stale and discarded), prev_id 0. Ids are 0 where unused.
 */
struct ab_book_result {
    enum ab_book_action action;
    enum ab_book_reason reason;
    uint64_t prev_id;
    uint64_t first_id;
    uint64_t last_id;
    size_t replayed;
    size_t dropped;
};

/* Counters since creation (never reset, not even by ab_book_reset). */
struct ab_book_stats {
    uint64_t deltas_applied;    /* events applied to a live book, incl. replayed */
    uint64_t deltas_buffered;   /* events stored in the pre-snapshot buffer */
    uint64_t deltas_stale;      /* events ignored or dropped as u <= id */
    uint64_t deltas_invalid;    /* malformed events (and wrong-symbol ones) */
    uint64_t gaps;              /* continuity breaks (live or in the buffer) */
    uint64_t resyncs;           /* RESYNC actions returned */
    uint64_t snapshots_loaded;  /* snapshots that became the book (incl. load) */
    uint64_t snapshots_too_old; /* SNAPSHOT_TOO_OLD returned */
    uint64_t snapshots_invalid; /* malformed snapshots rejected */
    uint64_t buffer_overflows;  /* buffer caps hit */
    uint64_t removed_absent;    /* zero-quantity updates for absent levels */
    uint64_t levels_trimmed;    /* levels dropped by the per-side cap */
    uint64_t crossed;           /* events/snapshots leaving the book crossed */
};

/*
 * Creates an empty book for `symbol` (must satisfy ab_symbol_valid). lim may
 * be NULL for the defaults. On success *out owns the book: release it with
 * ab_book_free. Returns 0, AB_EINVAL (bad symbol), AB_ERANGE (limit above its
 * bound) or AB_ENOMEM.
 */
int ab_book_new(const char *symbol, const struct ab_book_limits *lim, struct ab_book **out);

/* Frees the book and everything it holds. Accepts NULL. */
void ab_book_free(struct ab_book *b);

/*
 * Discards the book and the buffer and forgets any requested snapshot
 * (state EMPTY): use it on reconnect. Counters are kept.
 */
void ab_book_reset(struct ab_book *b);

/*
 * Feeds one diff event (borrowed; copied if buffered). *res is always filled.
 * Returns 0 for every protocol outcome (see the action), AB_EINVAL for a
 * malformed event (res->action RESYNC: book and buffer discarded) or for a
 * delta naming another symbol (res->action IGNORED_INVALID: nothing changed;
 * an empty d->symbol is not checked).
 */
int ab_book_on_delta(struct ab_book *b, const struct ab_book_delta *d, struct ab_book_result *res);

/*
 * Feeds a REST depth snapshot (borrowed; levels copied; any order accepted;
 * zero-quantity levels are skipped; an empty s->symbol is not checked).
 * Actions: APPLIED (now LIVE), SNAPSHOT_TOO_OLD, IGNORED_STALE (book already
 * live). Returns 0, or AB_EINVAL for a malformed snapshot (price <= 0,
 * negative quantity, another symbol): nothing changed, res->action is
 * NEED_SNAPSHOT (fetch another) unless the book is live or the snapshot
 * names another symbol (IGNORED_INVALID). AB_ENOMEM: book and buffer
 * discarded, RESYNC.
 */
int ab_book_on_snapshot(struct ab_book *b, const struct ab_book_snapshot *s,
                        struct ab_book_result *res);

/*
 * Replaces the book with snapshot s unconditionally (state LIVE at
 * s->last_update_id) and clears the buffer. For consumers whose snapshots and
 * deltas come from one ordered stream (the bus). Returns 0 or AB_EINVAL
 * (malformed snapshot, another symbol: the book is left unchanged).
 */
int ab_book_load(struct ab_book *b, const struct ab_book_snapshot *s);

/* Accessors. O(1) unless stated. */
enum ab_book_state ab_book_state(const struct ab_book *b);
uint64_t ab_book_last_update_id(const struct ab_book *b); /* 0 unless LIVE */
const char *ab_book_symbol(const struct ab_book *b);
size_t ab_book_count(const struct ab_book *b, enum ab_book_side side);
size_t ab_book_buffered(const struct ab_book *b); /* events in the buffer */
bool ab_book_is_crossed(const struct ab_book *b); /* LIVE and best bid >= best ask */
void ab_book_get_stats(const struct ab_book *b, struct ab_book_stats *out);

/* Best level of a side into *out. Returns false (and leaves *out) when empty. */
bool ab_book_best(const struct ab_book *b, enum ab_book_side side, struct ab_level *out);

/*
 * Copies up to n best levels of a side into out (best first: bids
 * descending, asks ascending). Returns the number copied. O(n).
 */
size_t ab_book_top(const struct ab_book *b, enum ab_book_side side, struct ab_level *out, size_t n);

/*
 * Exports the top `depth` levels per side (depth 0: all) into *out, which the
 * caller owns afterwards and releases with ab_book_snapshot_deinit. Fills the
 * symbol and last_update_id. Returns 0, AB_ESTATE when the book is not LIVE,
 * or AB_ENOMEM (*out left zeroed). O(depth).
 */
int ab_book_export(const struct ab_book *b, size_t depth, struct ab_book_snapshot *out);

/* Static names for logs and the API: "empty", "buffering", "live"; etc. */
const char *ab_book_state_str(enum ab_book_state s);
const char *ab_book_action_str(enum ab_book_action a);
const char *ab_book_reason_str(enum ab_book_reason r);

#endif

/*
 * books: the book manager, one common/book.h state machine per symbol plus
 * the bookkeeping around REST snapshots. Pure logic: no I/O, no clock.
 *
 * The caller feeds what arrives and acts on the returned struct
 * books_effect:
 *
 *   publish_delta     the diff event was applied: forward it downstream
 *   publish_snapshot  the book (re)synchronised: export it and forward it
 *   status_changed    the symbol's book state changed (syncing, live,
 *                     resyncing): forward a status message
 *   fetch_snapshot    start GET /api/v3/depth for this symbol now and hand
 *                     the answer back with snapshot_gen
 *   resync            continuity was lost (gap, invalid event): count it
 *
 * Snapshot rules: one request per symbol in flight at a time; a snapshot is
 * requested only once the stream delivered (the book asks for it with
 * NEED_SNAPSHOT), so it is always taken after the stream is open. A
 * SNAPSHOT_TOO_OLD answer or a failed request asks again after retry_ms
 * (books_poll does that). books_reset (the connection was lost or replaced
 * without continuity) discards the book; an answer to a request made before
 * the reset is dropped (its generation is old) and a fresh one is requested
 * when the new connection delivers.
 *
 * Book states for status messages: syncing until the first snapshot is
 * loaded, live while synchronised, resyncing after a live book was lost.
 *
 * One thread at a time; the manager owns its books.
 */
#ifndef ABIDANCE_INGEST_BOOKS_H
#define ABIDANCE_INGEST_BOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/book.h"
#include "common/model.h"
#include "publish.h"

struct books; /* opaque */

struct books_effect {
    bool publish_delta;
    bool publish_snapshot;
    bool status_changed;
    bool fetch_snapshot;
    bool resync;
    uint32_t snapshot_gen;     /* with fetch_snapshot: pass back to books_on_snapshot */
    struct ab_book_result res; /* what the book said (for logs) */
};

/*
 * Creates books for n symbols (each valid; lim may be NULL). retry_ms is the
 * delay before another snapshot request after a failure or a too-old one.
 * Returns 0 (*out: free with books_free), AB_EINVAL or AB_ENOMEM.
 */
int books_new(const char (*symbols)[AB_SYMBOL_MAX], size_t n, const struct ab_book_limits *lim,
              int64_t retry_ms, struct books **out);

void books_free(struct books *b);

size_t books_count(const struct books *b);

/* Index of symbol. Returns 0 or AB_ENOTFOUND. */
int books_find(const struct books *b, const char *symbol, size_t *idx);

/*
 * Feeds one diff event (borrowed) for book idx at now_ms. *eff is always
 * filled. Returns 0, or the book's AB_EINVAL for a malformed event (then
 * eff->resync is set) or a wrong symbol.
 */
int books_on_delta(struct books *b, size_t idx, const struct ab_book_delta *d, int64_t now_ms,
                   struct books_effect *eff);

/*
 * Hands back a snapshot answer (borrowed) for the request of generation gen.
 * Returns 0 or AB_EINVAL (malformed snapshot: asked again later).
 */
int books_on_snapshot(struct books *b, size_t idx, uint32_t gen, const struct ab_book_snapshot *s,
                      int64_t now_ms, struct books_effect *eff);

/* The snapshot request of generation gen failed for good: ask again after retry_ms. */
void books_on_snapshot_failed(struct books *b, size_t idx, uint32_t gen, int64_t now_ms,
                              struct books_effect *eff);

/* Discards the book (connection lost): see the header comment. */
void books_reset(struct books *b, size_t idx, struct books_effect *eff);

/*
 * A diff event of this book was lost (its frame could not be decoded): the
 * book can no longer be trusted, and in a quiet market no later event might
 * reveal the gap. Discards it (as books_reset) and asks for a snapshot at
 * once; the snapshot is checked against what arrives meanwhile.
 */
void books_invalidate(struct books *b, size_t idx, int64_t now_ms, struct books_effect *eff);

/*
 * A (new) connection for this book is open: discard whatever the book holds
 * and ask for a snapshot at once, without waiting for the first event (in a
 * quiet market it may be long in coming). The snapshot is taken after the
 * stream opened, so it bridges: later events older than it are stale, the
 * first newer one continues it, and a gap is caught by the live rule.
 * Not counted as a resync.
 */
void books_sync_now(struct books *b, size_t idx, int64_t now_ms, struct books_effect *eff);

/* Starts a snapshot request that was waiting for its retry delay, if due. */
void books_poll(struct books *b, size_t idx, int64_t now_ms, struct books_effect *eff);

enum pub_book_state books_state(const struct books *b, size_t idx);

/* The underlying book (borrowed; valid until books_free). */
const struct ab_book *books_book(const struct books *b, size_t idx);

/* Resyncs counted so far for book idx. */
uint64_t books_resyncs(const struct books *b, size_t idx);

#endif

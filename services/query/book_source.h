/*
 * book_source: where GET /v1/book (and /v1/symbols) read order books from.
 *
 * The REST layer depends only on this small interface. Two sources exist:
 * the latest snapshot persisted in PostgreSQL (book_source_store), and the
 * in-memory live books fed by the bus (book_source_live, services/query/
 * live.h), which falls back to the persisted snapshot for a symbol it has
 * never seen.
 *
 * A source's get may be called from any REST worker thread at any time, so
 * an implementation must copy what it returns under its own lock.
 */
#ifndef ABIDANCE_QUERY_BOOK_SOURCE_H
#define ABIDANCE_QUERY_BOOK_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "common/model.h"
#include "store.h"

struct book_info {
    /* Static string: a live book's state ("syncing", "live", "resyncing",
     * "stale": live_book_state_name), or "snapshot" for a book read back
     * from storage. */
    const char *state;
    int64_t as_of_ms; /* when the book last changed (snapshot time), 0 when unknown */
};

/*
 * Fills *out with the book of symbol, at most depth levels per side (best
 * first; depth 0: every level). The caller releases
 * *out with ab_book_snapshot_deinit (also after an error). Returns 0,
 * AB_ENOTFOUND (no book for symbol), AB_EDB_RETRY (storage unreachable),
 * AB_ENOMEM or AB_EDB.
 */
typedef int (*book_source_get_cb)(void *arg, const char *symbol, size_t depth,
                                  struct ab_book_snapshot *out, struct book_info *info);

struct book_source {
    book_source_get_cb get;
    void *arg; /* borrowed; outlives every call */
};

/* A source reading the latest persisted snapshot through store (borrowed). */
struct book_source book_source_store(struct store *st);

struct live;
struct book_source_live_ctx {
    struct live *live;   /* borrowed */
    struct store *store; /* borrowed; NULL: no fallback */
};

/* A source reading the live books of ctx->live, falling back to the store's
 * snapshot for a symbol the live state has never seen. ctx (borrowed) must
 * outlive the source. */
struct book_source book_source_live(struct book_source_live_ctx *ctx);

#endif

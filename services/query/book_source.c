#include "book_source.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "live.h"

static int store_get(void *arg, const char *symbol, size_t depth, struct ab_book_snapshot *out,
                     struct book_info *info)
{
    struct store *st = arg;
    int64_t taken_at = 0;
    memset(out, 0, sizeof(*out));
    int rc = store_read_book_snapshot(st, symbol, out, &taken_at);
    if (rc < 0)
        return rc;
    /* Levels are stored best first: keeping the top is a truncation. */
    if (depth > 0 && out->n_bids > depth)
        out->n_bids = depth;
    if (depth > 0 && out->n_asks > depth)
        out->n_asks = depth;
    info->state = "snapshot";
    info->as_of_ms = taken_at;
    return 0;
}

struct book_source book_source_store(struct store *st)
{
    struct book_source s = {.get = store_get, .arg = st};
    return s;
}

static int live_get(void *arg, const char *symbol, size_t depth, struct ab_book_snapshot *out,
                    struct book_info *info)
{
    struct book_source_live_ctx *ctx = arg;
    struct live_book_info li;
    memset(&li, 0, sizeof(li));
    int rc = live_book_get(ctx->live, symbol, depth, out, &li);
    if (rc == AB_ENOTFOUND && ctx->store) {
        ab_book_snapshot_deinit(out);
        return store_get(ctx->store, symbol, depth, out, info);
    }
    if (rc < 0)
        return rc;
    info->state = live_book_state_name(li.state);
    info->as_of_ms = li.updated_ms;
    return 0;
}

struct book_source book_source_live(struct book_source_live_ctx *ctx)
{
    struct book_source s = {.get = live_get, .arg = ctx};
    return s;
}

/* GET /v1/book: the order book of one symbol from the configured book source. */
#include <string.h>

#include "api.h"
#include "common/err.h"
#include "reply.h"

static json_t *levels_json(const struct ab_level *lv, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *pair = json_pack("[o,o]", json_dec(lv[i].price), json_dec(lv[i].qty));
        if (!pair || json_array_append_new(arr, pair)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

enum MHD_Result api_book(const struct api_ctx *ctx, struct MHD_Connection *conn, const char *rest,
                         const struct params *p)
{
    (void)rest;
    char symbol[AB_SYMBOL_MAX];
    int64_t depth;
    struct api_error e;
    if (param_symbol(p, "symbol", symbol, &e) < 0 ||
        param_int(p, "depth", API_DEPTH_DEFAULT, 1, API_DEPTH_MAX, &depth, &e) < 0)
        return reply_api_error(conn, &e);

    struct ab_book_snapshot snap;
    struct book_info info = {0};
    memset(&snap, 0, sizeof(snap));
    int rc = ctx->books.get(ctx->books.arg, symbol, (size_t)depth, &snap, &info);
    if (rc == AB_ENOTFOUND) {
        ab_book_snapshot_deinit(&snap);
        return reply_error(conn, API_NOT_FOUND, NULL, "no order book for %s", symbol);
    }
    if (rc < 0) {
        ab_book_snapshot_deinit(&snap);
        return api_reply_store_error(conn, rc, "reading the book");
    }
    json_t *bids = levels_json(snap.bids, snap.n_bids);
    json_t *asks = levels_json(snap.asks, snap.n_asks);
    ab_book_snapshot_deinit(&snap);
    if (!bids || !asks) {
        json_decref(bids);
        json_decref(asks);
        return reply_error(conn, API_INTERNAL, NULL, "cannot build the book");
    }
    json_t *body = json_pack(
        "{s:s,s:I,s:s,s:o,s:o,s:o}", "symbol", symbol, "last_update_id",
        (json_int_t)snap.last_update_id, "state", info.state ? info.state : "unknown", "as_of",
        info.as_of_ms > 0 ? json_integer(info.as_of_ms) : json_null(), "bids", bids, "asks", asks);
    return reply_json(conn, 200, body);
}

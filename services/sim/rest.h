/*
 * rest: the simulator's Binance REST endpoints, independent of the network.
 *
 * One const route table maps paths to handlers and weights:
 *
 *   /api/v3/ping         1   {}
 *   /api/v3/time         1   {"serverTime":..}
 *   /api/v3/exchangeInfo 20  all symbols, or symbol= / symbols=["A","B"]
 *   /api/v3/depth        5/25/50/250 by limit (default 100, >5000 cut to 5000)
 *   /api/v1/depth        same as v3 (the legacy path the 2021 captures used)
 *   /api/v3/klines       2   symbol, interval, startTime, endTime, limit (500, max 1000)
 *   /api/v3/uiKlines     2   same as klines
 *
 * Validation follows Binance: a missing or empty mandatory parameter is
 * -1102, characters outside the legal pattern -1100, an unknown symbol
 * -1121, a bad interval -1120, startTime > endTime -1023, a repeated
 * parameter -1101; all with HTTP 400 and {"code":..,"msg":".."}. An unknown
 * path is a 404 (rest_handle returns AB_ENOTFOUND so the server may try its
 * own routes first). Every reply carries the used weight of the current
 * minute (X-MBX-USED-WEIGHT-1M and the legacy X-MBX-USED-WEIGHT).
 *
 * The data comes from a backend (the market model or a replay), so this
 * module only parses, validates and frames. One owner; no locking.
 */
#ifndef SIM_REST_H
#define SIM_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/interval.h"
#include "services/sim/market.h"
#include "services/sim/sbuf.h"

#define REST_PARAMS_MAX 32
#define REST_BODY_MAX   (8u * 1024u * 1024u) /* largest reply body (hard cap) */
#define REST_KLINES_MAX 1000
#define REST_KLINES_DEF 500
#define REST_DEPTH_DEF  100
#define REST_JSON_TYPE  "application/json;charset=UTF-8"

/* Where the data comes from. Every callback gets ud. */
struct rest_backend {
    void *ud;
    size_t (*n_symbols)(void *ud);
    const struct market_symbol *(*symbol)(void *ud, size_t i);
    int64_t (*server_time)(void *ud);
    /* Appends the depth body ({"lastUpdateId":..}) for limit 1..5000; 0 or AB_ENOMEM. */
    int (*depth)(void *ud, size_t sym, size_t limit, struct sbuf *body);
    /* Appends the klines array; 0, AB_ENOMEM, or AB_ENOTFOUND when klines are not served. */
    int (*klines)(void *ud, size_t sym, enum ab_interval iv, bool has_start, int64_t start,
                  bool has_end, int64_t end, size_t limit, struct sbuf *body);
};

/* One query parameter, both pointers borrowed (URL-decoded text). */
struct rest_param {
    const char *name;
    const char *value;
};

struct rest_request {
    const char *path; /* borrowed, without the query string */
    struct rest_param params[REST_PARAMS_MAX];
    size_t n_params;
};

/* A reply to send: status, body and the headers Binance sets. */
struct rest_reply {
    int status;               /* 200, 400, 404, 418, 429 */
    const char *content_type; /* static */
    int retry_after;          /* seconds for Retry-After, or -1 for none */
    int64_t used_weight;      /* value of X-MBX-USED-WEIGHT-1M */
    struct sbuf body;         /* owned by the reply: rest_reply_deinit */
};

/* Weight accounting over one-minute windows of the caller's clock. */
struct rest_weight {
    int64_t window; /* minute number of the current window */
    int64_t used;
};

/*
 * Prepares reply (body with `headroom` bytes reserved in front, for the
 * network layer). Returns 0 or AB_ENOMEM.
 */
int rest_reply_init(struct rest_reply *reply, size_t headroom);
void rest_reply_deinit(struct rest_reply *reply);

/*
 * Answers req into reply (initialised, empty). now_ms is the caller's clock
 * for the weight window. Returns 0 (the reply is complete, error replies
 * included), AB_ENOTFOUND for an unknown path (reply untouched) or AB_ENOMEM.
 */
int rest_handle(const struct rest_backend *be, struct rest_weight *w,
                const struct rest_request *req, int64_t now_ms, struct rest_reply *reply);

/*
 * Fills reply with an injected rate-limit answer: 429 (Too many requests) or
 * 418 (IP banned until now + retry_after), Retry-After and the -1003 body.
 */
int rest_fault_reply(int status, int retry_after, int64_t server_time, struct rest_weight *w,
                     int64_t now_ms, struct rest_reply *reply);

/* Fills reply with the 404 for an unknown path. */
int rest_not_found(struct rest_weight *w, int64_t now_ms, struct rest_reply *reply);

#endif

#include "services/sim/rest.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "services/sim/encode.h"

#define SYMBOL_PATTERN  "'^[A-Z0-9-_.]{1,20}$'"
#define NUMBER_PATTERN  "'^[0-9]{1,20}$'"
#define SYMBOLS_PATTERN "'^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'"

struct route {
    const char *path;
    int weight; /* 0: the handler sets it (depth) */
    int (*handler)(const struct rest_backend *be, const struct rest_request *req,
                   struct rest_reply *reply, int *weight);
};

static void charge(struct rest_weight *w, int64_t now_ms, int weight, struct rest_reply *reply)
{
    int64_t window = now_ms / 60000;
    if (window != w->window) {
        w->window = window;
        w->used = 0;
    }
    w->used += weight;
    reply->used_weight = w->used;
}

/* An error body with HTTP 400; returns 0 so the caller sends it. */
static int fail(struct rest_reply *reply, int code, const char *msg)
{
    sbuf_reset(&reply->body);
    reply->status = 400;
    encode_error(&reply->body, code, msg);
    return sbuf_err(&reply->body);
}

/* -1100 for a parameter with characters outside its legal pattern. */
static int fail_illegal(struct rest_reply *reply, const char *name, const char *pattern)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "Illegal characters found in parameter '%s'; legal range is %s.",
             name, pattern);
    return fail(reply, -1100, msg);
}

static const char *param(const struct rest_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_params; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

static bool symbol_legal(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 20)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.'))
            return false;
    return true;
}

/* Finds the symbol parameter; on any problem the error reply is filled and false returned. */
static bool want_symbol(const struct rest_backend *be, const struct rest_request *req,
                        struct rest_reply *reply, size_t *sym, int *rc)
{
    const char *s = param(req, "symbol");
    *rc = 0;
    if (!s || !*s) {
        *rc = fail(reply, -1102,
                   "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
        return false;
    }
    if (!symbol_legal(s)) {
        *rc = fail_illegal(reply, "symbol", SYMBOL_PATTERN);
        return false;
    }
    size_t n = be->n_symbols(be->ud);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(be->symbol(be->ud, i)->symbol, s) == 0) {
            *sym = i;
            return true;
        }
    }
    *rc = fail(reply, -1121, "Invalid symbol.");
    return false;
}

/*
 * An optional unsigned integer parameter. Returns 1 when present (value in
 * *out), 0 when absent, -1 when the error reply was filled.
 */
static int want_uint(const struct rest_request *req, const char *name, struct rest_reply *reply,
                     int64_t *out)
{
    const char *s = param(req, name);
    if (!s)
        return 0;
    size_t n = strlen(s);
    bool ok = n >= 1 && n <= 20;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= '0' && s[i] <= '9';
    if (ok) {
        errno = 0;
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        ok = errno == 0 && end && *end == '\0';
        *out = v;
    }
    if (!ok) {
        fail_illegal(reply, name, NUMBER_PATTERN);
        return -1;
    }
    return 1;
}

static int h_ping(const struct rest_backend *be, const struct rest_request *req,
                  struct rest_reply *reply, int *weight)
{
    sbuf_puts(&reply->body, "{}");
    return sbuf_err(&reply->body);
}

static int h_time(const struct rest_backend *be, const struct rest_request *req,
                  struct rest_reply *reply, int *weight)
{
    sbuf_puts(&reply->body, "{\"serverTime\":");
    sbuf_i64(&reply->body, be->server_time(be->ud));
    sbuf_putc(&reply->body, '}');
    return sbuf_err(&reply->body);
}

static int h_exchange_info(const struct rest_backend *be, const struct rest_request *req,
                           struct rest_reply *reply, int *weight)
{
    size_t n = be->n_symbols(be->ud);
    const struct market_symbol **list = calloc(n ? n : 1, sizeof(*list));
    if (!list)
        return AB_ENOMEM;
    size_t k = 0;
    int rc = 0;
    const char *one = param(req, "symbol"), *many = param(req, "symbols");
    json_t *arr = NULL;
    if (one && many) {
        rc = fail(reply, -1128, "Combination of optional parameters invalid.");
        goto out;
    }
    if (one) {
        size_t sym;
        if (!want_symbol(be, req, reply, &sym, &rc))
            goto out;
        list[k++] = be->symbol(be->ud, sym);
    } else if (many) {
        arr = json_loads(many, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > n) {
            rc = fail(reply, json_is_array(arr) && json_array_size(arr) > n ? -1121 : -1100,
                      json_is_array(arr) && json_array_size(arr) > n
                          ? "Invalid symbol."
                          : "Illegal characters found in parameter 'symbols'; legal range "
                            "is " SYMBOLS_PATTERN ".");
            goto out;
        }
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const char *s = json_string_value(json_array_get(arr, i));
            size_t j;
            if (!s || !symbol_legal(s)) {
                rc = fail_illegal(reply, "symbols", SYMBOLS_PATTERN);
                goto out;
            }
            for (j = 0; j < n; j++)
                if (strcmp(be->symbol(be->ud, j)->symbol, s) == 0)
                    break;
            if (j == n) {
                rc = fail(reply, -1121, "Invalid symbol.");
                goto out;
            }
            list[k++] = be->symbol(be->ud, j);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            list[k++] = be->symbol(be->ud, i);
    }
    encode_exchange_info(&reply->body, list, k, be->server_time(be->ud));
    rc = sbuf_err(&reply->body);
out:
    json_decref(arr);
    free(list);
    return rc;
}

static int depth_weight(int64_t limit)
{
    if (limit <= 100)
        return 5;
    if (limit <= 500)
        return 25;
    if (limit <= 1000)
        return 50;
    return 250;
}

static int h_depth(const struct rest_backend *be, const struct rest_request *req,
                   struct rest_reply *reply, int *weight)
{
    int64_t limit = REST_DEPTH_DEF;
    size_t sym;
    int rc;
    *weight = depth_weight(limit);
    if (!want_symbol(be, req, reply, &sym, &rc))
        return rc;
    if (want_uint(req, "limit", reply, &limit) < 0)
        return 0;
    if (limit < 1)
        limit = 1;
    if (limit > MARKET_DEPTH_MAX)
        limit = MARKET_DEPTH_MAX;
    *weight = depth_weight(limit);
    return be->depth(be->ud, sym, (size_t)limit, &reply->body);
}

static int h_klines(const struct rest_backend *be, const struct rest_request *req,
                    struct rest_reply *reply, int *weight)
{
    size_t sym;
    int rc;
    if (!want_symbol(be, req, reply, &sym, &rc))
        return rc;
    const char *ivs = param(req, "interval");
    enum ab_interval iv;
    if (!ivs || !*ivs)
        return fail(reply, -1102,
                    "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.");
    if (ab_interval_parse(ivs, strlen(ivs), &iv) != 0)
        return fail(reply, -1120, "Invalid interval.");
    int64_t start = 0, end = 0, limit = REST_KLINES_DEF;
    int hs = want_uint(req, "startTime", reply, &start);
    if (hs < 0)
        return 0;
    int he = want_uint(req, "endTime", reply, &end);
    if (he < 0)
        return 0;
    if (want_uint(req, "limit", reply, &limit) < 0)
        return 0;
    if (hs && he && start > end)
        return fail(reply, -1023, "Start time is greater than end time.");
    if (limit < 1)
        limit = 1;
    if (limit > REST_KLINES_MAX)
        limit = REST_KLINES_MAX;
    rc = be->klines(be->ud, sym, iv, hs == 1, start, he == 1, end, (size_t)limit, &reply->body);
    if (rc == AB_ENOTFOUND)
        return fail(reply, -1000, "Klines are not available in replay mode.");
    return rc;
}

static const struct route routes[] = {
    {"/api/v3/ping", 1, h_ping},
    {"/api/v3/time", 1, h_time},
    {"/api/v3/exchangeInfo", 20, h_exchange_info},
    {"/api/v3/depth", 0, h_depth},
    {"/api/v1/depth", 0, h_depth},
    {"/api/v3/klines", 2, h_klines},
    {"/api/v3/uiKlines", 2, h_klines},
};

int rest_reply_init(struct rest_reply *reply, size_t headroom)
{
    memset(reply, 0, sizeof(*reply));
    reply->status = 200;
    reply->content_type = REST_JSON_TYPE;
    reply->retry_after = -1;
    return sbuf_init(&reply->body, headroom, 4096, REST_BODY_MAX);
}

void rest_reply_deinit(struct rest_reply *reply)
{
    sbuf_deinit(&reply->body);
}

int rest_handle(const struct rest_backend *be, struct rest_weight *w,
                const struct rest_request *req, int64_t now_ms, struct rest_reply *reply)
{
    const struct route *r = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(routes[i].path, req->path) == 0)
            r = &routes[i];
    if (!r)
        return AB_ENOTFOUND;
    int weight = r->weight ? r->weight : 1;
    int rc = 0;
    bool dup = false;
    for (size_t i = 0; i < req->n_params && !dup; i++)
        for (size_t j = i + 1; j < req->n_params && !dup; j++)
            dup = strcmp(req->params[i].name, req->params[j].name) == 0;
    if (dup)
        rc = fail(reply, -1101, "Duplicate values for a parameter detected.");
    else
        rc = r->handler(be, req, reply, &weight);
    charge(w, now_ms, weight, reply);
    return rc;
}

int rest_fault_reply(int status, int retry_after, int64_t server_time, struct rest_weight *w,
                     int64_t now_ms, struct rest_reply *reply)
{
    char msg[256];
    if (status == 418)
        snprintf(msg, sizeof(msg),
                 "Way too many requests; IP(127.0.0.1) banned until %lld. Please use the "
                 "websocket for live updates to avoid bans.",
                 (long long)(server_time + retry_after * 1000LL));
    else
        snprintf(msg, sizeof(msg),
                 "Too much request weight used; current limit is 6000 request weight per 1 "
                 "MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.");
    sbuf_reset(&reply->body);
    encode_error(&reply->body, -1003, msg);
    reply->status = status;
    reply->retry_after = retry_after;
    charge(w, now_ms, 1, reply);
    return sbuf_err(&reply->body);
}

int rest_not_found(struct rest_weight *w, int64_t now_ms, struct rest_reply *reply)
{
    sbuf_reset(&reply->body);
    sbuf_puts(&reply->body, "<html><body><h2>404 Not found</h2></body></html>");
    reply->status = 404;
    reply->content_type = "text/html";
    charge(w, now_ms, 1, reply);
    return sbuf_err(&reply->body);
}

/* ws_request: stream client requests and the request rate limiter (see ws_request.h). */
#include "ws_request.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static const char *const error_names[WS_REQ_ERROR_COUNT] = {
    [WS_REQ_OK] = "ok",
    [WS_REQ_BAD_JSON] = "bad_json",
    [WS_REQ_BAD_REQUEST] = "bad_request",
    [WS_REQ_UNKNOWN_OP] = "unknown_op",
    [WS_REQ_BAD_CHANNEL] = "bad_channel",
    [WS_REQ_UNKNOWN_SYMBOL] = "unknown_symbol",
    [WS_REQ_UNKNOWN_INTERVAL] = "unknown_interval",
    [WS_REQ_TOO_MANY_CHANNELS] = "too_many_channels",
};

const char *ws_req_error_name(enum ws_req_error e)
{
    return (unsigned)e < WS_REQ_ERROR_COUNT ? error_names[e] : "internal";
}

static bool symbol_tracked(const struct ws_request_limits *lim, const char *sym)
{
    if (!lim->symbols || lim->symbols->n == 0)
        return true;
    for (size_t i = 0; i < lim->symbols->n; i++)
        if (strcmp(lim->symbols->v[i], sym) == 0)
            return true;
    return false;
}

static bool interval_tracked(const struct ws_request_limits *lim, enum ab_interval iv)
{
    if (!lim->intervals || lim->intervals->n == 0)
        return true;
    for (size_t i = 0; i < lim->intervals->n; i++)
        if (lim->intervals->v[i] == iv)
            return true;
    return false;
}

/* Channel names quoted in messages: printable ASCII only, cut at 64 bytes. */
static void show_name(const char *name, size_t len, char *buf, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < cap && i < WS_KEY_MAX; i++) {
        unsigned char ch = (unsigned char)name[i];
        buf[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    buf[n] = '\0';
}

enum ws_req_error ws_channel_parse(const char *name, size_t len,
                                   const struct ws_request_limits *lim, struct ws_chan *out,
                                   char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    char shown[WS_KEY_MAX + 1];
    show_name(name, len, shown, sizeof(shown));
    if (len == 0 || len >= WS_KEY_MAX || memchr(name, '\0', len)) {
        snprintf(why, why_len,
                 "channel names are \"candles:<SYMBOL>:<interval>\" or \"book:<SYMBOL>\" "
                 "(at most %d bytes)",
                 WS_KEY_MAX - 1);
        return WS_REQ_BAD_CHANNEL;
    }
    const char *sym;
    size_t sym_len;
    if (len > 8 && memcmp(name, "candles:", 8) == 0) {
        sym = name + 8;
        const char *colon = memchr(sym, ':', len - 8);
        if (!colon) {
            snprintf(why, why_len, "channel %s: expected candles:<SYMBOL>:<interval>", shown);
            return WS_REQ_BAD_CHANNEL;
        }
        sym_len = (size_t)(colon - sym);
        size_t iv_len = len - 8 - sym_len - 1;
        out->kind = WS_CH_CANDLES;
        if (ab_interval_parse(colon + 1, iv_len, &out->interval) != 0) {
            snprintf(why, why_len,
                     "channel %s: unknown interval (one of 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h "
                     "12h 1d 3d 1w 1M)",
                     shown);
            return WS_REQ_BAD_CHANNEL;
        }
    } else if (len > 5 && memcmp(name, "book:", 5) == 0) {
        sym = name + 5;
        sym_len = len - 5;
        out->kind = WS_CH_BOOK;
    } else {
        snprintf(why, why_len,
                 "channel %s: names are \"candles:<SYMBOL>:<interval>\" or \"book:<SYMBOL>\"",
                 shown);
        return WS_REQ_BAD_CHANNEL;
    }
    if (!ab_symbol_valid(sym, sym_len)) {
        snprintf(why, why_len, "channel %s: a symbol is upper-case letters and digits", shown);
        return WS_REQ_BAD_CHANNEL;
    }
    memcpy(out->symbol, sym, sym_len);
    out->symbol[sym_len] = '\0';
    if (!symbol_tracked(lim, out->symbol)) {
        snprintf(why, why_len, "channel %s: symbol %s is not tracked", shown, out->symbol);
        return WS_REQ_UNKNOWN_SYMBOL;
    }
    if (out->kind == WS_CH_CANDLES && !interval_tracked(lim, out->interval)) {
        snprintf(why, why_len, "channel %s: interval %s is not tracked", shown,
                 ab_interval_name(out->interval));
        return WS_REQ_UNKNOWN_INTERVAL;
    }
    memcpy(out->key, name, len);
    out->key[len] = '\0';
    return WS_REQ_OK;
}

/* Records the refusal; returns AB_EINVAL. */
static int refuse(struct ws_request *out, enum ws_req_error e, char *why, size_t why_len,
                  const char *msg)
{
    out->error = e;
    if (msg)
        snprintf(why, why_len, "%s", msg);
    return AB_EINVAL;
}

static int parse_channels(json_t *root, const struct ws_request_limits *lim, struct ws_request *out,
                          char *why, size_t why_len)
{
    json_t *arr = json_object_get(root, "channels");
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return refuse(out, WS_REQ_BAD_REQUEST, why, why_len,
                      "\"channels\" must be a non-empty array of strings");
    size_t n = json_array_size(arr);
    if (n > lim->max_channels) {
        snprintf(why, why_len, "at most %zu channels per connection", lim->max_channels);
        return refuse(out, WS_REQ_TOO_MANY_CHANNELS, why, why_len, NULL);
    }
    out->chans = calloc(n, sizeof(*out->chans));
    if (!out->chans)
        return AB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v))
            return refuse(out, WS_REQ_BAD_REQUEST, why, why_len,
                          "\"channels\" must be a non-empty array of strings");
        struct ws_chan cn;
        enum ws_req_error e =
            ws_channel_parse(json_string_value(v), json_string_length(v), lim, &cn, why, why_len);
        if (e != WS_REQ_OK)
            return refuse(out, e, why, why_len, NULL);
        bool dup = false;
        for (size_t k = 0; k < out->n && !dup; k++)
            dup = strcmp(out->chans[k].key, cn.key) == 0;
        if (!dup)
            out->chans[out->n++] = cn;
    }
    return 0;
}

/* Messages quote client bytes (jansson's "near '...'"): keep them printable
 * ASCII, so they always make a valid JSON string. */
static void sanitize(char *why, size_t why_len)
{
    for (size_t i = 0; i < why_len && why[i]; i++)
        if ((unsigned char)why[i] < 0x20 || (unsigned char)why[i] > 0x7e)
            why[i] = '?';
}

int ws_request_parse(const char *text, size_t len, const struct ws_request_limits *lim,
                     struct ws_request *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (why_len)
        why[0] = '\0';
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(why, why_len, "not valid JSON: %s", jerr.text);
        sanitize(why, why_len);
        out->error = WS_REQ_BAD_JSON;
        return AB_EINVAL;
    }
    int rc;
    if (!json_is_object(root)) {
        rc = refuse(out, WS_REQ_BAD_REQUEST, why, why_len, "a request is a JSON object");
        goto out;
    }
    json_t *id = json_object_get(root, "id");
    if (json_is_integer(id)) {
        out->id.kind = WS_ID_INT;
        out->id.num = (int64_t)json_integer_value(id);
    } else if (json_is_string(id) && json_string_length(id) <= WS_ID_MAX) {
        out->id.kind = WS_ID_STRING;
        out->id.len = json_string_length(id);
        memcpy(out->id.str, json_string_value(id), out->id.len);
        out->id.str[out->id.len] = '\0';
    } else if (id) {
        rc = refuse(out, WS_REQ_BAD_REQUEST, why, why_len,
                    "\"id\" must be an integer or a string of <= 64 bytes");
        goto out;
    }
    const char *op = json_string_value(json_object_get(root, "op"));
    if (!op) {
        rc = refuse(out, WS_REQ_BAD_REQUEST, why, why_len, "\"op\" must be a string");
    } else if (strcmp(op, "subscribe") == 0 || strcmp(op, "unsubscribe") == 0) {
        out->op = op[0] == 's' ? WS_OP_SUBSCRIBE : WS_OP_UNSUBSCRIBE;
        rc = parse_channels(root, lim, out, why, why_len);
    } else if (strcmp(op, "ping") == 0) {
        out->op = WS_OP_PING;
        rc = 0;
    } else {
        rc = refuse(out, WS_REQ_UNKNOWN_OP, why, why_len,
                    "\"op\" is one of subscribe, unsubscribe, ping");
    }
out:
    json_decref(root);
    sanitize(why, why_len);
    if (rc != 0) {
        free(out->chans);
        out->chans = NULL;
        out->n = 0;
    }
    return rc;
}

void ws_request_free(struct ws_request *r)
{
    if (!r)
        return;
    free(r->chans);
    r->chans = NULL;
    r->n = 0;
}

/* ---- token bucket ---- */

void ws_bucket_init(struct ws_bucket *b, unsigned burst, int64_t now_ms)
{
    b->milli = (int64_t)burst * 1000;
    b->last_ms = now_ms;
}

bool ws_bucket_take(struct ws_bucket *b, unsigned rate, unsigned burst, int64_t now_ms)
{
    if (rate == 0)
        return true;
    if (rate > WS_RATE_MAX)
        rate = WS_RATE_MAX;
    if (burst > WS_BURST_MAX)
        burst = WS_BURST_MAX;
    int64_t cap = (int64_t)burst * 1000;
    if (now_ms > b->last_ms) {
        /* Refilling a whole bucket takes at most cap / rate ms; beyond that the bucket
         * is full whatever the gap (and the product cannot overflow). */
        int64_t elapsed = now_ms - b->last_ms;
        if (elapsed > cap / rate + 1)
            b->milli = cap;
        else
            b->milli += elapsed * (int64_t)rate;
        b->last_ms = now_ms;
    }
    if (b->milli > cap)
        b->milli = cap;
    if (b->milli < 1000)
        return false;
    b->milli -= 1000;
    return true;
}

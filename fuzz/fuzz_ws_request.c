/*
 * Fuzz target for the stream's client request parser
 * (services/query/ws_request.h). Byte 0 sets the limits: bits 0-2 the
 * channel cap (1..8, or 100 with bit 3), bit 4 a tracked list (BTCUSDT,
 * ETHUSDT; 1m, 1h) instead of "anything well-formed". The rest is one client
 * text message.
 *
 * Checked: the result contract (rc, error, a printable message), every
 * accepted channel against a grammar oracle written from api/websocket.md,
 * distinct keys within the cap, the id rules, what jansson alone says about
 * the text (not JSON -> bad_json, not an object -> bad_request, ping with a
 * good id -> accepted), determinism, and a round trip: an accepted request
 * written back as JSON parses to the same request.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fuzz/targets.h"
#include "services/query/ws_request.h"

static const char *const wr_intervals[] = {"1s", "1m", "3m", "5m",  "15m", "30m", "1h", "2h",
                                           "4h", "6h", "8h", "12h", "1d",  "3d",  "1w", "1M"};
#define WR_N_INTERVALS (sizeof(wr_intervals) / sizeof(wr_intervals[0]))

static bool wr_symbol(const char *s, size_t n, bool tracked)
{
    if (n < 1 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    if (!tracked)
        return true;
    return (n == 7 && memcmp(s, "BTCUSDT", 7) == 0) || (n == 7 && memcmp(s, "ETHUSDT", 7) == 0);
}

/* -1: not an interval name; else its index in wr_intervals. */
static int wr_interval(const char *s, size_t n)
{
    for (size_t i = 0; i < WR_N_INTERVALS; i++)
        if (strlen(wr_intervals[i]) == n && memcmp(wr_intervals[i], s, n) == 0)
            return (int)i;
    return -1;
}

/* The oracle: is name an acceptable channel under these limits? */
static bool wr_channel_ok(const char *name, size_t n, bool tracked)
{
    if (n >= WS_KEY_MAX || memchr(name, '\0', n))
        return false;
    if (n > 5 && memcmp(name, "book:", 5) == 0)
        return wr_symbol(name + 5, n - 5, tracked);
    if (n > 8 && memcmp(name, "candles:", 8) == 0) {
        const char *colon = memchr(name + 8, ':', n - 8);
        if (!colon)
            return false;
        size_t sym_n = (size_t)(colon - (name + 8));
        const char *iv = colon + 1;
        size_t iv_n = n - 8 - sym_n - 1;
        int k = wr_interval(iv, iv_n);
        if (k < 0 || !wr_symbol(name + 8, sym_n, tracked))
            return false;
        return !tracked || (iv_n == 2 && (memcmp(iv, "1m", 2) == 0 || memcmp(iv, "1h", 2) == 0));
    }
    return false;
}

static void wr_check_printable(const char *why, size_t cap)
{
    AB_FUZZ_CHECK(ab_fuzz_terminated(why, cap));
    for (size_t i = 0; why[i]; i++)
        AB_FUZZ_CHECK((unsigned char)why[i] >= 0x20 && (unsigned char)why[i] <= 0x7e);
}

static void wr_check_id(const struct ws_id *id)
{
    AB_FUZZ_CHECK(id->kind == WS_ID_NONE || id->kind == WS_ID_INT || id->kind == WS_ID_STRING);
    if (id->kind == WS_ID_STRING) {
        AB_FUZZ_CHECK(id->len <= WS_ID_MAX);
        AB_FUZZ_CHECK(ab_fuzz_terminated(id->str, sizeof(id->str)));
        AB_FUZZ_CHECK(strlen(id->str) == id->len);
        AB_FUZZ_CHECK(ab_fuzz_utf8_valid(id->str, id->len));
    }
}

static bool wr_same(const struct ws_request *a, int rc_a, const struct ws_request *b, int rc_b)
{
    if (rc_a != rc_b || a->error != b->error || a->id.kind != b->id.kind || a->n != b->n)
        return false;
    if (a->id.kind == WS_ID_INT && a->id.num != b->id.num)
        return false;
    if (a->id.kind == WS_ID_STRING &&
        (a->id.len != b->id.len || memcmp(a->id.str, b->id.str, a->id.len) != 0))
        return false;
    if (rc_a == 0 && a->op != b->op)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct ws_chan *x = &a->chans[i], *y = &b->chans[i];
        if (strcmp(x->key, y->key) != 0 || x->kind != y->kind || strcmp(x->symbol, y->symbol) ||
            (x->kind == WS_CH_CANDLES && x->interval != y->interval))
            return false;
    }
    return true;
}

/* Writes an accepted request back as JSON (malloc'd text). */
static char *wr_write_back(const struct ws_request *r)
{
    static const char *const ops[] = {"subscribe", "unsubscribe", "ping"};
    json_t *o = json_object();
    AB_FUZZ_CHECK(o != NULL);
    json_object_set_new(o, "op", json_string(ops[r->op]));
    if (r->id.kind == WS_ID_INT)
        json_object_set_new(o, "id", json_integer((json_int_t)r->id.num));
    else if (r->id.kind == WS_ID_STRING)
        json_object_set_new(o, "id", json_stringn(r->id.str, r->id.len));
    if (r->op != WS_OP_PING) {
        json_t *a = json_array();
        for (size_t i = 0; i < r->n; i++)
            json_array_append_new(a, json_string(r->chans[i].key));
        json_object_set_new(o, "channels", a);
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    AB_FUZZ_CHECK(text != NULL);
    return text;
}

/* What jansson alone says about the text. */
static void wr_check_against_jansson(const char *text, size_t len, const struct ws_request *r,
                                     int rc, bool tracked, size_t max_channels)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        AB_FUZZ_CHECK(rc == AB_EINVAL && r->error == WS_REQ_BAD_JSON);
        return;
    }
    AB_FUZZ_CHECK(r->error != WS_REQ_BAD_JSON);
    if (!json_is_object(root)) {
        AB_FUZZ_CHECK(r->error == WS_REQ_BAD_REQUEST && r->id.kind == WS_ID_NONE);
        goto out;
    }
    json_t *id = json_object_get(root, "id");
    bool id_ok =
        !id || json_is_integer(id) || (json_is_string(id) && json_string_length(id) <= WS_ID_MAX);
    if (!id_ok) {
        AB_FUZZ_CHECK(r->error == WS_REQ_BAD_REQUEST && r->id.kind == WS_ID_NONE);
        goto out;
    }
    AB_FUZZ_CHECK(r->id.kind == (!id                   ? WS_ID_NONE
                                 : json_is_integer(id) ? WS_ID_INT
                                                       : WS_ID_STRING));
    if (json_is_integer(id))
        AB_FUZZ_CHECK(r->id.num == (int64_t)json_integer_value(id));
    const char *op = json_string_value(json_object_get(root, "op"));
    if (!op) {
        AB_FUZZ_CHECK(r->error == WS_REQ_BAD_REQUEST);
        goto out;
    }
    bool sub = strcmp(op, "subscribe") == 0, unsub = strcmp(op, "unsubscribe") == 0;
    if (strcmp(op, "ping") == 0) {
        AB_FUZZ_CHECK(rc == 0 && r->op == WS_OP_PING && r->n == 0 && r->chans == NULL);
        goto out;
    }
    if (!sub && !unsub) {
        AB_FUZZ_CHECK(r->error == WS_REQ_UNKNOWN_OP);
        goto out;
    }
    json_t *arr = json_object_get(root, "channels");
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        AB_FUZZ_CHECK(r->error == WS_REQ_BAD_REQUEST);
        goto out;
    }
    if (json_array_size(arr) > max_channels) {
        AB_FUZZ_CHECK(r->error == WS_REQ_TOO_MANY_CHANNELS);
        goto out;
    }
    /* Every entry a good string: accepted, with the distinct names in order. */
    bool all_ok = true;
    for (size_t i = 0; i < json_array_size(arr) && all_ok; i++) {
        json_t *v = json_array_get(arr, i);
        all_ok = json_is_string(v) &&
                 wr_channel_ok(json_string_value(v), json_string_length(v), tracked);
    }
    AB_FUZZ_CHECK((rc == 0) == all_ok);
    if (rc != 0) {
        AB_FUZZ_CHECK(r->error == WS_REQ_BAD_REQUEST || r->error == WS_REQ_BAD_CHANNEL ||
                      r->error == WS_REQ_UNKNOWN_SYMBOL || r->error == WS_REQ_UNKNOWN_INTERVAL);
        goto out;
    }
    AB_FUZZ_CHECK(r->op == (sub ? WS_OP_SUBSCRIBE : WS_OP_UNSUBSCRIBE));
    size_t k = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *name = json_string_value(json_array_get(arr, i));
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(json_string_value(json_array_get(arr, j)), name) == 0;
        if (seen)
            continue;
        AB_FUZZ_CHECK(k < r->n && strcmp(r->chans[k].key, name) == 0);
        k++;
    }
    AB_FUZZ_CHECK(k == r->n);
out:
    json_decref(root);
}

int ab_fuzz_ws_request(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    size_t max_channels = ctl & 0x08 ? 100 : (size_t)(ctl & 0x07) + 1;
    bool tracked = (ctl & 0x10) != 0;
    struct ab_config_symbols syms = {.n = 2};
    snprintf(syms.v[0], AB_SYMBOL_MAX, "BTCUSDT");
    snprintf(syms.v[1], AB_SYMBOL_MAX, "ETHUSDT");
    struct ab_config_intervals ivs = {.v = {AB_I_1M, AB_I_1H}, .n = 2};
    struct ws_request_limits lim = {.max_channels = max_channels,
                                    .symbols = tracked ? &syms : NULL,
                                    .intervals = tracked ? &ivs : NULL};
    /* A private copy without a terminator: the parser must respect len. */
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    AB_FUZZ_CHECK(text != NULL);
    if (len)
        memcpy(text, data + 1, len);

    struct ws_request r;
    char why[256];
    memset(why, 'x', sizeof(why));
    int rc = ws_request_parse(text, len, &lim, &r, why, sizeof(why));
    AB_FUZZ_CHECK(rc == 0 || rc == AB_EINVAL || rc == AB_ENOMEM);
    AB_FUZZ_CHECK((rc == 0) == (r.error == WS_REQ_OK));
    AB_FUZZ_CHECK((unsigned)r.error < WS_REQ_ERROR_COUNT);
    wr_check_printable(why, sizeof(why));
    if (rc == AB_EINVAL)
        AB_FUZZ_CHECK(why[0] != '\0' && strcmp(ws_req_error_name(r.error), "ok") != 0);
    wr_check_id(&r.id);
    if (rc != 0) {
        AB_FUZZ_CHECK(r.chans == NULL && r.n == 0);
    } else if (r.op == WS_OP_PING) {
        AB_FUZZ_CHECK(r.chans == NULL && r.n == 0);
    } else {
        AB_FUZZ_CHECK(r.op == WS_OP_SUBSCRIBE || r.op == WS_OP_UNSUBSCRIBE);
        AB_FUZZ_CHECK(r.n >= 1 && r.n <= max_channels && r.chans != NULL);
        for (size_t i = 0; i < r.n; i++) {
            const struct ws_chan *c = &r.chans[i];
            AB_FUZZ_CHECK(ab_fuzz_terminated(c->key, sizeof(c->key)));
            size_t n = strlen(c->key);
            AB_FUZZ_CHECK(wr_channel_ok(c->key, n, tracked));
            AB_FUZZ_CHECK(c->kind == (c->key[0] == 'b' ? WS_CH_BOOK : WS_CH_CANDLES));
            char again[WS_KEY_MAX];
            if (c->kind == WS_CH_BOOK) {
                snprintf(again, sizeof(again), "book:%s", c->symbol);
            } else {
                AB_FUZZ_CHECK((unsigned)c->interval < WR_N_INTERVALS);
                snprintf(again, sizeof(again), "candles:%s:%s", c->symbol,
                         wr_intervals[c->interval]);
            }
            AB_FUZZ_CHECK(strcmp(again, c->key) == 0);
            for (size_t j = 0; j < i; j++)
                AB_FUZZ_CHECK(strcmp(r.chans[j].key, c->key) != 0);
        }
    }
    if (rc != AB_ENOMEM)
        wr_check_against_jansson(text, len, &r, rc, tracked, max_channels);

    /* Deterministic. */
    struct ws_request r2;
    char why2[256];
    int rc2 = ws_request_parse(text, len, &lim, &r2, why2, sizeof(why2));
    if (rc != AB_ENOMEM && rc2 != AB_ENOMEM) {
        AB_FUZZ_CHECK(wr_same(&r, rc, &r2, rc2));
        AB_FUZZ_CHECK(strcmp(why, why2) == 0);
    }
    ws_request_free(&r2);

    /* An accepted request written back parses to itself. */
    if (rc == 0) {
        char *back = wr_write_back(&r);
        struct ws_request r3;
        int rc3 = ws_request_parse(back, strlen(back), &lim, &r3, why2, sizeof(why2));
        AB_FUZZ_CHECK(rc3 == AB_ENOMEM || wr_same(&r, rc, &r3, rc3));
        ws_request_free(&r3);
        free(back);
    }

    /* The rate limiter, driven by the same bytes: never more than the burst
     * plus what the elapsed time refilled. */
    struct ws_bucket b;
    unsigned rate = (unsigned)(ctl >> 5) * 3, burst = (unsigned)(ctl & 0x07) + 1;
    int64_t t = 0;
    ws_bucket_init(&b, burst, t);
    uint64_t taken = 0;
    for (size_t i = 0; i < len && i < 256; i++) {
        t += (unsigned char)text[i] % 50;
        taken += ws_bucket_take(&b, rate, burst, t);
        AB_FUZZ_CHECK(b.milli >= 0 && b.milli <= (int64_t)burst * 1000);
        if (rate)
            AB_FUZZ_CHECK(taken * 1000 <= (uint64_t)burst * 1000 + (uint64_t)t * rate);
    }
    ws_request_free(&r);
    ws_request_free(&r);
    free(text);
    return 0;
}

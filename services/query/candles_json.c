/* candles_json: direct writer and cache of /v1/candles bodies (see candles_json.h). */
#include "candles_json.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/err.h"

/* ---- writer: one growing body, capped at CANDLES_JSON_MAX ---- */

struct jw {
    struct candles_body *b; /* owned until handed out */
    size_t cap;             /* bytes available in b->data */
    int err;                /* first error (AB_ERANGE, AB_ENOMEM) */
};

static void jw_grow(struct jw *w, size_t need)
{
    if (need > CANDLES_JSON_MAX) {
        w->err = AB_ERANGE;
        return;
    }
    size_t want = w->cap ? w->cap : 256;
    while (want < need)
        want *= 2;
    if (want > CANDLES_JSON_MAX)
        want = CANDLES_JSON_MAX;
    struct candles_body *b = realloc(w->b, sizeof(*b) + want);
    if (!b) {
        w->err = AB_ENOMEM;
        return;
    }
    w->b = b;
    w->cap = want;
}

static void jw_put(struct jw *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if (w->b->len + n > w->cap) {
        jw_grow(w, w->b->len + n);
        if (w->err)
            return;
    }
    memcpy(w->b->data + w->b->len, s, n);
    w->b->len += n;
}

#define JW_LIT(w, lit) jw_put((w), (lit), sizeof(lit) - 1)

/* A signed integer as jansson prints it (%lld). */
static void jw_i64(struct jw *w, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    jw_put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* "<decimal>" (the key and colon are written by the caller). */
static void jw_dec(struct jw *w, struct ab_dec d)
{
    char num[AB_DEC_STR_MAX + 2];
    num[0] = '"';
    size_t n = ab_dec_format(d, num + 1);
    num[n + 1] = '"';
    jw_put(w, num, n + 2);
}

static void jw_candle(struct jw *w, const struct ab_candle *c)
{
    JW_LIT(w, "{\"open_time\":");
    jw_i64(w, c->open_time);
    JW_LIT(w, ",\"close_time\":");
    jw_i64(w, c->close_time);
    JW_LIT(w, ",\"open\":");
    jw_dec(w, c->open);
    JW_LIT(w, ",\"high\":");
    jw_dec(w, c->high);
    JW_LIT(w, ",\"low\":");
    jw_dec(w, c->low);
    JW_LIT(w, ",\"close\":");
    jw_dec(w, c->close);
    JW_LIT(w, ",\"volume\":");
    jw_dec(w, c->volume);
    JW_LIT(w, ",\"quote_volume\":");
    jw_dec(w, c->quote_volume);
    JW_LIT(w, ",\"taker_buy_volume\":");
    jw_dec(w, c->taker_buy_volume);
    JW_LIT(w, ",\"taker_buy_quote_volume\":");
    jw_dec(w, c->taker_buy_quote_volume);
    JW_LIT(w, ",\"num_trades\":");
    jw_i64(w, c->num_trades);
    if (c->closed)
        JW_LIT(w, ",\"is_closed\":true}");
    else
        JW_LIT(w, ",\"is_closed\":false}");
}

int candles_json_build(const char *symbol, enum ab_interval iv, const struct ab_candle *cs,
                       size_t n, struct candles_body **out)
{
    *out = NULL;
    size_t slen = strnlen(symbol, AB_SYMBOL_MAX);
    /* Valid symbols and interval names need no JSON escaping. */
    if (!ab_symbol_valid(symbol, slen) || iv < 0 || iv >= AB_I_COUNT)
        return AB_EINVAL;
    const char *ivn = ab_interval_name(iv);
    struct jw w = {0};
    /* A typical candle takes about 290 bytes; grow from there when needed. */
    size_t guess = 64 + (n < CANDLES_JSON_MAX / 320 ? n : CANDLES_JSON_MAX / 320) * 320;
    jw_grow(&w, guess);
    if (w.err)
        return w.err;
    w.b->len = 0;
    JW_LIT(&w, "{\"symbol\":\"");
    jw_put(&w, symbol, slen);
    JW_LIT(&w, "\",\"interval\":\"");
    jw_put(&w, ivn, strlen(ivn));
    JW_LIT(&w, "\",\"candles\":[");
    for (size_t i = 0; i < n && !w.err; i++) {
        if (i)
            JW_LIT(&w, ",");
        jw_candle(&w, &cs[i]);
    }
    JW_LIT(&w, "]}");
    if (w.err) {
        free(w.b);
        return w.err;
    }
    atomic_init(&w.b->refs, 1);
    *out = w.b;
    return 0;
}

struct candles_body *candles_body_ref(struct candles_body *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void candles_body_unref(struct candles_body *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

/* ---- cache ---- */

struct centry {
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval iv;
    size_t limit;
    uint64_t version;          /* 0: free slot */
    uint64_t used;             /* tick of the last get or put (LRU) */
    struct candles_body *body; /* one reference */
};

struct candles_cache {
    pthread_mutex_t mu;
    size_t max_entries, max_bytes;
    size_t bytes;
    uint64_t tick;
    uint64_t hits, misses, stale;
    struct centry e[CANDLES_CACHE_ENTRIES];
};

int candles_cache_new(size_t max_entries, size_t max_bytes, struct candles_cache **out)
{
    *out = NULL;
    if (max_entries > CANDLES_CACHE_ENTRIES)
        return AB_ERANGE;
    struct candles_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return AB_ENOMEM;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return AB_ENOMEM;
    }
    c->max_entries = max_entries ? max_entries : CANDLES_CACHE_ENTRIES;
    c->max_bytes = max_bytes ? max_bytes : CANDLES_CACHE_BYTES_DEFAULT;
    *out = c;
    return 0;
}

/* Caller holds c->mu. */
static void entry_drop(struct candles_cache *c, struct centry *e)
{
    if (e->version == 0)
        return;
    c->bytes -= e->body->len;
    candles_body_unref(e->body);
    memset(e, 0, sizeof(*e));
}

void candles_cache_free(struct candles_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->max_entries; i++)
        entry_drop(c, &c->e[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static bool entry_is(const struct centry *e, const char *symbol, enum ab_interval iv, size_t limit)
{
    return e->version != 0 && e->iv == iv && e->limit == limit &&
           strncmp(e->symbol, symbol, AB_SYMBOL_MAX) == 0;
}

struct candles_body *candles_cache_get(struct candles_cache *c, const char *symbol,
                                       enum ab_interval iv, size_t limit, uint64_t version)
{
    struct candles_body *b = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->max_entries; i++) {
        struct centry *e = &c->e[i];
        if (!entry_is(e, symbol, iv, limit))
            continue;
        if (e->version == version) {
            e->used = ++c->tick;
            b = candles_body_ref(e->body);
        } else if (e->version < version) {
            entry_drop(c, e); /* the series changed since: never served again */
            c->stale++;
        }
        break;
    }
    if (b)
        c->hits++;
    else
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    return b;
}

void candles_cache_put(struct candles_cache *c, const char *symbol, enum ab_interval iv,
                       size_t limit, uint64_t version, struct candles_body *body)
{
    if (version == 0 || !body || body->len > c->max_bytes)
        return;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->max_entries; i++) {
        struct centry *e = &c->e[i];
        if (entry_is(e, symbol, iv, limit)) {
            if (e->version >= version)
                goto out; /* as new or newer already cached */
            entry_drop(c, e);
            break;
        }
    }
    /* A free slot and room for the bytes, evicting the least recently used. */
    struct centry *slot;
    for (;;) {
        struct centry *lru = NULL;
        slot = NULL;
        for (size_t i = 0; i < c->max_entries; i++) {
            struct centry *e = &c->e[i];
            if (e->version == 0) {
                if (!slot)
                    slot = e;
            } else if (!lru || e->used < lru->used) {
                lru = e;
            }
        }
        if (slot && c->bytes + body->len <= c->max_bytes)
            break;
        if (!lru)
            goto out; /* cannot happen: body->len <= max_bytes */
        entry_drop(c, lru);
    }
    snprintf(slot->symbol, sizeof(slot->symbol), "%s", symbol);
    slot->iv = iv;
    slot->limit = limit;
    slot->version = version;
    slot->used = ++c->tick;
    slot->body = candles_body_ref(body);
    c->bytes += body->len;
out:
    pthread_mutex_unlock(&c->mu);
}

void candles_cache_get_stats(struct candles_cache *c, struct candles_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->stale = c->stale;
    out->bytes = c->bytes;
    for (size_t i = 0; i < c->max_entries; i++)
        out->entries += c->e[i].version != 0;
    pthread_mutex_unlock(&c->mu);
}

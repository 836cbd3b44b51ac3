#include "publish.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/err.h"
#include "common/interval.h"

void publisher_init(struct publisher *p)
{
    memset(p, 0, sizeof(*p));
}

int publisher_add(struct publisher *p, const struct pub_sink_ops *ops, void *ctx)
{
    if (p->n_sinks >= PUB_SINKS_MAX)
        return AB_ENOMEM;
    p->sinks[p->n_sinks].ops = ops;
    p->sinks[p->n_sinks].ctx = ctx;
    p->n_sinks++;
    return 0;
}

void publisher_deinit(struct publisher *p)
{
    for (size_t i = 0; i < p->n_sinks; i++) {
        if (p->sinks[i].ops->flush)
            p->sinks[i].ops->flush(p->sinks[i].ctx);
        if (p->sinks[i].ops->free)
            p->sinks[i].ops->free(p->sinks[i].ctx);
    }
    memset(p, 0, sizeof(*p));
}

static int note(struct publisher *p, int rc, int first)
{
    if (rc < 0) {
        p->failures++;
        if (first == 0)
            return rc;
    }
    return first;
}

int publisher_candle(struct publisher *p, const struct ab_candle *c, enum pub_origin origin,
                     int64_t recv_us)
{
    int first = 0;
    p->sent[0]++;
    for (size_t i = 0; i < p->n_sinks; i++)
        first = note(p, p->sinks[i].ops->candle(p->sinks[i].ctx, c, origin, recv_us), first);
    return first;
}

int publisher_snapshot(struct publisher *p, const struct ab_book_snapshot *s, int64_t recv_us)
{
    int first = 0;
    p->sent[1]++;
    for (size_t i = 0; i < p->n_sinks; i++)
        first = note(p, p->sinks[i].ops->snapshot(p->sinks[i].ctx, s, recv_us), first);
    return first;
}

int publisher_delta(struct publisher *p, const struct ab_book_delta *d, uint64_t prev_id,
                    int64_t recv_us)
{
    int first = 0;
    p->sent[2]++;
    for (size_t i = 0; i < p->n_sinks; i++)
        first = note(p, p->sinks[i].ops->delta(p->sinks[i].ctx, d, prev_id, recv_us), first);
    return first;
}

int publisher_status(struct publisher *p, const struct pub_status *st)
{
    int first = 0;
    p->sent[3]++;
    for (size_t i = 0; i < p->n_sinks; i++)
        first = note(p, p->sinks[i].ops->status(p->sinks[i].ctx, st), first);
    return first;
}

void publisher_flush(struct publisher *p)
{
    for (size_t i = 0; i < p->n_sinks; i++)
        if (p->sinks[i].ops->flush)
            p->sinks[i].ops->flush(p->sinks[i].ctx);
}

const char *pub_origin_name(enum pub_origin o)
{
    return o == PUB_ORIGIN_REST ? "rest" : "ws";
}

const char *pub_book_state_name(enum pub_book_state s)
{
    switch (s) {
    case PUB_BOOK_SYNCING:
        return "syncing";
    case PUB_BOOK_LIVE:
        return "live";
    case PUB_BOOK_RESYNCING:
        return "resyncing";
    }
    return "?";
}

const char *pub_conn_state_name(enum pub_conn_state s)
{
    switch (s) {
    case PUB_CONN_CONNECTING:
        return "connecting";
    case PUB_CONN_CONNECTED:
        return "connected";
    case PUB_CONN_DISCONNECTED:
        return "disconnected";
    }
    return "?";
}

/* ---- buffer ---- */

void pub_buf_init(struct pub_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max ? max : PUB_LINE_MAX;
}

void pub_buf_deinit(struct pub_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static int reserve(struct pub_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return AB_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->p, cap);
    if (!p)
        return AB_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int put(struct pub_buf *b, const char *s, size_t n)
{
    int rc = reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

__attribute__((format(printf, 2, 3))) static int putf(struct pub_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return AB_ERANGE;
    return put(b, tmp, (size_t)n);
}

/* Symbols are validated upper-case alphanumerics: no escaping needed. */
static int put_dec(struct pub_buf *b, const char *key, struct ab_dec d)
{
    char num[AB_DEC_STR_MAX];
    size_t n = ab_dec_format(d, num);
    int rc = putf(b, ",\"%s\":\"", key);
    if (rc == 0)
        rc = put(b, num, n);
    if (rc == 0)
        rc = put(b, "\"", 1);
    return rc;
}

static int put_levels(struct pub_buf *b, const char *key, const struct ab_level *lv, size_t n)
{
    int rc = putf(b, ",\"%s\":[", key);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char p[AB_DEC_STR_MAX], q[AB_DEC_STR_MAX];
        size_t pn = ab_dec_format(lv[i].price, p);
        size_t qn = ab_dec_format(lv[i].qty, q);
        rc = put(b, i ? ",[\"" : "[\"", i ? 3 : 2);
        if (rc == 0)
            rc = put(b, p, pn);
        if (rc == 0)
            rc = put(b, "\",\"", 3);
        if (rc == 0)
            rc = put(b, q, qn);
        if (rc == 0)
            rc = put(b, "\"]", 2);
    }
    if (rc == 0)
        rc = put(b, "]", 1);
    return rc;
}

int pub_json_candle(struct pub_buf *b, const struct ab_candle *c, enum pub_origin origin,
                    int64_t recv_ms)
{
    b->len = 0;
    int rc = putf(b,
                  "{\"type\":\"candle\",\"symbol\":\"%s\",\"interval\":\"%s\","
                  "\"open_time\":%" PRId64 ",\"close_time\":%" PRId64,
                  c->symbol, ab_interval_name(c->interval), c->open_time, c->close_time);
    if (rc == 0)
        rc = put_dec(b, "open", c->open);
    if (rc == 0)
        rc = put_dec(b, "high", c->high);
    if (rc == 0)
        rc = put_dec(b, "low", c->low);
    if (rc == 0)
        rc = put_dec(b, "close", c->close);
    if (rc == 0)
        rc = put_dec(b, "volume", c->volume);
    if (rc == 0)
        rc = put_dec(b, "quote_volume", c->quote_volume);
    if (rc == 0)
        rc = put_dec(b, "taker_buy_volume", c->taker_buy_volume);
    if (rc == 0)
        rc = put_dec(b, "taker_buy_quote_volume", c->taker_buy_quote_volume);
    if (rc == 0)
        rc = putf(b,
                  ",\"num_trades\":%" PRId64 ",\"first_trade_id\":%" PRId64
                  ",\"last_trade_id\":%" PRId64 ",\"closed\":%s,\"origin\":\"%s\"",
                  c->num_trades, c->first_trade_id, c->last_trade_id, c->closed ? "true" : "false",
                  pub_origin_name(origin));
    if (rc == 0)
        rc = putf(b, ",\"event_time\":%" PRId64 ",\"recv_time\":%" PRId64 "}\n", c->event_time,
                  recv_ms);
    return rc;
}

int pub_json_snapshot(struct pub_buf *b, const struct ab_book_snapshot *s, int64_t recv_ms)
{
    b->len = 0;
    int rc = putf(b, "{\"type\":\"book_snapshot\",\"symbol\":\"%s\",\"last_update_id\":%" PRIu64,
                  s->symbol, s->last_update_id);
    if (rc == 0)
        rc = put_levels(b, "bids", s->bids, s->n_bids);
    if (rc == 0)
        rc = put_levels(b, "asks", s->asks, s->n_asks);
    if (rc == 0)
        rc = putf(b, ",\"recv_time\":%" PRId64 "}\n", recv_ms);
    return rc;
}

int pub_json_delta(struct pub_buf *b, const struct ab_book_delta *d, int64_t recv_ms)
{
    b->len = 0;
    int rc = putf(b,
                  "{\"type\":\"book_delta\",\"symbol\":\"%s\",\"first_update_id\":%" PRIu64
                  ",\"last_update_id\":%" PRIu64 ",\"event_time\":%" PRId64,
                  d->symbol, d->first_id, d->last_id, d->event_time);
    if (rc == 0)
        rc = put_levels(b, "bids", d->bids, d->n_bids);
    if (rc == 0)
        rc = put_levels(b, "asks", d->asks, d->n_asks);
    if (rc == 0)
        rc = putf(b, ",\"recv_time\":%" PRId64 "}\n", recv_ms);
    return rc;
}

int pub_json_status(struct pub_buf *b, const struct pub_status *st)
{
    b->len = 0;
    return putf(b,
                "{\"type\":\"status\",\"symbol\":\"%s\",\"book\":\"%s\",\"connection\":\"%s\","
                "\"last_update_id\":%" PRIu64 ",\"time\":%" PRId64 "}\n",
                st->symbol, pub_book_state_name(st->book), pub_conn_state_name(st->conn),
                st->last_update_id, st->time_ms);
}

/* ---- stdout sink ---- */

struct stdout_sink {
    FILE *out;
    struct pub_buf line;
    bool dirty;
};

int pub_stdout_new(FILE *out, void **ctx)
{
    struct stdout_sink *s = calloc(1, sizeof(*s));
    if (!s)
        return AB_ENOMEM;
    s->out = out;
    pub_buf_init(&s->line, PUB_LINE_MAX);
    *ctx = s;
    return 0;
}

static int emit(struct stdout_sink *s, int rc)
{
    if (rc < 0)
        return rc;
    if (fwrite(s->line.p, 1, s->line.len, s->out) != s->line.len)
        return AB_EIO;
    s->dirty = true;
    return 0;
}

static int stdout_candle(void *ctx, const struct ab_candle *c, enum pub_origin origin,
                         int64_t recv_us)
{
    struct stdout_sink *s = ctx;
    return emit(s, pub_json_candle(&s->line, c, origin, recv_us / 1000));
}

static int stdout_snapshot(void *ctx, const struct ab_book_snapshot *snap, int64_t recv_us)
{
    struct stdout_sink *s = ctx;
    return emit(s, pub_json_snapshot(&s->line, snap, recv_us / 1000));
}

static int stdout_delta(void *ctx, const struct ab_book_delta *d, uint64_t prev_id, int64_t recv_us)
{
    (void)prev_id;
    struct stdout_sink *s = ctx;
    return emit(s, pub_json_delta(&s->line, d, recv_us / 1000));
}

static int stdout_status(void *ctx, const struct pub_status *st)
{
    struct stdout_sink *s = ctx;
    return emit(s, pub_json_status(&s->line, st));
}

static void stdout_flush(void *ctx)
{
    struct stdout_sink *s = ctx;
    if (s->dirty) {
        fflush(s->out);
        s->dirty = false;
    }
}

static void stdout_free(void *ctx)
{
    struct stdout_sink *s = ctx;
    if (!s)
        return;
    pub_buf_deinit(&s->line);
    free(s);
}

const struct pub_sink_ops pub_stdout_ops = {
    .name = "stdout",
    .candle = stdout_candle,
    .snapshot = stdout_snapshot,
    .delta = stdout_delta,
    .status = stdout_status,
    .flush = stdout_flush,
    .free = stdout_free,
};

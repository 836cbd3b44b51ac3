/* ws: the fan-out WebSocket server (see ws.h and api/websocket.md). */
#include "ws.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "common/err.h"
#include "common/log.h"
#include "ws_request.h"

#define KEY_MAX      WS_KEY_MAX /* "candles:" + symbol + ":" + interval, NUL included */
#define BUCKETS      1024       /* channel hash table (chained) */
#define PEER_BUCKETS 256        /* connections per client address (chained) */
#define ADDR_MAX     64         /* a client address as text */
#define STOP_WAIT_MS 2000       /* how long ws_server_stop waits for close frames */
#define LOST_MAX     256        /* channels remembered with a lost update; beyond: "all lost" */
/*
 * Coalescing (see flush): queued frames of one connection written with one
 * send() of at most BATCH_BYTES (headers included) and BATCH_FRAMES frames;
 * a bigger message goes out alone, from its own buffer. TX_PACKET is lws'
 * per-send() cap (protocols[0].tx_packet_size; 0 would mean rx_buffer_size,
 * i.e. max_inbound, 4 KiB by default, which split every batch and every
 * snapshot into 4 KiB pieces, one poll round each).
 */
#define BATCH_BYTES  (16u * 1024)
#define BATCH_FRAMES 64
#define TX_PACKET    (64u * 1024)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- text building with LWS_PRE headroom ---- */

struct tb {
    unsigned char *buf; /* LWS_PRE bytes of headroom, then the text */
    size_t len, cap;    /* len counts the headroom */
    bool err;           /* allocation failed or WS_MESSAGE_MAX reached */
};

static void tb_init(struct tb *t, size_t hint)
{
    t->len = LWS_PRE;
    t->cap = LWS_PRE + (hint < 256 ? 256 : hint);
    t->buf = malloc(t->cap);
    t->err = t->buf == NULL;
}

static void tb_put(struct tb *t, const char *s, size_t n)
{
    if (t->err)
        return;
    if (t->len + n > t->cap) {
        size_t want = t->cap;
        while (want < t->len + n)
            want *= 2;
        if (want > LWS_PRE + WS_MESSAGE_MAX + 1)
            want = LWS_PRE + WS_MESSAGE_MAX + 1;
        unsigned char *p = t->len + n <= want ? realloc(t->buf, want) : NULL;
        if (!p) {
            t->err = true;
            return;
        }
        t->buf = p;
        t->cap = want;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

static void tb_str(struct tb *t, const char *s)
{
    tb_put(t, s, strlen(s));
}

static void tb_fmt(struct tb *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_fmt(struct tb *t, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        t->err = true;
        return;
    }
    tb_put(t, tmp, (size_t)n);
}

/* ,"name":"<decimal>" */
static void tb_dec_field(struct tb *t, const char *name, struct ab_dec d)
{
    char num[AB_DEC_STR_MAX];
    size_t n = ab_dec_format(d, num);
    tb_fmt(t, ",\"%s\":\"", name);
    tb_put(t, num, n);
    tb_put(t, "\"", 1);
}

static void tb_levels(struct tb *t, const struct ab_level *lv, size_t n)
{
    char p[AB_DEC_STR_MAX], q[AB_DEC_STR_MAX];
    tb_put(t, "[", 1);
    for (size_t i = 0; i < n && !t->err; i++) {
        size_t pn = ab_dec_format(lv[i].price, p);
        size_t qn = ab_dec_format(lv[i].qty, q);
        tb_put(t, i ? ",[\"" : "[\"", i ? 3 : 2);
        tb_put(t, p, pn);
        tb_put(t, "\",\"", 3);
        tb_put(t, q, qn);
        tb_put(t, "\"]", 2);
    }
    tb_put(t, "]", 1);
}

/* The candle's fields, without braces, starting with "open_time". */
static void tb_candle_fields(struct tb *t, const struct ab_candle *c)
{
    tb_fmt(t, "\"open_time\":%lld,\"close_time\":%lld", (long long)c->open_time,
           (long long)c->close_time);
    tb_dec_field(t, "open", c->open);
    tb_dec_field(t, "high", c->high);
    tb_dec_field(t, "low", c->low);
    tb_dec_field(t, "close", c->close);
    tb_dec_field(t, "volume", c->volume);
    tb_dec_field(t, "quote_volume", c->quote_volume);
    tb_dec_field(t, "taker_buy_volume", c->taker_buy_volume);
    tb_dec_field(t, "taker_buy_quote_volume", c->taker_buy_quote_volume);
    tb_fmt(t, ",\"num_trades\":%lld,\"is_closed\":%s,\"event_time\":%lld", (long long)c->num_trades,
           c->closed ? "true" : "false", (long long)c->event_time);
}

/* ---- messages: serialized once, shared by reference ---- */

enum msg_kind { M_CONTROL, M_CANDLE, M_BOOK_DELTA, M_BOOK_SNAPSHOT, M_BOOK_STATUS };

struct msg {
    atomic_uint refs;
    enum msg_kind kind;
    char key[KEY_MAX]; /* channel; "" for replies */
    uint64_t seq;      /* candles: series seq */
    uint64_t gen, last, prev;
    size_t len;          /* payload bytes */
    unsigned char *data; /* owned: LWS_PRE headroom + payload */
};

static bool is_book(const struct msg *m)
{
    return m->kind == M_BOOK_DELTA || m->kind == M_BOOK_SNAPSHOT || m->kind == M_BOOK_STATUS;
}

/* Takes t's buffer. NULL (and t freed) on error. */
static struct msg *msg_new(enum msg_kind kind, const char *key, struct tb *t)
{
    struct msg *m = t->err ? NULL : calloc(1, sizeof(*m));
    if (!m) {
        free(t->buf);
        t->buf = NULL;
        return NULL;
    }
    atomic_init(&m->refs, 1);
    m->kind = kind;
    snprintf(m->key, sizeof(m->key), "%s", key ? key : "");
    m->data = t->buf;
    m->len = t->len - LWS_PRE;
    t->buf = NULL;
    return m;
}

static struct msg *msg_ref(struct msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

static void msg_unref(struct msg *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        free(m->data);
        free(m);
    }
}

/* ---- server state ---- */

struct channel {
    char key[KEY_MAX];
    enum ws_chan_kind kind;
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval interval;
    struct sub **subs;
    size_t n, cap;
    struct channel *next; /* bucket chain */
};

struct sub {
    struct conn *c;
    struct channel *ch;
    size_t ch_idx;      /* index in ch->subs */
    uint64_t id;        /* unique within the connection: snapshot markers name it */
    bool pending;       /* a snapshot marker is queued: updates are skipped until it is written */
    uint64_t seq;       /* candles: last seq queued */
    uint64_t gen, last; /* books: generation and update id queued */
};

struct qent {
    struct msg *m; /* NULL: build and send the snapshot of sub_id here */
    uint64_t sub_id;
};

struct conn {
    struct ws_server *srv;
    struct lws *wsi;
    struct conn *prev, *next;
    struct sub **subs;
    size_t n_subs, cap_subs;
    uint64_t next_sub_id;
    struct qent *q; /* ring */
    size_t q_head, q_n, q_cap, q_bytes;
    char *rx;
    size_t rx_len;
    bool rx_too_big, rx_binary;
    int close_code; /* non-zero: closing with this code */
    const char *close_reason;
    bool drain_then_close; /* closing, but the queued messages are written first */
    bool want_write;
    bool write_failed;       /* a write outside WRITEABLE failed: close at the next one */
    bool peer_closed;        /* the client sent a close frame: no more direct writes */
    bool dirty;              /* on the server's dirty list (queued during a drain) */
    struct conn *dirty_next; /* dirty list link */
    struct wpeer *peer;      /* its client address's entry, or NULL */
    struct ws_bucket bucket; /* request rate */
    unsigned strikes;        /* requests refused in a row by the rate limit */
};

/* A client address with open connections (server thread; freed at 0). */
struct wpeer {
    struct wpeer *next;
    char addr[ADDR_MAX];
    size_t n;
};

struct pss {
    struct conn *c;
};

/* The newest version of a channel that the hand-off had to drop. */
struct lost {
    char key[KEY_MAX];
    enum msg_kind kind;
    uint64_t seq, gen, last;
};

struct handoff {
    pthread_mutex_t lock;
    struct msg **ring;
    size_t head, n, cap, bytes, max_bytes;
    bool running; /* accepting: the server thread is up */
    struct lost lost[LOST_MAX];
    size_t n_lost;
    bool lost_all; /* more channels lost than LOST_MAX, or a message could not be built */
};

struct ws_server {
    struct ws_config cfg;
    struct live *lv;
    struct lws_protocols protocols[2];
    lws_retry_bo_t retry;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    pthread_t thread;
    bool started, joined;
    atomic_bool stopping;
    _Atomic uint16_t port;
    struct handoff ho;
    struct msg **scratch; /* server thread: drained hand-off */
    struct lost *lost;    /* server thread: drained loss records (LOST_MAX) */
    struct conn *conns;   /* server thread: list of connections */
    size_t n_conns;
    bool draining;                   /* server thread: inside drain (queue, flush after) */
    struct conn *dirty, *dirty_tail; /* server thread: connections queued to during a drain */
    unsigned char *batch;            /* server thread: LWS_PRE + BATCH_BYTES, see flush */
    struct channel *buckets[BUCKETS];
    struct wpeer *peers[PEER_BUCKETS]; /* server thread: connections per address */
    char token[AUTH_TOKEN_MAX + 1];    /* "" = no authentication. Secret: never logged. */
    struct {
        _Atomic uint64_t connections, connections_total, subscriptions, messages_sent, bytes_sent,
            writes, published, handoff_dropped, book_resnapshots, book_gap_resnapshots, requests,
            errors_sent, closes_slow, closes_overloaded, closes_limit, closes_client,
            closes_shutdown, closes_policy, refused_unauthorized, refused_per_ip, rate_limited;
    } st;
};

#define BUMP(s, f)   atomic_fetch_add_explicit(&(s)->st.f, 1, memory_order_relaxed)
#define ADD(s, f, v) atomic_fetch_add_explicit(&(s)->st.f, (v), memory_order_relaxed)
#define SUB1(s, f)   atomic_fetch_sub_explicit(&(s)->st.f, 1, memory_order_relaxed)
#define LOADST(s, f) atomic_load_explicit(&(s)->st.f, memory_order_relaxed)

void ws_config_defaults(struct ws_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->addr.host, sizeof(c->addr.host), "127.0.0.1");
    c->addr.port = 8081;
    c->max_connections = WS_MAX_CONNECTIONS_DEFAULT;
    c->max_channels = WS_MAX_CHANNELS_DEFAULT;
    c->max_inbound = WS_MAX_INBOUND_DEFAULT;
    c->max_connections_per_ip = 0; /* the service's default comes from its configuration */
    c->rate = WS_RATE_DEFAULT;
    c->burst = WS_BURST_DEFAULT;
    c->queue_frames = WS_QUEUE_FRAMES_DEFAULT;
    c->queue_bytes = WS_QUEUE_BYTES_DEFAULT;
    c->handoff_frames = WS_HANDOFF_FRAMES_DEFAULT;
    c->handoff_bytes = WS_HANDOFF_BYTES_DEFAULT;
    c->candle_snapshot = WS_CANDLE_SNAPSHOT_DEFAULT;
    c->ping_secs = WS_PING_SECS_DEFAULT;
    c->hangup_secs = WS_HANGUP_SECS_DEFAULT;
}

/* ---- hand-off (bus thread -> server thread) ---- */

/* Remembers that m (its version) was dropped. Caller holds the hand-off lock. */
static void note_lost(struct handoff *h, const struct msg *m)
{
    if (!m || h->lost_all) {
        h->lost_all = true;
        return;
    }
    struct lost *l = NULL;
    for (size_t i = 0; i < h->n_lost && !l; i++)
        if (strcmp(h->lost[i].key, m->key) == 0)
            l = &h->lost[i];
    if (!l) {
        if (h->n_lost == LOST_MAX) {
            h->lost_all = true;
            return;
        }
        l = &h->lost[h->n_lost++];
        memset(l, 0, sizeof(*l));
        snprintf(l->key, sizeof(l->key), "%s", m->key);
    }
    l->kind = m->kind;
    if (m->seq > l->seq)
        l->seq = m->seq;
    if (m->gen > l->gen || (m->gen == l->gen && m->last > l->last)) {
        l->gen = m->gen;
        l->last = m->last;
    }
}

/* Takes m (NULL: a message could not be built). Any thread. */
static void handoff_push(struct ws_server *s, struct msg *m)
{
    struct handoff *h = &s->ho;
    pthread_mutex_lock(&h->lock);
    if (!h->running) {
        pthread_mutex_unlock(&h->lock);
        msg_unref(m); /* nobody can be subscribed */
        return;
    }
    if (!m || h->n == h->cap || (h->n && h->bytes + m->len > h->max_bytes)) {
        /* Never a silent gap: the server thread repairs every subscriber
         * behind this version after its next drain. */
        note_lost(h, m);
        if (h->n == 0) /* otherwise a wake-up is already pending */
            lws_cancel_service(s->ctx);
        pthread_mutex_unlock(&h->lock);
        BUMP(s, handoff_dropped);
        msg_unref(m);
        return;
    }
    h->ring[(h->head + h->n) % h->cap] = m;
    h->n++;
    h->bytes += m->len;
    BUMP(s, published);
    /* Wake the server thread (thread-safe; ctx lives while running). It
     * drains the whole queue per wake-up, so only the first message needs
     * one. */
    if (h->n == 1)
        lws_cancel_service(s->ctx);
    pthread_mutex_unlock(&h->lock);
}

/*
 * Whether updates are worth serializing. With no connection nobody can miss
 * one: a later subscriber reads its snapshot after this update was applied.
 */
static bool handoff_running(struct ws_server *s)
{
    if (LOADST(s, connections) == 0)
        return false;
    pthread_mutex_lock(&s->ho.lock);
    bool r = s->ho.running;
    pthread_mutex_unlock(&s->ho.lock);
    return r;
}

/* ---- live hook: runs on the bus thread under live's lock ---- */

static void hook_candle(void *arg, const struct ab_candle *c, uint64_t seq)
{
    struct ws_server *s = arg;
    if (!handoff_running(s))
        return;
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "candles:%s:%s", c->symbol, ab_interval_name(c->interval));
    struct tb t;
    tb_init(&t, 512);
    tb_fmt(&t, "{\"type\":\"candle\",\"channel\":\"%s\",", key);
    tb_candle_fields(&t, c);
    tb_put(&t, "}", 1);
    struct msg *m = msg_new(M_CANDLE, key, &t);
    if (m)
        m->seq = seq;
    handoff_push(s, m);
}

static void hook_delta(void *arg, const struct ab_book_delta *d, uint64_t gen, uint64_t prev_id)
{
    struct ws_server *s = arg;
    if (!handoff_running(s))
        return;
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "book:%s", d->symbol);
    struct tb t;
    tb_init(&t, 160 + (d->n_bids + d->n_asks) * 48);
    tb_fmt(&t,
           "{\"type\":\"book_delta\",\"channel\":\"%s\",\"first_update_id\":%llu,"
           "\"last_update_id\":%llu,\"prev_update_id\":%llu,\"event_time\":%lld,\"bids\":",
           key, (unsigned long long)d->first_id, (unsigned long long)d->last_id,
           (unsigned long long)prev_id, (long long)d->event_time);
    tb_levels(&t, d->bids, d->n_bids);
    tb_str(&t, ",\"asks\":");
    tb_levels(&t, d->asks, d->n_asks);
    tb_put(&t, "}", 1);
    struct msg *m = msg_new(M_BOOK_DELTA, key, &t);
    if (m) {
        m->gen = gen;
        m->last = d->last_id;
        m->prev = prev_id;
    }
    handoff_push(s, m);
}

static void book_snapshot_json(struct tb *t, const char *key, const char *state,
                               const struct ab_book_snapshot *b)
{
    tb_fmt(t, "{\"type\":\"snapshot\",\"channel\":\"%s\",\"state\":\"%s\",\"last_update_id\":%llu",
           key, state, (unsigned long long)b->last_update_id);
    tb_str(t, ",\"bids\":");
    tb_levels(t, b->bids, b->n_bids);
    tb_str(t, ",\"asks\":");
    tb_levels(t, b->asks, b->n_asks);
    tb_put(t, "}", 1);
}

static void hook_snapshot(void *arg, const struct ab_book_snapshot *b, uint64_t gen,
                          enum live_book_state st)
{
    struct ws_server *s = arg;
    if (!handoff_running(s))
        return;
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "book:%s", b->symbol);
    struct tb t;
    tb_init(&t, 160 + (b->n_bids + b->n_asks) * 48);
    book_snapshot_json(&t, key, live_book_state_name(st), b);
    struct msg *m = msg_new(M_BOOK_SNAPSHOT, key, &t);
    if (m) {
        m->gen = gen;
        m->last = b->last_update_id;
    }
    handoff_push(s, m);
}

static void hook_status(void *arg, const char *symbol, uint64_t gen, enum live_book_state st,
                        uint64_t last_id)
{
    struct ws_server *s = arg;
    if (!handoff_running(s))
        return;
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "book:%s", symbol);
    struct tb t;
    tb_init(&t, 160);
    tb_fmt(&t, "{\"type\":\"status\",\"channel\":\"%s\",\"state\":\"%s\",\"last_update_id\":%llu}",
           key, live_book_state_name(st), (unsigned long long)last_id);
    struct msg *m = msg_new(M_BOOK_STATUS, key, &t);
    if (m) {
        m->gen = gen;
        m->last = last_id;
    }
    handoff_push(s, m);
}

/* ---- channels (server thread) ---- */

static size_t key_hash(const char *k)
{
    size_t h = 5381;
    for (; *k; k++)
        h = h * 33 + (unsigned char)*k;
    return h % BUCKETS;
}

static struct channel *channel_find(struct ws_server *s, const char *key)
{
    for (struct channel *ch = s->buckets[key_hash(key)]; ch; ch = ch->next)
        if (strcmp(ch->key, key) == 0)
            return ch;
    return NULL;
}

/* ---- connection queue (server thread) ---- */

static void want_write(struct conn *c)
{
    if (!c->want_write) {
        c->want_write = true;
        lws_callback_on_writable(c->wsi);
    }
}

/*
 * c has something new in its queue. During a drain the connection goes on
 * the dirty list and flush_dirty writes it straight after the drain, without
 * waiting for a WRITEABLE callback; otherwise lws is asked for one.
 */
static void schedule(struct conn *c)
{
    struct ws_server *s = c->srv;
    if (!s->draining) {
        want_write(c);
        return;
    }
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = NULL;
    if (s->dirty_tail)
        s->dirty_tail->dirty_next = c;
    else
        s->dirty = c;
    s->dirty_tail = c;
}

static bool q_fits(struct conn *c, size_t len)
{
    const struct ws_config *cfg = &c->srv->cfg;
    return c->q_n < cfg->queue_frames && (c->q_n == 0 || c->q_bytes + len <= cfg->queue_bytes);
}

/* Appends (taking a reference to m). Caller checked room; grows within queue_frames. */
static bool q_push(struct conn *c, struct msg *m, uint64_t sub_id)
{
    if (c->q_n == c->q_cap) {
        size_t ncap = c->q_cap ? c->q_cap * 2 : 16;
        if (ncap > c->srv->cfg.queue_frames)
            ncap = c->srv->cfg.queue_frames;
        struct qent *nq = malloc(ncap * sizeof(*nq));
        if (!nq)
            return false;
        for (size_t i = 0; i < c->q_n; i++)
            nq[i] = c->q[(c->q_head + i) % c->q_cap];
        free(c->q);
        c->q = nq;
        c->q_cap = ncap;
        c->q_head = 0;
    }
    struct qent *e = &c->q[(c->q_head + c->q_n) % c->q_cap];
    e->m = m ? msg_ref(m) : NULL;
    e->sub_id = sub_id;
    c->q_n++;
    c->q_bytes += m ? m->len : 0;
    schedule(c);
    return true;
}

static void q_clear(struct conn *c)
{
    for (size_t i = 0; i < c->q_n; i++)
        msg_unref(c->q[(c->q_head + i) % c->q_cap].m);
    c->q_n = 0;
    c->q_head = 0;
    c->q_bytes = 0;
}

static void conn_close(struct conn *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    struct ws_server *s = c->srv;
    c->close_code = code;
    c->close_reason = reason;
    if (code == WS_CLOSE_POLICY) {
        /* The replies already queued (the flood's errors) go out first; no
         * snapshot is built for a closing connection. */
        size_t keep = 0;
        for (size_t i = 0; i < c->q_n; i++) {
            struct qent e = c->q[(c->q_head + i) % c->q_cap];
            if (e.m)
                c->q[(c->q_head + keep++) % c->q_cap] = e;
        }
        c->q_n = keep;
        c->drain_then_close = keep > 0;
    } else {
        q_clear(c);
    }
    switch (code) {
    case WS_CLOSE_SLOW_CONSUMER:
        BUMP(s, closes_slow);
        break;
    case WS_CLOSE_OVERLOADED:
        BUMP(s, closes_overloaded);
        break;
    case WS_CLOSE_TRY_LATER:
        BUMP(s, closes_limit);
        break;
    case WS_CLOSE_POLICY:
        BUMP(s, closes_policy);
        break;
    default:
        BUMP(s, closes_shutdown);
        break;
    }
    ab_log(code == WS_CLOSE_GOING_AWAY ? AB_LOG_DEBUG : AB_LOG_INFO, "ws",
           "closing connection code=%d reason=\"%s\"", code, reason);
    /* A client that does not read never makes us writeable: cut it after a grace period. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, s->stopping ? 1 : WS_CLOSE_GRACE_SECS);
    c->want_write = false;
    want_write(c);
}

/* A snapshot marker for sub. Returns false when the connection had to be closed. */
static bool push_marker(struct conn *c, struct sub *sub)
{
    if (sub->pending)
        return true;
    if (c->q_n >= c->srv->cfg.queue_frames || !q_push(c, NULL, sub->id)) {
        conn_close(c, WS_CLOSE_SLOW_CONSUMER, "slow consumer");
        return false;
    }
    sub->pending = true;
    return true;
}

/*
 * The queue is full: drop every queued book message and re-snapshot each
 * book channel of the connection. Returns false when it was closed instead.
 */
static bool q_overflow(struct conn *c)
{
    size_t books = 0;
    for (size_t i = 0; i < c->n_subs; i++)
        books += c->subs[i]->ch->kind == WS_CH_BOOK;
    if (books == 0)
        return true;
    size_t keep = 0, bytes = 0;
    for (size_t i = 0; i < c->q_n; i++) {
        struct qent e = c->q[(c->q_head + i) % c->q_cap];
        bool drop = e.m ? is_book(e.m) : false;
        if (!e.m) {
            for (size_t k = 0; k < c->n_subs; k++)
                if (c->subs[k]->id == e.sub_id && c->subs[k]->ch->kind == WS_CH_BOOK)
                    drop = true;
        }
        if (drop) {
            msg_unref(e.m);
            continue;
        }
        c->q[(c->q_head + keep) % c->q_cap] = e;
        bytes += e.m ? e.m->len : 0;
        keep++;
    }
    c->q_n = keep;
    c->q_bytes = bytes;
    for (size_t i = 0; i < c->n_subs; i++) {
        struct sub *sub = c->subs[i];
        if (sub->ch->kind != WS_CH_BOOK)
            continue;
        sub->pending = false; /* its marker, if any, was dropped */
        ADD(c->srv, book_resnapshots, 1);
        if (!push_marker(c, sub))
            return false;
    }
    return true;
}

/* Queues m (borrowed) for c, applying the overflow policy. */
static void conn_send(struct conn *c, struct msg *m)
{
    if (c->close_code)
        return;
    if (!q_fits(c, m->len)) {
        if (!q_overflow(c))
            return;
        if (is_book(m))
            return; /* its channel is re-snapshotted */
        if (!q_fits(c, m->len)) {
            conn_close(c, WS_CLOSE_SLOW_CONSUMER, "slow consumer");
            return;
        }
    }
    if (!q_push(c, m, 0))
        conn_close(c, WS_CLOSE_SLOW_CONSUMER, "out of memory");
}

/* ---- fan-out (server thread) ---- */

static void deliver(struct ws_server *s, struct msg *m)
{
    struct channel *ch = channel_find(s, m->key);
    if (!ch)
        return;
    for (size_t i = 0; i < ch->n; i++) {
        struct sub *sub = ch->subs[i];
        struct conn *c = sub->c;
        if (c->close_code || sub->pending)
            continue;
        switch (m->kind) {
        case M_CANDLE:
            if (m->seq <= sub->seq)
                continue; /* already in its snapshot */
            if (m->seq != sub->seq + 1) {
                conn_close(c, WS_CLOSE_OVERLOADED, "server overloaded: updates lost");
                continue;
            }
            sub->seq = m->seq;
            break;
        case M_BOOK_SNAPSHOT:
            if (m->gen <= sub->gen)
                continue;
            sub->gen = m->gen;
            sub->last = m->last;
            break;
        case M_BOOK_STATUS:
            if (m->gen < sub->gen)
                continue;
            if (m->gen > sub->gen) {
                sub->gen = m->gen;
                sub->last = 0;
            }
            break;
        case M_BOOK_DELTA:
            if (m->gen < sub->gen || (m->gen == sub->gen && m->last <= sub->last))
                continue;
            if (m->gen > sub->gen || m->prev != sub->last) {
                BUMP(s, book_gap_resnapshots);
                push_marker(c, sub);
                continue;
            }
            sub->last = m->last;
            break;
        case M_CONTROL:
            continue;
        }
        conn_send(c, m);
    }
}

/*
 * Repairs the subscribers of a channel that lost an update in the hand-off:
 * a book subscriber behind the lost version gets a fresh snapshot, a candle
 * subscriber behind it is closed (4011). l NULL: every channel lost.
 */
static void repair(struct ws_server *s, struct channel *ch, const struct lost *l)
{
    for (size_t i = 0; i < ch->n; i++) {
        struct sub *sub = ch->subs[i];
        if (sub->c->close_code || sub->pending)
            continue; /* its snapshot is read after the loss */
        if (ch->kind == WS_CH_CANDLES) {
            if (!l || sub->seq < l->seq)
                conn_close(sub->c, WS_CLOSE_OVERLOADED, "server overloaded: updates lost");
        } else if (!l || sub->gen < l->gen || (sub->gen == l->gen && sub->last < l->last)) {
            BUMP(s, book_gap_resnapshots);
            push_marker(sub->c, sub);
        }
    }
}

static void flush_dirty(struct ws_server *s);

/*
 * Fans the hand-off out: every message goes into its subscribers' queues
 * (no I/O), then flush_dirty writes each connection that got something with
 * one send() (all its new frames coalesced), from here rather than from a
 * WRITEABLE callback. What that bought: see flush_dirty.
 */
static void drain(struct ws_server *s)
{
    struct handoff *h = &s->ho;
    pthread_mutex_lock(&h->lock);
    size_t n = h->n, n_lost = h->n_lost;
    bool lost_all = h->lost_all;
    for (size_t i = 0; i < n; i++)
        s->scratch[i] = h->ring[(h->head + i) % h->cap];
    memcpy(s->lost, h->lost, n_lost * sizeof(*s->lost));
    h->head = 0;
    h->n = 0;
    h->bytes = 0;
    h->n_lost = 0;
    h->lost_all = false;
    pthread_mutex_unlock(&h->lock);
    s->draining = true;
    for (size_t i = 0; i < n; i++) {
        deliver(s, s->scratch[i]);
        msg_unref(s->scratch[i]);
    }
    /* everything dropped came after the messages just delivered */
    if (lost_all) {
        for (size_t b = 0; b < BUCKETS; b++)
            for (struct channel *ch = s->buckets[b]; ch; ch = ch->next)
                repair(s, ch, NULL);
    } else {
        for (size_t i = 0; i < n_lost; i++) {
            struct channel *ch = channel_find(s, s->lost[i].key);
            if (ch)
                repair(s, ch, &s->lost[i]);
        }
    }
    s->draining = false;
    flush_dirty(s);
}

/* ---- replies ---- */

/* Queues a reply object (taken: new reference). */
static void send_json(struct conn *c, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        conn_close(c, WS_CLOSE_SLOW_CONSUMER, "out of memory");
        return;
    }
    struct tb t;
    tb_init(&t, strlen(text));
    tb_str(&t, text);
    free(text);
    struct msg *m = msg_new(M_CONTROL, NULL, &t);
    if (!m) {
        conn_close(c, WS_CLOSE_SLOW_CONSUMER, "out of memory");
        return;
    }
    conn_send(c, m);
    msg_unref(m);
}

static json_t *reply_new(const char *type, json_t *id)
{
    json_t *o = json_pack("{s:s}", "type", type);
    if (o && id)
        json_object_set(o, "id", id);
    return o;
}

static void send_error(struct conn *c, json_t *id, const char *code, const char *message)
{
    json_t *o = reply_new("error", id);
    if (o) {
        json_object_set_new(o, "code", json_string(code));
        json_object_set_new(o, "message", json_string(message));
    }
    BUMP(c->srv, errors_sent);
    send_json(c, o);
}

/* ---- subscriptions (server thread) ---- */

static struct sub *conn_find_sub(struct conn *c, const char *key)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i]->ch->key, key) == 0)
            return c->subs[i];
    return NULL;
}

static struct sub *conn_find_sub_id(struct conn *c, uint64_t id)
{
    for (size_t i = 0; i < c->n_subs; i++)
        if (c->subs[i]->id == id)
            return c->subs[i];
    return NULL;
}

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 4;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static struct sub *sub_add(struct conn *c, const struct ws_chan *cn)
{
    struct ws_server *s = c->srv;
    struct channel *ch = channel_find(s, cn->key);
    bool created = false;
    if (!ch) {
        ch = calloc(1, sizeof(*ch));
        if (!ch)
            return NULL;
        snprintf(ch->key, sizeof(ch->key), "%s", cn->key);
        snprintf(ch->symbol, sizeof(ch->symbol), "%s", cn->symbol);
        ch->kind = cn->kind;
        ch->interval = cn->interval;
        size_t b = key_hash(ch->key);
        ch->next = s->buckets[b];
        s->buckets[b] = ch;
        created = true;
    }
    struct sub *sub = calloc(1, sizeof(*sub));
    if (!sub || !grow((void **)&ch->subs, &ch->cap, ch->n + 1, sizeof(*ch->subs)) ||
        !grow((void **)&c->subs, &c->cap_subs, c->n_subs + 1, sizeof(*c->subs))) {
        free(sub);
        if (created) {
            s->buckets[key_hash(ch->key)] = ch->next;
            free(ch->subs);
            free(ch);
        }
        return NULL;
    }
    sub->c = c;
    sub->ch = ch;
    sub->id = ++c->next_sub_id;
    sub->ch_idx = ch->n;
    ch->subs[ch->n++] = sub;
    c->subs[c->n_subs++] = sub;
    BUMP(s, subscriptions);
    return sub;
}

static void sub_remove(struct conn *c, struct sub *sub)
{
    struct ws_server *s = c->srv;
    struct channel *ch = sub->ch;
    ch->subs[sub->ch_idx] = ch->subs[ch->n - 1];
    ch->subs[sub->ch_idx]->ch_idx = sub->ch_idx;
    ch->n--;
    if (ch->n == 0) {
        struct channel **pp = &s->buckets[key_hash(ch->key)];
        while (*pp != ch)
            pp = &(*pp)->next;
        *pp = ch->next;
        free(ch->subs);
        free(ch);
    }
    for (size_t i = 0; i < c->n_subs; i++) {
        if (c->subs[i] == sub) {
            c->subs[i] = c->subs[--c->n_subs];
            break;
        }
    }
    SUB1(s, subscriptions);
    free(sub);
}

static json_t *names_json(const struct ws_request *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n; i++)
        json_array_append_new(a, json_string(r->chans[i].key));
    return a;
}

static void op_subscribe(struct conn *c, const struct ws_request *r, json_t *id)
{
    size_t fresh = 0;
    for (size_t i = 0; i < r->n; i++)
        fresh += conn_find_sub(c, r->chans[i].key) == NULL;
    if (c->n_subs + fresh > c->srv->cfg.max_channels) {
        char why[160];
        snprintf(why, sizeof(why),
                 "at most %zu channels per connection (%zu subscribed, %zu more asked)",
                 c->srv->cfg.max_channels, c->n_subs, fresh);
        send_error(c, id, "too_many_channels", why);
        return;
    }
    json_t *o = reply_new("subscribed", id);
    if (o)
        json_object_set_new(o, "channels", names_json(r));
    send_json(c, o);
    for (size_t i = 0; i < r->n && !c->close_code; i++) {
        struct sub *sub = conn_find_sub(c, r->chans[i].key);
        if (!sub)
            sub = sub_add(c, &r->chans[i]);
        if (!sub) {
            conn_close(c, WS_CLOSE_SLOW_CONSUMER, "out of memory");
            break;
        }
        if (!push_marker(c, sub))
            break;
    }
}

static void op_unsubscribe(struct conn *c, const struct ws_request *r, json_t *id)
{
    for (size_t i = 0; i < r->n; i++) {
        struct sub *sub = conn_find_sub(c, r->chans[i].key);
        if (sub)
            sub_remove(c, sub);
    }
    json_t *o = reply_new("unsubscribed", id);
    if (o)
        json_object_set_new(o, "channels", names_json(r));
    send_json(c, o);
}

/* The id to echo (new reference), NULL when the request had none. */
static json_t *id_json(const struct ws_id *id)
{
    switch (id->kind) {
    case WS_ID_INT:
        return json_integer((json_int_t)id->num);
    case WS_ID_STRING:
        return json_stringn(id->str, id->len);
    case WS_ID_NONE:
        break;
    }
    return NULL;
}

static void handle_request(struct conn *c, const char *text, size_t len)
{
    const struct ws_config *cfg = &c->srv->cfg;
    BUMP(c->srv, requests);
    struct ws_request_limits lim = {
        .max_channels = cfg->max_channels, .symbols = cfg->symbols, .intervals = cfg->intervals};
    struct ws_request req;
    char why[256];
    int rc = ws_request_parse(text, len, &lim, &req, why, sizeof(why));
    json_t *id = id_json(&req.id);
    if (rc == AB_ENOMEM) {
        send_error(c, id, "internal", "out of memory");
    } else if (rc < 0) {
        send_error(c, id, ws_req_error_name(req.error), why);
    } else {
        switch (req.op) {
        case WS_OP_SUBSCRIBE:
            op_subscribe(c, &req, id);
            break;
        case WS_OP_UNSUBSCRIBE:
            op_unsubscribe(c, &req, id);
            break;
        case WS_OP_PING:
            send_json(c, reply_new("pong", id));
            break;
        }
    }
    json_decref(id);
    ws_request_free(&req);
}

/* ---- snapshots (server thread, when a marker reaches the head of the queue) ---- */

static struct msg *build_snapshot(struct ws_server *s, struct sub *sub)
{
    struct channel *ch = sub->ch;
    struct tb t;
    if (ch->kind == WS_CH_CANDLES) {
        struct ab_candle *cs = NULL;
        size_t n = 0;
        uint64_t seq = 0;
        if (live_candles_recent(s->lv, ch->symbol, ch->interval, s->cfg.candle_snapshot, &cs, &n,
                                &seq) != 0)
            return NULL;
        tb_init(&t, 128 + n * 400);
        tb_fmt(&t, "{\"type\":\"snapshot\",\"channel\":\"%s\",\"candles\":[", ch->key);
        for (size_t i = 0; i < n; i++) {
            tb_put(&t, i ? ",{" : "{", i ? 2 : 1);
            tb_candle_fields(&t, &cs[i]);
            tb_put(&t, "}", 1);
        }
        tb_str(&t, "]}");
        free(cs);
        sub->seq = seq;
        return msg_new(M_CONTROL, ch->key, &t);
    }
    struct ab_book_snapshot b;
    struct live_book_info info = {.state = LIVE_BOOK_SYNCING};
    int rc = live_book_get(s->lv, ch->symbol, 0, &b, &info);
    if (rc != 0 && rc != AB_ENOTFOUND) {
        ab_book_snapshot_deinit(&b);
        return NULL;
    }
    if (rc == AB_ENOTFOUND)
        info.gen = 0;
    tb_init(&t, 160 + (b.n_bids + b.n_asks) * 48);
    book_snapshot_json(&t, ch->key, live_book_state_name(info.state), &b);
    sub->gen = info.gen;
    sub->last = b.last_update_id;
    ab_book_snapshot_deinit(&b);
    return msg_new(M_CONTROL, ch->key, &t);
}

/* ---- lws callback ---- */

static int write_msg(struct conn *c, struct msg *m)
{
    int n = lws_write(c->wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);
    if (n < 0 || (size_t)n < m->len)
        return -1;
    BUMP(c->srv, messages_sent);
    BUMP(c->srv, writes);
    ADD(c->srv, bytes_sent, m->len);
    return 0;
}

/* Writes the header of an unmasked, final text frame of len bytes; returns its size. */
static size_t frame_header(unsigned char *h, size_t len)
{
    h[0] = 0x81; /* FIN, text */
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static size_t frame_size(size_t len)
{
    return (len < 126 ? 2 : len < 65536 ? 4 : 10) + len;
}

/*
 * Writes the head of c's queue: one frame, or several frames coalesced into
 * one send() (complete frames built here and written with LWS_WRITE_RAW,
 * which lws passes through untouched; valid because no extension such as
 * permessage-deflate is offered). A snapshot marker is built only at the
 * start of a write. Returns 0, or -1 when the connection must be closed.
 * lws buffers whatever the socket does not take (lws_partial_buffered) and
 * asks for WRITEABLE itself; ordering holds because every write appends.
 *
 * Coalescing matters when a connection is behind (the service thread was
 * descheduled, or the client read slowly): k queued frames cost one
 * send() instead of k, so a backlog drains faster the bigger it is.
 */
static int flush(struct conn *c)
{
    struct ws_server *s = c->srv;
    struct msg *take[BATCH_FRAMES];
    size_t n = 0, bytes = 0, payload = 0;
    while (c->q_n && n < BATCH_FRAMES) {
        struct qent e = c->q[c->q_head];
        struct msg *m = e.m;
        if (!m && n)
            break; /* a snapshot starts a write of its own */
        if (m && n && bytes + frame_size(m->len) > BATCH_BYTES)
            break;
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_n--;
        if (m) {
            c->q_bytes -= m->len;
        } else {
            struct sub *sub = conn_find_sub_id(c, e.sub_id);
            if (!sub || !sub->pending)
                continue; /* unsubscribed meanwhile */
            m = build_snapshot(s, sub);
            if (!m) {
                ab_log(AB_LOG_ERROR, "ws", "snapshot failed channel=%s", sub->ch->key);
                return -1;
            }
            sub->pending = false;
        }
        take[n++] = m;
        bytes += frame_size(m->len);
        payload += m->len;
        if (bytes > BATCH_BYTES)
            break; /* only when it is the first: it goes out alone */
    }
    int rc = 0;
    if (n == 1) {
        rc = write_msg(c, take[0]); /* from its own buffer, no copy */
    } else if (n > 1) {
        unsigned char *out = s->batch + LWS_PRE;
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            len += frame_header(out + len, take[i]->len);
            memcpy(out + len, take[i]->data + LWS_PRE, take[i]->len);
            len += take[i]->len;
        }
        int w = lws_write(c->wsi, out, len, LWS_WRITE_RAW);
        if (w < 0 || (size_t)w < len) {
            rc = -1;
        } else {
            ADD(s, messages_sent, n);
            BUMP(s, writes);
            ADD(s, bytes_sent, payload);
        }
    }
    for (size_t i = 0; i < n; i++)
        msg_unref(take[i]);
    return rc;
}

/*
 * Writes every connection queued to during a drain right away, one send()
 * each, unless lws_send_pipe_choked (lws still holds unsent bytes of it, or
 * poll() does not report POLLOUT): then, as closing connections, it waits
 * for WRITEABLE. Writing outside WRITEABLE is safe here: plain TCP (no TLS,
 * no extensions), the service thread, and lws buffers a short write itself.
 *
 * Why the poll() (one cheap syscall per direct write) rather than only
 * lws_partial_buffered: POLLOUT needs a third of the socket's send buffer
 * free, so a connection that stops reading is held at about 2/3 of it and
 * its frames pile up in its queue, where the overflow policy sees them (a
 * fresh snapshot or 4008). Writing until send() is short instead let the
 * kernel hold up to 1.5x more of a stalled reader's data (up to 4 MB
 * sndbuf), delaying the overflow by seconds (integration.e2e slow-client
 * failed 4 runs of 4).
 *
 * Measured (bench_query ws: 1000 subscribers x 100 msg/s for 10 s, 2 cores
 * shared with other work at load average 4.3-4.9, 3 interleaved runs, each
 * with the former ws.c and bench_lws_min), against the former design
 * (lws_callback_on_writable per connection per message, a poll() round over
 * every socket, one frame per WRITEABLE callback): server CPU per frame
 * 6.4-7.3 us -> 4.8-5.4 us (bench_lws_min 6.9-7.5), frames/s/core
 * 138-157k -> 185-207k (1.39-1.47x bench_lws_min); p50 0.6-3.6 s -> 14-16
 * ms, p99 1.6-4.8 s -> 40-49 ms (bench_lws_min: p99 3.1-4.0 s). The former
 * design and bench_lws_min fall behind for good on a busy machine; here a
 * connection that falls behind catches up with 1.4-1.5 frames per send()
 * (up to 5 at load 8). Profile after: ~88% of the thread is the kernel's
 * send() path (loopback TCP, the receiver's side included), ~3% poll(),
 * the rest is ours: one send() per connection per message is the floor.
 */
static void flush_dirty(struct ws_server *s)
{
    while (s->dirty) {
        struct conn *c = s->dirty;
        s->dirty = c->dirty_next;
        if (!s->dirty)
            s->dirty_tail = NULL;
        c->dirty = false;
        c->dirty_next = NULL;
        if (c->close_code || c->write_failed || c->peer_closed || lws_send_pipe_choked(c->wsi)) {
            want_write(c);
            continue;
        }
        if (flush(c) != 0) {
            c->write_failed = true; /* closed from its WRITEABLE callback */
            want_write(c);
            continue;
        }
        if (c->q_n)
            want_write(c);
    }
}

static int on_writeable(struct conn *c)
{
    c->want_write = false;
    if (c->write_failed)
        return -1;
    if (c->close_code && (!c->drain_then_close || c->q_n == 0)) {
        const char *r = c->close_reason ? c->close_reason : "";
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code, (unsigned char *)r,
                         strlen(r));
        return -1;
    }
    if (flush(c) != 0)
        return -1;
    if (c->q_n || c->close_code)
        want_write(c);
    return 0;
}

static int on_receive(struct conn *c, const void *in, size_t len)
{
    size_t max = c->srv->cfg.max_inbound;
    if (lws_is_first_fragment(c->wsi)) {
        c->rx_len = 0;
        c->rx_too_big = false;
        c->rx_binary = lws_frame_is_binary(c->wsi);
    }
    if (!c->rx) {
        c->rx = malloc(max);
        if (!c->rx)
            return -1;
    }
    if (c->rx_too_big || c->rx_len + len > max)
        c->rx_too_big = true;
    else {
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
    }
    if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi))
        return 0;
    if (c->close_code)
        return 0;
    /* Every message costs a token, whatever it holds. */
    const struct ws_config *cfg = &c->srv->cfg;
    if (!ws_bucket_take(&c->bucket, cfg->rate, cfg->burst, mono_ms())) {
        BUMP(c->srv, rate_limited);
        c->rx_len = 0;
        if (++c->strikes > cfg->burst) {
            conn_close(c, WS_CLOSE_POLICY, "rate limit exceeded");
        } else {
            char why[128];
            snprintf(why, sizeof(why),
                     "too many requests: at most %u per second (bursts of %u); this one was "
                     "ignored",
                     cfg->rate, cfg->burst);
            send_error(c, NULL, "rate_limited", why);
        }
        return 0;
    }
    c->strikes = 0;
    if (c->rx_too_big) {
        char why[96];
        snprintf(why, sizeof(why), "a request is at most %zu bytes", max);
        BUMP(c->srv, requests);
        send_error(c, NULL, "message_too_large", why);
    } else if (c->rx_binary) {
        BUMP(c->srv, requests);
        send_error(c, NULL, "bad_request", "requests are text messages");
    } else {
        handle_request(c, c->rx, c->rx_len);
    }
    c->rx_len = 0;
    return 0;
}

/* ---- connections per client address (server thread) ---- */

static size_t addr_hash(const char *a)
{
    size_t h = 5381;
    for (; *a; a++)
        h = h * 33 + (unsigned char)*a;
    return h % PEER_BUCKETS;
}

static struct wpeer *peer_find(struct ws_server *s, const char *addr)
{
    for (struct wpeer *p = s->peers[addr_hash(addr)]; p; p = p->next)
        if (strcmp(p->addr, addr) == 0)
            return p;
    return NULL;
}

/* Counts a connection from addr. NULL when out of memory (then not counted). */
static struct wpeer *peer_add(struct ws_server *s, const char *addr)
{
    struct wpeer *p = peer_find(s, addr);
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return NULL;
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
        size_t h = addr_hash(addr);
        p->next = s->peers[h];
        s->peers[h] = p;
    }
    p->n++;
    return p;
}

static void peer_drop(struct ws_server *s, struct wpeer *p)
{
    if (!p || --p->n > 0)
        return;
    struct wpeer **pp = &s->peers[addr_hash(p->addr)];
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    free(p);
}

/* The client address of wsi as text ("" when unknown). */
static void peer_name(struct lws *wsi, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!lws_get_peer_simple(wsi, buf, cap))
        buf[0] = '\0';
}

static struct conn *conn_new(struct ws_server *s, struct lws *wsi)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = s;
    c->wsi = wsi;
    ws_bucket_init(&c->bucket, s->cfg.burst, mono_ms());
    char addr[ADDR_MAX];
    peer_name(wsi, addr, sizeof(addr));
    if (addr[0])
        c->peer = peer_add(s, addr);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    BUMP(s, connections);
    BUMP(s, connections_total);
    return c;
}

static void conn_free(struct conn *c)
{
    struct ws_server *s = c->srv;
    if (!c->close_code)
        BUMP(s, closes_client);
    while (c->n_subs)
        sub_remove(c, c->subs[c->n_subs - 1]);
    q_clear(c);
    if (c->dirty) { /* never in practice: the list is emptied within each drain */
        struct conn **pp = &s->dirty, *prev = NULL;
        while (*pp != c) {
            prev = *pp;
            pp = &(*pp)->dirty_next;
        }
        *pp = c->dirty_next;
        if (s->dirty_tail == c)
            s->dirty_tail = prev;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    SUB1(s, connections);
    peer_drop(s, c->peer);
    free(c->subs);
    free(c->q);
    free(c->rx);
    free(c);
}

/*
 * Refuses a WebSocket handshake with an HTTP status and a JSON error body
 * ({"error":{"code":...,"message":...}}, as REST), plus one extra header.
 * Returns -1: lws then closes the connection.
 */
static int refuse_upgrade(struct lws *wsi, unsigned status, const char *hname, const char *hvalue,
                          const char *code, const char *message)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    char body[512];
    int blen = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                        code, message);
    if (blen < 0 || (size_t)blen >= sizeof(body))
        return -1;
    if (lws_add_http_header_status(wsi, status, &p, end) ||
        (hname && lws_add_http_header_by_name(wsi, (const unsigned char *)hname,
                                              (const unsigned char *)hvalue, (int)strlen(hvalue),
                                              &p, end)) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)"application/json", 16, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end) ||
        lws_add_http_header_content_length(wsi, (lws_filepos_t)blen, &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    if ((size_t)(end - p) < (size_t)blen)
        return -1;
    memcpy(p, body, (size_t)blen);
    p += blen;
    lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
    return -1;
}

/* Whether the handshake carries the API token (header, else ?token=). */
static bool upgrade_authorized(struct ws_server *s, struct lws *wsi, bool *missing)
{
    char hdr[AUTH_TOKEN_MAX + 64], arg[AUTH_TOKEN_MAX + 16];
    const char *tok = NULL;
    size_t len = 0;
    bool ok = false;
    *missing = true;
    if (lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        auth_bearer(hdr, &tok, &len)) {
        *missing = false;
        ok = auth_token_equal(s->token, tok, len);
    } else {
        const char *v = lws_get_urlarg_by_name(wsi, "token=", arg, (int)sizeof(arg));
        if (v && *v) {
            *missing = false;
            ok = auth_token_equal(s->token, v, strlen(v));
        }
    }
    /* no copy of what the client sent stays on the stack */
    memset(hdr, 0, sizeof(hdr));
    memset(arg, 0, sizeof(arg));
    return ok;
}

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: the token and the per-address limit. */
static int on_confirm_upgrade(struct ws_server *s, struct lws *wsi)
{
    bool missing = false;
    if (s->token[0] && !upgrade_authorized(s, wsi, &missing)) {
        BUMP(s, refused_unauthorized);
        ab_log(AB_LOG_DEBUG, "ws", "handshake refused: unauthorized credentials=%s",
               missing ? "missing" : "wrong");
        return refuse_upgrade(wsi, 401, "www-authenticate:",
                              missing ? "Bearer realm=\"abidance\""
                                      : "Bearer realm=\"abidance\", error=\"invalid_token\"",
                              "unauthorized",
                              missing ? "this server requires an API token: send "
                                        "Authorization: Bearer <token>, or ?token=<token>"
                                      : "the API token is wrong");
    }
    size_t cap = s->cfg.max_connections_per_ip;
    if (cap) {
        char addr[ADDR_MAX];
        peer_name(wsi, addr, sizeof(addr));
        struct wpeer *p = addr[0] ? peer_find(s, addr) : NULL;
        if (p && p->n >= cap) {
            BUMP(s, refused_per_ip);
            ab_log(AB_LOG_INFO, "ws", "handshake refused: too many connections addr=%s limit=%zu",
                   addr, cap);
            char why[128];
            snprintf(why, sizeof(why), "at most %zu connections per client address", cap);
            return refuse_upgrade(wsi, 429, "retry-after:", "5", "too_many_connections", why);
        }
    }
    return 0;
}

static int on_filter(struct lws *wsi)
{
    char uri[128];
    int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
    if (n <= 0 || strcmp(uri, WS_PATH) != 0)
        return 1; /* not our path: refuse the upgrade */
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct ws_server *s = lws_context_user(lws_get_context(wsi));
    struct pss *p = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return s ? on_confirm_upgrade(s, wsi) : -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return on_filter(wsi);
    case LWS_CALLBACK_ESTABLISHED:
        p->c = conn_new(s, wsi);
        if (!p->c)
            return -1;
        if (s->n_conns > s->cfg.max_connections)
            conn_close(p->c, WS_CLOSE_TRY_LATER, "too many connections");
        else if (s->cfg.max_connections_per_ip && p->c->peer &&
                 p->c->peer->n > s->cfg.max_connections_per_ip)
            conn_close(p->c, WS_CLOSE_TRY_LATER, "too many connections from this address");
        else if (s->stopping)
            conn_close(p->c, WS_CLOSE_GOING_AWAY, "server shutting down");
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return p && p->c ? on_receive(p->c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return p && p->c ? on_writeable(p->c) : -1;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (p && p->c)
            p->c->peer_closed = true; /* lws answers it; flush_dirty stops writing directly */
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (p && p->c) {
            conn_free(p->c);
            p->c = NULL;
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (!s)
            return 0;
        drain(s);
        if (s->stopping)
            for (struct conn *c = s->conns; c; c = c->next)
                conn_close(c, WS_CLOSE_GOING_AWAY, "server shutting down");
        return 0;
    case LWS_CALLBACK_HTTP:
        /* Plain HTTP on the stream port: nothing here but the WebSocket. */
        if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- lifecycle ---- */

int ws_server_new(const struct ws_config *cfg, struct live *lv, struct ws_server **out)
{
    struct ws_config c = *cfg;
    if (!c.max_connections || !c.max_channels || !c.max_inbound || !c.queue_frames ||
        !c.queue_bytes || !c.handoff_frames || !c.handoff_bytes || !c.ping_secs ||
        c.hangup_secs <= c.ping_secs || c.hangup_secs > 65535 || c.addr.host[0] == '\0' ||
        (c.rate && !c.burst))
        return AB_EINVAL;
    if (c.max_connections > WS_MAX_CONNECTIONS_MAX || c.max_channels > WS_MAX_CHANNELS_MAX ||
        c.max_inbound > WS_MAX_INBOUND_MAX || c.queue_frames > WS_QUEUE_FRAMES_MAX ||
        c.queue_bytes > WS_QUEUE_BYTES_MAX || c.handoff_frames > WS_QUEUE_FRAMES_MAX ||
        c.candle_snapshot > WS_CANDLE_SNAPSHOT_MAX ||
        c.max_connections_per_ip > WS_MAX_CONNECTIONS_MAX || c.rate > WS_RATE_MAX ||
        c.burst > WS_BURST_MAX)
        return AB_ERANGE;
    char why[128];
    size_t tlen = c.token ? strlen(c.token) : 0;
    if (tlen && auth_token_check(c.token, tlen, why, sizeof(why)) < 0)
        return AB_EINVAL;
    struct ws_server *s = calloc(1, sizeof(*s));
    if (!s)
        return AB_ENOMEM;
    s->cfg = c;
    memcpy(s->token, c.token ? c.token : "", tlen + 1);
    s->cfg.token = NULL; /* only the copy, which is never logged */
    s->lv = lv;
    s->ho.cap = c.handoff_frames;
    s->ho.max_bytes = c.handoff_bytes;
    s->ho.ring = calloc(c.handoff_frames, sizeof(*s->ho.ring));
    s->scratch = calloc(c.handoff_frames, sizeof(*s->scratch));
    s->lost = calloc(LOST_MAX, sizeof(*s->lost));
    s->batch = malloc(LWS_PRE + BATCH_BYTES);
    if (!s->ho.ring || !s->scratch || !s->lost || !s->batch ||
        pthread_mutex_init(&s->ho.lock, NULL) != 0) {
        free(s->ho.ring);
        free(s->scratch);
        free(s->lost);
        free(s->batch);
        free(s);
        return AB_ENOMEM;
    }
    s->protocols[0].name = "abidance-stream";
    s->protocols[0].callback = callback;
    s->protocols[0].per_session_data_size = sizeof(struct pss);
    s->protocols[0].rx_buffer_size = c.max_inbound;
    s->protocols[0].tx_packet_size = TX_PACKET;
    s->retry.secs_since_valid_ping = (uint16_t)c.ping_secs;
    s->retry.secs_since_valid_hangup = (uint16_t)c.hangup_secs;
    struct live_hook h = {.candle = hook_candle,
                          .delta = hook_delta,
                          .snapshot = hook_snapshot,
                          .status = hook_status,
                          .arg = s};
    live_set_hook(lv, &h);
    *out = s;
    return 0;
}

static void *run(void *arg)
{
    struct ws_server *s = arg;
    struct timespec deadline = {0};
    bool stop_seen = false;
    for (;;) {
        if (lws_service(s->ctx, 0) < 0)
            break;
        if (!atomic_load(&s->stopping))
            continue;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!stop_seen) {
            stop_seen = true;
            deadline = now;
            deadline.tv_sec += STOP_WAIT_MS / 1000;
        }
        if (s->n_conns == 0 || now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
            break;
    }
    lws_context_destroy(s->ctx); /* closes what is left (CLOSED callbacks run here) */
    s->ctx = NULL;
    return NULL;
}

int ws_server_start(struct ws_server *s)
{
    if (s->started)
        return AB_ESTATE;
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    ci.user = s;
    ci.max_http_header_data = WS_HANDSHAKE_MAX;
    s->ctx = lws_create_context(&ci);
    if (!s->ctx) {
        ab_log(AB_LOG_ERROR, "ws", "cannot create the libwebsockets context");
        return AB_EIO;
    }
    const char *host = s->cfg.addr.host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof(vi));
    vi.vhost_name = "abidance-stream";
    vi.port = s->cfg.addr.port;
    vi.iface = host;
    vi.protocols = s->protocols;
    vi.retry_and_idle_policy = &s->retry;
    vi.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | LWS_SERVER_OPTION_VALIDATE_UTF8;
    if (!strchr(host, ':'))
        vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    s->vh = lws_create_vhost(s->ctx, &vi);
    if (!s->vh) {
        ab_log(AB_LOG_ERROR, "ws", "cannot listen addr=%s port=%u", s->cfg.addr.host,
               (unsigned)s->cfg.addr.port);
        lws_context_destroy(s->ctx);
        s->ctx = NULL;
        return AB_EIO;
    }
    int port = lws_get_vhost_listen_port(s->vh);
    atomic_store(&s->port, (uint16_t)(port > 0 ? port : 0));
    pthread_mutex_lock(&s->ho.lock);
    s->ho.running = true;
    pthread_mutex_unlock(&s->ho.lock);
    s->started = true;
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        pthread_mutex_lock(&s->ho.lock);
        s->ho.running = false;
        pthread_mutex_unlock(&s->ho.lock);
        s->started = false;
        lws_context_destroy(s->ctx);
        s->ctx = NULL;
        return AB_EIO;
    }
    ab_log(AB_LOG_INFO, "ws",
           "listening addr=%s port=%d path=%s max_connections=%zu max_connections_per_ip=%zu "
           "max_channels=%zu max_message=%zu rate=%u burst=%u auth=%s",
           s->cfg.addr.host, port, WS_PATH, s->cfg.max_connections, s->cfg.max_connections_per_ip,
           s->cfg.max_channels, s->cfg.max_inbound, s->cfg.rate, s->cfg.burst,
           s->token[0] ? "token" : "none");
    return 0;
}

uint16_t ws_server_port(struct ws_server *s)
{
    return atomic_load(&s->port);
}

void ws_server_stop(struct ws_server *s)
{
    if (!s || !s->started || s->joined)
        return;
    pthread_mutex_lock(&s->ho.lock);
    atomic_store(&s->stopping, true);
    lws_cancel_service(s->ctx);
    s->ho.running = false;
    for (size_t i = 0; i < s->ho.n; i++)
        msg_unref(s->ho.ring[(s->ho.head + i) % s->ho.cap]);
    s->ho.n = 0;
    s->ho.bytes = 0;
    pthread_mutex_unlock(&s->ho.lock);
    pthread_join(s->thread, NULL);
    s->joined = true;
    atomic_store(&s->port, 0);
}

void ws_server_free(struct ws_server *s)
{
    if (!s)
        return;
    ws_server_stop(s);
    live_set_hook(s->lv, NULL);
    pthread_mutex_destroy(&s->ho.lock);
    for (size_t i = 0; i < PEER_BUCKETS; i++) {
        while (s->peers[i]) {
            struct wpeer *p = s->peers[i];
            s->peers[i] = p->next;
            free(p);
        }
    }
    memset(s->token, 0, sizeof(s->token));
    free(s->ho.ring);
    free(s->scratch);
    free(s->lost);
    free(s->batch);
    free(s);
}

void ws_server_stats(struct ws_server *s, struct ws_stats *out)
{
    out->connections = LOADST(s, connections);
    out->connections_total = LOADST(s, connections_total);
    out->subscriptions = LOADST(s, subscriptions);
    out->messages_sent = LOADST(s, messages_sent);
    out->bytes_sent = LOADST(s, bytes_sent);
    out->writes = LOADST(s, writes);
    out->published = LOADST(s, published);
    out->handoff_dropped = LOADST(s, handoff_dropped);
    out->book_resnapshots = LOADST(s, book_resnapshots);
    out->book_gap_resnapshots = LOADST(s, book_gap_resnapshots);
    out->requests = LOADST(s, requests);
    out->errors_sent = LOADST(s, errors_sent);
    out->closes_slow = LOADST(s, closes_slow);
    out->closes_overloaded = LOADST(s, closes_overloaded);
    out->closes_limit = LOADST(s, closes_limit);
    out->closes_client = LOADST(s, closes_client);
    out->closes_shutdown = LOADST(s, closes_shutdown);
    out->closes_policy = LOADST(s, closes_policy);
    out->refused_unauthorized = LOADST(s, refused_unauthorized);
    out->refused_per_ip = LOADST(s, refused_per_ip);
    out->rate_limited = LOADST(s, rate_limited);
}

int ws_stats_render(const struct ws_stats *st, char *buf, size_t cap)
{
    static const struct {
        const char *name, *type, *help, *label;
        size_t off;
    } rows[] = {
#define ROW(n, t, h, l, f) {n, t, h, l, offsetof(struct ws_stats, f)}
        ROW("abidance_ws_connections", "gauge", "Open WebSocket connections.", NULL, connections),
        ROW("abidance_ws_connections_total", "counter", "WebSocket connections accepted.", NULL,
            connections_total),
        ROW("abidance_ws_subscriptions", "gauge", "Channel subscriptions now.", NULL,
            subscriptions),
        ROW("abidance_ws_messages_sent_total", "counter", "Messages written to clients.", NULL,
            messages_sent),
        ROW("abidance_ws_bytes_sent_total", "counter", "Payload bytes written to clients.", NULL,
            bytes_sent),
        ROW("abidance_ws_writes_total", "counter",
            "Socket writes carrying those messages (several when coalesced).", NULL, writes),
        ROW("abidance_ws_published_total", "counter", "Updates handed to the stream thread.", NULL,
            published),
        ROW("abidance_ws_requests_total", "counter", "Client requests handled.", NULL, requests),
        ROW("abidance_ws_errors_sent_total", "counter", "Error replies sent.", NULL, errors_sent),
        ROW("abidance_ws_overflows_total", "counter", "Overflow events by kind.",
            "kind=\"handoff_dropped\"", handoff_dropped),
        ROW("abidance_ws_overflows_total", NULL, NULL, "kind=\"book_resnapshot\"",
            book_resnapshots),
        ROW("abidance_ws_overflows_total", NULL, NULL, "kind=\"book_gap_resnapshot\"",
            book_gap_resnapshots),
        ROW("abidance_ws_closes_total", "counter", "Connections closed by reason.",
            "reason=\"slow_consumer\"", closes_slow),
        ROW("abidance_ws_closes_total", NULL, NULL, "reason=\"overloaded\"", closes_overloaded),
        ROW("abidance_ws_closes_total", NULL, NULL, "reason=\"connection_limit\"", closes_limit),
        ROW("abidance_ws_closes_total", NULL, NULL, "reason=\"client\"", closes_client),
        ROW("abidance_ws_closes_total", NULL, NULL, "reason=\"shutdown\"", closes_shutdown),
        ROW("abidance_ws_closes_total", NULL, NULL, "reason=\"rate_limit\"", closes_policy),
        ROW("abidance_ws_handshakes_refused_total", "counter",
            "WebSocket handshakes refused by reason.", "reason=\"unauthorized\"",
            refused_unauthorized),
        ROW("abidance_ws_handshakes_refused_total", NULL, NULL, "reason=\"per_ip_limit\"",
            refused_per_ip),
        ROW("abidance_ws_rate_limited_total", "counter",
            "Client requests refused by the per-connection rate limit.", NULL, rate_limited),
#undef ROW
    };
    size_t len = strnlen(buf, cap);
    if (len == cap)
        return AB_ERANGE;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint64_t v;
        memcpy(&v, (const char *)st + rows[i].off, sizeof(v));
        int n = 0;
        if (rows[i].help)
            n = snprintf(buf + len, cap - len, "# HELP %s %s\n# TYPE %s %s\n", rows[i].name,
                         rows[i].help, rows[i].name, rows[i].type);
        if (n < 0 || (size_t)n >= cap - len)
            return AB_ERANGE;
        len += (size_t)n;
        if (rows[i].label)
            n = snprintf(buf + len, cap - len, "%s{%s} %llu\n", rows[i].name, rows[i].label,
                         (unsigned long long)v);
        else
            n = snprintf(buf + len, cap - len, "%s %llu\n", rows[i].name, (unsigned long long)v);
        if (n < 0 || (size_t)n >= cap - len)
            return AB_ERANGE;
        len += (size_t)n;
    }
    return (int)len;
}

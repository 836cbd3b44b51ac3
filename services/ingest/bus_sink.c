#include "bus_sink.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "common/err.h"
#include "common/interval.h"
#include "common/log.h"
#include "policy.h"
#include "common/symidx.h"

#define LOG_EVERY_MS 5000

struct retry_entry {
    struct ab_candle c;
    enum ab_bus_origin origin;
    int64_t recv_us;
};

struct sym_state {
    char symbol[AB_SYMBOL_MAX];
    bool snap_due;           /* a snapshot must be published */
    int64_t snap_not_before; /* after a refused attempt (monotonic ms) */
    bool have_status;
    bool status_due; /* the cached status must be (re)sent */
    struct ab_bus_status status;
};

struct bus_sink {
    struct ab_bus_client *cl; /* owned (NULL with a test transport) */
    struct bus_sink_transport tr;
    struct bus_sink_hooks hooks;

    /* Candles the client refused, oldest first: a ring of cap entries. */
    struct retry_entry *q;
    size_t q_head, q_len, q_alloc, q_max;
    bool retrying; /* logged state */
    bool behind;

    /* Per symbol, loop thread only. */
    struct sym_state *syms;
    size_t n_syms, cap_syms;
    struct ab_symidx sym_idx; /* symbol -> index into syms (a lookup per published frame) */

    /* Set by the bus thread, taken by the tick. */
    pthread_mutex_t lock;
    bool ev_all;       /* resync every symbol (or a new query instance) */
    bool ev_new_query; /* statuses must go again too */
    char (*ev_syms)[AB_SYMBOL_MAX];
    size_t n_ev_syms; /* <= AB_BUS_CLIENT_SYMBOLS_MAX; beyond: ev_all */
    uint64_t ev_resyncs;

    struct bus_sink_stats st; /* counters of the loop thread (client part filled on demand) */
    struct log_limiter lost_log, drop_log, inv_log, snap_log;
};

/* ---- transport over the real client ---- */

static int client_publish(void *t, const struct ab_bus_msg *m)
{
    return ab_bus_client_publish(t, m, NULL);
}

static void client_stats(void *t, struct ab_bus_client_stats *out)
{
    ab_bus_client_stats(t, out);
}

static void on_client_event(void *arg, const struct ab_bus_client_event *ev)
{
    bus_sink_on_event(arg, ev);
}

static void q_drain(struct bus_sink *s);

/* ---- creation ---- */

static int sink_alloc(size_t retry_max, const struct bus_sink_hooks *hooks, struct bus_sink **out)
{
    *out = NULL;
    if (!hooks || !hooks->export_book || retry_max > BUS_SINK_RETRY_MAX_LIMIT)
        return AB_EINVAL;
    struct bus_sink *s = calloc(1, sizeof(*s));
    if (!s)
        return AB_ENOMEM;
    s->ev_syms = calloc(AB_BUS_CLIENT_SYMBOLS_MAX, sizeof(*s->ev_syms));
    if (!s->ev_syms || ab_symidx_init(&s->sym_idx, AB_BUS_CLIENT_SYMBOLS_MAX) < 0) {
        free(s->ev_syms);
        free(s);
        return AB_ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->hooks = *hooks;
    s->q_max = retry_max ? retry_max : BUS_SINK_RETRY_MAX_DEFAULT;
    *out = s;
    return 0;
}

int bus_sink_new_transport(const struct bus_sink_transport *tr, size_t retry_max,
                           const struct bus_sink_hooks *hooks, struct bus_sink **out)
{
    if (!tr || !tr->publish)
        return AB_EINVAL;
    int rc = sink_alloc(retry_max, hooks, out);
    if (rc == 0)
        (*out)->tr = *tr;
    return rc;
}

int bus_sink_new(const struct bus_sink_config *cfg, struct bus_sink **out)
{
    *out = NULL;
    if (!cfg || !cfg->path || !cfg->path[0])
        return AB_EINVAL;
    struct bus_sink *s;
    int rc = sink_alloc(cfg->retry_max, &cfg->hooks, &s);
    if (rc < 0)
        return rc;
    char name[AB_BUS_NAME_MAX];
    snprintf(name, sizeof(name), "abidance-ingest pid=%ld", (long)getpid());
    struct ab_bus_client_config cc = {
        .path = cfg->path,
        .name = name,
        .max_frames = cfg->max_frames,
        .max_bytes = cfg->max_bytes,
        .on_event = on_client_event,
        .arg = s,
    };
    rc = ab_bus_client_new(&cc, &s->cl);
    if (rc == 0) {
        s->tr = (struct bus_sink_transport){client_publish, client_stats, s->cl};
        rc = ab_bus_client_start(s->cl);
    }
    if (rc < 0) {
        bus_sink_free(s, 0);
        return rc;
    }
    ab_log(AB_LOG_INFO, "bus", "publishing to the query over path=\"%s\" retry_max=%zu", cfg->path,
           s->q_max);
    *out = s;
    return 0;
}

void bus_sink_free(struct bus_sink *s, int wait_ms)
{
    if (!s)
        return;
    if (s->cl) {
        q_drain(s); /* not the snapshots: the books may be gone already */
        if (s->q_len)
            ab_log(AB_LOG_WARN, "bus",
                   "stopping with candles the bus did not take retry_depth=%zu (the next start "
                   "backfills them over REST)",
                   s->q_len);
        if (wait_ms > 0 && ab_bus_client_wait_acked(s->cl, wait_ms) < 0)
            ab_log(AB_LOG_WARN, "bus", "stopping before the query acknowledged everything");
        ab_bus_client_free(s->cl);
    }
    pthread_mutex_destroy(&s->lock);
    free(s->q);
    free(s->syms);
    ab_symidx_deinit(&s->sym_idx);
    free(s->ev_syms);
    free(s);
}

/* ---- symbols ---- */

static struct sym_state *sym_get(struct bus_sink *s, const char *symbol)
{
    size_t at;
    if (ab_symidx_get(&s->sym_idx, symbol, &at) == 0)
        return &s->syms[at];
    if (s->n_syms >= AB_BUS_CLIENT_SYMBOLS_MAX)
        return NULL;
    size_t len = strnlen(symbol, AB_SYMBOL_MAX);
    if (len == 0 || len >= AB_SYMBOL_MAX)
        return NULL;
    if (s->n_syms == s->cap_syms) {
        size_t cap = s->cap_syms ? s->cap_syms * 2 : 16;
        struct sym_state *p = realloc(s->syms, cap * sizeof(*p));
        if (!p)
            return NULL;
        s->syms = p;
        s->cap_syms = cap;
    }
    if (ab_symidx_put(&s->sym_idx, symbol, s->n_syms) < 0)
        return NULL;
    struct sym_state *y = &s->syms[s->n_syms++];
    memset(y, 0, sizeof(*y));
    memcpy(y->symbol, symbol, len);
    return y;
}

/* ---- events (bus thread) ---- */

void bus_sink_on_event(struct bus_sink *s, const struct ab_bus_client_event *ev)
{
    switch (ev->type) {
    case AB_BUS_CLIENT_CONNECTED:
        ab_log(AB_LOG_DEBUG, "bus", "connected to the query instance=%016" PRIx64 " new=%s",
               ev->server_instance, ev->server_changed ? "yes" : "no");
        if (ev->server_changed) {
            pthread_mutex_lock(&s->lock);
            s->ev_all = true;
            s->ev_new_query = true;
            pthread_mutex_unlock(&s->lock);
        }
        break;
    case AB_BUS_CLIENT_DISCONNECTED:
        ab_log(AB_LOG_DEBUG, "bus", "disconnected from the query reason=\"%s\" (reconnecting)",
               ev->reason ? ev->reason : "");
        break;
    case AB_BUS_CLIENT_RESYNC: {
        const char *sym = ev->symbol ? ev->symbol : "";
        pthread_mutex_lock(&s->lock);
        s->ev_resyncs++;
        if (!sym[0] || s->n_ev_syms >= AB_BUS_CLIENT_SYMBOLS_MAX) {
            s->ev_all = true;
        } else {
            bool have = false;
            for (size_t i = 0; i < s->n_ev_syms && !have; i++)
                have = strcmp(s->ev_syms[i], sym) == 0;
            if (!have)
                snprintf(s->ev_syms[s->n_ev_syms++], AB_SYMBOL_MAX, "%s", sym);
        }
        pthread_mutex_unlock(&s->lock);
        ab_log(AB_LOG_DEBUG, "bus", "resync request queued symbol=%s", sym[0] ? sym : "*");
        break;
    }
    }
}

/* ---- sending ---- */

static void invalid(struct bus_sink *s, const char *what, int rc)
{
    s->st.invalid++;
    uint64_t sup = 0;
    if (log_limiter_allow(&s->inv_log, clock_mono_ms(), LOG_EVERY_MS, &sup))
        ab_log(AB_LOG_ERROR, "bus",
               "a %s was refused by the frame encoder error=\"%s\" (not sent) suppressed=%" PRIu64,
               what, ab_err_str(rc), sup);
}

static int send_candle(struct bus_sink *s, const struct retry_entry *e)
{
    struct ab_bus_msg m;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_CANDLE;
    m.u.candle.c = e->c;
    m.u.candle.origin = e->origin;
    m.u.candle.recv_us = e->recv_us;
    return s->tr.publish(s->tr.t, &m);
}

/* Publishes a snapshot of symbol exported from the ingest's book. */
static int send_snapshot(struct bus_sink *s, struct sym_state *y, int64_t now_ms)
{
    struct ab_book_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    int rc = s->hooks.export_book(s->hooks.arg, y->symbol, BUS_SINK_SNAPSHOT_LEVELS_MAX, &snap);
    if (rc < 0) {
        /* Not live: its REST snapshot is underway and comes through the
         * snapshot path when it lands; keep the mark until then. */
        ab_book_snapshot_deinit(&snap);
        return rc;
    }
    struct ab_bus_msg m;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_BOOK_SNAPSHOT;
    m.u.snapshot.s = snap;
    m.u.snapshot.event_time = 0;
    m.u.snapshot.recv_us = clock_wall_ns() / 1000;
    rc = s->tr.publish(s->tr.t, &m);
    ab_book_snapshot_deinit(&snap);
    if (rc == 0) {
        y->snap_due = false;
        s->st.snapshots_resent++;
    } else if (rc == AB_ENOMEM) {
        y->snap_due = true;
        y->snap_not_before = now_ms + BUS_SINK_SNAPSHOT_RETRY_MS;
        s->st.snapshots_refused++;
    } else {
        y->snap_due = false;
        invalid(s, "book snapshot", rc);
    }
    return rc;
}

static void maybe_snapshot(struct bus_sink *s, struct sym_state *y, int64_t now_ms)
{
    if (y->snap_due && now_ms >= y->snap_not_before)
        send_snapshot(s, y, now_ms);
}

static int send_status(struct bus_sink *s, struct sym_state *y)
{
    struct ab_bus_msg m;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_STATUS;
    m.u.status = y->status;
    int rc = s->tr.publish(s->tr.t, &m);
    if (rc == 0) {
        y->status_due = false;
    } else if (rc == AB_ENOMEM) {
        y->status_due = true;
    } else {
        y->status_due = false;
        invalid(s, "status", rc);
    }
    return rc;
}

/* ---- the retry list ---- */

static struct retry_entry *q_at(struct bus_sink *s, size_t i)
{
    return &s->q[(s->q_head + i) % s->q_alloc];
}

static bool same_candle(const struct ab_candle *a, const struct ab_candle *b)
{
    return a->open_time == b->open_time && a->interval == b->interval &&
           strcmp(a->symbol, b->symbol) == 0;
}

/* Grows the ring (unwrapping it) up to q_max. Returns 0 or AB_ENOMEM. */
static int q_grow(struct bus_sink *s)
{
    size_t cap = s->q_alloc ? s->q_alloc * 2 : 256;
    if (cap > s->q_max)
        cap = s->q_max;
    if (cap <= s->q_alloc)
        return AB_ENOMEM;
    struct retry_entry *p = malloc(cap * sizeof(*p));
    if (!p)
        return AB_ENOMEM;
    for (size_t i = 0; i < s->q_len; i++)
        p[i] = *q_at(s, i);
    free(s->q);
    s->q = p;
    s->q_alloc = cap;
    s->q_head = 0;
    return 0;
}

static void lost(struct bus_sink *s, const struct ab_candle *c)
{
    s->st.candles_lost++;
    s->behind = true;
    uint64_t sup = 0;
    if (log_limiter_allow(&s->lost_log, clock_mono_ms(), LOG_EVERY_MS, &sup))
        ab_log(AB_LOG_ERROR, "bus",
               "closed candle dropped: bus buffer and retry list full (retry_max=%zu) symbol=%s "
               "interval=%s open_time=%" PRId64 " lost_total=%" PRIu64 " suppressed=%" PRIu64
               "; it will be fetched again over REST",
               s->q_max, c->symbol, ab_interval_name(c->interval), c->open_time, s->st.candles_lost,
               sup);
    if (s->hooks.candle_lost)
        s->hooks.candle_lost(s->hooks.arg, c);
}

static void dropped_open(struct bus_sink *s, const struct ab_candle *c)
{
    s->st.retry_dropped_open++;
    uint64_t sup = 0;
    if (log_limiter_allow(&s->drop_log, clock_mono_ms(), LOG_EVERY_MS, &sup))
        ab_log(AB_LOG_WARN, "bus",
               "retry list full: open candle update dropped (its later updates carry it) "
               "symbol=%s interval=%s open_time=%" PRId64 " suppressed=%" PRIu64,
               c->symbol, ab_interval_name(c->interval), c->open_time, sup);
}

/* Queues a refused candle by the policy in the header. Returns 0 (kept) or AB_ENOMEM (lost). */
static int q_push(struct bus_sink *s, const struct retry_entry *e)
{
    if (!s->retrying) {
        s->retrying = true;
        struct ab_bus_client_stats cs;
        memset(&cs, 0, sizeof(cs));
        if (s->tr.stats)
            s->tr.stats(s->tr.t, &cs);
        ab_log(AB_LOG_WARN, "bus",
               "bus buffer full: candles wait in the retry list (unacked=%zu frames, %zu bytes; "
               "refused so far %" PRIu64 ")",
               cs.unacked_frames, cs.unacked_bytes, cs.rejected_full);
    }
    if (s->q_len < s->q_max && (s->q_len < s->q_alloc || q_grow(s) == 0)) {
        *q_at(s, s->q_len++) = *e;
        s->st.candles_retried++;
        return 0;
    }
    /* Full: the same candle's entry takes the newer state. */
    for (size_t i = 0; i < s->q_len; i++) {
        struct retry_entry *x = q_at(s, i);
        if (same_candle(&x->c, &e->c)) {
            s->st.retry_superseded++;
            if (!(x->c.closed && !e->c.closed))
                *x = *e;
            return 0;
        }
    }
    if (!e->c.closed) {
        dropped_open(s, &e->c);
        return 0;
    }
    for (size_t i = 0; i < s->q_len; i++) {
        struct retry_entry *x = q_at(s, i);
        if (!x->c.closed) {
            dropped_open(s, &x->c);
            *x = *e;
            return 0;
        }
    }
    lost(s, &e->c);
    return AB_ENOMEM;
}

/* Sends what the retry list holds, oldest first, until the client refuses. */
static void q_drain(struct bus_sink *s)
{
    while (s->q_len) {
        struct retry_entry *e = q_at(s, 0);
        int rc = send_candle(s, e);
        if (rc == AB_ENOMEM)
            return;
        if (rc < 0)
            invalid(s, "candle", rc);
        s->q_head = (s->q_head + 1) % s->q_alloc;
        s->q_len--;
    }
    if (s->retrying) {
        s->retrying = false;
        s->behind = false;
        ab_log(AB_LOG_INFO, "bus",
               "retry list drained: the bus takes candles again (retried %" PRIu64
               ", superseded %" PRIu64 ", open dropped %" PRIu64 ", lost %" PRIu64 ")",
               s->st.candles_retried, s->st.retry_superseded, s->st.retry_dropped_open,
               s->st.candles_lost);
    }
}

/* ---- the tick ---- */

void bus_sink_tick(struct bus_sink *s, int64_t now_ms)
{
    /* What the bus thread asked for. */
    bool all, new_query;
    pthread_mutex_lock(&s->lock);
    all = s->ev_all;
    new_query = s->ev_new_query;
    s->ev_all = s->ev_new_query = false;
    s->st.resync_requests = s->ev_resyncs;
    for (size_t i = 0; i < s->n_ev_syms; i++) {
        struct sym_state *y = all ? NULL : sym_get(s, s->ev_syms[i]);
        if (y) {
            y->snap_due = true;
            y->snap_not_before = 0;
        }
    }
    s->n_ev_syms = 0;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; all && i < s->n_syms; i++) {
        s->syms[i].snap_due = true;
        s->syms[i].snap_not_before = 0;
    }
    for (size_t i = 0; new_query && i < s->n_syms; i++)
        if (s->syms[i].have_status && !s->syms[i].status_due) {
            s->syms[i].status_due = true;
            s->st.statuses_resent++;
        }

    q_drain(s);
    for (size_t i = 0; i < s->n_syms; i++) {
        struct sym_state *y = &s->syms[i];
        if (y->status_due && y->have_status)
            send_status(s, y);
        maybe_snapshot(s, y, now_ms);
    }
}

/* ---- publisher ops ---- */

static int op_candle(void *ctx, const struct ab_candle *c, enum pub_origin origin, int64_t recv_us)
{
    struct bus_sink *s = ctx;
    struct retry_entry e = {
        .c = *c,
        .origin = origin == PUB_ORIGIN_REST ? AB_BUS_ORIGIN_REST : AB_BUS_ORIGIN_WS,
        .recv_us = recv_us,
    };
    if (s->q_len)
        return q_push(s, &e); /* keep the order behind what waits */
    int rc = send_candle(s, &e);
    if (rc == AB_ENOMEM)
        return q_push(s, &e);
    if (rc < 0)
        invalid(s, "candle", rc);
    return rc;
}

static int op_snapshot(void *ctx, const struct ab_book_snapshot *snap, int64_t recv_us)
{
    struct bus_sink *s = ctx;
    struct sym_state *y = sym_get(s, snap->symbol);
    struct ab_bus_msg m;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_BOOK_SNAPSHOT;
    m.u.snapshot.s = *snap;
    m.u.snapshot.event_time = 0;
    m.u.snapshot.recv_us = recv_us;
    int rc = s->tr.publish(s->tr.t, &m);
    if (rc == AB_ENOMEM) {
        s->st.snapshots_refused++;
        if (y) {
            y->snap_due = true;
            y->snap_not_before = clock_mono_ms() + BUS_SINK_SNAPSHOT_RETRY_MS;
        }
        return 0; /* due: sent again from the book later */
    }
    if (rc < 0) {
        /* E.g. a book too big for one frame: the tick sends one exported
         * with at most BUS_SINK_SNAPSHOT_LEVELS_MAX levels per side. */
        invalid(s, "book snapshot", rc);
        if (y) {
            y->snap_due = true;
            y->snap_not_before = 0;
        }
        return rc;
    }
    if (y)
        y->snap_due = false;
    return 0;
}

static int op_delta(void *ctx, const struct ab_book_delta *d, uint64_t prev_id, int64_t recv_us)
{
    struct bus_sink *s = ctx;
    struct ab_bus_msg m;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_BOOK_DELTA;
    m.u.delta.d = *d;
    m.u.delta.prev_id = prev_id;
    m.u.delta.recv_us = recv_us;
    int rc = s->tr.publish(s->tr.t, &m);
    if (rc == 0)
        return 0;
    if (rc != AB_EGAP) {
        invalid(s, "book delta", rc);
        return rc;
    }
    /* Dropped: the query gets a snapshot of the book as it is after this
     * delta instead (the ingest applied it before publishing). */
    s->st.deltas_dropped++;
    struct sym_state *y = sym_get(s, d->symbol);
    if (!y)
        return 0;
    if (!y->snap_due) {
        y->snap_due = true;
        y->snap_not_before = 0;
    }
    int64_t now = clock_mono_ms();
    maybe_snapshot(s, y, now);
    if (y->snap_due) {
        uint64_t sup = 0;
        if (log_limiter_allow(&s->snap_log, now, LOG_EVERY_MS, &sup))
            ab_log(AB_LOG_WARN, "bus",
                   "book deltas dropped at the bus and the snapshot is not taken yet symbol=%s "
                   "dropped_total=%" PRIu64 " suppressed=%" PRIu64,
                   d->symbol, s->st.deltas_dropped, sup);
    }
    return 0;
}

static int op_status(void *ctx, const struct pub_status *st)
{
    struct bus_sink *s = ctx;
    struct sym_state *y = sym_get(s, st->symbol);
    if (!y)
        return AB_ENOMEM;
    memset(&y->status, 0, sizeof(y->status));
    snprintf(y->status.symbol, sizeof(y->status.symbol), "%s", st->symbol);
    y->status.book = (enum ab_bus_book_state)st->book;
    y->status.conn = (enum ab_bus_conn_state)st->conn;
    y->status.last_update_id = st->book == PUB_BOOK_LIVE ? st->last_update_id : 0;
    y->status.recv_us = st->time_ms * 1000;
    y->have_status = true;
    int rc = send_status(s, y);
    return rc == AB_ENOMEM ? 0 : rc; /* refused: sent again by the tick */
}

static void op_flush(void *ctx)
{
    bus_sink_tick(ctx, clock_mono_ms());
}

static void op_free(void *ctx)
{
    bus_sink_free(ctx, BUS_SINK_CLOSE_WAIT_MS);
}

const struct pub_sink_ops bus_sink_ops = {
    .name = "bus",
    .candle = op_candle,
    .snapshot = op_snapshot,
    .delta = op_delta,
    .status = op_status,
    .flush = op_flush,
    .free = op_free,
};

/* ---- stats, metrics, health ---- */

void bus_sink_get_stats(struct bus_sink *s, struct bus_sink_stats *out)
{
    *out = s->st;
    memset(&out->client, 0, sizeof(out->client));
    if (s->tr.stats)
        s->tr.stats(s->tr.t, &out->client);
    out->retry_depth = s->q_len;
    pthread_mutex_lock(&s->lock);
    out->resync_requests = s->ev_resyncs;
    pthread_mutex_unlock(&s->lock);
}

bool bus_sink_behind(const struct bus_sink *s)
{
    return s->behind;
}

__attribute__((format(printf, 2, 3))) static int put(struct pub_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return AB_ERANGE;
    if ((size_t)n > b->max || b->len > b->max - (size_t)n)
        return AB_ENOMEM;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return AB_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, tmp, (size_t)n + 1);
    b->len += (size_t)n;
    return 0;
}

static int metric(struct pub_buf *b, const char *name, const char *type, const char *help,
                  uint64_t v)
{
    int rc = put(b, "# HELP abidance_ingest_bus_%s %s\n# TYPE abidance_ingest_bus_%s %s\n", name,
                 help, name, type);
    if (rc == 0)
        rc = put(b, "abidance_ingest_bus_%s %" PRIu64 "\n", name, v);
    return rc;
}

int bus_sink_metrics(struct bus_sink *s, struct pub_buf *b)
{
    struct bus_sink_stats st;
    bus_sink_get_stats(s, &st);
    const struct ab_bus_client_stats *c = &st.client;
    struct {
        const char *name, *type, *help;
        uint64_t v;
    } rows[] = {
        {"connected", "gauge", "1 while the query accepted our hello.", c->connected ? 1 : 0},
        {"unacked_frames", "gauge", "Frames held until the query acknowledges them.",
         c->unacked_frames},
        {"unacked_bytes", "gauge", "Bytes of those frames.", c->unacked_bytes},
        {"book_frames", "gauge", "Of which book snapshots and deltas.", c->book_frames},
        {"acked_seq", "gauge", "Highest sequence number acknowledged.", c->acked_seq},
        {"published_total", "counter", "Frames accepted by the bus client.", c->published},
        {"sent_total", "counter", "Frame writes completed, resends included.", c->sent},
        {"resent_total", "counter", "Frames sent again after a reconnect.", c->resent},
        {"refused_total", "counter", "Candles, statuses and snapshots refused at the buffer cap.",
         c->rejected_full},
        {"deltas_dropped_total", "counter",
         "Book deltas dropped at the cap or while a snapshot was due.", st.deltas_dropped},
        {"snapshots_resent_total", "counter",
         "Snapshots published after a gap, a resync request or a new query instance.",
         st.snapshots_resent},
        {"snapshots_refused_total", "counter", "Snapshot attempts refused at the cap.",
         st.snapshots_refused},
        {"resync_requests_total", "counter", "Resync requests received from the query.",
         st.resync_requests},
        {"statuses_resent_total", "counter", "Statuses sent again.", st.statuses_resent},
        {"connects_total", "counter", "Completed handshakes with the query.", c->connects},
        {"reconnects_total", "counter", "Handshakes after the first.", c->reconnects},
        {"connect_failures_total", "counter", "Connection attempts that failed.",
         c->connect_failures},
        {"protocol_errors_total", "counter", "Connections dropped for a bad frame from the query.",
         c->protocol_errors},
        {"retry_depth", "gauge", "Candles waiting in the retry list.", st.retry_depth},
        {"candles_retried_total", "counter", "Candles that went through the retry list.",
         st.candles_retried},
        {"retry_superseded_total", "counter",
         "Retry entries replaced by a newer update of the same candle.", st.retry_superseded},
        {"retry_dropped_open_total", "counter", "Open candle updates dropped at the retry cap.",
         st.retry_dropped_open},
        {"candles_lost_total", "counter",
         "Closed candles dropped at the retry cap (fetched again over REST).", st.candles_lost},
        {"invalid_total", "counter", "Messages the frame encoder refused.", st.invalid},
        {"behind", "gauge", "1 after a closed candle was dropped, until the retry list drains.",
         s->behind ? 1 : 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int rc = metric(b, rows[i].name, rows[i].type, rows[i].help, rows[i].v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int bus_sink_health(struct bus_sink *s, struct pub_buf *b)
{
    struct bus_sink_stats st;
    bus_sink_get_stats(s, &st);
    return put(b,
               ",\"bus\":{\"connected\":%s,\"unacked_frames\":%zu,\"retry_depth\":%zu,"
               "\"candles_lost\":%" PRIu64 ",\"behind\":%s}",
               st.client.connected ? "true" : "false", st.client.unacked_frames, st.retry_depth,
               st.candles_lost, s->behind ? "true" : "false");
}

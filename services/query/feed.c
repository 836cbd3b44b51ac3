/*
 * feed: bus frames -> live state, storage and acknowledgements. See feed.h.
 *
 * Locks, always taken in this order: f->mu (token pairs, retry list,
 * counters, ingest status, f->srv), then the store's or the bus server's
 * own mutex (inside their calls). f->book_mu (per-symbol bookkeeping) is
 * never held together with f->mu. Neither is held across a live_* call.
 */
#include "feed.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/bus_server.h"
#include "common/err.h"
#include "common/log.h"

#define COMP                "feed"
#define TICK_MS             1000  /* timer period: retries and periodic snapshots */
#define PERSIST_FULL_LOG_MS 10000 /* at most one "snapshot queue full" line per 10 s */
#define RING_INITIAL        256
#define DONE_CHUNK          256 /* bus tokens passed to ab_bus_server_done per call */

/* ---- a bounded FIFO of fixed-size elements that grows on demand ---- */

struct ring {
    unsigned char *v;
    size_t elem;    /* bytes per element */
    size_t cap;     /* allocated elements */
    size_t max;     /* hard cap */
    size_t head, n; /* first element, count */
};

static void ring_init(struct ring *r, size_t elem, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->elem = elem;
    r->max = max;
}

static void ring_deinit(struct ring *r)
{
    free(r->v);
    r->v = NULL;
    r->cap = r->n = r->head = 0;
}

static void *ring_at(const struct ring *r, size_t i)
{
    return r->v + ((r->head + i) % r->cap) * r->elem;
}

/* Appends a copy of e. Returns 0 or AB_ENOMEM (at the cap, or allocation). */
static int ring_push(struct ring *r, const void *e)
{
    if (r->n == r->cap) {
        if (r->cap >= r->max)
            return AB_ENOMEM;
        size_t cap = r->cap ? r->cap * 2 : RING_INITIAL;
        if (cap > r->max)
            cap = r->max;
        unsigned char *v = malloc(cap * r->elem);
        if (!v)
            return AB_ENOMEM;
        for (size_t i = 0; i < r->n; i++)
            memcpy(v + i * r->elem, ring_at(r, i), r->elem);
        free(r->v);
        r->v = v;
        r->cap = cap;
        r->head = 0;
    }
    memcpy(r->v + ((r->head + r->n) % r->cap) * r->elem, e, r->elem);
    r->n++;
    return 0;
}

static void ring_pop(struct ring *r)
{
    if (r->n == 0)
        return;
    r->head = (r->head + 1) % r->cap;
    r->n--;
}

/* ---- state ---- */

struct pair {
    uint64_t store_token; /* ours, drawn at the accepted put */
    uint64_t bus_token;   /* the bus server's */
};

struct retry {
    struct ab_candle c;
    enum store_origin origin;
    uint64_t bus_token; /* 0: a previous ingest instance's (nothing to acknowledge) */
};

/* Per-symbol bookkeeping of the book side. */
struct track {
    char symbol[AB_SYMBOL_MAX];
    int64_t resync_ms;     /* last resync request, 0 = none since the last snapshot */
    uint64_t persisted_id; /* id of the last snapshot handed to the store */
    int64_t persisted_ms;  /* when */
};

struct feed {
    struct live *live;
    struct store *store;
    const struct ab_config_symbols *symbols;
    int64_t persist_every;
    size_t window, max_books;
    char path[108];

    struct ab_bus_server *bus; /* owned; bus-thread code uses it directly */

    pthread_mutex_t mu;
    struct ab_bus_server *srv; /* == bus until feed_stop, then NULL (other threads) */
    struct ring pairs;         /* struct pair, ascending store_token */
    struct ring retry;         /* struct retry, bus order */
    uint64_t next_store_token;
    struct feed_stats st;
    struct feed_ingest_status ingest;
    bool untracked_logged;
    int64_t persist_full_log_ms; /* last "snapshot queue full" log (rate limit) */

    pthread_mutex_t book_mu;
    struct track *tracks; /* max_books */
    size_t n_tracks;
    bool tracks_full_logged;

    /* timer thread */
    pthread_mutex_t tmu;
    pthread_cond_t tcond;
    bool stopping, thread_started, bus_started, cb_installed;
    pthread_t thread;
};

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- acknowledgements (f->mu held) ---- */

/* Marks tokens done on the bus, unless the feed is stopping. */
static void done_locked(struct feed *f, const uint64_t *tokens, size_t n)
{
    if (f->srv && n > 0)
        ab_bus_server_done(f->srv, tokens, n);
}

/* Records an accepted put: its bus token waits for the commit of store_token. */
static void track_put_locked(struct feed *f, uint64_t store_token, uint64_t bus_token)
{
    f->st.candles_put++;
    if (bus_token == 0)
        return;
    struct pair p = {.store_token = store_token, .bus_token = bus_token};
    if (ring_push(&f->pairs, &p) < 0) {
        /* Cannot happen while the window bounds the pairs: the frame stays
         * unacknowledged (the ingest resends it to the next process). */
        f->st.untracked++;
        if (!f->untracked_logged)
            ab_log(AB_LOG_ERROR, COMP,
                   "cannot track a pending candle: frame left unacknowledged "
                   "pending=%zu",
                   f->pairs.n);
        f->untracked_logged = true;
    }
}

/* Queues a candle the store had no room for, behind the ones already waiting. */
static void retry_add_locked(struct feed *f, const struct ab_candle *c, enum store_origin origin,
                             uint64_t bus_token)
{
    struct retry r = {.c = *c, .origin = origin, .bus_token = bus_token};
    if (f->retry.n == f->retry.max && f->retry.n > 0 &&
        ((struct retry *)ring_at(&f->retry, 0))->bus_token == 0) {
        /* Only an earlier ingest instance's entries can fill the list past
         * the window: the new instance backfills them. */
        ring_pop(&f->retry);
        f->st.retry_dropped++;
        ab_log(AB_LOG_WARN, COMP,
               "retry list full: dropped a candle of a previous ingest instance "
               "dropped_total=%" PRIu64,
               f->st.retry_dropped);
    }
    if (ring_push(&f->retry, &r) < 0) {
        f->st.untracked++;
        if (!f->untracked_logged)
            ab_log(AB_LOG_ERROR, COMP, "retry list full: frame left unacknowledged retry=%zu",
                   f->retry.n);
        f->untracked_logged = true;
    }
}

/* Puts waiting candles into the store, oldest first, until it refuses. */
static void retry_drain_locked(struct feed *f)
{
    uint64_t invalid[DONE_CHUNK];
    size_t n_invalid = 0;
    size_t before = f->retry.n;
    while (f->retry.n > 0) {
        struct retry *r = ring_at(&f->retry, 0);
        int rc = store_put_candle(f->store, &r->c, r->origin, f->next_store_token);
        if (rc == AB_ENOMEM)
            break;
        if (rc == 0) {
            track_put_locked(f, f->next_store_token++, r->bus_token);
        } else {
            /* Validated before it was refused for room: not expected. */
            f->st.candles_invalid++;
            if (r->bus_token)
                invalid[n_invalid++] = r->bus_token;
        }
        ring_pop(&f->retry);
        if (n_invalid == DONE_CHUNK) {
            done_locked(f, invalid, n_invalid);
            n_invalid = 0;
        }
    }
    done_locked(f, invalid, n_invalid);
    if (before > 0 && f->retry.n == 0)
        ab_log(AB_LOG_INFO, COMP, "storage has room again: retry list drained");
}

/* The store's commit callback (writer thread). */
static void on_commit(uint64_t committed_token, void *arg)
{
    struct feed *f = arg;
    uint64_t tokens[DONE_CHUNK];
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    while (f->pairs.n > 0) {
        struct pair *p = ring_at(&f->pairs, 0);
        if (p->store_token > committed_token)
            break;
        tokens[n++] = p->bus_token;
        ring_pop(&f->pairs);
        f->st.candles_acked++;
        if (n == DONE_CHUNK) {
            done_locked(f, tokens, n);
            n = 0;
        }
    }
    done_locked(f, tokens, n);
    retry_drain_locked(f);
    pthread_mutex_unlock(&f->mu);
}

/* ---- the book side ---- */

/* The bookkeeping entry of symbol, added when new (book_mu held); NULL at the cap. */
static struct track *track_get(struct feed *f, const char *symbol)
{
    for (size_t i = 0; i < f->n_tracks; i++)
        if (strcmp(f->tracks[i].symbol, symbol) == 0)
            return &f->tracks[i];
    if (f->n_tracks == f->max_books) {
        if (!f->tracks_full_logged)
            ab_log(AB_LOG_WARN, COMP, "book bookkeeping full max_books=%zu symbol=%s", f->max_books,
                   symbol);
        f->tracks_full_logged = true;
        return NULL;
    }
    struct track *t = &f->tracks[f->n_tracks++];
    memset(t, 0, sizeof(*t));
    snprintf(t->symbol, sizeof(t->symbol), "%s", symbol);
    return t;
}

/* Asks the ingest for a snapshot of symbol, at most once per FEED_RESYNC_MIN_MS. */
static void maybe_resync(struct feed *f, const char *symbol, int64_t now_ms, const char *why)
{
    bool ask = false;
    pthread_mutex_lock(&f->book_mu);
    struct track *t = track_get(f, symbol);
    if (!t || t->resync_ms == 0 || now_ms - t->resync_ms >= FEED_RESYNC_MIN_MS) {
        ask = true;
        if (t)
            t->resync_ms = now_ms;
    }
    pthread_mutex_unlock(&f->book_mu);
    if (!ask)
        return;
    if (ab_bus_server_request_resync(f->bus, symbol) < 0)
        return;
    pthread_mutex_lock(&f->mu);
    f->st.resync_requests++;
    pthread_mutex_unlock(&f->mu);
    ab_log(AB_LOG_INFO, COMP, "asking the ingest for a book snapshot symbol=%s reason=\"%s\"",
           symbol, why);
}

/*
 * Hands a snapshot to the store; records it. Returns false when the store's
 * snapshot queue is full (AB_ENOMEM): the book stays due and the timer
 * tries again on a later tick. That is the normal case when many books
 * (re)sync at once: 1500 symbols at start-up meet the store's 256 pending
 * snapshots; the WARN line per symbol that gave (1244 lines at start-up,
 * then again every persist period as the books stayed in step) is one
 * rate-limited line now, and the timer stops at the first refusal instead
 * of copying every remaining book only to have it refused.
 */
static bool persist(struct feed *f, const struct ab_book_snapshot *s, int64_t taken_ms,
                    bool periodic)
{
    int rc = store_put_book_snapshot(f->store, s, taken_ms);
    bool log_full = false;
    pthread_mutex_lock(&f->mu);
    if (rc < 0)
        f->st.books_persist_failed++;
    else if (periodic)
        f->st.books_persisted_periodic++;
    else
        f->st.books_persisted++;
    if (rc == AB_ENOMEM && taken_ms - f->persist_full_log_ms >= PERSIST_FULL_LOG_MS) {
        f->persist_full_log_ms = taken_ms;
        log_full = true;
    }
    pthread_mutex_unlock(&f->mu);
    if (rc == AB_ENOMEM) {
        if (log_full)
            ab_log(AB_LOG_WARN, COMP,
                   "book snapshots deferred: the storage snapshot queue is full symbol=%s "
                   "(retried by the timer; logged at most every %d s)",
                   s->symbol, PERSIST_FULL_LOG_MS / 1000);
        return false;
    }
    if (rc < 0) {
        ab_log(AB_LOG_WARN, COMP, "book snapshot not persisted symbol=%s error=\"%s\"", s->symbol,
               ab_err_str(rc));
        return true;
    }
    pthread_mutex_lock(&f->book_mu);
    struct track *t = track_get(f, s->symbol);
    if (t) {
        t->persisted_id = s->last_update_id;
        t->persisted_ms = taken_ms;
    }
    pthread_mutex_unlock(&f->book_mu);
    return true;
}

static void on_snapshot(struct feed *f, const struct ab_bus_snapshot *bs, int64_t now_ms)
{
    enum live_action act = LIVE_IGNORED;
    int rc = live_apply_book_snapshot(f->live, &bs->s, now_ms, &act);
    pthread_mutex_lock(&f->book_mu);
    struct track *t = track_get(f, bs->s.symbol);
    if (t && rc == 0)
        t->resync_ms = 0; /* a later gap asks again at once */
    pthread_mutex_unlock(&f->book_mu);
    if (rc < 0) {
        pthread_mutex_lock(&f->mu);
        f->st.live_errors++;
        pthread_mutex_unlock(&f->mu);
        ab_log(AB_LOG_WARN, COMP, "book snapshot not applied symbol=%s error=\"%s\"", bs->s.symbol,
               ab_err_str(rc));
        if (rc == AB_EINVAL)
            maybe_resync(f, bs->s.symbol, now_ms, "malformed snapshot");
        return;
    }
    if (act == LIVE_APPLIED) {
        int64_t taken = bs->recv_us > 0 ? bs->recv_us / 1000 : now_ms;
        persist(f, &bs->s, taken, false);
    }
}

static void on_delta(struct feed *f, const struct ab_bus_delta *bd, int64_t now_ms)
{
    enum live_action act = LIVE_IGNORED;
    int rc = live_apply_book_delta(f->live, &bd->d, now_ms, &act);
    if (rc < 0 && rc != AB_EINVAL) {
        pthread_mutex_lock(&f->mu);
        f->st.live_errors++;
        pthread_mutex_unlock(&f->mu);
        ab_log(AB_LOG_WARN, COMP, "book delta not applied symbol=%s error=\"%s\"", bd->d.symbol,
               ab_err_str(rc));
        return;
    }
    if (act == LIVE_NEED_SNAPSHOT)
        maybe_resync(f, bd->d.symbol, now_ms, rc == AB_EINVAL ? "malformed delta" : "book gap");
    else if (act == LIVE_IGNORED)
        maybe_resync(f, bd->d.symbol, now_ms, "no book yet");
}

static void on_status(struct feed *f, const struct ab_bus_status *s, int64_t now_ms)
{
    enum live_ingest_state st = LIVE_INGEST_SYNCING;
    if (s->book == AB_BUS_BOOK_LIVE)
        st = LIVE_INGEST_LIVE;
    else if (s->book == AB_BUS_BOOK_RESYNCING)
        st = LIVE_INGEST_RESYNCING;
    enum live_action act = LIVE_IGNORED;
    int rc = live_apply_book_status(f->live, s->symbol, st, now_ms, &act);
    if (rc < 0) {
        pthread_mutex_lock(&f->mu);
        f->st.live_errors++;
        pthread_mutex_unlock(&f->mu);
        ab_log(AB_LOG_WARN, COMP, "status not applied symbol=%s error=\"%s\"", s->symbol,
               ab_err_str(rc));
        return;
    }
    if (s->reason[0])
        ab_log(AB_LOG_INFO, COMP,
               "ingest book status symbol=%s book=%s connection=%s reason=\"%s\"", s->symbol,
               ab_bus_book_state_name(s->book), ab_bus_conn_state_name(s->conn), s->reason);
    if (act == LIVE_NEED_SNAPSHOT)
        maybe_resync(f, s->symbol, now_ms, "book is stale");
}

/* ---- candles ---- */

static int on_candle(struct feed *f, const struct ab_bus_candle *bc, uint64_t token)
{
    enum live_action act = LIVE_IGNORED;
    int rc = live_apply_candle(f->live, &bc->c, &act);
    if (rc < 0) {
        pthread_mutex_lock(&f->mu);
        f->st.live_errors++;
        pthread_mutex_unlock(&f->mu);
        ab_log(AB_LOG_WARN, COMP, "candle not applied in memory symbol=%s error=\"%s\"",
               bc->c.symbol, ab_err_str(rc));
    }
    enum store_origin origin =
        bc->origin == AB_BUS_ORIGIN_REST ? STORE_ORIGIN_REST : STORE_ORIGIN_WS;
    int result = AB_BUS_PENDING;
    pthread_mutex_lock(&f->mu);
    f->st.candles++;
    retry_drain_locked(f);
    if (f->retry.n > 0) {
        retry_add_locked(f, &bc->c, origin, token); /* keep the order of updates */
    } else {
        rc = store_put_candle(f->store, &bc->c, origin, f->next_store_token);
        if (rc == 0) {
            track_put_locked(f, f->next_store_token++, token);
        } else if (rc == AB_ENOMEM) {
            f->st.store_full++;
            if (f->st.store_full == 1 || f->st.store_full % 10000 == 0)
                ab_log(AB_LOG_WARN, COMP,
                       "storage queue full: holding candles until it drains refused_total=%" PRIu64,
                       f->st.store_full);
            retry_add_locked(f, &bc->c, origin, token);
        } else {
            f->st.candles_invalid++;
            result = AB_BUS_DONE;
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (result == AB_BUS_DONE)
        ab_log(AB_LOG_WARN, COMP,
               "candle refused by storage, not stored symbol=%s interval=%s open_time=%" PRId64
               " error=\"%s\"",
               bc->c.symbol, ab_interval_name(bc->c.interval), bc->c.open_time, ab_err_str(rc));
    return result;
}

/* ---- the bus callbacks (bus thread) ---- */

static int64_t recv_time(const struct ab_bus_msg *m)
{
    switch (m->type) {
    case AB_BUS_CANDLE:
        return m->u.candle.recv_us;
    case AB_BUS_BOOK_SNAPSHOT:
        return m->u.snapshot.recv_us;
    case AB_BUS_BOOK_DELTA:
        return m->u.delta.recv_us;
    case AB_BUS_STATUS:
        return m->u.status.recv_us;
    default:
        return 0;
    }
}

static int on_msg(void *arg, struct ab_bus_msg *m, const struct ab_bus_delivery *dv)
{
    struct feed *f = arg;
    int64_t now_us = wall_us();
    int64_t now_ms = now_us / 1000;
    int64_t recv_us = recv_time(m);

    pthread_mutex_lock(&f->mu);
    f->ingest.last_frame_ms = now_ms;
    if (!dv->resent && recv_us > 0 && now_us >= recv_us) {
        uint64_t lat = (uint64_t)(now_us - recv_us);
        f->st.latency_count++;
        f->st.latency_sum_us += lat;
        if (lat > f->st.latency_max_us)
            f->st.latency_max_us = lat;
    }
    if (m->type == AB_BUS_BOOK_SNAPSHOT)
        f->st.snapshots++;
    else if (m->type == AB_BUS_BOOK_DELTA)
        f->st.deltas++;
    else if (m->type == AB_BUS_STATUS)
        f->st.statuses++;
    if (m->type != AB_BUS_CANDLE && f->retry.n > 0)
        retry_drain_locked(f);
    pthread_mutex_unlock(&f->mu);

    switch (m->type) {
    case AB_BUS_CANDLE:
        return on_candle(f, &m->u.candle, dv->token);
    case AB_BUS_BOOK_SNAPSHOT:
        on_snapshot(f, &m->u.snapshot, now_ms);
        return AB_BUS_DONE;
    case AB_BUS_BOOK_DELTA:
        on_delta(f, &m->u.delta, now_ms);
        return AB_BUS_DONE;
    case AB_BUS_STATUS:
        on_status(f, &m->u.status, now_ms);
        return AB_BUS_DONE;
    default:
        return AB_BUS_DONE;
    }
}

/* Books the query lacks: tracked symbols without a live book, and stale books. */
static void resync_missing(struct feed *f, struct live_book_summary *list, int64_t now_ms)
{
    size_t n = live_book_list(f->live, list, f->max_books);
    if (n > f->max_books)
        n = f->max_books;
    for (size_t i = 0; f->symbols && i < f->symbols->n; i++) {
        const char *sym = f->symbols->v[i];
        bool have = false;
        for (size_t k = 0; k < n && !have; k++)
            have = strcmp(list[k].symbol, sym) == 0 &&
                   (list[k].state == LIVE_BOOK_LIVE || list[k].state == LIVE_BOOK_RESYNCING);
        if (!have)
            maybe_resync(f, sym, now_ms, "no live book at connect");
    }
    for (size_t k = 0; k < n; k++)
        if (list[k].state == LIVE_BOOK_STALE)
            maybe_resync(f, list[k].symbol, now_ms, "stale book at connect");
}

static void on_event(void *arg, const struct ab_bus_server_event *ev)
{
    struct feed *f = arg;
    int64_t now_ms = wall_us() / 1000;
    pthread_mutex_lock(&f->mu);
    if (ev->type == AB_BUS_SERVER_CONNECTED) {
        if (ev->new_instance) {
            /* The server forgot the old instance's tokens: so do we. Its rows
             * are still committed; its waiting candles are still stored. */
            f->pairs.n = 0;
            f->pairs.head = 0;
            for (size_t i = 0; i < f->retry.n; i++)
                ((struct retry *)ring_at(&f->retry, i))->bus_token = 0;
        }
        f->ingest.connected = true;
        f->ingest.instance_id = ev->instance_id;
        snprintf(f->ingest.name, sizeof(f->ingest.name), "%s", ev->name ? ev->name : "");
    } else {
        f->ingest.connected = false;
    }
    f->ingest.since_ms = now_ms;
    pthread_mutex_unlock(&f->mu);
    /* A new instance (or our first ingest after a start): ask for the
     * books we lack. A reconnect of the same instance resumes its stream. */
    if (ev->type == AB_BUS_SERVER_CONNECTED && ev->new_instance) {
        struct live_book_summary *list = calloc(f->max_books, sizeof(*list));
        if (list)
            resync_missing(f, list, now_ms);
        free(list);
    }
}

/* ---- the timer thread ---- */

static void persist_due(struct feed *f, struct live_book_summary *list, int64_t now_ms)
{
    size_t n = live_book_list(f->live, list, f->max_books);
    if (n > f->max_books)
        n = f->max_books;
    for (size_t i = 0; i < n; i++) {
        if (list[i].state != LIVE_BOOK_LIVE || list[i].last_update_id == 0)
            continue;
        bool due = false;
        pthread_mutex_lock(&f->book_mu);
        struct track *t = track_get(f, list[i].symbol);
        if (t)
            due = t->persisted_id != list[i].last_update_id &&
                  now_ms - t->persisted_ms >= f->persist_every;
        pthread_mutex_unlock(&f->book_mu);
        if (!due)
            continue;
        struct ab_book_snapshot snap;
        int rc = live_book_get(f->live, list[i].symbol, STORE_BOOK_LEVELS_MAX, &snap, NULL);
        bool more = true;
        if (rc == 0 && snap.last_update_id != 0)
            more = persist(f, &snap, now_ms, true);
        ab_book_snapshot_deinit(&snap);
        if (!more)
            break; /* the store's queue is full: the rest stay due for the next tick */
    }
}

static void *timer_main(void *arg)
{
    struct feed *f = arg;
    struct live_book_summary *list = calloc(f->max_books, sizeof(*list));
    pthread_mutex_lock(&f->tmu);
    while (!f->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += TICK_MS / 1000;
        pthread_cond_timedwait(&f->tcond, &f->tmu, &ts);
        if (f->stopping)
            break;
        pthread_mutex_unlock(&f->tmu);

        pthread_mutex_lock(&f->mu);
        retry_drain_locked(f);
        pthread_mutex_unlock(&f->mu);
        if (f->persist_every > 0 && list)
            persist_due(f, list, wall_us() / 1000);

        pthread_mutex_lock(&f->tmu);
    }
    pthread_mutex_unlock(&f->tmu);
    free(list);
    return NULL;
}

/* ---- lifetime ---- */

static size_t round_window(size_t w)
{
    size_t r = FEED_WINDOW_MIN;
    while (r < w)
        r *= 2;
    return r;
}

int feed_new(const struct feed_config *cfg, struct feed **out)
{
    *out = NULL;
    if (!cfg || !cfg->bus_path || !cfg->live || !cfg->store)
        return AB_EINVAL;
    size_t window = cfg->window ? cfg->window : AB_BUS_SERVER_WINDOW_DEFAULT;
    size_t max_books = cfg->max_books ? cfg->max_books : LIVE_MAX_BOOKS_DEFAULT;
    if (window < FEED_WINDOW_MIN || window > FEED_WINDOW_MAX || max_books > FEED_BOOKS_MAX)
        return AB_EINVAL;
    if (strlen(cfg->bus_path) >= sizeof(((struct feed *)0)->path))
        return AB_ERANGE;
    struct feed *f = calloc(1, sizeof(*f));
    if (!f)
        return AB_ENOMEM;
    f->live = cfg->live;
    f->store = cfg->store;
    f->symbols = cfg->symbols;
    f->persist_every =
        cfg->book_persist_every_ms ? cfg->book_persist_every_ms : FEED_PERSIST_EVERY_DEFAULT;
    f->window = round_window(window);
    f->max_books = max_books;
    f->next_store_token = 1;
    snprintf(f->path, sizeof(f->path), "%s", cfg->bus_path);
    snprintf(f->ingest.path, sizeof(f->ingest.path), "%s", cfg->bus_path);
    ring_init(&f->pairs, sizeof(struct pair), f->window);
    ring_init(&f->retry, sizeof(struct retry), f->window);
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->book_mu, NULL);
    pthread_mutex_init(&f->tmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->tcond, &ca);
    pthread_condattr_destroy(&ca);
    f->tracks = calloc(max_books, sizeof(*f->tracks));
    if (!f->tracks) {
        feed_free(f);
        return AB_ENOMEM;
    }
    struct ab_bus_server_config bcfg = {
        .path = cfg->bus_path,
        .name = "abidance-query",
        .instance_id = cfg->instance_id,
        .window = f->window,
        .ack_interval_ms = cfg->ack_interval_ms,
        .on_msg = on_msg,
        .on_event = on_event,
        .arg = f,
    };
    int rc = ab_bus_server_new(&bcfg, &f->bus);
    if (rc < 0) {
        feed_free(f);
        return rc;
    }
    f->srv = f->bus;
    store_set_commit_cb(f->store, on_commit, f);
    f->cb_installed = true;
    *out = f;
    return 0;
}

int feed_start(struct feed *f)
{
    if (!f || !f->bus || f->bus_started)
        return AB_ESTATE;
    int rc = ab_bus_server_start(f->bus);
    if (rc < 0)
        return rc;
    f->bus_started = true;
    if (pthread_create(&f->thread, NULL, timer_main, f) != 0) {
        ab_log(AB_LOG_ERROR, COMP, "cannot start the feed timer thread");
        return AB_EIO;
    }
    f->thread_started = true;
    return 0;
}

void feed_stop(struct feed *f)
{
    if (!f)
        return;
    if (f->thread_started) {
        pthread_mutex_lock(&f->tmu);
        f->stopping = true;
        pthread_cond_signal(&f->tcond);
        pthread_mutex_unlock(&f->tmu);
        pthread_join(f->thread, NULL);
        f->thread_started = false;
    }
    pthread_mutex_lock(&f->mu);
    f->srv = NULL;
    f->ingest.connected = false;
    pthread_mutex_unlock(&f->mu);
    if (f->bus) {
        ab_bus_server_free(f->bus);
        f->bus = NULL;
        size_t pending = f->pairs.n + f->retry.n;
        if (pending)
            ab_log(AB_LOG_INFO, COMP,
                   "bus stopped with candles not yet acknowledged (the ingest resends them) "
                   "pending=%zu",
                   pending);
    }
}

void feed_free(struct feed *f)
{
    if (!f)
        return;
    feed_stop(f);
    if (f->cb_installed)
        store_set_commit_cb(f->store, NULL, NULL);
    ring_deinit(&f->pairs);
    ring_deinit(&f->retry);
    free(f->tracks);
    pthread_cond_destroy(&f->tcond);
    pthread_mutex_destroy(&f->tmu);
    pthread_mutex_destroy(&f->book_mu);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* ---- readers ---- */

void feed_get_stats(struct feed *f, struct feed_stats *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    out->pending = f->pairs.n;
    out->retry_depth = f->retry.n;
    pthread_mutex_unlock(&f->mu);
}

void feed_ingest_status(struct feed *f, struct feed_ingest_status *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->ingest;
    if (f->srv) {
        struct ab_bus_server_stats bs;
        ab_bus_server_stats(f->srv, &bs);
        out->acked_seq = bs.acked_seq;
    }
    pthread_mutex_unlock(&f->mu);
}

/* ---- /metrics ---- */

struct out {
    char *buf;
    size_t cap, len;
    bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        o->buf[o->len] = '\0';
        return;
    }
    o->len += (size_t)n;
}

static void metric(struct out *o, const char *name, const char *type, const char *help,
                   double value)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
}

#define COUNTER(o, name, help, v) metric(o, name, "counter", help, (double)(v))
#define GAUGE(o, name, help, v)   metric(o, name, "gauge", help, (double)(v))

static void render_bus(struct out *o, const struct ab_bus_server_stats *b, size_t window)
{
    GAUGE(o, "abidance_bus_connected", "1 while an ingest is connected to the bus.",
          b->connected ? 1 : 0);
    static const enum ab_bus_type types[] = {AB_BUS_CANDLE, AB_BUS_BOOK_SNAPSHOT, AB_BUS_BOOK_DELTA,
                                             AB_BUS_STATUS};
    put(o, "# HELP abidance_bus_frames_total Data frames delivered, by type.\n"
           "# TYPE abidance_bus_frames_total counter\n");
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        put(o, "abidance_bus_frames_total{type=\"%s\"} %" PRIu64 "\n", ab_bus_type_name(types[i]),
            b->delivered_type[types[i] & 7]);
    COUNTER(o, "abidance_bus_resent_frames_total",
            "Delivered frames the ingest had sent before (after a reconnect).",
            b->resent_delivered);
    COUNTER(o, "abidance_bus_duplicates_total",
            "Frames dropped because their seq was already delivered.", b->duplicates);
    COUNTER(o, "abidance_bus_seq_gaps_total", "Seq jumps within one ingest instance.", b->gaps);
    COUNTER(o, "abidance_bus_acks_sent_total", "Acknowledgements sent to the ingest.",
            b->acks_sent);
    GAUGE(o, "abidance_bus_acked_seq", "Last seq acknowledged to the current ingest.",
          b->acked_seq);
    GAUGE(o, "abidance_bus_outstanding_frames",
          "Frames delivered and not yet durably handled (window use).", b->outstanding);
    GAUGE(o, "abidance_bus_window_frames", "Delivery window: reading pauses at this many.", window);
    COUNTER(o, "abidance_bus_window_stalls_total", "Times reading paused for a full window.",
            b->window_stalls);
    COUNTER(o, "abidance_bus_handshakes_total", "Ingest hellos accepted.", b->handshakes);
    COUNTER(o, "abidance_bus_replaced_total", "Ingest connections replaced by a new one.",
            b->replaced);
    COUNTER(o, "abidance_bus_disconnects_total", "Ingest connections that ended.", b->disconnects);
    COUNTER(o, "abidance_bus_protocol_errors_total",
            "Connections dropped for a malformed or unexpected frame.", b->protocol_errors);
    COUNTER(o, "abidance_bus_hello_timeouts_total", "Connections dropped for not saying hello.",
            b->hello_timeouts);
    COUNTER(o, "abidance_bus_refused_total", "Connections refused: too many waiting for hello.",
            b->refused);
    COUNTER(o, "abidance_bus_resyncs_sent_total", "Resync requests sent to the ingest.",
            b->resyncs_sent);
}

static void render_feed(struct out *o, const struct feed_stats *s)
{
    COUNTER(o, "abidance_feed_candles_total", "Candle frames received from the bus.", s->candles);
    COUNTER(o, "abidance_feed_candles_stored_total", "Candle updates accepted by storage.",
            s->candles_put);
    COUNTER(o, "abidance_feed_candles_acked_total",
            "Candle frames acknowledged after their commit.", s->candles_acked);
    COUNTER(o, "abidance_feed_candles_invalid_total",
            "Candle frames storage refused as invalid (acknowledged, not stored).",
            s->candles_invalid);
    COUNTER(o, "abidance_feed_store_full_total",
            "Candle puts refused because the storage queue was full (held and retried).",
            s->store_full);
    COUNTER(o, "abidance_feed_retry_dropped_total",
            "Held candles of a previous ingest instance dropped at the cap.", s->retry_dropped);
    COUNTER(o, "abidance_feed_untracked_total",
            "Frames that could not be tracked and stay unacknowledged (should be 0).",
            s->untracked);
    GAUGE(o, "abidance_feed_pending_candles", "Candle frames stored, waiting for their commit.",
          s->pending);
    GAUGE(o, "abidance_feed_retry_candles", "Candle frames waiting for room in storage.",
          s->retry_depth);
    COUNTER(o, "abidance_feed_resync_requests_total", "Book snapshots asked of the ingest.",
            s->resync_requests);
    put(o,
        "# HELP abidance_feed_book_snapshots_persisted_total Book snapshots handed to "
        "storage.\n# TYPE abidance_feed_book_snapshots_persisted_total counter\n"
        "abidance_feed_book_snapshots_persisted_total{trigger=\"resync\"} %" PRIu64 "\n"
        "abidance_feed_book_snapshots_persisted_total{trigger=\"periodic\"} %" PRIu64 "\n",
        s->books_persisted, s->books_persisted_periodic);
    COUNTER(o, "abidance_feed_book_persist_failures_total", "Book snapshots storage refused.",
            s->books_persist_failed);
    COUNTER(o, "abidance_feed_live_errors_total", "Frames the in-memory state refused.",
            s->live_errors);
    put(o,
        "# HELP abidance_feed_latency_seconds Ingest receive to query delivery (frames not "
        "resent).\n# TYPE abidance_feed_latency_seconds summary\n"
        "abidance_feed_latency_seconds_sum %.6f\nabidance_feed_latency_seconds_count %" PRIu64 "\n",
        (double)s->latency_sum_us / 1e6, s->latency_count);
    GAUGE(o, "abidance_feed_latency_max_seconds", "Largest ingest-to-query latency seen.",
          (double)s->latency_max_us / 1e6);
}

static void render_live(struct out *o, const struct live_stats *l)
{
    COUNTER(o, "abidance_live_candles_applied_total", "Candle updates applied in memory.",
            l->candles_applied);
    COUNTER(o, "abidance_live_candles_duplicate_total", "Candle updates already known.",
            l->candles_duplicate);
    COUNTER(o, "abidance_live_candles_ignored_total",
            "Candle updates refused (final candle or older version).", l->candles_ignored);
    COUNTER(o, "abidance_live_candles_evicted_total", "Candles evicted from full rings.",
            l->candles_evicted);
    COUNTER(o, "abidance_live_series_refused_total", "New series refused at the cap.",
            l->series_refused);
    COUNTER(o, "abidance_live_snapshots_loaded_total", "Book snapshots loaded.",
            l->snapshots_loaded);
    COUNTER(o, "abidance_live_deltas_applied_total", "Book deltas applied.", l->deltas_applied);
    COUNTER(o, "abidance_live_deltas_duplicate_total", "Book deltas already applied.",
            l->deltas_duplicate);
    COUNTER(o, "abidance_live_deltas_ignored_total", "Book deltas without a valid book.",
            l->deltas_ignored);
    COUNTER(o, "abidance_live_book_gaps_total", "Book deltas that did not continue the book.",
            l->book_gaps);
    COUNTER(o, "abidance_live_books_refused_total", "New books refused at the cap.",
            l->books_refused);
    GAUGE(o, "abidance_live_series", "Candle series in memory.", l->series);
    GAUGE(o, "abidance_live_books", "Order books in memory.", l->books);
}

int feed_metrics_render(struct feed *f, char *buf, size_t cap)
{
    if (!f || !buf || cap == 0)
        return AB_EINVAL;
    size_t len = strnlen(buf, cap);
    if (len == cap)
        return AB_ERANGE;
    struct out o = {.buf = buf, .cap = cap, .len = len};
    struct ab_bus_server_stats bs;
    struct feed_stats fs;
    struct live_stats ls;
    bool have_bus = false;
    memset(&bs, 0, sizeof(bs));
    pthread_mutex_lock(&f->mu);
    if (f->srv) {
        ab_bus_server_stats(f->srv, &bs);
        have_bus = true;
    }
    fs = f->st;
    fs.pending = f->pairs.n;
    fs.retry_depth = f->retry.n;
    pthread_mutex_unlock(&f->mu);
    live_get_stats(f->live, &ls);
    if (have_bus)
        render_bus(&o, &bs, f->window);
    render_feed(&o, &fs);
    render_live(&o, &ls);
    return o.full ? AB_ERANGE : (int)o.len;
}

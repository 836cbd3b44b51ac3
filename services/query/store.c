/*
 * store: PostgreSQL storage for abidance-query. See store.h for the contract.
 *
 * Batching method, measured with bench/bench_store.c: 50,000 distinct 1m
 * candles upserted into an empty key range ("insert"), then again over the
 * existing rows ("update", the DO UPDATE path); PostgreSQL 15 over a Unix
 * socket, the test fixture's cluster (fsync and synchronous_commit off), a
 * busy 2-core machine. Rows/s, range over three runs:
 *
 *   method                                          insert            update
 *   per-row prepared upsert, autocommit             11,500-18,900     12,100-16,100
 *   per-row prepared upsert, one transaction        10,900-19,800     10,900-11,900
 *   per-row prepared upsert, pipeline mode          35,800-37,300     28,200-31,500
 *   multi-row VALUES upsert, 1000 rows/statement    29,100-38,200     22,000-30,500
 *   COPY into temp table + INSERT ... SELECT        69,600-157,300    50,000-91,200
 *   unnest($n arrays) upsert, 5000 rows/statement  106,400-126,100    68,500-76,700
 *   store end to end (put + flush)                 106,200-117,700    70,900-75,000
 *
 * With 20-row batches (the live case: a few candles per flush) unnest did
 * ~46,000 rows/s against ~11,000-17,000 for COPY, whose four round trips
 * (BEGIN, COPY, INSERT ... SELECT, COMMIT) dominate small batches.
 * On bulk, unnest of one text array per column is about as fast as COPY
 * through a staging table (COPY was ahead in some runs, behind in others),
 * 3-10x faster than row-by-row, and it needs one prepared statement and one
 * round trip per batch (no temp table, no transaction block: one statement
 * is atomic) with no 65535-parameter limit. That is what the writer uses.
 *
 * Issue #7 (the suite's figure, bench_store --figure: 200,000 distinct 1m
 * candles of one symbol put with backpressure then all updated, against the
 * seed's one autocommitted upsert per row). The PostgreSQL backend runs the
 * writer's statement at 100% of a core, so it is what bounds the store; on
 * this shared 2-core machine wall-clock rows/s swing 2x with the neighbours'
 * load, so each change was judged by the backend's CPU time per row (the
 * figure prints it), three runs each on a fresh fixture cluster:
 *
 *   change                                          backend CPU us/row
 *   before (unnest in FROM, regex symbol CHECK)     9.45-10.18
 *   unnest in the target list (pgsql.h)             8.68-9.35   (-6%)
 *   + migration 003: symbol CHECK without regex     7.33-7.62   (-17%)
 *   + migration 003: fillfactor 90                  6.90-7.85   (no change here)
 *
 * perf of the backend after those changes: ON CONFLICT's work dominates,
 * the speculative pre-check probe of the primary key (~20%) and the index
 * insert itself (~27%, both mostly _bt_compare on the text key columns),
 * then the remaining CHECKs (~15%: numeric >= 0 detoasts each short
 * numeric), heap_update (~10%), parsing the text arrays at bind (array_in
 * with numeric_in, ~8.5%) and WAL inserts (~4%). fillfactor buys nothing in
 * a figure that updates each row once (the pages are full); it is for the
 * live case, where the open candle of each series is rewritten every few
 * seconds and free space on its page keeps those updates HOT.
 * Not done: binary array parameters (bind-time parsing is ~8% of the
 * backend, so they can buy at most that), and a second writer connection
 * (the figure writes one series, and the backend already needs a core of
 * the two this machine has).
 *
 * Threads: the writer thread owns wconn and the column buffers; everything
 * else shared (queue, in-flight batch count, snapshots, stats) is under mu.
 * Readers take a pool connection under rmu and use it unlocked.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "pgconn.h"
#include "pgmigrate.h"
#include "pgsql.h"

#define NIL UINT32_MAX

/* Reconnect policy of the writer. */
static const struct {
    int64_t initial_ms, max_ms;
} backoff_policy = {100, 5000};

/* The writer checks an idle connection this often (keeps db_up honest). */
#define IDLE_PING_MS 2000
/* Longest a reader waits for a free pool connection. */
#define READER_WAIT_MS 10000
/* Bytes per element per column buffer: a quoted symbol (33) or a decimal
 * (AB_DEC_STR_MAX) plus the separator, rounded up. */
#define ELEM_MAX 48

struct qent {
    struct ab_candle c;
    uint64_t min_token;            /* first token coalesced here and not yet durable; 0 none */
    uint32_t fifo_prev, fifo_next; /* FIFO by first insertion; free list uses fifo_next */
    uint32_t hnext;                /* hash chain */
    uint8_t origin;
    bool used;
};

struct row {
    struct ab_candle c;
    uint64_t min_token;
    uint8_t origin;
};

struct snap_slot {
    bool used;
    int64_t taken_at;
    struct ab_book_snapshot s; /* owns its level arrays */
};

/* A bounded text buffer; overflow is sticky and checked once at the end. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool overflow;
};

struct reader {
    PGconn *conn;
    bool busy;
};

struct store {
    char *url;
    size_t queue_cap, batch_max, n_readers, snapshot_cap, snapshot_keep;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* writer: work arrived or stop asked */
    pthread_cond_t idle; /* flushers: the writer finished a unit of work */

    /* Pending candles: entries[queue_cap], chained hash, FIFO list. */
    struct qent *ents;
    uint32_t *buckets;
    uint32_t bucket_mask;
    uint32_t free_head, fifo_head, fifo_tail;
    size_t q_len;

    /* In-flight batch: filled under mu, written by the writer unlocked. */
    struct row *batch;
    size_t batch_n;

    /* Pending snapshots, at most one per symbol. */
    struct snap_slot *snaps;
    size_t snaps_n;
    bool snap_inflight;

    uint64_t max_token, reported_token;

    pthread_t thread;
    bool running, stopping;
    int64_t stop_deadline; /* monotonic ms */
    store_commit_cb cb;
    void *cb_arg;

    PGconn *wconn;                               /* writer thread only */
    struct sbuf cols[PG_UPSERT_CANDLES_NPARAMS]; /* writer thread only */

    struct store_stats stats; /* under mu */

    pthread_mutex_t rmu;
    pthread_cond_t rfree;
    struct reader *readers;
};

/* ---- small helpers ---- */

static void sbuf_reset(struct sbuf *b)
{
    b->len = 0;
    b->overflow = false;
    if (b->cap > 0) {
        b->p[0] = '\0';
    }
}

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->overflow || b->len + n + 1 > b->cap) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sbuf_str(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

static void sbuf_dec(struct sbuf *b, struct ab_dec d)
{
    char tmp[AB_DEC_STR_MAX];
    size_t n = ab_dec_format(d, tmp);

    sbuf_add(b, tmp, n);
}

static void sbuf_i64(struct sbuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);

    sbuf_add(b, tmp, (size_t)n);
}

static void deadline_ts(int64_t mono_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t mono_ms)
{
    struct timespec ts;

    deadline_ts(mono_ms, &ts);
    pthread_cond_timedwait(cv, mu, &ts);
}

static int cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_condattr_init(&attr) != 0) {
        return AB_ENOMEM;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(cv, &attr) == 0 ? 0 : AB_ENOMEM;
    pthread_condattr_destroy(&attr);
    return rc;
}

static bool symbol_ok(const char *s)
{
    size_t n = strnlen(s, AB_SYMBOL_MAX);

    return n < AB_SYMBOL_MAX && ab_symbol_valid(s, n);
}

static bool ms_ok(int64_t ms)
{
    return ms >= STORE_MS_MIN && ms <= STORE_MS_MAX;
}

/* ---- the coalescing queue (all under mu) ---- */

static uint32_t key_hash(const char *symbol, enum ab_interval iv, int64_t open_time)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)symbol; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ULL;
    }
    h = (h ^ (uint64_t)iv) * 1099511628211ULL;
    h = (h ^ (uint64_t)open_time) * 1099511628211ULL;
    return (uint32_t)(h ^ (h >> 32));
}

static uint32_t q_find(struct store *st, const struct ab_candle *c, uint32_t h)
{
    for (uint32_t i = st->buckets[h & st->bucket_mask]; i != NIL; i = st->ents[i].hnext) {
        const struct qent *e = &st->ents[i];

        if (e->c.open_time == c->open_time && e->c.interval == c->interval &&
            strcmp(e->c.symbol, c->symbol) == 0) {
            return i;
        }
    }
    return NIL;
}

static void q_insert(struct store *st, const struct ab_candle *c, uint8_t origin, uint64_t token,
                     uint32_t h)
{
    uint32_t i = st->free_head;
    struct qent *e = &st->ents[i];

    st->free_head = e->fifo_next;
    e->c = *c;
    e->origin = origin;
    e->min_token = token;
    e->used = true;
    e->hnext = st->buckets[h & st->bucket_mask];
    st->buckets[h & st->bucket_mask] = i;
    e->fifo_next = NIL;
    e->fifo_prev = st->fifo_tail;
    if (st->fifo_tail != NIL) {
        st->ents[st->fifo_tail].fifo_next = i;
    } else {
        st->fifo_head = i;
    }
    st->fifo_tail = i;
    st->q_len++;
}

/* Moves the oldest entry into *out and frees its slot. */
static void q_pop_front(struct store *st, struct row *out)
{
    uint32_t i = st->fifo_head;
    struct qent *e = &st->ents[i];
    uint32_t h = key_hash(e->c.symbol, e->c.interval, e->c.open_time);
    uint32_t *link = &st->buckets[h & st->bucket_mask];

    while (*link != i) {
        link = &st->ents[*link].hnext;
    }
    *link = e->hnext;
    st->fifo_head = e->fifo_next;
    if (st->fifo_head != NIL) {
        st->ents[st->fifo_head].fifo_prev = NIL;
    } else {
        st->fifo_tail = NIL;
    }
    out->c = e->c;
    out->origin = e->origin;
    out->min_token = e->min_token;
    e->used = false;
    e->fifo_next = st->free_head;
    st->free_head = i;
    st->q_len--;
}

/* Every put with a token <= the result is durable (see store_commit_cb),
 * once the in-flight batch has committed. */
static uint64_t watermark(struct store *st)
{
    uint64_t low = UINT64_MAX;

    for (uint32_t i = st->fifo_head; i != NIL; i = st->ents[i].fifo_next) {
        uint64_t t = st->ents[i].min_token;

        if (t != 0 && t < low) {
            low = t;
        }
    }
    return low == UINT64_MAX ? st->max_token : low - 1;
}

static bool work_empty(const struct store *st)
{
    return st->q_len == 0 && st->batch_n == 0 && st->snaps_n == 0 && !st->snap_inflight;
}

/* ---- lifecycle ---- */

int store_new(const struct store_config *cfg, struct store **out)
{
    struct store *st;
    size_t nb = 1;

    *out = NULL;
    /* An empty URL is valid: libpq then uses the PG* variables and its
     * default local socket. */
    if (cfg == NULL || cfg->database_url == NULL) {
        return AB_EINVAL;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL) {
        return AB_ENOMEM;
    }
    st->queue_cap = cfg->queue_cap != 0 ? cfg->queue_cap : 100000;
    st->batch_max = cfg->batch_max != 0 ? cfg->batch_max : 5000;
    st->n_readers = cfg->reader_conns != 0 ? cfg->reader_conns : 4;
    st->snapshot_cap = cfg->snapshot_cap != 0 ? cfg->snapshot_cap : 256;
    st->snapshot_keep = cfg->snapshot_keep != 0 ? cfg->snapshot_keep : 100;
    if (st->queue_cap >= NIL / 2 || st->batch_max > 1000000 || st->n_readers > 64 ||
        st->snapshot_cap > 100000) {
        free(st);
        return AB_ERANGE;
    }
    while (nb < st->queue_cap * 2) {
        nb <<= 1;
    }
    st->bucket_mask = (uint32_t)(nb - 1);
    st->url = strdup(cfg->database_url);
    st->ents = calloc(st->queue_cap, sizeof *st->ents);
    st->buckets = malloc(nb * sizeof *st->buckets);
    st->batch = calloc(st->batch_max, sizeof *st->batch);
    st->snaps = calloc(st->snapshot_cap, sizeof *st->snaps);
    st->readers = calloc(st->n_readers, sizeof *st->readers);
    if (st->url == NULL || st->ents == NULL || st->buckets == NULL || st->batch == NULL ||
        st->snaps == NULL || st->readers == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < PG_UPSERT_CANDLES_NPARAMS; i++) {
        st->cols[i].cap = st->batch_max * ELEM_MAX + 16;
        st->cols[i].p = malloc(st->cols[i].cap);
        if (st->cols[i].p == NULL) {
            goto fail;
        }
    }
    for (size_t i = 0; i < nb; i++) {
        st->buckets[i] = NIL;
    }
    for (size_t i = 0; i < st->queue_cap; i++) {
        st->ents[i].fifo_next = i + 1 < st->queue_cap ? (uint32_t)(i + 1) : NIL;
    }
    st->free_head = 0;
    st->fifo_head = st->fifo_tail = NIL;
    st->stats.queue_cap = st->queue_cap;
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    if (cond_init_mono(&st->wake) != 0 || cond_init_mono(&st->idle) != 0 ||
        cond_init_mono(&st->rfree) != 0) {
        /* pthread_cond_init does not fail on Linux; treat it as memory. */
        goto fail;
    }
    *out = st;
    return 0;
fail:
    for (size_t i = 0; i < PG_UPSERT_CANDLES_NPARAMS; i++) {
        free(st->cols[i].p);
    }
    free(st->readers);
    free(st->snaps);
    free(st->batch);
    free(st->buckets);
    free(st->ents);
    free(st->url);
    free(st);
    return AB_ENOMEM;
}

void store_free(struct store *st)
{
    if (st == NULL) {
        return;
    }
    store_stop(st, 0);
    for (size_t i = 0; i < st->n_readers; i++) {
        PQfinish(st->readers[i].conn);
    }
    for (size_t i = 0; i < st->snapshot_cap; i++) {
        ab_book_snapshot_deinit(&st->snaps[i].s);
    }
    for (size_t i = 0; i < PG_UPSERT_CANDLES_NPARAMS; i++) {
        free(st->cols[i].p);
    }
    pthread_cond_destroy(&st->rfree);
    pthread_cond_destroy(&st->idle);
    pthread_cond_destroy(&st->wake);
    pthread_mutex_destroy(&st->rmu);
    pthread_mutex_destroy(&st->mu);
    free(st->readers);
    free(st->snaps);
    free(st->batch);
    free(st->buckets);
    free(st->ents);
    free(st->url);
    free(st);
}

void store_set_commit_cb(struct store *st, store_commit_cb cb, void *arg)
{
    pthread_mutex_lock(&st->mu);
    st->cb = cb;
    st->cb_arg = arg;
    pthread_mutex_unlock(&st->mu);
}

/* ---- puts ---- */

int store_put_candle(struct store *st, const struct ab_candle *c, enum store_origin origin,
                     uint64_t token)
{
    const char *reason = NULL;
    uint32_t h, i;

    if (c == NULL || !symbol_ok(c->symbol) || (unsigned)c->interval >= AB_I_COUNT ||
        (origin != STORE_ORIGIN_WS && origin != STORE_ORIGIN_REST)) {
        return AB_EINVAL;
    }
    if (!ms_ok(c->open_time) || !ms_ok(c->close_time)) {
        return AB_ERANGE;
    }
    if (ab_candle_validate(c, &reason) != 0) {
        return AB_EINVAL;
    }
    h = key_hash(c->symbol, c->interval, c->open_time);
    pthread_mutex_lock(&st->mu);
    i = q_find(st, c, h);
    if (i != NIL) {
        struct qent *e = &st->ents[i];

        /* A closed candle is final: a later open update changes nothing. */
        if (!e->c.closed || c->closed) {
            e->c = *c;
            e->origin = (uint8_t)origin;
        }
        if (e->min_token == 0) {
            e->min_token = token;
        }
    } else if (st->q_len >= st->queue_cap) {
        st->stats.rejected_full++;
        pthread_mutex_unlock(&st->mu);
        return AB_ENOMEM;
    } else {
        q_insert(st, c, (uint8_t)origin, token, h);
    }
    if (token > st->max_token) {
        st->max_token = token;
    }
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static int copy_levels(const struct ab_level *src, size_t n, struct ab_level **dst)
{
    *dst = NULL;
    if (n == 0) {
        return 0;
    }
    *dst = malloc(n * sizeof **dst);
    if (*dst == NULL) {
        return AB_ENOMEM;
    }
    memcpy(*dst, src, n * sizeof **dst);
    return 0;
}

int store_put_book_snapshot(struct store *st, const struct ab_book_snapshot *snap,
                            int64_t taken_at_ms)
{
    struct ab_book_snapshot copy = {0};
    struct snap_slot *slot = NULL;
    int rc;

    if (snap == NULL || !symbol_ok(snap->symbol) || (snap->n_bids > 0 && snap->bids == NULL) ||
        (snap->n_asks > 0 && snap->asks == NULL)) {
        return AB_EINVAL;
    }
    if (snap->n_bids > STORE_BOOK_LEVELS_MAX || snap->n_asks > STORE_BOOK_LEVELS_MAX ||
        snap->last_update_id > (uint64_t)INT64_MAX || !ms_ok(taken_at_ms)) {
        return AB_ERANGE;
    }
    memcpy(copy.symbol, snap->symbol, sizeof copy.symbol);
    copy.last_update_id = snap->last_update_id;
    copy.n_bids = snap->n_bids;
    copy.n_asks = snap->n_asks;
    rc = copy_levels(snap->bids, snap->n_bids, &copy.bids);
    if (rc == 0) {
        rc = copy_levels(snap->asks, snap->n_asks, &copy.asks);
    }
    if (rc != 0) {
        ab_book_snapshot_deinit(&copy);
        return rc;
    }
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->snapshot_cap; i++) {
        struct snap_slot *s = &st->snaps[i];

        if (s->used && strcmp(s->s.symbol, copy.symbol) == 0) {
            slot = s; /* a newer snapshot replaces the pending one */
            ab_book_snapshot_deinit(&s->s);
            st->snaps_n--;
            s->used = false;
            break;
        }
        if (!s->used && slot == NULL) {
            slot = s;
        }
    }
    if (slot == NULL) {
        st->stats.snapshots_dropped++;
        pthread_mutex_unlock(&st->mu);
        ab_book_snapshot_deinit(&copy);
        return AB_ENOMEM;
    }
    slot->s = copy;
    slot->taken_at = taken_at_ms;
    slot->used = true;
    st->snaps_n++;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

/* ---- the writer ---- */

static void note_ok(struct store *st)
{
    pthread_mutex_lock(&st->mu);
    st->stats.db_up = true;
    st->stats.last_ok_ms = pg_wall_ms();
    pthread_mutex_unlock(&st->mu);
}

static void note_error(struct store *st, const char *what, const char *err)
{
    bool was_up, first;

    pthread_mutex_lock(&st->mu);
    was_up = st->stats.db_up;
    first = st->stats.db_errors == 0;
    st->stats.db_up = false;
    st->stats.db_errors++;
    /* A long libpq message is cut to fit: last_error is a summary. */
    if (snprintf(st->stats.last_error, sizeof st->stats.last_error, "%s: %s", what, err) < 0) {
        st->stats.last_error[0] = '\0';
    }
    pthread_mutex_unlock(&st->mu);
    /* Log the transition (and the very first failure), not every retry. */
    ab_log(was_up || first ? AB_LOG_WARN : AB_LOG_DEBUG, "store",
           "database unavailable during %s error=\"%s\"", what, err);
}

static void writer_close(struct store *st)
{
    PQfinish(st->wconn);
    st->wconn = NULL;
    pthread_mutex_lock(&st->mu);
    st->stats.db_up = false;
    pthread_mutex_unlock(&st->mu);
}

static int prepare(PGconn *c, const char *name, const char *sql, char *err)
{
    return pg_check(c, PQprepare(c, name, sql, 0, NULL), PGRES_COMMAND_OK, err);
}

static int writer_connect(struct store *st, char *err)
{
    int version = 0, applied = 0, rc;
    bool was_down;

    rc = pg_connect(st->url, &st->wconn, err);
    if (rc != 0) {
        return rc;
    }
    rc = pg_migrate(st->wconn, &version, &applied, err);
    if (rc == 0) {
        rc = prepare(st->wconn, PG_UPSERT_CANDLES_NAME, PG_UPSERT_CANDLES, err);
    }
    if (rc == 0) {
        rc = prepare(st->wconn, PG_UPSERT_CANDLE_NAME, PG_UPSERT_CANDLE, err);
    }
    if (rc == 0) {
        rc = prepare(st->wconn, PG_PUT_SNAPSHOT_NAME, PG_PUT_SNAPSHOT, err);
    }
    if (rc == 0) {
        rc = prepare(st->wconn, PG_PRUNE_SNAPSHOTS_NAME, PG_PRUNE_SNAPSHOTS, err);
    }
    if (rc != 0) {
        PQfinish(st->wconn);
        st->wconn = NULL;
        /* A failed migration will fail again; still retry (with backoff) so
         * the service heals once an operator fixes the database. */
        return rc;
    }
    pthread_mutex_lock(&st->mu);
    was_down = !st->stats.db_up;
    st->stats.schema_version = version;
    st->stats.db_up = true;
    st->stats.last_ok_ms = pg_wall_ms();
    pthread_mutex_unlock(&st->mu);
    ab_log(was_down ? AB_LOG_INFO : AB_LOG_DEBUG, "store",
           "writer connected schema_version=%d migrations_applied=%d", version, applied);
    return 0;
}

/* Fills the column arrays for rows[0..n). */
static int build_columns(struct store *st, const struct row *rows, size_t n)
{
    struct sbuf *col = st->cols;

    for (size_t k = 0; k < PG_UPSERT_CANDLES_NPARAMS; k++) {
        sbuf_reset(&col[k]);
        sbuf_str(&col[k], "{");
    }
    for (size_t i = 0; i < n; i++) {
        const struct ab_candle *c = &rows[i].c;

        if (i > 0) {
            for (size_t k = 0; k < PG_UPSERT_CANDLES_NPARAMS; k++) {
                sbuf_str(&col[k], ",");
            }
        }
        /* Text elements are quoted: a symbol may well be spelled NULL. */
        sbuf_str(&col[0], "\"");
        sbuf_str(&col[0], c->symbol);
        sbuf_str(&col[0], "\"");
        sbuf_str(&col[1], "\"");
        sbuf_str(&col[1], ab_interval_name(c->interval));
        sbuf_str(&col[1], "\"");
        sbuf_i64(&col[2], c->open_time);
        sbuf_dec(&col[3], c->open);
        sbuf_dec(&col[4], c->high);
        sbuf_dec(&col[5], c->low);
        sbuf_dec(&col[6], c->close);
        sbuf_dec(&col[7], c->volume);
        sbuf_i64(&col[8], c->num_trades);
        sbuf_dec(&col[9], c->taker_buy_volume);
        sbuf_dec(&col[10], c->taker_buy_quote_volume);
        sbuf_i64(&col[11], c->close_time);
        sbuf_dec(&col[12], c->quote_volume);
        sbuf_str(&col[13], c->closed ? "t" : "f");
        sbuf_str(&col[14], rows[i].origin == STORE_ORIGIN_REST ? "\"rest\"" : "\"ws\"");
    }
    for (size_t k = 0; k < PG_UPSERT_CANDLES_NPARAMS; k++) {
        sbuf_str(&col[k], "}");
        if (col[k].overflow) {
            return AB_ENOMEM; /* ELEM_MAX is wrong: a bug, not a runtime condition */
        }
    }
    return 0;
}

/* Hard-error fallback: one statement per row; rows that fail hard are dropped. */
static int write_rows_one_by_one(struct store *st, char *err)
{
    uint64_t dropped = 0;

    for (size_t i = 0; i < st->batch_n; i++) {
        const struct ab_candle *c = &st->batch[i].c;
        char vals[PG_UPSERT_CANDLES_NPARAMS][AB_DEC_STR_MAX];
        const char *params[PG_UPSERT_CANDLES_NPARAMS];
        struct ab_dec decs[] = {c->open,
                                c->high,
                                c->low,
                                c->close,
                                c->volume,
                                c->taker_buy_volume,
                                c->taker_buy_quote_volume};
        int rc;

        snprintf(vals[0], sizeof vals[0], "%s", c->symbol);
        snprintf(vals[1], sizeof vals[1], "%s", ab_interval_name(c->interval));
        snprintf(vals[2], sizeof vals[2], "%" PRId64, c->open_time);
        for (size_t k = 0; k < 5; k++) {
            ab_dec_format(decs[k], vals[3 + k]);
        }
        snprintf(vals[8], sizeof vals[8], "%" PRId64, c->num_trades);
        ab_dec_format(decs[5], vals[9]);
        ab_dec_format(decs[6], vals[10]);
        snprintf(vals[11], sizeof vals[11], "%" PRId64, c->close_time);
        ab_dec_format(c->quote_volume, vals[12]);
        snprintf(vals[13], sizeof vals[13], "%s", c->closed ? "t" : "f");
        snprintf(vals[14], sizeof vals[14], "%s",
                 st->batch[i].origin == STORE_ORIGIN_REST ? "rest" : "ws");
        for (size_t k = 0; k < PG_UPSERT_CANDLES_NPARAMS; k++) {
            params[k] = vals[k];
        }
        rc = pg_check(st->wconn,
                      PQexecPrepared(st->wconn, PG_UPSERT_CANDLE_NAME, PG_UPSERT_CANDLES_NPARAMS,
                                     params, NULL, NULL, 0),
                      PGRES_COMMAND_OK, err);
        if (rc == AB_EDB_RETRY) {
            return rc; /* the whole batch is retried later: idempotent */
        }
        if (rc != 0) {
            dropped++;
            ab_log(AB_LOG_ERROR, "store",
                   "candle dropped symbol=%s interval=%s open_time=%" PRId64 " error=\"%s\"",
                   c->symbol, ab_interval_name(c->interval), c->open_time, err);
        }
    }
    pthread_mutex_lock(&st->mu);
    st->stats.rows_dropped += dropped;
    pthread_mutex_unlock(&st->mu);
    return 0;
}

static int write_batch(struct store *st, char *err)
{
    const char *params[PG_UPSERT_CANDLES_NPARAMS];
    size_t n = st->batch_n;
    uint64_t wm;
    bool advanced;
    store_commit_cb cb;
    void *cb_arg;
    int rc;

    rc = build_columns(st, st->batch, n);
    if (rc != 0) {
        snprintf(err, PG_ERR_MAX, "batch text buffer overflow");
        return AB_EDB;
    }
    for (size_t k = 0; k < PG_UPSERT_CANDLES_NPARAMS; k++) {
        params[k] = st->cols[k].p;
    }
    rc = pg_check(st->wconn,
                  PQexecPrepared(st->wconn, PG_UPSERT_CANDLES_NAME, PG_UPSERT_CANDLES_NPARAMS,
                                 params, NULL, NULL, 0),
                  PGRES_COMMAND_OK, err);
    if (rc == AB_EDB) {
        ab_log(AB_LOG_ERROR, "store", "batch failed, retrying row by row rows=%zu error=\"%s\"", n,
               err);
        pthread_mutex_lock(&st->mu);
        st->stats.db_errors++;
        /* "batch: " plus as much of the message as fits. */
        snprintf(st->stats.last_error, sizeof st->stats.last_error, "batch: %.*s",
                 (int)(sizeof st->stats.last_error - 8), err);
        pthread_mutex_unlock(&st->mu);
        rc = write_rows_one_by_one(st, err);
    }
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_lock(&st->mu);
    st->stats.rows_written += n;
    st->stats.batches++;
    st->stats.batch_size_sum += n;
    if (n > st->stats.batch_size_max) {
        st->stats.batch_size_max = n;
    }
    st->stats.db_up = true;
    st->stats.last_ok_ms = pg_wall_ms();
    wm = watermark(st);
    advanced = wm > st->reported_token;
    if (advanced) {
        st->reported_token = wm;
    }
    cb = st->cb;
    cb_arg = st->cb_arg;
    pthread_mutex_unlock(&st->mu);
    ab_log(AB_LOG_DEBUG, "store", "batch committed rows=%zu", n);
    /* The batch counts as in flight until the callback returns, so a
     * store_flush that returns has seen its acknowledgement. */
    if (advanced && cb != NULL) {
        cb(wm, cb_arg);
    }
    pthread_mutex_lock(&st->mu);
    st->batch_n = 0;
    pthread_cond_broadcast(&st->idle);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

/* "{{p,q},{p,q}}" or "{}" into a malloc'd string (*out, caller frees). */
static int levels_text(const struct ab_level *lv, size_t n, char **out)
{
    struct sbuf b = {0};

    b.cap = n * (2 * AB_DEC_STR_MAX + 4) + 4;
    b.p = malloc(b.cap);
    if (b.p == NULL) {
        return AB_ENOMEM;
    }
    sbuf_reset(&b);
    sbuf_str(&b, "{");
    for (size_t i = 0; i < n; i++) {
        sbuf_str(&b, i > 0 ? ",{" : "{");
        sbuf_dec(&b, lv[i].price);
        sbuf_str(&b, ",");
        sbuf_dec(&b, lv[i].qty);
        sbuf_str(&b, "}");
    }
    sbuf_str(&b, "}");
    if (b.overflow) {
        free(b.p);
        return AB_ENOMEM;
    }
    *out = b.p;
    return 0;
}

static int write_snapshot(struct store *st, const struct snap_slot *s, char *err)
{
    char *bids = NULL, *asks = NULL;
    char taken[24], luid[24], keep[24];
    const char *params[5];
    int rc;

    rc = levels_text(s->s.bids, s->s.n_bids, &bids);
    if (rc == 0) {
        rc = levels_text(s->s.asks, s->s.n_asks, &asks);
    }
    if (rc != 0) {
        snprintf(err, PG_ERR_MAX, "out of memory");
        goto out;
    }
    snprintf(taken, sizeof taken, "%" PRId64, s->taken_at);
    snprintf(luid, sizeof luid, "%" PRIu64, s->s.last_update_id);
    snprintf(keep, sizeof keep, "%zu", st->snapshot_keep);
    params[0] = s->s.symbol;
    params[1] = taken;
    params[2] = luid;
    params[3] = bids;
    params[4] = asks;
    rc = pg_check(st->wconn,
                  PQexecPrepared(st->wconn, PG_PUT_SNAPSHOT_NAME, 5, params, NULL, NULL, 0),
                  PGRES_COMMAND_OK, err);
    if (rc == 0) {
        params[1] = keep;
        rc = pg_check(st->wconn,
                      PQexecPrepared(st->wconn, PG_PRUNE_SNAPSHOTS_NAME, 2, params, NULL, NULL, 0),
                      PGRES_COMMAND_OK, err);
        if (rc == AB_EDB) {
            rc = 0; /* the snapshot is in; pruning runs again next time */
        }
    }
out:
    free(asks);
    free(bids);
    return rc;
}

/* After a snapshot write: count it, or put it back for a retry. Takes s. */
static void snapshot_done(struct store *st, struct snap_slot *s, int rc)
{
    bool keep = false;

    pthread_mutex_lock(&st->mu);
    st->snap_inflight = false;
    if (rc == 0) {
        st->stats.snapshots_written++;
        st->stats.db_up = true;
        st->stats.last_ok_ms = pg_wall_ms();
    } else if (rc == AB_EDB_RETRY) {
        struct snap_slot *free_slot = NULL;
        bool newer = false;

        for (size_t i = 0; i < st->snapshot_cap; i++) {
            if (st->snaps[i].used && strcmp(st->snaps[i].s.symbol, s->s.symbol) == 0) {
                newer = true;
            } else if (!st->snaps[i].used && free_slot == NULL) {
                free_slot = &st->snaps[i];
            }
        }
        if (!newer && free_slot != NULL) {
            *free_slot = *s;
            st->snaps_n++;
            keep = true;
        }
    } else {
        st->stats.snapshots_dropped++;
    }
    pthread_cond_broadcast(&st->idle);
    pthread_mutex_unlock(&st->mu);
    if (!keep) {
        ab_book_snapshot_deinit(&s->s);
    }
    memset(s, 0, sizeof *s);
}

enum job { JOB_NONE, JOB_BATCH, JOB_SNAPSHOT };

/* Under mu: picks the next unit of work. Candles come first, but after a
 * batch a pending snapshot gets its turn, so a busy stream cannot starve
 * them. A failed batch (batch_n > 0) is always retried before anything else. */
static enum job take_job(struct store *st, struct snap_slot *snap, bool snapshot_turn)
{
    if (st->batch_n == 0 && !(snapshot_turn && st->snaps_n > 0)) {
        while (st->q_len > 0 && st->batch_n < st->batch_max) {
            q_pop_front(st, &st->batch[st->batch_n++]);
        }
    }
    if (st->batch_n > 0) {
        return JOB_BATCH;
    }
    for (size_t i = 0; i < st->snapshot_cap && st->snaps_n > 0; i++) {
        if (st->snaps[i].used) {
            *snap = st->snaps[i];
            memset(&st->snaps[i], 0, sizeof st->snaps[i]);
            st->snaps_n--;
            st->snap_inflight = true;
            return JOB_SNAPSHOT;
        }
    }
    return JOB_NONE;
}

static void *writer_main(void *arg)
{
    struct store *st = arg;
    int64_t backoff = 0, retry_at = 0;
    bool snapshot_turn = false;
    char err[PG_ERR_MAX];

    for (;;) {
        struct snap_slot snap = {0};
        enum job job;
        int rc;

        pthread_mutex_lock(&st->mu);
        if (st->stopping && (work_empty(st) || pg_mono_ms() >= st->stop_deadline)) {
            pthread_mutex_unlock(&st->mu);
            break;
        }
        if (retry_at > pg_mono_ms()) {
            int64_t until = retry_at;

            if (st->stopping && st->stop_deadline < until) {
                until = st->stop_deadline;
            }
            cond_wait_until(&st->wake, &st->mu, until);
            pthread_mutex_unlock(&st->mu);
            continue;
        }
        pthread_mutex_unlock(&st->mu);

        if (st->wconn == NULL) {
            rc = writer_connect(st, err);
            if (rc != 0) {
                note_error(st, "connect", err);
                backoff = backoff == 0 ? backoff_policy.initial_ms : backoff * 2;
                if (backoff > backoff_policy.max_ms) {
                    backoff = backoff_policy.max_ms;
                }
                retry_at = pg_mono_ms() + backoff;
            } else {
                backoff = 0;
                retry_at = 0;
            }
            continue;
        }

        pthread_mutex_lock(&st->mu);
        job = take_job(st, &snap, snapshot_turn);
        snapshot_turn = job == JOB_BATCH;
        if (job == JOB_NONE) {
            int64_t idle_until = pg_mono_ms() + IDLE_PING_MS;
            bool ping;

            if (!st->stopping) {
                cond_wait_until(&st->wake, &st->mu, idle_until);
            }
            ping = !st->stopping && work_empty(st) && pg_mono_ms() >= idle_until;
            pthread_mutex_unlock(&st->mu);
            if (ping) {
                rc = pg_exec_timeout(st->wconn, "SELECT 1", 5000, err);
                if (rc != 0) {
                    note_error(st, "ping", err);
                    writer_close(st);
                } else {
                    note_ok(st);
                }
            }
            continue;
        }
        pthread_mutex_unlock(&st->mu);

        if (job == JOB_BATCH) {
            rc = write_batch(st, err);
            if (rc != 0) {
                note_error(st, "batch write", err);
            }
        } else {
            rc = write_snapshot(st, &snap, err);
            if (rc != 0) {
                note_error(st, "snapshot write", err);
            }
            snapshot_done(st, &snap, rc);
        }
        if (rc != 0) {
            if (rc == AB_EDB_RETRY || PQstatus(st->wconn) != CONNECTION_OK) {
                writer_close(st);
            }
            backoff = backoff_policy.initial_ms;
            retry_at = pg_mono_ms() + backoff;
        }
    }
    writer_close(st);
    return NULL;
}

int store_start(struct store *st)
{
    int rc = 0;

    pthread_mutex_lock(&st->mu);
    if (st->running) {
        rc = AB_ESTATE;
    } else if (pthread_create(&st->thread, NULL, writer_main, st) != 0) {
        rc = AB_EIO;
    } else {
        st->running = true;
        st->stopping = false;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void store_stop(struct store *st, int timeout_ms)
{
    pthread_mutex_lock(&st->mu);
    if (!st->running) {
        pthread_mutex_unlock(&st->mu);
        return;
    }
    st->stopping = true;
    st->stop_deadline = pg_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_cond_broadcast(&st->wake);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    pthread_mutex_lock(&st->mu);
    st->running = false;
    st->stopping = false;
    if (!work_empty(st)) {
        ab_log(AB_LOG_WARN, "store", "stopped with unwritten rows queued=%zu inflight=%zu",
               st->q_len, st->batch_n);
    }
    pthread_cond_broadcast(&st->idle);
    pthread_mutex_unlock(&st->mu);
}

int store_flush(struct store *st, int timeout_ms)
{
    int64_t deadline = pg_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = 0;

    pthread_mutex_lock(&st->mu);
    while (!work_empty(st)) {
        if (!st->running) {
            rc = AB_ESTATE;
            break;
        }
        if (pg_mono_ms() >= deadline) {
            rc = AB_EDB_RETRY;
            break;
        }
        cond_wait_until(&st->idle, &st->mu, deadline);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
    pthread_mutex_lock(&st->mu);
    *out = st->stats;
    out->queue_depth = st->q_len;
    out->queue_cap = st->queue_cap;
    out->inflight = st->batch_n;
    pthread_mutex_unlock(&st->mu);
}

/* ---- readers ---- */

static int reader_connect(struct store *st, struct reader *r, char *err)
{
    static const struct {
        const char *name, *sql;
    } stmts[] = {
        {PG_READ_OLDEST_NAME, PG_READ_OLDEST},
        {PG_READ_NEWEST_NAME, PG_READ_NEWEST},
        {PG_LIST_SERIES_NAME, PG_LIST_SERIES},
        {PG_READ_SNAPSHOT_NAME, PG_READ_SNAPSHOT},
    };
    int rc = pg_connect(st->url, &r->conn, err);

    if (rc == 0) {
        rc = pg_check(r->conn, PQexec(r->conn, PG_READER_SESSION), PGRES_COMMAND_OK, err);
    }
    for (size_t i = 0; rc == 0 && i < sizeof stmts / sizeof stmts[0]; i++) {
        PGresult *res = PQprepare(r->conn, stmts[i].name, stmts[i].sql, 0, NULL);
        const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        bool no_table = state != NULL && strcmp(state, "42P01") == 0;

        rc = pg_check(r->conn, res, PGRES_COMMAND_OK, err);
        if (rc != 0 && no_table) {
            rc = AB_EDB_RETRY; /* the writer has not created the schema yet */
        }
    }
    if (rc != 0 && r->conn != NULL) {
        PQfinish(r->conn);
        r->conn = NULL;
    }
    return rc;
}

static struct reader *reader_get(struct store *st)
{
    int64_t deadline = pg_mono_ms() + READER_WAIT_MS;
    struct reader *r = NULL;

    pthread_mutex_lock(&st->rmu);
    for (;;) {
        for (size_t i = 0; i < st->n_readers; i++) {
            if (!st->readers[i].busy) {
                r = &st->readers[i];
                r->busy = true;
                break;
            }
        }
        if (r != NULL || pg_mono_ms() >= deadline) {
            break;
        }
        cond_wait_until(&st->rfree, &st->rmu, deadline);
    }
    pthread_mutex_unlock(&st->rmu);
    return r;
}

static void reader_put(struct store *st, struct reader *r)
{
    pthread_mutex_lock(&st->rmu);
    r->busy = false;
    pthread_cond_signal(&st->rfree);
    pthread_mutex_unlock(&st->rmu);
}

/* Runs a prepared read. On 0, *res holds the rows (caller PQclear's). A
 * connection found dead is reopened once, so the first read after a
 * database restart already succeeds. */
static int reader_exec(struct store *st, const char *stmt, int nparams, const char *const *params,
                       PGresult **res)
{
    char err[PG_ERR_MAX];
    struct reader *r = reader_get(st);
    int rc = AB_EDB_RETRY;

    *res = NULL;
    if (r == NULL) {
        ab_log(AB_LOG_WARN, "store", "no free reader connection within %d ms", READER_WAIT_MS);
        return AB_EDB_RETRY;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = false;
        PGresult *pr;

        if (r->conn == NULL) {
            rc = reader_connect(st, r, err);
            if (rc != 0) {
                break;
            }
            fresh = true;
        }
        pr = PQexecPrepared(r->conn, stmt, nparams, params, NULL, NULL, 0);
        rc = pg_check_keep(r->conn, pr, PGRES_TUPLES_OK, err);
        if (rc == 0) {
            *res = pr;
            break;
        }
        if (PQstatus(r->conn) != CONNECTION_OK) {
            PQfinish(r->conn);
            r->conn = NULL;
            if (!fresh) {
                continue;
            }
        }
        break;
    }
    reader_put(st, r);
    if (rc != 0) {
        ab_log(AB_LOG_WARN, "store", "read failed statement=%s error=\"%s\"", stmt, err);
    }
    return rc;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return AB_EDB;
    }
    *out = v;
    return 0;
}

static int parse_dec(const PGresult *res, int row, int col, struct ab_dec *out)
{
    return ab_dec_parse(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), out) == 0
               ? 0
               : AB_EDB;
}

static int row_to_candle(const PGresult *res, int i, struct ab_candle *c)
{
    const char *sym = PQgetvalue(res, i, PG_C_SYMBOL);
    const char *tf = PQgetvalue(res, i, PG_C_TIMEFRAME);
    struct ab_dec *decs[] = {&c->open,
                             &c->high,
                             &c->low,
                             &c->close,
                             &c->volume,
                             &c->quote_volume,
                             &c->taker_buy_volume,
                             &c->taker_buy_quote_volume};
    int rc = 0;

    memset(c, 0, sizeof *c);
    if ((size_t)PQgetlength(res, i, PG_C_SYMBOL) >= AB_SYMBOL_MAX ||
        ab_interval_parse(tf, strlen(tf), &c->interval) != 0) {
        return AB_EDB;
    }
    memcpy(c->symbol, sym, (size_t)PQgetlength(res, i, PG_C_SYMBOL));
    rc |= parse_i64(PQgetvalue(res, i, PG_C_OPEN_TIME), &c->open_time);
    rc |= parse_i64(PQgetvalue(res, i, PG_C_CLOSE_TIME), &c->close_time);
    rc |= parse_i64(PQgetvalue(res, i, PG_C_NUM_TRADES), &c->num_trades);
    for (size_t k = 0; k < sizeof decs / sizeof decs[0]; k++) {
        rc |= parse_dec(res, i, PG_C_OPEN + (int)k, decs[k]);
    }
    c->closed = PQgetvalue(res, i, PG_C_IS_CLOSED)[0] == 't';
    c->first_trade_id = -1;
    c->last_trade_id = -1;
    c->event_time = 0;
    return rc != 0 ? AB_EDB : 0;
}

static int64_t clamp_ms(int64_t v)
{
    return v < STORE_MS_MIN ? STORE_MS_MIN : v > STORE_MS_MAX ? STORE_MS_MAX : v;
}

int store_read_candles(struct store *st, const char *symbol, enum ab_interval iv, int64_t start,
                       int64_t end, size_t limit, bool most_recent, struct ab_candle **out,
                       size_t *n)
{
    char s_start[24], s_end[24], s_limit[24];
    const char *params[5];
    PGresult *res = NULL;
    struct ab_candle *v = NULL;
    size_t rows;
    int rc;

    *out = NULL;
    *n = 0;
    if (symbol == NULL || !symbol_ok(symbol) || (unsigned)iv >= AB_I_COUNT) {
        return AB_EINVAL;
    }
    if (limit == 0 || limit > STORE_READ_MAX) {
        limit = STORE_READ_MAX;
    }
    start = clamp_ms(start);
    end = clamp_ms(end);
    if (start > end) {
        return 0;
    }
    snprintf(s_start, sizeof s_start, "%" PRId64, start);
    snprintf(s_end, sizeof s_end, "%" PRId64, end);
    snprintf(s_limit, sizeof s_limit, "%zu", limit);
    params[0] = symbol;
    params[1] = ab_interval_name(iv);
    params[2] = s_start;
    params[3] = s_end;
    params[4] = s_limit;
    rc = reader_exec(st, most_recent ? PG_READ_NEWEST_NAME : PG_READ_OLDEST_NAME, 5, params, &res);
    if (rc != 0) {
        return rc;
    }
    rows = (size_t)PQntuples(res);
    if (rows > 0) {
        v = malloc(rows * sizeof *v);
        if (v == NULL) {
            rc = AB_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < rows; i++) {
        /* The newest-first scan is reversed here: callers get ascending. */
        size_t at = most_recent ? rows - 1 - i : i;

        rc = row_to_candle(res, (int)i, &v[at]);
        if (rc != 0) {
            ab_log(AB_LOG_ERROR, "store", "unreadable candle row symbol=%s", symbol);
            goto out;
        }
    }
    *out = v;
    *n = rows;
    v = NULL;
out:
    free(v);
    PQclear(res);
    return rc;
}

int store_list_series(struct store *st, struct store_series **out, size_t *n)
{
    PGresult *res = NULL;
    struct store_series *v = NULL;
    size_t rows;
    int rc;

    *out = NULL;
    *n = 0;
    rc = reader_exec(st, PG_LIST_SERIES_NAME, 0, NULL, &res);
    if (rc != 0) {
        return rc;
    }
    rows = (size_t)PQntuples(res);
    if (rows > 0) {
        v = calloc(rows, sizeof *v);
        if (v == NULL) {
            rc = AB_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < rows; i++) {
        const char *tf = PQgetvalue(res, (int)i, 1);
        size_t len = (size_t)PQgetlength(res, (int)i, 0);

        if (len >= AB_SYMBOL_MAX || ab_interval_parse(tf, strlen(tf), &v[i].interval) != 0 ||
            parse_i64(PQgetvalue(res, (int)i, 2), &v[i].newest_open_time) != 0 ||
            parse_i64(PQgetvalue(res, (int)i, 3), &v[i].count) != 0) {
            rc = AB_EDB;
            goto out;
        }
        memcpy(v[i].symbol, PQgetvalue(res, (int)i, 0), len);
    }
    *out = v;
    *n = rows;
    v = NULL;
out:
    free(v);
    PQclear(res);
    return rc;
}

/* Parses PostgreSQL's text of a numeric[][]: "{}" or "{{p,q},{p,q}}". */
static int parse_levels(const char *s, struct ab_level **out, size_t *n)
{
    size_t count = 0, cap = 0;
    struct ab_level *v = NULL;
    const char *p = s;
    int rc = AB_EDB;

    *out = NULL;
    *n = 0;
    if (strcmp(s, "{}") == 0) {
        return 0;
    }
    for (const char *q = s; *q != '\0'; q++) {
        cap += *q == '{';
    }
    if (cap < 2 || cap - 1 > STORE_BOOK_LEVELS_MAX) {
        return AB_EDB;
    }
    cap -= 1;
    v = malloc(cap * sizeof *v);
    if (v == NULL) {
        return AB_ENOMEM;
    }
    if (*p++ != '{') {
        goto out;
    }
    for (;;) {
        const char *comma, *close;

        if (*p++ != '{' || count >= cap) {
            goto out;
        }
        comma = strchr(p, ',');
        close = comma != NULL ? strchr(comma + 1, '}') : NULL;
        if (close == NULL || ab_dec_parse(p, (size_t)(comma - p), &v[count].price) != 0 ||
            ab_dec_parse(comma + 1, (size_t)(close - comma - 1), &v[count].qty) != 0) {
            goto out;
        }
        count++;
        p = close + 1;
        if (*p == ',') {
            p++;
            continue;
        }
        if (p[0] == '}' && p[1] == '\0') {
            break;
        }
        goto out;
    }
    *out = v;
    *n = count;
    v = NULL;
    rc = 0;
out:
    free(v);
    return rc;
}

int store_read_book_snapshot(struct store *st, const char *symbol, struct ab_book_snapshot *out,
                             int64_t *taken_at_ms)
{
    const char *params[1] = {symbol};
    PGresult *res = NULL;
    int64_t luid = 0;
    int rc;

    memset(out, 0, sizeof *out);
    if (symbol == NULL || !symbol_ok(symbol)) {
        return AB_EINVAL;
    }
    rc = reader_exec(st, PG_READ_SNAPSHOT_NAME, 1, params, &res);
    if (rc != 0) {
        return rc;
    }
    if (PQntuples(res) == 0) {
        rc = AB_ENOTFOUND;
        goto out;
    }
    memcpy(out->symbol, symbol, strlen(symbol));
    if (parse_i64(PQgetvalue(res, 0, 0), &luid) != 0 || luid < 0 ||
        parse_i64(PQgetvalue(res, 0, 1), taken_at_ms) != 0) {
        rc = AB_EDB;
        goto out;
    }
    out->last_update_id = (uint64_t)luid;
    rc = parse_levels(PQgetvalue(res, 0, 2), &out->bids, &out->n_bids);
    if (rc == 0) {
        rc = parse_levels(PQgetvalue(res, 0, 3), &out->asks, &out->n_asks);
    }
    if (rc != 0) {
        ab_log(AB_LOG_ERROR, "store", "unreadable book snapshot symbol=%s", symbol);
    }
out:
    PQclear(res);
    return rc;
}

int store_ping(struct store *st, int timeout_ms, const char **why)
{
    char err[PG_ERR_MAX];
    struct reader *r = reader_get(st);
    int rc;

    *why = NULL;
    if (r == NULL) {
        *why = "no free database connection";
        return AB_EDB_RETRY;
    }
    /* A connection left from before a database restart fails once: the
     * second attempt runs on a fresh one. */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = r->conn == NULL;

        rc = fresh ? reader_connect(st, r, err) : 0;
        if (rc == 0) {
            rc = pg_exec_timeout(r->conn, "SELECT 1", timeout_ms, err);
            if (rc != 0) {
                PQfinish(r->conn);
                r->conn = NULL;
            }
        }
        if (rc == 0 || fresh) {
            break;
        }
    }
    reader_put(st, r);
    if (rc != 0) {
        *why = "database unreachable";
        return AB_EDB_RETRY;
    }
    return 0;
}

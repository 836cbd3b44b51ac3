/* live: in-memory candles and books (see live.h). */
#include "live.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

struct series {
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval interval;
    pthread_rwlock_t lock;
    struct ab_candle *ring; /* cap entries; logical i is ring[(head + i) % cap] */
    size_t cap, head, n;
    uint64_t seq;
    uint64_t version; /* from version_clock, see live_candles_version */
};

/* Series versions, process-wide so that no value is ever reused. */
static _Atomic uint64_t version_clock;

static uint64_t next_version(void)
{
    return atomic_fetch_add_explicit(&version_clock, 1, memory_order_relaxed) + 1;
}

struct lbook {
    char symbol[AB_SYMBOL_MAX];
    pthread_rwlock_t lock;
    struct ab_book *book;
    uint64_t gen;
    enum live_ingest_state ingest;
    bool stale;
    int64_t updated_ms;
};

struct live {
    struct live_config cfg;
    pthread_rwlock_t lock; /* the two tables (append-only) */
    struct series **series;
    size_t n_series;
    struct lbook **books;
    size_t n_books;
    struct live_hook hook;
    struct {
        _Atomic uint64_t candles_applied, candles_duplicate, candles_ignored, candles_evicted,
            series_refused, snapshots_loaded, deltas_applied, deltas_duplicate, deltas_ignored,
            book_gaps, books_refused;
    } st;
};

#define BUMP(lv, field) atomic_fetch_add_explicit(&(lv)->st.field, 1, memory_order_relaxed)
#define LOAD(lv, field) atomic_load_explicit(&(lv)->st.field, memory_order_relaxed)

static void set_act(enum live_action *act, enum live_action v)
{
    if (act)
        *act = v;
}

const char *live_book_state_name(enum live_book_state st)
{
    switch (st) {
    case LIVE_BOOK_SYNCING:
        return "syncing";
    case LIVE_BOOK_LIVE:
        return "live";
    case LIVE_BOOK_RESYNCING:
        return "resyncing";
    case LIVE_BOOK_STALE:
        return "stale";
    }
    return "unknown";
}

int live_new(const struct live_config *cfg, struct live **out)
{
    struct live_config c = {0};
    if (cfg)
        c = *cfg;
    if (!c.candle_cap)
        c.candle_cap = LIVE_CANDLE_CAP_DEFAULT;
    if (!c.max_series)
        c.max_series = LIVE_MAX_SERIES_DEFAULT;
    if (!c.max_books)
        c.max_books = LIVE_MAX_BOOKS_DEFAULT;
    if (c.candle_cap > LIVE_CANDLE_CAP_MAX || c.max_series > LIVE_MAX_SERIES_MAX ||
        c.max_books > LIVE_MAX_BOOKS_MAX)
        return AB_ERANGE;
    struct live *lv = calloc(1, sizeof(*lv));
    if (!lv)
        return AB_ENOMEM;
    lv->cfg = c;
    lv->series = calloc(c.max_series, sizeof(*lv->series));
    lv->books = calloc(c.max_books, sizeof(*lv->books));
    if (!lv->series || !lv->books || pthread_rwlock_init(&lv->lock, NULL) != 0) {
        free(lv->series);
        free(lv->books);
        free(lv);
        return AB_ENOMEM;
    }
    *out = lv;
    return 0;
}

void live_free(struct live *lv)
{
    if (!lv)
        return;
    for (size_t i = 0; i < lv->n_series; i++) {
        pthread_rwlock_destroy(&lv->series[i]->lock);
        free(lv->series[i]->ring);
        free(lv->series[i]);
    }
    for (size_t i = 0; i < lv->n_books; i++) {
        pthread_rwlock_destroy(&lv->books[i]->lock);
        ab_book_free(lv->books[i]->book);
        free(lv->books[i]);
    }
    pthread_rwlock_destroy(&lv->lock);
    free(lv->series);
    free(lv->books);
    free(lv);
}

void live_set_hook(struct live *lv, const struct live_hook *hook)
{
    struct live_hook none = {0};
    lv->hook = hook ? *hook : none;
}

/* ---- tables ---- */

static struct series *series_find_locked(struct live *lv, const char *symbol, enum ab_interval iv)
{
    for (size_t i = 0; i < lv->n_series; i++) {
        struct series *s = lv->series[i];
        if (s->interval == iv && strcmp(s->symbol, symbol) == 0)
            return s;
    }
    return NULL;
}

static struct series *series_find(struct live *lv, const char *symbol, enum ab_interval iv)
{
    pthread_rwlock_rdlock(&lv->lock);
    struct series *s = series_find_locked(lv, symbol, iv);
    pthread_rwlock_unlock(&lv->lock);
    return s;
}

/* Finds or creates; only the writer creates. NULL when the cap is reached or on ENOMEM. */
static struct series *series_get(struct live *lv, const char *symbol, enum ab_interval iv)
{
    struct series *s = series_find(lv, symbol, iv);
    if (s)
        return s;
    pthread_rwlock_wrlock(&lv->lock);
    s = series_find_locked(lv, symbol, iv);
    if (s || lv->n_series >= lv->cfg.max_series)
        goto out;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->ring = calloc(lv->cfg.candle_cap, sizeof(*s->ring));
    if (!s->ring || pthread_rwlock_init(&s->lock, NULL) != 0) {
        free(s->ring);
        free(s);
        s = NULL;
        goto out;
    }
    snprintf(s->symbol, sizeof(s->symbol), "%s", symbol);
    s->interval = iv;
    s->cap = lv->cfg.candle_cap;
    s->version = next_version();
    lv->series[lv->n_series++] = s;
out:
    pthread_rwlock_unlock(&lv->lock);
    return s;
}

static struct lbook *book_find_locked(struct live *lv, const char *symbol)
{
    for (size_t i = 0; i < lv->n_books; i++)
        if (strcmp(lv->books[i]->symbol, symbol) == 0)
            return lv->books[i];
    return NULL;
}

static struct lbook *book_find(struct live *lv, const char *symbol)
{
    pthread_rwlock_rdlock(&lv->lock);
    struct lbook *b = book_find_locked(lv, symbol);
    pthread_rwlock_unlock(&lv->lock);
    return b;
}

static int book_get(struct live *lv, const char *symbol, struct lbook **out)
{
    if (!ab_symbol_valid(symbol, strlen(symbol)))
        return AB_EINVAL;
    *out = book_find(lv, symbol);
    if (*out)
        return 0;
    int rc = 0;
    pthread_rwlock_wrlock(&lv->lock);
    struct lbook *b = book_find_locked(lv, symbol);
    if (b)
        goto out;
    if (lv->n_books >= lv->cfg.max_books) {
        BUMP(lv, books_refused);
        rc = AB_ENOMEM;
        goto out;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        rc = AB_ENOMEM;
        goto out;
    }
    rc = ab_book_new(symbol, &lv->cfg.book_limits, &b->book);
    if (rc == 0 && pthread_rwlock_init(&b->lock, NULL) != 0) {
        ab_book_free(b->book);
        rc = AB_ENOMEM;
    }
    if (rc) {
        free(b);
        b = NULL;
        goto out;
    }
    snprintf(b->symbol, sizeof(b->symbol), "%s", symbol);
    lv->books[lv->n_books++] = b;
out:
    pthread_rwlock_unlock(&lv->lock);
    *out = b;
    return rc;
}

/* ---- candle ring ---- */

static struct ab_candle *at(struct series *s, size_t i)
{
    return &s->ring[(s->head + i) % s->cap];
}

/* First logical index with open_time >= t (n when none). */
static size_t lower_bound(struct series *s, int64_t t)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(s, mid)->open_time < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Same values (event time aside: a REST copy of a closed candle has none). */
static bool candle_same(const struct ab_candle *a, const struct ab_candle *b)
{
    return a->close_time == b->close_time && a->open.v == b->open.v && a->high.v == b->high.v &&
           a->low.v == b->low.v && a->close.v == b->close.v && a->volume.v == b->volume.v &&
           a->quote_volume.v == b->quote_volume.v &&
           a->taker_buy_volume.v == b->taker_buy_volume.v &&
           a->taker_buy_quote_volume.v == b->taker_buy_quote_volume.v &&
           a->num_trades == b->num_trades && a->closed == b->closed;
}

/* Inserts c at logical position pos (0..n), evicting the oldest when full. */
static void ring_insert(struct live *lv, struct series *s, size_t pos, const struct ab_candle *c)
{
    if (s->n == s->cap) {
        s->head = (s->head + 1) % s->cap;
        s->n--;
        pos--; /* callers never insert at 0 into a full ring */
        BUMP(lv, candles_evicted);
    }
    for (size_t i = s->n; i > pos; i--)
        *at(s, i) = *at(s, i - 1);
    *at(s, pos) = *c;
    s->n++;
}

static enum live_action candle_merge(struct live *lv, struct series *s, const struct ab_candle *c)
{
    if (s->n == 0 || c->open_time > at(s, s->n - 1)->open_time) {
        ring_insert(lv, s, s->n, c);
        return LIVE_APPLIED;
    }
    size_t pos = lower_bound(s, c->open_time);
    if (pos < s->n && at(s, pos)->open_time == c->open_time) {
        struct ab_candle *e = at(s, pos);
        if (candle_same(e, c))
            return LIVE_DUPLICATE;
        if (e->closed)
            return LIVE_IGNORED; /* final */
        if ((c->event_time && e->event_time && c->event_time < e->event_time) ||
            c->num_trades < e->num_trades)
            return LIVE_IGNORED; /* an older version (bus replay) */
        *e = *c;
        return LIVE_APPLIED;
    }
    if (pos == 0 && s->n == s->cap)
        return LIVE_APPLIED; /* older than the window: passed on, not kept */
    ring_insert(lv, s, pos, c);
    return LIVE_APPLIED;
}

int live_apply_candle(struct live *lv, const struct ab_candle *c, enum live_action *act)
{
    set_act(act, LIVE_IGNORED);
    if (!ab_symbol_valid(c->symbol, strnlen(c->symbol, AB_SYMBOL_MAX)) || c->interval < 0 ||
        c->interval >= AB_I_COUNT || !ab_interval_is_aligned(c->interval, c->open_time))
        return AB_EINVAL;
    struct series *s = series_get(lv, c->symbol, c->interval);
    if (!s) {
        BUMP(lv, series_refused);
        return AB_ENOMEM;
    }
    pthread_rwlock_wrlock(&s->lock);
    enum live_action a = candle_merge(lv, s, c);
    if (a == LIVE_APPLIED) {
        s->seq++;
        s->version = next_version();
        if (lv->hook.candle)
            lv->hook.candle(lv->hook.arg, c, s->seq);
    }
    pthread_rwlock_unlock(&s->lock);
    if (a == LIVE_APPLIED)
        BUMP(lv, candles_applied);
    else if (a == LIVE_DUPLICATE)
        BUMP(lv, candles_duplicate);
    else
        BUMP(lv, candles_ignored);
    set_act(act, a);
    return 0;
}

/*
 * Whether the ring covers w; on true [*from, *from + *count) are the answer.
 * Caller holds s->lock.
 */
static bool covered(struct series *s, const struct live_window *w, size_t *from, size_t *count)
{
    *from = 0;
    *count = 0;
    if (s->n == 0)
        return false;
    enum ab_interval iv = s->interval;
    if (w->has_start) {
        int64_t first = ab_interval_align(iv, w->start);
        if (first < w->start)
            first = ab_interval_next(iv, first);
        if (w->has_end && w->end < first)
            return true; /* an empty window */
        if (at(s, 0)->open_time > first)
            return false; /* older candles may be in storage */
        size_t i = lower_bound(s, first);
        int64_t expect = first;
        *from = i;
        while (*count < w->limit && i < s->n) {
            int64_t t = at(s, i)->open_time;
            if (w->has_end && t > w->end)
                break;
            if (t != expect)
                return false; /* a hole */
            expect = ab_interval_next(iv, t);
            i++;
            (*count)++;
        }
        return true;
    }
    size_t j = s->n; /* one past the newest candle <= end */
    if (w->has_end) {
        j = lower_bound(s, w->end);
        if (j < s->n && at(s, j)->open_time == w->end)
            j++;
        if (j == 0)
            return false;
        /* nothing may be missing between the last candle <= end and end */
        int64_t next = ab_interval_next(iv, at(s, j - 1)->open_time);
        if (j < s->n && next <= w->end && at(s, j)->open_time != next)
            return false;
    }
    if (j < w->limit)
        return false; /* storage may hold older ones */
    for (size_t k = j - w->limit + 1; k < j; k++)
        if (ab_interval_next(iv, at(s, k - 1)->open_time) != at(s, k)->open_time)
            return false;
    *from = j - w->limit;
    *count = w->limit;
    return true;
}

static int copy_range(struct series *s, size_t from, size_t count, struct ab_candle **out)
{
    *out = NULL;
    if (count == 0)
        return 0;
    struct ab_candle *v = malloc(count * sizeof(*v));
    if (!v)
        return AB_ENOMEM;
    for (size_t i = 0; i < count; i++)
        v[i] = *at(s, from + i);
    *out = v;
    return 0;
}

int live_candles_read(struct live *lv, const char *symbol, enum ab_interval iv,
                      const struct live_window *w, struct ab_candle **out, size_t *n)
{
    return live_candles_read_versioned(lv, symbol, iv, w, out, n, NULL);
}

uint64_t live_candles_version(struct live *lv, const char *symbol, enum ab_interval iv)
{
    if (iv < 0 || iv >= AB_I_COUNT)
        return 0;
    struct series *s = series_find(lv, symbol, iv);
    if (!s)
        return 0;
    pthread_rwlock_rdlock(&s->lock);
    uint64_t v = s->version;
    pthread_rwlock_unlock(&s->lock);
    return v;
}

int live_candles_read_versioned(struct live *lv, const char *symbol, enum ab_interval iv,
                                const struct live_window *w, struct ab_candle **out, size_t *n,
                                uint64_t *version)
{
    *out = NULL;
    *n = 0;
    if (version)
        *version = 0;
    if (!w || w->limit == 0 || iv < 0 || iv >= AB_I_COUNT)
        return AB_EINVAL;
    struct series *s = series_find(lv, symbol, iv);
    if (!s)
        return AB_ENOTFOUND;
    int rc = AB_ENOTFOUND;
    size_t from, count;
    pthread_rwlock_rdlock(&s->lock);
    if (version)
        *version = s->version;
    if (covered(s, w, &from, &count)) {
        rc = copy_range(s, from, count, out);
        if (rc == 0)
            *n = count;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

bool live_candles_covers(struct live *lv, const char *symbol, enum ab_interval iv,
                         const struct live_window *w)
{
    if (!w || w->limit == 0 || iv < 0 || iv >= AB_I_COUNT)
        return false;
    struct series *s = series_find(lv, symbol, iv);
    if (!s)
        return false;
    size_t from, count;
    pthread_rwlock_rdlock(&s->lock);
    bool ok = covered(s, w, &from, &count);
    pthread_rwlock_unlock(&s->lock);
    return ok;
}

int live_candles_recent(struct live *lv, const char *symbol, enum ab_interval iv, size_t max,
                        struct ab_candle **out, size_t *n, uint64_t *seq)
{
    *out = NULL;
    *n = 0;
    *seq = 0;
    if (iv < 0 || iv >= AB_I_COUNT)
        return AB_EINVAL;
    struct series *s = series_find(lv, symbol, iv);
    if (!s)
        return 0;
    pthread_rwlock_rdlock(&s->lock);
    size_t count = s->n < max ? s->n : max;
    int rc = copy_range(s, s->n - count, count, out);
    if (rc == 0) {
        *n = count;
        *seq = s->seq;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

size_t live_series_list(struct live *lv, struct live_series_info *out, size_t cap)
{
    pthread_rwlock_rdlock(&lv->lock);
    size_t total = lv->n_series;
    for (size_t i = 0; i < total && i < cap; i++) {
        struct series *s = lv->series[i];
        struct live_series_info *o = &out[i];
        memset(o, 0, sizeof(*o));
        pthread_rwlock_rdlock(&s->lock);
        snprintf(o->symbol, sizeof(o->symbol), "%s", s->symbol);
        o->interval = s->interval;
        o->count = s->n;
        o->seq = s->seq;
        if (s->n) {
            o->oldest_open = at(s, 0)->open_time;
            o->newest = *at(s, s->n - 1);
        }
        pthread_rwlock_unlock(&s->lock);
    }
    pthread_rwlock_unlock(&lv->lock);
    return total;
}

/* ---- books ---- */

/* Caller holds b->lock. */
static enum live_book_state book_state(const struct lbook *b)
{
    if (b->stale)
        return LIVE_BOOK_STALE;
    bool valid = ab_book_state(b->book) == AB_BOOK_LIVE;
    if (!valid)
        return b->ingest == LIVE_INGEST_RESYNCING ? LIVE_BOOK_RESYNCING : LIVE_BOOK_SYNCING;
    return b->ingest == LIVE_INGEST_LIVE ? LIVE_BOOK_LIVE : LIVE_BOOK_RESYNCING;
}

/* Reports a state change that came without a snapshot. Caller holds b->lock. */
static void notify_status(struct live *lv, struct lbook *b, enum live_book_state before)
{
    enum live_book_state now = book_state(b);
    if (now != before && lv->hook.status)
        lv->hook.status(lv->hook.arg, b->symbol, b->gen, now, ab_book_last_update_id(b->book));
}

int live_apply_book_snapshot(struct live *lv, const struct ab_book_snapshot *s, int64_t now_ms,
                             enum live_action *act)
{
    set_act(act, LIVE_IGNORED);
    struct lbook *b;
    int rc = book_get(lv, s->symbol, &b);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&b->lock);
    if (!b->stale && ab_book_state(b->book) == AB_BOOK_LIVE &&
        ab_book_last_update_id(b->book) == s->last_update_id) {
        enum live_book_state before = book_state(b);
        b->ingest = LIVE_INGEST_LIVE; /* a duplicate still says the ingest is in sync */
        notify_status(lv, b, before);
        set_act(act, LIVE_DUPLICATE);
        goto out;
    }
    rc = ab_book_load(b->book, s);
    if (rc)
        goto out;
    b->gen++;
    b->stale = false;
    b->ingest = LIVE_INGEST_LIVE;
    b->updated_ms = now_ms;
    BUMP(lv, snapshots_loaded);
    set_act(act, LIVE_APPLIED);
    if (lv->hook.snapshot) {
        struct ab_book_snapshot full = {0};
        if (ab_book_export(b->book, 0, &full) == 0)
            lv->hook.snapshot(lv->hook.arg, &full, b->gen, book_state(b));
        else /* the book is right; subscribers learn the new generation */
            ab_log(AB_LOG_WARN, "live", "snapshot export failed symbol=%s", b->symbol);
        ab_book_snapshot_deinit(&full);
    }
out:
    pthread_rwlock_unlock(&b->lock);
    return rc;
}

int live_apply_book_delta(struct live *lv, const struct ab_book_delta *d, int64_t now_ms,
                          enum live_action *act)
{
    set_act(act, LIVE_IGNORED);
    struct lbook *b;
    int rc = book_get(lv, d->symbol, &b);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&b->lock);
    if (b->stale) {
        set_act(act, LIVE_NEED_SNAPSHOT);
        BUMP(lv, deltas_ignored);
        goto out;
    }
    if (ab_book_state(b->book) != AB_BOOK_LIVE) {
        BUMP(lv, deltas_ignored);
        goto out;
    }
    enum live_book_state before = book_state(b);
    struct ab_book_result res;
    rc = ab_book_on_delta(b->book, d, &res);
    if (res.action == AB_BOOK_APPLIED) {
        b->updated_ms = now_ms;
        BUMP(lv, deltas_applied);
        set_act(act, LIVE_APPLIED);
        if (lv->hook.delta)
            lv->hook.delta(lv->hook.arg, d, b->gen, res.prev_id);
    } else if (res.action == AB_BOOK_IGNORED_STALE) {
        BUMP(lv, deltas_duplicate);
        set_act(act, LIVE_DUPLICATE);
    } else if (res.action == AB_BOOK_IGNORED_INVALID) {
        BUMP(lv, deltas_ignored);
    } else {
        /* a gap or a malformed delta: the book is gone; we never buffer */
        ab_book_reset(b->book);
        b->stale = true;
        b->gen++;
        b->updated_ms = now_ms;
        BUMP(lv, book_gaps);
        set_act(act, LIVE_NEED_SNAPSHOT);
        ab_log(AB_LOG_WARN, "live", "book went stale symbol=%s reason=%s U=%llu u=%llu", b->symbol,
               ab_book_reason_str(res.reason), (unsigned long long)d->first_id,
               (unsigned long long)d->last_id);
        notify_status(lv, b, before);
    }
out:
    pthread_rwlock_unlock(&b->lock);
    return rc;
}

int live_apply_book_status(struct live *lv, const char *symbol, enum live_ingest_state st,
                           int64_t now_ms, enum live_action *act)
{
    set_act(act, LIVE_IGNORED);
    if (st < LIVE_INGEST_SYNCING || st > LIVE_INGEST_RESYNCING)
        return AB_EINVAL;
    struct lbook *b;
    int rc = book_get(lv, symbol, &b);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&b->lock);
    enum live_book_state before = book_state(b);
    if (b->ingest != st) {
        b->ingest = st;
        b->updated_ms = now_ms;
        set_act(act, LIVE_APPLIED);
    } else {
        set_act(act, LIVE_DUPLICATE);
    }
    notify_status(lv, b, before);
    if (b->stale)
        set_act(act, LIVE_NEED_SNAPSHOT);
    pthread_rwlock_unlock(&b->lock);
    return 0;
}

int live_book_get(struct live *lv, const char *symbol, size_t depth, struct ab_book_snapshot *out,
                  struct live_book_info *info)
{
    memset(out, 0, sizeof(*out));
    struct lbook *b = book_find(lv, symbol);
    if (!b)
        return AB_ENOTFOUND;
    int rc = 0;
    pthread_rwlock_rdlock(&b->lock);
    enum live_book_state st = book_state(b);
    if (!b->stale && ab_book_state(b->book) == AB_BOOK_LIVE)
        rc = ab_book_export(b->book, depth, out);
    snprintf(out->symbol, sizeof(out->symbol), "%s", b->symbol);
    if (info) {
        info->state = st;
        info->gen = b->gen;
        info->updated_ms = b->updated_ms;
        info->bids_total = ab_book_count(b->book, AB_BOOK_BID);
        info->asks_total = ab_book_count(b->book, AB_BOOK_ASK);
    }
    pthread_rwlock_unlock(&b->lock);
    return rc;
}

size_t live_book_list(struct live *lv, struct live_book_summary *out, size_t cap)
{
    pthread_rwlock_rdlock(&lv->lock);
    size_t total = lv->n_books;
    for (size_t i = 0; i < total && i < cap; i++) {
        struct lbook *b = lv->books[i];
        pthread_rwlock_rdlock(&b->lock);
        memset(&out[i], 0, sizeof(out[i]));
        snprintf(out[i].symbol, sizeof(out[i].symbol), "%s", b->symbol);
        out[i].state = book_state(b);
        out[i].last_update_id = b->stale ? 0 : ab_book_last_update_id(b->book);
        out[i].updated_ms = b->updated_ms;
        pthread_rwlock_unlock(&b->lock);
    }
    pthread_rwlock_unlock(&lv->lock);
    return total;
}

void live_get_stats(struct live *lv, struct live_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->candles_applied = LOAD(lv, candles_applied);
    out->candles_duplicate = LOAD(lv, candles_duplicate);
    out->candles_ignored = LOAD(lv, candles_ignored);
    out->candles_evicted = LOAD(lv, candles_evicted);
    out->series_refused = LOAD(lv, series_refused);
    out->snapshots_loaded = LOAD(lv, snapshots_loaded);
    out->deltas_applied = LOAD(lv, deltas_applied);
    out->deltas_duplicate = LOAD(lv, deltas_duplicate);
    out->deltas_ignored = LOAD(lv, deltas_ignored);
    out->book_gaps = LOAD(lv, book_gaps);
    out->books_refused = LOAD(lv, books_refused);
    pthread_rwlock_rdlock(&lv->lock);
    out->series = lv->n_series;
    out->books = lv->n_books;
    pthread_rwlock_unlock(&lv->lock);
}

#include "common/book.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/*
 * Skip list height. With p = 1/4, 12 levels keep searches logarithmic far
 * beyond AB_BOOK_LIMIT_MAX_LEVELS (4^12 = 16.7M).
 */
#define MAX_HEIGHT 12
/* Nodes per pool chunk: one malloc per 256 levels while a book grows. */
#define CHUNK_NODES 256

struct node {
    struct ab_dec price;
    struct ab_dec qty;
    struct node *prev; /* bottom level, towards the best; NULL for the first node */
    int height;
    struct node *next[MAX_HEIGHT];
};

struct side {
    struct node head;  /* sentinel: only next[] is used */
    struct node *tail; /* worst level, NULL when empty */
    int height;        /* levels of head.next[] in use, >= 1 */
    size_t count;
    bool desc; /* bids: highest price first */
};

struct chunk {
    struct chunk *next;
    struct node nodes[CHUNK_NODES];
};

/* A buffered event; its levels live in ab_book.lv[off .. off+n_bids+n_asks). */
struct buf_ev {
    uint64_t first_id, last_id;
    int64_t event_time;
    size_t off, n_bids, n_asks;
};

struct ab_book {
    char symbol[AB_SYMBOL_MAX];
    struct ab_book_limits lim;
    enum ab_book_state state;
    uint64_t id;          /* valid when LIVE */
    bool snapshot_wanted; /* we already told the caller to fetch one */
    bool crossed;
    struct side sides[2];
    uint64_t rng;

    /*
     * The node pool: every chunk ever allocated, oldest first. Nodes of
     * chunks before `cur`, and cur->nodes[0 .. cur_used), have been handed
     * out (they are in a side or on free_list); the rest have never been used
     * since the last pool_reset. Clearing the whole book is then O(1)
     * (pool_reset) instead of a walk over every node, and a book rebuilt
     * from a snapshot gets its nodes in address order.
     */
    struct chunk *chunks, *chunks_tail;
    struct chunk *cur;      /* chunk being handed out, NULL before the first */
    size_t cur_used;        /* nodes of cur handed out */
    struct node *free_list; /* recycled nodes, linked through next[0] */

    struct buf_ev *ev; /* pre-snapshot buffer, grown up to the caps */
    size_t n_ev, cap_ev;
    struct ab_level *lv;
    size_t n_lv, cap_lv;

    struct ab_book_stats st;
};

/* ---- the node pool ---------------------------------------------------- */

static struct node *node_get(struct ab_book *b)
{
    struct node *n = b->free_list;
    if (n) {
        b->free_list = n->next[0];
        return n;
    }
    if (b->cur && b->cur_used == CHUNK_NODES) {
        b->cur = b->cur->next;
        b->cur_used = 0;
    } else if (!b->cur) {
        b->cur = b->chunks;
        b->cur_used = 0;
    }
    if (!b->cur) {
        struct chunk *c = malloc(sizeof(*c));
        if (!c)
            return NULL;
        c->next = NULL;
        if (b->chunks_tail)
            b->chunks_tail->next = c;
        else
            b->chunks = c;
        b->chunks_tail = c;
        b->cur = c;
        b->cur_used = 0;
    }
    return &b->cur->nodes[b->cur_used++];
}

/* Takes every node back at once: only valid when both sides are emptied too. */
static void pool_reset(struct ab_book *b)
{
    b->free_list = NULL;
    b->cur = NULL;
    b->cur_used = 0;
}

static void node_put(struct ab_book *b, struct node *n)
{
    n->next[0] = b->free_list;
    b->free_list = n;
}

/* ---- one side: a skip list ordered best first ------------------------- */

/* xorshift64: deterministic, so tests and replays behave identically. */
static uint64_t rng_next(struct ab_book *b)
{
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return x;
}

static int random_height(struct ab_book *b)
{
    uint64_t r = rng_next(b);
    int h = 1;
    while (h < MAX_HEIGHT && (r & 3) == 0) {
        h++;
        r >>= 2;
    }
    return h;
}

/* True when price a sorts before (is better than) price b on this side. */
static bool better(const struct side *s, struct ab_dec a, struct ab_dec b)
{
    return s->desc ? a.v > b.v : a.v < b.v;
}

static void side_init(struct side *s, bool desc)
{
    memset(s, 0, sizeof(*s));
    s->height = 1;
    s->desc = desc;
}

/*
 * Returns the first node not better than price (the node holding price, if
 * any) and fills upd[i] with the last node at level i that is better.
 */
static struct node *side_seek(struct side *s, struct ab_dec price, struct node **upd)
{
    struct node *x = &s->head;
    for (int i = s->height - 1; i >= 0; i--) {
        while (x->next[i] && better(s, x->next[i]->price, price))
            x = x->next[i];
        upd[i] = x;
    }
    return x->next[0];
}

static void side_unlink(struct side *s, struct node *n, struct node **upd)
{
    for (int i = 0; i < n->height; i++)
        upd[i]->next[i] = n->next[i];
    if (n->next[0])
        n->next[0]->prev = n->prev;
    else
        s->tail = n->prev;
    while (s->height > 1 && !s->head.next[s->height - 1])
        s->height--;
    s->count--;
}

static void side_link(struct ab_book *b, struct side *s, struct node *n, struct node **upd)
{
    int h = random_height(b);
    for (int i = s->height; i < h; i++)
        upd[i] = &s->head;
    if (h > s->height)
        s->height = h;
    n->height = h;
    for (int i = 0; i < h; i++) {
        n->next[i] = upd[i]->next[i];
        upd[i]->next[i] = n;
    }
    n->prev = upd[0] == &s->head ? NULL : upd[0];
    if (n->next[0])
        n->next[0]->prev = n;
    else
        s->tail = n;
    s->count++;
}

/*
 * Sets one level to an absolute quantity (zero removes it). Returns 0 or
 * AB_ENOMEM when the pool cannot grow.
 */
static int side_set(struct ab_book *b, struct side *s, struct ab_dec price, struct ab_dec qty)
{
    struct node *upd[MAX_HEIGHT];
    struct node *n = side_seek(s, price, upd);

    if (n && n->price.v == price.v) {
        if (ab_dec_is_zero(qty)) {
            side_unlink(s, n, upd);
            node_put(b, n);
        } else {
            n->qty = qty;
        }
        return 0;
    }
    if (ab_dec_is_zero(qty)) {
        b->st.removed_absent++;
        return 0;
    }
    if (s->count >= b->lim.max_levels) {
        /* Full: keep the best max_levels levels. */
        b->st.levels_trimmed++;
        if (!better(s, price, s->tail->price))
            return 0;
        struct node *worst = side_seek(s, s->tail->price, upd);
        side_unlink(s, worst, upd);
        node_put(b, worst);
        side_seek(s, price, upd);
    }
    n = node_get(b);
    if (!n)
        return AB_ENOMEM;
    n->price = price;
    n->qty = qty;
    side_link(b, s, n, upd);
    return 0;
}

/* ---- validation ------------------------------------------------------- */

static bool levels_valid(const struct ab_level *lv, size_t n)
{
    if (n > 0 && !lv)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lv[i].price.v <= 0 || ab_dec_is_neg(lv[i].qty))
            return false;
    }
    return true;
}

static bool symbol_matches(const struct ab_book *b, const char *sym)
{
    size_t len = strnlen(sym, AB_SYMBOL_MAX);
    if (len == 0)
        return true;
    return len < AB_SYMBOL_MAX && strcmp(sym, b->symbol) == 0;
}

/* A gap between id and an event starting at first: first > id + 1, without overflow. */
static bool is_gap(uint64_t first, uint64_t id)
{
    return first > 0 && first - 1 > id;
}

/* ---- book-level helpers ----------------------------------------------- */

static void buffer_clear(struct ab_book *b)
{
    b->n_ev = 0;
    b->n_lv = 0;
}

/*
 * Empties both sides in O(1): every node goes back to the pool at once.
 * (Walking the lists to recycle node by node cost 1.9% of bench_decode's
 * time, in cache misses on 1000-level books.)
 */
static void book_clear(struct ab_book *b)
{
    side_init(&b->sides[AB_BOOK_BID], true);
    side_init(&b->sides[AB_BOOK_ASK], false);
    pool_reset(b);
    b->id = 0;
    b->crossed = false;
}

static void check_crossed(struct ab_book *b)
{
    const struct node *bid = b->sides[AB_BOOK_BID].head.next[0];
    const struct node *ask = b->sides[AB_BOOK_ASK].head.next[0];
    b->crossed = bid && ask && bid->price.v >= ask->price.v;
    if (b->crossed)
        b->st.crossed++;
}

static void result_init(struct ab_book_result *res)
{
    memset(res, 0, sizeof(*res));
}

static void set_resync(struct ab_book *b, struct ab_book_result *res, enum ab_book_reason why)
{
    b->st.resyncs++;
    b->snapshot_wanted = true;
    res->action = AB_BOOK_RESYNC;
    res->reason = why;
}

/* Loses everything: book and buffer. */
static void discard_all(struct ab_book *b)
{
    book_clear(b);
    buffer_clear(b);
    b->state = AB_BOOK_EMPTY;
}

/* Grows an array to hold `need` items, doubling, never beyond `cap` items. */
static int grow(void **arr, size_t *have, size_t need, size_t cap, size_t item)
{
    if (need <= *have)
        return 0;
    if (need > cap)
        return AB_ENOMEM;
    size_t n = *have ? *have : 16;
    while (n < need)
        n *= 2;
    if (n > cap)
        n = cap;
    void *p = realloc(*arr, n * item);
    if (!p)
        return AB_ENOMEM;
    *arr = p;
    *have = n;
    return 0;
}

static bool buffer_fits(const struct ab_book *b, const struct ab_book_delta *d)
{
    size_t k = d->n_bids + d->n_asks;
    return b->n_ev < b->lim.max_buffered_events && k <= b->lim.max_buffered_levels - b->n_lv;
}

/* Appends a copy of d. Returns 0 or AB_ENOMEM (a cap, or malloc). */
static int buffer_push(struct ab_book *b, const struct ab_book_delta *d)
{
    size_t k = d->n_bids + d->n_asks;
    if (!buffer_fits(b, d))
        return AB_ENOMEM;
    void *ev = b->ev, *lv = b->lv;
    int rc = grow(&ev, &b->cap_ev, b->n_ev + 1, b->lim.max_buffered_events, sizeof(*b->ev));
    b->ev = ev;
    if (rc == 0)
        rc = grow(&lv, &b->cap_lv, b->n_lv + k, b->lim.max_buffered_levels, sizeof(*b->lv));
    b->lv = lv;
    if (rc)
        return rc;
    struct buf_ev *e = &b->ev[b->n_ev++];
    e->first_id = d->first_id;
    e->last_id = d->last_id;
    e->event_time = d->event_time;
    e->off = b->n_lv;
    e->n_bids = d->n_bids;
    e->n_asks = d->n_asks;
    if (d->n_bids)
        memcpy(&b->lv[b->n_lv], d->bids, d->n_bids * sizeof(*d->bids));
    b->n_lv += d->n_bids;
    if (d->n_asks)
        memcpy(&b->lv[b->n_lv], d->asks, d->n_asks * sizeof(*d->asks));
    b->n_lv += d->n_asks;
    b->st.deltas_buffered++;
    return 0;
}

/*
 * Empties the buffer and starts it again with d, or leaves it EMPTY when d
 * alone exceeds the buffer caps (returns false).
 */
static bool buffer_restart(struct ab_book *b, const struct ab_book_delta *d)
{
    buffer_clear(b);
    if (buffer_push(b, d) == 0) {
        b->state = AB_BOOK_BUFFERING;
        return true;
    }
    b->state = AB_BOOK_EMPTY;
    return false;
}

/* Applies every level of an event; on AB_ENOMEM the book is half-updated. */
static int apply_levels(struct ab_book *b, const struct ab_level *bids, size_t n_bids,
                        const struct ab_level *asks, size_t n_asks)
{
    for (size_t i = 0; i < n_bids; i++) {
        int rc = side_set(b, &b->sides[AB_BOOK_BID], bids[i].price, bids[i].qty);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < n_asks; i++) {
        int rc = side_set(b, &b->sides[AB_BOOK_ASK], asks[i].price, asks[i].qty);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * Fills an empty side. A snapshot lists its levels best first, so each
 * level is normally worse than the current tail: it is linked there in O(1)
 * with last[i], the last node of each skip-list level (exactly where a seek
 * would have ended, so the list is the one side_set would build). The first
 * level out of that order, a zero quantity or a full side switches to
 * side_set for the rest. On bench_decode the 27 snapshots (1000 levels a
 * side) made side_seek the largest cost of ours (5.3% of the time); with
 * the O(1) book_clear this took the CPU-time ratio 0.76x -> 0.80-0.81x.
 */
static int side_load(struct ab_book *b, struct side *s, const struct ab_level *lv, size_t n)
{
    struct node *last[MAX_HEIGHT];
    bool append = true;
    for (int i = 0; i < MAX_HEIGHT; i++)
        last[i] = &s->head;
    for (size_t k = 0; k < n; k++) {
        append = append && !ab_dec_is_zero(lv[k].qty) && s->count < b->lim.max_levels &&
                 (!s->tail || better(s, s->tail->price, lv[k].price));
        if (!append) {
            int rc = side_set(b, s, lv[k].price, lv[k].qty);
            if (rc)
                return rc;
            continue;
        }
        struct node *x = node_get(b);
        if (!x)
            return AB_ENOMEM;
        x->price = lv[k].price;
        x->qty = lv[k].qty;
        side_link(b, s, x, last);
        for (int i = 0; i < x->height; i++)
            last[i] = x;
    }
    return 0;
}

/* Replaces the book's levels with a (validated) snapshot's. */
static int load_levels(struct ab_book *b, const struct ab_book_snapshot *s)
{
    book_clear(b);
    int rc = side_load(b, &b->sides[AB_BOOK_BID], s->bids, s->n_bids);
    if (rc == 0)
        rc = side_load(b, &b->sides[AB_BOOK_ASK], s->asks, s->n_asks);
    if (rc)
        return rc;
    b->id = s->last_update_id;
    b->state = AB_BOOK_LIVE;
    b->snapshot_wanted = false;
    b->st.snapshots_loaded++;
    return 0;
}

static bool snapshot_valid(const struct ab_book_snapshot *s)
{
    return levels_valid(s->bids, s->n_bids) && levels_valid(s->asks, s->n_asks);
}

/* ---- public API ------------------------------------------------------- */

int ab_book_new(const char *symbol, const struct ab_book_limits *lim, struct ab_book **out)
{
    if (!out)
        return AB_EINVAL;
    *out = NULL;
    if (!symbol || !ab_symbol_valid(symbol, strnlen(symbol, AB_SYMBOL_MAX)))
        return AB_EINVAL;
    struct ab_book_limits l = {0};
    if (lim)
        l = *lim;
    if (!l.max_levels)
        l.max_levels = AB_BOOK_DEFAULT_MAX_LEVELS;
    if (!l.max_buffered_events)
        l.max_buffered_events = AB_BOOK_DEFAULT_MAX_BUFFERED_EVENTS;
    if (!l.max_buffered_levels)
        l.max_buffered_levels = AB_BOOK_DEFAULT_MAX_BUFFERED_LEVELS;
    if (l.max_levels > AB_BOOK_LIMIT_MAX_LEVELS ||
        l.max_buffered_events > AB_BOOK_LIMIT_MAX_BUFFERED_EVENTS ||
        l.max_buffered_levels > AB_BOOK_LIMIT_MAX_BUFFERED_LEVELS)
        return AB_ERANGE;

    struct ab_book *b = calloc(1, sizeof(*b));
    if (!b)
        return AB_ENOMEM;
    snprintf(b->symbol, sizeof(b->symbol), "%s", symbol);
    b->lim = l;
    b->state = AB_BOOK_EMPTY;
    side_init(&b->sides[AB_BOOK_BID], true);
    side_init(&b->sides[AB_BOOK_ASK], false);
    /* FNV-1a of the symbol seeds the level heights: deterministic per symbol. */
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = b->symbol; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    b->rng = h ? h : 1;
    *out = b;
    return 0;
}

void ab_book_free(struct ab_book *b)
{
    if (!b)
        return;
    struct chunk *c = b->chunks;
    while (c) {
        struct chunk *nx = c->next;
        free(c);
        c = nx;
    }
    free(b->ev);
    free(b->lv);
    free(b);
}

void ab_book_reset(struct ab_book *b)
{
    if (!b)
        return;
    discard_all(b);
    b->snapshot_wanted = false;
}

/* The live rule (see the header) for one event against a LIVE book. */
static int live_event(struct ab_book *b, const struct ab_book_delta *d, struct ab_book_result *res)
{
    if (d->last_id <= b->id) {
        b->st.deltas_stale++;
        res->action = AB_BOOK_IGNORED_STALE;
        res->reason = AB_BOOK_R_STALE;
        return 0;
    }
    if (is_gap(d->first_id, b->id)) {
        b->st.gaps++;
        book_clear(b);
        if (!buffer_restart(b, d))
            b->st.buffer_overflows++;
        set_resync(b, res, AB_BOOK_R_GAP);
        return 0;
    }
    uint64_t prev = b->id;
    int rc = apply_levels(b, d->bids, d->n_bids, d->asks, d->n_asks);
    if (rc) {
        discard_all(b);
        set_resync(b, res, AB_BOOK_R_NOMEM);
        return rc;
    }
    b->id = d->last_id;
    b->st.deltas_applied++;
    check_crossed(b);
    res->action = AB_BOOK_APPLIED;
    res->prev_id = prev;
    res->first_id = d->first_id;
    res->last_id = d->last_id;
    return 0;
}

static int buffer_event(struct ab_book *b, const struct ab_book_delta *d,
                        struct ab_book_result *res)
{
    if (b->n_ev > 0) {
        uint64_t last = b->ev[b->n_ev - 1].last_id;
        if (d->last_id <= last) {
            b->st.deltas_stale++;
            res->action = AB_BOOK_IGNORED_STALE;
            res->reason = AB_BOOK_R_STALE;
            return 0;
        }
        if (is_gap(d->first_id, last)) {
            /* Buffered events before a gap can never be bridged: start over. */
            b->st.gaps++;
            if (!buffer_restart(b, d))
                b->st.buffer_overflows++;
            set_resync(b, res, AB_BOOK_R_GAP);
            return 0;
        }
    }
    if (!buffer_fits(b, d)) {
        b->st.buffer_overflows++;
        buffer_restart(b, d);
        set_resync(b, res, AB_BOOK_R_BUFFER_FULL);
        return 0;
    }
    int rc = buffer_push(b, d);
    if (rc) {
        discard_all(b);
        set_resync(b, res, AB_BOOK_R_NOMEM);
        return rc;
    }
    b->state = AB_BOOK_BUFFERING;
    if (b->snapshot_wanted) {
        res->action = AB_BOOK_BUFFERED;
    } else {
        b->snapshot_wanted = true;
        res->action = AB_BOOK_NEED_SNAPSHOT;
    }
    return 0;
}

int ab_book_on_delta(struct ab_book *b, const struct ab_book_delta *d, struct ab_book_result *res)
{
    if (!res)
        return AB_EINVAL;
    result_init(res);
    res->action = AB_BOOK_IGNORED_INVALID;
    res->reason = AB_BOOK_R_INVALID;
    if (!b || !d)
        return AB_EINVAL;
    if (!symbol_matches(b, d->symbol)) {
        b->st.deltas_invalid++;
        res->reason = AB_BOOK_R_WRONG_SYMBOL;
        return AB_EINVAL;
    }
    res->reason = AB_BOOK_R_NONE;
    if (d->first_id > d->last_id || !levels_valid(d->bids, d->n_bids) ||
        !levels_valid(d->asks, d->n_asks)) {
        /* Its update ids are lost, so continuity is too. */
        b->st.deltas_invalid++;
        discard_all(b);
        set_resync(b, res, AB_BOOK_R_INVALID);
        return AB_EINVAL;
    }
    if (b->state == AB_BOOK_LIVE)
        return live_event(b, d, res);
    return buffer_event(b, d, res);
}

/*
 * Replays the buffer against a freshly loaded snapshot with the live rule;
 * the first event kept is the bridging one. Returns 0 (res->action RESYNC if
 * a gap turned up) or AB_ENOMEM.
 */
static int replay_buffer(struct ab_book *b, struct ab_book_result *res)
{
    for (size_t i = 0; i < b->n_ev; i++) {
        const struct buf_ev *e = &b->ev[i];
        if (e->last_id <= b->id) {
            b->st.deltas_stale++;
            res->dropped++;
            continue;
        }
        if (is_gap(e->first_id, b->id)) {
            /* Unreachable with a continuous buffer that passed the age check. */
            b->st.gaps++;
            discard_all(b);
            set_resync(b, res, AB_BOOK_R_GAP);
            return 0;
        }
        /* b->lv is still NULL when every buffered event was empty: index it only for levels. */
        const struct ab_level *bids = e->n_bids ? &b->lv[e->off] : NULL;
        const struct ab_level *asks = e->n_asks ? &b->lv[e->off + e->n_bids] : NULL;
        int rc = apply_levels(b, bids, e->n_bids, asks, e->n_asks);
        if (rc)
            return rc;
        b->id = e->last_id;
        b->st.deltas_applied++;
        res->replayed++;
    }
    buffer_clear(b);
    return 0;
}

int ab_book_on_snapshot(struct ab_book *b, const struct ab_book_snapshot *s,
                        struct ab_book_result *res)
{
    if (!res)
        return AB_EINVAL;
    result_init(res);
    res->action = AB_BOOK_IGNORED_INVALID;
    res->reason = AB_BOOK_R_INVALID;
    if (!b || !s)
        return AB_EINVAL;
    if (!symbol_matches(b, s->symbol)) {
        b->st.snapshots_invalid++;
        res->reason = AB_BOOK_R_WRONG_SYMBOL;
        return AB_EINVAL;
    }
    if (!snapshot_valid(s)) {
        b->st.snapshots_invalid++;
        if (b->state != AB_BOOK_LIVE) {
            b->snapshot_wanted = true;
            res->action = AB_BOOK_NEED_SNAPSHOT;
        }
        return AB_EINVAL;
    }
    res->reason = AB_BOOK_R_NONE;
    if (b->state == AB_BOOK_LIVE) {
        res->action = AB_BOOK_IGNORED_STALE;
        res->reason = AB_BOOK_R_ALREADY_LIVE;
        return 0;
    }
    if (b->n_ev > 0 && is_gap(b->ev[0].first_id, s->last_update_id)) {
        b->st.snapshots_too_old++;
        b->snapshot_wanted = true;
        res->action = AB_BOOK_SNAPSHOT_TOO_OLD;
        res->reason = AB_BOOK_R_SNAPSHOT_OLD;
        return 0;
    }

    int rc = load_levels(b, s);
    if (rc == 0)
        rc = replay_buffer(b, res);
    if (rc) {
        discard_all(b);
        set_resync(b, res, AB_BOOK_R_NOMEM);
        return rc;
    }
    if (res->action == AB_BOOK_RESYNC)
        return 0;
    check_crossed(b);
    res->action = AB_BOOK_APPLIED;
    res->first_id = s->last_update_id;
    res->last_id = b->id;
    return 0;
}

int ab_book_load(struct ab_book *b, const struct ab_book_snapshot *s)
{
    if (!b || !s)
        return AB_EINVAL;
    if (!symbol_matches(b, s->symbol) || !snapshot_valid(s)) {
        b->st.snapshots_invalid++;
        return AB_EINVAL;
    }
    buffer_clear(b);
    int rc = load_levels(b, s);
    if (rc) {
        discard_all(b);
        return rc;
    }
    check_crossed(b);
    return 0;
}

enum ab_book_state ab_book_state(const struct ab_book *b)
{
    return b ? b->state : AB_BOOK_EMPTY;
}

uint64_t ab_book_last_update_id(const struct ab_book *b)
{
    return b && b->state == AB_BOOK_LIVE ? b->id : 0;
}

const char *ab_book_symbol(const struct ab_book *b)
{
    return b ? b->symbol : "";
}

size_t ab_book_count(const struct ab_book *b, enum ab_book_side side)
{
    if (!b || (side != AB_BOOK_BID && side != AB_BOOK_ASK))
        return 0;
    return b->sides[side].count;
}

size_t ab_book_buffered(const struct ab_book *b)
{
    return b ? b->n_ev : 0;
}

bool ab_book_is_crossed(const struct ab_book *b)
{
    return b && b->state == AB_BOOK_LIVE && b->crossed;
}

void ab_book_get_stats(const struct ab_book *b, struct ab_book_stats *out)
{
    if (!out)
        return;
    if (!b) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = b->st;
}

bool ab_book_best(const struct ab_book *b, enum ab_book_side side, struct ab_level *out)
{
    if (!b || !out || (side != AB_BOOK_BID && side != AB_BOOK_ASK))
        return false;
    const struct node *n = b->sides[side].head.next[0];
    if (!n)
        return false;
    out->price = n->price;
    out->qty = n->qty;
    return true;
}

size_t ab_book_top(const struct ab_book *b, enum ab_book_side side, struct ab_level *out, size_t n)
{
    if (!b || (n > 0 && !out) || (side != AB_BOOK_BID && side != AB_BOOK_ASK))
        return 0;
    size_t i = 0;
    for (const struct node *x = b->sides[side].head.next[0]; x && i < n; x = x->next[0]) {
        out[i].price = x->price;
        out[i].qty = x->qty;
        i++;
    }
    return i;
}

int ab_book_export(const struct ab_book *b, size_t depth, struct ab_book_snapshot *out)
{
    if (!b || !out)
        return AB_EINVAL;
    memset(out, 0, sizeof(*out));
    if (b->state != AB_BOOK_LIVE)
        return AB_ESTATE;
    size_t nb = b->sides[AB_BOOK_BID].count, na = b->sides[AB_BOOK_ASK].count;
    if (depth > 0 && nb > depth)
        nb = depth;
    if (depth > 0 && na > depth)
        na = depth;
    struct ab_level *bids = nb ? malloc(nb * sizeof(*bids)) : NULL;
    struct ab_level *asks = na ? malloc(na * sizeof(*asks)) : NULL;
    if ((nb && !bids) || (na && !asks)) {
        free(bids);
        free(asks);
        return AB_ENOMEM;
    }
    snprintf(out->symbol, sizeof(out->symbol), "%s", b->symbol);
    out->last_update_id = b->id;
    out->bids = bids;
    out->asks = asks;
    out->n_bids = ab_book_top(b, AB_BOOK_BID, bids, nb);
    out->n_asks = ab_book_top(b, AB_BOOK_ASK, asks, na);
    return 0;
}

const char *ab_book_state_str(enum ab_book_state s)
{
    switch (s) {
    case AB_BOOK_EMPTY:
        return "empty";
    case AB_BOOK_BUFFERING:
        return "buffering";
    case AB_BOOK_LIVE:
        return "live";
    }
    return "unknown";
}

const char *ab_book_action_str(enum ab_book_action a)
{
    switch (a) {
    case AB_BOOK_BUFFERED:
        return "buffered";
    case AB_BOOK_NEED_SNAPSHOT:
        return "need_snapshot";
    case AB_BOOK_APPLIED:
        return "applied";
    case AB_BOOK_IGNORED_STALE:
        return "ignored_stale";
    case AB_BOOK_IGNORED_INVALID:
        return "ignored_invalid";
    case AB_BOOK_SNAPSHOT_TOO_OLD:
        return "snapshot_too_old";
    case AB_BOOK_RESYNC:
        return "resync";
    }
    return "unknown";
}

const char *ab_book_reason_str(enum ab_book_reason r)
{
    switch (r) {
    case AB_BOOK_R_NONE:
        return "none";
    case AB_BOOK_R_GAP:
        return "gap";
    case AB_BOOK_R_STALE:
        return "stale";
    case AB_BOOK_R_BUFFER_FULL:
        return "buffer full";
    case AB_BOOK_R_INVALID:
        return "invalid input";
    case AB_BOOK_R_WRONG_SYMBOL:
        return "wrong symbol";
    case AB_BOOK_R_SNAPSHOT_OLD:
        return "snapshot too old";
    case AB_BOOK_R_ALREADY_LIVE:
        return "book already live";
    case AB_BOOK_R_NOMEM:
        return "out of memory";
    }
    return "unknown";
}

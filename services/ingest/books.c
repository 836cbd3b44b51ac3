#include "books.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/symidx.h"

struct book_slot {
    struct ab_book *book;
    enum pub_book_state state;
    bool in_flight;      /* a snapshot request is out */
    bool wanted;         /* a snapshot is needed but not requested yet */
    int64_t not_before;  /* earliest time for the next request */
    uint32_t gen;        /* bumped by reset: older answers are dropped */
    uint32_t flight_gen; /* generation of the request in flight */
    uint64_t resyncs;
};

struct books {
    size_t n;
    int64_t retry_ms;
    struct book_slot *slots;
    struct ab_symidx idx; /* symbol -> slot (books_find is on every depth event) */
};

int books_new(const char (*symbols)[AB_SYMBOL_MAX], size_t n, const struct ab_book_limits *lim,
              int64_t retry_ms, struct books **out)
{
    *out = NULL;
    if (!symbols || n == 0)
        return AB_EINVAL;
    struct books *b = calloc(1, sizeof(*b));
    if (!b)
        return AB_ENOMEM;
    b->slots = calloc(n, sizeof(*b->slots));
    if (!b->slots) {
        free(b);
        return AB_ENOMEM;
    }
    b->n = n;
    b->retry_ms = retry_ms;
    int rc = ab_symidx_init(&b->idx, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = ab_book_new(symbols[i], lim, &b->slots[i].book);
        if (rc == 0)
            rc = ab_symidx_put(&b->idx, symbols[i], i);
    }
    if (rc < 0) {
        books_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void books_free(struct books *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        ab_book_free(b->slots[i].book);
    ab_symidx_deinit(&b->idx);
    free(b->slots);
    free(b);
}

size_t books_count(const struct books *b)
{
    return b->n;
}

int books_find(const struct books *b, const char *symbol, size_t *idx)
{
    return ab_symidx_get(&b->idx, symbol, idx);
}

static void set_state(struct book_slot *s, enum pub_book_state st, struct books_effect *eff)
{
    if (s->state != st) {
        s->state = st;
        eff->status_changed = true;
    }
}

/* Issues the wanted request when nothing is in flight and the delay passed. */
static void maybe_fetch(struct book_slot *s, int64_t now_ms, struct books_effect *eff)
{
    if (!s->wanted || s->in_flight || now_ms < s->not_before)
        return;
    s->wanted = false;
    s->in_flight = true;
    s->flight_gen = s->gen;
    eff->fetch_snapshot = true;
    eff->snapshot_gen = s->gen;
}

static void lost(struct book_slot *s, struct books_effect *eff)
{
    eff->resync = true;
    s->resyncs++;
    if (s->state == PUB_BOOK_LIVE)
        set_state(s, PUB_BOOK_RESYNCING, eff);
}

int books_on_delta(struct books *b, size_t idx, const struct ab_book_delta *d, int64_t now_ms,
                   struct books_effect *eff)
{
    memset(eff, 0, sizeof(*eff));
    if (idx >= b->n)
        return AB_EINVAL;
    struct book_slot *s = &b->slots[idx];
    int rc = ab_book_on_delta(s->book, d, &eff->res);
    switch (eff->res.action) {
    case AB_BOOK_APPLIED:
        eff->publish_delta = true;
        break;
    case AB_BOOK_NEED_SNAPSHOT:
        s->wanted = true;
        break;
    case AB_BOOK_RESYNC:
        lost(s, eff);
        /* A request in flight may still bridge the new buffer (book.h);
         * otherwise ask for a fresh one. */
        if (!s->in_flight)
            s->wanted = true;
        break;
    default:
        break;
    }
    maybe_fetch(s, now_ms, eff);
    return rc;
}

int books_on_snapshot(struct books *b, size_t idx, uint32_t gen,
                      const struct ab_book_snapshot *snap, int64_t now_ms, struct books_effect *eff)
{
    memset(eff, 0, sizeof(*eff));
    if (idx >= b->n)
        return AB_EINVAL;
    struct book_slot *s = &b->slots[idx];
    if (!s->in_flight || gen != s->flight_gen) {
        /* Not the answer we wait for. */
        return 0;
    }
    s->in_flight = false;
    if (gen != s->gen) {
        /* Requested before a reset: its buffer is gone. */
        if (ab_book_state(s->book) == AB_BOOK_BUFFERING)
            s->wanted = true;
        maybe_fetch(s, now_ms, eff);
        return 0;
    }
    int rc = ab_book_on_snapshot(s->book, snap, &eff->res);
    if (rc < 0 || eff->res.action == AB_BOOK_SNAPSHOT_TOO_OLD ||
        eff->res.action == AB_BOOK_NEED_SNAPSHOT) {
        s->wanted = true;
        s->not_before = now_ms + b->retry_ms;
    } else if (eff->res.action == AB_BOOK_APPLIED) {
        eff->publish_snapshot = true;
        set_state(s, PUB_BOOK_LIVE, eff);
    }
    maybe_fetch(s, now_ms, eff);
    return rc;
}

void books_on_snapshot_failed(struct books *b, size_t idx, uint32_t gen, int64_t now_ms,
                              struct books_effect *eff)
{
    memset(eff, 0, sizeof(*eff));
    if (idx >= b->n)
        return;
    struct book_slot *s = &b->slots[idx];
    if (!s->in_flight || gen != s->flight_gen)
        return;
    s->in_flight = false;
    if (ab_book_state(s->book) != AB_BOOK_LIVE) {
        s->wanted = true;
        s->not_before = now_ms + b->retry_ms;
    }
    maybe_fetch(s, now_ms, eff);
}

void books_reset(struct books *b, size_t idx, struct books_effect *eff)
{
    memset(eff, 0, sizeof(*eff));
    if (idx >= b->n)
        return;
    struct book_slot *s = &b->slots[idx];
    ab_book_reset(s->book);
    s->gen++;
    s->wanted = false;
    if (s->state == PUB_BOOK_LIVE) {
        s->resyncs++;
        eff->resync = true;
        set_state(s, PUB_BOOK_RESYNCING, eff);
    }
}

void books_invalidate(struct books *b, size_t idx, int64_t now_ms, struct books_effect *eff)
{
    memset(eff, 0, sizeof(*eff));
    if (idx >= b->n)
        return;
    struct book_slot *s = &b->slots[idx];
    ab_book_reset(s->book);
    s->gen++;
    lost(s, eff);
    eff->res.action = AB_BOOK_RESYNC;
    eff->res.reason = AB_BOOK_R_INVALID;
    s->wanted = true;
    s->not_before = 0;
    maybe_fetch(s, now_ms, eff);
}

void books_sync_now(struct books *b, size_t idx, int64_t now_ms, struct books_effect *eff)
{
    memset(eff, 0, sizeof(*eff));
    if (idx >= b->n)
        return;
    struct book_slot *s = &b->slots[idx];
    ab_book_reset(s->book);
    s->gen++;
    if (s->state == PUB_BOOK_LIVE)
        set_state(s, PUB_BOOK_RESYNCING, eff);
    s->wanted = true;
    s->not_before = 0;
    maybe_fetch(s, now_ms, eff);
}

void books_poll(struct books *b, size_t idx, int64_t now_ms, struct books_effect *eff)
{
    memset(eff, 0, sizeof(*eff));
    if (idx >= b->n)
        return;
    maybe_fetch(&b->slots[idx], now_ms, eff);
}

enum pub_book_state books_state(const struct books *b, size_t idx)
{
    return idx < b->n ? b->slots[idx].state : PUB_BOOK_SYNCING;
}

const struct ab_book *books_book(const struct books *b, size_t idx)
{
    return idx < b->n ? b->slots[idx].book : NULL;
}

uint64_t books_resyncs(const struct books *b, size_t idx)
{
    return idx < b->n ? b->slots[idx].resyncs : 0;
}

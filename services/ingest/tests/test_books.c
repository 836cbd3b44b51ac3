/* Unit tests of the book manager: when to fetch snapshots, what to publish,
 * resync on a gap for one symbol only, stale answers after a reset. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "books.h"
#include "common/err.h"

static const char syms[2][AB_SYMBOL_MAX] = {"BTCUSDT", "ETHUSDT"};

static struct ab_level lv(int64_t price, int64_t qty)
{
    struct ab_level l = {ab_dec_from_units(price * AB_DEC_SCALE),
                         ab_dec_from_units(qty * AB_DEC_SCALE)};
    return l;
}

static struct ab_book_delta delta(const char *sym, uint64_t U, uint64_t u, struct ab_level *bid)
{
    struct ab_book_delta d;
    memset(&d, 0, sizeof(d));
    snprintf(d.symbol, sizeof(d.symbol), "%s", sym);
    d.first_id = U;
    d.last_id = u;
    d.event_time = 1;
    if (bid) {
        d.bids = bid;
        d.n_bids = 1;
    }
    return d;
}

static struct ab_book_snapshot snap(const char *sym, uint64_t id, struct ab_level *bids,
                                    struct ab_level *asks)
{
    struct ab_book_snapshot s;
    memset(&s, 0, sizeof(s));
    snprintf(s.symbol, sizeof(s.symbol), "%s", sym);
    s.last_update_id = id;
    s.bids = bids;
    s.n_bids = 1;
    s.asks = asks;
    s.n_asks = 1;
    return s;
}

static struct books *mk(void)
{
    struct books *b = NULL;
    cr_assert_eq(books_new(syms, 2, NULL, 250, &b), 0);
    return b;
}

/* Brings book idx live at id 100 and returns the effect of the snapshot. */
static struct books_effect make_live(struct books *b, size_t idx, const char *sym)
{
    struct books_effect eff;
    struct ab_level bid = lv(10, 1), ask = lv(11, 1);
    struct ab_book_delta d = delta(sym, 95, 101, &bid);
    cr_assert_eq(books_on_delta(b, idx, &d, 0, &eff), 0);
    cr_assert(eff.fetch_snapshot, "first event asks for a snapshot");
    uint32_t gen = eff.snapshot_gen;
    struct ab_book_snapshot s = snap(sym, 100, &bid, &ask);
    cr_assert_eq(books_on_snapshot(b, idx, gen, &s, 0, &eff), 0);
    return eff;
}

Test(books, sync_publishes_snapshot_then_deltas)
{
    struct books *b = mk();
    size_t idx;
    cr_assert_eq(books_find(b, "ETHUSDT", &idx), 0);
    cr_assert_eq(idx, 1);
    cr_assert_eq(books_find(b, "XRPUSDT", &idx), AB_ENOTFOUND);
    cr_assert_eq(books_state(b, 0), PUB_BOOK_SYNCING);
    struct books_effect eff = make_live(b, 0, "BTCUSDT");
    cr_assert(eff.publish_snapshot);
    cr_assert(eff.status_changed);
    cr_assert_eq(books_state(b, 0), PUB_BOOK_LIVE);
    cr_assert_eq(ab_book_last_update_id(books_book(b, 0)), 101, "buffered event replayed");
    struct ab_level bid = lv(10, 2);
    struct ab_book_delta d = delta("BTCUSDT", 102, 104, &bid);
    cr_assert_eq(books_on_delta(b, 0, &d, 0, &eff), 0);
    cr_assert(eff.publish_delta);
    cr_assert_not(eff.fetch_snapshot);
    cr_assert_not(eff.status_changed);
    /* A stale event is neither published nor a problem. */
    d = delta("BTCUSDT", 100, 103, &bid);
    cr_assert_eq(books_on_delta(b, 0, &d, 0, &eff), 0);
    cr_assert_not(eff.publish_delta);
    cr_assert_eq(eff.res.action, AB_BOOK_IGNORED_STALE);
    books_free(b);
}

Test(books, one_request_in_flight)
{
    struct books *b = mk();
    struct books_effect eff;
    struct ab_level bid = lv(10, 1);
    struct ab_book_delta d = delta("BTCUSDT", 1, 2, &bid);
    cr_assert_eq(books_on_delta(b, 0, &d, 0, &eff), 0);
    cr_assert(eff.fetch_snapshot);
    d = delta("BTCUSDT", 3, 4, &bid);
    cr_assert_eq(books_on_delta(b, 0, &d, 0, &eff), 0);
    cr_assert_not(eff.fetch_snapshot, "no second request while one is out");
    cr_assert_eq(eff.res.action, AB_BOOK_BUFFERED);
    books_free(b);
}

Test(books, gap_resyncs_that_symbol_only)
{
    struct books *b = mk();
    make_live(b, 0, "BTCUSDT");
    make_live(b, 1, "ETHUSDT");
    struct books_effect eff;
    struct ab_level bid = lv(10, 3);
    struct ab_book_delta d = delta("BTCUSDT", 150, 151, &bid);
    cr_assert_eq(books_on_delta(b, 0, &d, 5, &eff), 0);
    cr_assert(eff.resync);
    cr_assert(eff.fetch_snapshot, "the gap asks for a new snapshot");
    cr_assert(eff.status_changed);
    cr_assert_eq(books_state(b, 0), PUB_BOOK_RESYNCING);
    cr_assert_eq(books_state(b, 1), PUB_BOOK_LIVE, "the other book keeps flowing");
    cr_assert_eq(books_resyncs(b, 0), 1);
    cr_assert_eq(books_resyncs(b, 1), 0);
    d = delta("ETHUSDT", 102, 103, &bid);
    cr_assert_eq(books_on_delta(b, 1, &d, 5, &eff), 0);
    cr_assert(eff.publish_delta);
    books_free(b);
}

Test(books, too_old_snapshot_is_fetched_again_after_delay)
{
    struct books *b = mk();
    struct books_effect eff;
    struct ab_level bid = lv(10, 1), ask = lv(11, 1);
    struct ab_book_delta d = delta("BTCUSDT", 500, 510, &bid);
    books_on_delta(b, 0, &d, 1000, &eff);
    uint32_t gen = eff.snapshot_gen;
    struct ab_book_snapshot s = snap("BTCUSDT", 400, &bid, &ask);
    cr_assert_eq(books_on_snapshot(b, 0, gen, &s, 1000, &eff), 0);
    cr_assert_eq(eff.res.action, AB_BOOK_SNAPSHOT_TOO_OLD);
    cr_assert_not(eff.fetch_snapshot, "waits retry_ms");
    books_poll(b, 0, 1249, &eff);
    cr_assert_not(eff.fetch_snapshot);
    books_poll(b, 0, 1250, &eff);
    cr_assert(eff.fetch_snapshot);
    s = snap("BTCUSDT", 505, &bid, &ask);
    cr_assert_eq(books_on_snapshot(b, 0, eff.snapshot_gen, &s, 1300, &eff), 0);
    cr_assert(eff.publish_snapshot);
    cr_assert_eq(ab_book_last_update_id(books_book(b, 0)), 510);
    books_free(b);
}

Test(books, answer_from_before_a_reset_is_dropped)
{
    struct books *b = mk();
    struct books_effect eff;
    struct ab_level bid = lv(10, 1), ask = lv(11, 1);
    struct ab_book_delta d = delta("BTCUSDT", 1, 2, &bid);
    books_on_delta(b, 0, &d, 0, &eff);
    uint32_t old_gen = eff.snapshot_gen;
    books_reset(b, 0, &eff); /* the connection dropped */
    d = delta("BTCUSDT", 50, 60, &bid);
    books_on_delta(b, 0, &d, 0, &eff);
    cr_assert_not(eff.fetch_snapshot, "the old request is still out");
    struct ab_book_snapshot s = snap("BTCUSDT", 10, &bid, &ask);
    cr_assert_eq(books_on_snapshot(b, 0, old_gen, &s, 0, &eff), 0);
    cr_assert_not(eff.publish_snapshot, "an answer from before the reset is not used");
    cr_assert(eff.fetch_snapshot, "a fresh request replaces it");
    cr_assert_neq(eff.snapshot_gen, old_gen);
    books_free(b);
}

Test(books, failure_and_invalidate_and_sync_now)
{
    struct books *b = mk();
    make_live(b, 0, "BTCUSDT");
    struct books_effect eff;
    books_invalidate(b, 0, 10, &eff);
    cr_assert(eff.fetch_snapshot, "a lost event asks for a snapshot at once");
    cr_assert(eff.resync);
    cr_assert_eq(books_state(b, 0), PUB_BOOK_RESYNCING);
    uint32_t gen = eff.snapshot_gen;
    books_on_snapshot_failed(b, 0, gen, 10, &eff);
    cr_assert_not(eff.fetch_snapshot);
    books_poll(b, 0, 260, &eff);
    cr_assert(eff.fetch_snapshot, "retried after retry_ms");
    /* With no event at all, a snapshot alone makes the book live. */
    struct ab_level bid = lv(10, 1), ask = lv(11, 1);
    struct ab_book_snapshot s = snap("BTCUSDT", 300, &bid, &ask);
    cr_assert_eq(books_on_snapshot(b, 0, eff.snapshot_gen, &s, 300, &eff), 0);
    cr_assert(eff.publish_snapshot);
    cr_assert_eq(books_state(b, 0), PUB_BOOK_LIVE);
    /* A new connection: fresh snapshot, not counted as a resync. */
    uint64_t before = books_resyncs(b, 0);
    books_sync_now(b, 0, 400, &eff);
    cr_assert(eff.fetch_snapshot);
    cr_assert_not(eff.resync);
    cr_assert_eq(books_resyncs(b, 0), before);
    books_free(b);
}

Test(books, malformed_event_resyncs)
{
    struct books *b = mk();
    make_live(b, 0, "BTCUSDT");
    struct books_effect eff;
    struct ab_level bad = lv(-1, 1);
    struct ab_book_delta d = delta("BTCUSDT", 102, 103, &bad);
    cr_assert_eq(books_on_delta(b, 0, &d, 0, &eff), AB_EINVAL);
    cr_assert(eff.resync);
    cr_assert_not(eff.publish_delta);
    books_free(b);
}

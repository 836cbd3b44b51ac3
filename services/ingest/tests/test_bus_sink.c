/* Unit tests of the bus sink's policy over a fake transport: the retry list
 * of refused candles (order, cap, coalescing, loss), snapshots after a
 * dropped delta / a resync request / a new query, refused statuses, and
 * the metrics text. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "bus_sink.h"
#include "clock.h"
#include "common/err.h"

#define MIN 60000LL
#define T0  1700000040000LL

/* ---- fake transport ---- */

struct sent {
    enum ab_bus_type type;
    char symbol[AB_SYMBOL_MAX];
    int64_t open_time;
    bool closed;
    int64_t trades;
    uint64_t id; /* snapshot last_update_id, delta last id, status id */
    int book;    /* status book state */
};

static struct fake {
    bool full; /* candles, statuses, snapshots: AB_ENOMEM */
    bool gap;  /* deltas: AB_EGAP */
    size_t n;
    struct sent log[4096];
    /* export hook */
    bool live;
    uint64_t book_id;
    int exports;
    int lost;
    struct ab_candle last_lost;
} F;

static int fake_publish(void *t, const struct ab_bus_msg *m)
{
    (void)t;
    if (m->type == AB_BUS_BOOK_DELTA && F.gap)
        return AB_EGAP;
    if (m->type != AB_BUS_BOOK_DELTA && F.full)
        return AB_ENOMEM;
    cr_assert_lt(F.n, 4096);
    struct sent *s = &F.log[F.n++];
    memset(s, 0, sizeof(*s));
    s->type = m->type;
    switch (m->type) {
    case AB_BUS_CANDLE:
        snprintf(s->symbol, sizeof(s->symbol), "%s", m->u.candle.c.symbol);
        s->open_time = m->u.candle.c.open_time;
        s->closed = m->u.candle.c.closed;
        s->trades = m->u.candle.c.num_trades;
        break;
    case AB_BUS_BOOK_SNAPSHOT:
        snprintf(s->symbol, sizeof(s->symbol), "%s", m->u.snapshot.s.symbol);
        s->id = m->u.snapshot.s.last_update_id;
        break;
    case AB_BUS_BOOK_DELTA:
        snprintf(s->symbol, sizeof(s->symbol), "%s", m->u.delta.d.symbol);
        s->id = m->u.delta.d.last_id;
        break;
    case AB_BUS_STATUS:
        snprintf(s->symbol, sizeof(s->symbol), "%s", m->u.status.symbol);
        s->id = m->u.status.last_update_id;
        s->book = (int)m->u.status.book;
        break;
    default:
        break;
    }
    return 0;
}

static int fake_export(void *arg, const char *symbol, size_t depth, struct ab_book_snapshot *out)
{
    (void)arg;
    cr_assert_gt(depth, 0);
    F.exports++;
    if (!F.live)
        return AB_ESTATE;
    memset(out, 0, sizeof(*out));
    snprintf(out->symbol, sizeof(out->symbol), "%s", symbol);
    out->last_update_id = F.book_id;
    return 0;
}

static void fake_lost(void *arg, const struct ab_candle *c)
{
    (void)arg;
    F.lost++;
    F.last_lost = *c;
}

static struct bus_sink *mk(size_t retry_max)
{
    memset(&F, 0, sizeof(F));
    F.live = true;
    F.book_id = 100;
    struct bus_sink_transport tr = {fake_publish, NULL, NULL};
    struct bus_sink_hooks hk = {fake_export, fake_lost, NULL};
    struct bus_sink *s = NULL;
    cr_assert_eq(bus_sink_new_transport(&tr, retry_max, &hk, &s), 0);
    return s;
}

static struct ab_candle candle(const char *sym, int64_t open, int64_t trades, bool closed)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "%s", sym);
    c.interval = AB_I_1M;
    c.open_time = open;
    c.close_time = open + MIN - 1;
    c.open = c.high = c.low = c.close = ab_dec_from_units(100 * AB_DEC_SCALE);
    c.num_trades = trades;
    c.closed = closed;
    c.first_trade_id = c.last_trade_id = -1;
    return c;
}

static struct ab_book_delta delta(const char *sym, uint64_t first, uint64_t last)
{
    struct ab_book_delta d;
    memset(&d, 0, sizeof(d));
    snprintf(d.symbol, sizeof(d.symbol), "%s", sym);
    d.first_id = first;
    d.last_id = last;
    d.event_time = T0;
    return d;
}

static int candle_op(struct bus_sink *s, const struct ab_candle *c)
{
    return bus_sink_ops.candle(s, c, PUB_ORIGIN_WS, T0 * 1000);
}

static size_t count_type(enum ab_bus_type t, const char *sym)
{
    size_t n = 0;
    for (size_t i = 0; i < F.n; i++)
        if (F.log[i].type == t && (!sym || strcmp(F.log[i].symbol, sym) == 0))
            n++;
    return n;
}

Test(bus_sink, new_rejects_bad_arguments)
{
    struct bus_sink *s = NULL;
    struct bus_sink_transport tr = {fake_publish, NULL, NULL};
    struct bus_sink_hooks none = {NULL, NULL, NULL};
    cr_assert_eq(bus_sink_new_transport(&tr, 0, &none, &s), AB_EINVAL, "export hook required");
    struct bus_sink_hooks hk = {fake_export, NULL, NULL};
    cr_assert_eq(bus_sink_new_transport(&tr, BUS_SINK_RETRY_MAX_LIMIT + 1, &hk, &s), AB_EINVAL);
    struct bus_sink_config cfg = {.path = "", .hooks = hk};
    cr_assert_eq(bus_sink_new(&cfg, &s), AB_EINVAL, "path required");
    cr_assert_null(s);
}

Test(bus_sink, refused_candles_wait_in_order_and_go_on_the_tick)
{
    struct bus_sink *s = mk(0);
    struct ab_candle a = candle("BTCUSDT", T0, 1, false);
    cr_assert_eq(candle_op(s, &a), 0);
    cr_assert_eq(F.n, 1);
    F.full = true;
    struct ab_candle b = candle("BTCUSDT", T0, 2, false);
    struct ab_candle c = candle("BTCUSDT", T0, 3, true);
    cr_assert_eq(candle_op(s, &b), 0, "kept, not an error");
    cr_assert_eq(candle_op(s, &c), 0);
    F.full = false;
    /* Room again, but new candles still queue behind the waiting ones. */
    struct ab_candle d = candle("BTCUSDT", T0 + MIN, 1, false);
    cr_assert_eq(candle_op(s, &d), 0);
    cr_assert_eq(F.n, 1, "nothing overtakes the retry list");
    struct bus_sink_stats st;
    bus_sink_get_stats(s, &st);
    cr_assert_eq(st.retry_depth, 3);
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(F.n, 4);
    cr_assert_eq(F.log[1].trades, 2);
    cr_assert_eq(F.log[2].trades, 3);
    cr_assert(F.log[2].closed);
    cr_assert_eq(F.log[3].open_time, T0 + MIN);
    bus_sink_get_stats(s, &st);
    cr_assert_eq(st.retry_depth, 0);
    cr_assert_eq(st.candles_retried, 3);
    cr_assert_eq(st.candles_lost, 0);
    cr_assert_not(bus_sink_behind(s));
    bus_sink_free(s, 0);
}

Test(bus_sink, tick_stops_at_the_first_refusal)
{
    struct bus_sink *s = mk(0);
    F.full = true;
    for (int i = 0; i < 5; i++) {
        struct ab_candle c = candle("BTCUSDT", T0 + i * MIN, 1, true);
        cr_assert_eq(candle_op(s, &c), 0);
    }
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(F.n, 0);
    struct bus_sink_stats st;
    bus_sink_get_stats(s, &st);
    cr_assert_eq(st.retry_depth, 5);
    F.full = false;
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(F.n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(F.log[i].open_time, T0 + (int64_t)i * MIN, "order kept at %zu", i);
    bus_sink_free(s, 0);
}

Test(bus_sink, full_retry_list_policy)
{
    struct bus_sink *s = mk(3);
    F.full = true;
    struct ab_candle o1 = candle("BTCUSDT", T0, 1, false);
    struct ab_candle c2 = candle("BTCUSDT", T0 + MIN, 5, true);
    struct ab_candle c3 = candle("ETHUSDT", T0, 6, true);
    cr_assert_eq(candle_op(s, &o1), 0);
    cr_assert_eq(candle_op(s, &c2), 0);
    cr_assert_eq(candle_op(s, &c3), 0);
    /* Full. A newer state of a waiting candle replaces it. */
    struct ab_candle o1b = candle("BTCUSDT", T0, 2, false);
    cr_assert_eq(candle_op(s, &o1b), 0);
    /* An open update of another candle is dropped. */
    struct ab_candle o4 = candle("ETHUSDT", T0 + MIN, 1, false);
    cr_assert_eq(candle_op(s, &o4), 0);
    /* A closed candle evicts the oldest open entry. */
    struct ab_candle c5 = candle("ETHUSDT", T0 + 2 * MIN, 7, true);
    cr_assert_eq(candle_op(s, &c5), 0);
    /* A closed entry is never replaced by an open update of it. */
    struct ab_candle c2open = candle("BTCUSDT", T0 + MIN, 9, false);
    cr_assert_eq(candle_op(s, &c2open), 0);
    cr_assert_eq(F.lost, 0);
    /* Only closed entries left: the next closed candle is lost, loudly. */
    struct ab_candle c6 = candle("ETHUSDT", T0 + 3 * MIN, 8, true);
    cr_assert_eq(candle_op(s, &c6), AB_ENOMEM);
    cr_assert_eq(F.lost, 1);
    cr_assert_eq(F.last_lost.open_time, T0 + 3 * MIN);
    cr_assert(bus_sink_behind(s));
    struct bus_sink_stats st;
    bus_sink_get_stats(s, &st);
    cr_assert_eq(st.retry_depth, 3);
    cr_assert_eq(st.candles_lost, 1);
    cr_assert_eq(st.retry_superseded, 2);
    cr_assert_eq(st.retry_dropped_open, 2, "o4 dropped, o1b evicted");
    F.full = false;
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(F.n, 3);
    /* c5 took o1's slot (the oldest), then c2 and c3 in their order. */
    cr_assert_eq(F.log[0].open_time, T0 + 2 * MIN);
    cr_assert_str_eq(F.log[0].symbol, "ETHUSDT");
    cr_assert_eq(F.log[1].open_time, T0 + MIN);
    cr_assert(F.log[1].closed, "the closed state survived");
    cr_assert_eq(F.log[1].trades, 5);
    cr_assert_eq(F.log[2].trades, 6);
    cr_assert_not(bus_sink_behind(s), "drained");
    bus_sink_free(s, 0);
}

Test(bus_sink, dropped_delta_publishes_a_snapshot_of_the_book)
{
    struct bus_sink *s = mk(0);
    struct ab_book_delta d = delta("BTCUSDT", 101, 105);
    cr_assert_eq(bus_sink_ops.delta(s, &d, 100, T0 * 1000), 0);
    cr_assert_eq(count_type(AB_BUS_BOOK_DELTA, NULL), 1);
    F.gap = true;
    F.book_id = 110;
    struct ab_book_delta d2 = delta("BTCUSDT", 106, 110);
    cr_assert_eq(bus_sink_ops.delta(s, &d2, 105, T0 * 1000), 0, "handled, not an error");
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "BTCUSDT"), 1);
    cr_assert_eq(F.log[F.n - 1].id, 110, "the book after the dropped delta");
    struct bus_sink_stats st;
    bus_sink_get_stats(s, &st);
    cr_assert_eq(st.deltas_dropped, 1);
    cr_assert_eq(st.snapshots_resent, 1);
    /* Nothing more is due: the tick sends nothing. */
    size_t n = F.n;
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(F.n, n);
    bus_sink_free(s, 0);
}

Test(bus_sink, refused_snapshot_is_retried_from_the_book)
{
    struct bus_sink *s = mk(0);
    F.gap = true;
    F.full = true;
    struct ab_book_delta d = delta("ETHUSDT", 101, 105);
    cr_assert_eq(bus_sink_ops.delta(s, &d, 100, T0 * 1000), 0);
    cr_assert_eq(F.n, 0);
    struct bus_sink_stats st;
    bus_sink_get_stats(s, &st);
    cr_assert_eq(st.snapshots_refused, 1);
    /* Another dropped delta right away does not export again (rate limit). */
    int exports = F.exports;
    cr_assert_eq(bus_sink_ops.delta(s, &d, 100, T0 * 1000), 0);
    cr_assert_eq(F.exports, exports);
    /* Later, with room: the tick sends it without any delta. */
    F.full = false;
    F.book_id = 120;
    bus_sink_tick(s, clock_mono_ms() + 10 * BUS_SINK_SNAPSHOT_RETRY_MS);
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "ETHUSDT"), 1);
    cr_assert_eq(F.log[F.n - 1].id, 120);
    bus_sink_free(s, 0);
}

Test(bus_sink, book_not_live_waits_for_its_own_snapshot)
{
    struct bus_sink *s = mk(0);
    F.gap = true;
    F.live = false;
    struct ab_book_delta d = delta("BTCUSDT", 101, 105);
    cr_assert_eq(bus_sink_ops.delta(s, &d, 100, T0 * 1000), 0);
    cr_assert_eq(F.n, 0);
    /* The book's REST snapshot comes through the normal path and clears it. */
    F.gap = false;
    struct ab_book_snapshot snap;
    memset(&snap, 0, sizeof(snap));
    snprintf(snap.symbol, sizeof(snap.symbol), "BTCUSDT");
    snap.last_update_id = 300;
    cr_assert_eq(bus_sink_ops.snapshot(s, &snap, T0 * 1000), 0);
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "BTCUSDT"), 1);
    F.live = true;
    bus_sink_tick(s, clock_mono_ms() + 10 * BUS_SINK_SNAPSHOT_RETRY_MS);
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "BTCUSDT"), 1, "no second snapshot");
    bus_sink_free(s, 0);
}

Test(bus_sink, resync_requests_and_a_new_query)
{
    struct bus_sink *s = mk(0);
    struct pub_status st1 = {"BTCUSDT", PUB_BOOK_LIVE, PUB_CONN_CONNECTED, 100, T0};
    struct pub_status st2 = {"ETHUSDT", PUB_BOOK_SYNCING, PUB_CONN_CONNECTING, 77, T0};
    cr_assert_eq(bus_sink_ops.status(s, &st1), 0);
    cr_assert_eq(bus_sink_ops.status(s, &st2), 0);
    cr_assert_eq(count_type(AB_BUS_STATUS, NULL), 2);
    cr_assert_eq(F.log[1].id, 0, "no id unless live");
    /* One symbol. */
    struct ab_bus_client_event ev = {.type = AB_BUS_CLIENT_RESYNC, .symbol = "ETHUSDT"};
    bus_sink_on_event(s, &ev);
    bus_sink_on_event(s, &ev);
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "ETHUSDT"), 1);
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "BTCUSDT"), 0);
    /* All of them. */
    struct ab_bus_client_event all = {.type = AB_BUS_CLIENT_RESYNC, .symbol = ""};
    bus_sink_on_event(s, &all);
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "ETHUSDT"), 2);
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "BTCUSDT"), 1);
    struct bus_sink_stats st;
    bus_sink_get_stats(s, &st);
    cr_assert_eq(st.resync_requests, 3);
    /* A new query instance: snapshots and the statuses again. */
    struct ab_bus_client_event con = {
        .type = AB_BUS_CLIENT_CONNECTED, .server_instance = 9, .server_changed = true};
    bus_sink_on_event(s, &con);
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(count_type(AB_BUS_STATUS, "BTCUSDT"), 2);
    cr_assert_eq(count_type(AB_BUS_STATUS, "ETHUSDT"), 2);
    cr_assert_eq(count_type(AB_BUS_BOOK_SNAPSHOT, "BTCUSDT"), 2);
    /* The same query again: nothing. */
    size_t n = F.n;
    con.server_changed = false;
    bus_sink_on_event(s, &con);
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(F.n, n);
    bus_sink_free(s, 0);
}

Test(bus_sink, refused_status_goes_later_with_its_current_value)
{
    struct bus_sink *s = mk(0);
    F.full = true;
    struct pub_status a = {"BTCUSDT", PUB_BOOK_SYNCING, PUB_CONN_CONNECTING, 0, T0};
    struct pub_status b = {"BTCUSDT", PUB_BOOK_LIVE, PUB_CONN_CONNECTED, 42, T0 + 1};
    cr_assert_eq(bus_sink_ops.status(s, &a), 0);
    cr_assert_eq(bus_sink_ops.status(s, &b), 0);
    cr_assert_eq(F.n, 0);
    F.full = false;
    F.live = false; /* no snapshot due anyway */
    bus_sink_tick(s, clock_mono_ms());
    cr_assert_eq(count_type(AB_BUS_STATUS, NULL), 1, "only the current one");
    cr_assert_eq(F.log[0].book, AB_BUS_BOOK_LIVE);
    cr_assert_eq(F.log[0].id, 42);
    bus_sink_free(s, 0);
}

Test(bus_sink, metrics_and_health_text)
{
    struct bus_sink *s = mk(2);
    F.full = true;
    struct ab_candle c1 = candle("BTCUSDT", T0, 1, true);
    struct ab_candle c2 = candle("BTCUSDT", T0 + MIN, 1, true);
    struct ab_candle c3 = candle("BTCUSDT", T0 + 2 * MIN, 1, true);
    candle_op(s, &c1);
    candle_op(s, &c2);
    candle_op(s, &c3);
    struct pub_buf b;
    pub_buf_init(&b, 1 << 20);
    cr_assert_eq(bus_sink_metrics(s, &b), 0);
    cr_assert_not_null(strstr(b.p, "\nabidance_ingest_bus_retry_depth 2\n"));
    cr_assert_not_null(strstr(b.p, "\nabidance_ingest_bus_candles_lost_total 1\n"));
    cr_assert_not_null(strstr(b.p, "\nabidance_ingest_bus_behind 1\n"));
    cr_assert_not_null(strstr(b.p, "# TYPE abidance_ingest_bus_connected gauge\n"));
    b.len = 0;
    b.p[0] = '\0';
    cr_assert_eq(bus_sink_health(s, &b), 0);
    cr_assert_str_eq(b.p, ",\"bus\":{\"connected\":false,\"unacked_frames\":0,\"retry_depth\":2,"
                          "\"candles_lost\":1,\"behind\":true}");
    /* The cap of the text buffer holds. */
    struct pub_buf small;
    pub_buf_init(&small, 100);
    cr_assert_eq(bus_sink_metrics(s, &small), AB_ENOMEM);
    pub_buf_deinit(&small);
    pub_buf_deinit(&b);
    bus_sink_free(s, 0);
}

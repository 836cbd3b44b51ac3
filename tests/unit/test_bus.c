/*
 * Tests for common/bus_client and common/bus_server over real Unix sockets
 * in a temporary directory: ordered delivery with acks, acks freeing only up
 * to the acknowledged seq, a server restart mid-stream (resend, no loss,
 * resent flags), an ingest restart (new instance), duplicate suppression and
 * connection replacement (with a hand-written ingest speaking raw frames),
 * the buffer cap policy, resync requests, the delivery window, the socket
 * file rules, both ends' handling of misbehaving peers, and concurrent
 * publishers writing (gathered, cut mid-frame) without loss or reordering.
 *
 * Waits poll a condition every millisecond up to a deadline; no test sleeps
 * longer than a negative check needs.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/bus_client.h"
#include "common/bus_server.h"
#include "common/err.h"

static char g_dir[64];
static char g_path[100];

static void setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/abbus.XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
    snprintf(g_path, sizeof(g_path), "%s/bus.sock", g_dir);
}

static void teardown(void)
{
    unlink(g_path);
    rmdir(g_dir);
}

TestSuite(bus, .init = setup, .fini = teardown, .timeout = 20);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#define WAIT_UNTIL(cond, ms)               \
    do {                                   \
        int64_t dl_ = mono_ms() + (ms);    \
        while (!(cond) && mono_ms() < dl_) \
            nap_ms(1);                     \
    } while (0)

/* ---- a recording server ------------------------------------------------- */

#define MAXE 4096

struct entry {
    uint64_t seq, token, instance;
    bool resent;
    int type;
    int64_t open_time;
    uint64_t first_id, last_id;
    size_t n_levels;
    char symbol[AB_SYMBOL_MAX];
};

struct rec {
    pthread_mutex_t mu;
    int mode; /* AB_BUS_DONE or AB_BUS_PENDING */
    size_t n;
    struct entry e[MAXE];
    int connected, disconnected, new_instance, replaced;
};

static struct rec *rec_new(int mode)
{
    struct rec *r = calloc(1, sizeof(*r));
    cr_assert_not_null(r);
    pthread_mutex_init(&r->mu, NULL);
    r->mode = mode;
    return r;
}

static void rec_free(struct rec *r)
{
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int on_msg(void *arg, struct ab_bus_msg *m, const struct ab_bus_delivery *dv)
{
    struct rec *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->n < MAXE) {
        struct entry *e = &r->e[r->n];
        memset(e, 0, sizeof(*e));
        e->seq = m->seq;
        e->token = dv->token;
        e->instance = dv->instance_id;
        e->resent = dv->resent;
        e->type = m->type;
        if (m->type == AB_BUS_CANDLE) {
            e->open_time = m->u.candle.c.open_time;
            snprintf(e->symbol, sizeof(e->symbol), "%s", m->u.candle.c.symbol);
        } else if (m->type == AB_BUS_BOOK_DELTA) {
            e->first_id = m->u.delta.d.first_id;
            e->last_id = m->u.delta.d.last_id;
            e->n_levels = m->u.delta.d.n_bids + m->u.delta.d.n_asks;
            snprintf(e->symbol, sizeof(e->symbol), "%s", m->u.delta.d.symbol);
        } else if (m->type == AB_BUS_BOOK_SNAPSHOT) {
            e->last_id = m->u.snapshot.s.last_update_id;
            e->n_levels = m->u.snapshot.s.n_bids + m->u.snapshot.s.n_asks;
            snprintf(e->symbol, sizeof(e->symbol), "%s", m->u.snapshot.s.symbol);
            /* Take ownership of the arrays, as the header allows. */
            free(m->u.snapshot.s.bids);
            free(m->u.snapshot.s.asks);
            m->u.snapshot.s.bids = m->u.snapshot.s.asks = NULL;
            m->u.snapshot.s.n_bids = m->u.snapshot.s.n_asks = 0;
        } else if (m->type == AB_BUS_STATUS) {
            snprintf(e->symbol, sizeof(e->symbol), "%s", m->u.status.symbol);
        }
    }
    r->n++;
    int mode = r->mode;
    pthread_mutex_unlock(&r->mu);
    return mode;
}

static void on_sev(void *arg, const struct ab_bus_server_event *ev)
{
    struct rec *r = arg;
    pthread_mutex_lock(&r->mu);
    if (ev->type == AB_BUS_SERVER_CONNECTED) {
        r->connected++;
        r->new_instance += ev->new_instance;
        r->replaced += ev->replaced;
    } else {
        r->disconnected++;
    }
    pthread_mutex_unlock(&r->mu);
}

static size_t rec_n(struct rec *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static struct entry rec_get(struct rec *r, size_t i)
{
    pthread_mutex_lock(&r->mu);
    struct entry e = r->e[i];
    pthread_mutex_unlock(&r->mu);
    return e;
}

static struct ab_bus_server *server_start(struct rec *r, size_t window, int hello_timeout_ms)
{
    struct ab_bus_server_config cfg = {.path = g_path,
                                       .name = "test-query",
                                       .window = window,
                                       .hello_timeout_ms = hello_timeout_ms,
                                       .on_msg = on_msg,
                                       .on_event = on_sev,
                                       .arg = r};
    struct ab_bus_server *srv = NULL;
    cr_assert_eq(ab_bus_server_new(&cfg, &srv), 0);
    cr_assert_eq(ab_bus_server_start(srv), 0);
    return srv;
}

static struct ab_bus_server_stats sstats(struct ab_bus_server *srv)
{
    struct ab_bus_server_stats s;
    ab_bus_server_stats(srv, &s);
    return s;
}

/* ---- a client with recorded events --------------------------------------- */

struct cev {
    pthread_mutex_t mu;
    int connected, changed, disconnected, resync;
    char resync_symbol[AB_SYMBOL_MAX];
};

static void on_cev(void *arg, const struct ab_bus_client_event *ev)
{
    struct cev *c = arg;
    pthread_mutex_lock(&c->mu);
    if (ev->type == AB_BUS_CLIENT_CONNECTED) {
        c->connected++;
        c->changed += ev->server_changed;
    } else if (ev->type == AB_BUS_CLIENT_DISCONNECTED) {
        c->disconnected++;
    } else {
        c->resync++;
        snprintf(c->resync_symbol, sizeof(c->resync_symbol), "%s", ev->symbol);
    }
    pthread_mutex_unlock(&c->mu);
}

static int cev_get(struct cev *c, int *field)
{
    pthread_mutex_lock(&c->mu);
    int v = *field;
    pthread_mutex_unlock(&c->mu);
    return v;
}

static struct ab_bus_client *client_new(uint64_t instance, size_t max_frames, size_t max_bytes,
                                        struct cev *ev)
{
    struct ab_bus_client_config cfg = {.path = g_path,
                                       .name = "test-ingest",
                                       .instance_id = instance,
                                       .max_frames = max_frames,
                                       .max_bytes = max_bytes,
                                       .backoff_min_ms = 5,
                                       .backoff_max_ms = 40,
                                       .hello_timeout_ms = 1000,
                                       .on_event = ev ? on_cev : NULL,
                                       .arg = ev};
    struct ab_bus_client *cl = NULL;
    cr_assert_eq(ab_bus_client_new(&cfg, &cl), 0);
    return cl;
}

static struct ab_bus_client_stats cstats(struct ab_bus_client *cl)
{
    struct ab_bus_client_stats s;
    ab_bus_client_stats(cl, &s);
    return s;
}

/* ---- messages ----------------------------------------------------------- */

#define T0 1714521600000LL

static struct ab_candle candle(int i)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "BTCUSDT");
    c.interval = AB_I_1M;
    c.open_time = T0 + (int64_t)i * 60000;
    c.close_time = c.open_time + 59999;
    c.open = c.high = c.low = c.close = ab_dec_from_units(6400000000000 + i);
    c.volume = ab_dec_from_units(100000000);
    c.num_trades = i;
    c.first_trade_id = c.last_trade_id = -1;
    c.closed = true;
    c.event_time = c.close_time;
    return c;
}

static struct ab_level g_lv[2 * 5000];

static struct ab_book_snapshot snapshot(const char *sym, uint64_t id, size_t per_side)
{
    struct ab_book_snapshot s;
    memset(&s, 0, sizeof(s));
    snprintf(s.symbol, sizeof(s.symbol), "%s", sym);
    s.last_update_id = id;
    for (size_t i = 0; i < 2 * per_side; i++)
        g_lv[i] = (struct ab_level){ab_dec_from_units((int64_t)(1000000 + i)),
                                    ab_dec_from_units((int64_t)i + 1)};
    s.bids = g_lv;
    s.asks = g_lv + per_side;
    s.n_bids = s.n_asks = per_side;
    return s;
}

static struct ab_book_delta delta(const char *sym, uint64_t first, uint64_t last)
{
    static struct ab_level lv[2];
    lv[0] = (struct ab_level){ab_dec_from_units(1000), ab_dec_from_units(0)};
    lv[1] = (struct ab_level){ab_dec_from_units(2000), ab_dec_from_units(5)};
    struct ab_book_delta d;
    memset(&d, 0, sizeof(d));
    snprintf(d.symbol, sizeof(d.symbol), "%s", sym);
    d.first_id = first;
    d.last_id = last;
    d.event_time = T0;
    d.bids = lv;
    d.n_bids = 1;
    d.asks = lv + 1;
    d.n_asks = 1;
    return d;
}

static struct ab_bus_status status(const char *sym)
{
    struct ab_bus_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.symbol, sizeof(st.symbol), "%s", sym);
    st.book = AB_BUS_BOOK_LIVE;
    st.conn = AB_BUS_CONN_CONNECTED;
    st.last_update_id = 5;
    st.recv_us = T0 * 1000;
    snprintf(st.reason, sizeof(st.reason), "snapshot loaded");
    return st;
}

/* ---- raw peers ---------------------------------------------------------- */

static int raw_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g_path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    return fd;
}

static int raw_listen(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g_path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    return fd;
}

static int raw_accept(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "client did not connect");
    int fd = accept(lfd, NULL, NULL);
    cr_assert_geq(fd, 0);
    return fd;
}

static void raw_send(int fd, const struct ab_bus_msg *m)
{
    uint8_t buf[4096];
    size_t len;
    cr_assert_eq(ab_bus_frame_encode(m, buf, sizeof(buf), &len, NULL), 0);
    cr_assert_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads one frame: 0, or -1 on EOF / timeout. */
static int raw_read(int fd, struct ab_bus_msg *out, int timeout_ms)
{
    uint8_t buf[4096];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    if (recv(fd, buf, 4, MSG_WAITALL) != 4)
        return -1;
    uint32_t len = buf[0] | buf[1] << 8 | buf[2] << 16 | (uint32_t)buf[3] << 24;
    cr_assert(len >= AB_BUS_HDR_SIZE && len <= sizeof(buf));
    if (recv(fd, buf + 4, len - 4, MSG_WAITALL) != (ssize_t)(len - 4))
        return -1;
    cr_assert_eq(ab_bus_frame_decode(buf, len, 0, out, NULL, NULL), 0);
    return 0;
}

/* True when the peer closed fd within timeout_ms (EOF). */
static bool raw_closed(int fd, int timeout_ms)
{
    uint8_t b[256];
    int64_t dl = mono_ms() + timeout_ms;
    while (mono_ms() < dl) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(dl - mono_ms())) != 1)
            return false;
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n <= 0)
            return true;
    }
    return false;
}

static struct ab_bus_msg hello_msg(int role, uint64_t instance, uint64_t seq)
{
    struct ab_bus_msg m;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_HELLO;
    m.u.hello.version = AB_BUS_VERSION;
    m.u.hello.role = (uint8_t)role;
    m.u.hello.instance_id = instance;
    m.u.hello.seq = seq;
    snprintf(m.u.hello.name, sizeof(m.u.hello.name), "raw");
    return m;
}

static struct ab_bus_msg candle_msg(uint64_t seq, bool resent)
{
    struct ab_bus_msg m;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_CANDLE;
    m.seq = seq;
    m.flags = resent ? AB_BUS_F_RESENT : 0;
    m.u.candle.c = candle((int)seq);
    return m;
}

/* ---- tests -------------------------------------------------------------- */

Test(bus, everything_arrives_in_order_and_is_acked)
{
    struct rec *r = rec_new(AB_BUS_DONE);
    struct ab_bus_server *srv = server_start(r, 0, 0);
    struct cev ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct ab_bus_client *cl = client_new(0, 0, 0, &ev);
    cr_assert_eq(ab_bus_client_start(cl), 0);

    /* A big snapshot first (320 KB frame: partial writes, split reads). */
    struct ab_book_snapshot s = snapshot("BTCUSDT", 1000, 5000);
    uint64_t seq = 0;
    cr_assert_eq(ab_bus_client_publish_snapshot(cl, &s, 0, 5, &seq), 0);
    cr_assert_eq(seq, 1);
    enum { NC = 2000 };
    size_t total = 1;
    for (int i = 0; i < NC; i++) {
        struct ab_candle c = candle(i);
        cr_assert_eq(ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, T0 * 1000 + i, &seq),
                     0);
        cr_assert_eq(seq, ++total);
        if (i % 100 == 0) {
            struct ab_book_delta d = delta("BTCUSDT", 1001 + (uint64_t)i, 1001 + (uint64_t)i);
            cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 1000 + (uint64_t)i, 7, NULL), 0);
            struct ab_bus_status st = status("BTCUSDT");
            cr_assert_eq(ab_bus_client_publish_status(cl, &st, NULL), 0);
            total += 2;
        }
    }
    cr_assert_eq(ab_bus_client_wait_acked(cl, 10000), 0);
    cr_assert_eq(rec_n(r), total);

    int next_candle = 0;
    for (size_t i = 0; i < total; i++) {
        struct entry e = rec_get(r, i);
        cr_assert_eq(e.seq, i + 1, "position %zu has seq %lu", i, (unsigned long)e.seq);
        cr_assert_eq(e.token, i + 1);
        cr_assert_not(e.resent);
        if (e.type == AB_BUS_CANDLE) {
            cr_assert_eq(e.open_time, T0 + (int64_t)next_candle * 60000);
            next_candle++;
        }
    }
    cr_assert_eq(next_candle, NC);
    struct entry first = rec_get(r, 0);
    cr_assert_eq(first.type, AB_BUS_BOOK_SNAPSHOT);
    cr_assert_eq(first.n_levels, 10000);
    struct entry d = rec_get(r, 2);
    cr_assert_eq(d.type, AB_BUS_BOOK_DELTA);
    cr_assert_eq(d.first_id, 1001);
    cr_assert_eq(d.n_levels, 2);

    struct ab_bus_client_stats cs = cstats(cl);
    cr_assert(cs.connected);
    cr_assert_eq(cs.published, total);
    cr_assert_eq(cs.sent, total);
    cr_assert_eq(cs.resent, 0);
    cr_assert_eq(cs.acked_seq, total);
    cr_assert_eq(cs.unacked_frames, 0);
    cr_assert_eq(cs.unacked_bytes, 0);
    cr_assert_eq(cs.connects, 1);
    struct ab_bus_server_stats ss = sstats(srv);
    cr_assert_eq(ss.delivered, total);
    cr_assert_eq(ss.delivered_type[AB_BUS_CANDLE], NC);
    cr_assert_eq(ss.duplicates, 0);
    cr_assert_eq(ss.outstanding, 0);
    cr_assert_eq(ss.acked_seq, total);
    cr_assert_geq(ss.acks_sent, 1);
    cr_assert_leq(ss.acks_sent, total / 2, "acks are coalesced");
    cr_assert_eq(cev_get(&ev, &ev.connected), 1);
    cr_assert_eq(cev_get(&ev, &ev.changed), 0);

    ab_bus_client_free(cl);
    ab_bus_server_free(srv);
    rec_free(r);
}

/*
 * Publishers write the queued frames themselves when no one else is writing
 * (bus_client.c, kick) and gather up to 64 frames per sendmsg(); a 320 KB
 * snapshot overflows the socket buffer, so writes are cut mid-frame and the
 * rest goes out later, from whichever thread writes next.
 */
struct pub_arg {
    struct ab_bus_client *cl;
    int thread, n;
    const struct ab_book_snapshot *snap; /* published every 50 candles; NULL: none */
    int failures;
};

static void *publisher(void *p)
{
    struct pub_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        struct ab_candle c = candle(i);
        snprintf(c.symbol, sizeof(c.symbol), "T%dUSDT", a->thread);
        if (ab_bus_client_publish_candle(a->cl, &c, AB_BUS_ORIGIN_WS, 1, NULL) != 0)
            a->failures++;
        if (a->snap && i % 50 == 0 && ab_bus_client_publish_snapshot(a->cl, a->snap, 0, 1, NULL))
            a->failures++;
    }
    return NULL;
}

Test(bus, concurrent_publishers_and_cut_writes_keep_every_frame_in_order)
{
    struct rec *r = rec_new(AB_BUS_DONE);
    struct ab_bus_server *srv = server_start(r, 0, 0);
    struct ab_bus_client *cl = client_new(0, 0, 0, NULL);
    cr_assert_eq(ab_bus_client_start(cl), 0);
    WAIT_UNTIL(cstats(cl).connected, 5000);
    cr_assert(cstats(cl).connected);

    struct ab_book_snapshot s = snapshot("BTCUSDT", 1, 5000); /* read-only from here */
    enum { NT = 4, NPER = 400 };
    struct pub_arg args[NT];
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        args[t] = (struct pub_arg){.cl = cl, .thread = t, .n = NPER, .snap = t == 0 ? &s : NULL};
        cr_assert_eq(pthread_create(&th[t], NULL, publisher, &args[t]), 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(args[t].failures, 0);
    }
    size_t snaps = NPER / 50, total = NT * NPER + snaps;
    cr_assert_eq(ab_bus_client_wait_acked(cl, 10000), 0);
    cr_assert_eq(rec_n(r), total);

    int64_t next[NT] = {0};
    size_t got_snaps = 0;
    for (size_t i = 0; i < total; i++) {
        struct entry e = rec_get(r, i);
        cr_assert_eq(e.seq, i + 1, "position %zu has seq %lu", i, (unsigned long)e.seq);
        cr_assert_not(e.resent);
        if (e.type == AB_BUS_BOOK_SNAPSHOT) {
            cr_assert_eq(e.n_levels, 10000);
            got_snaps++;
            continue;
        }
        cr_assert_eq(e.type, AB_BUS_CANDLE);
        int t = e.symbol[1] - '0';
        cr_assert(t >= 0 && t < NT, "symbol %s", e.symbol);
        cr_assert_eq(e.open_time, T0 + next[t] * 60000, "thread %d out of order", t);
        next[t]++;
    }
    cr_assert_eq(got_snaps, snaps);
    for (int t = 0; t < NT; t++)
        cr_assert_eq(next[t], NPER);
    struct ab_bus_client_stats cs = cstats(cl);
    cr_assert_eq(cs.published, total);
    cr_assert_eq(cs.sent, total);
    cr_assert_eq(cs.resent, 0);
    cr_assert_eq(cs.unacked_bytes, 0);
    struct ab_bus_server_stats ss = sstats(srv);
    cr_assert_eq(ss.delivered, total);
    cr_assert_eq(ss.duplicates, 0);
    cr_assert_eq(ss.gaps, 0);
    cr_assert_eq(ss.protocol_errors, 0);

    ab_bus_client_free(cl);
    ab_bus_server_free(srv);
    rec_free(r);
}

Test(bus, ack_frees_only_up_to_the_acked_seq)
{
    struct rec *r = rec_new(AB_BUS_PENDING);
    struct ab_bus_server *srv = server_start(r, 0, 0);
    struct ab_bus_client *cl = client_new(0, 0, 0, NULL);
    cr_assert_eq(ab_bus_client_start(cl), 0);
    for (int i = 0; i < 10; i++) {
        struct ab_candle c = candle(i);
        cr_assert_eq(ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    }
    WAIT_UNTIL(rec_n(r) == 10, 5000);
    cr_assert_eq(rec_n(r), 10);
    uint64_t tok[10];
    for (int i = 0; i < 10; i++)
        tok[i] = rec_get(r, (size_t)i).token;

    /* Seqs 3..5 done out of order: nothing is acknowledgeable yet. */
    uint64_t mid[3] = {tok[4], tok[2], tok[3]};
    ab_bus_server_done(srv, mid, 3);
    nap_ms(40);
    cr_assert_eq(cstats(cl).acked_seq, 0);
    cr_assert_eq(cstats(cl).unacked_frames, 10);

    /* Seq 1 done: the ack stops at 1 because 2 is still pending. */
    ab_bus_server_done(srv, &tok[0], 1);
    WAIT_UNTIL(cstats(cl).acked_seq == 1, 5000);
    cr_assert_eq(cstats(cl).acked_seq, 1);
    nap_ms(30);
    cr_assert_eq(cstats(cl).acked_seq, 1);
    cr_assert_eq(cstats(cl).unacked_frames, 9);

    /* Seq 2 done: 1..5 are all done now. */
    ab_bus_server_done(srv, &tok[1], 1);
    WAIT_UNTIL(cstats(cl).acked_seq == 5, 5000);
    cr_assert_eq(cstats(cl).acked_seq, 5);
    cr_assert_eq(cstats(cl).unacked_frames, 5);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 20), AB_ESTATE);

    /* Done twice, and a token never handed out: ignored and counted. */
    uint64_t bogus[2] = {tok[0], 999};
    ab_bus_server_done(srv, bogus, 2);
    cr_assert_eq(sstats(srv).stale_done, 2);

    /* Cumulative ack of the 8th frame, then the rest. */
    ab_bus_server_ack(srv, tok[7]);
    WAIT_UNTIL(cstats(cl).acked_seq == 8, 5000);
    cr_assert_eq(cstats(cl).unacked_frames, 2);
    ab_bus_server_ack(srv, tok[9]);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);
    cr_assert_eq(cstats(cl).acked_seq, 10);
    cr_assert_eq(sstats(srv).outstanding, 0);

    ab_bus_client_free(cl);
    ab_bus_server_free(srv);
    rec_free(r);
}

Test(bus, server_restart_resends_unacked_without_loss)
{
    struct rec *r1 = rec_new(AB_BUS_PENDING);
    struct ab_bus_server *srv = server_start(r1, 0, 0);
    struct cev ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct ab_bus_client *cl = client_new(0, 0, 0, &ev);
    cr_assert_eq(ab_bus_client_start(cl), 0);

    struct ab_book_snapshot s = snapshot("BTCUSDT", 10, 3);
    cr_assert_eq(ab_bus_client_publish_snapshot(cl, &s, 0, 1, NULL), 0);
    for (int i = 1; i < 100; i++) {
        struct ab_candle c = candle(i);
        cr_assert_eq(ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    }
    WAIT_UNTIL(rec_n(r1) == 100, 5000);
    cr_assert_eq(rec_n(r1), 100);
    ab_bus_server_ack(srv, rec_get(r1, 39).token); /* seq 40 */
    WAIT_UNTIL(cstats(cl).acked_seq == 40, 5000);
    cr_assert_eq(cstats(cl).acked_seq, 40);
    cr_assert_eq(cstats(cl).unacked_frames, 60);

    /* The query goes away; the ingest keeps publishing into its buffer. */
    ab_bus_server_free(srv);
    WAIT_UNTIL(!cstats(cl).connected, 5000);
    cr_assert_not(cstats(cl).connected);
    for (int i = 100; i < 150; i++) {
        struct ab_candle c = candle(i);
        cr_assert_eq(ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    }
    cr_assert_eq(cstats(cl).unacked_frames, 110);

    /* A new query process on the same path. */
    struct rec *r2 = rec_new(AB_BUS_DONE);
    srv = server_start(r2, 0, 0);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 10000), 0);
    cr_assert_eq(rec_n(r2), 110);
    for (size_t i = 0; i < 110; i++) {
        struct entry e = rec_get(r2, i);
        cr_assert_eq(e.seq, 41 + i, "seq continuity");
        cr_assert_eq(e.resent, e.seq <= 100, "seq %lu resent flag", (unsigned long)e.seq);
        cr_assert_eq(e.open_time, T0 + (int64_t)(e.seq - 1) * 60000);
    }
    struct ab_bus_client_stats cs = cstats(cl);
    cr_assert_eq(cs.resent, 60);
    cr_assert_eq(cs.reconnects, 1);
    cr_assert_eq(cs.acked_seq, 150);
    cr_assert_eq(cev_get(&ev, &ev.changed), 1);
    cr_assert_eq(sstats(srv).resent_delivered, 60);
    cr_assert_eq(sstats(srv).duplicates, 0);

    /* The new query has no books: the next delta asks for a snapshot first. */
    struct ab_book_delta d = delta("BTCUSDT", 11, 12);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 10, 1, NULL), AB_EGAP);
    s = snapshot("BTCUSDT", 12, 3);
    cr_assert_eq(ab_bus_client_publish_snapshot(cl, &s, 0, 1, NULL), 0);
    d = delta("BTCUSDT", 13, 14);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 12, 1, NULL), 0);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);
    cr_assert_eq(rec_get(r2, 110).type, AB_BUS_BOOK_SNAPSHOT);
    cr_assert_eq(rec_get(r2, 111).first_id, 13);

    ab_bus_client_free(cl);
    ab_bus_server_free(srv);
    rec_free(r1);
    rec_free(r2);
}

Test(bus, ingest_restart_is_a_new_instance)
{
    struct rec *r = rec_new(AB_BUS_PENDING);
    struct ab_bus_server *srv = server_start(r, 0, 0);
    struct ab_bus_client *c1 = client_new(111, 0, 0, NULL);
    cr_assert_eq(ab_bus_client_start(c1), 0);
    for (int i = 0; i < 10; i++) {
        struct ab_candle c = candle(i);
        cr_assert_eq(ab_bus_client_publish_candle(c1, &c, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    }
    WAIT_UNTIL(rec_n(r) == 10, 5000);
    cr_assert_eq(rec_n(r), 10);
    ab_bus_client_free(c1); /* dies with 10 unacknowledged frames */
    WAIT_UNTIL(!sstats(srv).connected, 5000);

    struct ab_bus_client *c2 = client_new(222, 0, 0, NULL);
    cr_assert_eq(ab_bus_client_start(c2), 0);
    for (int i = 0; i < 5; i++) {
        struct ab_candle c = candle(100 + i);
        cr_assert_eq(ab_bus_client_publish_candle(c2, &c, AB_BUS_ORIGIN_REST, 1, NULL), 0);
    }
    WAIT_UNTIL(rec_n(r) == 15, 5000);
    cr_assert_eq(rec_n(r), 15, "seqs 1..5 of the new instance are not duplicates");
    for (size_t i = 10; i < 15; i++) {
        struct entry e = rec_get(r, i);
        cr_assert_eq(e.seq, i - 9);
        cr_assert_eq(e.instance, 222);
        cr_assert_eq(e.token, i + 1);
    }
    struct ab_bus_server_stats ss = sstats(srv);
    cr_assert_eq(ss.duplicates, 0);
    cr_assert_eq(ss.handshakes, 2);
    cr_assert_eq(ss.ingest_instance, 222);
    pthread_mutex_lock(&r->mu);
    cr_assert_eq(r->new_instance, 2);
    pthread_mutex_unlock(&r->mu);

    /* The old instance's tokens no longer matter. */
    uint64_t old[10];
    for (int i = 0; i < 10; i++)
        old[i] = rec_get(r, (size_t)i).token;
    ab_bus_server_done(srv, old, 10);
    cr_assert_eq(sstats(srv).stale_done, 10);
    nap_ms(20);
    cr_assert_eq(cstats(c2).acked_seq, 0);

    uint64_t cur[5];
    for (int i = 0; i < 5; i++)
        cur[i] = rec_get(r, 10 + (size_t)i).token;
    ab_bus_server_done(srv, cur, 5);
    cr_assert_eq(ab_bus_client_wait_acked(c2, 5000), 0);
    cr_assert_eq(cstats(c2).acked_seq, 5);

    ab_bus_client_free(c2);
    ab_bus_server_free(srv);
    rec_free(r);
}

Test(bus, reconnect_of_same_instance_drops_duplicates_and_replaces)
{
    struct rec *r = rec_new(AB_BUS_PENDING);
    struct ab_bus_server *srv = server_start(r, 0, 0);
    struct ab_bus_msg m;

    int fd = raw_connect();
    struct ab_bus_msg h = hello_msg(AB_BUS_ROLE_INGEST, 0x77, 1);
    raw_send(fd, &h);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    cr_assert_eq(m.type, AB_BUS_HELLO);
    cr_assert_eq(m.u.hello.role, AB_BUS_ROLE_QUERY);
    cr_assert_eq(m.u.hello.seq, 0);
    for (uint64_t s = 1; s <= 5; s++) {
        struct ab_bus_msg c = candle_msg(s, false);
        raw_send(fd, &c);
    }
    WAIT_UNTIL(rec_n(r) == 5, 5000);
    cr_assert_eq(rec_n(r), 5);
    uint64_t t3[3] = {1, 2, 3};
    ab_bus_server_done(srv, t3, 3);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    cr_assert_eq(m.type, AB_BUS_ACK);
    cr_assert_eq(m.u.ack, 3);
    close(fd);
    WAIT_UNTIL(sstats(srv).disconnects == 1, 5000);

    /* Same instance again; it missed the ack, so it resends from 1. */
    fd = raw_connect();
    raw_send(fd, &h);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    cr_assert_eq(m.type, AB_BUS_HELLO);
    cr_assert_eq(m.u.hello.seq, 3, "the hello tells what is already handled");
    for (uint64_t s = 1; s <= 7; s++) {
        struct ab_bus_msg c = candle_msg(s, s <= 5);
        raw_send(fd, &c);
    }
    WAIT_UNTIL(rec_n(r) == 7, 5000);
    cr_assert_eq(rec_n(r), 7);
    cr_assert_eq(sstats(srv).duplicates, 5);
    struct entry e = rec_get(r, 5);
    cr_assert_eq(e.seq, 6);
    cr_assert_eq(e.token, 6);
    cr_assert_not(e.resent);
    uint64_t rest[4] = {7, 5, 4, 6};
    ab_bus_server_done(srv, rest, 4);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    cr_assert_eq(m.type, AB_BUS_ACK);
    cr_assert_eq(m.u.ack, 7);

    /* A third connection with the same hello replaces the live one. */
    int fd3 = raw_connect();
    raw_send(fd3, &h);
    cr_assert_eq(raw_read(fd3, &m, 5000), 0);
    cr_assert_eq(m.u.hello.seq, 7);
    cr_assert(raw_closed(fd, 5000), "the replaced connection is closed");
    struct ab_bus_server_stats ss = sstats(srv);
    cr_assert_eq(ss.replaced, 1);
    cr_assert(ss.connected);
    pthread_mutex_lock(&r->mu);
    cr_assert_eq(r->replaced, 1);
    cr_assert_eq(r->new_instance, 1);
    pthread_mutex_unlock(&r->mu);
    close(fd);
    close(fd3);
    ab_bus_server_free(srv);
    rec_free(r);
}

Test(bus, cap_policy_backpressure_and_book_drops)
{
    struct cev ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    /* 8 frames in all, of which at most 4 book frames; nobody listens yet. */
    struct ab_bus_client *cl = client_new(0, 8, 1u << 20, &ev);
    cr_assert_eq(ab_bus_client_start(cl), 0);

    struct ab_book_delta d = delta("ETHUSDT", 1, 1);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 0, 1, NULL), AB_EGAP,
                 "a symbol's first book frame must be a snapshot");

    struct ab_book_snapshot s = snapshot("BTCUSDT", 100, 2);
    cr_assert_eq(ab_bus_client_publish_snapshot(cl, &s, 0, 1, NULL), 0);
    for (uint64_t id = 101; id <= 103; id++) {
        d = delta("BTCUSDT", id, id);
        cr_assert_eq(ab_bus_client_publish_delta(cl, &d, id - 1, 1, NULL), 0);
    }
    /* The book half is full: a delta is dropped and the book needs a snapshot. */
    d = delta("BTCUSDT", 104, 104);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 103, 1, NULL), AB_EGAP);
    cr_assert_eq(ab_bus_client_publish_snapshot(cl, &s, 0, 1, NULL), AB_ENOMEM);
    /* Candles still have their half. */
    for (int i = 0; i < 4; i++) {
        struct ab_candle c = candle(i);
        cr_assert_eq(ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    }
    struct ab_candle c5 = candle(4);
    cr_assert_eq(ab_bus_client_publish_candle(cl, &c5, AB_BUS_ORIGIN_WS, 1, NULL), AB_ENOMEM,
                 "a candle is refused, never dropped");
    struct ab_bus_status st = status("BTCUSDT");
    cr_assert_eq(ab_bus_client_publish_status(cl, &st, NULL), AB_ENOMEM);
    struct ab_bus_client_stats cs = cstats(cl);
    cr_assert_eq(cs.unacked_frames, 8);
    cr_assert_eq(cs.book_frames, 4);
    cr_assert_eq(cs.dropped_book, 2);
    cr_assert_eq(cs.rejected_full, 3);
    cr_assert_eq(cs.published, 8);
    cr_assert_eq(cs.next_seq, 9);
    cr_assert_not(cs.connected);
    WAIT_UNTIL(cstats(cl).connect_failures > 0, 5000);
    cr_assert_gt(cstats(cl).connect_failures, 0);

    /* The query arrives: everything queued is delivered and acknowledged. */
    struct rec *r = rec_new(AB_BUS_DONE);
    struct ab_bus_server *srv = server_start(r, 0, 0);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);
    cr_assert_eq(rec_n(r), 8);
    for (size_t i = 0; i < 8; i++)
        cr_assert_eq(rec_get(r, i).seq, i + 1);

    /* Room again: the candle goes; the book still waits for its snapshot. */
    cr_assert_eq(ab_bus_client_publish_candle(cl, &c5, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    d = delta("BTCUSDT", 105, 105);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 104, 1, NULL), AB_EGAP);
    s = snapshot("BTCUSDT", 105, 2);
    cr_assert_eq(ab_bus_client_publish_snapshot(cl, &s, 0, 1, NULL), 0);
    d = delta("BTCUSDT", 106, 106);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 105, 1, NULL), 0);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);
    cr_assert_eq(rec_n(r), 11);
    /* The query never saw a delta that does not chain: 101..103, snapshot 105, 106. */
    uint64_t book_id = 0;
    for (size_t i = 0; i < 11; i++) {
        struct entry e = rec_get(r, i);
        if (e.type == AB_BUS_BOOK_SNAPSHOT)
            book_id = e.last_id;
        else if (e.type == AB_BUS_BOOK_DELTA) {
            cr_assert_eq(e.first_id, book_id + 1, "delta %lu chains", (unsigned long)e.first_id);
            book_id = e.last_id;
        }
    }
    cr_assert_eq(book_id, 106);
    cs = cstats(cl);
    cr_assert_eq(cs.dropped_book, 3);
    cr_assert_eq(cs.rejected_full, 3);

    ab_bus_client_free(cl);
    ab_bus_server_free(srv);
    rec_free(r);
}

Test(bus, byte_cap)
{
    struct ab_bus_msg m = candle_msg(1, false);
    size_t one;
    cr_assert_eq(ab_bus_frame_size(&m, &one, NULL), 0);
    struct ab_bus_client *cl = client_new(0, 1000, one * 5 + 10, NULL);
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        struct ab_candle c = candle(i);
        if (ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, 1, NULL) == 0)
            ok++;
    }
    cr_assert_eq(ok, 5);
    struct ab_bus_client_stats cs = cstats(cl);
    cr_assert_eq(cs.unacked_bytes, 5 * one);
    cr_assert_eq(cs.rejected_full, 5);
    /* A malformed candle is refused as such and does not count against the cap. */
    struct ab_candle bad = candle(0);
    bad.open_time += 1;
    cr_assert_eq(ab_bus_client_publish_candle(cl, &bad, AB_BUS_ORIGIN_WS, 1, NULL), AB_EINVAL);
    cr_assert_eq(cstats(cl).rejected_full, 5);
    ab_bus_client_free(cl); /* never started: frees its buffer */
}

Test(bus, resync_requests_reach_the_ingest)
{
    struct rec *r = rec_new(AB_BUS_DONE);
    struct ab_bus_server *srv = server_start(r, 0, 0);
    struct cev ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct ab_bus_client *cl = client_new(0, 0, 0, &ev);
    cr_assert_eq(ab_bus_client_start(cl), 0);
    struct ab_book_snapshot s = snapshot("BTCUSDT", 1, 2);
    cr_assert_eq(ab_bus_client_publish_snapshot(cl, &s, 0, 1, NULL), 0);
    s = snapshot("ETHUSDT", 1, 2);
    cr_assert_eq(ab_bus_client_publish_snapshot(cl, &s, 0, 1, NULL), 0);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);

    cr_assert_eq(ab_bus_server_request_resync(srv, "btc"), AB_EINVAL);
    cr_assert_eq(ab_bus_server_request_resync(srv, "BTCUSDT"), 0);
    WAIT_UNTIL(cev_get(&ev, &ev.resync) == 1, 5000);
    cr_assert_eq(cev_get(&ev, &ev.resync), 1);
    pthread_mutex_lock(&ev.mu);
    cr_assert_str_eq(ev.resync_symbol, "BTCUSDT");
    pthread_mutex_unlock(&ev.mu);
    struct ab_book_delta d = delta("BTCUSDT", 2, 2);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 1, 1, NULL), AB_EGAP);
    d = delta("ETHUSDT", 2, 2);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 1, 1, NULL), 0, "other books unaffected");

    cr_assert_eq(ab_bus_server_request_resync(srv, NULL), 0);
    WAIT_UNTIL(cev_get(&ev, &ev.resync) == 2, 5000);
    pthread_mutex_lock(&ev.mu);
    cr_assert_str_eq(ev.resync_symbol, "");
    pthread_mutex_unlock(&ev.mu);
    d = delta("ETHUSDT", 3, 3);
    cr_assert_eq(ab_bus_client_publish_delta(cl, &d, 2, 1, NULL), AB_EGAP);
    cr_assert_eq(cstats(cl).resync_requests, 2);
    cr_assert_eq(sstats(srv).resyncs_sent, 2);

    ab_bus_client_free(cl);
    ab_bus_server_free(srv);
    rec_free(r);
}

Test(bus, full_window_pauses_reading_until_done)
{
    struct rec *r = rec_new(AB_BUS_PENDING);
    struct ab_bus_server *srv = server_start(r, 64, 0);
    struct ab_bus_client *cl = client_new(0, 0, 0, NULL);
    cr_assert_eq(ab_bus_client_start(cl), 0);
    for (int i = 0; i < 200; i++) {
        struct ab_candle c = candle(i);
        cr_assert_eq(ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    }
    WAIT_UNTIL(rec_n(r) == 64, 5000);
    nap_ms(30);
    cr_assert_eq(rec_n(r), 64, "no more than the window is outstanding");
    cr_assert_geq(sstats(srv).window_stalls, 1);
    cr_assert_eq(sstats(srv).outstanding, 64);

    /* Complete frames as they come, as a writer would. */
    int64_t dl = mono_ms() + 10000;
    size_t done = 0;
    while (done < 200 && mono_ms() < dl) {
        size_t n = rec_n(r);
        if (n > done) {
            ab_bus_server_ack(srv, rec_get(r, n - 1).token);
            done = n;
        } else {
            nap_ms(1);
        }
    }
    cr_assert_eq(done, 200);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);
    for (size_t i = 0; i < 200; i++)
        cr_assert_eq(rec_get(r, i).seq, i + 1);

    ab_bus_client_free(cl);
    ab_bus_server_free(srv);
    rec_free(r);
}

Test(bus, socket_file_rules)
{
    struct rec *r = rec_new(AB_BUS_DONE);
    struct ab_bus_server_config cfg = {.path = g_path, .on_msg = on_msg, .arg = r};
    struct ab_bus_server *srv = NULL;

    /* A regular file is never removed. */
    FILE *f = fopen(g_path, "w");
    cr_assert_not_null(f);
    fputs("data", f);
    fclose(f);
    cr_assert_eq(ab_bus_server_new(&cfg, &srv), AB_EPERM);
    cr_assert_null(srv);
    struct stat sb;
    cr_assert_eq(stat(g_path, &sb), 0);
    cr_assert(S_ISREG(sb.st_mode));
    unlink(g_path);

    /* A stale socket (nobody listening) is replaced. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g_path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    cr_assert_eq(ab_bus_server_new(&cfg, &srv), 0);
    cr_assert_eq(ab_bus_server_start(srv), 0);

    /* A live server's socket is refused, and the live one keeps working. */
    struct ab_bus_server *other = NULL;
    cr_assert_eq(ab_bus_server_new(&cfg, &other), AB_EPERM);
    struct ab_bus_client *cl = client_new(0, 0, 0, NULL);
    cr_assert_eq(ab_bus_client_start(cl), 0);
    struct ab_candle c = candle(1);
    cr_assert_eq(ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);
    ab_bus_client_free(cl);

    /* Free removes the socket file. */
    ab_bus_server_free(srv);
    cr_assert_neq(lstat(g_path, &sb), 0);

    /* Bad arguments. */
    cfg.on_msg = NULL;
    cr_assert_eq(ab_bus_server_new(&cfg, &srv), AB_EINVAL);
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    struct ab_bus_server_config lc = {.path = longp, .on_msg = on_msg};
    cr_assert_eq(ab_bus_server_new(&lc, &srv), AB_ERANGE);
    struct ab_bus_client_config cc = {.path = longp};
    struct ab_bus_client *cl2 = NULL;
    cr_assert_eq(ab_bus_client_new(&cc, &cl2), AB_ERANGE);
    cc.path = NULL;
    cr_assert_eq(ab_bus_client_new(&cc, &cl2), AB_EINVAL);
    rec_free(r);
}

Test(bus, server_drops_misbehaving_peers)
{
    struct rec *r = rec_new(AB_BUS_DONE);
    struct ab_bus_server *srv = server_start(r, 0, 150);

    /* Garbage bytes. */
    int fd = raw_connect();
    uint8_t junk[32];
    memset(junk, 0xAB, sizeof(junk));
    cr_assert_eq(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    WAIT_UNTIL(sstats(srv).protocol_errors == 1, 5000);
    cr_assert_eq(sstats(srv).protocol_errors, 1);

    /* A data frame before the hello. */
    fd = raw_connect();
    struct ab_bus_msg c = candle_msg(1, false);
    raw_send(fd, &c);
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    WAIT_UNTIL(sstats(srv).protocol_errors == 2, 5000);

    /* A hello from the wrong role. */
    fd = raw_connect();
    struct ab_bus_msg h = hello_msg(AB_BUS_ROLE_QUERY, 5, 0);
    raw_send(fd, &h);
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    WAIT_UNTIL(sstats(srv).protocol_errors == 3, 5000);

    /* A control frame after the hello. */
    fd = raw_connect();
    h = hello_msg(AB_BUS_ROLE_INGEST, 6, 1);
    raw_send(fd, &h);
    struct ab_bus_msg m;
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    struct ab_bus_msg ack;
    memset(&ack, 0, sizeof(ack));
    ack.type = AB_BUS_ACK;
    raw_send(fd, &ack);
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    WAIT_UNTIL(sstats(srv).protocol_errors == 4, 5000);

    /* Silence: dropped after the hello timeout. */
    fd = raw_connect();
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    cr_assert_eq(sstats(srv).hello_timeouts, 1);
    cr_assert_eq(rec_n(r), 0);

    /* A real ingest still gets through. */
    struct ab_bus_client *cl = client_new(0, 0, 0, NULL);
    cr_assert_eq(ab_bus_client_start(cl), 0);
    struct ab_candle cd = candle(3);
    cr_assert_eq(ab_bus_client_publish_candle(cl, &cd, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);
    cr_assert_eq(rec_n(r), 1);
    ab_bus_client_free(cl);
    ab_bus_server_free(srv);
    rec_free(r);
}

Test(bus, client_drops_misbehaving_servers)
{
    int lfd = raw_listen();
    struct cev ev = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct ab_bus_client *cl = client_new(0x1234, 0, 0, &ev);
    struct ab_candle c = candle(1);
    cr_assert_eq(ab_bus_client_publish_candle(cl, &c, AB_BUS_ORIGIN_WS, 1, NULL), 0);
    cr_assert_eq(ab_bus_client_start(cl), 0);
    struct ab_bus_msg m;

    /* 1: the client's hello; answer with an ack instead of a hello. */
    int fd = raw_accept(lfd);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    cr_assert_eq(m.type, AB_BUS_HELLO);
    cr_assert_eq(m.u.hello.role, AB_BUS_ROLE_INGEST);
    cr_assert_eq(m.u.hello.instance_id, 0x1234);
    cr_assert_eq(m.u.hello.seq, 1, "lowest unacknowledged seq");
    cr_assert_str_eq(m.u.hello.name, "test-ingest");
    struct ab_bus_msg ack;
    memset(&ack, 0, sizeof(ack));
    ack.type = AB_BUS_ACK;
    raw_send(fd, &ack);
    cr_assert(raw_closed(fd, 5000));
    close(fd);

    /* 2: a hello that claims a seq never sent. */
    fd = raw_accept(lfd);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    struct ab_bus_msg h = hello_msg(AB_BUS_ROLE_QUERY, 99, 5);
    raw_send(fd, &h);
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    cr_assert_eq(cstats(cl).protocol_errors, 2);
    cr_assert_eq(cstats(cl).connects, 0);

    /* 3: a proper hello; the frame comes, then a resync and an ack. */
    fd = raw_accept(lfd);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    h = hello_msg(AB_BUS_ROLE_QUERY, 99, 0);
    raw_send(fd, &h);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    cr_assert_eq(m.type, AB_BUS_CANDLE);
    cr_assert_eq(m.seq, 1);
    cr_assert_eq(m.u.candle.c.open_time, c.open_time);
    struct ab_bus_msg rs;
    memset(&rs, 0, sizeof(rs));
    rs.type = AB_BUS_RESYNC;
    raw_send(fd, &rs);
    ack.u.ack = 1;
    raw_send(fd, &ack);
    cr_assert_eq(ab_bus_client_wait_acked(cl, 5000), 0);
    WAIT_UNTIL(cev_get(&ev, &ev.resync) == 1, 5000);
    cr_assert_eq(cev_get(&ev, &ev.resync), 1);
    cr_assert_eq(cev_get(&ev, &ev.connected), 1);

    /* An ack beyond what was sent is a protocol error. */
    ack.u.ack = 2;
    raw_send(fd, &ack);
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    cr_assert_eq(cstats(cl).protocol_errors, 3);
    WAIT_UNTIL(cev_get(&ev, &ev.disconnected) == 1, 5000);
    cr_assert_eq(cev_get(&ev, &ev.disconnected), 1);

    /* Silence after our hello: dropped at the hello timeout, then retried. */
    fd = raw_accept(lfd);
    cr_assert_eq(raw_read(fd, &m, 5000), 0);
    cr_assert_eq(m.u.hello.seq, 2, "nothing pending: the next seq");
    cr_assert(raw_closed(fd, 5000));
    close(fd);
    fd = raw_accept(lfd);
    close(fd);

    ab_bus_client_free(cl);
    close(lfd);
}

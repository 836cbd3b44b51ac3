/*
 * bus_server: the query side of the bus. See the header for the contract.
 *
 * Tokens and acks. Tokens are handed out in delivery order (hw = last one).
 * lw is the highest token such that every token <= lw is done; a ring of
 * `window` bits remembers which tokens in (lw, hw] are done already. The
 * current segment maps tokens to the ingest's seqs: token base_token carried
 * seq base_seq and the seqs that follow are consecutive, so the ack is
 * base_seq - 1 + (lw + 1 - base_token) once lw has reached the segment. A
 * segment starts when a new ingest instance says hello (older tokens are
 * then forgotten: lw jumps to hw) or, should it ever happen, when an
 * instance skips seqs (acks then wait until older tokens are done).
 */
#include "common/bus_server.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

#define COMP      "bus"
#define RBUF_SIZE (64u * 1024)
#define OUT_CAP   4096 /* control frames only: hello, acks, resyncs */
#define NCONN     (1 + AB_BUS_SERVER_PENDING_MAX)
#define PATH_CAP  sizeof(((struct sockaddr_un *)0)->sun_path)

struct conn {
    int fd;           /* -1: free slot */
    bool ready;       /* hello done: this is the ingest connection */
    int64_t deadline; /* hello deadline, ms monotonic */
    uint64_t instance;
    struct ab_bus_decoder dec;
    uint8_t *rbuf; /* RBUF_SIZE; bytes [rpos, rlen) not yet decoded */
    size_t rpos, rlen;
    uint8_t out[OUT_CAP];
    size_t out_len, out_off;
    uint64_t ack_sent; /* highest ack queued on this connection */
};

struct segment {
    bool valid;
    uint64_t instance;
    uint64_t base_token, base_seq;
    uint64_t last_seq; /* last delivered seq */
};

struct ab_bus_server {
    /* configuration, read-only after new */
    char path[PATH_CAP];
    char name[AB_BUS_NAME_MAX];
    uint64_t instance;
    uint64_t window, mask;
    int ack_interval, hello_timeout;
    ab_bus_server_msg_cb on_msg;
    ab_bus_server_event_cb on_event;
    void *arg;

    int lfd;
    bool own_file;
    dev_t dev;
    ino_t ino;
    int wake_fd;
    atomic_bool stop;
    atomic_bool wake_pending;
    pthread_t thread;
    bool started;

    /* bus thread only */
    struct conn conns[NCONN];
    int active; /* index of the ingest connection, -1 when none */
    int64_t last_ack_ms;
    bool stalled;

    /* under mu */
    pthread_mutex_t mu;
    uint64_t hw, lw;
    uint64_t *bits; /* window bits */
    struct segment seg;
    char resync[AB_BUS_SERVER_RESYNC_QUEUE][AB_SYMBOL_MAX];
    size_t n_resync;
    bool resync_all;
    struct ab_bus_server_stats st;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t random_id(void)
{
    uint64_t v = 0;
    while (v == 0) {
        if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
            v = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    }
    return v;
}

static void wake(struct ab_bus_server *srv)
{
    if (!atomic_exchange(&srv->wake_pending, true)) {
        uint64_t one = 1;
        ssize_t w = write(srv->wake_fd, &one, sizeof(one));
        (void)w;
    }
}

/* ---- the done window (under mu) ----------------------------------------- */

static bool bit_get(struct ab_bus_server *srv, uint64_t t)
{
    uint64_t i = t & srv->mask;
    return (srv->bits[i / 64] >> (i % 64)) & 1u;
}

static void bit_set(struct ab_bus_server *srv, uint64_t t, bool on)
{
    uint64_t i = t & srv->mask;
    if (on)
        srv->bits[i / 64] |= (uint64_t)1 << (i % 64);
    else
        srv->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* Moves lw over done tokens. Returns true when it moved. */
static bool advance(struct ab_bus_server *srv)
{
    uint64_t before = srv->lw;
    while (srv->lw < srv->hw && bit_get(srv, srv->lw + 1)) {
        bit_set(srv, srv->lw + 1, false);
        srv->lw++;
    }
    return srv->lw != before;
}

/* The seq every frame up to which is done, for the current segment. */
static bool wire_ack(const struct ab_bus_server *srv, uint64_t *out)
{
    if (!srv->seg.valid || srv->lw + 1 < srv->seg.base_token)
        return false;
    *out = srv->seg.base_seq - 1 + (srv->lw + 1 - srv->seg.base_token);
    return true;
}

/* Marks tokens done; returns true when the acknowledgeable seq moved. */
static bool mark_done(struct ab_bus_server *srv, const uint64_t *tokens, size_t n)
{
    bool moved;
    pthread_mutex_lock(&srv->mu);
    for (size_t i = 0; i < n; i++) {
        uint64_t t = tokens[i];
        if (t <= srv->lw || t > srv->hw) {
            srv->st.stale_done++;
            continue;
        }
        bit_set(srv, t, true);
    }
    moved = advance(srv);
    pthread_mutex_unlock(&srv->mu);
    return moved;
}

void ab_bus_server_done(struct ab_bus_server *srv, const uint64_t *tokens, size_t n)
{
    if (mark_done(srv, tokens, n))
        wake(srv);
}

void ab_bus_server_ack(struct ab_bus_server *srv, uint64_t token)
{
    bool moved = false;
    pthread_mutex_lock(&srv->mu);
    if (token > srv->hw) {
        srv->st.stale_done++;
        token = srv->hw;
    }
    while (srv->lw < token) {
        bit_set(srv, srv->lw + 1, false);
        srv->lw++;
        moved = true;
    }
    if (advance(srv))
        moved = true;
    pthread_mutex_unlock(&srv->mu);
    if (moved)
        wake(srv);
}

int ab_bus_server_request_resync(struct ab_bus_server *srv, const char *symbol)
{
    size_t n = symbol ? strnlen(symbol, AB_SYMBOL_MAX) : 0;
    if (n >= AB_SYMBOL_MAX || (n > 0 && !ab_symbol_valid(symbol, n)))
        return AB_EINVAL;
    pthread_mutex_lock(&srv->mu);
    if (n == 0) {
        srv->resync_all = true;
        srv->n_resync = 0;
    } else if (!srv->resync_all) {
        bool dup = false;
        for (size_t i = 0; i < srv->n_resync && !dup; i++)
            dup = strcmp(srv->resync[i], symbol) == 0;
        if (!dup && srv->n_resync < AB_BUS_SERVER_RESYNC_QUEUE) {
            snprintf(srv->resync[srv->n_resync++], AB_SYMBOL_MAX, "%s", symbol);
        } else if (!dup) {
            srv->resync_all = true; /* overflow: one request for everything */
            srv->n_resync = 0;
        }
    }
    pthread_mutex_unlock(&srv->mu);
    wake(srv);
    return 0;
}

void ab_bus_server_stats(struct ab_bus_server *srv, struct ab_bus_server_stats *out)
{
    pthread_mutex_lock(&srv->mu);
    *out = srv->st;
    out->last_token = srv->hw;
    out->done_token = srv->lw;
    out->outstanding = srv->hw - srv->lw;
    out->last_seq = srv->seg.valid ? srv->seg.last_seq : 0;
    pthread_mutex_unlock(&srv->mu);
}

/* ---- creation ----------------------------------------------------------- */

/* Removes a stale socket file; refuses a live socket or a non-socket. */
static int clear_path(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : AB_EIO;
    if (!S_ISSOCK(sb.st_mode)) {
        ab_log(AB_LOG_ERROR, COMP, "refusing bus path %s: it exists and is not a socket", path);
        return AB_EPERM;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return AB_EIO;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int err = errno;
    close(fd);
    if (rc == 0) {
        ab_log(AB_LOG_ERROR, COMP, "refusing bus path %s: another server listens on it", path);
        return AB_EPERM;
    }
    if (err != ECONNREFUSED && err != ENOENT) {
        ab_log(AB_LOG_ERROR, COMP, "cannot probe bus socket %s: %s", path, strerror(err));
        return AB_EIO;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        ab_log(AB_LOG_ERROR, COMP, "cannot remove stale bus socket %s: %s", path, strerror(errno));
        return AB_EIO;
    }
    ab_log(AB_LOG_INFO, COMP, "removed stale bus socket %s", path);
    return 0;
}

int ab_bus_server_new(const struct ab_bus_server_config *cfg, struct ab_bus_server **out)
{
    struct ab_bus_server *srv = NULL;
    int rc = 0;
    *out = NULL;
    if (!cfg || !cfg->path || !cfg->path[0] || !cfg->on_msg || cfg->ack_interval_ms < 0 ||
        cfg->hello_timeout_ms < 0 || cfg->window > ((size_t)1 << 30))
        return AB_EINVAL;
    if (strlen(cfg->path) >= PATH_CAP)
        return AB_ERANGE;
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return AB_ENOMEM;
    srv->lfd = -1;
    srv->wake_fd = -1;
    srv->active = -1;
    for (int i = 0; i < NCONN; i++) {
        srv->conns[i].fd = -1;
        ab_bus_decoder_init(&srv->conns[i].dec, AB_BUS_FRAME_MAX);
    }
    pthread_mutex_init(&srv->mu, NULL);
    atomic_init(&srv->stop, false);
    atomic_init(&srv->wake_pending, false);
    snprintf(srv->path, sizeof(srv->path), "%s", cfg->path);
    snprintf(srv->name, sizeof(srv->name), "%s", cfg->name ? cfg->name : "abidance-query");
    for (char *p = srv->name; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    srv->instance = cfg->instance_id ? cfg->instance_id : random_id();
    srv->window = 64;
    while (srv->window < (cfg->window ? cfg->window : AB_BUS_SERVER_WINDOW_DEFAULT))
        srv->window *= 2;
    srv->mask = srv->window - 1;
    srv->ack_interval = cfg->ack_interval_ms ? cfg->ack_interval_ms : 5;
    srv->hello_timeout = cfg->hello_timeout_ms ? cfg->hello_timeout_ms : 5000;
    srv->on_msg = cfg->on_msg;
    srv->on_event = cfg->on_event;
    srv->arg = cfg->arg;
    srv->st.instance_id = srv->instance;

    srv->bits = calloc(srv->window / 64, sizeof(uint64_t));
    if (!srv->bits) {
        rc = AB_ENOMEM;
        goto out;
    }
    for (int i = 0; i < NCONN; i++) {
        srv->conns[i].rbuf = malloc(RBUF_SIZE);
        if (!srv->conns[i].rbuf) {
            rc = AB_ENOMEM;
            goto out;
        }
    }
    srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->wake_fd < 0) {
        rc = AB_EIO;
        goto out;
    }
    if ((rc = clear_path(srv->path)))
        goto out;
    srv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->lfd < 0) {
        rc = AB_EIO;
        goto out;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, srv->path, strlen(srv->path) + 1);
    if (bind(srv->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        ab_log(AB_LOG_ERROR, COMP, "cannot bind bus socket %s: %s", srv->path, strerror(errno));
        rc = AB_EIO;
        goto out;
    }
    struct stat sb;
    if (stat(srv->path, &sb) == 0) {
        srv->own_file = true;
        srv->dev = sb.st_dev;
        srv->ino = sb.st_ino;
    }
    if (listen(srv->lfd, 16) != 0) {
        ab_log(AB_LOG_ERROR, COMP, "cannot listen on bus socket %s: %s", srv->path,
               strerror(errno));
        rc = AB_EIO;
        goto out;
    }
    ab_log(AB_LOG_INFO, COMP, "listening path=%s instance=%016" PRIx64 " window=%" PRIu64,
           srv->path, srv->instance, srv->window);
    *out = srv;
    return 0;
out:
    ab_bus_server_free(srv);
    return rc;
}

static void *run(void *arg);

int ab_bus_server_start(struct ab_bus_server *srv)
{
    if (!srv || srv->started)
        return AB_ESTATE;
    if (pthread_create(&srv->thread, NULL, run, srv) != 0)
        return AB_EIO;
    srv->started = true;
    return 0;
}

void ab_bus_server_free(struct ab_bus_server *srv)
{
    if (!srv)
        return;
    if (srv->started) {
        atomic_store(&srv->stop, true);
        uint64_t one = 1;
        ssize_t w = write(srv->wake_fd, &one, sizeof(one));
        (void)w;
        pthread_join(srv->thread, NULL);
    }
    for (int i = 0; i < NCONN; i++) {
        if (srv->conns[i].fd >= 0)
            close(srv->conns[i].fd);
        free(srv->conns[i].rbuf);
        ab_bus_decoder_deinit(&srv->conns[i].dec);
    }
    if (srv->lfd >= 0)
        close(srv->lfd);
    if (srv->own_file) {
        struct stat sb;
        if (lstat(srv->path, &sb) == 0 && sb.st_dev == srv->dev && sb.st_ino == srv->ino)
            unlink(srv->path);
    }
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    pthread_mutex_destroy(&srv->mu);
    free(srv->bits);
    free(srv);
}

/* ---- connections (bus thread) ------------------------------------------- */

static void close_conn(struct ab_bus_server *srv, int ci, const char *why, bool protocol_error)
{
    struct conn *c = &srv->conns[ci];
    if (c->fd < 0)
        return;
    bool was_ready = c->ready;
    /* Counters first, so whoever sees the socket close also sees them. */
    pthread_mutex_lock(&srv->mu);
    if (protocol_error)
        srv->st.protocol_errors++;
    if (was_ready) {
        srv->st.connected = false;
        srv->st.disconnects++;
    }
    pthread_mutex_unlock(&srv->mu);
    close(c->fd);
    c->fd = -1;
    c->rpos = c->rlen = 0;
    c->out_len = c->out_off = 0;
    ab_bus_decoder_reset(&c->dec);
    c->ready = false;
    if (was_ready) {
        srv->active = -1;
        srv->stalled = false;
        ab_log(protocol_error ? AB_LOG_ERROR : AB_LOG_WARN, COMP,
               "ingest disconnected instance=%016" PRIx64 ": %s", c->instance, why);
        struct ab_bus_server_event ev = {
            .type = AB_BUS_SERVER_DISCONNECTED, .instance_id = c->instance, .reason = why};
        if (srv->on_event)
            srv->on_event(srv->arg, &ev);
    } else if (protocol_error) {
        ab_log(AB_LOG_ERROR, COMP, "dropped a bus connection before its hello: %s", why);
    }
}

/* Appends one control frame to c's output. Returns false when it does not fit. */
static bool conn_queue(struct conn *c, const struct ab_bus_msg *m)
{
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    size_t n;
    if (ab_bus_frame_encode(m, c->out + c->out_len, sizeof(c->out) - c->out_len, &n, NULL))
        return false;
    c->out_len += n;
    return true;
}

static void conn_flush(struct ab_bus_server *srv, int ci)
{
    struct conn *c = &srv->conns[ci];
    while (c->fd >= 0 && c->out_off < c->out_len) {
        ssize_t w =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                close_conn(srv, ci, strerror(errno), false);
            return;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len)
        c->out_len = c->out_off = 0;
}

/* An ingest hello on connection ci. Returns false when ci was closed. */
static bool on_hello(struct ab_bus_server *srv, int ci, const struct ab_bus_hello *h)
{
    struct conn *c = &srv->conns[ci];
    if (h->role != AB_BUS_ROLE_INGEST || h->seq == 0) {
        close_conn(srv, ci,
                   h->role != AB_BUS_ROLE_INGEST ? "hello is not from an ingest"
                                                 : "ingest hello with seq 0",
                   true);
        return false;
    }
    int old = srv->active;
    if (old >= 0)
        close_conn(srv, old, "replaced by a new ingest connection", false);

    uint64_t reply = 0;
    pthread_mutex_lock(&srv->mu);
    bool new_instance = !srv->seg.valid || srv->seg.instance != h->instance_id;
    if (new_instance) {
        /* A restarted ingest numbers afresh: forget the old instance's tokens. */
        srv->lw = srv->hw;
        memset(srv->bits, 0, srv->window / 8);
        srv->seg.valid = true;
        srv->seg.instance = h->instance_id;
        srv->seg.base_token = srv->hw + 1;
        srv->seg.base_seq = h->seq;
        srv->seg.last_seq = h->seq - 1;
    } else if (!wire_ack(srv, &reply)) {
        reply = 0;
    }
    srv->st.handshakes++;
    if (old >= 0)
        srv->st.replaced++;
    srv->st.connected = true;
    srv->st.ingest_instance = h->instance_id;
    srv->st.acked_seq = reply;
    pthread_mutex_unlock(&srv->mu);

    c->ready = true;
    c->instance = h->instance_id;
    c->ack_sent = reply > h->seq - 1 ? reply : h->seq - 1;
    srv->active = ci;
    srv->stalled = false;

    struct ab_bus_msg m;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_HELLO;
    m.u.hello.version = AB_BUS_VERSION;
    m.u.hello.role = AB_BUS_ROLE_QUERY;
    m.u.hello.instance_id = srv->instance;
    m.u.hello.seq = reply;
    snprintf(m.u.hello.name, sizeof(m.u.hello.name), "%s", srv->name);
    conn_queue(c, &m); /* the output is empty: a hello always fits */

    ab_log(old >= 0 ? AB_LOG_WARN : AB_LOG_INFO, COMP,
           "ingest connected instance=%016" PRIx64 " name=\"%s\" resend_from=%" PRIu64
           " handled=%" PRIu64 " new_instance=%d replaced=%d",
           h->instance_id, h->name, h->seq, reply, new_instance ? 1 : 0, old >= 0 ? 1 : 0);
    struct ab_bus_server_event ev = {.type = AB_BUS_SERVER_CONNECTED,
                                     .instance_id = h->instance_id,
                                     .name = h->name,
                                     .new_instance = new_instance,
                                     .replaced = old >= 0};
    if (srv->on_event)
        srv->on_event(srv->arg, &ev);
    return true;
}

static void deliver(struct ab_bus_server *srv, struct conn *c, struct ab_bus_msg *m)
{
    uint64_t token;
    bool gap = false;
    uint64_t expected;
    pthread_mutex_lock(&srv->mu);
    expected = srv->seg.last_seq + 1;
    if (m->seq < expected) {
        srv->st.duplicates++;
        pthread_mutex_unlock(&srv->mu);
        return;
    }
    if (m->seq > expected) {
        /* The ingest skipped seqs: start a new segment at this frame. */
        gap = true;
        srv->st.gaps++;
        srv->seg.base_token = srv->hw + 1;
        srv->seg.base_seq = m->seq;
    }
    srv->seg.last_seq = m->seq;
    token = ++srv->hw;
    srv->st.delivered++;
    srv->st.delivered_type[m->type & 7]++;
    if (m->flags & AB_BUS_F_RESENT)
        srv->st.resent_delivered++;
    pthread_mutex_unlock(&srv->mu);
    if (gap)
        ab_log(AB_LOG_WARN, COMP, "ingest skipped seqs expected=%" PRIu64 " got=%" PRIu64, expected,
               m->seq);

    struct ab_bus_delivery dv = {
        .token = token, .instance_id = c->instance, .resent = (m->flags & AB_BUS_F_RESENT) != 0};
    /* Done on the spot: no wake-up. The bus thread is the one that would be
     * woken, and its next turn queues the ack anyway. Waking itself cost an
     * eventfd write, a read and an extra poll turn per book frame. */
    if (srv->on_msg(srv->arg, m, &dv) == AB_BUS_DONE)
        mark_done(srv, &token, 1);
}

static bool window_full(struct ab_bus_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    bool full = srv->hw - srv->lw >= srv->window;
    if (full && !srv->stalled)
        srv->st.window_stalls++;
    pthread_mutex_unlock(&srv->mu);
    if (full && !srv->stalled)
        ab_log(AB_LOG_WARN, COMP, "delivery window full, pausing reads window=%" PRIu64,
               srv->window);
    srv->stalled = full;
    return full;
}

/* Decodes and handles the buffered bytes of ci. Returns false when ci closed. */
static bool conn_process(struct ab_bus_server *srv, int ci)
{
    struct conn *c = &srv->conns[ci];
    while (c->fd >= 0 && c->rpos < c->rlen) {
        if (c->ready && window_full(srv))
            return true;
        struct ab_bus_msg m;
        const char *why = NULL;
        size_t used = 0;
        int rc =
            ab_bus_decoder_push(&c->dec, c->rbuf + c->rpos, c->rlen - c->rpos, &used, &m, &why);
        c->rpos += used;
        if (rc < 0) {
            close_conn(srv, ci, why ? why : "bad frame", true);
            return false;
        }
        if (rc == 0)
            continue;
        bool alive = true;
        if (!c->ready) {
            if (m.type == AB_BUS_HELLO)
                alive = on_hello(srv, ci, &m.u.hello);
            else {
                close_conn(srv, ci, "frame before hello", true);
                alive = false;
            }
        } else if (ab_bus_type_is_data(m.type)) {
            deliver(srv, c, &m);
        } else {
            close_conn(srv, ci, "unexpected control frame from ingest", true);
            alive = false;
        }
        ab_bus_msg_deinit(&m);
        if (!alive)
            return false;
    }
    if (c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
    return true;
}

static void conn_read(struct ab_bus_server *srv, int ci)
{
    struct conn *c = &srv->conns[ci];
    for (int rounds = 0; rounds < 16 && c->fd >= 0 && c->rlen == 0; rounds++) {
        ssize_t n = recv(c->fd, c->rbuf, RBUF_SIZE, MSG_DONTWAIT);
        if (n == 0) {
            close_conn(srv, ci,
                       ab_bus_decoder_partial(&c->dec) ? "peer closed mid-frame"
                                                       : "peer closed the connection",
                       false);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                close_conn(srv, ci, strerror(errno), false);
            return;
        }
        c->rpos = 0;
        c->rlen = (size_t)n;
        if (!conn_process(srv, ci))
            return;
        /* A short read drained the socket: spare the recv() that would only
         * say EAGAIN (poll is level-triggered; anything newer wakes it). */
        if ((size_t)n < RBUF_SIZE)
            return;
    }
}

static void do_accept(struct ab_bus_server *srv)
{
    for (;;) {
        int fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                ab_log(AB_LOG_WARN, COMP, "accept failed: %s", strerror(errno));
            return;
        }
        int ci = -1;
        for (int i = 0; i < NCONN && ci < 0; i++)
            if (srv->conns[i].fd < 0)
                ci = i;
        pthread_mutex_lock(&srv->mu);
        if (ci < 0)
            srv->st.refused++;
        else
            srv->st.accepted++;
        pthread_mutex_unlock(&srv->mu);
        if (ci < 0) {
            ab_log(AB_LOG_WARN, COMP, "refusing bus connection: too many waiting for hello");
            close(fd);
            continue;
        }
        struct conn *c = &srv->conns[ci];
        c->fd = fd;
        c->ready = false;
        c->deadline = now_ms() + srv->hello_timeout;
        c->instance = 0;
        c->rpos = c->rlen = 0;
        c->out_len = c->out_off = 0;
        c->ack_sent = 0;
        ab_bus_decoder_reset(&c->dec);
    }
}

/*
 * Queues resync requests and the coalesced ack on the ingest connection.
 * *timeout is lowered to when the next ack may go out.
 */
static void pump_control(struct ab_bus_server *srv, int64_t now, int *timeout)
{
    if (srv->active < 0)
        return;
    struct conn *c = &srv->conns[srv->active];
    struct ab_bus_msg m;

    pthread_mutex_lock(&srv->mu);
    while (srv->resync_all || srv->n_resync > 0) {
        memset(&m, 0, sizeof(m));
        m.type = AB_BUS_RESYNC;
        if (!srv->resync_all)
            snprintf(m.u.resync_symbol, sizeof(m.u.resync_symbol), "%s",
                     srv->resync[srv->n_resync - 1]);
        if (!conn_queue(c, &m))
            break;
        if (srv->resync_all)
            srv->resync_all = false;
        else
            srv->n_resync--;
        srv->st.resyncs_sent++;
    }
    uint64_t ack = 0;
    bool have = wire_ack(srv, &ack);
    pthread_mutex_unlock(&srv->mu);

    if (!have || ack <= c->ack_sent)
        return;
    int64_t wait = srv->last_ack_ms + srv->ack_interval - now;
    if (wait > 0) {
        if (*timeout < 0 || wait < *timeout)
            *timeout = (int)wait;
        return;
    }
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_ACK;
    m.u.ack = ack;
    if (!conn_queue(c, &m))
        return; /* output full: the next turn sends the then-latest ack */
    c->ack_sent = ack;
    srv->last_ack_ms = now;
    pthread_mutex_lock(&srv->mu);
    srv->st.acks_sent++;
    srv->st.acked_seq = ack;
    pthread_mutex_unlock(&srv->mu);
}

static void *run(void *arg)
{
    struct ab_bus_server *srv = arg;
    while (!atomic_load(&srv->stop)) {
        int64_t now = now_ms();
        int timeout = -1;

        for (int i = 0; i < NCONN; i++) {
            struct conn *c = &srv->conns[i];
            if (c->fd >= 0 && !c->ready && now >= c->deadline) {
                pthread_mutex_lock(&srv->mu);
                srv->st.hello_timeouts++;
                pthread_mutex_unlock(&srv->mu);
                close_conn(srv, i, "no hello in time", false);
            }
        }
        /* Bytes held back by a full window go first once there is room. */
        if (srv->active >= 0 && srv->conns[srv->active].rlen > 0)
            conn_process(srv, srv->active);
        pump_control(srv, now, &timeout);
        for (int i = 0; i < NCONN; i++)
            conn_flush(srv, i);

        struct pollfd pf[2 + NCONN];
        int map[2 + NCONN];
        nfds_t n = 0;
        pf[n] = (struct pollfd){.fd = srv->wake_fd, .events = POLLIN};
        map[n++] = -1;
        pf[n] = (struct pollfd){.fd = srv->lfd, .events = POLLIN};
        map[n++] = -2;
        for (int i = 0; i < NCONN; i++) {
            struct conn *c = &srv->conns[i];
            if (c->fd < 0)
                continue;
            short ev = c->rlen == 0 ? POLLIN : 0; /* held bytes: wait for window room */
            if (c->out_off < c->out_len)
                ev |= POLLOUT;
            if (!c->ready) {
                int64_t left = c->deadline - now;
                int t = left < 0 ? 0 : (int)left;
                if (timeout < 0 || t < timeout)
                    timeout = t;
            }
            if (ev == 0)
                continue; /* not even for POLLHUP: it would spin until room comes */
            pf[n] = (struct pollfd){.fd = c->fd, .events = ev};
            map[n++] = i;
        }
        if (srv->stalled && (timeout < 0 || timeout > 100))
            timeout = 100; /* belt and braces: done() also wakes us */

        int pr = poll(pf, n, timeout);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            ab_log(AB_LOG_ERROR, COMP, "poll failed: %s", strerror(errno));
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        for (nfds_t k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            if (map[k] == -1) {
                uint64_t v;
                ssize_t r = read(srv->wake_fd, &v, sizeof(v));
                (void)r;
                atomic_store(&srv->wake_pending, false);
            } else if (map[k] == -2) {
                do_accept(srv);
            } else {
                int i = map[k];
                if (srv->conns[i].fd != pf[k].fd)
                    continue; /* closed (replaced) earlier in this turn */
                if (pf[k].revents & (POLLIN | POLLHUP | POLLERR))
                    conn_read(srv, i);
                if (srv->conns[i].fd == pf[k].fd && (pf[k].revents & POLLOUT))
                    conn_flush(srv, i);
            }
        }
    }
    return NULL;
}

/*
 * bus_client: the ingest side of the bus. See the header for the contract.
 *
 * The unacknowledged frames form a singly linked list in seq order (head =
 * oldest). Publishers append at the tail under mu. Only the bus thread frees
 * nodes (on an ack), and every write to the socket happens under wmu, so the
 * writer may keep pointers into the list (sending, last_sent) across unlocks
 * of mu. A node's bytes never change after it is appended, except its flags
 * field, which is only touched under wmu.
 *
 * Who writes. A publisher that finds the connection ready, wmu free and no
 * write of its own in the last DIRECT_GAP_NS writes the queued frames
 * itself (non-blocking, never waits for wmu). Otherwise (inside a burst,
 * the bus thread busy, the handshake not done, the socket full) it wakes
 * the bus thread through the eventfd, which then writes everything queued,
 * gathered: up to BATCH_FRAMES frames per sendmsg() instead of one send()
 * per frame. So the first frame of a burst skips the thread hop and the
 * rest go out in a few system calls, read by the query in one recv().
 *
 * Measured with bench/e2e.sh (100 symbols, 1000 depth frames/s, the sim
 * sends each 100 ms window of all symbols as one burst; shared 2-core
 * machine, builds interleaved in one session, ingest->query = the query's
 * abidance_feed_latency mean, ingest receive to delivery):
 *   before (one send() per frame, always via the bus thread): ingest->query
 *     0.87-1.08 ms mean, e2e p50 1.80-2.46 ms, p99 3.5-11 ms;
 *   publisher always writes (one frame per call): 0.74-1.11 ms, the
 *     eventfd hop (p50 0.43 ms) is gone but the query's bus thread now waits
 *     for the ingest's CPU instead (wake-affine: it runs when the publishing
 *     thread sleeps, at the end of the burst), and the per-frame sendmsg()
 *     lengthens that burst by ~2 us/frame;
 *   bus thread only, gathered (no direct write): 0.73-1.01 ms;
 *   this (first frame direct, the burst gathered): 0.48-0.60 ms, e2e p50
 *     1.75-2.05 ms, p99 3.6-12.8 ms (3 rounds; p99 is dominated by the
 *     machine's other load).
 *
 * Lock order: wmu, then mu. The bus thread holds wmu for its whole turn
 * except poll(), so everything it does to the connection (connect, hello,
 * acks, disconnect) is serialised with the publishers' writes; publishers
 * only ever trylock wmu, so the event callback (called with wmu held) may
 * publish.
 */
#include "common/bus_client.h"

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
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/symidx.h"

#define COMP          "bus"
#define RBUF_SIZE     4096          /* the server only sends small control frames */
#define BATCH_FRAMES  64            /* frames gathered into one sendmsg() (<= IOV_MAX) */
#define BATCH_BYTES   (256u * 1024) /* bytes gathered per sendmsg (a larger frame goes alone) */
#define DIRECT_GAP_NS (500 * 1000L) /* a publisher writes itself at most once per 500 us */
#define PATH_CAP      sizeof(((struct sockaddr_un *)0)->sun_path)

struct node {
    struct node *next;
    uint64_t seq;
    size_t len;
    bool book; /* snapshot or delta: counted against the book share */
    bool sent; /* at least one byte written on some connection (under wmu) */
    uint8_t data[];
};

struct symslot {
    char symbol[AB_SYMBOL_MAX];
    bool need_snapshot;
};

enum cstate {
    CS_IDLE,       /* no socket; next attempt at deadline */
    CS_CONNECTING, /* connect in progress */
    CS_HELLO,      /* our hello queued, waiting for the server's */
    CS_READY,      /* frames flow */
};

struct ab_bus_client {
    /* configuration, read-only after new */
    char path[PATH_CAP];
    char name[AB_BUS_NAME_MAX];
    uint64_t instance;
    size_t max_frames, max_bytes;
    int backoff_min, backoff_max, hello_timeout;
    ab_bus_client_event_cb on_event;
    void *arg;

    int wake_fd;
    atomic_bool stop;
    atomic_bool wake_pending;
    pthread_t thread;
    bool started;

    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t acked_cv;
    struct node *head, *tail;
    struct symslot *syms; /* AB_BUS_CLIENT_SYMBOLS_MAX slots */
    size_t n_syms;
    struct ab_symidx sym_idx; /* symbol -> index into syms */
    bool full;                /* inside a "buffer full" episode (for logging) */
    uint64_t full_rejected;   /* rejections in the current episode */
    struct ab_bus_client_stats st;

    /* The connection and the write side: changed only under wmu (the bus
     * thread changes state and fd; a publisher may write). */
    pthread_mutex_t wmu;
    enum cstate state;
    int fd;
    bool want_write;        /* the socket is full: the bus thread waits for POLLOUT */
    struct node *sending;   /* node cut by a short write (0 < off < len), or NULL */
    size_t off;             /* bytes of sending already written */
    struct node *last_sent; /* last node fully written on this connection, or NULL */
    uint8_t ctl[128];       /* our hello */
    size_t ctl_len, ctl_off;
    uint64_t max_sent;   /* highest seq ever fully written */
    int64_t last_direct; /* ns, monotonic: the last write by a publisher */

    /* bus thread only */
    int64_t deadline; /* ms, monotonic: next connect attempt or hello timeout */
    int backoff;
    struct ab_bus_decoder dec;
    uint64_t rng;
    bool fail_logged; /* "not reachable" logged for this failure streak */
    uint8_t rbuf[RBUF_SIZE];
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

static void wake(struct ab_bus_client *cl)
{
    if (!atomic_exchange(&cl->wake_pending, true)) {
        uint64_t one = 1;
        ssize_t w = write(cl->wake_fd, &one, sizeof(one));
        (void)w; /* EAGAIN only when the counter is already huge: still readable */
    }
}

static void kick(struct ab_bus_client *cl);

static void emit(struct ab_bus_client *cl, const struct ab_bus_client_event *ev)
{
    if (cl->on_event)
        cl->on_event(cl->arg, ev);
}

/* ---- symbols (under mu) ------------------------------------------------- */

/*
 * Symbol lookup is on every book frame published: a linear strcmp scan over
 * 1500 symbols cost about 6% of the ingest's CPU at 15,000 frames/s (perf,
 * bench/capacity.sh), the hash index one or two probes.
 */
static struct symslot *sym_find(struct ab_bus_client *cl, const char *sym, bool create,
                                bool need_if_new)
{
    size_t at;
    if (ab_symidx_get(&cl->sym_idx, sym, &at) == 0)
        return &cl->syms[at];
    if (!create || ab_symidx_put(&cl->sym_idx, sym, cl->n_syms) < 0)
        return NULL; /* the cap (AB_BUS_CLIENT_SYMBOLS_MAX), or not a symbol */
    struct symslot *s = &cl->syms[cl->n_syms++];
    snprintf(s->symbol, sizeof(s->symbol), "%s", sym);
    s->need_snapshot = need_if_new;
    return s;
}

static void mark_resync(struct ab_bus_client *cl, const char *sym)
{
    pthread_mutex_lock(&cl->mu);
    if (sym[0] == '\0') {
        for (size_t i = 0; i < cl->n_syms; i++)
            cl->syms[i].need_snapshot = true;
    } else {
        struct symslot *s = sym_find(cl, sym, true, true);
        if (s)
            s->need_snapshot = true;
    }
    pthread_mutex_unlock(&cl->mu);
}

/* ---- creation ----------------------------------------------------------- */

int ab_bus_client_new(const struct ab_bus_client_config *cfg, struct ab_bus_client **out)
{
    struct ab_bus_client *cl = NULL;
    int rc = 0;
    *out = NULL;
    if (!cfg || !cfg->path || !cfg->path[0] || cfg->backoff_min_ms < 0 || cfg->backoff_max_ms < 0 ||
        cfg->hello_timeout_ms < 0 || (cfg->max_frames != 0 && cfg->max_frames < 2))
        return AB_EINVAL;
    if (strlen(cfg->path) >= PATH_CAP)
        return AB_ERANGE;
    cl = calloc(1, sizeof(*cl));
    if (!cl)
        return AB_ENOMEM;
    cl->wake_fd = -1;
    cl->fd = -1;
    snprintf(cl->path, sizeof(cl->path), "%s", cfg->path);
    snprintf(cl->name, sizeof(cl->name), "%s", cfg->name ? cfg->name : "abidance-ingest");
    for (char *p = cl->name; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    cl->instance = cfg->instance_id ? cfg->instance_id : random_id();
    cl->max_frames = cfg->max_frames ? cfg->max_frames : AB_BUS_CLIENT_MAX_FRAMES_DEFAULT;
    cl->max_bytes = cfg->max_bytes ? cfg->max_bytes : AB_BUS_CLIENT_MAX_BYTES_DEFAULT;
    cl->backoff_min = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
    cl->backoff_max = cfg->backoff_max_ms ? cfg->backoff_max_ms : 5000;
    if (cl->backoff_max < cl->backoff_min)
        cl->backoff_max = cl->backoff_min;
    cl->hello_timeout = cfg->hello_timeout_ms ? cfg->hello_timeout_ms : 5000;
    cl->on_event = cfg->on_event;
    cl->arg = cfg->arg;
    cl->backoff = cl->backoff_min;
    cl->rng = cl->instance | 1;
    cl->st.instance_id = cl->instance;
    cl->st.next_seq = 1;
    atomic_init(&cl->stop, false);
    atomic_init(&cl->wake_pending, false);
    ab_bus_decoder_init(&cl->dec, AB_BUS_FRAME_MAX);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->acked_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_mutex_init(&cl->wmu, NULL);

    cl->syms = calloc(AB_BUS_CLIENT_SYMBOLS_MAX, sizeof(*cl->syms));
    if (!cl->syms || ab_symidx_init(&cl->sym_idx, AB_BUS_CLIENT_SYMBOLS_MAX) < 0) {
        rc = AB_ENOMEM;
        goto out;
    }
    cl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (cl->wake_fd < 0) {
        rc = AB_EIO;
        goto out;
    }
    *out = cl;
    return 0;
out:
    ab_bus_client_free(cl);
    return rc;
}

static void *run(void *arg);

int ab_bus_client_start(struct ab_bus_client *cl)
{
    if (!cl || cl->started)
        return AB_ESTATE;
    if (pthread_create(&cl->thread, NULL, run, cl) != 0)
        return AB_EIO;
    cl->started = true;
    return 0;
}

void ab_bus_client_free(struct ab_bus_client *cl)
{
    if (!cl)
        return;
    if (cl->started) {
        atomic_store(&cl->stop, true);
        uint64_t one = 1;
        ssize_t w = write(cl->wake_fd, &one, sizeof(one));
        (void)w;
        pthread_join(cl->thread, NULL);
    }
    if (cl->fd >= 0)
        close(cl->fd);
    size_t n = 0;
    for (struct node *p = cl->head, *next; p; p = next) {
        next = p->next;
        free(p);
        n++;
    }
    if (n > 0)
        ab_log(AB_LOG_WARN, COMP, "client stopped with unacknowledged frames dropped=%zu", n);
    if (cl->wake_fd >= 0)
        close(cl->wake_fd);
    ab_bus_decoder_deinit(&cl->dec);
    pthread_mutex_destroy(&cl->mu);
    pthread_mutex_destroy(&cl->wmu);
    pthread_cond_destroy(&cl->acked_cv);
    free(cl->syms);
    ab_symidx_deinit(&cl->sym_idx);
    free(cl);
}

/* ---- publishing --------------------------------------------------------- */

static const char *msg_symbol(const struct ab_bus_msg *m)
{
    switch (m->type) {
    case AB_BUS_CANDLE:
        return m->u.candle.c.symbol;
    case AB_BUS_BOOK_SNAPSHOT:
        return m->u.snapshot.s.symbol;
    case AB_BUS_BOOK_DELTA:
        return m->u.delta.d.symbol;
    case AB_BUS_STATUS:
        return m->u.status.symbol;
    default:
        return "";
    }
}

/*
 * The admission policy (under mu). Returns 0 when a frame of len bytes may be
 * queued now; otherwise counts the refusal and returns the policy code.
 * *cap_hit tells the caller to log the start of a full episode.
 */
static int admit(struct ab_bus_client *cl, enum ab_bus_type type, const char *sym, size_t len,
                 bool *cap_hit)
{
    bool book = type == AB_BUS_BOOK_SNAPSHOT || type == AB_BUS_BOOK_DELTA;
    struct symslot *slot = NULL;
    *cap_hit = false;
    if (book) {
        slot = sym_find(cl, sym, true, type == AB_BUS_BOOK_DELTA);
        if (!slot)
            return AB_ENOMEM; /* symbol table full */
        if (type == AB_BUS_BOOK_DELTA && slot->need_snapshot) {
            cl->st.dropped_book++;
            return AB_EGAP;
        }
    }
    bool fits = cl->st.unacked_frames < cl->max_frames && len <= cl->max_bytes &&
                cl->st.unacked_bytes <= cl->max_bytes - len;
    if (fits && book)
        fits = cl->st.book_frames < cl->max_frames / 2 && len <= cl->max_bytes / 2 &&
               cl->st.book_bytes <= cl->max_bytes / 2 - len;
    if (fits)
        return 0;
    *cap_hit = !cl->full;
    cl->full = true;
    cl->full_rejected++;
    if (type == AB_BUS_BOOK_DELTA) {
        slot->need_snapshot = true;
        cl->st.dropped_book++;
        return AB_EGAP;
    }
    if (slot)
        slot->need_snapshot = true;
    cl->st.rejected_full++;
    return AB_ENOMEM;
}

static void log_full(struct ab_bus_client *cl, enum ab_bus_type type)
{
    struct ab_bus_client_stats s;
    ab_bus_client_stats(cl, &s);
    ab_log(AB_LOG_WARN, COMP,
           "unacknowledged buffer full: refusing candles and statuses (AB_ENOMEM), dropping "
           "book deltas (AB_EGAP) type=%s frames=%zu bytes=%zu max_frames=%zu max_bytes=%zu "
           "connected=%d",
           ab_bus_type_name(type), s.unacked_frames, s.unacked_bytes, cl->max_frames, cl->max_bytes,
           s.connected ? 1 : 0);
}

int ab_bus_client_publish(struct ab_bus_client *cl, const struct ab_bus_msg *m, uint64_t *seq)
{
    struct ab_bus_msg tmp;
    const char *why = NULL;
    size_t len;
    bool cap_hit, room_again = false;
    uint64_t episode = 0;
    int rc;

    if (!cl || !m || !ab_bus_type_is_data(m->type))
        return AB_EINVAL;
    tmp = *m; /* shallow: level arrays stay borrowed */
    tmp.seq = 1;
    tmp.flags = 0;
    if ((rc = ab_bus_frame_size(&tmp, &len, &why))) {
        ab_log(AB_LOG_DEBUG, COMP, "refusing malformed %s: %s", ab_bus_type_name(m->type), why);
        return rc;
    }
    const char *sym = msg_symbol(&tmp);

    /* Check first so a refused snapshot costs no encoding. */
    pthread_mutex_lock(&cl->mu);
    rc = admit(cl, tmp.type, sym, len, &cap_hit);
    pthread_mutex_unlock(&cl->mu);
    if (rc) {
        if (cap_hit)
            log_full(cl, tmp.type);
        return rc;
    }

    struct node *n = malloc(sizeof(*n) + len);
    if (!n)
        return AB_ENOMEM;
    if ((rc = ab_bus_frame_encode(&tmp, n->data, len, &len, &why))) {
        free(n);
        return rc;
    }
    n->next = NULL;
    n->len = len;
    n->book = tmp.type == AB_BUS_BOOK_SNAPSHOT || tmp.type == AB_BUS_BOOK_DELTA;
    n->sent = false;

    pthread_mutex_lock(&cl->mu);
    rc = admit(cl, tmp.type, sym, len, &cap_hit); /* another thread may have filled it */
    if (rc == 0) {
        n->seq = cl->st.next_seq++;
        ab_bus_frame_set_seq(n->data, n->seq);
        if (cl->tail)
            cl->tail->next = n;
        else
            cl->head = n;
        cl->tail = n;
        cl->st.unacked_frames++;
        cl->st.unacked_bytes += len;
        if (n->book) {
            cl->st.book_frames++;
            cl->st.book_bytes += len;
        }
        if (tmp.type == AB_BUS_BOOK_SNAPSHOT) {
            struct symslot *s = sym_find(cl, sym, false, false);
            if (s)
                s->need_snapshot = false;
        }
        cl->st.published++;
        if (cl->full) {
            room_again = true;
            episode = cl->full_rejected;
            cl->full = false;
            cl->full_rejected = 0;
        }
        if (seq)
            *seq = n->seq;
        n = NULL;
    }
    pthread_mutex_unlock(&cl->mu);
    free(n);
    if (rc) {
        if (cap_hit)
            log_full(cl, tmp.type);
        return rc;
    }
    if (room_again)
        ab_log(AB_LOG_INFO, COMP, "unacknowledged buffer has room again refused=%" PRIu64, episode);
    kick(cl);
    return 0;
}

int ab_bus_client_publish_candle(struct ab_bus_client *cl, const struct ab_candle *c,
                                 enum ab_bus_origin origin, int64_t recv_us, uint64_t *seq)
{
    struct ab_bus_msg m;
    if (!c)
        return AB_EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_CANDLE;
    m.u.candle.c = *c;
    m.u.candle.origin = origin;
    m.u.candle.recv_us = recv_us;
    return ab_bus_client_publish(cl, &m, seq);
}

int ab_bus_client_publish_snapshot(struct ab_bus_client *cl, const struct ab_book_snapshot *s,
                                   int64_t event_time, int64_t recv_us, uint64_t *seq)
{
    struct ab_bus_msg m;
    if (!s)
        return AB_EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_BOOK_SNAPSHOT;
    m.u.snapshot.s = *s;
    m.u.snapshot.event_time = event_time;
    m.u.snapshot.recv_us = recv_us;
    return ab_bus_client_publish(cl, &m, seq);
}

int ab_bus_client_publish_delta(struct ab_bus_client *cl, const struct ab_book_delta *d,
                                uint64_t prev_id, int64_t recv_us, uint64_t *seq)
{
    struct ab_bus_msg m;
    if (!d)
        return AB_EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_BOOK_DELTA;
    m.u.delta.d = *d;
    m.u.delta.prev_id = prev_id;
    m.u.delta.recv_us = recv_us;
    return ab_bus_client_publish(cl, &m, seq);
}

int ab_bus_client_publish_status(struct ab_bus_client *cl, const struct ab_bus_status *st,
                                 uint64_t *seq)
{
    struct ab_bus_msg m;
    if (!st)
        return AB_EINVAL;
    memset(&m, 0, sizeof(m));
    m.type = AB_BUS_STATUS;
    m.u.status = *st;
    return ab_bus_client_publish(cl, &m, seq);
}

int ab_bus_client_wait_acked(struct ab_bus_client *cl, int timeout_ms)
{
    struct timespec dl;
    int rc = 0;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&cl->mu);
    while (cl->head) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&cl->acked_cv, &cl->mu);
        } else if (pthread_cond_timedwait(&cl->acked_cv, &cl->mu, &dl) == ETIMEDOUT) {
            break;
        }
    }
    if (cl->head)
        rc = AB_ESTATE;
    pthread_mutex_unlock(&cl->mu);
    return rc;
}

void ab_bus_client_stats(struct ab_bus_client *cl, struct ab_bus_client_stats *out)
{
    pthread_mutex_lock(&cl->mu);
    *out = cl->st;
    pthread_mutex_unlock(&cl->mu);
}

/* ---- the bus thread ----------------------------------------------------- */

static void schedule_retry(struct ab_bus_client *cl, int64_t now)
{
    int b = cl->backoff;
    /* xorshift64: jitter of +-20% so restarted peers do not retry in lockstep */
    cl->rng ^= cl->rng << 13;
    cl->rng ^= cl->rng >> 7;
    cl->rng ^= cl->rng << 17;
    int spread = b / 5;
    int delay = b - spread + (spread > 0 ? (int)(cl->rng % (uint64_t)(2 * spread + 1)) : 0);
    cl->deadline = now + delay;
    cl->backoff = b > cl->backoff_max / 2 ? cl->backoff_max : b * 2;
    cl->state = CS_IDLE;
}

static void disconnect(struct ab_bus_client *cl, const char *why, bool protocol_error)
{
    enum cstate was = cl->state;
    /* Counters first, so whoever sees the socket close also sees them. */
    pthread_mutex_lock(&cl->mu);
    cl->st.connected = false;
    if (protocol_error)
        cl->st.protocol_errors++;
    if (was != CS_READY)
        cl->st.connect_failures++;
    size_t held = cl->st.unacked_frames;
    pthread_mutex_unlock(&cl->mu);
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    cl->want_write = false;
    cl->sending = NULL;
    cl->last_sent = NULL;
    cl->off = 0;
    ab_bus_decoder_reset(&cl->dec);
    schedule_retry(cl, now_ms());
    if (was == CS_READY) {
        ab_log(protocol_error ? AB_LOG_ERROR : AB_LOG_WARN, COMP,
               "disconnected from query: %s unacked=%zu retry_ms=%" PRId64, why, held,
               cl->deadline - now_ms());
        struct ab_bus_client_event ev = {.type = AB_BUS_CLIENT_DISCONNECTED, .reason = why};
        emit(cl, &ev);
    } else if (protocol_error) {
        ab_log(AB_LOG_ERROR, COMP, "bad handshake from query at %s: %s; retrying", cl->path, why);
    } else if (!cl->fail_logged) {
        ab_log(AB_LOG_INFO, COMP, "query not reachable at %s: %s; retrying with backoff", cl->path,
               why);
        cl->fail_logged = true; /* once per failure streak */
    }
}

static void socket_connected(struct ab_bus_client *cl)
{
    struct ab_bus_msg h;
    memset(&h, 0, sizeof(h));
    h.type = AB_BUS_HELLO;
    h.u.hello.version = AB_BUS_VERSION;
    h.u.hello.role = AB_BUS_ROLE_INGEST;
    h.u.hello.instance_id = cl->instance;
    pthread_mutex_lock(&cl->mu);
    h.u.hello.seq = cl->head ? cl->head->seq : cl->st.next_seq;
    pthread_mutex_unlock(&cl->mu);
    snprintf(h.u.hello.name, sizeof(h.u.hello.name), "%s", cl->name);
    if (ab_bus_frame_encode(&h, cl->ctl, sizeof(cl->ctl), &cl->ctl_len, NULL) != 0) {
        disconnect(cl, "cannot encode hello", false); /* not reachable: fields are ours */
        return;
    }
    cl->ctl_off = 0;
    cl->state = CS_HELLO;
    cl->deadline = now_ms() + cl->hello_timeout;
}

static void try_connect(struct ab_bus_client *cl)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, cl->path, strlen(cl->path) + 1);
    cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (cl->fd < 0) {
        disconnect(cl, strerror(errno), false);
        return;
    }
    if (connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        socket_connected(cl);
    } else if (errno == EINPROGRESS) {
        cl->state = CS_CONNECTING;
        cl->deadline = now_ms() + cl->hello_timeout;
    } else {
        disconnect(cl, strerror(errno), false);
    }
}

/* Frees every node with seq <= ack. Returns false when the ack is impossible. */
static bool apply_ack(struct ab_bus_client *cl, uint64_t ack)
{
    if (ack > cl->max_sent)
        return false; /* acknowledges a frame never written */
    if (cl->sending && cl->off > 0 && cl->sending->seq <= ack)
        return false; /* a frame still being written cannot be acknowledged */
    pthread_mutex_lock(&cl->mu);
    if (ack > cl->st.acked_seq) {
        cl->st.acked_seq = ack;
        while (cl->head && cl->head->seq <= ack) {
            struct node *n = cl->head;
            cl->head = n->next;
            if (!cl->head)
                cl->tail = NULL;
            if (n == cl->last_sent)
                cl->last_sent = NULL; /* the next to send is then the new head */
            if (n == cl->sending)
                cl->sending = NULL;
            cl->st.unacked_frames--;
            cl->st.unacked_bytes -= n->len;
            if (n->book) {
                cl->st.book_frames--;
                cl->st.book_bytes -= n->len;
            }
            free(n);
        }
        pthread_cond_broadcast(&cl->acked_cv);
    }
    pthread_mutex_unlock(&cl->mu);
    return true;
}

static void on_server_hello(struct ab_bus_client *cl, const struct ab_bus_hello *h)
{
    if (h->role != AB_BUS_ROLE_QUERY) {
        disconnect(cl, "peer hello is not from a query", true);
        return;
    }
    if (!apply_ack(cl, h->seq)) {
        disconnect(cl, "server hello acknowledges a seq never sent", true);
        return;
    }
    pthread_mutex_lock(&cl->mu);
    bool changed = cl->st.server_instance != 0 && cl->st.server_instance != h->instance_id;
    cl->st.server_instance = h->instance_id;
    cl->st.connected = true;
    cl->st.connects++;
    if (cl->st.connects > 1)
        cl->st.reconnects++;
    size_t resend = cl->st.unacked_frames;
    pthread_mutex_unlock(&cl->mu);
    if (changed)
        mark_resync(cl, ""); /* a new query lost its books */
    cl->state = CS_READY;
    cl->backoff = cl->backoff_min;
    cl->fail_logged = false;
    ab_log(AB_LOG_INFO, COMP,
           "connected to query instance=%016" PRIx64 " name=\"%s\" handled=%" PRIu64
           " pending=%zu new_instance=%d",
           h->instance_id, h->name, h->seq, resend, changed ? 1 : 0);
    struct ab_bus_client_event ev = {.type = AB_BUS_CLIENT_CONNECTED,
                                     .server_instance = h->instance_id,
                                     .server_changed = changed};
    emit(cl, &ev);
}

/* Handles one frame from the server. Returns false when the connection was closed. */
static bool on_frame(struct ab_bus_client *cl, const struct ab_bus_msg *m)
{
    if (cl->state == CS_HELLO) {
        if (m->type != AB_BUS_HELLO) {
            disconnect(cl, "expected hello", true);
            return false;
        }
        on_server_hello(cl, &m->u.hello);
        return cl->state == CS_READY;
    }
    switch (m->type) {
    case AB_BUS_ACK:
        if (!apply_ack(cl, m->u.ack)) {
            disconnect(cl, "ack of a seq never sent", true);
            return false;
        }
        return true;
    case AB_BUS_RESYNC: {
        mark_resync(cl, m->u.resync_symbol);
        pthread_mutex_lock(&cl->mu);
        cl->st.resync_requests++;
        pthread_mutex_unlock(&cl->mu);
        ab_log(AB_LOG_INFO, COMP, "query asks for a snapshot symbol=%s",
               m->u.resync_symbol[0] ? m->u.resync_symbol : "*");
        struct ab_bus_client_event ev = {.type = AB_BUS_CLIENT_RESYNC,
                                         .symbol = m->u.resync_symbol};
        emit(cl, &ev);
        return true;
    }
    default:
        disconnect(cl, "unexpected frame type from query", true);
        return false;
    }
}

static void read_socket(struct ab_bus_client *cl)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = recv(cl->fd, cl->rbuf, sizeof(cl->rbuf), MSG_DONTWAIT);
        if (n == 0) {
            disconnect(cl, "query closed the connection", false);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                disconnect(cl, strerror(errno), false);
            return;
        }
        const uint8_t *p = cl->rbuf;
        size_t left = (size_t)n;
        while (left > 0) {
            struct ab_bus_msg m;
            const char *why = NULL;
            size_t used = 0;
            int rc = ab_bus_decoder_push(&cl->dec, p, left, &used, &m, &why);
            p += used;
            left -= used;
            if (rc < 0) {
                disconnect(cl, why ? why : "bad frame", true);
                return;
            }
            if (rc == 1) {
                bool alive = on_frame(cl, &m);
                ab_bus_msg_deinit(&m);
                if (!alive)
                    return;
            }
        }
        if ((size_t)n < sizeof(cl->rbuf))
            return; /* drained: spare the recv() that would say EAGAIN (poll is level-triggered) */
    }
}

enum wres {
    W_DONE,  /* every queued frame is written */
    W_AGAIN, /* the socket is full */
    W_ERROR, /* the socket failed (*err = errno) */
};

/*
 * Writes the queued frames in seq order, BATCH_FRAMES (or BATCH_BYTES) at a
 * time with one sendmsg() each, continuing a frame cut by a short write at
 * its offset. A frame sent on an earlier connection gets AB_BUS_F_RESENT
 * before its first byte goes out and is counted in resent when that byte is
 * written; sent counts completed frames. wmu held, state CS_READY.
 *
 * Gathering: a burst of frames queued while the socket was busy (the bus
 * thread's turn, a resend after a reconnect, back-pressure) goes out in one
 * system call instead of one send() per frame, and the query reads it in
 * one recv(). On the e2e benchmark most writes carry one frame (the
 * publisher writes as soon as it queued one); the gain is in syscalls under
 * load and after reconnects: 110 resent frames, 110 send() before, 2
 * sendmsg() now.
 */
static enum wres send_frames(struct ab_bus_client *cl, int *err)
{
    for (;;) {
        struct node *batch[BATCH_FRAMES];
        struct iovec iov[BATCH_FRAMES];
        size_t cnt = 0, bytes = 0;
        struct node *cut = cl->sending; /* its bytes [0, off) are out already */

        pthread_mutex_lock(&cl->mu);
        struct node *n = cut ? cut : cl->last_sent ? cl->last_sent->next : cl->head;
        for (; n && cnt < BATCH_FRAMES && (cnt == 0 || bytes + n->len <= BATCH_BYTES);
             n = n->next) {
            batch[cnt++] = n;
            bytes += n->len;
        }
        pthread_mutex_unlock(&cl->mu);
        if (cnt == 0)
            return W_DONE;

        size_t total = 0;
        for (size_t i = 0; i < cnt; i++) {
            struct node *b = batch[i];
            size_t skip = b == cut ? cl->off : 0;
            if (b != cut && b->sent)
                ab_bus_frame_set_flags(b->data, AB_BUS_F_RESENT);
            iov[i].iov_base = b->data + skip;
            iov[i].iov_len = b->len - skip;
            total += b->len - skip;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = cnt};
        ssize_t w = sendmsg(cl->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return W_AGAIN;
            *err = errno;
            return W_ERROR;
        }

        /* Account for the completed frames and the one cut, if any. */
        uint64_t completed = 0, again = 0;
        size_t left = (size_t)w;
        for (size_t i = 0; i < cnt && left > 0; i++) {
            struct node *b = batch[i];
            if (b != cut) {
                if (b->sent)
                    again++;
                b->sent = true;
            }
            if (left >= iov[i].iov_len) {
                left -= iov[i].iov_len;
                completed++;
                if (b->seq > cl->max_sent)
                    cl->max_sent = b->seq;
                cl->last_sent = b;
                cl->sending = NULL;
                cl->off = 0;
            } else {
                cl->off = (b == cut ? cl->off : 0) + left;
                cl->sending = b;
                left = 0;
            }
        }
        pthread_mutex_lock(&cl->mu);
        cl->st.sent += completed;
        cl->st.resent += again;
        pthread_mutex_unlock(&cl->mu);
        if ((size_t)w < total)
            return W_AGAIN; /* a short write: the socket buffer is full */
    }
}

/* Writes our hello, then (when ready) frames in seq order until EAGAIN. wmu held. */
static void flush_out(struct ab_bus_client *cl)
{
    cl->want_write = false;
    while (cl->ctl_off < cl->ctl_len) {
        ssize_t w = send(cl->fd, cl->ctl + cl->ctl_off, cl->ctl_len - cl->ctl_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                cl->want_write = true;
            else
                disconnect(cl, strerror(errno), false);
            return;
        }
        cl->ctl_off += (size_t)w;
    }
    if (cl->state != CS_READY)
        return;
    int err = 0;
    switch (send_frames(cl, &err)) {
    case W_AGAIN:
        cl->want_write = true;
        break;
    case W_ERROR:
        disconnect(cl, strerror(err), false);
        break;
    case W_DONE:
        break;
    }
}

/*
 * After a publish: write the new frame from the publishing thread when the
 * connection is ready, nobody else is writing and no publisher wrote in the
 * last DIRECT_GAP_NS; otherwise leave it to the bus thread (see the top of
 * the file for why a burst goes to the bus thread). Never blocks: wmu is only tried. A socket error
 * is left for the bus thread to meet again (disconnect and the event callback belong to it).
 */
static void kick(struct ab_bus_client *cl)
{
    if (pthread_mutex_trylock(&cl->wmu) == 0) {
        bool handled = false;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000000L + ts.tv_nsec;
        if (cl->state == CS_READY && cl->ctl_off == cl->ctl_len && !cl->want_write &&
            now - cl->last_direct < DIRECT_GAP_NS) {
            /* Inside a burst: leave the rest to the bus thread (below), which
             * gathers whatever is queued when it runs. */
        } else if (cl->state == CS_READY && cl->ctl_off == cl->ctl_len) {
            if (cl->want_write) {
                /* The bus thread polls for room (or was woken to) and then
                 * writes everything queued, this frame included. */
                handled = true;
            } else {
                int err = 0;
                cl->last_direct = now;
                enum wres r = send_frames(cl, &err);
                if (r == W_DONE)
                    handled = true;
                else if (r == W_AGAIN)
                    cl->want_write = true; /* the wake below makes the bus thread poll for it */
            }
        }
        pthread_mutex_unlock(&cl->wmu);
        if (handled)
            return;
    }
    wake(cl);
}

static void *run(void *arg)
{
    struct ab_bus_client *cl = arg;
    pthread_mutex_lock(&cl->wmu);
    cl->state = CS_IDLE;
    pthread_mutex_unlock(&cl->wmu);
    cl->deadline = now_ms();
    while (!atomic_load(&cl->stop)) {
        /* The whole turn but poll() runs under wmu (see the top of the file). */
        pthread_mutex_lock(&cl->wmu);
        int64_t now = now_ms();
        if (cl->state == CS_IDLE && now >= cl->deadline)
            try_connect(cl);
        else if ((cl->state == CS_CONNECTING || cl->state == CS_HELLO) && now >= cl->deadline)
            disconnect(cl, "no hello from query in time", false);
        if (cl->state == CS_HELLO || cl->state == CS_READY)
            flush_out(cl);

        struct pollfd pf[2] = {{.fd = cl->wake_fd, .events = POLLIN}};
        nfds_t nfds = 1;
        if (cl->fd >= 0) {
            pf[1].fd = cl->fd;
            pf[1].events = cl->state == CS_CONNECTING ? POLLOUT : POLLIN;
            if (cl->want_write)
                pf[1].events |= POLLOUT;
            nfds = 2;
        }
        int timeout = -1;
        if (cl->state != CS_READY) {
            int64_t left = cl->deadline - now_ms();
            timeout = left < 0 ? 0 : (int)(left > 60000 ? 60000 : left);
        }
        pthread_mutex_unlock(&cl->wmu);
        int pr = poll(pf, nfds, timeout);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            ab_log(AB_LOG_ERROR, COMP, "poll failed: %s", strerror(errno));
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (pf[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(cl->wake_fd, &v, sizeof(v));
            (void)r;
            /* Drained first, cleared second: a publisher that saw the flag set
             * appended its frame before, so the flush at the loop top sees it. */
            atomic_store(&cl->wake_pending, false);
        }
        pthread_mutex_lock(&cl->wmu);
        if (nfds == 2 && pf[1].revents) {
            if (cl->state == CS_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof(err);
                if (getsockopt(cl->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
                    err = errno;
                if (err)
                    disconnect(cl, strerror(err), false);
                else
                    socket_connected(cl);
            } else if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                read_socket(cl);
            }
        }
        pthread_mutex_unlock(&cl->wmu);
    }
    return NULL;
}

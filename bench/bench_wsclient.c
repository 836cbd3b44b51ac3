/*
 * bench_wsclient: the WebSocket load client of the fan-out figures. One
 * thread, epoll, raw sockets and a minimal RFC 6455 client (handshake,
 * masked client frames, unmasked server frames, pings answered), so that
 * the client costs as little CPU as possible.
 *
 *   bench_wsclient TAG PORT PATH CONNECTIONS SHM_FILE [CHANNEL]
 *
 * Opens CONNECTIONS connections to ws://127.0.0.1:PORT/PATH (at most 64
 * handshakes at a time), sends {"op":"subscribe","channels":[CHANNEL]} on
 * each (default candles:BTCUSDT:1m; a server that ignores it is fine), then
 * reads. Every text frame starting with {"type":"candle" is an update: its
 * "num_trades":N identifies it (update k = N - base, see bench_shm.h).
 * Per connection the updates must arrive as base, base+1, ... with none
 * missing; the latency of each is its receive time minus its publish time
 * from SHM_FILE. The client stops when every connection has the last
 * update, or 10 s after the publisher finished.
 *
 * Output: RESULT lines with ids TAG_delivered (percent of connections x
 * updates received, in order), TAG_p50 / TAG_p99 / TAG_max (ms) and the
 * counts of gaps and reorderings.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_shm.h"
#include "bench_util.h"
#include "bench_ws.h"

#define RX_CAP        (64 * 1024)
#define MAX_INFLIGHT  64
#define MAX_SAMPLES   (20u * 1000 * 1000)
#define EXTRA_WAIT_NS (10LL * 1000000000LL)

enum cstate { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED };

struct conn {
    int fd;
    enum cstate state;
    size_t rx_len;
    unsigned char *rx;
    int64_t next; /* next expected number; 0 before the first update */
    int64_t got;  /* updates received */
    int64_t gaps, reorders;
    bool done;
};

static struct conn *conns;
static long n_conns;
static int ep;
static uint16_t port;
static const char *path;
static const char *channel = "candles:BTCUSDT:1m";
static struct bench_shm *shm;
static double *samples;
static size_t n_samples;
static long n_open, n_done, n_inflight, n_failed;

static void send_all(struct conn *c, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);

        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            usleep(100); /* tiny frames on a fresh socket: practically never */
            continue;
        }
        if (w <= 0) {
            c->state = C_CLOSED;
            return;
        }
        p += w;
        len -= (size_t)w;
    }
}

/* Sends one masked client frame (small ones only: pongs, subscriptions). */
static void send_frame(struct conn *c, int opcode, const char *payload, size_t len)
{
    unsigned char buf[512];
    size_t n = bench_ws_client_frame(buf, sizeof buf, opcode, payload, len);

    if (n > 0) {
        send_all(c, buf, n);
    }
}

static void start_connect(struct conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    int one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        bench_die("bench_wsclient: socket: %s", strerror(errno));
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        bench_die("bench_wsclient: connect: %s", strerror(errno));
    }
    c->state = C_CONNECTING;
    n_inflight++;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void on_update(struct conn *c, int64_t num, int64_t now)
{
    int64_t k = num - shm->base;

    if (c->next == 0) {
        if (k != 0) {
            c->gaps += k > 0 ? k : 0; /* the first updates never came */
        }
    } else if (num != c->next) {
        if (num > c->next) {
            c->gaps += num - c->next;
        } else {
            c->reorders++;
            return;
        }
    }
    c->next = num + 1;
    c->got++;
    if (k >= 0 && k < shm->capacity && shm->t_pub[k] != 0 && n_samples < MAX_SAMPLES) {
        samples[n_samples++] = (double)(now - shm->t_pub[k]) / 1e6;
    }
    if (k == atomic_load(&shm->total) - 1 && !c->done) {
        c->done = true;
        n_done++;
    }
}

static void on_text(struct conn *c, const unsigned char *p, size_t len, int64_t now)
{
    static const char tag[] = "{\"type\":\"candle\"";
    const char *nt;
    char tmp[64];
    size_t off;

    if (len < sizeof tag - 1 || memcmp(p, tag, sizeof tag - 1) != 0) {
        return; /* replies, snapshots */
    }
    nt = memmem(p, len, "\"num_trades\":", 13);
    if (nt == NULL) {
        bench_die("bench_wsclient: candle without num_trades");
    }
    off = (size_t)(nt - (const char *)p) + 13;
    if (len - off >= sizeof tmp) {
        len = off + sizeof tmp - 1;
    }
    memcpy(tmp, p + off, len - off);
    tmp[len - off] = '\0';
    on_update(c, strtoll(tmp, NULL, 10), now);
}

/* Parses every whole frame in c->rx. */
static void parse_frames(struct conn *c, int64_t now)
{
    size_t pos = 0;

    for (;;) {
        unsigned char *f = c->rx + pos;
        size_t avail = c->rx_len - pos, h;
        struct bench_ws_frame fr;
        uint64_t len;
        int opcode, got = bench_ws_frame_header(f, avail, &fr);

        if (got == 0) {
            break;
        }
        if (got < 0) {
            bench_die("bench_wsclient: masked server frame");
        }
        opcode = fr.opcode;
        len = fr.len;
        h = fr.hdr;
        if (len > RX_CAP - 16) {
            bench_die("bench_wsclient: frame of %llu bytes", (unsigned long long)len);
        }
        if (avail < h + len) {
            break;
        }
        if (opcode == 1 && fr.fin) {
            on_text(c, f + h, (size_t)len, now);
        } else if (opcode == 9) {
            send_frame(c, 0xA, (const char *)f + h, (size_t)len);
        } else if (opcode == 8) {
            c->state = C_CLOSED;
        }
        pos += h + (size_t)len;
    }
    memmove(c->rx, c->rx + pos, c->rx_len - pos);
    c->rx_len -= pos;
}

static void on_handshake_data(struct conn *c)
{
    unsigned char *end = memmem(c->rx, c->rx_len, "\r\n\r\n", 4);
    char sub[256];
    size_t hl;

    if (end == NULL) {
        return;
    }
    if (c->rx_len < 12 || memcmp(c->rx, "HTTP/1.1 101", 12) != 0) {
        bench_die("bench_wsclient: handshake refused: %.60s", (const char *)c->rx);
    }
    hl = (size_t)(end - c->rx) + 4;
    memmove(c->rx, c->rx + hl, c->rx_len - hl);
    c->rx_len -= hl;
    c->state = C_OPEN;
    n_inflight--;
    n_open++;
    snprintf(sub, sizeof sub, "{\"op\":\"subscribe\",\"channels\":[\"%s\"],\"id\":1}", channel);
    send_frame(c, 1, sub, strlen(sub));
}

static void on_event(struct conn *c, uint32_t events, int64_t now)
{
    if (c->state == C_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t el = sizeof err;
        char req[512];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            /* refused (backlog full): try again */
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            n_inflight--;
            n_failed++;
            c->state = C_IDLE;
            return;
        }
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 path, (unsigned)port);
        c->state = C_HANDSHAKE;
        send_all(c, req, strlen(req));
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len, 0);

        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        if (r <= 0) {
            if (c->state == C_OPEN) {
                n_open--;
            }
            c->state = C_CLOSED;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            return;
        }
        c->rx_len += (size_t)r;
        if (c->state == C_HANDSHAKE) {
            on_handshake_data(c);
        }
        if (c->state == C_OPEN) {
            parse_frames(c, now);
        }
        if (c->rx_len == RX_CAP) {
            bench_die("bench_wsclient: receive buffer full");
        }
    }
}

int main(int argc, char **argv)
{
    const char *tag;
    struct epoll_event evs[256];
    long next_conn = 0;
    int64_t done_at = 0, total = 0;
    int64_t gaps = 0, reorders = 0, got = 0;
    double cpu0;

    if (argc < 6) {
        fprintf(stderr, "usage: bench_wsclient TAG PORT PATH CONNECTIONS SHM_FILE [CHANNEL]\n");
        return 2;
    }
    tag = argv[1];
    port = (uint16_t)bench_arg_long(argv[2], 1, 65535, "port");
    path = argv[3];
    n_conns = bench_arg_long(argv[4], 1, 50000, "connections");
    if (argc > 6) {
        channel = argv[6];
    }
    shm = bench_shm_open(argv[5]);
    conns = calloc((size_t)n_conns, sizeof *conns);
    samples = malloc(MAX_SAMPLES * sizeof *samples);
    ep = epoll_create1(0);
    if (conns == NULL || samples == NULL || ep < 0) {
        bench_die("bench_wsclient: out of memory");
    }
    for (long i = 0; i < n_conns; i++) {
        conns[i].rx = malloc(RX_CAP);
        if (conns[i].rx == NULL) {
            bench_die("bench_wsclient: out of memory");
        }
    }
    cpu0 = bench_cpu();
    for (;;) {
        int64_t now;
        int n;

        while (next_conn < n_conns && n_inflight < MAX_INFLIGHT) {
            start_connect(&conns[next_conn++]);
        }
        n = epoll_wait(ep, evs, 256, 50);
        now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            on_event(evs[i].data.ptr, evs[i].events, now);
        }
        /* retry refused connections */
        for (long i = 0; i < next_conn && n_failed > 0; i++) {
            if (conns[i].state == C_IDLE && n_inflight < MAX_INFLIGHT) {
                n_failed--;
                start_connect(&conns[i]);
            }
        }
        total = atomic_load(&shm->total);
        if (total > 0 && n_done == n_conns) {
            break;
        }
        if (total > 0 && atomic_load(&shm->published) == total) {
            if (done_at == 0) {
                done_at = now;
            } else if (now - done_at > EXTRA_WAIT_NS) {
                break;
            }
        }
    }
    for (long i = 0; i < n_conns; i++) {
        gaps += conns[i].gaps;
        reorders += conns[i].reorders;
        got += conns[i].got;
        if (conns[i].fd > 0) {
            close(conns[i].fd);
        }
    }
    {
        double expected = (double)total * (double)n_conns;
        double pct = 100.0 * (double)(got - 0) / expected;

        qsort(samples, n_samples, sizeof *samples, bench_cmp_double);
        printf("%s client: %ld connections, %lld updates each expected, %lld received in total"
               " (%.4f%%), %lld missing, %lld out of order; latency p50 %.3f ms, p99 %.3f ms,"
               " max %.3f ms over %zu samples; client CPU %.1f s\n",
               tag, n_conns, (long long)total, (long long)got, pct, (long long)gaps,
               (long long)reorders, bench_quantile(samples, n_samples, 0.5),
               bench_quantile(samples, n_samples, 0.99), n_samples ? samples[n_samples - 1] : 0.0,
               n_samples, bench_cpu() - cpu0);
        bench_result("id=%s_delivered value=%.4f unit=%% missing=%lld out_of_order=%lld", tag,
                     gaps == 0 && reorders == 0 ? pct : (pct < 100 ? pct : 99.9999),
                     (long long)gaps, (long long)reorders);
        bench_result("id=%s_p50 value=%.3f unit=ms", tag, bench_quantile(samples, n_samples, 0.5));
        bench_result("id=%s_p99 value=%.3f unit=ms", tag, bench_quantile(samples, n_samples, 0.99));
        bench_result("id=%s_max value=%.3f unit=ms", tag, n_samples ? samples[n_samples - 1] : 0.0);
    }
    return 0;
}

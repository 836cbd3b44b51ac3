/*
 * bench_e2e: the end-to-end latency figure (issue 7): a depth event leaves
 * abidance-sim, goes through abidance-ingest (decode, book), the bus and
 * abidance-query (live book, fan-out) and reaches a WebSocket client.
 * bench/e2e.sh starts the three services and runs the two steps:
 *
 *   bench_e2e recv PORT SYMBOLS SECONDS OUT [WARMUP_S]
 *   bench_e2e join TRACE RECV
 *
 * recv: connects to ws://127.0.0.1:PORT/v1/stream (raw sockets, epoll, a
 * minimal RFC 6455 client as in bench_wsclient), subscribes to book:<SYM>
 * for every symbol of the comma-separated SYMBOLS (CHANNELS_PER_CONN per
 * connection, under the server's per-connection limit), waits until every
 * book has delivered a delta, then WARMUP_S seconds (default 3), then
 * writes every book_delta received during SECONDS to OUT as
 * "SYM FIRST_ID LAST_ID RECV_NS" (CLOCK_MONOTONIC, taken right after the
 * recv() that completed the frame), after a "# window START_NS END_NS" line.
 *
 * join: TRACE is abidance-sim's --trace-file ("SYM U SEND_NS" per depth
 * frame written to the ingest, CLOCK_MONOTONIC just before the write). A
 * delta [FIRST_ID, LAST_ID] received for SYM delivers every sim frame of
 * SYM whose U falls in that range (a server may merge frames: each merged
 * frame then counts with its own, older, send time). The sample is every
 * sim frame sent inside the window (up to GRACE_NS before its end); its
 * latency is the receive time of the first delta that delivered it minus
 * its send time. A frame of the window never delivered is "missing".
 *
 * Output (join): the workload line, then
 *   RESULT id=e2e_p50 value=<ms> unit=ms
 *   RESULT id=e2e_p99 value=<ms> unit=ms msgs=<matched> rate=<msg/s>
 * (max, p90, missing and merged frames are in the workload line). It exits
 * 1 when more than 1% of the window's frames never arrived.
 * Both processes read the same CLOCK_MONOTONIC on one machine, so the
 * difference is the true one-way latency (no clock offset).
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

#include "bench_util.h"
#include "bench_ws.h"

#define RX_CAP            (8u * 1024 * 1024) /* a whole book snapshot fits */
#define CHANNELS_PER_CONN 100                /* abidance-query's default --ws-max-channels */
#define SYMBOLS_MAX       4096
#define SYMBOL_LEN        24
#define RECV_MAX          (8u * 1000 * 1000) /* deltas kept (hard cap) */
#define TRACE_MAX         (16u * 1000 * 1000)
#define LIVE_TIMEOUT_NS   (120LL * 1000000000LL)
#define GRACE_NS          (500LL * 1000000LL)

/* ---- recv ------------------------------------------------------------- */

enum cstate { C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED };

struct conn {
    int fd;
    enum cstate state;
    size_t rx_len;
    unsigned char *rx;
    size_t first_sym, n_syms; /* the symbols this connection subscribes to */
};

struct rec {
    uint32_t sym;
    uint64_t first, last;
    int64_t t;
};

static char (*syms)[SYMBOL_LEN];
static size_t n_syms;
static bool *sym_live;
static size_t n_live;
static struct rec *recs;
static size_t n_recs;
static bool recording;
static uint16_t port;
static int ep;

static int sym_find(const char *s, size_t len)
{
    /* A linear scan would cost O(symbols) per delta; symbols are few, but keep it cheap. */
    static size_t hint;

    if (hint < n_syms && strlen(syms[hint]) == len && memcmp(syms[hint], s, len) == 0) {
        return (int)hint;
    }
    for (size_t i = 0; i < n_syms; i++) {
        if (strlen(syms[i]) == len && memcmp(syms[i], s, len) == 0) {
            hint = i + 1;
            return (int)i;
        }
    }
    return -1;
}

static void send_all(struct conn *c, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);

        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            usleep(100);
            continue;
        }
        if (w <= 0) {
            bench_die("bench_e2e: send: %s", strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
}

/* One masked client frame (mask 0). */
static void send_frame(struct conn *c, int opcode, const char *payload, size_t len)
{
    unsigned char *buf = malloc(len + 16);
    size_t n;

    if (buf == NULL) {
        bench_die("bench_e2e: out of memory");
    }
    n = bench_ws_client_frame(buf, len + 16, opcode, payload, len);
    if (n == 0) {
        bench_die("bench_e2e: client frame of %zu bytes", len);
    }
    send_all(c, buf, n);
    free(buf);
}

static uint64_t num_after(const unsigned char *p, size_t len, const char *key)
{
    size_t kl = strlen(key);
    const unsigned char *k = memmem(p, len, key, kl);
    uint64_t v = 0;

    if (k == NULL) {
        bench_die("bench_e2e: book_delta without %s", key);
    }
    for (k += kl; k < p + len && *k >= '0' && *k <= '9'; k++) {
        v = v * 10 + (uint64_t)(*k - '0');
    }
    return v;
}

static void on_text(const unsigned char *p, size_t len, int64_t now)
{
    static const char tag[] = "{\"type\":\"book_delta\"";
    static const char chk[] = "\"channel\":\"book:";
    const unsigned char *ch, *end;
    int s;

    if (len < sizeof tag - 1 || memcmp(p, tag, sizeof tag - 1) != 0) {
        return; /* replies, snapshots, status */
    }
    ch = memmem(p, len, chk, sizeof chk - 1);
    if (ch == NULL) {
        bench_die("bench_e2e: book_delta without a channel");
    }
    ch += sizeof chk - 1;
    end = memchr(ch, '"', len - (size_t)(ch - p));
    if (end == NULL || (s = sym_find((const char *)ch, (size_t)(end - ch))) < 0) {
        bench_die("bench_e2e: book_delta of an unknown channel");
    }
    if (!sym_live[s]) {
        sym_live[s] = true;
        n_live++;
    }
    if (!recording) {
        return;
    }
    if (n_recs == RECV_MAX) {
        bench_die("bench_e2e: more than %u deltas", RECV_MAX);
    }
    recs[n_recs++] = (struct rec){(uint32_t)s, num_after(p, len, "\"first_update_id\":"),
                                  num_after(p, len, "\"last_update_id\":"), now};
}

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
            bench_die("bench_e2e: masked server frame");
        }
        opcode = fr.opcode;
        len = fr.len;
        h = fr.hdr;
        if (len > RX_CAP - 16) {
            bench_die("bench_e2e: frame of %llu bytes", (unsigned long long)len);
        }
        if (avail < h + len) {
            break;
        }
        /* Only whole (FIN) text frames matter: deltas are small, never fragmented. */
        if (opcode == 1 && fr.fin) {
            on_text(f + h, (size_t)len, now);
        } else if (opcode == 9) {
            send_frame(c, 0xA, (const char *)f + h, (size_t)len);
        } else if (opcode == 8) {
            bench_die("bench_e2e: the server closed a connection");
        }
        pos += h + (size_t)len;
    }
    memmove(c->rx, c->rx + pos, c->rx_len - pos);
    c->rx_len -= pos;
}

static void subscribe(struct conn *c)
{
    size_t cap = c->n_syms * (SYMBOL_LEN + 16) + 128, n;
    char *req = malloc(cap);

    if (req == NULL) {
        bench_die("bench_e2e: out of memory");
    }
    n = (size_t)snprintf(req, cap, "{\"op\":\"subscribe\",\"id\":1,\"channels\":[");
    for (size_t i = 0; i < c->n_syms; i++) {
        n += (size_t)snprintf(req + n, cap - n, "%s\"book:%s\"", i ? "," : "",
                              syms[c->first_sym + i]);
    }
    n += (size_t)snprintf(req + n, cap - n, "]}");
    send_frame(c, 1, req, n);
    free(req);
}

static void on_event(struct conn *c, uint32_t events)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        char req[512];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            bench_die("bench_e2e: connect to 127.0.0.1:%u: %s", port, strerror(err));
        }
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        snprintf(req, sizeof req,
                 "GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 (unsigned)port);
        c->state = C_HANDSHAKE;
        send_all(c, req, strlen(req));
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len, 0);
        int64_t now = bench_now_ns();

        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        if (r <= 0) {
            bench_die("bench_e2e: the server closed a connection");
        }
        c->rx_len += (size_t)r;
        if (c->state == C_HANDSHAKE) {
            unsigned char *end = memmem(c->rx, c->rx_len, "\r\n\r\n", 4);
            size_t hl;

            if (end == NULL) {
                continue;
            }
            if (c->rx_len < 12 || memcmp(c->rx, "HTTP/1.1 101", 12) != 0) {
                bench_die("bench_e2e: handshake refused: %.60s", (const char *)c->rx);
            }
            hl = (size_t)(end - c->rx) + 4;
            memmove(c->rx, c->rx + hl, c->rx_len - hl);
            c->rx_len -= hl;
            c->state = C_OPEN;
            subscribe(c);
        }
        parse_frames(c, now);
        if (c->rx_len == RX_CAP) {
            bench_die("bench_e2e: receive buffer full");
        }
    }
}

static void split_symbols(const char *list)
{
    const char *p = list;

    syms = calloc(SYMBOLS_MAX, sizeof *syms);
    if (syms == NULL) {
        bench_die("bench_e2e: out of memory");
    }
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (len == 0 || len >= SYMBOL_LEN || n_syms == SYMBOLS_MAX) {
            bench_die("bench_e2e: bad symbol list");
        }
        memcpy(syms[n_syms++], p, len);
        p += len + (comma ? 1 : 0);
    }
    if (n_syms == 0) {
        bench_die("bench_e2e: no symbols");
    }
}

static int cmd_recv(int argc, char **argv)
{
    struct epoll_event evs[64];
    struct conn *conns;
    size_t n_conns;
    long seconds, warmup = 3;
    int64_t t0, live_at = 0, start = 0, end = 0;
    FILE *out;

    if (argc < 6) {
        fprintf(stderr, "usage: bench_e2e recv PORT SYMBOLS SECONDS OUT [WARMUP_S]\n");
        return 2;
    }
    port = (uint16_t)bench_arg_long(argv[2], 1, 65535, "port");
    split_symbols(argv[3]);
    seconds = bench_arg_long(argv[4], 1, 3600, "seconds");
    if (argc > 6) {
        warmup = bench_arg_long(argv[6], 0, 600, "warmup seconds");
    }
    out = fopen(argv[5], "w");
    sym_live = calloc(n_syms, sizeof *sym_live);
    recs = malloc(RECV_MAX * sizeof *recs);
    n_conns = (n_syms + CHANNELS_PER_CONN - 1) / CHANNELS_PER_CONN;
    conns = calloc(n_conns, sizeof *conns);
    ep = epoll_create1(0);
    if (out == NULL || sym_live == NULL || recs == NULL || conns == NULL || ep < 0) {
        bench_die("bench_e2e: cannot set up (%s)", strerror(errno));
    }
    for (size_t i = 0; i < n_conns; i++) {
        struct conn *c = &conns[i];
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        int one = 1;

        c->rx = malloc(RX_CAP);
        c->first_sym = i * CHANNELS_PER_CONN;
        c->n_syms =
            n_syms - c->first_sym < CHANNELS_PER_CONN ? n_syms - c->first_sym : CHANNELS_PER_CONN;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->rx == NULL || c->fd < 0) {
            bench_die("bench_e2e: socket: %s", strerror(errno));
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
            bench_die("bench_e2e: connect: %s", strerror(errno));
        }
        c->state = C_CONNECTING;
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    printf("bench_e2e recv: %zu book channels on %zu connections; waiting for every book\n", n_syms,
           n_conns);
    fflush(stdout);
    t0 = bench_now_ns();
    for (;;) {
        int n = epoll_wait(ep, evs, 64, 20);
        int64_t now;

        for (int i = 0; i < n; i++) {
            on_event(evs[i].data.ptr, evs[i].events);
        }
        now = bench_now_ns();
        if (live_at == 0 && n_live == n_syms) {
            live_at = now;
            printf("bench_e2e recv: every book delivers deltas after %.1f s; warm-up %ld s,"
                   " then %ld s measured\n",
                   (double)(now - t0) / 1e9, warmup, seconds);
            fflush(stdout);
        }
        if (live_at == 0 && now - t0 > LIVE_TIMEOUT_NS) {
            bench_die("bench_e2e: only %zu of %zu books delivered a delta within %lld s", n_live,
                      n_syms, LIVE_TIMEOUT_NS / 1000000000LL);
        }
        if (live_at != 0 && !recording && end == 0 && now - live_at >= warmup * 1000000000LL) {
            recording = true;
            start = now;
        }
        if (recording && now - start >= seconds * 1000000000LL) {
            recording = false;
            end = now;
            break;
        }
    }
    fprintf(out, "# window %lld %lld\n", (long long)start, (long long)end);
    for (size_t i = 0; i < n_recs; i++) {
        fprintf(out, "%s %llu %llu %lld\n", syms[recs[i].sym], (unsigned long long)recs[i].first,
                (unsigned long long)recs[i].last, (long long)recs[i].t);
    }
    if (fclose(out) != 0) {
        bench_die("bench_e2e: cannot write %s", argv[5]);
    }
    printf("bench_e2e recv: %zu deltas in %.1f s\n", n_recs, (double)(end - start) / 1e9);
    for (size_t i = 0; i < n_conns; i++) {
        close(conns[i].fd);
        free(conns[i].rx);
    }
    free(conns);
    free(recs);
    free(sym_live);
    free(syms);
    return 0;
}

/* ---- join ------------------------------------------------------------- */

struct frame {
    uint32_t sym;
    uint64_t u;
    int64_t t_send;
    int64_t t_recv; /* 0 = not delivered yet */
};

static int cmp_frame(const void *a, const void *b)
{
    const struct frame *x = a, *y = b;

    if (x->sym != y->sym) {
        return x->sym < y->sym ? -1 : 1;
    }
    return (x->u > y->u) - (x->u < y->u);
}

/* Index of sym's name in syms, added when new (the trace names every symbol). */
static uint32_t sym_intern(const char *s)
{
    int i = sym_find(s, strlen(s));

    if (i >= 0) {
        return (uint32_t)i;
    }
    if (n_syms == SYMBOLS_MAX || strlen(s) >= SYMBOL_LEN) {
        bench_die("bench_e2e: too many symbols in the trace");
    }
    snprintf(syms[n_syms], SYMBOL_LEN, "%s", s);
    return (uint32_t)n_syms++;
}

static int cmd_join(int argc, char **argv)
{
    FILE *tf, *rf;
    struct frame *fr;
    size_t n_fr = 0, n_rows = 0, merged = 0, missing = 0, n_lat = 0;
    size_t *sym_start;
    double *lat;
    char line[256], name[SYMBOL_LEN + 8];
    long long start = 0, end = 0;

    if (argc < 4) {
        fprintf(stderr, "usage: bench_e2e join TRACE RECV\n");
        return 2;
    }
    tf = fopen(argv[2], "r");
    rf = fopen(argv[3], "r");
    syms = calloc(SYMBOLS_MAX, sizeof *syms);
    fr = malloc(TRACE_MAX * sizeof *fr);
    if (tf == NULL || rf == NULL || syms == NULL || fr == NULL) {
        bench_die("bench_e2e: cannot open the trace or the receive log (%s)", strerror(errno));
    }
    while (fgets(line, sizeof line, tf)) {
        unsigned long long u;
        long long t;

        if (sscanf(line, "%30s %llu %lld", name, &u, &t) != 3) {
            bench_die("bench_e2e: bad trace line: %.80s", line);
        }
        if (n_fr == TRACE_MAX) {
            bench_die("bench_e2e: trace longer than %u frames", TRACE_MAX);
        }
        fr[n_fr++] = (struct frame){sym_intern(name), u, t, 0};
    }
    fclose(tf);
    qsort(fr, n_fr, sizeof *fr, cmp_frame);
    sym_start = calloc(n_syms + 1, sizeof *sym_start);
    if (sym_start == NULL) {
        bench_die("bench_e2e: out of memory");
    }
    for (size_t i = 0, s = 0; s <= n_syms; s++) {
        while (i < n_fr && fr[i].sym < s) {
            i++;
        }
        sym_start[s] = i;
    }
    if (!fgets(line, sizeof line, rf) || sscanf(line, "# window %lld %lld", &start, &end) != 2) {
        bench_die("bench_e2e: %s: no window line", argv[3]);
    }
    while (fgets(line, sizeof line, rf)) {
        unsigned long long first, last;
        long long t;
        int s;
        size_t lo, hi, hits = 0;

        if (sscanf(line, "%30s %llu %llu %lld", name, &first, &last, &t) != 4) {
            bench_die("bench_e2e: bad receive line: %.80s", line);
        }
        n_rows++;
        s = sym_find(name, strlen(name));
        if (s < 0) {
            continue; /* never traced: the sim sent nothing of it */
        }
        /* Binary search for the first frame of s with u >= first. */
        lo = sym_start[s];
        hi = sym_start[s + 1];
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (fr[mid].u < first) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        for (size_t i = lo; i < sym_start[s + 1] && fr[i].u <= last; i++) {
            if (fr[i].t_recv == 0) {
                fr[i].t_recv = t;
                hits++;
            }
        }
        if (hits > 1) {
            merged += hits - 1;
        }
    }
    fclose(rf);
    lat = malloc((n_fr + 1) * sizeof *lat);
    if (lat == NULL) {
        bench_die("bench_e2e: out of memory");
    }
    for (size_t i = 0; i < n_fr; i++) {
        if (fr[i].t_send < start || fr[i].t_send > end - GRACE_NS) {
            continue;
        }
        if (fr[i].t_recv == 0) {
            missing++;
            continue;
        }
        lat[n_lat++] = (double)(fr[i].t_recv - fr[i].t_send) / 1e6;
    }
    if (n_lat == 0) {
        bench_die("bench_e2e: no frame of the window was delivered (%zu deltas, %zu frames)",
                  n_rows, n_fr);
    }
    qsort(lat, n_lat, sizeof *lat, bench_cmp_double);
    {
        double secs = (double)(end - GRACE_NS - start) / 1e9;
        double rate = (double)(n_lat + missing) / secs;

        printf("end to end: sim depth frame written -> abidance-ingest -> bus -> abidance-query ->"
               " WebSocket client, %zu symbols, %.1f s window, %.0f frames/s sent;"
               " %zu delivered (%zu missing, %zu merged into another delta);"
               " latency p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n",
               n_syms, secs, rate, n_lat, missing, merged, bench_quantile(lat, n_lat, 0.5),
               bench_quantile(lat, n_lat, 0.9), bench_quantile(lat, n_lat, 0.99), lat[n_lat - 1]);
        bench_result("id=e2e_p50 value=%.3f unit=ms", bench_quantile(lat, n_lat, 0.5));
        bench_result("id=e2e_p99 value=%.3f unit=ms msgs=%zu rate=%.0f",
                     bench_quantile(lat, n_lat, 0.99), n_lat, rate);
    }
    free(lat);
    free(sym_start);
    free(fr);
    free(syms);
    return missing > n_lat / 100 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "recv") == 0) {
        return cmd_recv(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "join") == 0) {
        return cmd_join(argc, argv);
    }
    fprintf(stderr, "usage: bench_e2e recv PORT SYMBOLS SECONDS OUT [WARMUP_S]\n"
                    "       bench_e2e join TRACE RECV\n");
    return 2;
}

/*
 * ws.c over real loopback sockets, with a small hand-written WebSocket client
 * (handshake, masked frames, ping/close handling), so the protocol details
 * are checked too.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "auth.h"
#include "common/err.h"
#include "common/log.h"
#include "live.h"
#include "ws.h"
#include "ws_request.h"
#include "testlib.h"

#define MIN 60000LL
#define T0  1700000040000LL

/* ---- a minimal client ---- */

struct cli {
    int fd;
    unsigned char buf[1 << 16];
    size_t len;
    bool auto_pong;
    int pings;      /* ping frames seen */
    int close_code; /* from a close frame; 0 = none yet */
    bool eof;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads more bytes into c->buf within timeout. Returns false on timeout or EOF. */
static bool fill(struct cli *c, int timeout_ms)
{
    if (c->len == sizeof(c->buf))
        return false;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return false;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n <= 0) {
        c->eof = true;
        return false;
    }
    c->len += (size_t)n;
    return true;
}

static void send_all(struct cli *c, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

/* One masked frame (the client must mask). */
static void send_frame(struct cli *c, int opcode, const void *data, size_t n)
{
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[hl++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(n >> 8);
        h[hl++] = (unsigned char)n;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(h + hl, mask, 4);
    hl += 4;
    unsigned char *p = malloc(hl + n);
    memcpy(p, h, hl);
    for (size_t i = 0; i < n; i++)
        p[hl + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    send_all(c, p, hl + n);
    free(p);
}

static void send_text(struct cli *c, const char *s)
{
    send_frame(c, 1, s, strlen(s));
}

static void cli_close(struct cli *c);

/* Three decimal digits (an HTTP status), 0 when they are not. */
static int status3(const char *s)
{
    int v = 0;
    for (int i = 0; i < 3; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int cli_connect(struct cli *c, uint16_t port, const char *path, int rcvbuf)
{
    memset(c, 0, sizeof(*c));
    c->auto_pong = true;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, (unsigned)port);
    send_all(c, req, (size_t)n);
    int64_t deadline = now_ms() + 3000;
    for (;;) {
        unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t hl = (size_t)(end - c->buf) + 4;
            bool ok = c->len >= 12 && memcmp(c->buf + 9, "101", 3) == 0 &&
                      memmem(c->buf, hl, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) != NULL;
            memmove(c->buf, c->buf + hl, c->len - hl);
            c->len -= hl;
            return ok ? 0 : -2;
        }
        if (now_ms() > deadline || !fill(c, 100)) {
            if (c->eof || now_ms() > deadline)
                return -3;
        }
    }
}

/*
 * A handshake with extra header lines (each ending in \r\n; may be NULL) to
 * target. Returns the HTTP status (0 when none came). For 101 the client is
 * connected; otherwise the whole response (head and body, read until the
 * server closes) is in resp and the socket is closed.
 */
static int cli_handshake(struct cli *c, uint16_t port, const char *target, const char *extra,
                         char *resp, size_t resp_cap)
{
    memset(c, 0, sizeof(*c));
    c->auto_pong = true;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return 0;
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     target, (unsigned)port, extra ? extra : "");
    cr_assert_lt((size_t)n, sizeof(req));
    send_all(c, req, (size_t)n);
    int64_t deadline = now_ms() + 5000;
    resp[0] = '\0';
    for (;;) {
        unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            int status = 0;
            if (c->len >= 12 && memcmp(c->buf, "HTTP/1.", 7) == 0)
                status = status3((const char *)c->buf + 9);
            if (status == 101) {
                size_t hl = (size_t)(end - c->buf) + 4;
                snprintf(resp, resp_cap, "%.*s", (int)hl, (const char *)c->buf);
                memmove(c->buf, c->buf + hl, c->len - hl);
                c->len -= hl;
                return status;
            }
            /* not upgraded: read the rest until the server closes */
            while (!c->eof && now_ms() < deadline)
                fill(c, 100);
            snprintf(resp, resp_cap, "%.*s", (int)c->len, (const char *)c->buf);
            cli_close(c);
            return status;
        }
        if (now_ms() > deadline)
            return 0;
        if (!fill(c, 100) && c->eof) {
            snprintf(resp, resp_cap, "%.*s", (int)c->len, (const char *)c->buf);
            return 0;
        }
    }
}

static void cli_close(struct cli *c)
{
    if (c->fd > 0)
        close(c->fd);
    c->fd = -1;
}

/*
 * Next text message (malloc'd, NUL-terminated) within timeout_ms; pings are
 * answered (if auto_pong) and counted; a close frame sets close_code.
 */
static char *recv_text(struct cli *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (c->len >= 2) {
            int op = c->buf[0] & 0x0f;
            size_t n = c->buf[1] & 0x7f, hl = 2;
            cr_assert_eq(c->buf[1] & 0x80, 0, "server frames are not masked");
            cr_assert(c->buf[0] & 0x80, "server messages are not fragmented");
            if (n == 126) {
                if (c->len < 4)
                    goto more;
                n = ((size_t)c->buf[2] << 8) | c->buf[3];
                hl = 4;
            } else if (n == 127) {
                if (c->len < 10)
                    goto more;
                n = 0;
                for (int i = 0; i < 8; i++)
                    n = (n << 8) | c->buf[2 + i];
                hl = 10;
            }
            if (hl + n > sizeof(c->buf)) {
                /* big message: read it straight into its own buffer */
                unsigned char *big = malloc(n + 1);
                size_t have = c->len - hl;
                memcpy(big, c->buf + hl, have);
                while (have < n) {
                    struct pollfd p = {.fd = c->fd, .events = POLLIN};
                    if (poll(&p, 1, timeout_ms) <= 0) {
                        free(big);
                        return NULL;
                    }
                    ssize_t r = recv(c->fd, big + have, n - have, 0);
                    if (r <= 0) {
                        free(big);
                        c->eof = true;
                        return NULL;
                    }
                    have += (size_t)r;
                }
                c->len = 0;
                big[n] = '\0';
                cr_assert_eq(op, 1);
                return (char *)big;
            }
            if (c->len < hl + n)
                goto more;
            unsigned char *p = c->buf + hl;
            char *out = NULL;
            if (op == 1) {
                out = malloc(n + 1);
                memcpy(out, p, n);
                out[n] = '\0';
            } else if (op == 9) {
                c->pings++;
                if (c->auto_pong)
                    send_frame(c, 10, p, n);
            } else if (op == 8) {
                c->close_code = n >= 2 ? (p[0] << 8) | p[1] : 1005;
            }
            memmove(c->buf, c->buf + hl + n, c->len - hl - n);
            c->len -= hl + n;
            if (out)
                return out;
            if (op == 8)
                return NULL;
            continue;
        }
    more:
        if (c->eof)
            return NULL;
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return NULL;
        fill(c, left < 50 ? left : 50);
    }
}

static json_t *recv_json(struct cli *c, int timeout_ms)
{
    char *t = recv_text(c, timeout_ms);
    if (!t)
        return NULL;
    json_t *j = json_loads(t, 0, NULL);
    cr_assert_not_null(j, "server sent invalid JSON: %.200s", t);
    free(t);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static uint64_t jint(json_t *o, const char *k)
{
    return (uint64_t)json_integer_value(json_object_get(o, k));
}

/* Next message, which must be of the given type. */
static json_t *expect(struct cli *c, const char *type)
{
    json_t *j = recv_json(c, 5000);
    cr_assert_not_null(j, "no %s message (close code %d)", type, c->close_code);
    cr_assert_str_eq(jstr(j, "type"), type, "expected %s, got %s", type,
                     json_dumps(j, JSON_COMPACT));
    return j;
}

/* Waits for the close frame (skipping data); returns its code, 0 on EOF without one. */
static int wait_close(struct cli *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (!c->close_code && !c->eof && now_ms() < deadline)
        free(recv_text(c, 200));
    return c->close_code;
}

/* ---- fixtures ---- */

static struct live *lv;
static struct ws_server *srv;
static uint16_t port;

static struct ab_candle candle(int64_t open, int64_t trades, bool closed)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "BTCUSDT");
    c.interval = AB_I_1M;
    c.open_time = open;
    c.close_time = open + MIN - 1;
    c.open = ab_dec_from_units(4200012345678LL);
    c.high = ab_dec_from_units(4300000000000LL);
    c.low = ab_dec_from_units(4100000000000LL);
    c.close = ab_dec_from_units(4250000000000LL + trades);
    c.volume = ab_dec_from_units(150000000LL * trades);
    c.num_trades = trades;
    c.closed = closed;
    c.event_time = open + trades;
    return c;
}

static struct ab_level lvl(int64_t price_units, int64_t qty_units)
{
    struct ab_level l = {ab_dec_from_units(price_units), ab_dec_from_units(qty_units)};
    return l;
}

static void book_snapshot(uint64_t id)
{
    struct ab_level bids[50], asks[50];
    for (int i = 0; i < 50; i++) {
        bids[i] = lvl((50000 - i) * AB_DEC_SCALE, (i + 1) * 1000000);
        asks[i] = lvl((50001 + i) * AB_DEC_SCALE, (i + 1) * 1000000);
    }
    struct ab_book_snapshot s = {
        .last_update_id = id, .bids = bids, .asks = asks, .n_bids = 50, .n_asks = 50};
    snprintf(s.symbol, sizeof(s.symbol), "BTCUSDT");
    cr_assert_eq(live_apply_book_snapshot(lv, &s, 0, NULL), 0);
}

/* A delta U..u setting `levels` bid levels (absolute quantities). */
static void book_delta(uint64_t U, uint64_t u, int levels)
{
    struct ab_level bids[512];
    for (int i = 0; i < levels && i < 512; i++)
        bids[i] = lvl((50000 - i % 50) * AB_DEC_SCALE, (int64_t)(u % 97 + 1) * 1000000 + i);
    struct ab_book_delta d = {.first_id = U,
                              .last_id = u,
                              .bids = bids,
                              .n_bids = (size_t)levels,
                              .event_time = (int64_t)u};
    snprintf(d.symbol, sizeof(d.symbol), "BTCUSDT");
    enum live_action a;
    cr_assert_eq(live_apply_book_delta(lv, &d, 0, &a), 0);
    cr_assert_eq(a, LIVE_APPLIED);
}

static struct ab_config_symbols tracked_syms;
static struct ab_config_intervals tracked_ivs;

static void start_with(void (*tweak)(struct ws_config *))
{
    lws_set_log_level(LLL_ERR, ab_log_lws_emit);
    ab_log_init(AB_LOG_TEXT, AB_LOG_WARN);
    cr_assert_eq(live_new(NULL, &lv), 0);
    struct ws_config cfg;
    ws_config_defaults(&cfg);
    cfg.addr.port = 0;
    memset(&tracked_syms, 0, sizeof(tracked_syms));
    snprintf(tracked_syms.v[0], AB_SYMBOL_MAX, "BTCUSDT");
    snprintf(tracked_syms.v[1], AB_SYMBOL_MAX, "ETHUSDT");
    tracked_syms.n = 2;
    tracked_ivs.v[0] = AB_I_1M;
    tracked_ivs.v[1] = AB_I_1H;
    tracked_ivs.n = 2;
    cfg.symbols = &tracked_syms;
    cfg.intervals = &tracked_ivs;
    if (tweak)
        tweak(&cfg);
    cr_assert_eq(ws_server_new(&cfg, lv, &srv), 0);
    cr_assert_eq(ws_server_start(srv), 0);
    port = ws_server_port(srv);
    cr_assert_gt(port, 0);
}

static void start(void)
{
    start_with(NULL);
}

static void stop(void)
{
    ws_server_free(srv);
    live_free(lv);
    srv = NULL;
    lv = NULL;
}

static struct ws_stats stats(void)
{
    struct ws_stats st;
    ws_server_stats(srv, &st);
    return st;
}

/* The server's counters once messages_sent reached at least min (up to 10 s):
 * the server thread counts a message after its write returns, so a client
 * can have read it a moment before the counter moves. */
static struct ws_stats stats_after_sent(uint64_t min)
{
    struct ws_stats st = stats();
    for (int64_t deadline = now_ms() + 10000; st.messages_sent < min && now_ms() < deadline;
         st = stats())
        sleep_ms(1);
    return st;
}

/* ---- tests ---- */

Test(ws, subscribe_ack_snapshots_then_updates, .init = start, .fini = stop)
{
    for (int i = 0; i < 3; i++) {
        struct ab_candle c = candle(T0 + i * MIN, 10 + i, i < 2);
        cr_assert_eq(live_apply_candle(lv, &c, NULL), 0);
    }
    book_snapshot(1000);
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:1m\",\"book:BTCUSDT\","
                  "\"book:BTCUSDT\"],\"id\":1}");
    json_t *j = expect(&c, "subscribed");
    cr_assert_eq(jint(j, "id"), 1);
    json_t *chs = json_object_get(j, "channels");
    cr_assert_eq(json_array_size(chs), 2, "duplicates are folded");
    cr_assert_str_eq(json_string_value(json_array_get(chs, 0)), "candles:BTCUSDT:1m");
    json_decref(j);

    j = expect(&c, "snapshot");
    cr_assert_str_eq(jstr(j, "channel"), "candles:BTCUSDT:1m");
    json_t *cs = json_object_get(j, "candles");
    cr_assert_eq(json_array_size(cs), 3);
    json_t *c0 = json_array_get(cs, 0);
    cr_assert_eq(jint(c0, "open_time"), T0);
    cr_assert_str_eq(jstr(c0, "open"), "42000.12345678");
    cr_assert_str_eq(jstr(c0, "volume"), "15");
    cr_assert(json_is_true(json_object_get(c0, "is_closed")));
    cr_assert(json_is_false(json_object_get(json_array_get(cs, 2), "is_closed")));
    json_decref(j);

    j = expect(&c, "snapshot");
    cr_assert_str_eq(jstr(j, "channel"), "book:BTCUSDT");
    cr_assert_str_eq(jstr(j, "state"), "live");
    cr_assert_eq(jint(j, "last_update_id"), 1000);
    json_t *bids = json_object_get(j, "bids");
    cr_assert_eq(json_array_size(bids), 50);
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(bids, 0), 0)), "50000");
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(bids, 0), 1)), "0.01");
    cr_assert_str_eq(
        json_string_value(json_array_get(json_array_get(json_object_get(j, "asks"), 0), 0)),
        "50001");
    json_decref(j);

    /* updates: the open candle twice, it closes, the next opens; deltas */
    struct ab_candle u1 = candle(T0 + 2 * MIN, 20, false), u2 = candle(T0 + 2 * MIN, 21, true),
                     u3 = candle(T0 + 3 * MIN, 1, false);
    live_apply_candle(lv, &u1, NULL);
    book_delta(995, 1003, 2);
    live_apply_candle(lv, &u2, NULL);
    book_delta(1004, 1004, 1);
    live_apply_candle(lv, &u3, NULL);
    book_delta(1005, 1010, 3);

    int candles = 0, deltas = 0;
    uint64_t last = 1000;
    int64_t expect_open[] = {T0 + 2 * MIN, T0 + 2 * MIN, T0 + 3 * MIN};
    int64_t expect_trades[] = {20, 21, 1};
    while (candles < 3 || deltas < 3) {
        j = recv_json(&c, 5000);
        cr_assert_not_null(j);
        if (strcmp(jstr(j, "type"), "candle") == 0) {
            cr_assert_str_eq(jstr(j, "channel"), "candles:BTCUSDT:1m");
            cr_assert_eq(jint(j, "open_time"), expect_open[candles]);
            cr_assert_eq(jint(j, "num_trades"), expect_trades[candles]);
            cr_assert_eq(json_is_true(json_object_get(j, "is_closed")), candles == 1);
            cr_assert(json_is_string(json_object_get(j, "close")));
            candles++;
        } else {
            cr_assert_str_eq(jstr(j, "type"), "book_delta");
            cr_assert_str_eq(jstr(j, "channel"), "book:BTCUSDT");
            cr_assert_eq(jint(j, "prev_update_id"), last);
            cr_assert_leq(jint(j, "first_update_id"), last + 1);
            cr_assert_geq(jint(j, "last_update_id"), last + 1);
            last = jint(j, "last_update_id");
            deltas++;
        }
        json_decref(j);
    }
    cr_assert_eq(last, 1010);
    /* nothing else pending */
    send_text(&c, "{\"op\":\"ping\",\"id\":\"p\"}");
    j = expect(&c, "pong");
    cr_assert_str_eq(jstr(j, "id"), "p");
    json_decref(j);
    struct ws_stats st = stats_after_sent(10);
    cr_assert_eq(st.connections, 1);
    cr_assert_eq(st.subscriptions, 2);
    cr_assert_geq(st.messages_sent, 10);
    cli_close(&c);
}

Test(ws, snapshot_of_an_unseen_channel_is_empty_then_fills, .init = start, .fini = stop)
{
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"book:ETHUSDT\",\"candles:ETHUSDT:1h\"]}");
    json_t *j = expect(&c, "subscribed");
    cr_assert_null(json_object_get(j, "id"));
    json_decref(j);
    j = expect(&c, "snapshot");
    cr_assert_str_eq(jstr(j, "state"), "syncing");
    cr_assert_eq(jint(j, "last_update_id"), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "bids")), 0);
    json_decref(j);
    j = expect(&c, "snapshot");
    cr_assert_eq(json_array_size(json_object_get(j, "candles")), 0);
    json_decref(j);
    /* the first book snapshot arrives as a snapshot message */
    struct ab_level b = lvl(100 * AB_DEC_SCALE, AB_DEC_SCALE);
    struct ab_book_snapshot s = {.last_update_id = 7, .bids = &b, .n_bids = 1};
    snprintf(s.symbol, sizeof(s.symbol), "ETHUSDT");
    cr_assert_eq(live_apply_book_snapshot(lv, &s, 0, NULL), 0);
    j = expect(&c, "snapshot");
    cr_assert_str_eq(jstr(j, "channel"), "book:ETHUSDT");
    cr_assert_eq(jint(j, "last_update_id"), 7);
    json_decref(j);
    cli_close(&c);
}

Test(ws, book_gap_status_then_new_snapshot, .init = start, .fini = stop)
{
    book_snapshot(100);
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"book:BTCUSDT\"],\"id\":5}");
    json_decref(expect(&c, "subscribed"));
    json_decref(expect(&c, "snapshot"));
    book_delta(101, 101, 1);
    struct ab_level l = lvl(50000 * AB_DEC_SCALE, 1);
    struct ab_book_delta gap = {.first_id = 105, .last_id = 106, .bids = &l, .n_bids = 1};
    snprintf(gap.symbol, sizeof(gap.symbol), "BTCUSDT");
    enum live_action a;
    live_apply_book_delta(lv, &gap, 0, &a);
    cr_assert_eq(a, LIVE_NEED_SNAPSHOT);
    book_snapshot(300);
    book_delta(301, 302, 1);
    json_t *j = expect(&c, "book_delta");
    cr_assert_eq(jint(j, "last_update_id"), 101);
    json_decref(j);
    j = expect(&c, "status");
    cr_assert_str_eq(jstr(j, "state"), "stale");
    json_decref(j);
    j = expect(&c, "snapshot");
    cr_assert_eq(jint(j, "last_update_id"), 300);
    cr_assert_str_eq(jstr(j, "state"), "live");
    json_decref(j);
    j = expect(&c, "book_delta");
    cr_assert_eq(jint(j, "prev_update_id"), 300);
    json_decref(j);
    cli_close(&c);
}

static void expect_error(struct cli *c, const char *code)
{
    json_t *j = expect(c, "error");
    cr_assert_str_eq(jstr(j, "code"), code);
    cr_assert(strlen(jstr(j, "message")) > 5);
    json_decref(j);
    /* still usable */
    send_text(c, "{\"op\":\"ping\",\"id\":9}");
    j = expect(c, "pong");
    cr_assert_eq(jint(j, "id"), 9);
    json_decref(j);
}

static void small_limits(struct ws_config *cfg)
{
    cfg->max_channels = 3;
    cfg->max_inbound = 512;
    cfg->max_connections = 2;
}

Test(ws, malformed_requests_get_errors_and_the_connection_stays, .init = NULL, .fini = stop)
{
    start_with(small_limits);
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    send_text(&c, "{\"op\":");
    expect_error(&c, "bad_json");
    send_text(&c, "[1,2]");
    expect_error(&c, "bad_request");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":\"book:BTCUSDT\"}");
    expect_error(&c, "bad_request");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[]}");
    expect_error(&c, "bad_request");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"book:BTCUSDT\",7]}");
    expect_error(&c, "bad_request");
    send_text(&c, "{\"op\":\"dance\",\"id\":3}");
    json_t *j = expect(&c, "error");
    cr_assert_str_eq(jstr(j, "code"), "unknown_op");
    cr_assert_eq(jint(j, "id"), 3, "the id is echoed in errors");
    json_decref(j);
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"trades:BTCUSDT\"]}");
    expect_error(&c, "bad_channel");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"book:btcusdt\"]}");
    expect_error(&c, "bad_channel");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:7m\"]}");
    expect_error(&c, "bad_channel");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT\"]}");
    expect_error(&c, "bad_channel");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"book:XRPUSDT\"]}");
    expect_error(&c, "unknown_symbol");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:5m\"]}");
    expect_error(&c, "unknown_interval");
    send_text(&c, "{\"op\":\"subscribe\",\"id\":{\"x\":1},\"channels\":[\"book:BTCUSDT\"]}");
    expect_error(&c, "bad_request");
    /* too many in one request, and in total */
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"book:BTCUSDT\",\"book:ETHUSDT\","
                  "\"candles:BTCUSDT:1m\",\"candles:ETHUSDT:1m\"]}");
    expect_error(&c, "too_many_channels");
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"book:BTCUSDT\",\"book:ETHUSDT\"]}");
    json_decref(expect(&c, "subscribed"));
    json_decref(expect(&c, "snapshot"));
    json_decref(expect(&c, "snapshot"));
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:1m\","
                  "\"candles:ETHUSDT:1m\"]}");
    expect_error(&c, "too_many_channels");
    cr_assert_eq(stats().subscriptions, 2, "a refused request subscribes nothing");
    /* too large (fragmented over two frames as well) */
    char big[2048];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"op\":\"ping\"}", 13);
    send_frame(&c, 1, big, sizeof(big));
    expect_error(&c, "message_too_large");
    /* binary */
    send_frame(&c, 2, "{\"op\":\"ping\"}", 13);
    expect_error(&c, "bad_request");
    struct ws_stats st = stats();
    cr_assert_geq(st.errors_sent, 17);
    cr_assert_eq(st.connections, 1);
    cli_close(&c);
}

Test(ws, unsubscribe_stops_updates, .init = start, .fini = stop)
{
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:1m\"],\"id\":1}");
    json_decref(expect(&c, "subscribed"));
    json_decref(expect(&c, "snapshot"));
    struct ab_candle k = candle(T0, 1, false);
    live_apply_candle(lv, &k, NULL);
    json_decref(expect(&c, "candle"));
    send_text(&c, "{\"op\":\"unsubscribe\",\"channels\":[\"candles:BTCUSDT:1m\","
                  "\"book:BTCUSDT\"],\"id\":2}");
    json_t *j = expect(&c, "unsubscribed");
    cr_assert_eq(jint(j, "id"), 2);
    cr_assert_eq(json_array_size(json_object_get(j, "channels")), 2);
    json_decref(j);
    cr_assert_eq(stats().subscriptions, 0);
    k = candle(T0, 2, false);
    live_apply_candle(lv, &k, NULL);
    send_text(&c, "{\"op\":\"ping\"}");
    json_decref(expect(&c, "pong")); /* and no candle before it */
    /* subscribing again gives a fresh snapshot with the current state */
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:1m\"]}");
    json_decref(expect(&c, "subscribed"));
    j = expect(&c, "snapshot");
    cr_assert_eq(jint(json_array_get(json_object_get(j, "candles"), 0), "num_trades"), 2);
    json_decref(j);
    cli_close(&c);
}

Test(ws, connection_limit_closes_with_1013, .init = NULL, .fini = stop)
{
    start_with(small_limits);
    struct cli a, b, c;
    cr_assert_eq(cli_connect(&a, port, "/v1/stream", 0), 0);
    cr_assert_eq(cli_connect(&b, port, "/v1/stream", 0), 0);
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    cr_assert_eq(wait_close(&c, 3000), WS_CLOSE_TRY_LATER);
    /* the first two work */
    send_text(&b, "{\"op\":\"ping\"}");
    json_decref(expect(&b, "pong"));
    cr_assert_eq(stats().closes_limit, 1);
    cli_close(&c);
    cli_close(&a);
    cli_close(&b);
}

Test(ws, wrong_path_and_plain_http_are_refused, .init = start, .fini = stop)
{
    struct cli c;
    cr_assert_neq(cli_connect(&c, port, "/v1/other", 0), 0);
    cli_close(&c);
    cr_assert_eq(stats().connections_total, 0);
}

/* ---- slow consumers ---- */

struct fast {
    struct cli c;
    atomic_int deltas;
    atomic_int candles;
    atomic_uint_fast64_t last;
    atomic_int final_candles;
    int snapshots;
    bool bad;
    uint64_t final_id;
};

/* Reads until the final id and candle count, checking continuity. */
static void *fast_reader(void *arg)
{
    struct fast *f = arg;
    int64_t idle_since = now_ms();
    while (atomic_load(&f->last) < f->final_id ||
           atomic_load(&f->candles) < atomic_load(&f->final_candles)) {
        char *t = recv_text(&f->c, 100);
        if (!t) {
            if (f->c.eof || f->c.close_code || now_ms() - idle_since > 10000) {
                f->bad = true;
                break;
            }
            continue;
        }
        idle_since = now_ms();
        json_t *j = json_loads(t, 0, NULL);
        free(t);
        const char *type = jstr(j, "type");
        if (strcmp(type, "snapshot") == 0) {
            f->snapshots++;
            if (json_object_get(j, "last_update_id"))
                atomic_store(&f->last, jint(j, "last_update_id"));
        } else if (strcmp(type, "book_delta") == 0) {
            if (jint(j, "prev_update_id") != atomic_load(&f->last))
                f->bad = true;
            atomic_store(&f->last, jint(j, "last_update_id"));
            atomic_fetch_add(&f->deltas, 1);
        } else if (strcmp(type, "candle") == 0) {
            if ((int)jint(j, "num_trades") != atomic_load(&f->candles) + 1)
                f->bad = true;
            atomic_fetch_add(&f->candles, 1);
        }
        json_decref(j);
    }
    return NULL;
}

static void slow_limits(struct ws_config *cfg)
{
    cfg->queue_frames = 256;
    cfg->queue_bytes = 512 * 1024;
}

static void subscribe(struct cli *c, const char *channels, int snapshots)
{
    char req[256];
    snprintf(req, sizeof(req), "{\"op\":\"subscribe\",\"channels\":[%s]}", channels);
    send_text(c, req);
    json_decref(expect(c, "subscribed"));
    for (int i = 0; i < snapshots; i++)
        json_decref(expect(c, "snapshot"));
}

Test(ws, slow_book_reader_gets_a_fresh_snapshot_fast_one_everything, .init = NULL, .fini = stop,
     .timeout = 120)
{
    start_with(slow_limits);
    book_snapshot(1000);
    struct fast f = {0};
    struct cli slow;
    cr_assert_eq(cli_connect(&f.c, port, "/v1/stream", 0), 0);
    cr_assert_eq(cli_connect(&slow, port, "/v1/stream", 4096), 0);
    subscribe(&f.c, "\"book:BTCUSDT\"", 1);
    subscribe(&slow, "\"book:BTCUSDT\"", 1);
    const int N = 3000;
    f.final_id = 1000 + (uint64_t)N;
    atomic_store(&f.last, 1000);
    pthread_t th;
    pthread_create(&th, NULL, fast_reader, &f);
    /* ~10 KB per delta; the fast reader is never more than 32 behind */
    for (int i = 1; i <= N; i++) {
        book_delta(1000 + (uint64_t)i, 1000 + (uint64_t)i, 200);
        int64_t deadline = now_ms() + 10000;
        while (atomic_load(&f.deltas) < i - 32 && now_ms() < deadline)
            sleep_ms(1);
    }
    pthread_join(th, NULL);
    cr_assert_not(f.bad, "the fast reader saw a gap or timed out");
    cr_assert_eq(atomic_load(&f.deltas), N);
    cr_assert_eq(f.snapshots, 0, "the fast reader never needed a snapshot");
    struct ws_stats st = stats();
    cr_assert_geq(st.book_resnapshots, 1, "the slow reader overflowed");
    cr_assert_eq(st.closes_slow, 0);
    /* the slow reader now catches up: a fresh snapshot, then continuity */
    uint64_t last = 1000;
    int snapshots = 0;
    bool continuous = true;
    while (last < f.final_id) {
        json_t *j = recv_json(&slow, 10000);
        cr_assert_not_null(j, "slow reader stuck at %llu", (unsigned long long)last);
        if (strcmp(jstr(j, "type"), "snapshot") == 0) {
            snapshots++;
            cr_assert_gt(jint(j, "last_update_id"), last);
            last = jint(j, "last_update_id");
        } else {
            cr_assert_str_eq(jstr(j, "type"), "book_delta");
            continuous &= jint(j, "prev_update_id") == last;
            last = jint(j, "last_update_id");
        }
        json_decref(j);
    }
    cr_assert_geq(snapshots, 1);
    cr_assert(continuous, "after each snapshot the deltas continue it");
    cr_assert_eq(last, f.final_id);
    cli_close(&slow);
    cli_close(&f.c);
}

Test(ws, slow_candle_reader_is_closed_with_4008, .init = NULL, .fini = stop, .timeout = 120)
{
    start_with(slow_limits);
    struct fast f = {0};
    struct cli slow;
    cr_assert_eq(cli_connect(&f.c, port, "/v1/stream", 0), 0);
    cr_assert_eq(cli_connect(&slow, port, "/v1/stream", 4096), 0);
    subscribe(&f.c, "\"candles:BTCUSDT:1m\"", 1);
    subscribe(&slow, "\"candles:BTCUSDT:1m\"", 1);
    f.final_id = 0;
    atomic_store(&f.final_candles, 1 << 30); /* until told */
    pthread_t th;
    pthread_create(&th, NULL, fast_reader, &f);
    int n = 0;
    while (stats().closes_slow == 0 && n < 400000) {
        n++;
        struct ab_candle k = candle(T0, n, false);
        cr_assert_eq(live_apply_candle(lv, &k, NULL), 0);
        int64_t deadline = now_ms() + 10000;
        while (atomic_load(&f.candles) < n - 64 && now_ms() < deadline)
            sleep_ms(1);
    }
    cr_assert_eq(stats().closes_slow, 1, "closed after %d updates", n);
    atomic_store(&f.final_candles, n);
    pthread_join(th, NULL);
    cr_assert_not(f.bad);
    cr_assert_eq(atomic_load(&f.candles), n, "the fast reader got every update");
    cr_assert_eq(wait_close(&slow, 20000), WS_CLOSE_SLOW_CONSUMER);
    cli_close(&slow);
    cli_close(&f.c);
}

static void deep_queues(struct ws_config *cfg)
{
    cfg->queue_frames = 20000;
    cfg->queue_bytes = 256u * 1024 * 1024;
}

/*
 * A reader that stops reading while thousands of updates go out: once its
 * socket is full the frames wait in its queue, and when it reads again they
 * are written several per send() (ws.c, flush). Every frame still arrives,
 * whole and in order, and the writes are fewer than the frames.
 */
Test(ws, a_reader_behind_gets_every_frame_in_order_coalesced, .init = NULL, .fini = stop,
     .timeout = 120)
{
    start_with(deep_queues);
    book_snapshot(1000);
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 4096), 0);
    subscribe(&c, "\"book:BTCUSDT\",\"candles:BTCUSDT:1m\"", 2);
    struct ws_stats s0 = stats();
    const int N = 3000; /* ~2.5 KB per pair: beyond what the sockets hold (tcp_wmem max 4 MB) */
    for (int i = 1; i <= N; i++) {
        book_delta(1000 + (uint64_t)i, 1000 + (uint64_t)i, 40);
        struct ab_candle k = candle(T0, i, false);
        cr_assert_eq(live_apply_candle(lv, &k, NULL), 0);
    }
    uint64_t last = 1000;
    int deltas = 0, candles = 0;
    while (deltas < N || candles < N) {
        json_t *j = recv_json(&c, 10000);
        cr_assert_not_null(j, "stuck after %d deltas and %d candles (close code %d)", deltas,
                           candles, c.close_code);
        const char *type = jstr(j, "type");
        if (strcmp(type, "book_delta") == 0) {
            cr_assert_eq(jint(j, "prev_update_id"), last, "delta %d continues the last", deltas);
            last = jint(j, "last_update_id");
            deltas++;
        } else {
            cr_assert_str_eq(type, "candle", "only updates, no fresh snapshot");
            cr_assert_eq(jint(j, "num_trades"), (uint64_t)candles + 1);
            candles++;
        }
        json_decref(j);
    }
    cr_assert_eq(last, 1000 + (uint64_t)N);
    struct ws_stats s1 = stats_after_sent(s0.messages_sent + 2 * (uint64_t)N);
    cr_assert_eq(s1.book_resnapshots, 0);
    cr_assert_eq(s1.closes_slow, 0);
    uint64_t frames = s1.messages_sent - s0.messages_sent;
    uint64_t writes = s1.writes - s0.writes;
    cr_assert_eq(frames, 2 * (uint64_t)N);
    cr_assert_lt(writes + 1000, frames, "%llu frames in %llu writes: coalesced",
                 (unsigned long long)frames, (unsigned long long)writes);
    /* and it is live again: a request is answered right away */
    send_text(&c, "{\"op\":\"ping\",\"id\":7}");
    json_t *j = expect(&c, "pong");
    cr_assert_eq(jint(j, "id"), 7);
    json_decref(j);
    cli_close(&c);
}

static void tiny_handoff(struct ws_config *cfg)
{
    cfg->handoff_frames = 2;
}

Test(ws, handoff_overflow_is_never_a_silent_gap, .init = NULL, .fini = stop, .timeout = 120)
{
    start_with(tiny_handoff);
    book_snapshot(1000);
    struct cli cc, bc;
    cr_assert_eq(cli_connect(&cc, port, "/v1/stream", 0), 0);
    cr_assert_eq(cli_connect(&bc, port, "/v1/stream", 0), 0);
    subscribe(&cc, "\"candles:BTCUSDT:1m\"", 1);
    subscribe(&bc, "\"book:BTCUSDT\"", 1);
    const int N = 20000;
    for (int i = 1; i <= N; i++) {
        struct ab_candle k = candle(T0, i, false);
        live_apply_candle(lv, &k, NULL);
        book_delta(1000 + (uint64_t)i, 1000 + (uint64_t)i, 1);
    }
    struct ws_stats st = stats();
    cr_assert_gt(st.handoff_dropped, 0, "a 2-slot hand-off overflowed");
    /* the book reader still converges, continuously after each snapshot */
    uint64_t last = 1000;
    bool continuous = true;
    while (last < 1000 + (uint64_t)N) {
        json_t *j = recv_json(&bc, 10000);
        cr_assert_not_null(j, "book reader stuck at %llu", (unsigned long long)last);
        if (strcmp(jstr(j, "type"), "snapshot") == 0) {
            last = jint(j, "last_update_id");
        } else {
            continuous &= jint(j, "prev_update_id") == last;
            last = jint(j, "last_update_id");
        }
        json_decref(j);
    }
    cr_assert(continuous);
    /* the candle reader either saw every update, or was told with 4011 */
    int64_t trades = 0;
    bool gap = false;
    while (trades < N) {
        json_t *j = recv_json(&cc, 3000);
        if (!j)
            break;
        int64_t t = (int64_t)jint(j, "num_trades");
        gap |= t != trades + 1;
        trades = t;
        json_decref(j);
    }
    cr_assert_not(gap, "no candle update is skipped silently");
    if (trades < N)
        cr_assert_eq(cc.close_code, WS_CLOSE_OVERLOADED);
    st = stats();
    cr_assert_gt(st.closes_overloaded + st.book_gap_resnapshots, 0);
    cli_close(&cc);
    cli_close(&bc);
}

/* ---- liveness and shutdown ---- */

static void fast_pings(struct ws_config *cfg)
{
    cfg->ping_secs = 1;
    cfg->hangup_secs = 3;
}

Test(ws, server_pings_and_drops_silent_clients, .init = NULL, .fini = stop, .timeout = 60)
{
    start_with(fast_pings);
    struct cli quiet, good;
    cr_assert_eq(cli_connect(&quiet, port, "/v1/stream", 0), 0);
    cr_assert_eq(cli_connect(&good, port, "/v1/stream", 0), 0);
    quiet.auto_pong = false;
    int64_t t0 = now_ms();
    while (!quiet.eof && !quiet.close_code && now_ms() - t0 < 15000) {
        free(recv_text(&quiet, 100));
        free(recv_text(&good, 100));
    }
    cr_assert_geq(quiet.pings, 1, "the server pinged");
    cr_assert(quiet.eof || quiet.close_code, "a client that never answers is dropped");
    cr_assert_geq(good.pings, 1);
    cr_assert_not(good.eof);
    send_text(&good, "{\"op\":\"ping\"}");
    json_decref(expect(&good, "pong"));
    cr_assert_geq(stats().closes_client, 1);
    cli_close(&quiet);
    cli_close(&good);
}

Test(ws, stop_closes_with_going_away, .init = start, .fini = stop)
{
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    subscribe(&c, "\"book:BTCUSDT\"", 1);
    ws_server_stop(srv);
    cr_assert_eq(wait_close(&c, 5000), WS_CLOSE_GOING_AWAY);
    cr_assert_eq(stats().closes_shutdown, 1);
    /* publishing after stop is harmless */
    book_snapshot(5);
    cli_close(&c);
}

Test(ws, config_is_checked)
{
    lws_set_log_level(0, NULL);
    struct live *l;
    cr_assert_eq(live_new(NULL, &l), 0);
    struct ws_config cfg;
    struct ws_server *s;
    ws_config_defaults(&cfg);
    cr_assert_eq(cfg.addr.port, 8081);
    cr_assert_str_eq(cfg.addr.host, "127.0.0.1");
    cfg.hangup_secs = cfg.ping_secs;
    cr_assert_eq(ws_server_new(&cfg, l, &s), AB_EINVAL);
    ws_config_defaults(&cfg);
    cfg.max_channels = WS_MAX_CHANNELS_MAX + 1;
    cr_assert_eq(ws_server_new(&cfg, l, &s), AB_ERANGE);
    /* a taken port */
    ws_config_defaults(&cfg);
    cfg.addr.port = 0;
    struct ws_server *a, *b;
    cr_assert_eq(ws_server_new(&cfg, l, &a), 0);
    cr_assert_eq(ws_server_start(a), 0);
    cfg.addr.port = ws_server_port(a);
    cr_assert_eq(ws_server_new(&cfg, l, &b), 0);
    cr_assert_eq(ws_server_start(b), AB_EIO);
    ws_server_free(b);
    ws_server_free(a);
    live_free(l);
}

Test(ws, stats_render_prometheus)
{
    struct ws_stats st = {.connections = 3, .closes_slow = 2, .book_resnapshots = 5, .writes = 6};
    char buf[8192] = "";
    int n = ws_stats_render(&st, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_assert_not_null(strstr(buf, "abidance_ws_connections 3\n"));
    cr_assert_not_null(strstr(buf, "abidance_ws_writes_total 6\n"));
    cr_assert_not_null(strstr(buf, "abidance_ws_closes_total{reason=\"slow_consumer\"} 2\n"));
    cr_assert_not_null(strstr(buf, "abidance_ws_overflows_total{kind=\"book_resnapshot\"} 5\n"));
    struct ws_stats lim = {.closes_policy = 4, .refused_unauthorized = 7, .rate_limited = 9};
    buf[0] = '\0';
    cr_assert_gt(ws_stats_render(&lim, buf, sizeof(buf)), 0);
    cr_assert_not_null(strstr(buf, "abidance_ws_closes_total{reason=\"rate_limit\"} 4\n"));
    cr_assert_not_null(
        strstr(buf, "abidance_ws_handshakes_refused_total{reason=\"unauthorized\"} 7\n"));
    cr_assert_not_null(
        strstr(buf, "abidance_ws_handshakes_refused_total{reason=\"per_ip_limit\"} 0\n"));
    cr_assert_not_null(strstr(buf, "abidance_ws_rate_limited_total 9\n"));
    char small[64] = "";
    cr_assert_eq(ws_stats_render(&st, small, sizeof(small)), AB_ERANGE);
}

/* ---- client limits: authentication, per-address cap, floods ---- */

#define TOKEN "s3cr3t-T0ken_for.tests~0123456789"

static void with_token(struct ws_config *cfg)
{
    cfg->token = TOKEN;
}

/* The JSON error code in an HTTP response's body ("" when none). */
static const char *body_code(const char *resp, char *buf, size_t cap)
{
    buf[0] = '\0';
    const char *body = strstr(resp, "\r\n\r\n");
    json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(buf, cap, "%s", code ? code : "");
    json_decref(j);
    return buf;
}

Test(ws, token_is_required_for_the_handshake, .init = NULL, .fini = stop)
{
    start_with(with_token);
    char resp[4096], code[64];
    struct cli c;

    /* none: 401 with the JSON error and WWW-Authenticate: Bearer */
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream", NULL, resp, sizeof(resp)), 401, "%s", resp);
    cr_assert_str_eq(body_code(resp, code, sizeof(code)), "unauthorized", "%s", resp);
    cr_assert_not_null(strcasestr(resp, "www-authenticate: Bearer realm=\"abidance\""), "%s", resp);
    cr_assert_null(strstr(resp, "invalid_token"), "nothing was sent, so nothing was invalid");

    /* wrong token, in the header and in the query */
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream",
                               "Authorization: Bearer s3cr3t-T0ken_for.tests~0123456780\r\n", resp,
                               sizeof(resp)),
                 401);
    cr_assert_not_null(strstr(resp, "invalid_token"), "%s", resp);
    cr_assert_eq(
        cli_handshake(&c, port, "/v1/stream?token=nope-nope-nope-nope", NULL, resp, sizeof(resp)),
        401);
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream", "Authorization: Basic dXNlcjpwYXNz\r\n",
                               resp, sizeof(resp)),
                 401, "another scheme is no token");
    /* a prefix or an extension of the token is wrong too */
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream",
                               "Authorization: Bearer s3cr3t-T0ken_for.tests~012345678\r\n", resp,
                               sizeof(resp)),
                 401);
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream", "Authorization: Bearer " TOKEN "9\r\n", resp,
                               sizeof(resp)),
                 401);
    cr_assert_null(strstr(resp, TOKEN), "the token is never echoed: %s", resp);
    struct ws_stats st = stats();
    cr_assert_eq(st.refused_unauthorized, 6);
    cr_assert_eq(st.connections_total, 0, "refused handshakes never become connections");

    /* right: header (scheme case-insensitive), or the query parameter for browsers */
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream", "Authorization: Bearer " TOKEN "\r\n", resp,
                               sizeof(resp)),
                 101, "%s", resp);
    send_text(&c, "{\"op\":\"ping\",\"id\":1}");
    json_decref(expect(&c, "pong"));
    cli_close(&c);
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream", "authorization: bearer  " TOKEN " \r\n",
                               resp, sizeof(resp)),
                 101, "%s", resp);
    cli_close(&c);
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream?x=1&token=" TOKEN, NULL, resp, sizeof(resp)),
                 101, "%s", resp);
    send_text(&c, "{\"op\":\"subscribe\",\"channels\":[\"book:BTCUSDT\"]}");
    json_decref(expect(&c, "subscribed"));
    cli_close(&c);
    /* the path rule still holds with a token */
    cr_assert_neq(cli_handshake(&c, port, "/v1/other?token=" TOKEN, NULL, resp, sizeof(resp)), 101);
    cli_close(&c);
}

static void two_per_address(struct ws_config *cfg)
{
    cfg->max_connections_per_ip = 2;
}

Test(ws, per_address_limit_refuses_the_handshake_with_429, .init = NULL, .fini = stop)
{
    start_with(two_per_address);
    char resp[4096], code[64];
    struct cli a, b, c;
    cr_assert_eq(cli_connect(&a, port, "/v1/stream", 0), 0);
    cr_assert_eq(cli_connect(&b, port, "/v1/stream", 0), 0);
    cr_assert_eq(cli_handshake(&c, port, "/v1/stream", NULL, resp, sizeof(resp)), 429, "%s", resp);
    cr_assert_str_eq(body_code(resp, code, sizeof(code)), "too_many_connections", "%s", resp);
    cr_assert_not_null(strcasestr(resp, "retry-after: 5"), "%s", resp);
    cr_assert_eq(stats().refused_per_ip, 1);
    cr_assert_eq(stats().connections, 2);
    /* the two are unaffected */
    send_text(&a, "{\"op\":\"ping\"}");
    json_decref(expect(&a, "pong"));
    /* one leaves: a new one is accepted again */
    cli_close(&a);
    int64_t deadline = now_ms() + 5000;
    while (stats().connections > 1 && now_ms() < deadline)
        sleep_ms(10);
    cr_assert_eq(stats().connections, 1);
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    send_text(&c, "{\"op\":\"ping\"}");
    json_decref(expect(&c, "pong"));
    cli_close(&b);
    cli_close(&c);
}

static void slow_rate(struct ws_config *cfg)
{
    cfg->rate = 5;
    cfg->burst = 5;
}

Test(ws, a_burst_over_the_rate_gets_errors_and_the_connection_stays, .init = NULL, .fini = stop)
{
    start_with(slow_rate);
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    /* 8 pings in one write: the burst (5) is answered, the rest refused */
    unsigned char frames[8][64];
    size_t total = 0;
    unsigned char all[8 * 64];
    for (int i = 0; i < 8; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "{\"op\":\"ping\",\"id\":%d}", i);
        unsigned char mask[4] = {1, 2, 3, 4};
        size_t k = 0;
        frames[i][k++] = 0x81;
        frames[i][k++] = (unsigned char)(0x80 | n);
        memcpy(frames[i] + k, mask, 4);
        k += 4;
        for (int b = 0; b < n; b++)
            frames[i][k++] = (unsigned char)msg[b] ^ mask[b % 4];
        memcpy(all + total, frames[i], k);
        total += k;
    }
    send_all(&c, all, total);
    int pongs = 0, limited = 0;
    for (int i = 0; i < 8; i++) {
        json_t *j = recv_json(&c, 5000);
        cr_assert_not_null(j, "reply %d missing (close %d)", i, c.close_code);
        if (strcmp(jstr(j, "type"), "pong") == 0) {
            pongs++;
        } else {
            cr_assert_str_eq(jstr(j, "type"), "error");
            cr_assert_str_eq(jstr(j, "code"), "rate_limited");
            cr_assert_not_null(strstr(jstr(j, "message"), "5 per second"));
            limited++;
        }
        json_decref(j);
    }
    cr_assert_geq(pongs, 5);
    cr_assert_geq(limited, 1, "8 at once with a burst of 5");
    cr_assert_eq(stats().rate_limited, (uint64_t)limited);
    cr_assert_eq(c.close_code, 0);
    /* tokens come back with time */
    sleep_ms(450);
    send_text(&c, "{\"op\":\"ping\",\"id\":99}");
    json_t *j = expect(&c, "pong");
    cr_assert_eq(jint(j, "id"), 99);
    json_decref(j);
    cr_assert_eq(stats().closes_policy, 0);
    cli_close(&c);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

Test(ws, a_subscription_flood_gets_errors_then_1008_with_bounded_memory, .init = start,
     .fini = stop, .timeout = 120)
{
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    long rss0 = rss_kib();
    /* 10000 subscribe/unsubscribe requests in one burst (about 0.7 MB) */
    enum { N = 10000 };
    unsigned char *all = malloc((size_t)N * 96);
    cr_assert_not_null(all);
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        char msg[90];
        int n =
            snprintf(msg, sizeof(msg), "{\"op\":\"%s\",\"channels\":[\"book:BTCUSDT\"],\"id\":%d}",
                     i % 2 ? "unsubscribe" : "subscribe", i);
        unsigned char mask[4] = {9, 8, 7, 6};
        all[total++] = 0x81;
        all[total++] = (unsigned char)(0x80 | n);
        memcpy(all + total, mask, 4);
        total += 4;
        for (int b = 0; b < n; b++)
            all[total++] = (unsigned char)msg[b] ^ mask[b % 4];
    }
    int64_t t0 = now_ms();
    send_all(&c, all, total);
    free(all);
    int replies = 0, limited = 0, other = 0;
    while (!c.close_code && !c.eof && now_ms() - t0 < 30000) {
        json_t *j = recv_json(&c, 500);
        if (!j)
            continue;
        const char *type = jstr(j, "type");
        if (!strcmp(type, "subscribed") || !strcmp(type, "unsubscribed"))
            replies++;
        else if (!strcmp(type, "error") && !strcmp(jstr(j, "code"), "rate_limited"))
            limited++;
        else if (strcmp(type, "snapshot") != 0)
            other++;
        json_decref(j);
    }
    double secs = (double)(now_ms() - t0) / 1000.0;
    cr_assert_eq(c.close_code, WS_CLOSE_POLICY, "a sustained flood is closed with 1008 (got %d)",
                 c.close_code);
    cr_assert_eq(other, 0);
    /* at most the burst plus what the rate refilled was served */
    cr_assert_geq(replies, WS_BURST_DEFAULT, "replies %d limited %d other %d close %d", replies,
                  limited, other, c.close_code);
    cr_assert_leq(replies, WS_BURST_DEFAULT + (int)(WS_RATE_DEFAULT * secs) + 2,
                  "%d requests served in %.1f s", replies, secs);
    cr_assert_geq(limited, 1);
    cr_assert_leq(limited, N);
    struct ws_stats st = stats();
    cr_assert_eq(st.closes_policy, 1);
    cr_assert_geq(st.rate_limited, (uint64_t)WS_BURST_DEFAULT + 1);
    cr_assert_leq(st.requests, (uint64_t)replies + 2, "refused requests are not parsed");
    cli_close(&c);
    int64_t deadline = now_ms() + 5000;
    while ((stats().connections || stats().subscriptions) && now_ms() < deadline)
        sleep_ms(10);
    cr_assert_eq(stats().subscriptions, 0);
    long grown = rss_kib() - rss0;
    cr_assert_lt(grown, 64 * 1024, "RSS grew by %ld KiB during the flood", grown);
    /* the server is fine: a new client is served */
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    send_text(&c, "{\"op\":\"ping\"}");
    json_decref(expect(&c, "pong"));
    cli_close(&c);
}

Test(ws, an_oversized_message_is_refused_and_the_connection_stays, .init = start, .fini = stop,
     .timeout = 60)
{
    struct cli c;
    cr_assert_eq(cli_connect(&c, port, "/v1/stream", 0), 0);
    size_t n = 1024 * 1024;
    char *big = malloc(n);
    cr_assert_not_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"op\":\"ping\"}", 13);
    send_frame(&c, 1, big, n);
    free(big);
    json_t *j = expect(&c, "error");
    cr_assert_str_eq(jstr(j, "code"), "message_too_large");
    cr_assert_not_null(strstr(jstr(j, "message"), "4096"));
    json_decref(j);
    /* exactly the limit is fine */
    char edge[WS_MAX_INBOUND_DEFAULT];
    memset(edge, ' ', sizeof(edge));
    memcpy(edge, "{\"op\":\"ping\",\"id\":7}", 20);
    send_frame(&c, 1, edge, sizeof(edge));
    j = expect(&c, "pong");
    cr_assert_eq(jint(j, "id"), 7);
    json_decref(j);
    cli_close(&c);
}

/* ---- the request parser and the rate limiter (pure) ---- */

struct req_case {
    const char *text;
    int rc;
    enum ws_req_error error;
    enum ws_op op;
    size_t n;
    enum ws_id_kind id;
};

Test(ws_request, parses_and_refuses_like_the_manual)
{
    struct ab_config_symbols syms = {.n = 2};
    snprintf(syms.v[0], AB_SYMBOL_MAX, "BTCUSDT");
    snprintf(syms.v[1], AB_SYMBOL_MAX, "ETHUSDT");
    struct ab_config_intervals ivs = {.v = {AB_I_1M}, .n = 1};
    struct ws_request_limits lim = {.max_channels = 3, .symbols = &syms, .intervals = &ivs};
    static const struct req_case cases[] = {
        {"{\"op\":\"ping\"}", 0, WS_REQ_OK, WS_OP_PING, 0, WS_ID_NONE},
        {"{\"op\":\"ping\",\"id\":-5}", 0, WS_REQ_OK, WS_OP_PING, 0, WS_ID_INT},
        {"{\"op\":\"ping\",\"id\":\"abc\"}", 0, WS_REQ_OK, WS_OP_PING, 0, WS_ID_STRING},
        {"{\"op\":\"subscribe\",\"channels\":[\"book:BTCUSDT\",\"candles:ETHUSDT:1m\","
         "\"book:BTCUSDT\"],\"x\":1}",
         0, WS_REQ_OK, WS_OP_SUBSCRIBE, 2, WS_ID_NONE},
        {"{\"op\":\"unsubscribe\",\"channels\":[\"book:ETHUSDT\"],\"id\":3}", 0, WS_REQ_OK,
         WS_OP_UNSUBSCRIBE, 1, WS_ID_INT},
        {"", AB_EINVAL, WS_REQ_BAD_JSON, 0, 0, WS_ID_NONE},
        {"{\"op\":", AB_EINVAL, WS_REQ_BAD_JSON, 0, 0, WS_ID_NONE},
        {"{\"op\":\"ping\",\"op\":\"ping\"}", AB_EINVAL, WS_REQ_BAD_JSON, 0, 0, WS_ID_NONE},
        {"5", AB_EINVAL, WS_REQ_BAD_JSON, 0, 0, WS_ID_NONE},
        {"[1]", AB_EINVAL, WS_REQ_BAD_REQUEST, 0, 0, WS_ID_NONE},
        {"{\"op\":7}", AB_EINVAL, WS_REQ_BAD_REQUEST, 0, 0, WS_ID_NONE},
        {"{\"op\":\"ping\",\"id\":1.5}", AB_EINVAL, WS_REQ_BAD_REQUEST, 0, 0, WS_ID_NONE},
        {"{\"op\":\"ping\",\"id\":null}", AB_EINVAL, WS_REQ_BAD_REQUEST, 0, 0, WS_ID_NONE},
        {"{\"op\":\"ping\",\"id\":\"12345678901234567890123456789012345678901234567890123456789"
         "012345\"}",
         AB_EINVAL, WS_REQ_BAD_REQUEST, 0, 0, WS_ID_NONE},
        {"{\"op\":\"dance\",\"id\":2}", AB_EINVAL, WS_REQ_UNKNOWN_OP, 0, 0, WS_ID_INT},
        {"{\"op\":\"subscribe\",\"id\":2}", AB_EINVAL, WS_REQ_BAD_REQUEST, 0, 0, WS_ID_INT},
        {"{\"op\":\"subscribe\",\"channels\":[]}", AB_EINVAL, WS_REQ_BAD_REQUEST, 0, 0, WS_ID_NONE},
        {"{\"op\":\"subscribe\",\"channels\":[1]}", AB_EINVAL, WS_REQ_BAD_REQUEST, 0, 0,
         WS_ID_NONE},
        {"{\"op\":\"subscribe\",\"channels\":[\"a\",\"b\",\"c\",\"d\"]}", AB_EINVAL,
         WS_REQ_TOO_MANY_CHANNELS, 0, 0, WS_ID_NONE},
        {"{\"op\":\"subscribe\",\"channels\":[\"book:btc\"]}", AB_EINVAL, WS_REQ_BAD_CHANNEL, 0, 0,
         WS_ID_NONE},
        {"{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:2m\"]}", AB_EINVAL,
         WS_REQ_BAD_CHANNEL, 0, 0, WS_ID_NONE},
        {"{\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:1h\"]}", AB_EINVAL,
         WS_REQ_UNKNOWN_INTERVAL, 0, 0, WS_ID_NONE},
        {"{\"op\":\"subscribe\",\"channels\":[\"book:XRPUSDT\"]}", AB_EINVAL, WS_REQ_UNKNOWN_SYMBOL,
         0, 0, WS_ID_NONE},
        {"{\"op\":\"subscribe\",\"channels\":[\"book:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]}",
         AB_EINVAL, WS_REQ_BAD_CHANNEL, 0, 0, WS_ID_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct req_case *k = &cases[i];
        struct ws_request r;
        char why[256] = "unset";
        int rc = ws_request_parse(k->text, strlen(k->text), &lim, &r, why, sizeof(why));
        cr_assert_eq(rc, k->rc, "%s: rc %d", k->text, rc);
        cr_assert_eq(r.error, k->error, "%s: %s (%s)", k->text, ws_req_error_name(r.error), why);
        cr_assert_eq(r.id.kind, k->id, "%s: id kind", k->text);
        if (rc == 0) {
            cr_assert_eq(r.op, k->op, "%s", k->text);
            cr_assert_eq(r.n, k->n, "%s", k->text);
        } else {
            cr_assert(why[0] && strcmp(why, "unset") != 0, "%s: no reason", k->text);
            cr_assert_null(r.chans);
        }
        ws_request_free(&r);
    }
    /* the echoed id and the folded channel list */
    struct ws_request r;
    char why[256];
    const char *t = "{\"id\":\"x-1\",\"op\":\"subscribe\",\"channels\":[\"candles:BTCUSDT:1m\","
                    "\"book:ETHUSDT\",\"candles:BTCUSDT:1m\"]}";
    cr_assert_eq(ws_request_parse(t, strlen(t), &lim, &r, why, sizeof(why)), 0);
    cr_assert_str_eq(r.id.str, "x-1");
    cr_assert_eq(r.id.len, 3);
    cr_assert_str_eq(r.chans[0].key, "candles:BTCUSDT:1m");
    cr_assert_eq(r.chans[0].kind, WS_CH_CANDLES);
    cr_assert_eq(r.chans[0].interval, AB_I_1M);
    cr_assert_str_eq(r.chans[1].symbol, "ETHUSDT");
    cr_assert_eq(r.chans[1].kind, WS_CH_BOOK);
    ws_request_free(&r);
    /* not NUL-terminated input: only len bytes are read */
    char raw[] = {'{', '"', 'o', 'p', '"', ':', '"', 'p', 'i', 'n', 'g', '"', '}', 'X'};
    cr_assert_eq(ws_request_parse(raw, 13, &lim, &r, why, sizeof(why)), 0);
    ws_request_free(&r);
    /* error names */
    cr_assert_str_eq(ws_req_error_name(WS_REQ_TOO_MANY_CHANNELS), "too_many_channels");
    cr_assert_str_eq(ws_req_error_name((enum ws_req_error)99), "internal");
    /* untracked lists accept any well-formed name */
    struct ws_request_limits any = {.max_channels = 1};
    t = "{\"op\":\"subscribe\",\"channels\":[\"candles:ZZZ9:1M\"]}";
    cr_assert_eq(ws_request_parse(t, strlen(t), &any, &r, why, sizeof(why)), 0, "%s", why);
    ws_request_free(&r);
}

Test(ws_request, token_bucket)
{
    struct ws_bucket b;
    ws_bucket_init(&b, 3, 1000);
    for (int i = 0; i < 3; i++)
        cr_assert(ws_bucket_take(&b, 10, 3, 1000), "burst %d", i);
    cr_assert_not(ws_bucket_take(&b, 10, 3, 1000), "empty");
    cr_assert_not(ws_bucket_take(&b, 10, 3, 1099), "0.99 tokens after 99 ms at 10/s");
    cr_assert(ws_bucket_take(&b, 10, 3, 1100), "1 token after 100 ms");
    cr_assert_not(ws_bucket_take(&b, 10, 3, 1100));
    cr_assert_not(ws_bucket_take(&b, 10, 3, 500), "time going back adds nothing");
    /* a long pause fills the bucket to the burst, never beyond */
    for (int i = 0; i < 3; i++)
        cr_assert(ws_bucket_take(&b, 10, 3, INT64_MAX / 2), "after a long pause %d", i);
    cr_assert_not(ws_bucket_take(&b, 10, 3, INT64_MAX / 2));
    /* rate 0: no limit */
    for (int i = 0; i < 1000; i++)
        cr_assert(ws_bucket_take(&b, 0, 3, 0));
}

Test(ws, limits_are_checked_in_the_config)
{
    lws_set_log_level(0, NULL);
    struct live *l;
    cr_assert_eq(live_new(NULL, &l), 0);
    struct ws_config cfg;
    struct ws_server *s;
    ws_config_defaults(&cfg);
    cr_assert_eq(cfg.max_connections_per_ip, 0, "off in the library; the service sets 32");
    cr_assert_eq(cfg.rate, WS_RATE_DEFAULT);
    cr_assert_eq(cfg.burst, WS_BURST_DEFAULT);
    cr_assert_null(cfg.token);
    cfg.burst = 0;
    cr_assert_eq(ws_server_new(&cfg, l, &s), AB_EINVAL, "a rate needs a burst");
    ws_config_defaults(&cfg);
    cfg.rate = WS_RATE_MAX + 1;
    cr_assert_eq(ws_server_new(&cfg, l, &s), AB_ERANGE);
    ws_config_defaults(&cfg);
    cfg.token = "short";
    cr_assert_eq(ws_server_new(&cfg, l, &s), AB_EINVAL, "a token of 5 characters");
    cfg.token = "has space in it, sixteen+";
    cr_assert_eq(ws_server_new(&cfg, l, &s), AB_EINVAL);
    live_free(l);
}

Test(auth, token_rules_and_constant_time_compare)
{
    char why[160];
    cr_assert_eq(auth_token_check("0123456789abcdef", 16, why, sizeof(why)), 0);
    cr_assert_eq(auth_token_check("0123456789abcde", 15, why, sizeof(why)), AB_EINVAL);
    cr_assert_null(strstr(why, "0123"), "the message never quotes the token: %s", why);
    cr_assert_eq(auth_token_check("0123456789abcdef+", 17, why, sizeof(why)), AB_EINVAL);
    cr_assert_not_null(strstr(why, "offset 16"));
    char longest[AUTH_TOKEN_MAX + 1];
    memset(longest, 'a', sizeof(longest));
    cr_assert_eq(auth_token_check(longest, AUTH_TOKEN_MAX, why, sizeof(why)), 0);
    cr_assert_eq(auth_token_check(longest, AUTH_TOKEN_MAX + 1, why, sizeof(why)), AB_EINVAL);

    cr_assert(auth_token_equal(TOKEN, TOKEN, strlen(TOKEN)));
    cr_assert_not(auth_token_equal(TOKEN, TOKEN, strlen(TOKEN) - 1), "a prefix");
    cr_assert_not(auth_token_equal(TOKEN, TOKEN "x", strlen(TOKEN) + 1), "an extension");
    cr_assert_not(auth_token_equal(TOKEN, "", 0));
    cr_assert_not(auth_token_equal("", "", 0), "an empty secret matches nothing");
    cr_assert_not(auth_token_equal(NULL, "x", 1));
    char flipped[] = TOKEN;
    for (size_t i = 0; i < strlen(TOKEN); i++) {
        flipped[i] ^= 1;
        cr_assert_not(auth_token_equal(TOKEN, flipped, strlen(flipped)), "byte %zu", i);
        flipped[i] ^= 1;
    }
    /* a candidate equal to the secret repeated is still wrong */
    char twice[2 * sizeof(TOKEN)];
    snprintf(twice, sizeof(twice), "%s%s", TOKEN, TOKEN);
    cr_assert_not(auth_token_equal(TOKEN, twice, strlen(twice)));

    const char *tok;
    size_t len;
    cr_assert(auth_bearer("Bearer abc", &tok, &len));
    cr_assert_eq(len, 3);
    cr_assert_eq(strncmp(tok, "abc", 3), 0);
    cr_assert(auth_bearer("  bEaReR \t abc  ", &tok, &len));
    cr_assert_eq(len, 3);
    cr_assert_not(auth_bearer("Bearer", &tok, &len));
    cr_assert_not(auth_bearer("Bearer   ", &tok, &len));
    cr_assert_not(auth_bearer("Bearerabc", &tok, &len));
    cr_assert_not(auth_bearer("Basic abc", &tok, &len));
    cr_assert_not(auth_bearer(NULL, &tok, &len));
}

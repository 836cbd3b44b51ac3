/*
 * The bus wired into abidance-query, end to end: the real binary (free
 * loopback ports, a private bus socket under a temp directory) against
 * PostgreSQL, with this test acting as the ingest through common/bus_client.
 *
 * What is checked: candles land in PostgreSQL with their newest values and
 * the ingest's frames are acknowledged only once committed (held while the
 * database is paused, released after it resumes); a small storage queue and
 * a small bus window push back instead of losing anything; /v1/candles
 * answers from memory while the database is down; the book over REST and
 * over WebSocket equals the published snapshot plus deltas (with the
 * continuity rule checked on every delta); book snapshots are persisted on
 * resync and periodically; a delta gap makes the query ask the ingest for a
 * snapshot; kill -9 of the query mid-stream loses nothing: the ingest
 * resends and every candle ends up in PostgreSQL once, with the right
 * values.
 *
 * Each test uses its own symbols, so they run in parallel on the shared
 * database. The outage test uses this executable's private cluster
 * (AB_PG_OUTAGE_DIR), which it starts, pauses, resumes and removes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/bus_client.h"
#include "common/decimal.h"
#include "common/err.h"
#include "common/interval.h"
#include "common/log.h"
#include "common/model.h"
#include "testlib.h"

#define MIN_MS 60000LL
#define T0     1699999980000LL /* a minute boundary */

/* ---- small helpers ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A private directory for the bus socket (short path: sun_path is 108 bytes). */
static void temp_dir(char *out, size_t cap)
{
    snprintf(out, cap, "/tmp/abfeed-XXXXXX");
    cr_assert_not_null(mkdtemp(out), "mkdtemp: %s", strerror(errno));
}

static void remove_dir(const char *dir)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/bus.sock", dir);
    unlink(p);
    rmdir(dir);
}

/* ---- the server under test ---- */

struct server {
    pid_t pid;
    int port, ws_port;
    int out_fd;
};

/* Starts abidance-query on free ports with the bus at bus_path. */
static struct server server_start(const char *url, const char *bus_path, const char *const *extra)
{
    char bus_arg[300];
    snprintf(bus_arg, sizeof(bus_arg), "--bus=%s", bus_path);
    const char *argv[40];
    int argc = 0;
    argv[argc++] = query_bin();
    argv[argc++] = "--http=127.0.0.1:0";
    argv[argc++] = "--ws=127.0.0.1:0";
    argv[argc++] = bus_arg;
    argv[argc++] = "--log-level=warn";
    argv[argc++] = "--db-timeout=1s";
    argv[argc++] = "--intervals=1m";
    for (size_t i = 0; extra && extra[i] && argc < 38; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        setenv("DATABASE_URL", url, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    struct server s = {.pid = pid, .out_fd = pipefd[0]};
    char buf[4096];
    size_t len = 0;
    int64_t deadline = mono_ms() + 20000;
    while ((s.port == 0 || s.ws_port == 0) && mono_ms() < deadline) {
        struct pollfd pfd = {.fd = s.out_fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t n = read(s.out_fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        const char *at = strstr(buf, "http://127.0.0.1:");
        if (at && strchr(at, ' '))
            s.port = parse_port(at + strlen("http://127.0.0.1:"));
        at = strstr(buf, "ws://127.0.0.1:");
        if (at && strchr(at, ' '))
            s.ws_port = parse_port(at + strlen("ws://127.0.0.1:"));
    }
    cr_assert(s.port > 0 && s.ws_port > 0,
              "abidance-query did not print its addresses; output:\n%.*s", (int)len, buf);
    return s;
}

/* SIGTERM; returns the exit status (0 for a clean stop). */
static int server_stop(struct server *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 300; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            close(s->out_fd);
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(50);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    close(s->out_fd);
    s->pid = 0;
    return -1;
}

static void server_kill9(struct server *s)
{
    kill(s->pid, SIGKILL);
    int status = 0;
    waitpid(s->pid, &status, 0);
    close(s->out_fd);
    s->pid = 0;
}

/* ---- a tiny blocking HTTP client ---- */

/* GET target; returns the status and the body (malloc'd) in *body. */
static int http_get(int port, const char *target, char **body)
{
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    cr_assert_not_null(buf);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            cr_assert_not_null(buf);
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &status), 1, "GET %s: bad response %.80s", target, buf);
    char *sep = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(sep);
    *body = strdup(sep + 4);
    free(buf);
    return status;
}

static json_t *get_json(int port, const char *target, int want)
{
    char *body = NULL;
    int status = http_get(port, target, &body);
    cr_assert_eq(status, want, "GET %s: %d, want %d: %.300s", target, status, want, body);
    json_t *j = json_loads(body, 0, NULL);
    cr_assert_not_null(j, "GET %s: not JSON: %.200s", target, body);
    free(body);
    return j;
}

/* The value of the sample `name` (with labels) in /metrics, or -1. */
static double metric(int port, const char *name)
{
    char *body = NULL;
    cr_assert_eq(http_get(port, "/metrics", &body), 200);
    double v = -1;
    size_t n = strlen(name);
    for (const char *line = body; line && *line;) {
        if (strncmp(line, name, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    free(body);
    return v;
}

/* Polls metric name until it is >= want; returns the last value. */
static double wait_metric(int port, const char *name, double want, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    double v = metric(port, name);
    while (v < want && mono_ms() < deadline) {
        sleep_ms(50);
        v = metric(port, name);
    }
    return v;
}

/* ---- PostgreSQL ---- */

static PGconn *pg_open(const char *url)
{
    PGconn *c = PQconnectdb(url);
    cr_assert(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

struct row {
    int64_t open_time;
    char close[64], volume[64];
    int64_t trades;
    bool closed;
    char origin[8];
};

/* Every stored 1m candle of sym, ascending; returns the count (<= cap). */
static size_t pg_candles(const char *url, const char *sym, struct row *out, size_t cap)
{
    PGconn *c = pg_open(url);
    const char *params[1] = {sym};
    PGresult *r = PQexecParams(c,
                               "SELECT (extract(epoch FROM \"timestamp\") * 1000)::bigint, "
                               "close::text, volume::text, num_trades, is_closed, origin "
                               "FROM candlesticks WHERE symbol = $1 AND timeframe = '1m' "
                               "ORDER BY \"timestamp\"",
                               1, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    size_t n = (size_t)PQntuples(r);
    for (size_t i = 0; i < n && i < cap; i++) {
        out[i].open_time = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        snprintf(out[i].close, sizeof(out[i].close), "%s", PQgetvalue(r, (int)i, 1));
        snprintf(out[i].volume, sizeof(out[i].volume), "%s", PQgetvalue(r, (int)i, 2));
        out[i].trades = strtoll(PQgetvalue(r, (int)i, 3), NULL, 10);
        out[i].closed = PQgetvalue(r, (int)i, 4)[0] == 't';
        snprintf(out[i].origin, sizeof(out[i].origin), "%s", PQgetvalue(r, (int)i, 5));
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

/* last_update_id of the newest persisted snapshot of sym, or -1. */
static int64_t pg_book_id(const char *url, const char *sym)
{
    PGconn *c = pg_open(url);
    const char *params[1] = {sym};
    PGresult *r = PQexecParams(c,
                               "SELECT last_update_id FROM book_snapshots WHERE symbol = $1 "
                               "ORDER BY taken_at DESC LIMIT 1",
                               1, NULL, params, NULL, NULL, 0);
    int64_t id = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return id;
}

/* Whether a persisted snapshot of sym has last_update_id id. */
static bool pg_book_has(const char *url, const char *sym, int64_t id)
{
    PGconn *c = pg_open(url);
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    const char *params[2] = {sym, ids};
    PGresult *r = PQexecParams(c,
                               "SELECT 1 FROM book_snapshots WHERE symbol = $1 AND "
                               "last_update_id = $2::bigint",
                               2, NULL, params, NULL, NULL, 0);
    bool found = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
    PQclear(r);
    PQfinish(c);
    return found;
}

/* ---- the ingest side ---- */

struct ingest {
    struct ab_bus_client *cl;
    pthread_mutex_t mu;
    char resync[64][AB_SYMBOL_MAX]; /* symbols the query asked to resync */
    size_t n_resync;
    atomic_int connects;
};

static void on_client_event(void *arg, const struct ab_bus_client_event *ev)
{
    struct ingest *in = arg;
    if (ev->type == AB_BUS_CLIENT_CONNECTED)
        atomic_fetch_add(&in->connects, 1);
    if (ev->type != AB_BUS_CLIENT_RESYNC)
        return;
    pthread_mutex_lock(&in->mu);
    if (in->n_resync < 64)
        snprintf(in->resync[in->n_resync++], AB_SYMBOL_MAX, "%s", ev->symbol);
    pthread_mutex_unlock(&in->mu);
}

static void ingest_start(struct ingest *in, const char *path)
{
    ab_log_init(AB_LOG_TEXT, AB_LOG_WARN);
    memset(in, 0, sizeof(*in));
    pthread_mutex_init(&in->mu, NULL);
    struct ab_bus_client_config cfg = {.path = path,
                                       .name = "test-ingest",
                                       .backoff_min_ms = 20,
                                       .backoff_max_ms = 200,
                                       .hello_timeout_ms = 3000,
                                       .on_event = on_client_event,
                                       .arg = in};
    cr_assert_eq(ab_bus_client_new(&cfg, &in->cl), 0);
    cr_assert_eq(ab_bus_client_start(in->cl), 0);
}

static void ingest_stop(struct ingest *in)
{
    ab_bus_client_free(in->cl);
    in->cl = NULL;
    pthread_mutex_destroy(&in->mu);
}

static struct ab_bus_client_stats ingest_stats(struct ingest *in)
{
    struct ab_bus_client_stats st;
    ab_bus_client_stats(in->cl, &st);
    return st;
}

/* How many resync requests (for sym or for every symbol) the ingest got. */
static size_t ingest_resyncs(struct ingest *in, const char *sym)
{
    size_t n = 0;
    pthread_mutex_lock(&in->mu);
    for (size_t i = 0; i < in->n_resync; i++)
        n += strcmp(in->resync[i], sym) == 0 || in->resync[i][0] == '\0';
    pthread_mutex_unlock(&in->mu);
    return n;
}

/* Waits for at least want resync requests for sym. */
static void wait_resyncs(struct ingest *in, const char *sym, size_t want)
{
    int64_t deadline = mono_ms() + 10000;
    while (ingest_resyncs(in, sym) < want && mono_ms() < deadline)
        sleep_ms(20);
    cr_assert_geq(ingest_resyncs(in, sym), want, "%s: %zu resync requests, want %zu", sym,
                  ingest_resyncs(in, sym), want);
}

/* Waits until every published frame is acknowledged. */
static bool wait_acked(struct ingest *in, int timeout_ms)
{
    return ab_bus_client_wait_acked(in->cl, timeout_ms) == 0;
}

static void wait_connected(struct ingest *in, int want_connects)
{
    int64_t deadline = mono_ms() + 10000;
    while ((atomic_load(&in->connects) < want_connects || !ingest_stats(in).connected) &&
           mono_ms() < deadline)
        sleep_ms(20);
    cr_assert(ingest_stats(in).connected, "the ingest did not connect to the bus");
}

/* Version v of the candle opening at open: close 100 + v, volume v + 1. */
static struct ab_candle candle(const char *sym, int64_t open, int v, bool closed)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "%s", sym);
    c.interval = AB_I_1M;
    c.open_time = open;
    c.close_time = open + MIN_MS - 1;
    c.open = ab_dec_from_units(100 * AB_DEC_SCALE);
    c.high = ab_dec_from_units(100000 * AB_DEC_SCALE);
    c.low = ab_dec_from_units(50 * AB_DEC_SCALE);
    c.close = ab_dec_from_units((100 + v) * AB_DEC_SCALE + 12345678);
    c.volume = ab_dec_from_units((int64_t)(v + 1) * AB_DEC_SCALE);
    c.quote_volume = ab_dec_from_units((int64_t)(v + 1) * 100 * AB_DEC_SCALE);
    c.taker_buy_volume = ab_dec_from_units((int64_t)(v + 1) * AB_DEC_SCALE / 2);
    c.taker_buy_quote_volume = ab_dec_from_units((int64_t)(v + 1) * 50 * AB_DEC_SCALE);
    c.num_trades = v;
    c.first_trade_id = -1;
    c.last_trade_id = -1;
    c.closed = closed;
    c.event_time = open + 1000 + v;
    return c;
}

static void publish(struct ingest *in, const struct ab_candle *c)
{
    cr_assert_eq(ab_bus_client_publish_candle(in->cl, c, AB_BUS_ORIGIN_WS, wall_us(), NULL), 0);
}

/* What each open time should hold in storage: the newest version sent. */
struct expect {
    int64_t open_time;
    int v;
    bool closed;
};

static void check_stored(const char *url, const char *sym, const struct expect *e, size_t n)
{
    struct row *rows = calloc(n + 16, sizeof(*rows));
    cr_assert_not_null(rows);
    size_t got = pg_candles(url, sym, rows, n + 16);
    cr_assert_eq(got, n, "%s: %zu rows stored, want %zu (once each)", sym, got, n);
    for (size_t i = 0; i < n; i++) {
        struct ab_candle c = candle(sym, e[i].open_time, e[i].v, e[i].closed);
        char close[AB_DEC_STR_MAX], volume[AB_DEC_STR_MAX];
        ab_dec_format(c.close, close);
        ab_dec_format(c.volume, volume);
        cr_assert_eq(rows[i].open_time, e[i].open_time, "%s row %zu", sym, i);
        cr_assert_str_eq(rows[i].close, close, "%s row %zu close", sym, i);
        cr_assert_str_eq(rows[i].volume, volume, "%s row %zu volume", sym, i);
        cr_assert_eq(rows[i].trades, e[i].v, "%s row %zu trades", sym, i);
        cr_assert_eq(rows[i].closed, e[i].closed, "%s row %zu closed", sym, i);
        cr_assert_str_eq(rows[i].origin, "ws");
    }
    free(rows);
}

/* ---- a minimal WebSocket client (after tests/integration/test_ws.c) ---- */

struct cli {
    int fd;
    unsigned char buf[1 << 16];
    size_t len;
    bool eof;
};

static bool cli_fill(struct cli *c, int timeout_ms)
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

static void cli_send_frame(struct cli *c, int opcode, const void *data, size_t n)
{
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[hl++] = (unsigned char)(0x80 | n);
    } else {
        cr_assert_lt(n, 65536);
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(n >> 8);
        h[hl++] = (unsigned char)n;
    }
    static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(h + hl, mask, 4);
    hl += 4;
    unsigned char *p = malloc(hl + n);
    cr_assert_not_null(p);
    memcpy(p, h, hl);
    for (size_t i = 0; i < n; i++)
        p[hl + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    cr_assert_eq(send(c->fd, p, hl + n, MSG_NOSIGNAL), (ssize_t)(hl + n));
    free(p);
}

static void cli_connect(struct cli *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     port);
    cr_assert_eq(send(c->fd, req, (size_t)n, MSG_NOSIGNAL), n);
    int64_t deadline = mono_ms() + 5000;
    for (;;) {
        unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t hl = (size_t)(end - c->buf) + 4;
            cr_assert(c->len >= 12 && memcmp(c->buf + 9, "101", 3) == 0, "no 101 upgrade");
            memmove(c->buf, c->buf + hl, c->len - hl);
            c->len -= hl;
            return;
        }
        cr_assert(mono_ms() < deadline && !c->eof, "WebSocket handshake timed out");
        cli_fill(c, 100);
    }
}

/* Next text message as JSON within timeout_ms (pings answered), or NULL. */
static json_t *cli_recv(struct cli *c, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        if (c->len >= 2) {
            int op = c->buf[0] & 0x0f;
            size_t n = c->buf[1] & 0x7f, hl = 2;
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
            cr_assert_leq(hl + n, sizeof(c->buf), "message too big for the test client");
            if (c->len < hl + n)
                goto more;
            json_t *j = NULL;
            if (op == 1) {
                j = json_loadb((const char *)c->buf + hl, n, 0, NULL);
                cr_assert_not_null(j, "server sent invalid JSON");
            } else if (op == 9) {
                cli_send_frame(c, 10, c->buf + hl, n);
            } else if (op == 8) {
                c->eof = true;
            }
            memmove(c->buf, c->buf + hl + n, c->len - hl - n);
            c->len -= hl + n;
            if (j)
                return j;
            if (c->eof)
                return NULL;
            continue;
        }
    more:
        if (c->eof)
            return NULL;
        int left = (int)(deadline - mono_ms());
        if (left <= 0)
            return NULL;
        cli_fill(c, left < 50 ? left : 50);
    }
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int64_t jint(json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

/* Subscribes to channel and consumes the "subscribed" reply; returns the snapshot. */
static json_t *cli_subscribe(struct cli *c, const char *channel)
{
    char req[256];
    snprintf(req, sizeof(req), "{\"op\":\"subscribe\",\"channels\":[\"%s\"],\"id\":1}", channel);
    cli_send_frame(c, 1, req, strlen(req));
    json_t *j = cli_recv(c, 5000);
    cr_assert_not_null(j, "no reply to subscribe");
    cr_assert_str_eq(jstr(j, "type"), "subscribed", "got %s", jstr(j, "type"));
    json_decref(j);
    j = cli_recv(c, 5000);
    cr_assert_not_null(j, "no snapshot");
    cr_assert_str_eq(jstr(j, "type"), "snapshot");
    cr_assert_str_eq(jstr(j, "channel"), channel);
    return j;
}

/* ---- a model order book: price units -> quantity units, per side ---- */

#define MODEL_MAX 512

struct side {
    int64_t price[MODEL_MAX], qty[MODEL_MAX];
    size_t n;
};

struct model {
    struct side bids, asks;
    uint64_t id;
};

static void side_set(struct side *s, int64_t price, int64_t qty)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->price[i] == price) {
            if (qty == 0) {
                s->price[i] = s->price[s->n - 1];
                s->qty[i] = s->qty[s->n - 1];
                s->n--;
            } else {
                s->qty[i] = qty;
            }
            return;
        }
    }
    if (qty == 0)
        return;
    cr_assert_lt(s->n, MODEL_MAX);
    s->price[s->n] = price;
    s->qty[s->n] = qty;
    s->n++;
}

/* Sorted copy: bids descending, asks ascending. */
static void side_sorted(const struct side *s, bool desc, struct side *out)
{
    *out = *s;
    for (size_t i = 1; i < out->n; i++)
        for (size_t j = i; j > 0; j--) {
            bool swap =
                desc ? out->price[j] > out->price[j - 1] : out->price[j] < out->price[j - 1];
            if (!swap)
                break;
            int64_t p = out->price[j], q = out->qty[j];
            out->price[j] = out->price[j - 1];
            out->qty[j] = out->qty[j - 1];
            out->price[j - 1] = p;
            out->qty[j - 1] = q;
        }
}

static int64_t units_of(const char *s)
{
    struct ab_dec d;
    cr_assert_eq(ab_dec_parse_cstr(s, &d), 0, "bad decimal %s", s);
    char canon[AB_DEC_STR_MAX];
    ab_dec_format(d, canon);
    cr_assert_lt(strlen(canon), 19, "%s does not fit the model", canon);
    /* Exact: the test's values have at most 8 fractional digits and fit int64 units. */
    int64_t units = 0;
    const char *p = canon;
    bool frac = false;
    int fd = 0;
    for (; *p; p++) {
        if (*p == '.') {
            frac = true;
            continue;
        }
        units = units * 10 + (*p - '0');
        if (frac)
            fd++;
    }
    for (; fd < 8; fd++)
        units *= 10;
    return units;
}

/* Compares a JSON levels array ([[price, qty], ...]) with the sorted model side. */
static void check_side(json_t *levels, const struct side *s, bool desc, const char *what)
{
    struct side sorted;
    side_sorted(s, desc, &sorted);
    cr_assert_eq(json_array_size(levels), sorted.n, "%s: %zu levels, want %zu", what,
                 json_array_size(levels), sorted.n);
    for (size_t i = 0; i < sorted.n; i++) {
        json_t *l = json_array_get(levels, i);
        cr_assert_eq(units_of(json_string_value(json_array_get(l, 0))), sorted.price[i],
                     "%s level %zu price", what, i);
        cr_assert_eq(units_of(json_string_value(json_array_get(l, 1))), sorted.qty[i],
                     "%s level %zu qty", what, i);
    }
}

/* Applies a JSON levels array to a model side. */
static void apply_levels(struct side *s, json_t *levels)
{
    for (size_t i = 0; i < json_array_size(levels); i++) {
        json_t *l = json_array_get(levels, i);
        side_set(s, units_of(json_string_value(json_array_get(l, 0))),
                 units_of(json_string_value(json_array_get(l, 1))));
    }
}

static struct ab_level lvl(int64_t price_units, int64_t qty_units)
{
    struct ab_level l = {ab_dec_from_units(price_units), ab_dec_from_units(qty_units)};
    return l;
}

/* ---- tests ---- */

Test(feed, candles_stored_acked_after_commit_and_streamed, .timeout = 90)
{
    char dir[64], bus[128];
    temp_dir(dir, sizeof(dir));
    snprintf(bus, sizeof(bus), "%s/bus.sock", dir);
    const char *args[] = {"--symbols=FEEDC", NULL};
    struct server s = server_start(db_url(), bus, args);

    struct cli ws;
    cli_connect(&ws, s.ws_port);
    json_t *snap = cli_subscribe(&ws, "candles:FEEDC:1m");
    cr_assert_eq(json_array_size(json_object_get(snap, "candles")), 0);
    json_decref(snap);

    struct ingest in;
    ingest_start(&in, bus);
    wait_connected(&in, 1);

    /* 10 candles, 3 updates each, the last one closing it: 30 frames. */
    enum { KEYS = 10, VERSIONS = 3 };
    struct expect e[KEYS];
    for (int k = 0; k < KEYS; k++) {
        for (int v = 0; v < VERSIONS; v++) {
            struct ab_candle c = candle("FEEDC", T0 + k * MIN_MS, k * 10 + v, v == VERSIONS - 1);
            publish(&in, &c);
        }
        e[k] = (struct expect){T0 + k * MIN_MS, k * 10 + VERSIONS - 1, true};
        /* A status frame between candles: done at once, so the candles'
         * bus tokens are not consecutive. */
        struct ab_bus_status st = {.book = AB_BUS_BOOK_SYNCING, .conn = AB_BUS_CONN_CONNECTED};
        snprintf(st.symbol, sizeof(st.symbol), "FEEDC");
        st.recv_us = wall_us();
        cr_assert_eq(ab_bus_client_publish_status(in.cl, &st, NULL), 0);
    }

    /* Acked means committed: at the moment the ingest's buffer is empty,
     * every candle is already in PostgreSQL with its newest values. */
    cr_assert(wait_acked(&in, 20000), "frames not acknowledged: unacked=%zu",
              ingest_stats(&in).unacked_frames);
    check_stored(db_url(), "FEEDC", e, KEYS);
    cr_assert_eq(ingest_stats(&in).acked_seq, KEYS * VERSIONS + KEYS);

    /* REST answers the same candles. */
    char target[256];
    snprintf(target, sizeof(target), "/v1/candles?symbol=FEEDC&interval=1m&start=%lld&limit=100",
             (long long)T0);
    json_t *j = get_json(s.port, target, 200);
    json_t *cs = json_object_get(j, "candles");
    cr_assert_eq(json_array_size(cs), KEYS);
    for (size_t k = 0; k < KEYS; k++) {
        json_t *c = json_array_get(cs, k);
        cr_assert_eq(jint(c, "open_time"), e[k].open_time);
        cr_assert_eq(jint(c, "num_trades"), e[k].v);
        cr_assert(json_is_true(json_object_get(c, "is_closed")));
    }
    json_decref(j);

    /* Every update reached the WebSocket subscriber, in order. */
    for (int k = 0; k < KEYS; k++) {
        for (int v = 0; v < VERSIONS; v++) {
            json_t *m = cli_recv(&ws, 5000);
            cr_assert_not_null(m, "update %d/%d missing", k, v);
            cr_assert_str_eq(jstr(m, "type"), "candle");
            cr_assert_eq(jint(m, "open_time"), T0 + k * MIN_MS);
            cr_assert_eq(jint(m, "num_trades"), k * 10 + v);
            json_decref(m);
        }
    }

    /* Metrics and /v1/symbols show the bus. */
    cr_assert_eq(metric(s.port, "abidance_bus_connected"), 1);
    cr_assert_eq(metric(s.port, "abidance_bus_frames_total{type=\"candle\"}"), KEYS * VERSIONS);
    cr_assert_eq(metric(s.port, "abidance_feed_candles_acked_total"), KEYS * VERSIONS);
    cr_assert_eq(metric(s.port, "abidance_feed_pending_candles"), 0);
    cr_assert_eq(metric(s.port, "abidance_bus_outstanding_frames"), 0);
    cr_assert_eq(metric(s.port, "abidance_ws_connections"), 1);
    j = get_json(s.port, "/v1/symbols", 200);
    json_t *ing = json_object_get(j, "ingest");
    cr_assert(json_is_true(json_object_get(ing, "connected")));
    cr_assert_str_eq(jstr(ing, "name"), "test-ingest");
    cr_assert_eq(jint(ing, "acked_seq"), KEYS * VERSIONS + KEYS);
    json_decref(j);

    ingest_stop(&in);
    close(ws.fd);
    /* The ingest went away: the bus says so. */
    int64_t deadline = mono_ms() + 5000;
    while (metric(s.port, "abidance_bus_connected") != 0 && mono_ms() < deadline)
        sleep_ms(50);
    j = get_json(s.port, "/v1/symbols", 200);
    cr_assert(json_is_false(json_object_get(json_object_get(j, "ingest"), "connected")));
    json_decref(j);
    /* Old candles are stale data; the reasons say the bus is why. */
    j = get_json(s.port, "/readyz", 503);
    json_t *reasons = json_object_get(j, "reasons");
    bool named = false;
    for (size_t i = 0; i < json_array_size(reasons); i++)
        named = named || strstr(json_string_value(json_array_get(reasons, i)),
                                "no ingest connected to the bus") != NULL;
    cr_assert(named, "readyz does not mention the missing ingest");
    json_decref(j);
    cr_assert_eq(server_stop(&s), 0);
    remove_dir(dir);
}

Test(feed, book_over_rest_and_websocket_and_persisted, .timeout = 90)
{
    const char *url = db_url();
    char dir[64], bus[128];
    temp_dir(dir, sizeof(dir));
    snprintf(bus, sizeof(bus), "%s/bus.sock", dir);
    const char *args[] = {"--symbols=FEEDB", "--book-persist-every=1s", NULL};
    struct server s = server_start(url, bus, args);

    struct cli ws;
    cli_connect(&ws, s.ws_port);
    json_t *snap = cli_subscribe(&ws, "book:FEEDB");
    json_decref(snap);

    struct ingest in;
    ingest_start(&in, bus);
    wait_connected(&in, 1);
    /* A query without the book asks for it as soon as the ingest connects. */
    wait_resyncs(&in, "FEEDB", 1);

    /* Snapshot at id 1000: 20 levels a side. */
    struct model want;
    memset(&want, 0, sizeof(want));
    struct ab_level bids[20], asks[20];
    for (int i = 0; i < 20; i++) {
        bids[i] = lvl((50000 - i) * AB_DEC_SCALE, (i + 1) * 1000000);
        asks[i] = lvl((50001 + i) * AB_DEC_SCALE, (i + 1) * 2000000);
        side_set(&want.bids, (50000 - i) * AB_DEC_SCALE, (i + 1) * 1000000);
        side_set(&want.asks, (50001 + i) * AB_DEC_SCALE, (i + 1) * 2000000);
    }
    struct ab_book_snapshot bs = {
        .last_update_id = 1000, .bids = bids, .asks = asks, .n_bids = 20, .n_asks = 20};
    snprintf(bs.symbol, sizeof(bs.symbol), "FEEDB");
    cr_assert_eq(ab_bus_client_publish_snapshot(in.cl, &bs, 0, wall_us(), NULL), 0);

    /* 40 deltas 1001..1040: change, remove and add levels on both sides. */
    uint64_t last = 1000;
    for (int k = 1; k <= 40; k++) {
        /* price, qty in units: change one level, add a new one, remove the
         * previous new one; the same on the ask side. */
        int64_t bu[3][2] = {
            {(50000 - (k % 25)) * AB_DEC_SCALE, (k % 7 == 0) ? 0 : (int64_t)k * 3000000 + 1},
            {(49970 - k) * AB_DEC_SCALE, 12345678},
            {(49970 - k + 1) * AB_DEC_SCALE, k > 1 ? 0 : 5},
        };
        int64_t au[2][2] = {
            {(50001 + (k % 30)) * AB_DEC_SCALE, (int64_t)k * 1000 + 7},
            {(50001 + ((k + 3) % 30)) * AB_DEC_SCALE, k % 5 == 0 ? 0 : 99},
        };
        struct ab_level db[3], da[2];
        for (int i = 0; i < 3; i++) {
            db[i] = lvl(bu[i][0], bu[i][1]);
            side_set(&want.bids, bu[i][0], bu[i][1]);
        }
        for (int i = 0; i < 2; i++) {
            da[i] = lvl(au[i][0], au[i][1]);
            side_set(&want.asks, au[i][0], au[i][1]);
        }
        struct ab_book_delta d = {.first_id = last + 1,
                                  .last_id = last + 1,
                                  .bids = db,
                                  .asks = da,
                                  .n_bids = 3,
                                  .n_asks = 2,
                                  .event_time = 1700000000000LL + k};
        snprintf(d.symbol, sizeof(d.symbol), "FEEDB");
        cr_assert_eq(ab_bus_client_publish_delta(in.cl, &d, last, wall_us(), NULL), 0);
        last++;
    }
    want.id = last;
    cr_assert(wait_acked(&in, 10000), "book frames are done once applied in memory");

    /* REST: the whole book equals the model. */
    json_t *j = NULL;
    int64_t deadline = mono_ms() + 5000;
    for (;;) {
        j = get_json(s.port, "/v1/book?symbol=FEEDB&depth=5000", 200);
        if (jint(j, "last_update_id") == (int64_t)want.id || mono_ms() > deadline)
            break;
        json_decref(j);
        sleep_ms(50);
    }
    cr_assert_eq(jint(j, "last_update_id"), (int64_t)want.id);
    cr_assert_str_eq(jstr(j, "state"), "live");
    check_side(json_object_get(j, "bids"), &want.bids, true, "REST bids");
    check_side(json_object_get(j, "asks"), &want.asks, false, "REST asks");
    json_decref(j);

    /* WebSocket: snapshot, then deltas that each continue the book. */
    struct model got;
    memset(&got, 0, sizeof(got));
    bool have = false;
    int deltas = 0;
    while (!(have && got.id == want.id)) {
        json_t *m = cli_recv(&ws, 5000);
        cr_assert_not_null(m, "stream stopped at id %llu", (unsigned long long)got.id);
        const char *type = jstr(m, "type");
        if (strcmp(type, "snapshot") == 0 && strcmp(jstr(m, "state"), "live") == 0) {
            memset(&got, 0, sizeof(got));
            apply_levels(&got.bids, json_object_get(m, "bids"));
            apply_levels(&got.asks, json_object_get(m, "asks"));
            got.id = (uint64_t)jint(m, "last_update_id");
            have = true;
        } else if (strcmp(type, "book_delta") == 0) {
            cr_assert(have, "a delta before any live snapshot");
            cr_assert_eq((uint64_t)jint(m, "prev_update_id"), got.id, "continuity broken");
            cr_assert_leq((uint64_t)jint(m, "first_update_id"), got.id + 1);
            cr_assert_geq((uint64_t)jint(m, "last_update_id"), got.id + 1);
            apply_levels(&got.bids, json_object_get(m, "bids"));
            apply_levels(&got.asks, json_object_get(m, "asks"));
            got.id = (uint64_t)jint(m, "last_update_id");
            deltas++;
        }
        json_decref(m);
    }
    cr_assert_eq(deltas, 40, "subscribed before the snapshot: every delta is streamed");
    struct side sb, sa;
    side_sorted(&got.bids, true, &sb);
    side_sorted(&got.asks, false, &sa);
    struct side wb, wa;
    side_sorted(&want.bids, true, &wb);
    side_sorted(&want.asks, false, &wa);
    cr_assert_eq(sb.n, wb.n);
    cr_assert_eq(sa.n, wa.n);
    cr_assert_arr_eq(sb.price, wb.price, sb.n * sizeof(int64_t));
    cr_assert_arr_eq(sb.qty, wb.qty, sb.n * sizeof(int64_t));
    cr_assert_arr_eq(sa.price, wa.price, sa.n * sizeof(int64_t));
    cr_assert_arr_eq(sa.qty, wa.qty, sa.n * sizeof(int64_t));

    /* Persisted: the snapshot on its arrival, the moved book periodically. */
    deadline = mono_ms() + 10000;
    while (!(pg_book_has(url, "FEEDB", 1000) && pg_book_id(url, "FEEDB") == (int64_t)want.id) &&
           mono_ms() < deadline)
        sleep_ms(100);
    cr_assert(pg_book_has(url, "FEEDB", 1000), "the resync snapshot was not persisted");
    cr_assert_eq(pg_book_id(url, "FEEDB"), (int64_t)want.id, "no periodic snapshot");
    cr_assert_geq(metric(s.port, "abidance_feed_book_snapshots_persisted_total{trigger="
                                 "\"periodic\"}"),
                  1);

    ingest_stop(&in);
    close(ws.fd);
    cr_assert_eq(server_stop(&s), 0);
    remove_dir(dir);
}

Test(feed, delta_gap_asks_the_ingest_for_a_snapshot, .timeout = 90)
{
    char dir[64], bus[128];
    temp_dir(dir, sizeof(dir));
    snprintf(bus, sizeof(bus), "%s/bus.sock", dir);
    const char *args[] = {"--symbols=FEEDG", NULL};
    struct server s = server_start(db_url(), bus, args);
    struct ingest in;
    ingest_start(&in, bus);
    wait_connected(&in, 1);
    wait_resyncs(&in, "FEEDG", 1); /* no book yet: asked at connect */

    struct ab_level b[1] = {lvl(100 * AB_DEC_SCALE, AB_DEC_SCALE)};
    struct ab_level a[1] = {lvl(101 * AB_DEC_SCALE, AB_DEC_SCALE)};
    struct ab_book_snapshot bs = {
        .last_update_id = 500, .bids = b, .asks = a, .n_bids = 1, .n_asks = 1};
    snprintf(bs.symbol, sizeof(bs.symbol), "FEEDG");
    cr_assert_eq(ab_bus_client_publish_snapshot(in.cl, &bs, 0, wall_us(), NULL), 0);
    struct ab_book_delta d = {.first_id = 501, .last_id = 501, .bids = b, .n_bids = 1};
    snprintf(d.symbol, sizeof(d.symbol), "FEEDG");
    cr_assert_eq(ab_bus_client_publish_delta(in.cl, &d, 500, wall_us(), NULL), 0);
    cr_assert(wait_acked(&in, 10000));
    json_t *j = get_json(s.port, "/v1/book?symbol=FEEDG", 200);
    cr_assert_str_eq(jstr(j, "state"), "live");
    cr_assert_eq(jint(j, "last_update_id"), 501);
    json_decref(j);
    size_t asked = ingest_resyncs(&in, "FEEDG");
    cr_assert_eq(asked, 1, "no resync while the book is whole");

    /* A gap: 510 does not continue 501. */
    d.first_id = 510;
    d.last_id = 511;
    cr_assert_eq(ab_bus_client_publish_delta(in.cl, &d, 509, wall_us(), NULL), 0);
    wait_resyncs(&in, "FEEDG", asked + 1);
    j = get_json(s.port, "/v1/book?symbol=FEEDG", 200);
    cr_assert_str_eq(jstr(j, "state"), "stale");
    json_decref(j);
    cr_assert_geq(metric(s.port, "abidance_feed_resync_requests_total"), 1);
    cr_assert_geq(metric(s.port, "abidance_bus_resyncs_sent_total"), 1);
    cr_assert_eq(metric(s.port, "abidance_live_book_gaps_total"), 1);

    /* The ingest now drops deltas until it sends a snapshot. */
    d.first_id = 512;
    d.last_id = 512;
    cr_assert_eq(ab_bus_client_publish_delta(in.cl, &d, 511, wall_us(), NULL), AB_EGAP);
    bs.last_update_id = 600;
    cr_assert_eq(ab_bus_client_publish_snapshot(in.cl, &bs, 0, wall_us(), NULL), 0);
    cr_assert(wait_acked(&in, 10000));
    j = get_json(s.port, "/v1/book?symbol=FEEDG", 200);
    cr_assert_str_eq(jstr(j, "state"), "live");
    cr_assert_eq(jint(j, "last_update_id"), 600);
    json_decref(j);

    /* The ingest's own status reaches the book state. */
    struct ab_bus_status st = {.book = AB_BUS_BOOK_RESYNCING, .conn = AB_BUS_CONN_CONNECTED};
    snprintf(st.symbol, sizeof(st.symbol), "FEEDG");
    snprintf(st.reason, sizeof(st.reason), "gap U=700 expected 650");
    st.recv_us = wall_us();
    cr_assert_eq(ab_bus_client_publish_status(in.cl, &st, NULL), 0);
    cr_assert(wait_acked(&in, 10000));
    j = get_json(s.port, "/v1/book?symbol=FEEDG", 200);
    cr_assert_str_eq(jstr(j, "state"), "resyncing");
    json_decref(j);
    cr_assert_eq(metric(s.port, "abidance_bus_frames_total{type=\"status\"}"), 1);

    ingest_stop(&in);
    cr_assert_eq(server_stop(&s), 0);
    remove_dir(dir);
}

/* ---- the outage test, on the private cluster ---- */

static int run_fixture(const char *cmd, const char *arg3)
{
    char line[1024];
    snprintf(line, sizeof(line), "%s %s %s %s >/dev/null 2>&1", AB_PG_FIXTURE, cmd,
             AB_PG_OUTAGE_DIR, arg3 ? arg3 : "");
    return system(line);
}

/* Polls until the server has delivered `frames` candle frames in total. */
static void wait_delivered(int port, double frames)
{
    double v = wait_metric(port, "abidance_bus_frames_total{type=\"candle\"}", frames, 10000);
    cr_assert_eq(v, frames, "delivered %g candle frames, want %g", v, frames);
}

Test(feed, outage_backpressure_and_kill9_lose_nothing, .timeout = 180)
{
    cr_assert_eq(run_fixture("start", AB_PG_OUTAGE_PORT), 0, "private cluster did not start");
    char url[512];
    snprintf(url, sizeof(url), "postgresql:///abidance_test?host=%s&port=%s&user=postgres",
             AB_PG_OUTAGE_DIR, AB_PG_OUTAGE_PORT);
    char dir[64], bus[128];
    temp_dir(dir, sizeof(dir));
    snprintf(bus, sizeof(bus), "%s/bus.sock", dir);
    /* A tiny storage queue and the smallest window, so both push back. */
    const char *args[] = {"--symbols=FEEDO", "--store-queue=16", "--bus-window=64", NULL};
    struct server s = server_start(url, bus, args);
    struct ingest in;
    ingest_start(&in, bus);
    wait_connected(&in, 1);

    enum { KEYS = 100 };
    struct expect e[KEYS];
    size_t n_keys = 0;
    double published = 0;

    /* A: 10 candles while the database is up (the schema may still be on
     * its way: acks wait for it). */
    for (int k = 0; k < 10; k++) {
        struct ab_candle c = candle("FEEDO", T0 + k * MIN_MS, k, true);
        publish(&in, &c);
        e[n_keys++] = (struct expect){c.open_time, k, true};
        published++;
    }
    cr_assert(wait_acked(&in, 20000), "A not acknowledged");
    check_stored(url, "FEEDO", e, n_keys);

    /* B: the database goes away; 80 new candles. Storage takes 16, holds
     * the rest back; the window (64 frames) stops the bus reading; nothing
     * is acknowledged. */
    cr_assert_eq(run_fixture("pause", NULL), 0);
    for (int k = 10; k < 90; k++) {
        struct ab_candle c = candle("FEEDO", T0 + k * MIN_MS, k, false);
        publish(&in, &c);
        e[n_keys++] = (struct expect){c.open_time, k, false};
        published++;
    }
    double stalls = wait_metric(s.port, "abidance_bus_window_stalls_total", 1, 10000);
    cr_assert_geq(stalls, 1, "the window never filled");
    cr_assert_eq(metric(s.port, "abidance_bus_outstanding_frames"), 64);
    cr_assert_geq(metric(s.port, "abidance_feed_store_full_total"), 1);
    cr_assert_gt(metric(s.port, "abidance_feed_retry_candles"), 0);
    int64_t hold = mono_ms() + 1500;
    while (mono_ms() < hold) {
        cr_assert_eq(ingest_stats(&in).unacked_frames, 80, "acknowledged before any commit");
        sleep_ms(100);
    }
    /* Memory answers what the database cannot: the 64 delivered candles. */
    char target[256];
    snprintf(target, sizeof(target), "/v1/candles?symbol=FEEDO&interval=1m&start=%lld&limit=64",
             (long long)(T0 + 10 * MIN_MS));
    json_t *j = get_json(s.port, target, 200);
    json_t *cs = json_object_get(j, "candles");
    cr_assert_eq(json_array_size(cs), 64);
    cr_assert_eq(jint(json_array_get(cs, 63), "open_time"), T0 + 73 * MIN_MS);
    cr_assert_eq(jint(json_array_get(cs, 63), "num_trades"), 73);
    json_decref(j);
    j = get_json(s.port, "/readyz", 503);
    json_decref(j);

    /* The database returns: everything is committed, then acknowledged. */
    cr_assert_eq(run_fixture("resume", NULL), 0);
    cr_assert(wait_acked(&in, 30000), "B not acknowledged after the database came back: %zu",
              ingest_stats(&in).unacked_frames);
    check_stored(url, "FEEDO", e, n_keys);
    cr_assert_eq(metric(s.port, "abidance_feed_retry_candles"), 0);
    cr_assert_eq(metric(s.port, "abidance_feed_untracked_total"), 0);

    /* C: down again; 5 updates of stored candles (closing them) and 10 new
     * ones reach the query, which is killed before it can commit them. */
    cr_assert_eq(run_fixture("pause", NULL), 0);
    for (int k = 80; k < 95; k++) {
        struct ab_candle c = candle("FEEDO", T0 + k * MIN_MS, 1000 + k, true);
        publish(&in, &c);
        if (k < 90)
            e[k] = (struct expect){c.open_time, 1000 + k, true};
        else
            e[n_keys++] = (struct expect){c.open_time, 1000 + k, true};
        published++;
    }
    wait_delivered(s.port, published);
    cr_assert_eq(ingest_stats(&in).unacked_frames, 15);
    server_kill9(&s);
    cr_assert_eq(run_fixture("resume", NULL), 0);

    /* A new query process on the same socket: the ingest resends C. */
    s = server_start(url, bus, args);
    wait_connected(&in, 2);
    cr_assert(wait_acked(&in, 30000), "C not acknowledged after the restart: %zu",
              ingest_stats(&in).unacked_frames);
    cr_assert_eq(metric(s.port, "abidance_bus_resent_frames_total"), 15);
    /* D: and new frames keep flowing. */
    for (int k = 95; k < 100; k++) {
        struct ab_candle c = candle("FEEDO", T0 + k * MIN_MS, 2000 + k, false);
        publish(&in, &c);
        e[n_keys++] = (struct expect){c.open_time, 2000 + k, false};
    }
    cr_assert(wait_acked(&in, 20000));
    cr_assert_eq(n_keys, KEYS);
    check_stored(url, "FEEDO", e, n_keys);
    /* The new process holds only the newest 20 in memory: the newest 100
     * come from storage merged with memory. */
    j = get_json(s.port, "/v1/candles?symbol=FEEDO&interval=1m&limit=100", 200);
    cs = json_object_get(j, "candles");
    cr_assert_eq(json_array_size(cs), KEYS);
    for (size_t k = 0; k < KEYS; k++) {
        json_t *c = json_array_get(cs, k);
        cr_assert_eq(jint(c, "open_time"), e[k].open_time);
        cr_assert_eq(jint(c, "num_trades"), e[k].v);
        cr_assert_eq(json_is_true(json_object_get(c, "is_closed")), e[k].closed);
    }
    json_decref(j);

    ingest_stop(&in);
    cr_assert_eq(server_stop(&s), 0);
    remove_dir(dir);
    run_fixture("stop", NULL);
}

/*
 * Integration tests of abidance-query's REST API: the real binary, started
 * on a free loopback port against the CTest PostgreSQL fixture
 * (DATABASE_URL), spoken to with a tiny blocking HTTP/1.1 client.
 *
 * Data is seeded through the storage library (store_put_candle /
 * store_put_book_snapshot, then store_flush), each test with its own symbols
 * so parallel tests never collide. The indicator tests seed the 500 recorded
 * python-binance 30m candles and compare every value with the pandas vectors
 * in tests/data/indicators/klines.csv to 1e-9 relative.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/decimal.h"
#include "common/err.h"
#include "common/interval.h"
#include "common/model.h"
#include "config.h"
#include "book_source.h"
#include "http.h"
#include "live.h"
#include "reply.h"
#include "store.h"
#include "ws.h"
#include "testlib.h"

#define KLINES_FILE \
    AB_SHARED_DATA "/binance/python-binance-c22c7de/klines_30m_2019-04-11_to_2019-04-21.json"
#define VECTORS_FILE AB_TEST_DATA "/indicators/klines.csv"
#define OPENAPI_FILE AB_TEST_DATA "/../../api/openapi.yaml"
#define KLINES_FIRST 1554991200000LL
#define KLINES_LAST  1555889400000LL
#define KLINES_N     500
#define STEP_30M     1800000LL

/* ---- small helpers ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the server under test ---- */

struct server {
    pid_t pid;
    int port;
    int ws_port; /* the stream's, from the banner */
    int out_fd;  /* its stdout */
};

/* Starts abidance-query --http 127.0.0.1:0 with url and extra args (NULL-
 * terminated) and waits for the banner that names its port. stderr goes to
 * the file log_path when not NULL. */
static struct server server_start_opts(const char *url, const char *const *extra,
                                       const char *log_path)
{
    const char *argv[40];
    int argc = 0;
    argv[argc++] = query_bin();
    argv[argc++] = "--http=127.0.0.1:0";
    argv[argc++] = "--log-level=warn";
    argv[argc++] = "--db-timeout=1s";
    for (size_t i = 0; extra && extra[i] && argc < 37; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;

    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* Dies with the test process, even when an assertion ends it early. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd >= 0) {
                dup2(fd, 2);
                close(fd);
            }
        }
        setenv("DATABASE_URL", url, 1);
        unsetenv("ABIDANCE_HTTP_ADDR");
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);

    struct server s = {.pid = pid, .port = 0, .out_fd = pipefd[0]};
    char buf[4096];
    size_t len = 0;
    int64_t deadline = now_ms() + 20000;
    while (s.port == 0 && now_ms() < deadline) {
        struct pollfd pfd = {.fd = s.out_fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t n = read(s.out_fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        const char *at = strstr(buf, "http://127.0.0.1:");
        const char *ws = strstr(buf, "ws://127.0.0.1:");
        if (at && strchr(at, ' ') && ws && strchr(ws, ' ')) {
            s.port = parse_port(at + strlen("http://127.0.0.1:"));
            s.ws_port = parse_port(ws + strlen("ws://127.0.0.1:"));
        }
    }
    cr_assert(s.port > 0, "abidance-query did not print its address; output:\n%.*s", (int)len, buf);
    return s;
}

static struct server server_start_url(const char *url, const char *const *extra)
{
    return server_start_opts(url, extra, NULL);
}

static struct server server_start(const char *const *extra)
{
    return server_start_url(db_url(), extra);
}

/* SIGTERM, then the exit status (must be a clean 0 within 10 s). */
static int server_stop(struct server *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; i++) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
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

/* ---- a tiny blocking HTTP/1.1 client ---- */

struct resp {
    int status;
    char head[8192]; /* status line and headers */
    char *body;      /* NUL-terminated, malloc'd */
    size_t len;
};

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* Value of header name (case-insensitive) into buf, or false. */
static bool resp_header(const struct resp *r, const char *name, char *buf, size_t cap)
{
    size_t nlen = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line) {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t vlen = end ? (size_t)(end - v) : strlen(v);
            snprintf(buf, cap, "%.*s", (int)vlen, v);
            return true;
        }
        line = strstr(line, "\r\n");
    }
    return false;
}

/* Sends raw bytes (a whole request) and reads the response until the server
 * closes the connection (requests say Connection: close). */
static struct resp http_raw(int port, const char *req, size_t req_len)
{
    struct resp r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    size_t off = 0;
    while (off < req_len) {
        ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer and close before reading it all */
        off += (size_t)n;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    cr_assert_not_null(buf);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            cr_assert_not_null(buf);
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    if (len == 0) {
        /* Closed without a word (only acceptable where the caller says so). */
        free(buf);
        r.body = calloc(1, 1);
        return r;
    }
    char *sep = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(sep, "no complete response head: %.200s", buf);
    size_t hlen = (size_t)(sep - buf);
    cr_assert_lt(hlen, sizeof(r.head));
    memcpy(r.head, buf, hlen);
    r.head[hlen] = '\0';
    cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &r.status), 1, "bad status line: %.80s", buf);
    r.len = len - hlen - 4;
    r.body = malloc(r.len + 1);
    cr_assert_not_null(r.body);
    memcpy(r.body, sep + 4, r.len);
    r.body[r.len] = '\0';
    free(buf);
    return r;
}

static struct resp http_req(int port, const char *method, const char *target)
{
    size_t cap = strlen(target) + 256;
    char *req = malloc(cap);
    cr_assert_not_null(req);
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                     method, target);
    struct resp r = http_raw(port, req, (size_t)n);
    free(req);
    cr_assert_neq(r.status, 0, "%s %.100s: connection closed without a response", method, target);
    return r;
}

static struct resp http_get(int port, const char *target)
{
    return http_req(port, "GET", target);
}

/* GET target, expect status and a JSON body; returns the parsed body. */
static json_t *get_json(int port, const char *target, int status)
{
    struct resp r = http_get(port, target);
    cr_assert_eq(r.status, status, "GET %.200s: status %d, want %d; body %.300s", target, r.status,
                 status, r.body);
    char ctype[128];
    cr_assert(resp_header(&r, "Content-Type", ctype, sizeof(ctype)));
    cr_assert_str_eq(ctype, "application/json", "GET %s", target);
    json_error_t err;
    json_t *j = json_loadb(r.body, r.len, 0, &err);
    cr_assert_not_null(j, "GET %s: not JSON (%s): %.200s", target, err.text, r.body);
    resp_free(&r);
    return j;
}

/* GET target, expect the error shape with code (and its documented status);
 * the message must mention `mention` when not NULL. */
static void expect_error(int port, const char *target, const char *code, const char *mention)
{
    unsigned status = 0;
    for (int i = 0; i < API_CODE_COUNT; i++)
        if (strcmp(api_codes[i].name, code) == 0)
            status = api_codes[i].status;
    cr_assert(status != 0, "unknown code %s", code);
    json_t *j = get_json(port, target, (int)status);
    const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    cr_assert_not_null(got, "GET %s: no error.code", target);
    cr_assert_str_eq(got, code, "GET %s: %s", target, msg ? msg : "");
    cr_assert(msg && *msg, "GET %s: empty message", target);
    cr_assert_eq(json_object_size(j), 1);
    cr_assert_eq(json_object_size(json_object_get(j, "error")), 2);
    if (mention)
        cr_assert_not_null(strstr(msg, mention), "GET %s: message \"%s\" does not mention %s",
                           target, msg, mention);
    json_decref(j);
}

/* ---- seeding ---- */

static struct store *open_store(void)
{
    struct store_config cfg = {.database_url = db_url()};
    struct store *st = NULL;
    cr_assert_eq(store_new(&cfg, &st), 0);
    cr_assert_eq(store_start(st), 0);
    return st;
}

static void close_store(struct store *st)
{
    cr_assert_eq(store_flush(st, 30000), 0, "seeding did not commit");
    store_stop(st, 5000);
    store_free(st);
}

static struct ab_dec D(const char *s) {
    struct ab_dec d;
    cr_assert_eq(ab_dec_parse_cstr(s, &d), 0, "bad decimal %s", s);
    return d;
}

/* The recorded klines, as the JSON array of arrays (new reference). */
static json_t *
load_klines(void)
{
    json_error_t err;
    json_t *rows = json_load_file(KLINES_FILE, 0, &err);
    cr_assert_not_null(rows, "%s: %s (recorded data missing?)", KLINES_FILE, err.text);
    cr_assert_eq(json_array_size(rows), KLINES_N);
    return rows;
}

static struct ab_candle kline_candle(json_t *row, const char *symbol)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "%s", symbol);
    c.interval = AB_I_30M;
    c.open_time = json_integer_value(json_array_get(row, 0));
    c.open = D(json_string_value(json_array_get(row, 1)));
    c.high = D(json_string_value(json_array_get(row, 2)));
    c.low = D(json_string_value(json_array_get(row, 3)));
    c.close = D(json_string_value(json_array_get(row, 4)));
    c.volume = D(json_string_value(json_array_get(row, 5)));
    c.close_time = json_integer_value(json_array_get(row, 6));
    c.quote_volume = D(json_string_value(json_array_get(row, 7)));
    c.num_trades = json_integer_value(json_array_get(row, 8));
    c.taker_buy_volume = D(json_string_value(json_array_get(row, 9)));
    c.taker_buy_quote_volume = D(json_string_value(json_array_get(row, 10)));
    c.first_trade_id = c.last_trade_id = -1;
    c.closed = true;
    return c;
}

/* Stores the 500 recorded 30m candles under symbol (idempotent upserts). */
static void seed_klines(const char *symbol)
{
    json_t *rows = load_klines();
    struct store *st = open_store();
    for (size_t i = 0; i < json_array_size(rows); i++) {
        struct ab_candle c = kline_candle(json_array_get(rows, i), symbol);
        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_REST, i + 1), 0, "candle %zu", i);
    }
    close_store(st);
    json_decref(rows);
}

/* ---- the pandas reference vectors ---- */

#define VEC_MAX_COLS 64

struct vectors {
    char names[VEC_MAX_COLS][48];
    size_t n_cols;
    double v[VEC_MAX_COLS][KLINES_N];
};

static struct vectors *load_vectors(void)
{
    struct vectors *vec = calloc(1, sizeof(*vec));
    cr_assert_not_null(vec);
    FILE *f = fopen(VECTORS_FILE, "r");
    cr_assert_not_null(f, "%s missing (tests/data/make_indicator_vectors.py makes it)",
                       VECTORS_FILE);
    static char line[1 << 16];
    cr_assert_not_null(fgets(line, sizeof(line), f));
    line[strcspn(line, "\r\n")] = '\0';
    for (char *save = NULL, *tok = strtok_r(line, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        cr_assert_lt(vec->n_cols, VEC_MAX_COLS);
        snprintf(vec->names[vec->n_cols++], sizeof(vec->names[0]), "%s", tok);
    }
    size_t row = 0;
    while (fgets(line, sizeof(line), f)) {
        cr_assert_lt(row, KLINES_N);
        size_t col = 0;
        for (char *save = NULL, *tok = strtok_r(line, ",\r\n", &save); tok;
             tok = strtok_r(NULL, ",\r\n", &save))
            vec->v[col++][row] = strcmp(tok, "nan") == 0 ? NAN : strtod(tok, NULL);
        cr_assert_eq(col, vec->n_cols, "row %zu has %zu columns", row, col);
        row++;
    }
    fclose(f);
    cr_assert_eq(row, KLINES_N);
    return vec;
}

static const double *vector(const struct vectors *vec, const char *name)
{
    for (size_t i = 0; i < vec->n_cols; i++)
        if (strcmp(vec->names[i], name) == 0)
            return vec->v[i];
    cr_assert_fail("no column %s in %s", name, VECTORS_FILE);
    return NULL;
}

/* Both undefined (null / NaN), or equal to 1e-9 relative. */
static void expect_close(json_t *got, double want, double tol, const char *what, size_t i)
{
    if (isnan(want)) {
        cr_assert(json_is_null(got), "%s[%zu]: want null", what, i);
        return;
    }
    cr_assert(json_is_number(got), "%s[%zu]: want %.17g, got %s", what, i, want,
              json_is_null(got) ? "null" : "non-number");
    double g = json_number_value(got);
    double err = fabs(g - want) / fmax(fabs(want), 1e-300);
    if (want == 0.0)
        err = fabs(g);
    cr_assert(err <= tol, "%s[%zu]: got %.17g want %.17g (rel err %.3g)", what, i, g, want, err);
}

/* Compares the `field` of every entry of values with ref[from..from+n). */
static void expect_series(json_t *values, const char *field, const double *ref, size_t from,
                          size_t n, double tol, const char *what)
{
    cr_assert_eq(json_array_size(values), n, "%s: %zu values, want %zu", what,
                 json_array_size(values), n);
    for (size_t i = 0; i < n; i++) {
        json_t *pt = json_array_get(values, i);
        cr_assert_eq(json_integer_value(json_object_get(pt, "open_time")),
                     KLINES_FIRST + (int64_t)(from + i) * STEP_30M, "%s[%zu] open_time", what, i);
        expect_close(json_object_get(pt, field), ref[from + i], tol, what, i);
    }
}

/* ---- tests: candles ---- */

Test(rest, healthz_and_graceful_stop)
{
    struct server s = server_start(NULL);
    json_t *j = get_json(s.port, "/healthz", 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    struct resp r = http_req(s.port, "HEAD", "/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0, "HEAD has no body");
    resp_free(&r);
    cr_assert_eq(server_stop(&s), 0, "SIGTERM must stop the service cleanly");
}

Test(rest, candles_are_exact_and_ascending)
{
    seed_klines("RESTCANDLE");
    json_t *rows = load_klines();
    struct server s = server_start(NULL);

    json_t *j = get_json(s.port, "/v1/candles?symbol=RESTCANDLE&interval=30m&limit=5000", 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "symbol")), "RESTCANDLE");
    cr_assert_str_eq(json_string_value(json_object_get(j, "interval")), "30m");
    json_t *cs = json_object_get(j, "candles");
    cr_assert_eq(json_array_size(cs), KLINES_N);
    static const char *const fields[] = {"open",
                                         "high",
                                         "low",
                                         "close",
                                         "volume",
                                         "quote_volume",
                                         "taker_buy_volume",
                                         "taker_buy_quote_volume"};
    static const int source_idx[] = {1, 2, 3, 4, 5, 7, 9, 10};
    for (size_t i = 0; i < KLINES_N; i++) {
        json_t *c = json_array_get(cs, i), *row = json_array_get(rows, i);
        cr_assert_eq(json_integer_value(json_object_get(c, "open_time")),
                     json_integer_value(json_array_get(row, 0)));
        cr_assert_eq(json_integer_value(json_object_get(c, "close_time")),
                     json_integer_value(json_array_get(row, 6)));
        cr_assert_eq(json_integer_value(json_object_get(c, "num_trades")),
                     json_integer_value(json_array_get(row, 8)));
        cr_assert(json_is_true(json_object_get(c, "is_closed")));
        for (size_t f = 0; f < 8; f++) {
            /* Exact: the canonical form of the recorded decimal string. */
            char want[AB_DEC_STR_MAX];
            ab_dec_format(D(json_string_value(json_array_get(row, source_idx[f]))), want);
            const char *got = json_string_value(json_object_get(c, fields[f]));
            cr_assert_not_null(got, "candle %zu %s is not a string", i, fields[f]);
            cr_assert_str_eq(got, want, "candle %zu %s", i, fields[f]);
        }
    }
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 0), "open")), "4986.23");
    json_decref(j);

    /* Default limit 500; no range: the newest, ascending. */
    j = get_json(s.port, "/v1/candles?symbol=RESTCANDLE&interval=30m&limit=3", 200);
    cs = json_object_get(j, "candles");
    cr_assert_eq(json_array_size(cs), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(cs, i), "open_time")),
                     KLINES_LAST - (2 - i) * STEP_30M);
    json_decref(j);
    j = get_json(s.port, "/v1/candles?symbol=RESTCANDLE&interval=30m", 200);
    cr_assert_eq(json_array_size(json_object_get(j, "candles")), 500);
    json_decref(j);

    /* start only: the first `limit` from start. */
    j = get_json(s.port, "/v1/candles?symbol=RESTCANDLE&interval=30m&start=1554994800000&limit=2",
                 200);
    cs = json_object_get(j, "candles");
    cr_assert_eq(json_array_size(cs), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(cs, 0), "open_time")),
                 1554994800000LL);
    json_decref(j);

    /* end only: the newest `limit` up to end. */
    j = get_json(s.port, "/v1/candles?symbol=RESTCANDLE&interval=30m&end=1554994800000&limit=2",
                 200);
    cs = json_object_get(j, "candles");
    cr_assert_eq(json_array_size(cs), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(cs, 0), "open_time")),
                 1554993000000LL);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(cs, 1), "open_time")),
                 1554994800000LL);
    json_decref(j);

    /* RFC 3339 in every accepted spelling: the same three candles. */
    static const char *const ranges[] = {
        "start=2019-04-11T14:00:00Z&end=2019-04-11T15:00:00Z",
        "start=2019-04-11T16:00:00%2B02:00&end=2019-04-11T15:00:00.000Z",
        "start=2019-04-11T16:00:00+02:00&end=2019-04-11t15:00:00.999999z",
        "start=2019-04-11T09:00:00-05:00&end=1554994800000",
        "start=2019-04-11%2014:00:00Z&end=2019-04-11T15:29:59.999Z",
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        char target[256];
        snprintf(target, sizeof(target), "/v1/candles?symbol=RESTCANDLE&interval=30m&%s",
                 ranges[i]);
        j = get_json(s.port, target, 200);
        cs = json_object_get(j, "candles");
        cr_assert_eq(json_array_size(cs), 3, "%s", ranges[i]);
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(cs, 0), "open_time")),
                     KLINES_FIRST, "%s", ranges[i]);
        json_decref(j);
    }
    /* A bare date is midnight UTC. */
    j = get_json(s.port, "/v1/candles?symbol=RESTCANDLE&interval=30m&start=2019-04-12&limit=1",
                 200);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(j, "candles"), 0), "open_time")),
                 1555027200000LL);
    json_decref(j);

    /* The edges of the accepted time range are fine. */
    static const char *const edges[] = {
        "/v1/candles?symbol=RESTCANDLE&interval=30m&start=9999-12-31T23:59:59.999Z",
        "/v1/candles?symbol=RESTCANDLE&interval=1M&end=0",
        "/v1/candles?symbol=RESTCANDLE&interval=1s&start=0&end=0",
        "/v1/indicators/ema?symbol=RESTCANDLE&interval=30m&period=1000&start=253402300799999",
        "/v1/indicators/macd?symbol=RESTCANDLE&interval=30m&fast=999&slow=1000&signal=1000&end=1",
    };
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        j = get_json(s.port, edges[i], 200);
        json_t *list = json_object_get(j, "candles");
        if (!list)
            list = json_object_get(j, "values");
        cr_assert_eq(json_array_size(list), 0, "%s", edges[i]);
        json_decref(j);
    }

    /* Unknown symbol or other interval: empty, not an error. */
    j = get_json(s.port, "/v1/candles?symbol=RESTNOTHING&interval=30m", 200);
    cr_assert_eq(json_array_size(json_object_get(j, "candles")), 0);
    json_decref(j);
    j = get_json(s.port, "/v1/candles?symbol=RESTCANDLE&interval=1h", 200);
    cr_assert_eq(json_array_size(json_object_get(j, "candles")), 0);
    json_decref(j);

    json_decref(rows);
    cr_assert_eq(server_stop(&s), 0);
}

Test(rest, candles_clean_and_normalize)
{
    seed_klines("RESTNORM");
    struct vectors *vec = load_vectors();
    struct server s = server_start(NULL);

    json_t *j = get_json(s.port,
                         "/v1/candles?symbol=RESTNORM&interval=30m&limit=500&normalize=minmax"
                         "&columns=close,volume",
                         200);
    json_t *cs = json_object_get(j, "candles");
    cr_assert_str_eq(json_string_value(json_object_get(j, "normalize")), "minmax");
    cr_assert_eq(json_array_size(json_object_get(j, "columns")), 2);
    expect_series(cs, "close", vector(vec, "minmax_close"), 0, KLINES_N, 1e-9, "minmax close");
    expect_series(cs, "volume", vector(vec, "minmax_volume"), 0, KLINES_N, 1e-9, "minmax volume");
    /* Columns not normalised are numbers with the raw value. */
    expect_series(cs, "open", vector(vec, "open"), 0, KLINES_N, 1e-15, "raw open");
    json_decref(j);

    j = get_json(s.port,
                 "/v1/candles?symbol=RESTNORM&interval=30m&limit=500&normalize=zscore"
                 "&columns=volume,close",
                 200);
    cs = json_object_get(j, "candles");
    expect_series(cs, "close", vector(vec, "zscore_close"), 0, KLINES_N, 1e-9, "zscore close");
    expect_series(cs, "volume", vector(vec, "zscore_volume"), 0, KLINES_N, 1e-9, "zscore volume");
    json_decref(j);

    /* normalize without columns: open, high, low, close, volume. */
    j = get_json(s.port, "/v1/candles?symbol=RESTNORM&interval=30m&normalize=minmax", 200);
    cr_assert_eq(json_array_size(json_object_get(j, "columns")), 5);
    expect_series(json_object_get(j, "candles"), "close", vector(vec, "minmax_close"), 0, KLINES_N,
                  1e-9, "default columns close");
    json_decref(j);

    /* clean: numbers; this real series has no outlier by the robust rule
     * except what the processor reports, and no missing values. */
    j = get_json(s.port, "/v1/candles?symbol=RESTNORM&interval=30m&clean=true", 200);
    cs = json_object_get(j, "candles");
    json_t *clean = json_object_get(j, "clean");
    cr_assert(json_is_object(clean));
    json_int_t replaced = json_integer_value(json_object_get(clean, "outliers_replaced"));
    cr_assert_geq(replaced, 0);
    size_t differ = 0;
    for (size_t i = 0; i < KLINES_N; i++) {
        json_t *c = json_array_get(cs, i);
        cr_assert(json_is_number(json_object_get(c, "close")));
        cr_assert(json_is_number(json_object_get(c, "volume")));
        expect_close(json_object_get(c, "volume"), vector(vec, "volume")[i], 1e-15, "volume", i);
        static const char *const px[] = {"open", "high", "low", "close"};
        for (int k = 0; k < 4; k++)
            differ += json_number_value(json_object_get(c, px[k])) != vector(vec, px[k])[i];
    }
    cr_assert_eq((json_int_t)differ, replaced, "values changed must be the ones reported");
    json_decref(j);

    free(vec);
    cr_assert_eq(server_stop(&s), 0);
}

/* ---- tests: indicators ---- */

struct ind_case {
    const char *query; /* after /v1/indicators/ */
    const char *field;
    const char *column; /* in klines.csv */
};

Test(rest, indicators_match_pandas_vectors)
{
    seed_klines("RESTIND");
    struct vectors *vec = load_vectors();
    struct server s = server_start(NULL);

    static const struct ind_case cases[] = {
        {"sma?period=1", "value", "sma_1"},
        {"sma?period=2", "value", "sma_2"},
        {"sma?period=5", "value", "sma_5"},
        {"sma?period=14", "value", "sma_14"},
        {"sma", "value", "sma_20"},
        {"sma?period=50&source=close", "value", "sma_50"},
        {"ema?period=1", "value", "ema_1"},
        {"ema?period=2", "value", "ema_2"},
        {"ema?period=5", "value", "ema_5"},
        {"ema?period=14", "value", "ema_14"},
        {"ema?period=20", "value", "ema_20"},
        {"ema?period=50", "value", "ema_50"},
        {"wma?period=1", "value", "wma_1"},
        {"wma?period=2", "value", "wma_2"},
        {"wma?period=5", "value", "wma_5"},
        {"wma?period=14", "value", "wma_14"},
        {"wma?period=20", "value", "wma_20"},
        {"wma?period=50", "value", "wma_50"},
        {"rsi?period=2", "value", "rsi_simple_2"},
        {"rsi", "value", "rsi_simple_14"},
        {"rsi?period=14&smoothing=sma", "value", "rsi_simple_14"},
        {"rsi?period=2&smoothing=wilder", "value", "rsi_wilder_2"},
        {"rsi?period=14&smoothing=wilder", "value", "rsi_wilder_14"},
        {"macd", "macd", "macd_12_26_9"},
        {"macd?fast=12&slow=26&signal=9", "signal", "macdsig_12_26_9"},
        {"macd", "histogram", "macdhist_12_26_9"},
        {"macd?fast=5&slow=35&signal=5", "macd", "macd_5_35_5"},
        {"macd?fast=5&slow=35&signal=5", "signal", "macdsig_5_35_5"},
        {"macd?fast=5&slow=35&signal=5", "histogram", "macdhist_5_35_5"},
        {"bbands", "upper", "bbup_20_2"},
        {"bbands?period=20&k=2", "middle", "bbmid_20_2"},
        {"bbands?k=2.0", "lower", "bblow_20_2"},
        {"atr", "value", "atr_14"},
        {"atr?period=14", "value", "atr_14"},
        {"vwap", "value", "vwap_20"},
        {"vwap?period=20", "value", "vwap_20"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char target[256];
        bool has_q = strchr(cases[i].query, '?') != NULL;
        snprintf(target, sizeof(target),
                 "/v1/indicators/%s%ssymbol=RESTIND&interval=30m&start=%lld&limit=500",
                 cases[i].query, has_q ? "&" : "?", (long long)KLINES_FIRST);
        json_t *j = get_json(s.port, target, 200);
        cr_assert_eq(json_integer_value(json_object_get(j, "warmup")), 0, "%s", target);
        cr_assert(json_is_object(json_object_get(j, "params")));
        expect_series(json_object_get(j, "values"), cases[i].field, vector(vec, cases[i].column), 0,
                      KLINES_N, 1e-9, target);
        json_decref(j);
    }

    /* source=open feeds the open prices (sma over open, checked by hand). */
    json_t *j = get_json(s.port,
                         "/v1/indicators/sma?symbol=RESTIND&interval=30m&period=2&source=open"
                         "&start=1554991200000&limit=3",
                         200);
    const double *open = vector(vec, "open");
    json_t *v = json_object_get(j, "values");
    cr_assert(json_is_null(json_object_get(json_array_get(v, 0), "value")));
    expect_close(json_object_get(json_array_get(v, 1), "value"), (open[0] + open[1]) / 2, 1e-12,
                 "sma open", 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "params"), "source")),
                     "open");
    json_decref(j);

    free(vec);
    cr_assert_eq(server_stop(&s), 0);
}

Test(rest, indicator_warmup_reads_history_before_the_window)
{
    seed_klines("RESTWARM");
    struct vectors *vec = load_vectors();
    struct server s = server_start(NULL);
    char target[256];

    /* Finite window: exactly period - 1 candles before, values exact. */
    int64_t start = KLINES_FIRST + 100 * STEP_30M;
    snprintf(target, sizeof(target),
             "/v1/indicators/sma?symbol=RESTWARM&interval=30m&period=20&start=%lld&limit=50",
             (long long)start);
    json_t *j = get_json(s.port, target, 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "warmup")), 19);
    expect_series(json_object_get(j, "values"), "value", vector(vec, "sma_20"), 100, 50, 1e-9,
                  "sma warm");
    json_decref(j);

    /* Recursive: ema 14 needs ceil(ln 1e-9 / ln(13/15)) = 145 candles. */
    start = KLINES_FIRST + 300 * STEP_30M;
    snprintf(target, sizeof(target),
             "/v1/indicators/ema?symbol=RESTWARM&interval=30m&period=14&start=%lld&limit=100",
             (long long)start);
    j = get_json(s.port, target, 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "warmup")), 145);
    expect_series(json_object_get(j, "values"), "value", vector(vec, "ema_14"), 300, 100, 1e-9,
                  "ema warm");
    json_decref(j);

    /* Wilder RSI 14: 14 + ceil(ln 1e-9 / ln(13/14)) = 14 + 280 candles. */
    start = KLINES_FIRST + 400 * STEP_30M;
    snprintf(target, sizeof(target),
             "/v1/indicators/rsi?symbol=RESTWARM&interval=30m&period=14&smoothing=wilder"
             "&start=%lld&limit=100",
             (long long)start);
    j = get_json(s.port, target, 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "warmup")), 294);
    expect_series(json_object_get(j, "values"), "value", vector(vec, "rsi_wilder_14"), 400, 100,
                  1e-9, "rsi wilder warm");
    json_decref(j);

    /* Without a range: the newest `limit`, warmed up from before them. */
    j = get_json(s.port, "/v1/indicators/wma?symbol=RESTWARM&interval=30m&period=50&limit=10", 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "warmup")), 49);
    expect_series(json_object_get(j, "values"), "value", vector(vec, "wma_50"), 490, 10, 1e-9,
                  "wma newest");
    json_decref(j);

    /* Less history than the warm-up wants: what exists is used, and the
     * undefined head is null (sma 50 from the 10th candle). */
    snprintf(target, sizeof(target),
             "/v1/indicators/sma?symbol=RESTWARM&interval=30m&period=50&start=%lld&limit=60",
             (long long)(KLINES_FIRST + 10 * STEP_30M));
    j = get_json(s.port, target, 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "warmup")), 10);
    expect_series(json_object_get(j, "values"), "value", vector(vec, "sma_50"), 10, 60, 1e-9,
                  "sma partial warm");
    json_decref(j);

    free(vec);
    cr_assert_eq(server_stop(&s), 0);
}

/* ---- tests: bad input ---- */

Test(rest, bad_candle_requests_are_400s_that_name_the_problem)
{
    struct server s = server_start(NULL);
    const char *base = "/v1/candles?interval=1m&symbol=";
    char t[512];

    expect_error(s.port, "/v1/candles?interval=1m", "missing_parameter", "symbol");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=", "missing_parameter", "symbol");
    expect_error(s.port, "/v1/candles?symbol=BTCUSDT", "missing_parameter", "interval");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=btcusdt", "invalid_parameter", "symbol");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTC-USDT", "invalid_parameter", "symbol");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTC%20USDT", "invalid_parameter",
                 "symbol");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                 "invalid_parameter", "symbol");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTC%00USDT", "invalid_parameter", "NUL");
    expect_error(s.port, "/v1/candles?symbol=BTCUSDT&interval=2m", "invalid_parameter", "interval");
    expect_error(s.port, "/v1/candles?symbol=BTCUSDT&interval=1H", "invalid_parameter", "interval");
    static const char *const limits[] = {
        "0", "5001", "-1", "abc", "1.5", "", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        snprintf(t, sizeof(t), "%sBTCUSDT&limit=%s", base, limits[i]);
        expect_error(s.port, t, "invalid_parameter", "limit");
    }
    static const char *const times[] = {"yesterday",
                                        "2019-13-01T00:00:00Z",
                                        "2019-02-29T00:00:00Z",
                                        "2019-04-11T24:00:00Z",
                                        "2019-04-11T14:00:00",
                                        "2019-04-11T14:00Z",
                                        "2019-04-11T14:00:00.Z",
                                        "2019-04-11T14:00:00%2B25:00",
                                        "-1",
                                        "1e12",
                                        "99999999999999999",
                                        "10000-01-01T00:00:00Z",
                                        "1969-12-31T23:59:59Z",
                                        ""};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        snprintf(t, sizeof(t), "%sBTCUSDT&start=%s", base, times[i]);
        expect_error(s.port, t, "invalid_parameter", "start");
        snprintf(t, sizeof(t), "%sBTCUSDT&end=%s", base, times[i]);
        expect_error(s.port, t, "invalid_parameter", "end");
    }
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTCUSDT&start=2000&end=1000",
                 "invalid_range", "start");
    expect_error(s.port,
                 "/v1/candles?interval=1m&symbol=BTCUSDT&start=2019-04-12&end=2019-04-11T23:59:59Z",
                 "invalid_range", "after");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTCUSDT&sort=desc", "unknown_parameter",
                 "sort");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTCUSDT&symbol=ETHUSDT",
                 "invalid_parameter", "twice");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTCUSDT&clean=maybe", "invalid_parameter",
                 "clean");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTCUSDT&normalize=log",
                 "invalid_parameter", "normalize");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTCUSDT&columns=close",
                 "invalid_parameter", "columns");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTCUSDT&normalize=minmax&columns=vol",
                 "invalid_parameter", "columns");
    expect_error(s.port,
                 "/v1/candles?interval=1m&symbol=BTCUSDT&normalize=minmax&columns=close,close",
                 "invalid_parameter", "twice");
    expect_error(s.port, "/v1/candles?interval=1m&symbol=BTCUSDT&normalize=minmax&columns=",
                 "invalid_parameter", "columns");
    /* More parameters than the cap. */
    size_t used = (size_t)snprintf(t, sizeof(t), "/v1/candles?interval=1m&symbol=BTCUSDT");
    for (int i = 0; i < 30; i++)
        used += (size_t)snprintf(t + used, sizeof(t) - used, "&p%d=1", i);
    expect_error(s.port, t, "invalid_parameter", "too many");

    /* The service still serves after all that. */
    json_t *j = get_json(s.port, "/healthz", 200);
    json_decref(j);
    cr_assert_eq(server_stop(&s), 0);
}

Test(rest, bad_indicator_requests)
{
    struct server s = server_start(NULL);
    const char *w = "symbol=BTCUSDT&interval=1m";
    char t[512];

    expect_error(s.port, "/v1/indicators/foo?symbol=BTCUSDT&interval=1m", "unknown_indicator",
                 "foo");
    expect_error(s.port, "/v1/indicators/SMA?symbol=BTCUSDT&interval=1m", "unknown_indicator",
                 "SMA");
    expect_error(s.port, "/v1/indicators/", "unknown_indicator", NULL);
    expect_error(s.port, "/v1/indicators/sma/extra", "unknown_indicator", NULL);
    expect_error(s.port, "/v1/indicators", "not_found", NULL);
    expect_error(s.port, "/v1/indicators/sma?interval=1m", "missing_parameter", "symbol");

    static const struct {
        const char *q, *code, *mention;
    } bad[] = {
        {"sma?period=0", "invalid_parameter", "period"},
        {"sma?period=1001", "invalid_parameter", "period"},
        {"sma?period=abc", "invalid_parameter", "period"},
        {"sma?period=", "invalid_parameter", "period"},
        {"ema?source=volume", "invalid_parameter", "source"},
        {"rsi?smoothing=ema", "invalid_parameter", "smoothing"},
        {"macd?fast=26&slow=12", "invalid_parameter", "fast"},
        {"macd?fast=12&slow=12", "invalid_parameter", "slow"},
        {"macd?signal=0", "invalid_parameter", "signal"},
        {"macd?period=14", "unknown_parameter", "period"},
        {"sma?smoothing=wilder", "unknown_parameter", "smoothing"},
        {"atr?source=close", "unknown_parameter", "source"},
        {"vwap?k=2", "unknown_parameter", "k"},
        {"bbands?k=-1", "invalid_parameter", "k"},
        {"bbands?k=nan", "invalid_parameter", "k"},
        {"bbands?k=inf", "invalid_parameter", "k"},
        {"bbands?k=1e1", "invalid_parameter", "k"},
        {"bbands?k=10.5", "invalid_parameter", "k"},
        {"sma?limit=0", "invalid_parameter", "limit"},
        {"sma?start=5&end=4", "invalid_range", "start"},
        {"sma?foo=bar", "unknown_parameter", "foo"},
        {"sma?period=5&period=6", "invalid_parameter", "twice"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(t, sizeof(t), "/v1/indicators/%s&%s", bad[i].q, w);
        expect_error(s.port, t, bad[i].code, bad[i].mention);
    }
    cr_assert_eq(server_stop(&s), 0);
}

Test(rest, paths_methods_and_long_targets)
{
    struct server s = server_start(NULL);
    expect_error(s.port, "/", "not_found", NULL);
    expect_error(s.port, "/v2/candles", "not_found", "/v2/candles");
    expect_error(s.port, "/v1/candles/", "not_found", NULL);
    expect_error(s.port, "/healthz/", "not_found", NULL);

    static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        struct resp r = http_req(s.port, methods[i], "/v1/candles?symbol=BTCUSDT&interval=1m");
        cr_assert_eq(r.status, 405, "%s", methods[i]);
        char allow[64];
        cr_assert(resp_header(&r, "Allow", allow, sizeof(allow)), "%s: no Allow", methods[i]);
        cr_assert_str_eq(allow, "GET, HEAD");
        cr_assert_not_null(strstr(r.body, "\"method_not_allowed\""), "%s", r.body);
        resp_free(&r);
    }
    /* A POST with a body is refused without trouble. */
    const char post[] = "POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Content-Length: 11\r\n\r\nhello world";
    struct resp r = http_raw(s.port, post, sizeof(post) - 1);
    cr_assert_eq(r.status, 405);
    resp_free(&r);
    /* Unknown path with a wrong method: the path decides (404). */
    r = http_req(s.port, "DELETE", "/nope");
    cr_assert_eq(r.status, 404);
    resp_free(&r);

    /* Over HTTP_URI_MAX: our 414 in the JSON error shape. */
    size_t n = 6000;
    char *target = malloc(n + 64);
    cr_assert_not_null(target);
    int k = snprintf(target, n + 64, "/v1/candles?interval=1m&symbol=");
    memset(target + k, 'A', n - (size_t)k);
    target[n] = '\0';
    expect_error(s.port, target, "uri_too_long", "4096");
    free(target);

    /* Far beyond the connection's buffer: libmicrohttpd's own 414, and the
     * server keeps serving. */
    n = 200000;
    char *req = malloc(n + 128);
    cr_assert_not_null(req);
    k = snprintf(req, n + 128, "GET /v1/candles?symbol=");
    memset(req + k, 'A', n);
    size_t len = (size_t)k + n;
    len += (size_t)snprintf(req + len, 128, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    r = http_raw(s.port, req, len);
    cr_assert_eq(r.status, 414);
    resp_free(&r);
    free(req);

    /* Header block too large: 431 from libmicrohttpd. */
    size_t hcap = 100 * 1100 + 256;
    char *big = malloc(hcap);
    cr_assert_not_null(big);
    size_t used = (size_t)snprintf(big, hcap, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 100; i++) {
        used += (size_t)snprintf(big + used, hcap - used, "X-H%d: ", i);
        memset(big + used, 'y', 1000);
        used += 1000;
        used += (size_t)snprintf(big + used, hcap - used, "\r\n");
    }
    used += (size_t)snprintf(big + used, hcap - used, "Connection: close\r\n\r\n");
    r = http_raw(s.port, big, used);
    cr_assert_eq(r.status, 431);
    resp_free(&r);
    free(big);

    /* Garbage that is not HTTP at all: a 4xx or a closed connection. */
    r = http_raw(s.port, "HELLO\r\n\r\n", 9);
    cr_assert(r.status == 0 || r.status / 100 == 4, "garbage request: %d", r.status);
    resp_free(&r);
    r = http_raw(s.port, "GET /healthz HTTP/9.9\r\n\r\n", strlen("GET /healthz HTTP/9.9\r\n\r\n"));
    cr_assert(r.status == 0 || r.status / 100 == 4 || r.status == 505, "bad version: %d", r.status);
    resp_free(&r);

    json_t *j = get_json(s.port, "/healthz", 200);
    json_decref(j);
    cr_assert_eq(server_stop(&s), 0);
}

/* ---- tests: book, symbols, readiness, metrics ---- */

static struct ab_level LV(const char *p, const char *q) {
    struct ab_level l = {D(p), D(q)};
    return l;
}

Test(rest, book_from_the_latest_snapshot)
{
    struct store *st = open_store();
    struct ab_level bids[] = {LV("60040.99", "1.5"), LV("60040", "0.25"),
                              LV("60039.12345678", "3")};
    struct ab_level asks[] = {LV("60041", "0.004"), LV("60041.5", "2"), LV("60100", "10.00000001")};
    struct ab_book_snapshot snap = {
        .last_update_id = 1000, .bids = bids, .asks = asks, .n_bids = 3, .n_asks = 3};
    snprintf(snap.symbol, sizeof(snap.symbol), "RESTBOOK");
    cr_assert_eq(store_put_book_snapshot(st, &snap, 1714564800000LL), 0);
    cr_assert_eq(store_flush(st, 30000), 0);
    snap.last_update_id = 400900217;
    cr_assert_eq(store_put_book_snapshot(st, &snap, 1714564800123LL), 0);
    close_store(st);

    struct server s = server_start(NULL);
    json_t *j = get_json(s.port, "/v1/book?symbol=RESTBOOK", 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "symbol")), "RESTBOOK");
    cr_assert_eq(json_integer_value(json_object_get(j, "last_update_id")), 400900217);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "snapshot");
    cr_assert_eq(json_integer_value(json_object_get(j, "as_of")), 1714564800123LL);
    json_t *b = json_object_get(j, "bids"), *a = json_object_get(j, "asks");
    cr_assert_eq(json_array_size(b), 3);
    cr_assert_eq(json_array_size(a), 3);
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(b, 0), 0)), "60040.99");
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(b, 0), 1)), "1.5");
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(b, 2), 0)), "60039.12345678");
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(a, 0), 0)), "60041");
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(a, 2), 1)), "10.00000001");
    json_decref(j);

    j = get_json(s.port, "/v1/book?symbol=RESTBOOK&depth=1", 200);
    cr_assert_eq(json_array_size(json_object_get(j, "bids")), 1);
    cr_assert_eq(json_array_size(json_object_get(j, "asks")), 1);
    cr_assert_str_eq(
        json_string_value(json_array_get(json_array_get(json_object_get(j, "asks"), 0), 1)),
        "0.004");
    json_decref(j);

    expect_error(s.port, "/v1/book?symbol=RESTNOBOOK", "not_found", "RESTNOBOOK");
    expect_error(s.port, "/v1/book", "missing_parameter", "symbol");
    expect_error(s.port, "/v1/book?symbol=RESTBOOK&depth=0", "invalid_parameter", "depth");
    expect_error(s.port, "/v1/book?symbol=RESTBOOK&depth=5001", "invalid_parameter", "depth");
    expect_error(s.port, "/v1/book?symbol=RESTBOOK&limit=5", "unknown_parameter", "limit");
    cr_assert_eq(server_stop(&s), 0);
}

/* The provider the live books plug in with: memory first, then storage. */
Test(rest, book_source_live_prefers_memory_and_falls_back)
{
    struct store *st = open_store();
    struct ab_level sb[] = {LV("10", "1")}, sa[] = {LV("11", "2")};
    struct ab_book_snapshot stored = {
        .last_update_id = 7, .bids = sb, .asks = sa, .n_bids = 1, .n_asks = 1};
    snprintf(stored.symbol, sizeof(stored.symbol), "RESTLIVEDB");
    cr_assert_eq(store_put_book_snapshot(st, &stored, 1700000000000LL), 0);
    cr_assert_eq(store_flush(st, 30000), 0);

    struct live_config lc;
    memset(&lc, 0, sizeof(lc));
    struct live *lv = NULL;
    cr_assert_eq(live_new(&lc, &lv), 0);
    struct ab_level bids[] = {LV("100.5", "1"), LV("100", "2"), LV("99", "3")};
    struct ab_level asks[] = {LV("101", "4"), LV("102", "5")};
    struct ab_book_snapshot mem = {
        .last_update_id = 42, .bids = bids, .asks = asks, .n_bids = 3, .n_asks = 2};
    snprintf(mem.symbol, sizeof(mem.symbol), "RESTLIVEMEM");
    cr_assert_eq(live_apply_book_snapshot(lv, &mem, 1700000000500LL, NULL), 0);

    struct book_source_live_ctx ctx = {.live = lv, .store = st};
    struct book_source src = book_source_live(&ctx);
    struct ab_book_snapshot out;
    struct book_info info;
    memset(&out, 0, sizeof(out));
    cr_assert_eq(src.get(src.arg, "RESTLIVEMEM", 2, &out, &info), 0);
    cr_assert_str_eq(info.state, "live");
    cr_assert_eq(out.last_update_id, 42);
    cr_assert_eq(out.n_bids, 2);
    cr_assert_eq(out.n_asks, 2);
    cr_assert_eq(ab_dec_cmp(out.bids[0].price, D("100.5")), 0);
    ab_book_snapshot_deinit(&out);

    cr_assert_eq(src.get(src.arg, "RESTLIVEDB", 0, &out, &info), 0);
    cr_assert_str_eq(info.state, "snapshot");
    cr_assert_eq(info.as_of_ms, 1700000000000LL);
    cr_assert_eq(out.last_update_id, 7);
    cr_assert_eq(out.n_bids, 1);
    ab_book_snapshot_deinit(&out);

    cr_assert_eq(src.get(src.arg, "RESTLIVENONE", 5, &out, &info), AB_ENOTFOUND);
    ab_book_snapshot_deinit(&out);
    ctx.store = NULL;
    cr_assert_eq(src.get(src.arg, "RESTLIVEDB", 5, &out, &info), AB_ENOTFOUND,
                 "without a fallback only memory counts");
    ab_book_snapshot_deinit(&out);

    live_free(lv);
    close_store(st);
}

Test(rest, symbols_lists_tracked_and_stored_series)
{
    seed_klines("RESTSYM");
    const char *args[] = {"--symbols=RESTSYM,RESTSYMNONE", "--intervals=1m,30m", NULL};
    struct server s = server_start(args);
    json_t *j = get_json(s.port, "/v1/symbols", 200);
    json_t *ivs = json_object_get(j, "intervals");
    cr_assert_eq(json_array_size(ivs), 2);
    cr_assert_str_eq(json_string_value(json_array_get(ivs, 1)), "30m");
    json_t *syms = json_object_get(j, "symbols");
    cr_assert_geq(json_array_size(syms), 2);
    json_t *first = json_array_get(syms, 0), *second = json_array_get(syms, 1);
    cr_assert_str_eq(json_string_value(json_object_get(first, "symbol")), "RESTSYM");
    cr_assert(json_is_true(json_object_get(first, "tracked")));
    json_t *series = json_object_get(first, "series");
    cr_assert_eq(json_array_size(series), 2);
    json_t *m1 = json_array_get(series, 0), *m30 = json_array_get(series, 1);
    cr_assert_str_eq(json_string_value(json_object_get(m1, "interval")), "1m");
    cr_assert(json_is_null(json_object_get(m1, "newest_open_time")));
    cr_assert_eq(json_integer_value(json_object_get(m1, "count")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(m30, "interval")), "30m");
    cr_assert_eq(json_integer_value(json_object_get(m30, "newest_open_time")), KLINES_LAST);
    cr_assert_eq(json_integer_value(json_object_get(m30, "count")), KLINES_N);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(first, "book"), "state")),
                     "none");
    cr_assert_str_eq(json_string_value(json_object_get(second, "symbol")), "RESTSYMNONE");
    /* Untracked symbols in storage (other tests') follow with tracked false. */
    for (size_t i = 2; i < json_array_size(syms); i++)
        cr_assert(json_is_false(json_object_get(json_array_get(syms, i), "tracked")));
    json_decref(j);
    expect_error(s.port, "/v1/symbols?verbose=1", "unknown_parameter", "verbose");
    cr_assert_eq(server_stop(&s), 0);
}

Test(rest, readyz_needs_fresh_data_for_every_tracked_series)
{
    seed_klines("RESTSTALE");
    /* A candle for the current minute. */
    struct store *st = open_store();
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "RESTFRESH");
    c.interval = AB_I_1M;
    c.open_time = ab_interval_align(AB_I_1M, now_ms());
    c.close_time = ab_interval_next(AB_I_1M, c.open_time) - 1;
    c.open = c.high = c.low = c.close = D("100");
    c.first_trade_id = c.last_trade_id = -1;
    cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 1), 0);
    close_store(st);

    const char *stale_args[] = {"--symbols=RESTSTALE,RESTFRESH", "--intervals=30m", NULL};
    struct server s = server_start(stale_args);
    json_t *j = get_json(s.port, "/readyz", 503);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "not_ready");
    json_t *reasons = json_object_get(j, "reasons");
    cr_assert_eq(json_array_size(reasons), 2, "RESTSTALE 30m stale, RESTFRESH 30m missing");
    cr_assert_not_null(strstr(json_string_value(json_array_get(reasons, 0)), "RESTSTALE 30m"));
    cr_assert_not_null(strstr(json_string_value(json_array_get(reasons, 0)), "stale"));
    cr_assert_not_null(strstr(json_string_value(json_array_get(reasons, 1)), "RESTFRESH 30m"));
    json_decref(j);
    /* Liveness does not depend on data. */
    json_decref(get_json(s.port, "/healthz", 200));
    cr_assert_eq(server_stop(&s), 0);

    const char *fresh_args[] = {"--symbols=RESTFRESH", "--intervals=1m", NULL};
    s = server_start(fresh_args);
    j = get_json(s.port, "/readyz", 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "ready");
    cr_assert_eq(json_array_size(json_object_get(j, "reasons")), 0);
    json_decref(j);
    cr_assert_eq(server_stop(&s), 0);
}

/* Value of the sample line starting with prefix (the whole series name and
 * labels), or -1. */
static double metric_value(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, prefix, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

Test(rest, metrics_count_requests_by_route_and_status)
{
    struct server s = server_start(NULL);
    for (int i = 0; i < 3; i++)
        json_decref(get_json(s.port, "/healthz", 200));
    expect_error(s.port, "/v1/candles?interval=1m", "missing_parameter", NULL);
    expect_error(s.port, "/nowhere", "not_found", NULL);
    json_decref(get_json(s.port, "/v1/candles?symbol=RESTMETRIC&interval=1m", 200));

    struct resp r = http_get(s.port, "/metrics");
    cr_assert_eq(r.status, 200);
    char ctype[128];
    cr_assert(resp_header(&r, "Content-Type", ctype, sizeof(ctype)));
    cr_assert_not_null(strstr(ctype, "text/plain"));
    const char *t = r.body;
    cr_assert_eq(metric_value(t, "abidance_http_requests_total{route=\"/healthz\",status=\"200\"}"),
                 3, "%s", t);
    cr_assert_eq(
        metric_value(t, "abidance_http_requests_total{route=\"/v1/candles\",status=\"400\"}"), 1);
    cr_assert_eq(
        metric_value(t, "abidance_http_requests_total{route=\"/v1/candles\",status=\"200\"}"), 1);
    cr_assert_eq(metric_value(t, "abidance_http_requests_total{route=\"other\",status=\"404\"}"),
                 1);
    cr_assert_eq(
        metric_value(t, "abidance_http_request_duration_seconds_count{route=\"/healthz\"}"), 3);
    cr_assert_eq(
        metric_value(
            t, "abidance_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"}"),
        3);
    cr_assert_geq(metric_value(t, "abidance_store_queue_depth"), 0);
    cr_assert_gt(metric_value(t, "abidance_store_queue_capacity"), 0);
    cr_assert_geq(metric_value(t, "abidance_store_db_errors_total"), 0);
    cr_assert_geq(metric_value(t, "abidance_store_batches_total"), 0);
    cr_assert_geq(metric_value(t, "abidance_store_batch_rows_total"), 0);
    cr_assert_not_null(strstr(t, "# TYPE abidance_http_request_duration_seconds histogram"));
    resp_free(&r);
    cr_assert_eq(server_stop(&s), 0);
}

/* ---- tests: the database going away ---- */

static void expect_db_down(int port)
{
    expect_error(port, "/v1/candles?symbol=BTCUSDT&interval=1m", "db_unavailable", NULL);
    expect_error(port, "/v1/indicators/ema?symbol=BTCUSDT&interval=1m", "db_unavailable", NULL);
    expect_error(port, "/v1/book?symbol=BTCUSDT", "db_unavailable", NULL);
    expect_error(port, "/v1/symbols", "db_unavailable", NULL);
    json_t *j = get_json(port, "/readyz", 503);
    const char *why = json_string_value(json_array_get(json_object_get(j, "reasons"), 0));
    cr_assert_not_null(why);
    cr_assert_not_null(strstr(why, "database unreachable"), "%s", why);
    json_decref(j);
    json_decref(get_json(port, "/healthz", 200));
    /* Bad input is still judged first. */
    expect_error(port, "/v1/candles?symbol=btc&interval=1m", "invalid_parameter", "symbol");
}

Test(rest, database_unreachable_from_the_start)
{
    char url[256];
    snprintf(url, sizeof(url),
             "postgresql:///abidance_test?host=/tmp/abidance-no-such-dir-%d&port=1&user=postgres"
             "&connect_timeout=1",
             (int)getpid());
    struct server s = server_start_url(url, NULL);
    expect_db_down(s.port);
    struct resp r = http_get(s.port, "/metrics");
    cr_assert_eq(r.status, 200);
    cr_assert_eq(metric_value(r.body, "abidance_store_db_up"), 0);
    resp_free(&r);
    cr_assert_eq(server_stop(&s), 0);
}

static int run_fixture(const char *cmd, const char *arg3)
{
    char line[1024];
    snprintf(line, sizeof(line), "%s %s %s %s >/dev/null 2>&1", AB_PG_FIXTURE, cmd,
             AB_PG_OUTAGE_DIR, arg3 ? arg3 : "");
    return system(line);
}

Test(rest, database_outage_and_recovery, .timeout = 180)
{
    cr_assert_eq(run_fixture("start", AB_PG_OUTAGE_PORT), 0, "private cluster did not start");
    char url[512];
    snprintf(url, sizeof(url), "postgresql:///abidance_test?host=%s&port=%s&user=postgres",
             AB_PG_OUTAGE_DIR, AB_PG_OUTAGE_PORT);
    struct server s = server_start_url(url, NULL);
    /* Up: wait for the schema, then an empty answer. */
    int status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        struct resp r = http_get(s.port, "/v1/candles?symbol=BTCUSDT&interval=1m");
        status = r.status;
        resp_free(&r);
        if (status != 200)
            sleep_ms(100);
    }
    cr_assert_eq(status, 200);

    cr_assert_eq(run_fixture("pause", NULL), 0);
    expect_db_down(s.port);

    cr_assert_eq(run_fixture("resume", NULL), 0);
    status = 0;
    for (int i = 0; i < 150 && status != 200; i++) {
        struct resp r = http_get(s.port, "/v1/candles?symbol=BTCUSDT&interval=1m");
        status = r.status;
        resp_free(&r);
        if (status != 200)
            sleep_ms(100);
    }
    cr_assert_eq(status, 200, "no recovery after the database came back");
    cr_assert_eq(server_stop(&s), 0);
    run_fixture("stop", NULL);
}

/* ---- tests: documentation and configuration ---- */

/* Reads api/openapi.yaml (malloc'd). */
static char *read_openapi(void)
{
    FILE *f = fopen(OPENAPI_FILE, "r");
    cr_assert_not_null(f, "%s missing", OPENAPI_FILE);
    char *text = malloc(1 << 20);
    cr_assert_not_null(text);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

/* The keys directly under the top-level "paths:" (two-space indent). */
static size_t openapi_paths(const char *text, char out[][128], size_t cap)
{
    size_t n = 0;
    bool in_paths = false;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 0 && line[0] != ' ' && line[0] != '#')
            in_paths = strncmp(line, "paths:", 6) == 0;
        else if (in_paths && len > 3 && strncmp(line, "  /", 3) == 0 && line[len - 1] == ':') {
            cr_assert_lt(n, cap);
            snprintf(out[n++], 128, "%.*s", (int)(len - 3), line + 2);
        }
        line = end ? end + 1 : NULL;
    }
    return n;
}

Test(rest, openapi_documents_every_route_and_error_code)
{
    char *text = read_openapi();
    cr_assert_not_null(strstr(text, "openapi: 3.1"));
    char paths[32][128];
    size_t n = openapi_paths(text, paths, 32);
    cr_assert_eq(n, http_route_count(), "documented %zu paths, server has %zu", n,
                 http_route_count());
    for (size_t i = 0; i < http_route_count(); i++) {
        bool found = false;
        for (size_t k = 0; k < n; k++)
            found = found || strcmp(paths[k], http_route_path(i)) == 0;
        cr_assert(found, "route %s is not in api/openapi.yaml", http_route_path(i));
    }
    /* Every code in the server's table is in the ErrorCode enum and its
     * table row names the right status; the enum lists nothing else. */
    const char *ec = strstr(text, "    ErrorCode:");
    cr_assert_not_null(ec);
    const char *en = strstr(ec, "      enum:\n");
    cr_assert_not_null(en);
    size_t listed = 0;
    for (const char *line = en + strlen("      enum:\n"); strncmp(line, "        - ", 10) == 0;) {
        const char *end = strchr(line, '\n');
        char code[64];
        snprintf(code, sizeof(code), "%.*s", (int)(end - line - 10), line + 10);
        bool known = false;
        for (int i = 0; i < API_CODE_COUNT; i++)
            known = known || strcmp(api_codes[i].name, code) == 0;
        cr_assert(known, "openapi lists %s, which the server never sends", code);
        listed++;
        line = end + 1;
    }
    cr_assert_eq(listed, API_CODE_COUNT);
    for (int i = 0; i < API_CODE_COUNT; i++) {
        char row[128];
        snprintf(row, sizeof(row), "| %s | %u |", api_codes[i].name, api_codes[i].status);
        cr_assert_not_null(strstr(ec, row), "ErrorCode table lacks \"%s\"", row);
    }
    free(text);
}

Test(rest, every_documented_path_answers)
{
    char *text = read_openapi();
    char paths[32][128];
    size_t n = openapi_paths(text, paths, 32);
    free(text);
    cr_assert_gt(n, 0);
    struct server s = server_start(NULL);
    for (size_t i = 0; i < n; i++) {
        char target[160];
        char *brace = strchr(paths[i], '{');
        if (brace)
            snprintf(target, sizeof(target), "%.*ssma", (int)(brace - paths[i]), paths[i]);
        else
            snprintf(target, sizeof(target), "%s", paths[i]);
        struct resp r = http_get(s.port, target);
        cr_assert((r.status != 404 && r.status != 405 && r.status < 500) || r.status == 503,
                  "%s: %d %s", target, r.status, r.body);
        cr_assert_null(strstr(r.body, "\"not_found\""), "%s: %s", target, r.body);
        resp_free(&r);
    }
    cr_assert_eq(server_stop(&s), 0);
}

/* Runs the binary with args; returns exit status, output (stdout+stderr) in buf. */
static int run_bin(const char *const *args, char *buf, size_t cap)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        const char *argv[16];
        int argc = 0;
        argv[argc++] = query_bin();
        for (size_t i = 0; args[i] && argc < 15; i++)
            argv[argc++] = args[i];
        argv[argc] = NULL;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t k;
    while (len + 1 < cap && (k = read(pipefd[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)k;
    buf[len] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(rest, help_lists_every_setting_and_errors_name_them)
{
    static char out[65536];
    const char *help[] = {"--help", NULL};
    cr_assert_eq(run_bin(help, out, sizeof(out)), 0);
    for (size_t i = 0; i < query_config_spec.n_opts; i++) {
        const struct ab_config_opt *o = &query_config_spec.opts[i];
        char needle[128];
        snprintf(needle, sizeof(needle), "--%s=", o->flag);
        cr_assert_not_null(strstr(out, needle), "--help lacks %s", needle);
        cr_assert_not_null(strstr(out, o->env), "--help lacks %s", o->env);
    }
    static const char *const design_names[] = {"DATABASE_URL",
                                               "--database-url",
                                               "ABIDANCE_HTTP_ADDR",
                                               "--http",
                                               "127.0.0.1:8080",
                                               "ABIDANCE_WS_ADDR",
                                               "--ws",
                                               "127.0.0.1:8081",
                                               "ABIDANCE_BUS",
                                               "--bus",
                                               "ABIDANCE_SYMBOLS",
                                               "BTCUSDT,ETHUSDT",
                                               "ABIDANCE_INTERVALS",
                                               "--log-format",
                                               "ABIDANCE_LOG_FORMAT",
                                               "--log-level",
                                               "--version"};
    for (size_t i = 0; i < sizeof(design_names) / sizeof(design_names[0]); i++)
        cr_assert_not_null(strstr(out, design_names[i]), "--help lacks %s", design_names[i]);

    const char *version[] = {"--version", NULL};
    cr_assert_eq(run_bin(version, out, sizeof(out)), 0);
    cr_assert_not_null(strstr(out, "abidance-query "));

    const char *bad[] = {"--http=localhost", NULL};
    cr_assert_eq(run_bin(bad, out, sizeof(out)), 2);
    cr_assert_not_null(strstr(out, "--http (ABIDANCE_HTTP_ADDR)"), "%s", out);
    const char *bad2[] = {"--log-format=xml", NULL};
    cr_assert_eq(run_bin(bad2, out, sizeof(out)), 2);
    cr_assert_not_null(strstr(out, "--log-format (ABIDANCE_LOG_FORMAT)"), "%s", out);
    const char *bad3[] = {"--frobnicate", NULL};
    cr_assert_eq(run_bin(bad3, out, sizeof(out)), 2);
    cr_assert_not_null(strstr(out, "--frobnicate"), "%s", out);
}

/* ---- concurrency smoke ---- */

struct worker {
    int port;
    int ok;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 25; i++) {
        struct resp r =
            http_get(w->port, i % 2 ? "/v1/candles?symbol=RESTCONC&interval=30m&limit=50"
                                    : "/v1/indicators/macd?symbol=RESTCONC&interval=30m");
        w->ok += r.status == 200 && r.len > 0;
        resp_free(&r);
    }
    return NULL;
}

Test(rest, concurrent_clients)
{
    seed_klines("RESTCONC");
    struct server s = server_start(NULL);
    pthread_t t[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.port = s.port};
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].ok, 25, "worker %d: %d of 25 succeeded", i, w[i].ok);
    }
    cr_assert_eq(server_stop(&s), 0);
}

/* ---- tests: client limits and the API token ---- */

#define TOKEN       "Tk_0123456789abcdef.ghij-klmn~XYZ"
#define WRONG_TOKEN "Tk_0123456789abcdef.ghij-klmn~XYy"

/* GET target with extra header lines (each ending in \r\n). */
static struct resp http_get_with(int port, const char *target, const char *headers)
{
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n", target,
                     headers ? headers : "");
    cr_assert_lt((size_t)n, sizeof(req));
    return http_raw(port, req, (size_t)n);
}

/* GET with headers, retried while the database is still coming up (503). */
static struct resp http_get_ready(int port, const char *target, const char *headers)
{
    int64_t deadline = now_ms() + 20000;
    for (;;) {
        struct resp r = http_get_with(port, target, headers);
        if (r.status != 503 || now_ms() > deadline)
            return r;
        resp_free(&r);
        sleep_ms(100);
    }
}

/* The error code of a JSON error body ("" when none). */
static const char *error_code(const struct resp *r, char *buf, size_t cap)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(buf, cap, "%s", c ? c : "");
    json_decref(j);
    return buf;
}

static void expect_401(int port, const char *target, const char *headers, bool invalid)
{
    struct resp r = http_get_with(port, target, headers);
    char code[64], www[128];
    cr_assert_eq(r.status, 401, "%s: %d %s", target, r.status, r.body);
    cr_assert_str_eq(error_code(&r, code, sizeof(code)), "unauthorized", "%s", r.body);
    cr_assert(resp_header(&r, "WWW-Authenticate", www, sizeof(www)), "%s: no WWW-Authenticate",
              target);
    cr_assert_eq(strncmp(www, "Bearer realm=\"abidance\"", 23), 0, "%s", www);
    cr_assert_eq(strstr(www, "invalid_token") != NULL, invalid, "%s: %s", target, www);
    cr_assert_null(strstr(r.head, TOKEN));
    cr_assert_null(strstr(r.body, TOKEN));
    resp_free(&r);
}

/* Reads a whole file (malloc'd, NUL-terminated). */
static char *slurp_file(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *buf = malloc(1 << 22);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* A raw WebSocket handshake to the stream port; returns the HTTP status. */
static int ws_handshake(int port, const char *target, const char *headers)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     target, headers ? headers : "");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    char buf[2048];
    size_t len = 0;
    while (len < sizeof(buf) - 1 && !memmem(buf, len, "\r\n\r\n", 4)) {
        ssize_t k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    return status;
}

Test(rest, api_token_guards_every_route_but_the_probes, .timeout = 120)
{
    char log_path[] = "/tmp/abidance-rest-log-XXXXXX";
    int lfd = mkstemp(log_path);
    cr_assert_geq(lfd, 0);
    close(lfd);
    const char *extra[] = {"--api-token=" TOKEN, "--log-level=debug", NULL};
    struct server s = server_start_opts(db_url(), extra, log_path);

    /* missing, wrong, another scheme */
    expect_401(s.port, "/v1/symbols", NULL, false);
    expect_401(s.port, "/v1/symbols", "Authorization: Bearer " WRONG_TOKEN "\r\n", true);
    expect_401(s.port, "/v1/symbols", "Authorization: Basic dXNlcjpwYXNz\r\n", false);
    expect_401(s.port, "/v1/symbols", "Authorization: Bearer\r\n", false);
    expect_401(s.port, "/v1/symbols?token=" TOKEN, NULL, false); /* REST takes no query token */
    expect_401(s.port, "/v1/candles?symbol=BTCUSDT&interval=1m", NULL, false);
    expect_401(s.port, "/v1/indicators/sma?symbol=BTCUSDT&interval=1m", NULL, false);
    expect_401(s.port, "/v1/book?symbol=BTCUSDT", NULL, false);
    expect_401(s.port, "/metrics", NULL, false);
    /* unknown paths do not reveal themselves: 401 first */
    expect_401(s.port, "/nope", NULL, false);
    /* a prefix or an extension of the token is wrong */
    expect_401(s.port, "/v1/symbols", "Authorization: Bearer Tk_0123456789abcdef.ghij-klmn~XY\r\n",
               true);
    expect_401(s.port, "/v1/symbols", "Authorization: Bearer " TOKEN "Z\r\n", true);

    /* right */
    const char *auth = "Authorization: Bearer " TOKEN "\r\n";
    struct resp r = http_get_ready(s.port, "/v1/symbols", auth);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    r = http_get_with(s.port, "/v1/symbols", "authorization: bearer   " TOKEN "\r\n");
    cr_assert_eq(r.status, 200, "the scheme is case-insensitive: %s", r.body);
    resp_free(&r);
    r = http_get_with(s.port, "/nope", auth);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
    r = http_get_with(s.port, "/metrics", auth);
    cr_assert_eq(r.status, 200);
    cr_assert_null(strstr(r.body, TOKEN), "the token is not in /metrics");
    cr_assert_not_null(strstr(r.body, "abidance_http_requests_total{route=\"/v1/symbols\","
                                      "status=\"401\"}"),
                       "401s are counted");
    resp_free(&r);

    /* probes stay open */
    r = http_get(s.port, "/healthz");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = http_get(s.port, "/readyz");
    cr_assert(r.status == 200 || r.status == 503, "/readyz: %d", r.status);
    resp_free(&r);

    /* the stream: header or query parameter */
    cr_assert_gt(s.ws_port, 0);
    cr_assert_eq(ws_handshake(s.ws_port, "/v1/stream", NULL), 401);
    cr_assert_eq(ws_handshake(s.ws_port, "/v1/stream?token=" WRONG_TOKEN, NULL), 401);
    cr_assert_eq(ws_handshake(s.ws_port, "/v1/stream", auth), 101);
    cr_assert_eq(ws_handshake(s.ws_port, "/v1/stream?token=" TOKEN, NULL), 101);

    /* the token is not in the process list: argv was blanked */
    char cmdline_path[64], cmdline[4096];
    snprintf(cmdline_path, sizeof(cmdline_path), "/proc/%d/cmdline", (int)s.pid);
    FILE *f = fopen(cmdline_path, "r");
    cr_assert_not_null(f);
    size_t n = fread(cmdline, 1, sizeof(cmdline) - 1, f);
    fclose(f);
    cmdline[n] = '\0';
    /* Under scripts/valgrind.sh the pid is valgrind running the real binary:
     * /proc shows valgrind's own argv, which holds the launch arguments
     * verbatim in valgrind's memory; the program only ever sees (and
     * blanks) its private copy. No program can hide that, so there the
     * cmdline proves nothing either way (docs/valgrind.md). Recognised by
     * the variable valgrind.sh exports AND argv[0] being valgrind's. */
    const char *argv0 = strrchr(cmdline, '/') ? strrchr(cmdline, '/') + 1 : cmdline;
    bool under_valgrind =
        getenv("ABIDANCE_UNDER_VALGRIND") &&
        (strncmp(argv0, "valgrind", 8) == 0 || strncmp(argv0, "memcheck", 8) == 0);
    for (size_t i = 0; i < n; i++)
        if (cmdline[i] == '\0')
            cmdline[i] = ' ';
    if (!under_valgrind) {
        cr_assert_null(strstr(cmdline, TOKEN), "cmdline: %s", cmdline);
        cr_assert_not_null(strstr(cmdline, "--api-token=****"), "cmdline: %s", cmdline);
    } else {
        cr_assert_not_null(strstr(cmdline, "abidance-query"), "cmdline: %s", cmdline);
        /* (stderr: a cr_log_warn makes Criterion exit 1) */
        fprintf(stderr,
                "valgrind: /proc/%d/cmdline is valgrind's copy of the launch arguments: "
                "the check that the token was blanked there is NOT made in this run\n",
                (int)s.pid);
    }

    cr_assert_eq(server_stop(&s), 0);
    /* nothing logged it, even at debug level */
    char *log = slurp_file(log_path);
    unlink(log_path);
    cr_assert_not_null(strstr(log, "auth=token"), "the log says auth is on: %.2000s", log);
    cr_assert_not_null(strstr(log, "unauthorized"), "refusals are logged at debug");
    cr_assert_null(strstr(log, TOKEN), "the token is in the log");
    cr_assert_null(strstr(log, "Tk_0123456789abcdef"), "a part of the token is in the log");
    free(log);
}

Test(rest, api_token_from_a_file_and_metrics_open)
{
    char tok_path[] = "/tmp/abidance-token-XXXXXX";
    int fd = mkstemp(tok_path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, TOKEN "\n", strlen(TOKEN) + 1), (ssize_t)strlen(TOKEN) + 1);
    close(fd);
    char flag[128];
    snprintf(flag, sizeof(flag), "--api-token-file=%s", tok_path);
    const char *extra[] = {flag, "--metrics-open", NULL};
    struct server s = server_start(extra);
    expect_401(s.port, "/v1/symbols", NULL, false);
    struct resp r = http_get_ready(s.port, "/v1/symbols", "Authorization: Bearer " TOKEN "\r\n");
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    r = http_get(s.port, "/metrics");
    cr_assert_eq(r.status, 200, "--metrics-open: %s", r.body);
    resp_free(&r);
    cr_assert_eq(server_stop(&s), 0);
    unlink(tok_path);
}

Test(rest, bad_token_settings_stop_the_start_without_echoing_them)
{
    static char out[65536];
    const char *short_tok[] = {"--api-token=Secret12345", NULL};
    cr_assert_eq(run_bin(short_tok, out, sizeof(out)), 2);
    cr_assert_not_null(strstr(out, "--api-token (ABIDANCE_API_TOKEN)"), "%s", out);
    cr_assert_null(strstr(out, "Secret12345"), "%s", out);
    const char *bad_char[] = {"--api-token=Secret12345+Secret12345", NULL};
    cr_assert_eq(run_bin(bad_char, out, sizeof(out)), 2);
    cr_assert_null(strstr(out, "Secret12345"), "%s", out);
    const char *both[] = {"--api-token=" TOKEN, "--api-token-file=/nonexistent", NULL};
    cr_assert_eq(run_bin(both, out, sizeof(out)), 2);
    cr_assert_not_null(strstr(out, "both set"), "%s", out);
    cr_assert_null(strstr(out, TOKEN), "%s", out);
    const char *missing[] = {"--api-token-file=/nonexistent/token", NULL};
    cr_assert_eq(run_bin(missing, out, sizeof(out)), 2);
    cr_assert_not_null(strstr(out, "--api-token-file (ABIDANCE_API_TOKEN_FILE)"), "%s", out);
    const char *conns[] = {"--http-threads=8", "--http-max-connections=4", NULL};
    cr_assert_eq(run_bin(conns, out, sizeof(out)), 2);
    cr_assert_not_null(strstr(out, "--http-max-connections"), "%s", out);
}

/* A connected socket with (optionally) some bytes sent; the caller closes it. */
static int open_conn(int port, const char *send_first)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (send_first)
        cr_assert_eq(send(fd, send_first, strlen(send_first), MSG_NOSIGNAL),
                     (ssize_t)strlen(send_first));
    return fd;
}

/* Waits up to ms for fd to become readable; returns what recv says (0: closed,
 * > 0: bytes, -1: nothing came). */
static ssize_t wait_read(int fd, int ms, char *buf, size_t cap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return -1;
    ssize_t n = recv(fd, buf, cap - 1, 0);
    if (n >= 0)
        buf[n] = '\0';
    return n < 0 ? 0 : n;
}

Test(rest, requests_in_progress_per_address_are_capped_with_429, .timeout = 120)
{
    const char *extra[] = {"--http-max-inflight-per-ip=2", NULL};
    struct server s = server_start(extra);
    /* two requests stuck in their headers hold both places (when b's request
     * line raced with a probe, b itself was the one refused: open it again) */
    const char *partial = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    int a = open_conn(s.port, partial);
    sleep_ms(100);
    int b = open_conn(s.port, partial);
    sleep_ms(100);
    struct resp r = {0};
    int64_t deadline = now_ms() + 20000, reopen = now_ms() + 1000;
    for (;;) {
        r = http_get(s.port, "/healthz");
        if (r.status == 429 || now_ms() > deadline)
            break;
        resp_free(&r);
        if (now_ms() > reopen) {
            close(b);
            b = open_conn(s.port, partial);
            reopen = now_ms() + 1000;
        }
        sleep_ms(100);
    }
    cr_assert_eq(r.status, 429, "%d %s", r.status, r.body);
    char code[64], retry[16];
    cr_assert_str_eq(error_code(&r, code, sizeof(code)), "too_many_requests");
    cr_assert(resp_header(&r, "Retry-After", retry, sizeof(retry)));
    cr_assert_str_eq(retry, "1");
    cr_assert_not_null(strstr(r.body, "at most 2"), "%s", r.body);
    resp_free(&r);
    /* one finishes: its answer is normal, and its place is free again */
    cr_assert_eq(send(a, "Connection: close\r\n\r\n", 21, MSG_NOSIGNAL), 21);
    char buf[4096];
    cr_assert_gt(wait_read(a, 10000, buf, sizeof(buf)), 0);
    cr_assert_eq(strncmp(buf, "HTTP/1.1 200", 12), 0, "%s", buf);
    close(a);
    deadline = now_ms() + 10000;
    for (;;) {
        r = http_get(s.port, "/healthz");
        if (r.status == 200 || now_ms() > deadline)
            break;
        resp_free(&r);
        sleep_ms(50);
    }
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    close(b);
    cr_assert_eq(server_stop(&s), 0);
}

Test(rest, connections_per_address_and_in_total_are_capped, .timeout = 120)
{
    /* per address: the third connection is closed without an answer */
    const char *per_ip[] = {"--http-max-connections-per-ip=2", NULL};
    struct server s = server_start(per_ip);
    int a = open_conn(s.port, NULL), b = open_conn(s.port, NULL);
    sleep_ms(200);
    int c = open_conn(s.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char buf[4096];
    cr_assert_eq(wait_read(c, 10000, buf, sizeof(buf)), 0, "refused: closed, got %s", buf);
    close(c);
    close(a);
    sleep_ms(200);
    struct resp r = http_get(s.port, "/healthz");
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    close(b);
    cr_assert_eq(server_stop(&s), 0);

    /* in total: the third waits in the backlog until a place is free */
    const char *total[] = {"--http-threads=1", "--http-max-connections=2", NULL};
    s = server_start(total);
    a = open_conn(s.port, NULL);
    b = open_conn(s.port, NULL);
    sleep_ms(200);
    c = open_conn(s.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    cr_assert_eq(wait_read(c, 1000, buf, sizeof(buf)), -1, "not served while full: %s", buf);
    close(a);
    cr_assert_gt(wait_read(c, 10000, buf, sizeof(buf)), 0);
    cr_assert_eq(strncmp(buf, "HTTP/1.1 200", 12), 0, "%s", buf);
    close(c);
    close(b);
    cr_assert_eq(server_stop(&s), 0);
}

Test(rest, header_caps_and_the_idle_timeout, .timeout = 120)
{
    const char *extra[] = {"--http-timeout=1s", NULL};
    struct server s = server_start(extra);
    char *hdrs = malloc(64 * 1024);
    cr_assert_not_null(hdrs);
    /* 64 fields (Host and Connection included) pass; 65 do not */
    size_t used = 0;
    for (int i = 0; i < 62; i++)
        used += (size_t)snprintf(hdrs + used, 64 * 1024 - used, "X-F%d: v\r\n", i);
    struct resp r = http_get_with(s.port, "/healthz", hdrs);
    cr_assert_eq(r.status, 200, "%s", r.body);
    resp_free(&r);
    used += (size_t)snprintf(hdrs + used, 64 * 1024 - used, "X-Last: v\r\n");
    r = http_get_with(s.port, "/healthz", hdrs);
    char code[64];
    cr_assert_eq(r.status, 431, "%s", r.body);
    cr_assert_str_eq(error_code(&r, code, sizeof(code)), "headers_too_large");
    cr_assert_not_null(strstr(r.body, "65 header fields"), "%s", r.body);
    resp_free(&r);
    free(hdrs);
    /* 20 fields of 1000 bytes: over the 16384 header bytes, under libmicrohttpd's buffer */
    size_t cap = 32 * 1024;
    char *req = malloc(cap);
    cr_assert_not_null(req);
    used = (size_t)snprintf(req, cap, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (int i = 0; i < 20; i++) {
        used += (size_t)snprintf(req + used, cap - used, "X-B%d: ", i);
        memset(req + used, 'b', 1000);
        used += 1000;
        used += (size_t)snprintf(req + used, cap - used, "\r\n");
    }
    used += (size_t)snprintf(req + used, cap - used, "\r\n");
    r = http_raw(s.port, req, used);
    cr_assert_eq(r.status, 431, "%d %s", r.status, r.body);
    cr_assert_str_eq(error_code(&r, code, sizeof(code)), "headers_too_large");
    resp_free(&r);
    free(req);

    /* an idle connection is closed after --http-timeout */
    int fd = open_conn(s.port, NULL);
    int64_t t0 = now_ms();
    char buf[256];
    cr_assert_eq(wait_read(fd, 10000, buf, sizeof(buf)), 0, "closed by the server");
    int64_t waited = now_ms() - t0;
    cr_assert(waited >= 500 && waited < 8000, "closed after %lld ms", (long long)waited);
    close(fd);
    cr_assert_eq(server_stop(&s), 0);
}

/* A WebSocket handshake kept open; returns the fd (status in *status). */
static int ws_open(int port, const char *target, int *status)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     target);
    int fd = open_conn(port, NULL);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    char buf[2048];
    size_t len = 0;
    while (len < sizeof(buf) - 1 && !memmem(buf, len, "\r\n\r\n", 4)) {
        ssize_t k = wait_read(fd, 10000, buf + len, sizeof(buf) - len);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    *status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
        *status = 0;
    return fd;
}

Test(rest, stream_limits_come_from_the_configuration)
{
    const char *extra[] = {"--ws-max-connections-per-ip=1", NULL};
    struct server s = server_start(extra);
    int st1 = 0, st2 = 0;
    int a = ws_open(s.ws_port, "/v1/stream", &st1);
    cr_assert_eq(st1, 101);
    int b = ws_open(s.ws_port, "/v1/stream", &st2);
    cr_assert_eq(st2, 429, "the second connection from one address");
    close(b);
    close(a);
    cr_assert_eq(server_stop(&s), 0);
}

Test(rest, client_limit_settings_and_their_defaults)
{
    struct query_config cfg;
    enum ab_config_action action;
    char why[AB_CONFIG_WHY_MAX];
    char *argv0[] = {"abidance-query", NULL};
    cr_assert_eq(query_config_parse(1, argv0, NULL, &cfg, &action, why, sizeof(why)), 0, "%s", why);
    cr_assert_str_eq(cfg.token, "", "no authentication by default");
    cr_assert_not(cfg.metrics_open);
    cr_assert_str_eq(cfg.http.host, "127.0.0.1", "loopback by default");
    cr_assert_str_eq(cfg.ws.host, "127.0.0.1");
    cr_assert_eq(cfg.http_max_connections, 1024);
    cr_assert_eq(cfg.http_max_conns_per_ip, 64);
    cr_assert_eq(cfg.http_max_inflight_per_ip, 32);
    cr_assert_eq(cfg.http_timeout_ms, 30000);
    cr_assert_eq(cfg.ws_max_connections, WS_MAX_CONNECTIONS_DEFAULT);
    cr_assert_eq(cfg.ws_max_conns_per_ip, WS_MAX_CONNS_PER_IP_DEFAULT);
    cr_assert_eq(cfg.ws_max_channels, WS_MAX_CHANNELS_DEFAULT);
    cr_assert_eq(cfg.ws_max_message, WS_MAX_INBOUND_DEFAULT);
    cr_assert_eq(cfg.ws_rate, WS_RATE_DEFAULT);
    cr_assert_eq(cfg.ws_burst, WS_BURST_DEFAULT);

    char *env[] = {"ABIDANCE_API_TOKEN=" TOKEN, "ABIDANCE_WS_RATE=0",
                   "ABIDANCE_HTTP_MAX_INFLIGHT_PER_IP=0", NULL};
    cr_assert_eq(query_config_parse(1, argv0, env, &cfg, &action, why, sizeof(why)), 0, "%s", why);
    cr_assert_str_eq(cfg.token, TOKEN);
    cr_assert_eq(cfg.ws_rate, 0);
    cr_assert_eq(cfg.http_max_inflight_per_ip, 0);
    /* the flag wins, and a bad value never appears in the message */
    char *argv1[] = {"abidance-query", "--api-token=short", NULL};
    cr_assert_lt(query_config_parse(2, argv1, env, &cfg, &action, why, sizeof(why)), 0);
    cr_assert_null(strstr(why, "short"), "%s", why);
    cr_assert_not_null(strstr(why, "16 to 256"), "%s", why);
    /* a file with a trailing newline and CR */
    char path[] = "/tmp/abidance-tok-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, TOKEN "\r\nsecond line\n", strlen(TOKEN) + 14),
                 (ssize_t)strlen(TOKEN) + 14);
    close(fd);
    char flag[96];
    snprintf(flag, sizeof(flag), "--api-token-file=%s", path);
    char *argv2[] = {"abidance-query", flag, NULL};
    cr_assert_eq(query_config_parse(2, argv2, NULL, &cfg, &action, why, sizeof(why)), 0, "%s", why);
    cr_assert_str_eq(cfg.token, TOKEN);
    /* an empty file is no token at all: refused rather than silently open */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    cr_assert_lt(query_config_parse(2, argv2, NULL, &cfg, &action, why, sizeof(why)), 0);
    unlink(path);
}

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

/* ---- capture: lines go to an unlinked temporary file, read back whole ---- */

static int cap_fd = -1;
static char cap_buf[1 << 22];

static void capture_start(enum ab_log_format fmt, enum ab_log_level min)
{
    char path[] = "/tmp/ab_test_log.XXXXXX";
    cap_fd = mkstemp(path);
    cr_assert(cap_fd >= 0);
    unlink(path);
    ab_log_init(fmt, min);
    ab_log_set_fd(cap_fd);
}

/* Returns everything written so far, NUL-terminated. */
static const char *captured(size_t *len)
{
    ssize_t n = pread(cap_fd, cap_buf, sizeof(cap_buf) - 1, 0);
    cr_assert(n >= 0);
    cap_buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return cap_buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static bool matches(const char *re, const char *s)
{
    regex_t r;
    cr_assert_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0, "bad regex %s", re);
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

#define TS_RE "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

/* Seconds between the line's timestamp and now. */
static double ts_age(const char *ts)
{
    struct tm tm = {0};
    int ms = 0;
    cr_assert_eq(sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms),
                 7, "timestamp %s", ts);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    double t = (double)timegm(&tm) + ms / 1000.0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + now.tv_nsec / 1e9 - t;
}

/* Parses the single JSON line in the capture. New reference. */
static json_t *one_json_line(void)
{
    size_t len;
    const char *s = captured(&len);
    cr_assert_eq(count_lines(s), 1, "want one line, got: %s", s);
    cr_assert_eq(s[len - 1], '\n');
    json_error_t err;
    json_t *j = json_loadb(s, len - 1, 0, &err);
    cr_assert_not_null(j, "not JSON (%s): %s", err.text, s);
    cr_assert(json_is_object(j));
    return j;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "%s is not a string", key);
    return json_string_value(v);
}

/* ---- text ---- */

Test(log, text_line_shape)
{
    capture_start(AB_LOG_TEXT, AB_LOG_DEBUG);
    ab_log(AB_LOG_INFO, "writer", "batch committed rows=%zu ms=%.1f", (size_t)5, 1.25);
    const char *s = captured(NULL);
    cr_assert(matches("^" TS_RE " INFO  writer: batch committed rows=5 ms=1\\.2\n$", s), "%s", s);
    double age = ts_age(s);
    cr_assert(age > -2 && age < 10, "timestamp is %.3f s off now: %s", age, s);

    ab_log(AB_LOG_ERROR, NULL, "no component");
    ab_log(AB_LOG_WARN, "bus", "careful");
    ab_log(AB_LOG_DEBUG, "x", "detail");
    s = captured(NULL);
    cr_assert_eq(count_lines(s), 4);
    cr_assert(matches("\n" TS_RE " ERROR -: no component\n", s), "%s", s);
    cr_assert(matches("\n" TS_RE " WARN  bus: careful\n", s), "%s", s);
    cr_assert(matches("\n" TS_RE " DEBUG x: detail\n$", s), "%s", s);
}

Test(log, text_escapes_keep_one_line)
{
    capture_start(AB_LOG_TEXT, AB_LOG_INFO);
    ab_log(AB_LOG_INFO, "ws",
           "a\nb\tc\rd\x01"
           "e\xff"
           "f caf\xc3\xa9");
    const char *s = captured(NULL);
    cr_assert_eq(count_lines(s), 1, "%s", s);
    cr_assert_not_null(strstr(s, "ws: a\\nb\\tc\\rd\\x01e\\xfff caf\xc3\xa9\n"), "%s", s);
}

Test(log, text_truncates_long_messages)
{
    static char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    capture_start(AB_LOG_TEXT, AB_LOG_INFO);
    ab_log(AB_LOG_INFO, "big", "%s", big);
    size_t len;
    const char *s = captured(&len);
    cr_assert_eq(count_lines(s), 1);
    cr_assert_leq(len, AB_LOG_LINE_MAX);
    cr_assert_gt(len, AB_LOG_LINE_MAX - 100);
    cr_assert(matches("x\\.\\.\\.\\[truncated\\]\n$", s), "%s", s + len - 40);
}

/* ---- json ---- */

Test(log, json_line_shape_and_fields)
{
    capture_start(AB_LOG_JSON, AB_LOG_DEBUG);
    ab_log(AB_LOG_INFO, "writer", "batch committed rows=%zu ms=%.1f", (size_t)5, 1.25);
    json_t *j = one_json_line();
    cr_assert(matches("^" TS_RE "$", jstr(j, "ts")), "%s", jstr(j, "ts"));
    double age = ts_age(jstr(j, "ts"));
    cr_assert(age > -2 && age < 10);
    cr_assert_str_eq(jstr(j, "level"), "info");
    cr_assert_str_eq(jstr(j, "comp"), "writer");
    cr_assert_str_eq(jstr(j, "msg"), "batch committed");
    json_t *rows = json_object_get(j, "rows");
    cr_assert(json_is_integer(rows));
    cr_assert_eq(json_integer_value(rows), 5);
    json_t *ms = json_object_get(j, "ms");
    cr_assert(json_is_real(ms));
    cr_assert_float_eq(json_real_value(ms), 1.2, 1e-9);
    cr_assert_eq(json_object_size(j), 6);
    json_decref(j);
}

Test(log, json_field_parsing_rules)
{
    static const struct {
        const char *in;
        const char *msg;
        const char *fields; /* expected extra members, as a JSON object */
    } cases[] = {
        {"request done path=\"/api/v1/klines x\" status=200 ok=yes", "request done",
         "{\"path\":\"/api/v1/klines x\",\"status\":200,\"ok\":\"yes\"}"},
        {"a=1 then text b=2", "a=1 then text", "{\"b\":2}"},
        {"only text here", "only text here", "{}"},
        {"k=1 k2=-0.5e3", "", "{\"k\":1,\"k2\":-500.0}"},
        {"numbers? n1=007 n2=1e n3=.5 n4=-0 sym=1000SATSUSDT", "numbers?",
         "{\"n1\":\"007\",\"n2\":\"1e\",\"n3\":\".5\",\"n4\":0,\"sym\":\"1000SATSUSDT\"}"},
        {"hello msg=x level=y ts=z comp=w truncated=1", "hello",
         "{\"x_msg\":\"x\",\"x_level\":\"y\",\"x_ts\":\"z\",\"x_comp\":\"w\",\"x_truncated\":1}"},
        {"quote q=\"say \\\"hi\\\" \\\\ ok\"", "quote", "{\"q\":\"say \\\"hi\\\" \\\\ ok\"}"},
        {"broken q=\"unterminated x=1", "broken q=\"unterminated", "{\"x\":1}"},
        {"empty v= w=2", "empty", "{\"v\":\"\",\"w\":2}"},
        {"trailing spaces k=v   ", "trailing spaces", "{\"k\":\"v\"}"},
        {"url=http://h/p?a=b&c=d", "", "{\"url\":\"http://h/p?a=b&c=d\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        capture_start(AB_LOG_JSON, AB_LOG_INFO);
        ab_log(AB_LOG_WARN, "c", "%s", cases[i].in);
        json_t *j = one_json_line();
        cr_assert_str_eq(jstr(j, "msg"), cases[i].msg, "case %zu", i);
        cr_assert_str_eq(jstr(j, "level"), "warn");
        json_t *want = json_loads(cases[i].fields, 0, NULL);
        cr_assert_not_null(want, "bad expectation %zu", i);
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            json_t *got = json_object_get(j, k);
            cr_assert_not_null(got, "case %zu: field %s missing", i, k);
            cr_assert(json_equal(got, v), "case %zu: field %s = %s", i, k,
                      json_dumps(got, JSON_ENCODE_ANY));
        }
        cr_assert_eq(json_object_size(j), 4 + json_object_size(want), "case %zu: %s", i,
                     captured(NULL));
        json_decref(want);
        json_decref(j);
        close(cap_fd);
    }
}

Test(log, json_escapes_and_invalid_utf8)
{
    capture_start(AB_LOG_JSON, AB_LOG_INFO);
    ab_log(AB_LOG_INFO, "co\"mp", "line1\nline2\t\"q\" back\\slash \x01 bad\xff caf\xc3\xa9");
    json_t *j = one_json_line();
    cr_assert_str_eq(jstr(j, "comp"), "co\"mp");
    cr_assert_str_eq(jstr(j, "msg"),
                     "line1\nline2\t\"q\" back\\slash \x01 bad\xef\xbf\xbd caf\xc3\xa9");
    json_decref(j);
}

Test(log, json_truncation_stays_valid)
{
    static char big[10000];
    memset(big, 'y', sizeof(big) - 1);
    capture_start(AB_LOG_JSON, AB_LOG_INFO);
    ab_log(AB_LOG_INFO, "big", "%s", big);
    json_t *j = one_json_line();
    cr_assert(json_is_true(json_object_get(j, "truncated")));
    cr_assert_gt(strlen(jstr(j, "msg")), 3000);
    json_decref(j);
    close(cap_fd);

    /* Escapes grow the text: quotes double in size; still valid. */
    memset(big, '"', sizeof(big) - 1);
    capture_start(AB_LOG_JSON, AB_LOG_INFO);
    ab_log(AB_LOG_INFO, "big", "%s", big);
    j = one_json_line();
    cr_assert(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    close(cap_fd);

    /* Many fields: whole fields are dropped, never half of one. */
    char many[20000];
    size_t n = (size_t)snprintf(many, sizeof(many), "fields");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, " key%d=%d", i, i);
    capture_start(AB_LOG_JSON, AB_LOG_INFO);
    ab_log(AB_LOG_INFO, "big", "%s", many);
    size_t len;
    captured(&len);
    cr_assert_leq(len, AB_LOG_LINE_MAX);
    j = one_json_line();
    cr_assert(json_is_true(json_object_get(j, "truncated")));
    cr_assert_str_eq(jstr(j, "msg"), "fields");
    size_t got = json_object_size(j) - 5;
    cr_assert_gt(got, 50);
    for (size_t i = 0; i < got; i++) {
        char k[32];
        snprintf(k, sizeof(k), "key%zu", i);
        json_t *v = json_object_get(j, k);
        cr_assert(json_is_integer(v), "%s missing", k);
        cr_assert_eq(json_integer_value(v), (json_int_t)i);
    }
    json_decref(j);
}

/* ---- levels and settings ---- */

Test(log, level_filter)
{
    capture_start(AB_LOG_TEXT, AB_LOG_WARN);
    cr_assert_not(ab_log_enabled(AB_LOG_DEBUG));
    cr_assert_not(ab_log_enabled(AB_LOG_INFO));
    cr_assert(ab_log_enabled(AB_LOG_WARN));
    cr_assert(ab_log_enabled(AB_LOG_ERROR));
    ab_log(AB_LOG_DEBUG, "t", "d");
    ab_log(AB_LOG_INFO, "t", "i");
    ab_log(AB_LOG_WARN, "t", "w");
    ab_log(AB_LOG_ERROR, "t", "e");
    const char *s = captured(NULL);
    cr_assert_eq(count_lines(s), 2, "%s", s);
    cr_assert_null(strstr(s, "t: d\n"));
    cr_assert_null(strstr(s, "t: i\n"));
    cr_assert_not_null(strstr(s, "WARN  t: w\n"));
    cr_assert_not_null(strstr(s, "ERROR t: e\n"));

    ab_log_init(AB_LOG_TEXT, AB_LOG_ERROR);
    ab_log(AB_LOG_WARN, "t", "w2");
    cr_assert_eq(count_lines(captured(NULL)), 2);
    ab_log_init(AB_LOG_TEXT, AB_LOG_DEBUG);
    ab_log(AB_LOG_DEBUG, "t", "d2");
    cr_assert_eq(count_lines(captured(NULL)), 3);
}

Test(log, parse_names)
{
    enum ab_log_level lv = AB_LOG_INFO;
    enum ab_log_format f = AB_LOG_TEXT;
    cr_assert_eq(ab_log_level_parse("DEBUG", &lv), 0);
    cr_assert_eq(lv, AB_LOG_DEBUG);
    cr_assert_eq(ab_log_level_parse("warning", &lv), 0);
    cr_assert_eq(lv, AB_LOG_WARN);
    cr_assert_eq(ab_log_level_parse("Error", &lv), 0);
    cr_assert_eq(lv, AB_LOG_ERROR);
    cr_assert_eq(ab_log_level_parse("info", &lv), 0);
    cr_assert_eq(lv, AB_LOG_INFO);
    cr_assert_eq(ab_log_level_parse("verbose", &lv), AB_EINVAL);
    cr_assert_eq(ab_log_level_parse(NULL, &lv), AB_EINVAL);
    cr_assert_eq(ab_log_format_parse("JSON", &f), 0);
    cr_assert_eq(f, AB_LOG_JSON);
    cr_assert_eq(ab_log_format_parse("text", &f), 0);
    cr_assert_eq(f, AB_LOG_TEXT);
    cr_assert_eq(ab_log_format_parse("xml", &f), AB_EINVAL);
    cr_assert_str_eq(ab_log_level_name(AB_LOG_WARN), "warn");
    cr_assert_str_eq(ab_log_level_name(AB_LOG_DEBUG), "debug");
}

Test(log, errno_is_preserved)
{
    capture_start(AB_LOG_JSON, AB_LOG_INFO);
    errno = ENOENT;
    ab_log(AB_LOG_ERROR, "io", "open failed err=%d", errno);
    cr_assert_eq(errno, ENOENT);
    ab_log_set_fd(-1); /* back to stderr: the file is no longer written */
    ab_log(AB_LOG_INFO, "io", "this line goes to stderr");
    cr_assert_eq(count_lines(captured(NULL)), 1);
}

/* ---- adapters ---- */

Test(log, lws_adapter)
{
    capture_start(AB_LOG_JSON, AB_LOG_INFO);
    ab_log_lws_emit(1 << 0, "connection failed\n");  /* LLL_ERR */
    ab_log_lws_emit(1 << 1, "slow peer");            /* LLL_WARN */
    ab_log_lws_emit(1 << 2, "lws_create_context\n"); /* LLL_NOTICE */
    ab_log_lws_emit(1 << 4, "debug noise\n");        /* LLL_DEBUG: filtered at info */
    ab_log_lws_emit(1 << 3, "info noise\n");         /* LLL_INFO: debug, filtered */
    const char *s = captured(NULL);
    cr_assert_eq(count_lines(s), 3, "%s", s);
    const char *levels[] = {"error", "warn", "info"};
    const char *msgs[] = {"connection failed", "slow peer", "lws_create_context"};
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        const char *nl = strchr(p, '\n');
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, NULL);
        cr_assert_not_null(j);
        cr_assert_str_eq(jstr(j, "level"), levels[i]);
        cr_assert_str_eq(jstr(j, "comp"), "lws");
        cr_assert_str_eq(jstr(j, "msg"), msgs[i]);
        json_decref(j);
        p = nl + 1;
    }
    cr_assert_eq(ab_log_lws_levels(), (1 << 0) | (1 << 1) | (1 << 2) | (1 << 10));
    ab_log_init(AB_LOG_JSON, AB_LOG_ERROR);
    cr_assert_eq(ab_log_lws_levels(), 1 << 0);
    ab_log_init(AB_LOG_JSON, AB_LOG_DEBUG);
    cr_assert_neq(ab_log_lws_levels() & (1 << 4), 0);
}

static void call_mhd(void *cls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ab_log_mhd(cls, fmt, ap);
    va_end(ap);
}

Test(log, mhd_adapter)
{
    capture_start(AB_LOG_TEXT, AB_LOG_INFO);
    call_mhd(NULL, "Failed to bind to port %u: %s\n", 8080u, "Address already in use");
    call_mhd((void *)"rest", "Error processing request %d\n", 7);
    const char *s = captured(NULL);
    cr_assert_eq(count_lines(s), 2, "%s", s);
    cr_assert(
        matches("^" TS_RE " WARN  mhd: Failed to bind to port 8080: Address already in use\n", s),
        "%s", s);
    cr_assert(matches("\n" TS_RE " WARN  rest: Error processing request 7\n$", s), "%s", s);
}

/* ---- redaction ---- */

Test(log, redact_plain)
{
    cr_assert_str_eq(ab_log_redact("hunter2"), "***");
    cr_assert_str_eq(ab_log_redact(""), "(none)");
    cr_assert_str_eq(ab_log_redact(NULL), "(none)");
}

Test(log, redact_url_cases)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"postgresql://user:secret@localhost:5432/db", "postgresql://user:***@localhost:5432/db"},
        {"postgres://user:secret@localhost/db?sslmode=disable",
         "postgres://user:***@localhost/db?sslmode=disable"},
        {"postgresql://u:p%40secret@h/db", "postgresql://u:***@h/db"},
        {"postgresql://u:se@cr/et@h/db", "postgresql://u:***@h/db"},
        {"postgresql://u:secret@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"},
        {"postgresql://u:@h/db", "postgresql://u:***@h/db"},
        {"postgresql://u:se?cret@h/db?x=1", "postgresql://u:***@h/db?x=1"},
        {"postgresql://u:se#cret@h/db", "postgresql://u:***@h/db"},
        {"postgresql://h:5432/db?application_name=a@b",
         "postgresql://h:5432/db?application_name=a@b"},
        {"postgresql://user@localhost/db", "postgresql://user@localhost/db"},
        {"postgresql://localhost:5432/db", "postgresql://localhost:5432/db"},
        {"postgresql:///db?host=/run/postgresql", "postgresql:///db?host=/run/postgresql"},
        {"postgresql://h/db?user=u&password=secret&sslmode=require",
         "postgresql://h/db?user=u&password=***&sslmode=require"},
        {"postgresql://h/db?sslpassword=secret#frag", "postgresql://h/db?sslpassword=***#frag"},
        {"postgresql://h/db?PASSWORD=secret", "postgresql://h/db?PASSWORD=***"},
        {"host=localhost port=5432 password=secret dbname=x",
         "host=localhost port=5432 password=*** dbname=x"},
        {"host=localhost password = 'se cret\\' x' dbname=x",
         "host=localhost password = *** dbname=x"},
        {"password=secret", "password=***"},
        {"Password=secret\\ more user=u", "Password=*** user=u"},
        {"sslpassword='secret' sslmode=verify-full", "sslpassword=*** sslmode=verify-full"},
        {"  dbname=abidance user=ab  ", "  dbname=abidance user=ab  "},
        {"dbname='my db' password=", "dbname='my db' password=***"},
        {"", ""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(out, 'Z', sizeof(out));
        cr_assert_eq(ab_log_redact_url(cases[i].in, out, sizeof(out)), 0, "case %zu", i);
        cr_assert_str_eq(out, cases[i].want, "case %zu: %s", i, cases[i].in);
        cr_assert_null(strstr(out, "secret"), "case %zu leaked: %s", i, out);
        cr_assert_null(strstr(out, "cret"), "case %zu leaked: %s", i, out);
    }
}

Test(log, redact_url_small_buffer_and_bad_args)
{
    char out[12];
    const char *in = "postgresql://user:secret@localhost/db";
    cr_assert_eq(ab_log_redact_url(in, out, sizeof(out)), AB_ERANGE);
    cr_assert_eq(strlen(out), sizeof(out) - 1);
    cr_assert_eq(strncmp(out, in, sizeof(out) - 1), 0);

    char mid[24]; /* cut right after the mask */
    cr_assert_eq(ab_log_redact_url(in, mid, sizeof(mid)), AB_ERANGE);
    cr_assert_str_eq(mid, "postgresql://user:***@l");

    cr_assert_eq(ab_log_redact_url(NULL, out, sizeof(out)), AB_EINVAL);
    cr_assert_eq(ab_log_redact_url(in, NULL, 10), AB_EINVAL);
    cr_assert_eq(ab_log_redact_url(in, out, 0), AB_EINVAL);
}

/* ---- threads ---- */

#define THREADS    8
#define PER_THREAD 400
#define PAD_LEN    300

static void *log_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[PAD_LEN + 1];
    memset(pad, 'a' + id, PAD_LEN);
    pad[PAD_LEN] = '\0';
    for (int i = 0; i < PER_THREAD; i++)
        ab_log(AB_LOG_INFO, "worker", "tick thread=%d seq=%d pad=%s", id, i, pad);
    return NULL;
}

static void run_workers(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, log_worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

Test(log, threads_never_interleave_json)
{
    capture_start(AB_LOG_JSON, AB_LOG_INFO);
    run_workers();
    size_t len;
    char *s = (char *)captured(&len);
    cr_assert_eq(count_lines(s), THREADS * PER_THREAD);
    int next[THREADS] = {0};
    char *p = s;
    while (*p) {
        char *nl = strchr(p, '\n');
        cr_assert_not_null(nl);
        json_error_t err;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, &err);
        cr_assert_not_null(j, "line not JSON (%s): %.*s", err.text, (int)(nl - p), p);
        json_int_t id = json_integer_value(json_object_get(j, "thread"));
        cr_assert(id >= 0 && id < THREADS);
        cr_assert_eq(json_integer_value(json_object_get(j, "seq")), next[id], "order broken");
        next[id]++;
        const char *pad = jstr(j, "pad");
        cr_assert_eq(strlen(pad), PAD_LEN);
        for (size_t i = 0; i < PAD_LEN; i++)
            cr_assert_eq(pad[i], 'a' + id);
        json_decref(j);
        p = nl + 1;
    }
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(next[i], PER_THREAD);
}

Test(log, threads_never_interleave_text_through_a_pipe)
{
    /* A pipe: the reader drains it while the workers write. */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    ab_log_init(AB_LOG_TEXT, AB_LOG_INFO);
    ab_log_set_fd(fds[1]);
    static char got[THREADS * PER_THREAD * (PAD_LEN + 128)];
    size_t n = 0;
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        close(fds[0]);
        run_workers();
        _exit(0);
    }
    close(fds[1]);
    for (;;) {
        ssize_t r = read(fds[0], got + n, sizeof(got) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    got[n] = '\0';
    close(fds[0]);
    int status;
    waitpid(child, &status, 0);
    cr_assert_eq(count_lines(got), THREADS * PER_THREAD);
    char *p = got;
    int next[THREADS] = {0};
    while (*p) {
        char *nl = strchr(p, '\n');
        *nl = '\0';
        int id = -1, seq = -1, off = 0;
        const char *body = strstr(p, " INFO  worker: tick thread=");
        cr_assert_not_null(body, "bad line: %s", p);
        cr_assert_eq(sscanf(body, " INFO  worker: tick thread=%d seq=%d pad=%n", &id, &seq, &off),
                     2, "%s", p);
        cr_assert(id >= 0 && id < THREADS);
        cr_assert_eq(seq, next[id]);
        next[id]++;
        cr_assert_eq(strlen(body + off), PAD_LEN, "%s", p);
        for (size_t i = 0; i < PAD_LEN; i++)
            cr_assert_eq(body[off + i], 'a' + id);
        p = nl + 1;
    }
}

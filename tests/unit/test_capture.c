#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/capture.h"
#include "common/err.h"

static void data_path(char *buf, size_t len, const char *rel)
{
    snprintf(buf, len, "%s/binance/%s", AB_SHARED_DATA, rel);
}

struct counts {
    size_t ws, http, connect, skip;
    size_t longest; /* longest payload */
};

static struct counts read_all(const char *rel)
{
    char path[512];
    data_path(path, sizeof path, rel);
    struct ab_capture *c = NULL;
    cr_assert_eq(ab_capture_open(path, 0, &c), 0, "open %s", path);
    struct counts n = {0};
    struct ab_capture_rec rec;
    const char *why = NULL;
    int rc;
    size_t last_line = 0;
    while ((rc = ab_capture_next(c, &rec, &why)) != 0) {
        cr_assert_eq(rc, 1, "%s:%zu: %d %s", rel, rec.line_no, rc, why);
        cr_assert_gt(rec.line_no, last_line);
        last_line = rec.line_no;
        cr_assert_eq(rec.file_index, 0);
        switch (rec.kind) {
        case AB_CAP_WS:
            n.ws++;
            /* all captures use combined streams */
            cr_assert(rec.payload_len > 20 && strncmp(rec.payload, "{\"stream\":", 10) == 0,
                      "%s:%zu", rel, rec.line_no);
            cr_assert_eq(rec.payload[rec.payload_len - 1], '}');
            cr_assert_eq(rec.payload[rec.payload_len], '\0');
            cr_assert_null(rec.url);
            break;
        case AB_CAP_HTTP:
            n.http++;
            cr_assert(rec.url_len > 8 && strncmp(rec.url, "https://", 8) == 0);
            cr_assert_eq(rec.url[rec.url_len], '\0');
            cr_assert_eq(strlen(rec.url), rec.url_len);
            cr_assert(strstr(rec.url, "/depth?symbol=") || strstr(rec.url, "/exchangeInfo"), "%s",
                      rec.url);
            cr_assert_eq(rec.payload[0], '{');
            cr_assert_eq(rec.payload[rec.payload_len - 1], '}');
            cr_assert_eq(rec.payload[rec.payload_len], '\0');
            cr_assert_null(rec.header);
            break;
        case AB_CAP_CONNECT:
            n.connect++;
            cr_assert(strncmp(rec.url, "wss://stream.binance.com:9443/stream?streams=", 45) == 0);
            cr_assert_eq(strlen(rec.url), rec.url_len);
            cr_assert_eq(rec.payload_len, 0);
            break;
        case AB_CAP_SKIP:
            n.skip++;
            cr_assert(strncmp(rec.payload, "configuration: ", 15) == 0, "%s:%zu", rel, rec.line_no);
            cr_assert_eq(rec.recv_ns, 0);
            break;
        }
        if (rec.kind != AB_CAP_SKIP) {
            /* every capture is from 2021 (1609459200 .. 1640995200 s) */
            cr_assert(rec.recv_ns >= 1609459200LL * 1000000000LL &&
                          rec.recv_ns < 1640995200LL * 1000000000LL,
                      "%s:%zu: recv_ns %lld", rel, rec.line_no, (long long)rec.recv_ns);
        }
        if (rec.payload_len > n.longest)
            n.longest = rec.payload_len;
    }
    ab_capture_free(c);
    return n;
}

Test(capture, recorded_counts_match_readme)
{
    static const struct {
        const char *rel;
        size_t ws, http, connect, skip;
    } want[] = {
        {"cryptofeed-ce58c2a/BINANCE.0", 0, 1, 0, 1},
        {"cryptofeed-ce58c2a/BINANCE.http.0.0", 0, 4, 0, 0},
        {"cryptofeed-ce58c2a/BINANCE.ws.1.0", 265, 0, 1, 0},
        {"cryptofeed-2997020/BINANCE-ee25be.0", 4716, 3, 1, 0},
        {"cryptofeed-1312c06/BINANCE-b38f7c.0", 11357, 10, 1, 1},
        {"cryptofeed-3525dc8/BINANCE.http.0.0", 0, 10, 0, 0},
        {"cryptofeed-3525dc8/BINANCE.ws.1.0", 1228, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        struct counts n = read_all(want[i].rel);
        cr_assert_eq(n.ws, want[i].ws, "%s ws %zu", want[i].rel, n.ws);
        cr_assert_eq(n.http, want[i].http, "%s http %zu", want[i].rel, n.http);
        cr_assert_eq(n.connect, want[i].connect, "%s connect %zu", want[i].rel, n.connect);
        cr_assert_eq(n.skip, want[i].skip, "%s skip %zu", want[i].rel, n.skip);
        if (i == 0) /* exchangeInfo: one ~1.86 MB line */
            cr_assert_gt(n.longest, 1800000);
    }
}

Test(capture, first_records_exact)
{
    char path[512];
    data_path(path, sizeof path, "cryptofeed-2997020/BINANCE-ee25be.0");
    struct ab_capture *c = NULL;
    cr_assert_eq(ab_capture_open(path, 0, &c), 0);
    struct ab_capture_rec rec;
    cr_assert_eq(ab_capture_next(c, &rec, NULL), 1);
    cr_assert_eq(rec.kind, AB_CAP_CONNECT);
    cr_assert_eq(rec.recv_ns, 1617566590378895000LL);
    cr_assert_eq(rec.line_no, 1);
    cr_assert_eq(ab_capture_next(c, &rec, NULL), 1);
    cr_assert_eq(rec.kind, AB_CAP_WS);
    cr_assert_eq(rec.recv_ns, 1617566591326123000LL);
    cr_assert_eq(rec.line_no, 2);
    /* the payload is the exact JSON Binance sent */
    json_error_t jerr;
    json_t *j = json_loadb(rec.payload, rec.payload_len, 0, &jerr);
    cr_assert_not_null(j, "%s", jerr.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "stream")), "dotusdt@depth@100ms");
    json_t *data = json_object_get(j, "data");
    cr_assert_eq(json_integer_value(json_object_get(data, "U")), 1513939202);
    json_decref(j);
    /* skip ahead to the DOTUSDT snapshot */
    while (ab_capture_next(c, &rec, NULL) == 1 && rec.kind != AB_CAP_HTTP)
        ;
    cr_assert_eq(rec.kind, AB_CAP_HTTP);
    cr_assert_str_eq(rec.url, "https://www.binance.com/api/v1/depth?symbol=DOTUSDT&limit=1000");
    cr_assert_eq(rec.recv_ns, 1617566592106536900LL);
    j = json_loadb(rec.payload, rec.payload_len, 0, &jerr);
    cr_assert_not_null(j, "%s", jerr.text);
    cr_assert_eq(json_integer_value(json_object_get(j, "lastUpdateId")), 1513939277);
    cr_assert_eq(json_array_size(json_object_get(j, "bids")), 1000);
    json_decref(j);
    ab_capture_free(c);
}

static void check_set(const char *const *rels, size_t n_rels, size_t want_total, size_t want_ws,
                      size_t want_http)
{
    char paths[4][512];
    const char *pp[4];
    cr_assert(n_rels <= 4);
    for (size_t i = 0; i < n_rels; i++) {
        data_path(paths[i], sizeof paths[i], rels[i]);
        pp[i] = paths[i];
    }
    struct ab_capture_set *s = NULL;
    char err[256];
    int rc = ab_capture_set_load(pp, n_rels, 0, &s, err, sizeof err);
    cr_assert_eq(rc, 0, "%d: %s", rc, err);
    size_t n = ab_capture_set_count(s), ws = 0, http = 0;
    cr_assert_eq(n, want_total);
    int64_t prev = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        const struct ab_capture_rec *r = ab_capture_set_get(s, i);
        cr_assert_not_null(r);
        cr_assert(r->recv_ns >= prev, "record %zu goes back in time", i);
        cr_assert_neq(r->kind, AB_CAP_SKIP);
        cr_assert_lt(r->file_index, n_rels);
        if (r->kind == AB_CAP_WS)
            ws++;
        if (r->kind == AB_CAP_HTTP) {
            http++;
            json_error_t jerr;
            json_t *j = json_loadb(r->payload, r->payload_len, 0, &jerr);
            cr_assert_not_null(j, "%s", jerr.text);
            json_decref(j);
        }
        prev = r->recv_ns;
    }
    cr_assert_null(ab_capture_set_get(s, n));
    cr_assert_eq(ws, want_ws);
    cr_assert_eq(http, want_http);
    ab_capture_set_free(s);
}

Test(capture, merged_sets_are_time_ordered)
{
    const char *a[] = {"cryptofeed-ce58c2a/BINANCE.0", "cryptofeed-ce58c2a/BINANCE.http.0.0",
                       "cryptofeed-ce58c2a/BINANCE.ws.1.0"};
    check_set(a, 3, 1 + 4 + 265 + 1, 265, 5);
    const char *d[] = {"cryptofeed-3525dc8/BINANCE.ws.1.0", "cryptofeed-3525dc8/BINANCE.http.0.0"};
    check_set(d, 2, 1228 + 10 + 1, 1228, 10);
    const char *b[] = {"cryptofeed-2997020/BINANCE-ee25be.0"};
    check_set(b, 1, 4716 + 3 + 1, 4716, 3);
    const char *c[] = {"cryptofeed-1312c06/BINANCE-b38f7c.0"};
    check_set(c, 1, 11357 + 10 + 1, 11357, 10);
}

Test(capture, merge_interleaves_snapshots)
{
    /* In the newer layout the NKNUSDT snapshot (received 1633998512.320639)
     * must land between the WS frames received around it. */
    char p1[512], p2[512];
    data_path(p1, sizeof p1, "cryptofeed-ce58c2a/BINANCE.http.0.0");
    data_path(p2, sizeof p2, "cryptofeed-ce58c2a/BINANCE.ws.1.0");
    const char *pp[] = {p1, p2};
    struct ab_capture_set *s = NULL;
    cr_assert_eq(ab_capture_set_load(pp, 2, 0, &s, NULL, 0), 0);
    size_t idx = SIZE_MAX;
    for (size_t i = 0; i < ab_capture_set_count(s); i++) {
        const struct ab_capture_rec *r = ab_capture_set_get(s, i);
        if (r->kind == AB_CAP_HTTP && strstr(r->url, "NKNUSDT")) {
            idx = i;
            break;
        }
    }
    cr_assert_neq(idx, SIZE_MAX);
    cr_assert_eq(ab_capture_set_get(s, idx)->recv_ns, 1633998512320639000LL);
    cr_assert_eq(ab_capture_set_get(s, idx)->file_index, 0);
    /* connect (…511.159679) and the first two frames (…512.0633569, …512.564785)
     * bracket it: it is the third record. */
    cr_assert_eq(idx, 2);
    cr_assert_eq(ab_capture_set_get(s, 1)->recv_ns, 1633998512063356900LL);
    cr_assert_eq(ab_capture_set_get(s, 3)->recv_ns, 1633998512564785000LL);
    ab_capture_set_free(s);
}

/* ---- malformed input ---- */

static void write_tmp(char *path, size_t len, const char *content, size_t n)
{
    snprintf(path, len, "/tmp/ab_test_capture_XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, n), (ssize_t)n);
    close(fd);
}

Test(capture, malformed_lines_are_reported_and_skipped)
{
    static const char content[] =
        "configuration: {\"x\":1}\n"
        "1617566591.5: {\"ok\":1}\n"     /* 2: ws */
        "1617566591.326123 {no colon}\n" /* 3: EINVAL */
        "16175x6591.3: {}\n"             /* 4: EINVAL */
        "1617566591.1234567891: {}\n"    /* 5: ERANGE (10 decimals) */
        "99999999999: {}\n"              /* 6: ERANGE */
        "https://x/y 1617566591.3: {}\n" /* 7: EINVAL no arrow */
        "https://x/y -> abc: {}\n"       /* 8: EINVAL */
        "wss://x <-> soon\n"             /* 9: EINVAL */
        "1617566591.: {}\n"              /* 10: EINVAL */
        "\n"                             /* 11: empty, skipped */
        "1617566592: {\"ok\":2}\r\n"     /* 12: ws, CRLF */
        "https://a/b?c=d -> 1617566593.25: {\"b\":[1]} header: {\"h\":\"v\"}\n" /* 13 */
        "wss://s/stream?streams=a <-> 1617566590.1\n"                           /* 14: connect */
        "hello\n"                                                               /* 15: skip */
        "https://a/b -> 1617566593.5: \n"        /* 16: http, empty body */
        "1617566594.000000001: {\"last\":true}"; /* 17: no final newline */
    char path[64];
    write_tmp(path, sizeof path, content, sizeof content - 1);
    struct ab_capture *c = NULL;
    cr_assert_eq(ab_capture_open(path, 0, &c), 0);
    struct ab_capture_rec rec;
    const char *why;
    static const struct {
        int rc;
        size_t line;
        enum ab_capture_kind kind;
    } want[] = {
        {1, 1, AB_CAP_SKIP},     {1, 2, AB_CAP_WS},    {AB_EINVAL, 3, 0},    {AB_EINVAL, 4, 0},
        {AB_ERANGE, 5, 0},       {AB_ERANGE, 6, 0},    {AB_EINVAL, 7, 0},    {AB_EINVAL, 8, 0},
        {AB_EINVAL, 9, 0},       {AB_EINVAL, 10, 0},   {1, 12, AB_CAP_WS},   {1, 13, AB_CAP_HTTP},
        {1, 14, AB_CAP_CONNECT}, {1, 15, AB_CAP_SKIP}, {1, 16, AB_CAP_HTTP}, {1, 17, AB_CAP_WS},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        why = NULL;
        int rc = ab_capture_next(c, &rec, &why);
        cr_assert_eq(rc, want[i].rc, "step %zu (line %zu): rc %d", i, want[i].line, rc);
        cr_assert_eq(rec.line_no, want[i].line, "step %zu", i);
        if (rc < 0) {
            cr_assert_not_null(why);
            continue;
        }
        cr_assert_eq(rec.kind, want[i].kind, "line %zu", want[i].line);
        if (want[i].line == 12) {
            cr_assert_str_eq(rec.payload, "{\"ok\":2}"); /* '\r' dropped */
            cr_assert_eq(rec.recv_ns, 1617566592000000000LL);
        }
        if (want[i].line == 13) {
            cr_assert_str_eq(rec.url, "https://a/b?c=d");
            cr_assert_str_eq(rec.payload, "{\"b\":[1]}");
            cr_assert_eq(rec.payload_len, 9);
            cr_assert_str_eq(rec.header, "{\"h\":\"v\"}");
            cr_assert_eq(rec.header_len, 9);
            cr_assert_eq(rec.recv_ns, 1617566593250000000LL);
        }
        if (want[i].line == 14) {
            cr_assert_str_eq(rec.url, "wss://s/stream?streams=a");
            cr_assert_eq(rec.recv_ns, 1617566590100000000LL);
        }
        if (want[i].line == 15)
            cr_assert_str_eq(rec.payload, "hello");
        if (want[i].line == 16)
            cr_assert_eq(rec.payload_len, 0);
        if (want[i].line == 17) {
            cr_assert_str_eq(rec.payload, "{\"last\":true}");
            cr_assert_eq(rec.recv_ns, 1617566594000000001LL);
        }
    }
    cr_assert_eq(ab_capture_next(c, &rec, &why), 0);
    cr_assert_eq(ab_capture_next(c, &rec, &why), 0); /* stays at the end */
    ab_capture_free(c);

    /* the same file refuses to load as a set, naming the first bad line */
    struct ab_capture_set *s = (struct ab_capture_set *)0x1;
    char err[256];
    const char *pp[] = {path};
    cr_assert_eq(ab_capture_set_load(pp, 1, 0, &s, err, sizeof err), AB_EINVAL);
    cr_assert_eq(s, (struct ab_capture_set *)0x1, "*out touched on failure");
    char want_prefix[128];
    snprintf(want_prefix, sizeof want_prefix, "%s:3: ", path);
    cr_assert(strncmp(err, want_prefix, strlen(want_prefix)) == 0, "err: %s", err);
    unlink(path);
}

Test(capture, line_cap)
{
    /* A 1 MiB cap cannot hold exchangeInfo: that line fails, the reader goes on. */
    char path[512];
    data_path(path, sizeof path, "cryptofeed-ce58c2a/BINANCE.0");
    struct ab_capture *c = NULL;
    cr_assert_eq(ab_capture_open(path, 1024 * 1024, &c), 0);
    struct ab_capture_rec rec;
    const char *why = NULL;
    cr_assert_eq(ab_capture_next(c, &rec, &why), AB_ENOMEM);
    cr_assert_eq(rec.line_no, 1);
    cr_assert_not_null(why);
    cr_assert_eq(ab_capture_next(c, &rec, &why), 1);
    cr_assert_eq(rec.kind, AB_CAP_SKIP);
    cr_assert_eq(rec.line_no, 2);
    cr_assert_eq(ab_capture_next(c, &rec, &why), 0);
    ab_capture_free(c);

    const char *pp[] = {path};
    struct ab_capture_set *s = NULL;
    char err[600];
    cr_assert_eq(ab_capture_set_load(pp, 1, 1024 * 1024, &s, err, sizeof err), AB_ENOMEM);
    cr_assert(strstr(err, ":1: ") != NULL, "%s", err);

    /* exactly at the cap is fine, one byte over is not */
    char tmp[64];
    static const char small[] = "1.5: 12345\n1.5: 123456\n";
    write_tmp(tmp, sizeof tmp, small, sizeof small - 1);
    cr_assert_eq(ab_capture_open(tmp, 10, &c), 0);
    cr_assert_eq(ab_capture_next(c, &rec, &why), 1);
    cr_assert_str_eq(rec.payload, "12345");
    cr_assert_eq(ab_capture_next(c, &rec, &why), AB_ENOMEM);
    cr_assert_eq(ab_capture_next(c, &rec, &why), 0);
    ab_capture_free(c);
    unlink(tmp);
}

Test(capture, open_errors_and_empty_files)
{
    struct ab_capture *c = NULL;
    cr_assert_eq(ab_capture_open("/nonexistent/abidance/capture", 0, &c), AB_EIO);
    cr_assert_null(c);
    ab_capture_free(NULL);
    ab_capture_set_free(NULL);
    cr_assert_eq(ab_capture_set_count(NULL), 0);

    const char *missing[] = {"/nonexistent/abidance/capture"};
    struct ab_capture_set *s = NULL;
    char err[256];
    cr_assert_eq(ab_capture_set_load(missing, 1, 0, &s, err, sizeof err), AB_EIO);
    cr_assert(strstr(err, "/nonexistent/abidance/capture") != NULL);

    char tmp[64];
    write_tmp(tmp, sizeof tmp, "\n\n\n", 3);
    cr_assert_eq(ab_capture_open(tmp, 0, &c), 0);
    struct ab_capture_rec rec;
    cr_assert_eq(ab_capture_next(c, &rec, NULL), 0);
    ab_capture_free(c);
    const char *pp[] = {tmp};
    cr_assert_eq(ab_capture_set_load(pp, 1, 0, &s, NULL, 0), 0);
    cr_assert_eq(ab_capture_set_count(s), 0);
    ab_capture_set_free(s);
    unlink(tmp);
}

Test(capture, parse_line_directly)
{
    struct ab_capture_rec rec;
    const char *why = NULL;
    char l1[] = "1633998512.0633569: {\"a\":1}";
    cr_assert_eq(ab_capture_parse_line(l1, strlen(l1), &rec, &why), 1);
    cr_assert_eq(rec.kind, AB_CAP_WS);
    cr_assert_eq(rec.recv_ns, 1633998512063356900LL);
    cr_assert_str_eq(rec.payload, "{\"a\":1}");
    char l2[] = "";
    cr_assert_eq(ab_capture_parse_line(l2, 0, &rec, &why), 0);
    char l3[] = "1: x";
    cr_assert_eq(ab_capture_parse_line(l3, strlen(l3), &rec, NULL), 1); /* reason may be NULL */
    cr_assert_eq(rec.recv_ns, 1000000000LL);
    char l4[] = "9223372036: x"; /* one second past the int64 ns range */
    cr_assert_eq(ab_capture_parse_line(l4, strlen(l4), &rec, &why), AB_ERANGE);
    char l5[] = "9223372035.999999999: x";
    cr_assert_eq(ab_capture_parse_line(l5, strlen(l5), &rec, &why), 1);
    cr_assert_eq(rec.recv_ns, 9223372035999999999LL);
    /* a JSON body containing " header: " inside a string is not split */
    char l6[] = "https://h/p -> 1.5: {\"k\":\"a header: {b}\"}";
    cr_assert_eq(ab_capture_parse_line(l6, strlen(l6), &rec, &why), 1);
    cr_assert_str_eq(rec.payload, "{\"k\":\"a header: {b}\"}");
    cr_assert_null(rec.header);
}

Test(capture, merge_is_stable_on_equal_times)
{
    /* Many equal timestamps in two files: file order, then line order, wins. */
    char a[64], b[64];
    char buf[8192];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%d.5: a%d\n", 10 + (i % 3), i);
    write_tmp(a, sizeof a, buf, n);
    n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%d.5: b%d\n", 12 - (i % 3), i);
    write_tmp(b, sizeof b, buf, n);
    const char *pp[] = {b, a};
    struct ab_capture_set *s = NULL;
    cr_assert_eq(ab_capture_set_load(pp, 2, 0, &s, NULL, 0), 0);
    cr_assert_eq(ab_capture_set_count(s), 400);
    const struct ab_capture_rec *prev = NULL;
    for (size_t i = 0; i < 400; i++) {
        const struct ab_capture_rec *r = ab_capture_set_get(s, i);
        /* payload "a<k>" comes from file 1 ("a" is second in pp), line k + 1 */
        cr_assert_eq(r->file_index, r->payload[0] == 'b' ? 0u : 1u);
        cr_assert_eq((size_t)strtol(r->payload + 1, NULL, 10) + 1, r->line_no);
        if (prev) {
            cr_assert(prev->recv_ns < r->recv_ns ||
                          (prev->recv_ns == r->recv_ns &&
                           (prev->file_index < r->file_index ||
                            (prev->file_index == r->file_index && prev->line_no < r->line_no))),
                      "record %zu out of order", i);
        }
        prev = r;
    }
    ab_capture_set_free(s);
    unlink(a);
    unlink(b);
}

/*
 * Fuzz target for common/capture.h. The line parser is checked against an
 * independent reading of the timestamp rules and its pointer contract; the
 * streaming reader and the merged set, fed the same bytes as a file (a
 * memfd), must report exactly what the line parser says about each line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/capture.h"
#include "common/err.h"
#include "fuzz/targets.h"

/* What parsing one line gave, with private copies of the strings. */
struct cap_expect {
    int rc;
    struct ab_capture_rec rec; /* pointers not used: see the copies */
    char *url, *payload, *header;
    size_t line_no;
};

static char *cap_dup(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    AB_FUZZ_CHECK(d != NULL);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static bool cap_inside(const char *p, size_t n, const char *line, size_t len)
{
    return p >= line && p + n <= line + len && p[n] == '\0';
}

/* The timestamp rules of capture.h, read independently: the code expected for ts text. */
static int cap_ts_oracle(const char *s, size_t n, int64_t *ns)
{
    size_t i = 0;
    __int128 sec = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        sec = sec * 10 + (s[i] - '0');
        if (sec > 9223372035) /* the last second whose ns fit in int64 */
            return AB_ERANGE;
        i++;
    }
    if (i == 0)
        return AB_EINVAL;
    int64_t frac = 0;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (i - start == 9)
                return AB_ERANGE;
            frac = frac * 10 + (s[i] - '0');
            i++;
        }
        if (i == start)
            return AB_EINVAL;
        for (size_t k = i - start; k < 9; k++)
            frac *= 10;
    }
    if (i != n)
        return AB_EINVAL;
    *ns = (int64_t)sec * 1000000000 + frac;
    return 0;
}

/* Parses one line (a private, exactly sized copy) and checks the contract. */
static void cap_parse_checked(const char *src, size_t len, struct cap_expect *ex)
{
    char *line = cap_dup(src, len); /* len + 1 bytes: line[len] is writable */
    struct ab_capture_rec rec;
    memset(&rec, 0, sizeof(rec));
    rec.line_no = 77;
    const char *why = NULL;
    int rc = ab_capture_parse_line(line, len, &rec, &why);
    memset(ex, 0, sizeof(*ex));
    ex->rc = rc;
    size_t eff = len > 0 && src[len - 1] == '\r' ? len - 1 : len;
    AB_FUZZ_CHECK(rc == 1 || rc == 0 || rc == AB_EINVAL || rc == AB_ERANGE);
    AB_FUZZ_CHECK((rc == 0) == (eff == 0));
    AB_FUZZ_CHECK(rc >= 0 || why != NULL);
    AB_FUZZ_CHECK(rec.line_no == 77); /* left untouched */

    /* WS records: "<ts>: <payload>" with the first ": " ending the timestamp. */
    if (eff > 0 && src[0] >= '0' && src[0] <= '9') {
        const char *sep = NULL;
        for (size_t i = 0; i + 1 < eff && !sep; i++)
            if (src[i] == ':' && src[i + 1] == ' ')
                sep = src + i;
        int64_t ns = 0;
        int want = sep ? cap_ts_oracle(src, (size_t)(sep - src), &ns) : AB_EINVAL;
        AB_FUZZ_CHECK(rc == (want == 0 ? 1 : want));
        if (rc == 1) {
            AB_FUZZ_CHECK(rec.kind == AB_CAP_WS && rec.recv_ns == ns);
            AB_FUZZ_CHECK(rec.payload_len == eff - (size_t)(sep + 2 - src));
            AB_FUZZ_CHECK(memcmp(rec.payload, sep + 2, rec.payload_len) == 0);
        }
    }
    if (rc == 1) {
        ex->rec = rec;
        AB_FUZZ_CHECK(rec.payload != NULL);
        switch (rec.kind) {
        case AB_CAP_WS:
            AB_FUZZ_CHECK(rec.url == NULL && rec.header == NULL && rec.recv_ns >= 0);
            break;
        case AB_CAP_HTTP:
            AB_FUZZ_CHECK(rec.url == line && rec.url_len >= 4 && memcmp(line, "http", 4) == 0);
            AB_FUZZ_CHECK(cap_inside(rec.url, rec.url_len, line, len) && rec.recv_ns >= 0);
            if (rec.header)
                AB_FUZZ_CHECK(cap_inside(rec.header, rec.header_len, line, len));
            break;
        case AB_CAP_CONNECT:
            AB_FUZZ_CHECK(rec.url == line && memcmp(line, "ws", 2) == 0 && rec.recv_ns >= 0);
            AB_FUZZ_CHECK(cap_inside(rec.url, rec.url_len, line, len));
            AB_FUZZ_CHECK(rec.payload_len == 0 && rec.payload[0] == '\0');
            break;
        case AB_CAP_SKIP:
            AB_FUZZ_CHECK(rec.recv_ns == 0 && rec.url == NULL && rec.payload == line);
            AB_FUZZ_CHECK(rec.payload_len == eff);
            break;
        default:
            AB_FUZZ_CHECK(!"unknown record kind");
        }
        if (rec.kind != AB_CAP_CONNECT)
            AB_FUZZ_CHECK(cap_inside(rec.payload, rec.payload_len, line, len));
        if (rec.url)
            ex->url = cap_dup(rec.url, rec.url_len);
        ex->payload = cap_dup(rec.payload, rec.payload_len);
        if (rec.header)
            ex->header = cap_dup(rec.header, rec.header_len);
    }
    free(line);
}

static void cap_expect_free(struct cap_expect *ex)
{
    free(ex->url);
    free(ex->payload);
    free(ex->header);
}

static bool cap_same_str(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || !b)
        return a == b;
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* A record from the reader or the set must match what the line parser gave. */
static void cap_check_same(const struct ab_capture_rec *r, const struct cap_expect *ex)
{
    AB_FUZZ_CHECK(r->kind == ex->rec.kind && r->recv_ns == ex->rec.recv_ns);
    AB_FUZZ_CHECK(r->line_no == ex->line_no);
    AB_FUZZ_CHECK(cap_same_str(r->url, r->url_len, ex->url, ex->rec.url_len));
    AB_FUZZ_CHECK(cap_same_str(r->payload, r->payload_len, ex->payload, ex->rec.payload_len));
    AB_FUZZ_CHECK(cap_same_str(r->header, r->header_len, ex->header, ex->rec.header_len));
}

/* Splits text into lines as the reader does: a final line without '\n' counts if not empty. */
static size_t cap_split(const char *text, size_t size, size_t max_line, struct cap_expect **out)
{
    size_t n = 0, cap = 0;
    struct cap_expect *ex = NULL;
    size_t pos = 0;
    while (pos < size) {
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (text + pos)) : size - pos;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            ex = realloc(ex, cap * sizeof(*ex));
            AB_FUZZ_CHECK(ex != NULL);
        }
        if (len > max_line) {
            memset(&ex[n], 0, sizeof(ex[n]));
            ex[n].rc = AB_ENOMEM;
        } else {
            cap_parse_checked(text + pos, len, &ex[n]);
        }
        ex[n].line_no = n + 1;
        n++;
        pos += len + (nl ? 1 : 0);
    }
    *out = ex;
    return n;
}

static int cap_memfd(const char *text, size_t size, char *path, size_t path_len)
{
    int fd = memfd_create("ab_fuzz_capture", 0);
    AB_FUZZ_CHECK(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, text + off, size - off);
        AB_FUZZ_CHECK(w > 0);
        off += (size_t)w;
    }
    snprintf(path, path_len, "/proc/self/fd/%d", fd);
    return fd;
}

static void cap_mode_lines(const char *text, size_t size)
{
    struct cap_expect *ex = NULL;
    size_t n = cap_split(text, size, SIZE_MAX, &ex);
    for (size_t i = 0; i < n; i++)
        cap_expect_free(&ex[i]);
    free(ex);
}

static void cap_mode_reader(const char *text, size_t size, uint8_t param)
{
    size_t max_line = param; /* 0: the default cap */
    struct cap_expect *ex = NULL;
    size_t n = cap_split(text, size, max_line ? max_line : AB_CAPTURE_LINE_MAX, &ex);
    char path[64];
    int fd = cap_memfd(text, size, path, sizeof(path));
    struct ab_capture *c = NULL;
    AB_FUZZ_CHECK(ab_capture_open(path, max_line, &c) == 0);
    size_t k = 0;
    for (;;) {
        struct ab_capture_rec rec;
        const char *why = NULL;
        int rc = ab_capture_next(c, &rec, &why);
        while (k < n && ex[k].rc == 0)
            k++; /* empty lines are skipped silently */
        if (rc == 0) {
            AB_FUZZ_CHECK(k == n);
            break;
        }
        AB_FUZZ_CHECK(k < n);
        AB_FUZZ_CHECK(rc == ex[k].rc);
        AB_FUZZ_CHECK(rec.line_no == ex[k].line_no);
        if (rc == 1)
            cap_check_same(&rec, &ex[k]);
        else
            AB_FUZZ_CHECK(why != NULL);
        k++;
    }
    ab_capture_free(c);
    close(fd);
    for (size_t i = 0; i < n; i++)
        cap_expect_free(&ex[i]);
    free(ex);
}

static void cap_mode_set(const char *text, size_t size, uint8_t param)
{
    size_t cut = size * param / 256; /* two files: text[0..cut) and text[cut..size) */
    struct cap_expect *ex[2] = {NULL, NULL};
    size_t n[2];
    n[0] = cap_split(text, cut, AB_CAPTURE_LINE_MAX, &ex[0]);
    n[1] = cap_split(text + cut, size - cut, AB_CAPTURE_LINE_MAX, &ex[1]);
    char path[2][64];
    int fd[2];
    fd[0] = cap_memfd(text, cut, path[0], sizeof(path[0]));
    fd[1] = cap_memfd(text + cut, size - cut, path[1], sizeof(path[1]));
    const char *paths[2] = {path[0], path[1]};

    int want = 0;
    size_t timed = 0;
    for (int f = 0; f < 2 && want == 0; f++) {
        for (size_t i = 0; i < n[f] && want == 0; i++) {
            if (ex[f][i].rc < 0)
                want = ex[f][i].rc;
            else if (ex[f][i].rc == 1 && ex[f][i].rec.kind != AB_CAP_SKIP)
                timed++;
        }
    }
    struct ab_capture_set *s = NULL;
    char err[256];
    int rc = ab_capture_set_load(paths, 2, 0, &s, err, sizeof(err));
    AB_FUZZ_CHECK(rc == want);
    AB_FUZZ_CHECK(ab_fuzz_terminated(err, sizeof(err)));
    if (rc == 0) {
        AB_FUZZ_CHECK(err[0] == '\0');
        AB_FUZZ_CHECK(ab_capture_set_count(s) == timed);
        for (size_t i = 0; i < timed; i++) {
            const struct ab_capture_rec *r = ab_capture_set_get(s, i);
            AB_FUZZ_CHECK(r != NULL && r->file_index < 2 && r->line_no >= 1);
            AB_FUZZ_CHECK(r->line_no <= n[r->file_index]);
            cap_check_same(r, &ex[r->file_index][r->line_no - 1]);
            if (i > 0) {
                const struct ab_capture_rec *p = ab_capture_set_get(s, i - 1);
                AB_FUZZ_CHECK(p->recv_ns < r->recv_ns ||
                              (p->recv_ns == r->recv_ns &&
                               (p->file_index < r->file_index ||
                                (p->file_index == r->file_index && p->line_no < r->line_no))));
            }
        }
        AB_FUZZ_CHECK(ab_capture_set_get(s, timed) == NULL);
        ab_capture_set_free(s);
    } else {
        AB_FUZZ_CHECK(err[0] != '\0');
    }
    for (int f = 0; f < 2; f++) {
        close(fd[f]);
        for (size_t i = 0; i < n[f]; i++)
            cap_expect_free(&ex[f][i]);
        free(ex[f]);
    }
}

int ab_fuzz_capture_line(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *text = (const char *)data + 2;
    switch (data[0] % 3) {
    case 0:
        cap_mode_lines(text, size - 2);
        break;
    case 1:
        cap_mode_reader(text, size - 2, data[1]);
        break;
    default:
        cap_mode_set(text, size - 2, data[1]);
        break;
    }
    return 0;
}

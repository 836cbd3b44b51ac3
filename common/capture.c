#include "common/capture.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"

#define CHUNK_SIZE (64u * 1024u)
#define NS_PER_SEC 1000000000LL

/* Finds needle in hay[0..len) (like memmem, but explicit about lengths). */
static char *find(char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (len < n)
        return NULL;
    for (size_t i = 0; i + n <= len; i++) {
        char *p = memchr(hay + i, needle[0], len - n + 1 - i);
        if (!p)
            return NULL;
        if (memcmp(p, needle, n) == 0)
            return p;
        i = (size_t)(p - hay);
    }
    return NULL;
}

/* The last occurrence of needle in hay[0..len). */
static char *find_last(char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (len < n)
        return NULL;
    for (size_t i = len - n + 1; i-- > 0;) {
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    }
    return NULL;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/*
 * Python float repr of Unix seconds: digits, optionally '.' and digits. Kept
 * exactly as nanoseconds, so more than 9 decimals would lose information.
 */
static int parse_ts(const char *s, size_t len, int64_t *ns, const char **reason)
{
    size_t i = 0;
    int64_t sec = 0;
    while (i < len && is_digit(s[i])) {
        /* 9223372035 s is the last whole second whose ns fit in int64. */
        if (sec > (9223372035LL - (s[i] - '0')) / 10) {
            *reason = "timestamp out of range";
            return AB_ERANGE;
        }
        sec = sec * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0) {
        *reason = "timestamp does not start with a digit";
        return AB_EINVAL;
    }
    int64_t frac = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i, digits = 0;
        while (i < len && is_digit(s[i])) {
            if (digits == 9) {
                *reason = "timestamp has more than 9 decimals";
                return AB_ERANGE;
            }
            frac = frac * 10 + (s[i] - '0');
            digits++;
            i++;
        }
        if (i == start) {
            *reason = "timestamp has no digits after '.'";
            return AB_EINVAL;
        }
        for (; digits < 9; digits++)
            frac *= 10;
    }
    if (i != len) {
        *reason = "timestamp is not a decimal number";
        return AB_EINVAL;
    }
    *ns = sec * NS_PER_SEC + frac;
    return 0;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* "<ts>: <payload>" in s[0..len): parses the timestamp into rec and returns
 * the payload, NUL-terminated in place (s[len] must be writable). */
static int split_ts_payload(char *s, size_t len, struct ab_capture_rec *rec, char **payload,
                            const char **reason)
{
    char *sep = find(s, len, ": ");
    if (!sep) {
        *reason = "no ': ' after the timestamp";
        return AB_EINVAL;
    }
    int rc = parse_ts(s, (size_t)(sep - s), &rec->recv_ns, reason);
    if (rc < 0)
        return rc;
    s[len] = '\0';
    *payload = sep + 2;
    rec->payload = sep + 2;
    rec->payload_len = len - (size_t)(sep + 2 - s);
    return 0;
}

int ab_capture_parse_line(char *line, size_t len, struct ab_capture_rec *rec, const char **reason)
{
    const char *why = NULL;
    int rc;
    if (!reason)
        reason = &why;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return 0;

    rec->kind = AB_CAP_SKIP;
    rec->recv_ns = 0;
    rec->url = NULL;
    rec->url_len = 0;
    rec->payload = "";
    rec->payload_len = 0;
    rec->header = NULL;
    rec->header_len = 0;

    if (starts_with(line, len, "http")) {
        char *arrow = find(line, len, " -> ");
        if (!arrow) {
            *reason = "HTTP line without ' -> '";
            return AB_EINVAL;
        }
        char *rest = arrow + 4, *body;
        rc = split_ts_payload(rest, len - (size_t)(rest - line), rec, &body, reason);
        if (rc < 0)
            return rc;
        *arrow = '\0';
        rec->kind = AB_CAP_HTTP;
        rec->url = line;
        rec->url_len = (size_t)(arrow - line);
        /* An optional " header: <json>" follows the body. The body is JSON,
         * so a real suffix sits right after its closing '}' or ']'. */
        char *h = find_last(body, rec->payload_len, " header: {");
        if (h && h > body && (h[-1] == '}' || h[-1] == ']')) {
            rec->header = h + 9;
            rec->header_len = rec->payload_len - (size_t)(h + 9 - body);
            rec->payload_len = (size_t)(h - body);
            *h = '\0';
        }
        return 1;
    }
    if (starts_with(line, len, "ws")) {
        char *arrow = find(line, len, " <-> ");
        if (!arrow) {
            rec->payload = line;
            rec->payload_len = len;
            line[len] = '\0';
            return 1;
        }
        char *ts = arrow + 5;
        rc = parse_ts(ts, len - (size_t)(ts - line), &rec->recv_ns, reason);
        if (rc < 0)
            return rc;
        *arrow = '\0';
        rec->kind = AB_CAP_CONNECT;
        rec->url = line;
        rec->url_len = (size_t)(arrow - line);
        return 1;
    }
    if (is_digit(line[0])) {
        char *payload;
        rc = split_ts_payload(line, len, rec, &payload, reason);
        if (rc < 0)
            return rc;
        rec->kind = AB_CAP_WS;
        return 1;
    }
    rec->payload = line;
    rec->payload_len = len;
    line[len] = '\0';
    return 1;
}

/* ---- streaming reader ---- */

struct ab_capture {
    FILE *f;
    size_t max_line;
    char *line; /* owned; grows up to max_line + 1 */
    size_t line_alloc;
    char *chunk; /* owned; CHUNK_SIZE bytes of read-ahead */
    size_t pos, end;
    size_t line_no;
    bool eof;
    bool io_err;
};

int ab_capture_open(const char *path, size_t max_line, struct ab_capture **out)
{
    struct ab_capture *c = calloc(1, sizeof *c);
    if (!c)
        return AB_ENOMEM;
    c->max_line = max_line ? max_line : AB_CAPTURE_LINE_MAX;
    c->chunk = malloc(CHUNK_SIZE);
    if (!c->chunk) {
        ab_capture_free(c);
        return AB_ENOMEM;
    }
    c->f = fopen(path, "rb");
    if (!c->f) {
        int saved = errno;
        ab_capture_free(c);
        errno = saved;
        return AB_EIO;
    }
    *out = c;
    return 0;
}

void ab_capture_free(struct ab_capture *c)
{
    if (!c)
        return;
    if (c->f)
        fclose(c->f);
    free(c->chunk);
    free(c->line);
    free(c);
}

/* Appends n bytes to the line buffer; false once the line exceeds the cap. */
static bool line_append(struct ab_capture *c, size_t *len, const char *p, size_t n)
{
    if (n > c->max_line - *len)
        return false;
    size_t need = *len + n + 1;
    if (need > c->line_alloc) {
        size_t cap = c->line_alloc ? c->line_alloc : 4096;
        while (cap < need)
            cap *= 2;
        if (cap > c->max_line + 1)
            cap = c->max_line + 1;
        char *nl = realloc(c->line, cap);
        if (!nl)
            return false;
        c->line = nl;
        c->line_alloc = cap;
    }
    memcpy(c->line + *len, p, n);
    *len += n;
    return true;
}

/*
 * Reads one line (without '\n') into c->line. Returns 1 with *len set, 0 at
 * the end of the file, AB_ENOMEM for an over-long line (consumed), AB_EIO.
 */
static int read_line(struct ab_capture *c, size_t *len)
{
    bool any = false, too_long = false;
    *len = 0;
    for (;;) {
        if (c->pos == c->end) {
            if (c->eof)
                break;
            size_t n = fread(c->chunk, 1, CHUNK_SIZE, c->f);
            if (n == 0) {
                if (ferror(c->f)) {
                    c->io_err = true;
                    return AB_EIO;
                }
                c->eof = true;
                break;
            }
            c->pos = 0;
            c->end = n;
        }
        any = true;
        char *start = c->chunk + c->pos;
        size_t avail = c->end - c->pos;
        char *nl = memchr(start, '\n', avail);
        size_t seg = nl ? (size_t)(nl - start) : avail;
        if (!too_long && !line_append(c, len, start, seg))
            too_long = true;
        c->pos += seg + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!any)
        return 0;
    if (too_long)
        return AB_ENOMEM;
    if (!c->line && !line_append(c, len, "", 0))
        return AB_ENOMEM;
    return 1;
}

int ab_capture_next(struct ab_capture *c, struct ab_capture_rec *rec, const char **reason)
{
    const char *why = NULL;
    if (!reason)
        reason = &why;
    if (c->io_err) {
        *reason = "read error";
        return AB_EIO;
    }
    for (;;) {
        size_t len;
        int rc = read_line(c, &len);
        if (rc == 0)
            return 0;
        c->line_no++;
        rec->line_no = c->line_no;
        rec->file_index = 0;
        if (rc == AB_EIO) {
            *reason = "read error";
            return rc;
        }
        if (rc == AB_ENOMEM) {
            *reason = "line longer than the cap";
            return rc;
        }
        rc = ab_capture_parse_line(c->line, len, rec, reason);
        if (rc != 0)
            return rc; /* 1: a record; negative: this line is malformed */
        /* 0: an empty line, skip it */
    }
}

/* ---- merged set ---- */

struct ab_capture_set {
    char **bufs; /* owned: one whole file per path */
    size_t n_bufs;
    struct ab_capture_rec *recs; /* owned; n_recs entries, sorted */
    size_t n_recs, cap_recs;
};

static void set_err(char *err, size_t err_len, const char *path, size_t line, const char *why)
{
    if (err && err_len)
        snprintf(err, err_len, "%s:%zu: %s", path, line, why);
}

/* Reads the whole file into a new NUL-terminated buffer. */
static int slurp(const char *path, char **out, size_t *out_len, const char **why)
{
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = strerror(errno);
        return AB_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        *why = strerror(errno);
        rc = AB_EIO;
        goto out;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > AB_CAPTURE_FILE_MAX) {
        *why = "file larger than AB_CAPTURE_FILE_MAX";
        rc = AB_ENOMEM;
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (!buf) {
        *why = "out of memory";
        rc = AB_ENOMEM;
        goto out;
    }
    if (size && fread(buf, 1, size, f) != size) {
        *why = "short read";
        rc = AB_EIO;
        goto out;
    }
    buf[size] = '\0';
    *out = buf;
    *out_len = size;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

static int push_rec(struct ab_capture_set *s, const struct ab_capture_rec *rec)
{
    if (s->n_recs == s->cap_recs) {
        size_t cap = s->cap_recs ? s->cap_recs * 2 : 1024;
        struct ab_capture_rec *n = realloc(s->recs, cap * sizeof *n);
        if (!n)
            return AB_ENOMEM;
        s->recs = n;
        s->cap_recs = cap;
    }
    s->recs[s->n_recs++] = *rec;
    return 0;
}

static int cmp_rec(const void *pa, const void *pb)
{
    const struct ab_capture_rec *a = pa, *b = pb;
    if (a->recv_ns != b->recv_ns)
        return a->recv_ns < b->recv_ns ? -1 : 1;
    if (a->file_index != b->file_index)
        return a->file_index < b->file_index ? -1 : 1;
    return (a->line_no > b->line_no) - (a->line_no < b->line_no);
}

/* Splits buf into lines and collects its timed records. */
static int load_buf(struct ab_capture_set *s, char *buf, size_t size, size_t max_line,
                    size_t file_index, const char *path, char *err, size_t err_len)
{
    size_t line_no = 0;
    char *p = buf, *end = buf + size;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line_no++;
        if (len > max_line) {
            set_err(err, err_len, path, line_no, "line longer than the cap");
            return AB_ENOMEM;
        }
        /* p[len] is the '\n' or the buffer's final NUL: writable either way. */
        struct ab_capture_rec rec;
        const char *why = "malformed line";
        int rc = ab_capture_parse_line(p, len, &rec, &why);
        if (rc < 0) {
            set_err(err, err_len, path, line_no, why);
            return rc;
        }
        if (rc == 1 && rec.kind != AB_CAP_SKIP) {
            rec.line_no = line_no;
            rec.file_index = file_index;
            if (push_rec(s, &rec) < 0) {
                set_err(err, err_len, path, line_no, "out of memory");
                return AB_ENOMEM;
            }
        }
        p += len + (nl ? 1 : 0);
    }
    return 0;
}

int ab_capture_set_load(const char *const *paths, size_t n_paths, size_t max_line,
                        struct ab_capture_set **out, char *err, size_t err_len)
{
    int rc = 0;
    if (err && err_len)
        err[0] = '\0';
    if (!max_line)
        max_line = AB_CAPTURE_LINE_MAX;
    struct ab_capture_set *s = calloc(1, sizeof *s);
    if (!s)
        return AB_ENOMEM;
    if (n_paths) {
        s->bufs = calloc(n_paths, sizeof *s->bufs);
        if (!s->bufs) {
            rc = AB_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n_paths; i++) {
        size_t size = 0;
        const char *why = "cannot read";
        rc = slurp(paths[i], &s->bufs[i], &size, &why);
        if (rc < 0) {
            set_err(err, err_len, paths[i], 0, why);
            goto out;
        }
        s->n_bufs = i + 1;
        rc = load_buf(s, s->bufs[i], size, max_line, i, paths[i], err, err_len);
        if (rc < 0)
            goto out;
    }
    if (s->n_recs > 1)
        qsort(s->recs, s->n_recs, sizeof *s->recs, cmp_rec);
    *out = s;
    return 0;
out:
    ab_capture_set_free(s);
    return rc;
}

size_t ab_capture_set_count(const struct ab_capture_set *s)
{
    return s ? s->n_recs : 0;
}

const struct ab_capture_rec *ab_capture_set_get(const struct ab_capture_set *s, size_t i)
{
    if (!s || i >= s->n_recs)
        return NULL;
    return &s->recs[i];
}

void ab_capture_set_free(struct ab_capture_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_bufs; i++)
        free(s->bufs[i]);
    free(s->bufs);
    free(s->recs);
    free(s);
}

#include "record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct recorder {
    FILE *f;
    uint64_t records;
    uint64_t errors;
};

int recorder_open(const char *path, struct recorder **out)
{
    *out = NULL;
    struct recorder *r = calloc(1, sizeof(*r));
    if (!r)
        return AB_ENOMEM;
    r->f = fopen(path, "ae");
    if (!r->f) {
        int e = errno;
        free(r);
        errno = e;
        return AB_EIO;
    }
    /* A large buffer: one write(2) per loop turn, not per frame. */
    setvbuf(r->f, NULL, _IOFBF, 1 << 20);
    *out = r;
    return 0;
}

void recorder_free(struct recorder *r)
{
    if (!r)
        return;
    if (fclose(r->f) != 0)
        r->errors++;
    free(r);
}

static void put_ts(struct recorder *r, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    if (fprintf(r->f, "%" PRId64 ".%09" PRId64, ns / 1000000000, ns % 1000000000) < 0)
        r->errors++;
}

/* Writes bytes with CR/LF turned into spaces so one record stays one line. */
static void put_line_safe(struct recorder *r, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '\n' || s[i] == '\r') {
            if (i > start && fwrite(s + start, 1, i - start, r->f) != i - start)
                r->errors++;
            if (i < len && fputc(' ', r->f) == EOF)
                r->errors++;
            start = i + 1;
        }
    }
}

static void end_record(struct recorder *r)
{
    if (fputc('\n', r->f) == EOF)
        r->errors++;
    r->records++;
}

void recorder_ws(struct recorder *r, int64_t recv_ns, const char *payload, size_t len)
{
    if (!r)
        return;
    put_ts(r, recv_ns);
    if (fputs(": ", r->f) == EOF)
        r->errors++;
    put_line_safe(r, payload, len);
    end_record(r);
}

void recorder_http(struct recorder *r, const char *url, int64_t recv_ns, const char *body,
                   size_t len)
{
    if (!r)
        return;
    put_line_safe(r, url, strlen(url));
    if (fputs(" -> ", r->f) == EOF)
        r->errors++;
    put_ts(r, recv_ns);
    if (fputs(": ", r->f) == EOF)
        r->errors++;
    put_line_safe(r, body, len);
    end_record(r);
}

void recorder_connect(struct recorder *r, const char *url, int64_t recv_ns)
{
    if (!r)
        return;
    put_line_safe(r, url, strlen(url));
    if (fputs(" <-> ", r->f) == EOF)
        r->errors++;
    put_ts(r, recv_ns);
    end_record(r);
}

void recorder_flush(struct recorder *r)
{
    if (r && fflush(r->f) != 0)
        r->errors++;
}

uint64_t recorder_records(const struct recorder *r)
{
    return r ? r->records : 0;
}

uint64_t recorder_errors(const struct recorder *r)
{
    return r ? r->errors : 0;
}

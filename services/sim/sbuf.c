#include "services/sim/sbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int sbuf_init(struct sbuf *b, size_t headroom, size_t initial, size_t max)
{
    memset(b, 0, sizeof(*b));
    if (initial > max)
        initial = max;
    if (initial == 0)
        initial = 1;
    b->mem = malloc(headroom + initial + 1);
    if (!b->mem)
        return AB_ENOMEM;
    b->headroom = headroom;
    b->cap = initial;
    b->max = max;
    b->mem[headroom] = '\0';
    return 0;
}

void sbuf_deinit(struct sbuf *b)
{
    free(b->mem);
    memset(b, 0, sizeof(*b));
}

void sbuf_reset(struct sbuf *b)
{
    b->len = 0;
    b->err = 0;
    if (b->mem)
        b->mem[b->headroom] = '\0';
}

char *sbuf_take(struct sbuf *b)
{
    char *m = b->mem;
    memset(b, 0, sizeof(*b));
    return m;
}

/* Makes room for n more text bytes; false (and a sticky error) past the cap. */
static bool reserve(struct sbuf *b, size_t n)
{
    if (b->err || !b->mem) {
        b->err = b->err ? b->err : AB_ENOMEM;
        return false;
    }
    if (n > b->max - b->len) {
        b->err = AB_ENOMEM;
        return false;
    }
    size_t need = b->len + n;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap;
    while (cap < need)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    char *m = realloc(b->mem, b->headroom + cap + 1);
    if (!m) {
        b->err = AB_ENOMEM;
        return false;
    }
    b->mem = m;
    b->cap = cap;
    return true;
}

void sbuf_putn(struct sbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->mem + b->headroom + b->len, s, n);
    b->len += n;
    b->mem[b->headroom + b->len] = '\0';
}

void sbuf_puts(struct sbuf *b, const char *s)
{
    sbuf_putn(b, s, strlen(s));
}

void sbuf_putc(struct sbuf *b, char c)
{
    sbuf_putn(b, &c, 1);
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->err = b->err ? b->err : AB_ENOMEM;
        return;
    }
    sbuf_putn(b, tmp, (size_t)n);
}

void sbuf_i64(struct sbuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    sbuf_putn(b, tmp, (size_t)n);
}

void sbuf_u64(struct sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    sbuf_putn(b, tmp, (size_t)n);
}

void sbuf_dec8(struct sbuf *b, struct ab_dec d)
{
    char tmp[AB_DEC_STR_MAX + 2];
    tmp[0] = '"';
    size_t n = ab_dec_format_fixed(d, 8, tmp + 1);
    tmp[n + 1] = '"';
    sbuf_putn(b, tmp, n + 2);
}

void sbuf_json_str(struct sbuf *b, const char *s)
{
    sbuf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            sbuf_putc(b, '\\');
            sbuf_putc(b, (char)*p);
        } else if (*p < 0x20) {
            sbuf_printf(b, "\\u%04x", *p);
        } else {
            sbuf_putc(b, (char)*p);
        }
    }
    sbuf_putc(b, '"');
}

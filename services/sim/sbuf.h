/*
 * sbuf: a growable text buffer with a hard cap and optional headroom.
 *
 * The simulator builds every JSON message and REST body in one of these.
 * `headroom` bytes are reserved in front of the text (libwebsockets needs
 * LWS_PRE bytes before a frame), so a finished buffer can be handed to the
 * network layer without copying. Growth doubles up to `max` text bytes;
 * going past it sets a sticky error (AB_ENOMEM) and further appends are
 * ignored, so callers check once at the end (sbuf_err). The text is always
 * NUL-terminated. One owner, no locking.
 */
#ifndef SIM_SBUF_H
#define SIM_SBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/decimal.h"

struct sbuf {
    char *mem;       /* owned: headroom + cap + 1 bytes */
    size_t headroom; /* bytes reserved before the text */
    size_t len;      /* text length */
    size_t cap;      /* text capacity currently allocated */
    size_t max;      /* hard cap on the text length */
    int err;         /* 0 or the first error (AB_ENOMEM) */
};

/* Prepares b with `initial` bytes allocated (grows to max). Returns 0 or AB_ENOMEM. */
int sbuf_init(struct sbuf *b, size_t headroom, size_t initial, size_t max);

/* Releases the memory; b may be zeroed or already released. */
void sbuf_deinit(struct sbuf *b);

/* Forgets the text, keeps the memory and clears the error. */
void sbuf_reset(struct sbuf *b);

/* Start of the text (headroom bytes before it are writable scratch). */
static inline char *sbuf_text(const struct sbuf *b)
{
    return b->mem + b->headroom;
}

/*
 * Hands the memory to the caller (free() it; the text starts at headroom)
 * and leaves b empty as after sbuf_deinit.
 */
char *sbuf_take(struct sbuf *b);

/* 0, or the first error any append hit. */
static inline int sbuf_err(const struct sbuf *b)
{
    return b->err;
}

void sbuf_putn(struct sbuf *b, const char *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_putc(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_i64(struct sbuf *b, int64_t v);
void sbuf_u64(struct sbuf *b, uint64_t v);
/* A quoted decimal with exactly 8 fractional digits: "50000.00000000". */
void sbuf_dec8(struct sbuf *b, struct ab_dec d);
/* A JSON string literal (quotes and escapes added). */
void sbuf_json_str(struct sbuf *b, const char *s);

#endif

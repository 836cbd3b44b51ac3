/*
 * streams: the registry of stream names a client may subscribe to.
 *
 * Every stream has a small integer id, so a client's subscriptions are a
 * bitset and the fan-out of one event is a bit test per client. Two modes:
 *
 *  - model: the names are fixed at creation from the market's symbols:
 *    <sym>@kline_<interval> for all 16 intervals, <sym>@depth (1000 ms),
 *    <sym>@depth@100ms, <sym>@bookTicker, <sym>@trade and <sym>@aggTrade,
 *    <sym> being the lower-case symbol. Anything else is unknown.
 *  - open (replay): any syntactically valid name (lower-case symbol, '@',
 *    then letters, digits and _ @ : + .) is interned on first use, up to
 *    STREAMS_MAX names.
 *
 * Each id also counts its subscribers so the producers can skip encoding
 * events nobody wants. One owner (the server loop); no locking.
 */
#ifndef SIM_STREAMS_H
#define SIM_STREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/interval.h"

#define STREAMS_MAX      43008 /* names per registry (hard cap): 2048 symbols x 21 */
#define STREAM_NAME_MAX  96    /* bytes of a name, NUL included */
#define STREAMS_PER_SYM  21    /* model mode: ids per symbol */
#define STREAMS_BITS_LEN (STREAMS_MAX / 64)

struct market;

/* Model-mode kinds: the slot of a stream within its symbol's block of ids. */
enum stream_kind {
    STREAM_KLINE = 0, /* + interval: slots 0..15 */
    STREAM_DEPTH = AB_I_COUNT,
    STREAM_DEPTH_100MS,
    STREAM_BOOK_TICKER,
    STREAM_TRADE,
    STREAM_AGG_TRADE,
};

struct streams;

/* A set of stream ids (a client's subscriptions). Plain value, zero = empty. */
struct stream_set {
    uint64_t bits[STREAMS_BITS_LEN];
};

/*
 * Builds a registry. With m (borrowed, must outlive the registry) it is in
 * model mode; with m == NULL it is open. Returns 0 and *out (free with
 * streams_free), or AB_ENOMEM / AB_EINVAL.
 */
int streams_new(const struct market *m, struct streams **out);
void streams_free(struct streams *st);

/*
 * Finds (open mode: or interns) the id of a name of len bytes. Returns 0,
 * AB_EINVAL when the name is malformed or unknown in model mode, or
 * AB_ENOMEM when an open registry is full.
 */
int streams_lookup(struct streams *st, const char *name, size_t len, uint32_t *id);

/* The name of id (borrowed, NUL-terminated), or NULL. */
const char *streams_name(const struct streams *st, uint32_t id);

/* Model mode: the id of (symbol index, kind slot). */
static inline uint32_t streams_model_id(size_t sym, int slot)
{
    return (uint32_t)(sym * STREAMS_PER_SYM + (size_t)slot);
}

/* Subscriber counting: add +1/-1; streams_wanted tells whether anyone listens. */
void streams_count(struct streams *st, uint32_t id, int delta);
bool streams_wanted(const struct streams *st, uint32_t id);

static inline bool stream_set_has(const struct stream_set *s, uint32_t id)
{
    return id < STREAMS_MAX && (s->bits[id / 64] >> (id % 64)) & 1u;
}

static inline void stream_set_add(struct stream_set *s, uint32_t id)
{
    if (id < STREAMS_MAX)
        s->bits[id / 64] |= (uint64_t)1 << (id % 64);
}

static inline void stream_set_del(struct stream_set *s, uint32_t id)
{
    if (id < STREAMS_MAX)
        s->bits[id / 64] &= ~((uint64_t)1 << (id % 64));
}

#endif

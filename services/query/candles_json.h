/*
 * candles_json: the body of a plain GET /v1/candles answer (no clean, no
 * normalize), written directly into one buffer, and a small cache of such
 * bodies for the dashboard request (the newest `limit` candles of a series
 * answered from memory).
 *
 * Body: byte for byte what jansson's json_dumps(JSON_COMPACT) made of the
 * same object before (same key order, same formatting), so clients and tests
 * see no change:
 *
 *   {"symbol":"BTCUSDT","interval":"1m","candles":[{"open_time":...,
 *    "close_time":...,"open":"<decimal>",...,"taker_buy_quote_volume":"...",
 *    "num_trades":...,"is_closed":true|false},...]}
 *
 * Decimals are ab_dec_format's canonical strings. A body is at most
 * CANDLES_JSON_MAX bytes (API_LIMIT_MAX candles need well under half of it).
 *
 * Bodies are shared: a struct candles_body is reference counted (atomic), so
 * the cache and any number of responses in flight hold the same bytes; the
 * last candles_body_unref frees it. Any thread.
 *
 * Cache: entries keyed by (symbol, interval, limit) and tagged with the
 * series version (live_candles_version) of the state the body was built
 * from. A lookup hits only when the tag equals the series' current version,
 * so a body is never served once its series changed: every change of a series
 * gives it a new version, and versions are never reused within the process
 * (not even across live states), so a tag cannot match a different state.
 * Bounded: at most max_entries bodies and max_bytes bytes in total (the least
 * recently used go first; a body larger than max_bytes is not kept). A lookup
 * whose key matches with an older tag drops that entry at once. All calls are
 * thread-safe (one mutex, held for a scan of at most max_entries slots and
 * never across I/O or body building).
 */
#ifndef ABIDANCE_QUERY_CANDLES_JSON_H
#define ABIDANCE_QUERY_CANDLES_JSON_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/interval.h"
#include "common/model.h"

#define CANDLES_JSON_MAX            (8u << 20) /* bytes of one body */
#define CANDLES_CACHE_ENTRIES       64         /* default and maximum entries */
#define CANDLES_CACHE_BYTES_DEFAULT (64u << 20)

/* An immutable, shared response body. */
struct candles_body {
    atomic_uint refs;
    size_t len;  /* bytes of data (no terminator) */
    char data[]; /* the JSON text */
};

/*
 * Writes the body for n candles cs (borrowed, ascending) of symbol (a valid
 * symbol: upper-case letters and digits) and interval into *out (one
 * reference, release with candles_body_unref). Returns 0, AB_EINVAL (symbol
 * not valid), AB_ERANGE (more than CANDLES_JSON_MAX bytes) or AB_ENOMEM.
 */
int candles_json_build(const char *symbol, enum ab_interval iv, const struct ab_candle *cs,
                       size_t n, struct candles_body **out);

/* Adds a reference; returns b. */
struct candles_body *candles_body_ref(struct candles_body *b);

/* Drops a reference, freeing b with the last one. Accepts NULL. */
void candles_body_unref(struct candles_body *b);

struct candles_cache; /* opaque */

struct candles_cache_stats {
    uint64_t hits, misses, stale; /* stale: misses that found an older version */
    size_t entries, bytes;
};

/*
 * Creates a cache of at most max_entries (1..CANDLES_CACHE_ENTRIES; 0 =
 * CANDLES_CACHE_ENTRIES) bodies and max_bytes bytes (0 =
 * CANDLES_CACHE_BYTES_DEFAULT). *out owns it: release with candles_cache_free.
 * Returns 0, AB_ERANGE or AB_ENOMEM.
 */
int candles_cache_new(size_t max_entries, size_t max_bytes, struct candles_cache **out);

/* Drops every entry (bodies in flight stay valid) and frees c. Accepts NULL. */
void candles_cache_free(struct candles_cache *c);

/*
 * The body cached for (symbol, iv, limit) at exactly version, with a new
 * reference for the caller (candles_body_unref), or NULL.
 */
struct candles_body *candles_cache_get(struct candles_cache *c, const char *symbol,
                                       enum ab_interval iv, size_t limit, uint64_t version);

/*
 * Keeps body (borrowed: the cache takes its own reference) for (symbol, iv,
 * limit) at version, replacing an entry of that key with an older version
 * (an entry with a newer one wins and body is not kept). Version 0 is never
 * kept. Never fails: when memory is short the body is simply not cached.
 */
void candles_cache_put(struct candles_cache *c, const char *symbol, enum ab_interval iv,
                       size_t limit, uint64_t version, struct candles_body *body);

void candles_cache_get_stats(struct candles_cache *c, struct candles_cache_stats *out);

#endif

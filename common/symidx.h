/*
 * symidx: symbol -> index lookup for per-message paths (the ingest's books
 * and candle series, the bus client's and the ingest's bus symbols).
 *
 * Every depth event is looked up by symbol three times on its way to the bus;
 * with 1500 symbols a linear strcmp scan was 19% of the ingest's CPU
 * (perf, bench/capacity.sh). This is a fixed-size open-addressing table
 * (linear probing, FNV-1a hash) sized at creation to at least twice the
 * entries it may hold, so a probe sequence stays short. Entries are never
 * removed.
 *
 * Hard cap: max entries given at ab_symidx_init (<= AB_SYMIDX_MAX). Memory:
 * 40 bytes per slot, 2..4 slots per entry. Not thread-safe: one owner.
 */
#ifndef AB_SYMIDX_H
#define AB_SYMIDX_H

#include <stddef.h>
#include <stdint.h>

#include "common/model.h"

#define AB_SYMIDX_MAX 65536 /* entries (hard cap) */

struct ab_symidx_slot {
    char symbol[AB_SYMBOL_MAX]; /* "" = empty */
    uint32_t idx;
};

struct ab_symidx {
    struct ab_symidx_slot *slots; /* owned; mask + 1 entries */
    size_t mask, n, max;
};

/* Prepares an empty table for up to max entries (1..AB_SYMIDX_MAX). Returns 0,
 * AB_EINVAL or AB_ENOMEM. Release with ab_symidx_deinit. */
int ab_symidx_init(struct ab_symidx *x, size_t max);

/* Frees the table and zeroes x. Accepts a zeroed x. */
void ab_symidx_deinit(struct ab_symidx *x);

/* Adds symbol -> idx. Returns 0, AB_EINVAL (invalid symbol, or already
 * present) or AB_ERANGE (max entries reached). */
int ab_symidx_put(struct ab_symidx *x, const char *symbol, size_t idx);

/* Finds symbol. Returns 0 with *idx set, or AB_ENOTFOUND. */
int ab_symidx_get(const struct ab_symidx *x, const char *symbol, size_t *idx);

#endif

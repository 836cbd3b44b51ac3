/*
 * interval: Binance's 16 kline intervals and the time arithmetic on them.
 *
 * Times are UTC epoch milliseconds (int64). Fixed intervals (1s .. 1w) align
 * on multiples of their duration since the epoch, except 1w, which Binance
 * opens on Monday 00:00 UTC (the epoch was a Thursday). 1M aligns to the first
 * day of the calendar month, UTC, and has no fixed duration. All functions
 * are pure and thread-safe; none reads a clock.
 */
#ifndef AB_INTERVAL_H
#define AB_INTERVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ab_interval {
    AB_I_1S,
    AB_I_1M,
    AB_I_3M,
    AB_I_5M,
    AB_I_15M,
    AB_I_30M,
    AB_I_1H,
    AB_I_2H,
    AB_I_4H,
    AB_I_6H,
    AB_I_8H,
    AB_I_12H,
    AB_I_1D,
    AB_I_3D,
    AB_I_1W,
    AB_I_1MO, /* "1M": one calendar month */
    AB_I_COUNT
};

/*
 * Parses Binance's case-sensitive interval name ("1s", "1m", ..., "1M") of
 * len bytes. Returns 0 or AB_EINVAL.
 */
int ab_interval_parse(const char *s, size_t len, enum ab_interval *out);

/* The Binance name ("1m", "1M", ...), or "?" for an invalid value. */
const char *ab_interval_name(enum ab_interval iv);

/*
 * Duration in milliseconds for fixed intervals; for 1M, 0 (use
 * ab_interval_next to step months).
 */
int64_t ab_interval_ms(enum ab_interval iv);

/* Open time of the candle containing t (floor alignment, correct for t < 0). */
int64_t ab_interval_align(enum ab_interval iv, int64_t t);

/* True when t is exactly an open time of iv. */
bool ab_interval_is_aligned(enum ab_interval iv, int64_t t);

/*
 * The next open time after the candle that opens at open_time (which must be
 * aligned). A candle's close time is ab_interval_next(iv, open) - 1.
 */
int64_t ab_interval_next(enum ab_interval iv, int64_t open_time);

#endif

/*
 * model: the normalized market-data values every service passes around.
 *
 * These are plain value types (see the design's data model). A candle is
 * keyed by (symbol, interval, open_time). Book levels hold absolute
 * quantities; a zero quantity in a delta removes the level. Prices and
 * quantities are exact decimals (common/decimal.h); times are UTC epoch ms.
 *
 * The level arrays of deltas and snapshots are owned by the struct: release
 * them with ab_book_delta_deinit / ab_book_snapshot_deinit (both accept a
 * zeroed struct). Any thread may use these functions on its own objects.
 */
#ifndef AB_MODEL_H
#define AB_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/decimal.h"
#include "common/interval.h"

/* Binance symbols are upper-case ASCII letters and digits; 31 bytes is ample. */
#define AB_SYMBOL_MAX 32

struct ab_candle {
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval interval;
    int64_t open_time;  /* ms, aligned to interval */
    int64_t close_time; /* ms, next open time - 1 */
    struct ab_dec open, high, low, close;
    struct ab_dec volume;                 /* base asset volume */
    struct ab_dec quote_volume;           /* quote asset volume */
    struct ab_dec taker_buy_volume;       /* taker-buy base volume */
    struct ab_dec taker_buy_quote_volume; /* taker-buy quote volume */
    int64_t num_trades;
    int64_t first_trade_id; /* -1 when unknown (REST klines) */
    int64_t last_trade_id;  /* -1 when unknown */
    bool closed;            /* final: no further update will change it */
    int64_t event_time;     /* exchange event time E in ms; 0 when unknown (REST) */
};

struct ab_level {
    struct ab_dec price;
    struct ab_dec qty; /* absolute; zero removes the level in a delta */
};

/* One diff-depth event: levels to set for update ids first_id..last_id. */
struct ab_book_delta {
    char symbol[AB_SYMBOL_MAX];
    int64_t event_time;    /* E, ms */
    uint64_t first_id;     /* U */
    uint64_t last_id;      /* u */
    struct ab_level *bids; /* owned; n_bids entries, exchange order */
    struct ab_level *asks; /* owned; n_asks entries */
    size_t n_bids, n_asks;
};

/* A full book: bids best (highest) first, asks best (lowest) first. */
struct ab_book_snapshot {
    char symbol[AB_SYMBOL_MAX];
    uint64_t last_update_id;
    struct ab_level *bids; /* owned */
    struct ab_level *asks; /* owned */
    size_t n_bids, n_asks;
};

void ab_book_delta_deinit(struct ab_book_delta *d);
void ab_book_snapshot_deinit(struct ab_book_snapshot *s);

/*
 * True when s (len bytes) is a valid symbol: 1..AB_SYMBOL_MAX-1 characters,
 * each an upper-case ASCII letter or digit.
 */
bool ab_symbol_valid(const char *s, size_t len);

/*
 * Checks a candle's internal consistency: high >= max(open, close),
 * low <= min(open, close), low <= high, non-negative prices, volumes and
 * trade count, taker volumes not above the totals, open_time aligned to the
 * interval and close_time == next open - 1. On failure returns AB_EVALIDATE
 * and writes a short reason ("high below close") to *reason (static string).
 */
int ab_candle_validate(const struct ab_candle *c, const char **reason);

#endif

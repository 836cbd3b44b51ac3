/*
 * market: the simulator's deterministic market model (pure, no I/O, no clock).
 *
 * One struct market holds, per symbol, an order book on a tick grid, a trade
 * counter and the candles of all 16 Binance intervals. Time only moves when
 * the caller says so: market_advance(m, now) runs every whole 100 ms step
 * whose end is <= now and reports what happened through a callback, in this
 * order per step and symbol:
 *
 *   - MARKET_EV_TRADE and MARKET_EV_BOOK_TICKER as the step's actions happen
 *     (a ticker event each time the best bid or ask, price or quantity, changes);
 *   - MARKET_EV_DEPTH for the 100 ms window (always: every step trades);
 *   - MARKET_EV_DEPTH for the 1000 ms window when the step ends on a whole second;
 *   - MARKET_EV_KLINE: a final (closed) event for every candle whose close
 *     time has passed, and an update for a changed open candle at most every
 *     2000 ms of sim time (1000 ms for 1s).
 *
 * A step is 1..6 actions (add liquidity, cancel, or a taker order that
 * consumes levels from the top), with at least one trade. Every change of one
 * price level increments the book's update id by one; a depth event covers
 * [first_id, last_id] and carries the absolute quantity of every level that
 * changed in its window (zero = removed), bids best first, asks best first.
 * Adds are placed strictly inside the opposite best, so the book is never
 * crossed. The sequence of events depends only on the seed, the symbols and
 * the start time, never on how the caller slices time into advance calls.
 *
 * With freeze_after = N, a symbol freezes after its N-th step: pending
 * 1000 ms depth changes and changed open candles are flushed at once (the
 * candle stays open: closed = false), then nothing changes any more. The last
 * candle of a frozen symbol therefore stays open forever and market_klines
 * returns it as it was at the freeze.
 *
 * Candles live in per-interval rings (hard caps in the config); the oldest
 * fall out. Prices, quantities and volumes are exact ab_dec values; the
 * symbol's tick and step are chosen so price * qty has at most 8 decimals.
 *
 * Not thread-safe: one owner (the server loop) calls everything.
 */
#ifndef SIM_MARKET_H
#define SIM_MARKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/decimal.h"
#include "common/interval.h"
#include "common/model.h"

#define MARKET_MAX_SYMBOLS 2048 /* symbols per market (hard cap; the config list's cap) */
#define MARKET_STEP_MS     100
/* Binance's largest depth snapshot; market_depth never returns more per side. */
#define MARKET_DEPTH_MAX 5000

struct market; /* opaque */

/* Static facts about one simulated symbol (exchangeInfo material). */
struct market_symbol {
    char symbol[AB_SYMBOL_MAX]; /* "BTCUSDT" */
    char base[AB_SYMBOL_MAX];   /* "BTC" */
    char quote[AB_SYMBOL_MAX];  /* "USDT" */
    struct ab_dec tick;         /* PRICE_FILTER tickSize */
    struct ab_dec step;         /* LOT_SIZE stepSize */
    struct ab_dec start_price;  /* mid price at the start */
};

struct market_cfg {
    uint64_t seed;
    int64_t start_time;                      /* ms; rounded down to a multiple of MARKET_STEP_MS */
    uint64_t freeze_after;                   /* steps per symbol before freezing; 0 = never */
    size_t n_symbols;                        /* 1..MARKET_MAX_SYMBOLS */
    const char *symbols[MARKET_MAX_SYMBOLS]; /* borrowed for the call; upper-case */
    size_t max_levels;                       /* per book side (hard cap); 0 = 2000 */
    size_t candle_cap_1s;                    /* 1s candles kept; 0 = 3600 */
    size_t candle_cap;                       /* candles kept for every other interval; 0 = 1500 */
};

enum market_ev_kind {
    MARKET_EV_TRADE,
    MARKET_EV_BOOK_TICKER,
    MARKET_EV_DEPTH,
    MARKET_EV_KLINE,
};

struct market_trade {
    int64_t id;     /* trade id (t), also first/last of its aggTrade */
    int64_t agg_id; /* aggregate trade id (a) */
    int64_t time;   /* T, ms */
    struct ab_dec price, qty;
    bool buyer_maker; /* m: true when the taker sold */
};

struct market_event {
    enum market_ev_kind kind;
    size_t sym;   /* symbol index */
    int64_t time; /* event time E, ms */
    union {
        struct market_trade trade;
        struct {
            uint64_t update_id; /* u */
            struct ab_level bid, ask;
        } ticker;
        struct {
            int speed_ms; /* 100 or 1000 */
            uint64_t first_id, last_id;
            const struct ab_level *bids; /* borrowed: valid during the callback */
            size_t n_bids;
            const struct ab_level *asks; /* borrowed */
            size_t n_asks;
        } depth;
        struct {
            const struct ab_candle *candle; /* borrowed; ->closed = final, ->interval */
        } kline;
    } u;
};

/* Receives each event; must not call back into the market. */
typedef void (*market_event_cb)(const struct market_event *ev, void *ud);

/*
 * Builds the market at cfg->start_time: books seeded around each symbol's
 * start price, no trades, no candles. Returns 0 and *out (free with
 * market_free), AB_EINVAL for a bad symbol list (empty, too many, invalid or
 * duplicate names) or AB_ENOMEM.
 */
int market_new(const struct market_cfg *cfg, struct market **out);

/* Frees m (NULL is fine). */
void market_free(struct market *m);

/*
 * Runs every whole step that ends at or before now (ms), reporting events to
 * cb (may be NULL). Frozen symbols do nothing. Returns 0, or AB_ENOMEM /
 * AB_ERANGE if a hard cap or the decimal range was hit (the market is then
 * unusable).
 */
int market_advance(struct market *m, int64_t now, market_event_cb cb, void *ud);

/* Sim time up to which the market has run (end of its last step), ms. */
int64_t market_time(const struct market *m);

size_t market_n_symbols(const struct market *m);
const struct market_symbol *market_symbol(const struct market *m, size_t sym);

/* Index of the upper-case symbol name (len bytes). Returns 0 or AB_ENOTFOUND. */
int market_find_symbol(const struct market *m, const char *name, size_t len, size_t *sym);

/* True once the symbol stopped (freeze_after reached). */
bool market_frozen(const struct market *m, size_t sym);

/* Steps the symbol has run (= @depth@100ms events it emitted). */
uint64_t market_steps(const struct market *m, size_t sym);

/*
 * The true current book: up to `limit` (clamped to 1..MARKET_DEPTH_MAX)
 * levels per side into the caller's arrays (each with room for the clamped
 * limit), best first, and the book's last update id.
 */
void market_depth(const struct market *m, size_t sym, size_t limit, struct ab_level *bids,
                  size_t *n_bids, struct ab_level *asks, size_t *n_asks, uint64_t *last_update_id);

/*
 * Binance's /api/v3/klines row selection over the kept candles of one
 * interval, ascending by open time, the open one included (closed = false):
 * no bounds -> the newest `limit`; start only -> the oldest `limit` with
 * open_time >= start; end only -> the newest `limit` with open_time <= end;
 * both -> the oldest `limit` with start <= open_time <= end. Copies at most
 * `limit` candles into out and returns how many.
 */
size_t market_klines(const struct market *m, size_t sym, enum ab_interval iv, bool has_start,
                     int64_t start, bool has_end, int64_t end, size_t limit, struct ab_candle *out);

#endif

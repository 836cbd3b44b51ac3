/*
 * encode: Binance's JSON, byte for byte in key order, for every message the
 * simulator sends.
 *
 * Stream payloads (raw, without the combined wrapper) and REST bodies are
 * appended to an sbuf; decimals are quoted with exactly 8 fractional digits
 * ("50000.00000000") as Binance prints them; times are integer ms. The
 * caller checks sbuf_err once at the end. Pure functions, any thread.
 */
#ifndef SIM_ENCODE_H
#define SIM_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/model.h"
#include "services/sim/market.h"
#include "services/sim/sbuf.h"

/* Deliberate damage for --fault-out-of-range-every (the truth is untouched). */
enum kline_fault {
    KLINE_OK,
    KLINE_HIGH_BELOW_LOW,  /* "h" below "l" */
    KLINE_NEGATIVE_VOLUME, /* "v" negative */
};

/* {"e":"trade","E":..,"s":..,"t":..,"p":..,"q":..,"T":..,"m":..,"M":true} */
void encode_trade(struct sbuf *b, const char *symbol, int64_t event_time,
                  const struct market_trade *t);

/* {"e":"aggTrade","E":..,"s":..,"a":..,"p":..,"q":..,"f":..,"l":..,"T":..,"m":..,"M":true} */
void encode_agg_trade(struct sbuf *b, const char *symbol, int64_t event_time,
                      const struct market_trade *t);

/* {"u":..,"s":..,"b":..,"B":..,"a":..,"A":..} (no e/E, as Binance). */
void encode_book_ticker(struct sbuf *b, const char *symbol, uint64_t update_id,
                        const struct ab_level *bid, const struct ab_level *ask);

/* {"e":"depthUpdate","E":..,"s":..,"U":..,"u":..,"b":[[p,q],..],"a":[..]} */
void encode_depth_update(struct sbuf *b, const char *symbol, int64_t event_time, uint64_t first_id,
                         uint64_t last_id, const struct ab_level *bids, size_t n_bids,
                         const struct ab_level *asks, size_t n_asks);

/* {"e":"kline","E":..,"s":..,"k":{"t","T","s","i","f","L","o","c","h","l","v","n","x","q","V","Q","B"}}
 */
void encode_kline(struct sbuf *b, const struct ab_candle *c, int64_t event_time,
                  enum kline_fault fault);

/* {"stream":"<stream>","data":<raw>} */
void encode_combined(struct sbuf *b, const char *stream, const char *raw, size_t raw_len);

/* REST /api/v3/depth: {"lastUpdateId":..,"bids":[[p,q],..],"asks":[..]} */
void encode_depth_snapshot(struct sbuf *b, uint64_t last_update_id, const struct ab_level *bids,
                           size_t n_bids, const struct ab_level *asks, size_t n_asks);

/* REST /api/v3/klines: [[t,"o","h","l","c","v",T,"q",n,"V","Q","0"],..] */
void encode_klines(struct sbuf *b, const struct ab_candle *c, size_t n);

/* REST error body {"code":-1121,"msg":"Invalid symbol."} */
void encode_error(struct sbuf *b, int code, const char *msg);

/*
 * REST /api/v3/exchangeInfo for the n symbols (all TRADING) with
 * PRICE_FILTER and LOT_SIZE from their tick and step, plus Binance's
 * current rateLimits.
 */
void encode_exchange_info(struct sbuf *b, const struct market_symbol *const *syms, size_t n,
                          int64_t server_time);

#endif

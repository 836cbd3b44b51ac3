#include "services/sim/encode.h"

#include <string.h>

static void key_i64(struct sbuf *b, const char *key, int64_t v)
{
    sbuf_puts(b, key);
    sbuf_i64(b, v);
}

static void key_dec(struct sbuf *b, const char *key, struct ab_dec v)
{
    sbuf_puts(b, key);
    sbuf_dec8(b, v);
}

static void key_str(struct sbuf *b, const char *key, const char *s)
{
    sbuf_puts(b, key);
    sbuf_json_str(b, s);
}

static void trade_common(struct sbuf *b, const struct market_trade *t)
{
    key_dec(b, ",\"p\":", t->price);
    key_dec(b, ",\"q\":", t->qty);
}

void encode_trade(struct sbuf *b, const char *symbol, int64_t event_time,
                  const struct market_trade *t)
{
    key_i64(b, "{\"e\":\"trade\",\"E\":", event_time);
    key_str(b, ",\"s\":", symbol);
    key_i64(b, ",\"t\":", t->id);
    trade_common(b, t);
    key_i64(b, ",\"T\":", t->time);
    sbuf_puts(b, t->buyer_maker ? ",\"m\":true" : ",\"m\":false");
    sbuf_puts(b, ",\"M\":true}");
}

void encode_agg_trade(struct sbuf *b, const char *symbol, int64_t event_time,
                      const struct market_trade *t)
{
    key_i64(b, "{\"e\":\"aggTrade\",\"E\":", event_time);
    key_str(b, ",\"s\":", symbol);
    key_i64(b, ",\"a\":", t->agg_id);
    trade_common(b, t);
    key_i64(b, ",\"f\":", t->id);
    key_i64(b, ",\"l\":", t->id);
    key_i64(b, ",\"T\":", t->time);
    sbuf_puts(b, t->buyer_maker ? ",\"m\":true" : ",\"m\":false");
    sbuf_puts(b, ",\"M\":true}");
}

void encode_book_ticker(struct sbuf *b, const char *symbol, uint64_t update_id,
                        const struct ab_level *bid, const struct ab_level *ask)
{
    sbuf_puts(b, "{\"u\":");
    sbuf_u64(b, update_id);
    key_str(b, ",\"s\":", symbol);
    key_dec(b, ",\"b\":", bid->price);
    key_dec(b, ",\"B\":", bid->qty);
    key_dec(b, ",\"a\":", ask->price);
    key_dec(b, ",\"A\":", ask->qty);
    sbuf_putc(b, '}');
}

static void levels(struct sbuf *b, const struct ab_level *lv, size_t n)
{
    sbuf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        sbuf_puts(b, i ? ",[" : "[");
        sbuf_dec8(b, lv[i].price);
        sbuf_putc(b, ',');
        sbuf_dec8(b, lv[i].qty);
        sbuf_putc(b, ']');
    }
    sbuf_putc(b, ']');
}

void encode_depth_update(struct sbuf *b, const char *symbol, int64_t event_time, uint64_t first_id,
                         uint64_t last_id, const struct ab_level *bids, size_t n_bids,
                         const struct ab_level *asks, size_t n_asks)
{
    key_i64(b, "{\"e\":\"depthUpdate\",\"E\":", event_time);
    key_str(b, ",\"s\":", symbol);
    sbuf_puts(b, ",\"U\":");
    sbuf_u64(b, first_id);
    sbuf_puts(b, ",\"u\":");
    sbuf_u64(b, last_id);
    sbuf_puts(b, ",\"b\":");
    levels(b, bids, n_bids);
    sbuf_puts(b, ",\"a\":");
    levels(b, asks, n_asks);
    sbuf_putc(b, '}');
}

void encode_kline(struct sbuf *b, const struct ab_candle *c, int64_t event_time,
                  enum kline_fault fault)
{
    struct ab_dec high = c->high, low = c->low, volume = c->volume;
    if (fault == KLINE_HIGH_BELOW_LOW) {
        high = c->low;
        low = c->high;
        if (ab_dec_cmp(high, low) == 0)
            high.v -= 1; /* one 1e-8 below: still strictly under the low */
    } else if (fault == KLINE_NEGATIVE_VOLUME) {
        volume.v = ab_dec_is_zero(volume) ? -AB_DEC_SCALE : -volume.v;
    }
    key_i64(b, "{\"e\":\"kline\",\"E\":", event_time);
    key_str(b, ",\"s\":", c->symbol);
    key_i64(b, ",\"k\":{\"t\":", c->open_time);
    key_i64(b, ",\"T\":", c->close_time);
    key_str(b, ",\"s\":", c->symbol);
    key_str(b, ",\"i\":", ab_interval_name(c->interval));
    key_i64(b, ",\"f\":", c->first_trade_id);
    key_i64(b, ",\"L\":", c->last_trade_id);
    key_dec(b, ",\"o\":", c->open);
    key_dec(b, ",\"c\":", c->close);
    key_dec(b, ",\"h\":", high);
    key_dec(b, ",\"l\":", low);
    key_dec(b, ",\"v\":", volume);
    key_i64(b, ",\"n\":", c->num_trades);
    sbuf_puts(b, c->closed ? ",\"x\":true" : ",\"x\":false");
    key_dec(b, ",\"q\":", c->quote_volume);
    key_dec(b, ",\"V\":", c->taker_buy_volume);
    key_dec(b, ",\"Q\":", c->taker_buy_quote_volume);
    sbuf_puts(b, ",\"B\":\"0\"}}");
}

void encode_combined(struct sbuf *b, const char *stream, const char *raw, size_t raw_len)
{
    key_str(b, "{\"stream\":", stream);
    sbuf_puts(b, ",\"data\":");
    sbuf_putn(b, raw, raw_len);
    sbuf_putc(b, '}');
}

void encode_depth_snapshot(struct sbuf *b, uint64_t last_update_id, const struct ab_level *bids,
                           size_t n_bids, const struct ab_level *asks, size_t n_asks)
{
    sbuf_puts(b, "{\"lastUpdateId\":");
    sbuf_u64(b, last_update_id);
    sbuf_puts(b, ",\"bids\":");
    levels(b, bids, n_bids);
    sbuf_puts(b, ",\"asks\":");
    levels(b, asks, n_asks);
    sbuf_putc(b, '}');
}

void encode_klines(struct sbuf *b, const struct ab_candle *c, size_t n)
{
    sbuf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        sbuf_puts(b, i ? ",[" : "[");
        sbuf_i64(b, c[i].open_time);
        sbuf_putc(b, ',');
        sbuf_dec8(b, c[i].open);
        sbuf_putc(b, ',');
        sbuf_dec8(b, c[i].high);
        sbuf_putc(b, ',');
        sbuf_dec8(b, c[i].low);
        sbuf_putc(b, ',');
        sbuf_dec8(b, c[i].close);
        sbuf_putc(b, ',');
        sbuf_dec8(b, c[i].volume);
        sbuf_putc(b, ',');
        sbuf_i64(b, c[i].close_time);
        sbuf_putc(b, ',');
        sbuf_dec8(b, c[i].quote_volume);
        sbuf_putc(b, ',');
        sbuf_i64(b, c[i].num_trades);
        sbuf_putc(b, ',');
        sbuf_dec8(b, c[i].taker_buy_volume);
        sbuf_putc(b, ',');
        sbuf_dec8(b, c[i].taker_buy_quote_volume);
        sbuf_puts(b, ",\"0\"]");
    }
    sbuf_putc(b, ']');
}

void encode_error(struct sbuf *b, int code, const char *msg)
{
    key_i64(b, "{\"code\":", code);
    key_str(b, ",\"msg\":", msg);
    sbuf_putc(b, '}');
}

/* Binance's published limits (rest-api.md, since 2023-08-25). */
static const char rate_limits[] =
    "[{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,"
    "\"limit\":6000},"
    "{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\"intervalNum\":10,\"limit\":100},"
    "{\"rateLimitType\":\"ORDERS\",\"interval\":\"DAY\",\"intervalNum\":1,\"limit\":200000},"
    "{\"rateLimitType\":\"RAW_REQUESTS\",\"interval\":\"MINUTE\",\"intervalNum\":5,"
    "\"limit\":61000}]";

static void exchange_symbol(struct sbuf *b, const struct market_symbol *s)
{
    key_str(b, "{\"symbol\":", s->symbol);
    sbuf_puts(b, ",\"status\":\"TRADING\"");
    key_str(b, ",\"baseAsset\":", s->base);
    sbuf_puts(b, ",\"baseAssetPrecision\":8");
    key_str(b, ",\"quoteAsset\":", s->quote);
    sbuf_puts(b, ",\"quotePrecision\":8,\"quoteAssetPrecision\":8,"
                 "\"baseCommissionPrecision\":8,\"quoteCommissionPrecision\":8,"
                 "\"orderTypes\":[\"LIMIT\",\"LIMIT_MAKER\",\"MARKET\",\"STOP_LOSS_LIMIT\","
                 "\"TAKE_PROFIT_LIMIT\"],"
                 "\"icebergAllowed\":true,\"ocoAllowed\":true,\"otoAllowed\":true,"
                 "\"quoteOrderQtyMarketAllowed\":true,\"allowTrailingStop\":true,"
                 "\"cancelReplaceAllowed\":true,\"isSpotTradingAllowed\":true,"
                 "\"isMarginTradingAllowed\":false,\"filters\":[");
    key_dec(b, "{\"filterType\":\"PRICE_FILTER\",\"minPrice\":", s->tick);
    key_dec(b, ",\"maxPrice\":", ab_dec_from_units(100000000000000LL));
    key_dec(b, ",\"tickSize\":", s->tick);
    key_dec(b, "},{\"filterType\":\"LOT_SIZE\",\"minQty\":", s->step);
    key_dec(b, ",\"maxQty\":", ab_dec_from_units(900000000000000LL));
    key_dec(b, ",\"stepSize\":", s->step);
    sbuf_puts(b, "}],\"permissions\":[],\"permissionSets\":[[\"SPOT\"]],"
                 "\"defaultSelfTradePreventionMode\":\"EXPIRE_MAKER\","
                 "\"allowedSelfTradePreventionModes\":[\"EXPIRE_TAKER\",\"EXPIRE_MAKER\","
                 "\"EXPIRE_BOTH\"]}");
}

void encode_exchange_info(struct sbuf *b, const struct market_symbol *const *syms, size_t n,
                          int64_t server_time)
{
    sbuf_puts(b, "{\"timezone\":\"UTC\"");
    key_i64(b, ",\"serverTime\":", server_time);
    sbuf_puts(b, ",\"rateLimits\":");
    sbuf_puts(b, rate_limits);
    sbuf_puts(b, ",\"exchangeFilters\":[],\"symbols\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_putc(b, ',');
        exchange_symbol(b, syms[i]);
    }
    sbuf_puts(b, "]}");
}

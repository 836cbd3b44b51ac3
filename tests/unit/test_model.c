#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/model.h"

static struct ab_dec dec_at(json_t *row, size_t i)
{
    json_t *v = json_array_get(row, i);
    cr_assert(json_is_string(v), "column %zu is not a string", i);
    struct ab_dec d;
    cr_assert_eq(ab_dec_parse(json_string_value(v), json_string_length(v), &d), 0,
                 "column %zu: \"%s\"", i, json_string_value(v));
    return d;
}

/* One REST kline row: [open, o, h, l, c, v, close, qv, n, tbv, tbqv, ignore]. */
static void candle_from_row(json_t *row, enum ab_interval iv, struct ab_candle *c)
{
    cr_assert(json_is_array(row) && json_array_size(row) == 12);
    memset(c, 0, sizeof *c);
    snprintf(c->symbol, sizeof c->symbol, "BTCUSDT");
    c->interval = iv;
    c->open_time = json_integer_value(json_array_get(row, 0));
    c->open = dec_at(row, 1);
    c->high = dec_at(row, 2);
    c->low = dec_at(row, 3);
    c->close = dec_at(row, 4);
    c->volume = dec_at(row, 5);
    c->close_time = json_integer_value(json_array_get(row, 6));
    c->quote_volume = dec_at(row, 7);
    c->num_trades = json_integer_value(json_array_get(row, 8));
    c->taker_buy_volume = dec_at(row, 9);
    c->taker_buy_quote_volume = dec_at(row, 10);
    c->first_trade_id = -1;
    c->last_trade_id = -1;
    c->closed = true;
}

static json_t *load(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/binance/%s", AB_SHARED_DATA, rel);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    cr_assert_not_null(root, "%s: %s", path, jerr.text);
    cr_assert(json_is_array(root));
    return root;
}

static size_t validate_all(const char *rel, enum ab_interval iv)
{
    json_t *root = load(rel);
    size_t i;
    json_t *row;
    json_array_foreach(root, i, row)
    {
        struct ab_candle c;
        candle_from_row(row, iv, &c);
        const char *why = NULL;
        int rc = ab_candle_validate(&c, &why);
        cr_assert_eq(rc, 0, "%s row %zu: %s", rel, i, why ? why : "?");
    }
    size_t n = json_array_size(root);
    json_decref(root);
    return n;
}

Test(model, recorded_rest_klines_validate)
{
    cr_assert_eq(
        validate_all("python-binance-c22c7de/klines_30m_2019-04-11_to_2019-04-21.json", AB_I_30M),
        500);
    cr_assert_eq(validate_all("nautilus-209a58e/http_spot_market_klines.json", AB_I_1M), 10);
}

/* A known-good candle (the first nautilus row) to break one field at a time. */
static struct ab_candle good(void)
{
    json_t *root = load("nautilus-209a58e/http_spot_market_klines.json");
    struct ab_candle c;
    candle_from_row(json_array_get(root, 0), AB_I_1M, &c);
    json_decref(root);
    const char *why = NULL;
    cr_assert_eq(ab_candle_validate(&c, &why), 0, "%s", why ? why : "");
    return c;
}

static struct ab_dec d(const char *s)
{
    struct ab_dec v;
    cr_assert_eq(ab_dec_parse_cstr(s, &v), 0, "%s", s);
    return v;
}

static void expect_reject(const struct ab_candle *c, const char *what)
{
    const char *why = NULL;
    cr_assert_eq(ab_candle_validate(c, &why), AB_EVALIDATE, "%s accepted", what);
    cr_assert_not_null(why, "%s: no reason", what);
    cr_assert_gt(strlen(why), 0);
}

Test(model, rejects_broken_candles)
{
    struct ab_candle c;

    c = good(); /* high below low (and below everything) */
    c.high = d("60000");
    c.low = d("60100");
    expect_reject(&c, "high < low");

    c = good();
    c.high = c.close;
    c.open = d("60729.85"); /* open above high */
    expect_reject(&c, "high < open");

    c = good();
    c.close = d("60729.85");
    expect_reject(&c, "high < close");

    c = good();
    c.low = d("60685.23"); /* above open 60685.22 */
    expect_reject(&c, "low > open");

    c = good();
    c.low = d("60719.28"); /* above close 60719.27 and open */
    expect_reject(&c, "low > close");

    c = good();
    c.volume = d("-0.00000001");
    expect_reject(&c, "negative volume");

    c = good();
    c.quote_volume = d("-1");
    expect_reject(&c, "negative quote volume");

    c = good();
    c.taker_buy_volume = d("21.63272001"); /* volume is 21.63272000 */
    expect_reject(&c, "taker volume above volume");

    c = good();
    c.taker_buy_quote_volume = d("1313200.01340411");
    expect_reject(&c, "taker quote volume above quote volume");

    c = good();
    c.open_time += 1;
    expect_reject(&c, "unaligned open time");

    c = good();
    c.open_time += 30000;
    c.close_time += 30000;
    expect_reject(&c, "unaligned open time, consistent close");

    c = good();
    c.close_time += 1;
    expect_reject(&c, "close time one too late");

    c = good();
    c.close_time = c.open_time + 60000;
    expect_reject(&c, "close time == next open");

    c = good();
    c.interval = AB_I_1H; /* 23:03 is not an hour boundary */
    expect_reject(&c, "wrong interval");

    c = good();
    c.interval = AB_I_COUNT;
    expect_reject(&c, "invalid interval");

    c = good();
    c.num_trades = -1;
    expect_reject(&c, "negative trade count");

    c = good();
    c.symbol[0] = 'b';
    expect_reject(&c, "lower-case symbol");

    c = good();
    c.symbol[0] = '\0';
    expect_reject(&c, "empty symbol");

    c = good();
    memset(c.symbol, 'A', sizeof c.symbol); /* no NUL within the array */
    expect_reject(&c, "unterminated symbol");
}

Test(model, accepts_edge_candles)
{
    struct ab_candle c = good();
    /* a flat candle with no trades is valid */
    c.open = c.high = c.low = c.close = d("60685.22");
    c.volume = c.quote_volume = c.taker_buy_volume = c.taker_buy_quote_volume = ab_dec_zero();
    c.num_trades = 0;
    cr_assert_eq(ab_candle_validate(&c, NULL), 0);
    /* taker volume equal to the total */
    c = good();
    c.taker_buy_volume = c.volume;
    c.taker_buy_quote_volume = c.quote_volume;
    cr_assert_eq(ab_candle_validate(&c, NULL), 0);
    /* a calendar-month candle: Feb 2024 closes at the end of the 29th */
    c = good();
    c.interval = AB_I_1MO;
    c.open_time = 1706745600000LL;  /* 2024-02-01 */
    c.close_time = 1709251199999LL; /* 2024-02-29 23:59:59.999 */
    cr_assert_eq(ab_candle_validate(&c, NULL), 0);
    c.close_time = 1709164799999LL; /* 28 days: wrong in a leap year */
    cr_assert_eq(ab_candle_validate(&c, NULL), AB_EVALIDATE);
    /* a weekly candle opens on Monday */
    c = good();
    c.interval = AB_I_1W;
    c.open_time = 1704067200000LL; /* 2024-01-01, Monday */
    c.close_time = c.open_time + 7 * 86400000LL - 1;
    cr_assert_eq(ab_candle_validate(&c, NULL), 0);
    c.open_time += 86400000LL;
    c.close_time += 86400000LL;
    cr_assert_eq(ab_candle_validate(&c, NULL), AB_EVALIDATE);
}

Test(model, symbol_valid)
{
    cr_assert(ab_symbol_valid("BTCUSDT", 7));
    cr_assert(ab_symbol_valid("1000SATSUSDT", 12));
    cr_assert(ab_symbol_valid("A", 1));
    cr_assert(ab_symbol_valid("BTCUSDTxyz", 7)); /* length is honoured */
    char max[AB_SYMBOL_MAX];
    memset(max, 'X', sizeof max);
    cr_assert(ab_symbol_valid(max, AB_SYMBOL_MAX - 1));
    cr_assert(!ab_symbol_valid(max, AB_SYMBOL_MAX));
    cr_assert(!ab_symbol_valid("", 0));
    cr_assert(!ab_symbol_valid(NULL, 3));
    const char *bad[] = {"btcusdt",   "BTC-USDT", "BTC USDT", "BTC/USDT",
                         "BTCUSDT\n", "ÄBC",      "BTC_USDT"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!ab_symbol_valid(bad[i], strlen(bad[i])), "\"%s\" accepted", bad[i]);
    cr_assert(!ab_symbol_valid("BTC\0USDT", 8));
}

Test(model, deinit_accepts_zeroed_and_null)
{
    struct ab_book_delta dl = {0};
    struct ab_book_snapshot sn = {0};
    ab_book_delta_deinit(&dl);
    ab_book_snapshot_deinit(&sn);
    ab_book_delta_deinit(NULL);
    ab_book_snapshot_deinit(NULL);
    dl.bids = calloc(3, sizeof *dl.bids);
    dl.n_bids = 3;
    sn.asks = calloc(2, sizeof *sn.asks);
    sn.n_asks = 2;
    ab_book_delta_deinit(&dl);
    ab_book_snapshot_deinit(&sn);
    cr_assert_null(dl.bids);
    cr_assert_eq(dl.n_bids, 0);
    cr_assert_null(sn.asks);
    cr_assert_eq(sn.n_asks, 0);
}

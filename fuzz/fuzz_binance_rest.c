/*
 * Fuzz target for the REST body decoders of common/binance.h. Byte 0 picks
 * the decoder, byte 1 its parameter, the rest is the body. Successful
 * decodes are checked against the header's promises and, where cheap,
 * against jansson's own reading of the body (row and symbol counts).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/binance.h"
#include "common/err.h"
#include "fuzz/targets.h"

#define REST_SYMBOL "BTCUSDT"
/* 2021-10-12T00:29:00Z: inside the recorded captures, so some rows are open. */
#define REST_NOW_MS 1633998540000LL

/* The size of the top-level array (or of obj[key] when key is set) as jansson reads it. */
static size_t rest_json_count(const char *buf, size_t len, const char *key)
{
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    AB_FUZZ_CHECK(root != NULL);
    const json_t *arr = key ? json_object_get(root, key) : root;
    size_t n = json_array_size(arr);
    json_decref(root);
    return n;
}

static void rest_depth(const char *body, size_t len)
{
    struct ab_book_snapshot s;
    struct ab_decode_err err;
    int rc = ab_binance_decode_depth(body, len, REST_SYMBOL, &s, &err);
    ab_fuzz_check_decode_err(rc, &err);
    if (rc != 0) {
        AB_FUZZ_CHECK(s.bids == NULL && s.asks == NULL && s.n_bids == 0 && s.n_asks == 0);
        return;
    }
    AB_FUZZ_CHECK(strcmp(s.symbol, REST_SYMBOL) == 0);
    AB_FUZZ_CHECK(s.n_bids <= AB_BINANCE_SNAPSHOT_LEVELS_MAX);
    AB_FUZZ_CHECK(s.n_asks <= AB_BINANCE_SNAPSHOT_LEVELS_MAX);
    ab_fuzz_check_levels(s.bids, s.n_bids, true, -1);
    ab_fuzz_check_levels(s.asks, s.n_asks, true, 1);
    if (s.n_bids && s.n_asks)
        AB_FUZZ_CHECK(ab_dec_cmp(s.bids[0].price, s.asks[0].price) < 0);
    AB_FUZZ_CHECK(s.n_bids == rest_json_count(body, len, "bids"));
    AB_FUZZ_CHECK(s.n_asks == rest_json_count(body, len, "asks"));
    ab_book_snapshot_deinit(&s);
}

static void rest_klines(const char *body, size_t len, uint8_t param)
{
    enum ab_interval iv = (enum ab_interval)(param % AB_I_COUNT);
    struct ab_candle sentinel;
    struct ab_candle *cs = &sentinel; /* must be reset */
    size_t n = 12345;
    struct ab_decode_err err;
    int rc = ab_binance_decode_klines(body, len, REST_SYMBOL, iv, REST_NOW_MS, &cs, &n, &err);
    ab_fuzz_check_decode_err(rc, &err);
    if (rc != 0) {
        AB_FUZZ_CHECK(cs == NULL && n == 0);
        return;
    }
    AB_FUZZ_CHECK(n <= AB_BINANCE_KLINES_MAX);
    AB_FUZZ_CHECK((n == 0) == (cs == NULL));
    AB_FUZZ_CHECK(n == rest_json_count(body, len, NULL));
    for (size_t i = 0; i < n; i++) {
        const struct ab_candle *c = &cs[i];
        const char *why = NULL;
        AB_FUZZ_CHECK(ab_candle_validate(c, &why) == 0);
        AB_FUZZ_CHECK(strcmp(c->symbol, REST_SYMBOL) == 0 && c->interval == iv);
        AB_FUZZ_CHECK(c->event_time == 0 && c->first_trade_id == -1 && c->last_trade_id == -1);
        AB_FUZZ_CHECK(c->closed == (c->close_time < REST_NOW_MS));
        if (i > 0)
            AB_FUZZ_CHECK(c->open_time > cs[i - 1].open_time);
    }
    free(cs);
}

static void rest_error(const char *body, size_t len, uint8_t param)
{
    size_t cap = 1 + param % 64u;
    char msg[64 + 8];
    memset(msg, 'x', sizeof(msg));
    int code = 7;
    struct ab_decode_err err;
    int rc = ab_binance_decode_error(body, len, &code, msg, cap, &err);
    ab_fuzz_check_decode_err(rc, &err);
    AB_FUZZ_CHECK(ab_fuzz_terminated(msg, cap));
    for (size_t i = cap; i < sizeof(msg); i++)
        AB_FUZZ_CHECK(msg[i] == 'x'); /* never writes past cap */
    if (rc == 0)
        AB_FUZZ_CHECK(ab_fuzz_utf8_valid(msg, strlen(msg)));
    else
        AB_FUZZ_CHECK(code == 7 && msg[0] == '\0');
}

static void rest_time(const char *body, size_t len)
{
    int64_t ms = -5;
    struct ab_decode_err err;
    int rc = ab_binance_decode_server_time(body, len, &ms, &err);
    ab_fuzz_check_decode_err(rc, &err);
    AB_FUZZ_CHECK(rc != 0 || ms >= 0);
}

static void rest_exchange_info(const char *body, size_t len)
{
    struct ab_binance_exchange_info info;
    struct ab_decode_err err;
    int rc = ab_binance_decode_exchange_info(body, len, &info, &err);
    ab_fuzz_check_decode_err(rc, &err);
    if (rc != 0) {
        AB_FUZZ_CHECK(info.symbols == NULL && info.n_symbols == 0);
        return;
    }
    AB_FUZZ_CHECK(info.server_time >= 0);
    AB_FUZZ_CHECK(info.n_symbols + info.n_skipped == rest_json_count(body, len, "symbols"));
    AB_FUZZ_CHECK(info.n_symbols <= AB_BINANCE_SYMBOLS_MAX);
    for (size_t i = 0; i < info.n_symbols; i++) {
        const struct ab_binance_symbol_info *si = &info.symbols[i];
        AB_FUZZ_CHECK(ab_fuzz_terminated(si->symbol, sizeof(si->symbol)));
        AB_FUZZ_CHECK(ab_symbol_valid(si->symbol, strlen(si->symbol)));
        AB_FUZZ_CHECK(ab_fuzz_terminated(si->base_asset, sizeof(si->base_asset)));
        AB_FUZZ_CHECK(ab_fuzz_terminated(si->quote_asset, sizeof(si->quote_asset)));
        AB_FUZZ_CHECK(si->base_asset[0] != '\0' && si->quote_asset[0] != '\0');
        AB_FUZZ_CHECK(!ab_dec_is_neg(si->tick_size) && !ab_dec_is_neg(si->step_size));
        AB_FUZZ_CHECK(strcmp(ab_binance_status_name(si->status), "") != 0);
        const struct ab_binance_symbol_info *f = ab_binance_exchange_info_find(&info, si->symbol);
        AB_FUZZ_CHECK(f != NULL && f <= si && strcmp(f->symbol, si->symbol) == 0);
    }
    ab_binance_exchange_info_deinit(&info);
    AB_FUZZ_CHECK(info.symbols == NULL && info.n_symbols == 0);
}

int ab_fuzz_binance_rest(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    switch (data[0] % 5) {
    case 0:
        rest_depth(body, len);
        break;
    case 1:
        rest_klines(body, len, data[1]);
        break;
    case 2:
        rest_error(body, len, data[1]);
        break;
    case 3:
        rest_time(body, len);
        break;
    default:
        rest_exchange_info(body, len);
        break;
    }
    return 0;
}

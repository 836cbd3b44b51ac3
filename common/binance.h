/*
 * binance: decoders from Binance Spot JSON (WebSocket frames, REST bodies) to
 * the typed values of common/model.h.
 *
 * This is the edge where exchange JSON becomes structs: every decoder parses
 * with jansson, checks every field it reads (presence, JSON type, exact
 * decimal text, symbol and interval validity, semantic rules such as OHLC
 * consistency and update-id order) and either fills its output or fails with
 * one ab_err code plus a human reason that names the offending field
 * ("k.h: not a decimal string", "missing field U", "high below close").
 * Nothing outside this module ever sees a json_t.
 *
 * Input is a byte buffer and its length (need not be NUL-terminated). JSON is
 * parsed strictly: duplicate keys, trailing garbage, invalid UTF-8, raw NUL
 * bytes and escaped NUL characters are rejected (AB_EJSON); nesting deeper
 * than jansson's built-in limit (2048) is rejected by the parser. Decimal
 * strings longer than 64 characters are AB_ERANGE without being scanned.
 * Besides parsing, a decode allocates at most one array per book side (or
 * one array of candles / symbols); reasons are formatted only on failure.
 * Prices and quantities must be decimal strings (a JSON number where a
 * decimal string is expected is AB_ETYPE: doubles never carry money); ids and
 * times must be JSON integers (a real such as 1.0 is AB_ETYPE). Integers
 * beyond int64 and reals beyond double range are AB_ERANGE.
 *
 * Error codes used (see common/err.h): AB_EJSON (not JSON, or wrong overall
 * shape such as an array where an object belongs), AB_ETRUNC (JSON ended
 * early), AB_EMISSING, AB_ETYPE, AB_EINVAL (bad decimal text, bad symbol,
 * unknown interval), AB_ERANGE (value outside the allowed range, a cap
 * reached), AB_EVALIDATE (well-formed but inconsistent), AB_ENOMEM.
 *
 * Caps: a WebSocket frame is at most AB_BINANCE_FRAME_MAX bytes, a REST body
 * at most AB_BINANCE_BODY_MAX bytes, a depth delta at most
 * AB_BINANCE_DELTA_LEVELS_MAX levels per side, a snapshot at most
 * AB_BINANCE_SNAPSHOT_LEVELS_MAX per side, a klines body at most
 * AB_BINANCE_KLINES_MAX rows, an exchangeInfo body at most
 * AB_BINANCE_SYMBOLS_MAX symbols. Exceeding a cap is AB_ERANGE.
 *
 * Not supported, so never subscribe to them: microsecond timestamps
 * (timeUnit=MICROSECOND: klines fail the close-time check, other times would
 * be read as ms), kline streams aligned to UTC+8 (@+08:00: they fail the
 * alignment check), futures payloads.
 *
 * All functions are pure and thread-safe: they keep no state and read no
 * clock (the klines decoder takes the current time as an argument).
 */
#ifndef AB_BINANCE_H
#define AB_BINANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/decimal.h"
#include "common/interval.h"
#include "common/model.h"

#define AB_BINANCE_FRAME_MAX           (16u * 1024 * 1024) /* bytes per WebSocket frame */
#define AB_BINANCE_BODY_MAX            (64u * 1024 * 1024) /* bytes per REST body */
#define AB_BINANCE_DELTA_LEVELS_MAX    10000               /* per side, one depthUpdate */
#define AB_BINANCE_SNAPSHOT_LEVELS_MAX 5000                /* per side; Binance's own limit */
#define AB_BINANCE_KLINES_MAX          1000                /* rows; Binance's own limit */
#define AB_BINANCE_SYMBOLS_MAX         20000               /* exchangeInfo symbols */
#define AB_BINANCE_STREAM_MAX          96                  /* combined-stream name incl. NUL */
#define AB_BINANCE_TEXT_MAX            160                 /* copied messages, incl. NUL */
#define AB_BINANCE_RESULT_MAX          256                 /* control result as JSON text */
#define AB_BINANCE_ID_MAX              40                  /* WS request id string incl. NUL */
#define AB_BINANCE_EVENT_MAX           32                  /* unknown event type name incl. NUL */
#define AB_BINANCE_ASSET_MAX           AB_SYMBOL_MAX

/* Why a decode failed: code is the returned ab_err code, reason a NUL-terminated sentence. */
struct ab_decode_err {
    int code;
    char reason[160];
};

/* What one WebSocket text frame was. */
enum ab_binance_kind {
    AB_BINANCE_IGNORED = 0,     /* valid, but an event type or shape we do not decode */
    AB_BINANCE_KLINE,           /* "kline" -> .kline */
    AB_BINANCE_DEPTH_UPDATE,    /* "depthUpdate" -> .depth */
    AB_BINANCE_PARTIAL_DEPTH,   /* @depth<N> top-N book -> .partial */
    AB_BINANCE_BOOK_TICKER,     /* @bookTicker -> .book_ticker */
    AB_BINANCE_AGG_TRADE,       /* "aggTrade" -> .trade */
    AB_BINANCE_TRADE,           /* "trade" -> .trade */
    AB_BINANCE_SERVER_SHUTDOWN, /* "serverShutdown" -> .shutdown */
    AB_BINANCE_RESULT,          /* control response {"result":..,"id":..} -> .result */
    AB_BINANCE_WS_ERROR,        /* control error {"code":N,"msg":..} -> .ws_error */
};

/* Best bid/ask of a symbol. Prices and quantities may be zero (empty side), never negative. */
struct ab_binance_book_ticker {
    char symbol[AB_SYMBOL_MAX];
    uint64_t update_id; /* u: same sequence as depthUpdate u */
    struct ab_dec bid_price, bid_qty, ask_price, ask_qty;
};

/*
 * One trade ("trade") or one aggregate trade ("aggTrade"). For a plain trade
 * first/last_trade_id both equal id. price and qty are > 0.
 */
struct ab_binance_trade {
    char symbol[AB_SYMBOL_MAX];
    int64_t event_time;                    /* E, ms */
    int64_t trade_time;                    /* T, ms */
    int64_t id;                            /* t (trade id) or a (aggregate trade id) */
    int64_t first_trade_id, last_trade_id; /* aggTrade f/l */
    struct ab_dec price, qty;
    bool buyer_maker; /* m */
};

struct ab_binance_shutdown {
    int64_t event_time; /* E, ms */
};

/* The id of a control request: int64, string of up to 36 characters, or absent/null. */
enum ab_binance_id_kind { AB_BINANCE_ID_NONE = 0, AB_BINANCE_ID_INT, AB_BINANCE_ID_STR };

struct ab_binance_req_id {
    enum ab_binance_id_kind kind;
    int64_t num;                 /* when kind == AB_BINANCE_ID_INT */
    char str[AB_BINANCE_ID_MAX]; /* when kind == AB_BINANCE_ID_STR */
};

/*
 * A control response. result_null is true for the plain success answer
 * ({"result":null}); otherwise result_json holds the result as compact JSON
 * (e.g. ["btcusdt@aggTrade"] or true), cut at AB_BINANCE_RESULT_MAX - 1 bytes
 * with result_truncated set.
 */
struct ab_binance_result {
    struct ab_binance_req_id id;
    bool result_null;
    bool result_truncated;
    char result_json[AB_BINANCE_RESULT_MAX];
};

/* A control error; msg is cut at AB_BINANCE_TEXT_MAX - 1 bytes. */
struct ab_binance_ws_error {
    struct ab_binance_req_id id;
    int64_t code;
    char msg[AB_BINANCE_TEXT_MAX];
};

/*
 * One decoded frame. stream is the combined-stream name ("btcusdt@depth@100ms")
 * or "" for a raw payload. event holds the "e" value of an ignored event ("" if
 * none). Exactly the union member named by kind is valid. depth and partial
 * own their level arrays: release the message with ab_binance_msg_deinit.
 */
struct ab_binance_msg {
    enum ab_binance_kind kind;
    char stream[AB_BINANCE_STREAM_MAX];
    char event[AB_BINANCE_EVENT_MAX];
    union {
        struct ab_candle kline;
        struct ab_book_delta depth;
        struct ab_book_snapshot partial; /* symbol from the stream name, "" if raw */
        struct ab_binance_book_ticker book_ticker;
        struct ab_binance_trade trade;
        struct ab_binance_shutdown shutdown;
        struct ab_binance_result result;
        struct ab_binance_ws_error ws_error;
    };
};

/*
 * Decodes one WebSocket text frame of len bytes: a raw payload or the combined
 * wrapper {"stream":..,"data":..}. For combined frames the stream's symbol
 * part must match the payload's "s". Kline: closed = x, event_time = E, trade
 * ids f/L, k.s must equal s, and the candle must pass ab_candle_validate.
 * depthUpdate: 1 <= U <= u, prices > 0, quantities >= 0, levels kept in
 * exchange order. err may be NULL.
 *
 * Returns 0 with *out filled (AB_BINANCE_IGNORED is a success), or a negative
 * ab_err code with err filled; on failure *out owns nothing (deinit is still
 * safe). Always release a successful *out with ab_binance_msg_deinit.
 */
int ab_binance_decode_stream(const char *buf, size_t len, struct ab_binance_msg *out,
                             struct ab_decode_err *err);

/* Frees what msg owns and zeroes it. Accepts NULL and zeroed messages. */
void ab_binance_msg_deinit(struct ab_binance_msg *msg);

/*
 * Decodes a GET /api/v3/depth body for symbol (the body does not name it;
 * must satisfy ab_symbol_valid). Bids must be strictly descending, asks
 * strictly ascending, every price and quantity > 0 and the book uncrossed
 * (best bid < best ask); empty sides are fine. On success *out owns its
 * level arrays (ab_book_snapshot_deinit); on failure *out owns nothing.
 */
int ab_binance_decode_depth(const char *buf, size_t len, const char *symbol,
                            struct ab_book_snapshot *out, struct ab_decode_err *err);

/*
 * Decodes a GET /api/v3/klines body: an array of 12-element rows
 * [t,"o","h","l","c","v",T,"q",n,"V","Q","ignore"] for symbol and interval
 * (from the request: the body names neither). Rows must be strictly
 * ascending by open time and each must pass ab_candle_validate. A row is
 * closed when its close time < now_ms (the last row may still be open);
 * event_time is 0 and the trade ids -1. On success *out is a malloc'd array
 * of *n candles (NULL when *n == 0): the caller frees it with free(). On
 * failure *out is NULL and *n 0.
 */
int ab_binance_decode_klines(const char *buf, size_t len, const char *symbol,
                             enum ab_interval interval, int64_t now_ms, struct ab_candle **out,
                             size_t *n, struct ab_decode_err *err);

/*
 * Decodes a REST error body {"code":-1121,"msg":"Invalid symbol."}: *code gets
 * the exchange code, msg (cap bytes, cap >= 1) the message, cut to fit and
 * always NUL-terminated. Returns 0 when the body is such an error object.
 */
int ab_binance_decode_error(const char *buf, size_t len, int *code, char *msg, size_t cap,
                            struct ab_decode_err *err);

/* Decodes a GET /api/v3/time body {"serverTime":1499827319559} into *ms (>= 0). */
int ab_binance_decode_server_time(const char *buf, size_t len, int64_t *ms,
                                  struct ab_decode_err *err);

enum ab_binance_status {
    AB_BINANCE_STATUS_OTHER = 0, /* a status this version does not know */
    AB_BINANCE_STATUS_TRADING,
    AB_BINANCE_STATUS_END_OF_DAY,
    AB_BINANCE_STATUS_HALT,
    AB_BINANCE_STATUS_BREAK,
    AB_BINANCE_STATUS_CANCEL_ONLY,
};

/* One exchangeInfo symbol. tick_size/step_size are zero when the filter is absent or off. */
struct ab_binance_symbol_info {
    char symbol[AB_SYMBOL_MAX];
    enum ab_binance_status status;
    char base_asset[AB_BINANCE_ASSET_MAX];
    char quote_asset[AB_BINANCE_ASSET_MAX];
    struct ab_dec tick_size; /* PRICE_FILTER.tickSize */
    struct ab_dec step_size; /* LOT_SIZE.stepSize */
};

/*
 * The parts of GET /api/v3/exchangeInfo we use. Symbols whose name does not
 * satisfy ab_symbol_valid (Binance allows non-ASCII names since 2025-12) or
 * whose asset names do not fit are skipped and counted in n_skipped rather
 * than failing the whole body. symbols is owned: ab_binance_exchange_info_deinit.
 */
struct ab_binance_exchange_info {
    int64_t server_time;                    /* ms */
    struct ab_binance_symbol_info *symbols; /* owned; n_symbols entries, body order */
    size_t n_symbols;
    size_t n_skipped;
};

/*
 * Decodes an exchangeInfo body. Required: serverTime (integer) and symbols
 * (array); per symbol: symbol, status, baseAsset, quoteAsset (strings) and
 * filters (array of objects with a string filterType); tickSize/stepSize, when
 * their filter is present, must be non-negative decimal strings. On failure
 * *out owns nothing.
 */
int ab_binance_decode_exchange_info(const char *buf, size_t len,
                                    struct ab_binance_exchange_info *out,
                                    struct ab_decode_err *err);

/* Frees the symbols array and zeroes info. Accepts NULL. */
void ab_binance_exchange_info_deinit(struct ab_binance_exchange_info *info);

/* Looks up a symbol (linear scan); NULL when absent. Borrowed pointer into info. */
const struct ab_binance_symbol_info *
ab_binance_exchange_info_find(const struct ab_binance_exchange_info *info, const char *symbol);

/* Binance's name of a status ("TRADING", ...; "OTHER" for AB_BINANCE_STATUS_OTHER). */
const char *ab_binance_status_name(enum ab_binance_status s);

#endif

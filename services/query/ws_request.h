/*
 * ws_request: what a stream client may send, parsed and bounded, and the
 * per-connection request rate limiter (api/websocket.md, "Requests" and
 * "Limits").
 *
 * ws_request_parse turns one client text message (untrusted bytes) into a
 * struct ws_request: the operation, the optional id to echo, and for
 * subscribe/unsubscribe the channel names, checked against the tracked
 * symbols and intervals, deduplicated, at most max_channels. Every refusal
 * carries the wire error code (ws_req_error_name) and a message. The server
 * (ws.c) only acts on what this returns; fuzz/fuzz_ws_request.c feeds it
 * arbitrary bytes.
 *
 * struct ws_bucket is a token bucket in integer milli-tokens: `rate` requests
 * per second on average, bursts of up to `burst`.
 *
 * Pure: no I/O, no clock (time is an argument), no global state; any thread.
 */
#ifndef ABIDANCE_QUERY_WS_REQUEST_H
#define ABIDANCE_QUERY_WS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/interval.h"
#include "common/model.h"

#define WS_KEY_MAX   64     /* a channel name with its NUL: longer names are bad_channel */
#define WS_ID_MAX    64     /* bytes of a string id */
#define WS_RATE_MAX  100000 /* requests per second, upper bound of a configured rate */
#define WS_BURST_MAX 100000 /* upper bound of a configured burst */

enum ws_op { WS_OP_SUBSCRIBE, WS_OP_UNSUBSCRIBE, WS_OP_PING };

enum ws_chan_kind { WS_CH_CANDLES, WS_CH_BOOK };

/* A parsed channel name: "candles:<SYMBOL>:<interval>" or "book:<SYMBOL>". */
struct ws_chan {
    char key[WS_KEY_MAX]; /* the name as given (NUL-terminated) */
    enum ws_chan_kind kind;
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval interval; /* candles only */
};

/* Why a request is refused; the names are the `code` of the error reply. */
enum ws_req_error {
    WS_REQ_OK,
    WS_REQ_BAD_JSON,          /* "bad_json": not JSON, not an object/array, duplicate key */
    WS_REQ_BAD_REQUEST,       /* "bad_request": wrong shapes (op, id, channels) */
    WS_REQ_UNKNOWN_OP,        /* "unknown_op" */
    WS_REQ_BAD_CHANNEL,       /* "bad_channel": a name that does not parse */
    WS_REQ_UNKNOWN_SYMBOL,    /* "unknown_symbol": well-formed, symbol not tracked */
    WS_REQ_UNKNOWN_INTERVAL,  /* "unknown_interval": well-formed, interval not tracked */
    WS_REQ_TOO_MANY_CHANNELS, /* "too_many_channels": more than max_channels in the request */
    WS_REQ_ERROR_COUNT
};

/* "bad_json", ...; "internal" for values out of range. Static strings. */
const char *ws_req_error_name(enum ws_req_error e);

enum ws_id_kind { WS_ID_NONE, WS_ID_INT, WS_ID_STRING };

/* The request's id, echoed in its reply. */
struct ws_id {
    enum ws_id_kind kind;
    int64_t num;             /* WS_ID_INT */
    char str[WS_ID_MAX + 1]; /* WS_ID_STRING: NUL-terminated (JSON strings never hold NUL) */
    size_t len;              /* WS_ID_STRING: bytes in str */
};

struct ws_request_limits {
    size_t max_channels; /* per request (the per-connection total is the server's check) */
    /* Tracked symbols and intervals (borrowed): NULL or empty accepts any
     * well-formed name. */
    const struct ab_config_symbols *symbols;
    const struct ab_config_intervals *intervals;
};

struct ws_request {
    enum ws_op op;
    struct ws_id id;       /* the request's valid id, kept on errors found after it */
    struct ws_chan *chans; /* subscribe/unsubscribe: n >= 1 distinct channels in request
                              order (duplicates folded); NULL for ping. Owned. */
    size_t n;
    enum ws_req_error error; /* WS_REQ_OK on success */
};

/*
 * Parses one request (text, len bytes, need not be NUL-terminated; any
 * bytes). Checks, in order: JSON (bad_json), an object (bad_request), "id"
 * an integer or a string of at most WS_ID_MAX bytes (bad_request), "op" a
 * string (bad_request) naming subscribe, unsubscribe or ping (unknown_op);
 * for subscribe/unsubscribe "channels" a non-empty array (bad_request) of at
 * most lim->max_channels entries (too_many_channels), each a string
 * (bad_request) that ws_channel_parse accepts. Unknown fields are ignored.
 *
 * Returns 0 (out->error == WS_REQ_OK), AB_EINVAL (out->error says why, why
 * holds a message of at most why_len bytes; out->id is set when the id was
 * valid and found before the error) or AB_ENOMEM. Messages are printable
 * ASCII (client bytes are shown as "?" where they are not). *out is always
 * initialised: release it with ws_request_free.
 */
int ws_request_parse(const char *text, size_t len, const struct ws_request_limits *lim,
                     struct ws_request *out, char *why, size_t why_len);

void ws_request_free(struct ws_request *r); /* frees chans; accepts NULL */

/*
 * Parses one channel name (len bytes, any bytes). Returns WS_REQ_OK with
 * *out filled, or WS_REQ_BAD_CHANNEL / WS_REQ_UNKNOWN_SYMBOL /
 * WS_REQ_UNKNOWN_INTERVAL with a message in why.
 */
enum ws_req_error ws_channel_parse(const char *name, size_t len,
                                   const struct ws_request_limits *lim, struct ws_chan *out,
                                   char *why, size_t why_len);

/* ---- rate limiting ---- */

struct ws_bucket {
    int64_t milli;   /* tokens x 1000 */
    int64_t last_ms; /* time of the last refill */
};

/* A full bucket (burst tokens) at now_ms. */
void ws_bucket_init(struct ws_bucket *b, unsigned burst, int64_t now_ms);

/*
 * Refills for the time since the last call (rate tokens per second, never
 * above burst; time going backwards adds nothing) and takes one token.
 * Returns false when none was left. rate 0: no limit (always true).
 */
bool ws_bucket_take(struct ws_bucket *b, unsigned rate, unsigned burst, int64_t now_ms);

#endif

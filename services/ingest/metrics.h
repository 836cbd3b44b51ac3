/*
 * metrics: the ingest's counters and gauges and their Prometheus text form.
 *
 * struct metrics is a plain struct the ingest loop owns and updates
 * directly (single thread: the health endpoint runs on the same loop, so no
 * atomics are needed). metrics_render writes the Prometheus text exposition
 * (version 0.0.4) of everything in it. All metric names start with
 * abidance_ingest_.
 */
#ifndef ABIDANCE_INGEST_METRICS_H
#define ABIDANCE_INGEST_METRICS_H

#include <stdint.h>

#include "common/config.h"
#include "common/model.h"
#include "publish.h"

#define METRICS_CONNS_MAX 64

/* Exchange messages received, by kind (label kind="..."). */
enum met_msg {
    MET_MSG_KLINE,
    MET_MSG_DEPTH,
    MET_MSG_BOOK_TICKER,
    MET_MSG_TRADE,
    MET_MSG_RESULT,
    MET_MSG_WS_ERROR,
    MET_MSG_SHUTDOWN,
    MET_MSG_IGNORED,
    MET_MSG_REST_DEPTH,
    MET_MSG_REST_KLINES,
    MET_MSG_REST_TIME,
    MET_MSG_COUNT
};

/* Invalid exchange messages, by reason (label reason="..."). */
enum met_invalid {
    MET_INV_JSON,           /* not JSON or wrong overall shape */
    MET_INV_TRUNCATED,      /* JSON ended early */
    MET_INV_MISSING,        /* a required field is absent */
    MET_INV_TYPE,           /* a field has the wrong JSON type */
    MET_INV_VALUE,          /* bad decimal, symbol or interval text */
    MET_INV_RANGE,          /* value out of range or a cap hit */
    MET_INV_INCONSISTENT,   /* OHLC, update-id order, crossed snapshot... */
    MET_INV_UNKNOWN_SYMBOL, /* a symbol or stream we did not subscribe to */
    MET_INV_BINARY,         /* a binary frame */
    MET_INV_TOO_LARGE,      /* a frame or body above its cap */
    MET_INV_BOOK_REJECTED,  /* the book state machine refused the event */
    MET_INV_OTHER,
    MET_INV_COUNT
};

struct metrics {
    uint64_t messages[MET_MSG_COUNT];
    uint64_t invalid[MET_INV_COUNT];

    uint64_t ws_connects;         /* connections established */
    uint64_t ws_connect_failures; /* attempts that failed */
    uint64_t ws_reconnects;       /* reconnects after a loss (not rollovers) */
    uint64_t ws_rollovers;        /* planned replacements (max age) completed */
    uint64_t ws_server_shutdowns; /* serverShutdown events */
    uint64_t ws_silence_timeouts; /* connections dropped by the watchdog */
    uint64_t ws_control_sent;     /* SUBSCRIBE etc. sent */
    uint64_t ws_overflow;         /* frames dropped: rollover buffer full */

    uint64_t rest_requests;   /* requests sent */
    uint64_t rest_failures;   /* connection errors and timeouts */
    uint64_t rest_429;        /* 429 answers */
    uint64_t rest_418;        /* 418 answers */
    uint64_t rest_5xx;        /* 5xx answers */
    uint64_t rest_4xx;        /* other 4xx answers */
    uint64_t rest_retries;    /* requests queued again */
    uint64_t rest_given_up;   /* requests that failed for good */
    int64_t rest_used_weight; /* last X-MBX-USED-WEIGHT-1M */
    int64_t rest_blocked_ms;  /* remaining Retry-After pause, ms (0 = none) */

    uint64_t book_resyncs;
    uint64_t book_snapshots;     /* snapshots loaded */
    uint64_t book_deltas;        /* deltas applied and published */
    uint64_t candles_published;  /* all candle messages */
    uint64_t candles_backfilled; /* of which from REST */
    uint64_t candles_duplicate;  /* dropped as duplicates or already final */
    uint64_t publish_failures;
    uint64_t record_errors;

    /* Backfill progress of the current (or last) round, see progress.h. */
    uint64_t backfill_todo;
    uint64_t backfill_done;
    double backfill_rate;   /* candles/s */
    int64_t backfill_eta_s; /* -1 unknown, 0 finished */
    size_t backfill_active; /* series still backfilling */

    /* Gauges the loop keeps current. */
    struct ab_config_symbols symbols; /* copy of the followed symbols */
    enum pub_book_state book_state[AB_CONFIG_MAX_SYMBOLS];
    uint64_t book_update_id[AB_CONFIG_MAX_SYMBOLS];
    size_t n_conns;
    enum pub_conn_state conn_state[METRICS_CONNS_MAX];
    int64_t conn_age_ms[METRICS_CONNS_MAX];
};

/* Prometheus label value of a reason / kind. */
const char *met_invalid_name(enum met_invalid r);
const char *met_msg_name(enum met_msg k);

/* Maps a decode error code (common/err.h) to its reason. */
enum met_invalid met_invalid_from_err(int code);

/*
 * Writes the exposition text into b (cleared first). Returns 0 or AB_ENOMEM
 * (b's cap reached).
 */
int metrics_render(const struct metrics *m, struct pub_buf *b);

#endif

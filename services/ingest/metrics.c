#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static const char *const msg_names[MET_MSG_COUNT] = {
    [MET_MSG_KLINE] = "kline",
    [MET_MSG_DEPTH] = "depth_update",
    [MET_MSG_BOOK_TICKER] = "book_ticker",
    [MET_MSG_TRADE] = "trade",
    [MET_MSG_RESULT] = "control_result",
    [MET_MSG_WS_ERROR] = "control_error",
    [MET_MSG_SHUTDOWN] = "server_shutdown",
    [MET_MSG_IGNORED] = "ignored",
    [MET_MSG_REST_DEPTH] = "rest_depth",
    [MET_MSG_REST_KLINES] = "rest_klines",
    [MET_MSG_REST_TIME] = "rest_time",
};

static const char *const inv_names[MET_INV_COUNT] = {
    [MET_INV_JSON] = "json",
    [MET_INV_TRUNCATED] = "truncated",
    [MET_INV_MISSING] = "missing_field",
    [MET_INV_TYPE] = "wrong_type",
    [MET_INV_VALUE] = "bad_value",
    [MET_INV_RANGE] = "out_of_range",
    [MET_INV_INCONSISTENT] = "inconsistent",
    [MET_INV_UNKNOWN_SYMBOL] = "unknown_symbol",
    [MET_INV_BINARY] = "binary_frame",
    [MET_INV_TOO_LARGE] = "too_large",
    [MET_INV_BOOK_REJECTED] = "book_rejected",
    [MET_INV_OTHER] = "other",
};

const char *met_invalid_name(enum met_invalid r)
{
    return (unsigned)r < MET_INV_COUNT ? inv_names[r] : "other";
}

const char *met_msg_name(enum met_msg k)
{
    return (unsigned)k < MET_MSG_COUNT ? msg_names[k] : "other";
}

enum met_invalid met_invalid_from_err(int code)
{
    switch (code) {
    case AB_EJSON:
        return MET_INV_JSON;
    case AB_ETRUNC:
        return MET_INV_TRUNCATED;
    case AB_EMISSING:
        return MET_INV_MISSING;
    case AB_ETYPE:
        return MET_INV_TYPE;
    case AB_EINVAL:
        return MET_INV_VALUE;
    case AB_ERANGE:
        return MET_INV_RANGE;
    case AB_EVALIDATE:
        return MET_INV_INCONSISTENT;
    default:
        return MET_INV_OTHER;
    }
}

struct out {
    struct pub_buf *b;
    int rc;
};

__attribute__((format(printf, 2, 3))) static void w(struct out *o, const char *fmt, ...)
{
    if (o->rc < 0)
        return;
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        o->rc = AB_ERANGE;
        return;
    }
    struct pub_buf *b = o->b;
    if ((size_t)n > b->max || b->len > b->max - (size_t)n) {
        o->rc = AB_ENOMEM;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            o->rc = AB_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, tmp, (size_t)n + 1);
    b->len += (size_t)n;
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
    w(o, "# HELP abidance_ingest_%s %s\n# TYPE abidance_ingest_%s counter\n", name, help, name);
    w(o, "abidance_ingest_%s %" PRIu64 "\n", name, v);
}

static void gauge(struct out *o, const char *name, const char *help, int64_t v)
{
    w(o, "# HELP abidance_ingest_%s %s\n# TYPE abidance_ingest_%s gauge\n", name, help, name);
    w(o, "abidance_ingest_%s %" PRId64 "\n", name, v);
}

int metrics_render(const struct metrics *m, struct pub_buf *b)
{
    struct out o = {b, 0};
    b->len = 0;
    w(&o, "# HELP abidance_ingest_messages_total Exchange messages received, by kind.\n"
          "# TYPE abidance_ingest_messages_total counter\n");
    for (int k = 0; k < MET_MSG_COUNT; k++)
        w(&o, "abidance_ingest_messages_total{kind=\"%s\"} %" PRIu64 "\n", msg_names[k],
          m->messages[k]);
    w(&o, "# HELP abidance_ingest_invalid_messages_total Invalid exchange messages skipped, by "
          "reason.\n# TYPE abidance_ingest_invalid_messages_total counter\n");
    for (int r = 0; r < MET_INV_COUNT; r++)
        w(&o, "abidance_ingest_invalid_messages_total{reason=\"%s\"} %" PRIu64 "\n", inv_names[r],
          m->invalid[r]);

    counter(&o, "ws_connects_total", "WebSocket connections established.", m->ws_connects);
    counter(&o, "ws_connect_failures_total", "WebSocket connection attempts that failed.",
            m->ws_connect_failures);
    counter(&o, "ws_reconnects_total", "WebSocket reconnects after a lost connection.",
            m->ws_reconnects);
    counter(&o, "ws_rollovers_total", "Planned WebSocket replacements before the 24h cut.",
            m->ws_rollovers);
    counter(&o, "ws_server_shutdowns_total", "serverShutdown events received.",
            m->ws_server_shutdowns);
    counter(&o, "ws_silence_timeouts_total", "Connections dropped for data silence.",
            m->ws_silence_timeouts);
    counter(&o, "ws_control_messages_total", "Control messages sent (SUBSCRIBE...).",
            m->ws_control_sent);
    counter(&o, "ws_overflow_total", "Frames dropped because a rollover buffer was full.",
            m->ws_overflow);

    counter(&o, "rest_requests_total", "REST requests sent.", m->rest_requests);
    counter(&o, "rest_failures_total", "REST connection errors and timeouts.", m->rest_failures);
    counter(&o, "rest_429_total", "REST 429 (rate limit) answers.", m->rest_429);
    counter(&o, "rest_418_total", "REST 418 (IP ban) answers.", m->rest_418);
    counter(&o, "rest_5xx_total", "REST 5xx answers.", m->rest_5xx);
    counter(&o, "rest_4xx_total", "REST 4xx answers other than 418 and 429.", m->rest_4xx);
    counter(&o, "rest_retries_total", "REST requests retried.", m->rest_retries);
    counter(&o, "rest_given_up_total", "REST requests that failed for good.", m->rest_given_up);
    gauge(&o, "rest_used_weight", "Last X-MBX-USED-WEIGHT-1M seen.", m->rest_used_weight);
    gauge(&o, "rest_blocked_ms", "Remaining Retry-After pause of all REST traffic, ms.",
          m->rest_blocked_ms);

    counter(&o, "book_resyncs_total", "Order-book resynchronisations.", m->book_resyncs);
    counter(&o, "book_snapshots_total", "Depth snapshots loaded into books.", m->book_snapshots);
    counter(&o, "book_deltas_total", "Depth deltas applied and published.", m->book_deltas);
    counter(&o, "candles_published_total", "Candle messages published.", m->candles_published);
    counter(&o, "candles_backfilled_total", "Closed candles published from REST.",
            m->candles_backfilled);
    counter(&o, "candles_duplicate_total", "Candle updates dropped as duplicates.",
            m->candles_duplicate);
    gauge(&o, "backfill_candles_todo", "Candles to backfill in the current or last backfill.",
          (int64_t)m->backfill_todo);
    gauge(&o, "backfill_candles_done", "Of which done (published or shown not to exist).",
          (int64_t)m->backfill_done);
    w(&o,
      "# HELP abidance_ingest_backfill_rate Backfill rate since its start, candles/s.\n"
      "# TYPE abidance_ingest_backfill_rate gauge\nabidance_ingest_backfill_rate %.3f\n",
      m->backfill_rate);
    gauge(&o, "backfill_eta_seconds", "Backfill time left at the current rate (-1 unknown).",
          m->backfill_eta_s);
    gauge(&o, "backfill_series_active", "Series still backfilling.", (int64_t)m->backfill_active);
    counter(&o, "publish_failures_total", "Publisher sink errors.", m->publish_failures);
    counter(&o, "record_errors_total", "Write errors of the --record file.", m->record_errors);

    w(&o, "# HELP abidance_ingest_book_state Book state per symbol (1 for the current state).\n"
          "# TYPE abidance_ingest_book_state gauge\n");
    for (size_t i = 0; i < m->symbols.n; i++)
        for (int st = PUB_BOOK_SYNCING; st <= PUB_BOOK_RESYNCING; st++)
            w(&o, "abidance_ingest_book_state{symbol=\"%s\",state=\"%s\"} %d\n", m->symbols.v[i],
              pub_book_state_name((enum pub_book_state)st),
              m->book_state[i] == (enum pub_book_state)st ? 1 : 0);
    w(&o, "# HELP abidance_ingest_book_last_update_id Last applied update id per symbol.\n"
          "# TYPE abidance_ingest_book_last_update_id gauge\n");
    for (size_t i = 0; i < m->symbols.n; i++)
        w(&o, "abidance_ingest_book_last_update_id{symbol=\"%s\"} %" PRIu64 "\n", m->symbols.v[i],
          m->book_update_id[i]);
    w(&o, "# HELP abidance_ingest_ws_connection_state WebSocket connection state (1 for the "
          "current state).\n# TYPE abidance_ingest_ws_connection_state gauge\n");
    for (size_t i = 0; i < m->n_conns && i < METRICS_CONNS_MAX; i++)
        for (int st = PUB_CONN_CONNECTING; st <= PUB_CONN_DISCONNECTED; st++)
            w(&o, "abidance_ingest_ws_connection_state{conn=\"%zu\",state=\"%s\"} %d\n", i,
              pub_conn_state_name((enum pub_conn_state)st),
              m->conn_state[i] == (enum pub_conn_state)st ? 1 : 0);
    w(&o, "# HELP abidance_ingest_ws_connection_age_seconds Age of the active connection.\n"
          "# TYPE abidance_ingest_ws_connection_age_seconds gauge\n");
    for (size_t i = 0; i < m->n_conns && i < METRICS_CONNS_MAX; i++)
        w(&o, "abidance_ingest_ws_connection_age_seconds{conn=\"%zu\"} %.3f\n", i,
          (double)m->conn_age_ms[i] / 1000.0);
    return o.rc;
}

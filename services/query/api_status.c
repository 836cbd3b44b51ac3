/* GET /v1/symbols, /healthz, /readyz, /metrics. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "common/err.h"
#include "common/log.h"
#include "reply.h"
#include "ws.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool tracked_symbol(const struct api_ctx *ctx, const char *sym)
{
    for (size_t i = 0; ctx->symbols && i < ctx->symbols->n; i++)
        if (strcmp(ctx->symbols->v[i], sym) == 0)
            return true;
    return false;
}

static bool tracked_interval(const struct api_ctx *ctx, enum ab_interval iv)
{
    for (size_t i = 0; ctx->intervals && i < ctx->intervals->n; i++)
        if (ctx->intervals->v[i] == iv)
            return true;
    return false;
}

static const struct store_series *find_series(const struct store_series *s, size_t n,
                                              const char *sym, enum ab_interval iv)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].interval == iv && strcmp(s[i].symbol, sym) == 0)
            return &s[i];
    return NULL;
}

/* ---- /v1/symbols ---- */

static json_t *series_json(const struct store_series *s, enum ab_interval iv, bool tracked)
{
    return json_pack("{s:s,s:b,s:o,s:I}", "interval", ab_interval_name(iv), "tracked", tracked,
                     "newest_open_time", s ? json_integer(s->newest_open_time) : json_null(),
                     "count", (json_int_t)(s ? s->count : 0));
}

static json_t *book_json(const struct api_ctx *ctx, const char *sym)
{
    struct ab_book_snapshot snap;
    struct book_info info = {0};
    memset(&snap, 0, sizeof(snap));
    int rc = ctx->books.get(ctx->books.arg, sym, 1, &snap, &info);
    ab_book_snapshot_deinit(&snap);
    if (rc == AB_ENOTFOUND)
        return json_pack("{s:s}", "state", "none");
    if (rc < 0)
        return json_pack("{s:s}", "state", "unknown");
    return json_pack("{s:s,s:I,s:o}", "state", info.state ? info.state : "unknown",
                     "last_update_id", (json_int_t)snap.last_update_id, "as_of",
                     info.as_of_ms > 0 ? json_integer(info.as_of_ms) : json_null());
}

/* The bus side: is an ingest connected, since when, and its last frame. */
static json_t *ingest_json(struct feed *feed)
{
    struct feed_ingest_status st;
    feed_ingest_status(feed, &st);
    char id[17];
    snprintf(id, sizeof(id), "%016llx", (unsigned long long)st.instance_id);
    return json_pack("{s:b,s:o,s:s,s:o,s:o,s:I}", "connected", st.connected, "instance",
                     st.instance_id ? json_string(id) : json_null(), "name", st.name, "since",
                     st.since_ms > 0 ? json_integer(st.since_ms) : json_null(), "last_frame",
                     st.last_frame_ms > 0 ? json_integer(st.last_frame_ms) : json_null(),
                     "acked_seq", (json_int_t)st.acked_seq);
}

/* One entry per symbol: tracked ones first (configuration order), then any
 * other symbol found in storage. */
static json_t *symbol_json(const struct api_ctx *ctx, const char *sym, const struct store_series *s,
                           size_t n)
{
    bool tracked = tracked_symbol(ctx, sym);
    json_t *series = json_array();
    for (size_t i = 0; series && tracked && i < ctx->intervals->n; i++) {
        enum ab_interval iv = ctx->intervals->v[i];
        json_array_append_new(series, series_json(find_series(s, n, sym, iv), iv, true));
    }
    for (int iv = 0; series && iv < AB_I_COUNT; iv++) {
        const struct store_series *f = find_series(s, n, sym, (enum ab_interval)iv);
        if (f && !(tracked && tracked_interval(ctx, (enum ab_interval)iv)))
            json_array_append_new(series, series_json(f, (enum ab_interval)iv, false));
    }
    return json_pack("{s:s,s:b,s:o,s:o}", "symbol", sym, "tracked", tracked, "series", series,
                     "book", book_json(ctx, sym));
}

enum MHD_Result api_symbols(const struct api_ctx *ctx, struct MHD_Connection *conn,
                            const char *rest, const struct params *p)
{
    (void)rest;
    (void)p;
    struct store_series *s = NULL;
    size_t n = 0;
    int rc = store_list_series(ctx->store, &s, &n);
    if (rc < 0)
        return api_reply_store_error(conn, rc, "listing series");

    json_t *arr = json_array();
    for (size_t i = 0; arr && ctx->symbols && i < ctx->symbols->n; i++)
        json_array_append_new(arr, symbol_json(ctx, ctx->symbols->v[i], s, n));
    for (size_t i = 0; arr && i < n; i++) {
        bool seen = tracked_symbol(ctx, s[i].symbol);
        for (size_t j = 0; !seen && j < i; j++)
            seen = strcmp(s[j].symbol, s[i].symbol) == 0;
        if (!seen)
            json_array_append_new(arr, symbol_json(ctx, s[i].symbol, s, n));
    }
    free(s);
    json_t *ivs = json_array();
    for (size_t i = 0; ivs && ctx->intervals && i < ctx->intervals->n; i++)
        json_array_append_new(ivs, json_string(ab_interval_name(ctx->intervals->v[i])));
    json_t *body = json_pack("{s:o,s:o}", "symbols", arr, "intervals", ivs);
    if (body && ctx->feed)
        json_object_set_new(body, "ingest", ingest_json(ctx->feed));
    return reply_json(conn, 200, body);
}

/* ---- /healthz ---- */

enum MHD_Result api_healthz(const struct api_ctx *ctx, struct MHD_Connection *conn,
                            const char *rest, const struct params *p)
{
    (void)ctx;
    (void)rest;
    (void)p;
    return reply_json(conn, 200, json_pack("{s:s}", "status", "ok"));
}

/* ---- /readyz ---- */

#define MAX_REASONS 16

/*
 * Pure freshness rule: a tracked (symbol, interval) is stale when its newest
 * candle closed more than stale_after_ms before now (the candle that should
 * be open by now is missing), or when it has no candle at all.
 */
static void freshness(const struct api_ctx *ctx, int64_t now, const struct store_series *s,
                      size_t n, json_t *reasons)
{
    for (size_t i = 0; ctx->symbols && i < ctx->symbols->n; i++) {
        for (size_t j = 0; ctx->intervals && j < ctx->intervals->n; j++) {
            const char *sym = ctx->symbols->v[i];
            enum ab_interval iv = ctx->intervals->v[j];
            if (json_array_size(reasons) >= MAX_REASONS)
                return;
            const struct store_series *f = find_series(s, n, sym, iv);
            if (!f) {
                json_array_append_new(reasons, json_sprintf("no candles stored for %s %s", sym,
                                                            ab_interval_name(iv)));
                continue;
            }
            int64_t late = now - ab_interval_next(iv, f->newest_open_time);
            if (late > ctx->stale_after_ms)
                json_array_append_new(
                    reasons, json_sprintf("%s %s is stale: newest candle opened at %lld, %lld s "
                                          "overdue",
                                          sym, ab_interval_name(iv), (long long)f->newest_open_time,
                                          (long long)(late / 1000)));
        }
    }
}

enum MHD_Result api_readyz(const struct api_ctx *ctx, struct MHD_Connection *conn, const char *rest,
                           const struct params *p)
{
    (void)rest;
    (void)p;
    json_t *reasons = json_array();
    if (!reasons)
        return reply_error(conn, API_INTERNAL, NULL, "out of memory");
    const char *why = NULL;
    int rc = store_ping(ctx->store, ctx->db_timeout_ms, &why);
    if (rc < 0) {
        json_array_append_new(reasons,
                              json_sprintf("database unreachable: %s", why ? why : ab_err_str(rc)));
    } else {
        struct store_series *s = NULL;
        size_t n = 0;
        rc = store_list_series(ctx->store, &s, &n);
        if (rc < 0)
            json_array_append_new(reasons, json_sprintf("cannot list series: %s", ab_err_str(rc)));
        else
            freshness(ctx, wall_ms(), s, n, reasons);
        free(s);
    }
    bool ready = json_array_size(reasons) == 0;
    /* Readiness is about the data: an absent ingest shows up as stale data.
     * When the data is not ready, say whether the bus is the cause; the
     * status never depends on the connection itself (no flapping). */
    if (!ready && ctx->feed && json_array_size(reasons) < MAX_REASONS) {
        struct feed_ingest_status st;
        feed_ingest_status(ctx->feed, &st);
        if (!st.connected && st.since_ms == 0)
            json_array_append_new(
                reasons, json_sprintf("no ingest has connected to the bus at %s", st.path));
        else if (!st.connected)
            json_array_append_new(reasons,
                                  json_sprintf("no ingest connected to the bus at %s since %lld",
                                               st.path, (long long)st.since_ms));
    }
    json_t *body =
        json_pack("{s:s,s:o}", "status", ready ? "ready" : "not_ready", "reasons", reasons);
    return reply_json(conn, ready ? 200 : 503, body);
}

/* ---- /metrics ---- */

enum MHD_Result api_metrics(const struct api_ctx *ctx, struct MHD_Connection *conn,
                            const char *rest, const struct params *p)
{
    (void)rest;
    (void)p;
    struct store_stats st;
    memset(&st, 0, sizeof(st));
    store_get_stats(ctx->store, &st);
    char *buf = malloc(METRICS_TEXT_MAX);
    if (!buf)
        return reply_error(conn, API_INTERNAL, NULL, "out of memory");
    int n = metrics_render(ctx->metrics, &st, buf, METRICS_TEXT_MAX);
    if (n >= 0 && ctx->feed)
        n = feed_metrics_render(ctx->feed, buf, METRICS_TEXT_MAX);
    if (n >= 0 && ctx->ws) {
        struct ws_stats ws;
        ws_server_stats(ctx->ws, &ws);
        n = ws_stats_render(&ws, buf, METRICS_TEXT_MAX);
    }
    enum MHD_Result r;
    if (n < 0) {
        ab_log(AB_LOG_ERROR, "rest", "metrics text exceeds its cap cap=%d", METRICS_TEXT_MAX);
        r = reply_error(conn, API_INTERNAL, NULL, "metrics text exceeds its cap");
    } else {
        r = reply_text(conn, 200, "text/plain; version=0.0.4; charset=utf-8", buf, (size_t)n);
    }
    free(buf);
    return r;
}

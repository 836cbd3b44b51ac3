/* GET /v1/candles, and the window parsing and reading shared with indicators. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "candles_json.h"
#include "common/err.h"
#include "common/log.h"
#include "common/processor.h"
#include "reply.h"

int api_window_parse(const struct params *p, struct api_window *w, struct api_error *e)
{
    memset(w, 0, sizeof(*w));
    if (param_symbol(p, "symbol", w->symbol, e) < 0 ||
        param_interval(p, "interval", &w->interval, e) < 0 ||
        param_time(p, "start", &w->start, &w->has_start, e) < 0 ||
        param_time(p, "end", &w->end, &w->has_end, e) < 0 ||
        param_int(p, "limit", API_LIMIT_DEFAULT, 1, API_LIMIT_MAX, &w->limit, e) < 0)
        return -1;
    if (w->has_start && w->has_end && w->start > w->end)
        return api_fail(e, API_INVALID_RANGE, "start (%lld) is after end (%lld)",
                        (long long)w->start, (long long)w->end);
    return 0;
}

/* Newest candles of memory merged into a stored answer: storage lags memory
 * by its write queue, far less than this per series. */
#define API_MERGE_MAX 1000

static bool in_window(const struct api_window *w, int64_t t)
{
    return (!w->has_start || t >= w->start) && (!w->has_end || t <= w->end);
}

/*
 * Merges the stored answer s (sn, ascending) with the newest candles in
 * memory m (mn, ascending) into the window's answer: the union by open
 * time, memory winning ties, then the first (with start) or last `limit`.
 * Both inputs answer the same window, so every candle of the true answer is
 * in one of them. Takes s and m (frees them); *out malloc'd.
 */
static int merge_window(const struct api_window *w, struct ab_candle *s, size_t sn,
                        struct ab_candle *m, size_t mn, struct ab_candle **out, size_t *n)
{
    struct ab_candle *v = malloc((sn + mn ? sn + mn : 1) * sizeof(*v));
    if (!v) {
        free(s);
        free(m);
        return AB_ENOMEM;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < sn || j < mn) {
        if (j < mn && !in_window(w, m[j].open_time)) {
            j++;
        } else if (j == mn || (i < sn && s[i].open_time < m[j].open_time)) {
            v[k++] = s[i++];
        } else {
            if (i < sn && s[i].open_time == m[j].open_time)
                i++;
            v[k++] = m[j++];
        }
    }
    free(s);
    free(m);
    size_t limit = (size_t)w->limit;
    if (k > limit) {
        if (!w->has_start)
            memmove(v, v + (k - limit), limit * sizeof(*v));
        k = limit;
    }
    *out = v;
    *n = k;
    return 0;
}

int api_window_read(const struct api_ctx *ctx, const struct api_window *w, struct ab_candle **out,
                    size_t *n)
{
    *out = NULL;
    *n = 0;
    if (ctx->live) {
        struct live_window lw = {.has_start = w->has_start,
                                 .has_end = w->has_end,
                                 .start = w->start,
                                 .end = w->end,
                                 .limit = (size_t)w->limit};
        int rc = live_candles_read(ctx->live, w->symbol, w->interval, &lw, out, n);
        if (rc != AB_ENOTFOUND)
            return rc;
    }
    struct ab_candle *s = NULL;
    size_t sn = 0;
    int rc = store_read_candles(
        ctx->store, w->symbol, w->interval, w->has_start ? w->start : INT64_MIN,
        w->has_end ? w->end : INT64_MAX, (size_t)w->limit, !w->has_start, &s, &sn);
    if (rc < 0 || !ctx->live) {
        *out = s;
        *n = sn;
        return rc;
    }
    /* Memory holds what storage may not have committed yet: the newest. */
    struct ab_candle *m = NULL;
    size_t mn = 0;
    uint64_t seq = 0;
    size_t recent = (size_t)w->limit < API_MERGE_MAX ? (size_t)w->limit : API_MERGE_MAX;
    if (live_candles_recent(ctx->live, w->symbol, w->interval, recent, &m, &mn, &seq) < 0 ||
        mn == 0) {
        free(m);
        *out = s;
        *n = sn;
        return 0;
    }
    return merge_window(w, s, sn, m, mn, out, n);
}

enum MHD_Result api_reply_store_error(struct MHD_Connection *conn, int rc, const char *what)
{
    if (rc == AB_EDB_RETRY)
        return reply_error(conn, API_DB_UNAVAILABLE, NULL,
                           "the database is unavailable; retry later");
    /* Parameters are validated before any read, so these should not happen;
     * if storage still refuses the request, it is the request's fault. */
    if (rc == AB_EINVAL || rc == AB_ERANGE)
        return reply_error(conn, API_INVALID_PARAMETER, NULL, "%s: %s", what, ab_err_str(rc));
    ab_log(AB_LOG_ERROR, "rest", "%s failed error=\"%s\"", what, ab_err_str(rc));
    return reply_error(conn, API_INTERNAL, NULL, "%s failed: %s", what, ab_err_str(rc));
}

/* The decimal columns of a candle, in output order. */
enum col {
    COL_OPEN,
    COL_HIGH,
    COL_LOW,
    COL_CLOSE,
    COL_VOLUME,
    COL_QUOTE_VOLUME,
    COL_TAKER_BUY_VOLUME,
    COL_TAKER_BUY_QUOTE_VOLUME,
    N_COLS
};

static const char *const col_names[] = {"open",
                                        "high",
                                        "low",
                                        "close",
                                        "volume",
                                        "quote_volume",
                                        "taker_buy_volume",
                                        "taker_buy_quote_volume",
                                        NULL};

static struct ab_dec col_value(const struct ab_candle *c, enum col k)
{
    switch (k) {
    case COL_OPEN:
        return c->open;
    case COL_HIGH:
        return c->high;
    case COL_LOW:
        return c->low;
    case COL_CLOSE:
        return c->close;
    case COL_VOLUME:
        return c->volume;
    case COL_QUOTE_VOLUME:
        return c->quote_volume;
    case COL_TAKER_BUY_VOLUME:
        return c->taker_buy_volume;
    case COL_TAKER_BUY_QUOTE_VOLUME:
    case N_COLS:
        break;
    }
    return c->taker_buy_quote_volume;
}

/* Frame fields shared by both representations. */
static int put_times(json_t *o, const struct ab_candle *c)
{
    return json_object_set_new(o, "open_time", json_integer(c->open_time)) |
           json_object_set_new(o, "close_time", json_integer(c->close_time));
}

static int put_tail(json_t *o, const struct ab_candle *c)
{
    return json_object_set_new(o, "num_trades", json_integer(c->num_trades)) |
           json_object_set_new(o, "is_closed", json_boolean(c->closed));
}

/* Numeric representation: cols[k][i] for every decimal column. */
static json_t *candles_numeric(const struct ab_candle *cs, size_t n, double *const *cols)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = json_object();
        int bad = !o || put_times(o, &cs[i]);
        for (int k = 0; !bad && k < N_COLS; k++)
            bad |= json_object_set_new(o, col_names[k], json_num_or_null(cols[k][i]));
        bad = bad || put_tail(o, &cs[i]) || json_array_append_new(arr, o);
        if (bad) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

enum norm { NORM_NONE, NORM_MINMAX, NORM_ZSCORE };
static const char *const norm_names[] = {"none", "minmax", "zscore", NULL};

/* Default columns for normalize= without columns=. */
static const int default_norm_cols[] = {COL_OPEN, COL_HIGH, COL_LOW, COL_CLOSE, COL_VOLUME};

/*
 * Converts to doubles, then applies the processor: clean is the seed's
 * clean_data (fill every column, replace outliers in open/high/low/close;
 * *replaced counts them), normalize scales the chosen columns. Returns 0 or
 * a negative code.
 */
static int transform(const struct ab_candle *cs, size_t n, bool clean, enum norm norm,
                     const int *ncols, size_t n_ncols, double **cols, size_t *replaced)
{
    for (int k = 0; k < N_COLS; k++)
        for (size_t i = 0; i < n; i++)
            cols[k][i] = ab_dec_to_double(col_value(&cs[i], k));
    int rc = 0;
    *replaced = 0;
    if (clean) {
        rc = ab_proc_clean_ohlcv(cols[COL_OPEN], cols[COL_HIGH], cols[COL_LOW], cols[COL_CLOSE],
                                 cols[COL_VOLUME], n, NULL, replaced);
        for (int k = COL_QUOTE_VOLUME; k < N_COLS && rc == 0; k++)
            rc = ab_proc_fill(cols[k], n, NULL);
    }
    enum ab_norm method = norm == NORM_ZSCORE ? AB_NORM_ZSCORE : AB_NORM_MINMAX;
    for (size_t j = 0; j < n_ncols && rc == 0 && norm != NORM_NONE; j++)
        rc = ab_proc_normalize(cols[ncols[j]], n, method);
    return rc;
}

/* ---- the plain answer: written directly (candles_json.h), shared, cached ---- */

/*
 * Bodies of the dashboard request (no start, no end, answered from memory),
 * process-wide: CANDLES_CACHE_ENTRIES (64) bodies, least recently used
 * evicted, at most CANDLES_CACHE_BYTES_DEFAULT (64 MiB) in total. Entries are
 * tagged with their series' version (live_candles_version), which no other
 * state of any series in any live state ever has, so one cache serves every
 * server of the process and never answers with a body its series outdated.
 */
static struct candles_cache *plain_cache;
static pthread_once_t plain_cache_once = PTHREAD_ONCE_INIT;

static void plain_cache_init(void)
{
    if (candles_cache_new(0, 0, &plain_cache) != 0)
        plain_cache = NULL; /* no cache: every request builds its body */
}

static void body_release(void *cls)
{
    candles_body_unref(cls);
}

/* Queues b (takes the caller's reference) with reply.c's JSON headers. */
static enum MHD_Result queue_body(struct MHD_Connection *conn, struct candles_body *b)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data, body_release, b);
    if (!r) {
        candles_body_unref(b);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") == MHD_YES &&
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES)
        ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* Replies to a request without clean or normalize. */
static enum MHD_Result reply_plain(const struct api_ctx *ctx, struct MHD_Connection *conn,
                                   const struct api_window *w)
{
    struct candles_cache *cache = NULL;
    struct candles_body *b = NULL;
    struct ab_candle *cs = NULL;
    size_t n = 0;
    uint64_t version = 0;
    int rc;

    if (ctx->live && !w->has_start && !w->has_end) {
        pthread_once(&plain_cache_once, plain_cache_init);
        cache = plain_cache;
    }
    if (cache) {
        version = live_candles_version(ctx->live, w->symbol, w->interval);
        b = version ? candles_cache_get(cache, w->symbol, w->interval, (size_t)w->limit, version)
                    : NULL;
        if (b)
            return queue_body(conn, b);
        /* Read memory with the version of exactly what was copied. */
        struct live_window lw = {.limit = (size_t)w->limit};
        rc = live_candles_read_versioned(ctx->live, w->symbol, w->interval, &lw, &cs, &n, &version);
        if (rc == AB_ENOTFOUND) {
            cache = NULL; /* not covered: storage answers, not cached */
            rc = api_window_read(ctx, w, &cs, &n);
        }
    } else {
        rc = api_window_read(ctx, w, &cs, &n);
    }
    if (rc < 0)
        return api_reply_store_error(conn, rc, "reading candles");
    rc = candles_json_build(w->symbol, w->interval, cs, n, &b);
    free(cs);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "rest", "cannot build the candle list error=\"%s\"", ab_err_str(rc));
        return reply_error(conn, API_INTERNAL, NULL, "cannot build the candle list");
    }
    if (cache)
        candles_cache_put(cache, w->symbol, w->interval, (size_t)w->limit, version, b);
    return queue_body(conn, b);
}

enum MHD_Result api_candles(const struct api_ctx *ctx, struct MHD_Connection *conn,
                            const char *rest, const struct params *p)
{
    (void)rest;
    struct api_window w;
    struct api_error e;
    bool clean = false;
    int norm = NORM_NONE;
    int ncols[N_COLS];
    size_t n_ncols = 0;

    if (api_window_parse(p, &w, &e) < 0 || param_bool(p, "clean", false, &clean, &e) < 0 ||
        param_choice(p, "normalize", norm_names, NORM_NONE, &norm, &e) < 0 ||
        param_list(p, "columns", col_names, ncols, N_COLS, &n_ncols, &e) < 0)
        return reply_api_error(conn, &e);
    if (params_get(p, "columns") && norm == NORM_NONE)
        return reply_error(conn, API_INVALID_PARAMETER, NULL,
                           "columns is only valid together with normalize=minmax|zscore");
    if (norm != NORM_NONE && n_ncols == 0) {
        n_ncols = sizeof(default_norm_cols) / sizeof(default_norm_cols[0]);
        memcpy(ncols, default_norm_cols, sizeof(default_norm_cols));
    }

    if (!clean && norm == NORM_NONE)
        return reply_plain(ctx, conn, &w);

    struct ab_candle *cs = NULL;
    size_t n = 0;
    int rc = api_window_read(ctx, &w, &cs, &n);
    if (rc < 0)
        return api_reply_store_error(conn, rc, "reading candles");

    json_t *list = NULL;
    double *buf = NULL;
    size_t replaced = 0;
    double *cols[N_COLS];
    buf = malloc(sizeof(double) * N_COLS * (n ? n : 1));
    if (buf) {
        for (int k = 0; k < N_COLS; k++)
            cols[k] = buf + (size_t)k * n;
        rc = transform(cs, n, clean, norm, ncols, n_ncols, cols, &replaced);
        if (rc == 0)
            list = candles_numeric(cs, n, cols);
    }
    free(buf);
    free(cs);
    if (!list)
        return reply_error(conn, API_INTERNAL, NULL, "cannot build the candle list");

    json_t *body = json_pack("{s:s,s:s,s:o}", "symbol", w.symbol, "interval",
                             ab_interval_name(w.interval), "candles", list);
    if (body && clean)
        json_object_set_new(body, "clean",
                            json_pack("{s:I}", "outliers_replaced", (json_int_t)replaced));
    if (body && norm != NORM_NONE) {
        json_t *cl = json_array();
        for (size_t j = 0; cl && j < n_ncols; j++)
            json_array_append_new(cl, json_string(col_names[ncols[j]]));
        json_object_set_new(body, "normalize", json_string(norm_names[norm]));
        json_object_set_new(body, "columns", cl ? cl : json_null());
    }
    return reply_json(conn, 200, body);
}

/*
 * GET /v1/indicators/{name}: indicators over stored candles.
 *
 * The requested window is read like /v1/candles; then up to `warm-up`
 * candles before it are read too, so values at the start of the window are
 * defined (finite windows) or converged (recursive indicators) wherever the
 * stored history allows. Only the window's points are returned. The warm-up
 * sizes are documented in api/openapi.yaml (IndicatorValues).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "common/err.h"
#include "common/indicators.h"
#include "reply.h"

enum kind { K_SMA, K_EMA, K_WMA, K_RSI, K_MACD, K_BBANDS, K_ATR, K_VWAP };

static const char *const source_names[] = {"open", "high", "low", "close", NULL};
enum source { SRC_OPEN, SRC_HIGH, SRC_LOW, SRC_CLOSE };
static const char *const smoothing_names[] = {"sma", "wilder", NULL};

#define WINDOW "symbol", "interval", "start", "end", "limit"
static const char *const ma_params[] = {WINDOW, "period", "source", NULL};
static const char *const rsi_params[] = {WINDOW, "period", "source", "smoothing", NULL};
static const char *const macd_params[] = {WINDOW, "fast", "slow", "signal", "source", NULL};
static const char *const bb_params[] = {WINDOW, "period", "k", "source", NULL};
static const char *const hlc_params[] = {WINDOW, "period", NULL};

static const char *const one_field[] = {"value", NULL};
static const char *const macd_fields[] = {"macd", "signal", "histogram", NULL};
static const char *const bb_fields[] = {"upper", "middle", "lower", NULL};

struct indicator {
    const char *name;
    enum kind kind;
    const char *const *params;
    const char *const *fields; /* output members besides open_time */
    int default_period;
};

static const struct indicator indicators[] = {
    {"sma", K_SMA, ma_params, one_field, 20},      {"ema", K_EMA, ma_params, one_field, 20},
    {"wma", K_WMA, ma_params, one_field, 20},      {"rsi", K_RSI, rsi_params, one_field, 14},
    {"macd", K_MACD, macd_params, macd_fields, 0}, {"bbands", K_BBANDS, bb_params, bb_fields, 20},
    {"atr", K_ATR, hlc_params, one_field, 14},     {"vwap", K_VWAP, hlc_params, one_field, 20},
};
#define N_INDICATORS (sizeof(indicators) / sizeof(indicators[0]))

struct settings {
    int64_t period, fast, slow, signal;
    double k;
    int source, smoothing;
};

/* Inputs before the first output after which an exponential average with
 * factor alpha has forgotten its starting value to 1e-9 (relative weight). */
static int64_t converge(double alpha)
{
    if (alpha >= 1.0)
        return 0;
    return (int64_t)ceil(log(1e-9) / log(1.0 - alpha));
}

static int64_t warmup(const struct indicator *ind, const struct settings *s)
{
    int64_t w = 0;
    switch (ind->kind) {
    case K_SMA:
    case K_WMA:
    case K_BBANDS:
    case K_VWAP:
        w = s->period - 1;
        break;
    case K_EMA:
        w = converge(2.0 / ((double)s->period + 1.0));
        break;
    case K_RSI:
        w = s->period + (s->smoothing == AB_RSI_WILDER ? converge(1.0 / (double)s->period) : 0);
        break;
    case K_ATR:
        w = s->period + converge(1.0 / (double)s->period);
        break;
    case K_MACD:
        w = converge(2.0 / ((double)s->slow + 1.0)) + converge(2.0 / ((double)s->signal + 1.0));
        break;
    }
    return w > API_WARMUP_MAX ? API_WARMUP_MAX : w;
}

static int parse_settings(const struct indicator *ind, const struct params *p, struct settings *s,
                          struct api_error *e)
{
    memset(s, 0, sizeof(*s));
    s->source = SRC_CLOSE;
    if (param_int(p, "period", ind->default_period, 1, API_PERIOD_MAX, &s->period, e) < 0 ||
        param_choice(p, "source", source_names, SRC_CLOSE, &s->source, e) < 0 ||
        param_choice(p, "smoothing", smoothing_names, 0, &s->smoothing, e) < 0 ||
        param_int(p, "fast", 12, 1, API_PERIOD_MAX, &s->fast, e) < 0 ||
        param_int(p, "slow", 26, 1, API_PERIOD_MAX, &s->slow, e) < 0 ||
        param_int(p, "signal", 9, 1, API_PERIOD_MAX, &s->signal, e) < 0 ||
        param_double(p, "k", 2.0, 0.0, 10.0, &s->k, e) < 0)
        return -1;
    if (ind->kind == K_MACD && s->fast >= s->slow)
        return api_fail(e, API_INVALID_PARAMETER, "fast (%lld) must be less than slow (%lld)",
                        (long long)s->fast, (long long)s->slow);
    /* smoothing: index 0 is "sma" = AB_RSI_SIMPLE, 1 is "wilder" = AB_RSI_WILDER. */
    s->smoothing = s->smoothing == 1 ? AB_RSI_WILDER : AB_RSI_SIMPLE;
    return 0;
}

static json_t *settings_json(const struct indicator *ind, const struct settings *s)
{
    switch (ind->kind) {
    case K_MACD:
        return json_pack("{s:I,s:I,s:I,s:s}", "fast", (json_int_t)s->fast, "slow",
                         (json_int_t)s->slow, "signal", (json_int_t)s->signal, "source",
                         source_names[s->source]);
    case K_RSI:
        return json_pack("{s:I,s:s,s:s}", "period", (json_int_t)s->period, "source",
                         source_names[s->source], "smoothing",
                         s->smoothing == AB_RSI_WILDER ? "wilder" : "sma");
    case K_BBANDS:
        return json_pack("{s:I,s:f,s:s}", "period", (json_int_t)s->period, "k", s->k, "source",
                         source_names[s->source]);
    case K_ATR:
    case K_VWAP:
        return json_pack("{s:I}", "period", (json_int_t)s->period);
    default:
        return json_pack("{s:I,s:s}", "period", (json_int_t)s->period, "source",
                         source_names[s->source]);
    }
}

static double price(const struct ab_candle *c, int source)
{
    switch (source) {
    case SRC_OPEN:
        return ab_dec_to_double(c->open);
    case SRC_HIGH:
        return ab_dec_to_double(c->high);
    case SRC_LOW:
        return ab_dec_to_double(c->low);
    default:
        return ab_dec_to_double(c->close);
    }
}

/* Runs the indicator over all n candles; out[f] receives field f. */
static int compute(const struct indicator *ind, const struct settings *s,
                   const struct ab_candle *cs, size_t n, double *work, double **out)
{
    double *x = work, *h = work + n, *l = work + 2 * n, *c = work + 3 * n, *v = work + 4 * n;
    for (size_t i = 0; i < n; i++) {
        x[i] = price(&cs[i], s->source);
        h[i] = ab_dec_to_double(cs[i].high);
        l[i] = ab_dec_to_double(cs[i].low);
        c[i] = ab_dec_to_double(cs[i].close);
        v[i] = ab_dec_to_double(cs[i].volume);
    }
    int p = (int)s->period;
    switch (ind->kind) {
    case K_SMA:
        return ab_ind_sma(x, n, p, out[0]);
    case K_EMA:
        return ab_ind_ema(x, n, p, out[0]);
    case K_WMA:
        return ab_ind_wma(x, n, p, out[0]);
    case K_RSI:
        return ab_ind_rsi(x, n, p, (enum ab_rsi_smoothing)s->smoothing, out[0]);
    case K_MACD:
        return ab_ind_macd(x, n, (int)s->fast, (int)s->slow, (int)s->signal, out[0], out[1],
                           out[2]);
    case K_BBANDS:
        return ab_ind_bbands(x, n, p, s->k, out[0], out[1], out[2]);
    case K_ATR:
        return ab_ind_atr(h, l, c, n, p, out[0]);
    case K_VWAP:
        return ab_ind_vwap(h, l, c, v, n, p, out[0]);
    }
    return AB_EINVAL;
}

static json_t *values_json(const struct indicator *ind, const struct ab_candle *cs, size_t from,
                           size_t n, double *const *out)
{
    json_t *arr = json_array();
    for (size_t i = from; arr && i < n; i++) {
        json_t *o = json_object();
        int bad = !o || json_object_set_new(o, "open_time", json_integer(cs[i].open_time));
        for (size_t f = 0; !bad && ind->fields[f]; f++)
            bad = json_object_set_new(o, ind->fields[f], json_num_or_null(out[f][i]));
        if (bad || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Reads up to `want` candles just before the window and the window itself,
 * into one ascending array. *first is the index of the window's first candle. */
static int read_series(const struct api_ctx *ctx, const struct api_window *w, int64_t want,
                       struct ab_candle **out, size_t *n_out, size_t *first)
{
    struct ab_candle *win = NULL, *pre = NULL;
    size_t n_win = 0, n_pre = 0;
    int rc = api_window_read(ctx, w, &win, &n_win);
    if (rc < 0 || n_win == 0 || want <= 0) {
        *out = win;
        *n_out = n_win;
        *first = 0;
        return rc;
    }
    rc = store_read_candles(ctx->store, w->symbol, w->interval, INT64_MIN, win[0].open_time - 1,
                            (size_t)want, true, &pre, &n_pre);
    if (rc < 0) {
        free(win);
        return rc;
    }
    struct ab_candle *all = realloc(pre, sizeof(*all) * (n_pre + n_win));
    if (!all) {
        free(pre);
        free(win);
        return AB_ENOMEM;
    }
    memcpy(all + n_pre, win, sizeof(*win) * n_win);
    free(win);
    *out = all;
    *n_out = n_pre + n_win;
    *first = n_pre;
    return 0;
}

enum MHD_Result api_indicators(const struct api_ctx *ctx, struct MHD_Connection *conn,
                               const char *rest, const struct params *p)
{
    const struct indicator *ind = NULL;
    for (size_t i = 0; i < N_INDICATORS; i++)
        if (strcmp(rest, indicators[i].name) == 0)
            ind = &indicators[i];
    if (!ind)
        return reply_error(conn, API_UNKNOWN_INDICATOR, NULL,
                           "unknown indicator \"%.40s\"; available: sma, ema, wma, rsi, macd, "
                           "bbands, atr, vwap",
                           rest);

    struct api_window w;
    struct settings s;
    struct api_error e;
    if (params_check(p, ind->params, &e) < 0 || api_window_parse(p, &w, &e) < 0 ||
        parse_settings(ind, p, &s, &e) < 0)
        return reply_api_error(conn, &e);

    struct ab_candle *cs = NULL;
    size_t n = 0, first = 0;
    int rc = read_series(ctx, &w, warmup(ind, &s), &cs, &n, &first);
    if (rc < 0)
        return api_reply_store_error(conn, rc, "reading candles");

    /* 5 input columns, then up to 3 output columns. */
    double *work = malloc(sizeof(double) * 8 * (n ? n : 1));
    double *out[3] = {NULL, NULL, NULL};
    json_t *values = NULL;
    if (work) {
        for (int f = 0; f < 3; f++)
            out[f] = work + (size_t)(5 + f) * n;
        rc = compute(ind, &s, cs, n, work, out);
        if (rc < 0) {
            free(work);
            free(cs);
            return reply_error(conn, API_INVALID_PARAMETER, NULL,
                               "indicator parameters rejected: %s", ab_err_str(rc));
        }
        values = values_json(ind, cs, first, n, out);
    }
    free(work);
    free(cs);
    if (!values)
        return reply_error(conn, API_INTERNAL, NULL, "cannot build the indicator values");

    json_t *body = json_pack("{s:s,s:s,s:s,s:o,s:I,s:o}", "indicator", ind->name, "symbol",
                             w.symbol, "interval", ab_interval_name(w.interval), "params",
                             settings_json(ind, &s), "warmup", (json_int_t)first, "values", values);
    return reply_json(conn, 200, body);
}

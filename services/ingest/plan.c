#include "plan.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/interval.h"

int plan_build(const struct ab_config_symbols *symbols, const struct ab_config_intervals *ivs,
               bool depth_1000ms, size_t per_conn, struct plan *out)
{
    memset(out, 0, sizeof(*out));
    if (!symbols || !ivs || symbols->n == 0 || symbols->n > AB_CONFIG_MAX_SYMBOLS)
        return AB_EINVAL;
    size_t per_sym = ivs->n + 1;
    if (per_conn < per_sym)
        per_conn = per_sym;
    size_t syms_per_conn = per_conn / per_sym;
    size_t n_conns = (symbols->n + syms_per_conn - 1) / syms_per_conn;
    if (n_conns > PLAN_CONNS_MAX)
        return AB_ERANGE;
    size_t n = symbols->n * per_sym;
    out->streams = calloc(n, sizeof(*out->streams));
    out->stream_symbol = calloc(n, sizeof(*out->stream_symbol));
    if (!out->streams || !out->stream_symbol) {
        plan_deinit(out);
        return AB_ENOMEM;
    }
    out->streams_per_symbol = per_sym;
    for (size_t s = 0; s < symbols->n; s++) {
        char lower[AB_SYMBOL_MAX];
        size_t len = strnlen(symbols->v[s], AB_SYMBOL_MAX - 1);
        for (size_t i = 0; i < len; i++)
            lower[i] = (char)tolower((unsigned char)symbols->v[s][i]);
        lower[len] = '\0';
        for (size_t j = 0; j <= ivs->n; j++) {
            size_t k = s * per_sym + j;
            if (j < ivs->n)
                snprintf(out->streams[k], PLAN_STREAM_NAME_MAX, "%s@kline_%s", lower,
                         ab_interval_name(ivs->v[j]));
            else
                snprintf(out->streams[k], PLAN_STREAM_NAME_MAX, "%s@depth%s", lower,
                         depth_1000ms ? "" : "@100ms");
            out->stream_symbol[k] = s;
        }
    }
    out->n_streams = n;
    for (size_t c = 0; c < n_conns; c++) {
        struct plan_conn *pc = &out->conns[c];
        pc->first_symbol = c * syms_per_conn;
        pc->n_symbols = symbols->n - pc->first_symbol;
        if (pc->n_symbols > syms_per_conn)
            pc->n_symbols = syms_per_conn;
        pc->first_stream = pc->first_symbol * per_sym;
        pc->n_streams = pc->n_symbols * per_sym;
    }
    out->n_conns = n_conns;
    return 0;
}

void plan_deinit(struct plan *p)
{
    free(p->streams);
    free(p->stream_symbol);
    memset(p, 0, sizeof(*p));
}

int plan_url_path(const struct plan *p, size_t conn, const char *prefix, size_t url_max, char *buf,
                  size_t cap, size_t *n_in_url)
{
    if (conn >= p->n_conns || cap == 0)
        return AB_EINVAL;
    const struct plan_conn *pc = &p->conns[conn];
    size_t n = pc->n_streams < url_max ? pc->n_streams : url_max;
    if (n == 0)
        n = 1; /* /stream?streams= needs at least one */
    size_t limit = cap - 1 < PLAN_URL_PATH_MAX ? cap - 1 : PLAN_URL_PATH_MAX;
    int used = snprintf(buf, cap, "%s/stream?streams=", prefix ? prefix : "");
    if (used < 0 || (size_t)used > limit)
        return AB_ERANGE;
    size_t len = (size_t)used;
    size_t i = 0;
    for (; i < n; i++) {
        const char *s = p->streams[pc->first_stream + i];
        size_t slen = strlen(s);
        if (len + (i ? 1 : 0) + slen > limit)
            break; /* the rest goes out as SUBSCRIBE requests */
        if (i)
            buf[len++] = '/';
        memcpy(buf + len, s, slen);
        len += slen;
    }
    buf[len] = '\0';
    if (i == 0)
        return AB_ERANGE;
    *n_in_url = i;
    return 0;
}

int plan_subscribe_msg(const struct plan *p, size_t conn, size_t from, size_t count, int64_t id,
                       char *buf, size_t cap, size_t *taken)
{
    if (conn >= p->n_conns || cap == 0)
        return AB_EINVAL;
    const struct plan_conn *pc = &p->conns[conn];
    if (from >= pc->n_streams)
        return AB_EINVAL;
    if (count > PLAN_SUBSCRIBE_MAX)
        count = PLAN_SUBSCRIBE_MAX;
    if (count > pc->n_streams - from)
        count = pc->n_streams - from;
    int used = snprintf(buf, cap, "{\"method\":\"SUBSCRIBE\",\"params\":[");
    if (used < 0 || (size_t)used >= cap)
        return AB_ERANGE;
    size_t len = (size_t)used;
    for (size_t i = 0; i < count; i++) {
        int k = snprintf(buf + len, cap - len, "%s\"%s\"", i ? "," : "",
                         p->streams[pc->first_stream + from + i]);
        if (k < 0 || (size_t)k >= cap - len)
            return AB_ERANGE;
        len += (size_t)k;
    }
    int k = snprintf(buf + len, cap - len, "],\"id\":%" PRId64 "}", id);
    if (k < 0 || (size_t)k >= cap - len)
        return AB_ERANGE;
    len += (size_t)k;
    *taken = count;
    return (int)len;
}

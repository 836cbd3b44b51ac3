#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"

/* Statuses counted individually; anything else lands in "other". */
static const unsigned statuses[] = {200, 400, 401, 404, 405, 413, 414, 429, 431, 500, 503};
#define N_STATUS (sizeof(statuses) / sizeof(statuses[0]) + 1)

/* Histogram upper bounds in microseconds (rendered in seconds), +Inf implied. */
static const int64_t bounds_us[] = {500,    1000,   2500,   5000,    10000,   25000,  50000,
                                    100000, 250000, 500000, 1000000, 2500000, 5000000};
#define N_BUCKET (sizeof(bounds_us) / sizeof(bounds_us[0]) + 1)

struct route_counters {
    atomic_uint_fast64_t by_status[N_STATUS];
    atomic_uint_fast64_t buckets[N_BUCKET]; /* non-cumulative; summed when rendered */
    atomic_uint_fast64_t sum_us;
};

struct metrics {
    const char *const *labels;
    size_t n_routes;
    struct route_counters r[METRICS_MAX_ROUTES + 1]; /* [n_routes] is "other" */
};

int metrics_new(const char *const *route_labels, size_t n_routes, struct metrics **out)
{
    if (n_routes > METRICS_MAX_ROUTES || (n_routes && !route_labels))
        return AB_EINVAL;
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return AB_ENOMEM;
    m->labels = route_labels;
    m->n_routes = n_routes;
    for (size_t i = 0; i <= METRICS_MAX_ROUTES; i++) {
        for (size_t s = 0; s < N_STATUS; s++)
            atomic_init(&m->r[i].by_status[s], 0);
        for (size_t b = 0; b < N_BUCKET; b++)
            atomic_init(&m->r[i].buckets[b], 0);
        atomic_init(&m->r[i].sum_us, 0);
    }
    *out = m;
    return 0;
}

void metrics_free(struct metrics *m)
{
    free(m);
}

void metrics_observe(struct metrics *m, size_t route, unsigned status, int64_t duration_us)
{
    if (!m)
        return;
    if (route > m->n_routes)
        route = m->n_routes;
    if (duration_us < 0)
        duration_us = 0;
    struct route_counters *rc = &m->r[route];
    size_t s = 0;
    while (s < N_STATUS - 1 && statuses[s] != status)
        s++;
    size_t b = 0;
    while (b < N_BUCKET - 1 && duration_us > bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&rc->by_status[s], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rc->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rc->sum_us, (uint_fast64_t)duration_us, memory_order_relaxed);
}

struct out {
    char *buf;
    size_t cap, len;
    bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    o->len += (size_t)n;
}

static const char *label(const struct metrics *m, size_t i)
{
    return i < m->n_routes ? m->labels[i] : "other";
}

static void render_http(struct metrics *m, struct out *o)
{
    put(o, "# HELP abidance_http_requests_total REST requests by route and status.\n"
           "# TYPE abidance_http_requests_total counter\n");
    for (size_t i = 0; i <= m->n_routes; i++) {
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&m->r[i].by_status[s], memory_order_relaxed);
            if (v == 0)
                continue;
            if (s < N_STATUS - 1)
                put(o, "abidance_http_requests_total{route=\"%s\",status=\"%u\"} %" PRIu64 "\n",
                    label(m, i), statuses[s], v);
            else
                put(o, "abidance_http_requests_total{route=\"%s\",status=\"other\"} %" PRIu64 "\n",
                    label(m, i), v);
        }
    }
    put(o, "# HELP abidance_http_request_duration_seconds REST request latency by route.\n"
           "# TYPE abidance_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->n_routes; i++) {
        uint64_t cum = 0;
        for (size_t b = 0; b < N_BUCKET; b++) {
            cum += atomic_load_explicit(&m->r[i].buckets[b], memory_order_relaxed);
            if (b < N_BUCKET - 1)
                put(o,
                    "abidance_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                    "%" PRIu64 "\n",
                    label(m, i), (double)bounds_us[b] / 1e6, cum);
            else
                put(o,
                    "abidance_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                    "%" PRIu64 "\n",
                    label(m, i), cum);
        }
        uint64_t sum = atomic_load_explicit(&m->r[i].sum_us, memory_order_relaxed);
        put(o, "abidance_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", label(m, i),
            (double)sum / 1e6);
        put(o, "abidance_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
            label(m, i), cum);
    }
}

static void metric(struct out *o, const char *name, const char *type, const char *help,
                   double value)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
}

static void render_store(const struct store_stats *st, struct out *o)
{
    metric(o, "abidance_store_db_up", "gauge",
           "1 while the writer's database connection is healthy.", st->db_up ? 1 : 0);
    metric(o, "abidance_store_last_ok_timestamp_seconds", "gauge",
           "Wall time of the last successful database round trip (0: never).",
           (double)st->last_ok_ms / 1000.0);
    metric(o, "abidance_store_queue_depth", "gauge", "Candle rows waiting for the writer.",
           (double)st->queue_depth);
    metric(o, "abidance_store_queue_capacity", "gauge", "Hard cap of the writer queue.",
           (double)st->queue_cap);
    metric(o, "abidance_store_rows_written_total", "counter", "Candle rows committed.",
           (double)st->rows_written);
    metric(o, "abidance_store_batches_total", "counter", "Write transactions committed.",
           (double)st->batches);
    metric(o, "abidance_store_batch_rows_total", "counter",
           "Rows over all committed batches (divide by batches_total for the mean size).",
           (double)st->batch_size_sum);
    metric(o, "abidance_store_batch_rows_max", "gauge", "Largest committed batch, in rows.",
           (double)st->batch_size_max);
    metric(o, "abidance_store_db_errors_total", "counter", "Database errors seen by the store.",
           (double)st->db_errors);
    metric(o, "abidance_store_rejected_full_total", "counter",
           "Candle puts refused because the writer queue was full.", (double)st->rejected_full);
}

int metrics_render(struct metrics *m, const struct store_stats *st, char *buf, size_t cap)
{
    if (!m || !buf || cap == 0)
        return AB_EINVAL;
    struct out o = {.buf = buf, .cap = cap};
    buf[0] = '\0';
    put(&o,
        "# HELP abidance_build_info Build of this abidance-query.\n"
        "# TYPE abidance_build_info gauge\n"
        "abidance_build_info{version=\"%s\"} 1\n",
        ABIDANCE_VERSION);
    render_http(m, &o);
    if (st)
        render_store(st, &o);
    if (o.full)
        return AB_ERANGE;
    return (int)o.len;
}

/*
 * metrics: REST request counters and latency histograms, and the Prometheus
 * text rendering of /metrics (these plus the storage statistics).
 *
 * Counters are atomics in fixed arrays sized at metrics_new: observing a
 * request never allocates or locks, from any thread. Rendering writes into a
 * caller buffer with a hard cap.
 */
#ifndef ABIDANCE_QUERY_METRICS_H
#define ABIDANCE_QUERY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define METRICS_MAX_ROUTES 32 /* labelled routes, "other" excluded */
#define METRICS_TEXT_MAX   (256 * 1024)

struct metrics;

/*
 * route_labels: n_routes (<= METRICS_MAX_ROUTES) label values ("/v1/candles"),
 * borrowed for the life of the metrics. Requests outside them (unknown paths,
 * errors libmicrohttpd answers itself) are counted under "other".
 * Returns 0, AB_EINVAL or AB_ENOMEM.
 */
int metrics_new(const char *const *route_labels, size_t n_routes, struct metrics **out);
void metrics_free(struct metrics *m); /* accepts NULL */

/* Counts one finished request. route >= n_routes means "other". Any thread. */
void metrics_observe(struct metrics *m, size_t route, unsigned status, int64_t duration_us);

/*
 * Writes the Prometheus text exposition (version 0.0.4) into buf (cap bytes,
 * NUL-terminated): request counts by route and status, latency histograms by
 * route, and, when st is not NULL, the storage gauges and counters. Returns
 * the length, or AB_ERANGE when cap was too small.
 */
int metrics_render(struct metrics *m, const struct store_stats *st, char *buf, size_t cap);

#endif

/*
 * health: the ingest's small HTTP port, an lws server vhost on the same
 * context and loop as the exchange connections (so it reads the metrics
 * without locks).
 *
 *   GET /healthz  200 {"status":"ok",...} while the process serves (liveness);
 *                 the body summarises connections and books
 *   GET /metrics  Prometheus text (metrics.h)
 *   anything else 404; methods other than GET/HEAD 405
 *
 * Threads: the lws service thread only.
 */
#ifndef ABIDANCE_INGEST_HEALTH_H
#define ABIDANCE_INGEST_HEALTH_H

#include <stdint.h>

#include <libwebsockets.h>

#include "common/config.h"
#include "publish.h"

/* Writes a body into out (cleared first); returns 0 or a negative ab_err code. */
typedef int (*health_render_cb)(void *ud, struct pub_buf *out);

struct health; /* opaque */

/*
 * Creates the listening vhost on addr (port 0: any free port). render_health
 * and render_metrics produce the two bodies. Returns 0 (*out), AB_EIO (could
 * not listen) or AB_ENOMEM.
 */
int health_start(struct lws_context *cx, const struct ab_config_addr *addr,
                 health_render_cb render_health, health_render_cb render_metrics, void *ud,
                 struct health **out);

/* The port actually listened on. */
uint16_t health_port(const struct health *h);

/* Frees the object; call after lws_context_destroy (the vhost dies with the
 * context). Accepts NULL. */
void health_free(struct health *h);

#endif

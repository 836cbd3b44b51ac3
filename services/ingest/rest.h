/*
 * rest: the exchange REST client (libwebsockets client HTTP on the same
 * context and loop as the WebSocket connections).
 *
 * rest_get queues a GET of a path+query ("/api/v3/depth?symbol=X&limit=1000")
 * with its request weight; the answer comes back once through the done
 * callback. The client:
 *
 *   - runs at most `parallel` requests at once, in queue order;
 *   - on 429 or 418 reads Retry-After (seconds) and stops ALL REST traffic
 *     until then (the request waits at the head of the queue);
 *   - reads X-MBX-USED-WEIGHT-1M from every answer; at or above
 *     ingest_policy.weight_slow_pct % of the per-minute limit it sends
 *     nothing more until the next minute starts;
 *   - retries connection errors, timeouts and 5xx after the policy's REST
 *     steps, up to rest_max_attempts, then reports failure;
 *   - sends the optional API key as X-MBX-APIKEY (never logged);
 *   - records every answer body (record.h) with its URL and receive time.
 *
 * Other statuses (200, 4xx) are passed to the callback as they are. Every
 * request is called back exactly once, so the callback owns freeing ud.
 *
 * Threads: everything runs on the lws service thread.
 */
#ifndef ABIDANCE_INGEST_REST_H
#define ABIDANCE_INGEST_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "config.h"
#include "metrics.h"
#include "policy.h"
#include "record.h"

#define REST_QUEUE_MAX 4096                /* queued + in-flight requests */
#define REST_BODY_MAX  (16u * 1024 * 1024) /* bytes per answer */
#define REST_PATH_MAX  512

struct rest_result {
    int status;       /* HTTP status; 0 when no answer came */
    int err;          /* 0, AB_EIO (no answer after retries), AB_ERANGE (body too large) or
                         AB_ESTATE (cancelled by rest_stop: only release the context) */
    const char *body; /* borrowed for the callback; "" when none */
    size_t len;
    int64_t recv_ns;      /* wall clock of the answer */
    int64_t sent_mono_ms; /* monotonic time the answered attempt was sent: the answer
                             reflects the exchange's state at or after it */
    const char *path;     /* the request's path+query (borrowed) */
};

/* Called once per request, on the loop thread. */
typedef void (*rest_done_cb)(void *ud, const struct rest_result *r);

struct rest_settings {
    const struct ingest_url *url;       /* borrowed */
    const char *api_key;                /* borrowed, NULL/"" = none */
    int64_t weight_limit;               /* per minute */
    int64_t parallel;                   /* requests in flight */
    const struct ingest_policy *policy; /* borrowed */
};

struct rest; /* opaque */

/* The lws protocol the client vhost must list (name "abidance-ingest-rest"). */
extern const struct lws_protocols rest_protocol;

/* Creates the client; the arguments are borrowed. Returns 0 (*out) or AB_ENOMEM. */
int rest_new(struct lws_context *cx, struct lws_vhost *vh, const struct rest_settings *s,
             struct metrics *m, struct recorder *rec, struct rest **out);

/*
 * Queues GET path (copied; at most REST_PATH_MAX - 1 bytes, starting '/')
 * of the given weight. Returns 0, AB_EINVAL (bad path) or AB_ENOMEM (queue
 * full: nothing queued, cb not called).
 */
int rest_get(struct rest *r, const char *path, int weight, rest_done_cb cb, void *ud);

/* Requests queued or in flight. */
size_t rest_pending(const struct rest *r);

/* Stops sending; every pending request is called back with AB_ESTATE (now
 * for queued ones, during lws_context_destroy for those in flight). Call
 * before lws_context_destroy. */
void rest_stop(struct rest *r);

/* Frees the client; call after lws_context_destroy. Accepts NULL. */
void rest_free(struct rest *r);

#endif

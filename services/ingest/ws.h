/*
 * ws: the exchange WebSocket connections (libwebsockets client).
 *
 * One slot per connection of the plan (plan.h). Each slot keeps one active
 * connection to <ws-url><prefix>/stream?streams=... and, while it is being
 * replaced, a pending one:
 *
 *   - Connect: the streams named in the URL, then SUBSCRIBE requests for the
 *     rest, at most ingest_policy.control_per_s per second (token bucket).
 *   - Frames: text frames are reassembled (cap WS_FRAME_MAX; bigger frames
 *     and binary frames are skipped and counted) and handed to frame_cb with
 *     their receive time. Every frame is also recorded (record.h).
 *   - Pings: libwebsockets answers every PING with a PONG carrying the same
 *     payload by itself; the ingest sends no pings of its own (lws validity
 *     checks are off) and instead runs a watchdog: a connection that
 *     delivered nothing for silence_ms is closed and reconnected.
 *   - Loss: when the active connection fails or closes, event_cb gets
 *     WS_EV_DOWN (continuity is broken: books of the slot must resync) and
 *     the slot reconnects after a backoff step from ingest_policy (with
 *     jitter; the attempt count restarts once a connection lived
 *     stable_after_ms). WS_EV_UP follows when it is back.
 *   - Rollover: max_age_ms after a connection opened (Binance cuts at 24 h),
 *     or at once on ws_rollover_now (serverShutdown), a pending connection
 *     is opened beside the active one. Its frames are held back (cap
 *     WS_HOLD_FRAMES / WS_HOLD_BYTES) until it has delivered for
 *     WS_SETTLE_MS (or switch_timeout_ms passed); then the held frames are
 *     replayed to frame_cb, the pending connection becomes the active one
 *     and the old one is closed (WS_EV_SWITCHED). The consumer sees frames
 *     of the old connection up to the switch, then the new connection's
 *     from its first frame: nothing is lost; repeats are possible and are
 *     the consumer's to drop (book update ids, candle dedup). If the active
 *     connection dies during the overlap, the pending one takes over.
 *
 * Threads: everything runs on the lws service thread.
 */
#ifndef ABIDANCE_INGEST_WS_H
#define ABIDANCE_INGEST_WS_H

#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "config.h"
#include "metrics.h"
#include "plan.h"
#include "policy.h"
#include "record.h"

#define WS_FRAME_MAX   (4u * 1024 * 1024) /* bytes per reassembled frame */
#define WS_HOLD_FRAMES 200000             /* frames held during a rollover */
#define WS_HOLD_BYTES  (64u * 1024 * 1024)
#define WS_SETTLE_MS   1000

enum ws_event {
    WS_EV_CONNECTING, /* the slot started (re)connecting */
    WS_EV_UP,         /* the active connection is open */
    WS_EV_DOWN,       /* the active connection was lost: continuity broken */
    WS_EV_SWITCHED,   /* rollover done: a new active connection, continuity kept */
};

typedef void (*ws_frame_cb)(void *ud, size_t slot, const char *buf, size_t len, int64_t recv_ns);
typedef void (*ws_event_cb)(void *ud, size_t slot, enum ws_event ev);

struct ws_settings {
    const struct ingest_url *url; /* borrowed */
    const struct plan *plan;      /* borrowed */
    size_t url_streams_max;
    int64_t max_age_ms;
    int64_t silence_ms;
    int64_t switch_timeout_ms;
    const struct ingest_policy *policy; /* borrowed */
};

struct ws; /* opaque */

/* The lws protocol the client vhost must list (name "abidance-ingest-ws"). */
extern const struct lws_protocols ws_protocol;

/*
 * Creates the slots (nothing connects yet). Everything passed is borrowed
 * and must outlive the object; rec may be NULL. Returns 0 (*out) or
 * AB_ENOMEM.
 */
int ws_new(struct lws_context *cx, struct lws_vhost *vh, const struct ws_settings *s,
           struct metrics *m, struct recorder *rec, ws_frame_cb frame_cb, ws_event_cb event_cb,
           void *ud, struct ws **out);

/* Starts connecting every slot. */
void ws_start(struct ws *w);

/* Opens a replacement for the slot's connection now (serverShutdown). */
void ws_rollover_now(struct ws *w, size_t slot);

/* Closes everything and stops reconnecting; call before lws_context_destroy. */
void ws_stop(struct ws *w);

/* Frees the object; call after lws_context_destroy. Accepts NULL. */
void ws_free(struct ws *w);

size_t ws_slot_count(const struct ws *w);
enum pub_conn_state ws_slot_state(const struct ws *w, size_t slot);

#endif

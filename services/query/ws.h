/*
 * ws: the fan-out WebSocket server (path /v1/stream, default 127.0.0.1:8081).
 *
 * Clients subscribe to channels ("candles:BTCUSDT:1m", "book:BTCUSDT") and
 * receive a snapshot per channel, then every update; api/websocket.md is the
 * client manual (messages, continuity rule, close codes, limits).
 *
 * Threads. The server runs one thread of its own (ws_server_start) that owns
 * the libwebsockets context: every lws call and every connection lives
 * there. ws_server_new installs a live hook (live.h), so the bus thread's
 * live_apply_* calls serialize each update to JSON ONCE, into a refcounted
 * buffer with LWS_PRE headroom, and hand it to the server thread through a
 * bounded, locked queue plus lws_cancel_service(). The server thread fans a
 * reference out to every subscriber's queue, then writes each of those
 * connections at once (not waiting for a WRITEABLE callback) unless lws
 * still holds unsent bytes for it; queued frames of one connection go out
 * coalesced, up to 16 KiB per send(). A connection whose socket is full
 * waits for WRITEABLE. Snapshots are read from live on the server thread
 * (short copies under live's locks, never across I/O); version numbers
 * (series seq, book generation and update ids) make each subscriber see a
 * snapshot followed by exactly the updates after it.
 *
 * Backpressure. Each connection has a bounded queue (queue_frames frames,
 * queue_bytes bytes; one message is always accepted into an empty queue).
 * On overflow: the connection's queued book messages are dropped and each
 * of its book channels gets a fresh snapshot as soon as its queue has room
 * (the client sees a "snapshot" with a new last_update_id); if the queue is
 * still full (candle or reply messages), the connection is closed with
 * WS_CLOSE_SLOW_CONSUMER (4008). If the hand-off queue itself overflows (the
 * server thread cannot keep up), the lost update is detected per subscriber
 * by its version: book subscribers get a fresh snapshot, candle subscribers
 * are closed with WS_CLOSE_OVERLOADED (4011). All counted in struct ws_stats.
 *
 * Liveness: lws pings a connection idle for ping_secs and drops one that has
 * been silent (no pong, no message) for hangup_secs.
 *
 * Client limits (api/websocket.md, "Limits"). The handshake is refused with
 * HTTP 401 (a JSON error body, WWW-Authenticate: Bearer) when a token is
 * set and neither "Authorization: Bearer <token>" nor "?token=<token>"
 * carries it (compared in constant time, never logged), and with HTTP 429
 * (Retry-After) when the client address already has max_connections_per_ip
 * connections; handshake headers are capped at WS_HANDSHAKE_MAX bytes. An
 * accepted connection beyond max_connections is closed with 1013. Client
 * messages are parsed by ws_request.h (at most max_inbound bytes and
 * max_channels channels) and rate limited per connection by a token bucket
 * (rate per second, bursts of burst): a message over the rate is ignored
 * and answered with a "rate_limited" error; more than `burst` of them in a
 * row close the connection with WS_CLOSE_POLICY (1008). Inbound memory per
 * connection is one max_inbound buffer whatever the client sends.
 *
 * Lifetime: ws_server_new, ws_server_start, ws_server_stop and
 * ws_server_free are called by the owner thread, in that order (stop and
 * free accept a server that never started). ws_server_stats and
 * ws_server_port may be called from any thread.
 */
#ifndef ABIDANCE_QUERY_WS_H
#define ABIDANCE_QUERY_WS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "live.h"

#define WS_PATH "/v1/stream"

/* Close codes the server sends (api/websocket.md). */
#define WS_CLOSE_GOING_AWAY    1001 /* server shutting down */
#define WS_CLOSE_POLICY        1008 /* sustained request flood (rate limit) */
#define WS_CLOSE_TRY_LATER     1013 /* connection limit reached */
#define WS_CLOSE_SLOW_CONSUMER 4008 /* the connection's queue overflowed */
#define WS_CLOSE_OVERLOADED    4011 /* updates were lost before reaching the connection */

/* Defaults (ws_config_defaults) and hard upper bounds (AB_ERANGE above). */
#define WS_MAX_CONNECTIONS_DEFAULT  1000
#define WS_MAX_CONNECTIONS_MAX      100000
#define WS_MAX_CONNS_PER_IP_DEFAULT 32  /* per client address (the service's default) */
#define WS_MAX_CHANNELS_DEFAULT     100 /* per connection */
#define WS_MAX_CHANNELS_MAX         10000
#define WS_MAX_INBOUND_DEFAULT      4096 /* bytes per client message */
#define WS_MAX_INBOUND_MAX          (1024 * 1024)
#define WS_QUEUE_FRAMES_DEFAULT     4096
#define WS_QUEUE_FRAMES_MAX         1000000
#define WS_QUEUE_BYTES_DEFAULT      (8u * 1024 * 1024)
#define WS_QUEUE_BYTES_MAX          (1024u * 1024 * 1024)
#define WS_HANDOFF_FRAMES_DEFAULT   65536
#define WS_HANDOFF_BYTES_DEFAULT    (256u * 1024 * 1024)
#define WS_CANDLE_SNAPSHOT_DEFAULT  10 /* newest candles in a candle snapshot */
#define WS_CANDLE_SNAPSHOT_MAX      1000
#define WS_PING_SECS_DEFAULT        20
#define WS_HANGUP_SECS_DEFAULT      60
#define WS_CLOSE_GRACE_SECS         5 /* a closing connection that cannot be written is cut */
#define WS_MESSAGE_MAX              (64u * 1024 * 1024) /* one serialized message */
#define WS_RATE_DEFAULT             20   /* client requests per second per connection; 0 = off */
#define WS_BURST_DEFAULT            40   /* ... accepted at once */
#define WS_HANDSHAKE_MAX            4096 /* bytes of handshake headers (lws' header buffer) */

struct ws_server; /* opaque */

struct ws_config {
    struct ab_config_addr addr; /* listen address; loopback by default; port 0 = any free */
    size_t max_connections;
    size_t max_connections_per_ip; /* per client address; 0: no limit */
    size_t max_channels;           /* per connection */
    size_t max_inbound;            /* bytes per client message (bigger: error, connection kept) */
    size_t queue_frames;           /* per connection */
    size_t queue_bytes;            /* per connection */
    size_t handoff_frames, handoff_bytes; /* bus thread -> server thread */
    size_t candle_snapshot;               /* candles in a candle channel's snapshot */
    unsigned ping_secs, hangup_secs;      /* hangup_secs > ping_secs */
    /* Tracked symbols and intervals (borrowed; outlive the server): channels
     * outside them are refused with unknown_symbol / unknown_interval. NULL
     * or empty: any well-formed name is accepted. */
    const struct ab_config_symbols *symbols;
    const struct ab_config_intervals *intervals;
    unsigned rate;     /* client requests per second per connection (0: no limit) */
    unsigned burst;    /* requests accepted at once; >= 1 when rate is set */
    const char *token; /* API token (copied by ws_server_new); NULL or "": none */
};

/* Fills *c with the defaults above and 127.0.0.1:8081, except
 * max_connections_per_ip: 0 (no limit) here, so in-process users (tests,
 * benchmarks) opening many loopback connections are not refused; the
 * service sets WS_MAX_CONNS_PER_IP_DEFAULT from --ws-max-connections-per-ip. */
void ws_config_defaults(struct ws_config *c);

struct ws_stats {
    uint64_t connections;          /* open now */
    uint64_t connections_total;    /* accepted since start */
    uint64_t subscriptions;        /* (connection, channel) pairs now */
    uint64_t messages_sent;        /* frames written to clients */
    uint64_t bytes_sent;           /* payload bytes written */
    uint64_t writes;               /* writes (send() calls) carrying them: frames are coalesced */
    uint64_t published;            /* updates handed to the server thread */
    uint64_t handoff_dropped;      /* updates lost because the hand-off queue was full */
    uint64_t book_resnapshots;     /* book channels re-snapshotted after a queue overflow */
    uint64_t book_gap_resnapshots; /* ... after a lost update (hand-off overflow) */
    uint64_t requests;             /* client messages handled */
    uint64_t errors_sent;          /* error replies */
    uint64_t closes_slow;          /* closed with 4008 */
    uint64_t closes_overloaded;    /* closed with 4011 */
    uint64_t closes_limit;         /* closed with 1013 (connection limit) */
    uint64_t closes_client;        /* closed by the client or the network (incl. ping timeout) */
    uint64_t closes_shutdown;      /* closed with 1001 at ws_server_stop */
    uint64_t closes_policy;        /* closed with 1008 (request flood) */
    uint64_t refused_unauthorized; /* handshakes refused with 401 */
    uint64_t refused_per_ip;       /* handshakes refused with 429 (per-address limit) */
    uint64_t rate_limited;         /* client messages refused by the rate limit */
};

/*
 * Creates the server (not yet listening) over lv (borrowed; outlives the
 * server) and installs its hook into lv. cfg is copied (its symbol and
 * interval lists are borrowed, the token is copied). Returns 0, AB_EINVAL
 * (bad address, hangup_secs <= ping_secs, rate without burst, a token that
 * auth_token_check refuses), AB_ERANGE (a limit above its _MAX) or AB_ENOMEM.
 */
int ws_server_new(const struct ws_config *cfg, struct live *lv, struct ws_server **out);

/*
 * Binds the listening socket and starts the server thread. Returns 0,
 * AB_EIO (cannot bind or create the context: logged) or AB_ESTATE (already
 * started).
 */
int ws_server_start(struct ws_server *s);

/* The bound port (after ws_server_start; useful with port 0), else 0. */
uint16_t ws_server_port(struct ws_server *s);

/*
 * Closes every connection with 1001 (going away), stops the thread and
 * destroys the context. Idempotent.
 */
void ws_server_stop(struct ws_server *s);

/*
 * Stops if needed, removes the live hook and frees everything. Accepts NULL.
 * The bus thread must no longer call live_apply_* (it would run the hook).
 */
void ws_server_free(struct ws_server *s);

/* Copies the counters (any thread). */
void ws_server_stats(struct ws_server *s, struct ws_stats *out);

/*
 * Appends the counters in Prometheus text format (abidance_ws_* metrics) to
 * the NUL-terminated text already in buf (cap bytes; start with ""), for
 * /metrics. Returns the new total length, or AB_ERANGE when cap was too
 * small (buf then holds a cut but NUL-terminated text).
 */
int ws_stats_render(const struct ws_stats *st, char *buf, size_t cap);

#endif

/*
 * bus_server: the query's end of the bus (api/bus.md). It listens on a Unix
 * stream socket, takes frames from one ingest at a time, hands each data
 * frame to a callback once, and acknowledges (cumulatively) what the query
 * reports as durably handled.
 *
 * Threads. The server runs one thread of its own (the "bus thread", started
 * by ab_bus_server_start) with a poll() loop on the listening socket, the
 * connections and an eventfd. The message callback and the event callback
 * run on the bus thread, one call at a time, in seq order. They must be
 * fast and must not block (hand candles to the writer's queue, apply books
 * in memory) and must not call ab_bus_server_free. ab_bus_server_done,
 * ab_bus_server_ack, ab_bus_server_request_resync and ab_bus_server_stats
 * may be called from any thread, including from the callbacks.
 *
 * Delivery and acknowledgement. Every delivered data frame gets a token:
 * 1, 2, 3, ... for the lifetime of the server object, across connections
 * and ingest instances. The callback returns AB_BUS_DONE when it handled the
 * frame completely (a book frame applied in memory, a status), or
 * AB_BUS_PENDING when the query will report it later (a candle waiting for
 * its PostgreSQL commit) with ab_bus_server_done(token) — in any order, from
 * any thread. The server acknowledges to the ingest the highest seq below
 * which every frame is done, at most once every ack_interval_ms. Every
 * pending frame MUST eventually be done: at most `window` frames may be
 * delivered and not done; at that point the server stops reading the
 * socket (counted in window_stalls) until done calls catch up, and the
 * ingest's buffer fills behind it. A token of an older connection or
 * ingest instance may still be passed to done; it is ignored when it no
 * longer matters.
 *
 * Duplicates. Within one ingest instance, a frame whose seq was already
 * delivered by this server object is dropped (counted in duplicates): this
 * happens after an ingest reconnect, when it resends frames the server had
 * received but not yet acknowledged. Frames the ingest sent again are
 * flagged (delivery->resent): after a query restart they may repeat what
 * the previous query process saw but did not acknowledge. Candle upserts
 * make that harmless; book consumers may use the resent flag and update ids.
 *
 * Connections. Any number of processes may connect; one that sends a valid
 * ingest hello within hello_timeout_ms becomes THE ingest connection and
 * replaces (closes) the previous one. A hello with the same instance id is
 * a reconnect of the same ingest (duplicate detection continues); a new
 * instance id is a restarted ingest: its seqs start afresh and everything
 * outstanding from the old instance is forgotten (its pending tokens are
 * ignored). Two ingests running at once would keep replacing each other:
 * a misconfiguration, logged at warn on every replacement. A peer that sends
 * a malformed frame is disconnected (logged, counted in protocol_errors).
 *
 * The socket file. ab_bus_server_new removes a stale socket file at path
 * (one nobody listens on), refuses a path that is a live server's socket or
 * not a socket at all (AB_EPERM), creates the socket (mode from the umask;
 * protect it with the directory's permissions) and removes it again in
 * ab_bus_server_free if it is still ours.
 */
#ifndef AB_BUS_SERVER_H
#define AB_BUS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bus_frame.h"

#define AB_BUS_DONE    1 /* callback return: frame fully handled */
#define AB_BUS_PENDING 0 /* callback return: ab_bus_server_done(token) comes later */

#define AB_BUS_SERVER_WINDOW_DEFAULT (1u << 18) /* frames delivered and not done */
#define AB_BUS_SERVER_PENDING_MAX    4          /* connections waiting for their hello */
#define AB_BUS_SERVER_RESYNC_QUEUE   64         /* resync requests not yet sent */

struct ab_bus_server;

struct ab_bus_delivery {
    uint64_t token;       /* pass to ab_bus_server_done */
    uint64_t instance_id; /* the ingest instance that sent it */
    bool resent;          /* the ingest sent it before on an earlier connection */
};

/*
 * Runs on the bus thread for each new data frame, in seq order. m belongs to
 * the server, but the callback may take a snapshot's or delta's level arrays
 * (set the pointers to NULL and the counts to 0); everything else is freed
 * after the call. Returns AB_BUS_DONE or AB_BUS_PENDING (any other value is
 * treated as AB_BUS_PENDING).
 */
typedef int (*ab_bus_server_msg_cb)(void *arg, struct ab_bus_msg *m,
                                    const struct ab_bus_delivery *dv);

enum ab_bus_server_event_type {
    AB_BUS_SERVER_CONNECTED = 1, /* an ingest completed its hello */
    AB_BUS_SERVER_DISCONNECTED,  /* the ingest connection ended */
};

struct ab_bus_server_event {
    enum ab_bus_server_event_type type;
    uint64_t instance_id; /* the ingest instance */
    const char *name;     /* CONNECTED: its hello name (borrowed, for the call) */
    bool new_instance;    /* CONNECTED: not the instance seen last (ingest restarted or first) */
    bool replaced;        /* CONNECTED: it replaced a live connection */
    const char *reason;   /* DISCONNECTED: why (static string) */
};

typedef void (*ab_bus_server_event_cb)(void *arg, const struct ab_bus_server_event *ev);

struct ab_bus_server_config {
    const char *path;            /* socket path (copied; < 108 bytes) */
    const char *name;            /* for the hello and logs (copied; NULL = "abidance-query") */
    uint64_t instance_id;        /* 0 = random */
    size_t window;               /* 0 = AB_BUS_SERVER_WINDOW_DEFAULT; rounded up to a power of 2 */
    int ack_interval_ms;         /* 0 = 5: acks are coalesced to at most one per interval */
    int hello_timeout_ms;        /* 0 = 5000 */
    ab_bus_server_msg_cb on_msg; /* required */
    ab_bus_server_event_cb on_event; /* may be NULL */
    void *arg;                       /* borrowed; passed to both callbacks */
};

struct ab_bus_server_stats {
    bool connected;             /* an ingest connection is live (hello done) */
    uint64_t instance_id;       /* ours */
    uint64_t ingest_instance;   /* the current (or last) ingest instance, 0 before any */
    uint64_t accepted;          /* connections accepted */
    uint64_t handshakes;        /* ingest hellos accepted */
    uint64_t replaced;          /* live connections replaced by a new hello */
    uint64_t disconnects;       /* ingest connections that ended */
    uint64_t protocol_errors;   /* connections dropped for a malformed or unexpected frame */
    uint64_t hello_timeouts;    /* connections dropped for not saying hello */
    uint64_t refused;           /* connections refused: too many waiting for hello */
    uint64_t delivered;         /* data frames given to the callback */
    uint64_t delivered_type[8]; /* by enum ab_bus_type */
    uint64_t resent_delivered;  /* of which flagged resent */
    uint64_t duplicates;        /* frames dropped: seq already delivered */
    uint64_t gaps;              /* seq jumps within an instance (should stay 0) */
    uint64_t last_seq;          /* last delivered seq of the current instance */
    uint64_t last_token;        /* last token handed out */
    uint64_t done_token;        /* every token <= this is done */
    uint64_t outstanding;       /* delivered and not done (current window use) */
    uint64_t window_stalls;     /* times reading paused for a full window */
    uint64_t stale_done;        /* done/ack calls for unknown or forgotten tokens */
    uint64_t acks_sent;
    uint64_t acked_seq; /* last ack sent to the current instance */
    uint64_t resyncs_sent;
};

/*
 * Creates the server and its listening socket (not yet running). Returns 0
 * and *out (free with ab_bus_server_free), AB_EINVAL (missing path or
 * on_msg), AB_ERANGE (path too long), AB_EPERM (path is not a socket, or a
 * live server listens on it), AB_ENOMEM or AB_EIO (socket/bind/listen
 * failed; logged with errno).
 */
int ab_bus_server_new(const struct ab_bus_server_config *cfg, struct ab_bus_server **out);

/* Starts the bus thread. Returns 0, AB_ESTATE (already started) or AB_EIO. */
int ab_bus_server_start(struct ab_bus_server *srv);

/*
 * Stops the thread, closes every connection and removes the socket file if
 * it is still ours. Pending tokens are forgotten (never acknowledged; the
 * ingest resends them to the next server). Accepts NULL. Not from a callback.
 */
void ab_bus_server_free(struct ab_bus_server *srv);

/*
 * Marks the n tokens done (n may be 0; tokens in any order). Unknown or
 * forgotten tokens are ignored and counted (stale_done). Wakes the bus
 * thread when the acknowledgeable seq moved.
 */
void ab_bus_server_done(struct ab_bus_server *srv, const uint64_t *tokens, size_t n);

/*
 * Cumulative form: every token <= token is done (for a consumer that
 * completes frames in delivery order).
 */
void ab_bus_server_ack(struct ab_bus_server *srv, uint64_t token);

/*
 * Asks the ingest for a fresh snapshot of symbol ("" or NULL = every symbol),
 * e.g. after the query's book saw a gap. Queued and sent once an ingest is
 * connected; when more than AB_BUS_SERVER_RESYNC_QUEUE distinct requests are
 * waiting they collapse into one for every symbol. Returns 0 or AB_EINVAL
 * (not a valid symbol).
 */
int ab_bus_server_request_resync(struct ab_bus_server *srv, const char *symbol);

void ab_bus_server_stats(struct ab_bus_server *srv, struct ab_bus_server_stats *out);

#endif

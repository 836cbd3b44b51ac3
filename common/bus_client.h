/*
 * bus_client: the ingest's end of the bus (api/bus.md): it numbers the
 * frames the ingest publishes, keeps every one until the query acknowledges
 * it, and delivers them over a Unix stream socket, reconnecting by itself.
 *
 * Threads. The client runs one thread of its own (the "bus thread", started
 * by ab_bus_client_start) with a poll() loop on the socket and an eventfd.
 * Any thread may call the publish functions, ab_bus_client_stats and
 * ab_bus_client_wait_acked. Publishing takes the client's mutex and queues
 * the frame; then, when the connection is ready, no other thread is
 * writing and no publisher wrote in the last 0.5 ms (the first frame of a
 * burst), the publishing thread writes the queued frames to the socket
 * itself (non-blocking), otherwise it wakes the bus thread, which writes
 * everything queued (one sendmsg() for up to 64 frames). Publishing never blocks on the socket
 * and never waits for a writer. The event callback runs on the bus thread:
 * keep it short; it may call publish and stats, never ab_bus_client_free.
 *
 * Delivery. Each accepted frame gets the next seq (1, 2, 3, ... for this
 * client instance) and stays in the unacknowledged buffer until an ack (or
 * the server's hello) covers it. On every (re)connect the client sends its
 * hello (lowest unacknowledged seq), waits for the server's hello (the
 * highest seq the server has durably handled for this instance, which frees
 * those frames), then sends every remaining frame in seq order, marking the
 * ones that went out before with AB_BUS_F_RESENT, then new ones as they are
 * published. Unsent and unacknowledged frames die with the process: the
 * ingest backfills candles over REST after a restart.
 *
 * The cap and the policy at the cap. The buffer holds at most max_frames
 * frames and max_bytes bytes (set at creation). Book frames (snapshots and
 * deltas) may use at most half of each, so candles always have the other
 * half. Per frame type, when a frame does not fit:
 *   - candle, status: refused with AB_ENOMEM and counted (rejected_full);
 *     nothing was queued and nothing is lost silently: the caller keeps the
 *     candle and retries later, or marks itself behind and backfills.
 *   - book snapshot: refused with AB_ENOMEM (rejected_full); the symbol is
 *     marked "needs snapshot".
 *   - book delta: dropped, counted (dropped_book), the symbol is marked
 *     "needs snapshot", and the call returns AB_EGAP.
 * While a symbol needs a snapshot, every delta for it is dropped with
 * AB_EGAP (counted) until a snapshot of it is accepted. So the ingest's rule
 * is simple: when publish_delta returns AB_EGAP, publish a fresh snapshot of
 * that book (retrying on later deltas while it returns AB_ENOMEM). The query
 * never sees a delta that does not chain onto what it received before
 * except across such a snapshot. The same mark is set when the query asks
 * for a snapshot (a resync frame: one symbol, or all) and for all symbols
 * when the client connects to a different query instance than before (the
 * query restarted and lost its books). The first book frame of a symbol must
 * be a snapshot: a delta for a symbol never seen returns AB_EGAP. At most
 * AB_BUS_CLIENT_SYMBOLS_MAX symbols are tracked (more: AB_ENOMEM).
 * Entering and leaving the full state is logged once each, with counts.
 *
 * Reconnects use exponential backoff with jitter between backoff_min_ms and
 * backoff_max_ms; a server that does not answer the hello within
 * hello_timeout_ms is dropped and retried. A protocol error from the server
 * (bad frame, ack above anything sent) closes the connection, is logged and
 * counted, and the client reconnects.
 */
#ifndef AB_BUS_CLIENT_H
#define AB_BUS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bus_frame.h"
#include "common/model.h"

#define AB_BUS_CLIENT_MAX_FRAMES_DEFAULT 200000
#define AB_BUS_CLIENT_MAX_BYTES_DEFAULT  (256u * 1024 * 1024)
#define AB_BUS_CLIENT_SYMBOLS_MAX        2048 /* symbols tracked (hard cap; a config list's cap) */

struct ab_bus_client;

enum ab_bus_client_event_type {
    AB_BUS_CLIENT_CONNECTED = 1, /* handshake done; frames flow */
    AB_BUS_CLIENT_DISCONNECTED,  /* a handshaken connection ended */
    AB_BUS_CLIENT_RESYNC,        /* the query asked for a fresh snapshot */
};

struct ab_bus_client_event {
    enum ab_bus_client_event_type type;
    uint64_t server_instance; /* CONNECTED */
    bool server_changed;      /* CONNECTED: a different query instance than the last one;
                                 every symbol was marked "needs snapshot" */
    const char *symbol;       /* RESYNC: the symbol, "" = all (borrowed, for the call) */
    const char *reason;       /* DISCONNECTED: why (static string) */
};

/* Runs on the bus thread. ev is borrowed for the call. */
typedef void (*ab_bus_client_event_cb)(void *arg, const struct ab_bus_client_event *ev);

struct ab_bus_client_config {
    const char *path;     /* socket path (copied; < 108 bytes) */
    const char *name;     /* for the hello and logs (copied; NULL = "abidance-ingest") */
    uint64_t instance_id; /* 0 = random (the normal case; tests may fix it) */
    size_t max_frames;    /* 0 = AB_BUS_CLIENT_MAX_FRAMES_DEFAULT; >= 2 */
    size_t max_bytes;     /* 0 = AB_BUS_CLIENT_MAX_BYTES_DEFAULT; a snapshot must fit in half */
    int backoff_min_ms;   /* 0 = 100 */
    int backoff_max_ms;   /* 0 = 5000 */
    int hello_timeout_ms; /* 0 = 5000 */
    ab_bus_client_event_cb on_event; /* may be NULL */
    void *arg;                       /* borrowed; passed to on_event */
};

struct ab_bus_client_stats {
    bool connected;           /* handshake done on the current connection */
    uint64_t instance_id;     /* ours */
    uint64_t server_instance; /* the last query instance seen, 0 before the first */
    uint64_t next_seq;        /* seq the next accepted frame gets */
    uint64_t acked_seq;       /* highest seq acknowledged */
    size_t unacked_frames;    /* frames held (sent or not) */
    size_t unacked_bytes;
    size_t book_frames; /* of which book snapshots and deltas */
    size_t book_bytes;
    uint64_t published;        /* frames accepted */
    uint64_t sent;             /* frame writes completed, resends included */
    uint64_t resent;           /* frames sent again after a reconnect */
    uint64_t rejected_full;    /* candles, statuses, snapshots refused at the cap */
    uint64_t dropped_book;     /* deltas dropped (AB_EGAP) */
    uint64_t resync_requests;  /* resync frames received */
    uint64_t connects;         /* completed handshakes */
    uint64_t reconnects;       /* completed handshakes after the first */
    uint64_t connect_failures; /* attempts that failed before the handshake */
    uint64_t protocol_errors;  /* connections dropped for a bad server frame */
};

/*
 * Creates a client (not yet running). Returns 0 and *out (free with
 * ab_bus_client_free), AB_EINVAL (missing path or callback arguments out of
 * range), AB_ERANGE (path too long), AB_ENOMEM or AB_EIO (eventfd).
 */
int ab_bus_client_new(const struct ab_bus_client_config *cfg, struct ab_bus_client **out);

/*
 * Starts the bus thread, which connects (and reconnects) by itself.
 * Frames may be published before: they wait in the buffer. Returns 0,
 * AB_ESTATE (already started) or AB_EIO.
 */
int ab_bus_client_start(struct ab_bus_client *cl);

/*
 * Stops the bus thread and frees everything; frames not yet acknowledged are
 * dropped (their count is logged). Call ab_bus_client_wait_acked first for a
 * clean shutdown. Accepts NULL. Not from the event callback.
 */
void ab_bus_client_free(struct ab_bus_client *cl);

/*
 * Queues one data frame (candle, book snapshot, book delta or status; m is
 * borrowed and copied; m->seq and m->flags are ignored). On success *seq
 * (may be NULL) gets the frame's seq. Returns 0, AB_EINVAL / AB_ERANGE (the
 * message is malformed: a frame of this content would be rejected by the
 * receiver; not counted against the cap), or the policy codes above:
 * AB_ENOMEM (buffer full, or out of memory) and AB_EGAP (delta dropped:
 * publish a snapshot of that symbol).
 */
int ab_bus_client_publish(struct ab_bus_client *cl, const struct ab_bus_msg *m, uint64_t *seq);

/* Typed shortcuts for ab_bus_client_publish. recv_us: ingest receive time, epoch us. */
int ab_bus_client_publish_candle(struct ab_bus_client *cl, const struct ab_candle *c,
                                 enum ab_bus_origin origin, int64_t recv_us, uint64_t *seq);
/* event_time: exchange time in ms, 0 for a REST snapshot. */
int ab_bus_client_publish_snapshot(struct ab_bus_client *cl, const struct ab_book_snapshot *s,
                                   int64_t event_time, int64_t recv_us, uint64_t *seq);
/* prev_id: the ingest book's id before this delta (0 when unknown). */
int ab_bus_client_publish_delta(struct ab_bus_client *cl, const struct ab_book_delta *d,
                                uint64_t prev_id, int64_t recv_us, uint64_t *seq);
int ab_bus_client_publish_status(struct ab_bus_client *cl, const struct ab_bus_status *st,
                                 uint64_t *seq);

/*
 * Waits up to timeout_ms (< 0: forever) until every accepted frame is
 * acknowledged. Returns 0, or AB_ESTATE when frames are still unacknowledged
 * at the deadline. Not from the event callback.
 */
int ab_bus_client_wait_acked(struct ab_bus_client *cl, int timeout_ms);

/* Copies the counters (consistent snapshot under the lock). */
void ab_bus_client_stats(struct ab_bus_client *cl, struct ab_bus_client_stats *out);

#endif

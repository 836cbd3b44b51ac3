/*
 * bus_sink: the publisher sink (publish.h) that sends every normalized
 * message to abidance-query over the bus (common/bus_client.h, api/bus.md).
 *
 * The bus client numbers each frame, keeps it until the query acknowledges
 * it (candles: committed to PostgreSQL) and resends it after a reconnect;
 * it refuses frames when its buffer is full (see its header). This sink
 * adds the ingest's side of that policy:
 *
 * Candles are never dropped silently.
 *   - A candle the client refuses (AB_ENOMEM: its buffer is full, e.g. the
 *     query is away) goes to the sink's retry list, a FIFO of at most
 *     retry_max candles. While the list is not empty every new candle joins
 *     its tail, so the updates of one candle reach the query in order. The
 *     list is retried, oldest first, on every tick (bus_sink_tick: the
 *     ingest's 100 ms loop timer) until the client refuses again.
 *   - When the list is full: an update of a candle already in the list
 *     replaces that entry (a newer state of the same candle; a closed entry
 *     is never replaced by an open one); otherwise an open update is dropped
 *     (a later update or the close of that candle carries its state); a
 *     closed candle evicts the oldest open entry; and when every entry is a
 *     closed candle, the new closed candle is LOST here: it is counted
 *     (candles_lost), logged at error, the sink reports itself behind
 *     (bus_sink_behind, /healthz) and the candle_lost hook asks the ingest to
 *     fetch it again over REST later (candle_tracker_rewind), which retries
 *     until the bus has room: in effect the ingest slows down to the query.
 *   Entering and leaving the retrying state is logged once each with counts.
 *
 * Books: the query never gets a delta that does not chain on.
 *   - A delta the client drops (AB_EGAP: buffer share full, or the symbol
 *     is marked "needs snapshot" after a resync request or a new query
 *     instance) makes the sink publish a fresh snapshot of that book at
 *     once, exported from the ingest's own book (export_book hook, right
 *     after the delta was applied: the next delta chains on it).
 *   - A snapshot the client refuses (AB_ENOMEM) stays due; it is tried again
 *     on later ticks and deltas, at most every BUS_SINK_SNAPSHOT_RETRY_MS.
 *   - A resync request from the query (bus thread) or a connect to a new
 *     query instance marks the symbol(s); the next tick publishes their
 *     snapshots even when no delta comes (a quiet market). A book that is
 *     not live has a REST snapshot underway anyway (books.h); its snapshot
 *     reaches the query through the normal path when it goes live.
 * Statuses: the sink remembers the last status per symbol; a refused
 * status is sent again (its then-current value) on a later tick, and every
 * status is sent again when the client reaches a new query instance (it
 * knows none).
 *
 * Times: recv_us (epoch us) travels with every frame; the exchange event
 * time with candles and deltas.
 *
 * Threads: every function runs on the ingest loop thread, except
 * bus_sink_on_event, which the bus thread calls (it takes the sink's lock).
 *
 * Ownership: bus_sink_new creates and starts its bus client; the sink is
 * given to the publisher (publisher_add(&p, &bus_sink_ops, sink)), which
 * frees it (waiting up to BUS_SINK_CLOSE_WAIT_MS for the query to
 * acknowledge what was sent).
 */
#ifndef ABIDANCE_INGEST_BUS_SINK_H
#define ABIDANCE_INGEST_BUS_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bus_client.h"
#include "common/model.h"
#include "publish.h"

#define BUS_SINK_RETRY_MAX_DEFAULT   65536 /* candles in the retry list */
#define BUS_SINK_RETRY_MAX_LIMIT     (1u << 22)
#define BUS_SINK_SNAPSHOT_RETRY_MS   250   /* least time between refused snapshot attempts */
#define BUS_SINK_CLOSE_WAIT_MS       1000  /* shutdown: wait this long for the last acks */
#define BUS_SINK_SNAPSHOT_LEVELS_MAX 60000 /* levels per side in one snapshot (4 MiB frame cap) */

struct bus_sink; /* opaque */

struct bus_sink_hooks {
    /*
     * Exports up to depth levels per side of symbol's book into *out (the
     * sink releases it with ab_book_snapshot_deinit). Returns 0, AB_ESTATE
     * (the book is not live), AB_ENOTFOUND or AB_ENOMEM. Required.
     */
    int (*export_book)(void *arg, const char *symbol, size_t depth, struct ab_book_snapshot *out);
    /* A closed candle had to be dropped (see the policy): fetch it again over REST. May be NULL. */
    void (*candle_lost)(void *arg, const struct ab_candle *c);
    void *arg; /* borrowed */
};

/*
 * Where frames go. The real one is the bus client; unit tests plug a fake.
 * publish returns what ab_bus_client_publish returns; stats may be NULL.
 */
struct bus_sink_transport {
    int (*publish)(void *t, const struct ab_bus_msg *m);
    void (*stats)(void *t, struct ab_bus_client_stats *out);
    void *t; /* borrowed */
};

struct bus_sink_config {
    const char *path;  /* socket path (copied); required */
    size_t max_frames; /* client buffer caps: 0 = the client's defaults */
    size_t max_bytes;
    size_t retry_max; /* 0 = BUS_SINK_RETRY_MAX_DEFAULT; <= BUS_SINK_RETRY_MAX_LIMIT */
    struct bus_sink_hooks hooks;
};

/*
 * Creates the sink and its bus client and starts the client's thread (it
 * connects and reconnects by itself). Returns 0 (*out), AB_EINVAL, AB_ERANGE
 * (path too long), AB_ENOMEM or AB_EIO.
 */
int bus_sink_new(const struct bus_sink_config *cfg, struct bus_sink **out);

/* A sink over another transport (tests). tr and hooks are copied. */
int bus_sink_new_transport(const struct bus_sink_transport *tr, size_t retry_max,
                           const struct bus_sink_hooks *hooks, struct bus_sink **out);

/* Closes the client (after waiting up to wait_ms for acks) and frees. Accepts NULL. */
void bus_sink_free(struct bus_sink *s, int wait_ms);

/* The client's event callback (bus thread): resync requests and new query instances. */
void bus_sink_on_event(struct bus_sink *s, const struct ab_bus_client_event *ev);

/* The timer: retries candles, statuses and due snapshots. now_ms: monotonic. */
void bus_sink_tick(struct bus_sink *s, int64_t now_ms);

struct bus_sink_stats {
    struct ab_bus_client_stats client; /* zeroed without a client */
    uint64_t candles_retried;          /* candles that went through the retry list */
    size_t retry_depth;                /* candles in the retry list now */
    uint64_t retry_superseded;   /* list entries replaced by a newer update of the same candle */
    uint64_t retry_dropped_open; /* open updates dropped at the list's cap */
    uint64_t candles_lost;       /* closed candles dropped (asked again over REST) */
    uint64_t deltas_dropped;     /* deltas the client dropped (AB_EGAP) */
    uint64_t snapshots_resent;   /* snapshots published for a gap, resync or new query */
    uint64_t snapshots_refused;  /* snapshot attempts refused (AB_ENOMEM) */
    uint64_t resync_requests;    /* resync events from the query */
    uint64_t statuses_resent;    /* statuses sent again (refused before, or a new query) */
    uint64_t invalid;            /* messages the frame encoder refused (logged) */
};

void bus_sink_get_stats(struct bus_sink *s, struct bus_sink_stats *out);

/* True from a lost closed candle until the retry list drains again (the REST
 * refetch then goes through). */
bool bus_sink_behind(const struct bus_sink *s);

/* Appends the abidance_ingest_bus_* metrics (Prometheus text) to b. Returns 0 or AB_ENOMEM. */
int bus_sink_metrics(struct bus_sink *s, struct pub_buf *b);

/* Appends ,"bus":{...} for /healthz to b (b is NUL-terminated text). Returns 0 or AB_ENOMEM. */
int bus_sink_health(struct bus_sink *s, struct pub_buf *b);

extern const struct pub_sink_ops bus_sink_ops;

#endif

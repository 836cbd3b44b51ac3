/*
 * replay: serves a recording of real Binance traffic instead of the model.
 *
 * Loading turns one or more files into a timeline of records in receive
 * order: WebSocket frames (each with its stream name, its combined-wrapper
 * text and the bare payload inside it) and REST depth snapshots (per
 * symbol). The files' format is detected from their first line through a
 * small table of readers; today there is one, cryptofeed's raw capture
 * (common/capture.h; the newer layout's split files are merged by receive
 * time). The ingest's own --record format will be a second row.
 *
 * Playing: the timeline starts when the server calls replay_start (the first
 * client with a subscription). replay_next hands out due records: with speed
 * 0 as fast as the caller asks (the server adds back-pressure), otherwise at
 * the recorded pace divided by speed. A snapshot record "publishes" the
 * snapshot: /api/v3/depth then serves it. Before the first one of a symbol
 * is reached, the first recorded snapshot of that symbol is served. With
 * hold_ms > 0, the timeline pauses at a published snapshot that no REST
 * request has been served yet (nobody fetched it early), until one is
 * served or hold_ms of real time passed. That reproduces the recorded order:
 * frames recorded before the snapshot reach the client before its REST
 * answer, the frames after it are held back until it was fetched.
 *
 * Frames of streams nobody subscribed to are skipped by the server. When the
 * timeline ends, connections stay open and REST keeps serving the last
 * snapshots. Not thread-safe: one owner.
 */
#ifndef SIM_REPLAY_H
#define SIM_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/sim/market.h"
#include "services/sim/sbuf.h"
#include "services/sim/streams.h"

#define REPLAY_FILES_MAX   16
#define REPLAY_SYMBOLS_MAX 256

enum replay_format {
    REPLAY_FMT_CRYPTOFEED, /* cryptofeed raw capture (shared/data/binance/README.md) */
    REPLAY_FMT_COUNT,
};

enum replay_kind {
    REPLAY_FRAME,    /* a WebSocket text frame of one stream */
    REPLAY_SNAPSHOT, /* a REST depth snapshot of one symbol */
};

struct replay_rec {
    enum replay_kind kind;
    int64_t recv_ms; /* recorder's receive time, ms (not exchange time) */
    /* FRAME */
    uint32_t stream_id;   /* in the registry given to replay_load */
    const char *combined; /* {"stream":..,"data":..}, NUL-terminated, owned by the replay */
    size_t combined_len;
    const char *raw; /* the bare payload, NUL-terminated, owned by the replay */
    size_t raw_len;
    /* SNAPSHOT */
    size_t sym;       /* symbol index */
    const char *body; /* the recorded response, NUL-terminated */
    size_t body_len;
    uint64_t last_update_id;
};

struct replay;

/* Names the format of the file at path. Returns 0, AB_EIO or AB_EINVAL (unknown). */
int replay_detect(const char *path, enum replay_format *out);

/*
 * Loads n files (1..REPLAY_FILES_MAX, all of one format), interning stream
 * names into st (borrowed; an open registry; must outlive the replay).
 * Returns 0 and *out (free with replay_free), or a negative code with a
 * message in err (err_len bytes).
 */
int replay_load(const char *const *paths, size_t n, struct streams *st, struct replay **out,
                char *err, size_t err_len);

void replay_free(struct replay *r);

size_t replay_count(const struct replay *r);
const struct replay_rec *replay_get(const struct replay *r, size_t i);

/* The recorded symbols, as exchangeInfo material (tick and step unknown: 1e-8). */
size_t replay_n_symbols(const struct replay *r);
const struct market_symbol *replay_symbol(const struct replay *r, size_t i);

/* Starts the timeline at real time now_ms with the given pace (0 = as fast as possible). */
void replay_start(struct replay *r, int64_t now_ms, double speed, int64_t hold_ms);
bool replay_started(const struct replay *r);
bool replay_done(const struct replay *r);

/* Tells whether anyone might fetch sym's snapshot (e.g. a depth stream has subscribers). */
typedef bool (*replay_interest_cb)(void *ud, size_t sym);

/*
 * The next due record at real time now_ms, or NULL when none is due yet
 * (pacing or a hold) or the timeline ended. Snapshot records are handled
 * inside (published) and also returned, so the caller can log them. A
 * snapshot holds the timeline only when interest (may be NULL: always) says
 * someone cares about its symbol.
 */
const struct replay_rec *replay_next(struct replay *r, int64_t now_ms, replay_interest_cb interest,
                                     void *ud);

/* Recorded time of the timeline's position, ms: the sim's serverTime in replay. */
int64_t replay_time(const struct replay *r);

/*
 * Appends the snapshot to serve now for sym, cut to limit levels per side,
 * and marks it fetched. Returns 0, AB_ENOTFOUND (no snapshot recorded for
 * the symbol) or AB_ENOMEM.
 */
int replay_depth(struct replay *r, size_t sym, size_t limit, struct sbuf *body);

#endif

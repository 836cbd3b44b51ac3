/*
 * candles: the candle tracker, pure logic that decides which kline updates
 * to publish and which closed candles must still be fetched over REST.
 *
 * One series per (symbol, interval). For each series the tracker keeps:
 *
 *   - closed_through: the open time of the newest candle such that every
 *     closed candle up to it has been published (or REST showed it does not
 *     exist). Set by candle_tracker_start to the candle before
 *     now - lookback, so the first start backfills `lookback` of history.
 *   - the sorted set of open times after closed_through that were published
 *     closed (WebSocket closes that arrived while older candles were still
 *     missing, e.g. during the start-up backfill), at most CANDLE_AHEAD_MAX
 *     (grown on demand; beyond the cap a close is not remembered and
 *     counted in ahead_overflow).
 *   - a ring of (open time, content hash) of the last CANDLE_RING published
 *     updates: the same update arriving twice (two connections overlapping
 *     during a rollover, a REST row equal to a WebSocket close) is a
 *     duplicate. The content is every field except the event time and the
 *     trade ids (REST has no trade ids).
 *
 * Offer every decoded candle (WebSocket updates open and closed, REST rows
 * that are closed) with candle_tracker_offer; publish it when the verdict is
 * CANDLE_PUBLISH. A closed candle is final: anything later for the same open
 * time (or older than closed_through) is CANDLE_FINAL.
 *
 * Missing candles: candle_tracker_due says when a series has a candle whose
 * close time + grace has passed but which was not published closed, and
 * from which open time to ask GET /api/v3/klines (startTime). This covers
 * the start-up backfill, the backfill after a reconnect, and quiet symbols
 * for which Binance never sends x:true. Bracket the request with
 * candle_tracker_fetch_begin / _end; offer its closed rows in between. When
 * the REST answer holds closed rows newer than closed_through, closed_through
 * moves to the newest of them (open times REST skipped do not exist, e.g. a
 * halted symbol); when it brings nothing new, the series waits retry_ms
 * before asking again.
 *
 * Pure: every time is an argument (exchange time, epoch ms); no I/O, no
 * clock. One thread at a time.
 */
#ifndef ABIDANCE_INGEST_CANDLES_H
#define ABIDANCE_INGEST_CANDLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/interval.h"
#include "common/model.h"

#define CANDLE_RING       64    /* remembered (open time, hash) pairs per series */
#define CANDLE_AHEAD_MAX  65536 /* closes remembered beyond closed_through, per series */
#define CANDLE_SERIES_MAX 4096

struct candle_tracker; /* opaque */

enum candle_verdict {
    CANDLE_PUBLISH = 0, /* new information: publish it */
    CANDLE_DUPLICATE,   /* this exact update was published already */
    CANDLE_FINAL,       /* the candle was published closed already (or is older) */
    CANDLE_NOT_FINAL,   /* an open REST row: never published (it may lag the stream) */
    CANDLE_UNTRACKED,   /* symbol/interval not followed */
};

struct candle_tracker_stats {
    uint64_t published;
    uint64_t published_rest; /* of which from REST (backfilled or closed from REST) */
    uint64_t duplicates;
    uint64_t final_ignored;
    uint64_t ahead_overflow; /* closed candles beyond closed_through not remembered */
};

/*
 * Creates a tracker for every (symbol, interval) pair: symbols[i] must be
 * valid symbols, intervals distinct; n_symbols * n_intervals <=
 * CANDLE_SERIES_MAX. Series index = symbol index * n_intervals + interval
 * index. Returns 0 (*out: free with candle_tracker_free), AB_EINVAL,
 * AB_ERANGE or AB_ENOMEM.
 */
int candle_tracker_new(const char (*symbols)[AB_SYMBOL_MAX], size_t n_symbols,
                       const enum ab_interval *intervals, size_t n_intervals,
                       struct candle_tracker **out);

void candle_tracker_free(struct candle_tracker *t);

size_t candle_tracker_count(const struct candle_tracker *t);

/* Series index of (symbol, interval). Returns 0 or AB_ENOTFOUND. */
int candle_tracker_find(const struct candle_tracker *t, const char *symbol, enum ab_interval iv,
                        size_t *series);

/* Symbol (borrowed) and interval of a series. */
const char *candle_tracker_symbol(const struct candle_tracker *t, size_t series);
enum ab_interval candle_tracker_interval(const struct candle_tracker *t, size_t series);

/*
 * Sets closed_through of every series not started yet to the candle before
 * the one containing now_ms - lookback_ms: everything from there on will be
 * backfilled. Idempotent per series.
 */
void candle_tracker_start(struct candle_tracker *t, int64_t now_ms, int64_t lookback_ms);

/* See the header comment. c is borrowed. from_rest: the candle is a REST row. */
enum candle_verdict candle_tracker_offer(struct candle_tracker *t, const struct ab_candle *c,
                                         bool from_rest);

/*
 * True when the series should ask REST now (a candle that closed before
 * now_ms - grace_ms is not published closed, no fetch is in flight and the
 * retry delay has passed); *start_time is then the startTime to ask from.
 */
bool candle_tracker_due(const struct candle_tracker *t, size_t series, int64_t now_ms,
                        int64_t grace_ms, int64_t *start_time);

/* Marks a fetch in flight (due() says false until _end). */
void candle_tracker_fetch_begin(struct candle_tracker *t, size_t series);

/*
 * Ends a fetch. ok: REST answered (its closed rows were offered). Moves
 * closed_through as described above; when nothing moved (or !ok) the series
 * waits until now_ms + retry_ms.
 */
void candle_tracker_fetch_end(struct candle_tracker *t, size_t series, bool ok, int64_t now_ms,
                              int64_t retry_ms);

/*
 * A closed candle that was published (CANDLE_PUBLISH) could not be delivered
 * after all (the bus sink had to drop it): forget it, so the series asks
 * REST for it again. closed_through moves back before open_time (candles
 * after it may be published again: the query's upserts are idempotent) and
 * no fetch moves it past open_time until the candle is offered again.
 */
void candle_tracker_rewind(struct candle_tracker *t, const char *symbol, enum ab_interval iv,
                           int64_t open_time);

/* Drops the retry wait of every series (after a reconnect: check at once). */
void candle_tracker_kick(struct candle_tracker *t);

/* closed_through of a series (INT64_MIN before start). */
int64_t candle_tracker_closed_through(const struct candle_tracker *t, size_t series);

void candle_tracker_stats(const struct candle_tracker *t, struct candle_tracker_stats *out);

/* Content hash used for duplicates (exposed for tests). */
uint64_t candle_content_hash(const struct ab_candle *c);

#endif

/*
 * faults: the simulator's fault injection decisions (pure, no I/O).
 *
 * Every fault is off by default. The server asks this module what to do;
 * nothing here touches the market, so faults never corrupt the sim's truth
 * (REST always serves the true book and candles, apart from the injected
 * 429/418 answers and delays).
 *
 *   close_every_ms      the server closes every WebSocket connection this often (real time)
 *   gap_every N         every N-th event of each depth stream is not sent (clients see a U gap)
 *   malformed_every N   every N-th data message to a client is cut in half (invalid JSON)
 *   out_of_range_every  every N-th event of each kline stream is damaged: alternately
 *                       high < low and a negative volume
 *   no_pong             the server sends no pings and stops reading the connection, so
 *                       client pings go unanswered (libwebsockets answers pings itself
 *                       while it reads)
 *   rest_429_pct/418    that percentage of REST requests gets 429 / 418 + Retry-After
 *   rest_delay_ms       every REST reply is held back this long
 *
 * The percentages draw from a PRNG seeded from --seed, so runs repeat. One
 * owner; no locking.
 */
#ifndef SIM_FAULTS_H
#define SIM_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "services/sim/encode.h"
#include "services/sim/prng.h"
#include "services/sim/streams.h"

struct faults_cfg {
    int64_t close_every_ms;
    uint64_t gap_every;
    uint64_t malformed_every;
    uint64_t out_of_range_every;
    bool no_pong;
    int rest_429_pct; /* 0..100 */
    int rest_418_pct; /* 0..100 */
    int64_t rest_delay_ms;
    int retry_after_s; /* Retry-After for 429/418 */
};

/* What was injected so far (for /sim/stats and logs). */
struct faults_stats {
    uint64_t closes;       /* connections closed by close_every */
    uint64_t gaps;         /* depth events not sent */
    uint64_t malformed;    /* messages cut */
    uint64_t out_of_range; /* kline events damaged */
    uint64_t rest_429, rest_418;
};

struct faults {
    struct faults_cfg cfg;
    struct prng rng;
    uint64_t counts[STREAMS_MAX]; /* events seen per stream id */
    struct faults_stats stats;
};

void faults_init(struct faults *f, const struct faults_cfg *cfg, uint64_t seed);

/* Called once per depth event of stream id: true when it must not be sent. */
bool faults_skip_depth(struct faults *f, uint32_t stream_id);

/* Called once per kline event of stream id: how to damage it (KLINE_OK mostly). */
enum kline_fault faults_kline(struct faults *f, uint32_t stream_id);

/*
 * Called with a client's running data-message number (1, 2, ...): true when
 * that message must go out cut.
 */
bool faults_malformed(struct faults *f, uint64_t msg_no);

/* Called once per REST request: 0 (serve it), 429 or 418. */
int faults_rest_status(struct faults *f);

#endif

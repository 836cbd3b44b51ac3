/*
 * policy: the ingest's one retry/rate policy table and the small pure helpers
 * that apply it (backoff with jitter, a token bucket, a log limiter).
 *
 * All timing constants that are not user settings live in ingest_policy, a
 * single const struct: reconnect backoff steps and jitter, when a connection
 * counts as stable, the control-message rate (Binance drops a connection that
 * sends more than 5 messages per second), REST retry steps, snapshot retry
 * delay, and how often a repeated warning may be logged.
 *
 * Everything here is pure: time and randomness come in as arguments, nothing
 * reads a clock. Objects are plain structs owned by the caller; one thread
 * at a time.
 */
#ifndef ABIDANCE_INGEST_POLICY_H
#define ABIDANCE_INGEST_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ingest_policy {
    const uint32_t *backoff_ms; /* reconnect delays by attempt (last repeats) */
    size_t n_backoff;
    uint32_t jitter_pct;           /* + up to this % of the step, at random */
    uint32_t stable_after_ms;      /* a connection alive this long resets the attempt count */
    uint32_t connect_timeout_ms;   /* a connect (TCP+TLS+upgrade) slower than this fails */
    uint32_t control_per_s;        /* outgoing control messages per second (Binance: < 5) */
    uint32_t control_burst;        /* token bucket depth */
    const uint32_t *rest_retry_ms; /* REST retry delays by attempt (5xx, connection errors) */
    size_t n_rest_retry;
    uint32_t rest_max_attempts; /* give a request up after this many failures */
    uint32_t rest_timeout_ms;   /* one REST request, connect to last byte */
    uint32_t weight_slow_pct;   /* used weight at or above this % of the limit: slow down */
    uint32_t snapshot_retry_ms; /* delay before asking for another snapshot */
    uint32_t candle_retry_ms;   /* REST gave nothing new for a due candle: ask again after */
    uint32_t log_every_ms;      /* a repeated warning is logged at most this often */
};

extern const struct ingest_policy ingest_policy;

/*
 * Delay before reconnect attempt number `attempt` (0 = first retry): the
 * table step for that attempt (the last step repeats) plus jitter of
 * rnd / 2^32 * jitter_pct % of the step. Pure.
 */
uint32_t policy_backoff_ms(const uint32_t *steps, size_t n_steps, uint32_t jitter_pct,
                           unsigned attempt, uint32_t rnd);

/*
 * A token bucket: `rate` tokens per second, at most `burst` stored. Integer
 * arithmetic in thousandths of a token, so it is exact and deterministic.
 */
struct token_bucket {
    int64_t rate_per_s;
    int64_t burst;
    int64_t milli_tokens; /* current level * 1000 */
    int64_t last_ms;      /* time of the last refill */
};

/* Starts full at time now_ms. rate and burst must be >= 1. */
void token_bucket_init(struct token_bucket *tb, int64_t rate_per_s, int64_t burst, int64_t now_ms);

/* Takes one token if available at now_ms (time never runs backwards here). */
bool token_bucket_take(struct token_bucket *tb, int64_t now_ms);

/* Milliseconds until a token is available (0 when one is there now). */
int64_t token_bucket_wait_ms(struct token_bucket *tb, int64_t now_ms);

/* Allows one log line per interval; counts what it suppresses in between. */
struct log_limiter {
    int64_t next_ms;
    uint64_t suppressed;
};

/*
 * True when a line may be logged at now_ms; then *suppressed gets the number
 * of lines swallowed since the last allowed one (and the count restarts).
 */
bool log_limiter_allow(struct log_limiter *l, int64_t now_ms, int64_t every_ms,
                       uint64_t *suppressed);

#endif

#include "policy.h"

/* Doubling steps capped at 30 s: 300 attempts per 5 min per IP is Binance's
 * limit, and even the first step keeps a flapping link far below it. */
static const uint32_t backoff_steps[] = {500, 1000, 2000, 4000, 8000, 16000, 30000};
static const uint32_t rest_retry_steps[] = {250, 500, 1000, 2000, 5000, 10000};

const struct ingest_policy ingest_policy = {
    .backoff_ms = backoff_steps,
    .n_backoff = sizeof(backoff_steps) / sizeof(backoff_steps[0]),
    .jitter_pct = 30,
    .stable_after_ms = 3000, /* at most one reconnect per 3.5 s: far below 300 per 5 min */
    .connect_timeout_ms = 15000,
    .control_per_s = 4,
    .control_burst = 4,
    .rest_retry_ms = rest_retry_steps,
    .n_rest_retry = sizeof(rest_retry_steps) / sizeof(rest_retry_steps[0]),
    .rest_max_attempts = 8,
    .rest_timeout_ms = 20000,
    .weight_slow_pct = 80,
    .snapshot_retry_ms = 250,
    .candle_retry_ms = 5000,
    .log_every_ms = 10000,
};

uint32_t policy_backoff_ms(const uint32_t *steps, size_t n_steps, uint32_t jitter_pct,
                           unsigned attempt, uint32_t rnd)
{
    if (!steps || n_steps == 0)
        return 0;
    uint64_t step = steps[attempt < n_steps ? attempt : n_steps - 1];
    uint64_t jitter = step * jitter_pct / 100u;
    return (uint32_t)(step + ((jitter * (uint64_t)rnd) >> 32));
}

void token_bucket_init(struct token_bucket *tb, int64_t rate_per_s, int64_t burst, int64_t now_ms)
{
    tb->rate_per_s = rate_per_s > 0 ? rate_per_s : 1;
    tb->burst = burst > 0 ? burst : 1;
    tb->milli_tokens = tb->burst * 1000;
    tb->last_ms = now_ms;
}

static void refill(struct token_bucket *tb, int64_t now_ms)
{
    if (now_ms <= tb->last_ms)
        return;
    int64_t dt = now_ms - tb->last_ms;
    int64_t cap = tb->burst * 1000;
    /* Clamp the gap before multiplying so a long idle time cannot overflow. */
    if (dt > cap)
        dt = cap;
    tb->milli_tokens += dt * tb->rate_per_s;
    if (tb->milli_tokens > cap)
        tb->milli_tokens = cap;
    tb->last_ms = now_ms;
}

bool token_bucket_take(struct token_bucket *tb, int64_t now_ms)
{
    refill(tb, now_ms);
    if (tb->milli_tokens < 1000)
        return false;
    tb->milli_tokens -= 1000;
    return true;
}

int64_t token_bucket_wait_ms(struct token_bucket *tb, int64_t now_ms)
{
    refill(tb, now_ms);
    if (tb->milli_tokens >= 1000)
        return 0;
    int64_t missing = 1000 - tb->milli_tokens;
    return (missing + tb->rate_per_s - 1) / tb->rate_per_s;
}

bool log_limiter_allow(struct log_limiter *l, int64_t now_ms, int64_t every_ms,
                       uint64_t *suppressed)
{
    if (now_ms < l->next_ms) {
        l->suppressed++;
        return false;
    }
    if (suppressed)
        *suppressed = l->suppressed;
    l->suppressed = 0;
    l->next_ms = now_ms + every_ms;
    return true;
}

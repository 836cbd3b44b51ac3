/* Unit tests of the policy helpers: backoff with jitter, the token bucket
 * and the log limiter. */
#include <criterion/criterion.h>

#include "policy.h"

Test(policy, table_is_sane)
{
    const struct ingest_policy *p = &ingest_policy;
    cr_assert_gt(p->n_backoff, 2);
    for (size_t i = 1; i < p->n_backoff; i++)
        cr_assert_geq(p->backoff_ms[i], p->backoff_ms[i - 1], "backoff grows");
    /* Binance drops a connection above 5 incoming messages per second. */
    cr_assert_lt(p->control_per_s, 5);
    cr_assert_leq(p->control_burst, 5);
    /* Fastest reconnect loop: one attempt per stable_after + first step, far
     * below 300 attempts per 5 minutes. */
    cr_assert_lt(300000.0 / (p->stable_after_ms + p->backoff_ms[0]), 300.0);
    cr_assert_gt(p->rest_max_attempts, 1);
}

Test(policy, backoff_steps_and_jitter)
{
    static const uint32_t steps[] = {100, 200, 400};
    cr_assert_eq(policy_backoff_ms(steps, 3, 0, 0, 0xffffffffu), 100);
    cr_assert_eq(policy_backoff_ms(steps, 3, 0, 1, 0), 200);
    cr_assert_eq(policy_backoff_ms(steps, 3, 0, 9, 0), 400, "last step repeats");
    /* Jitter: 0 adds nothing, the maximum adds just under jitter_pct %. */
    cr_assert_eq(policy_backoff_ms(steps, 3, 50, 2, 0), 400);
    uint32_t hi = policy_backoff_ms(steps, 3, 50, 2, 0xffffffffu);
    cr_assert(hi >= 599 && hi <= 600, "got %u", hi);
    uint32_t mid = policy_backoff_ms(steps, 3, 50, 2, 0x80000000u);
    cr_assert_eq(mid, 500);
    cr_assert_eq(policy_backoff_ms(NULL, 0, 50, 2, 5), 0);
}

Test(policy, token_bucket_rate)
{
    struct token_bucket tb;
    token_bucket_init(&tb, 4, 4, 1000);
    for (int i = 0; i < 4; i++)
        cr_assert(token_bucket_take(&tb, 1000));
    cr_assert_not(token_bucket_take(&tb, 1000), "burst used up");
    cr_assert_eq(token_bucket_wait_ms(&tb, 1000), 250);
    cr_assert_not(token_bucket_take(&tb, 1249));
    cr_assert(token_bucket_take(&tb, 1250));
    /* Over any second at most burst + rate messages go out. */
    int sent = 0;
    for (int64_t t = 2000; t < 3000; t += 10)
        while (token_bucket_take(&tb, t))
            sent++;
    cr_assert_leq(sent, 8);
    cr_assert_geq(sent, 4);
    /* A long idle time refills to the burst only (and cannot overflow). */
    cr_assert_eq(token_bucket_wait_ms(&tb, INT64_MAX / 2), 0);
    int n = 0;
    while (token_bucket_take(&tb, INT64_MAX / 2))
        n++;
    cr_assert_eq(n, 4);
    /* Time going backwards changes nothing. */
    cr_assert_not(token_bucket_take(&tb, 0));
}

Test(policy, log_limiter)
{
    struct log_limiter l = {0};
    uint64_t sup = 99;
    cr_assert(log_limiter_allow(&l, 0, 1000, &sup));
    cr_assert_eq(sup, 0);
    cr_assert_not(log_limiter_allow(&l, 10, 1000, &sup));
    cr_assert_not(log_limiter_allow(&l, 999, 1000, &sup));
    cr_assert(log_limiter_allow(&l, 1000, 1000, &sup));
    cr_assert_eq(sup, 2);
}

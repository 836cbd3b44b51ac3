/*
 * Fuzz target for common/interval.h: the name parser against the table of
 * names, and (for inputs of 9 bytes or more) the calendar arithmetic on an
 * arbitrary time: no undefined behaviour anywhere in int64, and candles that
 * tile the time line wherever the result is far from the int64 limits.
 */
#include <string.h>

#include "common/err.h"
#include "common/interval.h"
#include "fuzz/targets.h"

/* Times within 2^60 ms (36 million years) of the epoch: no clamping can occur. */
#define IV_SAFE ((int64_t)1 << 60)

static void iv_check_parse(const char *s, size_t n)
{
    int want = -1;
    for (int i = 0; i < AB_I_COUNT; i++) {
        const char *name = ab_interval_name((enum ab_interval)i);
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            want = i;
    }
    enum ab_interval iv = AB_I_COUNT;
    int rc = ab_interval_parse(s, n, &iv);
    AB_FUZZ_CHECK(rc == (want >= 0 ? 0 : AB_EINVAL));
    if (rc == 0)
        AB_FUZZ_CHECK((int)iv == want);
    else
        AB_FUZZ_CHECK(iv == AB_I_COUNT);
}

static void iv_check_time(enum ab_interval iv, int64_t t)
{
    /* Whole range: results exist and no UB (the sanitizers watch). */
    int64_t a = ab_interval_align(iv, t);
    int64_t nx = ab_interval_next(iv, a);
    (void)ab_interval_is_aligned(iv, t);
    if (t > IV_SAFE || t < -IV_SAFE)
        return;

    AB_FUZZ_CHECK(a <= t && t < nx);
    AB_FUZZ_CHECK(ab_interval_is_aligned(iv, a));
    AB_FUZZ_CHECK(ab_interval_is_aligned(iv, nx));
    AB_FUZZ_CHECK(ab_interval_align(iv, a) == a);
    AB_FUZZ_CHECK(ab_interval_align(iv, nx - 1) == a);
    AB_FUZZ_CHECK(ab_interval_is_aligned(iv, t) == (a == t));
    /* The previous candle ends right where this one opens. */
    AB_FUZZ_CHECK(ab_interval_next(iv, ab_interval_align(iv, a - 1)) == a);
    int64_t ms = ab_interval_ms(iv);
    if (iv == AB_I_1MO) {
        AB_FUZZ_CHECK(ms == 0);
        int64_t len = nx - a, day = 86400000;
        AB_FUZZ_CHECK(len % day == 0 && len >= 28 * day && len <= 31 * day);
    } else {
        AB_FUZZ_CHECK(ms > 0 && nx - a == ms);
        if (iv == AB_I_1W) /* Monday 00:00 UTC: 4 days after a Thursday epoch */
            AB_FUZZ_CHECK(((a - 4 * 86400000LL) % ms + ms) % ms == 0);
        else
            AB_FUZZ_CHECK((a % ms + ms) % ms == 0);
    }
}

int ab_fuzz_interval(const uint8_t *data, size_t size)
{
    iv_check_parse((const char *)data, size);
    if (size >= 9) {
        uint64_t u = 0;
        for (int i = 1; i <= 8; i++)
            u = (u << 8) | data[i];
        int64_t t;
        memcpy(&t, &u, sizeof(t));
        /* Small inputs mostly land near the epoch; fold some into real years. */
        if (data[0] & 0x80)
            t %= (int64_t)4102444800000; /* 2100-01-01 */
        iv_check_time((enum ab_interval)(data[0] % AB_I_COUNT), t);
    }
    /* Invalid values are handled too. */
    AB_FUZZ_CHECK(strcmp(ab_interval_name(AB_I_COUNT), "?") == 0);
    AB_FUZZ_CHECK(ab_interval_ms(AB_I_COUNT) == 0);
    return 0;
}

#include "common/interval.h"

#include <string.h>

#include "common/err.h"

#define MS_SEC  1000LL
#define MS_MIN  (60 * MS_SEC)
#define MS_HOUR (60 * MS_MIN)
#define MS_DAY  (24 * MS_HOUR)

/* The epoch (1970-01-01) was a Thursday; Binance weeks open on Monday. */
#define WEEK_OFFSET (4 * MS_DAY)

static const struct {
    const char *name;
    int64_t ms; /* 0 for the calendar month */
} intervals[AB_I_COUNT] = {
    [AB_I_1S] = {"1s", MS_SEC},        [AB_I_1M] = {"1m", MS_MIN},
    [AB_I_3M] = {"3m", 3 * MS_MIN},    [AB_I_5M] = {"5m", 5 * MS_MIN},
    [AB_I_15M] = {"15m", 15 * MS_MIN}, [AB_I_30M] = {"30m", 30 * MS_MIN},
    [AB_I_1H] = {"1h", MS_HOUR},       [AB_I_2H] = {"2h", 2 * MS_HOUR},
    [AB_I_4H] = {"4h", 4 * MS_HOUR},   [AB_I_6H] = {"6h", 6 * MS_HOUR},
    [AB_I_8H] = {"8h", 8 * MS_HOUR},   [AB_I_12H] = {"12h", 12 * MS_HOUR},
    [AB_I_1D] = {"1d", MS_DAY},        [AB_I_3D] = {"3d", 3 * MS_DAY},
    [AB_I_1W] = {"1w", 7 * MS_DAY},    [AB_I_1MO] = {"1M", 0},
};

int ab_interval_parse(const char *s, size_t len, enum ab_interval *out)
{
    if (!s || !out)
        return AB_EINVAL;
    for (int i = 0; i < AB_I_COUNT; i++) {
        const char *name = intervals[i].name;
        if (strlen(name) == len && memcmp(name, s, len) == 0) {
            *out = (enum ab_interval)i;
            return 0;
        }
    }
    return AB_EINVAL;
}

static bool valid(enum ab_interval iv)
{
    return (unsigned)iv < AB_I_COUNT;
}

const char *ab_interval_name(enum ab_interval iv)
{
    return valid(iv) ? intervals[iv].name : "?";
}

int64_t ab_interval_ms(enum ab_interval iv)
{
    return valid(iv) ? intervals[iv].ms : 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t m = a % b;
    if (m < 0)
        m += b;
    return m;
}

/* Results outside int64 (only for times within one interval of the int64
 * limits) saturate instead of overflowing. */
static int64_t clamp_i128(__int128 v)
{
    if (v > INT64_MAX)
        return INT64_MAX;
    if (v < INT64_MIN)
        return INT64_MIN;
    return (int64_t)v;
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
 * Hinnant's algorithms). Done by hand so nothing depends on the C library's
 * time zone handling.
 */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);                       /* [0, 399] */
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);                          /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t month_open(int64_t t)
{
    int64_t y;
    unsigned m;
    civil_from_days(floor_div(t, MS_DAY), &y, &m);
    return clamp_i128((__int128)days_from_civil(y, m, 1) * MS_DAY);
}

int64_t ab_interval_align(enum ab_interval iv, int64_t t)
{
    if (!valid(iv))
        return t;
    if (iv == AB_I_1MO)
        return month_open(t);
    int64_t ms = intervals[iv].ms;
    int64_t off = iv == AB_I_1W ? WEEK_OFFSET : 0;
    /* (t - off) mod ms without computing t - off, which could overflow. */
    int64_t r = floor_mod(t, ms) - off;
    if (r < 0)
        r += ms;
    return clamp_i128((__int128)t - r);
}

bool ab_interval_is_aligned(enum ab_interval iv, int64_t t)
{
    return valid(iv) && ab_interval_align(iv, t) == t;
}

int64_t ab_interval_next(enum ab_interval iv, int64_t open_time)
{
    if (!valid(iv))
        return open_time;
    int64_t open = ab_interval_align(iv, open_time);
    if (iv != AB_I_1MO)
        return clamp_i128((__int128)open + intervals[iv].ms);
    int64_t y;
    unsigned m;
    civil_from_days(floor_div(open, MS_DAY), &y, &m);
    if (m == 12) {
        y++;
        m = 1;
    } else {
        m++;
    }
    return clamp_i128((__int128)days_from_civil(y, m, 1) * MS_DAY);
}

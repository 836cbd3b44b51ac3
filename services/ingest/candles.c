#include "candles.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/symidx.h"

struct ring_entry {
    int64_t open_time;
    uint64_t hash;
};

struct series {
    char symbol[AB_SYMBOL_MAX];
    enum ab_interval iv;
    bool started;
    int64_t closed_through;
    /* Open times > closed_through published closed, ascending: ahead[0..n_ahead). */
    int64_t *ahead;
    size_t n_ahead, cap_ahead;
    struct ring_entry ring[CANDLE_RING];
    size_t ring_next, ring_n;
    bool in_flight;
    int64_t not_before;
    bool rest_got;       /* current fetch saw a closed row */
    int64_t rest_newest; /* newest closed open time in the current fetch */
    int64_t ws_open;     /* open time of the newest WebSocket update published */
    int64_t ws_event;    /* its event time */
    int64_t hold;        /* rewound: no fetch moves closed_through to or past this */
};

struct candle_tracker {
    size_t n_symbols, n_intervals, n_series;
    int iv_slot[AB_I_COUNT]; /* interval -> index, -1 when not followed */
    struct series *s;
    struct ab_symidx idx; /* symbol -> symbol index (a lookup on every kline event) */
    struct candle_tracker_stats st;
};

uint64_t candle_content_hash(const struct ab_candle *c)
{
    uint64_t h = 1469598103934665603ULL;
#define MIX(ptr, n)                                             \
    do {                                                        \
        const unsigned char *b_ = (const unsigned char *)(ptr); \
        for (size_t i_ = 0; i_ < (n); i_++) {                   \
            h ^= b_[i_];                                        \
            h *= 1099511628211ULL;                              \
        }                                                       \
    } while (0)
    int64_t ints[3] = {c->open_time, c->close_time, c->num_trades};
    MIX(ints, sizeof(ints));
    const struct ab_dec *decs[] = {&c->open,
                                   &c->high,
                                   &c->low,
                                   &c->close,
                                   &c->volume,
                                   &c->quote_volume,
                                   &c->taker_buy_volume,
                                   &c->taker_buy_quote_volume};
    for (size_t i = 0; i < sizeof(decs) / sizeof(decs[0]); i++) {
        __int128 v = decs[i]->v;
        MIX(&v, sizeof(v));
    }
    unsigned char closed = c->closed ? 1 : 0;
    MIX(&closed, 1);
#undef MIX
    return h;
}

int candle_tracker_new(const char (*symbols)[AB_SYMBOL_MAX], size_t n_symbols,
                       const enum ab_interval *intervals, size_t n_intervals,
                       struct candle_tracker **out)
{
    *out = NULL;
    if (!symbols || !intervals || n_symbols == 0 || n_intervals == 0 || n_intervals > AB_I_COUNT)
        return AB_EINVAL;
    if (n_symbols > CANDLE_SERIES_MAX / n_intervals)
        return AB_ERANGE;
    struct candle_tracker *t = calloc(1, sizeof(*t));
    if (!t)
        return AB_ENOMEM;
    for (size_t i = 0; i < AB_I_COUNT; i++)
        t->iv_slot[i] = -1;
    for (size_t i = 0; i < n_intervals; i++) {
        if ((int)intervals[i] < 0 || intervals[i] >= AB_I_COUNT || t->iv_slot[intervals[i]] >= 0) {
            free(t);
            return AB_EINVAL;
        }
        t->iv_slot[intervals[i]] = (int)i;
    }
    t->n_symbols = n_symbols;
    t->n_intervals = n_intervals;
    t->n_series = n_symbols * n_intervals;
    t->s = calloc(t->n_series, sizeof(*t->s));
    if (!t->s) {
        free(t);
        return AB_ENOMEM;
    }
    int rc = ab_symidx_init(&t->idx, n_symbols);
    if (rc < 0) {
        candle_tracker_free(t);
        return rc;
    }
    for (size_t i = 0; i < n_symbols; i++) {
        size_t len = strnlen(symbols[i], AB_SYMBOL_MAX);
        if (!ab_symbol_valid(symbols[i], len) || ab_symidx_put(&t->idx, symbols[i], i) < 0) {
            candle_tracker_free(t);
            return AB_EINVAL;
        }
        for (size_t j = 0; j < n_intervals; j++) {
            struct series *s = &t->s[i * n_intervals + j];
            memcpy(s->symbol, symbols[i], len);
            s->iv = intervals[j];
            s->closed_through = INT64_MIN;
            s->ws_open = INT64_MIN;
            s->hold = INT64_MAX;
        }
    }
    *out = t;
    return 0;
}

void candle_tracker_free(struct candle_tracker *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->s && i < t->n_series; i++)
        free(t->s[i].ahead);
    ab_symidx_deinit(&t->idx);
    free(t->s);
    free(t);
}

size_t candle_tracker_count(const struct candle_tracker *t)
{
    return t->n_series;
}

int candle_tracker_find(const struct candle_tracker *t, const char *symbol, enum ab_interval iv,
                        size_t *series)
{
    if ((int)iv < 0 || iv >= AB_I_COUNT || t->iv_slot[iv] < 0)
        return AB_ENOTFOUND;
    size_t i;
    if (ab_symidx_get(&t->idx, symbol, &i) < 0)
        return AB_ENOTFOUND;
    *series = i * t->n_intervals + (size_t)t->iv_slot[iv];
    return 0;
}

const char *candle_tracker_symbol(const struct candle_tracker *t, size_t series)
{
    return series < t->n_series ? t->s[series].symbol : "";
}

enum ab_interval candle_tracker_interval(const struct candle_tracker *t, size_t series)
{
    return series < t->n_series ? t->s[series].iv : AB_I_COUNT;
}

/* Open time of the candle before the one opening at open_time. */
static int64_t prev_open(enum ab_interval iv, int64_t open_time)
{
    return ab_interval_align(iv, open_time - 1);
}

void candle_tracker_start(struct candle_tracker *t, int64_t now_ms, int64_t lookback_ms)
{
    for (size_t i = 0; i < t->n_series; i++) {
        struct series *s = &t->s[i];
        if (s->started)
            continue;
        s->started = true;
        s->closed_through = prev_open(s->iv, ab_interval_align(s->iv, now_ms - lookback_ms));
    }
}

/* Index of the first entry >= open_time. */
static size_t ahead_lower(const struct series *s, int64_t open_time)
{
    size_t lo = 0, hi = s->n_ahead;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ahead[mid] < open_time)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Drops entries <= closed_through and pulls contiguous ones into it. */
static void absorb(struct series *s)
{
    size_t drop = 0;
    while (drop < s->n_ahead) {
        int64_t t = s->ahead[drop];
        if (t <= s->closed_through) {
            drop++;
        } else if (t == ab_interval_next(s->iv, s->closed_through)) {
            s->closed_through = t;
            drop++;
        } else {
            break;
        }
    }
    if (drop) {
        memmove(s->ahead, s->ahead + drop, (s->n_ahead - drop) * sizeof(s->ahead[0]));
        s->n_ahead -= drop;
    }
}

static bool in_ahead(const struct series *s, int64_t open_time)
{
    size_t i = ahead_lower(s, open_time);
    return i < s->n_ahead && s->ahead[i] == open_time;
}

static void add_ahead(struct candle_tracker *t, struct series *s, int64_t open_time)
{
    if (open_time <= s->closed_through)
        return;
    size_t i = ahead_lower(s, open_time);
    if (i < s->n_ahead && s->ahead[i] == open_time)
        return;
    if (s->n_ahead == s->cap_ahead) {
        size_t cap = s->cap_ahead ? s->cap_ahead * 2 : 64;
        if (cap > CANDLE_AHEAD_MAX)
            cap = CANDLE_AHEAD_MAX;
        int64_t *p = cap > s->cap_ahead ? realloc(s->ahead, cap * sizeof(*p)) : NULL;
        if (!p) {
            /* Cap reached (or no memory): not remembered; REST may publish it
             * again, the hash ring still catches an identical copy. */
            t->st.ahead_overflow++;
            return;
        }
        s->ahead = p;
        s->cap_ahead = cap;
    }
    memmove(s->ahead + i + 1, s->ahead + i, (s->n_ahead - i) * sizeof(s->ahead[0]));
    s->ahead[i] = open_time;
    s->n_ahead++;
}

static bool ring_has(const struct series *s, int64_t open_time, uint64_t h)
{
    for (size_t i = 0; i < s->ring_n; i++)
        if (s->ring[i].open_time == open_time && s->ring[i].hash == h)
            return true;
    return false;
}

enum candle_verdict candle_tracker_offer(struct candle_tracker *t, const struct ab_candle *c,
                                         bool from_rest)
{
    size_t idx;
    if (candle_tracker_find(t, c->symbol, c->interval, &idx) < 0)
        return CANDLE_UNTRACKED;
    struct series *s = &t->s[idx];
    if (from_rest && !c->closed)
        return CANDLE_NOT_FINAL;
    if (from_rest && s->in_flight) {
        if (!s->rest_got || c->open_time > s->rest_newest)
            s->rest_newest = c->open_time;
        s->rest_got = true;
    }
    if ((s->started && c->open_time <= s->closed_through) || in_ahead(s, c->open_time)) {
        t->st.final_ignored++;
        return CANDLE_FINAL;
    }
    uint64_t h = candle_content_hash(c);
    if (ring_has(s, c->open_time, h)) {
        t->st.duplicates++;
        return CANDLE_DUPLICATE;
    }
    /* An open update older than one already published (two connections
     * overlapping) would move the candle backwards: drop it. */
    if (!from_rest && !c->closed &&
        (c->open_time < s->ws_open ||
         (c->open_time == s->ws_open && c->event_time > 0 && c->event_time < s->ws_event))) {
        t->st.duplicates++;
        return CANDLE_DUPLICATE;
    }
    if (!from_rest && c->open_time >= s->ws_open) {
        s->ws_open = c->open_time;
        s->ws_event = c->event_time;
    }
    s->ring[s->ring_next] = (struct ring_entry){c->open_time, h};
    s->ring_next = (s->ring_next + 1) % CANDLE_RING;
    if (s->ring_n < CANDLE_RING)
        s->ring_n++;
    if (c->closed) {
        if (s->started) {
            add_ahead(t, s, c->open_time);
            absorb(s);
        }
    }
    t->st.published++;
    if (from_rest)
        t->st.published_rest++;
    return CANDLE_PUBLISH;
}

bool candle_tracker_due(const struct candle_tracker *t, size_t series, int64_t now_ms,
                        int64_t grace_ms, int64_t *start_time)
{
    if (series >= t->n_series)
        return false;
    const struct series *s = &t->s[series];
    if (!s->started || s->in_flight || now_ms < s->not_before)
        return false;
    /* The newest candle whose close time + grace lies before now. */
    int64_t newest_due = prev_open(s->iv, ab_interval_align(s->iv, now_ms - grace_ms));
    if (newest_due <= s->closed_through)
        return false;
    *start_time = ab_interval_next(s->iv, s->closed_through);
    return true;
}

void candle_tracker_fetch_begin(struct candle_tracker *t, size_t series)
{
    if (series >= t->n_series)
        return;
    struct series *s = &t->s[series];
    s->in_flight = true;
    s->rest_got = false;
    s->rest_newest = INT64_MIN;
}

void candle_tracker_fetch_end(struct candle_tracker *t, size_t series, bool ok, int64_t now_ms,
                              int64_t retry_ms)
{
    if (series >= t->n_series)
        return;
    struct series *s = &t->s[series];
    bool moved = false;
    int64_t newest = s->rest_newest;
    if (s->hold != INT64_MAX) {
        /* A candle of this range was rewound: stop before it. */
        if (newest >= s->hold)
            newest = prev_open(s->iv, s->hold);
        s->hold = INT64_MAX;
    }
    if (ok && s->rest_got && newest > s->closed_through) {
        s->closed_through = newest;
        absorb(s);
        moved = true;
    }
    s->in_flight = false;
    s->rest_got = false;
    if (!moved)
        s->not_before = now_ms + retry_ms;
}

void candle_tracker_rewind(struct candle_tracker *t, const char *symbol, enum ab_interval iv,
                           int64_t open_time)
{
    size_t idx;
    if (candle_tracker_find(t, symbol, iv, &idx) < 0)
        return;
    struct series *s = &t->s[idx];
    if (!s->started)
        return;
    int64_t before = prev_open(s->iv, open_time);
    if (before < s->closed_through)
        s->closed_through = before;
    size_t i = ahead_lower(s, open_time);
    if (i < s->n_ahead && s->ahead[i] == open_time) {
        memmove(s->ahead + i, s->ahead + i + 1, (s->n_ahead - i - 1) * sizeof(s->ahead[0]));
        s->n_ahead--;
    }
    for (size_t k = 0; k < s->ring_n; k++)
        if (s->ring[k].open_time == open_time)
            s->ring[k].open_time = INT64_MIN;
    if (s->in_flight && open_time < s->hold)
        s->hold = open_time;
    s->not_before = 0;
}

void candle_tracker_kick(struct candle_tracker *t)
{
    for (size_t i = 0; i < t->n_series; i++)
        t->s[i].not_before = 0;
}

int64_t candle_tracker_closed_through(const struct candle_tracker *t, size_t series)
{
    return series < t->n_series ? t->s[series].closed_through : INT64_MIN;
}

void candle_tracker_stats(const struct candle_tracker *t, struct candle_tracker_stats *out)
{
    *out = t->st;
}

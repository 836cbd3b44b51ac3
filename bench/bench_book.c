/*
 * bench_book: order-book updates applied per second on a 5000-level book.
 *
 *   bench_book UPDATES_FILE [EVENTS [SECONDS]]
 *
 * Generates a deterministic workload (splitmix64, fixed seed), writes it to
 * UPDATES_FILE for the Python baseline (bench/seed_orderbook.py, the seed's
 * OrderBook.update), and applies the same events to a struct ab_book.
 *
 * Workload. Tick 0.01, mid price 30000.00. The initial book holds 5000 bids
 * and 5000 asks spread over the ticks below and above the mid with random
 * gaps (about 1 tick in 8 empty). Then EVENTS (default 100000) diff events
 * of 1..20 levels each (mean 10.5), every level on a random side:
 *   60%  quantity change of an existing level
 *   15%  new level inserted into a gap (or past the best price, staying
 *        uncrossed)
 *   15%  existing level removed (quantity 0)
 *   10%  removal of a price that is not in the book
 * The depth of the level a change, insert or removal touches is drawn from
 * an exponential distribution with mean 30 levels (9 in 10) or uniformly
 * over the whole side (1 in 10): most activity is near the top, as on an
 * exchange. Inserts and removals balance, so the book stays near 5000
 * levels a side. Quantities have 1..8 decimals.
 *
 * File format (JSON lines): the first line {"bids":[[p,q],...],"asks":[...]}
 * (best first), then one {"U":..,"u":..,"b":[[p,q],...],"a":[...]} per event.
 *
 * Timing: the book is loaded from the snapshot (ab_book_load), then the
 * events are applied in order with ab_book_on_delta (continuity checks and
 * all); decimals are parsed before timing (the Python side also parses its
 * JSON before timing). Repeated for at least SECONDS (default 3); the figure
 * is level updates per second. The baseline figure comes from the Python run;
 * bench/report.py forms the ratio.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "common/book.h"
#include "common/decimal.h"
#include "common/err.h"

#define LEVELS   5000
#define MID      3000000LL /* ticks of 0.01 */
#define MAX_SIDE 20000

/* One side as sorted ticks: index 0 is the best. */
struct side {
    int64_t t[MAX_SIDE];
    size_t n;
    int dir; /* +1 asks (ascending), -1 bids (descending) */
};

static struct side sides[2]; /* 0 bids, 1 asks */
static uint64_t rng = 0x5eed0b00cULL;

/* Position where tick t belongs (first index whose tick is worse or equal). */
static size_t find(const struct side *s, int64_t t)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if ((s->t[mid] - t) * s->dir < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void side_insert(struct side *s, size_t at, int64_t t)
{
    memmove(&s->t[at + 1], &s->t[at], (s->n - at) * sizeof s->t[0]);
    s->t[at] = t;
    s->n++;
}

static void side_remove(struct side *s, size_t at)
{
    memmove(&s->t[at], &s->t[at + 1], (s->n - at - 1) * sizeof s->t[0]);
    s->n--;
}

static size_t pick_rank(size_t n)
{
    size_t r;

    if (bench_rand(&rng) % 10 == 0) {
        return (size_t)(bench_rand(&rng) % n);
    }
    r = (size_t)(-log(1.0 - bench_rand01(&rng)) * 30.0);
    return r < n ? r : n - 1;
}

/* A quantity with 1..8 decimals, as text. */
static void make_qty(char *buf, size_t cap)
{
    unsigned dec = 1 + (unsigned)(bench_rand(&rng) % 8);
    uint64_t units = 1 + bench_rand(&rng) % 5000000;
    uint64_t p10 = 1;

    for (unsigned i = 0; i < dec; i++) {
        p10 *= 10;
    }
    snprintf(buf, cap, "%" PRIu64 ".%0*" PRIu64, units / p10, (int)dec, units % p10);
}

static void tick_str(int64_t t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%" PRId64 ".%02" PRId64, t / 100, t % 100);
}

struct ev {
    struct ab_book_delta d;
};

static struct ev *evs;
static size_t n_ev;
static struct ab_book_snapshot snap;
static uint64_t n_level_updates;
static uint64_t mix[4];

static void parse_level(const char *p, const char *q, struct ab_level *l)
{
    if (ab_dec_parse_cstr(p, &l->price) != 0 || ab_dec_parse_cstr(q, &l->qty) != 0) {
        bench_die("bench_book: bad decimal %s %s", p, q);
    }
}

/* Writes [p,q] to f and appends it to the event's side. */
static void emit(FILE *f, struct ab_level *arr, size_t *n, bool *first, const char *p,
                 const char *q)
{
    fprintf(f, "%s[\"%s\",\"%s\"]", *first ? "" : ",", p, q);
    *first = false;
    parse_level(p, q, &arr[(*n)++]);
}

static void generate(const char *path, size_t events)
{
    FILE *f = fopen(path, "w");
    char p[32], q[32];

    if (f == NULL) {
        bench_die("bench_book: cannot write %s", path);
    }
    sides[0].dir = -1;
    sides[1].dir = 1;
    for (int s = 0; s < 2; s++) {
        int64_t t = MID + sides[s].dir;

        while (sides[s].n < LEVELS) {
            if (bench_rand(&rng) % 8 != 0) {
                sides[s].t[sides[s].n++] = t;
            }
            t += sides[s].dir;
        }
    }
    snap.bids = calloc(LEVELS, sizeof *snap.bids);
    snap.asks = calloc(LEVELS, sizeof *snap.asks);
    evs = calloc(events, sizeof *evs);
    if (snap.bids == NULL || snap.asks == NULL || evs == NULL) {
        bench_die("bench_book: out of memory");
    }
    snprintf(snap.symbol, sizeof snap.symbol, "BTCUSDT");
    snap.last_update_id = 1000;
    for (int s = 0; s < 2; s++) {
        bool first = true;

        fputs(s == 0 ? "{\"bids\":[" : "],\"asks\":[", f);
        for (size_t i = 0; i < LEVELS; i++) {
            tick_str(sides[s].t[i], p, sizeof p);
            make_qty(q, sizeof q);
            emit(f, s == 0 ? snap.bids : snap.asks, s == 0 ? &snap.n_bids : &snap.n_asks, &first, p,
                 q);
        }
    }
    fputs("]}\n", f);

    for (size_t e = 0; e < events; e++) {
        struct ab_book_delta *d = &evs[e].d;
        size_t k = 1 + (size_t)(bench_rand(&rng) % 20);
        struct ab_level *lv[2];
        bool first[2] = {true, true};
        char *txt[2];
        size_t txt_len[2];
        FILE *side_f[2];

        snprintf(d->symbol, sizeof d->symbol, "BTCUSDT");
        d->first_id = 1001 + e;
        d->last_id = 1001 + e;
        d->bids = lv[0] = calloc(k, sizeof(struct ab_level));
        d->asks = lv[1] = calloc(k, sizeof(struct ab_level));
        side_f[0] = open_memstream(&txt[0], &txt_len[0]);
        side_f[1] = open_memstream(&txt[1], &txt_len[1]);
        if (lv[0] == NULL || lv[1] == NULL || side_f[0] == NULL || side_f[1] == NULL) {
            bench_die("bench_book: out of memory");
        }
        for (size_t j = 0; j < k; j++) {
            int s = (int)(bench_rand(&rng) % 2);
            struct side *sd = &sides[s];
            struct side *other = &sides[1 - s];
            size_t *cnt = s == 0 ? &d->n_bids : &d->n_asks;
            unsigned u = (unsigned)(bench_rand(&rng) % 100);
            size_t r = pick_rank(sd->n);
            int64_t t;

            if (u < 60) { /* quantity change */
                mix[0]++;
                tick_str(sd->t[r], p, sizeof p);
                make_qty(q, sizeof q);
            } else if (u < 75) { /* insert */
                mix[1]++;
                if (r == 0) {
                    /* one tick better than the best, if that stays uncrossed */
                    t = sd->t[0] - sd->dir;
                    if (t == other->t[0]) {
                        t = sd->t[sd->n - 1] + sd->dir; /* no room: past the worst */
                    }
                } else {
                    /* into the first gap at or below level r (within 64 levels) */
                    size_t g = r;

                    while (g < sd->n && g < r + 64 && sd->t[g] - sd->t[g - 1] == sd->dir) {
                        g++;
                    }
                    if (g < sd->n && g < r + 64) {
                        t = sd->t[g - 1] + sd->dir;
                    } else {
                        t = sd->t[sd->n - 1] + sd->dir; /* no gap: past the worst */
                    }
                }
                side_insert(sd, find(sd, t), t);
                tick_str(t, p, sizeof p);
                make_qty(q, sizeof q);
            } else if (u < 90) { /* remove an existing level */
                mix[2]++;
                tick_str(sd->t[r], p, sizeof p);
                side_remove(sd, r);
                snprintf(q, sizeof q, "0.00000000");
            } else { /* remove an absent price */
                mix[3]++;
                t = sd->t[r] + sd->dir; /* just worse than a level: absent if a gap */
                size_t at = find(sd, t);
                if (at < sd->n && sd->t[at] == t) {
                    t = sd->t[sd->n - 1] + 7 * sd->dir; /* past the worst: surely absent */
                }
                tick_str(t, p, sizeof p);
                snprintf(q, sizeof q, "0.00000000");
            }
            emit(side_f[s], lv[s], cnt, &first[s], p, q);
            n_level_updates++;
        }
        fclose(side_f[0]);
        fclose(side_f[1]);
        fprintf(f, "{\"U\":%" PRIu64 ",\"u\":%" PRIu64 ",\"b\":[%s],\"a\":[%s]}\n", d->first_id,
                d->last_id, txt[0], txt[1]);
        free(txt[0]);
        free(txt[1]);
    }
    if (fclose(f) != 0) {
        bench_die("bench_book: cannot write %s", path);
    }
    n_ev = events;
}

int main(int argc, char **argv)
{
    struct ab_book *b = NULL;
    struct ab_book_limits lim = {.max_levels = MAX_SIDE};
    double secs, t0, t;
    size_t passes = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_book UPDATES_FILE [EVENTS [SECONDS]]\n");
        return 2;
    }
    generate(argv[1], argc > 2 ? (size_t)bench_arg_long(argv[2], 1, 10000000, "events") : 100000);
    secs = argc > 3 ? (double)bench_arg_long(argv[3], 1, 3600, "seconds") : 3.0;
    printf("workload: book of %d bids + %d asks (tick 0.01), %zu events, %" PRIu64
           " level updates: %" PRIu64 " qty changes, %" PRIu64 " inserts, %" PRIu64
           " removals, %" PRIu64 " removals of absent prices; final sides %zu/%zu levels\n",
           LEVELS, LEVELS, n_ev, n_level_updates, mix[0], mix[1], mix[2], mix[3], sides[0].n,
           sides[1].n);
    if (ab_book_new("BTCUSDT", &lim, &b) != 0) {
        bench_die("bench_book: ab_book_new");
    }
    t0 = bench_now();
    do {
        if (ab_book_load(b, &snap) != 0) {
            bench_die("bench_book: load");
        }
        for (size_t e = 0; e < n_ev; e++) {
            struct ab_book_result res;

            if (ab_book_on_delta(b, &evs[e].d, &res) != 0 || res.action != AB_BOOK_APPLIED) {
                bench_die("bench_book: event %zu not applied", e);
            }
        }
        passes++;
        t = bench_now();
    } while (t - t0 < secs);
    if (ab_book_count(b, AB_BOOK_BID) != sides[0].n ||
        ab_book_count(b, AB_BOOK_ASK) != sides[1].n || ab_book_is_crossed(b)) {
        bench_die("bench_book: final book %zu/%zu levels, expected %zu/%zu",
                  ab_book_count(b, AB_BOOK_BID), ab_book_count(b, AB_BOOK_ASK), sides[0].n,
                  sides[1].n);
    }
    printf("ab_book_on_delta: %zu passes in %.2f s (incl. %zu snapshot loads)\n", passes, t - t0,
           passes);
    bench_result("id=book value=%.0f unit=updates/s",
                 (double)(passes * n_level_updates) / (t - t0));
    ab_book_free(b);
    return 0;
}

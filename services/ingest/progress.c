#include "progress.h"

#include <stdlib.h>

#include "common/err.h"

#define DAY_MS 86400000LL

struct run {
    bool active, started;
    enum ab_interval iv;
    int64_t from, to;
    uint64_t todo, done;
    int64_t start_ms, end_ms;
    uint64_t round; /* the round it belongs to */
};

struct progress {
    size_t n;
    struct run *runs;
    uint64_t round; /* current or last round (0 = none yet) */
    bool round_active;
    int64_t round_start_ms, round_end_ms, last_log_ms;
};

/* Months since 0000-03 style index of the month containing t (Hinnant's
 * civil_from_days). */
static int64_t month_index(int64_t t)
{
    int64_t z = t / DAY_MS - (t % DAY_MS < 0 ? 1 : 0);
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    return y * 12 + (m - 1);
}

int progress_count(enum ab_interval iv, int64_t from, int64_t to, uint64_t *out)
{
    if ((int)iv < 0 || iv >= AB_I_COUNT || !out)
        return AB_EINVAL;
    if (!ab_interval_is_aligned(iv, from) || !ab_interval_is_aligned(iv, to))
        return AB_EINVAL;
    *out = 0;
    if (to < from)
        return 0;
    if (iv == AB_I_1MO) {
        *out = (uint64_t)(month_index(to) - month_index(from)) + 1;
        return 0;
    }
    /* Unsigned difference: no overflow for any pair of int64 times. */
    *out = ((uint64_t)to - (uint64_t)from) / (uint64_t)ab_interval_ms(iv) + 1;
    return 0;
}

int progress_new(size_t n_series, struct progress **out)
{
    if (!out || n_series == 0 || n_series > PROGRESS_SERIES_MAX)
        return AB_EINVAL;
    struct progress *p = calloc(1, sizeof(*p));
    if (!p)
        return AB_ENOMEM;
    p->runs = calloc(n_series, sizeof(*p->runs));
    if (!p->runs) {
        free(p);
        return AB_ENOMEM;
    }
    p->n = n_series;
    *out = p;
    return 0;
}

void progress_free(struct progress *p)
{
    if (!p)
        return;
    free(p->runs);
    free(p);
}

int progress_begin(struct progress *p, size_t series, enum ab_interval iv, int64_t from, int64_t to,
                   int64_t now_ms)
{
    if (!p || series >= p->n || (int)iv < 0 || iv >= AB_I_COUNT)
        return AB_EINVAL;
    if (!ab_interval_is_aligned(iv, from) || !ab_interval_is_aligned(iv, to))
        return AB_EINVAL;
    if (to < from)
        to = from;
    struct run *r = &p->runs[series];
    if (r->active) {
        if (r->iv != iv)
            return AB_ESTATE;
        if (to > r->to) {
            uint64_t todo;
            int rc = progress_count(iv, r->from, to, &todo);
            if (rc < 0)
                return rc;
            r->to = to;
            r->todo = todo;
        }
        return 0;
    }
    uint64_t todo;
    int rc = progress_count(iv, from, to, &todo);
    if (rc < 0)
        return rc;
    if (!p->round_active) {
        p->round++;
        p->round_active = true;
        p->round_start_ms = now_ms;
        p->round_end_ms = now_ms;
        p->last_log_ms = now_ms;
    }
    *r = (struct run){.active = true,
                      .started = true,
                      .iv = iv,
                      .from = from,
                      .to = to,
                      .todo = todo,
                      .done = 0,
                      .start_ms = now_ms,
                      .end_ms = now_ms,
                      .round = p->round};
    return 1;
}

int progress_update(struct progress *p, size_t series, int64_t closed_through, int64_t now_ms)
{
    if (!p || series >= p->n || !p->runs[series].active)
        return 0;
    struct run *r = &p->runs[series];
    if (closed_through >= r->from) {
        int64_t upto = closed_through < r->to ? closed_through : r->to;
        uint64_t done = 0;
        /* closed_through is aligned (an open time); align defensively. */
        if (progress_count(r->iv, r->from, ab_interval_align(r->iv, upto), &done) == 0 &&
            done > r->done)
            r->done = done;
    }
    if (closed_through < r->to)
        return 0;
    r->done = r->todo;
    r->active = false;
    r->end_ms = now_ms;
    int ev = PROGRESS_RUN_FINISHED;
    for (size_t i = 0; i < p->n; i++)
        if (p->runs[i].active)
            return ev;
    p->round_active = false;
    p->round_end_ms = now_ms;
    return ev | PROGRESS_ROUND_FINISHED;
}

static void fill(struct progress_view *v, bool active, uint64_t todo, uint64_t done,
                 int64_t start_ms, int64_t end_ms, int64_t now_ms)
{
    v->active = active;
    v->started = true;
    v->todo = todo;
    v->done = done;
    v->pct = todo ? 100.0 * (double)done / (double)todo : 100.0;
    int64_t until = active ? now_ms : end_ms;
    v->elapsed_ms = until > start_ms ? until - start_ms : 0;
    v->rate = v->elapsed_ms > 0 ? (double)done * 1000.0 / (double)v->elapsed_ms : 0.0;
    if (!active || done >= todo)
        v->eta_s = 0;
    else if (v->rate > 0)
        v->eta_s = (int64_t)((double)(todo - done) / v->rate + 0.5);
    else
        v->eta_s = -1;
}

void progress_run(const struct progress *p, size_t series, int64_t now_ms,
                  struct progress_view *out)
{
    *out = (struct progress_view){0};
    if (!p || series >= p->n || !p->runs[series].started)
        return;
    const struct run *r = &p->runs[series];
    fill(out, r->active, r->todo, r->done, r->start_ms, r->end_ms, now_ms);
    out->from = r->from;
    out->to = r->to;
    out->runs = 1;
    out->runs_active = r->active ? 1 : 0;
}

void progress_total(const struct progress *p, int64_t now_ms, struct progress_view *out)
{
    *out = (struct progress_view){0};
    if (!p || p->round == 0)
        return;
    uint64_t todo = 0, done = 0;
    size_t runs = 0, active = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct run *r = &p->runs[i];
        if (!r->started || r->round != p->round)
            continue;
        todo += r->todo;
        done += r->done;
        runs++;
        if (r->active)
            active++;
    }
    fill(out, p->round_active, todo, done, p->round_start_ms, p->round_end_ms, now_ms);
    out->runs = runs;
    out->runs_active = active;
}

bool progress_log_due(struct progress *p, int64_t now_ms, int64_t every_ms)
{
    if (!p || !p->round_active || now_ms - p->last_log_ms < every_ms)
        return false;
    p->last_log_ms = now_ms;
    return true;
}

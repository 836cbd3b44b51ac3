/*
 * progress: how far the candle backfills are, pure bookkeeping for the log
 * and /metrics.
 *
 * A run is one backfill of one series (symbol, interval): the closed candles
 * from open time `from` through open time `to` (both aligned to the
 * interval, inclusive). Its size (todo) is counted from the time range: a
 * fixed interval divides, 1M counts calendar months (common/interval.h).
 * Its progress (done) is how many of those candles lie at or before the
 * series' closed_through (see candles.h): a candle counts as done once it
 * was published closed, or once REST showed it does not exist (an open time
 * REST skipped). A run finishes when closed_through reaches `to`.
 *
 * Asking REST again for a series whose run is still going extends that run
 * (`to` moves forward, todo grows) instead of starting a new one.
 *
 * The total: all runs that overlap in time form one round. A round starts
 * with the first run while no run is going and finishes when the last of its
 * runs finishes; its todo and done are the sums over its runs. After a round
 * finished, the total view keeps showing it until the next round starts.
 *
 * Rate = candles done / seconds since the run (round) started; ETA = the
 * candles left / rate (-1 while the rate is 0). Pure: every time is an
 * argument (any monotonic ms clock); no I/O. One thread at a time.
 */
#ifndef ABIDANCE_INGEST_PROGRESS_H
#define ABIDANCE_INGEST_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/interval.h"

#define PROGRESS_SERIES_MAX 4096 /* same cap as CANDLE_SERIES_MAX */

struct progress; /* opaque */

/* A snapshot of one run or of the round. */
struct progress_view {
    bool active;        /* still going */
    bool started;       /* a run (round) ever started */
    int64_t from, to;   /* open times (runs only; 0 for the round) */
    uint64_t todo;      /* candles in the run(s) */
    uint64_t done;      /* of which done (<= todo) */
    size_t runs;        /* round only: runs in the round */
    size_t runs_active; /* round only: of which still going */
    double pct;         /* 100 * done / todo (100 when todo = 0) */
    double rate;        /* candles done per second since the start */
    int64_t elapsed_ms; /* since the start (until the finish once finished) */
    int64_t eta_s;      /* seconds left at the current rate; 0 when finished, -1 unknown */
};

/* Events of progress_update, or-ed. */
#define PROGRESS_RUN_FINISHED   1 /* this series' run finished */
#define PROGRESS_ROUND_FINISHED 2 /* and it was the last of the round */

/*
 * Candles with open times from..to, inclusive, of interval iv (both aligned).
 * 0 when to < from. Returns 0 or AB_EINVAL (invalid iv, unaligned times).
 */
int progress_count(enum ab_interval iv, int64_t from, int64_t to, uint64_t *out);

/* n_series runs, 1..PROGRESS_SERIES_MAX. Returns 0 (*out: free with
 * progress_free), AB_EINVAL or AB_ENOMEM. */
int progress_new(size_t n_series, struct progress **out);

void progress_free(struct progress *p);

/*
 * A fetch for the series is due: its missing candles are from..to
 * (closed_through + one interval .. the newest candle that closed). Starts a
 * run (returns 1) or, when the series has a run going, extends its `to` to
 * the later of the two (returns 0). A to before from is taken as from (one
 * candle). Returns AB_EINVAL for a bad series, interval or unaligned times,
 * AB_ERANGE as progress_count, AB_ESTATE when a going run has another
 * interval.
 */
int progress_begin(struct progress *p, size_t series, enum ab_interval iv, int64_t from, int64_t to,
                   int64_t now_ms);

/*
 * The series' closed_through is now closed_through: updates done, finishes
 * the run when it reached `to`. Returns the PROGRESS_* events (0 when
 * nothing finished or the series has no run going).
 */
int progress_update(struct progress *p, size_t series, int64_t closed_through, int64_t now_ms);

/* The series' last run as of now_ms (a zeroed view for a bad series). */
void progress_run(const struct progress *p, size_t series, int64_t now_ms,
                  struct progress_view *out);

/* The current or last round as of now_ms. */
void progress_total(const struct progress *p, int64_t now_ms, struct progress_view *out);

/*
 * True when a round is going and every_ms passed since the last true answer
 * (or since the round started): time for a "backfill progress" log line.
 */
bool progress_log_due(struct progress *p, int64_t now_ms, int64_t every_ms);

#endif

#include "ingest.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "books.h"
#include "bus_sink.h"
#include "candles.h"
#include "clock.h"
#include "common/binance.h"
#include "common/cred.h"
#include "common/err.h"
#include "common/log.h"
#include "health.h"
#include "metrics.h"
#include "plan.h"
#include "progress.h"
#include "policy.h"
#include "publish.h"
#include "record.h"
#include "rest.h"
#include "ws.h"

#define TICK_US          (100 * LWS_US_PER_MS)
#define TIME_REFRESH_US  (60 * LWS_US_PER_SEC)
#define KLINES_LIMIT     1000
#define KLINE_MIN_GAP_MS 1000 /* real time between two klines requests of one series */
#define REST_BUSY        512  /* don't queue new candle fetches beyond this backlog */
/* A REST kline row counts as final only when it closed this long before the
 * exchange's now: REST is served from a database that can lag the stream. */
#define REST_FINAL_MARGIN_MS 2000
#define PROGRESS_LOG_MS      5000 /* "backfill progress" lines at most this often */

struct snap_req {
    struct ingest *in;
    size_t idx;
    uint32_t gen;
};

struct kline_req {
    struct ingest *in;
    size_t series;
    int64_t asked_at; /* exchange time when the request was made */
};

struct ingest {
    const struct ingest_config *cfg;
    struct lws_context *cx;
    struct lws_vhost *client_vh;
    struct lws_protocols client_protocols[3];
    struct metrics m;
    struct publisher pub;
    struct bus_sink *bus; /* borrowed from pub (NULL without a bus) */
    struct recorder *rec;
    struct plan plan;
    struct books *books;
    struct candle_tracker *candles;
    struct ws *ws;
    struct rest *rest;
    struct health *health;
    struct ab_cred cred;
    bool have_key;
    volatile sig_atomic_t stop;
    lws_sorted_usec_list_t sul_tick, sul_time;
    int64_t started_mono;

    /* Exchange clock estimate. */
    bool have_sample, have_e;
    int64_t srv_sample, srv_sample_mono;
    int64_t max_e, max_e_mono;
    bool candles_started;
    int64_t *kline_next_mono;  /* per series */
    struct progress *progress; /* backfill runs, per series (mono ms) */

    size_t *sym_slot;                /* symbol index -> ws slot */
    enum pub_conn_state *slot_state; /* per slot, last published */

    struct log_limiter inv_log[MET_INV_COUNT];
    struct log_limiter resync_log, rest_log, ctl_log;
};

static int64_t wall_us(void)
{
    return clock_wall_ns() / 1000;
}

/* ---- exchange clock ---- */

static int64_t server_now(const struct ingest *in)
{
    int64_t mono = clock_mono_ms();
    int64_t best = INT64_MIN;
    if (in->have_sample)
        best = in->srv_sample + (mono - in->srv_sample_mono);
    if (in->have_e) {
        int64_t e = in->max_e + (mono - in->max_e_mono);
        if (e > best)
            best = e;
    }
    return best == INT64_MIN ? clock_wall_ms() : best;
}

static void maybe_start_candles(struct ingest *in);

static void observe_e(struct ingest *in, int64_t e)
{
    if (e <= 0)
        return;
    int64_t mono = clock_mono_ms();
    if (!in->have_e || e > in->max_e + (mono - in->max_e_mono)) {
        in->max_e = e;
        in->max_e_mono = mono;
        in->have_e = true;
    }
    maybe_start_candles(in);
}

/* ---- logging helpers ---- */

static void invalid(struct ingest *in, enum met_invalid r, const char *what, size_t slot)
{
    in->m.invalid[r]++;
    uint64_t suppressed = 0;
    if (log_limiter_allow(&in->inv_log[r], clock_mono_ms(), ingest_policy.log_every_ms,
                          &suppressed))
        ab_log(AB_LOG_WARN, "ingest",
               "invalid exchange message skipped reason=%s slot=%zu detail=\"%s\" "
               "suppressed=%" PRIu64,
               met_invalid_name(r), slot, what ? what : "", suppressed);
}

/* ---- status ---- */

static void publish_status(struct ingest *in, size_t idx)
{
    const struct ab_book *b = books_book(in->books, idx);
    struct pub_status st = {
        .symbol = ab_book_symbol(b),
        .book = books_state(in->books, idx),
        .conn = in->slot_state[in->sym_slot[idx]],
        .last_update_id = ab_book_last_update_id(b),
        .time_ms = clock_wall_ms(),
    };
    if (publisher_status(&in->pub, &st) < 0)
        in->m.publish_failures++;
    in->m.book_state[idx] = st.book;
}

/* ---- books ---- */

static void request_snapshot(struct ingest *in, size_t idx, uint32_t gen);

static void apply(struct ingest *in, size_t idx, const struct books_effect *eff,
                  const struct ab_book_delta *d, int64_t recv_us)
{
    const struct ab_book *b = books_book(in->books, idx);
    if (eff->publish_delta && d) {
        in->m.book_deltas++;
        if (publisher_delta(&in->pub, d, eff->res.prev_id, recv_us) < 0)
            in->m.publish_failures++;
    }
    if (eff->publish_snapshot) {
        struct ab_book_snapshot snap;
        memset(&snap, 0, sizeof(snap));
        if (ab_book_export(b, 0, &snap) == 0) {
            in->m.book_snapshots++;
            if (publisher_snapshot(&in->pub, &snap, recv_us) < 0)
                in->m.publish_failures++;
        }
        ab_book_snapshot_deinit(&snap);
        ab_log(AB_LOG_INFO, "books",
               "book live symbol=%s last_update_id=%" PRIu64 " replayed=%zu dropped=%zu",
               ab_book_symbol(b), ab_book_last_update_id(b), eff->res.replayed, eff->res.dropped);
    }
    if (eff->resync) {
        in->m.book_resyncs++;
        uint64_t sup = 0;
        if (log_limiter_allow(&in->resync_log, clock_mono_ms(), ingest_policy.log_every_ms, &sup))
            ab_log(AB_LOG_WARN, "books", "book resync symbol=%s reason=%s suppressed=%" PRIu64,
                   ab_book_symbol(b), ab_book_reason_str(eff->res.reason), sup);
    }
    if (eff->status_changed)
        publish_status(in, idx);
    in->m.book_state[idx] = books_state(in->books, idx);
    in->m.book_update_id[idx] = ab_book_last_update_id(b);
    if (eff->fetch_snapshot)
        request_snapshot(in, idx, eff->snapshot_gen);
}

static int depth_weight(int64_t limit)
{
    if (limit <= 100)
        return 5;
    if (limit <= 500)
        return 25;
    if (limit <= 1000)
        return 50;
    return 250;
}

static void snapshot_done(void *ud, const struct rest_result *r)
{
    struct snap_req *sr = ud;
    struct ingest *in = sr->in;
    size_t idx = sr->idx;
    uint32_t gen = sr->gen;
    free(sr);
    if (r->err == AB_ESTATE)
        return; /* shutting down */
    struct books_effect eff;
    int64_t now = clock_mono_ms();
    const char *sym = ab_book_symbol(books_book(in->books, idx));
    if (r->err == 0 && r->status == 200) {
        in->m.messages[MET_MSG_REST_DEPTH]++;
        struct ab_book_snapshot snap;
        struct ab_decode_err err;
        memset(&snap, 0, sizeof(snap));
        int rc = ab_binance_decode_depth(r->body, r->len, sym, &snap, &err);
        if (rc == 0) {
            books_on_snapshot(in->books, idx, gen, &snap, now, &eff);
            ab_book_snapshot_deinit(&snap);
            if (eff.res.action == AB_BOOK_SNAPSHOT_TOO_OLD)
                ab_log(AB_LOG_INFO, "books", "snapshot too old, fetching again symbol=%s", sym);
            apply(in, idx, &eff, NULL, r->recv_ns / 1000);
            return;
        }
        invalid(in, met_invalid_from_err(rc), err.reason, 0);
    } else {
        int code = 0;
        char msg[128] = "";
        if (r->len)
            ab_binance_decode_error(r->body, r->len, &code, msg, sizeof(msg), NULL);
        uint64_t sup = 0;
        if (log_limiter_allow(&in->rest_log, now, ingest_policy.log_every_ms, &sup))
            ab_log(AB_LOG_WARN, "rest",
                   "depth snapshot failed symbol=%s status=%d code=%d msg=\"%s\" "
                   "suppressed=%" PRIu64,
                   sym, r->status, code, msg, sup);
    }
    books_on_snapshot_failed(in->books, idx, gen, now, &eff);
    apply(in, idx, &eff, NULL, wall_us());
}

static void request_snapshot(struct ingest *in, size_t idx, uint32_t gen)
{
    const char *sym = ab_book_symbol(books_book(in->books, idx));
    char path[REST_PATH_MAX];
    snprintf(path, sizeof(path), "/api/v3/depth?symbol=%s&limit=%" PRId64, sym,
             in->cfg->depth_limit);
    struct snap_req *sr = malloc(sizeof(*sr));
    int rc = AB_ENOMEM;
    if (sr) {
        *sr = (struct snap_req){in, idx, gen};
        rc = rest_get(in->rest, path, depth_weight(in->cfg->depth_limit), snapshot_done, sr);
    }
    if (rc < 0) {
        free(sr);
        struct books_effect eff;
        books_on_snapshot_failed(in->books, idx, gen, clock_mono_ms(), &eff);
        apply(in, idx, &eff, NULL, wall_us());
        return;
    }
    ab_log(AB_LOG_DEBUG, "books", "snapshot requested symbol=%s", sym);
}

static void handle_delta(struct ingest *in, size_t slot, const struct ab_book_delta *d,
                         int64_t recv_us)
{
    size_t idx;
    if (books_find(in->books, d->symbol, &idx) < 0) {
        invalid(in, MET_INV_UNKNOWN_SYMBOL, d->symbol, slot);
        return;
    }
    struct books_effect eff;
    int rc = books_on_delta(in->books, idx, d, clock_mono_ms(), &eff);
    if (rc < 0)
        invalid(in, MET_INV_BOOK_REJECTED, ab_book_reason_str(eff.res.reason), slot);
    apply(in, idx, &eff, d, recv_us);
}

/* ---- candles ---- */

static void handle_candle(struct ingest *in, size_t slot, const struct ab_candle *c, bool rest,
                          int64_t recv_us)
{
    switch (candle_tracker_offer(in->candles, c, rest)) {
    case CANDLE_PUBLISH:
        in->m.candles_published++;
        if (rest)
            in->m.candles_backfilled++;
        if (publisher_candle(&in->pub, c, rest ? PUB_ORIGIN_REST : PUB_ORIGIN_WS, recv_us) < 0)
            in->m.publish_failures++;
        break;
    case CANDLE_DUPLICATE:
    case CANDLE_FINAL:
        in->m.candles_duplicate++;
        break;
    case CANDLE_NOT_FINAL:
        break;
    case CANDLE_UNTRACKED:
        if (!rest)
            invalid(in, MET_INV_UNKNOWN_SYMBOL, c->symbol, slot);
        break;
    }
}

static void klines_done(void *ud, const struct rest_result *r)
{
    struct kline_req *kr = ud;
    struct ingest *in = kr->in;
    size_t series = kr->series;
    int64_t asked_at = kr->asked_at;
    free(kr);
    if (r->err == AB_ESTATE)
        return; /* shutting down */
    bool ok = false;
    const char *sym = candle_tracker_symbol(in->candles, series);
    enum ab_interval iv = candle_tracker_interval(in->candles, series);
    int64_t now = server_now(in);
    /* The rows show the exchange as it was when the request was made or
     * later: judge finality by that time, not by when the answer came (the
     * answer may have waited in queues, Retry-After pauses and the network). */
    int64_t at_send = asked_at;
    if (r->err == 0 && r->status == 200) {
        in->m.messages[MET_MSG_REST_KLINES]++;
        struct ab_candle *rows = NULL;
        size_t n = 0;
        struct ab_decode_err err;
        int rc = ab_binance_decode_klines(r->body, r->len, sym, iv, at_send - REST_FINAL_MARGIN_MS,
                                          &rows, &n, &err);
        if (rc == 0) {
            for (size_t i = 0; i < n; i++)
                if (rows[i].closed)
                    handle_candle(in, 0, &rows[i], true, r->recv_ns / 1000);
            ok = true;
            if (n > 0)
                ab_log(AB_LOG_DEBUG, "candles",
                       "klines answer symbol=%s interval=%s rows=%zu first=%" PRId64
                       " last=%" PRId64 " last_closed=%d at_send=%" PRId64 " now=%" PRId64,
                       sym, ab_interval_name(iv), n, rows[0].open_time, rows[n - 1].open_time,
                       rows[n - 1].closed, at_send, now);
        } else {
            invalid(in, met_invalid_from_err(rc), err.reason, 0);
        }
        free(rows);
    } else {
        int code = 0;
        char msg[128] = "";
        if (r->len)
            ab_binance_decode_error(r->body, r->len, &code, msg, sizeof(msg), NULL);
        uint64_t sup = 0;
        if (log_limiter_allow(&in->rest_log, clock_mono_ms(), ingest_policy.log_every_ms, &sup))
            ab_log(AB_LOG_WARN, "rest",
                   "klines request failed symbol=%s interval=%s status=%d code=%d msg=\"%s\" "
                   "suppressed=%" PRIu64,
                   sym, ab_interval_name(iv), r->status, code, msg, sup);
    }
    candle_tracker_fetch_end(in->candles, series, ok, now, ingest_policy.candle_retry_ms);
}

/* Starts the candle tracker as soon as the exchange clock is known (before
 * the first candle is offered: the tracker needs its starting point). */
static void maybe_start_candles(struct ingest *in)
{
    if (in->candles_started || (!in->have_sample && !in->have_e))
        return;
    int64_t now = server_now(in);
    candle_tracker_start(in->candles, now, in->cfg->backfill_ms);
    in->candles_started = true;
    ab_log(AB_LOG_INFO, "candles", "exchange clock known, backfilling from %" PRId64,
           now - in->cfg->backfill_ms);
}

/* ---- backfill progress ---- */

/* A fetch from start_time was sent: start (or extend) the series' run up to
 * the newest candle closed by now - grace. */
static void backfill_begin(struct ingest *in, size_t s, int64_t start_time, int64_t now)
{
    enum ab_interval iv = candle_tracker_interval(in->candles, s);
    int64_t to = ab_interval_align(iv, ab_interval_align(iv, now - in->cfg->close_grace_ms) - 1);
    int rc = progress_begin(in->progress, s, iv, start_time, to, clock_mono_ms());
    if (rc <= 0)
        return;
    struct progress_view v;
    progress_run(in->progress, s, clock_mono_ms(), &v);
    /* A single late close is routine: only real backfills at info. */
    ab_log(v.todo > 1 ? AB_LOG_INFO : AB_LOG_DEBUG, "candles",
           "backfill started symbol=%s interval=%s from=%" PRId64 " to=%" PRId64
           " candles=%" PRIu64,
           candle_tracker_symbol(in->candles, s), ab_interval_name(iv), v.from, v.to, v.todo);
}

static void log_backfill_total(const struct progress_view *v)
{
    ab_log(AB_LOG_INFO, "candles",
           "backfill progress done=%" PRIu64 " todo=%" PRIu64 " pct=%.1f rate=%.1f eta_s=%" PRId64
           " series=%zu active=%zu",
           v->done, v->todo, v->pct, v->rate, v->eta_s, v->runs, v->runs_active);
}

/* Every tick: done counts, finish lines, the 5 s progress line, metrics. */
static void backfill_tick(struct ingest *in)
{
    int64_t mono = clock_mono_ms();
    size_t n = candle_tracker_count(in->candles);
    struct progress_view v;
    for (size_t s = 0; s < n; s++) {
        int ev =
            progress_update(in->progress, s, candle_tracker_closed_through(in->candles, s), mono);
        if (!ev)
            continue;
        progress_run(in->progress, s, mono, &v);
        ab_log(v.todo > 1 ? AB_LOG_INFO : AB_LOG_DEBUG, "candles",
               "backfill finished symbol=%s interval=%s candles=%" PRIu64 " secs=%.1f",
               candle_tracker_symbol(in->candles, s),
               ab_interval_name(candle_tracker_interval(in->candles, s)), v.todo,
               (double)v.elapsed_ms / 1000.0);
        if (ev & PROGRESS_ROUND_FINISHED) {
            progress_total(in->progress, mono, &v);
            if (v.todo > 1) {
                log_backfill_total(&v);
                ab_log(AB_LOG_INFO, "candles",
                       "backfill finished candles=%" PRIu64 " series=%zu secs=%.1f", v.todo, v.runs,
                       (double)v.elapsed_ms / 1000.0);
            }
        }
    }
    progress_total(in->progress, mono, &v);
    if (progress_log_due(in->progress, mono, PROGRESS_LOG_MS))
        log_backfill_total(&v);
    in->m.backfill_todo = v.todo;
    in->m.backfill_done = v.done;
    in->m.backfill_rate = v.rate;
    in->m.backfill_eta_s = v.eta_s;
    in->m.backfill_active = v.runs_active;
}

static void check_candles(struct ingest *in)
{
    if (!in->candles_started)
        return;
    int64_t now = server_now(in);
    int64_t mono = clock_mono_ms();
    size_t n = candle_tracker_count(in->candles);
    for (size_t s = 0; s < n; s++) {
        int64_t start;
        if (rest_pending(in->rest) >= REST_BUSY)
            return;
        if (mono < in->kline_next_mono[s])
            continue;
        if (!candle_tracker_due(in->candles, s, now, in->cfg->close_grace_ms, &start))
            continue;
        char path[REST_PATH_MAX];
        snprintf(path, sizeof(path),
                 "/api/v3/klines?symbol=%s&interval=%s&startTime=%" PRId64 "&limit=%d",
                 candle_tracker_symbol(in->candles, s),
                 ab_interval_name(candle_tracker_interval(in->candles, s)), start, KLINES_LIMIT);
        struct kline_req *kr = malloc(sizeof(*kr));
        if (!kr)
            return;
        *kr = (struct kline_req){in, s, now};
        if (rest_get(in->rest, path, 2, klines_done, kr) < 0) {
            free(kr);
            return;
        }
        candle_tracker_fetch_begin(in->candles, s);
        in->kline_next_mono[s] = mono + KLINE_MIN_GAP_MS;
        backfill_begin(in, s, start, now);
    }
}

/* ---- frames and connection events ---- */

/*
 * A frame that failed to decode may still name its stream in the combined
 * wrapper's first bytes ({"stream":"btcusdt@depth@100ms",...}). If it was a
 * diff event of one of our books, that book missed an update: resync it now
 * rather than wait for the next event to show the gap.
 */
static void lost_frame(struct ingest *in, const char *buf, size_t len)
{
    static const char key[] = "\"stream\":\"";
    size_t scan = len < 256 ? len : 256;
    const char *p = memmem(buf, scan, key, sizeof(key) - 1);
    if (!p)
        return;
    p += sizeof(key) - 1;
    const char *end = buf + scan;
    char sym[AB_SYMBOL_MAX];
    size_t n = 0;
    while (p < end && *p != '@' && *p != '"' && n + 1 < sizeof(sym)) {
        char c = *p++;
        sym[n++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    sym[n] = '\0';
    if (p + 6 > end || memcmp(p, "@depth", 6) != 0)
        return;
    size_t idx;
    if (books_find(in->books, sym, &idx) < 0)
        return;
    struct books_effect eff;
    books_invalidate(in->books, idx, clock_mono_ms(), &eff);
    apply(in, idx, &eff, NULL, wall_us());
}

static void on_frame(void *ud, size_t slot, const char *buf, size_t len, int64_t recv_ns)
{
    struct ingest *in = ud;
    struct ab_binance_msg msg;
    struct ab_decode_err err;
    int rc = ab_binance_decode_stream(buf, len, &msg, &err);
    if (rc < 0) {
        invalid(in, met_invalid_from_err(rc), err.reason, slot);
        ab_binance_msg_deinit(&msg);
        lost_frame(in, buf, len);
        return;
    }
    int64_t recv_us = recv_ns / 1000;
    switch (msg.kind) {
    case AB_BINANCE_KLINE:
        in->m.messages[MET_MSG_KLINE]++;
        observe_e(in, msg.kline.event_time);
        handle_candle(in, slot, &msg.kline, false, recv_us);
        break;
    case AB_BINANCE_DEPTH_UPDATE:
        in->m.messages[MET_MSG_DEPTH]++;
        observe_e(in, msg.depth.event_time);
        handle_delta(in, slot, &msg.depth, recv_us);
        break;
    case AB_BINANCE_SERVER_SHUTDOWN:
        in->m.messages[MET_MSG_SHUTDOWN]++;
        in->m.ws_server_shutdowns++;
        ab_log(AB_LOG_WARN, "ws", "serverShutdown received, replacing the connection slot=%zu",
               slot);
        ws_rollover_now(in->ws, slot);
        break;
    case AB_BINANCE_RESULT:
        in->m.messages[MET_MSG_RESULT]++;
        break;
    case AB_BINANCE_WS_ERROR: {
        in->m.messages[MET_MSG_WS_ERROR]++;
        uint64_t sup = 0;
        if (log_limiter_allow(&in->ctl_log, clock_mono_ms(), ingest_policy.log_every_ms, &sup))
            ab_log(AB_LOG_WARN, "ws",
                   "exchange refused a request slot=%zu code=%" PRId64 " msg=\"%s\"", slot,
                   msg.ws_error.code, msg.ws_error.msg);
        break;
    }
    case AB_BINANCE_BOOK_TICKER:
        in->m.messages[MET_MSG_BOOK_TICKER]++;
        break;
    case AB_BINANCE_TRADE:
    case AB_BINANCE_AGG_TRADE:
        in->m.messages[MET_MSG_TRADE]++;
        break;
    default:
        in->m.messages[MET_MSG_IGNORED]++;
        break;
    }
    ab_binance_msg_deinit(&msg);
}

static void time_cb(lws_sorted_usec_list_t *sul);

static void on_ws_event(void *ud, size_t slot, enum ws_event ev)
{
    struct ingest *in = ud;
    const struct plan_conn *pc = &in->plan.conns[slot];
    enum pub_conn_state st = ws_slot_state(in->ws, slot);
    bool changed = in->slot_state[slot] != st;
    in->slot_state[slot] = st;
    if (ev == WS_EV_DOWN) {
        for (size_t i = 0; i < pc->n_symbols; i++) {
            size_t idx = pc->first_symbol + i;
            struct books_effect eff;
            books_reset(in->books, idx, &eff);
            apply(in, idx, &eff, NULL, wall_us());
        }
    }
    if (ev == WS_EV_UP) {
        /* Fresh books from snapshots taken now that the stream is open. */
        for (size_t i = 0; i < pc->n_symbols; i++) {
            size_t idx = pc->first_symbol + i;
            struct books_effect eff;
            books_sync_now(in->books, idx, clock_mono_ms(), &eff);
            apply(in, idx, &eff, NULL, wall_us());
        }
        /* Whatever closed while we were away comes from REST now, judged
         * by a fresh sample of the exchange's clock (no event times came
         * in meanwhile, so the estimate may lag). */
        if (in->cx)
            lws_sul_schedule(in->cx, 0, &in->sul_time, time_cb, 1);
        candle_tracker_kick(in->candles);
        for (size_t s = 0; s < candle_tracker_count(in->candles); s++)
            in->kline_next_mono[s] = 0;
    }
    if (ev == WS_EV_SWITCHED)
        ab_log(AB_LOG_INFO, "ws", "rollover complete slot=%zu", slot);
    if (changed || ev == WS_EV_DOWN)
        for (size_t i = 0; i < pc->n_symbols; i++)
            publish_status(in, pc->first_symbol + i);
}

/* ---- timers ---- */

static void time_done(void *ud, const struct rest_result *r)
{
    struct ingest *in = ud;
    if (r->err == AB_ESTATE)
        return;
    if (r->err == 0 && r->status == 200) {
        int64_t ms;
        if (ab_binance_decode_server_time(r->body, r->len, &ms, NULL) == 0) {
            in->m.messages[MET_MSG_REST_TIME]++;
            in->srv_sample = ms;
            in->srv_sample_mono = clock_mono_ms();
            if (!in->have_sample)
                ab_log(AB_LOG_INFO, "ingest",
                       "exchange time %" PRId64 " local %" PRId64 " offset_ms=%" PRId64, ms,
                       clock_wall_ms(), ms - clock_wall_ms());
            in->have_sample = true;
            maybe_start_candles(in);
            return;
        }
        invalid(in, MET_INV_JSON, "server time body", 0);
    }
}

static void time_cb(lws_sorted_usec_list_t *sul)
{
    struct ingest *in = lws_container_of(sul, struct ingest, sul_time);
    if (in->stop)
        return;
    rest_get(in->rest, "/api/v3/time", 1, time_done, in);
    lws_sul_schedule(in->cx, 0, &in->sul_time, time_cb, TIME_REFRESH_US);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct ingest *in = lws_container_of(sul, struct ingest, sul_tick);
    if (in->stop)
        return;
    check_candles(in);
    backfill_tick(in);
    int64_t now = clock_mono_ms();
    for (size_t i = 0; i < books_count(in->books); i++) {
        struct books_effect eff;
        books_poll(in->books, i, now, &eff);
        if (eff.fetch_snapshot)
            apply(in, i, &eff, NULL, wall_us());
    }
    in->m.record_errors = recorder_errors(in->rec);
    publisher_flush(&in->pub);
    recorder_flush(in->rec);
    lws_sul_schedule(in->cx, 0, &in->sul_tick, tick_cb, TICK_US);
}

/* ---- health ---- */

static int render_health(void *ud, struct pub_buf *out)
{
    struct ingest *in = ud;
    size_t up = 0, live = 0;
    for (size_t i = 0; i < ws_slot_count(in->ws); i++)
        if (ws_slot_state(in->ws, i) == PUB_CONN_CONNECTED)
            up++;
    for (size_t i = 0; i < books_count(in->books); i++)
        if (books_state(in->books, i) == PUB_BOOK_LIVE)
            live++;
    char tmp[512];
    /* "degraded": a closed candle had to be dropped at the bus and waits
     * for its REST refetch (still 200: this is a liveness check). */
    int n = snprintf(tmp, sizeof(tmp),
                     "{\"status\":\"%s\",\"connections\":{\"connected\":%zu,\"total\":%zu},"
                     "\"books\":{\"live\":%zu,\"total\":%zu},\"uptime_s\":%" PRId64
                     ",\"rest_pending\":%zu",
                     in->bus && bus_sink_behind(in->bus) ? "degraded" : "ok", up,
                     ws_slot_count(in->ws), live, books_count(in->books),
                     (clock_mono_ms() - in->started_mono) / 1000, rest_pending(in->rest));
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return AB_ERANGE;
    out->len = 0;
    if (!out->p || out->cap < (size_t)n + 1) {
        char *p = realloc(out->p, (size_t)n + 1);
        if (!p)
            return AB_ENOMEM;
        out->p = p;
        out->cap = (size_t)n + 1;
    }
    memcpy(out->p, tmp, (size_t)n + 1);
    out->len = (size_t)n;
    int rc = in->bus ? bus_sink_health(in->bus, out) : 0;
    if (rc == 0) {
        size_t need = out->len + 3;
        if (need > out->cap) {
            char *p = realloc(out->p, need);
            if (!p)
                return AB_ENOMEM;
            out->p = p;
            out->cap = need;
        }
        memcpy(out->p + out->len, "}\n", 3);
        out->len += 2;
    }
    return rc;
}

static int render_metrics(void *ud, struct pub_buf *out)
{
    struct ingest *in = ud;
    for (size_t i = 0; i < books_count(in->books); i++) {
        in->m.book_state[i] = books_state(in->books, i);
        in->m.book_update_id[i] = ab_book_last_update_id(books_book(in->books, i));
    }
    in->m.publish_failures = in->pub.failures;
    in->m.record_errors = recorder_errors(in->rec);
    int rc = metrics_render(&in->m, out);
    if (rc == 0 && in->bus)
        rc = bus_sink_metrics(in->bus, out);
    return rc;
}

/* ---- bus sink hooks ---- */

static int bus_export_book(void *arg, const char *symbol, size_t depth,
                           struct ab_book_snapshot *out)
{
    struct ingest *in = arg;
    size_t idx;
    int rc = books_find(in->books, symbol, &idx);
    if (rc < 0)
        return rc;
    return ab_book_export(books_book(in->books, idx), depth, out);
}

static void bus_candle_lost(void *arg, const struct ab_candle *c)
{
    struct ingest *in = arg;
    candle_tracker_rewind(in->candles, c->symbol, c->interval, c->open_time);
}

/* ---- life cycle ---- */

static int load_credentials(struct ingest *in)
{
    const char *path = in->cfg->credentials;
    if (!path || !path[0])
        return 0;
    struct ab_cred_key key;
    const char *why = NULL;
    ab_cred_key_init(&key);
    int rc = ab_cred_key_from_env(&key, &why);
    if (rc == 0)
        rc = ab_cred_read_file(path, &key, &in->cred, &why);
    ab_cred_key_deinit(&key);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "ingest", "cannot use --credentials file=\"%s\" why=\"%s\"", path,
               why ? why : ab_err_str(rc));
        return rc;
    }
    in->have_key = true;
    ab_log(AB_LOG_INFO, "ingest", "API key loaded (sent as X-MBX-APIKEY) key=%s",
           ab_log_redact(in->cred.api_key));
    return 0;
}

int ingest_new(const struct ingest_config *cfg, struct ingest **out)
{
    *out = NULL;
    struct ingest *in = calloc(1, sizeof(*in));
    if (!in)
        return AB_ENOMEM;
    in->cfg = cfg;
    in->started_mono = clock_mono_ms();
    ab_cred_init(&in->cred);
    publisher_init(&in->pub);
    in->m.symbols = cfg->symbols;
    int rc = load_credentials(in);
    if (rc < 0)
        goto fail;
    if (cfg->record && cfg->record[0]) {
        rc = recorder_open(cfg->record, &in->rec);
        if (rc < 0) {
            ab_log(AB_LOG_ERROR, "ingest", "cannot open --record file=\"%s\"", cfg->record);
            goto fail;
        }
    }
    if (cfg->stdout_json) {
        void *ctx = NULL;
        rc = pub_stdout_new(stdout, &ctx);
        if (rc == 0)
            rc = publisher_add(&in->pub, &pub_stdout_ops, ctx);
        if (rc < 0)
            goto fail;
    }
    if (cfg->bus_path[0]) {
        struct bus_sink_config bc = {
            .path = cfg->bus_path,
            .max_frames = (size_t)cfg->bus_max_frames,
            .max_bytes = (size_t)cfg->bus_max_bytes,
            .retry_max = (size_t)cfg->bus_retry_max,
            .hooks = {bus_export_book, bus_candle_lost, in},
        };
        rc = bus_sink_new(&bc, &in->bus);
        if (rc == 0) {
            rc = publisher_add(&in->pub, &bus_sink_ops, in->bus);
            if (rc < 0) {
                bus_sink_free(in->bus, 0);
                in->bus = NULL;
            }
        }
        if (rc < 0) {
            ab_log(AB_LOG_ERROR, "bus", "cannot set up the bus path=\"%s\" error=\"%s\"",
                   cfg->bus_path, ab_err_str(rc));
            goto fail;
        }
    }
    rc = plan_build(&cfg->symbols, &cfg->intervals, cfg->depth_speed == INGEST_DEPTH_1000MS,
                    (size_t)cfg->streams_per_conn, &in->plan);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "ingest", "cannot plan the streams: %s", ab_err_str(rc));
        goto fail;
    }
    rc = books_new((const char(*)[AB_SYMBOL_MAX])cfg->symbols.v, cfg->symbols.n, NULL,
                   ingest_policy.snapshot_retry_ms, &in->books);
    if (rc < 0)
        goto fail;
    rc = candle_tracker_new((const char(*)[AB_SYMBOL_MAX])cfg->symbols.v, cfg->symbols.n,
                            cfg->intervals.v, cfg->intervals.n, &in->candles);
    if (rc < 0)
        goto fail;
    rc = progress_new(candle_tracker_count(in->candles), &in->progress);
    if (rc < 0)
        goto fail;
    in->kline_next_mono = calloc(candle_tracker_count(in->candles), sizeof(int64_t));
    in->sym_slot = calloc(cfg->symbols.n, sizeof(size_t));
    in->slot_state = calloc(in->plan.n_conns, sizeof(*in->slot_state));
    rc = AB_ENOMEM;
    if (!in->kline_next_mono || !in->sym_slot || !in->slot_state)
        goto fail;
    for (size_t c = 0; c < in->plan.n_conns; c++) {
        in->slot_state[c] = PUB_CONN_DISCONNECTED;
        for (size_t i = 0; i < in->plan.conns[c].n_symbols; i++)
            in->sym_slot[in->plan.conns[c].first_symbol + i] = c;
    }

    lws_set_log_level(ab_log_lws_levels(), ab_log_lws_emit);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.pt_serv_buf_size = 32768;
    info.timeout_secs = 20;
    info.connect_timeout_secs = ingest_policy.connect_timeout_ms / 1000;
    info.user = in;
    in->cx = lws_create_context(&info);
    rc = AB_EIO;
    if (!in->cx) {
        ab_log(AB_LOG_ERROR, "ingest", "libwebsockets context creation failed");
        goto fail;
    }
    in->client_protocols[0] = ws_protocol;
    in->client_protocols[1] = rest_protocol;
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof(vi));
    vi.vhost_name = "exchange-client";
    vi.port = CONTEXT_PORT_NO_LISTEN;
    vi.protocols = in->client_protocols;
    vi.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (cfg->ca_file && cfg->ca_file[0])
        vi.client_ssl_ca_filepath = cfg->ca_file;
    in->client_vh = lws_create_vhost(in->cx, &vi);
    if (!in->client_vh) {
        ab_log(AB_LOG_ERROR, "ingest", "client vhost creation failed (TLS setup? ca-file=\"%s\")",
               cfg->ca_file ? cfg->ca_file : "");
        goto fail;
    }
    if (!cfg->no_health) {
        rc = health_start(in->cx, &cfg->health, render_health, render_metrics, in, &in->health);
        if (rc < 0) {
            ab_log(AB_LOG_ERROR, "health", "cannot listen on %s:%u", cfg->health.host,
                   (unsigned)cfg->health.port);
            goto fail;
        }
        ab_log(AB_LOG_INFO, "health", "listening on %s:%u", cfg->health.host,
               (unsigned)health_port(in->health));
    }
    struct rest_settings rs = {
        .url = &cfg->rest,
        .api_key = in->have_key ? in->cred.api_key : NULL,
        .weight_limit = cfg->weight_limit,
        .parallel = cfg->rest_parallel,
        .policy = &ingest_policy,
    };
    rc = rest_new(in->cx, in->client_vh, &rs, &in->m, in->rec, &in->rest);
    if (rc < 0)
        goto fail;
    struct ws_settings wss = {
        .url = &cfg->ws,
        .plan = &in->plan,
        .url_streams_max = (size_t)cfg->url_streams_max,
        .max_age_ms = cfg->max_age_ms,
        .silence_ms = cfg->silence_ms,
        .switch_timeout_ms = cfg->switch_timeout_ms,
        .policy = &ingest_policy,
    };
    rc = ws_new(in->cx, in->client_vh, &wss, &in->m, in->rec, on_frame, on_ws_event, in, &in->ws);
    if (rc < 0)
        goto fail;
    *out = in;
    return 0;
fail:
    ingest_free(in);
    return rc < 0 ? rc : AB_EIO;
}

uint16_t ingest_health_port(const struct ingest *in)
{
    return health_port(in->health);
}

int ingest_run(struct ingest *in)
{
    ab_log(AB_LOG_INFO, "ingest",
           "starting symbols=%zu intervals=%zu connections=%zu ws=%s://%s:%u rest=%s://%s:%u",
           in->cfg->symbols.n, in->cfg->intervals.n, in->plan.n_conns,
           in->cfg->ws.tls ? "wss" : "ws", in->cfg->ws.host, (unsigned)in->cfg->ws.port,
           in->cfg->rest.tls ? "https" : "http", in->cfg->rest.host, (unsigned)in->cfg->rest.port);
    for (size_t i = 0; i < books_count(in->books); i++)
        publish_status(in, i);
    ws_start(in->ws);
    lws_sul_schedule(in->cx, 0, &in->sul_time, time_cb, 1);
    lws_sul_schedule(in->cx, 0, &in->sul_tick, tick_cb, TICK_US);
    while (!in->stop) {
        if (lws_service(in->cx, 0) < 0)
            break;
    }
    ab_log(AB_LOG_INFO, "ingest", "stopping");
    return 0;
}

void ingest_stop(struct ingest *in)
{
    if (!in)
        return;
    in->stop = 1;
    if (in->cx)
        lws_cancel_service(in->cx);
}

void ingest_free(struct ingest *in)
{
    if (!in)
        return;
    if (in->cx) {
        lws_sul_cancel(&in->sul_tick);
        lws_sul_cancel(&in->sul_time);
    }
    ws_stop(in->ws);
    rest_stop(in->rest);
    publisher_flush(&in->pub);
    if (in->cx)
        lws_context_destroy(in->cx);
    ws_free(in->ws);
    rest_free(in->rest);
    health_free(in->health);
    /* Before the books: the bus sink's last flush may export them. */
    publisher_deinit(&in->pub);
    in->bus = NULL;
    books_free(in->books);
    candle_tracker_free(in->candles);
    progress_free(in->progress);
    plan_deinit(&in->plan);
    recorder_free(in->rec);
    ab_cred_deinit(&in->cred);
    free(in->kline_next_mono);
    free(in->sym_slot);
    free(in->slot_state);
    free(in);
}

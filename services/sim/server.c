#include "services/sim/server.h"

#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "services/sim/control.h"
#include "services/sim/encode.h"
#include "services/sim/rest.h"
#include "services/sim/sbuf.h"

#define MSG_MAX           (1u << 20)    /* one stream message (hard cap) */
#define RX_MAX            (64u * 1024u) /* one incoming control message (hard cap) */
#define ARGS_MAX          8192          /* URL query bytes kept for a REST request */
#define HTTP_CHUNK        16384         /* body bytes written per WRITEABLE */
#define REPLAY_BATCH      2000          /* replay records handled per tick at most */
#define PING_PAYLOAD_MAX  24
#define TRACE_BUF         (4u << 20) /* stdio buffer of the send trace */
#define TRACE_FLUSH_MS    1000       /* the tick flushes the trace this often */
#define ADVANCE_CHUNK_MS  1000       /* sim time per market_advance call in a tick */
#define ADVANCE_BUDGET_MS 50         /* real time one tick spends catching up at most */

/* ---- shared messages --------------------------------------------------- */

/* One encoded frame, shared by every client it is queued to. */
struct msg {
    unsigned refs;
    size_t len;
    char *mem;        /* owned: LWS_PRE headroom, then len bytes of text */
    uint64_t trace_u; /* send trace: final update id of a depth frame; 0 = untraced */
    size_t trace_sym; /* send trace: market symbol index */
};

static struct msg *msg_from_sbuf(struct sbuf *b)
{
    struct msg *m = malloc(sizeof(*m));
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = b->len;
    m->mem = sbuf_take(b);
    m->trace_u = 0;
    m->trace_sym = 0;
    return m;
}

static struct msg *msg_copy(const char *text, size_t len)
{
    struct sbuf b;
    if (sbuf_init(&b, LWS_PRE, len + 1, len + 1) != 0)
        return NULL;
    sbuf_putn(&b, text, len);
    struct msg *m = msg_from_sbuf(&b);
    if (!m)
        sbuf_deinit(&b);
    return m;
}

static void msg_unref(struct msg *m)
{
    if (m && --m->refs == 0) {
        free(m->mem);
        free(m);
    }
}

static char *msg_text(struct msg *m)
{
    return m->mem + LWS_PRE;
}

/* ---- per-connection state ---------------------------------------------- */

struct qent {
    struct msg *m;
    bool data; /* a stream event (faults apply), not a control reply */
};

struct client {
    struct lws *wsi;
    struct server *srv;
    struct client *prev, *next;
    struct control_conn ctl;
    struct qent *q; /* owned ring, srv->cfg.queue_cap entries */
    size_t qhead, qlen;
    uint64_t data_sent; /* data messages written, for the malformed fault */
    int64_t next_ping;
    int64_t unanswered_since; /* first unanswered ping, or -1 */
    uint64_t ping_seq, acked_seq;
    bool ping_due;
    int64_t rate_window;
    int rate_count;
    char *rx; /* owned: fragments of the current incoming message */
    size_t rx_len;
    bool closing;
    int close_code;
    const char *close_why; /* static */
};

struct http_sess {
    bool active;
    struct rest_reply reply;
    size_t sent;
    bool headers_done;
};

struct server_stats {
    uint64_t connections, now_open;
    uint64_t dropped_overflow, dropped_rate, dropped_pong, dropped_rx_size;
    uint64_t rest_requests;
    uint64_t messages;
};

struct server {
    struct server_cfg cfg;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int port;
    struct client *clients;
    lws_sorted_usec_list_t sul;
    volatile sig_atomic_t stop;
    int err;
    int64_t real0;      /* monotonic ms at start */
    int64_t next_close; /* fault close_every */
    struct faults faults;
    struct rest_weight weight;
    struct rest_backend backend;
    struct server_stats stats;
    FILE *trace;           /* owned: cfg.trace_file opened, or NULL */
    char *trace_buf;       /* owned: its TRACE_BUF stdio buffer */
    int64_t trace_flushed; /* mono ms of the last flush */
    int64_t lag_logged;    /* mono ms of the last "falling behind" warning */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t sim_now(const struct server *s)
{
    if (s->cfg.replay)
        return replay_time(s->cfg.replay);
    return s->cfg.start_time + (int64_t)((double)(mono_ms() - s->real0) * s->cfg.speed);
}

/* ---- queues and fan-out ------------------------------------------------ */

static void client_close(struct client *c, int code, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_code = code;
    c->close_why = why;
    lws_callback_on_writable(c->wsi);
}

static void enqueue(struct client *c, struct msg *m, bool data)
{
    struct server *s = c->srv;
    if (c->closing)
        return;
    if (c->qlen == s->cfg.queue_cap) {
        s->stats.dropped_overflow++;
        ab_log(AB_LOG_WARN, "sim", "client send queue overflow, closing queued=%zu", c->qlen);
        client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue overflow");
        return;
    }
    m->refs++;
    c->q[(c->qhead + c->qlen) % s->cfg.queue_cap] = (struct qent){m, data};
    c->qlen++;
    if (c->qlen == 1)
        lws_callback_on_writable(c->wsi);
}

/*
 * Sends one stream event (raw text) to every client subscribed to stream id.
 * trace_u != 0 tags the messages for the send trace (depth frames).
 */
static void publish(struct server *s, uint32_t id, const char *raw, size_t len, uint64_t trace_u,
                    size_t trace_sym)
{
    struct msg *mraw = NULL, *mcomb = NULL;
    for (struct client *c = s->clients; c; c = c->next) {
        if (c->closing || !stream_set_has(&c->ctl.subs, id))
            continue;
        struct msg **slot = c->ctl.combined ? &mcomb : &mraw;
        if (!*slot) {
            if (c->ctl.combined) {
                struct sbuf b;
                if (sbuf_init(&b, LWS_PRE, len + 64, MSG_MAX) != 0)
                    continue;
                encode_combined(&b, streams_name(s->cfg.streams, id), raw, len);
                if (sbuf_err(&b) != 0 || !(*slot = msg_from_sbuf(&b))) {
                    sbuf_deinit(&b);
                    continue;
                }
            } else if (!(*slot = msg_copy(raw, len))) {
                continue;
            }
            (*slot)->trace_u = trace_u;
            (*slot)->trace_sym = trace_sym;
        }
        enqueue(c, *slot, true);
    }
    msg_unref(mraw);
    msg_unref(mcomb);
}

/* ---- the model source -------------------------------------------------- */

static void on_market_event(const struct market_event *ev, void *ud)
{
    struct server *s = ud;
    const struct market_symbol *sym = market_symbol(s->cfg.market, ev->sym);
    uint32_t ids[2];
    size_t n_ids = 0;
    enum kline_fault kf = KLINE_OK;
    switch (ev->kind) {
    case MARKET_EV_TRADE:
        ids[n_ids++] = streams_model_id(ev->sym, STREAM_TRADE);
        ids[n_ids++] = streams_model_id(ev->sym, STREAM_AGG_TRADE);
        break;
    case MARKET_EV_BOOK_TICKER:
        ids[n_ids++] = streams_model_id(ev->sym, STREAM_BOOK_TICKER);
        break;
    case MARKET_EV_DEPTH:
        ids[0] = streams_model_id(ev->sym,
                                  ev->u.depth.speed_ms == 100 ? STREAM_DEPTH_100MS : STREAM_DEPTH);
        /* Counted whether or not anyone listens, so gaps fall at fixed events. */
        if (!faults_skip_depth(&s->faults, ids[0]))
            n_ids = 1;
        break;
    case MARKET_EV_KLINE:
        ids[0] = streams_model_id(ev->sym, STREAM_KLINE + (int)ev->u.kline.candle->interval);
        kf = faults_kline(&s->faults, ids[0]);
        n_ids = 1;
        break;
    }
    for (size_t i = 0; i < n_ids; i++) {
        if (!streams_wanted(s->cfg.streams, ids[i]))
            continue;
        struct sbuf b;
        if (sbuf_init(&b, 0, 512, MSG_MAX) != 0)
            return;
        switch (ev->kind) {
        case MARKET_EV_TRADE:
            if (i == 0)
                encode_trade(&b, sym->symbol, ev->time, &ev->u.trade);
            else
                encode_agg_trade(&b, sym->symbol, ev->time, &ev->u.trade);
            break;
        case MARKET_EV_BOOK_TICKER:
            encode_book_ticker(&b, sym->symbol, ev->u.ticker.update_id, &ev->u.ticker.bid,
                               &ev->u.ticker.ask);
            break;
        case MARKET_EV_DEPTH:
            encode_depth_update(&b, sym->symbol, ev->time, ev->u.depth.first_id,
                                ev->u.depth.last_id, ev->u.depth.bids, ev->u.depth.n_bids,
                                ev->u.depth.asks, ev->u.depth.n_asks);
            break;
        case MARKET_EV_KLINE:
            encode_kline(&b, ev->u.kline.candle, ev->time, kf);
            break;
        }
        bool depth = ev->kind == MARKET_EV_DEPTH && s->trace;
        if (sbuf_err(&b) == 0)
            publish(s, ids[i], sbuf_text(&b), b.len, depth ? ev->u.depth.last_id : 0, ev->sym);
        else
            ab_log(AB_LOG_ERROR, "sim", "event too large to encode, dropped");
        sbuf_deinit(&b);
    }
}

/* ---- the replay source ------------------------------------------------- */

static bool clients_have_room(const struct server *s)
{
    for (const struct client *c = s->clients; c; c = c->next)
        if (c->qlen > s->cfg.queue_cap / 2)
            return false;
    return true;
}

/* A snapshot matters when someone follows a depth stream of its symbol. */
static bool depth_interest(void *ud, size_t sym)
{
    struct server *s = ud;
    const char *name = replay_symbol(s->cfg.replay, sym)->symbol;
    char prefix[AB_SYMBOL_MAX + 8];
    size_t n = 0;
    for (; name[n] && n < AB_SYMBOL_MAX; n++)
        prefix[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] + 32 : name[n]);
    memcpy(prefix + n, "@depth", 7);
    for (const struct client *c = s->clients; c; c = c->next) {
        for (uint32_t id = 0; id < STREAMS_MAX; id++) {
            const char *sn;
            if (stream_set_has(&c->ctl.subs, id) && (sn = streams_name(s->cfg.streams, id)) &&
                strncmp(sn, prefix, n + 6) == 0)
                return true;
        }
    }
    return false;
}

static void replay_tick(struct server *s, int64_t now)
{
    struct replay *r = s->cfg.replay;
    if (!replay_started(r)) {
        for (struct client *c = s->clients; c; c = c->next) {
            if (c->ctl.n_subs) {
                replay_start(r, now, s->cfg.speed, s->cfg.replay_hold_ms);
                ab_log(AB_LOG_INFO, "replay", "started records=%zu", replay_count(r));
                break;
            }
        }
        if (!replay_started(r))
            return;
    }
    for (int i = 0; i < REPLAY_BATCH; i++) {
        if (s->cfg.speed <= 0 && !clients_have_room(s))
            break; /* as fast as possible, but never faster than clients read */
        const struct replay_rec *rec = replay_next(r, now, depth_interest, s);
        if (!rec)
            break;
        if (rec->kind == REPLAY_SNAPSHOT) {
            ab_log(AB_LOG_INFO, "replay", "snapshot published symbol=%s lastUpdateId=%llu",
                   replay_symbol(r, rec->sym)->symbol, (unsigned long long)rec->last_update_id);
            continue;
        }
        if (!streams_wanted(s->cfg.streams, rec->stream_id))
            continue;
        /* Recorded frames go out as recorded; only the gap and malformed faults apply. */
        const char *name = streams_name(s->cfg.streams, rec->stream_id);
        if (strstr(name, "@depth") && faults_skip_depth(&s->faults, rec->stream_id))
            continue;
        struct msg *mraw = NULL, *mcomb = NULL;
        for (struct client *c = s->clients; c; c = c->next) {
            if (c->closing || !stream_set_has(&c->ctl.subs, rec->stream_id))
                continue;
            struct msg **slot = c->ctl.combined ? &mcomb : &mraw;
            if (!*slot)
                *slot = c->ctl.combined ? msg_copy(rec->combined, rec->combined_len)
                                        : msg_copy(rec->raw, rec->raw_len);
            if (*slot)
                enqueue(c, *slot, true);
        }
        msg_unref(mraw);
        msg_unref(mcomb);
    }
}

/* ---- the periodic tick ------------------------------------------------- */

static void tick(lws_sorted_usec_list_t *sul)
{
    struct server *s = lws_container_of(sul, struct server, sul);
    int64_t now = mono_ms();
    if (s->cfg.market && !s->err) {
        /* Catch up with sim time in chunks and give the event loop back
         * after ADVANCE_BUDGET_MS: on a machine too slow for the speed
         * asked (--speed 600 under valgrind, thousands of symbols), sim
         * time slips behind instead of the server never answering. The
         * events do not depend on the slicing (market.h). */
        struct market *m = s->cfg.market;
        int64_t goal = sim_now(s);
        int rc = 0;
        while (rc == 0 && market_time(m) + MARKET_STEP_MS <= goal) {
            int64_t to = market_time(m) + ADVANCE_CHUNK_MS;
            rc = market_advance(m, to < goal ? to : goal, on_market_event, s);
            if (rc == 0 && mono_ms() - now >= ADVANCE_BUDGET_MS) {
                if (now - s->lag_logged >= 10000) {
                    ab_log(AB_LOG_WARN, "sim", "falling behind sim time lag_ms=%lld",
                           (long long)(goal - market_time(m)));
                    s->lag_logged = now;
                }
                break;
            }
        }
        if (rc != 0) {
            ab_log(AB_LOG_ERROR, "sim", "market stopped: %s", ab_err_str(rc));
            s->err = rc;
            s->stop = 1;
        }
    } else if (s->cfg.replay) {
        replay_tick(s, now);
    }
    bool close_all = false;
    if (s->cfg.faults.close_every_ms > 0 && now >= s->next_close) {
        close_all = true;
        s->next_close = now + s->cfg.faults.close_every_ms;
    }
    for (struct client *c = s->clients; c; c = c->next) {
        if (c->closing)
            continue;
        if (close_all) {
            s->faults.stats.closes++;
            client_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "fault injection: close");
            continue;
        }
        if (c->unanswered_since >= 0 && now - c->unanswered_since > s->cfg.pong_timeout_ms) {
            s->stats.dropped_pong++;
            ab_log(AB_LOG_INFO, "sim", "no pong in time, closing");
            client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "pong timeout");
            continue;
        }
        if (s->cfg.ping_interval_ms > 0 && !s->cfg.faults.no_pong && now >= c->next_ping) {
            c->next_ping = now + s->cfg.ping_interval_ms;
            c->ping_due = true;
            lws_callback_on_writable(c->wsi);
        }
    }
    if (s->trace && now - s->trace_flushed >= TRACE_FLUSH_MS) {
        fflush(s->trace);
        s->trace_flushed = now;
    }
    if (s->stop)
        lws_cancel_service(s->ctx);
    else
        lws_sul_schedule(s->ctx, 0, &s->sul, tick, SERVER_TICK_MS * LWS_US_PER_MS);
}

/* ---- REST -------------------------------------------------------------- */

static size_t be_n_symbols(void *ud)
{
    struct server *s = ud;
    return s->cfg.market ? market_n_symbols(s->cfg.market) : replay_n_symbols(s->cfg.replay);
}

static const struct market_symbol *be_symbol(void *ud, size_t i)
{
    struct server *s = ud;
    return s->cfg.market ? market_symbol(s->cfg.market, i) : replay_symbol(s->cfg.replay, i);
}

static int64_t be_server_time(void *ud)
{
    return sim_now(ud);
}

static int be_depth(void *ud, size_t sym, size_t limit, struct sbuf *body)
{
    struct server *s = ud;
    if (s->cfg.replay)
        return replay_depth(s->cfg.replay, sym, limit, body);
    struct ab_level *bids = calloc(limit, sizeof(*bids)), *asks = calloc(limit, sizeof(*asks));
    int rc = AB_ENOMEM;
    if (bids && asks) {
        size_t nb, na;
        uint64_t id;
        market_depth(s->cfg.market, sym, limit, bids, &nb, asks, &na, &id);
        encode_depth_snapshot(body, id, bids, nb, asks, na);
        rc = sbuf_err(body);
    }
    free(bids);
    free(asks);
    return rc;
}

static int be_klines(void *ud, size_t sym, enum ab_interval iv, bool has_start, int64_t start,
                     bool has_end, int64_t end, size_t limit, struct sbuf *body)
{
    struct server *s = ud;
    if (!s->cfg.market)
        return AB_ENOTFOUND;
    struct ab_candle *rows = calloc(limit, sizeof(*rows));
    if (!rows)
        return AB_ENOMEM;
    size_t n = market_klines(s->cfg.market, sym, iv, has_start, start, has_end, end, limit, rows);
    encode_klines(body, rows, n);
    free(rows);
    return sbuf_err(body);
}

static void stats_body(struct server *s, struct sbuf *b)
{
    const struct faults_stats *f = &s->faults.stats;
    sbuf_printf(
        b,
        "{\"connections\":%llu,\"open\":%llu,\"droppedQueueOverflow\":%llu,"
        "\"droppedRateLimit\":%llu,\"droppedPongTimeout\":%llu,"
        "\"droppedMessageTooBig\":%llu,\"restRequests\":%llu,\"messagesSent\":%llu,",
        (unsigned long long)s->stats.connections, (unsigned long long)s->stats.now_open,
        (unsigned long long)s->stats.dropped_overflow, (unsigned long long)s->stats.dropped_rate,
        (unsigned long long)s->stats.dropped_pong, (unsigned long long)s->stats.dropped_rx_size,
        (unsigned long long)s->stats.rest_requests, (unsigned long long)s->stats.messages);
    sbuf_printf(b,
                "\"faults\":{\"closes\":%llu,\"gaps\":%llu,\"malformed\":%llu,"
                "\"outOfRange\":%llu,\"rest429\":%llu,\"rest418\":%llu},",
                (unsigned long long)f->closes, (unsigned long long)f->gaps,
                (unsigned long long)f->malformed, (unsigned long long)f->out_of_range,
                (unsigned long long)f->rest_429, (unsigned long long)f->rest_418);
    sbuf_printf(b, "\"simTime\":%lld,", (long long)sim_now(s));
    if (s->cfg.market) {
        struct market *m = s->cfg.market;
        sbuf_puts(b, "\"mode\":\"model\",\"symbols\":[");
        for (size_t i = 0; i < market_n_symbols(m); i++)
            sbuf_printf(b, "%s{\"symbol\":\"%s\",\"steps\":%llu,\"frozen\":%s}", i ? "," : "",
                        market_symbol(m, i)->symbol, (unsigned long long)market_steps(m, i),
                        market_frozen(m, i) ? "true" : "false");
        sbuf_puts(b, "]}");
    } else {
        struct replay *r = s->cfg.replay;
        sbuf_printf(b, "\"mode\":\"replay\",\"records\":%zu,\"started\":%s,\"done\":%s}",
                    replay_count(r), replay_started(r) ? "true" : "false",
                    replay_done(r) ? "true" : "false");
    }
}

/* Collects the URL-decoded query parameters of the current request. */
static void read_args(struct lws *wsi, char *buf, size_t cap, struct rest_request *req)
{
    size_t used = 0;
    req->n_params = 0;
    for (int i = 0; req->n_params < REST_PARAMS_MAX && used < cap; i++) {
        int n =
            lws_hdr_copy_fragment(wsi, buf + used, (int)(cap - used), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        char *frag = buf + used, *eq = strchr(frag, '=');
        if (eq) {
            *eq = '\0';
            req->params[req->n_params].value = eq + 1;
        } else {
            req->params[req->n_params].value = "";
        }
        req->params[req->n_params].name = frag;
        req->n_params++;
        used += (size_t)n + 1;
    }
}

static int http_send_headers(struct lws *wsi, struct http_sess *hs)
{
    unsigned char hbuf[LWS_PRE + 1024];
    unsigned char *start = hbuf + LWS_PRE, *p = start, *end = hbuf + sizeof(hbuf) - 1;
    struct rest_reply *r = &hs->reply;
    char val[32];
    if (lws_add_http_common_headers(wsi, (unsigned)r->status, r->content_type,
                                    (lws_filepos_t)r->body.len, &p, end))
        return -1;
    int n = snprintf(val, sizeof(val), "%lld", (long long)r->used_weight);
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"x-mbx-used-weight:",
                                    (const unsigned char *)val, n, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-mbx-used-weight-1m:",
                                    (const unsigned char *)val, n, &p, end))
        return -1;
    if (r->retry_after >= 0) {
        n = snprintf(val, sizeof(val), "%d", r->retry_after);
        if (lws_add_http_header_by_name(
                wsi, (const unsigned char *)"retry-after:", (const unsigned char *)val, n, &p, end))
            return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    hs->headers_done = true;
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_request(struct server *s, struct lws *wsi, struct http_sess *hs, const char *path)
{
    char args[ARGS_MAX];
    struct rest_request req = {.path = path};
    int64_t now = mono_ms();
    if (hs->active)
        rest_reply_deinit(&hs->reply);
    memset(hs, 0, sizeof(*hs));
    if (rest_reply_init(&hs->reply, LWS_PRE) != 0)
        return -1;
    hs->active = true;
    s->stats.rest_requests++;
    read_args(wsi, args, sizeof(args), &req);
    int rc;
    int status = strcmp(path, "/sim/stats") == 0 ? 0 : faults_rest_status(&s->faults);
    if (status) {
        rc = rest_fault_reply(status, s->cfg.faults.retry_after_s, sim_now(s), &s->weight, now,
                              &hs->reply);
    } else {
        rc = rest_handle(&s->backend, &s->weight, &req, now, &hs->reply);
        if (rc == AB_ENOTFOUND && strcmp(path, "/sim/stats") == 0) {
            stats_body(s, &hs->reply.body);
            rc = sbuf_err(&hs->reply.body);
        } else if (rc == AB_ENOTFOUND) {
            rc = rest_not_found(&s->weight, now, &hs->reply);
        }
    }
    if (rc != 0) {
        ab_log(AB_LOG_ERROR, "rest", "cannot build reply path=%s: %s", path, ab_err_str(rc));
        return -1;
    }
    if (s->cfg.faults.rest_delay_ms > 0 && strcmp(path, "/sim/stats") != 0) {
        lws_set_timer_usecs(wsi, s->cfg.faults.rest_delay_ms * LWS_US_PER_MS);
        return 0;
    }
    return http_send_headers(wsi, hs);
}

static int http_writeable(struct lws *wsi, struct http_sess *hs)
{
    if (!hs->active || !hs->headers_done)
        return 0;
    size_t left = hs->reply.body.len - hs->sent;
    size_t n = left > HTTP_CHUNK ? HTTP_CHUNK : left;
    enum lws_write_protocol wp = n == left ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP;
    /* The LWS_PRE bytes before this chunk are scratch: already sent text or headroom. */
    unsigned char *p = (unsigned char *)sbuf_text(&hs->reply.body) + hs->sent;
    if (lws_write(wsi, p, n, wp) != (int)n)
        return -1;
    hs->sent += n;
    if (wp == LWS_WRITE_HTTP_FINAL) {
        rest_reply_deinit(&hs->reply);
        hs->active = false;
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int cb_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    struct server *s = lws_context_user(lws_get_context(wsi));
    struct http_sess *hs = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return http_request(s, wsi, hs, (const char *)in);
    case LWS_CALLBACK_TIMER:
        return hs && hs->active && !hs->headers_done ? http_send_headers(wsi, hs) : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return http_writeable(wsi, hs);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (hs && hs->active) {
            rest_reply_deinit(&hs->reply);
            hs->active = false;
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- WebSocket streams ------------------------------------------------- */

/* Reads the path and the streams= argument of the upgrade request. */
static int ws_open(struct server *s, struct lws *wsi, struct control_conn *ctl, const char **why)
{
    char path[1024];
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0) {
        *why = "path too long";
        return AB_EINVAL;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    size_t cap = (size_t)lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) + 16;
    char *arg = malloc(cap);
    if (!arg)
        return AB_ENOMEM;
    const char *streams = lws_get_urlarg_by_name(wsi, "streams=", arg, (int)cap);
    int rc = control_open(s->cfg.streams, ctl, s->cfg.max_streams, path, streams, why);
    free(arg);
    return rc;
}

static void ws_established(struct server *s, struct lws *wsi, struct client *c)
{
    int64_t now = mono_ms();
    memset(c, 0, sizeof(*c));
    c->wsi = wsi;
    c->srv = s;
    c->unanswered_since = -1;
    c->next_ping = now + s->cfg.ping_interval_ms;
    c->rate_window = now;
    c->q = calloc(s->cfg.queue_cap, sizeof(*c->q));
    const char *why = NULL;
    int rc = c->q ? ws_open(s, wsi, &c->ctl, &why) : AB_ENOMEM;
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    s->stats.connections++;
    s->stats.now_open++;
    if (rc != 0) {
        ab_log(AB_LOG_INFO, "sim", "refusing stream connection: %s", why ? why : ab_err_str(rc));
        client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, why ? why : "out of memory");
        return;
    }
    if (s->cfg.faults.no_pong)
        lws_rx_flow_control(wsi, 0); /* pings from the client now go unanswered */
}

static void ws_closed(struct server *s, struct client *c)
{
    if (!c->srv)
        return; /* never established */
    if (c->prev)
        c->prev->next = c->next;
    else if (s->clients == c)
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    control_release(s->cfg.streams, &c->ctl);
    for (size_t i = 0; i < c->qlen; i++)
        msg_unref(c->q[(c->qhead + i) % s->cfg.queue_cap].m);
    free(c->q);
    free(c->rx);
    s->stats.now_open--;
    c->srv = NULL;
}

/* Counts one incoming message against the per-second limit; false = over. */
static bool rate_ok(struct server *s, struct client *c)
{
    int64_t now = mono_ms();
    if (now - c->rate_window >= 1000) {
        c->rate_window = now;
        c->rate_count = 0;
    }
    if (++c->rate_count <= SERVER_MSG_RATE)
        return true;
    s->stats.dropped_rate++;
    ab_log(AB_LOG_INFO, "sim", "more than %d messages in a second, closing", SERVER_MSG_RATE);
    client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many messages");
    return false;
}

static int ws_receive(struct server *s, struct lws *wsi, struct client *c, const char *in,
                      size_t len)
{
    if (c->closing)
        return 0;
    if (c->rx_len + len > RX_MAX) {
        s->stats.dropped_rx_size++;
        client_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too big");
        return 0;
    }
    if (!c->rx && !(c->rx = malloc(RX_MAX)))
        return -1;
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    size_t n = c->rx_len;
    c->rx_len = 0;
    if (!rate_ok(s, c))
        return 0;
    struct sbuf reply;
    if (sbuf_init(&reply, LWS_PRE, 256, MSG_MAX) != 0)
        return -1;
    if (control_handle(s->cfg.streams, &c->ctl, s->cfg.max_streams, c->rx, n, &reply) == 0) {
        struct msg *m = msg_from_sbuf(&reply);
        if (m) {
            enqueue(c, m, false);
            msg_unref(m);
        }
    }
    sbuf_deinit(&reply);
    return 0;
}

static void ws_pong(struct server *s, struct client *c, const char *in, size_t len)
{
    if (!rate_ok(s, c))
        return;
    char buf[PING_PAYLOAD_MAX];
    if (len == 0 || len >= sizeof(buf))
        return; /* unsolicited pongs do not keep the connection alive */
    memcpy(buf, in, len);
    buf[len] = '\0';
    char *end = NULL;
    unsigned long long seq = strtoull(buf, &end, 10);
    if (!end || *end != '\0' || seq <= c->acked_seq || seq > c->ping_seq)
        return;
    c->acked_seq = seq;
    if (seq == c->ping_seq)
        c->unanswered_since = -1;
}

static int ws_writeable(struct server *s, struct lws *wsi, struct client *c)
{
    if (c->closing) {
        size_t n = strlen(c->close_why);
        lws_close_reason(wsi, (enum lws_close_status)c->close_code, (unsigned char *)c->close_why,
                         n);
        return -1;
    }
    if (c->ping_due) {
        unsigned char buf[LWS_PRE + PING_PAYLOAD_MAX];
        c->ping_due = false;
        c->ping_seq++;
        int n = snprintf((char *)buf + LWS_PRE, PING_PAYLOAD_MAX, "%llu",
                         (unsigned long long)c->ping_seq);
        if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_PING) < n)
            return -1;
        if (c->unanswered_since < 0)
            c->unanswered_since = mono_ms();
        if (c->qlen)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (!c->qlen)
        return 0;
    struct qent e = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % s->cfg.queue_cap;
    c->qlen--;
    size_t n = e.m->len;
    if (e.data && faults_malformed(&s->faults, ++c->data_sent))
        n = n / 2; /* cut JSON: the client must treat it as a decode error */
    int64_t t_send = s->trace && e.data && e.m->trace_u ? mono_ns() : 0;
    int w = lws_write(wsi, (unsigned char *)msg_text(e.m), n, LWS_WRITE_TEXT);
    if (t_send && w >= (int)n)
        fprintf(s->trace, "%s %llu %lld\n", market_symbol(s->cfg.market, e.m->trace_sym)->symbol,
                (unsigned long long)e.m->trace_u, (long long)t_send);
    msg_unref(e.m);
    if (w < (int)n)
        return -1;
    s->stats.messages++;
    if (c->qlen)
        lws_callback_on_writable(wsi);
    return 0;
}

static int cb_stream(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct server *s = lws_context_user(lws_get_context(wsi));
    struct client *c = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        ws_established(s, wsi, c);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return ws_receive(s, wsi, c, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        ws_pong(s, c, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_writeable(s, wsi, c);
    case LWS_CALLBACK_CLOSED:
        ws_closed(s, c);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"http", cb_http, sizeof(struct http_sess), 0, 0, NULL, 0},
    {"binance-stream", cb_stream, sizeof(struct client), RX_MAX, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Upgrades that name no subprotocol (everyone's, Binance's) bind to the stream protocol. */
static const struct lws_protocol_vhost_options pvo_default = {NULL, NULL, "default", ""};
static const struct lws_protocol_vhost_options pvo = {NULL, &pvo_default, "binance-stream", ""};

/* ---- lifetime ---------------------------------------------------------- */

int server_new(const struct server_cfg *cfg, struct server **out)
{
    *out = NULL;
    if (!cfg || !cfg->host || (!cfg->market == !cfg->replay) || !cfg->streams ||
        cfg->queue_cap < 4 || cfg->max_streams < 1 || cfg->port < 0 || cfg->port > 65535)
        return AB_EINVAL;
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return AB_ENOMEM;
    s->cfg = *cfg;
    s->real0 = mono_ms();
    if (cfg->trace_file && cfg->market) {
        s->trace = fopen(cfg->trace_file, "w");
        s->trace_buf = malloc(TRACE_BUF);
        if (!s->trace || !s->trace_buf || setvbuf(s->trace, s->trace_buf, _IOFBF, TRACE_BUF)) {
            ab_log(AB_LOG_ERROR, "sim", "cannot open the trace file %s", cfg->trace_file);
            if (s->trace)
                fclose(s->trace);
            free(s->trace_buf);
            free(s);
            return AB_EIO;
        }
        s->trace_flushed = s->real0;
    } else if (cfg->trace_file) {
        ab_log(AB_LOG_WARN, "sim", "--trace-file traces the model only; ignored with --replay");
    }
    s->next_close = s->real0 + cfg->faults.close_every_ms;
    faults_init(&s->faults, &cfg->faults, cfg->seed);
    s->backend =
        (struct rest_backend){s, be_n_symbols, be_symbol, be_server_time, be_depth, be_klines};

    int levels = LLL_ERR | LLL_WARN | (cfg->lws_debug ? LLL_NOTICE | LLL_INFO : 0);
    lws_set_log_level(levels, ab_log_lws_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = cfg->port;
    info.iface = cfg->host;
    info.protocols = protocols;
    info.pvo = &pvo;
    info.user = s;
    info.max_http_header_data2 = 65536; /* /stream?streams= URLs with 1024 names */
    info.server_string = "abidance-sim";
    if (cfg->tls_cert && cfg->tls_key) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        server_free(s);
        return AB_EIO;
    }
    s->vh = lws_get_vhost_by_name(s->ctx, "default");
    s->port = s->vh ? lws_get_vhost_listen_port(s->vh) : -1;
    if (s->port <= 0) {
        server_free(s);
        return AB_EIO;
    }
    lws_sul_schedule(s->ctx, 0, &s->sul, tick, SERVER_TICK_MS * LWS_US_PER_MS);
    *out = s;
    return 0;
}

int server_port(const struct server *s)
{
    return s->port;
}

int server_run(struct server *s)
{
    while (!s->stop)
        if (lws_service(s->ctx, 0) < 0)
            break;
    return s->err;
}

void server_stop(struct server *s)
{
    s->stop = 1;
    if (s->ctx)
        lws_cancel_service(s->ctx);
}

void server_summary(const struct server *s, char *buf, size_t len)
{
    const struct faults_stats *f = &s->faults.stats;
    snprintf(buf, len,
             "connections=%llu dropped_overflow=%llu dropped_rate=%llu dropped_pong=%llu "
             "rest=%llu messages=%llu fault_closes=%llu gaps=%llu malformed=%llu "
             "out_of_range=%llu rest429=%llu rest418=%llu",
             (unsigned long long)s->stats.connections,
             (unsigned long long)s->stats.dropped_overflow,
             (unsigned long long)s->stats.dropped_rate, (unsigned long long)s->stats.dropped_pong,
             (unsigned long long)s->stats.rest_requests, (unsigned long long)s->stats.messages,
             (unsigned long long)f->closes, (unsigned long long)f->gaps,
             (unsigned long long)f->malformed, (unsigned long long)f->out_of_range,
             (unsigned long long)f->rest_429, (unsigned long long)f->rest_418);
}

void server_free(struct server *s)
{
    if (!s)
        return;
    if (s->ctx) {
        lws_sul_cancel(&s->sul);
        lws_context_destroy(s->ctx); /* closes every connection (CLOSED callbacks run) */
    }
    if (s->trace)
        fclose(s->trace); /* flushes what is left */
    free(s->trace_buf);
    free(s);
}

#include "ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "common/err.h"
#include "common/log.h"

#define TICK_US (250 * LWS_US_PER_MS)

enum conn_role { ROLE_ACTIVE, ROLE_PENDING, ROLE_RETIRED };

struct held_frame {
    char *buf;
    size_t len;
    int64_t recv_ns;
};

struct conn {
    struct ws *w;
    size_t slot;
    enum conn_role role;
    struct lws *wsi;
    bool open;       /* ESTABLISHED seen */
    bool closing;    /* we asked lws to close it */
    bool in_connect; /* inside lws_client_connect_via_info */
    bool failed_sync;
    int64_t opened_ms;         /* monotonic */
    int64_t last_rx_ms;        /* monotonic */
    int64_t first_rx_ms;       /* monotonic, 0 = nothing yet */
    size_t n_in_url, sub_next; /* streams subscribed through the URL / SUBSCRIBE so far */
    int64_t next_id;
    struct token_bucket tb;
    lws_sorted_usec_list_t sul_tx;
    char *rx; /* frame reassembly, grows up to WS_FRAME_MAX */
    size_t rx_len, rx_cap;
    bool rx_skip; /* current frame is being dropped */
    struct held_frame *held;
    size_t n_held, held_bytes;
    char url[PLAN_PATH_MAX + INGEST_URL_HOST_MAX + 32]; /* for the recorder */
};

struct slot {
    struct ws *w;
    size_t idx;
    struct conn *active, *pending;
    uint16_t attempts;         /* consecutive failed attempts of the active connection */
    uint16_t pending_attempts; /* same, for the rollover connection */
    bool ever_up;
    bool rollover_wanted;
    lws_sorted_usec_list_t sul_retry, sul_age, sul_roll;
};

struct ws {
    struct lws_context *cx;
    struct lws_vhost *vh;
    struct ws_settings s;
    struct metrics *m;
    struct recorder *rec;
    ws_frame_cb frame_cb;
    ws_event_cb event_cb;
    void *ud;
    struct slot *slots;
    size_t n_slots;
    bool stopping;
    lws_sorted_usec_list_t sul_tick;
    char host_hdr[INGEST_URL_HOST_MAX + 8];
};

/* No lws validity pings/hangups: the watchdog below decides liveness. */
static const lws_retry_bo_t ws_idle_policy = {
    .secs_since_valid_ping = 0,
    .secs_since_valid_hangup = 0,
};

static void connect_slot(struct slot *sl, enum conn_role role);
static void tick_cb(lws_sorted_usec_list_t *sul);
static void retry_cb(lws_sorted_usec_list_t *sul);
static void roll_cb(lws_sorted_usec_list_t *sul);

static uint32_t rnd32(struct ws *w)
{
    uint32_t r = 0;
    lws_get_random(w->cx, &r, sizeof(r));
    return r;
}

static void free_held(struct conn *c)
{
    for (size_t i = 0; i < c->n_held; i++)
        free(c->held[i].buf);
    free(c->held);
    c->held = NULL;
    c->n_held = c->held_bytes = 0;
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    lws_sul_cancel(&c->sul_tx);
    free_held(c);
    free(c->rx);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing || !c->wsi)
        return;
    c->closing = true;
    /* The WRITEABLE callback sends a close frame; the timeout is the backstop. */
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 3);
}

static void emit(struct ws *w, size_t slot, enum ws_event ev)
{
    if (w->m && slot < METRICS_CONNS_MAX)
        w->m->conn_state[slot] = ws_slot_state(w, slot);
    if (w->event_cb)
        w->event_cb(w->ud, slot, ev);
}

static void schedule_retry(struct slot *sl, bool pending)
{
    struct ws *w = sl->w;
    uint16_t *att = pending ? &sl->pending_attempts : &sl->attempts;
    uint32_t ms = policy_backoff_ms(w->s.policy->backoff_ms, w->s.policy->n_backoff,
                                    w->s.policy->jitter_pct, *att, rnd32(w));
    if (*att < UINT16_MAX)
        (*att)++;
    ab_log(AB_LOG_INFO, "ws", "%s in %u ms slot=%zu attempt=%u",
           pending ? "rollover retry" : "reconnect", ms, sl->idx, (unsigned)*att);
    if (pending)
        lws_sul_schedule(w->cx, 0, &sl->sul_roll, roll_cb, (lws_usec_t)ms * LWS_US_PER_MS);
    else
        lws_sul_schedule(w->cx, 0, &sl->sul_retry, retry_cb, (lws_usec_t)ms * LWS_US_PER_MS);
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct slot *sl = lws_container_of(sul, struct slot, sul_retry);
    if (sl->w->stopping || sl->active)
        return;
    connect_slot(sl, ROLE_ACTIVE);
}

static void roll_cb(lws_sorted_usec_list_t *sul)
{
    struct slot *sl = lws_container_of(sul, struct slot, sul_roll);
    if (sl->w->stopping || sl->pending || !sl->active || !sl->active->open)
        return;
    connect_slot(sl, ROLE_PENDING);
}

static void age_cb(lws_sorted_usec_list_t *sul)
{
    struct slot *sl = lws_container_of(sul, struct slot, sul_age);
    if (sl->w->stopping || sl->pending || !sl->active || !sl->active->open)
        return;
    ab_log(AB_LOG_INFO, "ws", "connection reached its maximum age, replacing it slot=%zu", sl->idx);
    sl->rollover_wanted = true;
    sl->pending_attempts = 0;
    connect_slot(sl, ROLE_PENDING);
}

static void connect_slot(struct slot *sl, enum conn_role role)
{
    struct ws *w = sl->w;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        schedule_retry(sl, role == ROLE_PENDING);
        return;
    }
    c->w = w;
    c->slot = sl->idx;
    c->role = role;
    char path[PLAN_PATH_MAX];
    if (plan_url_path(w->s.plan, sl->idx, w->s.url->prefix, w->s.url_streams_max, path,
                      sizeof(path), &c->n_in_url) < 0) {
        ab_log(AB_LOG_ERROR, "ws", "stream path too long slot=%zu", sl->idx);
        free(c);
        return;
    }
    c->sub_next = c->n_in_url;
    snprintf(c->url, sizeof(c->url), "%s://%s%s%s:%u%s", w->s.url->tls ? "wss" : "ws",
             strchr(w->s.url->host, ':') ? "[" : "", w->s.url->host,
             strchr(w->s.url->host, ':') ? "]" : "", (unsigned)w->s.url->port, path);
    if (role == ROLE_ACTIVE)
        sl->active = c;
    else
        sl->pending = c;

    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = w->cx;
    i.vhost = w->vh;
    i.address = w->s.url->host;
    i.port = w->s.url->port;
    i.path = path;
    i.host = w->host_hdr;
    i.origin = w->host_hdr;
    i.ssl_connection = (w->s.url->tls ? LCCSCF_USE_SSL : 0) | LCCSCF_PRIORITIZE_READS;
    i.protocol = NULL;
    i.local_protocol_name = ws_protocol.name;
    i.retry_and_idle_policy = &ws_idle_policy;
    i.opaque_user_data = c;
    i.userdata = c;
    i.pwsi = &c->wsi;
    c->in_connect = true;
    struct lws *wsi = lws_client_connect_via_info(&i);
    c->in_connect = false;
    if (role == ROLE_ACTIVE)
        emit(w, sl->idx, WS_EV_CONNECTING);
    if (!wsi || c->failed_sync) {
        if (w->m)
            w->m->ws_connect_failures++;
        ab_log(AB_LOG_WARN, "ws", "connect failed at once slot=%zu host=%s", sl->idx,
               w->s.url->host);
        if (sl->active == c)
            sl->active = NULL;
        if (sl->pending == c)
            sl->pending = NULL;
        conn_free(c);
        schedule_retry(sl, role == ROLE_PENDING);
        return;
    }
}

/* Makes the pending connection the active one: replays its held frames. */
static void switch_over(struct slot *sl)
{
    struct ws *w = sl->w;
    struct conn *nc = sl->pending, *old = sl->active;
    sl->pending = NULL;
    sl->active = nc;
    nc->role = ROLE_ACTIVE;
    sl->rollover_wanted = false;
    if (old) {
        old->role = ROLE_RETIRED;
        conn_close(old);
    }
    ab_log(AB_LOG_INFO, "ws", "switched to the replacement connection slot=%zu replayed=%zu",
           sl->idx, nc->n_held);
    /* Replay; the consumer may call back into us (ws_rollover_now), which
     * only schedules work, so holding the array locally is safe. */
    struct held_frame *held = nc->held;
    size_t n = nc->n_held;
    nc->held = NULL;
    nc->n_held = nc->held_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (w->frame_cb && !w->stopping)
            w->frame_cb(w->ud, sl->idx, held[i].buf, held[i].len, held[i].recv_ns);
        free(held[i].buf);
    }
    free(held);
    if (w->m)
        w->m->ws_rollovers++;
    lws_sul_schedule(w->cx, 0, &sl->sul_age, age_cb, (lws_usec_t)w->s.max_age_ms * LWS_US_PER_MS);
    emit(w, sl->idx, WS_EV_SWITCHED);
}

static void maybe_switch(struct slot *sl, int64_t now)
{
    struct conn *p = sl->pending;
    if (!p || !p->open)
        return;
    bool settled = p->first_rx_ms && now - p->first_rx_ms >= WS_SETTLE_MS;
    bool timed_out = now - p->opened_ms >= sl->w->s.switch_timeout_ms;
    if (settled || timed_out || !sl->active)
        switch_over(sl);
}

static void hold_frame(struct conn *c, const char *buf, size_t len, int64_t recv_ns)
{
    struct ws *w = c->w;
    if (c->n_held >= WS_HOLD_FRAMES || c->held_bytes + len > WS_HOLD_BYTES) {
        /* Hold buffer full: switch now rather than drop anything. */
        if (w->m)
            w->m->ws_overflow++;
        switch_over(&w->slots[c->slot]);
        if (w->frame_cb)
            w->frame_cb(w->ud, c->slot, buf, len, recv_ns);
        return;
    }
    if (!c->held || (c->n_held & (c->n_held - 1)) == 0) {
        size_t cap = c->n_held ? c->n_held * 2 : 64;
        struct held_frame *h = realloc(c->held, cap * sizeof(*h));
        if (!h)
            goto fail;
        c->held = h;
    }
    char *copy = malloc(len ? len : 1);
    if (!copy)
        goto fail;
    memcpy(copy, buf, len);
    c->held[c->n_held++] = (struct held_frame){copy, len, recv_ns};
    c->held_bytes += len;
    return;
fail:
    if (w->m)
        w->m->ws_overflow++;
    switch_over(&w->slots[c->slot]);
    if (w->frame_cb)
        w->frame_cb(w->ud, c->slot, buf, len, recv_ns);
}

static void on_frame(struct conn *c, const char *buf, size_t len)
{
    struct ws *w = c->w;
    int64_t now_ns = clock_wall_ns();
    recorder_ws(w->rec, now_ns, buf, len);
    if (c->role == ROLE_ACTIVE) {
        if (w->frame_cb)
            w->frame_cb(w->ud, c->slot, buf, len, now_ns);
    } else if (c->role == ROLE_PENDING) {
        hold_frame(c, buf, len, now_ns);
        if (c->role == ROLE_PENDING)
            maybe_switch(&w->slots[c->slot], clock_mono_ms());
    }
    /* ROLE_RETIRED: superseded; its frames are covered by the new connection. */
}

static int on_receive(struct conn *c, const char *in, size_t len)
{
    struct ws *w = c->w;
    struct lws *wsi = c->wsi;
    int64_t now = clock_mono_ms();
    c->last_rx_ms = now;
    if (!c->first_rx_ms)
        c->first_rx_ms = now;
    if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_skip = false;
    }
    if (lws_frame_is_binary(wsi)) {
        c->rx_skip = true;
    } else if (!c->rx_skip) {
        if (c->rx_len + len > WS_FRAME_MAX) {
            c->rx_skip = true;
            if (w->m)
                w->m->invalid[MET_INV_TOO_LARGE]++;
        } else {
            if (c->rx_len + len > c->rx_cap) {
                size_t cap = c->rx_cap ? c->rx_cap : 16384;
                while (cap < c->rx_len + len)
                    cap *= 2;
                if (cap > WS_FRAME_MAX)
                    cap = WS_FRAME_MAX;
                char *p = realloc(c->rx, cap);
                if (!p)
                    return -1;
                c->rx = p;
                c->rx_cap = cap;
            }
            memcpy(c->rx + c->rx_len, in, len);
            c->rx_len += len;
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return 0;
    if (lws_frame_is_binary(wsi)) {
        if (w->m)
            w->m->invalid[MET_INV_BINARY]++;
        return 0;
    }
    if (c->rx_skip)
        return 0;
    size_t n = c->rx_len;
    c->rx_len = 0;
    on_frame(c, c->rx ? c->rx : "", n);
    return 0;
}

static void tx_cb(lws_sorted_usec_list_t *sul)
{
    struct conn *c = lws_container_of(sul, struct conn, sul_tx);
    if (c->wsi && !c->closing)
        lws_callback_on_writable(c->wsi);
}

static int on_writeable(struct conn *c)
{
    struct ws *w = c->w;
    if (c->closing) {
        static const unsigned char bye[] = "rollover";
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)bye, sizeof(bye) - 1);
        return -1;
    }
    const struct plan_conn *pc = &w->s.plan->conns[c->slot];
    if (c->sub_next >= pc->n_streams)
        return 0;
    int64_t now = clock_mono_ms();
    if (!token_bucket_take(&c->tb, now)) {
        int64_t wait = token_bucket_wait_ms(&c->tb, now);
        lws_sul_schedule(w->cx, 0, &c->sul_tx, tx_cb, (lws_usec_t)(wait + 1) * LWS_US_PER_MS);
        return 0;
    }
    static unsigned char buf[LWS_PRE + PLAN_SUBSCRIBE_MAX * PLAN_STREAM_NAME_MAX + 128];
    size_t taken = 0;
    int n = plan_subscribe_msg(w->s.plan, c->slot, c->sub_next, PLAN_SUBSCRIBE_MAX, ++c->next_id,
                               (char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE, &taken);
    if (n < 0)
        return -1;
    if (lws_write(c->wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n)
        return -1;
    c->sub_next += taken;
    if (w->m)
        w->m->ws_control_sent++;
    ab_log(AB_LOG_INFO, "ws", "SUBSCRIBE sent slot=%zu streams=%zu id=%lld", c->slot, taken,
           (long long)c->next_id);
    if (c->sub_next < pc->n_streams)
        lws_callback_on_writable(c->wsi);
    return 0;
}

static void on_established(struct conn *c)
{
    struct ws *w = c->w;
    struct slot *sl = &w->slots[c->slot];
    int64_t now = clock_mono_ms();
    c->open = true;
    c->opened_ms = now;
    c->last_rx_ms = now;
    token_bucket_init(&c->tb, w->s.policy->control_per_s, w->s.policy->control_burst, now);
    recorder_connect(w->rec, c->url, clock_wall_ns());
    if (w->m)
        w->m->ws_connects++;
    if (c->sub_next < w->s.plan->conns[c->slot].n_streams)
        lws_callback_on_writable(c->wsi);
    ab_log(AB_LOG_INFO, "ws", "connected slot=%zu role=%s streams=%zu", c->slot,
           c->role == ROLE_ACTIVE ? "active" : "replacement", w->s.plan->conns[c->slot].n_streams);
    if (c->role == ROLE_ACTIVE) {
        if (sl->ever_up && w->m)
            w->m->ws_reconnects++;
        sl->ever_up = true;
        lws_sul_schedule(w->cx, 0, &sl->sul_age, age_cb,
                         (lws_usec_t)w->s.max_age_ms * LWS_US_PER_MS);
        emit(w, c->slot, WS_EV_UP);
    }
}

/* The connection is gone (closed or failed); c is freed by the caller. */
static void on_gone(struct conn *c, bool failed)
{
    struct ws *w = c->w;
    struct slot *sl = &w->slots[c->slot];
    if (failed && w->m)
        w->m->ws_connect_failures++;
    if (sl->active == c) {
        sl->active = NULL;
        if (w->stopping)
            return;
        if (c->open && clock_mono_ms() - c->opened_ms >= w->s.policy->stable_after_ms)
            sl->attempts = 0;
        lws_sul_cancel(&sl->sul_age);
        if (sl->pending && sl->pending->open) {
            ab_log(AB_LOG_WARN, "ws",
                   "connection lost during rollover, taking the replacement "
                   "slot=%zu",
                   sl->idx);
            switch_over(sl);
            return;
        }
        if (sl->pending) {
            /* Still connecting: let it become the active connection. */
            sl->active = sl->pending;
            sl->pending = NULL;
            sl->active->role = ROLE_ACTIVE;
            emit(w, sl->idx, WS_EV_DOWN);
            return;
        }
        ab_log(AB_LOG_WARN, "ws", "connection %s slot=%zu", failed ? "failed" : "lost", sl->idx);
        emit(w, sl->idx, WS_EV_DOWN);
        schedule_retry(sl, false);
    } else if (sl->pending == c) {
        sl->pending = NULL;
        if (!w->stopping && sl->rollover_wanted)
            schedule_retry(sl, true);
    }
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct conn *c = (struct conn *)lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (!c)
            return 0;
        ab_log(AB_LOG_WARN, "ws", "connection error slot=%zu why=\"%s\"", c->slot,
               in ? (const char *)in : "unknown");
        if (c->in_connect) {
            c->failed_sync = true;
            return 0;
        }
        c->wsi = NULL;
        lws_set_opaque_user_data(wsi, NULL);
        on_gone(c, true);
        conn_free(c);
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        /* Closed during the upgrade (we stopped before the server answered):
         * neither CONNECTION_ERROR nor CLIENT_CLOSED comes, so free it here. */
        if (!c || c->wsi != wsi)
            return 0;
        c->wsi = NULL;
        lws_set_opaque_user_data(wsi, NULL);
        on_gone(c, true);
        conn_free(c);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c)
            on_established(c);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return c ? on_receive(c, (const char *)in, len) : 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return c ? on_writeable(c) : 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!c)
            return 0;
        c->wsi = NULL;
        lws_set_opaque_user_data(wsi, NULL);
        on_gone(c, false);
        conn_free(c);
        return 0;
    default:
        break;
    }
    return 0;
}

const struct lws_protocols ws_protocol = {
    .name = "abidance-ingest-ws",
    .callback = ws_callback,
    .per_session_data_size = 0,
    .rx_buffer_size = 65536,
};

static void watchdog(struct ws *w, int64_t now)
{
    for (size_t i = 0; i < w->n_slots; i++) {
        struct slot *sl = &w->slots[i];
        struct conn *cs[2] = {sl->active, sl->pending};
        for (int k = 0; k < 2; k++) {
            struct conn *c = cs[k];
            if (!c || !c->open || c->closing)
                continue;
            if (now - c->last_rx_ms > w->s.silence_ms) {
                ab_log(AB_LOG_WARN, "ws", "no data for %lld ms, reconnecting slot=%zu",
                       (long long)(now - c->last_rx_ms), i);
                if (w->m)
                    w->m->ws_silence_timeouts++;
                conn_close(c);
            }
        }
        maybe_switch(sl, now);
        if (w->m && i < METRICS_CONNS_MAX) {
            w->m->conn_state[i] = ws_slot_state(w, i);
            w->m->conn_age_ms[i] = sl->active && sl->active->open ? now - sl->active->opened_ms : 0;
        }
    }
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct ws *w = lws_container_of(sul, struct ws, sul_tick);
    if (w->stopping)
        return;
    watchdog(w, clock_mono_ms());
    lws_sul_schedule(w->cx, 0, &w->sul_tick, tick_cb, TICK_US);
}

int ws_new(struct lws_context *cx, struct lws_vhost *vh, const struct ws_settings *s,
           struct metrics *m, struct recorder *rec, ws_frame_cb frame_cb, ws_event_cb event_cb,
           void *ud, struct ws **out)
{
    *out = NULL;
    struct ws *w = calloc(1, sizeof(*w));
    if (!w)
        return AB_ENOMEM;
    w->slots = calloc(s->plan->n_conns, sizeof(*w->slots));
    if (!w->slots) {
        free(w);
        return AB_ENOMEM;
    }
    w->cx = cx;
    w->vh = vh;
    w->s = *s;
    w->m = m;
    w->rec = rec;
    w->frame_cb = frame_cb;
    w->event_cb = event_cb;
    w->ud = ud;
    w->n_slots = s->plan->n_conns;
    for (size_t i = 0; i < w->n_slots; i++) {
        w->slots[i].w = w;
        w->slots[i].idx = i;
    }
    bool default_port = s->url->port == (s->url->tls ? 443 : 80);
    bool v6 = strchr(s->url->host, ':') != NULL;
    if (default_port)
        snprintf(w->host_hdr, sizeof(w->host_hdr), "%s%s%s", v6 ? "[" : "", s->url->host,
                 v6 ? "]" : "");
    else
        snprintf(w->host_hdr, sizeof(w->host_hdr), "%s%s%s:%u", v6 ? "[" : "", s->url->host,
                 v6 ? "]" : "", (unsigned)s->url->port);
    if (m)
        m->n_conns = w->n_slots < METRICS_CONNS_MAX ? w->n_slots : METRICS_CONNS_MAX;
    *out = w;
    return 0;
}

void ws_start(struct ws *w)
{
    for (size_t i = 0; i < w->n_slots; i++)
        connect_slot(&w->slots[i], ROLE_ACTIVE);
    lws_sul_schedule(w->cx, 0, &w->sul_tick, tick_cb, TICK_US);
}

void ws_rollover_now(struct ws *w, size_t slot)
{
    if (slot >= w->n_slots || w->stopping)
        return;
    struct slot *sl = &w->slots[slot];
    if (sl->pending || !sl->active || !sl->active->open)
        return;
    sl->rollover_wanted = true;
    sl->pending_attempts = 0;
    lws_sul_cancel(&sl->sul_age);
    /* Not from inside the frame callback chain: on the next loop turn. */
    lws_sul_schedule(w->cx, 0, &sl->sul_roll, roll_cb, 1);
}

void ws_stop(struct ws *w)
{
    if (!w)
        return;
    w->stopping = true;
    lws_sul_cancel(&w->sul_tick);
    for (size_t i = 0; i < w->n_slots; i++) {
        struct slot *sl = &w->slots[i];
        lws_sul_cancel(&sl->sul_retry);
        lws_sul_cancel(&sl->sul_age);
        lws_sul_cancel(&sl->sul_roll);
        if (sl->active)
            conn_close(sl->active);
        if (sl->pending)
            conn_close(sl->pending);
    }
}

void ws_free(struct ws *w)
{
    if (!w)
        return;
    free(w->slots);
    free(w);
}

size_t ws_slot_count(const struct ws *w)
{
    return w->n_slots;
}

enum pub_conn_state ws_slot_state(const struct ws *w, size_t slot)
{
    if (slot >= w->n_slots)
        return PUB_CONN_DISCONNECTED;
    const struct slot *sl = &w->slots[slot];
    if (sl->active && sl->active->open)
        return PUB_CONN_CONNECTED;
    if (sl->active)
        return PUB_CONN_CONNECTING;
    return PUB_CONN_DISCONNECTED;
}

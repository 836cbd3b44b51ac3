#include "rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "common/err.h"
#include "common/log.h"

#define TICK_US (200 * LWS_US_PER_MS)
/* While the weight budget is nearly used, a GET /api/v3/ping (weight 1)
 * this often reads X-MBX-USED-WEIGHT-1M to see when the window reset. It
 * works whatever the exchange clock does (the simulator's runs fast). */
#define WEIGHT_PROBE_MS 1000

enum req_state {
    REQ_QUEUED,   /* in the queue */
    REQ_FLIGHT,   /* a connection is working on it */
    REQ_REQUEUE,  /* attempt over, goes back to the queue when the wsi closes */
    REQ_FINISHED, /* callback called; freed when the wsi closes */
};

struct req {
    struct rest *r;
    struct req *next; /* queue link */
    char path[REST_PATH_MAX];
    int weight;
    rest_done_cb cb;
    void *ud;
    enum req_state state;
    unsigned attempts;
    int64_t not_before; /* monotonic */
    int64_t started;    /* monotonic */
    struct lws *wsi;
    bool in_connect, failed_sync, counted, completed, killed;
    int status;
    char *body;
    size_t len, cap;
    bool too_large;
    bool probe; /* internal weight probe: no callback, no retries */
};

struct rest {
    struct lws_context *cx;
    struct lws_vhost *vh;
    struct rest_settings s;
    struct metrics *m;
    struct recorder *rec;
    struct req *head, *tail; /* queue */
    size_t n_total;          /* queued + in flight + closing */
    size_t in_flight;
    struct req **flight;   /* parallel slots */
    int64_t blocked_until; /* monotonic ms: Retry-After */
    bool slow;             /* weight budget nearly used: only probes go out */
    int64_t next_probe;    /* monotonic ms of the next /api/v3/ping probe */
    bool probe_out;        /* a probe is in flight */
    int64_t used_weight;   /* last header value (+ weight sent since) */
    bool stopping;
    lws_sorted_usec_list_t sul_pump, sul_tick;
    struct req *probe_req; /* the probe in flight (no callback) */
    char host_hdr[INGEST_URL_HOST_MAX + 8];
    char base[INGEST_URL_HOST_MAX + 32];
};

static void pump(struct rest *r);

static void pump_cb(lws_sorted_usec_list_t *sul)
{
    struct rest *r = lws_container_of(sul, struct rest, sul_pump);
    pump(r);
}

static void kick(struct rest *r, int64_t delay_ms)
{
    if (r->stopping)
        return;
    lws_sul_schedule(r->cx, 0, &r->sul_pump, pump_cb,
                     delay_ms > 0 ? (lws_usec_t)delay_ms * LWS_US_PER_MS : 1);
}

static void enqueue_front(struct rest *r, struct req *q)
{
    q->state = REQ_QUEUED;
    q->next = r->head;
    r->head = q;
    if (!r->tail)
        r->tail = q;
}

static void enqueue_back(struct rest *r, struct req *q)
{
    q->state = REQ_QUEUED;
    q->next = NULL;
    if (r->tail)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
}

static void req_free(struct req *q)
{
    if (!q)
        return;
    free(q->body);
    free(q);
}

static void flight_del(struct rest *r, struct req *q)
{
    if (!q->counted)
        return;
    q->counted = false;
    r->in_flight--;
    for (int64_t i = 0; i < r->s.parallel; i++)
        if (r->flight[i] == q)
            r->flight[i] = NULL;
}

static void deliver(struct req *q, int err)
{
    struct rest *r = q->r;
    q->state = REQ_FINISHED;
    if (!q->cb)
        return;
    if (r->stopping)
        err = AB_ESTATE; /* cancelled: the callback only releases its context */
    struct rest_result res = {
        .status = q->status,
        .err = err,
        .body = q->body ? q->body : "",
        .len = q->body ? q->len : 0,
        .recv_ns = clock_wall_ns(),
        .sent_mono_ms = q->started,
        .path = q->path,
    };
    q->cb(q->ud, &res);
}

/* An attempt failed without a usable answer: retry later or give up. */
static void attempt_failed(struct req *q, const char *why)
{
    struct rest *r = q->r;
    const struct ingest_policy *p = r->s.policy;
    q->attempts++;
    if (q->probe) {
        deliver(q, AB_EIO);
        return;
    }
    if (q->attempts >= p->rest_max_attempts) {
        if (r->m)
            r->m->rest_given_up++;
        ab_log(AB_LOG_WARN, "rest", "giving up path=\"%s\" attempts=%u why=\"%s\"", q->path,
               q->attempts, why);
        deliver(q, AB_EIO);
        return;
    }
    if (r->m)
        r->m->rest_retries++;
    uint32_t delay =
        policy_backoff_ms(p->rest_retry_ms, p->n_rest_retry, p->jitter_pct, q->attempts - 1, 0);
    q->not_before = clock_mono_ms() + delay;
    q->state = REQ_REQUEUE;
    ab_log(AB_LOG_INFO, "rest", "retrying in %u ms path=\"%s\" why=\"%s\"", delay, q->path, why);
}

static int64_t header_int(struct lws *wsi, const char *custom, int token, bool *found)
{
    char v[64];
    int n;
    *found = false;
    if (custom) {
        int nlen = (int)strlen(custom);
        if (lws_hdr_custom_length(wsi, custom, nlen) <= 0)
            return 0;
        n = lws_hdr_custom_copy(wsi, v, sizeof(v), custom, nlen);
    } else {
        n = lws_hdr_copy(wsi, v, sizeof(v), (enum lws_token_indexes)token);
    }
    if (n <= 0)
        return 0;
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    if (end == v || x < 0)
        return 0;
    *found = true;
    return (int64_t)x;
}

static void on_headers(struct req *q, struct lws *wsi)
{
    struct rest *r = q->r;
    q->status = (int)lws_http_client_http_response(wsi);
    bool found = false;
    int64_t used = header_int(wsi, "x-mbx-used-weight-1m:", 0, &found);
    if (!found)
        used = header_int(wsi, "X-MBX-USED-WEIGHT-1M:", 0, &found);
    if (found) {
        r->used_weight = used;
        if (r->m)
            r->m->rest_used_weight = used;
        bool high = used * 100 >= r->s.weight_limit * (int64_t)r->s.policy->weight_slow_pct;
        if (high && !r->slow) {
            r->slow = true;
            r->next_probe = clock_mono_ms() + WEIGHT_PROBE_MS;
            ab_log(AB_LOG_WARN, "rest",
                   "request weight %lld of %lld used: holding requests until the window resets",
                   (long long)used, (long long)r->s.weight_limit);
        } else if (!high && r->slow) {
            r->slow = false;
            ab_log(AB_LOG_INFO, "rest", "request weight back to %lld: resuming", (long long)used);
        }
    } else {
        /* No header (not Binance?): nothing to go by, so do not hold back. */
        r->used_weight = 0;
        r->slow = false;
    }
    if (q->status == 429 || q->status == 418) {
        int64_t ra = header_int(wsi, NULL, WSI_TOKEN_HTTP_RETRY_AFTER, &found);
        if (!found || ra <= 0)
            ra = q->status == 418 ? 120 : 10;
        if (ra > 3 * 24 * 3600)
            ra = 3 * 24 * 3600;
        int64_t until = clock_mono_ms() + ra * 1000;
        if (until > r->blocked_until)
            r->blocked_until = until;
        if (r->m) {
            if (q->status == 429)
                r->m->rest_429++;
            else
                r->m->rest_418++;
        }
        ab_log(AB_LOG_WARN, "rest", "HTTP %d: all REST traffic paused retry_after_s=%lld",
               q->status, (long long)ra);
    }
}

static void on_completed(struct req *q)
{
    struct rest *r = q->r;
    q->completed = true;
    flight_del(r, q);
    if (r->rec) {
        char url[sizeof(r->base) + REST_PATH_MAX];
        snprintf(url, sizeof(url), "%s%s", r->base, q->path);
        recorder_http(r->rec, url, clock_wall_ns(), q->body ? q->body : "", q->len);
    }
    if (q->too_large) {
        if (r->m)
            r->m->invalid[MET_INV_TOO_LARGE]++;
        deliver(q, AB_ERANGE);
    } else if (q->status == 429 || q->status == 418) {
        /* Not an attempt of its own: wait at the head of the queue. */
        q->state = REQ_REQUEUE;
        q->not_before = 0;
    } else if (q->status >= 500) {
        if (r->m)
            r->m->rest_5xx++;
        attempt_failed(q, "server error");
    } else {
        if (q->status >= 400 && r->m)
            r->m->rest_4xx++;
        deliver(q, 0);
    }
    kick(r, 0);
}

/* The wsi is gone: settle the request. */
static void on_closed(struct req *q, const char *why)
{
    struct rest *r = q->r;
    q->wsi = NULL;
    flight_del(r, q);
    if (q->state == REQ_FLIGHT) {
        if (r->m)
            r->m->rest_failures++;
        attempt_failed(q, why);
    }
    if (r->stopping && q->state != REQ_FINISHED) {
        /* Closed by the shutdown before its answer (or while it waited for
         * a retry): the callback still owns a context to release. */
        deliver(q, AB_ESTATE);
    }
    if (q->state == REQ_REQUEUE && !r->stopping) {
        free(q->body);
        q->body = NULL;
        q->len = q->cap = 0;
        q->completed = q->too_large = q->killed = false;
        q->status = 0;
        if (q->not_before == 0)
            enqueue_front(r, q);
        else
            enqueue_back(r, q);
        kick(r, 0);
        return;
    }
    if (q->probe) {
        r->probe_out = false;
        r->next_probe = clock_mono_ms() + WEIGHT_PROBE_MS;
    }
    r->n_total--;
    req_free(q);
    kick(r, 0);
}

/* Starts q. Returns 0 when it is in flight, -1 when it failed at once (q was
 * then requeued or freed). */
static int start(struct rest *r, struct req *q)
{
    q->state = REQ_FLIGHT;
    q->started = clock_mono_ms();
    q->counted = true;
    r->in_flight++;
    for (int64_t i = 0; i < r->s.parallel; i++) {
        if (!r->flight[i]) {
            r->flight[i] = q;
            break;
        }
    }
    r->used_weight += q->weight;
    if (r->m)
        r->m->rest_requests++;

    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = r->cx;
    i.vhost = r->vh;
    i.address = r->s.url->host;
    i.port = r->s.url->port;
    i.path = q->path;
    i.host = r->host_hdr;
    i.origin = r->host_hdr;
    i.method = "GET";
    i.alpn = "http/1.1";
    i.ssl_connection = (r->s.url->tls ? LCCSCF_USE_SSL : 0) | LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    i.protocol = rest_protocol.name;
    i.local_protocol_name = rest_protocol.name;
    i.opaque_user_data = q;
    i.userdata = q;
    i.pwsi = &q->wsi;
    q->in_connect = true;
    struct lws *wsi = lws_client_connect_via_info(&i);
    q->in_connect = false;
    if (!wsi || q->failed_sync) {
        q->wsi = NULL;
        if (r->m)
            r->m->rest_failures++;
        flight_del(r, q);
        attempt_failed(q, "connect failed");
        if (q->state == REQ_REQUEUE) {
            enqueue_back(r, q);
        } else {
            if (q->probe)
                r->probe_out = false;
            r->n_total--;
            req_free(q);
        }
        return -1;
    }
    return 0;
}

static void send_probe(struct rest *r)
{
    struct req *q = calloc(1, sizeof(*q));
    if (!q)
        return;
    q->r = r;
    q->probe = true;
    q->weight = 1;
    snprintf(q->path, sizeof(q->path), "%s/api/v3/ping", r->s.url->prefix);
    r->n_total++;
    r->probe_out = true;
    if (start(r, q) < 0)
        r->next_probe = clock_mono_ms() + WEIGHT_PROBE_MS;
}

static void pump(struct rest *r)
{
    if (r->stopping)
        return;
    int64_t now = clock_mono_ms();
    if (r->m)
        r->m->rest_blocked_ms = r->blocked_until > now ? r->blocked_until - now : 0;
    if (now < r->blocked_until) {
        kick(r, r->blocked_until - now);
        return;
    }
    if (r->slow) {
        if (!r->probe_out && now >= r->next_probe)
            send_probe(r);
        kick(r, r->next_probe > now ? r->next_probe - now : WEIGHT_PROBE_MS);
        return;
    }
    int64_t next_wait = -1;
    struct req *prev = NULL, *q = r->head;
    while (q && r->in_flight < (size_t)r->s.parallel) {
        struct req *next = q->next;
        if (q->not_before > now) {
            int64_t w = q->not_before - now;
            if (next_wait < 0 || w < next_wait)
                next_wait = w;
            prev = q;
            q = next;
            continue;
        }
        if (r->used_weight + q->weight >
            r->s.weight_limit * (int64_t)r->s.policy->weight_slow_pct / 100) {
            /* Sending it would cross the slow-down mark: probe first. */
            r->slow = true;
            r->next_probe = now;
            kick(r, 0);
            return;
        }
        /* Unlink and start. */
        if (prev)
            prev->next = next;
        else
            r->head = next;
        if (r->tail == q)
            r->tail = prev;
        q->next = NULL;
        /* After a synchronous failure stop this pass (the kick resumes). */
        if (start(r, q) < 0 || now < r->blocked_until)
            break;
        q = next;
    }
    if (next_wait >= 0)
        kick(r, next_wait);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct rest *r = lws_container_of(sul, struct rest, sul_tick);
    if (r->stopping)
        return;
    int64_t now = clock_mono_ms();
    for (int64_t i = 0; i < r->s.parallel; i++) {
        struct req *q = r->flight[i];
        if (q && q->wsi && !q->killed && now - q->started > r->s.policy->rest_timeout_ms) {
            q->killed = true;
            ab_log(AB_LOG_WARN, "rest", "request timed out path=\"%s\"", q->path);
            lws_set_timeout(q->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
    if (r->m)
        r->m->rest_blocked_ms = r->blocked_until > now ? r->blocked_until - now : 0;
    lws_sul_schedule(r->cx, 0, &r->sul_tick, tick_cb, TICK_US);
}

static int append_body(struct req *q, const char *in, size_t len)
{
    if (q->too_large)
        return 0;
    if (q->len + len > REST_BODY_MAX) {
        q->too_large = true;
        return 0;
    }
    if (q->len + len + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 16384;
        while (cap < q->len + len + 1)
            cap *= 2;
        char *p = realloc(q->body, cap);
        if (!p)
            return -1;
        q->body = p;
        q->cap = cap;
    }
    memcpy(q->body + q->len, in, len);
    q->len += len;
    q->body[q->len] = '\0';
    return 0;
}

static int rest_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct req *q = (struct req *)lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (!q)
            return 0;
        if (q->in_connect) {
            q->failed_sync = true;
            return 0;
        }
        ab_log(AB_LOG_WARN, "rest", "connection error path=\"%s\" why=\"%s\"", q->path,
               in ? (const char *)in : "unknown");
        on_closed(q, in ? (const char *)in : "connection error");
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!q || !q->r->s.api_key || !q->r->s.api_key[0])
            return 0;
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        const char *key = q->r->s.api_key;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"X-MBX-APIKEY:",
                                        (const unsigned char *)key, (int)strlen(key), p, end))
            return -1;
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (q)
            on_headers(q, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return q ? append_body(q, (const char *)in, len) : 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 8192];
        char *px = buf + LWS_PRE;
        int lenx = (int)(sizeof(buf) - LWS_PRE);
        if (lws_http_client_read(wsi, &px, &lenx) < 0)
            return -1;
        return 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (q && !q->completed)
            on_completed(q);
        return 0;
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (q)
            on_closed(q, "connection closed before the answer ended");
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols rest_protocol = {
    .name = "abidance-ingest-rest",
    .callback = rest_callback,
    .per_session_data_size = 0,
    .rx_buffer_size = 0,
};

int rest_new(struct lws_context *cx, struct lws_vhost *vh, const struct rest_settings *s,
             struct metrics *m, struct recorder *rec, struct rest **out)
{
    *out = NULL;
    struct rest *r = calloc(1, sizeof(*r));
    if (!r)
        return AB_ENOMEM;
    r->flight = calloc((size_t)s->parallel, sizeof(*r->flight));
    if (!r->flight) {
        free(r);
        return AB_ENOMEM;
    }
    r->cx = cx;
    r->vh = vh;
    r->s = *s;
    r->m = m;
    r->rec = rec;
    bool default_port = s->url->port == (s->url->tls ? 443 : 80);
    bool v6 = strchr(s->url->host, ':') != NULL;
    snprintf(r->host_hdr, sizeof(r->host_hdr), "%s%s%s", v6 ? "[" : "", s->url->host,
             v6 ? "]" : "");
    if (!default_port) {
        size_t n = strlen(r->host_hdr);
        snprintf(r->host_hdr + n, sizeof(r->host_hdr) - n, ":%u", (unsigned)s->url->port);
    }
    snprintf(r->base, sizeof(r->base), "%s://%s", s->url->tls ? "https" : "http", r->host_hdr);
    lws_sul_schedule(cx, 0, &r->sul_tick, tick_cb, TICK_US);
    *out = r;
    return 0;
}

int rest_get(struct rest *r, const char *path, int weight, rest_done_cb cb, void *ud)
{
    if (!path || path[0] != '/' || strlen(path) >= REST_PATH_MAX)
        return AB_EINVAL;
    /* The URL's own prefix plus the path must fit: never send a cut path. */
    size_t plen = strlen(r->s.url->prefix);
    size_t len = strlen(path);
    if (plen + len >= REST_PATH_MAX)
        return AB_EINVAL;
    if (r->stopping || r->n_total >= REST_QUEUE_MAX)
        return AB_ENOMEM;
    struct req *q = calloc(1, sizeof(*q));
    if (!q)
        return AB_ENOMEM;
    q->r = r;
    memcpy(q->path, r->s.url->prefix, plen);
    memcpy(q->path + plen, path, len + 1);
    q->weight = weight;
    q->cb = cb;
    q->ud = ud;
    enqueue_back(r, q);
    r->n_total++;
    kick(r, 0);
    return 0;
}

size_t rest_pending(const struct rest *r)
{
    return r->n_total;
}

void rest_stop(struct rest *r)
{
    if (!r)
        return;
    r->stopping = true;
    lws_sul_cancel(&r->sul_pump);
    lws_sul_cancel(&r->sul_tick);
    struct req *q = r->head;
    r->head = r->tail = NULL;
    while (q) {
        struct req *next = q->next;
        deliver(q, AB_ESTATE);
        r->n_total--;
        req_free(q);
        q = next;
    }
    /* In-flight requests are closed by lws_context_destroy; their CLOSED
     * callbacks report AB_ESTATE (stopping) and free them. */
}

void rest_free(struct rest *r)
{
    if (!r)
        return;
    free(r->flight);
    free(r);
}

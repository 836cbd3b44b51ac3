#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "common/err.h"
#include "common/log.h"
#include "metrics.h"
#include "params.h"
#include "reply.h"

/* Query parameters each route accepts (indicators check their own). */
static const char *const candle_params[] = {"symbol", "interval",  "start",   "end", "limit",
                                            "clean",  "normalize", "columns", NULL};
static const char *const book_params[] = {"symbol", "depth", NULL};
static const char *const no_params[] = {NULL};

enum route_access {
    ROUTE_TOKEN,   /* needs the API token when one is set */
    ROUTE_OPEN,    /* never needs it (probes) */
    ROUTE_METRICS, /* needs it unless metrics_open */
};

struct route {
    const char *path;   /* as documented in api/openapi.yaml */
    const char *prefix; /* when set, matches any path starting with it */
    api_handler_cb handler;
    const char *const *params; /* accepted query parameters; NULL: the handler checks */
    enum route_access access;
};

#define ALLOW "GET, HEAD"

#define STR2(x)               #x
#define STR(x)                STR2(x)
#define HTTP_RETRY_AFTER_TEXT STR(HTTP_RETRY_AFTER)

static const struct route routes[] = {
    {"/v1/candles", NULL, api_candles, candle_params, ROUTE_TOKEN},
    {"/v1/indicators/{name}", "/v1/indicators/", api_indicators, NULL, ROUTE_TOKEN},
    {"/v1/book", NULL, api_book, book_params, ROUTE_TOKEN},
    {"/v1/symbols", NULL, api_symbols, no_params, ROUTE_TOKEN},
    {"/healthz", NULL, api_healthz, no_params, ROUTE_OPEN},
    {"/readyz", NULL, api_readyz, no_params, ROUTE_OPEN},
    {"/metrics", NULL, api_metrics, no_params, ROUTE_METRICS},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Metric labels are the documented paths. */
static const char *const route_labels[N_ROUTES] = {
    "/v1/candles", "/v1/indicators/{name}", "/v1/book", "/v1/symbols", "/healthz", "/readyz",
    "/metrics",
};

size_t http_route_count(void)
{
    return N_ROUTES;
}

const char *http_route_path(size_t i)
{
    return i < N_ROUTES ? routes[i].path : NULL;
}

/* ---- requests in progress per client address ---- */

#define PEER_BUCKETS 256

/* A client address with requests in progress (only those: freed at 0). */
struct peer {
    struct peer *next;
    unsigned char addr[16];
    size_t len; /* 4 (IPv4, also v4-mapped IPv6) or 16 */
    unsigned n; /* requests in progress */
};

struct peers {
    pthread_mutex_t lock;
    struct peer *b[PEER_BUCKETS];
};

struct http_server {
    struct http_config cfg;
    char host[AB_CONFIG_HOST_MAX];
    char token[AUTH_TOKEN_MAX + 1]; /* "" = no authentication. Secret: never logged. */
    struct api_ctx api;
    struct metrics *metrics;
    struct MHD_Daemon *daemon;
    uint16_t port;
    struct peers peers;
};

/* Per-request state, created by the URI log callback (the first thing
 * libmicrohttpd calls for a request) and freed by the completion callback. */
struct request {
    int64_t start_us;
    size_t uri_len;
    size_t route;       /* index into routes, N_ROUTES when none matched */
    bool seen;          /* the access handler ran once already */
    bool answered;      /* a response is queued */
    bool over_inflight; /* refused: its address had max_inflight_per_ip in progress */
    struct peer *peer;  /* counted in this address's requests in progress, or NULL */
};

/* The client address of conn as bytes (v4-mapped IPv6 as IPv4). False when unknown. */
static bool peer_addr(struct MHD_Connection *conn, unsigned char out[16], size_t *len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        memcpy(out, &in.sin_addr, 4);
        *len = 4;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            memcpy(out, in6.sin6_addr.s6_addr + 12, 4);
            *len = 4;
        } else {
            memcpy(out, in6.sin6_addr.s6_addr, 16);
            *len = 16;
        }
        return true;
    }
    return false;
}

static size_t peer_hash(const unsigned char *a, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ a[i]) * 16777619u;
    return h % PEER_BUCKETS;
}

/*
 * Counts one more request in progress for the address of conn. Returns the
 * entry (to pass to peer_leave), or NULL with *over set when the address
 * already has cap in progress, or NULL alone when the address is unknown or
 * memory ran out (the request is then not limited).
 */
static struct peer *peer_enter(struct http_server *s, struct MHD_Connection *conn, unsigned cap,
                               bool *over)
{
    *over = false;
    unsigned char a[16];
    size_t len = 0;
    if (!peer_addr(conn, a, &len))
        return NULL;
    size_t h = peer_hash(a, len);
    pthread_mutex_lock(&s->peers.lock);
    struct peer *p = s->peers.b[h];
    while (p && !(p->len == len && memcmp(p->addr, a, len) == 0))
        p = p->next;
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (p) {
            memcpy(p->addr, a, len);
            p->len = len;
            p->next = s->peers.b[h];
            s->peers.b[h] = p;
        }
    }
    if (p && p->n >= cap) {
        *over = true;
        p = NULL;
    } else if (p) {
        p->n++;
    }
    pthread_mutex_unlock(&s->peers.lock);
    return p;
}

static void peer_leave(struct http_server *s, struct peer *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&s->peers.lock);
    if (--p->n == 0) {
        struct peer **pp = &s->peers.b[peer_hash(p->addr, p->len)];
        while (*pp != p)
            pp = &(*pp)->next;
        *pp = p->next;
        free(p);
    }
    pthread_mutex_unlock(&s->peers.lock);
}

/* Stands in for a request whose state could not be allocated. */
static struct request no_memory_request;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A request is "in progress" from its request line (here) to its completion,
 * so a client trickling headers holds its place too. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http_server *s = cls;
    struct request *r = calloc(1, sizeof(*r));
    if (!r)
        return &no_memory_request;
    r->start_us = mono_us();
    r->uri_len = uri ? strlen(uri) : 0;
    r->route = N_ROUTES;
    if (s->cfg.max_inflight_per_ip)
        r->peer = peer_enter(s, conn, s->cfg.max_inflight_per_ip, &r->over_inflight);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct request *r = *con_cls;
    (void)toe;
    if (!r || r == &no_memory_request)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
    unsigned status = ci ? ci->http_status : 0;
    metrics_observe(s->metrics, r->route, status, mono_us() - r->start_us);
    peer_leave(s, r->peer);
    free(r);
    *con_cls = NULL;
}

static const struct route *match(const char *url, const char **rest, size_t *idx)
{
    for (size_t i = 0; i < N_ROUTES; i++) {
        const struct route *rt = &routes[i];
        if (rt->prefix) {
            size_t n = strlen(rt->prefix);
            if (strncmp(url, rt->prefix, n) == 0) {
                *rest = url + n;
                *idx = i;
                return rt;
            }
        } else if (strcmp(url, rt->path) == 0) {
            *rest = "";
            *idx = i;
            return rt;
        }
    }
    return NULL;
}

/* Header fields and their bytes (names + values). */
struct header_tally {
    size_t n, bytes;
};

static enum MHD_Result tally_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct header_tally *t = cls;
    (void)kind;
    t->n++;
    t->bytes += (key ? strlen(key) : 0) + (value ? strlen(value) : 0);
    return MHD_YES;
}

/* Whether the request may use rt (NULL: an unknown path, which needs the token too). */
static bool authorized(const struct http_server *s, struct MHD_Connection *conn,
                       const struct route *rt, bool *missing)
{
    *missing = false;
    if (!s->token[0])
        return true;
    if (rt && (rt->access == ROUTE_OPEN || (rt->access == ROUTE_METRICS && s->cfg.metrics_open)))
        return true;
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *tok = NULL;
    size_t len = 0;
    if (!auth_bearer(h, &tok, &len)) {
        *missing = true;
        return false;
    }
    return auth_token_equal(s->token, tok, len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_server *s = cls;
    struct request *r = *con_cls;
    (void)version;
    (void)upload_data;

    if (!r || r == &no_memory_request)
        return reply_error(conn, API_INTERNAL, NULL, "out of memory");
    /* The first call only announces the request. GET and HEAD are answered
     * on the second call (answering on the first makes libmicrohttpd close
     * the connection, as it cannot know the body was empty); any other method
     * is refused at once, before its body is read. A body sent with GET is
     * read and discarded. */
    bool get =
        strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!r->seen && get) {
        r->seen = true;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->answered)
        return MHD_YES;
    r->answered = true;

    const char *rest = "";
    size_t idx = N_ROUTES;
    const struct route *rt = url ? match(url, &rest, &idx) : NULL;
    r->route = idx;

    if (r->uri_len > HTTP_URI_MAX)
        return reply_error(conn, API_URI_TOO_LONG, NULL,
                           "request target is %zu bytes; at most %d are accepted", r->uri_len,
                           HTTP_URI_MAX);
    struct header_tally ht = {0, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, tally_header, &ht);
    if (ht.n > HTTP_HEADERS_MAX || ht.bytes > HTTP_HEADER_BYTES_MAX)
        return reply_error(conn, API_HEADERS_TOO_LARGE, NULL,
                           "%zu header fields of %zu bytes; at most %d fields and %d bytes are "
                           "accepted",
                           ht.n, ht.bytes, HTTP_HEADERS_MAX, HTTP_HEADER_BYTES_MAX);
    if (r->over_inflight) {
        ab_log(AB_LOG_DEBUG, "rest", "too many requests in progress from one address limit=%u",
               s->cfg.max_inflight_per_ip);
        return reply_error_hdr(conn, API_TOO_MANY_REQUESTS, MHD_HTTP_HEADER_RETRY_AFTER,
                               HTTP_RETRY_AFTER_TEXT,
                               "at most %u requests in progress per client address; retry "
                               "after %d s",
                               s->cfg.max_inflight_per_ip, HTTP_RETRY_AFTER);
    }
    bool missing = false;
    if (!authorized(s, conn, rt, &missing)) {
        ab_log(AB_LOG_DEBUG, "rest", "unauthorized request route=%s credentials=%s",
               rt ? rt->path : "(none)", missing ? "missing" : "wrong");
        return reply_error_hdr(conn, API_UNAUTHORIZED, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                               missing ? "Bearer realm=\"abidance\""
                                       : "Bearer realm=\"abidance\", error=\"invalid_token\"",
                               missing ? "this server requires an API token: send "
                                         "\"Authorization: Bearer <token>\""
                                       : "the API token is wrong");
    }
    if (!rt)
        return reply_error(conn, API_NOT_FOUND, NULL, "no such path: %.100s", url ? url : "");
    if (!get)
        return reply_error(conn, API_METHOD_NOT_ALLOWED, ALLOW, "%s accepts only GET and HEAD",
                           rt->path);

    struct params p;
    struct api_error e;
    if (params_collect(conn, &p, &e) < 0 || (rt->params && params_check(&p, rt->params, &e) < 0))
        return reply_api_error(conn, &e);
    return rt->handler(&s->api, conn, rest, &p);
}

int http_new(const struct http_config *cfg, struct http_server **out)
{
    if (!cfg || !out || !cfg->host || !cfg->store || !cfg->books.get || cfg->threads < 1 ||
        cfg->threads > 64 || strlen(cfg->host) >= AB_CONFIG_HOST_MAX)
        return AB_EINVAL;
    unsigned max_conns = cfg->max_connections ? cfg->max_connections : HTTP_MAX_CONNS;
    if (max_conns < cfg->threads)
        return AB_EINVAL;
    char why[128];
    size_t tlen = cfg->token ? strlen(cfg->token) : 0;
    if (tlen && auth_token_check(cfg->token, tlen, why, sizeof(why)) < 0)
        return AB_EINVAL;
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return AB_ENOMEM;
    s->cfg = *cfg;
    s->cfg.max_connections = max_conns;
    if (!s->cfg.timeout_secs)
        s->cfg.timeout_secs = HTTP_TIMEOUT_DEFAULT;
    snprintf(s->host, sizeof(s->host), "%s", cfg->host);
    s->cfg.host = s->host;
    memcpy(s->token, cfg->token ? cfg->token : "", tlen + 1);
    s->cfg.token = NULL; /* only the copy, which is never logged */
    if (pthread_mutex_init(&s->peers.lock, NULL) != 0) {
        free(s);
        return AB_ENOMEM;
    }
    int rc = metrics_new(route_labels, N_ROUTES, &s->metrics);
    if (rc < 0) {
        pthread_mutex_destroy(&s->peers.lock);
        free(s);
        return rc;
    }
    s->api = (struct api_ctx){
        .store = cfg->store,
        .books = cfg->books,
        .symbols = cfg->symbols,
        .intervals = cfg->intervals,
        .stale_after_ms = cfg->stale_after_ms,
        .db_timeout_ms = cfg->db_timeout_ms,
        .metrics = s->metrics,
        .live = cfg->live,
        .feed = cfg->feed,
        .ws = cfg->ws,
    };
    *out = s;
    return 0;
}

int http_start(struct http_server *s)
{
    if (!s || s->daemon)
        return AB_ESTATE;

    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)s->cfg.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(s->host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        ab_log(AB_LOG_ERROR, "rest", "cannot resolve listen host host=%s error=\"%s\"", s->host,
               gai_strerror(gai));
        return AB_EINVAL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger comes first so every message goes through it. */
    s->daemon = MHD_start_daemon(
        flags, s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, ab_log_mhd,
        "rest", MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
        s->cfg.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.max_conns_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.timeout_secs, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        ab_log(AB_LOG_ERROR, "rest", "cannot listen host=%s port=%u", s->host,
               (unsigned)s->cfg.port);
        return AB_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    ab_log(AB_LOG_INFO, "rest",
           "listening host=%s port=%u threads=%u max_connections=%u max_connections_per_ip=%u "
           "max_inflight_per_ip=%u timeout=%us auth=%s metrics=%s",
           s->host, (unsigned)s->port, s->cfg.threads, s->cfg.max_connections,
           s->cfg.max_conns_per_ip, s->cfg.max_inflight_per_ip, s->cfg.timeout_secs,
           s->token[0] ? "token" : "none", !s->token[0] || s->cfg.metrics_open ? "open" : "token");
    return 0;
}

uint16_t http_port(const struct http_server *s)
{
    return s ? s->port : 0;
}

void http_stop(struct http_server *s)
{
    if (!s || !s->daemon)
        return;
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    ab_log(AB_LOG_INFO, "rest", "stopped");
}

void http_free(struct http_server *s)
{
    if (!s)
        return;
    http_stop(s);
    metrics_free(s->metrics);
    for (size_t i = 0; i < PEER_BUCKETS; i++) {
        while (s->peers.b[i]) {
            struct peer *p = s->peers.b[i];
            s->peers.b[i] = p->next;
            free(p);
        }
    }
    pthread_mutex_destroy(&s->peers.lock);
    memset(s->token, 0, sizeof(s->token));
    free(s);
}

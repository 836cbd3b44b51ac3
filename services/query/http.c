#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
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

struct route {
    const char *path;   /* as documented in api/openapi.yaml */
    const char *prefix; /* when set, matches any path starting with it */
    api_handler_cb handler;
    const char *const *params; /* accepted query parameters; NULL: the handler checks */
};

#define ALLOW "GET, HEAD"

static const struct route routes[] = {
    {"/v1/candles", NULL, api_candles, candle_params},
    {"/v1/indicators/{name}", "/v1/indicators/", api_indicators, NULL},
    {"/v1/book", NULL, api_book, book_params},
    {"/v1/symbols", NULL, api_symbols, no_params},
    {"/healthz", NULL, api_healthz, no_params},
    {"/readyz", NULL, api_readyz, no_params},
    {"/metrics", NULL, api_metrics, no_params},
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

struct http_server {
    struct http_config cfg;
    char host[AB_CONFIG_HOST_MAX];
    struct api_ctx api;
    struct metrics *metrics;
    struct MHD_Daemon *daemon;
    uint16_t port;
};

/* Per-request state, created by the URI log callback (the first thing
 * libmicrohttpd calls for a request) and freed by the completion callback. */
struct request {
    int64_t start_us;
    size_t uri_len;
    size_t route;  /* index into routes, N_ROUTES when none matched */
    bool seen;     /* the access handler ran once already */
    bool answered; /* a response is queued */
};

/* Stands in for a request whose state could not be allocated. */
static struct request no_memory_request;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    struct request *r = calloc(1, sizeof(*r));
    if (!r)
        return &no_memory_request;
    r->start_us = mono_us();
    r->uri_len = uri ? strlen(uri) : 0;
    r->route = N_ROUTES;
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
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return AB_ENOMEM;
    s->cfg = *cfg;
    snprintf(s->host, sizeof(s->host), "%s", cfg->host);
    s->cfg.host = s->host;
    int rc = metrics_new(route_labels, N_ROUTES, &s->metrics);
    if (rc < 0) {
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
        (unsigned)HTTP_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        ab_log(AB_LOG_ERROR, "rest", "cannot listen host=%s port=%u", s->host,
               (unsigned)s->cfg.port);
        return AB_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    ab_log(AB_LOG_INFO, "rest", "listening host=%s port=%u threads=%u", s->host, (unsigned)s->port,
           s->cfg.threads);
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
    free(s);
}

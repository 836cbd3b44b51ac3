/*
 * abidance-query: storage and client APIs. The table of contents:
 * parse the configuration, start logging, then storage, the live state, the
 * WebSocket server, the bus (feed) and the REST server; wait for
 * SIGINT/SIGTERM; stop in reverse order (the bus first, so nothing new
 * arrives, storage last, so what arrived is flushed).
 */
#include <errno.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "book_source.h"
#include "common/err.h"
#include "common/log.h"
#include "config.h"
#include "feed.h"
#include "http.h"
#include "live.h"
#include "store.h"
#include "ws.h"

extern char **environ;

/* Blocks until SIGINT or SIGTERM (both blocked in every thread beforehand). */
static int wait_for_stop(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

/* mkdir -p path (mode for the ones it creates). Returns 0 or AB_EIO (logged). */
static int make_dirs(const char *path, mode_t mode)
{
    char p[QUERY_PATH_MAX];
    int n = snprintf(p, sizeof(p), "%s", path);
    if (n <= 0 || (size_t)n >= sizeof(p))
        return AB_ERANGE;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            ab_log(AB_LOG_ERROR, "main", "cannot create directory path=\"%s\" error=\"%s\"", p,
                   strerror(errno));
            return AB_EIO;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    return 0;
}

/* Creates the directory of the bus socket (the data directory by default). */
static int prepare_bus_dir(const char *bus_path)
{
    char dir[QUERY_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", bus_path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    return make_dirs(dir, 0750);
}

static const char *show_host(const char *host, char *buf, size_t cap)
{
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        host = "127.0.0.1";
    bool v6 = strchr(host, ':') != NULL;
    snprintf(buf, cap, "%s%s%s", v6 ? "[" : "", host, v6 ? "]" : "");
    return buf;
}

static void print_banner(const struct query_config *cfg, uint16_t port, uint16_t ws_port)
{
    char host[AB_CONFIG_HOST_MAX + 2], ws_host[AB_CONFIG_HOST_MAX + 2];
    show_host(cfg->http.host, host, sizeof(host));
    show_host(cfg->ws.host, ws_host, sizeof(ws_host));
    const char *sym = cfg->symbols.n ? cfg->symbols.v[0] : "BTCUSDT";
    const char *iv = cfg->intervals.n ? ab_interval_name(cfg->intervals.v[0]) : "1m";
    printf("abidance-query %s\n"
           "  REST     http://%s:%u  (GET /v1/candles /v1/indicators/{name} /v1/book "
           "/v1/symbols /healthz /readyz /metrics)\n"
           "  stream   ws://%s:%u%s  (channels candles:%s:%s book:%s; api/websocket.md)\n"
           "  bus      %s%s\n"
           "  try      curl 'http://%s:%u/v1/candles?symbol=%s&interval=%s&limit=5'\n"
           "  docs     api/openapi.yaml\n",
           ABIDANCE_VERSION, host, (unsigned)port, ws_host, (unsigned)ws_port, WS_PATH, sym, iv,
           sym, cfg->bus_path[0] ? "unix:" : "",
           cfg->bus_path[0] ? cfg->bus_path : "off (--bus=none)", host, (unsigned)port, sym, iv);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct query_config cfg;
    enum ab_config_action action;
    char why[AB_CONFIG_WHY_MAX];
    struct store *store = NULL;
    struct live *live = NULL;
    struct ws_server *ws = NULL;
    struct feed *feed = NULL;
    struct http_server *http = NULL;
    int status = EXIT_FAILURE;

    if (query_config_parse(argc, argv, environ, &cfg, &action, why, sizeof(why)) < 0) {
        fprintf(stderr, "abidance-query: %s\n", why);
        return 2;
    }
    /* The token now lives in cfg.token only: blank the copy in argv or the
     * environment (a non-empty value always points there), so it does not
     * show in /proc/<pid>/cmdline or environ. --api-token-file avoids even
     * the moment before this. */
    if (cfg.api_token && *cfg.api_token)
        memset((char *)cfg.api_token, '*', strlen(cfg.api_token));
    if (action == AB_CONFIG_HELP) {
        ab_config_usage(&query_config_spec, stdout);
        return EXIT_SUCCESS;
    }
    if (action == AB_CONFIG_VERSION) {
        printf("abidance-query %s\n", ABIDANCE_VERSION);
        return EXIT_SUCCESS;
    }

    ab_log_init(cfg.log_format == QUERY_LOG_JSON ? AB_LOG_JSON : AB_LOG_TEXT,
                (enum ab_log_level)cfg.log_level);
    lws_set_log_level(ab_log_lws_levels(), ab_log_lws_emit);
    char url[512];
    ab_log_redact_url(cfg.database_url, url, sizeof(url));
    ab_log(AB_LOG_INFO, "main", "starting version=%s database=\"%s\" bus=\"%s\"", ABIDANCE_VERSION,
           url, cfg.bus_path[0] ? cfg.bus_path : "none");

    /* Signals are taken synchronously by the main thread only; threads
     * started below inherit the blocked mask. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Storage (not started yet: the feed installs its commit callback first). */
    struct store_config scfg = {
        .database_url = cfg.database_url,
        .reader_conns = (size_t)cfg.db_readers,
        .queue_cap = (size_t)cfg.store_queue,
    };
    int rc = store_new(&scfg, &store);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "main", "cannot create storage error=\"%s\"", ab_err_str(rc));
        goto out;
    }

    /* In-memory state and the stream server (which hooks into it). */
    struct live_config lcfg = {.candle_cap = (size_t)cfg.live_candles};
    rc = live_new(&lcfg, &live);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "main", "cannot create the live state error=\"%s\"", ab_err_str(rc));
        goto out;
    }
    struct ws_config wcfg;
    ws_config_defaults(&wcfg);
    wcfg.addr = cfg.ws;
    wcfg.symbols = &cfg.symbols;
    wcfg.intervals = &cfg.intervals;
    wcfg.max_connections = (size_t)cfg.ws_max_connections;
    wcfg.max_connections_per_ip = (size_t)cfg.ws_max_conns_per_ip;
    wcfg.max_channels = (size_t)cfg.ws_max_channels;
    wcfg.max_inbound = (size_t)cfg.ws_max_message;
    wcfg.rate = (unsigned)cfg.ws_rate;
    wcfg.burst = (unsigned)cfg.ws_burst;
    wcfg.token = cfg.token;
    rc = ws_server_new(&wcfg, live, &ws);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "main", "cannot create the stream server error=\"%s\"",
               ab_err_str(rc));
        goto out;
    }

    /* The bus consumer. */
    if (cfg.bus_path[0]) {
        rc = prepare_bus_dir(cfg.bus_path);
        if (rc == 0) {
            struct feed_config fcfg = {
                .bus_path = cfg.bus_path,
                .live = live,
                .store = store,
                .window = (size_t)cfg.bus_window,
                .book_persist_every_ms = cfg.book_persist_every_ms,
                .symbols = &cfg.symbols,
            };
            rc = feed_new(&fcfg, &feed);
            if (rc < 0)
                ab_log(AB_LOG_ERROR, "main", "cannot open the bus socket path=\"%s\" error=\"%s\"",
                       cfg.bus_path, ab_err_str(rc));
        }
        if (rc < 0)
            goto out;
    }

    rc = store_start(store);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "main", "cannot start storage error=\"%s\"", ab_err_str(rc));
        goto out;
    }
    rc = ws_server_start(ws);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "main", "cannot start the stream server error=\"%s\"", ab_err_str(rc));
        goto out;
    }
    if (feed) {
        rc = feed_start(feed);
        if (rc < 0) {
            ab_log(AB_LOG_ERROR, "main", "cannot start the bus error=\"%s\"", ab_err_str(rc));
            goto out;
        }
    }

    /* REST: books from memory (falling back to the stored snapshot). */
    struct book_source_live_ctx books = {.live = live, .store = store};
    struct http_config hcfg = {
        .host = cfg.http.host,
        .port = cfg.http.port,
        .threads = (unsigned)cfg.http_threads,
        .store = store,
        .books = book_source_live(&books),
        .symbols = &cfg.symbols,
        .intervals = &cfg.intervals,
        .stale_after_ms = cfg.stale_after_ms,
        .db_timeout_ms = (int)cfg.db_timeout_ms,
        .live = live,
        .feed = feed,
        .ws = ws,
        .token = cfg.token,
        .metrics_open = cfg.metrics_open,
        .max_connections = (unsigned)cfg.http_max_connections,
        .max_conns_per_ip = (unsigned)cfg.http_max_conns_per_ip,
        .max_inflight_per_ip = (unsigned)cfg.http_max_inflight_per_ip,
        .timeout_secs = (unsigned)((cfg.http_timeout_ms + 999) / 1000),
    };
    rc = http_new(&hcfg, &http);
    if (rc == 0)
        rc = http_start(http);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "main", "cannot start the REST server error=\"%s\"", ab_err_str(rc));
        goto out;
    }
    print_banner(&cfg, http_port(http), ws_server_port(ws));

    int sig = wait_for_stop(&stop_set);
    ab_log(AB_LOG_INFO, "main", "stopping signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = EXIT_SUCCESS;
out:
    memset(cfg.token, 0, sizeof(cfg.token));
    /* Reverse order: no new frames, no subscribers, no requests, then the
     * state they read, then storage (flushing what was put; unacknowledged
     * candles come again from the ingest anyway). */
    feed_stop(feed);
    ws_server_stop(ws);
    http_free(http);
    if (store)
        store_stop(store, 5000);
    feed_free(feed);
    ws_server_free(ws);
    live_free(live);
    store_free(store);
    ab_log(AB_LOG_INFO, "main", "stopped");
    return status;
}

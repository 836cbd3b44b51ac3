/*
 * abidance-query: storage and client APIs. The table of contents:
 * parse the configuration, start logging, storage and the REST server, wait
 * for SIGINT/SIGTERM, stop in reverse order.
 */
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "book_source.h"
#include "common/err.h"
#include "common/log.h"
#include "config.h"
#include "http.h"
#include "store.h"

extern char **environ;

/* Blocks until SIGINT or SIGTERM (both blocked in every thread beforehand). */
static int wait_for_stop(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

static void print_banner(const struct query_config *cfg, uint16_t port)
{
    const char *host = cfg->http.host;
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        host = "127.0.0.1";
    const char *sym = cfg->symbols.n ? cfg->symbols.v[0] : "BTCUSDT";
    const char *iv = cfg->intervals.n ? ab_interval_name(cfg->intervals.v[0]) : "1m";
    bool v6 = strchr(host, ':') != NULL;
    printf("abidance-query %s\n"
           "  REST     http://%s%s%s:%u  (GET /v1/candles /v1/indicators/{name} /v1/book "
           "/v1/symbols /healthz /readyz /metrics)\n"
           "  try      curl 'http://%s%s%s:%u/v1/candles?symbol=%s&interval=%s&limit=5'\n"
           "  docs     api/openapi.yaml\n",
           ABIDANCE_VERSION, v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port, v6 ? "[" : "",
           host, v6 ? "]" : "", (unsigned)port, sym, iv);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct query_config cfg;
    enum ab_config_action action;
    char why[AB_CONFIG_WHY_MAX];
    struct store *store = NULL;
    struct http_server *http = NULL;
    int status = EXIT_FAILURE;

    if (query_config_parse(argc, argv, environ, &cfg, &action, why, sizeof(why)) < 0) {
        fprintf(stderr, "abidance-query: %s\n", why);
        return 2;
    }
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
    char url[512];
    ab_log_redact_url(cfg.database_url, url, sizeof(url));
    ab_log(AB_LOG_INFO, "main", "starting version=%s database=\"%s\"", ABIDANCE_VERSION, url);

    /* Signals are taken synchronously by the main thread only; threads
     * started below inherit the blocked mask. */
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct store_config scfg = {
        .database_url = cfg.database_url,
        .reader_conns = (size_t)cfg.db_readers,
    };
    int rc = store_new(&scfg, &store);
    if (rc == 0)
        rc = store_start(store);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "main", "cannot start storage error=\"%s\"", ab_err_str(rc));
        goto out;
    }

    struct http_config hcfg = {
        .host = cfg.http.host,
        .port = cfg.http.port,
        .threads = (unsigned)cfg.http_threads,
        .store = store,
        .books = book_source_store(store),
        .symbols = &cfg.symbols,
        .intervals = &cfg.intervals,
        .stale_after_ms = cfg.stale_after_ms,
        .db_timeout_ms = (int)cfg.db_timeout_ms,
    };
    rc = http_new(&hcfg, &http);
    if (rc == 0)
        rc = http_start(http);
    if (rc < 0) {
        ab_log(AB_LOG_ERROR, "main", "cannot start the REST server error=\"%s\"", ab_err_str(rc));
        goto out;
    }
    print_banner(&cfg, http_port(http));

    int sig = wait_for_stop(&stop_set);
    ab_log(AB_LOG_INFO, "main", "stopping signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = EXIT_SUCCESS;
out:
    http_free(http);
    if (store)
        store_stop(store, 5000);
    store_free(store);
    ab_log(AB_LOG_INFO, "main", "stopped");
    return status;
}

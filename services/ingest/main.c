/*
 * abidance-ingest: follows Binance market data and publishes it normalized.
 * The table of contents: parse the settings, set up logging, build the
 * ingest, run the loop until a signal, tear down. Everything else lives in
 * the abidance_ingest_lib modules (ingest.h is the entry point).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "config.h"
#include "ingest.h"

extern char **environ;

static struct ingest *g_ingest;

static void on_signal(int sig)
{
    (void)sig;
    ingest_stop(g_ingest);
}

int main(int argc, char **argv)
{
    static struct ingest_config cfg;
    enum ab_config_action action;
    char why[AB_CONFIG_WHY_MAX];
    if (ingest_config_parse(argc, argv, environ, &cfg, &action, why, sizeof(why)) < 0) {
        fprintf(stderr, "abidance-ingest: %s\n(see --help)\n", why);
        return 2;
    }
    if (action == AB_CONFIG_HELP) {
        ab_config_usage(&ingest_config_spec, stdout);
        return 0;
    }
    if (action == AB_CONFIG_VERSION) {
        printf("abidance-ingest %s\n", ingest_config_spec.version);
        return 0;
    }
    ab_log_init(cfg.log_format == INGEST_LOG_JSON ? AB_LOG_JSON : AB_LOG_TEXT,
                (enum ab_log_level)cfg.log_level);
    if (!cfg.stdout_json && !cfg.bus_path[0])
        ab_log(AB_LOG_WARN, "ingest", "no output configured (--bus none without --stdout)");

    if (ingest_new(&cfg, &g_ingest) < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int rc = ingest_run(g_ingest);
    struct ingest *in = g_ingest;
    g_ingest = NULL;
    ingest_free(in);
    return rc < 0 ? 1 : 0;
}

/*
 * abidance-ingest: follows Binance market data and publishes it normalized.
 * The table of contents: parse the settings, set up logging, build the
 * ingest, run the loop until a signal, tear down. Everything else lives in
 * the abidance_ingest_lib modules (ingest.h is the entry point).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/stopsig.h"
#include "config.h"
#include "ingest.h"

extern char **environ;

/*
 * With API credentials configured the process holds a decrypted key: it
 * writes no core dump and other processes of the same user cannot attach
 * to it. Once the credentials are loaded, CREDENTIAL_KEY is blanked in place
 * so it no longer shows in /proc/<pid>/environ.
 */
static void protect_secrets(void)
{
    struct rlimit no_core = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &no_core);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static void blank_env(const char *name)
{
    char *v = getenv(name);
    if (v)
        memset(v, '*', strlen(v));
}

static void on_stop(void *in)
{
    ingest_stop(in);
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

    bool secrets = cfg.credentials && cfg.credentials[0];
    if (secrets)
        protect_secrets();
    signal(SIGPIPE, SIG_IGN);
    /* SIGINT/SIGTERM go to a thread of their own (common/stopsig.h): the
     * stop wakes the lws loop, which may log, and a signal handler doing
     * that could deadlock on the log lock. Blocked before ingest_new so
     * every thread it starts inherits the mask. */
    struct ab_stopsig ss;
    if (ab_stopsig_block(&ss) < 0)
        return 1;
    struct ingest *in = NULL;
    int created = ingest_new(&cfg, &in);
    if (secrets)
        blank_env("CREDENTIAL_KEY");
    if (created < 0)
        return 1;
    if (ab_stopsig_start(&ss, on_stop, in) < 0) {
        ab_log(AB_LOG_ERROR, "ingest", "cannot start the signal thread");
        ingest_free(in);
        return 1;
    }
    int rc = ingest_run(in);
    int sig = ab_stopsig_join(&ss);
    if (sig)
        ab_log(AB_LOG_INFO, "ingest", "stopped by signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ingest_free(in);
    return rc < 0 ? 1 : 0;
}

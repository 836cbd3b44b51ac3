/*
 * opts: abidance-sim's settings, from flags and ABIDANCE_SIM_* environment
 * variables through the table-driven parser of common/config.h.
 *
 * --replay FILE may be given several times (the newer cryptofeed layout
 * splits one recording into files); since common/config keeps only the last
 * value of a repeated flag, opts collects every --replay before handing the
 * remaining arguments to ab_config_parse. ABIDANCE_SIM_REPLAY takes a
 * comma-separated list instead. Pure: the environment is passed in.
 */
#ifndef SIM_OPTS_H
#define SIM_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/config.h"
#include "services/sim/faults.h"
#include "services/sim/replay.h"

struct sim_opts {
    struct ab_config_addr listen;
    struct ab_config_symbols symbols;
    int64_t seed;
    const char *speed_text;
    double speed;           /* parsed from speed_text */
    int64_t start_time;     /* ms; -1 = now, rounded down to the minute */
    int64_t events;         /* freeze after this many depth updates per symbol; 0 = never */
    const char *replay_env; /* ABIDANCE_SIM_REPLAY (comma-separated) */
    const char *replay[REPLAY_FILES_MAX]; /* borrowed from argv or replay_buf */
    size_t n_replay;
    char replay_buf[4096]; /* split copy of replay_env */
    int64_t replay_hold_ms;
    int64_t ping_interval_ms, pong_timeout_ms;
    int64_t max_streams, queue_cap;
    int64_t fault_close_every_s, fault_gap_every, fault_malformed_every, fault_out_of_range_every;
    bool fault_no_pong;
    int64_t fault_rest_429, fault_rest_418, fault_rest_delay_ms, fault_retry_after_s;
    const char *tls_cert, *tls_key;
    const char *log_level;
    bool lws_debug;
    const char *trace_file; /* --trace-file: depth send times (bench), or NULL */
};

/*
 * Fills o from argv/envp. Returns 0 with *action (RUN, HELP, VERSION), or a
 * negative code with a message in why (AB_CONFIG_WHY_MAX bytes is enough).
 */
int sim_opts_parse(struct sim_opts *o, int argc, char *const *argv, char *const *envp,
                   enum ab_config_action *action, char *why, size_t why_len);

/* --help text. */
void sim_opts_usage(FILE *out);

/* The faults part of the settings. */
void sim_opts_faults(const struct sim_opts *o, struct faults_cfg *out);

#endif

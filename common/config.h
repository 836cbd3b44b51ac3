/*
 * config: settings from command-line flags and environment variables, driven
 * by one table.
 *
 * A service describes every setting once, in a const array of struct
 * ab_config_opt: its long flag ("http" for --http), its environment variable
 * (ABIDANCE_HTTP_ADDR), its default, a help line and a type. The values land
 * in the service's own settings struct, each field found by offsetof.
 *
 * For each setting exactly one text is parsed: the flag's if given, else the
 * environment variable's if set and non-empty, else the default. The flag
 * wins; an environment value that a flag overrides is never looked at. The
 * default goes through the same parser as user input, so a table with a bad
 * default fails loudly the first time it runs (and in the unit tests).
 *
 * Flags are "--name value" or "--name=value"; a boolean also takes a bare
 * "--name" (true). "-h"/"--help" and "-V"/"--version" are built in and win
 * over everything else, even a bad environment. Unknown flags, missing values
 * and positional arguments are errors. A repeated flag: the last one wins.
 *
 * Errors name the setting by flag and variable and say where the bad text came
 * from; secret settings (database URLs with passwords, keys) never have their
 * text echoed.
 *
 * Pure and thread-safe: the environment is passed in (environ in main(), a
 * fixed array in tests) and nothing reads global state.
 */
#ifndef AB_CONFIG_H
#define AB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/interval.h"
#include "common/model.h"

/* Hard caps. */
#define AB_CONFIG_MAX_OPTS    64   /* options per table */
#define AB_CONFIG_HOST_MAX    256  /* host part of host:port, with NUL */
#define AB_CONFIG_MAX_SYMBOLS 2048 /* entries in a symbol list (see struct ab_config_symbols) */
#define AB_CONFIG_STRING_MAX  4096 /* longest accepted string value */
#define AB_CONFIG_WHY_MAX     512  /* a buffer this size always holds an error message */

enum ab_config_type {
    AB_CONFIG_STRING,    /* const char * (borrowed from argv, envp or the table) */
    AB_CONFIG_INT,       /* int64_t within [min, max] */
    AB_CONFIG_BOOL,      /* bool: true/false, 1/0, yes/no, on/off */
    AB_CONFIG_DURATION,  /* int64_t milliseconds from "250ms", "5s", "2m", "1h"; [min, max] */
    AB_CONFIG_ENUM,      /* int: index into choices */
    AB_CONFIG_ADDR,      /* struct ab_config_addr from "host:port" or "[v6]:port" */
    AB_CONFIG_SYMBOLS,   /* struct ab_config_symbols from "BTCUSDT,ETHUSDT" */
    AB_CONFIG_INTERVALS, /* struct ab_config_intervals from "1m,1h" */
};

/* A listening or connecting address. port 0 asks the OS for a free port. */
struct ab_config_addr {
    char host[AB_CONFIG_HOST_MAX]; /* "127.0.0.1", "::1", "localhost", "0.0.0.0" */
    uint16_t port;
};

/*
 * A comma-separated list of symbols: valid (ab_symbol_valid), no duplicates,
 * at most AB_CONFIG_MAX_SYMBOLS (2048: Binance lists about 1500 USDT-quoted
 * spot symbols, and the capacity benchmark follows 1500). The array is
 * inline, so the struct is 64 KiB: keep it in a settings struct (static,
 * heap or main's stack), never in a per-symbol or per-message object.
 */
struct ab_config_symbols {
    char v[AB_CONFIG_MAX_SYMBOLS][AB_SYMBOL_MAX];
    size_t n;
};

/* A comma-separated list of Binance interval names, no duplicates. */
struct ab_config_intervals {
    enum ab_interval v[AB_I_COUNT];
    size_t n;
};

struct ab_config_opt {
    const char *flag;    /* long flag without "--" ("http"), or NULL for env only */
    const char *env;     /* environment variable, or NULL for flag only */
    const char *def;     /* default as text, parsed like user input; NULL leaves the
                            field as the caller initialised it */
    const char *metavar; /* value placeholder in --help ("ADDR"); NULL: derived from type */
    const char *help;    /* one line */
    enum ab_config_type type;
    size_t offset;              /* offsetof(struct <settings>, field) */
    int64_t min, max;           /* INT, DURATION; STRING: max length if max > 0 */
    const char *const *choices; /* ENUM: NULL-terminated names */
    bool secret;                /* never echo the value (errors, ab_config_print) */
};

/*
 * The logging options every service has, --log-format / ABIDANCE_LOG_FORMAT
 * (text, json: enum ab_log_format order) and --log-level / ABIDANCE_LOG_LEVEL
 * (debug, info, warn, error: enum ab_log_level order), as two table entries
 * for int fields at the given offsets:
 *
 *     AB_CONFIG_LOG_OPTIONS(F(log_format), F(log_level)),
 */
extern const char *const ab_config_log_formats[];
extern const char *const ab_config_log_levels[];
#define AB_CONFIG_LOG_OPTIONS(format_offset, level_offset)                               \
    {.flag = "log-format",                                                               \
     .env = "ABIDANCE_LOG_FORMAT",                                                       \
     .def = "text",                                                                      \
     .help = "log line format on stderr",                                                \
     .type = AB_CONFIG_ENUM,                                                             \
     .offset = (format_offset),                                                          \
     .choices = ab_config_log_formats},                                                  \
    {                                                                                    \
        .flag = "log-level", .env = "ABIDANCE_LOG_LEVEL", .def = "info",                 \
        .help = "lowest level logged", .type = AB_CONFIG_ENUM, .offset = (level_offset), \
        .choices = ab_config_log_levels                                                  \
    }

struct ab_config_spec {
    const char *prog;    /* "abidance-query" */
    const char *version; /* printed by --version */
    const char *summary; /* one paragraph for --help */
    const struct ab_config_opt *opts;
    size_t n_opts; /* <= AB_CONFIG_MAX_OPTS */
};

enum ab_config_action {
    AB_CONFIG_RUN,     /* settings are filled in: start the service */
    AB_CONFIG_HELP,    /* -h/--help was given: print ab_config_usage, exit 0 */
    AB_CONFIG_VERSION, /* -V/--version was given: print the version, exit 0 */
};

/*
 * Fills the settings struct at cfg (laid out as spec->opts' offsets say) from
 * argv[1..argc-1], the NULL-terminated "NAME=value" array envp (may be NULL)
 * and the defaults. Strings stored in cfg are borrowed from argv, envp or the
 * table: they must outlive cfg (true for main's argv and environ).
 *
 * Returns 0 with *action set, or AB_EINVAL / AB_ERANGE with a message in why
 * (why_len bytes, AB_CONFIG_WHY_MAX is always enough) that names the setting,
 * e.g. "--http (ABIDANCE_HTTP_ADDR) from the environment: \"x\": expected
 * host:port". On error cfg may be partly written. With HELP or VERSION, cfg
 * is untouched.
 */
int ab_config_parse(const struct ab_config_spec *spec, int argc, char *const *argv,
                    char *const *envp, void *cfg, enum ab_config_action *action, char *why,
                    size_t why_len);

/* Writes the --help text: usage, summary, every option with its variable,
 * default and help, and the built-in flags. */
void ab_config_usage(const struct ab_config_spec *spec, FILE *out);

/* Writes the effective settings, one "flag = value" line each, with secret
 * values shown as "(set)" or "(empty)". For start-up logs. */
void ab_config_print(const struct ab_config_spec *spec, const void *cfg, FILE *out);

/*
 * The individual value parsers, exposed so other code (and tests) can check a
 * single text the same way. Each returns 0 or AB_EINVAL / AB_ERANGE.
 */
int ab_config_parse_addr(const char *text, struct ab_config_addr *out);
int ab_config_parse_duration(const char *text, int64_t *out_ms);
int ab_config_parse_symbols(const char *text, struct ab_config_symbols *out);
int ab_config_parse_intervals(const char *text, struct ab_config_intervals *out);

#endif

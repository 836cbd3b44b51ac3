/* Unit tests of common/config: the table-driven flag/env/default parser. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"

struct settings {
    const char *url;
    struct ab_config_addr http;
    int64_t threads;
    bool verbose;
    int64_t timeout_ms;
    int format;
    struct ab_config_symbols symbols;
    struct ab_config_intervals intervals;
    const char *name;
    const char *key; /* env only */
};

static const char *const formats[] = {"text", "json", NULL};

#define F(f) offsetof(struct settings, f)

static const struct ab_config_opt opts[] = {
    {.flag = "database-url",
     .env = "T_DATABASE_URL",
     .def = "postgresql:///x",
     .help = "database",
     .type = AB_CONFIG_STRING,
     .offset = F(url),
     .secret = true},
    {.flag = "http",
     .env = "T_HTTP",
     .def = "127.0.0.1:8080",
     .help = "listen",
     .type = AB_CONFIG_ADDR,
     .offset = F(http)},
    {.flag = "threads",
     .env = "T_THREADS",
     .def = "4",
     .help = "workers",
     .type = AB_CONFIG_INT,
     .offset = F(threads),
     .min = 1,
     .max = 64},
    {.flag = "verbose",
     .env = "T_VERBOSE",
     .def = "false",
     .help = "chatty",
     .type = AB_CONFIG_BOOL,
     .offset = F(verbose)},
    {.flag = "timeout",
     .env = "T_TIMEOUT",
     .def = "2s",
     .help = "wait",
     .type = AB_CONFIG_DURATION,
     .offset = F(timeout_ms),
     .min = 100,
     .max = 60000},
    {.flag = "log-format",
     .env = "T_LOG_FORMAT",
     .def = "text",
     .help = "format",
     .type = AB_CONFIG_ENUM,
     .offset = F(format),
     .choices = formats},
    {.flag = "symbols",
     .env = "T_SYMBOLS",
     .def = "BTCUSDT,ETHUSDT",
     .help = "symbols",
     .type = AB_CONFIG_SYMBOLS,
     .offset = F(symbols)},
    {.flag = "intervals",
     .env = "T_INTERVALS",
     .def = "1m",
     .help = "intervals",
     .type = AB_CONFIG_INTERVALS,
     .offset = F(intervals)},
    {.flag = "name",
     .env = NULL,
     .def = NULL,
     .help = "flag only, no default",
     .type = AB_CONFIG_STRING,
     .offset = F(name),
     .max = 8},
    {.flag = NULL,
     .env = "T_KEY",
     .def = NULL,
     .help = "env only",
     .type = AB_CONFIG_STRING,
     .offset = F(key),
     .secret = true},
};

static const struct ab_config_spec spec = {
    .prog = "test-prog",
    .version = "9.9.9",
    .summary = "A test program.",
    .opts = opts,
    .n_opts = sizeof(opts) / sizeof(opts[0]),
};

/* Runs the parser over a NULL-terminated argv (without argv[0]) and env. */
static int run(const char *const *args, const char *const *env, struct settings *s,
               enum ab_config_action *action, char *why)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"test-prog";
    for (size_t i = 0; args && args[i]; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    memset(s, 0, sizeof(*s));
    why[0] = '\0';
    return ab_config_parse(&spec, argc, argv, (char *const *)env, s, action, why,
                           AB_CONFIG_WHY_MAX);
}

Test(config, defaults_fill_every_field)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    cr_assert_eq(run(NULL, NULL, &s, &a, why), 0, "%s", why);
    cr_assert_eq(a, AB_CONFIG_RUN);
    cr_assert_str_eq(s.url, "postgresql:///x");
    cr_assert_str_eq(s.http.host, "127.0.0.1");
    cr_assert_eq(s.http.port, 8080);
    cr_assert_eq(s.threads, 4);
    cr_assert_eq(s.verbose, false);
    cr_assert_eq(s.timeout_ms, 2000);
    cr_assert_eq(s.format, 0);
    cr_assert_eq(s.symbols.n, 2);
    cr_assert_str_eq(s.symbols.v[0], "BTCUSDT");
    cr_assert_str_eq(s.symbols.v[1], "ETHUSDT");
    cr_assert_eq(s.intervals.n, 1);
    cr_assert_eq(s.intervals.v[0], AB_I_1M);
    cr_assert_null(s.name, "no default leaves the field alone");
    cr_assert_null(s.key);
}

Test(config, env_beats_default)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    const char *env[] = {"OTHER=1",
                         "T_THREADS=8",
                         "T_HTTP=0.0.0.0:9000",
                         "T_VERBOSE=yes",
                         "T_TIMEOUT=250ms",
                         "T_LOG_FORMAT=json",
                         "T_SYMBOLS=BNBBTC",
                         "T_INTERVALS=1h,1M",
                         "T_KEY=s3cret",
                         NULL};
    cr_assert_eq(run(NULL, env, &s, &a, why), 0, "%s", why);
    cr_assert_eq(s.threads, 8);
    cr_assert_str_eq(s.http.host, "0.0.0.0");
    cr_assert_eq(s.http.port, 9000);
    cr_assert_eq(s.verbose, true);
    cr_assert_eq(s.timeout_ms, 250);
    cr_assert_eq(s.format, 1);
    cr_assert_eq(s.symbols.n, 1);
    cr_assert_str_eq(s.symbols.v[0], "BNBBTC");
    cr_assert_eq(s.intervals.n, 2);
    cr_assert_eq(s.intervals.v[0], AB_I_1H);
    cr_assert_eq(s.intervals.v[1], AB_I_1MO);
    cr_assert_str_eq(s.key, "s3cret");
}

Test(config, flag_beats_env_in_both_spellings)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    const char *env[] = {"T_THREADS=8", "T_HTTP=0.0.0.0:9000", "T_VERBOSE=true", NULL};
    const char *args[] = {"--threads", "16", "--http=[::1]:0", "--verbose=false", NULL};
    cr_assert_eq(run(args, env, &s, &a, why), 0, "%s", why);
    cr_assert_eq(s.threads, 16);
    cr_assert_str_eq(s.http.host, "::1");
    cr_assert_eq(s.http.port, 0);
    cr_assert_eq(s.verbose, false);
}

Test(config, overridden_env_is_never_parsed)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    const char *env[] = {"T_THREADS=banana", NULL};
    const char *args[] = {"--threads=2", NULL};
    cr_assert_eq(run(args, env, &s, &a, why), 0, "%s", why);
    cr_assert_eq(s.threads, 2);
    cr_assert_lt(run(NULL, env, &s, &a, why), 0, "without the flag the env value is parsed");
    cr_assert_not_null(strstr(why, "--threads (T_THREADS)"), "%s", why);
    cr_assert_not_null(strstr(why, "environment"), "%s", why);
    cr_assert_not_null(strstr(why, "banana"), "%s", why);
}

Test(config, empty_env_counts_as_unset)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    const char *env[] = {"T_THREADS=", NULL};
    cr_assert_eq(run(NULL, env, &s, &a, why), 0, "%s", why);
    cr_assert_eq(s.threads, 4);
}

Test(config, bare_bool_flag_and_last_flag_wins)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    const char *args[] = {"--verbose", "--threads=3", "--threads=5", NULL};
    cr_assert_eq(run(args, NULL, &s, &a, why), 0, "%s", why);
    cr_assert_eq(s.verbose, true);
    cr_assert_eq(s.threads, 5);
}

Test(config, errors_name_the_setting_and_source)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    const char *a1[] = {"--threads=0", NULL};
    cr_assert_eq(run(a1, NULL, &s, &a, why), AB_ERANGE);
    cr_assert_not_null(strstr(why, "--threads (T_THREADS)"), "%s", why);
    cr_assert_not_null(strstr(why, "command line"), "%s", why);
    cr_assert_not_null(strstr(why, "1 to 64"), "%s", why);

    const char *a2[] = {"--log-format=xml", NULL};
    cr_assert_eq(run(a2, NULL, &s, &a, why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "--log-format"), "%s", why);
    cr_assert_not_null(strstr(why, "text, json"), "%s", why);

    const char *a3[] = {"--timeout=5", NULL};
    cr_assert_lt(run(a3, NULL, &s, &a, why), 0, "a bare non-zero number is not a duration");
    cr_assert_not_null(strstr(why, "--timeout"), "%s", why);

    const char *a4[] = {"--timeout=2m", NULL};
    cr_assert_eq(run(a4, NULL, &s, &a, why), AB_ERANGE, "120000ms is above the max");

    const char *a5[] = {"--symbols=btcusdt", NULL};
    cr_assert_eq(run(a5, NULL, &s, &a, why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "--symbols (T_SYMBOLS)"), "%s", why);

    const char *a6[] = {"--name=toolongname", NULL};
    cr_assert_eq(run(a6, NULL, &s, &a, why), AB_ERANGE);
    cr_assert_not_null(strstr(why, "--name"), "%s", why);
}

Test(config, secret_values_are_never_echoed)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    char big[AB_CONFIG_STRING_MAX + 10];
    memset(big, 'p', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "hunter2", 7);
    char arg[AB_CONFIG_STRING_MAX + 40];
    snprintf(arg, sizeof(arg), "--database-url=%s", big);
    const char *args[] = {arg, NULL};
    cr_assert_eq(run(args, NULL, &s, &a, why), AB_ERANGE);
    cr_assert_not_null(strstr(why, "--database-url"), "%s", why);
    cr_assert_null(strstr(why, "hunter2"), "secret echoed: %s", why);

    const char *ok[] = {"--database-url=postgresql://u:hunter2@h/db", NULL};
    cr_assert_eq(run(ok, NULL, &s, &a, why), 0, "%s", why);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    ab_config_print(&spec, &s, f);
    fclose(f);
    cr_assert_null(strstr(text, "hunter2"), "%s", text);
    cr_assert_not_null(strstr(text, "database-url = (set)"), "%s", text);
    cr_assert_not_null(strstr(text, "threads = 4"), "%s", text);
    cr_assert_not_null(strstr(text, "http = 127.0.0.1:8080"), "%s", text);
    free(text);
}

Test(config, command_line_shape_errors)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    const char *a1[] = {"--nope=1", NULL};
    cr_assert_eq(run(a1, NULL, &s, &a, why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "unknown option --nope"), "%s", why);
    const char *a2[] = {"--threads", NULL};
    cr_assert_eq(run(a2, NULL, &s, &a, why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "--threads needs a value"), "%s", why);
    const char *a3[] = {"positional", NULL};
    cr_assert_eq(run(a3, NULL, &s, &a, why), AB_EINVAL);
    cr_assert_not_null(strstr(why, "positional"), "%s", why);
    const char *a4[] = {"-x", NULL};
    cr_assert_eq(run(a4, NULL, &s, &a, why), AB_EINVAL);
    const char *a5[] = {"--T_KEY=x", NULL};
    cr_assert_eq(run(a5, NULL, &s, &a, why), AB_EINVAL, "env-only settings have no flag");
}

Test(config, help_and_version_win_over_bad_input)
{
    struct settings s;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    const char *env[] = {"T_THREADS=banana", NULL};
    const char *a1[] = {"--threads=0", "--help", NULL};
    cr_assert_eq(run(a1, env, &s, &a, why), 0, "%s", why);
    cr_assert_eq(a, AB_CONFIG_HELP);
    const char *a2[] = {"-V", NULL};
    cr_assert_eq(run(a2, env, &s, &a, why), 0, "%s", why);
    cr_assert_eq(a, AB_CONFIG_VERSION);
    const char *a3[] = {"-h", NULL};
    cr_assert_eq(run(a3, NULL, &s, &a, why), 0, "%s", why);
    cr_assert_eq(a, AB_CONFIG_HELP);
}

Test(config, usage_lists_every_option_env_and_default)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    ab_config_usage(&spec, f);
    fclose(f);
    cr_assert_not_null(strstr(text, "Usage: test-prog"));
    for (size_t i = 0; i < spec.n_opts; i++) {
        const struct ab_config_opt *o = &spec.opts[i];
        char needle[128];
        if (o->flag) {
            snprintf(needle, sizeof(needle), "--%s=", o->flag);
            cr_assert_not_null(strstr(text, needle), "missing %s in:\n%s", needle, text);
        }
        if (o->env)
            cr_assert_not_null(strstr(text, o->env), "missing %s", o->env);
        if (o->def && *o->def) {
            snprintf(needle, sizeof(needle), "default: %s", o->def);
            cr_assert_not_null(strstr(text, needle), "missing %s", needle);
        }
        cr_assert_not_null(strstr(text, o->help), "missing help %s", o->help);
    }
    cr_assert_not_null(strstr(text, "--help"));
    cr_assert_not_null(strstr(text, "--version"));
    cr_assert_not_null(strstr(text, "one of text, json"));
    free(text);
}

Test(config, bad_default_is_reported)
{
    static const struct ab_config_opt bad[] = {
        {.flag = "port",
         .env = "T_PORT",
         .def = "99999",
         .help = "port",
         .type = AB_CONFIG_INT,
         .offset = 0,
         .min = 0,
         .max = 65535},
    };
    static const struct ab_config_spec bad_spec = {.prog = "x", .opts = bad, .n_opts = 1};
    int64_t v = 0;
    enum ab_config_action a;
    char why[AB_CONFIG_WHY_MAX];
    char *argv[] = {(char *)"x", NULL};
    cr_assert_eq(ab_config_parse(&bad_spec, 1, argv, NULL, &v, &a, why, sizeof(why)), AB_ERANGE);
    cr_assert_not_null(strstr(why, "the default"), "%s", why);
}

Test(config, addr_parser)
{
    struct ab_config_addr a;
    cr_assert_eq(ab_config_parse_addr("127.0.0.1:8080", &a), 0);
    cr_assert_str_eq(a.host, "127.0.0.1");
    cr_assert_eq(a.port, 8080);
    cr_assert_eq(ab_config_parse_addr("localhost:0", &a), 0);
    cr_assert_eq(a.port, 0);
    cr_assert_eq(ab_config_parse_addr("[::1]:65535", &a), 0);
    cr_assert_str_eq(a.host, "::1");
    cr_assert_eq(a.port, 65535);
    cr_assert_eq(ab_config_parse_addr("::1:80", &a), AB_EINVAL, "unbracketed IPv6");
    cr_assert_eq(ab_config_parse_addr("127.0.0.1:65536", &a), AB_ERANGE);
    cr_assert_eq(ab_config_parse_addr("127.0.0.1:", &a), AB_EINVAL);
    cr_assert_eq(ab_config_parse_addr(":80", &a), AB_EINVAL);
    cr_assert_eq(ab_config_parse_addr("127.0.0.1", &a), AB_EINVAL);
    cr_assert_eq(ab_config_parse_addr("127.0.0.1:8o", &a), AB_EINVAL);
    cr_assert_eq(ab_config_parse_addr("a b:80", &a), AB_EINVAL);
    cr_assert_eq(ab_config_parse_addr("[::1]80", &a), AB_EINVAL);
    cr_assert_eq(ab_config_parse_addr("", &a), AB_EINVAL);
}

Test(config, duration_parser)
{
    int64_t ms;
    cr_assert_eq(ab_config_parse_duration("0", &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(ab_config_parse_duration("100ms", &ms), 0);
    cr_assert_eq(ms, 100);
    cr_assert_eq(ab_config_parse_duration("5s", &ms), 0);
    cr_assert_eq(ms, 5000);
    cr_assert_eq(ab_config_parse_duration("2m", &ms), 0);
    cr_assert_eq(ms, 120000);
    cr_assert_eq(ab_config_parse_duration("1h", &ms), 0);
    cr_assert_eq(ms, 3600000);
    cr_assert_eq(ab_config_parse_duration("-1s", &ms), AB_EINVAL);
    cr_assert_eq(ab_config_parse_duration("1d", &ms), AB_EINVAL);
    cr_assert_eq(ab_config_parse_duration("s", &ms), AB_EINVAL);
    cr_assert_eq(ab_config_parse_duration("99999999999999999999h", &ms), AB_ERANGE);
    cr_assert_eq(ab_config_parse_duration("9223372036854775h", &ms), AB_ERANGE);
}

Test(config, list_parsers)
{
    struct ab_config_symbols s;
    cr_assert_eq(ab_config_parse_symbols("BTCUSDT,ETHUSDT,1INCHUSDT", &s), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.v[2], "1INCHUSDT");
    cr_assert_eq(ab_config_parse_symbols("BTCUSDT,BTCUSDT", &s), AB_EINVAL, "duplicate");
    cr_assert_eq(ab_config_parse_symbols("BTCUSDT,", &s), AB_EINVAL, "empty item");
    cr_assert_eq(ab_config_parse_symbols("BTC-USDT", &s), AB_EINVAL);
    /* Exactly the cap (2048, room for Binance's ~1500 symbols) fits; one more does not. The
     * text is far longer than AB_CONFIG_STRING_MAX, which applies to strings only. */
    static char many[AB_CONFIG_MAX_SYMBOLS * 12 + 16];
    size_t used = 0;
    for (int i = 0; i < AB_CONFIG_MAX_SYMBOLS; i++)
        used += (size_t)snprintf(many + used, sizeof(many) - used, "%sS%04dUSDT", i ? "," : "", i);
    cr_assert_gt(used, AB_CONFIG_STRING_MAX);
    cr_assert_eq(ab_config_parse_symbols(many, &s), 0);
    cr_assert_eq(s.n, AB_CONFIG_MAX_SYMBOLS);
    cr_assert_str_eq(s.v[1499], "S1499USDT");
    cr_assert_str_eq(s.v[AB_CONFIG_MAX_SYMBOLS - 1], "S2047USDT");
    snprintf(many + used, sizeof(many) - used, ",X");
    cr_assert_eq(ab_config_parse_symbols(many, &s), AB_ERANGE, "over the cap");
    cr_assert_eq(s.n, AB_CONFIG_MAX_SYMBOLS, "untouched on error");

    struct ab_config_intervals iv;
    cr_assert_eq(ab_config_parse_intervals("1s,1m,1M,1w", &iv), 0);
    cr_assert_eq(iv.n, 4);
    cr_assert_eq(iv.v[2], AB_I_1MO);
    cr_assert_eq(ab_config_parse_intervals("2m", &iv), AB_EINVAL);
    cr_assert_eq(ab_config_parse_intervals("1m,1m", &iv), AB_EINVAL);
    cr_assert_eq(ab_config_parse_intervals("", &iv), AB_EINVAL);
}

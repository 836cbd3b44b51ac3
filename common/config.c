#include "common/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"

enum source { SRC_DEFAULT, SRC_ENV, SRC_FLAG };

const char *const ab_config_log_formats[] = {"text", "json", NULL};
const char *const ab_config_log_levels[] = {"debug", "info", "warn", "error", NULL};

static const char *const source_name[] = {"the default", "the environment", "the command line"};

static void say(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* "--http (ABIDANCE_HTTP_ADDR)", "--http" or "CREDENTIAL_KEY". */
static void opt_name(const struct ab_config_opt *o, char *buf, size_t len)
{
    if (o->flag && o->env)
        snprintf(buf, len, "--%s (%s)", o->flag, o->env);
    else if (o->flag)
        snprintf(buf, len, "--%s", o->flag);
    else
        snprintf(buf, len, "%s", o->env ? o->env : "?");
}

static int parse_i64(const char *text, int64_t *out)
{
    if (!text || !*text)
        return AB_EINVAL;
    const char *p = text;
    if (*p == '-' || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return AB_EINVAL;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0')
        return AB_EINVAL;
    if (errno == ERANGE)
        return AB_ERANGE;
    *out = v;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return AB_EINVAL;
}

int ab_config_parse_duration(const char *text, int64_t *out_ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

    if (!text || *text < '0' || *text > '9')
        return AB_EINVAL;
    errno = 0;
    char *end = NULL;
    long long n = strtoll(text, &end, 10);
    if (errno == ERANGE)
        return AB_ERANGE;
    if (*end == '\0') {
        /* A bare number is only unambiguous when it is zero. */
        if (n != 0)
            return AB_EINVAL;
        *out_ms = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].ms)
                return AB_ERANGE;
            *out_ms = (int64_t)n * units[i].ms;
            return 0;
        }
    }
    return AB_EINVAL;
}

int ab_config_parse_addr(const char *text, struct ab_config_addr *out)
{
    if (!text || !*text)
        return AB_EINVAL;
    const char *host = text, *host_end, *colon;
    if (*text == '[') {
        host = text + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return AB_EINVAL;
        colon = host_end + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return AB_EINVAL;
        host_end = colon;
        /* An unbracketed IPv6 literal is ambiguous: require brackets. */
        if (memchr(text, ':', (size_t)(colon - text)))
            return AB_EINVAL;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0)
        return AB_EINVAL;
    if (hlen >= AB_CONFIG_HOST_MAX)
        return AB_ERANGE;
    for (size_t i = 0; i < hlen; i++) {
        char c = host[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == ':' || c == '_';
        if (!ok || (c == ':' && *text != '['))
            return AB_EINVAL;
    }
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5)
        return plen == 0 ? AB_EINVAL : AB_ERANGE;
    long v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (port[i] < '0' || port[i] > '9')
            return AB_EINVAL;
        v = v * 10 + (port[i] - '0');
    }
    if (v > 65535)
        return AB_ERANGE;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (uint16_t)v;
    return 0;
}

/* Calls fn for each comma-separated item (empty items are errors). */
static int each_item(const char *text, int (*fn)(const char *s, size_t len, void *arg), void *arg)
{
    if (!text || !*text)
        return AB_EINVAL;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0)
            return AB_EINVAL;
        int rc = fn(p, len, arg);
        if (rc < 0)
            return rc;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int add_symbol(const char *s, size_t len, void *arg)
{
    struct ab_config_symbols *l = arg;
    if (!ab_symbol_valid(s, len))
        return AB_EINVAL;
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && memcmp(l->v[i], s, len) == 0)
            return AB_EINVAL;
    if (l->n >= AB_CONFIG_MAX_SYMBOLS)
        return AB_ERANGE;
    memcpy(l->v[l->n], s, len);
    l->v[l->n][len] = '\0';
    l->n++;
    return 0;
}

int ab_config_parse_symbols(const char *text, struct ab_config_symbols *out)
{
    struct ab_config_symbols tmp = {0};
    int rc = each_item(text, add_symbol, &tmp);
    if (rc < 0)
        return rc;
    *out = tmp;
    return 0;
}

static int add_interval(const char *s, size_t len, void *arg)
{
    struct ab_config_intervals *l = arg;
    enum ab_interval iv;
    if (ab_interval_parse(s, len, &iv) < 0)
        return AB_EINVAL;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == iv)
            return AB_EINVAL;
    if (l->n >= AB_I_COUNT)
        return AB_ERANGE;
    l->v[l->n++] = iv;
    return 0;
}

int ab_config_parse_intervals(const char *text, struct ab_config_intervals *out)
{
    struct ab_config_intervals tmp = {0};
    int rc = each_item(text, add_interval, &tmp);
    if (rc < 0)
        return rc;
    *out = tmp;
    return 0;
}

static const char *type_metavar(const struct ab_config_opt *o)
{
    if (o->metavar)
        return o->metavar;
    switch (o->type) {
    case AB_CONFIG_STRING:
        return "TEXT";
    case AB_CONFIG_INT:
        return "N";
    case AB_CONFIG_BOOL:
        return "BOOL";
    case AB_CONFIG_DURATION:
        return "DURATION";
    case AB_CONFIG_ENUM:
        return "NAME";
    case AB_CONFIG_ADDR:
        return "HOST:PORT";
    case AB_CONFIG_SYMBOLS:
        return "SYMBOLS";
    case AB_CONFIG_INTERVALS:
        return "INTERVALS";
    }
    return "VALUE";
}

/* What a valid value looks like, for error messages. */
static void expectation(const struct ab_config_opt *o, char *buf, size_t len)
{
    switch (o->type) {
    case AB_CONFIG_STRING:
        snprintf(buf, len, "at most %" PRId64 " bytes", o->max > 0 ? o->max : AB_CONFIG_STRING_MAX);
        return;
    case AB_CONFIG_INT:
        snprintf(buf, len, "an integer from %" PRId64 " to %" PRId64, o->min, o->max);
        return;
    case AB_CONFIG_BOOL:
        snprintf(buf, len, "true or false");
        return;
    case AB_CONFIG_DURATION:
        snprintf(buf, len,
                 "a duration such as 250ms, 5s, 2m or 1h, from %" PRId64 "ms to %" PRId64 "ms",
                 o->min, o->max);
        return;
    case AB_CONFIG_ENUM: {
        size_t used = (size_t)snprintf(buf, len, "one of");
        for (size_t i = 0; o->choices && o->choices[i] && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s %s", i ? "," : "", o->choices[i]);
        return;
    }
    case AB_CONFIG_ADDR:
        snprintf(buf, len, "host:port (IPv6 as [addr]:port), port 0-65535");
        return;
    case AB_CONFIG_SYMBOLS:
        snprintf(buf, len,
                 "a comma-separated list of at most %d distinct symbols of upper-case letters "
                 "and digits",
                 AB_CONFIG_MAX_SYMBOLS);
        return;
    case AB_CONFIG_INTERVALS:
        snprintf(buf, len,
                 "a comma-separated list of distinct intervals "
                 "(1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)");
        return;
    }
    snprintf(buf, len, "a valid value");
}

/* Parses text into the field of o inside cfg. */
static int parse_value(const struct ab_config_opt *o, const char *text, void *cfg)
{
    char *field = (char *)cfg + o->offset;
    int rc;
    switch (o->type) {
    case AB_CONFIG_STRING: {
        size_t cap = o->max > 0 ? (size_t)o->max : AB_CONFIG_STRING_MAX;
        if (strnlen(text, cap + 1) > cap)
            return AB_ERANGE;
        memcpy(field, &text, sizeof(text));
        return 0;
    }
    case AB_CONFIG_INT:
    case AB_CONFIG_DURATION: {
        int64_t v;
        rc = o->type == AB_CONFIG_INT ? parse_i64(text, &v) : ab_config_parse_duration(text, &v);
        if (rc < 0)
            return rc;
        if (v < o->min || v > o->max)
            return AB_ERANGE;
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case AB_CONFIG_BOOL: {
        bool b;
        rc = parse_bool(text, &b);
        if (rc < 0)
            return rc;
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    case AB_CONFIG_ENUM:
        for (int i = 0; o->choices && o->choices[i]; i++) {
            if (strcmp(text, o->choices[i]) == 0) {
                memcpy(field, &i, sizeof(i));
                return 0;
            }
        }
        return AB_EINVAL;
    case AB_CONFIG_ADDR: {
        struct ab_config_addr a;
        rc = ab_config_parse_addr(text, &a);
        if (rc < 0)
            return rc;
        memcpy(field, &a, sizeof(a));
        return 0;
    }
    case AB_CONFIG_SYMBOLS:
        return ab_config_parse_symbols(text, (struct ab_config_symbols *)(void *)field);
    case AB_CONFIG_INTERVALS:
        return ab_config_parse_intervals(text, (struct ab_config_intervals *)(void *)field);
    }
    return AB_EINVAL;
}

static const char *env_lookup(char *const *envp, const char *name)
{
    if (!envp || !name)
        return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; envp[i]; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    }
    return NULL;
}

static const struct ab_config_opt *find_flag(const struct ab_config_spec *spec, const char *name,
                                             size_t len, size_t *idx)
{
    for (size_t i = 0; i < spec->n_opts; i++) {
        const char *f = spec->opts[i].flag;
        if (f && strlen(f) == len && memcmp(f, name, len) == 0) {
            *idx = i;
            return &spec->opts[i];
        }
    }
    return NULL;
}

int ab_config_parse(const struct ab_config_spec *spec, int argc, char *const *argv,
                    char *const *envp, void *cfg, enum ab_config_action *action, char *why,
                    size_t why_len)
{
    const char *flag_text[AB_CONFIG_MAX_OPTS] = {0};

    if (!spec || !cfg || !action || spec->n_opts > AB_CONFIG_MAX_OPTS) {
        say(why, why_len, "invalid option table");
        return AB_EINVAL;
    }
    *action = AB_CONFIG_RUN;

    /* Help and version win over everything, even errors elsewhere. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *action = AB_CONFIG_HELP;
            return 0;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            *action = AB_CONFIG_VERSION;
            return 0;
        }
    }

    /* Collect flag values (last one wins) before touching anything else. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc) {
                say(why, why_len, "unexpected argument \"%.64s\" (settings are --flags)",
                    argv[i + 1]);
                return AB_EINVAL;
            }
            break;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            say(why, why_len, "unexpected argument \"%.64s\" (see --help)", a);
            return AB_EINVAL;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        size_t idx = 0;
        const struct ab_config_opt *o = find_flag(spec, name, nlen, &idx);
        if (!o) {
            say(why, why_len, "unknown option --%.*s (see --help)", (int)(nlen > 64 ? 64 : nlen),
                name);
            return AB_EINVAL;
        }
        if (eq) {
            flag_text[idx] = eq + 1;
        } else if (o->type == AB_CONFIG_BOOL) {
            flag_text[idx] = "true";
        } else if (i + 1 < argc) {
            flag_text[idx] = argv[++i];
        } else {
            say(why, why_len, "--%s needs a value: %s", o->flag, type_metavar(o));
            return AB_EINVAL;
        }
    }

    for (size_t i = 0; i < spec->n_opts; i++) {
        const struct ab_config_opt *o = &spec->opts[i];
        const char *text = flag_text[i];
        enum source src = SRC_FLAG;
        if (!text) {
            text = env_lookup(envp, o->env);
            src = SRC_ENV;
            if (text && !*text)
                text = NULL; /* VAR= counts as unset */
        }
        if (!text) {
            text = o->def;
            src = SRC_DEFAULT;
        }
        if (!text)
            continue;
        int rc = parse_value(o, text, cfg);
        if (rc < 0) {
            char name[160], expect[256];
            opt_name(o, name, sizeof(name));
            expectation(o, expect, sizeof(expect));
            if (o->secret)
                say(why, why_len, "%s from %s: invalid value: expected %s", name, source_name[src],
                    expect);
            else
                say(why, why_len, "%s from %s: \"%.80s\": expected %s", name, source_name[src],
                    text, expect);
            return rc;
        }
    }
    return 0;
}

void ab_config_usage(const struct ab_config_spec *spec, FILE *out)
{
    fprintf(out, "Usage: %s [options]\n\n", spec->prog);
    if (spec->summary)
        fprintf(out, "%s\n\n", spec->summary);
    fprintf(out, "Every setting has a flag and an environment variable; the flag wins.\n\n");
    fprintf(out, "Options:\n");
    for (size_t i = 0; i < spec->n_opts; i++) {
        const struct ab_config_opt *o = &spec->opts[i];
        char lhs[128];
        if (o->flag)
            snprintf(lhs, sizeof(lhs), "--%s=%s", o->flag, type_metavar(o));
        else
            snprintf(lhs, sizeof(lhs), "(no flag)");
        fprintf(out, "  %-28s %s\n", lhs, o->help ? o->help : "");
        char expect[256];
        expectation(o, expect, sizeof(expect));
        fprintf(out, "  %-28s env %s; default: %s\n", "", o->env ? o->env : "(none)",
                o->def ? (*o->def ? o->def : "(empty)") : "(none)");
        if (o->type == AB_CONFIG_ENUM || o->type == AB_CONFIG_DURATION || o->type == AB_CONFIG_INT)
            fprintf(out, "  %-28s %s\n", "", expect);
    }
    fprintf(out, "  %-28s %s\n", "-h, --help", "show this help and exit");
    fprintf(out, "  %-28s %s\n", "-V, --version", "print the version and exit");
}

static void format_value(const struct ab_config_opt *o, const void *cfg, FILE *out)
{
    const char *field = (const char *)cfg + o->offset;
    switch (o->type) {
    case AB_CONFIG_STRING: {
        const char *s;
        memcpy(&s, field, sizeof(s));
        if (o->secret)
            fputs(s && *s ? "(set)" : "(empty)", out);
        else
            fputs(s ? s : "(none)", out);
        return;
    }
    case AB_CONFIG_INT:
    case AB_CONFIG_DURATION: {
        int64_t v;
        memcpy(&v, field, sizeof(v));
        fprintf(out, "%" PRId64 "%s", v, o->type == AB_CONFIG_DURATION ? "ms" : "");
        return;
    }
    case AB_CONFIG_BOOL: {
        bool b;
        memcpy(&b, field, sizeof(b));
        fputs(b ? "true" : "false", out);
        return;
    }
    case AB_CONFIG_ENUM: {
        int idx;
        memcpy(&idx, field, sizeof(idx));
        int n = 0;
        while (o->choices && o->choices[n])
            n++;
        fputs(idx >= 0 && idx < n ? o->choices[idx] : "?", out);
        return;
    }
    case AB_CONFIG_ADDR: {
        const struct ab_config_addr *a = (const void *)field;
        if (strchr(a->host, ':'))
            fprintf(out, "[%s]:%u", a->host, (unsigned)a->port);
        else
            fprintf(out, "%s:%u", a->host, (unsigned)a->port);
        return;
    }
    case AB_CONFIG_SYMBOLS: {
        const struct ab_config_symbols *l = (const void *)field;
        for (size_t i = 0; i < l->n; i++)
            fprintf(out, "%s%s", i ? "," : "", l->v[i]);
        return;
    }
    case AB_CONFIG_INTERVALS: {
        const struct ab_config_intervals *l = (const void *)field;
        for (size_t i = 0; i < l->n; i++)
            fprintf(out, "%s%s", i ? "," : "", ab_interval_name(l->v[i]));
        return;
    }
    }
}

void ab_config_print(const struct ab_config_spec *spec, const void *cfg, FILE *out)
{
    for (size_t i = 0; i < spec->n_opts; i++) {
        const struct ab_config_opt *o = &spec->opts[i];
        fprintf(out, "%s = ", o->flag ? o->flag : o->env);
        if (o->secret && o->type != AB_CONFIG_STRING)
            fputs("(set)", out);
        else
            format_value(o, cfg, out);
        fputc('\n', out);
    }
}

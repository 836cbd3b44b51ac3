#include "params.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Latest accepted time: 9999-12-31T23:59:59.999Z. */
#define TIME_MAX_MS 253402300799999LL

/* Shown values are cut so an error message stays short. */
#define SHOW 40

static enum MHD_Result collect_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct params *p = cls;
    (void)kind;
    if (p->n >= PARAMS_MAX) {
        p->overflow = true;
        return MHD_NO;
    }
    if (!key || strlen(key) != key_size || (value && strlen(value) != value_size))
        p->nul_in_text = true;
    p->v[p->n].key = key ? key : "";
    p->v[p->n].value = value ? value : "";
    p->n++;
    return MHD_YES;
}

int params_collect(struct MHD_Connection *conn, struct params *p, struct api_error *e)
{
    memset(p, 0, sizeof(*p));
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, collect_one, p);
    if (p->overflow)
        return api_fail(e, API_INVALID_PARAMETER, "too many query parameters (at most %d)",
                        PARAMS_MAX);
    if (p->nul_in_text)
        return api_fail(e, API_INVALID_PARAMETER, "query parameters must not contain NUL bytes");
    return 0;
}

int params_check(const struct params *p, const char *const *allowed, struct api_error *e)
{
    for (size_t i = 0; i < p->n; i++) {
        const char *k = p->v[i].key;
        bool known = false;
        for (size_t j = 0; allowed && allowed[j]; j++) {
            if (strcmp(k, allowed[j]) == 0) {
                known = true;
                break;
            }
        }
        if (!known)
            return api_fail(e, API_UNKNOWN_PARAMETER,
                            "unknown query parameter \"%.*s\" for this endpoint", SHOW, k);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(k, p->v[j].key) == 0)
                return api_fail(e, API_INVALID_PARAMETER, "query parameter %s is given twice", k);
        }
    }
    return 0;
}

const char *params_get(const struct params *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].key, key) == 0)
            return p->v[i].value;
    return NULL;
}

int param_symbol(const struct params *p, const char *key, char out[AB_SYMBOL_MAX],
                 struct api_error *e)
{
    const char *v = params_get(p, key);
    if (!v || !*v)
        return api_fail(e, API_MISSING_PARAMETER, "query parameter %s is required", key);
    size_t len = strlen(v);
    if (!ab_symbol_valid(v, len))
        return api_fail(e, API_INVALID_PARAMETER,
                        "%s must be 1 to %d upper-case letters and digits, got \"%.*s\"", key,
                        AB_SYMBOL_MAX - 1, SHOW, v);
    memcpy(out, v, len + 1);
    return 0;
}

int param_interval(const struct params *p, const char *key, enum ab_interval *out,
                   struct api_error *e)
{
    const char *v = params_get(p, key);
    if (!v || !*v)
        return api_fail(e, API_MISSING_PARAMETER, "query parameter %s is required", key);
    if (ab_interval_parse(v, strlen(v), out) < 0)
        return api_fail(e, API_INVALID_PARAMETER,
                        "%s must be one of 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M, "
                        "got \"%.*s\"",
                        key, SHOW, v);
    return 0;
}

int param_time(const struct params *p, const char *key, int64_t *out, bool *present,
               struct api_error *e)
{
    const char *v = params_get(p, key);
    *present = false;
    if (!v)
        return 0;
    int rc = params_parse_time(v, strlen(v), out);
    if (rc == AB_ERANGE)
        return api_fail(e, API_INVALID_PARAMETER,
                        "%s is out of range (1970-01-01 to 9999-12-31), got \"%.*s\"", key, SHOW,
                        v);
    if (rc < 0)
        return api_fail(e, API_INVALID_PARAMETER,
                        "%s must be epoch milliseconds or an RFC 3339 time such as "
                        "2024-05-01T12:00:00Z, got \"%.*s\"",
                        key, SHOW, v);
    *present = true;
    return 0;
}

static bool parse_int(const char *v, int64_t *out)
{
    const char *q = v;
    if (*q == '-')
        q++;
    if (*q < '0' || *q > '9')
        return false;
    errno = 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return false;
    *out = n;
    return true;
}

int param_int(const struct params *p, const char *key, int64_t def, int64_t min, int64_t max,
              int64_t *out, struct api_error *e)
{
    const char *v = params_get(p, key);
    if (!v) {
        *out = def;
        return 0;
    }
    int64_t n;
    if (!parse_int(v, &n) || n < min || n > max)
        return api_fail(e, API_INVALID_PARAMETER,
                        "%s must be an integer from %lld to %lld, got \"%.*s\"", key,
                        (long long)min, (long long)max, SHOW, v);
    *out = n;
    return 0;
}

int param_double(const struct params *p, const char *key, double def, double min, double max,
                 double *out, struct api_error *e)
{
    const char *v = params_get(p, key);
    if (!v) {
        *out = def;
        return 0;
    }
    /* Plain decimal only: no hex floats, "inf" or "nan" from strtod. */
    bool ok = *v != '\0';
    for (const char *q = v; *q && ok; q++)
        ok = (*q >= '0' && *q <= '9') || *q == '.' || (*q == '-' && q == v);
    double d = 0;
    if (ok) {
        char *end = NULL;
        errno = 0;
        d = strtod(v, &end);
        ok = *end == '\0' && errno == 0 && isfinite(d) && d >= min && d <= max;
    }
    if (!ok)
        return api_fail(e, API_INVALID_PARAMETER, "%s must be a number from %g to %g, got \"%.*s\"",
                        key, min, max, SHOW, v);
    *out = d;
    return 0;
}

int param_bool(const struct params *p, const char *key, bool def, bool *out, struct api_error *e)
{
    const char *v = params_get(p, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = false;
        return 0;
    }
    return api_fail(e, API_INVALID_PARAMETER, "%s must be true or false, got \"%.*s\"", key, SHOW,
                    v);
}

static int choices_text(const char *const *names, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; names[i] && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
    return 0;
}

int param_choice(const struct params *p, const char *key, const char *const *names, int def,
                 int *out, struct api_error *e)
{
    const char *v = params_get(p, key);
    if (!v) {
        if (def < 0)
            return api_fail(e, API_MISSING_PARAMETER, "query parameter %s is required", key);
        *out = def;
        return 0;
    }
    for (int i = 0; names[i]; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    char list[160];
    choices_text(names, list, sizeof(list));
    return api_fail(e, API_INVALID_PARAMETER, "%s must be one of %s, got \"%.*s\"", key, list, SHOW,
                    v);
}

int param_list(const struct params *p, const char *key, const char *const *names, int *out_idx,
               size_t cap, size_t *n_out, struct api_error *e)
{
    const char *v = params_get(p, key);
    *n_out = 0;
    if (!v)
        return 0;
    char list[200];
    choices_text(names, list, sizeof(list));
    const char *item = v;
    for (;;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        int found = -1;
        for (int i = 0; names[i]; i++) {
            if (strlen(names[i]) == len && memcmp(names[i], item, len) == 0) {
                found = i;
                break;
            }
        }
        if (found < 0)
            return api_fail(e, API_INVALID_PARAMETER,
                            "%s must be a comma-separated list of %s, got \"%.*s\"", key, list,
                            SHOW, v);
        for (size_t j = 0; j < *n_out; j++)
            if (out_idx[j] == found)
                return api_fail(e, API_INVALID_PARAMETER, "%s lists %s twice", key, names[found]);
        if (*n_out >= cap)
            return api_fail(e, API_INVALID_PARAMETER, "%s lists too many names", key);
        out_idx[(*n_out)++] = found;
        if (!comma)
            return 0;
        item = comma + 1;
    }
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Reads exactly n digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return false;
        v = v * 10 + (s[(*i)++] - '0');
    }
    *out = v;
    return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

int params_parse_time(const char *s, size_t len, int64_t *out_ms)
{
    if (!s || len == 0)
        return AB_EINVAL;

    /* Epoch milliseconds: digits only. */
    bool all_digits = true;
    for (size_t k = 0; k < len; k++)
        all_digits = all_digits && s[k] >= '0' && s[k] <= '9';
    if (all_digits) {
        if (len > 15)
            return AB_ERANGE;
        int64_t v = 0;
        for (size_t k = 0; k < len; k++)
            v = v * 10 + (s[k] - '0');
        if (v > TIME_MAX_MS)
            return AB_ERANGE;
        *out_ms = v;
        return 0;
    }

    size_t i = 0;
    int year, mon, day, hh = 0, mm = 0, ss = 0, ms = 0;
    if (!digits(s, len, &i, 4, &year) || !expect(s, len, &i, '-') || !digits(s, len, &i, 2, &mon) ||
        !expect(s, len, &i, '-') || !digits(s, len, &i, 2, &day))
        return AB_EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
        return AB_EINVAL;
    int64_t offset_min = 0;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return AB_EINVAL;
        i++;
        if (!digits(s, len, &i, 2, &hh) || !expect(s, len, &i, ':') ||
            !digits(s, len, &i, 2, &mm) || !expect(s, len, &i, ':') || !digits(s, len, &i, 2, &ss))
            return AB_EINVAL;
        /* Second 60 is RFC 3339's leap second; it lands on the next second. */
        if (hh > 23 || mm > 59 || ss > 60)
            return AB_EINVAL;
        if (i < len && s[i] == '.') {
            i++;
            int nd = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                if (nd < 3)
                    ms = ms * 10 + (s[i] - '0');
                nd++;
                i++;
            }
            if (nd == 0 || nd > 9)
                return AB_EINVAL;
            for (int k = nd; k < 3; k++)
                ms *= 10;
        }
        if (i >= len)
            return AB_EINVAL; /* RFC 3339 requires an offset */
        if (s[i] == 'Z' || s[i] == 'z') {
            i++;
        } else if (s[i] == '+' || s[i] == '-' || s[i] == ' ') {
            int sign = s[i] == '-' ? -1 : 1, oh, om;
            i++;
            if (!digits(s, len, &i, 2, &oh) || !expect(s, len, &i, ':') ||
                !digits(s, len, &i, 2, &om) || oh > 23 || om > 59)
                return AB_EINVAL;
            offset_min = sign * (oh * 60 + om);
        } else {
            return AB_EINVAL;
        }
        if (i != len)
            return AB_EINVAL;
    }
    int64_t t = days_from_civil(year, mon, day) * 86400000LL +
                ((int64_t)hh * 3600 + mm * 60 + ss) * 1000LL + ms - offset_min * 60000LL;
    if (t < 0 || t > TIME_MAX_MS)
        return AB_ERANGE;
    *out_ms = t;
    return 0;
}

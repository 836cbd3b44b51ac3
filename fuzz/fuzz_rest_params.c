/*
 * Fuzz target for the REST query parameter readers (services/query/params.h).
 * The input is a decoded query string "k=v&k2=v2..." (libmicrohttpd has
 * already percent-decoded it); it becomes a struct params exactly as
 * params_collect would fill it, and every reader is run on it and checked
 * against an oracle of its documented rule. params_parse_time also gets each
 * value directly, and a parsed time must print and parse back to itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fuzz/targets.h"
#include "services/query/params.h"

#define RP_TIME_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

static const char *const rp_allowed[] = {"symbol", "interval", "start",  "end",        "limit",
                                         "fill",   "format",   "period", "indicators", NULL};
static const char *const rp_formats[] = {"json", "csv", NULL};
static const char *const rp_indicators[] = {"sma", "ema", "rsi", "macd", "bbands", NULL};

static void rp_check_error(int rc, const struct api_error *e)
{
    AB_FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == 0)
        return;
    AB_FUZZ_CHECK((unsigned)e->code < API_CODE_COUNT);
    AB_FUZZ_CHECK(ab_fuzz_terminated(e->message, sizeof(e->message)));
    AB_FUZZ_CHECK(e->message[0] != '\0');
}

/* Prints ms as RFC 3339 (UTC, milliseconds) from the civil calendar, by hand. */
static void rp_format_time(int64_t ms, char *buf, size_t cap)
{
    int64_t z = ms / 86400000 + 719468, rem = ms % 86400000;
    int64_t era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(buf, cap, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", (long long)y,
             (long long)m, (long long)d, (long long)(rem / 3600000), (long long)(rem / 60000 % 60),
             (long long)(rem / 1000 % 60), (long long)(rem % 1000));
}

static void rp_check_time_text(const char *v)
{
    int64_t t = -1;
    size_t len = strlen(v);
    int rc = params_parse_time(v, len, &t);
    AB_FUZZ_CHECK(rc == 0 || rc == AB_EINVAL || rc == AB_ERANGE);
    if (rc != 0)
        return;
    AB_FUZZ_CHECK(t >= 0 && t <= RP_TIME_MAX_MS);
    if (len > 0 && strspn(v, "0123456789") == len)
        AB_FUZZ_CHECK(t == strtoll(v, NULL, 10));
    char buf[64];
    rp_format_time(t, buf, sizeof(buf));
    int64_t back = -1;
    AB_FUZZ_CHECK(params_parse_time(buf, strlen(buf), &back) == 0 && back == t);
}

static bool rp_is_int(const char *v)
{
    const char *q = v + (*v == '-');
    return *q && strspn(q, "0123456789") == strlen(q);
}

static void rp_check_readers(const struct params *p)
{
    struct api_error e;
    memset(&e, 0, sizeof(e));

    /* params_check: only allowed keys, none twice. */
    bool want_ok = true;
    for (size_t i = 0; i < p->n && want_ok; i++) {
        bool known = false;
        for (size_t j = 0; rp_allowed[j]; j++)
            known = known || strcmp(p->v[i].key, rp_allowed[j]) == 0;
        want_ok = known;
        for (size_t j = 0; j < i && want_ok; j++)
            want_ok = strcmp(p->v[i].key, p->v[j].key) != 0;
    }
    int rc = params_check(p, rp_allowed, &e);
    rp_check_error(rc, &e);
    AB_FUZZ_CHECK((rc == 0) == want_ok);

    const char *v = params_get(p, "symbol");
    char sym[AB_SYMBOL_MAX];
    rc = param_symbol(p, "symbol", sym, &e);
    rp_check_error(rc, &e);
    AB_FUZZ_CHECK((rc == 0) == (v && ab_symbol_valid(v, strlen(v))));
    if (rc == 0)
        AB_FUZZ_CHECK(strcmp(sym, v) == 0);

    v = params_get(p, "interval");
    enum ab_interval iv;
    rc = param_interval(p, "interval", &iv, &e);
    rp_check_error(rc, &e);
    enum ab_interval iv2;
    AB_FUZZ_CHECK((rc == 0) == (v && ab_interval_parse(v, strlen(v), &iv2) == 0));
    if (rc == 0)
        AB_FUZZ_CHECK(iv == iv2);

    v = params_get(p, "start");
    int64_t t = -1, t2 = -1;
    bool present = true;
    rc = param_time(p, "start", &t, &present, &e);
    rp_check_error(rc, &e);
    if (!v) {
        AB_FUZZ_CHECK(rc == 0 && !present);
    } else {
        AB_FUZZ_CHECK((rc == 0) == (params_parse_time(v, strlen(v), &t2) == 0));
        AB_FUZZ_CHECK(rc != 0 || (present && t == t2));
    }

    v = params_get(p, "limit");
    int64_t n = 0;
    rc = param_int(p, "limit", 500, 1, 1000, &n, &e);
    rp_check_error(rc, &e);
    if (!v) {
        AB_FUZZ_CHECK(rc == 0 && n == 500);
    } else {
        bool ok = rp_is_int(v);
        if (ok) {
            errno = 0;
            long long x = strtoll(v, NULL, 10);
            ok = errno == 0 && x >= 1 && x <= 1000;
        }
        AB_FUZZ_CHECK((rc == 0) == ok);
        AB_FUZZ_CHECK(rc != 0 || (n >= 1 && n <= 1000 && n == strtoll(v, NULL, 10)));
    }

    double dv = -1;
    rc = param_double(p, "period", 0.5, 0.0, 1.0, &dv, &e);
    rp_check_error(rc, &e);
    AB_FUZZ_CHECK(rc != 0 || (dv >= 0.0 && dv <= 1.0));

    v = params_get(p, "fill");
    bool b = false;
    rc = param_bool(p, "fill", true, &b, &e);
    rp_check_error(rc, &e);
    if (!v)
        AB_FUZZ_CHECK(rc == 0 && b);
    else if (!strcmp(v, "true") || !strcmp(v, "1"))
        AB_FUZZ_CHECK(rc == 0 && b);
    else if (!strcmp(v, "false") || !strcmp(v, "0"))
        AB_FUZZ_CHECK(rc == 0 && !b);
    else
        AB_FUZZ_CHECK(rc == -1);

    v = params_get(p, "format");
    int choice = -5;
    rc = param_choice(p, "format", rp_formats, -1, &choice, &e);
    rp_check_error(rc, &e);
    AB_FUZZ_CHECK((rc == 0) == (v && (!strcmp(v, "json") || !strcmp(v, "csv"))));
    AB_FUZZ_CHECK(rc != 0 || !strcmp(rp_formats[choice], v));

    v = params_get(p, "indicators");
    int idx[3];
    size_t n_idx = 99;
    rc = param_list(p, "indicators", rp_indicators, idx, 3, &n_idx, &e);
    rp_check_error(rc, &e);
    if (rc == 0) {
        AB_FUZZ_CHECK(n_idx <= 3 && (v || n_idx == 0));
        char joined[64] = "";
        for (size_t i = 0; i < n_idx; i++) {
            AB_FUZZ_CHECK(idx[i] >= 0 && idx[i] < 5);
            for (size_t j = 0; j < i; j++)
                AB_FUZZ_CHECK(idx[i] != idx[j]);
            strncat(joined, i ? "," : "", sizeof(joined) - strlen(joined) - 1);
            strncat(joined, rp_indicators[idx[i]], sizeof(joined) - strlen(joined) - 1);
        }
        AB_FUZZ_CHECK(!v || strcmp(joined, v) == 0); /* the list, exactly as given */
    }

    for (size_t i = 0; i < p->n; i++)
        rp_check_time_text(p->v[i].value);
}

int ab_fuzz_rest_params(const uint8_t *data, size_t size)
{
    /* One private copy: pieces are NUL-terminated in place, as MHD hands them over. */
    char *text = malloc(size + 1);
    AB_FUZZ_CHECK(text != NULL);
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    struct params p;
    memset(&p, 0, sizeof(p));
    char *s = text, *end = text + size;
    while (s < end && p.n < PARAMS_MAX) {
        char *amp = memchr(s, '&', (size_t)(end - s));
        char *stop = amp ? amp : end;
        *stop = '\0';
        if (stop > s) { /* MHD skips empty pieces ("a=1&&b=2") */
            char *eq = memchr(s, '=', (size_t)(stop - s));
            if (eq)
                *eq = '\0';
            p.v[p.n].key = s;
            p.v[p.n].value = eq ? eq + 1 : "";
            p.n++;
        }
        s = stop + 1;
    }
    rp_check_readers(&p);
    free(text);
    return 0;
}

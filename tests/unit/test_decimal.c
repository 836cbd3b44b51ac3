#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/capture.h"
#include "common/decimal.h"
#include "common/err.h"

static struct ab_dec parse_ok(const char *s)
{
    struct ab_dec d;
    int rc = ab_dec_parse_cstr(s, &d);
    cr_assert_eq(rc, 0, "parse(\"%s\") = %d (%s)", s, rc, ab_err_str(rc));
    return d;
}

static void expect_canon(const char *in, const char *canon)
{
    char buf[AB_DEC_STR_MAX];
    struct ab_dec d = parse_ok(in);
    size_t n = ab_dec_format(d, buf);
    cr_assert_str_eq(buf, canon, "format(parse(\"%s\"))", in);
    cr_assert_eq(n, strlen(canon));
}

static void expect_fixed(const char *in, int frac, const char *want)
{
    char buf[AB_DEC_STR_MAX];
    struct ab_dec d = parse_ok(in);
    size_t n = ab_dec_format_fixed(d, frac, buf);
    cr_assert_str_eq(buf, want, "format_fixed(\"%s\", %d)", in, frac);
    cr_assert_eq(n, strlen(want));
}

static void expect_err(const char *in, int want)
{
    struct ab_dec d = ab_dec_from_units(777);
    int rc = ab_dec_parse_cstr(in, &d);
    cr_assert_eq(rc, want, "parse(\"%s\") = %d, want %d", in, rc, want);
    cr_assert_eq(d.v, (__int128)777, "output touched on error for \"%s\"", in);
}

Test(decimal, canonical_forms)
{
    expect_canon("0", "0");
    expect_canon("-0", "0");
    expect_canon("-0.00000000", "0");
    expect_canon("0.0", "0");
    expect_canon("000", "0");
    expect_canon("50000.00", "50000");
    expect_canon("0.00100000", "0.001");
    expect_canon("00012.340", "12.34");
    expect_canon("-1.5", "-1.5");
    expect_canon("-0.00000001", "-0.00000001");
    expect_canon("0.00000001", "0.00000001");
    expect_canon("1.000000000000000", "1"); /* trailing zeros beyond the 8th place are fine */
    expect_canon("10", "10");
    expect_canon("100.10", "100.1");
    expect_canon("92233720368.54775807", "92233720368.54775807");
    expect_canon("92233720368.54775808", "92233720368.54775808"); /* beyond int64 units */
    expect_canon("-92233720368.54775809", "-92233720368.54775809");
    expect_canon("123456789012345678901234.12345678", "123456789012345678901234.12345678");
    expect_canon("-999999999999999999999999.99999999", "-999999999999999999999999.99999999");
    expect_canon("0000000000000000000000000000001", "1"); /* leading zeros do not count */
}

Test(decimal, units_and_value)
{
    cr_assert_eq(parse_ok("1").v, (__int128)AB_DEC_SCALE);
    cr_assert_eq(parse_ok("0.00000001").v, (__int128)1);
    cr_assert_eq(parse_ok("-2.5").v, (__int128)-250000000);
    __int128 big = (__int128)92233720368LL * AB_DEC_SCALE + 54775808;
    cr_assert_eq(parse_ok("92233720368.54775808").v, big);
    cr_assert(parse_ok("92233720368.54775808").v > (__int128)INT64_MAX);
    struct ab_dec u = ab_dec_from_units(-12345);
    char buf[AB_DEC_STR_MAX];
    ab_dec_format(u, buf);
    cr_assert_str_eq(buf, "-0.00012345");
    cr_assert(ab_dec_is_zero(parse_ok("-0")));
    cr_assert(!ab_dec_is_neg(parse_ok("-0")));
    cr_assert(ab_dec_is_neg(parse_ok("-0.1")));
    cr_assert(ab_dec_is_zero(ab_dec_zero()));
}

Test(decimal, parse_with_length)
{
    struct ab_dec d;
    const char *s = "12.5xyz";
    cr_assert_eq(ab_dec_parse(s, 4, &d), 0);
    cr_assert_eq(d.v, (__int128)1250000000);
    cr_assert_eq(ab_dec_parse(s, 5, &d), AB_EINVAL);
    cr_assert_eq(ab_dec_parse(s, 0, &d), AB_EINVAL);
    cr_assert_eq(ab_dec_parse("1\0"
                              "2",
                              3, &d),
                 AB_EINVAL); /* embedded NUL */
}

Test(decimal, fixed_formats)
{
    expect_fixed("50000", 8, "50000.00000000");
    expect_fixed("50000", 2, "50000.00");
    expect_fixed("50000", 0, "50000");
    expect_fixed("0.001", 8, "0.00100000");
    expect_fixed("0", 8, "0.00000000");
    expect_fixed("-0", 2, "0.00");
    expect_fixed("-1.5", 3, "-1.500");
    expect_fixed("-0.00000001", 8, "-0.00000001");
    expect_fixed("123456789012345678901234.12345678", 8, "123456789012345678901234.12345678");
    expect_fixed("-999999999999999999999999.99999999", 8, "-999999999999999999999999.99999999");
    /* fewer places than the value has: truncated toward zero, no "-0" */
    expect_fixed("1.239", 2, "1.23");
    expect_fixed("-1.239", 2, "-1.23");
    expect_fixed("-0.001", 2, "0.00");
    /* out-of-range frac is clamped to 0..8 */
    expect_fixed("1.5", 12, "1.50000000");
    expect_fixed("1.5", -3, "1");
}

Test(decimal, malformed_inputs)
{
    const char *syntax[] = {"",      "-",  "1e5", "1E5", "--1",  "1.2.3", "+1",  " 1",   "1 ",
                            "5.",    ".5", "-.5", "0x1", "NaN",  "nan",   "inf", "-inf", "1,5",
                            "1_000", "١",  "1-",  "- 1", "1.-2", "1..2",  "\t1", "1\n",  "e"};
    for (size_t i = 0; i < sizeof syntax / sizeof *syntax; i++)
        expect_err(syntax[i], AB_EINVAL);
    cr_assert_eq(ab_dec_parse_cstr(NULL, &(struct ab_dec){0}), AB_EINVAL);
}

Test(decimal, range_errors)
{
    expect_err("123456789012345678901234567890", AB_ERANGE); /* 30 digits */
    expect_err("1000000000000000000000000", AB_ERANGE);      /* 10^24: 25 digits */
    expect_err("-1000000000000000000000000", AB_ERANGE);
    expect_err("1.000000001", AB_ERANGE); /* 9th place */
    expect_err("0.123456789", AB_ERANGE);
    expect_err("1.0000000010", AB_ERANGE);
    /* the largest accepted magnitudes */
    parse_ok("999999999999999999999999");
    parse_ok("999999999999999999999999.99999999");
    parse_ok("000999999999999999999999999.99999999000");
}

Test(decimal, compare)
{
    cr_assert_eq(ab_dec_cmp(parse_ok("1"), parse_ok("1.00000000")), 0);
    cr_assert_eq(ab_dec_cmp(parse_ok("0"), parse_ok("-0")), 0);
    cr_assert_eq(ab_dec_cmp(parse_ok("1"), parse_ok("2")), -1);
    cr_assert_eq(ab_dec_cmp(parse_ok("2"), parse_ok("1")), 1);
    cr_assert_eq(ab_dec_cmp(parse_ok("-2"), parse_ok("-1")), -1);
    cr_assert_eq(ab_dec_cmp(parse_ok("0.00000001"), parse_ok("0")), 1);
    cr_assert_eq(ab_dec_cmp(parse_ok("92233720368.54775808"), parse_ok("92233720368.54775807")), 1);
    cr_assert_eq(ab_dec_cmp(parse_ok("-999999999999999999999999.99999999"),
                            parse_ok("999999999999999999999999.99999999")),
                 -1);
}

static void expect_sum(const char *a, const char *b, const char *sum, const char *diff)
{
    struct ab_dec r;
    char buf[AB_DEC_STR_MAX];
    cr_assert_eq(ab_dec_add(parse_ok(a), parse_ok(b), &r), 0);
    ab_dec_format(r, buf);
    cr_assert_str_eq(buf, sum, "%s + %s", a, b);
    cr_assert_eq(ab_dec_sub(parse_ok(a), parse_ok(b), &r), 0);
    ab_dec_format(r, buf);
    cr_assert_str_eq(buf, diff, "%s - %s", a, b);
}

Test(decimal, add_sub)
{
    expect_sum("1", "2", "3", "-1");
    expect_sum("0.1", "0.2", "0.3", "-0.1");
    expect_sum("50000.12345678", "0.00000001", "50000.12345679", "50000.12345677");
    expect_sum("-5", "5", "0", "-10");
    expect_sum("92233720368.54775807", "0.00000001", "92233720368.54775808",
               "92233720368.54775806");
    expect_sum("500000000000000000000000", "499999999999999999999999.99999999",
               "999999999999999999999999.99999999", "0.00000001");
}

Test(decimal, overflow_at_range_edges)
{
    struct ab_dec max = parse_ok("999999999999999999999999.99999999");
    struct ab_dec min = parse_ok("-999999999999999999999999.99999999");
    struct ab_dec tiny = parse_ok("0.00000001");
    struct ab_dec r = ab_dec_from_units(42);
    cr_assert_eq(ab_dec_add(max, tiny, &r), AB_ERANGE);
    cr_assert_eq(r.v, (__int128)42, "output touched on overflow");
    cr_assert_eq(ab_dec_sub(min, tiny, &r), AB_ERANGE);
    cr_assert_eq(ab_dec_add(max, max, &r), AB_ERANGE);
    cr_assert_eq(ab_dec_sub(max, min, &r), AB_ERANGE);
    cr_assert_eq(ab_dec_sub(min, max, &r), AB_ERANGE);
    cr_assert_eq(ab_dec_add(min, min, &r), AB_ERANGE);
    cr_assert_eq(r.v, (__int128)42);
    cr_assert_eq(ab_dec_add(max, min, &r), 0);
    cr_assert(ab_dec_is_zero(r));
    cr_assert_eq(ab_dec_sub(max, tiny, &r), 0);
    cr_assert_eq(ab_dec_add(r, tiny, &r), 0);
    cr_assert_eq(ab_dec_cmp(r, max), 0);
    /* operands built outside the range (not through parse) are refused too */
    struct ab_dec huge = {(__int128)1 << 120};
    cr_assert_eq(ab_dec_add(huge, ab_dec_zero(), &r), AB_ERANGE);
    cr_assert_eq(ab_dec_sub(ab_dec_zero(), huge, &r), AB_ERANGE);
}

Test(decimal, to_double)
{
    cr_assert_eq(ab_dec_to_double(parse_ok("0")), 0.0);
    cr_assert_eq(ab_dec_to_double(parse_ok("1.5")), 1.5);
    cr_assert_eq(ab_dec_to_double(parse_ok("-0.25")), -0.25);
    cr_assert_eq(ab_dec_to_double(parse_ok("0.1")), 0.1);
    cr_assert_eq(ab_dec_to_double(parse_ok("50000.12345678")), 50000.12345678);
    double big = ab_dec_to_double(parse_ok("123456789012345678901234.12345678"));
    cr_assert(fabs(big - 123456789012345678901234.12345678) <= 1e-15 * big);
    double neg = ab_dec_to_double(parse_ok("-92233720368.54775808"));
    cr_assert(fabs(neg + 92233720368.54775808) < 1e-4);
}

/* ---- every decimal string in the recorded Binance data ---- */

struct tally {
    size_t checked;  /* values that parsed and round-tripped */
    size_t range;    /* values correctly refused with AB_ERANGE */
    size_t max_frac; /* most fractional digits seen */
};

/* ^-?[0-9]+(\.[0-9]+)?$ ; on a match, *frac is the number of fractional digits. */
static bool looks_numeric(const char *s, size_t len, size_t *frac)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    size_t d0 = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d0)
        return false;
    *frac = 0;
    if (i < len && s[i] == '.') {
        size_t f0 = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f0)
            return false;
        *frac = i - f0;
    }
    return i == len;
}

/* Independent of the parser: does the text need more than the decimal's range? */
static bool exceeds_range(const char *s, size_t len)
{
    size_t i = s[0] == '-' ? 1 : 0;
    while (i + 1 < len && s[i] == '0' && s[i + 1] != '.')
        i++;
    size_t int_digits = 0;
    while (i < len && s[i] != '.') {
        int_digits++;
        i++;
    }
    if (int_digits > AB_DEC_INT_DIGITS)
        return true;
    size_t end = len;
    if (i < len) {
        while (end > i + 1 && s[end - 1] == '0')
            end--;
        if (end - (i + 1) > AB_DEC_FRAC_DIGITS)
            return true;
    }
    return false;
}

static void check_string(const char *s, size_t len, struct tally *t, const char *where)
{
    size_t frac;
    if (!looks_numeric(s, len, &frac))
        return;
    struct ab_dec d;
    int rc = ab_dec_parse(s, len, &d);
    if (exceeds_range(s, len)) {
        cr_assert_eq(rc, AB_ERANGE, "%s: \"%.*s\" should be out of range", where, (int)len, s);
        t->range++;
        return;
    }
    cr_assert_eq(rc, 0, "%s: parse(\"%.*s\") = %d", where, (int)len, s, rc);
    if (frac > t->max_frac)
        t->max_frac = frac;

    char buf[AB_DEC_STR_MAX];
    /* Binance prints canonical integer parts; fixed formatting must reproduce them. */
    bool canonical_int = !(len > 1 && s[0] == '0' && s[1] != '.') &&
                         !(len > 2 && s[0] == '-' && s[1] == '0' && s[2] != '.');
    if (frac <= AB_DEC_FRAC_DIGITS && canonical_int && !(s[0] == '-' && ab_dec_is_zero(d))) {
        size_t n = ab_dec_format_fixed(d, (int)frac, buf);
        cr_assert(n == len && memcmp(buf, s, len) == 0, "%s: fixed(%zu) of \"%.*s\" gave \"%s\"",
                  where, frac, (int)len, s, buf);
    }
    size_t n = ab_dec_format(d, buf);
    cr_assert_eq(n, strlen(buf));
    struct ab_dec back;
    cr_assert_eq(ab_dec_parse(buf, n, &back), 0, "%s: canonical \"%s\" re-parse", where, buf);
    cr_assert_eq(ab_dec_cmp(back, d), 0, "%s: \"%.*s\" -> \"%s\"", where, (int)len, s, buf);
    /* canonical: no trailing fractional zero, no trailing '.', no leading zeros */
    if (memchr(buf, '.', n))
        cr_assert(buf[n - 1] != '0' && buf[n - 1] != '.', "%s: not canonical \"%s\"", where, buf);
    const char *digits = buf[0] == '-' ? buf + 1 : buf;
    cr_assert(!(digits[0] == '0' && digits[1] != '\0' && digits[1] != '.'), "%s: \"%s\"", where,
              buf);
    /* and the double view agrees with the C library's reading of the text */
    char text[128];
    if (len < sizeof text) {
        memcpy(text, s, len);
        text[len] = '\0';
        double want = strtod(text, NULL);
        double got = ab_dec_to_double(d);
        cr_assert(fabs(got - want) <= 1e-12 * fabs(want) + 1e-12, "%s: to_double(%s) = %.17g",
                  where, text, got);
    }
    t->checked++;
}

static void walk(json_t *j, struct tally *t, const char *where)
{
    const char *key;
    json_t *v;
    size_t i;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        json_object_foreach(j, key, v)
        {
            check_string(key, strlen(key), t, where);
            walk(v, t, where);
        }
        break;
    case JSON_ARRAY:
        json_array_foreach(j, i, v)
        {
            walk(v, t, where);
        }
        break;
    case JSON_STRING:
        check_string(json_string_value(j), json_string_length(j), t, where);
        break;
    default:
        break;
    }
}

static size_t walk_capture(const char *rel, struct tally *t)
{
    char path[512];
    snprintf(path, sizeof path, "%s/binance/%s", AB_SHARED_DATA, rel);
    struct ab_capture *c = NULL;
    int rc = ab_capture_open(path, 0, &c);
    cr_assert_eq(rc, 0, "cannot open %s", path);
    size_t before = t->checked, docs = 0;
    struct ab_capture_rec rec;
    const char *why = NULL;
    while ((rc = ab_capture_next(c, &rec, &why)) != 0) {
        cr_assert_gt(rc, 0, "%s:%zu: %s", rel, rec.line_no, why);
        if (rec.kind != AB_CAP_WS && rec.kind != AB_CAP_HTTP)
            continue;
        json_error_t jerr;
        json_t *j = json_loadb(rec.payload, rec.payload_len, 0, &jerr);
        cr_assert_not_null(j, "%s:%zu: %s", rel, rec.line_no, jerr.text);
        char where[600];
        snprintf(where, sizeof where, "%s:%zu", rel, rec.line_no);
        walk(j, t, where);
        json_decref(j);
        docs++;
    }
    ab_capture_free(c);
    cr_assert_gt(docs, 0, "%s: no records", rel);
    cr_log_info("%s: %zu documents, %zu values", rel, docs, t->checked - before);
    return t->checked - before;
}

static size_t walk_json_file(const char *rel, struct tally *t)
{
    char path[512];
    snprintf(path, sizeof path, "%s/binance/%s", AB_SHARED_DATA, rel);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    cr_assert_not_null(j, "%s: %s", path, jerr.text);
    size_t before = t->checked;
    walk(j, t, rel);
    json_decref(j);
    cr_log_info("%s: %zu values", rel, t->checked - before);
    return t->checked - before;
}

Test(decimal, recorded_values_round_trip, .timeout = 240)
{
    static const char *captures[] = {
        "cryptofeed-ce58c2a/BINANCE.0",        "cryptofeed-ce58c2a/BINANCE.http.0.0",
        "cryptofeed-ce58c2a/BINANCE.ws.1.0",   "cryptofeed-2997020/BINANCE-ee25be.0",
        "cryptofeed-1312c06/BINANCE-b38f7c.0", "cryptofeed-3525dc8/BINANCE.http.0.0",
        "cryptofeed-3525dc8/BINANCE.ws.1.0",
    };
    static const char *jsons[] = {
        "python-binance-c22c7de/klines_30m_2019-04-11_to_2019-04-21.json",
        "nautilus-209a58e/http_spot_market_klines.json",
        "official-docs/doc_examples.json",
    };
    struct tally t = {0};
    for (size_t i = 0; i < sizeof captures / sizeof *captures; i++)
        cr_assert_gt(walk_capture(captures[i], &t), 0, "%s: no decimal values", captures[i]);
    /* 500 candles x 9 decimal columns (the trailing "0" included) */
    cr_assert_eq(walk_json_file(jsons[0], &t), 500 * 9);
    cr_assert_eq(walk_json_file(jsons[1], &t), 10 * 9);
    cr_assert_gt(walk_json_file(jsons[2], &t), 20);
    cr_log_info("recorded decimals: %zu round-tripped, %zu out of range, max %zu decimals",
                t.checked, t.range, t.max_frac);
    fprintf(stderr, "recorded decimals: %zu round-tripped, %zu out of range\n", t.checked, t.range);
    cr_assert_gt(t.checked, 200000, /* 215,955 when measured */ "only %zu values checked",
                 t.checked);
    cr_assert_eq(t.max_frac, 8);
}

/* A value built digit by digit with __int128, independent of the parser. */
static __int128 reference_units(const char *int_digits, const char *frac_digits)
{
    __int128 v = 0;
    for (const char *p = int_digits; *p; p++)
        v = v * 10 + (*p - '0');
    for (int k = 0; k < AB_DEC_FRAC_DIGITS; k++)
        v = v * 10 + (k < (int)strlen(frac_digits) ? frac_digits[k] - '0' : 0);
    return v;
}

/*
 * ab_dec_parse takes a 64-bit path up to 18 integer and 8 fractional digits
 * and a general one beyond: both sides of that boundary, signs, and trailing
 * zeros past the 8th place must give the exact same value.
 */
Test(decimal, fast_path_boundaries)
{
    static const char *ints[] = {"0",
                                 "7",
                                 "99999999999999999",    /* 17 digits */
                                 "999999999999999999",   /* 18: last fast length */
                                 "1000000000000000000",  /* 19: general path */
                                 "18446744073709551615", /* 2^64 - 1 */
                                 "18446744073709551616", /* 2^64: would wrap in 64 bits */
                                 "000000000000000000042",
                                 "999999999999999999999999"};
    static const char *fracs[] = {"", "5", "00000001", "99999999", "12345678000", "10000000"};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        for (size_t j = 0; j < sizeof fracs / sizeof *fracs; j++) {
            char text[80], trimmed[16];
            size_t n = strlen(fracs[j]);
            while (n > 0 && fracs[j][n - 1] == '0')
                n--;
            snprintf(trimmed, sizeof trimmed, "%.*s", (int)n, fracs[j]);
            __int128 want = reference_units(ints[i], trimmed);
            for (int neg = 0; neg < 2; neg++) {
                snprintf(text, sizeof text, "%s%s%s%s", neg ? "-" : "", ints[i],
                         fracs[j][0] ? "." : "", fracs[j]);
                struct ab_dec d = parse_ok(text);
                cr_assert(d.v == (neg ? -want : want), "parse(\"%s\") wrong value", text);
            }
        }
    }
    /* 9 fractional digits leave the fast path: a trailing zero is fine, a digit is not */
    cr_assert(parse_ok("1.123456780").v == (__int128)112345678);
    expect_err("1.123456789", AB_ERANGE);
    expect_err("-999999999999999999.", AB_EINVAL);
}

/*
 * Fuzz target for common/decimal.h. A text-level oracle decides, without any
 * arithmetic, whether the input must parse and what its canonical form is;
 * the parser, both formatters and the arithmetic are checked against it.
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/decimal.h"
#include "common/err.h"
#include "fuzz/targets.h"

static bool dec_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * The documented grammar and limits, checked on the text alone. Returns the
 * code ab_dec_parse must return; on 0 fills the canonical form into canon
 * (AB_DEC_STR_MAX bytes) and the sign, integer and 8 fractional digits.
 */
static int dec_oracle(const char *s, size_t n, char *canon, bool *neg, char *int_digits,
                      char frac8[9])
{
    size_t i = 0;
    *neg = false;
    if (i < n && s[i] == '-') {
        *neg = true;
        i++;
    }
    size_t is = i;
    while (i < n && dec_is_digit(s[i]))
        i++;
    size_t ie = i;
    if (ie == is)
        return AB_EINVAL;
    size_t fs = i, fe = i;
    if (i < n && s[i] == '.') {
        fs = ++i;
        while (i < n && dec_is_digit(s[i]))
            i++;
        fe = i;
        if (fe == fs)
            return AB_EINVAL;
    }
    if (i != n)
        return AB_EINVAL;
    while (is + 1 < ie && s[is] == '0')
        is++;
    while (fe > fs && s[fe - 1] == '0')
        fe--;
    if (ie - is > AB_DEC_INT_DIGITS || fe - fs > AB_DEC_FRAC_DIGITS)
        return AB_ERANGE;
    memcpy(int_digits, s + is, ie - is);
    int_digits[ie - is] = '\0';
    memset(frac8, '0', 8);
    memcpy(frac8, s + fs, fe - fs);
    frac8[8] = '\0';
    bool zero = strcmp(int_digits, "0") == 0 && fe == fs;
    if (zero)
        *neg = false;
    snprintf(canon, AB_DEC_STR_MAX, "%s%s%s%.*s", *neg ? "-" : "", int_digits, fe > fs ? "." : "",
             (int)(fe - fs), s + fs);
    return 0;
}

/* Checks one value; returns true when it parsed (and fills *out). */
static bool dec_check_one(const char *s, size_t n, struct ab_dec *out)
{
    char canon[AB_DEC_STR_MAX], ints[AB_DEC_INT_DIGITS + 1], frac8[9];
    bool neg;
    int want = dec_oracle(s, n, canon, &neg, ints, frac8);

    struct ab_dec d = ab_dec_from_units(12345);
    int rc = ab_dec_parse(s, n, &d);
    AB_FUZZ_CHECK(rc == want);
    if (rc != 0) {
        AB_FUZZ_CHECK(d.v == 12345); /* untouched on error */
        return false;
    }

    char buf[AB_DEC_STR_MAX];
    size_t len = ab_dec_format(d, buf);
    AB_FUZZ_CHECK(len < AB_DEC_STR_MAX && len == strlen(buf));
    AB_FUZZ_CHECK(strcmp(buf, canon) == 0);
    AB_FUZZ_CHECK(ab_dec_is_neg(d) == neg);
    AB_FUZZ_CHECK(ab_dec_is_zero(d) == (strcmp(canon, "0") == 0));

    struct ab_dec back;
    AB_FUZZ_CHECK(ab_dec_parse(buf, len, &back) == 0 && ab_dec_cmp(back, d) == 0);

    /* Fixed formats truncate: compare with the oracle's digits. */
    for (int frac = 0; frac <= AB_DEC_FRAC_DIGITS; frac++) {
        char want_fixed[AB_DEC_STR_MAX + 2];
        bool nonzero = strcmp(ints, "0") != 0 || strspn(frac8, "0") < (size_t)frac;
        snprintf(want_fixed, sizeof want_fixed, "%s%s%s%.*s", neg && nonzero ? "-" : "", ints,
                 frac > 0 ? "." : "", frac, frac8);
        len = ab_dec_format_fixed(d, frac, buf);
        AB_FUZZ_CHECK(len < AB_DEC_STR_MAX && len == strlen(buf));
        AB_FUZZ_CHECK(strcmp(buf, want_fixed) == 0);
    }
    AB_FUZZ_CHECK(ab_dec_parse(buf, len, &back) == 0 && ab_dec_cmp(back, d) == 0);

    /* Doubles are for indicators only, but must be close to the text's value. */
    double x = ab_dec_to_double(d), y = strtod(canon, NULL);
    AB_FUZZ_CHECK(isfinite(x));
    AB_FUZZ_CHECK(fabs(x - y) <= 4 * DBL_EPSILON * fabs(y));

    struct ab_dec r;
    AB_FUZZ_CHECK(ab_dec_cmp(d, d) == 0);
    AB_FUZZ_CHECK(ab_dec_add(d, ab_dec_zero(), &r) == 0 && ab_dec_cmp(r, d) == 0);
    AB_FUZZ_CHECK(ab_dec_sub(d, d, &r) == 0 && ab_dec_is_zero(r));
    AB_FUZZ_CHECK(ab_dec_sub(ab_dec_zero(), d, &r) == 0 && ab_dec_add(r, d, &r) == 0 &&
                  ab_dec_is_zero(r));
    *out = d;
    return true;
}

/* |v| < 10^32 units: the documented range. */
static bool dec_in_range(__int128 v)
{
    const __int128 lim = (__int128)10000000000000000LL * 10000000000000000LL;
    return v < lim && v > -lim;
}

static void dec_check_pair(struct ab_dec a, struct ab_dec b)
{
    AB_FUZZ_CHECK(ab_dec_cmp(a, b) == -ab_dec_cmp(b, a));
    AB_FUZZ_CHECK(ab_dec_cmp(a, b) == (a.v > b.v) - (a.v < b.v));

    struct ab_dec s1 = {0}, s2 = {0}, back = {0};
    int r1 = ab_dec_add(a, b, &s1), r2 = ab_dec_add(b, a, &s2);
    AB_FUZZ_CHECK(r1 == r2);
    AB_FUZZ_CHECK(r1 == (dec_in_range(a.v + b.v) ? 0 : AB_ERANGE));
    if (r1 == 0) {
        AB_FUZZ_CHECK(ab_dec_cmp(s1, s2) == 0);
        AB_FUZZ_CHECK(ab_dec_sub(s1, b, &back) == 0 && ab_dec_cmp(back, a) == 0);
    }
    struct ab_dec diff = {0};
    int r3 = ab_dec_sub(a, b, &diff);
    AB_FUZZ_CHECK(r3 == (dec_in_range(a.v - b.v) ? 0 : AB_ERANGE));
    if (r3 == 0) {
        int sign = ab_dec_is_zero(diff) ? 0 : ab_dec_is_neg(diff) ? -1 : 1;
        AB_FUZZ_CHECK(sign == ab_dec_cmp(a, b));
        AB_FUZZ_CHECK(ab_dec_add(diff, b, &back) == 0 && ab_dec_cmp(back, a) == 0);
    }
}

int ab_fuzz_decimal(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *bar = memchr(s, '|', size);
    if (!bar) {
        struct ab_dec d;
        dec_check_one(s, size, &d);
        return 0;
    }
    size_t na = (size_t)(bar - s);
    struct ab_dec a, b;
    bool ok_a = dec_check_one(s, na, &a);
    bool ok_b = dec_check_one(bar + 1, size - na - 1, &b);
    if (ok_a && ok_b)
        dec_check_pair(a, b);
    return 0;
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/binance.h"
#include "common/err.h"
#include "common/model.h"
#include "fuzz/targets.h"

const char *ab_fuzz_input_name = NULL;

void ab_fuzz_fail(const char *file, int line, const char *expr)
{
    if (ab_fuzz_input_name)
        fprintf(stderr, "fuzz check failed: %s:%d: %s (input %s)\n", file, line, expr,
                ab_fuzz_input_name);
    else
        fprintf(stderr, "fuzz check failed: %s:%d: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

bool ab_fuzz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            min = 0x80;
            c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            min = 0x800;
            c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            min = 0x10000;
            c &= 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (p[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

bool ab_fuzz_terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

void ab_fuzz_check_levels(const struct ab_level *lv, size_t n, bool positive_qty, int order)
{
    AB_FUZZ_CHECK(n == 0 || lv != NULL);
    for (size_t i = 0; i < n; i++) {
        AB_FUZZ_CHECK(lv[i].price.v > 0);
        AB_FUZZ_CHECK(positive_qty ? lv[i].qty.v > 0 : lv[i].qty.v >= 0);
        if (i > 0 && order < 0)
            AB_FUZZ_CHECK(ab_dec_cmp(lv[i].price, lv[i - 1].price) < 0);
        if (i > 0 && order > 0)
            AB_FUZZ_CHECK(ab_dec_cmp(lv[i].price, lv[i - 1].price) > 0);
    }
}

void ab_fuzz_check_decode_err(int rc, const struct ab_decode_err *err)
{
    AB_FUZZ_CHECK(err->code == rc);
    AB_FUZZ_CHECK(ab_fuzz_terminated(err->reason, sizeof(err->reason)));
    if (rc == 0) {
        AB_FUZZ_CHECK(err->reason[0] == '\0');
        return;
    }
    AB_FUZZ_CHECK(err->reason[0] != '\0');
    AB_FUZZ_CHECK(rc == AB_EJSON || rc == AB_ETRUNC || rc == AB_EMISSING || rc == AB_ETYPE ||
                  rc == AB_EINVAL || rc == AB_ERANGE || rc == AB_EVALIDATE || rc == AB_ENOMEM);
}

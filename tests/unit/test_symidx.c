/* symidx: the symbol -> index table of the ingest's per-message lookups. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "common/err.h"
#include "common/symidx.h"

Test(symidx, put_get_full_and_errors)
{
    struct ab_symidx x;
    cr_assert_eq(ab_symidx_init(&x, 0), AB_EINVAL);
    cr_assert_eq(ab_symidx_init(&x, AB_SYMIDX_MAX + 1), AB_EINVAL);
    cr_assert_eq(ab_symidx_init(&x, 2048), 0);
    char sym[AB_SYMBOL_MAX];
    for (size_t i = 0; i < 2048; i++) {
        snprintf(sym, sizeof(sym), "S%04zuUSDT", i);
        cr_assert_eq(ab_symidx_put(&x, sym, i * 3), 0, "%s", sym);
    }
    cr_assert_eq(x.n, 2048);
    cr_assert_eq(ab_symidx_put(&x, "EXTRA", 1), AB_ERANGE, "over the cap");
    cr_assert_eq(ab_symidx_put(&x, "S0007USDT", 9), AB_EINVAL, "duplicate");
    for (size_t i = 0; i < 2048; i++) {
        snprintf(sym, sizeof(sym), "S%04zuUSDT", i);
        size_t idx = 0;
        cr_assert_eq(ab_symidx_get(&x, sym, &idx), 0, "%s", sym);
        cr_assert_eq(idx, i * 3, "%s", sym);
    }
    size_t idx = 77;
    cr_assert_eq(ab_symidx_get(&x, "S2048USDT", &idx), AB_ENOTFOUND);
    cr_assert_eq(ab_symidx_get(&x, "S0007USD", &idx), AB_ENOTFOUND, "a prefix is not a match");
    cr_assert_eq(ab_symidx_get(&x, "S0007USDTX", &idx), AB_ENOTFOUND,
                 "an extension is not a match");
    cr_assert_eq(ab_symidx_get(&x, "", &idx), AB_ENOTFOUND);
    cr_assert_eq(ab_symidx_get(&x, NULL, &idx), AB_ENOTFOUND);
    cr_assert_eq(idx, 77, "untouched when not found");
    cr_assert_eq(ab_symidx_put(&x, "", 1), AB_EINVAL);
    cr_assert_eq(ab_symidx_put(&x, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1), AB_EINVAL,
                 "too long");
    ab_symidx_deinit(&x);
    cr_assert_null(x.slots);
    cr_assert_eq(ab_symidx_get(&x, "S0001USDT", &idx), AB_ENOTFOUND, "deinit table is empty");
    ab_symidx_deinit(&x);
}

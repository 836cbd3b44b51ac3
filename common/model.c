#include "common/model.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void ab_book_delta_deinit(struct ab_book_delta *d)
{
    if (!d)
        return;
    free(d->bids);
    free(d->asks);
    d->bids = d->asks = NULL;
    d->n_bids = d->n_asks = 0;
}

void ab_book_snapshot_deinit(struct ab_book_snapshot *s)
{
    if (!s)
        return;
    free(s->bids);
    free(s->asks);
    s->bids = s->asks = NULL;
    s->n_bids = s->n_asks = 0;
}

bool ab_symbol_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len >= AB_SYMBOL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            return false;
    }
    return true;
}

static int fail(const char **reason, const char *why)
{
    if (reason)
        *reason = why;
    return AB_EVALIDATE;
}

int ab_candle_validate(const struct ab_candle *c, const char **reason)
{
    if (!ab_symbol_valid(c->symbol, strnlen(c->symbol, AB_SYMBOL_MAX)))
        return fail(reason, "invalid symbol");
    if ((unsigned)c->interval >= AB_I_COUNT)
        return fail(reason, "invalid interval");
    if (ab_dec_is_neg(c->open) || ab_dec_is_neg(c->close) || ab_dec_is_neg(c->low))
        return fail(reason, "negative price");
    if (ab_dec_cmp(c->high, c->open) < 0)
        return fail(reason, "high below open");
    if (ab_dec_cmp(c->high, c->close) < 0)
        return fail(reason, "high below close");
    if (ab_dec_cmp(c->low, c->open) > 0)
        return fail(reason, "low above open");
    if (ab_dec_cmp(c->low, c->close) > 0)
        return fail(reason, "low above close");
    if (ab_dec_is_neg(c->volume) || ab_dec_is_neg(c->quote_volume) ||
        ab_dec_is_neg(c->taker_buy_volume) || ab_dec_is_neg(c->taker_buy_quote_volume))
        return fail(reason, "negative volume");
    if (ab_dec_cmp(c->taker_buy_volume, c->volume) > 0)
        return fail(reason, "taker-buy volume above volume");
    if (ab_dec_cmp(c->taker_buy_quote_volume, c->quote_volume) > 0)
        return fail(reason, "taker-buy quote volume above quote volume");
    if (c->num_trades < 0)
        return fail(reason, "negative trade count");
    if (!ab_interval_is_aligned(c->interval, c->open_time))
        return fail(reason, "open time not aligned to interval");
    if (c->close_time != ab_interval_next(c->interval, c->open_time) - 1)
        return fail(reason, "close time is not next open time - 1");
    return 0;
}

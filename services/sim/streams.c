#include "services/sim/streams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "services/sim/market.h"

struct streams {
    bool open;
    size_t n;
    char (*names)[STREAM_NAME_MAX]; /* owned, STREAMS_MAX entries */
    uint32_t *subs;                 /* owned, subscriber count per id */
};

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '@' || c == ':' || c == '+' || c == '.' || c == '!' || c == '-';
}

/* <lower-case symbol>@<rest>, as Binance names streams. */
static bool name_valid(const char *s, size_t len)
{
    if (len == 0 || len >= STREAM_NAME_MAX)
        return false;
    const char *at = memchr(s, '@', len);
    if (!at || at == s || at == s + len - 1)
        return false;
    for (const char *p = s; p < at; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    for (const char *p = at; p < s + len; p++)
        if (!name_char_ok(*p))
            return false;
    return true;
}

int streams_new(const struct market *m, struct streams **out)
{
    *out = NULL;
    struct streams *st = calloc(1, sizeof(*st));
    if (!st)
        return AB_ENOMEM;
    st->names = calloc(STREAMS_MAX, sizeof(*st->names));
    st->subs = calloc(STREAMS_MAX, sizeof(*st->subs));
    if (!st->names || !st->subs) {
        streams_free(st);
        return AB_ENOMEM;
    }
    st->open = m == NULL;
    if (m) {
        size_t n = market_n_symbols(m);
        if (n * STREAMS_PER_SYM > STREAMS_MAX) {
            streams_free(st);
            return AB_EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            char lower[AB_SYMBOL_MAX];
            const char *sym = market_symbol(m, i)->symbol;
            size_t k = 0;
            for (; sym[k] && k + 1 < sizeof(lower); k++)
                lower[k] = (char)(sym[k] >= 'A' && sym[k] <= 'Z' ? sym[k] + 32 : sym[k]);
            lower[k] = '\0';
            for (int slot = 0; slot < STREAMS_PER_SYM; slot++) {
                char *dst = st->names[streams_model_id(i, slot)];
                if (slot < AB_I_COUNT)
                    snprintf(dst, STREAM_NAME_MAX, "%s@kline_%s", lower,
                             ab_interval_name((enum ab_interval)slot));
                else if (slot == STREAM_DEPTH)
                    snprintf(dst, STREAM_NAME_MAX, "%s@depth", lower);
                else if (slot == STREAM_DEPTH_100MS)
                    snprintf(dst, STREAM_NAME_MAX, "%s@depth@100ms", lower);
                else if (slot == STREAM_BOOK_TICKER)
                    snprintf(dst, STREAM_NAME_MAX, "%s@bookTicker", lower);
                else if (slot == STREAM_TRADE)
                    snprintf(dst, STREAM_NAME_MAX, "%s@trade", lower);
                else
                    snprintf(dst, STREAM_NAME_MAX, "%s@aggTrade", lower);
            }
        }
        st->n = n * STREAMS_PER_SYM;
    }
    *out = st;
    return 0;
}

void streams_free(struct streams *st)
{
    if (!st)
        return;
    free(st->names);
    free(st->subs);
    free(st);
}

int streams_lookup(struct streams *st, const char *name, size_t len, uint32_t *id)
{
    if (!name_valid(name, len))
        return AB_EINVAL;
    /* A linear scan: a few hundred names, and lookups only happen on subscribe. */
    for (size_t i = 0; i < st->n; i++) {
        if (strlen(st->names[i]) == len && memcmp(st->names[i], name, len) == 0) {
            *id = (uint32_t)i;
            return 0;
        }
    }
    if (!st->open)
        return AB_EINVAL;
    if (st->n == STREAMS_MAX)
        return AB_ENOMEM;
    memcpy(st->names[st->n], name, len);
    st->names[st->n][len] = '\0';
    *id = (uint32_t)st->n++;
    return 0;
}

const char *streams_name(const struct streams *st, uint32_t id)
{
    return id < st->n ? st->names[id] : NULL;
}

void streams_count(struct streams *st, uint32_t id, int delta)
{
    if (id >= st->n)
        return;
    if (delta < 0 && st->subs[id] == 0)
        return;
    st->subs[id] = (uint32_t)((int64_t)st->subs[id] + delta);
}

bool streams_wanted(const struct streams *st, uint32_t id)
{
    return id < st->n && st->subs[id] > 0;
}

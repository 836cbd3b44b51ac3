#include "common/symidx.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

int ab_symidx_init(struct ab_symidx *x, size_t max)
{
    memset(x, 0, sizeof(*x));
    if (max == 0 || max > AB_SYMIDX_MAX)
        return AB_EINVAL;
    size_t cap = 16;
    while (cap < 2 * max)
        cap *= 2;
    x->slots = calloc(cap, sizeof(*x->slots));
    if (!x->slots)
        return AB_ENOMEM;
    x->mask = cap - 1;
    x->max = max;
    return 0;
}

void ab_symidx_deinit(struct ab_symidx *x)
{
    free(x->slots);
    memset(x, 0, sizeof(*x));
}

/* The slot holding symbol, or the empty slot where it would go. */
static struct ab_symidx_slot *probe(const struct ab_symidx *x, const char *symbol, size_t len)
{
    size_t i = (size_t)hash(symbol, len) & x->mask;
    for (;;) {
        struct ab_symidx_slot *s = &x->slots[i];
        if (!s->symbol[0] || (memcmp(s->symbol, symbol, len) == 0 && s->symbol[len] == '\0'))
            return s;
        i = (i + 1) & x->mask; /* at most half full: an empty slot always comes */
    }
}

int ab_symidx_put(struct ab_symidx *x, const char *symbol, size_t idx)
{
    if (!x->slots || !symbol)
        return AB_EINVAL;
    size_t len = strnlen(symbol, AB_SYMBOL_MAX);
    if (len == 0 || len >= AB_SYMBOL_MAX || idx > UINT32_MAX)
        return AB_EINVAL;
    struct ab_symidx_slot *s = probe(x, symbol, len);
    if (s->symbol[0])
        return AB_EINVAL;
    if (x->n >= x->max)
        return AB_ERANGE;
    memcpy(s->symbol, symbol, len);
    s->symbol[len] = '\0';
    s->idx = (uint32_t)idx;
    x->n++;
    return 0;
}

int ab_symidx_get(const struct ab_symidx *x, const char *symbol, size_t *idx)
{
    if (!x->slots || !symbol)
        return AB_ENOTFOUND;
    size_t len = strnlen(symbol, AB_SYMBOL_MAX);
    if (len == 0 || len >= AB_SYMBOL_MAX)
        return AB_ENOTFOUND;
    const struct ab_symidx_slot *s = probe(x, symbol, len);
    if (!s->symbol[0])
        return AB_ENOTFOUND;
    *idx = s->idx;
    return 0;
}

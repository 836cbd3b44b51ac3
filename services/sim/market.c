#include "services/sim/market.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "services/sim/prng.h"

/* Shape of the generated market; one place to tune it. */
#define ACTIONS_MAX      6    /* actions per 100 ms step: 1..ACTIONS_MAX */
#define ADD_WINDOW_TICKS 1500 /* new orders land within this many ticks of the spread */
#define ADD_PCT          50   /* action mix: adds, cancels, the rest taker orders */
#define CANCEL_PCT       30
#define CANCEL_FULL      4   /* one cancel in CANCEL_FULL removes the whole level */
#define ORDER_LOTS_MAX   100 /* resting order size: 1..ORDER_LOTS_MAX lots */
#define TAKER_LOTS_MAX   50  /* taker order size: 1..TAKER_LOTS_MAX lots */
#define TAKER_LEVELS_MAX 32  /* a taker order consumes at most this many levels */
#define LEVEL_LOTS_CAP   5000
#define MIN_LEVELS       50 /* a side below this is refilled beyond its worst level */
#define REFILL_MAX       16 /* levels added per refill */
#define INIT_SPAN_TICKS  430
#define CHANGES_CAP      8192 /* level changes per 1000 ms window (hard cap) */
#define FIRST_UPDATE_ID  1000000ULL
#define FIRST_TRADE_ID   100000LL
#define FIRST_AGG_ID     50000LL

enum { BID = 0, ASK = 1 };

struct lvl {
    int64_t px;  /* price in ticks */
    int64_t qty; /* quantity in 1e-8 units (a multiple of the step) */
};

/* One side of a book, best first: bids descending, asks ascending. */
struct side {
    struct lvl *v; /* owned, cap entries */
    size_t n, cap;
};

struct change {
    int side;
    int64_t px;
};

/* Levels changed since the last depth event of one speed. */
struct window {
    struct change *v; /* owned, CHANGES_CAP entries */
    size_t n;
    uint64_t last_id; /* u of the previous event (or the start id) */
};

struct series {
    struct ab_candle *ring; /* owned, cap entries */
    size_t cap, start, count;
    bool open;         /* the newest candle is still open */
    bool dirty;        /* changed since the last push */
    int64_t last_push; /* E of the last pushed event */
};

struct sym {
    struct market_symbol info;
    int64_t tick_units, lot_units; /* 1e-8 units */
    struct prng rng;
    struct side sides[2];
    uint64_t update_id;
    int64_t next_trade_id, next_agg_id;
    int64_t ref_px; /* last trade price (ticks) */
    struct window w100, w1000;
    struct series series[AB_I_COUNT];
    struct lvl top[2]; /* last reported best bid/ask (px 0 = none) */
    uint64_t steps;
    bool frozen;
};

struct market {
    struct market_cfg cfg;
    int64_t now; /* end of the last step */
    size_t n;
    struct sym *syms;             /* owned, n entries */
    struct ab_level *scratch_bid; /* owned: depth event levels, CHANGES_CAP each */
    struct ab_level *scratch_ask;
    market_event_cb cb;
    void *ud;
    int err; /* sticky error from inside a step */
};

/* ---- symbol configuration ---------------------------------------------- */

struct known_symbol {
    const char *name;
    int64_t price_units, tick_units, step_units, lot_steps;
};

static const struct known_symbol known_symbols[] = {
    {"BTCUSDT", 5000000000000LL, 1000000, 1000, 100},
    {"ETHUSDT", 300000000000LL, 1000000, 10000, 100},
    {"BNBUSDT", 50000000000LL, 1000000, 100000, 10},
};

static const char *const quote_assets[] = {"USDT", "FDUSD", "BUSD", "USDC", "TUSD", "BTC", "ETH",
                                           "BNB",  "EUR",   "TRY",  "BRL",  "AUD",  "GBP"};

static void split_assets(const char *s, char *base, char *quote)
{
    size_t len = strlen(s);
    size_t ql = len > 3 ? 3 : 0;
    for (size_t i = 0; i < sizeof(quote_assets) / sizeof(quote_assets[0]); i++) {
        size_t l = strlen(quote_assets[i]);
        if (len > l && strcmp(s + len - l, quote_assets[i]) == 0) {
            ql = l;
            break;
        }
    }
    memcpy(base, s, len - ql);
    base[len - ql] = '\0';
    memcpy(quote, s + len - ql, ql);
    quote[ql] = '\0';
}

static void configure_symbol(struct sym *s, const char *name, uint64_t seed, size_t idx)
{
    size_t len = strlen(name);
    memcpy(s->info.symbol, name, len + 1);
    split_assets(name, s->info.base, s->info.quote);
    int64_t price = 0, tick = 1000000, step = 100000, lot_steps = 100;
    for (size_t i = 0; i < sizeof(known_symbols) / sizeof(known_symbols[0]); i++) {
        if (strcmp(known_symbols[i].name, name) == 0) {
            price = known_symbols[i].price_units;
            tick = known_symbols[i].tick_units;
            step = known_symbols[i].step_units;
            lot_steps = known_symbols[i].lot_steps;
        }
    }
    if (price == 0) {
        /* Unknown symbol: a start price of 10..1009 from the name (FNV-1a). */
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < len; i++)
            h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
        price = (int64_t)(10 + h % 1000) * AB_DEC_SCALE;
    }
    s->info.tick = ab_dec_from_units(tick);
    s->info.step = ab_dec_from_units(step);
    s->info.start_price = ab_dec_from_units(price);
    s->tick_units = tick;
    s->lot_units = step * lot_steps;
    s->ref_px = price / tick;
    prng_init(&s->rng, seed, idx + 1);
    s->update_id = FIRST_UPDATE_ID;
    s->next_trade_id = FIRST_TRADE_ID;
    s->next_agg_id = FIRST_AGG_ID;
    s->w100.last_id = s->update_id;
    s->w1000.last_id = s->update_id;
}

/* ---- book -------------------------------------------------------------- */

/* Ordering key: ascending key = best first on either side. */
static int64_t side_key(int side, int64_t px)
{
    return side == BID ? -px : px;
}

/* Index of the first level whose key >= px's key; *found when equal. */
static size_t side_find(const struct side *sd, int side, int64_t px, bool *found)
{
    int64_t key = side_key(side, px);
    size_t lo = 0, hi = sd->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (side_key(side, sd->v[mid].px) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < sd->n && sd->v[lo].px == px;
    return lo;
}

static void window_note(struct market *m, struct window *w, int side, int64_t px)
{
    if (w->n >= CHANGES_CAP) {
        m->err = AB_ENOMEM;
        return;
    }
    w->v[w->n].side = side;
    w->v[w->n].px = px;
    w->n++;
}

static void note_change(struct market *m, struct sym *s, int side, int64_t px)
{
    s->update_id++;
    window_note(m, &s->w100, side, px);
    window_note(m, &s->w1000, side, px);
}

static void level_remove_at(struct market *m, struct sym *s, int side, size_t i)
{
    struct side *sd = &s->sides[side];
    int64_t px = sd->v[i].px;
    memmove(&sd->v[i], &sd->v[i + 1], (sd->n - i - 1) * sizeof(sd->v[0]));
    sd->n--;
    note_change(m, s, side, px);
}

/* Sets the absolute quantity at px (0 removes); a no-op change costs no id. */
static void level_set(struct market *m, struct sym *s, int side, int64_t px, int64_t qty)
{
    struct side *sd = &s->sides[side];
    bool found;
    size_t i = side_find(sd, side, px, &found);
    if (found) {
        if (qty == 0) {
            level_remove_at(m, s, side, i);
        } else if (sd->v[i].qty != qty) {
            sd->v[i].qty = qty;
            note_change(m, s, side, px);
        }
        return;
    }
    if (qty == 0)
        return;
    if (sd->n == sd->cap) {
        /* Full side: the farthest level goes first, unless px is even farther. */
        if (i == sd->n)
            return;
        level_remove_at(m, s, side, sd->n - 1);
    }
    memmove(&sd->v[i + 1], &sd->v[i], (sd->n - i) * sizeof(sd->v[0]));
    sd->v[i].px = px;
    sd->v[i].qty = qty;
    sd->n++;
    note_change(m, s, side, px);
}

static int64_t level_qty(const struct sym *s, int side, int64_t px)
{
    bool found;
    size_t i = side_find(&s->sides[side], side, px, &found);
    return found ? s->sides[side].v[i].qty : 0;
}

/* ---- candles ----------------------------------------------------------- */

static struct ab_candle *series_last(struct series *se)
{
    if (se->count == 0)
        return NULL;
    return &se->ring[(se->start + se->count - 1) % se->cap];
}

static const struct ab_candle *series_at(const struct series *se, size_t i)
{
    return &se->ring[(se->start + i) % se->cap];
}

/* price * qty, exact: the symbol's tick and step keep it within 8 decimals. */
static struct ab_dec dec_mul(struct ab_dec a, struct ab_dec b)
{
    struct ab_dec r = {a.v * b.v / AB_DEC_SCALE};
    return r;
}

static void dec_acc(struct market *m, struct ab_dec *acc, struct ab_dec add)
{
    if (ab_dec_add(*acc, add, acc) != 0)
        m->err = AB_ERANGE;
}

static void candle_trade(struct market *m, struct sym *s, const struct market_trade *tr)
{
    struct ab_dec quote = dec_mul(tr->price, tr->qty);
    for (int iv = 0; iv < AB_I_COUNT; iv++) {
        struct series *se = &s->series[iv];
        int64_t open_time = ab_interval_align((enum ab_interval)iv, tr->time);
        struct ab_candle *c = series_last(se);
        if (c && se->open && c->open_time != open_time) {
            /* Steps never straddle a boundary, so this only guards odd input. */
            c->closed = true;
            se->open = false;
        }
        if (!c || !se->open) {
            if (se->count == se->cap) {
                se->start = (se->start + 1) % se->cap;
                se->count--;
            }
            c = &se->ring[(se->start + se->count) % se->cap];
            se->count++;
            memset(c, 0, sizeof(*c));
            memcpy(c->symbol, s->info.symbol, sizeof(c->symbol));
            c->interval = (enum ab_interval)iv;
            c->open_time = open_time;
            c->close_time = ab_interval_next((enum ab_interval)iv, open_time) - 1;
            c->open = c->high = c->low = tr->price;
            c->first_trade_id = tr->id;
            se->open = true;
        }
        if (ab_dec_cmp(tr->price, c->high) > 0)
            c->high = tr->price;
        if (ab_dec_cmp(tr->price, c->low) < 0)
            c->low = tr->price;
        c->close = tr->price;
        dec_acc(m, &c->volume, tr->qty);
        dec_acc(m, &c->quote_volume, quote);
        if (!tr->buyer_maker) {
            dec_acc(m, &c->taker_buy_volume, tr->qty);
            dec_acc(m, &c->taker_buy_quote_volume, quote);
        }
        c->num_trades++;
        c->last_trade_id = tr->id;
        se->dirty = true;
    }
}

static void emit(struct market *m, struct market_event *ev)
{
    if (m->cb)
        m->cb(ev, m->ud);
}

static void emit_kline(struct market *m, size_t idx, struct series *se, int64_t t)
{
    struct ab_candle *c = series_last(se);
    c->event_time = t;
    struct market_event ev = {.kind = MARKET_EV_KLINE, .sym = idx, .time = t};
    ev.u.kline.candle = c;
    emit(m, &ev);
    se->last_push = t;
    se->dirty = false;
}

/* Step-end candle work at time t: finals for closed candles, throttled updates. */
static void candles_step_end(struct market *m, size_t idx, int64_t t, bool flush_all)
{
    struct sym *s = &m->syms[idx];
    for (int iv = 0; iv < AB_I_COUNT; iv++) {
        struct series *se = &s->series[iv];
        struct ab_candle *c = series_last(se);
        if (!c || !se->open)
            continue;
        if (t > c->close_time) {
            c->closed = true;
            se->open = false;
            emit_kline(m, idx, se, t);
            continue;
        }
        int64_t period = iv == AB_I_1S ? 1000 : 2000;
        if (se->dirty && (flush_all || t - se->last_push >= period))
            emit_kline(m, idx, se, t);
    }
}

/* ---- depth events ------------------------------------------------------ */

static int change_cmp(const void *pa, const void *pb)
{
    const struct change *a = pa, *b = pb;
    if (a->side != b->side)
        return a->side < b->side ? -1 : 1;
    int64_t ka = side_key(a->side, a->px), kb = side_key(b->side, b->px);
    return ka < kb ? -1 : ka > kb;
}

static void flush_window(struct market *m, size_t idx, struct window *w, int speed_ms, int64_t t)
{
    struct sym *s = &m->syms[idx];
    if (s->update_id == w->last_id)
        return;
    qsort(w->v, w->n, sizeof(w->v[0]), change_cmp);
    size_t nb = 0, na = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (i > 0 && w->v[i].side == w->v[i - 1].side && w->v[i].px == w->v[i - 1].px)
            continue;
        struct ab_level lv = {ab_dec_from_units(w->v[i].px * s->tick_units),
                              ab_dec_from_units(level_qty(s, w->v[i].side, w->v[i].px))};
        if (w->v[i].side == BID)
            m->scratch_bid[nb++] = lv;
        else
            m->scratch_ask[na++] = lv;
    }
    struct market_event ev = {.kind = MARKET_EV_DEPTH, .sym = idx, .time = t};
    ev.u.depth.speed_ms = speed_ms;
    ev.u.depth.first_id = w->last_id + 1;
    ev.u.depth.last_id = s->update_id;
    ev.u.depth.bids = m->scratch_bid;
    ev.u.depth.n_bids = nb;
    ev.u.depth.asks = m->scratch_ask;
    ev.u.depth.n_asks = na;
    emit(m, &ev);
    w->last_id = s->update_id;
    w->n = 0;
}

/* ---- actions ----------------------------------------------------------- */

static void maybe_ticker(struct market *m, size_t idx)
{
    struct sym *s = &m->syms[idx];
    struct lvl top[2] = {{0, 0}, {0, 0}};
    for (int side = 0; side < 2; side++)
        if (s->sides[side].n)
            top[side] = s->sides[side].v[0];
    if (memcmp(top, s->top, sizeof(top)) == 0)
        return;
    memcpy(s->top, top, sizeof(top));
    struct market_event ev = {.kind = MARKET_EV_BOOK_TICKER, .sym = idx, .time = m->now};
    ev.u.ticker.update_id = s->update_id;
    ev.u.ticker.bid.price = ab_dec_from_units(top[BID].px * s->tick_units);
    ev.u.ticker.bid.qty = ab_dec_from_units(top[BID].qty);
    ev.u.ticker.ask.price = ab_dec_from_units(top[ASK].px * s->tick_units);
    ev.u.ticker.ask.qty = ab_dec_from_units(top[ASK].qty);
    emit(m, &ev);
}

static int64_t best_px(const struct sym *s, int side)
{
    if (s->sides[side].n)
        return s->sides[side].v[0].px;
    return side == BID ? s->ref_px - 1 : s->ref_px + 1;
}

static void act_add(struct market *m, struct sym *s)
{
    int side = (int)prng_below(&s->rng, 2);
    uint64_t a = prng_below(&s->rng, 1000);
    int64_t d = (int64_t)(a * a * ADD_WINDOW_TICKS / 1000000);
    int64_t px = side == BID ? best_px(s, ASK) - 1 - d : best_px(s, BID) + 1 + d;
    int64_t lots = 1 + (int64_t)prng_below(&s->rng, ORDER_LOTS_MAX);
    if (px < 1)
        return;
    int64_t qty = level_qty(s, side, px) + lots * s->lot_units;
    if (qty > LEVEL_LOTS_CAP * s->lot_units)
        qty = LEVEL_LOTS_CAP * s->lot_units;
    level_set(m, s, side, px, qty);
}

static void act_cancel(struct market *m, struct sym *s)
{
    int side = (int)prng_below(&s->rng, 2);
    struct side *sd = &s->sides[side];
    uint64_t a = prng_below(&s->rng, 1000);
    uint64_t mode = prng_below(&s->rng, CANCEL_FULL);
    int64_t lots = 1 + (int64_t)prng_below(&s->rng, ORDER_LOTS_MAX);
    if (sd->n == 0)
        return;
    size_t i = (size_t)(a * a * sd->n / 1000000);
    int64_t qty = mode == 0 ? 0 : sd->v[i].qty - lots * s->lot_units;
    level_set(m, s, side, sd->v[i].px, qty < 0 ? 0 : qty);
}

static void act_trade(struct market *m, size_t idx, int64_t t)
{
    struct sym *s = &m->syms[idx];
    bool taker_buy = prng_below(&s->rng, 2) == 0;
    int64_t left = (1 + (int64_t)prng_below(&s->rng, TAKER_LOTS_MAX)) * s->lot_units;
    int side = taker_buy ? ASK : BID;
    struct side *sd = &s->sides[side];
    for (int n = 0; n < TAKER_LEVELS_MAX && left > 0 && sd->n > 0; n++) {
        struct lvl top = sd->v[0];
        int64_t fill = top.qty < left ? top.qty : left;
        left -= fill;
        level_set(m, s, side, top.px, top.qty - fill);
        struct market_event ev = {.kind = MARKET_EV_TRADE, .sym = idx, .time = t};
        struct market_trade *tr = &ev.u.trade;
        tr->id = s->next_trade_id++;
        tr->agg_id = s->next_agg_id++;
        tr->time = t;
        tr->price = ab_dec_from_units(top.px * s->tick_units);
        tr->qty = ab_dec_from_units(fill);
        tr->buyer_maker = !taker_buy;
        s->ref_px = top.px;
        candle_trade(m, s, tr);
        emit(m, &ev);
    }
}

/* Keeps both sides at least MIN_LEVELS deep by adding beyond the worst level. */
static void refill(struct market *m, struct sym *s)
{
    for (int side = 0; side < 2; side++) {
        struct side *sd = &s->sides[side];
        for (int k = 0; k < REFILL_MAX && sd->n < MIN_LEVELS; k++) {
            int64_t worst = sd->n ? sd->v[sd->n - 1].px : best_px(s, side);
            int64_t gap = 1 + (int64_t)prng_below(&s->rng, 3);
            int64_t px = side == BID ? worst - gap : worst + gap;
            int64_t lots = 1 + (int64_t)prng_below(&s->rng, ORDER_LOTS_MAX);
            if (px < 1)
                break;
            level_set(m, s, side, px, lots * s->lot_units);
        }
    }
}

static void run_step(struct market *m, size_t idx, int64_t t0)
{
    struct sym *s = &m->syms[idx];
    int n = 1 + (int)prng_below(&s->rng, ACTIONS_MAX);
    bool traded = false;
    for (int i = 0; i < n; i++) {
        int64_t t = t0 + (int64_t)i * MARKET_STEP_MS / n;
        uint64_t r = prng_below(&s->rng, 100);
        if (i == n - 1 && !traded)
            r = 99;
        if (r < ADD_PCT) {
            act_add(m, s);
        } else if (r < ADD_PCT + CANCEL_PCT) {
            act_cancel(m, s);
        } else {
            act_trade(m, idx, t);
            traded = true;
        }
        refill(m, s);
        maybe_ticker(m, idx);
    }
    int64_t t_end = t0 + MARKET_STEP_MS;
    flush_window(m, idx, &s->w100, 100, t_end);
    if (t_end % 1000 == 0)
        flush_window(m, idx, &s->w1000, 1000, t_end);
    candles_step_end(m, idx, t_end, false);
    s->steps++;
    if (m->cfg.freeze_after && s->steps >= m->cfg.freeze_after) {
        s->frozen = true;
        flush_window(m, idx, &s->w1000, 1000, t_end);
        candles_step_end(m, idx, t_end, true);
    }
}

/* ---- lifetime ---------------------------------------------------------- */

static int sym_alloc(struct sym *s, const struct market_cfg *cfg)
{
    for (int side = 0; side < 2; side++) {
        s->sides[side].cap = cfg->max_levels;
        s->sides[side].v = calloc(cfg->max_levels, sizeof(struct lvl));
        if (!s->sides[side].v)
            return AB_ENOMEM;
    }
    s->w100.v = calloc(CHANGES_CAP, sizeof(struct change));
    s->w1000.v = calloc(CHANGES_CAP, sizeof(struct change));
    if (!s->w100.v || !s->w1000.v)
        return AB_ENOMEM;
    for (int iv = 0; iv < AB_I_COUNT; iv++) {
        struct series *se = &s->series[iv];
        se->cap = iv == AB_I_1S ? cfg->candle_cap_1s : cfg->candle_cap;
        se->ring = calloc(se->cap, sizeof(struct ab_candle));
        if (!se->ring)
            return AB_ENOMEM;
        se->last_push = INT64_MIN / 2;
    }
    return 0;
}

static void sym_free(struct sym *s)
{
    for (int side = 0; side < 2; side++)
        free(s->sides[side].v);
    free(s->w100.v);
    free(s->w1000.v);
    for (int iv = 0; iv < AB_I_COUNT; iv++)
        free(s->series[iv].ring);
}

/* The starting book: levels on most ticks near the start price, no ids spent. */
static void seed_book(struct sym *s)
{
    for (int side = 0; side < 2; side++) {
        struct side *sd = &s->sides[side];
        for (int64_t k = 1; k <= INIT_SPAN_TICKS && sd->n < sd->cap; k++) {
            int64_t px = side == BID ? s->ref_px - k : s->ref_px + k;
            bool present = prng_below(&s->rng, 10) < 7;
            int64_t lots = 1 + (int64_t)prng_below(&s->rng, ORDER_LOTS_MAX);
            if (!present || px < 1)
                continue;
            sd->v[sd->n].px = px;
            sd->v[sd->n].qty = lots * s->lot_units;
            sd->n++;
        }
    }
    for (int side = 0; side < 2; side++)
        if (s->sides[side].n)
            s->top[side] = s->sides[side].v[0];
}

int market_new(const struct market_cfg *cfg, struct market **out)
{
    int rc = AB_EINVAL;
    *out = NULL;
    if (!cfg || cfg->n_symbols == 0 || cfg->n_symbols > MARKET_MAX_SYMBOLS)
        return AB_EINVAL;
    for (size_t i = 0; i < cfg->n_symbols; i++) {
        const char *name = cfg->symbols[i];
        if (!name || !ab_symbol_valid(name, strlen(name)) || strlen(name) > 20)
            return AB_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->symbols[j], name) == 0)
                return AB_EINVAL;
    }
    struct market *m = calloc(1, sizeof(*m));
    if (!m)
        return AB_ENOMEM;
    m->cfg = *cfg;
    if (!m->cfg.max_levels)
        m->cfg.max_levels = 2000;
    if (m->cfg.max_levels < 2 * MIN_LEVELS)
        m->cfg.max_levels = 2 * MIN_LEVELS;
    if (!m->cfg.candle_cap_1s)
        m->cfg.candle_cap_1s = 3600;
    if (!m->cfg.candle_cap)
        m->cfg.candle_cap = 1500;
    int64_t st = cfg->start_time;
    m->now = st - ((st % MARKET_STEP_MS) + MARKET_STEP_MS) % MARKET_STEP_MS;
    m->n = cfg->n_symbols;
    m->syms = calloc(m->n, sizeof(struct sym));
    m->scratch_bid = calloc(CHANGES_CAP, sizeof(struct ab_level));
    m->scratch_ask = calloc(CHANGES_CAP, sizeof(struct ab_level));
    rc = AB_ENOMEM;
    if (!m->syms || !m->scratch_bid || !m->scratch_ask)
        goto out;
    for (size_t i = 0; i < m->n; i++) {
        configure_symbol(&m->syms[i], cfg->symbols[i], cfg->seed, i);
        rc = sym_alloc(&m->syms[i], &m->cfg);
        if (rc != 0)
            goto out;
        seed_book(&m->syms[i]);
    }
    /* The config's pointers were only borrowed for this call. */
    memset(m->cfg.symbols, 0, sizeof(m->cfg.symbols));
    *out = m;
    return 0;
out:
    market_free(m);
    return rc;
}

void market_free(struct market *m)
{
    if (!m)
        return;
    if (m->syms)
        for (size_t i = 0; i < m->n; i++)
            sym_free(&m->syms[i]);
    free(m->syms);
    free(m->scratch_bid);
    free(m->scratch_ask);
    free(m);
}

int market_advance(struct market *m, int64_t now, market_event_cb cb, void *ud)
{
    if (m->err)
        return m->err;
    m->cb = cb;
    m->ud = ud;
    while (m->now + MARKET_STEP_MS <= now && !m->err) {
        int64_t t0 = m->now;
        for (size_t i = 0; i < m->n && !m->err; i++)
            if (!m->syms[i].frozen)
                run_step(m, i, t0);
        m->now = t0 + MARKET_STEP_MS;
    }
    m->cb = NULL;
    m->ud = NULL;
    return m->err;
}

int64_t market_time(const struct market *m)
{
    return m->now;
}

size_t market_n_symbols(const struct market *m)
{
    return m->n;
}

const struct market_symbol *market_symbol(const struct market *m, size_t sym)
{
    return sym < m->n ? &m->syms[sym].info : NULL;
}

int market_find_symbol(const struct market *m, const char *name, size_t len, size_t *sym)
{
    for (size_t i = 0; i < m->n; i++) {
        const char *s = m->syms[i].info.symbol;
        if (strlen(s) == len && memcmp(s, name, len) == 0) {
            *sym = i;
            return 0;
        }
    }
    return AB_ENOTFOUND;
}

bool market_frozen(const struct market *m, size_t sym)
{
    return sym < m->n && m->syms[sym].frozen;
}

uint64_t market_steps(const struct market *m, size_t sym)
{
    return sym < m->n ? m->syms[sym].steps : 0;
}

void market_depth(const struct market *m, size_t sym, size_t limit, struct ab_level *bids,
                  size_t *n_bids, struct ab_level *asks, size_t *n_asks, uint64_t *last_update_id)
{
    const struct sym *s = &m->syms[sym];
    if (limit < 1)
        limit = 1;
    if (limit > MARKET_DEPTH_MAX)
        limit = MARKET_DEPTH_MAX;
    struct ab_level *outs[2] = {bids, asks};
    size_t *ns[2] = {n_bids, n_asks};
    for (int side = 0; side < 2; side++) {
        const struct side *sd = &s->sides[side];
        size_t n = sd->n < limit ? sd->n : limit;
        for (size_t i = 0; i < n; i++) {
            outs[side][i].price = ab_dec_from_units(sd->v[i].px * s->tick_units);
            outs[side][i].qty = ab_dec_from_units(sd->v[i].qty);
        }
        *ns[side] = n;
    }
    *last_update_id = s->update_id;
}

size_t market_klines(const struct market *m, size_t sym, enum ab_interval iv, bool has_start,
                     int64_t start, bool has_end, int64_t end, size_t limit, struct ab_candle *out)
{
    if (sym >= m->n || (int)iv < 0 || iv >= AB_I_COUNT || limit == 0)
        return 0;
    const struct series *se = &m->syms[sym].series[iv];
    size_t lo = 0, hi = se->count; /* candidate range [lo, hi) */
    while (lo < hi && has_start && series_at(se, lo)->open_time < start)
        lo++;
    while (hi > lo && has_end && series_at(se, hi - 1)->open_time > end)
        hi--;
    size_t n = hi - lo < limit ? hi - lo : limit;
    if (!has_start)
        lo = hi - n; /* newest rows when only the end (or nothing) bounds them */
    for (size_t i = 0; i < n; i++)
        out[i] = *series_at(se, lo + i);
    return n;
}

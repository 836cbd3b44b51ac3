/*
 * bus_frame: encoder and validating decoder of bus frames (see the header
 * and api/bus.md). The size function and the decoder share the per-field
 * checks, so what encodes always decodes.
 */
#include "common/bus_frame.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* |value| < 10^32 units of 10^-8: the decimal module's 24 integer digits. */
#define DEC_LIMIT ((__int128)10000000000000000LL * (__int128)10000000000000000LL)
#define US_MAX    (AB_BUS_TIME_MAX_MS * 1000 + 999)

#define FAIL(code, why)      \
    do {                     \
        if (reason)          \
            *reason = (why); \
        return (code);       \
    } while (0)

/* ---- names -------------------------------------------------------------- */

bool ab_bus_type_is_data(enum ab_bus_type t)
{
    return t == AB_BUS_CANDLE || t == AB_BUS_BOOK_SNAPSHOT || t == AB_BUS_BOOK_DELTA ||
           t == AB_BUS_STATUS;
}

static bool type_known(unsigned t)
{
    return t >= AB_BUS_HELLO && t <= AB_BUS_RESYNC;
}

const char *ab_bus_type_name(enum ab_bus_type t)
{
    switch (t) {
    case AB_BUS_HELLO:
        return "hello";
    case AB_BUS_ACK:
        return "ack";
    case AB_BUS_CANDLE:
        return "candle";
    case AB_BUS_BOOK_SNAPSHOT:
        return "book_snapshot";
    case AB_BUS_BOOK_DELTA:
        return "book_delta";
    case AB_BUS_STATUS:
        return "status";
    case AB_BUS_RESYNC:
        return "resync";
    }
    return "?";
}

const char *ab_bus_book_state_name(enum ab_bus_book_state s)
{
    switch (s) {
    case AB_BUS_BOOK_SYNCING:
        return "syncing";
    case AB_BUS_BOOK_LIVE:
        return "live";
    case AB_BUS_BOOK_RESYNCING:
        return "resyncing";
    }
    return "?";
}

const char *ab_bus_conn_state_name(enum ab_bus_conn_state s)
{
    switch (s) {
    case AB_BUS_CONN_CONNECTING:
        return "connecting";
    case AB_BUS_CONN_CONNECTED:
        return "connected";
    case AB_BUS_CONN_DISCONNECTED:
        return "disconnected";
    }
    return "?";
}

void ab_bus_msg_deinit(struct ab_bus_msg *m)
{
    if (!m)
        return;
    if (m->type == AB_BUS_BOOK_SNAPSHOT)
        ab_book_snapshot_deinit(&m->u.snapshot.s);
    else if (m->type == AB_BUS_BOOK_DELTA)
        ab_book_delta_deinit(&m->u.delta.d);
    memset(m, 0, sizeof(*m));
}

/* ---- shared field checks ------------------------------------------------ */

static bool dec_ok(struct ab_dec d)
{
    return d.v < DEC_LIMIT && d.v > -DEC_LIMIT;
}

static bool ms_ok(int64_t t)
{
    return t >= 0 && t <= AB_BUS_TIME_MAX_MS;
}

static bool us_ok(int64_t t)
{
    return t >= 0 && t <= US_MAX;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Level checks: exact range, price > 0, qty >= 0. */
static int level_check(const struct ab_level *l, const char **reason)
{
    if (!dec_ok(l->price) || !dec_ok(l->qty))
        FAIL(AB_ERANGE, "level decimal out of range");
    if (l->price.v <= 0)
        FAIL(AB_EINVAL, "level price not positive");
    if (l->qty.v < 0)
        FAIL(AB_EINVAL, "level quantity negative");
    return 0;
}

static int candle_check(const struct ab_bus_candle *bc, const char **reason)
{
    const struct ab_candle *c = &bc->c;
    if ((unsigned)c->interval >= AB_I_COUNT)
        FAIL(AB_EINVAL, "bad interval");
    if (bc->origin != AB_BUS_ORIGIN_WS && bc->origin != AB_BUS_ORIGIN_REST)
        FAIL(AB_EINVAL, "bad candle origin");
    if (!ms_ok(c->open_time) || !ms_ok(c->close_time) || !ms_ok(c->event_time))
        FAIL(AB_ERANGE, "candle time out of range");
    if (!us_ok(bc->recv_us))
        FAIL(AB_ERANGE, "receive time out of range");
    if (!ab_interval_is_aligned(c->interval, c->open_time))
        FAIL(AB_EINVAL, "open time not aligned to interval");
    if (c->close_time != ab_interval_next(c->interval, c->open_time) - 1)
        FAIL(AB_EINVAL, "close time is not next open - 1");
    const struct ab_dec *d[8] = {&c->open,
                                 &c->high,
                                 &c->low,
                                 &c->close,
                                 &c->volume,
                                 &c->quote_volume,
                                 &c->taker_buy_volume,
                                 &c->taker_buy_quote_volume};
    for (int i = 0; i < 8; i++) {
        if (!dec_ok(*d[i]))
            FAIL(AB_ERANGE, "candle decimal out of range");
        if (d[i]->v < 0)
            FAIL(AB_EINVAL, "candle decimal negative");
    }
    if (c->num_trades < 0)
        FAIL(AB_EINVAL, "negative trade count");
    if (c->first_trade_id < -1 || c->last_trade_id < -1)
        FAIL(AB_EINVAL, "bad trade id");
    return 0;
}

static int levels_check(const struct ab_level *v, size_t n, const char **reason)
{
    if (n > 0 && !v)
        FAIL(AB_EINVAL, "level array missing");
    for (size_t i = 0; i < n; i++) {
        int rc = level_check(&v[i], reason);
        if (rc)
            return rc;
    }
    return 0;
}

/* Symbol bytes used on the wire, or -1 when the symbol is invalid. */
static int sym_len(const char *s)
{
    size_t n = strnlen(s, AB_SYMBOL_MAX);
    if (n >= AB_SYMBOL_MAX || !ab_symbol_valid(s, n))
        return -1;
    return (int)n;
}

/* ---- size --------------------------------------------------------------- */

int ab_bus_frame_size(const struct ab_bus_msg *m, size_t *len, const char **reason)
{
    size_t n = AB_BUS_HDR_SIZE;
    int rc, sl;
    if (!m || !len)
        FAIL(AB_EINVAL, "null argument");
    if (!type_known((unsigned)m->type))
        FAIL(AB_EINVAL, "unknown frame type");
    bool data = ab_bus_type_is_data(m->type);
    if (data && m->seq == 0)
        FAIL(AB_EINVAL, "data frame with seq 0");
    if (!data && m->seq != 0)
        FAIL(AB_EINVAL, "control frame with non-zero seq");
    if (m->flags & ~(data ? AB_BUS_F_RESENT : 0u))
        FAIL(AB_EINVAL, "unknown flag bits");

    switch (m->type) {
    case AB_BUS_HELLO: {
        const struct ab_bus_hello *h = &m->u.hello;
        size_t nl = strnlen(h->name, AB_BUS_NAME_MAX);
        if (nl >= AB_BUS_NAME_MAX || !printable(h->name, nl))
            FAIL(AB_EINVAL, "bad hello name");
        if (h->version < 1)
            FAIL(AB_EINVAL, "bad hello version");
        if (h->role != AB_BUS_ROLE_INGEST && h->role != AB_BUS_ROLE_QUERY)
            FAIL(AB_EINVAL, "bad hello role");
        if (h->instance_id == 0)
            FAIL(AB_EINVAL, "hello instance id 0");
        n += 4 + 1 + 1 + 2 + 8 + 8 + 1 + nl;
        break;
    }
    case AB_BUS_ACK:
        n += 8;
        break;
    case AB_BUS_CANDLE:
        if ((sl = sym_len(m->u.candle.c.symbol)) < 0)
            FAIL(AB_EINVAL, "bad symbol");
        if ((rc = candle_check(&m->u.candle, reason)))
            return rc;
        n += 1 + (size_t)sl + 4 + 4 * 8 + 8 * 16 + 3 * 8;
        break;
    case AB_BUS_BOOK_SNAPSHOT: {
        const struct ab_bus_snapshot *s = &m->u.snapshot;
        if ((sl = sym_len(s->s.symbol)) < 0)
            FAIL(AB_EINVAL, "bad symbol");
        if (!ms_ok(s->event_time) || !us_ok(s->recv_us))
            FAIL(AB_ERANGE, "time out of range");
        if (s->s.n_bids > AB_BUS_FRAME_MAX / AB_BUS_LEVEL_SIZE ||
            s->s.n_asks > AB_BUS_FRAME_MAX / AB_BUS_LEVEL_SIZE)
            FAIL(AB_ERANGE, "frame too large");
        n += 1 + (size_t)sl + 8 + 8 + 8 + 4 + 4 +
             (s->s.n_bids + s->s.n_asks) * (size_t)AB_BUS_LEVEL_SIZE;
        /* The size first: never walk a level array longer than a frame. */
        if (n > AB_BUS_FRAME_MAX)
            FAIL(AB_ERANGE, "frame too large");
        if ((rc = levels_check(s->s.bids, s->s.n_bids, reason)) ||
            (rc = levels_check(s->s.asks, s->s.n_asks, reason)))
            return rc;
        break;
    }
    case AB_BUS_BOOK_DELTA: {
        const struct ab_bus_delta *d = &m->u.delta;
        if ((sl = sym_len(d->d.symbol)) < 0)
            FAIL(AB_EINVAL, "bad symbol");
        if (d->d.first_id > d->d.last_id)
            FAIL(AB_EINVAL, "delta first id above last id");
        if (!ms_ok(d->d.event_time) || !us_ok(d->recv_us))
            FAIL(AB_ERANGE, "time out of range");
        if (d->d.n_bids > AB_BUS_FRAME_MAX / AB_BUS_LEVEL_SIZE ||
            d->d.n_asks > AB_BUS_FRAME_MAX / AB_BUS_LEVEL_SIZE)
            FAIL(AB_ERANGE, "frame too large");
        n += 1 + (size_t)sl + 5 * 8 + 4 + 4 +
             (d->d.n_bids + d->d.n_asks) * (size_t)AB_BUS_LEVEL_SIZE;
        if (n > AB_BUS_FRAME_MAX)
            FAIL(AB_ERANGE, "frame too large");
        if ((rc = levels_check(d->d.bids, d->d.n_bids, reason)) ||
            (rc = levels_check(d->d.asks, d->d.n_asks, reason)))
            return rc;
        break;
    }
    case AB_BUS_STATUS: {
        const struct ab_bus_status *s = &m->u.status;
        if ((sl = sym_len(s->symbol)) < 0)
            FAIL(AB_EINVAL, "bad symbol");
        if ((unsigned)s->book > AB_BUS_BOOK_RESYNCING)
            FAIL(AB_EINVAL, "bad book state");
        if ((unsigned)s->conn > AB_BUS_CONN_DISCONNECTED)
            FAIL(AB_EINVAL, "bad connection state");
        if (!us_ok(s->recv_us))
            FAIL(AB_ERANGE, "time out of range");
        size_t rl = strnlen(s->reason, AB_BUS_REASON_MAX);
        if (rl >= AB_BUS_REASON_MAX || !printable(s->reason, rl))
            FAIL(AB_EINVAL, "bad status reason");
        n += 1 + (size_t)sl + 1 + 1 + 8 + 8 + 1 + rl;
        break;
    }
    case AB_BUS_RESYNC: {
        size_t l = strnlen(m->u.resync_symbol, AB_SYMBOL_MAX);
        if (l > 0 && sym_len(m->u.resync_symbol) < 0)
            FAIL(AB_EINVAL, "bad symbol");
        n += 1 + l;
        break;
    }
    }
    if (n > AB_BUS_FRAME_MAX)
        FAIL(AB_ERANGE, "frame too large");
    *len = n;
    return 0;
}

/* ---- writer (sizes were checked by ab_bus_frame_size) -------------------- */

struct wr {
    uint8_t *p;
    size_t off;
};

static void put_u8(struct wr *w, uint8_t v)
{
    w->p[w->off++] = v;
}

static void put_u16(struct wr *w, uint16_t v)
{
    for (int i = 0; i < 2; i++)
        w->p[w->off++] = (uint8_t)(v >> (8 * i));
}

static void put_u32(struct wr *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->p[w->off++] = (uint8_t)(v >> (8 * i));
}

static void put_u64(struct wr *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        w->p[w->off++] = (uint8_t)(v >> (8 * i));
}

static void put_i64(struct wr *w, int64_t v)
{
    put_u64(w, (uint64_t)v);
}

static void put_dec(struct wr *w, struct ab_dec d)
{
    unsigned __int128 u = (unsigned __int128)d.v;
    for (int i = 0; i < 16; i++)
        w->p[w->off++] = (uint8_t)(u >> (8 * i));
}

static void put_bytes(struct wr *w, const void *s, size_t n)
{
    if (n)
        memcpy(w->p + w->off, s, n);
    w->off += n;
}

static void put_str8(struct wr *w, const char *s, size_t n)
{
    put_u8(w, (uint8_t)n);
    put_bytes(w, s, n);
}

static void put_levels(struct wr *w, const struct ab_level *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        put_dec(w, v[i].price);
        put_dec(w, v[i].qty);
    }
}

static void write_frame(const struct ab_bus_msg *m, uint8_t *buf, size_t len)
{
    struct wr w = {buf, 0};
    put_u32(&w, (uint32_t)len);
    put_u8(&w, AB_BUS_VERSION);
    put_u8(&w, (uint8_t)m->type);
    put_u16(&w, m->flags);
    put_u64(&w, m->seq);
    switch (m->type) {
    case AB_BUS_HELLO: {
        const struct ab_bus_hello *h = &m->u.hello;
        put_u32(&w, AB_BUS_MAGIC);
        put_u8(&w, h->version);
        put_u8(&w, h->role);
        put_u16(&w, 0);
        put_u64(&w, h->instance_id);
        put_u64(&w, h->seq);
        put_str8(&w, h->name, strlen(h->name));
        break;
    }
    case AB_BUS_ACK:
        put_u64(&w, m->u.ack);
        break;
    case AB_BUS_CANDLE: {
        const struct ab_candle *c = &m->u.candle.c;
        put_str8(&w, c->symbol, strlen(c->symbol));
        put_u8(&w, (uint8_t)c->interval);
        put_u8(&w, c->closed ? 1 : 0);
        put_u8(&w, (uint8_t)m->u.candle.origin);
        put_u8(&w, 0);
        put_i64(&w, c->open_time);
        put_i64(&w, c->close_time);
        put_i64(&w, c->event_time);
        put_i64(&w, m->u.candle.recv_us);
        put_dec(&w, c->open);
        put_dec(&w, c->high);
        put_dec(&w, c->low);
        put_dec(&w, c->close);
        put_dec(&w, c->volume);
        put_dec(&w, c->quote_volume);
        put_dec(&w, c->taker_buy_volume);
        put_dec(&w, c->taker_buy_quote_volume);
        put_i64(&w, c->num_trades);
        put_i64(&w, c->first_trade_id);
        put_i64(&w, c->last_trade_id);
        break;
    }
    case AB_BUS_BOOK_SNAPSHOT: {
        const struct ab_bus_snapshot *s = &m->u.snapshot;
        put_str8(&w, s->s.symbol, strlen(s->s.symbol));
        put_u64(&w, s->s.last_update_id);
        put_i64(&w, s->event_time);
        put_i64(&w, s->recv_us);
        put_u32(&w, (uint32_t)s->s.n_bids);
        put_u32(&w, (uint32_t)s->s.n_asks);
        put_levels(&w, s->s.bids, s->s.n_bids);
        put_levels(&w, s->s.asks, s->s.n_asks);
        break;
    }
    case AB_BUS_BOOK_DELTA: {
        const struct ab_bus_delta *d = &m->u.delta;
        put_str8(&w, d->d.symbol, strlen(d->d.symbol));
        put_u64(&w, d->d.first_id);
        put_u64(&w, d->d.last_id);
        put_u64(&w, d->prev_id);
        put_i64(&w, d->d.event_time);
        put_i64(&w, d->recv_us);
        put_u32(&w, (uint32_t)d->d.n_bids);
        put_u32(&w, (uint32_t)d->d.n_asks);
        put_levels(&w, d->d.bids, d->d.n_bids);
        put_levels(&w, d->d.asks, d->d.n_asks);
        break;
    }
    case AB_BUS_STATUS: {
        const struct ab_bus_status *s = &m->u.status;
        put_str8(&w, s->symbol, strlen(s->symbol));
        put_u8(&w, (uint8_t)s->book);
        put_u8(&w, (uint8_t)s->conn);
        put_u64(&w, s->last_update_id);
        put_i64(&w, s->recv_us);
        put_str8(&w, s->reason, strlen(s->reason));
        break;
    }
    case AB_BUS_RESYNC:
        put_str8(&w, m->u.resync_symbol, strlen(m->u.resync_symbol));
        break;
    }
}

int ab_bus_frame_encode(const struct ab_bus_msg *m, uint8_t *buf, size_t cap, size_t *len,
                        const char **reason)
{
    size_t n;
    int rc = ab_bus_frame_size(m, &n, reason);
    if (rc)
        return rc;
    if (!buf || cap < n)
        FAIL(AB_ENOMEM, "buffer too small");
    write_frame(m, buf, n);
    if (len)
        *len = n;
    return 0;
}

void ab_bus_frame_set_seq(uint8_t *buf, uint64_t seq)
{
    struct wr w = {buf, 8};
    put_u64(&w, seq);
}

void ab_bus_frame_set_flags(uint8_t *buf, uint16_t flags)
{
    struct wr w = {buf, 6};
    put_u16(&w, flags);
}

/* ---- growable buffer ---------------------------------------------------- */

void ab_bus_buf_init(struct ab_bus_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void ab_bus_buf_deinit(struct ab_bus_buf *b)
{
    if (!b)
        return;
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int ab_bus_frame_append(struct ab_bus_buf *b, const struct ab_bus_msg *m, const char **reason)
{
    size_t n;
    int rc = ab_bus_frame_size(m, &n, reason);
    if (rc)
        return rc;
    if (n > b->max || b->len > b->max - n)
        FAIL(AB_ENOMEM, "buffer cap reached");
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n)
            nc = nc > b->max / 2 ? b->max : nc * 2;
        uint8_t *p = realloc(b->p, nc);
        if (!p)
            FAIL(AB_ENOMEM, "out of memory");
        b->p = p;
        b->cap = nc;
    }
    write_frame(m, b->p + b->len, n);
    b->len += n;
    return 0;
}

/* ---- reader ------------------------------------------------------------- */

/* A bounds-checked cursor: every get fails once fewer bytes are left. */
struct rd {
    const uint8_t *p;
    size_t n, off;
};

static bool get_u8(struct rd *r, uint8_t *v)
{
    if (r->n - r->off < 1)
        return false;
    *v = r->p[r->off++];
    return true;
}

static bool get_u16(struct rd *r, uint16_t *v)
{
    if (r->n - r->off < 2)
        return false;
    *v = (uint16_t)(r->p[r->off] | (r->p[r->off + 1] << 8));
    r->off += 2;
    return true;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool get_u32(struct rd *r, uint32_t *v)
{
    if (r->n - r->off < 4)
        return false;
    *v = le32(r->p + r->off);
    r->off += 4;
    return true;
}

static bool get_u64(struct rd *r, uint64_t *v)
{
    if (r->n - r->off < 8)
        return false;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += 8;
    *v = x;
    return true;
}

static bool get_i64(struct rd *r, int64_t *v)
{
    uint64_t u;
    if (!get_u64(r, &u))
        return false;
    *v = (int64_t)u;
    return true;
}

static bool get_dec(struct rd *r, struct ab_dec *d)
{
    if (r->n - r->off < 16)
        return false;
    unsigned __int128 u = 0;
    for (int i = 0; i < 16; i++)
        u |= (unsigned __int128)r->p[r->off + i] << (8 * i);
    r->off += 16;
    d->v = (__int128)u;
    return true;
}

/* Reads a length byte and that many bytes into out (size cap, NUL-terminated). */
static int get_str8(struct rd *r, char *out, size_t cap, size_t *len)
{
    uint8_t n;
    if (!get_u8(r, &n))
        return AB_ETRUNC;
    if (n >= cap)
        return AB_EINVAL;
    if (r->n - r->off < n)
        return AB_ETRUNC;
    memcpy(out, r->p + r->off, n);
    out[n] = '\0';
    r->off += n;
    *len = n;
    return 0;
}

static int get_symbol(struct rd *r, char *out, bool allow_empty, const char **reason)
{
    size_t n;
    int rc = get_str8(r, out, AB_SYMBOL_MAX, &n);
    if (rc == AB_ETRUNC)
        FAIL(AB_EINVAL, "payload shorter than its fields");
    if (rc || (n == 0 && !allow_empty) || (n > 0 && !ab_symbol_valid(out, n)))
        FAIL(AB_EINVAL, "bad symbol");
    return 0;
}

/* Reads n_bids + n_asks levels into newly allocated arrays. */
static int get_levels(struct rd *r, struct ab_level **bids, size_t *nb, struct ab_level **asks,
                      size_t *na, const char **reason)
{
    uint32_t b, a;
    if (!get_u32(r, &b) || !get_u32(r, &a))
        FAIL(AB_EINVAL, "payload shorter than its fields");
    /* Counts must match the bytes left exactly, before anything is allocated. */
    uint64_t need = ((uint64_t)b + a) * AB_BUS_LEVEL_SIZE;
    if (need != r->n - r->off)
        FAIL(AB_EINVAL, "level count does not match frame length");
    struct ab_level *vb = b ? malloc((size_t)b * sizeof(*vb)) : NULL;
    struct ab_level *va = a ? malloc((size_t)a * sizeof(*va)) : NULL;
    if ((b && !vb) || (a && !va)) {
        free(vb);
        free(va);
        FAIL(AB_ENOMEM, "out of memory");
    }
    *bids = vb, *nb = b, *asks = va, *na = a;
    for (size_t i = 0; i < (size_t)b + a; i++) {
        struct ab_level *l = i < b ? &vb[i] : &va[i - b];
        get_dec(r, &l->price);
        get_dec(r, &l->qty);
        int rc = level_check(l, reason);
        if (rc)
            return rc; /* the caller frees the arrays with the message */
    }
    return 0;
}

#define NEED(expr)                                   \
    do {                                             \
        if (!(expr)) {                               \
            rc = AB_EINVAL;                          \
            why = "payload shorter than its fields"; \
            goto out;                                \
        }                                            \
    } while (0)

#define BAD(code, text) \
    do {                \
        rc = (code);    \
        why = (text);   \
        goto out;       \
    } while (0)

/* Early header checks on the first avail bytes (avail may be < header size). */
static int check_header(const uint8_t *p, size_t avail, size_t max_frame, const char **reason)
{
    if (avail >= 4) {
        uint32_t len = le32(p);
        if (len < AB_BUS_HDR_SIZE)
            FAIL(AB_EINVAL, "frame length below header size");
        if (len > max_frame)
            FAIL(AB_EINVAL, "frame length above maximum");
    }
    if (avail >= 5 && p[4] != AB_BUS_VERSION)
        FAIL(AB_EINVAL, "unsupported frame version");
    if (avail >= 6 && !type_known(p[5]))
        FAIL(AB_EINVAL, "unknown frame type");
    return 0;
}

static size_t clamp_max(size_t max_frame)
{
    return (max_frame == 0 || max_frame > AB_BUS_FRAME_MAX) ? AB_BUS_FRAME_MAX : max_frame;
}

int ab_bus_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, struct ab_bus_msg *out,
                        size_t *used, const char **reason)
{
    int rc = 0;
    const char *why = NULL;
    /* Zeroed: check_header already proved the header bytes are there, but
     * gcc -O2 cannot see that through the reader. */
    uint8_t version = 0, type = 0, u8v = 0;
    uint16_t flags = 0;
    uint32_t flen;
    size_t n;

    memset(out, 0, sizeof(*out));
    max_frame = clamp_max(max_frame);
    if (!buf || len < 4)
        FAIL(AB_ETRUNC, "frame shorter than its length field");
    if ((rc = check_header(buf, len < AB_BUS_HDR_SIZE ? len : AB_BUS_HDR_SIZE, max_frame, reason)))
        return rc;
    flen = le32(buf);
    if (len < flen)
        FAIL(AB_ETRUNC, "frame shorter than its length");

    struct rd r = {buf, flen, 4};
    get_u8(&r, &version);
    get_u8(&r, &type);
    get_u16(&r, &flags);
    get_u64(&r, &out->seq);
    out->type = (enum ab_bus_type)type;
    out->flags = flags;
    bool data = ab_bus_type_is_data(out->type);
    if (data && out->seq == 0)
        BAD(AB_EINVAL, "data frame with seq 0");
    if (!data && out->seq != 0)
        BAD(AB_EINVAL, "control frame with non-zero seq");
    if (flags & ~(data ? AB_BUS_F_RESENT : 0u))
        BAD(AB_EINVAL, "unknown flag bits");

    switch (out->type) {
    case AB_BUS_HELLO: {
        struct ab_bus_hello *h = &out->u.hello;
        uint32_t magic;
        uint16_t reserved;
        NEED(get_u32(&r, &magic) && get_u8(&r, &h->version) && get_u8(&r, &h->role) &&
             get_u16(&r, &reserved) && get_u64(&r, &h->instance_id) && get_u64(&r, &h->seq));
        if (magic != AB_BUS_MAGIC)
            BAD(AB_EINVAL, "bad hello magic");
        if (h->version < 1)
            BAD(AB_EINVAL, "bad hello version");
        if (h->role != AB_BUS_ROLE_INGEST && h->role != AB_BUS_ROLE_QUERY)
            BAD(AB_EINVAL, "bad hello role");
        if (reserved != 0)
            BAD(AB_EINVAL, "hello reserved field not zero");
        if (h->instance_id == 0)
            BAD(AB_EINVAL, "hello instance id 0");
        rc = get_str8(&r, h->name, AB_BUS_NAME_MAX, &n);
        if (rc == AB_ETRUNC)
            BAD(AB_EINVAL, "payload shorter than its fields");
        if (rc || !printable(h->name, n))
            BAD(AB_EINVAL, "bad hello name");
        break;
    }
    case AB_BUS_ACK:
        NEED(get_u64(&r, &out->u.ack));
        break;
    case AB_BUS_CANDLE: {
        struct ab_bus_candle *bc = &out->u.candle;
        struct ab_candle *c = &bc->c;
        uint8_t iv, closed, origin, reserved;
        if ((rc = get_symbol(&r, c->symbol, false, &why)))
            goto out;
        NEED(get_u8(&r, &iv) && get_u8(&r, &closed) && get_u8(&r, &origin) &&
             get_u8(&r, &reserved));
        if (closed > 1)
            BAD(AB_EINVAL, "bad closed flag");
        if (reserved != 0)
            BAD(AB_EINVAL, "candle reserved byte not zero");
        c->interval = (enum ab_interval)iv;
        c->closed = closed;
        bc->origin = (enum ab_bus_origin)origin;
        NEED(get_i64(&r, &c->open_time) && get_i64(&r, &c->close_time) &&
             get_i64(&r, &c->event_time) && get_i64(&r, &bc->recv_us));
        NEED(get_dec(&r, &c->open) && get_dec(&r, &c->high) && get_dec(&r, &c->low) &&
             get_dec(&r, &c->close) && get_dec(&r, &c->volume) && get_dec(&r, &c->quote_volume) &&
             get_dec(&r, &c->taker_buy_volume) && get_dec(&r, &c->taker_buy_quote_volume));
        NEED(get_i64(&r, &c->num_trades) && get_i64(&r, &c->first_trade_id) &&
             get_i64(&r, &c->last_trade_id));
        if ((rc = candle_check(bc, &why)))
            goto out;
        break;
    }
    case AB_BUS_BOOK_SNAPSHOT: {
        struct ab_bus_snapshot *s = &out->u.snapshot;
        if ((rc = get_symbol(&r, s->s.symbol, false, &why)))
            goto out;
        NEED(get_u64(&r, &s->s.last_update_id) && get_i64(&r, &s->event_time) &&
             get_i64(&r, &s->recv_us));
        if (!ms_ok(s->event_time) || !us_ok(s->recv_us))
            BAD(AB_ERANGE, "time out of range");
        if ((rc = get_levels(&r, &s->s.bids, &s->s.n_bids, &s->s.asks, &s->s.n_asks, &why)))
            goto out;
        break;
    }
    case AB_BUS_BOOK_DELTA: {
        struct ab_bus_delta *d = &out->u.delta;
        if ((rc = get_symbol(&r, d->d.symbol, false, &why)))
            goto out;
        NEED(get_u64(&r, &d->d.first_id) && get_u64(&r, &d->d.last_id) &&
             get_u64(&r, &d->prev_id) && get_i64(&r, &d->d.event_time) && get_i64(&r, &d->recv_us));
        if (d->d.first_id > d->d.last_id)
            BAD(AB_EINVAL, "delta first id above last id");
        if (!ms_ok(d->d.event_time) || !us_ok(d->recv_us))
            BAD(AB_ERANGE, "time out of range");
        if ((rc = get_levels(&r, &d->d.bids, &d->d.n_bids, &d->d.asks, &d->d.n_asks, &why)))
            goto out;
        break;
    }
    case AB_BUS_STATUS: {
        struct ab_bus_status *s = &out->u.status;
        uint8_t conn;
        if ((rc = get_symbol(&r, s->symbol, false, &why)))
            goto out;
        NEED(get_u8(&r, &u8v) && get_u8(&r, &conn) && get_u64(&r, &s->last_update_id) &&
             get_i64(&r, &s->recv_us));
        if (u8v > AB_BUS_BOOK_RESYNCING)
            BAD(AB_EINVAL, "bad book state");
        if (conn > AB_BUS_CONN_DISCONNECTED)
            BAD(AB_EINVAL, "bad connection state");
        s->book = (enum ab_bus_book_state)u8v;
        s->conn = (enum ab_bus_conn_state)conn;
        if (!us_ok(s->recv_us))
            BAD(AB_ERANGE, "time out of range");
        rc = get_str8(&r, s->reason, AB_BUS_REASON_MAX, &n);
        if (rc == AB_ETRUNC)
            BAD(AB_EINVAL, "payload shorter than its fields");
        if (rc || !printable(s->reason, n))
            BAD(AB_EINVAL, "bad status reason");
        break;
    }
    case AB_BUS_RESYNC:
        if ((rc = get_symbol(&r, out->u.resync_symbol, true, &why)))
            goto out;
        break;
    }
    if (r.off != r.n)
        BAD(AB_EINVAL, "trailing bytes after payload");
    if (used)
        *used = flen;
out:
    if (rc) {
        ab_bus_msg_deinit(out);
        if (reason)
            *reason = why;
    }
    return rc;
}

/* ---- streaming decoder -------------------------------------------------- */

void ab_bus_decoder_init(struct ab_bus_decoder *d, size_t max_frame)
{
    memset(d, 0, sizeof(*d));
    d->max_frame = clamp_max(max_frame);
}

void ab_bus_decoder_deinit(struct ab_bus_decoder *d)
{
    if (!d)
        return;
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

void ab_bus_decoder_reset(struct ab_bus_decoder *d)
{
    d->have = 0;
    d->err = 0;
}

bool ab_bus_decoder_partial(const struct ab_bus_decoder *d)
{
    return d->have > 0;
}

static int grow(struct ab_bus_decoder *d, size_t need)
{
    if (need <= d->cap)
        return 0;
    size_t nc = d->cap ? d->cap : 512;
    while (nc < need)
        nc = nc > d->max_frame / 2 ? d->max_frame : nc * 2;
    uint8_t *p = realloc(d->buf, nc);
    if (!p)
        return AB_ENOMEM;
    d->buf = p;
    d->cap = nc;
    return 0;
}

static int dec_fail(struct ab_bus_decoder *d, int rc, const char *why, const char **reason)
{
    d->err = rc;
    d->have = 0;
    if (reason)
        *reason = why;
    return rc;
}

int ab_bus_decoder_push(struct ab_bus_decoder *d, const uint8_t *data, size_t n, size_t *used,
                        struct ab_bus_msg *out, const char **reason)
{
    const char *why = NULL;
    int rc;
    *used = 0;
    if (d->err) {
        if (reason)
            *reason = "decoder failed earlier";
        return d->err;
    }
    if (n == 0)
        return 0;

    if (d->have == 0) {
        /* Fast path: the whole frame is in data; decode it in place. */
        size_t early = n < AB_BUS_HDR_SIZE ? n : AB_BUS_HDR_SIZE;
        if ((rc = check_header(data, early, d->max_frame, &why)))
            return dec_fail(d, rc, why, reason);
        if (n >= 4 && n >= le32(data)) {
            size_t flen;
            rc = ab_bus_frame_decode(data, n, d->max_frame, out, &flen, &why);
            if (rc)
                return dec_fail(d, rc, why, reason);
            *used = flen;
            d->frames++;
            d->bytes += flen;
            return 1;
        }
    }

    /* Slow path: gather the frame into d->buf. */
    size_t off = 0;
    if (d->have < 4) {
        if ((rc = grow(d, AB_BUS_HDR_SIZE)))
            return dec_fail(d, rc, "out of memory", reason);
        size_t take = 4 - d->have < n ? 4 - d->have : n;
        memcpy(d->buf + d->have, data, take);
        d->have += take;
        off += take;
        if (d->have < 4) {
            *used = off;
            d->bytes += off;
            return 0;
        }
        if ((rc = check_header(d->buf, d->have, d->max_frame, &why)))
            return dec_fail(d, rc, why, reason);
    }
    size_t flen = le32(d->buf);
    if ((rc = grow(d, flen)))
        return dec_fail(d, rc, "out of memory", reason);
    size_t take = flen - d->have < n - off ? flen - d->have : n - off;
    size_t before = d->have;
    memcpy(d->buf + d->have, data + off, take);
    d->have += take;
    off += take;
    /* Check version and type as soon as they arrive, not after megabytes. */
    if (before < AB_BUS_HDR_SIZE &&
        (rc = check_header(d->buf, d->have < AB_BUS_HDR_SIZE ? d->have : AB_BUS_HDR_SIZE,
                           d->max_frame, &why)))
        return dec_fail(d, rc, why, reason);
    *used = off;
    d->bytes += off;
    if (d->have < flen)
        return 0;
    d->have = 0;
    rc = ab_bus_frame_decode(d->buf, flen, d->max_frame, out, NULL, &why);
    if (rc)
        return dec_fail(d, rc, why, reason);
    d->frames++;
    return 1;
}

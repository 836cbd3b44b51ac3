/*
 * candles_json (services/query/candles_json.h) and the /v1/candles response
 * cache:
 *   - the direct writer is byte for byte jansson's compact dump of the object
 *     the handler built before (key order, integers, booleans, decimals),
 *   - the cache hits only at the exact series version, drops older entries,
 *     keeps newer ones, evicts by LRU and by bytes,
 *   - over HTTP (live state + REST server), the cached dashboard answer
 *     changes right after every applied candle (never a stale body) and
 *     equals the uncached answer of the same window.
 * Needs DATABASE_URL (the CTest "pg" fixture): the REST server needs a store.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "book_source.h"
#include "candles_json.h"
#include "common/decimal.h"
#include "common/err.h"
#include "http.h"
#include "live.h"
#include "store.h"

static struct ab_dec D(const char *s) {
    struct ab_dec d;
    cr_assert_eq(ab_dec_parse_cstr(s, &d), 0, "decimal %s", s);
    return d;
}

static const char *const prices[] = {"0",        "1",         "0.00000001", "50000.5",
                                     "12.3400",  "99999999",  "0.1",        "123456789.12345678",
                                     "7.000001", "31.4159265"};
#define N_PRICES (sizeof(prices) / sizeof(prices[0]))

/* Candle k of a 1m series starting at t0, with varied decimals and flags. */
static struct ab_candle make_candle(const char *symbol, int64_t t0, size_t k)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "%s", symbol);
    c.interval = AB_I_1M;
    c.open_time = t0 + (int64_t)k * 60000;
    c.close_time = c.open_time + 59999;
    c.open = D(prices[k % N_PRICES]);
    c.high = D(prices[(k + 1) % N_PRICES]);
    c.low = D(prices[(k + 2) % N_PRICES]);
    c.close = D(prices[(k + 3) % N_PRICES]);
    c.volume = D(prices[(k + 4) % N_PRICES]);
    c.quote_volume = D(prices[(k + 5) % N_PRICES]);
    c.taker_buy_volume = D(prices[(k + 6) % N_PRICES]);
    c.taker_buy_quote_volume = D(prices[(k + 7) % N_PRICES]);
    c.num_trades = k % 7 == 0 ? 0 : (int64_t)(k * 1000003);
    c.first_trade_id = -1;
    c.last_trade_id = -1;
    c.closed = k % 3 != 0;
    c.event_time = c.open_time + 1;
    return c;
}

static json_t *jdec(struct ab_dec d)
{
    char buf[AB_DEC_STR_MAX];
    size_t n = ab_dec_format(d, buf);
    return json_stringn(buf, n);
}

/* The body as the handler built it with jansson before the direct writer. */
static char *reference_body(const char *symbol, const char *iv, const struct ab_candle *cs,
                            size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct ab_candle *c = &cs[i];
        json_t *o = json_object();
        json_object_set_new(o, "open_time", json_integer(c->open_time));
        json_object_set_new(o, "close_time", json_integer(c->close_time));
        json_object_set_new(o, "open", jdec(c->open));
        json_object_set_new(o, "high", jdec(c->high));
        json_object_set_new(o, "low", jdec(c->low));
        json_object_set_new(o, "close", jdec(c->close));
        json_object_set_new(o, "volume", jdec(c->volume));
        json_object_set_new(o, "quote_volume", jdec(c->quote_volume));
        json_object_set_new(o, "taker_buy_volume", jdec(c->taker_buy_volume));
        json_object_set_new(o, "taker_buy_quote_volume", jdec(c->taker_buy_quote_volume));
        json_object_set_new(o, "num_trades", json_integer(c->num_trades));
        json_object_set_new(o, "is_closed", json_boolean(c->closed));
        json_array_append_new(arr, o);
    }
    json_t *body = json_pack("{s:s,s:s,s:o}", "symbol", symbol, "interval", iv, "candles", arr);
    cr_assert_not_null(body);
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(body);
    cr_assert_not_null(text);
    return text;
}

static void expect_same_as_reference(const struct ab_candle *cs, size_t n, const char *symbol,
                                     enum ab_interval iv)
{
    struct candles_body *b = NULL;
    cr_assert_eq(candles_json_build(symbol, iv, cs, n, &b), 0);
    char *ref = reference_body(symbol, ab_interval_name(iv), cs, n);
    size_t rlen = strlen(ref);
    cr_assert_eq(b->len, rlen, "n=%zu: %zu bytes, jansson %zu", n, b->len, rlen);
    cr_assert(memcmp(b->data, ref, rlen) == 0, "n=%zu: bytes differ", n);
    free(ref);
    candles_body_unref(b);
}

Test(candles_json, byte_identical_to_jansson)
{
    enum { N = 5000 }; /* API_LIMIT_MAX */
    struct ab_candle *cs = calloc(N, sizeof(*cs));
    cr_assert_not_null(cs);
    for (size_t k = 0; k < N; k++)
        cs[k] = make_candle("BTCUSDT", 1554994800000LL, k);
    /* Extreme integers both signs (the writer formats them itself). */
    cs[1].open_time = INT64_MIN;
    cs[1].close_time = INT64_MAX;
    cs[2].num_trades = -42;
    cs[4].num_trades = INT64_MAX;
    static const size_t sizes[] = {0, 1, 2, 17, 1000, N};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        expect_same_as_reference(cs, sizes[i], "BTCUSDT", AB_I_1M);
    expect_same_as_reference(cs, 3, "X1", AB_I_1MO);
    expect_same_as_reference(cs, 3, "ABCDEFGHIJKLMNOPQRS", AB_I_1S);
    free(cs);
}

Test(candles_json, refuses_what_would_need_escaping)
{
    struct ab_candle c = make_candle("BTCUSDT", 0, 1);
    struct candles_body *b = (struct candles_body *)&c; /* must be reset */
    cr_assert_eq(candles_json_build("BTC\"USDT", AB_I_1M, &c, 1, &b), AB_EINVAL);
    cr_assert_null(b);
    cr_assert_eq(candles_json_build("btcusdt", AB_I_1M, &c, 1, &b), AB_EINVAL);
    cr_assert_eq(candles_json_build("", AB_I_1M, &c, 1, &b), AB_EINVAL);
    cr_assert_eq(candles_json_build("BTCUSDT", AB_I_COUNT, &c, 1, &b), AB_EINVAL);
    cr_assert_eq(candles_json_build("BTCUSDT", (enum ab_interval) - 1, &c, 1, &b), AB_EINVAL);
}

static struct candles_body *body_of(const char *text)
{
    struct ab_candle c = make_candle("BTCUSDT", 0, 1);
    struct candles_body *b = NULL;
    cr_assert_eq(candles_json_build(text, AB_I_1M, &c, 1, &b), 0);
    return b;
}

Test(candles_json, cache_hits_only_at_the_exact_version)
{
    struct candles_cache *c = NULL;
    cr_assert_eq(candles_cache_new(CANDLES_CACHE_ENTRIES + 1, 0, &c), AB_ERANGE);
    cr_assert_eq(candles_cache_new(0, 0, &c), 0);
    struct candles_body *a = body_of("AAA"), *b = body_of("BBB");
    struct candles_cache_stats st;

    cr_assert_null(candles_cache_get(c, "AAA", AB_I_1M, 10, 5));
    candles_cache_put(c, "AAA", AB_I_1M, 10, 0, a); /* version 0: never kept */
    cr_assert_null(candles_cache_get(c, "AAA", AB_I_1M, 10, 0));
    candles_cache_put(c, "AAA", AB_I_1M, 10, 5, a);
    struct candles_body *g = candles_cache_get(c, "AAA", AB_I_1M, 10, 5);
    cr_assert_eq(g, a);
    cr_assert_eq(atomic_load(&a->refs), 3); /* ours, the cache's, g */
    candles_body_unref(g);
    /* Other keys miss. */
    cr_assert_null(candles_cache_get(c, "AAA", AB_I_5M, 10, 5));
    cr_assert_null(candles_cache_get(c, "AAA", AB_I_1M, 11, 5));
    cr_assert_null(candles_cache_get(c, "AAAB", AB_I_1M, 10, 5));
    /* An older body never replaces a newer one. */
    candles_cache_put(c, "AAA", AB_I_1M, 10, 4, b);
    cr_assert_eq(atomic_load(&b->refs), 1);
    /* The series moved on: the entry is dropped at the first look. */
    cr_assert_null(candles_cache_get(c, "AAA", AB_I_1M, 10, 6));
    cr_assert_eq(atomic_load(&a->refs), 1);
    cr_assert_null(candles_cache_get(c, "AAA", AB_I_1M, 10, 5));
    candles_cache_get_stats(c, &st);
    cr_assert_eq(st.entries, 0);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.hits, 1);
    cr_assert_eq(st.stale, 1);
    /* A newer body replaces an older one. */
    candles_cache_put(c, "AAA", AB_I_1M, 10, 6, a);
    candles_cache_put(c, "AAA", AB_I_1M, 10, 7, b);
    cr_assert_eq(atomic_load(&a->refs), 1);
    g = candles_cache_get(c, "AAA", AB_I_1M, 10, 7);
    cr_assert_eq(g, b);
    candles_body_unref(g);
    /* Bodies held elsewhere outlive the cache. */
    candles_cache_free(c);
    cr_assert_eq(atomic_load(&b->refs), 1);
    candles_body_unref(a);
    candles_body_unref(b);
}

Test(candles_json, cache_evicts_least_recently_used_by_count_and_bytes)
{
    struct candles_cache *c = NULL;
    struct candles_body *b = body_of("AAA");
    struct candles_cache_stats st;
    cr_assert_eq(candles_cache_new(3, 3 * b->len, &c), 0);
    candles_cache_put(c, "AAA", AB_I_1M, 1, 1, b);
    candles_cache_put(c, "AAA", AB_I_1M, 2, 2, b);
    candles_cache_put(c, "AAA", AB_I_1M, 3, 3, b);
    candles_body_unref(candles_cache_get(c, "AAA", AB_I_1M, 1, 1)); /* 2 is now the oldest */
    candles_cache_put(c, "AAA", AB_I_1M, 4, 4, b);
    candles_cache_get_stats(c, &st);
    cr_assert_eq(st.entries, 3);
    cr_assert_eq(st.bytes, 3 * b->len);
    cr_assert_null(candles_cache_get(c, "AAA", AB_I_1M, 2, 2));
    struct candles_body *g;
    cr_assert_not_null(g = candles_cache_get(c, "AAA", AB_I_1M, 1, 1));
    candles_body_unref(g);
    cr_assert_not_null(g = candles_cache_get(c, "AAA", AB_I_1M, 4, 4));
    candles_body_unref(g);
    candles_cache_free(c);

    /* Byte cap below the count cap: room is made by evicting. */
    cr_assert_eq(candles_cache_new(0, 2 * b->len, &c), 0);
    for (size_t i = 1; i <= 10; i++)
        candles_cache_put(c, "AAA", AB_I_1M, i, i, b);
    candles_cache_get_stats(c, &st);
    cr_assert_eq(st.entries, 2);
    cr_assert_eq(st.bytes, 2 * b->len);
    cr_assert_not_null(g = candles_cache_get(c, "AAA", AB_I_1M, 10, 10));
    candles_body_unref(g);
    cr_assert_null(candles_cache_get(c, "AAA", AB_I_1M, 8, 8));
    candles_cache_free(c);
    /* A body above the byte cap is not kept. */
    cr_assert_eq(candles_cache_new(0, b->len - 1, &c), 0);
    candles_cache_put(c, "AAA", AB_I_1M, 1, 1, b);
    cr_assert_null(candles_cache_get(c, "AAA", AB_I_1M, 1, 1));
    candles_cache_free(c);
    cr_assert_eq(atomic_load(&b->refs), 1);
    candles_body_unref(b);
}

Test(candles_json, live_versions_change_with_every_applied_candle)
{
    struct live *a = NULL, *b = NULL;
    cr_assert_eq(live_new(NULL, &a), 0);
    cr_assert_eq(live_new(NULL, &b), 0);
    cr_assert_eq(live_candles_version(a, "VERA", AB_I_1M), 0);
    struct ab_candle c = make_candle("VERA", 1554994800000LL, 1);
    enum live_action act;
    cr_assert_eq(live_apply_candle(a, &c, &act), 0);
    uint64_t v1 = live_candles_version(a, "VERA", AB_I_1M);
    cr_assert_neq(v1, 0);
    /* A duplicate changes nothing. */
    cr_assert_eq(live_apply_candle(a, &c, &act), 0);
    cr_assert_eq(act, LIVE_DUPLICATE);
    cr_assert_eq(live_candles_version(a, "VERA", AB_I_1M), v1);
    /* An update of the open candle does. */
    c.closed = false;
    c.num_trades += 1;
    cr_assert_eq(live_apply_candle(a, &c, &act), 0);
    /* (make_candle(1) is closed: the update above is ignored as final) */
    cr_assert_eq(act, LIVE_IGNORED);
    cr_assert_eq(live_candles_version(a, "VERA", AB_I_1M), v1);
    struct ab_candle o = make_candle("VERA", 1554994800000LL, 3); /* k=3: open */
    cr_assert_not(o.closed);
    cr_assert_eq(live_apply_candle(a, &o, &act), 0);
    uint64_t v2 = live_candles_version(a, "VERA", AB_I_1M);
    cr_assert_gt(v2, v1);
    o.num_trades += 5;
    cr_assert_eq(live_apply_candle(a, &o, &act), 0);
    cr_assert_eq(act, LIVE_APPLIED);
    uint64_t v3 = live_candles_version(a, "VERA", AB_I_1M);
    cr_assert_gt(v3, v2);
    /* Another live state never reuses a version. */
    cr_assert_eq(live_apply_candle(b, &c, &act), 0);
    uint64_t w1 = live_candles_version(b, "VERA", AB_I_1M);
    cr_assert_gt(w1, v3);
    /* The versioned read reports the version of what it copied. */
    struct live_window lw = {.limit = 1};
    struct ab_candle *out = NULL;
    size_t n = 0;
    uint64_t rv = 0;
    cr_assert_eq(live_candles_read_versioned(b, "VERA", AB_I_1M, &lw, &out, &n, &rv), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(rv, w1);
    free(out);
    live_free(a);
    live_free(b);
}

/* ---- over HTTP ---- */

struct resp {
    int status;
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
};

static struct resp http_get(uint16_t port, const char *target)
{
    struct resp r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[512];
    int rn = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target);
    cr_assert(rn > 0 && (size_t)rn < sizeof(req));
    cr_assert_eq(write(fd, req, (size_t)rn), rn);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        ssize_t k = read(fd, buf + len, cap - len - 1);
        cr_assert_geq(k, 0);
        if (k == 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    buf[len] = '\0';
    cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &r.status), 1);
    char *p = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(p);
    p += 4;
    r.len = len - (size_t)(p - buf);
    r.body = malloc(r.len + 1);
    cr_assert_not_null(r.body);
    memcpy(r.body, p, r.len + 1);
    free(buf);
    return r;
}

/* The expected body of the newest n candles of live state lv. */
static char *expected_newest(struct live *lv, const char *symbol, size_t n, size_t *len)
{
    struct live_window lw = {.limit = n};
    struct ab_candle *cs = NULL;
    size_t got = 0;
    cr_assert_eq(live_candles_read(lv, symbol, AB_I_1M, &lw, &cs, &got), 0);
    cr_assert_eq(got, n);
    char *ref = reference_body(symbol, "1m", cs, got);
    free(cs);
    *len = strlen(ref);
    return ref;
}

static void expect_body(uint16_t port, const char *target, const char *want, size_t wlen)
{
    struct resp r = http_get(port, target);
    cr_assert_eq(r.status, 200, "%s: %d %s", target, r.status, r.body);
    cr_assert_eq(r.len, wlen, "%s: %zu bytes, want %zu", target, r.len, wlen);
    cr_assert(memcmp(r.body, want, wlen) == 0, "%s: stale or wrong body", target);
    free(r.body);
}

Test(candles_json, cached_answer_changes_right_after_each_candle, .timeout = 120)
{
    const char *url = getenv("DATABASE_URL");
    cr_assert(url && *url, "DATABASE_URL is not set (run under ctest's pg fixture)");
    struct store_config scfg = {.database_url = url};
    struct store *st = NULL;
    struct live *lv = NULL;
    struct http_server *hs = NULL;
    struct ab_config_symbols syms = {.n = 1};
    struct ab_config_intervals ivs = {.v = {AB_I_1M}, .n = 1};
    snprintf(syms.v[0], sizeof(syms.v[0]), "CJCACHE");
    cr_assert_eq(store_new(&scfg, &st), 0);
    cr_assert_eq(live_new(NULL, &lv), 0);
    const int64_t t0 = 1554994800000LL;
    size_t k = 0;
    for (; k < 50; k++) {
        struct ab_candle c = make_candle("CJCACHE", t0, k);
        c.closed = true;
        cr_assert_eq(live_apply_candle(lv, &c, NULL), 0);
    }
    struct http_config hc = {.host = "127.0.0.1",
                             .threads = 2,
                             .store = st,
                             .books = book_source_store(st),
                             .symbols = &syms,
                             .intervals = &ivs,
                             .stale_after_ms = 120000,
                             .db_timeout_ms = 2000,
                             .live = lv};
    cr_assert_eq(http_new(&hc, &hs), 0);
    cr_assert_eq(http_start(hs), 0);
    uint16_t port = http_port(hs);
    const char *cached = "/v1/candles?symbol=CJCACHE&interval=1m&limit=20";
    char uncached[128];

    for (int round = 0; round < 60; round++) {
        size_t wlen;
        char *want = expected_newest(lv, "CJCACHE", 20, &wlen);
        expect_body(port, cached, want, wlen); /* builds and caches */
        expect_body(port, cached, want, wlen); /* from the cache */
        /* The same window through the uncached path (an end): same bytes. */
        snprintf(uncached, sizeof(uncached),
                 "/v1/candles?symbol=CJCACHE&interval=1m&limit=20&end=%lld",
                 (long long)(t0 + (int64_t)(k + 5) * 60000));
        expect_body(port, uncached, want, wlen);
        free(want);
        /* Change the series: alternately a new open candle and an update of it
         * (same open time: only its values change, the window's size not). */
        struct ab_candle c = make_candle("CJCACHE", t0, k);
        c.closed = false;
        c.num_trades = (int64_t)round + 1000;
        if (round % 2 == 1) {
            c = make_candle("CJCACHE", t0, k - 1);
            c.closed = round % 4 == 3; /* sometimes the final version */
            c.num_trades = (int64_t)round + 1000;
            c.close = D(round % 4 == 3 ? "1.5" : "2.25");
        } else {
            k++;
        }
        enum live_action act;
        cr_assert_eq(live_apply_candle(lv, &c, &act), 0);
        cr_assert_eq(act, LIVE_APPLIED, "round %d", round);
        /* Right after the change the answer must show it. */
        want = expected_newest(lv, "CJCACHE", 20, &wlen);
        expect_body(port, cached, want, wlen);
        free(want);
    }
    http_free(hs);
    live_free(lv);
    store_free(st);
}

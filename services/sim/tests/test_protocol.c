/* Unit tests of the simulator's wire formats: encode, control, rest, faults, opts. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/err.h"
#include "services/sim/control.h"
#include "services/sim/encode.h"
#include "services/sim/faults.h"
#include "services/sim/market.h"
#include "services/sim/opts.h"
#include "services/sim/rest.h"
#include "services/sim/streams.h"

static struct sbuf b;

static void setup(void)
{
    cr_assert_eq(sbuf_init(&b, 16, 64, 1 << 20), 0);
}

static void teardown(void)
{
    sbuf_deinit(&b);
}

static struct ab_dec D(const char *s) {
    struct ab_dec d;
    cr_assert_eq(ab_dec_parse_cstr(s, &d), 0);
    return d;
}

TestSuite(encode, .init = setup, .fini = teardown);

Test(encode, depth_update_is_binance_exact)
{
    struct ab_level bids[] = {{D("50000"), D("1.5")}, {D("49999.99"), D("0")}};
    struct ab_level asks[] = {{D("50000.01"), D("0.00100000")}};
    encode_depth_update(&b, "BTCUSDT", 1672515782136, 157, 160, bids, 2, asks, 1);
    cr_assert_eq(sbuf_err(&b), 0);
    cr_assert_str_eq(sbuf_text(&b),
                     "{\"e\":\"depthUpdate\",\"E\":1672515782136,\"s\":\"BTCUSDT\",\"U\":157,"
                     "\"u\":160,\"b\":[[\"50000.00000000\",\"1.50000000\"],[\"49999.99000000\","
                     "\"0.00000000\"]],\"a\":[[\"50000.01000000\",\"0.00100000\"]]}");
    sbuf_reset(&b);
    encode_depth_update(&b, "X", 1, 2, 2, NULL, 0, NULL, 0);
    cr_assert_str_eq(
        sbuf_text(&b),
        "{\"e\":\"depthUpdate\",\"E\":1,\"s\":\"X\",\"U\":2,\"u\":2,\"b\":[],\"a\":[]}");
}

static struct ab_candle candle(void)
{
    struct ab_candle c = {0};
    memcpy(c.symbol, "BNBBTC", 7);
    c.interval = AB_I_1M;
    c.open_time = 1672515780000;
    c.close_time = 1672515839999;
    c.first_trade_id = 100;
    c.last_trade_id = 200;
    c.open = D("0.001");
    c.close = D("0.002");
    c.high = D("0.0025");
    c.low = D("0.0015");
    c.volume = D("1000");
    c.num_trades = 101;
    c.quote_volume = D("1");
    c.taker_buy_volume = D("500");
    c.taker_buy_quote_volume = D("0.5");
    return c;
}

Test(encode, kline_matches_the_doc_example_keys_and_faults_damage_only_the_copy)
{
    struct ab_candle c = candle();
    encode_kline(&b, &c, 1672515782136, KLINE_OK);
    cr_assert_str_eq(
        sbuf_text(&b),
        "{\"e\":\"kline\",\"E\":1672515782136,\"s\":\"BNBBTC\",\"k\":{\"t\":1672515780000,"
        "\"T\":1672515839999,\"s\":\"BNBBTC\",\"i\":\"1m\",\"f\":100,\"L\":200,\"o\":"
        "\"0.00100000\",\"c\":\"0.00200000\",\"h\":\"0.00250000\",\"l\":\"0.00150000\",\"v\":"
        "\"1000.00000000\",\"n\":101,\"x\":false,\"q\":\"1.00000000\",\"V\":\"500.00000000\","
        "\"Q\":\"0.50000000\",\"B\":\"0\"}}");
    sbuf_reset(&b);
    encode_kline(&b, &c, 1, KLINE_HIGH_BELOW_LOW);
    cr_assert(strstr(sbuf_text(&b), "\"h\":\"0.00150000\",\"l\":\"0.00250000\""));
    sbuf_reset(&b);
    encode_kline(&b, &c, 1, KLINE_NEGATIVE_VOLUME);
    cr_assert(strstr(sbuf_text(&b), "\"v\":\"-1000.00000000\""));
    cr_assert_eq(ab_dec_cmp(c.high, D("0.0025")), 0, "the candle itself is untouched");
    sbuf_reset(&b);
    c.closed = true;
    encode_klines(&b, &c, 1);
    cr_assert_str_eq(sbuf_text(&b), "[[1672515780000,\"0.00100000\",\"0.00250000\",\"0.00150000\","
                                    "\"0.00200000\",\"1000.00000000\",1672515839999,"
                                    "\"1.00000000\",101,\"500.00000000\",\"0.50000000\",\"0\"]]");
}

Test(encode, trades_ticker_wrapper_and_errors)
{
    struct market_trade t = {12345, 777, 1672515782136, D("0.001"), D("100"), true};
    encode_trade(&b, "BNBBTC", 1672515782137, &t);
    cr_assert_str_eq(sbuf_text(&b), "{\"e\":\"trade\",\"E\":1672515782137,\"s\":\"BNBBTC\",\"t\":"
                                    "12345,\"p\":\"0.00100000\",\"q\":\"100.00000000\",\"T\":"
                                    "1672515782136,\"m\":true,\"M\":true}");
    sbuf_reset(&b);
    encode_agg_trade(&b, "BNBBTC", 5, &t);
    cr_assert_str_eq(sbuf_text(&b), "{\"e\":\"aggTrade\",\"E\":5,\"s\":\"BNBBTC\",\"a\":777,\"p\":"
                                    "\"0.00100000\",\"q\":\"100.00000000\",\"f\":12345,\"l\":"
                                    "12345,\"T\":1672515782136,\"m\":true,\"M\":true}");
    sbuf_reset(&b);
    struct ab_level bid = {D("25.3519"), D("31.21")}, ask = {D("25.3652"), D("40.66")};
    encode_book_ticker(&b, "BNBUSDT", 400900217, &bid, &ask);
    cr_assert_str_eq(sbuf_text(&b), "{\"u\":400900217,\"s\":\"BNBUSDT\",\"b\":\"25.35190000\","
                                    "\"B\":\"31.21000000\",\"a\":\"25.36520000\",\"A\":"
                                    "\"40.66000000\"}");
    sbuf_reset(&b);
    encode_combined(&b, "bnbusdt@bookTicker", "{\"u\":1}", 7);
    cr_assert_str_eq(sbuf_text(&b), "{\"stream\":\"bnbusdt@bookTicker\",\"data\":{\"u\":1}}");
    sbuf_reset(&b);
    encode_error(&b, -1121, "Invalid symbol.");
    cr_assert_str_eq(sbuf_text(&b), "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}");
}

Test(encode, hard_cap_is_a_sticky_error)
{
    struct sbuf small;
    cr_assert_eq(sbuf_init(&small, 0, 4, 10), 0);
    sbuf_puts(&small, "0123456789");
    cr_assert_eq(sbuf_err(&small), 0);
    sbuf_putc(&small, 'x');
    cr_assert_eq(sbuf_err(&small), AB_ENOMEM);
    sbuf_puts(&small, "y");
    cr_assert_eq(small.len, 10);
    sbuf_deinit(&small);
}

/* ---- control ---- */

static struct market *mk(void)
{
    struct market_cfg cfg = {.seed = 1, .start_time = 1704067200000LL, .n_symbols = 2};
    cfg.symbols[0] = "BTCUSDT";
    cfg.symbols[1] = "ETHUSDT";
    struct market *m = NULL;
    cr_assert_eq(market_new(&cfg, &m), 0);
    return m;
}

static const char *ask(struct streams *st, struct control_conn *c, const char *msg)
{
    sbuf_reset(&b);
    cr_assert_eq(control_handle(st, c, 1024, msg, strlen(msg), &b), 0);
    return sbuf_text(&b);
}

TestSuite(control, .init = setup, .fini = teardown);

Test(control, urls_and_live_messages)
{
    struct market *m = mk();
    struct streams *st = NULL;
    cr_assert_eq(streams_new(m, &st), 0);
    struct control_conn c;
    const char *why;
    cr_assert_eq(control_open(st, &c, 1024, "/stream", "btcusdt@depth/ethusdt@kline_1M", &why), 0);
    cr_assert(c.combined);
    cr_assert_eq(c.n_subs, 2);
    uint32_t id;
    cr_assert_eq(streams_lookup(st, "btcusdt@depth", 13, &id), 0);
    cr_assert(streams_wanted(st, id));
    cr_assert_str_eq(ask(st, &c, "{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":3}"),
                     "{\"result\":[\"btcusdt@depth\",\"ethusdt@kline_1M\"],\"id\":3}");
    cr_assert_str_eq(
        ask(st, &c, "{\"method\":\"SUBSCRIBE\",\"params\":[\"btcusdt@aggTrade\"],\"id\":1}"),
        "{\"result\":null,\"id\":1}");
    cr_assert_eq(c.n_subs, 3);
    cr_assert_str_eq(
        ask(st, &c, "{\"method\":\"UNSUBSCRIBE\",\"params\":[\"btcusdt@depth\"],\"id\":\"x1\"}"),
        "{\"result\":null,\"id\":\"x1\"}");
    cr_assert_not(streams_wanted(st, id));
    cr_assert_str_eq(
        ask(st, &c, "{\"method\":\"GET_PROPERTY\",\"params\":[\"combined\"],\"id\":2}"),
        "{\"result\":true,\"id\":2}");
    cr_assert_str_eq(
        ask(st, &c, "{\"method\":\"SET_PROPERTY\",\"params\":[\"combined\",false],\"id\":null}"),
        "{\"result\":null,\"id\":null}");
    cr_assert_not(c.combined);
    cr_assert(strncmp(ask(st, &c, "nope"), "{\"code\":3,\"msg\":\"Invalid JSON", 29) == 0);
    cr_assert(strncmp(ask(st, &c, "{\"method\":\"X\",\"id\":1}"), "{\"code\":2,", 10) == 0);
    cr_assert(strncmp(ask(st, &c, "{\"id\":1}"), "{\"code\":2,", 10) == 0);
    cr_assert(strncmp(ask(st, &c, "{\"method\":\"LIST_SUBSCRIPTIONS\",\"id\":true}"),
                      "{\"code\":2,", 10) == 0);
    cr_assert(
        strncmp(ask(st, &c, "{\"method\":\"SUBSCRIBE\",\"params\":[\"btcusdt@foo\"],\"id\":1}"),
                "{\"code\":2,", 10) == 0);
    cr_assert(strncmp(ask(st, &c, "{\"method\":\"SET_PROPERTY\",\"params\":[\"x\",true],\"id\":1}"),
                      "{\"code\":0,", 10) == 0);
    cr_assert(
        strncmp(ask(st, &c, "{\"method\":\"SET_PROPERTY\",\"params\":[\"combined\",1],\"id\":1}"),
                "{\"code\":1,", 10) == 0);
    control_release(st, &c);
    cr_assert_eq(c.n_subs, 0);
    cr_assert_neq(control_open(st, &c, 1024, "/other", NULL, &why), 0);
    cr_assert_neq(control_open(st, &c, 1024, "/ws/btcusdt@nope", NULL, &why), 0);
    cr_assert_eq(control_open(st, &c, 1024, "/ws/btcusdt@trade/ethusdt@bookTicker", NULL, &why), 0);
    cr_assert_not(c.combined);
    cr_assert_eq(c.n_subs, 2);
    control_release(st, &c);
    streams_free(st);
    market_free(m);
}

Test(control, stream_limit_refuses_the_whole_subscribe)
{
    struct market *m = mk();
    struct streams *st = NULL;
    cr_assert_eq(streams_new(m, &st), 0);
    struct control_conn c;
    const char *why;
    cr_assert_eq(control_open(st, &c, 3, "/ws/btcusdt@trade/btcusdt@depth", NULL, &why), 0);
    sbuf_reset(&b);
    const char *two = "{\"method\":\"SUBSCRIBE\",\"params\":[\"ethusdt@trade\",\"ethusdt@depth\"],"
                      "\"id\":9}";
    cr_assert_eq(control_handle(st, &c, 3, two, strlen(two), &b), 0);
    cr_assert(strncmp(sbuf_text(&b), "{\"code\":2,", 10) == 0);
    cr_assert(strstr(sbuf_text(&b), "\"id\":9}"));
    cr_assert_eq(c.n_subs, 2);
    cr_assert_neq(control_open(st, &c, 1, "/ws/btcusdt@trade/btcusdt@depth", NULL, &why), 0);
    streams_free(st);
    market_free(m);
}

Test(control, open_registry_interns_names)
{
    struct streams *st = NULL;
    cr_assert_eq(streams_new(NULL, &st), 0);
    uint32_t a, b2, c;
    cr_assert_eq(streams_lookup(st, "nknusdt@depth@100ms", 19, &a), 0);
    cr_assert_eq(streams_lookup(st, "lrcbtc@bookTicker", 17, &b2), 0);
    cr_assert_eq(streams_lookup(st, "nknusdt@depth@100ms", 19, &c), 0);
    cr_assert_eq(a, c);
    cr_assert_neq(a, b2);
    cr_assert_str_eq(streams_name(st, b2), "lrcbtc@bookTicker");
    cr_assert_eq(streams_lookup(st, "NKN@x", 5, &c), AB_EINVAL);
    cr_assert_eq(streams_lookup(st, "nknusdt", 7, &c), AB_EINVAL);
    streams_free(st);
}

/* ---- rest ---- */

static struct market *rest_m;

static size_t fb_n(void *ud)
{
    return market_n_symbols(ud);
}

static const struct market_symbol *fb_sym(void *ud, size_t i)
{
    return market_symbol(ud, i);
}

static int64_t fb_time(void *ud)
{
    return 1704067200123;
}

static size_t last_limit;

static int fb_depth(void *ud, size_t sym, size_t limit, struct sbuf *body)
{
    last_limit = limit;
    sbuf_puts(body, "{}");
    return 0;
}

static struct {
    bool hs, he;
    int64_t s, e;
    size_t limit;
    enum ab_interval iv;
} kq;

static int fb_klines(void *ud, size_t sym, enum ab_interval iv, bool hs, int64_t s, bool he,
                     int64_t e, size_t limit, struct sbuf *body)
{
    kq.hs = hs;
    kq.he = he;
    kq.s = s;
    kq.e = e;
    kq.limit = limit;
    kq.iv = iv;
    sbuf_puts(body, "[]");
    return 0;
}

static int get(const char *path, const struct rest_param *params, size_t n,
               struct rest_reply *reply, struct rest_weight *w)
{
    struct rest_backend be = {rest_m, fb_n, fb_sym, fb_time, fb_depth, fb_klines};
    struct rest_request req = {.path = path, .n_params = n};
    if (n)
        memcpy(req.params, params, n * sizeof(*params));
    rest_reply_deinit(reply);
    cr_assert_eq(rest_reply_init(reply, 16), 0);
    return rest_handle(&be, w, &req, 60000 * 5 + 10, reply);
}

Test(rest, routes_validation_and_weights)
{
    rest_m = mk();
    struct rest_reply r = {0};
    struct rest_weight w = {0};
    cr_assert_eq(get("/api/v3/ping", NULL, 0, &r, &w), 0);
    cr_assert_str_eq(sbuf_text(&r.body), "{}");
    cr_assert_eq(r.used_weight, 1);
    cr_assert_eq(get("/api/v3/time", NULL, 0, &r, &w), 0);
    cr_assert_str_eq(sbuf_text(&r.body), "{\"serverTime\":1704067200123}");
    struct rest_param p1[] = {{"symbol", "BTCUSDT"}, {"limit", "7000"}};
    cr_assert_eq(get("/api/v3/depth", p1, 2, &r, &w), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(last_limit, 5000);
    cr_assert_eq(r.used_weight, 2 + 250);
    struct rest_param p2[] = {{"symbol", "BTCUSDT"}};
    cr_assert_eq(get("/api/v3/depth", p2, 1, &r, &w), 0);
    cr_assert_eq(last_limit, 100);
    cr_assert_eq(r.used_weight, 2 + 250 + 5);
    struct rest_param p3[] = {{"symbol", "BTCUSDT"}, {"interval", "1M"}, {"startTime", "5"}};
    cr_assert_eq(get("/api/v3/klines", p3, 3, &r, &w), 0);
    cr_assert(kq.hs && !kq.he && kq.s == 5 && kq.limit == 500 && kq.iv == AB_I_1MO);
    struct rest_param p4[] = {{"symbol", "ETHUSDT"}, {"interval", "1s"}, {"limit", "5000"}};
    cr_assert_eq(get("/api/v3/klines", p4, 3, &r, &w), 0);
    cr_assert_eq(kq.limit, 1000);
    struct {
        const char *path;
        struct rest_param p[3];
        size_t n;
        int code;
    } bad[] = {
        {"/api/v3/depth", {{"symbol", "NOPE"}}, 1, -1121},
        {"/api/v3/depth", {{"symbol", "btcusdt"}}, 1, -1100},
        {"/api/v3/depth", {{"symbol", ""}}, 1, -1102},
        {"/api/v3/depth", {{"limit", "5"}}, 1, -1102},
        {"/api/v3/depth", {{"symbol", "BTCUSDT"}, {"limit", "-5"}}, 2, -1100},
        {"/api/v3/klines", {{"symbol", "BTCUSDT"}, {"interval", "2d"}}, 2, -1120},
        {"/api/v3/klines", {{"symbol", "BTCUSDT"}}, 1, -1102},
        {"/api/v3/klines",
         {{"symbol", "BTCUSDT"}, {"interval", "1m"}, {"endTime", "1e5"}},
         3,
         -1100},
        {"/api/v3/klines", {{"symbol", "BTCUSDT"}, {"symbol", "BTCUSDT"}}, 2, -1101},
        {"/api/v3/exchangeInfo", {{"symbol", "NOPE"}}, 1, -1121},
        {"/api/v3/exchangeInfo", {{"symbols", "[\"BTCUSDT\",\"NOPE\"]"}}, 1, -1121},
        {"/api/v3/exchangeInfo", {{"symbols", "BTCUSDT"}}, 1, -1100},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(get(bad[i].path, bad[i].p, bad[i].n, &r, &w), 0);
        cr_assert_eq(r.status, 400, "case %zu", i);
        char want[32];
        snprintf(want, sizeof(want), "{\"code\":%d,", bad[i].code);
        cr_assert(strncmp(sbuf_text(&r.body), want, strlen(want)) == 0, "case %zu: %s", i,
                  sbuf_text(&r.body));
    }
    struct rest_param p5[] = {{"symbols", "[\"ETHUSDT\"]"}};
    cr_assert_eq(get("/api/v3/exchangeInfo", p5, 1, &r, &w), 0);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(sbuf_text(&r.body), "\"symbol\":\"ETHUSDT\""));
    cr_assert_null(strstr(sbuf_text(&r.body), "BTCUSDT"));
    cr_assert(strstr(sbuf_text(&r.body), "\"tickSize\":\"0.01000000\""));
    cr_assert(strstr(sbuf_text(&r.body), "\"stepSize\":\"0.00010000\""));
    cr_assert_eq(get("/api/v3/none", NULL, 0, &r, &w), AB_ENOTFOUND);
    cr_assert_eq(rest_not_found(&w, 60000 * 5 + 10, &r), 0);
    cr_assert_eq(r.status, 404);
    /* A new minute starts a new weight window. */
    struct rest_reply r2;
    cr_assert_eq(rest_reply_init(&r2, 0), 0);
    cr_assert_eq(rest_fault_reply(429, 1, 0, &w, 60000 * 6, &r2), 0);
    cr_assert_eq(r2.status, 429);
    cr_assert_eq(r2.retry_after, 1);
    cr_assert_eq(r2.used_weight, 1);
    cr_assert(strncmp(sbuf_text(&r2.body), "{\"code\":-1003,", 14) == 0);
    rest_reply_deinit(&r2);
    rest_reply_deinit(&r);
    market_free(rest_m);
}

/* ---- faults ---- */

Test(faults, every_nth_and_percentages)
{
    struct faults *f = calloc(1, sizeof(*f));
    struct faults_cfg cfg = {.gap_every = 3,
                             .out_of_range_every = 2,
                             .malformed_every = 4,
                             .rest_429_pct = 30,
                             .rest_418_pct = 10};
    faults_init(f, &cfg, 42);
    int skipped = 0;
    for (int i = 1; i <= 30; i++) {
        bool s = faults_skip_depth(f, 5);
        cr_assert_eq(s, i % 3 == 0);
        skipped += s;
        cr_assert_not(faults_skip_depth(f, 6) && i % 3 != 0); /* separate counters */
    }
    cr_assert_eq(skipped, 10);
    int hl = 0, neg = 0;
    for (int i = 1; i <= 20; i++) {
        enum kline_fault k = faults_kline(f, 7);
        cr_assert_eq(k != KLINE_OK, i % 2 == 0);
        hl += k == KLINE_HIGH_BELOW_LOW;
        neg += k == KLINE_NEGATIVE_VOLUME;
    }
    cr_assert_eq(hl, 5);
    cr_assert_eq(neg, 5);
    cr_assert(faults_malformed(f, 8));
    cr_assert_not(faults_malformed(f, 9));
    int n429 = 0, n418 = 0;
    for (int i = 0; i < 10000; i++) {
        int s = faults_rest_status(f);
        n429 += s == 429;
        n418 += s == 418;
    }
    cr_assert(n429 > 2700 && n429 < 3300, "429: %d", n429);
    cr_assert(n418 > 800 && n418 < 1200, "418: %d", n418);
    struct faults *g = calloc(1, sizeof(*g));
    struct faults_cfg off = {0};
    faults_init(g, &off, 42);
    cr_assert_not(faults_skip_depth(g, 1));
    cr_assert_eq(faults_kline(g, 1), KLINE_OK);
    cr_assert_eq(faults_rest_status(g), 0);
    cr_assert_not(faults_malformed(g, 4));
    free(f);
    free(g);
}

/* ---- opts ---- */

Test(opts, replay_repeats_and_everything_else_goes_through_config)
{
    static struct sim_opts o;
    char why[AB_CONFIG_WHY_MAX];
    enum ab_config_action act;
    char *argv[] = {"sim",          "--replay",    "a.0", "--speed=0",
                    "--replay=b.0", "--events",    "5",   "--fault-no-pong",
                    "--listen",     "127.0.0.1:0", NULL};
    cr_assert_eq(sim_opts_parse(&o, 10, argv, NULL, &act, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(act, AB_CONFIG_RUN);
    cr_assert_eq(o.n_replay, 2);
    cr_assert_str_eq(o.replay[0], "a.0");
    cr_assert_str_eq(o.replay[1], "b.0");
    cr_assert_eq(o.events, 5);
    cr_assert(o.fault_no_pong);
    cr_assert_eq(o.listen.port, 0);
    cr_assert_eq(o.ping_interval_ms, 20000);
    cr_assert_eq(o.pong_timeout_ms, 60000);
    cr_assert_eq(o.start_time, -1);
    cr_assert_eq(o.symbols.n, 2);
    char *bad_speed[] = {"sim", "--speed", "0", NULL};
    cr_assert_neq(sim_opts_parse(&o, 3, bad_speed, NULL, &act, why, sizeof(why)), 0);
    char *env[] = {"ABIDANCE_SIM_REPLAY=x.0,y.0", "ABIDANCE_SIM_SPEED=2.5", NULL};
    char *none[] = {"sim", NULL};
    cr_assert_eq(sim_opts_parse(&o, 1, none, env, &act, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(o.n_replay, 2);
    cr_assert_str_eq(o.replay[1], "y.0");
    cr_assert(o.speed > 2.49 && o.speed < 2.51);
    char *tls[] = {"sim", "--tls-cert", "c.pem", NULL};
    cr_assert_neq(sim_opts_parse(&o, 3, tls, NULL, &act, why, sizeof(why)), 0);
    char *dangling[] = {"sim", "--replay", NULL};
    cr_assert_neq(sim_opts_parse(&o, 2, dangling, NULL, &act, why, sizeof(why)), 0);
}

/* Unit tests of the stream plan and the URL parser. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "config.h"
#include "plan.h"

static void syms(struct ab_config_symbols *s, const char *text)
{
    cr_assert_eq(ab_config_parse_symbols(text, s), 0);
}

static void ivs(struct ab_config_intervals *v, const char *text)
{
    cr_assert_eq(ab_config_parse_intervals(text, v), 0);
}

Test(plan, streams_per_symbol)
{
    struct ab_config_symbols s;
    struct ab_config_intervals v;
    syms(&s, "BTCUSDT,ETHUSDT");
    ivs(&v, "1m,1h");
    struct plan p;
    cr_assert_eq(plan_build(&s, &v, false, 1024, &p), 0);
    cr_assert_eq(p.n_streams, 6);
    cr_assert_eq(p.n_conns, 1);
    cr_assert_str_eq(p.streams[0], "btcusdt@kline_1m");
    cr_assert_str_eq(p.streams[1], "btcusdt@kline_1h");
    cr_assert_str_eq(p.streams[2], "btcusdt@depth@100ms");
    cr_assert_str_eq(p.streams[5], "ethusdt@depth@100ms");
    cr_assert_eq(p.stream_symbol[4], 1);
    char path[PLAN_PATH_MAX];
    size_t n = 0;
    cr_assert_eq(plan_url_path(&p, 0, "", 1024, path, sizeof(path), &n), 0);
    cr_assert_eq(n, 6);
    cr_assert_str_eq(path, "/stream?streams=btcusdt@kline_1m/btcusdt@kline_1h/"
                           "btcusdt@depth@100ms/ethusdt@kline_1m/ethusdt@kline_1h/"
                           "ethusdt@depth@100ms");
    plan_deinit(&p);
    cr_assert_eq(plan_build(&s, &v, true, 1024, &p), 0);
    cr_assert_str_eq(p.streams[2], "btcusdt@depth");
    plan_deinit(&p);
}

Test(plan, split_at_stream_limit)
{
    struct ab_config_symbols s;
    struct ab_config_intervals v;
    syms(&s, "AAAUSDT,BBBUSDT,CCCUSDT,DDDUSDT,EEEUSDT");
    ivs(&v, "1m");
    struct plan p;
    /* 2 streams per symbol, 5 per connection -> 2 symbols per connection. */
    cr_assert_eq(plan_build(&s, &v, false, 5, &p), 0);
    cr_assert_eq(p.n_conns, 3);
    cr_assert_eq(p.conns[0].n_symbols, 2);
    cr_assert_eq(p.conns[2].first_symbol, 4);
    cr_assert_eq(p.conns[2].n_symbols, 1);
    cr_assert_eq(p.conns[2].n_streams, 2);
    for (size_t c = 0; c < p.n_conns; c++)
        cr_assert_leq(p.conns[c].n_streams, 5);
    plan_deinit(&p);
    /* A limit below one symbol's streams is raised to it. */
    cr_assert_eq(plan_build(&s, &v, false, 1, &p), 0);
    cr_assert_eq(p.n_conns, 5);
    plan_deinit(&p);
    /* Binance's 1024: 64 symbols x 16 intervals + depth = 1088 streams -> 2 connections. */
    struct ab_config_symbols many = {0};
    for (int i = 0; i < 64; i++)
        snprintf(many.v[i], AB_SYMBOL_MAX, "S%02dUSDT", i);
    many.n = 64;
    ivs(&v, "1s,1m,3m,5m,15m,30m,1h,2h,4h,6h,8h,12h,1d,3d,1w,1M");
    cr_assert_eq(plan_build(&many, &v, false, 1024, &p), 0);
    cr_assert_eq(p.n_conns, 2);
    cr_assert_leq(p.conns[0].n_streams, 1024);
    cr_assert_eq(p.conns[0].n_streams + p.conns[1].n_streams, 64 * 17);
    plan_deinit(&p);
}

Test(plan, url_limit_and_subscribe)
{
    struct ab_config_symbols s;
    struct ab_config_intervals v;
    syms(&s, "BTCUSDT,ETHUSDT");
    ivs(&v, "1m");
    struct plan p;
    cr_assert_eq(plan_build(&s, &v, false, 1024, &p), 0);
    char path[PLAN_PATH_MAX];
    size_t n = 0;
    cr_assert_eq(plan_url_path(&p, 0, "/pfx", 1, path, sizeof(path), &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(path, "/pfx/stream?streams=btcusdt@kline_1m");
    char msg[512];
    size_t taken = 0;
    int len = plan_subscribe_msg(&p, 0, 1, 10, 7, msg, sizeof(msg), &taken);
    cr_assert_gt(len, 0);
    cr_assert_eq(taken, 3);
    cr_assert_str_eq(msg, "{\"method\":\"SUBSCRIBE\",\"params\":[\"btcusdt@depth@100ms\","
                          "\"ethusdt@kline_1m\",\"ethusdt@depth@100ms\"],\"id\":7}");
    cr_assert_eq((size_t)len, strlen(msg));
    cr_assert_lt(plan_subscribe_msg(&p, 0, 4, 10, 8, msg, sizeof(msg), &taken), 0);
    cr_assert_eq(plan_subscribe_msg(&p, 0, 0, 10, 8, msg, 20, &taken), AB_ERANGE);
    cr_assert_eq(plan_url_path(&p, 0, "", 10, path, 10, &n), AB_ERANGE);
    cr_assert_eq(plan_url_path(&p, 3, "", 10, path, sizeof(path), &n), AB_EINVAL);
    plan_deinit(&p);
}

Test(plan, url_parse)
{
    struct ingest_url u;
    cr_assert_eq(ingest_url_parse("wss://stream.binance.com:9443", &u), 0);
    cr_assert(u.tls && u.websocket);
    cr_assert_str_eq(u.host, "stream.binance.com");
    cr_assert_eq(u.port, 9443);
    cr_assert_str_eq(u.prefix, "");
    cr_assert_eq(ingest_url_parse("https://api.binance.com", &u), 0);
    cr_assert(u.tls && !u.websocket);
    cr_assert_eq(u.port, 443);
    cr_assert_eq(ingest_url_parse("ws://127.0.0.1:8765/", &u), 0);
    cr_assert(!u.tls);
    cr_assert_eq(u.port, 8765);
    cr_assert_eq(ingest_url_parse("http://[::1]:80/x/y/", &u), 0);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_str_eq(u.prefix, "/x/y");
    cr_assert_eq(ingest_url_parse("ftp://x", &u), AB_EINVAL);
    cr_assert_eq(ingest_url_parse("ws://", &u), AB_EINVAL);
    cr_assert_eq(ingest_url_parse("ws://host:0", &u), AB_ERANGE);
    cr_assert_eq(ingest_url_parse("ws://host:99999", &u), AB_ERANGE);
    cr_assert_eq(ingest_url_parse("ws://host:12x", &u), AB_EINVAL);
    cr_assert_eq(ingest_url_parse("ws://ho st", &u), AB_EINVAL);
    cr_assert_eq(ingest_url_parse("http://h/p?q=1", &u), AB_EINVAL);
    cr_assert_eq(ingest_url_parse(NULL, &u), AB_EINVAL);
}

Test(plan, config_defaults_and_env)
{
    struct ingest_config cfg;
    enum ab_config_action action;
    char why[AB_CONFIG_WHY_MAX];
    char *argv[] = {"abidance-ingest", NULL};
    cr_assert_eq(ingest_config_parse(1, argv, NULL, &cfg, &action, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(action, AB_CONFIG_RUN);
    cr_assert_eq(cfg.symbols.n, 2);
    cr_assert_str_eq(cfg.ws.host, "stream.binance.com");
    cr_assert_eq(cfg.ws.port, 9443);
    cr_assert_str_eq(cfg.rest.host, "api.binance.com");
    cr_assert_eq(cfg.max_age_ms, (23 * 60 + 30) * 60000LL);
    cr_assert_eq(cfg.depth_limit, 1000);
    cr_assert_eq(cfg.health.port, 8082);
    cr_assert_eq(cfg.depth_speed, INGEST_DEPTH_100MS);
    /* Flag wins over the environment. */
    char *envp[] = {"ABIDANCE_SYMBOLS=ETHBTC", "ABIDANCE_WS_URL=ws://127.0.0.1:1", NULL};
    char *argv2[] = {"abidance-ingest", "--symbols", "BNBUSDT,XRPUSDT,ADAUSDT", NULL};
    cr_assert_eq(ingest_config_parse(3, argv2, envp, &cfg, &action, why, sizeof(why)), 0);
    cr_assert_eq(cfg.symbols.n, 3);
    cr_assert_eq(cfg.ws.port, 1);
    cr_assert(!cfg.ws.tls);
    /* A REST URL where a WebSocket URL belongs is refused, naming the setting. */
    char *argv3[] = {"abidance-ingest", "--ws-url", "http://x", NULL};
    cr_assert_lt(ingest_config_parse(3, argv3, NULL, &cfg, &action, why, sizeof(why)), 0);
    cr_assert(strstr(why, "--ws-url") != NULL, "%s", why);
}

/* 1500 symbols at kline_1m + depth@100ms: 3 connections of <= 1024 streams, each connect path
 * within libwebsockets' 2048-byte request line (PLAN_URL_PATH_MAX), the rest by SUBSCRIBE. */
Test(plan, capacity_1500_symbols_url_budget)
{
    static struct ab_config_symbols s;
    s.n = 1500;
    for (size_t i = 0; i < s.n; i++)
        snprintf(s.v[i], AB_SYMBOL_MAX, "S%04zuUSDT", i);
    struct ab_config_intervals v;
    ivs(&v, "1m");
    struct plan p;
    cr_assert_eq(plan_build(&s, &v, false, 1024, &p), 0);
    cr_assert_eq(p.n_streams, 3000);
    cr_assert_eq(p.n_conns, 3);
    size_t total = 0;
    for (size_t c = 0; c < p.n_conns; c++) {
        cr_assert_leq(p.conns[c].n_streams, 1024);
        total += p.conns[c].n_streams;
        static char path[PLAN_PATH_MAX];
        size_t n = 0;
        cr_assert_eq(plan_url_path(&p, c, "", 200, path, sizeof(path), &n), 0);
        cr_assert_leq(strlen(path), PLAN_URL_PATH_MAX);
        cr_assert_gt(n, 0);
        cr_assert_lt(n, 200, "the byte budget, not url_max, cut the list");
        /* The path names exactly the first n streams, in order. */
        size_t slashes = 0;
        for (const char *q = strchr(path, '=') + 1; *q; q++)
            slashes += *q == '/';
        cr_assert_eq(slashes + 1, n);
        cr_assert_not_null(strstr(path, p.streams[p.conns[c].first_stream + n - 1]));
        cr_assert_null(strstr(path, p.streams[p.conns[c].first_stream + n]));
        /* One more stream would not fit. */
        cr_assert_gt(strlen(path) + 1 + strlen(p.streams[p.conns[c].first_stream + n]),
                     PLAN_URL_PATH_MAX);
        /* The rest goes out in SUBSCRIBE requests. */
        size_t from = n, msgs = 0;
        while (from < p.conns[c].n_streams) {
            static char msg[PLAN_SUBSCRIBE_MAX * PLAN_STREAM_NAME_MAX + 128];
            size_t taken = 0;
            cr_assert_gt(
                plan_subscribe_msg(&p, c, from, PLAN_SUBSCRIBE_MAX, 1, msg, sizeof(msg), &taken),
                0);
            from += taken;
            msgs++;
        }
        cr_assert_eq(from, p.conns[c].n_streams);
        cr_assert_leq(msgs, 5);
    }
    cr_assert_eq(total, 3000);
    /* A small cap still cuts at a stream boundary; too small for one stream is AB_ERANGE. */
    char small[64];
    size_t n = 0;
    cr_assert_eq(plan_url_path(&p, 0, "", 200, small, sizeof(small), &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(small, "/stream?streams=s0000usdt@kline_1m/s0000usdt@depth@100ms");
    cr_assert_eq(plan_url_path(&p, 0, "", 200, small, 30, &n), AB_ERANGE);
    plan_deinit(&p);
}

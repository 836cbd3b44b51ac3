/* Unit tests of the publisher: JSON lines (exact decimals), the stdout
 * sink, fan-out, caps; plus the recorder read back with common/capture.h
 * and the Prometheus rendering. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/capture.h"
#include "common/err.h"
#include "metrics.h"
#include "publish.h"
#include "record.h"

static struct ab_dec dec(const char *s)
{
    struct ab_dec d;
    cr_assert_eq(ab_dec_parse_cstr(s, &d), 0, "%s", s);
    return d;
}

static struct ab_candle sample_candle(void)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "BTCUSDT");
    c.interval = AB_I_1M;
    c.open_time = 1672515780000;
    c.close_time = 1672515839999;
    c.open = dec("0.00100000");
    c.high = dec("0.0025");
    c.low = dec("0.0015");
    c.close = dec("0.002");
    c.volume = dec("92233720368.54775807");
    c.quote_volume = dec("123456789012345678901234.5");
    c.taker_buy_volume = dec("500");
    c.taker_buy_quote_volume = dec("0.5");
    c.num_trades = 100;
    c.first_trade_id = 100;
    c.last_trade_id = 199;
    c.closed = true;
    c.event_time = 1672515782136;
    return c;
}

Test(publish, candle_json_exact)
{
    struct pub_buf b;
    pub_buf_init(&b, 0);
    struct ab_candle c = sample_candle();
    cr_assert_eq(pub_json_candle(&b, &c, PUB_ORIGIN_REST, 42), 0);
    cr_assert_eq(b.p[b.len - 1], '\n');
    json_error_t err;
    json_t *j = json_loadb(b.p, b.len, 0, &err);
    cr_assert_not_null(j, "%s", err.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "candle");
    cr_assert_str_eq(json_string_value(json_object_get(j, "interval")), "1m");
    cr_assert_str_eq(json_string_value(json_object_get(j, "open")), "0.001");
    cr_assert_str_eq(json_string_value(json_object_get(j, "volume")), "92233720368.54775807");
    cr_assert_str_eq(json_string_value(json_object_get(j, "quote_volume")),
                     "123456789012345678901234.5", "beyond int64 stays exact");
    cr_assert_str_eq(json_string_value(json_object_get(j, "origin")), "rest");
    cr_assert(json_is_true(json_object_get(j, "closed")));
    cr_assert_eq(json_integer_value(json_object_get(j, "event_time")), 1672515782136);
    cr_assert_eq(json_integer_value(json_object_get(j, "recv_time")), 42);
    cr_assert_eq(json_integer_value(json_object_get(j, "num_trades")), 100);
    json_decref(j);
    pub_buf_deinit(&b);
}

Test(publish, book_json_and_cap)
{
    struct ab_level bids[2] = {{dec("4.00000000"), dec("431")}, {dec("3.9"), dec("0")}};
    struct ab_level asks[1] = {{dec("4.000002"), dec("12")}};
    struct ab_book_delta d;
    memset(&d, 0, sizeof(d));
    snprintf(d.symbol, sizeof(d.symbol), "BNBBTC");
    d.first_id = 157;
    d.last_id = 160;
    d.event_time = 5;
    d.bids = bids;
    d.n_bids = 2;
    d.asks = asks;
    d.n_asks = 1;
    struct pub_buf b;
    pub_buf_init(&b, 0);
    cr_assert_eq(pub_json_delta(&b, &d, 9), 0);
    cr_assert_str_eq(b.p, "{\"type\":\"book_delta\",\"symbol\":\"BNBBTC\",\"first_update_id\":157,"
                          "\"last_update_id\":160,\"event_time\":5,\"bids\":[[\"4\",\"431\"],"
                          "[\"3.9\",\"0\"]],\"asks\":[[\"4.000002\",\"12\"]],\"recv_time\":9}\n");
    struct ab_book_snapshot s;
    memset(&s, 0, sizeof(s));
    snprintf(s.symbol, sizeof(s.symbol), "BNBBTC");
    s.last_update_id = 160;
    cr_assert_eq(pub_json_snapshot(&b, &s, 1), 0);
    cr_assert_str_eq(b.p, "{\"type\":\"book_snapshot\",\"symbol\":\"BNBBTC\","
                          "\"last_update_id\":160,\"bids\":[],\"asks\":[],\"recv_time\":1}\n");
    pub_buf_deinit(&b);
    /* A line over the cap is refused, not truncated. */
    pub_buf_init(&b, 64);
    cr_assert_eq(pub_json_delta(&b, &d, 9), AB_ENOMEM);
    pub_buf_deinit(&b);
}

Test(publish, status_json)
{
    struct pub_buf b;
    pub_buf_init(&b, 0);
    struct pub_status st = {"ETHUSDT", PUB_BOOK_RESYNCING, PUB_CONN_CONNECTED, 0, 77};
    cr_assert_eq(pub_json_status(&b, &st), 0);
    cr_assert_str_eq(b.p, "{\"type\":\"status\",\"symbol\":\"ETHUSDT\",\"book\":\"resyncing\","
                          "\"connection\":\"connected\",\"last_update_id\":0,\"time\":77}\n");
    pub_buf_deinit(&b);
}

/* A sink that counts calls and can fail. */
static int counted[4];
static int fail_candle(void *ctx, const struct ab_candle *c, enum pub_origin o, int64_t t)
{
    counted[0]++;
    return AB_EIO;
}
static int ok_snap(void *ctx, const struct ab_book_snapshot *s, int64_t t)
{
    counted[1]++;
    return 0;
}
static int ok_delta(void *ctx, const struct ab_book_delta *d, uint64_t prev, int64_t t)
{
    counted[2]++;
    return 0;
}
static int ok_status(void *ctx, const struct pub_status *st)
{
    counted[3]++;
    return 0;
}
static const struct pub_sink_ops counting = {"count",   fail_candle, ok_snap, ok_delta,
                                             ok_status, NULL,        NULL};

Test(publish, fanout_to_stdout_sink_and_counting_sink)
{
    char path[] = "/tmp/ingest-pub-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w+");
    struct publisher p;
    publisher_init(&p);
    void *ctx = NULL;
    cr_assert_eq(pub_stdout_new(f, &ctx), 0);
    cr_assert_eq(publisher_add(&p, &pub_stdout_ops, ctx), 0);
    cr_assert_eq(publisher_add(&p, &counting, NULL), 0);
    struct ab_candle c = sample_candle();
    cr_assert_eq(publisher_candle(&p, &c, PUB_ORIGIN_WS, 1), AB_EIO);
    struct pub_status st = {"BTCUSDT", PUB_BOOK_LIVE, PUB_CONN_CONNECTED, 5, 2};
    cr_assert_eq(publisher_status(&p, &st), 0);
    publisher_flush(&p);
    cr_assert_eq(p.failures, 1);
    cr_assert_eq(counted[0], 1);
    cr_assert_eq(counted[3], 1);
    rewind(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert_not_null(j, "line %d is JSON", n);
        json_decref(j);
        n++;
    }
    cr_assert_eq(n, 2, "the stdout sink still got both lines");
    for (int i = 0; i < PUB_SINKS_MAX - 2; i++)
        cr_assert_eq(publisher_add(&p, &counting, NULL), 0);
    cr_assert_eq(publisher_add(&p, &counting, NULL), AB_ENOMEM, "hard cap on sinks");
    publisher_deinit(&p);
    fclose(f);
    unlink(path);
}

Test(record, capture_format_round_trip)
{
    char path[] = "/tmp/ingest-rec-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    struct recorder *r = NULL;
    cr_assert_eq(recorder_open(path, &r), 0);
    const char *frame = "{\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\"}}";
    recorder_connect(r, "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms",
                     1633998512063356900LL);
    recorder_ws(r, 1633998512100000001LL, frame, strlen(frame));
    const char *body = "{\"lastUpdateId\":1,\n\"bids\":[],\"asks\":[]}";
    recorder_http(r, "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000",
                  1633998512200000000LL, body, strlen(body));
    recorder_ws(NULL, 1, "x", 1); /* recording off: harmless */
    cr_assert_eq(recorder_records(r), 3);
    recorder_free(r);

    struct ab_capture *cap = NULL;
    cr_assert_eq(ab_capture_open(path, 0, &cap), 0);
    struct ab_capture_rec rec;
    const char *why = NULL;
    cr_assert_eq(ab_capture_next(cap, &rec, &why), 1, "%s", why ? why : "");
    cr_assert_eq(rec.kind, AB_CAP_CONNECT);
    cr_assert_eq(rec.recv_ns, 1633998512063356900LL);
    cr_assert_eq(ab_capture_next(cap, &rec, &why), 1);
    cr_assert_eq(rec.kind, AB_CAP_WS);
    cr_assert_eq(rec.recv_ns, 1633998512100000001LL);
    cr_assert_str_eq(rec.payload, frame);
    cr_assert_eq(ab_capture_next(cap, &rec, &why), 1);
    cr_assert_eq(rec.kind, AB_CAP_HTTP);
    cr_assert_str_eq(rec.url, "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000");
    cr_assert_str_eq(rec.payload, "{\"lastUpdateId\":1, \"bids\":[],\"asks\":[]}",
                     "a newline inside a body becomes a space");
    cr_assert_eq(ab_capture_next(cap, &rec, &why), 0);
    ab_capture_free(cap);
    unlink(path);
    cr_assert_eq(recorder_open("/nonexistent-dir/x", &r), AB_EIO);
}

Test(metrics, prometheus_text)
{
    struct metrics m;
    memset(&m, 0, sizeof(m));
    m.messages[MET_MSG_KLINE] = 3;
    m.invalid[met_invalid_from_err(AB_EJSON)] = 2;
    m.invalid[met_invalid_from_err(AB_EVALIDATE)] = 1;
    m.rest_429 = 4;
    m.ws_reconnects = 5;
    m.candles_backfilled = 6;
    m.book_resyncs = 7;
    cr_assert_eq(ab_config_parse_symbols("BTCUSDT", &m.symbols), 0);
    m.book_state[0] = PUB_BOOK_LIVE;
    m.n_conns = 1;
    m.conn_state[0] = PUB_CONN_CONNECTED;
    struct pub_buf b;
    pub_buf_init(&b, 0);
    cr_assert_eq(metrics_render(&m, &b), 0);
    const char *want[] = {
        "abidance_ingest_messages_total{kind=\"kline\"} 3\n",
        "abidance_ingest_invalid_messages_total{reason=\"json\"} 2\n",
        "abidance_ingest_invalid_messages_total{reason=\"inconsistent\"} 1\n",
        "abidance_ingest_rest_429_total 4\n",
        "abidance_ingest_ws_reconnects_total 5\n",
        "abidance_ingest_candles_backfilled_total 6\n",
        "abidance_ingest_book_resyncs_total 7\n",
        "abidance_ingest_book_state{symbol=\"BTCUSDT\",state=\"live\"} 1\n",
        "abidance_ingest_book_state{symbol=\"BTCUSDT\",state=\"syncing\"} 0\n",
        "abidance_ingest_ws_connection_state{conn=\"0\",state=\"connected\"} 1\n",
        "# TYPE abidance_ingest_rest_429_total counter\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_not_null(strstr(b.p, want[i]), "missing %s", want[i]);
    /* Every non-comment line is "name value". */
    for (char *line = b.p, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert_not_null(nl, "every line ends with a newline");
        *nl = '\0';
        if (line[0] == '#')
            continue;
        char *sp = strrchr(line, ' ');
        cr_assert_not_null(sp, "%s", line);
        char *end = NULL;
        strtod(sp + 1, &end);
        cr_assert_eq(*end, '\0', "%s", line);
    }
    pub_buf_deinit(&b);
    struct pub_buf small;
    pub_buf_init(&small, 100);
    cr_assert_eq(metrics_render(&m, &small), AB_ENOMEM);
    pub_buf_deinit(&small);
}

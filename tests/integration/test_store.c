/*
 * Integration tests of services/query/store against a real PostgreSQL.
 *
 * DATABASE_URL points at the CTest fixture cluster (tests/integration/
 * pg-fixture.sh). Tests run in parallel processes against that one database,
 * so each test uses its own symbols and deletes them first (re-runs by hand
 * stay correct). The outage test creates, stops and restarts a private
 * cluster (AB_PG_OUTAGE_DIR) so it never disturbs the others.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/decimal.h"
#include "common/err.h"
#include "common/interval.h"
#include "common/model.h"
#include "pgmigrate.h"
#include "pgsql.h"
#include "store.h"
#include "testlib.h"

/* ---- helpers ---- */

static PGconn *raw_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);

    cr_assert(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

static void raw_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);

    cr_assert(s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    PQclear(r);
}

/* First column of the first row as text into buf ("" for no row). */
static void raw_value(PGconn *c, const char *sql, char *buf, size_t cap)
{
    PGresult *r = PQexec(c, sql);

    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    snprintf(buf, cap, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
}

static long raw_long(PGconn *c, const char *sql)
{
    char buf[64];

    raw_value(c, sql, buf, sizeof buf);
    return strtol(buf, NULL, 10);
}

static struct store *open_store(const char *url, size_t queue_cap, size_t batch_max, bool start)
{
    struct store_config cfg = {.database_url = url, .queue_cap = queue_cap, .batch_max = batch_max};
    struct store *st = NULL;

    cr_assert_eq(store_new(&cfg, &st), 0);
    if (start) {
        cr_assert_eq(store_start(st), 0);
    }
    return st;
}

/* Waits until the writer has connected and migrated. */
static void wait_schema(struct store *st)
{
    struct store_stats s;

    for (int i = 0; i < 300; i++) {
        store_get_stats(st, &s);
        if (s.schema_version > 0) {
            return;
        }
        sleep_ms(50);
    }
    cr_assert_fail("writer never applied the schema: %s", s.last_error);
}

/* Removes every row of symbol (candles and snapshots). */
static void purge(const char *url, const char *symbol)
{
    char sql[256];
    PGconn *c = raw_connect(url);

    snprintf(sql, sizeof sql, "DELETE FROM candlesticks WHERE symbol = '%s'", symbol);
    raw_exec(c, sql);
    snprintf(sql, sizeof sql, "DELETE FROM book_snapshots WHERE symbol = '%s'", symbol);
    raw_exec(c, sql);
    PQfinish(c);
}

/* A started store with the schema in place and symbol's rows removed. */
static struct store *fresh_store(const char *symbol)
{
    struct store *st = open_store(db_url(), 0, 0, true);

    wait_schema(st);
    purge(db_url(), symbol);
    return st;
}

static struct ab_dec D(const char *s) {
    struct ab_dec d;

    cr_assert_eq(ab_dec_parse_cstr(s, &d), 0, "bad decimal %s", s);
    return d;
}

/* A valid candle; OHLC around base. */
static struct ab_candle
make_candle(const char *symbol, enum ab_interval iv, int64_t open_time, const char *base,
            bool closed)
{
    struct ab_candle c;
    struct ab_dec one = D("1");

    memset(&c, 0, sizeof c);
    snprintf(c.symbol, sizeof c.symbol, "%s", symbol);
    c.interval = iv;
    c.open_time = open_time;
    c.close_time = ab_interval_next(iv, open_time) - 1;
    c.open = D(base);
    c.close = D(base);
    cr_assert_eq(ab_dec_add(c.open, one, &c.high), 0);
    cr_assert_eq(ab_dec_sub(c.open, one, &c.low), 0);
    c.volume = D("2.5");
    c.quote_volume = D("250.125");
    c.taker_buy_volume = D("1.25");
    c.taker_buy_quote_volume = D("125.0625");
    c.num_trades = 7;
    c.first_trade_id = -1;
    c.last_trade_id = -1;
    c.closed = closed;
    return c;
}

static void expect_dec_eq(struct ab_dec got, struct ab_dec want, const char *what)
{
    char g[AB_DEC_STR_MAX], w[AB_DEC_STR_MAX];

    ab_dec_format(got, g);
    ab_dec_format(want, w);
    cr_expect_eq(ab_dec_cmp(got, want), 0, "%s: got %s want %s", what, g, w);
    cr_expect_str_eq(g, w, "%s", what);
}

static void expect_candle_eq(const struct ab_candle *got, const struct ab_candle *want)
{
    cr_expect_str_eq(got->symbol, want->symbol);
    cr_expect_eq(got->interval, want->interval);
    cr_expect_eq(got->open_time, want->open_time, "open_time %" PRId64 " vs %" PRId64,
                 got->open_time, want->open_time);
    cr_expect_eq(got->close_time, want->close_time, "close_time %" PRId64 " vs %" PRId64,
                 got->close_time, want->close_time);
    expect_dec_eq(got->open, want->open, "open");
    expect_dec_eq(got->high, want->high, "high");
    expect_dec_eq(got->low, want->low, "low");
    expect_dec_eq(got->close, want->close, "close");
    expect_dec_eq(got->volume, want->volume, "volume");
    expect_dec_eq(got->quote_volume, want->quote_volume, "quote_volume");
    expect_dec_eq(got->taker_buy_volume, want->taker_buy_volume, "taker_buy_volume");
    expect_dec_eq(got->taker_buy_quote_volume, want->taker_buy_quote_volume,
                  "taker_buy_quote_volume");
    cr_expect_eq(got->num_trades, want->num_trades);
    cr_expect_eq(got->closed, want->closed);
}

static size_t read_all(struct store *st, const char *symbol, enum ab_interval iv,
                       struct ab_candle **out)
{
    size_t n = 0;

    cr_assert_eq(store_read_candles(st, symbol, iv, INT64_MIN, INT64_MAX, 0, false, out, &n), 0);
    return n;
}

/* ---- migrations ---- */

Test(store, migrations_applied_recorded_and_idempotent, .timeout = 60)
{
    const char *url = db_url();
    struct store *a, *b;
    struct store_stats s;
    PGconn *c;
    char before[64], after[64];
    int top = pg_migrations[pg_n_migrations - 1].version;

    cr_assert_geq(pg_n_migrations, 2);
    /* Two instances starting together: the advisory lock serialises them. */
    a = open_store(url, 0, 0, true);
    b = open_store(url, 0, 0, true);
    wait_schema(a);
    wait_schema(b);
    store_get_stats(a, &s);
    cr_expect_eq(s.schema_version, top);
    store_get_stats(b, &s);
    cr_expect_eq(s.schema_version, top);
    store_free(b);

    c = raw_connect(url);
    cr_expect_eq(raw_long(c, "SELECT count(*) FROM schema_migrations"), (long)pg_n_migrations);
    for (size_t i = 0; i < pg_n_migrations; i++) {
        char sql[160], name[128];

        snprintf(sql, sizeof sql, "SELECT name FROM schema_migrations WHERE version = %d",
                 pg_migrations[i].version);
        raw_value(c, sql, name, sizeof name);
        cr_expect_str_eq(name, pg_migrations[i].name);
    }
    cr_expect_eq(raw_long(c, "SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                             "('candlesticks', 'book_snapshots')"),
                 2);
    raw_value(c, "SELECT max(applied_at)::text FROM schema_migrations", before, sizeof before);

    /* A restart applies nothing again. */
    store_free(a);
    a = open_store(url, 0, 0, true);
    wait_schema(a);
    store_get_stats(a, &s);
    cr_expect_eq(s.schema_version, top);
    raw_value(c, "SELECT max(applied_at)::text FROM schema_migrations", after, sizeof after);
    cr_expect_str_eq(after, before);
    cr_expect_eq(raw_long(c, "SELECT count(*) FROM schema_migrations"), (long)pg_n_migrations);
    PQfinish(c);
    store_free(a);
}

/* ---- the seed's scenario ---- */

Test(store, seed_save_and_retrieve, .timeout = 60)
{
    struct store *st = fresh_store("SEEDBTCUSDT");
    struct ab_candle c, *got = NULL;
    size_t n = 0;
    char buf[64];
    PGconn *raw;

    memset(&c, 0, sizeof c);
    snprintf(c.symbol, sizeof c.symbol, "SEEDBTCUSDT");
    c.interval = AB_I_1M;
    c.open_time = 1700000040000; /* a minute boundary */
    c.close_time = c.open_time + 59999;
    c.open = D("50000.00");
    c.high = D("50100.00");
    c.low = D("49900.00");
    c.close = D("50050.00");
    c.volume = D("10.5");
    c.num_trades = 100;
    c.taker_buy_volume = D("5.25");
    c.taker_buy_quote_volume = D("262500.00");
    c.quote_volume = D("525525.00");
    c.closed = true;
    cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 1), 0);
    cr_assert_eq(store_flush(st, 10000), 0);

    cr_assert_eq(store_read_candles(st, "SEEDBTCUSDT", AB_I_1M, c.open_time, c.open_time, 10, false,
                                    &got, &n),
                 0);
    cr_assert_eq(n, 1);
    expect_candle_eq(&got[0], &c);
    ab_dec_format_fixed(got[0].open, 2, buf);
    cr_expect_str_eq(buf, "50000.00");
    ab_dec_format(got[0].volume, buf);
    cr_expect_str_eq(buf, "10.5");
    ab_dec_format(got[0].taker_buy_quote_volume, buf);
    cr_expect_str_eq(buf, "262500");
    free(got);

    /* In SQL too: exact numerics and the open time as timestamptz. */
    raw = raw_connect(db_url());
    cr_expect_eq(raw_long(raw, "SELECT count(*) FROM candlesticks WHERE symbol = 'SEEDBTCUSDT'"
                               " AND timeframe = '1m'"
                               " AND \"timestamp\" = '2023-11-14 22:14:00+00'"
                               " AND open = 50000.00 AND high = 50100.00 AND low = 49900.00"
                               " AND close = 50050.00 AND volume = 10.5 AND num_trades = 100"
                               " AND taker_buy_volume = 5.25"
                               " AND taker_buy_quote_volume = 262500.00"
                               " AND close_time = '2023-11-14 22:14:59.999+00'"
                               " AND is_closed AND origin = 'ws'"),
                 1);
    PQfinish(raw);
    store_free(st);
}

/* ---- real klines round trip ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long sz;

    cr_assert(f != NULL, "missing recorded data %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    sz = ftell(f);
    cr_assert_gt(sz, 0);
    rewind(f);
    buf = malloc((size_t)sz + 1);
    cr_assert(buf != NULL);
    cr_assert_eq(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    buf[sz] = '\0';
    fclose(f);
    *len = (size_t)sz;
    return buf;
}

/* Decodes a /api/v3/klines body (arrays of 12) into candles; returns the
 * JSON (kept for the original strings). */
static json_t *load_klines(const char *path, const char *symbol, enum ab_interval iv,
                           struct ab_candle **out, size_t *n)
{
    size_t len;
    char *text = slurp(path, &len);
    json_error_t jerr;
    json_t *arr = json_loadb(text, len, 0, &jerr);
    struct ab_candle *v;

    free(text);
    cr_assert(json_is_array(arr), "%s: %s", path, jerr.text);
    *n = json_array_size(arr);
    cr_assert_gt(*n, 0);
    v = calloc(*n, sizeof *v);
    cr_assert(v != NULL);
    for (size_t i = 0; i < *n; i++) {
        json_t *k = json_array_get(arr, i);
        const char *reason = NULL;
        struct ab_dec *decs[] = {&v[i].open,
                                 &v[i].high,
                                 &v[i].low,
                                 &v[i].close,
                                 &v[i].volume,
                                 NULL,
                                 &v[i].quote_volume,
                                 NULL,
                                 &v[i].taker_buy_volume,
                                 &v[i].taker_buy_quote_volume};

        cr_assert(json_is_array(k) && json_array_size(k) >= 11);
        snprintf(v[i].symbol, sizeof v[i].symbol, "%s", symbol);
        v[i].interval = iv;
        v[i].open_time = json_integer_value(json_array_get(k, 0));
        v[i].close_time = json_integer_value(json_array_get(k, 6));
        v[i].num_trades = json_integer_value(json_array_get(k, 8));
        for (size_t f = 0; f < 10; f++) {
            if (decs[f] != NULL) {
                cr_assert_eq(
                    ab_dec_parse_cstr(json_string_value(json_array_get(k, f + 1)), decs[f]), 0);
            }
        }
        v[i].first_trade_id = -1;
        v[i].last_trade_id = -1;
        v[i].closed = true;
        cr_assert_eq(ab_candle_validate(&v[i], &reason), 0, "row %zu: %s", i, reason);
    }
    *out = v;
    return arr;
}

static void klines_round_trip(const char *file, const char *symbol, enum ab_interval iv,
                              size_t batch_max)
{
    char path[512];
    struct ab_candle *want = NULL, *got = NULL;
    size_t n_want = 0, n_got = 0;
    struct store *st;
    struct store_stats s;
    json_t *arr;

    snprintf(path, sizeof path, "%s/binance/%s", AB_SHARED_DATA, file);
    arr = load_klines(path, symbol, iv, &want, &n_want);
    st = open_store(db_url(), 0, batch_max, true);
    wait_schema(st);
    purge(db_url(), symbol);
    for (size_t i = 0; i < n_want; i++) {
        cr_assert_eq(store_put_candle(st, &want[i], STORE_ORIGIN_REST, i + 1), 0);
    }
    cr_assert_eq(store_flush(st, 20000), 0);
    store_get_stats(st, &s);
    cr_expect_geq(s.rows_written, n_want);
    cr_expect_leq(s.batch_size_max, batch_max != 0 ? batch_max : 5000);

    n_got = read_all(st, symbol, iv, &got);
    cr_assert_eq(n_got, n_want);
    for (size_t i = 0; i < n_want; i++) {
        json_t *k = json_array_get(arr, i);
        char buf[AB_DEC_STR_MAX];

        expect_candle_eq(&got[i], &want[i]);
        /* Byte-exact against the exchange's own text (8 decimals). */
        ab_dec_format_fixed(got[i].open, 8, buf);
        cr_expect_str_eq(buf, json_string_value(json_array_get(k, 1)));
        ab_dec_format_fixed(got[i].quote_volume, 8, buf);
        cr_expect_str_eq(buf, json_string_value(json_array_get(k, 7)));
        ab_dec_format_fixed(got[i].taker_buy_quote_volume, 8, buf);
        cr_expect_str_eq(buf, json_string_value(json_array_get(k, 10)));
    }
    free(got);
    free(want);
    json_decref(arr);
    store_free(st);
}

Test(store, python_binance_30m_klines_round_trip, .timeout = 60)
{
    /* 500 rows in batches of 64: several batches, a partial last one. */
    klines_round_trip("python-binance-c22c7de/klines_30m_2019-04-11_to_2019-04-21.json",
                      "PBBTCUSDT", AB_I_30M, 64);
}

Test(store, nautilus_1m_klines_round_trip, .timeout = 60)
{
    klines_round_trip("nautilus-209a58e/http_spot_market_klines.json", "NTBTCUSDT", AB_I_1M, 0);
}

/* ---- upsert semantics ---- */

Test(store, idempotent_double_write_keeps_newest, .timeout = 60)
{
    struct store *st = fresh_store("IDEMUSDT");
    struct ab_candle c = make_candle("IDEMUSDT", AB_I_1M, 1634943780000, "100.5", false);
    struct ab_candle *got = NULL;
    PGconn *raw;

    cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 0), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 0), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(read_all(st, "IDEMUSDT", AB_I_1M, &got), 1);
    expect_candle_eq(&got[0], &c);
    free(got);

    /* A newer update of the open candle overwrites. */
    c.close = D("101.25");
    c.high = D("102");
    c.volume = D("3.75");
    c.num_trades = 9;
    cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_REST, 0), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(read_all(st, "IDEMUSDT", AB_I_1M, &got), 1);
    expect_candle_eq(&got[0], &c);
    free(got);

    raw = raw_connect(db_url());
    cr_expect_eq(raw_long(raw, "SELECT count(*) FROM candlesticks WHERE symbol = 'IDEMUSDT'"), 1);
    cr_expect_eq(raw_long(raw, "SELECT count(*) FROM candlesticks WHERE symbol = 'IDEMUSDT'"
                               " AND origin = 'rest'"),
                 1);
    PQfinish(raw);
    store_free(st);
}

Test(store, closed_candle_is_final, .timeout = 60)
{
    struct store *st = fresh_store("FINALUSDT");
    int64_t t0 = 1634943780000, t1 = t0 + 60000;
    struct ab_candle closed = make_candle("FINALUSDT", AB_I_1M, t0, "200", true);
    struct ab_candle later = make_candle("FINALUSDT", AB_I_1M, t0, "300", false);
    struct ab_candle fix = make_candle("FINALUSDT", AB_I_1M, t0, "250", true);
    struct ab_candle q_closed = make_candle("FINALUSDT", AB_I_1M, t1, "400", true);
    struct ab_candle q_open = make_candle("FINALUSDT", AB_I_1M, t1, "500", false);
    struct ab_candle *got = NULL;

    /* In the table: an open update after the closed row changes nothing. */
    cr_assert_eq(store_put_candle(st, &closed, STORE_ORIGIN_WS, 0), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(store_put_candle(st, &later, STORE_ORIGIN_WS, 0), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(read_all(st, "FINALUSDT", AB_I_1M, &got), 1);
    expect_candle_eq(&got[0], &closed);
    free(got);

    /* A closed update over a closed row is the newest final word (REST fix). */
    cr_assert_eq(store_put_candle(st, &fix, STORE_ORIGIN_REST, 0), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(read_all(st, "FINALUSDT", AB_I_1M, &got), 1);
    expect_candle_eq(&got[0], &fix);
    free(got);

    /* In the queue: coalescing keeps the closed one too. */
    store_stop(st, 5000);
    cr_assert_eq(store_put_candle(st, &q_closed, STORE_ORIGIN_WS, 0), 0);
    cr_assert_eq(store_put_candle(st, &q_open, STORE_ORIGIN_WS, 0), 0);
    cr_assert_eq(store_start(st), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(read_all(st, "FINALUSDT", AB_I_1M, &got), 2);
    expect_candle_eq(&got[0], &fix);
    expect_candle_eq(&got[1], &q_closed);
    free(got);
    store_free(st);
}

Test(store, invalid_candles_refused, .timeout = 30)
{
    struct store *st = open_store(db_url(), 0, 0, false);
    struct ab_candle c = make_candle("BADUSDT", AB_I_1M, 1634943780000, "10", false);
    struct ab_candle bad;

    bad = c;
    bad.high = D("1"); /* below open */
    cr_expect_eq(store_put_candle(st, &bad, STORE_ORIGIN_WS, 0), AB_EINVAL);
    bad = c;
    bad.open_time += 1; /* not aligned */
    cr_expect_eq(store_put_candle(st, &bad, STORE_ORIGIN_WS, 0), AB_EINVAL);
    bad = c;
    snprintf(bad.symbol, sizeof bad.symbol, "btc-usdt");
    cr_expect_eq(store_put_candle(st, &bad, STORE_ORIGIN_WS, 0), AB_EINVAL);
    bad = c;
    bad.interval = AB_I_COUNT;
    cr_expect_eq(store_put_candle(st, &bad, STORE_ORIGIN_WS, 0), AB_EINVAL);
    bad = make_candle("BADUSDT", AB_I_1S, STORE_MS_MAX + 1000, "10", false);
    cr_expect_eq(store_put_candle(st, &bad, STORE_ORIGIN_WS, 0), AB_ERANGE);
    cr_expect_eq(store_put_candle(st, &c, (enum store_origin)7, 0), AB_EINVAL);
    cr_expect_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 0), 0);
    store_free(st);
}

/* Migration 003 replaced the table's regex symbol CHECK with a cheaper one:
 * the database must still accept and refuse exactly what
 * '^[A-Z0-9]{1,31}$' does (a second line of defence behind symbol_ok). */
Test(store, symbol_check_matches_the_regex, .timeout = 60)
{
    static const char *const symbols[] = {
        "BTCUSDT",
        "1INCH",
        "NULL",
        "A",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 31 */
        "",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 32 */
        "btcusdt",
        "BTC USDT",
        "BTC-USDT",
        "BTC\nX",
        "\xc3\x84"
        "BC",
        "B\xc3\x84",
        "\\x41",
        "\\101",
        "BTC_",
        "A%",
    };
    struct store *st = fresh_store("CHKX");
    PGconn *c = raw_connect(db_url());
    char buf[64];
    long accepted = 0, want_accepted = 0;

    raw_value(c, "SELECT reloptions::text FROM pg_class WHERE relname = 'candlesticks'", buf,
              sizeof buf);
    cr_expect_str_eq(buf, "{fillfactor=90}");
    raw_exec(c, "BEGIN");
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        const char *params[1] = {symbols[i]};
        PGresult *r =
            PQexecParams(c, "SELECT $1::text ~ '^[A-Z0-9]{1,31}$'", 1, NULL, params, NULL, NULL, 0);
        bool want, got;

        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
        want = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        raw_exec(c, "SAVEPOINT s");
        r = PQexecParams(c,
                         "INSERT INTO candlesticks (symbol, timeframe, \"timestamp\", open, high,"
                         " low, close, volume, num_trades, taker_buy_volume,"
                         " taker_buy_quote_volume, close_time, quote_volume)"
                         " VALUES ($1, '1m', 'epoch', 1, 1, 1, 1, 1, 1, 1, 1,"
                         " 'epoch'::timestamptz + interval '1 minute', 1)",
                         1, NULL, params, NULL, NULL, 0);
        got = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!got) {
            cr_expect_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23514", "symbol %zu", i);
        }
        PQclear(r);
        raw_exec(c, got ? "RELEASE SAVEPOINT s" : "ROLLBACK TO SAVEPOINT s");
        cr_expect_eq(got, want, "symbol #%zu \"%s\": stored %d, regex says %d", i, symbols[i], got,
                     want);
        accepted += got;
        want_accepted += want;
    }
    raw_exec(c, "ROLLBACK");
    cr_expect_eq(want_accepted, 5); /* the list above really tests both sides */
    cr_expect_eq(accepted, want_accepted);
    PQfinish(c);
    store_free(st);
}

/* ---- times ---- */

Test(store, epoch_ms_round_trip_is_exact, .timeout = 60)
{
    static const int64_t opens[] = {
        0,
        -1000,
        1000,
        1634943780000 + 59000,
        1700000000000 - 1000,
        STORE_MS_MAX - 1000,
        STORE_MS_MIN + ((-STORE_MS_MIN) % 1000),
        4102444799000, /* 2099-12-31 23:59:59 */
    };
    size_t n_opens = sizeof opens / sizeof opens[0];
    struct store *st = fresh_store("MSUSDT");
    struct ab_candle *got = NULL;
    size_t n;
    PGconn *raw;

    for (size_t i = 0; i < n_opens; i++) {
        struct ab_candle c = make_candle("MSUSDT", AB_I_1S, opens[i], "1", true);

        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 0), 0, "open %" PRId64, opens[i]);
    }
    cr_assert_eq(store_flush(st, 10000), 0);
    n = read_all(st, "MSUSDT", AB_I_1S, &got);
    cr_assert_eq(n, n_opens);
    for (size_t i = 0; i < n; i++) {
        bool found = false;

        for (size_t k = 0; k < n_opens; k++) {
            found |= got[i].open_time == opens[k];
        }
        cr_expect(found, "unexpected open time %" PRId64, got[i].open_time);
        cr_expect_eq(got[i].close_time, got[i].open_time + 999, "close %" PRId64,
                     got[i].close_time);
        if (i > 0) {
            cr_expect_gt(got[i].open_time, got[i - 1].open_time);
        }
    }
    free(got);

    /* The stored timestamptz is the instant itself, to the millisecond. */
    raw = raw_connect(db_url());
    cr_expect_eq(raw_long(raw, "SELECT count(*) FROM candlesticks WHERE symbol = 'MSUSDT'"
                               " AND \"timestamp\" = '2021-10-22 23:03:59+00'"
                               " AND close_time = '2021-10-22 23:03:59.999+00'"),
                 1);
    cr_expect_eq(raw_long(raw, "SELECT count(*) FROM candlesticks WHERE symbol = 'MSUSDT'"
                               " AND \"timestamp\" = '1969-12-31 23:59:59+00'"),
                 1);
    PQfinish(raw);

    /* Single-instant range reads hit exactly. */
    for (size_t i = 0; i < n_opens; i++) {
        cr_assert_eq(
            store_read_candles(st, "MSUSDT", AB_I_1S, opens[i], opens[i], 5, true, &got, &n), 0);
        cr_expect_eq(n, 1, "open %" PRId64, opens[i]);
        if (n == 1) {
            cr_expect_eq(got[0].open_time, opens[i]);
        }
        free(got);
    }
    store_free(st);
}

/* ---- reads ---- */

Test(store, most_recent_and_range_reads_with_limit, .timeout = 60)
{
    const int64_t t0 = 1634943780000; /* minute boundary */
    struct store *st = fresh_store("RANGEUSDT");
    struct ab_candle *got = NULL;
    size_t n = 0;

    for (int i = 0; i < 100; i++) {
        char base[16];
        struct ab_candle c;

        snprintf(base, sizeof base, "%d.5", 1000 + i);
        c = make_candle("RANGEUSDT", AB_I_1M, t0 + (int64_t)i * 60000, base, i < 99);
        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, (uint64_t)i + 1), 0);
    }
    /* Another interval of the same symbol must not leak into 1m reads. */
    {
        struct ab_candle c5 = make_candle("RANGEUSDT", AB_I_5M, t0 - 180000, "7", true);

        cr_assert_eq(store_put_candle(st, &c5, STORE_ORIGIN_WS, 101), 0);
    }
    cr_assert_eq(store_flush(st, 10000), 0);

    /* Newest 10, ascending. */
    cr_assert_eq(
        store_read_candles(st, "RANGEUSDT", AB_I_1M, INT64_MIN, INT64_MAX, 10, true, &got, &n), 0);
    cr_assert_eq(n, 10);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(got[i].open_time, t0 + (int64_t)(90 + i) * 60000);
    }
    cr_expect_eq(got[9].closed, false);
    expect_dec_eq(got[9].open, D("1099.5"), "newest open");
    free(got);

    /* Oldest 10 without most_recent. */
    cr_assert_eq(
        store_read_candles(st, "RANGEUSDT", AB_I_1M, INT64_MIN, INT64_MAX, 10, false, &got, &n), 0);
    cr_assert_eq(n, 10);
    cr_expect_eq(got[0].open_time, t0);
    cr_expect_eq(got[9].open_time, t0 + 9 * 60000);
    free(got);

    /* Inclusive range [20, 29]: limit 5 from each end. */
    cr_assert_eq(store_read_candles(st, "RANGEUSDT", AB_I_1M, t0 + 20 * 60000, t0 + 29 * 60000, 5,
                                    false, &got, &n),
                 0);
    cr_assert_eq(n, 5);
    cr_expect_eq(got[0].open_time, t0 + 20 * 60000);
    cr_expect_eq(got[4].open_time, t0 + 24 * 60000);
    free(got);
    cr_assert_eq(store_read_candles(st, "RANGEUSDT", AB_I_1M, t0 + 20 * 60000, t0 + 29 * 60000, 5,
                                    true, &got, &n),
                 0);
    cr_assert_eq(n, 5);
    cr_expect_eq(got[0].open_time, t0 + 25 * 60000);
    cr_expect_eq(got[4].open_time, t0 + 29 * 60000);
    free(got);

    /* Bounds between candles, whole range, empty results. */
    cr_assert_eq(store_read_candles(st, "RANGEUSDT", AB_I_1M, t0 + 1, t0 + 3 * 60000 - 1, 0, false,
                                    &got, &n),
                 0);
    cr_expect_eq(n, 2);
    free(got);
    cr_assert_eq(
        store_read_candles(st, "RANGEUSDT", AB_I_1M, INT64_MIN, INT64_MAX, 0, false, &got, &n), 0);
    cr_expect_eq(n, 100);
    free(got);
    cr_assert_eq(store_read_candles(st, "RANGEUSDT", AB_I_1M, t0 + 200 * 60000, INT64_MAX, 10, true,
                                    &got, &n),
                 0);
    cr_expect_eq(n, 0);
    cr_expect_null(got);
    cr_assert_eq(store_read_candles(st, "RANGEUSDT", AB_I_1M, t0 + 5, t0, 10, true, &got, &n), 0);
    cr_expect_eq(n, 0);
    cr_assert_eq(
        store_read_candles(st, "RANGEUSDT", AB_I_5M, INT64_MIN, INT64_MAX, 10, true, &got, &n), 0);
    cr_expect_eq(n, 1);
    free(got);
    cr_expect_eq(store_read_candles(st, "bad-symbol", AB_I_1M, 0, 1, 1, true, &got, &n), AB_EINVAL);
    cr_expect_eq(store_read_candles(st, "RANGEUSDT", AB_I_COUNT, 0, 1, 1, true, &got, &n),
                 AB_EINVAL);
    store_free(st);
}

Test(store, list_series, .timeout = 60)
{
    const int64_t t0 = 1634943600000; /* 5m and 1m boundary */
    struct store *st = fresh_store("SERIESAUSDT");
    struct store_series *v = NULL;
    size_t n = 0;
    bool seen_1m = false, seen_5m = false;

    purge(db_url(), "SERIESBUSDT");
    for (int i = 0; i < 3; i++) {
        struct ab_candle c = make_candle("SERIESAUSDT", AB_I_1M, t0 + i * 60000, "5", true);

        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 0), 0);
    }
    {
        struct ab_candle c = make_candle("SERIESAUSDT", AB_I_5M, t0, "5", false);

        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 0), 0);
    }
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(store_list_series(st, &v, &n), 0);
    cr_assert_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].symbol, "SERIESAUSDT") == 0 && v[i].interval == AB_I_1M) {
            seen_1m = true;
            cr_expect_eq(v[i].count, 3);
            cr_expect_eq(v[i].newest_open_time, t0 + 2 * 60000);
        }
        if (strcmp(v[i].symbol, "SERIESAUSDT") == 0 && v[i].interval == AB_I_5M) {
            seen_5m = true;
            cr_expect_eq(v[i].count, 1);
            cr_expect_eq(v[i].newest_open_time, t0);
        }
        cr_expect_neq(strcmp(v[i].symbol, "SERIESBUSDT"), 0);
        if (i > 0) {
            cr_expect_leq(strcmp(v[i - 1].symbol, v[i].symbol), 0, "ordered by symbol");
        }
    }
    cr_expect(seen_1m && seen_5m);
    free(v);
    store_free(st);
}

/* ---- book snapshots ---- */

static struct ab_level L(const char *p, const char *q) {
    struct ab_level l = {D(p), D(q)};

    return l;
}

Test(store, book_snapshot_round_trip_exact, .timeout = 60)
{
    struct store_config cfg = {.database_url = db_url(), .snapshot_keep = 3};
    struct store *st = NULL;
    struct ab_level bids[] = {L("60719.28", "0.00000001"), L("60719.27", "1.5"),
                              L("0.00000001", "123456789012345678.12345678")};
    struct ab_level asks[] = {L("60719.29", "2"), L("99999999999999999999.99999999", "0.1")};
    struct ab_book_snapshot snap = {
        .last_update_id = 15602511, .bids = bids, .asks = asks, .n_bids = 3, .n_asks = 2};
    struct ab_book_snapshot got = {0};
    int64_t taken = 0;
    PGconn *raw;

    cr_assert_eq(store_new(&cfg, &st), 0);
    cr_assert_eq(store_start(st), 0);
    wait_schema(st);
    purge(db_url(), "BOOKUSDT");
    snprintf(snap.symbol, sizeof snap.symbol, "BOOKUSDT");

    cr_expect_eq(store_read_book_snapshot(st, "BOOKUSDT", &got, &taken), AB_ENOTFOUND);
    ab_book_snapshot_deinit(&got);
    cr_assert_eq(store_put_book_snapshot(st, &snap, 1634943780123), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_assert_eq(store_read_book_snapshot(st, "BOOKUSDT", &got, &taken), 0);
    cr_expect_eq(taken, 1634943780123);
    cr_expect_str_eq(got.symbol, "BOOKUSDT");
    cr_expect_eq(got.last_update_id, 15602511);
    cr_assert_eq(got.n_bids, 3);
    cr_assert_eq(got.n_asks, 2);
    for (size_t i = 0; i < 3; i++) {
        expect_dec_eq(got.bids[i].price, bids[i].price, "bid price");
        expect_dec_eq(got.bids[i].qty, bids[i].qty, "bid qty");
    }
    for (size_t i = 0; i < 2; i++) {
        expect_dec_eq(got.asks[i].price, asks[i].price, "ask price");
        expect_dec_eq(got.asks[i].qty, asks[i].qty, "ask qty");
    }
    ab_book_snapshot_deinit(&got);

    /* Newer snapshots (one with an empty side); only snapshot_keep stay. */
    for (int i = 1; i <= 5; i++) {
        snap.last_update_id = 15602511 + (uint64_t)i;
        snap.n_asks = i == 5 ? 0 : 2;
        cr_assert_eq(store_put_book_snapshot(st, &snap, 1634943780123 + i * 1000), 0);
        cr_assert_eq(store_flush(st, 10000), 0);
    }
    cr_assert_eq(store_read_book_snapshot(st, "BOOKUSDT", &got, &taken), 0);
    cr_expect_eq(got.last_update_id, 15602516);
    cr_expect_eq(taken, 1634943785123);
    cr_expect_eq(got.n_bids, 3);
    cr_expect_eq(got.n_asks, 0);
    ab_book_snapshot_deinit(&got);
    raw = raw_connect(db_url());
    cr_expect_eq(raw_long(raw, "SELECT count(*) FROM book_snapshots WHERE symbol = 'BOOKUSDT'"), 3);
    cr_expect_eq(raw_long(raw, "SELECT count(*) FROM book_snapshots WHERE symbol = 'BOOKUSDT'"
                               " AND bids[1][2] = 0.00000001"
                               " AND bids[3][2] = 123456789012345678.12345678"),
                 3);
    PQfinish(raw);

    /* Refusals. */
    snprintf(snap.symbol, sizeof snap.symbol, "bad");
    cr_expect_eq(store_put_book_snapshot(st, &snap, 0), AB_EINVAL);
    snprintf(snap.symbol, sizeof snap.symbol, "BOOKUSDT");
    snap.n_bids = STORE_BOOK_LEVELS_MAX + 1;
    cr_expect_eq(store_put_book_snapshot(st, &snap, 0), AB_ERANGE);
    store_free(st);
}

/* ---- queue cap, commit watermark ---- */

struct commits {
    uint64_t last;
    int calls;
    bool monotonic;
};

static void on_commit(uint64_t token, void *arg)
{
    struct commits *c = arg;

    if (token <= c->last) {
        c->monotonic = false;
    }
    c->last = token;
    c->calls++;
}

Test(store, queue_cap_refuses_new_keys_and_commits_all, .timeout = 60)
{
    const int64_t t0 = 1634943780000;
    struct store *st = open_store(db_url(), 5, 2, false);
    struct commits cm = {0, 0, true};
    struct store_stats s;
    struct ab_candle c, *got = NULL;

    store_free(fresh_store("CAPUSDT")); /* schema in place, old rows gone */
    store_set_commit_cb(st, on_commit, &cm);
    for (int i = 0; i < 5; i++) {
        c = make_candle("CAPUSDT", AB_I_1M, t0 + i * 60000, "3", false);
        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, (uint64_t)i + 1), 0);
    }
    c = make_candle("CAPUSDT", AB_I_1M, t0 + 5 * 60000, "3", false);
    cr_expect_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 6), AB_ENOMEM);
    /* Updating a queued key still works (coalesced in place). */
    c = make_candle("CAPUSDT", AB_I_1M, t0, "4", true);
    cr_expect_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 7), 0);
    store_get_stats(st, &s);
    cr_expect_eq(s.queue_depth, 5);
    cr_expect_eq(s.queue_cap, 5);
    cr_expect_eq(s.rejected_full, 1);
    cr_expect_eq(store_flush(st, 100), AB_ESTATE, "flush without a writer");

    cr_assert_eq(store_start(st), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    store_get_stats(st, &s);
    cr_expect_eq(s.queue_depth, 0);
    cr_expect_eq(s.inflight, 0);
    cr_expect_eq(s.rows_written, 5);
    cr_expect_eq(s.batches, 3, "5 rows in batches of 2");
    cr_expect_eq(s.batch_size_max, 2);
    cr_expect_eq(s.batch_size_sum, 5);
    cr_expect(s.db_up);
    cr_expect_gt(s.last_ok_ms, 0);
    cr_expect_eq(cm.last, 7, "watermark %" PRIu64 " should reach the highest accepted token",
                 cm.last);
    cr_expect(cm.monotonic);
    cr_expect_geq(cm.calls, 1);
    cr_expect_leq(cm.calls, 3);

    cr_assert_eq(read_all(st, "CAPUSDT", AB_I_1M, &got), 5);
    expect_candle_eq(&got[0], &c);
    free(got);
    /* Now there is room again. */
    c = make_candle("CAPUSDT", AB_I_1M, t0 + 5 * 60000, "3", false);
    cr_expect_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 8), 0);
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_expect_eq(cm.last, 8);
    store_free(st);
}

/* ---- plans ---- */

static void expect_no_sort(PGconn *raw, const char *stmt, const char *args)
{
    static const char *const modes[] = {"force_custom_plan", "force_generic_plan"};

    for (size_t m = 0; m < 2; m++) {
        char sql[512];
        PGresult *r;
        size_t off = 0;
        char plan[8192];

        snprintf(sql, sizeof sql, "SET plan_cache_mode = %s", modes[m]);
        raw_exec(raw, sql);
        snprintf(sql, sizeof sql, "EXPLAIN EXECUTE %s(%s)", stmt, args);
        r = PQexec(raw, sql);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
        plan[0] = '\0';
        for (int i = 0; i < PQntuples(r); i++) {
            int w = snprintf(plan + off, sizeof plan - off, "%s\n", PQgetvalue(r, i, 0));

            if (w > 0 && (size_t)w < sizeof plan - off) {
                off += (size_t)w;
            }
        }
        PQclear(r);
        cr_expect_null(strstr(plan, "Sort"), "%s (%s) sorts:\n%s", stmt, modes[m], plan);
        cr_expect_not_null(strstr(plan, "Index"), "%s (%s) not on the index:\n%s", stmt, modes[m],
                           plan);
    }
}

Test(store, candle_reads_use_the_index_without_sort, .timeout = 60)
{
    struct store *st = fresh_store("PLANUSDT");
    PGconn *raw;

    /* Enough rows of several series that the planner has real statistics. */
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < 1000; i++) {
            struct ab_candle c =
                make_candle(s == 0   ? "PLANUSDT"
                            : s == 1 ? "PLANAUSDT"
                            : s == 2 ? "PLANBUSDT"
                                     : "PLANCUSDT",
                            AB_I_1M, 1634943780000 + (int64_t)i * 60000, "9", true);

            cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 0), 0);
        }
    }
    cr_assert_eq(store_flush(st, 20000), 0);
    raw = raw_connect(db_url());
    raw_exec(raw, "ANALYZE candlesticks");
    raw_exec(raw, PG_READER_SESSION); /* as the store's reader connections */
    raw_exec(raw, "PREPARE rn AS " PG_READ_NEWEST);
    raw_exec(raw, "PREPARE ro AS " PG_READ_OLDEST);
    raw_exec(raw, "PREPARE rs AS " PG_READ_SNAPSHOT);
    expect_no_sort(raw, "rn", "'PLANUSDT', '1m', -9000000000000, 9000000000000, 500");
    expect_no_sort(raw, "ro", "'PLANUSDT', '1m', 1634943780000, 1634950000000, 500");
    expect_no_sort(raw, "rn", "'PLANUSDT', '1m', 1634943780000, 1634950000000, 10");
    expect_no_sort(raw, "rs", "'PLANUSDT'");
    PQfinish(raw);
    store_free(st);
}

/* ---- PostgreSQL going away under a running store ---- */

static int fixture(const char *verb, bool with_port)
{
    char cmd[1024];

    snprintf(cmd, sizeof cmd, "%s %s %s %s >/dev/null", AB_PG_FIXTURE, verb, AB_PG_OUTAGE_DIR,
             with_port ? AB_PG_OUTAGE_PORT : "");
    return system(cmd);
}

static void outage_cleanup(void)
{
    fixture("stop", false);
}

Test(store, database_stop_and_restart_under_running_store, .timeout = 180, .fini = outage_cleanup)
{
    const int64_t t0 = 1634943780000;
    char url[512];
    struct store *st;
    struct store_stats s;
    struct commits cm = {0, 0, true};
    struct ab_candle *got = NULL;
    size_t n = 0;
    const char *why = NULL;
    bool down = false;

    cr_assert_eq(fixture("start", true), 0, "cannot start the private cluster");
    snprintf(url, sizeof url, "postgresql:///abidance_test?host=%s&port=%s&user=postgres",
             AB_PG_OUTAGE_DIR, AB_PG_OUTAGE_PORT);
    st = open_store(url, 1000, 50, false);
    store_set_commit_cb(st, on_commit, &cm);
    cr_assert_eq(store_start(st), 0);
    wait_schema(st);
    for (int i = 0; i < 100; i++) {
        struct ab_candle c = make_candle("OUTUSDT", AB_I_1M, t0 + (int64_t)i * 60000, "1", true);

        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, (uint64_t)i + 1), 0);
    }
    cr_assert_eq(store_flush(st, 10000), 0);
    cr_expect_eq(cm.last, 100);
    cr_assert_eq(store_ping(st, 2000, &why), 0);

    /* The database goes away; writes keep coming. */
    cr_assert_eq(fixture("pause", false), 0);
    for (int i = 100; i < 300; i++) {
        struct ab_candle c = make_candle("OUTUSDT", AB_I_1M, t0 + (int64_t)i * 60000, "2", i < 299);

        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, (uint64_t)i + 1), 0);
    }
    for (int i = 0; i < 200 && !down; i++) {
        store_get_stats(st, &s);
        down = !s.db_up;
        if (!down) {
            sleep_ms(50);
        }
    }
    cr_assert(down, "stats never reported the database down");
    cr_expect_eq(s.queue_depth + s.inflight, 200, "queue keeps every pending row");
    cr_expect_neq(s.last_error[0], '\0');
    cr_expect_gt(s.db_errors, 0);
    cr_expect_eq(cm.last, 100, "nothing acknowledged while down");
    cr_expect_eq(store_flush(st, 300), AB_EDB_RETRY);
    cr_expect_eq(store_ping(st, 1000, &why), AB_EDB_RETRY);
    cr_expect_not_null(why);
    cr_expect_eq(
        store_read_candles(st, "OUTUSDT", AB_I_1M, INT64_MIN, INT64_MAX, 10, true, &got, &n),
        AB_EDB_RETRY);
    /* Updates while down coalesce into the queued rows. */
    {
        struct ab_candle c = make_candle("OUTUSDT", AB_I_1M, t0 + 299 * 60000, "3", true);

        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 301), 0);
    }
    sleep_ms(1500); /* a few reconnect attempts with backoff */

    /* It comes back: everything arrives. */
    cr_assert_eq(fixture("resume", false), 0);
    cr_assert_eq(store_flush(st, 30000), 0, "writer did not catch up");
    store_get_stats(st, &s);
    cr_expect(s.db_up);
    cr_expect_eq(s.queue_depth, 0);
    cr_expect_eq(cm.last, 301);
    cr_expect(cm.monotonic);
    cr_assert_eq(store_ping(st, 2000, &why), 0);
    cr_assert_eq(
        store_read_candles(st, "OUTUSDT", AB_I_1M, INT64_MIN, INT64_MAX, 0, false, &got, &n), 0);
    cr_assert_eq(n, 300);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(got[i].open_time, t0 + (int64_t)i * 60000);
        cr_expect(got[i].closed);
        expect_dec_eq(got[i].open, D(i < 100 ? "1" : i < 299 ? "2" : "3"), "open");
    }
    free(got);

    /* A row the database refuses for good (here: a constraint added on this
     * private cluster) is dropped and counted; the rest of its batch lands
     * and the writer carries on. */
    {
        PGconn *raw = raw_connect(url);
        struct ab_candle c;

        raw_exec(raw, "ALTER TABLE candlesticks ADD CONSTRAINT no_bad CHECK"
                      " (symbol <> 'BADROWUSDT')");
        PQfinish(raw);
        store_stop(st, 5000);
        c = make_candle("OUTUSDT", AB_I_1M, t0 + 300 * 60000, "4", true);
        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 302), 0);
        c = make_candle("BADROWUSDT", AB_I_1M, t0, "4", true);
        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 303), 0);
        c = make_candle("OUTUSDT", AB_I_1M, t0 + 301 * 60000, "4", true);
        cr_assert_eq(store_put_candle(st, &c, STORE_ORIGIN_WS, 304), 0);
        cr_assert_eq(store_start(st), 0);
        cr_assert_eq(store_flush(st, 10000), 0);
        store_get_stats(st, &s);
        cr_expect_eq(s.rows_dropped, 1);
        cr_expect_eq(cm.last, 304);
        cr_assert_eq(
            store_read_candles(st, "OUTUSDT", AB_I_1M, INT64_MIN, INT64_MAX, 0, false, &got, &n),
            0);
        cr_expect_eq(n, 302);
        free(got);
        cr_assert_eq(
            store_read_candles(st, "BADROWUSDT", AB_I_1M, INT64_MIN, INT64_MAX, 0, false, &got, &n),
            0);
        cr_expect_eq(n, 0);
    }
    store_free(st);
}

/*
 * bench_store: how fast can candle upserts go into PostgreSQL?
 *
 *   bench_store DATABASE_URL [rows]      (default 50000 rows)
 *
 * Compares ways to upsert `rows` distinct 1m candles into candlesticks, each
 * twice: into an empty key range ("insert") and again over the existing rows
 * ("update", the ON CONFLICT DO UPDATE path). Prints rows/s per method. The
 * schema is created by a store (migrations) first; the benchmark rows use
 * the symbol BENCHUSDT and are deleted before and after. Not run by tests.
 *
 * Methods: per-row prepared upsert (autocommit / one transaction / pipeline
 * mode), multi-row VALUES upsert, COPY into a temp table then INSERT ...
 * SELECT ... ON CONFLICT, the store's unnest-of-arrays upsert, and the store
 * itself end to end (store_put_candle + store_flush). The store.c header
 * comment records the results and the choice.
 *
 *   bench_store --figure DATABASE_URL [rows [baseline_rows]]
 *
 * The suite's figure (bench/run.sh): sustained candle upserts into the store
 * against the seed's method. `rows` (default 200000) distinct 1m candles of
 * one symbol go through store_put_candle as fast as the store accepts them
 * (default queue cap: a full queue refuses new keys with AB_ENOMEM and the
 * producer retries after 100 us, as the bus would), once into an empty key
 * range and once more over the existing rows (every row changed: the DO
 * UPDATE path); the time runs from the first put to the final store_flush.
 * The baseline is the seed's save_candlestick: one prepared INSERT ... ON
 * CONFLICT DO UPDATE per row, autocommit (asyncpg prepares and autocommits
 * the same way), over `baseline_rows` (default 30000) rows, inserted then
 * updated. Both figures are rows/s over the insert and update passes
 * together. It also prints the CPU time per row the store's PostgreSQL
 * backend used (read from /proc: the server must be local), a steadier
 * measure than wall time on a busy machine. Run it against a cluster started
 * with PG_FIXTURE_DURABLE=1 (tests/integration/pg-fixture.sh) for production
 * durability (fsync, synchronous_commit on: every autocommitted baseline row
 * waits for a WAL flush); the fixture's default has both off.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "common/decimal.h"
#include "common/err.h"
#include "common/interval.h"
#include "common/model.h"
#include "pgsql.h"
#include "store.h"

#define NCOL   PG_UPSERT_CANDLES_NPARAMS
#define VALMAX 48
#define T0     1500000000000LL /* a minute boundary in 2017 */

static size_t n_rows = 50000;
/* Row values as text, row-major: vals[row][col]. */
static char (*vals)[NCOL][VALMAX];

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(PGconn *c, const char *what)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, PQerrorMessage(c));
    exit(1);
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench_store: %s: %s\n", sql, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

static void prepare_ok(PGconn *c, const char *name, const char *sql)
{
    PGresult *r = PQprepare(c, name, sql, 0, NULL);

    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        die(c, "prepare");
    }
    PQclear(r);
}

/* Fills vals for pass `pass` (prices differ per pass so updates change rows). */
static void make_rows(int pass)
{
    for (size_t i = 0; i < n_rows; i++) {
        char(*v)[VALMAX] = vals[i];
        int64_t open = T0 + (int64_t)i * 60000;
        long p = 20000 + (long)(i % 5000) + pass;

        snprintf(v[0], VALMAX, "BENCHUSDT");
        snprintf(v[1], VALMAX, "1m");
        snprintf(v[2], VALMAX, "%" PRId64, open);
        snprintf(v[3], VALMAX, "%ld.12345678", p);
        snprintf(v[4], VALMAX, "%ld.5", p + 10);
        snprintf(v[5], VALMAX, "%ld.25", p - 10);
        snprintf(v[6], VALMAX, "%ld.87654321", p);
        snprintf(v[7], VALMAX, "12.34567800");
        snprintf(v[8], VALMAX, "%zu", 100 + i % 900);
        snprintf(v[9], VALMAX, "6.1");
        snprintf(v[10], VALMAX, "123456.78901234");
        snprintf(v[11], VALMAX, "%" PRId64, open + 59999);
        snprintf(v[12], VALMAX, "246913.57802468");
        snprintf(v[13], VALMAX, "%s", pass > 0 ? "t" : "f");
        snprintf(v[14], VALMAX, "ws");
    }
}

static void row_params(size_t i, const char **p)
{
    for (int k = 0; k < NCOL; k++) {
        p[k] = vals[i][k];
    }
}

static void m_per_row(PGconn *c, bool tx)
{
    if (tx) {
        exec_ok(c, "BEGIN");
    }
    for (size_t i = 0; i < n_rows; i++) {
        const char *p[NCOL];
        PGresult *r;

        row_params(i, p);
        r = PQexecPrepared(c, "b_one", NCOL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            die(c, "per-row upsert");
        }
        PQclear(r);
    }
    if (tx) {
        exec_ok(c, "COMMIT");
    }
}

static void m_per_row_autocommit(PGconn *c)
{
    m_per_row(c, false);
}

static void m_per_row_tx(PGconn *c)
{
    m_per_row(c, true);
}

/* Pipeline mode: chunks of 1000 queries sent back to back, one sync each
 * (reading per chunk keeps both sides' socket buffers from filling up). */
static void m_pipeline(PGconn *c)
{
    enum { PER = 1000 };

    if (PQenterPipelineMode(c) != 1) {
        die(c, "enter pipeline");
    }
    for (size_t start = 0; start < n_rows; start += PER) {
        size_t n = n_rows - start < PER ? n_rows - start : PER;
        size_t got = 0;
        PGresult *r;

        for (size_t i = 0; i < n; i++) {
            const char *p[NCOL];

            row_params(start + i, p);
            if (PQsendQueryPrepared(c, "b_one", NCOL, p, NULL, NULL, 0) != 1) {
                die(c, "pipeline send");
            }
        }
        if (PQpipelineSync(c) != 1) {
            die(c, "pipeline sync");
        }
        while (got < n) {
            r = PQgetResult(c);
            if (r == NULL) {
                continue; /* the end of one query's results */
            }
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                die(c, "pipeline result");
            }
            PQclear(r);
            got++;
        }
        for (;;) {
            r = PQgetResult(c);
            if (r != NULL && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                break;
            }
            PQclear(r);
        }
    }
    if (PQexitPipelineMode(c) != 1) {
        die(c, "exit pipeline");
    }
}

static const char *const upsert_tail =
    " ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET"
    " open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,"
    " volume = EXCLUDED.volume, num_trades = EXCLUDED.num_trades,"
    " taker_buy_volume = EXCLUDED.taker_buy_volume,"
    " taker_buy_quote_volume = EXCLUDED.taker_buy_quote_volume,"
    " close_time = EXCLUDED.close_time, quote_volume = EXCLUDED.quote_volume,"
    " is_closed = EXCLUDED.is_closed, origin = EXCLUDED.origin, updated_at = now()"
    " WHERE NOT c.is_closed OR EXCLUDED.is_closed";

/* Multi-row VALUES with $n parameters: 1000 rows (15000 params) per statement. */
static void m_values(PGconn *c)
{
    enum { PER = 1000 };
    static const char *p[PER * NCOL];
    static char sql[PER * 420 + 2048];

    for (size_t start = 0; start < n_rows; start += PER) {
        size_t n = n_rows - start < PER ? n_rows - start : PER;
        size_t off = 0;
        PGresult *r;

        off += (size_t)snprintf(sql + off, sizeof sql - off,
                                "INSERT INTO candlesticks AS c (symbol, timeframe, \"timestamp\","
                                " open, high, low, close, volume, num_trades, taker_buy_volume,"
                                " taker_buy_quote_volume, close_time, quote_volume, is_closed,"
                                " origin, updated_at) VALUES ");
        for (size_t i = 0; i < n; i++) {
            int b = (int)(i * NCOL);

            off += (size_t)snprintf(
                sql + off, sizeof sql - off,
                "%s($%d, $%d, " PG_TS("$%d") ", $%d::numeric, $%d::numeric, $%d::numeric,"
                                             " $%d::numeric, $%d::numeric, $%d::bigint, "
                                             "$%d::numeric, $%d::numeric, " PG_TS(
                                                 "$%d") ", $%d::numeric, $%d::boolean, $%d, now())",
                i > 0 ? "," : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9,
                b + 10, b + 11, b + 12, b + 13, b + 14, b + 15);
            row_params(start + i, &p[i * NCOL]);
        }
        snprintf(sql + off, sizeof sql - off, "%s", upsert_tail);
        r = PQexecParams(c, sql, (int)(n * NCOL), NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            die(c, "values upsert");
        }
        PQclear(r);
    }
}

/* COPY into a temp staging table, then one INSERT ... SELECT ... ON CONFLICT. */
static void m_copy(PGconn *c)
{
    char line[NCOL * VALMAX + 32];
    PGresult *r;

    exec_ok(c, "BEGIN");
    exec_ok(c, "CREATE TEMP TABLE IF NOT EXISTS stage (s text, tf text, t bigint, o numeric,"
               " h numeric, l numeric, c numeric, v numeric, n bigint, tbv numeric,"
               " tbqv numeric, ct bigint, qv numeric, x boolean, org text) ON COMMIT DELETE ROWS");
    r = PQexec(c, "COPY stage FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        die(c, "copy");
    }
    PQclear(r);
    for (size_t i = 0; i < n_rows; i++) {
        size_t off = 0;

        for (int k = 0; k < NCOL; k++) {
            off += (size_t)snprintf(line + off, sizeof line - off, "%s%s", k > 0 ? "\t" : "",
                                    vals[i][k]);
        }
        line[off++] = '\n';
        if (PQputCopyData(c, line, (int)off) != 1) {
            die(c, "copy data");
        }
    }
    if (PQputCopyEnd(c, NULL) != 1) {
        die(c, "copy end");
    }
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        die(c, "copy result");
    }
    PQclear(r);
    {
        char sql[4096];

        snprintf(sql, sizeof sql,
                 "INSERT INTO candlesticks AS c (symbol, timeframe, \"timestamp\", open, high, low,"
                 " close, volume, num_trades, taker_buy_volume, taker_buy_quote_volume,"
                 " close_time, quote_volume, is_closed, origin, updated_at)"
                 " SELECT s, tf, " PG_TS("t") ", o, h, l, c, v, n, tbv, tbqv, " PG_TS(
                     "ct") ", qv, x, org, now() FROM stage%s",
                 upsert_tail);
        exec_ok(c, sql);
    }
    exec_ok(c, "COMMIT");
}

/* The store's method: one text array per column, unnest, batches of 5000. */
static void m_unnest(PGconn *c)
{
    enum { PER = 5000 };
    static char cols[NCOL][PER * VALMAX + 16];

    for (size_t start = 0; start < n_rows; start += PER) {
        size_t n = n_rows - start < PER ? n_rows - start : PER;
        const char *p[NCOL];
        PGresult *r;

        for (int k = 0; k < NCOL; k++) {
            size_t off = 0;
            bool quote = k == 0 || k == 1 || k == 14;

            cols[k][off++] = '{';
            for (size_t i = 0; i < n; i++) {
                off += (size_t)snprintf(cols[k] + off, sizeof cols[k] - off,
                                        quote ? "%s\"%s\"" : "%s%s", i > 0 ? "," : "",
                                        vals[start + i][k]);
            }
            cols[k][off++] = '}';
            cols[k][off] = '\0';
            p[k] = cols[k];
        }
        r = PQexecPrepared(c, "b_many", NCOL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            die(c, "unnest upsert");
        }
        PQclear(r);
    }
}

static const char *bench_url;

/* The store end to end: put every candle, then flush. */
static void m_store(PGconn *c)
{
    struct store_config cfg = {.database_url = bench_url, .queue_cap = n_rows};
    struct store *st = NULL;

    (void)c;
    if (store_new(&cfg, &st) != 0 || store_start(st) != 0) {
        fprintf(stderr, "bench_store: store start failed\n");
        exit(1);
    }
    for (size_t i = 0; i < n_rows; i++) {
        struct ab_candle k = {0};
        const char *reason;

        snprintf(k.symbol, sizeof k.symbol, "BENCHUSDT");
        k.interval = AB_I_1M;
        k.open_time = T0 + (int64_t)i * 60000;
        k.close_time = k.open_time + 59999;
        if (ab_dec_parse_cstr(vals[i][3], &k.open) != 0 ||
            ab_dec_parse_cstr(vals[i][4], &k.high) != 0 ||
            ab_dec_parse_cstr(vals[i][5], &k.low) != 0 ||
            ab_dec_parse_cstr(vals[i][6], &k.close) != 0 ||
            ab_dec_parse_cstr(vals[i][7], &k.volume) != 0 ||
            ab_dec_parse_cstr(vals[i][9], &k.taker_buy_volume) != 0 ||
            ab_dec_parse_cstr(vals[i][10], &k.taker_buy_quote_volume) != 0 ||
            ab_dec_parse_cstr(vals[i][12], &k.quote_volume) != 0) {
            fprintf(stderr, "bench_store: bad decimal\n");
            exit(1);
        }
        k.num_trades = 100;
        k.closed = vals[i][13][0] == 't';
        if (ab_candle_validate(&k, &reason) != 0 ||
            store_put_candle(st, &k, STORE_ORIGIN_WS, i + 1) != 0) {
            fprintf(stderr, "bench_store: put failed\n");
            exit(1);
        }
    }
    if (store_flush(st, 600000) != 0) {
        fprintf(stderr, "bench_store: flush failed\n");
        exit(1);
    }
    store_free(st);
}

struct method {
    const char *name;
    void (*run)(PGconn *c);
};

static const struct method methods[] = {
    {"per-row prepared upsert, autocommit", m_per_row_autocommit},
    {"per-row prepared upsert, one transaction", m_per_row_tx},
    {"per-row prepared upsert, pipeline mode", m_pipeline},
    {"multi-row VALUES upsert, 1000 rows/statement", m_values},
    {"COPY into temp table + INSERT ... SELECT", m_copy},
    {"unnest($n arrays) upsert, 5000 rows/statement", m_unnest},
    {"store_put_candle + store_flush (end to end)", m_store},
};

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Fills a candle from the text row i (make_rows' values). */
static void row_candle(size_t i, struct ab_candle *k)
{
    memset(k, 0, sizeof *k);
    snprintf(k->symbol, sizeof k->symbol, "BENCHUSDT");
    k->interval = AB_I_1M;
    k->open_time = T0 + (int64_t)i * 60000;
    k->close_time = k->open_time + 59999;
    if (ab_dec_parse_cstr(vals[i][3], &k->open) != 0 ||
        ab_dec_parse_cstr(vals[i][4], &k->high) != 0 ||
        ab_dec_parse_cstr(vals[i][5], &k->low) != 0 ||
        ab_dec_parse_cstr(vals[i][6], &k->close) != 0 ||
        ab_dec_parse_cstr(vals[i][7], &k->volume) != 0 ||
        ab_dec_parse_cstr(vals[i][9], &k->taker_buy_volume) != 0 ||
        ab_dec_parse_cstr(vals[i][10], &k->taker_buy_quote_volume) != 0 ||
        ab_dec_parse_cstr(vals[i][12], &k->quote_volume) != 0) {
        bench_die("bench_store: bad decimal");
    }
    k->num_trades = 100 + (int64_t)(i % 900);
    k->closed = vals[i][13][0] == 't';
}

/* CPU seconds (user + system) the PostgreSQL backends serving the store's
 * connections (application_name abidance-query) have used so far, read from
 * /proc (the fixture cluster runs on this machine). Wall-clock rows/s on a
 * shared 2-core machine swing by 2x with the neighbours' load; the backend's
 * CPU per row does not, and the backend is what bounds the store. Returns -1
 * when /proc cannot tell (a remote server). */
static double backend_cpu_s(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT pid FROM pg_stat_activity"
                            " WHERE application_name = 'abidance-query'");
    long tck = sysconf(_SC_CLK_TCK);
    double sum = 0;
    int n = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || tck <= 0) {
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        char path[64], buf[1024];
        unsigned long ut = 0, stt = 0;
        FILE *f;
        size_t len;
        const char *p;

        snprintf(path, sizeof path, "/proc/%s/stat", PQgetvalue(r, i, 0));
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* Fields after the ")" of comm: state is field 3, utime 14, stime 15. */
        p = strrchr(buf, ')');
        if (p != NULL &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) == 2) {
            sum += (double)(ut + stt) / (double)tck;
            n++;
        }
    }
    PQclear(r);
    return n > 0 ? sum : -1;
}

/* Sustained store throughput: puts with backpressure, then flush. Seconds. */
static double figure_store(struct store *st, struct ab_candle *cs, uint64_t *token,
                           uint64_t *refusals)
{
    double t0 = bench_now();

    for (size_t i = 0; i < n_rows; i++) {
        int rc;

        while ((rc = store_put_candle(st, &cs[i], STORE_ORIGIN_WS, ++*token)) == AB_ENOMEM) {
            ++*refusals;
            usleep(100);
        }
        if (rc != 0) {
            bench_die("bench_store: put failed: %s", ab_err_str(rc));
        }
    }
    if (store_flush(st, 600000) != 0) {
        bench_die("bench_store: flush failed");
    }
    return bench_now() - t0;
}

static int figure(const char *url, size_t rows, size_t base_rows)
{
    struct store_config cfg = {.database_url = url};
    struct store *st = NULL;
    struct store_stats s;
    struct ab_candle *cs;
    uint64_t token = 0, refusals = 0;
    double t_ours = 0, t_base = 0, r_ours[2], r_base[2], cpu0, cpu1, pcpu0;
    PGconn *c;

    n_rows = rows > base_rows ? rows : base_rows;
    vals = calloc(n_rows, sizeof *vals);
    cs = calloc(n_rows, sizeof *cs);
    if (vals == NULL || cs == NULL) {
        bench_die("bench_store: out of memory");
    }
    if (store_new(&cfg, &st) != 0 || store_start(st) != 0) {
        bench_die("bench_store: store start failed");
    }
    for (int i = 0; i < 200; i++) {
        store_get_stats(st, &s);
        if (s.schema_version > 0) {
            break;
        }
        usleep(50000);
    }
    if (s.schema_version == 0) {
        bench_die("bench_store: no schema: %s", s.last_error);
    }
    c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        die(c, "connect");
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    exec_ok(c, "SET TIME ZONE 'UTC'");
    prepare_ok(c, "b_one", PG_UPSERT_CANDLE);
    printf("workload: %zu distinct 1m candles of one symbol inserted, then all updated (%zu"
           " upserts); store queue cap %zu rows, batches of up to %zu; baseline: %zu rows"
           " inserted then updated with one autocommitted prepared upsert each\n",
           rows, 2 * rows, (size_t)100000, (size_t)5000, base_rows);

    exec_ok(c, "DELETE FROM candlesticks WHERE symbol = 'BENCHUSDT'");
    exec_ok(c, "VACUUM candlesticks");
    n_rows = rows;
    cpu0 = backend_cpu_s(c);
    pcpu0 = bench_cpu();
    for (int pass = 0; pass < 2; pass++) {
        double t;

        make_rows(pass);
        for (size_t i = 0; i < n_rows; i++) {
            row_candle(i, &cs[i]);
        }
        t = figure_store(st, cs, &token, &refusals);
        r_ours[pass] = (double)n_rows / t;
        t_ours += t;
    }
    cpu1 = backend_cpu_s(c);
    store_get_stats(st, &s);
    if (cpu0 >= 0 && cpu1 >= 0) {
        printf("store: PostgreSQL backend CPU %.2f us/row, this process (puts + writer) %.2f"
               " us/row, wall %.2f us/row\n",
               (cpu1 - cpu0) * 1e6 / (2.0 * (double)rows),
               (bench_cpu() - pcpu0) * 1e6 / (2.0 * (double)rows),
               t_ours * 1e6 / (2.0 * (double)rows));
    }
    printf("store: insert %.0f rows/s, update %.0f rows/s; %" PRIu64 " batches, mean %.0f rows,"
           " %" PRIu64 " refusals (queue full)\n",
           r_ours[0], r_ours[1], s.batches,
           s.batches ? (double)s.batch_size_sum / (double)s.batches : 0.0, refusals);

    exec_ok(c, "DELETE FROM candlesticks WHERE symbol = 'BENCHUSDT'");
    exec_ok(c, "VACUUM candlesticks");
    n_rows = base_rows;
    for (int pass = 0; pass < 2; pass++) {
        double t;

        make_rows(pass);
        t = bench_now();
        m_per_row_autocommit(c);
        t = bench_now() - t;
        r_base[pass] = (double)n_rows / t;
        t_base += t;
    }
    printf("per-row upsert: insert %.0f rows/s, update %.0f rows/s\n", r_base[0], r_base[1]);
    exec_ok(c, "DELETE FROM candlesticks WHERE symbol = 'BENCHUSDT'");
    PQfinish(c);
    store_free(st);
    {
        double ours = 2.0 * (double)rows / t_ours, base = 2.0 * (double)base_rows / t_base;

        bench_result("id=store value=%.0f unit=rows/s baseline=%.0f ratio=%.2f", ours, base,
                     ours / base);
    }
    free(cs);
    free(vals);
    return 0;
}

int main(int argc, char **argv)
{
    struct store_config cfg = {0};
    struct store *st = NULL;
    struct store_stats s;
    PGconn *c;

    if (argc > 2 && strcmp(argv[1], "--figure") == 0) {
        return figure(argv[2],
                      argc > 3 ? (size_t)bench_arg_long(argv[3], 1, 10000000, "rows") : 200000,
                      argc > 4 ? (size_t)bench_arg_long(argv[4], 1, 10000000, "rows") : 30000);
    }
    if (argc < 2) {
        fprintf(stderr, "usage: bench_store DATABASE_URL [rows]\n"
                        "       bench_store --figure DATABASE_URL [rows [baseline_rows]]\n");
        return 2;
    }
    bench_url = argv[1];
    if (argc > 2) {
        char *end;
        long v = strtol(argv[2], &end, 10);

        if (*end != '\0' || v <= 0 || v > 10000000) {
            fprintf(stderr, "bench_store: bad row count\n");
            return 2;
        }
        n_rows = (size_t)v;
    }
    vals = calloc(n_rows, sizeof *vals);
    if (vals == NULL) {
        return 1;
    }
    /* Let a store apply the migrations. */
    cfg.database_url = bench_url;
    if (store_new(&cfg, &st) != 0 || store_start(st) != 0) {
        return 1;
    }
    for (int i = 0; i < 200; i++) {
        store_get_stats(st, &s);
        if (s.schema_version > 0) {
            break;
        }
        usleep(50000);
    }
    store_free(st);
    if (s.schema_version == 0) {
        fprintf(stderr, "bench_store: no schema: %s\n", s.last_error);
        return 1;
    }

    c = PQconnectdb(bench_url);
    if (PQstatus(c) != CONNECTION_OK) {
        die(c, "connect");
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    exec_ok(c, "SET TIME ZONE 'UTC'");
    prepare_ok(c, "b_one", PG_UPSERT_CANDLE);
    prepare_ok(c, "b_many", PG_UPSERT_CANDLES);
    printf("%zu rows per pass\n%-48s %12s %12s\n", n_rows, "method", "insert/s", "update/s");
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        double rate[2];

        exec_ok(c, "DELETE FROM candlesticks WHERE symbol = 'BENCHUSDT'");
        exec_ok(c, "VACUUM candlesticks");
        for (int pass = 0; pass < 2; pass++) {
            double t;

            make_rows(pass);
            t = now_s();
            methods[m].run(c);
            rate[pass] = (double)n_rows / (now_s() - t);
        }
        printf("%-48s %12.0f %12.0f\n", methods[m].name, rate[0], rate[1]);
        fflush(stdout);
    }
    exec_ok(c, "DELETE FROM candlesticks WHERE symbol = 'BENCHUSDT'");
    PQfinish(c);
    free(vals);
    return 0;
}

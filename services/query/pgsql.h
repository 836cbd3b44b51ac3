/*
 * pgsql: the store's SQL text and prepared statement names (private to
 * services/query; the integration tests include it to EXPLAIN the very
 * statements the store runs).
 *
 * Times cross the wire as bigint epoch milliseconds. In:
 * 'epoch'::timestamptz + ms * interval '1 millisecond' is exact while
 * |ms| * 1000 < 2^53 (years 1684..2255; PG_MS_SQL below); out:
 * extract(epoch ...) is numeric since PostgreSQL 14, so * 1000 is exact.
 * Decimals cross as text into numeric and back.
 */
#ifndef ABIDANCE_QUERY_PGSQL_H
#define ABIDANCE_QUERY_PGSQL_H

#define PG_TS(p) "('epoch'::timestamptz + (" p ")::bigint * interval '1 millisecond')"
#define PG_MS(c) "(extract(epoch FROM " c ") * 1000)::bigint"

/* Batched candle upsert: one row per array element, all arrays the same
 * length. A closed candle is final (the WHERE of DO UPDATE).
 * The arrays are unnested in a target list (a ProjectSet node walking them
 * in lockstep), not in FROM: unnest(a, b, ...) in FROM is ROWS FROM, which
 * first copies every array into a tuplestore and reads it back (9% of the
 * backend's profile in a bulk upsert; this form measured 6% less backend CPU
 * per row, bench_store --figure). Equal lengths make both forms give the
 * same rows. */
#define PG_UPSERT_CANDLES_NAME    "upsert_candles"
#define PG_UPSERT_CANDLES_NPARAMS 15
#define PG_UPSERT_CANDLES                                                                          \
    "INSERT INTO candlesticks AS c (symbol, timeframe, \"timestamp\", open, high, low, close,"     \
    " volume, num_trades, taker_buy_volume, taker_buy_quote_volume, close_time, quote_volume,"     \
    " is_closed, origin, updated_at)"                                                              \
    " SELECT u.s, u.tf, " PG_TS("u.t") ", u.o, u.h, u.l, u.c, u.v, u.n, u.tbv, u.tbqv, " PG_TS(    \
        "u.ct") ", u.qv, u.x, u.org, now()"                                                        \
                " FROM (SELECT unnest($1::text[]) AS s, unnest($2::text[]) AS tf,"                 \
                " unnest($3::bigint[]) AS t, unnest($4::numeric[]) AS o, unnest($5::numeric[]) "   \
                "AS h,"                                                                            \
                " unnest($6::numeric[]) AS l, unnest($7::numeric[]) AS c, unnest($8::numeric[]) "  \
                "AS v,"                                                                            \
                " unnest($9::bigint[]) AS n, unnest($10::numeric[]) AS tbv,"                       \
                " unnest($11::numeric[]) AS tbqv, unnest($12::bigint[]) AS ct,"                    \
                " unnest($13::numeric[]) AS qv, unnest($14::boolean[]) AS x, unnest($15::text[]) " \
                "AS org)"                                                                          \
                " AS u"                                                                            \
                " ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET"                    \
                " open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = "        \
                "EXCLUDED.close,"                                                                  \
                " volume = EXCLUDED.volume, num_trades = EXCLUDED.num_trades,"                     \
                " taker_buy_volume = EXCLUDED.taker_buy_volume,"                                   \
                " taker_buy_quote_volume = EXCLUDED.taker_buy_quote_volume,"                       \
                " close_time = EXCLUDED.close_time, quote_volume = EXCLUDED.quote_volume,"         \
                " is_closed = EXCLUDED.is_closed, origin = EXCLUDED.origin, updated_at = now()"    \
                " WHERE NOT c.is_closed OR EXCLUDED.is_closed"

/* Single-row upsert with the same semantics (hard-error fallback, bench). */
#define PG_UPSERT_CANDLE_NAME "upsert_candle"
#define PG_UPSERT_CANDLE                                                                       \
    "INSERT INTO candlesticks AS c (symbol, timeframe, \"timestamp\", open, high, low, close," \
    " volume, num_trades, taker_buy_volume, taker_buy_quote_volume, close_time, quote_volume," \
    " is_closed, origin, updated_at)"                                                          \
    " VALUES ($1, $2, " PG_TS("$3") ", $4, $5, $6, $7, $8, $9, $10, $11, " PG_TS(              \
        "$12") ", $13, $14, $15, now())"                                                       \
               " ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET"                 \
               " open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = "     \
               "EXCLUDED.close,"                                                               \
               " volume = EXCLUDED.volume, num_trades = EXCLUDED.num_trades,"                  \
               " taker_buy_volume = EXCLUDED.taker_buy_volume,"                                \
               " taker_buy_quote_volume = EXCLUDED.taker_buy_quote_volume,"                    \
               " close_time = EXCLUDED.close_time, quote_volume = EXCLUDED.quote_volume,"      \
               " is_closed = EXCLUDED.is_closed, origin = EXCLUDED.origin, updated_at = now()" \
               " WHERE NOT c.is_closed OR EXCLUDED.is_closed"

/* Session settings of every reader connection. The reads are written for
 * the primary-key index (forward or backward scan, LIMIT on top), but for a
 * short range the planner may still estimate a bitmap scan plus a sort as
 * cheaper; readers never want a sort, so they forbid it: the plan then
 * always walks the index in order and stops after LIMIT rows. */
#define PG_READER_SESSION "SET enable_sort = off"

/* Columns every candle read returns, in this order. */
#define PG_CANDLE_COLS                                                                    \
    "symbol, timeframe, " PG_MS("\"timestamp\"") ", " PG_MS(                              \
        "close_time") ", open, high, low, close, volume, quote_volume, taker_buy_volume," \
                      " taker_buy_quote_volume, num_trades, is_closed"
enum pg_candle_col {
    PG_C_SYMBOL,
    PG_C_TIMEFRAME,
    PG_C_OPEN_TIME,
    PG_C_CLOSE_TIME,
    PG_C_OPEN,
    PG_C_HIGH,
    PG_C_LOW,
    PG_C_CLOSE,
    PG_C_VOLUME,
    PG_C_QUOTE_VOLUME,
    PG_C_TAKER_BUY_VOLUME,
    PG_C_TAKER_BUY_QUOTE_VOLUME,
    PG_C_NUM_TRADES,
    PG_C_IS_CLOSED,
    PG_C_COUNT
};

/* $1 symbol, $2 timeframe, $3 start ms, $4 end ms (inclusive), $5 limit. */
#define PG_READ_RANGE_WHERE                                                                \
    " FROM candlesticks WHERE symbol = $1 AND timeframe = $2 AND \"timestamp\" >= " PG_TS( \
        "$3") " AND \"timestamp\" <= " PG_TS("$4")
#define PG_READ_OLDEST_NAME "read_oldest"
#define PG_READ_OLDEST \
    "SELECT " PG_CANDLE_COLS PG_READ_RANGE_WHERE " ORDER BY \"timestamp\" ASC LIMIT $5"
#define PG_READ_NEWEST_NAME "read_newest"
#define PG_READ_NEWEST \
    "SELECT " PG_CANDLE_COLS PG_READ_RANGE_WHERE " ORDER BY \"timestamp\" DESC LIMIT $5"

#define PG_LIST_SERIES_NAME "list_series"
#define PG_LIST_SERIES                                                                          \
    "SELECT symbol, timeframe, " PG_MS(                                                         \
        "max(\"timestamp\")") ", count(*)"                                                      \
                              " FROM candlesticks GROUP BY symbol, timeframe ORDER BY symbol, " \
                              "timeframe"

/* $1 symbol, $2 taken_at ms, $3 last_update_id, $4 bids, $5 asks ({{p,q},...}). */
#define PG_PUT_SNAPSHOT_NAME "put_snapshot"
#define PG_PUT_SNAPSHOT                                                                           \
    "INSERT INTO book_snapshots (symbol, taken_at, last_update_id, bids, asks)"                   \
    " VALUES ($1, " PG_TS("$2") ", $3, $4::numeric[], $5::numeric[])"                             \
                                " ON CONFLICT (symbol, taken_at) DO UPDATE SET last_update_id = " \
                                "EXCLUDED.last_update_id,"                                        \
                                " bids = EXCLUDED.bids, asks = EXCLUDED.asks"
/* Keeps the newest $2 snapshots of symbol $1. */
#define PG_PRUNE_SNAPSHOTS_NAME "prune_snapshots"
#define PG_PRUNE_SNAPSHOTS                                                                \
    "DELETE FROM book_snapshots WHERE symbol = $1 AND taken_at < (SELECT taken_at"        \
    " FROM book_snapshots WHERE symbol = $1 ORDER BY taken_at DESC OFFSET $2::bigint - 1" \
    " LIMIT 1)"
#define PG_READ_SNAPSHOT_NAME "read_snapshot"
#define PG_READ_SNAPSHOT                       \
    "SELECT last_update_id, " PG_MS(           \
        "taken_at") ", bids::text, asks::text" \
                    " FROM book_snapshots WHERE symbol = $1 ORDER BY taken_at DESC LIMIT 1"

#endif

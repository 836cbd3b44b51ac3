-- 001: candles. One row per (symbol, timeframe, open time).
-- The seed's columns come first; close_time, quote_volume, is_closed and
-- origin are ours. Every price and volume is numeric: exact, never float.
-- timestamp is the candle's open time. The primary key index serves the
-- ascending and descending range reads of the query service without a sort.
CREATE TABLE candlesticks (
    symbol                 text        NOT NULL CHECK (symbol ~ '^[A-Z0-9]{1,31}$'),
    timeframe              text        NOT NULL CHECK (timeframe IN ('1s', '1m', '3m', '5m',
                               '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d',
                               '1w', '1M')),
    "timestamp"            timestamptz NOT NULL,
    open                   numeric     NOT NULL CHECK (open >= 0),
    high                   numeric     NOT NULL CHECK (high >= 0),
    low                    numeric     NOT NULL CHECK (low >= 0),
    close                  numeric     NOT NULL CHECK (close >= 0),
    volume                 numeric     NOT NULL CHECK (volume >= 0),
    num_trades             bigint      NOT NULL CHECK (num_trades >= 0),
    taker_buy_volume       numeric     NOT NULL CHECK (taker_buy_volume >= 0),
    taker_buy_quote_volume numeric     NOT NULL CHECK (taker_buy_quote_volume >= 0),
    close_time             timestamptz NOT NULL,
    quote_volume           numeric     NOT NULL CHECK (quote_volume >= 0),
    is_closed              boolean     NOT NULL DEFAULT false,
    origin                 text        NOT NULL DEFAULT 'ws' CHECK (origin IN ('ws', 'rest')),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, timeframe, "timestamp"),
    CHECK (close_time > "timestamp")
);

COMMENT ON TABLE candlesticks IS 'Binance klines; a closed candle (is_closed) is final';
COMMENT ON COLUMN candlesticks."timestamp" IS 'candle open time (UTC)';
COMMENT ON COLUMN candlesticks.origin IS 'ws: live stream, rest: REST backfill';

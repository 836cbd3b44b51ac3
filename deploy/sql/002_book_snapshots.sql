-- 002: persisted order-book snapshots (periodic and on every resync).
-- bids and asks are two-dimensional numeric arrays {{price,qty},...}: exact
-- decimals, bids best (highest) first, asks best (lowest) first. The writer
-- keeps only the most recent snapshots per symbol; the primary key index
-- (symbol, taken_at) serves "latest for a symbol" with a backward scan.
CREATE TABLE book_snapshots (
    symbol         text        NOT NULL CHECK (symbol ~ '^[A-Z0-9]{1,31}$'),
    taken_at       timestamptz NOT NULL,
    last_update_id bigint      NOT NULL CHECK (last_update_id >= 0),
    bids           numeric[]   NOT NULL CHECK (cardinality(bids) = 0 OR array_ndims(bids) = 2),
    asks           numeric[]   NOT NULL CHECK (cardinality(asks) = 0 OR array_ndims(asks) = 2),
    PRIMARY KEY (symbol, taken_at)
);

COMMENT ON TABLE book_snapshots IS 'order book snapshots; bids/asks are {{price,qty},...}';

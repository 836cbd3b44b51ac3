-- 003: a cheaper write path for candlesticks (issue #7), same rules.
--
-- The symbol CHECK of 001 was a regular expression, and evaluating it was 12%
-- of the PostgreSQL backend's time in a bulk upsert (perf, bench_store). This
-- one accepts exactly the same strings without the regex engine: 1 to 31
-- bytes, and nothing left once the bytes A-Z and 0-9 are trimmed off the
-- left (any other character, non-ASCII included, survives the trim). It works
-- on bytes (convert_to; bytea ltrim is PostgreSQL 14+) because ltrim on text
-- walks multibyte characters and cost as much as the regex; measured over 2M
-- symbols, the regex cost ~2.2 us each, text ltrim ~1.6 us, this ~0.45 us.
-- The new constraint is validated against the existing rows (one scan; they
-- passed the old, equivalent check).
ALTER TABLE candlesticks
    DROP CONSTRAINT candlesticks_symbol_check,
    ADD CONSTRAINT candlesticks_symbol_check CHECK (
        octet_length(symbol) BETWEEN 1 AND 31
        AND ltrim(convert_to(symbol, 'UTF8'),
                  decode('4142434445464748494a4b4c4d4e4f505152535455565758595a30313233343536373839',
                         'hex')) = ''::bytea);

-- Room on every heap page for newer versions of its rows: a live candle is
-- rewritten every couple of seconds until it closes, and with free space on
-- its page the update is HOT (no new primary-key entry, old versions pruned
-- in place). Affects pages written from now on; nothing is rewritten.
ALTER TABLE candlesticks SET (fillfactor = 90);

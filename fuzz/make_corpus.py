#!/usr/bin/python3
"""Builds the seed corpora of the fuzz targets from recorded exchange data.

Usage: make_corpus.py SHARED_DATA_DIR OUT_DIR

Reads SHARED_DATA_DIR/binance (the cryptofeed captures, the klines bodies and
the official doc examples, see its README.md) and writes one small file per
input into OUT_DIR/<target>/, in each target's input format (fuzz/targets.h).
Large bodies are cut down (20 levels per side, 30 klines, 5 exchangeInfo
symbols) so libFuzzer's mutations stay fast. The hand-written seeds in
fuzz/seeds/ are not copied: scripts/fuzz.sh passes both directories.
Fails (exit 1) when the data directory is missing: a silent empty corpus
would hide a broken checkout.
"""
import hashlib
import json
import os
import re
import sys

INTERVALS = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
             "1d", "3d", "1w", "1M"]
PER_STREAM_KIND = 40  # frames kept per (stream kind) across all captures
MAX_LINE = 8192       # capture lines longer than this are not used as seeds


def put(out, target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def capture_lines(binance):
    for sub in sorted(os.listdir(binance)):
        if not sub.startswith("cryptofeed-"):
            continue
        for fn in sorted(os.listdir(os.path.join(binance, sub))):
            with open(os.path.join(binance, sub, fn), "rb") as f:
                for line in f:
                    yield sub + "/" + fn, line.rstrip(b"\n")


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def cut_book(body, n=20):
    obj = json.loads(body)
    for side in ("bids", "asks"):
        if side in obj:
            obj[side] = obj[side][:n]
    return compact(obj)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    shared, out = sys.argv[1], sys.argv[2]
    binance = os.path.join(shared, "binance")
    if not os.path.isdir(binance):
        sys.exit("make_corpus: %s does not exist" % binance)

    kinds = {}
    decimals = set()
    raw_lines = {}
    for fname, line in capture_lines(binance):
        raw_lines.setdefault(fname, [])
        if len(line) <= MAX_LINE and len(raw_lines[fname]) < 40:
            raw_lines[fname].append(line)
        text = line.decode("utf-8", "replace")
        if text.startswith("http"):
            url, _, rest = text.partition(" -> ")
            _, _, body = rest.partition(": ")
            if "/depth" in url:
                put(out, "binance_rest", b"\x00\x00" + cut_book(body).encode())
            elif "exchangeInfo" in url:
                info = json.loads(body)
                info["symbols"] = info["symbols"][:5]
                put(out, "binance_rest", b"\x04\x00" + compact(info).encode())
            continue
        if not text[:1].isdigit():
            continue
        _, _, payload = text.partition(": ")
        try:
            frame = json.loads(payload)
        except ValueError:
            continue
        stream = frame.get("stream", "")
        kind = stream.split("@", 1)[-1]
        n = kinds.get(kind, 0)
        if n < PER_STREAM_KIND:
            kinds[kind] = n + 1
            put(out, "binance_stream", payload)
            if n < 5:  # the raw (non-combined) form too
                put(out, "binance_stream", compact(frame.get("data", {})))
        if len(decimals) < 400:
            decimals.update(re.findall(r'"(-?[0-9]+(?:\.[0-9]+)?)"', payload)[:4])

    for fname, lines in raw_lines.items():
        for mode in (0, 1, 2):
            put(out, "capture_line", bytes([mode, 128]) + b"\n".join(lines[:10]) + b"\n")
        for line in lines[:20]:
            put(out, "capture_line", b"\x00\x00" + line)

    klines = [("python-binance-c22c7de/klines_30m_2019-04-11_to_2019-04-21.json", "30m"),
              ("nautilus-209a58e/http_spot_market_klines.json", "1m")]
    for rel, iv in klines:
        with open(os.path.join(binance, rel)) as f:
            rows = json.load(f)
        put(out, "binance_rest", bytes([1, INTERVALS.index(iv)]) + compact(rows[:30]).encode())

    with open(os.path.join(binance, "official-docs", "doc_examples.json")) as f:
        docs = json.load(f)
    for key, val in docs.items():
        if key.startswith("_"):
            continue
        body = compact(val)
        if key.startswith("ws_"):
            put(out, "binance_stream", body)
        elif key == "rest_depth_response":
            put(out, "binance_rest", b"\x00\x00" + body.encode())
        elif key == "rest_klines_response":
            put(out, "binance_rest", b"\x01\x01" + body.encode())
        elif key == "rest_error":
            put(out, "binance_rest", b"\x02\x20" + body.encode())
        elif key == "rest_time_response":
            put(out, "binance_rest", b"\x03\x00" + body.encode())
        elif key.startswith("exchangeInfo_"):
            info = {"serverTime": 1, "symbols": [{"symbol": "BNBBTC", "status": "TRADING",
                                                  "baseAsset": "BNB", "quoteAsset": "BTC",
                                                  "filters": [val]}]}
            put(out, "binance_rest", b"\x04\x00" + compact(info).encode())

    dec = sorted(decimals)
    for d in dec:
        put(out, "decimal", d)
    for a, b in zip(dec[::7], dec[3::7]):
        put(out, "decimal", a + "|" + b)

    for i, iv in enumerate(INTERVALS):
        put(out, "interval", iv)
        put(out, "interval", bytes([i | 0x80]) + (1633998512068).to_bytes(8, "big"))

    print("make_corpus: " + ", ".join(
        "%s %d" % (t, len(os.listdir(os.path.join(out, t)))) for t in sorted(os.listdir(out))))


if __name__ == "__main__":
    main()

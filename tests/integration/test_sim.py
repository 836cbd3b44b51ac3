#!/usr/bin/python3
"""Integration test of abidance-sim over loopback: the real binary, real sockets.

Starts the simulator several times on port 0 (reading "listening on HOST:PORT"
from its first stdout line) and checks, against Binance's formats:
  - REST: ping, time, exchangeInfo, depth, klines (row selection), error bodies,
    status codes and used-weight headers;
  - streams: combined and raw payloads key by key, U/u continuity, a book rebuilt
    from a REST snapshot plus diffs equal to /api/v3/depth after the --events
    freeze, final klines equal to the REST rows, bookTicker against the book;
  - live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / properties and errors,
    the 1024-stream limit, the 5 messages/s limit, server pings and the pong
    timeout (with a raw socket client that never answers);
  - every fault flag doing what it says; TLS (https and wss) with a throwaway
    certificate from `openssl req`; replay of a cryptofeed capture (frames
    byte for byte, recorded snapshots, both file layouts).
Every simulator is killed at the end. Exit status 0 = all checks passed.
"""
import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets

DEC = re.compile(r"^-?[0-9]+\.[0-9]{8}$")
# Slower runs (scripts/valgrind.sh sets ABIDANCE_TEST_TIME_SCALE) get longer waits.
try:
    SCALE = max(1.0, float(os.environ.get("ABIDANCE_TEST_TIME_SCALE", "1")))
except ValueError:
    SCALE = 1.0
DEADLINE = time.monotonic() + 100 * SCALE
FAILURES = []
CHECKS = 0


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)
    return cond


class Sim:
    """One simulator process on a free loopback port."""

    def __init__(self, binary, *args):
        self.args = args
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
        )
        line = self.proc.stdout.readline()
        m = re.match(r"^listening on 127\.0\.0\.1:([0-9]+)$", line.strip())
        if not m:
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r} {self.stderr()}")
        self.port = int(m.group(1))
        self.tls = "--tls-cert" in args
        scheme = "https" if self.tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.ws = f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        """SIGTERM; the simulator must exit 0 (sanitizer reports make it fail)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not check(self.proc.returncode == 0,
                     f"simulator {' '.join(self.args)} exited {self.proc.returncode}"):
            print(self.stderr()[-3000:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def rest(base, path, ctx=None):
    """GET base+path: (status, headers dict lower-cased, parsed body or text)."""
    try:
        with urllib.request.urlopen(base + path, timeout=10 * SCALE, context=ctx) as r:
            status, headers, body = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, dict(e.headers), e.read()
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        body = json.loads(body)
    except ValueError:
        body = body.decode()
    return status, headers, body


async def arest(base, path, ctx=None):
    return await asyncio.to_thread(rest, base, path, ctx)


def stats(sim, ctx=None):
    return rest(sim.base, "/sim/stats", ctx)[2]


# ---- Binance payload shapes ---------------------------------------------------------

SHAPES = {
    "depthUpdate": [("e", str), ("E", int), ("s", str), ("U", int), ("u", int), ("b", list),
                    ("a", list)],
    "kline": [("e", str), ("E", int), ("s", str), ("k", dict)],
    "trade": [("e", str), ("E", int), ("s", str), ("t", int), ("p", "dec"), ("q", "dec"),
              ("T", int), ("m", bool), ("M", bool)],
    "aggTrade": [("e", str), ("E", int), ("s", str), ("a", int), ("p", "dec"), ("q", "dec"),
                 ("f", int), ("l", int), ("T", int), ("m", bool), ("M", bool)],
    "bookTicker": [("u", int), ("s", str), ("b", "dec"), ("B", "dec"), ("a", "dec"),
                   ("A", "dec")],
}
KLINE_K = [("t", int), ("T", int), ("s", str), ("i", str), ("f", int), ("L", int), ("o", "dec"),
           ("c", "dec"), ("h", "dec"), ("l", "dec"), ("v", "dec"), ("n", int), ("x", bool),
           ("q", "dec"), ("V", "dec"), ("Q", "dec"), ("B", str)]


def shape_ok(obj, shape):
    if list(obj.keys()) != [k for k, _ in shape]:
        return False
    for k, t in shape:
        v = obj[k]
        if t == "dec":
            if not (isinstance(v, str) and DEC.match(v)):
                return False
        elif t is int:
            if not (isinstance(v, int) and not isinstance(v, bool)):
                return False
        elif not isinstance(v, t):
            return False
    return True


def payload_kind(data):
    return data.get("e", "bookTicker" if "u" in data and "b" in data else None)


def payload_ok(data):
    kind = payload_kind(data)
    if kind not in SHAPES or not shape_ok(data, SHAPES[kind]):
        return False
    if kind == "depthUpdate":
        for side in ("b", "a"):
            for lv in data[side]:
                if not (isinstance(lv, list) and len(lv) == 2 and all(
                        isinstance(x, str) and DEC.match(x) for x in lv)):
                    return False
    if kind == "kline":
        return shape_ok(data["k"], KLINE_K) and data["k"]["B"] == "0"
    return True


def dec(s):
    """Exact decimal string -> integer units of 1e-8."""
    neg = s.startswith("-")
    whole, frac = s.lstrip("-").split(".")
    v = int(whole) * 10**8 + int(frac.ljust(8, "0"))
    return -v if neg else v


def kline_row(k):
    """A stream kline's k object as the REST row it should equal."""
    return [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"],
            k["Q"], "0"]


# ---- a raw WebSocket client (to see pings and to not answer them) ---------------------


class RawWS:
    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("handshake: connection closed")
            head += chunk
        self.status = int(head.split(b" ")[1])
        self.buf = b""

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def frame(self, timeout):
        """Next frame (opcode, payload); TimeoutError or EOFError."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def send(self, opcode, payload):
        mask = os.urandom(4)
        head = bytes([0x80 | opcode])
        n = len(payload)
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def close(self):
        self.sock.close()


# ---- scenarios --------------------------------------------------------------------------

MODEL_STREAMS = ["btcusdt@depth@100ms", "btcusdt@depth", "ethusdt@depth@100ms",
                 "btcusdt@kline_1m", "btcusdt@kline_1s", "btcusdt@kline_5m", "btcusdt@bookTicker",
                 "btcusdt@trade", "btcusdt@aggTrade"]


async def model_stream_run(sim):
    """Collects the combined streams until the market froze; fetches a snapshot early."""
    url = sim.ws + "/stream?streams=" + "/".join(MODEL_STREAMS)
    msgs, snapshot = [], None
    async with websockets.connect(url, max_queue=None, max_size=None, ping_interval=None) as ws:
        frozen_at = None
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                raw = None
            if raw is not None:
                msgs.append(raw)
                if snapshot is None and '"btcusdt@depth@100ms"' in raw:
                    snapshot = (await arest(sim.base, "/api/v3/depth?symbol=BTCUSDT&limit=5000"))[2]
            if frozen_at is None:
                st = (await arest(sim.base, "/sim/stats"))[2] if raw is None or len(msgs) % 500 == 0 else None
                if st and all(s["frozen"] for s in st["symbols"]):
                    frozen_at = time.monotonic()
            elif raw is None and time.monotonic() - frozen_at > 0.6:
                break
            if time.monotonic() > DEADLINE:
                break
        # Nothing more arrives once frozen (pings are not messages).
        try:
            late = await asyncio.wait_for(ws.recv(), 0.5)
        except asyncio.TimeoutError:
            late = None
        check(late is None, "a message arrived after the freeze")
    return msgs, snapshot


def apply_levels(book, levels):
    for p, q in levels:
        if dec(q) == 0:
            book.pop(dec(p), None)
        else:
            book[dec(p)] = q


def check_model(binary):
    print("== model: streams, book, klines (--speed 60 --events 1800)", flush=True)
    # 00:01 start: the freeze (180 s later, 00:04) leaves the 5m candle open.
    with Sim(binary, "--speed", "60", "--events", "1800", "--seed", "7", "--queue",
             "200000", "--start-time", "1704067260000") as sim:
        msgs, snapshot = asyncio.run(model_stream_run(sim))
        check(len(msgs) > 3000, f"only {len(msgs)} stream messages")
        per_stream, bad_wrapper, bad_payload = {}, 0, 0
        for raw in msgs:
            m = json.loads(raw)
            if list(m.keys()) != ["stream", "data"] or m["stream"] not in MODEL_STREAMS:
                bad_wrapper += 1
                continue
            if not payload_ok(m["data"]):
                bad_payload += 1
                if bad_payload < 3:
                    print("   bad payload:", raw[:200])
            per_stream.setdefault(m["stream"], []).append(m["data"])
        check(bad_wrapper == 0, f"{bad_wrapper} messages without the exact combined wrapper")
        check(bad_payload == 0, f"{bad_payload} payloads not in Binance's exact shape")
        for s in MODEL_STREAMS:
            check(len(per_stream.get(s, [])) > 0, f"no messages on {s}")
        check(all(d["s"] == "BTCUSDT" for d in per_stream.get("btcusdt@trade", [])),
              "trade symbol")

        # U/u continuity on every diff stream.
        for s in ("btcusdt@depth@100ms", "btcusdt@depth", "ethusdt@depth@100ms"):
            ev = per_stream.get(s, [])
            gaps = sum(1 for a, b in zip(ev, ev[1:]) if b["U"] != a["u"] + 1)
            check(gaps == 0 and all(e["U"] <= e["u"] for e in ev), f"{s}: {gaps} U/u gaps")
        d1000 = per_stream.get("btcusdt@depth", [])
        check(all(e["E"] % 1000 == 0 for e in d1000[:-1]), "@depth events not on 1000 ms")

        # The book: snapshot + buffered diffs (Binance's procedure) == REST after the freeze.
        st, hdr, truth = rest(sim.base, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        check(st == 200 and hdr.get("x-mbx-used-weight-1m", "").isdigit(), "depth status/header")
        check(snapshot is not None, "no snapshot fetched")
        if snapshot and st == 200:
            lid = snapshot["lastUpdateId"]
            ev = [e for e in per_stream["btcusdt@depth@100ms"] if e["u"] > lid]
            check(ev and ev[0]["U"] <= lid + 1 <= ev[0]["u"], "first diff does not bridge the snapshot")
            bids = {dec(p): q for p, q in snapshot["bids"]}
            asks = {dec(p): q for p, q in snapshot["asks"]}
            for e in ev:
                apply_levels(bids, e["b"])
                apply_levels(asks, e["a"])
            rb = [[p, q] for p, q in truth["bids"]]
            ra = [[p, q] for p, q in truth["asks"]]
            mine_b = [[f"{p // 10**8}.{p % 10**8:08d}", bids[p]] for p in sorted(bids, reverse=True)]
            mine_a = [[f"{p // 10**8}.{p % 10**8:08d}", asks[p]] for p in sorted(asks)]
            check(truth["lastUpdateId"] == ev[-1]["u"], "REST lastUpdateId != last diff u")
            check(mine_b == rb and mine_a == ra, "rebuilt book differs from /api/v3/depth")
            check(dec(rb[0][0]) < dec(ra[0][0]), "REST book crossed")
            bt = per_stream["btcusdt@bookTicker"][-1]
            check([bt["b"], bt["B"], bt["a"], bt["A"]] == rb[0] + ra[0], "last bookTicker != book top")
            check(bt["u"] <= truth["lastUpdateId"], "bookTicker u beyond the book")
            st2, _, lim3 = rest(sim.base, "/api/v3/depth?symbol=BTCUSDT&limit=3")
            check(st2 == 200 and len(lim3["bids"]) == 3 and lim3["bids"] == rb[:3], "depth limit=3")
            _, _, deflt = rest(sim.base, "/api/v3/depth?symbol=BTCUSDT")
            check(len(deflt["bids"]) == min(100, len(rb)), "depth default limit is not 100")

        # Final klines equal the REST rows; the frozen open candle equals the last REST row.
        for iv in ("1m", "1s"):
            finals = [d["k"] for d in per_stream.get(f"btcusdt@kline_{iv}", []) if d["k"]["x"]]
            check(len(finals) >= (2 if iv == "1m" else 60), f"too few final {iv} klines: {len(finals)}")
            _, _, rows = rest(sim.base, f"/api/v3/klines?symbol=BTCUSDT&interval={iv}&limit=1000")
            by_t = {r[0]: r for r in rows}
            diff = [k["t"] for k in finals if by_t.get(k["t"]) != kline_row(k)]
            check(not diff, f"{iv}: {len(diff)} final klines differ from REST")
            check(all(len(r) == 12 and isinstance(r[0], int) and isinstance(r[6], int)
                      and isinstance(r[8], int) and all(DEC.match(r[i]) for i in (1, 2, 3, 4, 5, 7, 9, 10))
                      and r[11] == "0" for r in rows), f"{iv}: REST rows not in Binance's shape")
            ks = per_stream.get(f"btcusdt@kline_{iv}", [])
            check(all(d["k"]["n"] == d["k"]["L"] - d["k"]["f"] + 1 for d in ks), f"{iv}: n != L-f+1")
            check(all(d["E"] > d["k"]["T"] for d in ks if d["k"]["x"]), f"{iv}: x:true before T")
        k5 = per_stream.get("btcusdt@kline_5m", [])
        _, _, rows5 = rest(sim.base, "/api/v3/klines?symbol=BTCUSDT&interval=5m")
        check(k5 and rows5 and kline_row(k5[-1]["k"]) == rows5[-1] and not k5[-1]["k"]["x"],
              "frozen open 5m candle: stream != REST")
        # Five 1m candles aggregate to the 5m one (here: all the 1m rows inside it).
        _, _, rows1 = rest(sim.base, "/api/v3/klines?symbol=BTCUSDT&interval=1m")
        inside = [r for r in rows1 if rows5[-1][0] <= r[0] < rows5[-1][6]]
        if check(inside, "no 1m rows inside the 5m candle"):
            agg_v = sum(dec(r[5]) for r in inside)
            check(rows5[-1][1] == inside[0][1] and rows5[-1][4] == inside[-1][4]
                  and dec(rows5[-1][2]) == max(dec(r[2]) for r in inside)
                  and dec(rows5[-1][3]) == min(dec(r[3]) for r in inside)
                  and dec(rows5[-1][5]) == agg_v and rows5[-1][8] == sum(r[8] for r in inside),
                  "1m rows do not aggregate to the 5m row")

        # klines row selection (protocol doc 4.3).
        t = [r[0] for r in rows1]
        if check(len(t) >= 3, "fewer than 3 1m rows"):
            _, _, a = rest(sim.base, f"/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={t[1]}&limit=1")
            _, _, b = rest(sim.base, f"/api/v3/klines?symbol=BTCUSDT&interval=1m&endTime={t[1]}&limit=1")
            _, _, c = rest(sim.base, f"/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={t[0]}&endTime={t[1]}")
            _, _, d = rest(sim.base, f"/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1")
            check([r[0] for r in a] == [t[1]] and [r[0] for r in b] == [t[1]]
                  and [r[0] for r in c] == t[:2] and [r[0] for r in d] == [t[-1]],
                  "klines startTime/endTime/limit selection")
        return sim


def check_rest(binary):
    print("== REST: endpoints, errors, weights", flush=True)
    with Sim(binary, "--speed", "60", "--start-time", "1704067200000") as sim:
        st, h, body = rest(sim.base, "/api/v3/ping")
        check(st == 200 and body == {} and h.get("content-type", "").startswith("application/json"), "ping")
        check("x-mbx-used-weight-1m" in h and "x-mbx-used-weight" in h, "used-weight headers")
        w0 = int(h["x-mbx-used-weight-1m"])
        st, _, body = rest(sim.base, "/api/v3/time")
        check(st == 200 and list(body) == ["serverTime"] and body["serverTime"] >= 1704067200000,
              "time")
        st, h, info = rest(sim.base, "/api/v3/exchangeInfo")
        check(st == 200 and int(h["x-mbx-used-weight-1m"]) >= w0 + 21, "exchangeInfo weight 20")
        check([s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"], "exchangeInfo symbols")
        for s in info["symbols"]:
            f = {x["filterType"]: x for x in s["filters"]}
            check(s["status"] == "TRADING" and DEC.match(f["PRICE_FILTER"]["tickSize"])
                  and DEC.match(f["LOT_SIZE"]["stepSize"]), f"exchangeInfo {s['symbol']} filters")
        check(info["symbols"][0]["filters"][0]["tickSize"] == "0.01000000", "BTCUSDT tickSize")
        rl = {r["rateLimitType"]: r for r in info["rateLimits"]}
        check(rl.get("REQUEST_WEIGHT", {}).get("limit") == 6000, "rateLimits REQUEST_WEIGHT")
        st, _, one = rest(sim.base, '/api/v3/exchangeInfo?symbols=%5B%22ETHUSDT%22%5D')
        check(st == 200 and [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"], "exchangeInfo symbols=")
        st, h, d = rest(sim.base, "/api/v3/depth?symbol=ETHUSDT&limit=5000")
        w1 = int(h["x-mbx-used-weight-1m"])
        st2, h2, _ = rest(sim.base, "/api/v3/depth?symbol=ETHUSDT&limit=10")
        check(int(h2["x-mbx-used-weight-1m"]) - w1 == 5, "depth limit 10 weighs 5")
        st3, h3, _ = rest(sim.base, "/api/v3/depth?symbol=ETHUSDT&limit=9000")
        check(st3 == 200 and int(h3["x-mbx-used-weight-1m"]) - int(h2["x-mbx-used-weight-1m"]) == 250,
              "depth limit>5000 is cut to 5000 (weight 250)")
        check(list(d) == ["lastUpdateId", "bids", "asks"] and all(
            DEC.match(p) and DEC.match(q) for p, q in d["bids"] + d["asks"]), "depth shape")
        errors = [
            ("/api/v3/depth?symbol=NOPEUSDT", 400, -1121),
            ("/api/v3/depth?symbol=btcusdt", 400, -1100),
            ("/api/v3/depth", 400, -1102),
            ("/api/v3/depth?symbol=BTCUSDT&limit=abc", 400, -1100),
            ("/api/v3/klines?symbol=BTCUSDT&interval=7m", 400, -1120),
            ("/api/v3/klines?symbol=BTCUSDT", 400, -1102),
            ("/api/v3/klines?symbol=NOPEUSDT&interval=1m", 400, -1121),
            ("/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=x", 400, -1100),
            ("/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=5&endTime=4", 400, -1023),
            ("/api/v3/depth?symbol=BTCUSDT&symbol=ETHUSDT", 400, -1101),
            ("/api/v3/exchangeInfo?symbol=NOPEUSDT", 400, -1121),
        ]
        for path, want_st, want_code in errors:
            st, h, body = rest(sim.base, path)
            check(st == want_st and isinstance(body, dict) and list(body) == ["code", "msg"]
                  and body["code"] == want_code and isinstance(body["msg"], str),
                  f"{path}: got {st} {body}")
        _, _, body = rest(sim.base, "/api/v3/klines?symbol=NOPEUSDT&interval=1m")
        check(body == {"code": -1121, "msg": "Invalid symbol."}, "exact -1121 body")
        _, _, body = rest(sim.base, "/api/v3/klines?symbol=BTCUSDT&interval=7m")
        check(body == {"code": -1120, "msg": "Invalid interval."}, "exact -1120 body")
        st, _, _ = rest(sim.base, "/api/v3/nothing")
        check(st == 404, "unknown path is 404")
        time.sleep(0.3)
        _, _, rows = rest(sim.base, "/api/v3/klines?symbol=BTCUSDT&interval=1M")
        check(len(rows) == 1 and rows[0][0] == 1704067200000 and rows[0][6] == 1706745599999,
              "1M candle spans the calendar month (January 2024)")
        _, _, rows = rest(sim.base, "/api/v3/klines?symbol=BTCUSDT&interval=1w")
        check(len(rows) == 1 and rows[0][0] == 1704067200000, "1w opens on Monday")


STREAM_KINDS = ["kline_1s", "kline_1m", "kline_3m", "kline_5m", "kline_15m", "kline_30m",
                "kline_1h", "kline_2h", "kline_4h", "kline_6h", "kline_8h", "kline_12h",
                "kline_1d", "kline_3d", "kline_1w", "kline_1M", "depth", "depth@100ms",
                "bookTicker", "trade", "aggTrade"]
SYMBOLS49 = [f"S{i:02d}USDT" for i in range(48)] + ["BTCUSDT"]


def check_control(binary):
    print("== streams: live control messages, stream limit, message rate", flush=True)
    with Sim(binary, "--speed", "30") as sim:
        asyncio.run(control_part_messages(sim))
        rate_limit(sim)
    # 1024 streams are many frames a second: a simulator slowed down by
    # valgrind writes them slower than they come, so it gets a deeper queue.
    deep = ("--queue", "100000") if SCALE > 1 else ()
    with Sim(binary, "--speed", "1", "--symbols", ",".join(SYMBOLS49), *deep) as sim49:
        asyncio.run(stream_limit(sim49))


async def control_part_messages(sim):
    async with websockets.connect(sim.ws + "/ws", ping_interval=None, max_queue=None) as ws:
        await control_dialogue(ws)
    try:
        async with websockets.connect(sim.ws + "/ws/btcusdt@bogus", ping_interval=None) as ws:
            await asyncio.wait_for(ws.recv(), 3)
        refused = False
    except (websockets.ConnectionClosed, websockets.InvalidStatusCode, asyncio.TimeoutError) as e:
        refused = not isinstance(e, asyncio.TimeoutError)
    check(refused, "unknown stream in the URL was not refused")


async def control_dialogue(ws):
    async def ask(obj):
        await ws.send(obj if isinstance(obj, str) else json.dumps(obj))
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if "result" in m or "code" in m:
                return m

    r = await ask({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms", "ethusdt@kline_1m"], "id": 1})
    check(r == {"result": None, "id": 1}, f"SUBSCRIBE reply {r}")
    r = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 2})
    check(r.get("id") == 2 and sorted(r.get("result", [])) == ["btcusdt@depth@100ms", "ethusdt@kline_1m"],
          f"LIST_SUBSCRIPTIONS {r}")
    m = json.loads(await asyncio.wait_for(ws.recv(), 5))
    check("stream" not in m and payload_ok(m), "raw payload on /ws")
    await asyncio.sleep(1.1)
    r = await ask({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": "abc9"})
    check(r == {"result": None, "id": "abc9"}, f"UNSUBSCRIBE reply {r}")
    r = await ask({"method": "GET_PROPERTY", "params": ["combined"], "id": 3})
    check(r == {"result": False, "id": 3}, f"GET_PROPERTY {r}")
    r = await ask({"method": "SET_PROPERTY", "params": ["combined", True], "id": 4})
    check(r == {"result": None, "id": 4}, f"SET_PROPERTY {r}")
    await asyncio.sleep(1.1)
    r = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 5})
    check(r == {"result": ["ethusdt@kline_1m"], "id": 5}, f"after UNSUBSCRIBE {r}")
    r = await ask("{not json")
    check(r.get("code") == 3 and isinstance(r.get("msg"), str), f"invalid JSON -> code 3: {r}")
    r = await ask({"method": "FLY", "id": 6})
    check(r.get("code") == 2, f"unknown method -> code 2: {r}")
    await asyncio.sleep(1.1)
    r = await ask({"method": "SUBSCRIBE", "params": ["btcusdt@nonsense"], "id": 7})
    check(r.get("code") == 2, f"unknown stream -> code 2: {r}")
    r = await ask({"method": "SET_PROPERTY", "params": ["colour", True], "id": 8})
    check(r.get("code") == 0, f"unknown property -> code 0: {r}")
    r = await ask({"method": "SET_PROPERTY", "params": ["combined", 1], "id": 9})
    check(r.get("code") == 1, f"wrong value type -> code 1: {r}")
    await asyncio.sleep(1.1)
    r = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 1.5})
    check(r.get("code") == 2, f"bad id -> code 2: {r}")
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "stream" in m:
            check(list(m) == ["stream", "data"] and m["stream"] == "ethusdt@kline_1m",
                  "combined wrapper after SET_PROPERTY")
            break


def rate_limit(sim):
    """5 messages in a second are fine; the 6th closes the connection (1008)."""
    raw = RawWS(sim.port, "/ws")
    for i in range(5):
        raw.send(0x1, json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}).encode())
    replies = [json.loads(raw.frame(3)[1]) for _ in range(5)]
    check([r.get("id") for r in replies] == list(range(5)), f"5 messages in a second: {replies}")
    time.sleep(1.1)
    for i in range(6):
        raw.send(0x1, json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10 + i}).encode())
    code = None
    try:
        while code is None:
            op, payload = raw.frame(3)
            if op == 0x8:
                code = struct.unpack(">H", payload[:2])[0]
    except (TimeoutError, EOFError, OSError):
        pass
    raw.close()
    check(code == 1008, f"6 messages in a second: expected close 1008, got {code}")
    check(stats(sim)["droppedRateLimit"] == 1, "droppedRateLimit counted")


async def stream_limit(sim):
    async with websockets.connect(sim.ws + "/ws", ping_interval=None, max_queue=None,
                                  max_size=None) as ws:
        names = [f"{s.lower()}@{k}" for s in SYMBOLS49 for k in STREAM_KINDS]
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": names[:1024], "id": 10}))
        r = await reply_of(ws)
        check(r == {"result": None, "id": 10}, f"1024 streams accepted: {str(r)[:120]}")
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [names[1024]], "id": 11}))
        r = await reply_of(ws)
        check(r.get("code") == 2 and r.get("id") == 11, f"stream 1025 refused: {r}")
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 12}))
        r = await reply_of(ws)
        check(len(r.get("result", [])) == 1024, "LIST_SUBSCRIPTIONS after the refusal")


async def reply_of(ws):
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if "result" in m or "code" in m:
            return m


def check_ping(binary):
    print("== keep-alive: server pings, pong timeout", flush=True)
    with Sim(binary, "--speed", "1", "--ping-interval", "500ms", "--pong-timeout", "1500ms") as sim:
        raw = RawWS(sim.port, "/ws/btcusdt@kline_1m")
        check(raw.status == 101, "raw handshake")
        pings, closed_at, t0 = 0, None, time.monotonic()
        try:
            while time.monotonic() - t0 < 6:
                op, payload = raw.frame(6)
                if op == 0x9:
                    pings += 1
                elif op == 0x8:
                    closed_at = time.monotonic() - t0
                    code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                    check(code == 1008, f"pong timeout close code {code}")
                    break
        except (TimeoutError, EOFError):
            pass
        raw.close()
        check(pings >= 2, f"server sent {pings} pings in ~2 s at a 500 ms interval")
        check(closed_at is not None and 1.4 < closed_at < 3.5,
              f"silent client not dropped after the pong timeout (closed at {closed_at})")
        # A client that answers stays connected.
        async def polite():
            async with websockets.connect(sim.ws + "/ws/btcusdt@kline_1m", ping_interval=None) as ws:
                await asyncio.sleep(3)
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
                return await reply_of(ws)
        r = asyncio.run(polite())
        check(r.get("id") == 1, "client answering pings was dropped")
        st = stats(sim)
        check(st["droppedPongTimeout"] == 1, f"droppedPongTimeout {st['droppedPongTimeout']}")


def check_faults(binary):
    print("== faults", flush=True)
    # Gaps, damaged klines and REST 429/418/delay in one run: each is seen separately.
    with Sim(binary, "--speed", "60", "--fault-gap-every", "5", "--fault-out-of-range-every",
             "3", "--fault-rest-429", "30", "--fault-rest-418", "20", "--fault-rest-delay-ms",
             "150") as sim:
        async def collect():
            url = sim.ws + "/stream?streams=btcusdt@depth@100ms/btcusdt@kline_1s"
            out = []
            async with websockets.connect(url, ping_interval=None, max_queue=None) as ws:
                t0 = time.monotonic()
                while time.monotonic() - t0 < 1.5:
                    out.append(json.loads(await asyncio.wait_for(ws.recv(), 3)))
            return out
        msgs = asyncio.run(collect())
        depth = [m["data"] for m in msgs if m["stream"] == "btcusdt@depth@100ms"]
        gaps = [b["U"] - a["u"] - 1 for a, b in zip(depth, depth[1:]) if b["U"] != a["u"] + 1]
        check(len(gaps) >= 10 and all(g > 0 for g in gaps), f"gap fault: {len(gaps)} gaps")
        check(abs(len(gaps) - len(depth) / 4) <= 3, f"gap fault: {len(gaps)} gaps in {len(depth)} events (every 5th dropped)")
        kl = [m["data"]["k"] for m in msgs if m["stream"] == "btcusdt@kline_1s"]
        bad = [k for k in kl if dec(k["h"]) < dec(k["l"]) or dec(k["v"]) < 0]
        check(kl and abs(len(bad) - len(kl) / 3) <= 2, f"out-of-range fault: {len(bad)} of {len(kl)}")
        check(any(dec(k["h"]) < dec(k["l"]) for k in bad) and any(dec(k["v"]) < 0 for k in bad),
              "out-of-range fault: both kinds")
        # REST keeps the truth: every row valid.
        seen = {}
        delays = []
        for _ in range(40):
            t0 = time.monotonic()
            st, h, body = rest(sim.base, "/api/v3/klines?symbol=BTCUSDT&interval=1s&limit=1000")
            delays.append(time.monotonic() - t0)
            seen[st] = seen.get(st, 0) + 1
            if st in (429, 418):
                check(h.get("retry-after") == "1" and body.get("code") == -1003,
                      f"{st}: Retry-After / -1003 body")
            elif st == 200:
                check(all(dec(r[2]) >= dec(r[3]) and dec(r[5]) >= 0 for r in body),
                      "REST rows damaged by the out-of-range fault")
        check(seen.get(429, 0) >= 4 and seen.get(418, 0) >= 2 and seen.get(200, 0) >= 10,
              f"REST fault mix {seen}")
        check(min(delays) >= 0.14, f"REST delay fault: fastest reply {min(delays):.3f} s")
        st = stats(sim)
        check(st["faults"]["gaps"] > 0 and st["faults"]["rest429"] == seen.get(429, 0),
              "stats count the faults")

    with Sim(binary, "--speed", "60", "--fault-malformed-every", "7") as sim:
        async def collect_raw():
            out = []
            async with websockets.connect(sim.ws + "/ws/btcusdt@depth@100ms", ping_interval=None,
                                          max_queue=None) as ws:
                for _ in range(140):
                    out.append(await asyncio.wait_for(ws.recv(), 3))
            return out
        raws = asyncio.run(collect_raw())
        broken = []
        for i, r in enumerate(raws):
            try:
                json.loads(r)
            except ValueError:
                broken.append(i + 1)
        check(broken == list(range(7, 141, 7)), f"malformed fault: broken messages {broken[:5]}...")

    with Sim(binary, "--speed", "60", "--fault-close-every", "1") as sim:
        async def until_closed():
            t0 = time.monotonic()
            try:
                async with websockets.connect(sim.ws + "/ws/btcusdt@kline_1m",
                                              ping_interval=None) as ws:
                    while True:
                        await asyncio.wait_for(ws.recv(), 3)
            except websockets.ConnectionClosed as e:
                return time.monotonic() - t0, e.code
            except asyncio.TimeoutError:
                return None, None
        took, code = asyncio.run(until_closed())
        check(took is not None and took < 2.5 and code == 1001,
              f"close-every fault: closed after {took} code {code}")
        check(stats(sim)["faults"]["closes"] >= 1, "close-every counted")

    with Sim(binary, "--speed", "60", "--fault-no-pong", "--ping-interval", "300ms") as sim:
        raw = RawWS(sim.port, "/ws/btcusdt@kline_1m")
        raw.send(0x9, b"hello")
        got = []
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 1.5:
                op, payload = raw.frame(1.5)
                got.append(op)
        except (TimeoutError, EOFError):
            pass
        raw.close()
        check(0x1 in got, "no-pong fault: data must still flow")
        check(0xA not in got and 0x9 not in got, f"no-pong fault: saw opcodes {sorted(set(got))}")
    with Sim(binary, "--speed", "60") as sim:
        raw = RawWS(sim.port, "/ws/btcusdt@kline_1m")
        raw.send(0x9, b"hello")
        pong = None
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 2 and pong is None:
                op, payload = raw.frame(2)
                if op == 0xA:
                    pong = payload
        except (TimeoutError, EOFError):
            pass
        raw.close()
        check(pong == b"hello", "without the fault a client ping gets its pong")


def check_slow_reader(binary):
    print("== a client that stops reading is dropped and counted", flush=True)
    # A simulator 20-50 times slower (valgrind) cannot keep a x600 clock and
    # stops answering: x60 is as much work for it as x600 is natively.
    speed = "600" if SCALE == 1 else "60"
    with Sim(binary, "--speed", speed, "--queue", "16") as sim:
        raw = RawWS(sim.port, "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms/"
                              "btcusdt@bookTicker/btcusdt@trade/ethusdt@trade")
        dropped = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 8 * SCALE and not dropped:
            time.sleep(0.25)
            dropped = stats(sim)["droppedQueueOverflow"]
        check(dropped == 1, f"slow reader: droppedQueueOverflow {dropped}")
        raw.close()


def check_tls(binary, tmp):
    print("== TLS: https and wss", flush=True)
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
                       capture_output=True)
    if not check(r.returncode == 0, "openssl req failed"):
        return
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    with Sim(binary, "--speed", "60", "--tls-cert", cert, "--tls-key", key) as sim:
        st, h, body = rest(sim.base, "/api/v3/time", ctx)
        check(st == 200 and "serverTime" in body, "https time")
        st, h, body = rest(sim.base, "/api/v3/depth?symbol=BTCUSDT&limit=5000", ctx)
        check(st == 200 and len(body["bids"]) > 100, "https depth 5000")

        async def wss():
            async with websockets.connect(sim.ws + "/stream?streams=btcusdt@depth@100ms",
                                          ssl=ctx, ping_interval=None) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 5))
        m = asyncio.run(wss())
        check(m["stream"] == "btcusdt@depth@100ms" and payload_ok(m["data"]), "wss stream")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{sim.port}/api/v3/time", timeout=3)
            plain = True
        except Exception:
            plain = False
        check(not plain, "plain http served on the TLS port")


def recorded(paths):
    """The capture's WS frames (payload text) and depth snapshots, in receive order."""
    items = []
    for fi, p in enumerate(paths):
        with open(p, encoding="utf-8") as f:
            for ln, line in enumerate(f):
                line = line.rstrip("\n")
                if line.startswith("http"):
                    url, rest_ = line.split(" -> ", 1)
                    ts, body = rest_.split(": ", 1)
                    items.append((float(ts), fi, ln, "http", url, body))
                elif line[:1].isdigit():
                    ts, payload = line.split(": ", 1)
                    items.append((float(ts), fi, ln, "ws", None, payload))
    items.sort(key=lambda x: (x[0], x[1], x[2]))
    return items


async def replay_client(sim, streams, fetch_syms):
    url = sim.ws + "/stream?streams=" + "/".join(streams)
    got, snaps = [], {}
    async with websockets.connect(url, ping_interval=None, max_queue=None, max_size=None) as ws:
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.5)
            except asyncio.TimeoutError:
                st = (await arest(sim.base, "/sim/stats"))[2]
                if st.get("done") or time.monotonic() > DEADLINE:
                    break
                continue
            got.append(raw)
            m = json.loads(raw)
            sym = m["data"].get("s")
            if sym in fetch_syms and sym not in snaps and "@depth" in m["stream"]:
                snaps[sym] = (await arest(sim.base, f"/api/v3/depth?symbol={sym}&limit=1000"))[2]
    return got, snaps


def check_signals(binary):
    """SIGINT and SIGTERM stop the simulator cleanly, also at --log-level debug
    with a client connected (libwebsockets logging on every service pass): the
    signals are taken by a thread of their own, never by a handler that could
    deadlock on the log lock."""
    print("== signals: SIGINT/SIGTERM at --log-level debug, client connected", flush=True)
    for i in range(6):
        sig = signal.SIGINT if i % 2 == 0 else signal.SIGTERM
        sim = Sim(binary, "--log-level", "debug", "--speed", "20", "--symbols", "BTCUSDT")
        ws = RawWS(sim.port, "/ws/btcusdt@depth@100ms")
        try:
            ws.frame(5 * SCALE)
        except (TimeoutError, EOFError):
            check(False, "signals: no depth frame before the signal")
        time.sleep(0.05 * i)
        sim.proc.send_signal(sig)
        try:
            rc = sim.proc.wait(10 * SCALE)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f"signals: {sig.name} #{i}: exit {rc} (None: still running after 10 s)")
        ws.close()
        sim.stop()


def check_trace(binary, tmp):
    """--trace-file records every depth frame sent: symbol, final update id,
    CLOCK_MONOTONIC ns, in send order."""
    print("== trace file (--trace-file)", flush=True)
    path = os.path.join(tmp, "trace.txt")
    sim = Sim(binary, "--speed", "20", "--symbols", "BTCUSDT,ETHUSDT", "--trace-file", path)
    ws = RawWS(sim.port, "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms")
    got = set()
    deadline = time.monotonic() + 2 * SCALE
    try:
        while time.monotonic() < deadline:
            op, payload = ws.frame(deadline - time.monotonic())
            if op == 1:
                d = json.loads(payload)["data"]
                got.add((d["s"], d["u"]))
    except (TimeoutError, EOFError):
        pass
    ws.close()
    sim.stop()
    check(len(got) >= 10, f"trace: only {len(got)} depth frames received")
    lines = open(path).read().split("\n")
    check(lines[-1] == "", "trace: the file ends with a newline")
    rows = [ln.split(" ") for ln in lines if ln]
    check(all(len(r) == 3 and r[1].isdigit() and r[2].isdigit() for r in rows),
          "trace: every line is SYMBOL U NS")
    traced = {(r[0], int(r[1])) for r in rows}
    missing = got - traced
    check(not missing, f"trace: {len(missing)} received frames not traced, e.g. {sorted(missing)[:3]}")
    ns = [int(r[2]) for r in rows]
    check(all(a <= b for a, b in zip(ns, ns[1:])), "trace: send times in order")
    check(ns and abs(ns[-1] / 1e9 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 60 * SCALE,
          "trace: times are CLOCK_MONOTONIC")


def check_replay(binary, data):
    print("== replay: cryptofeed captures", flush=True)
    path = os.path.join(data, "binance", "cryptofeed-2997020", "BINANCE-ee25be.0")
    if not check(os.path.exists(path), f"missing recording {path}"):
        return
    items = recorded([path])
    streams = ["btcusdt@depth@100ms", "ethusdt@depth@100ms", "dotusdt@depth@100ms",
               "btcusdt@kline_1m", "ethusdt@aggTrade"]
    want = [p for _, _, _, kind, _, p in items if kind == "ws" and json.loads(p)["stream"] in streams]
    with Sim(binary, "--replay", path, "--speed", "0") as sim:
        got, snaps = asyncio.run(replay_client(sim, streams, {"BTCUSDT", "ETHUSDT", "DOTUSDT"}))
        check(len(want) > 2000 and got == want,
              f"replayed frames differ from the recording ({len(got)} vs {len(want)})")
        recorded_snaps = {}
        for _, _, _, kind, url, body in items:
            if kind == "http" and "depth" in url:
                recorded_snaps[re.search(r"symbol=([A-Z0-9]+)", url).group(1)] = json.loads(body)
        for sym, snap in snaps.items():
            check(snap == recorded_snaps.get(sym), f"{sym}: served snapshot != recorded")
        check(set(snaps) == {"BTCUSDT", "ETHUSDT", "DOTUSDT"}, f"snapshots fetched: {sorted(snaps)}")
        # Book sync from the served snapshot works on the replayed frames.
        for sym in snaps:
            lid = snaps[sym]["lastUpdateId"]
            ev = [json.loads(g)["data"] for g in got if json.loads(g)["stream"] == f"{sym.lower()}@depth@100ms"]
            kept = [e for e in ev if e["u"] > lid]
            check(kept and kept[0]["U"] <= lid + 1 <= kept[0]["u"], f"{sym}: replay snapshot does not bridge")
            check(all(b["U"] == a["u"] + 1 for a, b in zip(kept, kept[1:])), f"{sym}: replay U/u gap")
        st, _, t = rest(sim.base, "/api/v3/time")
        check(st == 200 and abs(t["serverTime"] - 1617566682000) < 5000, "replay serverTime is recorded time")
        _, _, info = rest(sim.base, "/api/v3/exchangeInfo")
        check(sorted(s["symbol"] for s in info["symbols"]) == ["BTCUSDT", "DOTUSDT", "ETHUSDT"],
              "replay exchangeInfo symbols")
        st, _, body = rest(sim.base, "/api/v3/depth?symbol=BTCUSDT&limit=5")
        check(st == 200 and len(body["bids"]) == 5 and body["bids"] == recorded_snaps["BTCUSDT"]["bids"][:5],
              "replay depth limit=5")

    # Raw /ws payloads are the inner "data" text; the newer split layout (two --replay files).
    newer = os.path.join(data, "binance", "cryptofeed-ce58c2a")
    files = [os.path.join(newer, "BINANCE.http.0.0"), os.path.join(newer, "BINANCE.ws.1.0")]
    if not check(all(os.path.exists(f) for f in files), "missing newer-layout recording"):
        return
    items = recorded(files)
    want = []
    for _, _, _, kind, _, p in items:
        if kind == "ws" and json.loads(p)["stream"] == "nknusdt@depth@100ms":
            want.append(p[p.index('"data":') + 7:-1])
    with Sim(binary, "--replay", files[0], "--replay", files[1], "--speed", "0") as sim:
        async def raw_client():
            got = []
            async with websockets.connect(sim.ws + "/ws/nknusdt@depth@100ms", ping_interval=None,
                                          max_queue=None) as ws:
                snap = None
                while True:
                    try:
                        got.append(await asyncio.wait_for(ws.recv(), 1.5))
                    except asyncio.TimeoutError:
                        break
                    if snap is None:
                        snap = (await arest(sim.base, "/api/v3/depth?symbol=NKNUSDT"))[2]
            return got, snap
        got, snap = asyncio.run(raw_client())
        check(len(want) == 150 and got == want, f"raw replay of the split layout ({len(got)} vs {len(want)})")
        check(snap and snap.get("lastUpdateId") == 499869752, "split layout: NKNUSDT snapshot")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", required=True, help="path to abidance-sim")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                   "shared", "data"))
    args = ap.parse_args()
    t0 = time.monotonic()
    out = subprocess.run([args.sim, "--help"], capture_output=True, text=True)
    for flag in ("--listen", "--symbols", "--seed", "--speed", "--start-time", "--events",
                 "--replay", "--tls-cert", "--tls-key", "--ping-interval", "--pong-timeout",
                 "--fault-close-every", "--fault-gap-every", "--fault-malformed-every",
                 "--fault-out-of-range-every", "--fault-no-pong", "--fault-rest-429",
                 "--fault-rest-418", "--fault-rest-delay-ms", "--trace-file", "--version"):
        check(out.returncode == 0 and flag in out.stdout, f"--help lacks {flag}")
    out = subprocess.run([args.sim, "--version"], capture_output=True, text=True)
    check(out.returncode == 0 and out.stdout.startswith("abidance-sim "), "--version")
    out = subprocess.run([args.sim, "--speed", "fast"], capture_output=True, text=True)
    check(out.returncode == 2 and "--speed" in out.stderr, "bad --speed is a usage error")
    with tempfile.TemporaryDirectory() as tmp:
        for step in (lambda: check_model(args.sim), lambda: check_rest(args.sim),
                     lambda: check_control(args.sim), lambda: check_ping(args.sim),
                     lambda: check_faults(args.sim), lambda: check_slow_reader(args.sim),
                     lambda: check_tls(args.sim, tmp), lambda: check_signals(args.sim),
                     lambda: check_trace(args.sim, tmp),
                     lambda: check_replay(args.sim, args.data)):
            try:
                step()
            except Exception as e:  # a crash in one scenario fails it, the others still run
                import traceback
                traceback.print_exc()
                check(False, f"scenario raised {type(e).__name__}: {e}")
    print(f"{CHECKS - len(FAILURES)}/{CHECKS} checks passed in {time.monotonic() - t0:.1f} s")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

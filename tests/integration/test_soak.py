#!/usr/bin/python3
"""Soak test (issue 8, "Faults and soak"), real processes over loopback:

    abidance-sim (every stream/REST fault at random rates, one market for the
    whole run) -> abidance-ingest --bus -> abidance-query -> PostgreSQL

For --duration seconds (default 180, the CI run; `--duration 3600` is the
documented long run) the market runs while, at seeded random times in the
first ~55 % of it, the query is killed (-9) and restarted 2-3 times, the
ingest 2-3 times and PostgreSQL is stopped and started once (never two
outages at once). Alongside the well-behaved clients (a WebSocket client per
symbol applying snapshot + deltas with the continuity rule of
api/websocket.md, reconnecting after a query restart; one subscribed to
everything, as in test_e2e; a REST poller) run hostile ones:

  slow      raw WebSocket, tiny receive buffer, subscribes to every book and
            never reads; reconnects every 55 s (the server drops it at 60 s);
            the query must overflow its queue (fresh snapshot) at least once
  flood     bursts of 120 subscribe/unsubscribe requests: must get
            `rate_limited` errors and a 1008 close; reconnects, floods again
  garbage   invalid JSON, binary frames, oversized messages, unknown ops and
            channels (each must get its documented error code, connection
            kept); raw protocol garbage (unmasked and reserved-opcode frames,
            random bytes, bad handshakes) on both ports
  rest      bad parameters, unknown paths, 8 KB and 100 KB targets, 100
            headers: 4xx (or the connection closed), never 5xx

The market freezes (--events sized to the duration) 20 s before the end;
then every book (/v1/book, every WebSocket client) must equal the sim's and
every closed candle (PostgreSQL, WebSocket) the sim's kline (test_e2e's
Scenario.compare), the well-behaved clients saw no gap, neither service died
except by our own kills (pids), and the RSS (VmRSS, sampled every 2 s per
process lifetime) of the longest-lived query and ingest is flat over the
second half of its life: least-squares growth below max(--rss-max-mb,
--rss-max-pct of its size). ASan builds and valgrind runs
(ABIDANCE_UNDER_VALGRIND, where VmRSS is memcheck's) only report it. Under
scripts/valgrind.sh every wait, deadline and timeout is multiplied by
ABIDANCE_TEST_TIME_SCALE; the duration of the market is not. The query runs with
ABIDANCE_LIVE_CANDLES=500 (unless set) so its bounded in-memory candle cache
fills during warm-up instead of over ~8 minutes.

Usage: test_soak.py --sim BIN --ingest BIN --query BIN [--duration S] [--seed N]
                    [--speed F] [--keep]
Exit status 0 = all checks passed.
"""
import argparse
import asyncio
import base64
import http.client
import json
import os
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_e2e as E2E  # noqa: E402  (Scenario: processes, truth, comparisons)
from e2e_lib import (MARKET_SLOWDOWN, SCALE, UNDER_VALGRIND, WsClient, is_asan_binary, kline_row,  # noqa: E402
                     rss_kb, rss_slope, wait_until, ws_candle_row)

SYMS, INTERVALS = E2E.SYMS, E2E.INTERVALS
C = E2E.C  # Scenario reports into test_e2e's Checks
check = C.check
START = time.monotonic()


def log(*a):
    print(f"[{time.monotonic() - START:7.1f}]", *a, flush=True)


# ---------------------------------------------------------------- raw WebSocket

def ws_frame(opcode, payload, mask=True, fin=True):
    """One client frame (masked unless told otherwise)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def ws_raw_connect(port, rcvbuf=None, path="/v1/stream", timeout=5 * SCALE):
    """A raw socket after a WebSocket handshake, or None when refused."""
    s = socket.socket()
    try:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = s.recv(1)  # byte by byte: leave the frames after the head unread
            if not chunk:
                break
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            s.close()
            return None
        return s
    except OSError:
        s.close()
        return None


def drain_until_closed(s, timeout):
    """Reads until the peer closes (True) or timeout passes (False)."""
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            s.settimeout(max(0.05, end - time.monotonic()))
            if not s.recv(65536):
                return True
    except socket.timeout:
        return False
    except OSError:
        return True
    return False


# ---------------------------------------------------------------- clients

class Actor:
    """A thread that runs body() in a loop until stopped; body errors that
    are not connection trouble (expected while we kill the query) are
    problems."""

    def __init__(self, name, body, pause):
        self.name, self.body, self.pause = name, body, pause
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.stats = {}
        self.problems = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + n

    def problem(self, what):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(what)
        log(f"{self.name}: PROBLEM {what}")

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                self.body(self)
            except (OSError, EOFError, asyncio.TimeoutError, http.client.HTTPException) as e:
                self.count("conn_errors")
                self.last_error = repr(e)
            except Exception as e:
                if type(e).__module__.startswith("websockets"):
                    self.count("conn_errors")
                else:
                    self.problem(f"{type(e).__name__}: {e}")
            self.stop_ev.wait(self.pause)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(30 * SCALE)


def slow_reader(q):
    def body(a):
        s = ws_raw_connect(q.ws_port, rcvbuf=4096)
        if s is None:
            a.count("refused")
            return
        try:
            a.count("connections")
            msg = json.dumps({"op": "subscribe", "id": 1,
                              "channels": [f"book:{x}" for x in SYMS]}).encode()
            s.sendall(ws_frame(1, msg))
            # Never reads; gives up after 55 s (the server drops a silent
            # client at 60 s) or when we restarted the query (a killed server
            # goes unnoticed: its FIN waits behind the data our zero window
            # refuses).
            gen, end = q.starts, time.monotonic() + 55
            while time.monotonic() < end and q.starts == gen and not a.stop_ev.wait(0.5):
                pass
        finally:
            s.close()
    return Actor("slow", body, 0.5)


def flooder(q):
    async def burst(a):
        import websockets
        async with websockets.connect(q.ws_url, open_timeout=5 * SCALE, ping_interval=None,
                                      max_size=64 * 1024 * 1024) as ws:
            a.count("connections")
            codes = set()

            async def reader():
                try:
                    while True:
                        m = json.loads(await ws.recv())
                        if m.get("type") == "error":
                            codes.add(m.get("code"))
                except websockets.ConnectionClosed:
                    pass
            rd = asyncio.ensure_future(reader())
            try:
                for i in range(120):
                    op = "subscribe" if i % 2 == 0 else "unsubscribe"
                    ch = f"candles:{SYMS[i // 2 % len(SYMS)]}:{INTERVALS[0]}"
                    await ws.send(json.dumps({"op": op, "id": i, "channels": [ch]}))
            except websockets.ConnectionClosed:
                pass
            try:
                await asyncio.wait_for(rd, 10 * SCALE)
            except asyncio.TimeoutError:
                rd.cancel()
            a.count("bursts")
            a.count(f"close_{ws.close_code}")
            if "rate_limited" in codes:
                a.count("rate_limited")
            if ws.close_code == 1008:
                a.count("closed_1008")
            bad = codes - {"rate_limited"}
            if bad:
                a.problem(f"flood got error codes {sorted(bad)}")
            if ws.close_code not in (1008, None, 1006, 1001):
                a.problem(f"flood closed with {ws.close_code}")

    return Actor("flood", lambda a: asyncio.run(burst(a)), 3.0)


GARBAGE = [  # (message, expected error code)
    ("{not json", "bad_json"),
    (b"\x00\x01binary\xff", "bad_request"),
    ("x" * 100000, "message_too_large"),
    ('{"op":"explode","id":7}', "unknown_op"),
    ("[1,2,3]", "bad_request"),
    ('{"op":"subscribe","id":8,"channels":["book:btcusdt"]}', "bad_channel"),
    ('{"op":"subscribe","id":9,"channels":["book:NOPEUSDT"]}', "unknown_symbol"),
    ('{"op":"subscribe","id":10,"channels":["candles:BTCUSDT:1w"]}', "unknown_interval"),
    ('{"op":"subscribe","id":13,"channels":["candles:BTCUSDT:7h"]}', "bad_channel"),
    ('{"op":"subscribe","id":11,"channels":[]}', "bad_request"),
    ('{"op":"subscribe","id":12,"channels":["' + "book:A" * 700 + '"]}', "message_too_large"),
    ('{"op":"ping","op":"ping"}', "bad_json"),
]


def garbage(q, http_port):
    async def round_(a):
        import websockets
        async with websockets.connect(q.ws_url, open_timeout=5 * SCALE, ping_interval=None) as ws:
            a.count("connections")
            for msg, want in GARBAGE:
                await ws.send(msg)
                m = json.loads(await asyncio.wait_for(ws.recv(), 10 * SCALE))
                a.count("replies")
                if m.get("type") != "error" or m.get("code") != want:
                    a.problem(f"garbage {str(msg)[:40]!r}: want {want}, got {str(m)[:200]}")
                else:
                    a.count("expected_errors")
                await asyncio.sleep(0.1)  # stay under the rate limit
            # Still usable after all that.
            await ws.send('{"op":"ping","id":99}')
            m = json.loads(await asyncio.wait_for(ws.recv(), 10 * SCALE))
            if m.get("type") != "pong":
                a.problem(f"garbage: no pong after the errors: {str(m)[:200]}")
            else:
                a.count("pongs")

    def raw(a):
        rnd = random.Random()
        # Protocol violations: unmasked frame, reserved opcode, bad length,
        # a frame that never ends. The server must close (or time us out).
        for kind, frame in (("unmasked", ws_frame(1, b'{"op":"ping"}', mask=False)),
                            ("opcode3", ws_frame(3, b"??")),
                            ("len2^64", b"\x81\xff" + b"\xff" * 8 + os.urandom(4)),
                            ("cut", ws_frame(1, b"x" * 1000)[:200])):
            s = ws_raw_connect(q.ws_port)
            if s is None:
                a.count("refused")
                continue
            try:
                s.sendall(frame)
                closed = drain_until_closed(s, 3 * SCALE)
                a.count(f"raw_{kind}_" + ("closed" if closed else "open"))
            finally:
                s.close()
        # Random bytes instead of a handshake, on both ports; a handshake
        # for another path.
        for port in (q.ws_port, http_port):
            s = socket.socket()
            try:
                s.settimeout(5 * SCALE)
                s.connect(("127.0.0.1", port))
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(3000)))
                drain_until_closed(s, 3 * SCALE)
                a.count("random_bytes")
            finally:
                s.close()
        s = ws_raw_connect(q.ws_port, path="/nope")
        if s is not None:
            a.problem("WebSocket handshake on /nope accepted")
            s.close()

    def body(a):
        asyncio.run(round_(a))
        raw(a)
    return Actor("garbage", body, 2.0)


REST_BAD = [
    "/v1/book?symbol=btcusdt",
    "/v1/book?symbol=BTCUSDT&depth=-1",
    "/v1/book?symbol=BTCUSDT&depth=abc",
    "/v1/book?symbol=BTCUSDT&bogus=1",
    "/v1/book?symbol=%ZZ",
    "/v1/book",
    "/v1/candles?symbol=BTCUSDT&interval=7x",
    "/v1/candles?symbol=BTCUSDT&interval=1m&start=abc",
    "/v1/candles?symbol=BTCUSDT&interval=1m&limit=99999999999999999999999",
    "/v1/candles?symbol=BTCUSDT&interval=1m&limit=10&limit=20",
    "/v1/indicators/nope?symbol=BTCUSDT&interval=1m",
    "/v1/nope",
    "/v1/candles?symbol=" + "A" * 8000,
    "/v1/book?symbol=BTCUSDT&x=" + "%41" * 33000,
]


def rest_abuse(q):
    def req(a, path, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", q.http_port, timeout=10 * SCALE)
        try:
            c.putrequest("GET", path, skip_accept_encoding=True)
            for k, v in (headers or []):
                c.putheader(k, v)
            c.endheaders()
            r = c.getresponse()
            r.read()
            return r.status
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            return "closed"
        finally:
            c.close()

    def body(a):
        for path in REST_BAD + ["/v1/book?symbol=BTCUSDT&depth=5"]:
            st = req(a, path)
            ok = st == "closed" or 400 <= st < 500
            if path.endswith("depth=5"):
                ok = st in (200, 503)
            a.count(f"status_{st}")
            if not ok:
                a.problem(f"GET {path[:60]} -> {st}")
        st = req(a, "/v1/symbols", [(f"X-H{i}", "v" * 100) for i in range(100)])
        a.count(f"status_{st}")
        if not (st == "closed" or 400 <= st < 500):
            a.problem(f"100 headers -> {st}")
    return Actor("rest-abuse", body, 1.0)


def rest_poller(q):
    def body(a):
        for s in SYMS:
            for path in (f"/v1/book?symbol={s}&depth=20",
                         f"/v1/candles?symbol={s}&interval={INTERVALS[-1]}&limit=5"):
                c = http.client.HTTPConnection("127.0.0.1", q.http_port, timeout=10 * SCALE)
                try:
                    c.request("GET", path)
                    r = c.getresponse()
                    text = r.read()
                    a.count(f"status_{r.status}")
                    if r.status == 200:
                        json.loads(text)
                        a.count("ok")
                    elif r.status != 503:  # 503: PostgreSQL away (our stop)
                        a.problem(f"GET {path} -> {r.status} {text[:200]!r}")
                finally:
                    c.close()
    return Actor("rest-poll", body, 0.5)


# ---------------------------------------------------------------- the run

def pick_faults(rng):
    f = ["--fault-close-every", str(rng.randint(6, 20)),
         "--fault-gap-every", str(rng.randint(40, 400)),
         "--fault-malformed-every", str(rng.randint(60, 400)),
         "--fault-out-of-range-every", str(rng.randint(10, 60)),
         "--fault-rest-429", str(rng.randint(2, 6)),
         "--fault-rest-delay-ms", str(rng.choice([0, 20, 50, 100]))]
    if rng.random() < 0.5:
        f += ["--fault-rest-418", str(rng.randint(1, 2))]
    return f


def schedule(rng, market):
    """[(seconds after start, kind, outage seconds)], in the first 55 % of the
    market, one per slot: never two outages at once."""
    kinds = ["query"] * rng.choice([2, 3]) + ["ingest"] * rng.choice([2, 3]) + ["pg"]
    rng.shuffle(kinds)
    lo, hi = 0.08 * market, 0.55 * market
    slot = (hi - lo) / len(kinds)
    out = []
    for i, k in enumerate(kinds):
        outage = rng.uniform(0.5, 2.5) if k != "pg" else rng.uniform(2.0, 4.0)
        at = lo + i * slot + rng.uniform(0, max(0.0, slot - outage - 4))
        out.append((at, k, outage))
    return out


class Watch:
    """Samples VmRSS of the query and the ingest every 2 s per process
    lifetime and notices a service that died without our kill."""

    def __init__(self, sc):
        self.sc = sc
        self.samples = {}   # (name, start number) -> [(t, kB)]
        self.ours = set()   # names we are killing right now
        self.deaths = []
        self.overflows = {}  # query start number -> slow-client overflows seen
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        seen_dead = set()
        while not self.stop_ev.wait(2.0):
            for name, p in (("query", self.sc.query), ("ingest", self.sc.ingest)):
                with self.lock:
                    if name in self.ours or p.proc is None:
                        continue
                    key = (name, p.starts)
                    if p.proc.poll() is not None:
                        if key not in seen_dead:
                            seen_dead.add(key)
                            self.deaths.append(f"{name} #{p.starts} (pid {p.proc.pid}) exited "
                                               f"with {p.proc.returncode} on its own")
                            log("DEATH:", self.deaths[-1])
                        continue
                    if name == "query":
                        try:
                            m = p.metrics()
                            self.overflows[p.starts] = max(self.overflows.get(p.starts, 0), (
                                m.get('abidance_ws_overflows_total{kind="book_resnapshot"}', 0)
                                + m.get('abidance_ws_closes_total{reason="slow_consumer"}', 0)))
                        except OSError:
                            pass
                    v = rss_kb(p.proc.pid)
                    if v is not None:
                        self.samples.setdefault(key, []).append((time.monotonic(), v))

    def outage(self, name, proc, secs):
        with self.lock:
            self.ours.add(name)
        try:
            pid = proc.proc.pid
            if not proc.alive():
                check(False, f"{name} pid {pid} was already dead before our kill")
            proc.kill9()
            time.sleep(secs)
            proc.start(timeout=30)  # x SCALE (e2e_lib)
            log(f"{name}: killed pid {pid}, down {secs:.1f} s, restarted as pid {proc.proc.pid}")
        finally:
            with self.lock:
                self.ours.discard(name)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(10 * SCALE)


def rss_verdict(w, name, asan, max_mb, max_pct):
    """Logs the RSS of every lifetime of name and checks the longest-lived
    one is flat over its second half. Not checked (said in the log) in an
    ASan build (the allocator's quarantine grows) or under valgrind (VmRSS
    is memcheck's: its shadow memory and its own allocator, not the
    program's heap; memcheck's leak report covers what this check is for)."""
    lives = sorted(((k, v) for k, v in w.samples.items() if k[0] == name),
                   key=lambda kv: kv[1][-1][0] - kv[1][0][0] if kv[1] else 0)
    for k, v in sorted(w.samples.items()):
        if k[0] == name and v:
            log(f"rss {name} #{k[1]}: {len(v)} samples over {v[-1][0] - v[0][0]:.0f} s, "
                f"first {v[0][1] / 1024:.1f} MB, max {max(x for _, x in v) / 1024:.1f} MB, "
                f"last {v[-1][1] / 1024:.1f} MB")
    if not lives or not lives[-1][1]:
        check(False, f"no RSS samples of {name}")
        return
    key, v = lives[-1]
    life = v[-1][0] - v[0][0]
    half = [x for x in v if x[0] >= v[0][0] + life / 2]
    slope, span = rss_slope(half)
    growth_kb = slope * span
    size_kb = sorted(x for _, x in half)[len(half) // 2]
    limit_kb = max(max_mb * 1024, size_kb * max_pct / 100)
    skipped = ""
    if asan:
        skipped = " (ASan build: not checked)"
    elif UNDER_VALGRIND:
        skipped = " (valgrind: RSS flat after warm-up NOT CHECKED, VmRSS is memcheck's)"
    log(f"rss {name} #{key[1]} (longest-lived, {life:.0f} s): second half {len(half)} samples, "
        f"slope {slope:.2f} kB/s, growth {growth_kb / 1024:.2f} MB over {span:.0f} s, "
        f"median {size_kb / 1024:.1f} MB, limit {limit_kb / 1024:.1f} MB" + skipped)
    check(len(half) >= 5, f"{name}: only {len(half)} RSS samples in the second half of its "
          "longest life (run longer)")
    if not skipped:
        check(growth_kb < limit_kb, f"{name}: RSS grew {growth_kb / 1024:.2f} MB over the last "
              f"{span:.0f} s (limit {limit_kb / 1024:.1f} MB): not flat")


def check_sym_clients(sc, clients, n_query_kills):
    for c in clients:
        s = c.sym
        books, last, state, errors = c.view()
        check(not errors, f"{c.name}: {len(errors)} stream errors (gaps), first {errors[:3]}")
        check(c.connects >= 1 + n_query_kills,
              f"{c.name}: connected {c.connects} times for {n_query_kills} query kills")
        lid, bids, asks = sc.want[s]
        ok = wait_until(lambda: c.view()[1].get(s) == lid, 15 * SCALE, 0.2)
        books = c.view()[0]
        b = books.get(s, [{}, {}])
        check(ok and b[0] == bids and b[1] == asks,
              f"{c.name}: book at {c.view()[1].get(s)} ({len(b[0])}/{len(b[1])} levels), "
              f"sim at {lid} ({len(bids)}/{len(asks)})")
        with c.lock:
            got = {k: dict(v) for k, v in c.candles.items()}
        bad = closed = 0
        for (sym, iv), series in got.items():
            for ot, m in series.items():
                if not m["is_closed"]:
                    continue
                closed += 1
                want = sc.rows[(sym, iv)].get(ot)
                if want is None:
                    want = {r[0]: kline_row(r) for r in sc.sim.klines(sym, iv, ot)}.get(ot)
                if ws_candle_row(m) != want:
                    bad += 1
        check(closed > 0, f"{c.name}: no closed candles received")
        check(bad == 0, f"{c.name}: {bad} of {closed} closed candles differ from the sim")
        log(f"{c.name}: connects={c.connects} snapshots={c.snapshots.get(s)} "
            f"resnapshots={c.resnapshots.get(s, 0)} deltas={c.deltas.get(s)} "
            f"closed candles={closed} closes={c.closes}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", required=True)
    ap.add_argument("--ingest", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--duration", type=int, default=180,
                    help="seconds of live market (the market freezes 20 s before this)")
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock, printed")
    ap.add_argument("--speed", type=float, default=20.0, help="sim clock rate")
    ap.add_argument("--pg-port", type=int, default=54332)
    ap.add_argument("--rss-max-mb", type=float, default=8.0)
    ap.add_argument("--rss-max-pct", type=float, default=10.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    # CTest's timeout (or ^C) must still run the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 1000000007
    rng = random.Random(seed)
    market = max(60, args.duration - 20)
    # A slow run (valgrind) keeps the duration and lowers the event rate
    # instead: the services under memcheck could not keep up with it.
    speed = args.speed / MARKET_SLOWDOWN
    events = int(market * speed / 0.1)
    faults = pick_faults(rng)
    plan = schedule(rng, market)
    log(f"soak: seed {seed} (rerun with --seed {seed}), duration {args.duration} s, "
        f"market {market} s at speed {speed:g} ({events} events)")
    log("sim faults:", " ".join(faults))
    log("outages:", ", ".join(f"{k} at {t:.0f} s for {o:.1f} s" for t, k, o in plan))
    asan = is_asan_binary(args.query) or is_asan_binary(args.ingest)
    # The query keeps the newest --live-candles candles per series in
    # memory (default 10000): at this speed the 1s series would take ~8
    # minutes to fill it, growth that is warm-up, not a leak. 500 fills in
    # half a minute, so the RSS of a process is flat soon after it starts.
    os.environ.setdefault("ABIDANCE_LIVE_CANDLES", "500")

    tmp = tempfile.mkdtemp(prefix="soak-", dir="/tmp")
    os.chmod(tmp, 0o755)  # the cluster runs as postgres when we are root
    pg = sc = watch = None
    actors, sym_clients = [], []
    try:
        pg = E2E.PgCluster(os.path.join(tmp, "pg"), args.pg_port)
        sc = E2E.Scenario(args, pg, tmp, 0, "soak",
                          sim_args=faults + ["--seed", str(seed)],
                          events=events, speed=speed, frozen_ok=True, slowdown=1.0)
        sc.start()
        watch = Watch(sc)
        for s in SYMS:
            c = WsClient(sc.query.ws_url, [f"book:{s}"] + [f"candles:{s}:{iv}" for iv in INTERVALS],
                         name=f"ws-{s}")
            c.sym = s
            check(c.subscribed.wait(10 * SCALE), f"ws-{s} not subscribed")
            sym_clients.append(c)
        actors = [slow_reader(sc.query).start(), flooder(sc.query).start(),
                  garbage(sc.query, sc.query.http_port).start(),
                  rest_abuse(sc.query).start(), rest_poller(sc.query).start()]
        n_query_kills = 0
        for at, kind, outage in plan:
            wait_until(lambda: time.monotonic() - sc.t0 >= at, at + 60 * SCALE, 0.2)
            if kind == "query":
                watch.outage("query", sc.query, outage)
                n_query_kills += 1
            elif kind == "ingest":
                watch.outage("ingest", sc.ingest, outage)
            else:
                pg.pause()
                time.sleep(outage)
                pg.resume()
                log(f"PostgreSQL stopped for {outage:.1f} s and started again")
        check(sc.freeze_in() > 5, "the outages ran into the freeze (too slow a machine?)")
        last = [0.0]

        def progress():
            if time.monotonic() - last[0] >= 30:
                last[0] = time.monotonic()
                log(f"running; market freezes in {sc.freeze_in():.0f} s; "
                    + "; ".join(f"{a.name} {a.stats}" for a in actors))
            return sc.freeze_in() <= 0
        wait_until(progress, market + 60 * SCALE, 0.5)
        log("market frozen; comparing")
        sc.truth()
        sc.compare()
        check_sym_clients(sc, sym_clients, n_query_kills)
        for a in actors:
            a.stop()
        watch.stop()
        check(not watch.deaths, f"services died on their own: {watch.deaths}")
        check(sc.query.starts == 1 + n_query_kills and sc.query.alive(),
              f"query starts {sc.query.starts}, alive {sc.query.alive()}")
        # What the hostile clients got.
        st = {a.name: dict(a.stats) for a in actors}
        for a in actors:
            log(f"{a.name}: {a.stats} problems={len(a.problems)}")
            check(not a.problems, f"{a.name}: {len(a.problems)} problems, first {a.problems[:3]}")
        check(st["slow"].get("connections", 0) >= 2, "the slow reader hardly connected")
        check(st["flood"].get("rate_limited", 0) >= 1 and st["flood"].get("closed_1008", 0) >= 1,
              f"flood never rate limited and closed with 1008: {st['flood']}")
        check(st["garbage"].get("expected_errors", 0) >= len(GARBAGE),
              f"garbage client got too few expected errors: {st['garbage']}")
        check(st["garbage"].get("raw_len2^64_closed", 0) >= 1,
              f"a 2^64-byte frame length never closed the connection: {st['garbage']}")
        check(st["rest-abuse"].get("status_400", 0) >= 1, "no 400 for bad REST parameters")
        check(st["rest-poll"].get("ok", 0) >= 10, f"REST poller: {st['rest-poll']}")
        ov = sum(watch.overflows.values())
        log(f"query: slow-client overflows per lifetime {watch.overflows}; ingest: resyncs "
            f"{sc.ingest_metrics.get('abidance_ingest_book_resyncs_total')}, ws reconnects "
            f"{sc.ingest_metrics.get('abidance_ingest_ws_reconnects_total')}, 429s "
            f"{sc.ingest_metrics.get('abidance_ingest_rest_429_total')}")
        lives = [v[-1][0] - v[0][0] for k, v in watch.samples.items() if k[0] == "query" and v]
        if max(lives, default=0) >= 70:  # it takes the slow reader some 30-40 s
            check(ov > 0, "the never-reading client caused no overflow in any query process")
        rss_verdict(watch, "query", asan, args.rss_max_mb, args.rss_max_pct)
        rss_verdict(watch, "ingest", asan, args.rss_max_mb, args.rss_max_pct)
        for c in sym_clients:
            c.stop()
        sym_clients = []
        sc.finish()
        sc = None
    except Exception as e:
        check(False, f"soak: {type(e).__name__}: {e}")
        traceback.print_exc()
    finally:
        for a in actors:
            a.stop_ev.set()
        for c in sym_clients:
            c._stop = True
        if watch:
            watch.stop()
        if sc is not None:
            sc.abort()
        if pg is not None:
            pg.stop()
        if not args.keep and not C.failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}", flush=True)
    print(f"{C.count} checks, {len(C.failures)} failures, seed {seed}, "
          f"{time.monotonic() - START:.1f} s", flush=True)
    return 1 if C.failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Integration test of abidance-ingest against the real abidance-sim binary.

Every scenario starts the simulator on a free loopback port with --events N
(the market freezes after N depth updates) and --speed S, then the ingest
with --stdout pointing at it, waits until the ingest caught up with the
frozen market, stops it and checks what it published:

  - books: the book rebuilt from the published snapshots and deltas (deltas
    must be continuous: U <= id+1 <= u) equals the simulator's
    /api/v3/depth?limit=5000, level by level, and its last status is live;
  - candles: every closed candle published equals the simulator's
    /api/v3/klines row for that open time, none is published closed twice,
    and every candle that closed before the freeze was published closed;
  - the counters of /metrics show the fault was seen and survived.

Scenarios: plain; each fault flag alone (close, gap, malformed,
out-of-range, no-pong, REST 429, REST 418, REST delay) and all at once; the
24-hour rollover shrunk to a second (--max-age); the data-silence watchdog;
streams subscribed with SUBSCRIBE instead of the URL; streams split over
several connections; wss/https with a test CA made with the openssl CLI
(--ca-file); the recorder (--record) read back as a cryptofeed capture and
replayed. Every scenario also checks the sim never dropped us (pongs, the 5
messages/s limit, slow reading) and that the ingest exits cleanly (and
without sanitizer reports in an ASan build). Then every recorded capture in
shared/data/binance is replayed through `abidance-sim --replay` and the
ingest: zero gaps, no resync, and the rebuilt top of book equals the
recorded bookTicker at every matching update id.

Processes are stopped by their pid. Exit status 0 = all checks passed.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import ssl
from decimal import Decimal

FAILURES = []
CHECKS = 0
LOCK = threading.Lock()
START = time.monotonic()
# Slower runs (scripts/valgrind.sh sets ABIDANCE_TEST_TIME_SCALE) get longer
# waits and deadlines; what the scenarios do and check stays the same.
try:
    SCALE = max(1.0, float(os.environ.get("ABIDANCE_TEST_TIME_SCALE", "1")))
except ValueError:
    SCALE = 1.0
BUDGET = 170 * SCALE  # seconds for the whole file
# ...and a simulator clock MARKET_SLOWDOWN times slower (as in e2e_lib.py):
# the few seconds of market of a scenario would otherwise be over before an
# ingest under valgrind is up, and it could not keep up with the event rate.
MARKET_SLOWDOWN = max(1.0, SCALE / 2)


def check(cond, what):
    global CHECKS
    with LOCK:
        CHECKS += 1
        if not cond:
            FAILURES.append(what)
            print("FAIL:", what, flush=True)
    return cond


def http_get(url, ctx=None, timeout=5 * SCALE):
    with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
        return r.status, r.read().decode()


def sim_get(sim, path):
    """GET on the simulator, retrying its injected 429/418 answers."""
    for _ in range(200):
        try:
            st, body = http_get(sim.base + path, sim.ctx)
            return json.loads(body)
        except urllib.error.HTTPError as e:
            if e.code in (418, 429):
                time.sleep(0.05)
                continue
            raise
    raise RuntimeError("simulator keeps refusing " + path)


class Proc:
    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Sim(Proc):
    def __init__(self, binary, args, tls=False, ctx=None):
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"^listening on 127\.0\.0\.1:([0-9]+)$", line.strip())
        if not m:
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.port = int(m.group(1))
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.ws = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}"
        self.ctx = ctx


class Ingest(Proc):
    def __init__(self, binary, sim, args, tmp, name):
        self.out_path = os.path.join(tmp, name + ".out")
        self.err_path = os.path.join(tmp, name + ".err")
        self.out = open(self.out_path, "w")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--ws-url", sim.ws, "--rest-url", sim.base, "--stdout",
             "--health", "127.0.0.1:0", "--log-level", os.environ.get("INGEST_LOG_LEVEL", "info"), *args],
            stdout=self.out, stderr=self.err)
        self.health = None
        deadline = time.monotonic() + 5 * SCALE
        while time.monotonic() < deadline and self.health is None:
            with open(self.err_path) as f:
                m = re.search(r"health: listening on 127\.0\.0\.1:([0-9]+)", f.read())
            if m:
                self.health = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        if self.health is None:
            self.stop()
            raise RuntimeError("ingest did not start: " + open(self.err_path).read()[-2000:])

    def lines(self):
        with open(self.out_path) as f:
            data = f.read()
        out = []
        for line in data.split("\n"):
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line being written right now
        return out

    def metrics(self):
        _, text = http_get(f"http://127.0.0.1:{self.health}/metrics")
        vals = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                vals[k] = float(v)
        return vals

    def stop(self):
        if self.out.closed:
            return
        super().stop()
        self.out.close()
        self.err.close()
        # A clean SIGTERM exit, and nothing from the sanitizers in an ASan build.
        check(self.proc.returncode == 0,
              f"{os.path.basename(self.out_path)}: ingest exited with {self.proc.returncode}")
        with open(self.err_path) as f:
            err = f.read()
        check("AddressSanitizer" not in err and "runtime error" not in err
              and "LeakSanitizer" not in err,
              f"{os.path.basename(self.err_path)}: sanitizer report")


def levels(pairs):
    return {Decimal(p): Decimal(q) for p, q in pairs}


class Rebuild:
    """Books rebuilt from the published messages, with a continuity check."""

    def __init__(self):
        self.books = {}
        self.ids = {}
        self.gaps = []
        self.snapshots = {}
        self.status = {}
        self.tops = {}  # symbol -> {last_update_id: (bid, bidq, ask, askq)}

    def feed(self, msg, keep_tops=False):
        t = msg["type"]
        s = msg.get("symbol")
        if t == "book_snapshot":
            self.books[s] = [levels(msg["bids"]), levels(msg["asks"])]
            self.ids[s] = msg["last_update_id"]
            self.snapshots[s] = self.snapshots.get(s, 0) + 1
        elif t == "book_delta":
            if s not in self.books:
                self.gaps.append(f"{s}: delta before any snapshot")
                return
            U, u = msg["first_update_id"], msg["last_update_id"]
            if not (U <= self.ids[s] + 1 <= u):
                self.gaps.append(f"{s}: delta {U}..{u} after {self.ids[s]}")
            for side, key in ((0, "bids"), (1, "asks")):
                for p, q in msg[key]:
                    p, q = Decimal(p), Decimal(q)
                    if q == 0:
                        self.books[s][side].pop(p, None)
                    else:
                        self.books[s][side][p] = q
            self.ids[s] = u
        elif t == "status":
            self.status[s] = msg
        if keep_tops and t in ("book_snapshot", "book_delta"):
            bids, asks = self.books[s]
            top = None
            if bids and asks:
                b = max(bids)
                a = min(asks)
                top = (b, bids[b], a, asks[a])
            self.tops.setdefault(s, {})[self.ids[s]] = top


def sim_book(sim, sym):
    d = sim_get(sim, f"/api/v3/depth?symbol={sym}&limit=5000")
    return d["lastUpdateId"], levels(d["bids"]), levels(d["asks"])


def sim_klines(sim, sym, iv, start):
    rows = []
    while True:
        page = sim_get(sim, f"/api/v3/klines?symbol={sym}&interval={iv}&startTime={start}&limit=1000")
        rows += page
        if len(page) < 1000:
            return rows
        start = page[-1][0] + 1


def candle_row(c):
    return [c["open_time"], Decimal(c["open"]), Decimal(c["high"]), Decimal(c["low"]),
            Decimal(c["close"]), Decimal(c["volume"]), c["close_time"], Decimal(c["quote_volume"]),
            c["num_trades"], Decimal(c["taker_buy_volume"]), Decimal(c["taker_buy_quote_volume"])]


def rest_row(r):
    return [r[0], Decimal(r[1]), Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), Decimal(r[5]), r[6],
            Decimal(r[7]), r[8], Decimal(r[9]), Decimal(r[10])]


IV_MS = {"1s": 1000, "1m": 60000, "3m": 180000, "5m": 300000}
SYMS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def run_model(name, args, tmp, sim_args=(), ingest_args=(), events=600, speed=30,
              intervals=("1s", "1m"), tls=None, expect=None, record=False, depth_limit=1000,
              linger=0.0):
    """One model scenario; expect(metrics, rebuild, lines) adds scenario checks."""
    print(f"== {name}", flush=True)
    speed = speed / MARKET_SLOWDOWN
    start_time = (int(time.time() * 1000) // 60000) * 60000
    ctx = None
    sargs = ["--symbols", ",".join(SYMS), "--seed", "7", "--speed", str(speed),
             "--events", str(events), "--start-time", str(start_time),
             "--ping-interval", f"{int(300 * SCALE)}ms", "--pong-timeout", f"{int(1000 * SCALE)}ms",
             *sim_args]
    iargs = ["--symbols", ",".join(SYMS), "--intervals", ",".join(intervals),
             "--depth-limit", str(depth_limit), "--backfill", "1h", "--close-grace", "2s",
             *ingest_args]
    if tls:
        ctx = ssl.create_default_context(cafile=tls["ca"])
        sargs += ["--tls-cert", tls["cert"], "--tls-key", tls["key"]]
        iargs += ["--ca-file", tls["ca"]]
    rec_path = os.path.join(tmp, name + ".rec")
    if record:
        iargs += ["--record", rec_path]
    sim = Sim(args.sim, sargs, tls=bool(tls), ctx=ctx)
    ing = None
    try:
        ing = Ingest(args.ingest, sim, iargs, tmp, name)
        freeze_real = events * 0.1 / speed
        time.sleep(freeze_real + 0.3 + linger)
        # A slow run (valgrind) may not have reached the freeze yet: the
        # truth is the frozen market, so wait for the simulator to say so.
        deadline = time.monotonic() + 30 * SCALE
        while not all(x["frozen"] for x in sim_get(sim, "/sim/stats")["symbols"]):
            if time.monotonic() > deadline:
                raise RuntimeError("the simulator's market never froze")
            time.sleep(0.1)
        # The frozen market: books and closed candles the ingest must reach.
        want = {s: sim_book(sim, s) for s in SYMS}
        freeze_time = start_time + events * 100
        sim_time = sim_get(sim, "/api/v3/time")["serverTime"]
        sim_rows, must = {}, {}
        for s in SYMS:
            for iv in intervals:
                rows = {r[0]: r for r in sim_klines(sim, s, iv, start_time)}
                sim_rows[(s, iv)] = rows
                must[(s, iv)] = [ot for ot, r in rows.items()
                                 if r[6] + 1 <= freeze_time and r[6] < sim_time]

        def closed_of(lines):
            return {(m["symbol"], m["interval"], m["open_time"]) for m in lines
                    if m["type"] == "candle" and m["closed"]}

        deadline = time.monotonic() + 25 * SCALE
        live_at_end = {}
        while time.monotonic() < deadline:
            lines = ing.lines()
            rb = Rebuild()
            for msg in lines:
                rb.feed(msg)
            got = closed_of(lines)
            live_at_end = {s: rb.ids.get(s) == want[s][0]
                           and rb.status.get(s, {}).get("book") == "live" for s in SYMS}
            if all(live_at_end.values()) and all(
                    (k[0], k[1], ot) in got for k, ots in must.items() for ot in ots):
                break
            time.sleep(0.1)
        metrics = ing.metrics()
        st, body = http_get(f"http://127.0.0.1:{ing.health}/healthz")
        health = json.loads(body)
        check(st == 200 and health.get("status") == "ok"
              and health["books"]["total"] == len(SYMS), f"{name}: /healthz {st} {body}")
        try:
            http_get(f"http://127.0.0.1:{ing.health}/nope")
            check(False, f"{name}: /nope answered 200")
        except urllib.error.HTTPError as e:
            check(e.code == 404, f"{name}: /nope answered {e.code}")
        stats = sim_get(sim, "/sim/stats")
        ing.stop()
        # The sim pings every 300 ms and drops a client that does not pong
        # within 1 s or sends more than 5 messages a second. (Interval and
        # timeout are x SCALE: an ingest under valgrind stalls, then answers
        # the pings it missed in one burst.)
        check(stats["droppedPongTimeout"] == 0, f"{name}: the sim dropped us for a missing pong")
        check(stats["droppedRateLimit"] == 0, f"{name}: the sim dropped us for the message rate")
        check(stats["droppedQueueOverflow"] == 0, f"{name}: we read too slowly")
        lines = ing.lines()
        rb = Rebuild()
        for msg in lines:
            rb.feed(msg)
        check(not rb.gaps, f"{name}: published deltas not continuous: {rb.gaps[:3]}")
        for s in SYMS:
            lid, bids, asks = want[s]
            check(rb.ids.get(s) == lid, f"{name}: {s} book at {rb.ids.get(s)}, sim at {lid}")
            book = rb.books.get(s, [{}, {}])
            check(book[0] == bids, f"{name}: {s} bids differ from the sim "
                  f"({len(book[0])} vs {len(bids)} levels)")
            check(book[1] == asks, f"{name}: {s} asks differ from the sim")
            check(live_at_end.get(s), f"{name}: {s} book never live at the sim's last update id")
        # Candles.
        closed = {}
        dups = 0
        n_open = 0
        for m in lines:
            if m["type"] != "candle":
                continue
            if not m["closed"]:
                n_open += 1
                continue
            key = (m["symbol"], m["interval"], m["open_time"])
            if key in closed:
                dups += 1
            closed[key] = m
        check(dups == 0, f"{name}: {dups} closed candles published twice")
        check(n_open > 0, f"{name}: no open candle updates published")
        for s in SYMS:
            for iv in intervals:
                rows = sim_rows[(s, iv)]
                mine = {k[2]: v for k, v in closed.items() if k[0] == s and k[1] == iv}
                for ot, c in mine.items():
                    r = rows.get(ot)
                    if r is None:  # closed from REST after our first look
                        r = {x[0]: x for x in sim_klines(sim, s, iv, ot)}.get(ot)
                    if not check(r is not None, f"{name}: {s} {iv} {ot} published closed, not in sim"):
                        continue
                    check(candle_row(c) == rest_row(r),
                          f"{name}: {s} {iv} {ot} differs from /api/v3/klines: {c} vs {r}")
                missing = [ot for ot in must[(s, iv)] if ot not in mine]
                check(not missing, f"{name}: {s} {iv}: {len(missing)} of {len(must[(s, iv)])} "
                      f"closed candles missing, first {missing[:3]}")
        check(metrics.get("abidance_ingest_publish_failures_total", 1) == 0,
              f"{name}: publish failures")
        if expect:
            expect(metrics, rb, lines)
        if record:
            check_record(name, rec_path)
        print(f"   {name}: {len(lines)} messages, {len(closed)} closed candles, "
              f"resyncs={metrics.get('abidance_ingest_book_resyncs_total')}, "
              f"reconnects={metrics.get('abidance_ingest_ws_reconnects_total')}", flush=True)
    finally:
        if ing:
            ing.stop()
        sim.stop()


def check_record(name, path):
    """The --record file is a cryptofeed raw capture: every line parses."""
    kinds = {"ws": 0, "http": 0, "connect": 0}
    bad = 0
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("http"):
                url, rest = line.split(" -> ", 1)
                ts, body = rest.split(": ", 1)
                float(ts)
                kinds["http"] += 1
            elif line.startswith("ws"):
                url, ts = line.rsplit(" <-> ", 1)
                float(ts)
                kinds["connect"] += 1
            elif line[:1].isdigit():
                ts, payload = line.split(": ", 1)
                float(ts)
                try:
                    json.loads(payload)
                    kinds["ws"] += 1
                except ValueError:
                    bad += 1
            else:
                bad += 1
    check(kinds["ws"] > 100 and kinds["http"] > 0 and kinds["connect"] > 0 and bad == 0,
          f"{name}: record file {kinds} bad={bad}")


def expect_counter(name, key, minimum=1):
    def f(metrics, rb, lines):
        v = metrics.get(key, 0)
        check(v >= minimum, f"{name}: {key} = {v}, expected >= {minimum}")
    return f


def expect_invalid(name, reasons):
    def f(metrics, rb, lines):
        v = sum(metrics.get(f'abidance_ingest_invalid_messages_total{{reason="{r}"}}', 0)
                for r in reasons)
        check(v >= 1, f"{name}: no invalid messages counted as {reasons}")
    return f


def expect_all(*fs):
    def f(metrics, rb, lines):
        for g in fs:
            g(metrics, rb, lines)
    return f


def expect_quiet(name):
    def f(metrics, rb, lines):
        check(metrics.get("abidance_ingest_ws_reconnects_total") == 0,
              f"{name}: unexpected reconnects (pings not answered?)")
        check(metrics.get("abidance_ingest_book_resyncs_total") == 0, f"{name}: unexpected resyncs")
        inv = sum(v for k, v in metrics.items() if k.startswith("abidance_ingest_invalid_messages_total"))
        check(inv == 0, f"{name}: {inv} invalid messages")
    return f


def make_ca(tmp):
    ca_key, ca = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.pem")
    key, csr, cert = (os.path.join(tmp, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(tmp, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    q = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
                    "-out", ca, "-days", "2", "-subj", "/CN=abidance test CA"], **q)
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=127.0.0.1"], **q)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext], **q)
    return {"ca": ca, "cert": cert, "key": key}


# ---- replay of the recorded captures ----

def capture_records(paths):
    """(ts, kind, payload) of the capture files, merged by receive time."""
    recs = []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("http"):
                    url, rest = line.split(" -> ", 1)
                    ts, body = rest.split(": ", 1)
                    recs.append((float(ts), "http", url, body))
                elif line[:1].isdigit():
                    ts, payload = line.split(": ", 1)
                    recs.append((float(ts), "ws", None, payload))
    recs.sort(key=lambda r: r[0])
    return recs


def capture_files(cap_dir):
    """The files of one capture to replay (BINANCE.0 is only exchangeInfo)."""
    files = sorted(os.path.join(cap_dir, f) for f in os.listdir(cap_dir))
    return [f for f in files if os.path.basename(f) != "BINANCE.0"]


def replay_one(args, tmp, name, ws_files):
    print(f"== {name}", flush=True)
    if not check(ws_files, f"{name}: no capture files"):
        return
    recs = capture_records(ws_files)
    depth_syms, last_u, tickers = set(), {}, {}
    for ts, kind, url, payload in recs:
        if kind != "ws":
            continue
        msg = json.loads(payload)
        stream, data = msg["stream"], msg["data"]
        sym = stream.split("@")[0].upper()
        if "@depth" in stream and data.get("e") == "depthUpdate":
            depth_syms.add(sym)
            last_u[sym] = max(last_u.get(sym, 0), data["u"])
        elif stream.endswith("@bookTicker"):
            tickers.setdefault(sym, []).append(data)
    syms = sorted(depth_syms)
    sim_args = []
    for f in ws_files:
        sim_args += ["--replay", f]
    # At the recorded pace scaled to about 5 s, so most events arrive after
    # the ingest synced (as fast as possible, nearly all would be buffered).
    span = recs[-1][0] - recs[0][0] if recs else 0
    speed = max(1.0, span / (5.0 * MARKET_SLOWDOWN))
    # (the sim holds at the recorded snapshot until the ingest fetched it:
    # at most 2 s by default, longer in a slow run)
    sim = Sim(args.sim, [*sim_args, "--speed", f"{speed:.3f}",
                         "--replay-hold", f"{int(2000 * SCALE)}ms"])
    ing = None
    try:
        ing = Ingest(args.ingest, sim, ["--symbols", ",".join(syms), "--intervals", "1m",
                                        "--depth-limit", "1000"], tmp, name)
        deadline = time.monotonic() + span / speed + 15 * SCALE
        rb = Rebuild()
        while time.monotonic() < deadline:
            rb = Rebuild()
            for msg in ing.lines():
                rb.feed(msg)
            if all(rb.ids.get(s, 0) >= last_u[s] for s in syms):
                break
            time.sleep(0.2)
        metrics = ing.metrics()
        ing.stop()
        rb = Rebuild()
        for msg in ing.lines():
            rb.feed(msg, keep_tops=True)
        check(not rb.gaps, f"{name}: published deltas not continuous: {rb.gaps[:3]}")
        for s in syms:
            check(rb.ids.get(s, 0) >= last_u[s],
                  f"{name}: {s} book reached {rb.ids.get(s)}, capture ends at {last_u[s]}")
            check(rb.snapshots.get(s) == 1, f"{name}: {s} synced {rb.snapshots.get(s)} times")
            bids, asks = rb.books.get(s, [{}, {}])
            if bids and asks:
                check(max(bids) < min(asks), f"{name}: {s} book crossed at the end")
        check(metrics.get("abidance_ingest_book_resyncs_total") == 0, f"{name}: resyncs")
        depth_invalid = sum(v for k, v in metrics.items()
                            if k.startswith("abidance_ingest_invalid_messages_total"))
        check(depth_invalid == 0, f"{name}: {depth_invalid} invalid messages")
        matched = mismatched = 0
        for s, ts in tickers.items():
            tops = rb.tops.get(s, {})
            for t in ts:
                top = tops.get(t["u"], "absent")
                if top == "absent":
                    continue
                want = (Decimal(t["b"]), Decimal(t["B"]), Decimal(t["a"]), Decimal(t["A"]))
                if top == want:
                    matched += 1
                else:
                    mismatched += 1
                    if mismatched <= 3:
                        print(f"   {s} u={t['u']}: book {top} ticker {want}", flush=True)
        check(mismatched == 0, f"{name}: {mismatched} bookTicker mismatches ({matched} matched)")
        if tickers:
            check(matched > 0, f"{name}: no bookTicker matched an applied update id")
        print(f"   {name}: symbols={len(syms)} bookTicker matches={matched}", flush=True)
    finally:
        if ing:
            ing.stop()
        sim.stop()


def check_backfill(args, tmp):
    """A backfill of an hour of 1m candles reports its progress in the log and /metrics."""
    print("== backfill", flush=True)
    name = "backfill"
    start_time = (int(time.time() * 1000) // 60000) * 60000
    # 600x: 5 real seconds = 50 minutes of market history before the ingest
    # starts (in a slow run the same history, at a pace the sim keeps up with).
    sim = Sim(args.sim, ["--symbols", ",".join(SYMS), "--seed", "7",
                         "--speed", str(600 / MARKET_SLOWDOWN),
                         "--start-time", str(start_time),
                         "--ping-interval", f"{int(300 * SCALE)}ms",
                         "--pong-timeout", f"{int(1000 * SCALE)}ms"])
    ing = None
    try:
        time.sleep(5 * MARKET_SLOWDOWN)
        # A 2-minute grace (200 ms real) keeps later closes on the stream
        # (x SCALE: an ingest under valgrind reads its stream late).
        grace_m = int(2 * SCALE)
        ing = Ingest(args.ingest, sim, ["--symbols", ",".join(SYMS), "--intervals", "1m",
                                        "--backfill", "2h",
                                        "--close-grace", f"{grace_m}m"], tmp, name)
        started = re.compile(r"backfill started symbol=(\w+) interval=1m from=(-?\d+) "
                             r"to=(-?\d+) candles=(\d+)")
        finished = re.compile(r"backfill finished candles=(\d+) series=(\d+) secs=")
        deadline = time.monotonic() + 10 * SCALE
        err, met = "", {}
        while time.monotonic() < deadline:
            with open(ing.err_path) as f:
                err = f.read()
            met = ing.metrics()
            todo = met.get("abidance_ingest_backfill_candles_todo", 0)
            if finished.search(err) and todo > 0 and \
                    met.get("abidance_ingest_backfill_candles_done") == todo:
                break
            time.sleep(0.2)
        starts = {m.group(1): m for m in started.finditer(err)}
        check(sorted(starts) == sorted(SYMS), f"{name}: backfill started per symbol: {sorted(starts)}")
        total = 0
        for sym, m in starts.items():
            frm, to, n = int(m.group(2)), int(m.group(3)), int(m.group(4))
            total += n
            # Two hours back from the ingest's start, one candle per minute,
            # less the close grace (newer candles close on the stream).
            check(110 - (grace_m - 2) <= n <= 121 and n == (to - frm) // 60000 + 1,
                  f"{name}: {sym} candles={n} from={frm} to={to}")
            check(frm < start_time < to, f"{name}: {sym} range {frm}..{to} spans the sim start")
        fm = finished.search(err)
        check(fm is not None and int(fm.group(1)) == total and int(fm.group(2)) == len(SYMS),
              f"{name}: 'backfill finished' line: {fm.group(0) if fm else None}, total {total}")
        check(re.search(r"backfill progress done=(\d+) todo=\1 pct=100\.0 rate=[0-9.]+ eta_s=0",
                        err) is not None, f"{name}: final progress line")
        todo = met.get("abidance_ingest_backfill_candles_todo", -1)
        check(todo == total and met.get("abidance_ingest_backfill_candles_done") == todo,
              f"{name}: /metrics todo={todo} done={met.get('abidance_ingest_backfill_candles_done')}"
              f" want {total}")
        check(met.get("abidance_ingest_backfill_eta_seconds") == 0
              and met.get("abidance_ingest_backfill_rate", 0) > 0
              and met.get("abidance_ingest_backfill_series_active") == 0,
              f"{name}: eta/rate/active gauges")
        # The history itself came from REST: ~50 closed minutes per symbol.
        check(met.get("abidance_ingest_candles_backfilled_total", 0) >= 40 * len(SYMS),
              f"{name}: candles_backfilled_total={met.get('abidance_ingest_candles_backfilled_total')}")
    finally:
        if ing:
            ing.stop()
        sim.stop()


def check_api_key(args, tmp):
    """--credentials: the key goes out as X-MBX-APIKEY on REST and never into the logs."""
    import http.server
    print("== api-key", flush=True)
    cred = os.path.join(os.path.dirname(os.path.dirname(args.ingest)), "cred", "abidance-cred")
    if not check(os.path.exists(cred), f"api-key: {cred} not built"):
        return
    env = dict(os.environ)
    env["CREDENTIAL_KEY"] = subprocess.run([cred, "keygen"], capture_output=True, text=True,
                                           check=True).stdout.strip()
    env["ABIDANCE_API_KEY"] = "testKeyAbc123"
    env["ABIDANCE_API_SECRET"] = "secretNeverSent456"
    path = os.path.join(tmp, "cred.bin")
    subprocess.run([cred, "encrypt", "--out", path], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("X-MBX-APIKEY")))
            body = b'{"serverTime":1700000000000}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    err_path = os.path.join(tmp, "api-key.err")
    secrets = ["testKeyAbc123", "secretNeverSent456", env["CREDENTIAL_KEY"]]
    hs = socket.socket()
    hs.bind(("127.0.0.1", 0))
    health_port = hs.getsockname()[1]
    hs.close()

    # the ingest gets the key only through the encrypted file
    env.pop("ABIDANCE_API_KEY")
    env.pop("ABIDANCE_API_SECRET")

    def run_ingest(stop_signal):
        with open(err_path, "w") as err:
            p = subprocess.Popen([args.ingest, "--symbols", "BTCUSDT",
                                  "--ws-url", "ws://127.0.0.1:1",
                                  "--rest-url", f"http://127.0.0.1:{srv.server_address[1]}",
                                  "--credentials", path,
                                  "--health", f"127.0.0.1:{health_port}"],
                                 env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 5 * SCALE
            while not seen and time.monotonic() < deadline:
                time.sleep(0.05)
            metrics = ""
            deadline = time.monotonic() + 5 * SCALE
            while not metrics and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{health_port}/metrics", timeout=2 * SCALE) as r:
                        metrics = r.read().decode()
                except OSError:
                    time.sleep(0.1)
            # what the process list and /proc show of the running process
            with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            with open(f"/proc/{p.pid}/environ", "rb") as f:
                environ = f.read().decode(errors="replace")
            p.send_signal(stop_signal)
            p.wait(10 * SCALE)
        return p, metrics, cmdline, environ, open(err_path).read()

    p, metrics, cmdline, environ, log = run_ingest(signal.SIGTERM)
    check(seen and all(k == "testKeyAbc123" for _, k in seen),
          f"api-key: X-MBX-APIKEY not sent: {seen[:2]}")
    check(p.returncode == 0, f"api-key: exit {p.returncode}")
    check("abidance_ingest" in metrics, "api-key: /metrics not read")
    # Under scripts/valgrind.sh the pid is valgrind running the real binary:
    # /proc/<pid>/environ is valgrind's own copy of the environment it was
    # started with (CREDENTIAL_KEY verbatim, in valgrind's memory); the
    # program only ever sees and blanks its private copy, and no program can
    # hide the launcher's. Recognised by the variable valgrind.sh exports AND
    # argv[0] being valgrind's; the cmdline check still runs (no secret is
    # ever on the command line).
    argv0 = os.path.basename(cmdline.split("\0", 1)[0])
    under_valgrind = bool(os.environ.get("ABIDANCE_UNDER_VALGRIND")) and \
        argv0.startswith(("valgrind", "memcheck"))
    shown = [("log", log), ("/metrics", metrics), ("cmdline", cmdline)]
    if under_valgrind:
        print("   api-key: valgrind: /proc/<pid>/environ is valgrind's copy of the launch "
              "environment: the check that CREDENTIAL_KEY was blanked there is NOT made "
              "in this run", flush=True)
    else:
        shown.append(("environ", environ))
    for what, text in shown:
        check(not any(s in text for s in secrets), f"api-key: a secret appears in {what}")
    # crash output: a fatal signal must print no secret and leave no core dump
    seen.clear()
    p, _, _, _, log = run_ingest(signal.SIGSEGV)
    # (under ASan its handler reports the SEGV and aborts: -SIGABRT)
    check(p.returncode in (-signal.SIGSEGV, -signal.SIGABRT), f"api-key: SIGSEGV exit {p.returncode}")
    check(not any(s in log for s in secrets), "api-key: a secret appears in crash output")
    check(not [f for f in os.listdir(tmp) if f.startswith("core")], "api-key: core file written")
    srv.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingest", required=True)
    ap.add_argument("--sim", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--only", default="", help="run scenarios whose name contains this")
    global args
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ingest-it-")
    tls = make_ca(tmp)
    all_faults = ["--fault-close-every", "4", "--fault-gap-every", "37",
                  "--fault-malformed-every", "97", "--fault-out-of-range-every", "11",
                  "--fault-rest-429", "20", "--fault-rest-418", "5", "--fault-rest-delay-ms", "100"]
    scenarios = [
        ("plain", dict(expect=expect_quiet("plain"), record=True, depth_limit=5000)),
        ("close", dict(sim_args=["--fault-close-every", "4"], events=1500,
                       expect=expect_counter("close", "abidance_ingest_ws_reconnects_total"))),
        ("gap", dict(sim_args=["--fault-gap-every", "37"],
                     expect=expect_counter("gap", "abidance_ingest_book_resyncs_total"))),
        ("malformed", dict(sim_args=["--fault-malformed-every", "97"],
                           expect=expect_invalid("malformed", ("json", "truncated")))),
        ("out-of-range", dict(sim_args=["--fault-out-of-range-every", "11"],
                              expect=expect_invalid("out-of-range", ("inconsistent", "out_of_range")))),
        ("no-pong", dict(sim_args=["--fault-no-pong"])),
        ("rest-429", dict(sim_args=["--fault-rest-429", "40"],
                          expect=expect_counter("rest-429", "abidance_ingest_rest_429_total"))),
        ("rest-418", dict(sim_args=["--fault-rest-418", "25"],
                          expect=expect_counter("rest-418", "abidance_ingest_rest_418_total"))),
        ("rest-delay", dict(sim_args=["--fault-rest-delay-ms", "400"])),
        # Every resync costs snapshot weight and the sim's weight window is a
        # real minute, longer than the scenario: lift the budget here.
        ("all-faults", dict(sim_args=all_faults, events=1500,
                            ingest_args=["--weight-limit", "100000"],
                            expect=expect_all(
                                expect_counter("all", "abidance_ingest_ws_reconnects_total"),
                                expect_counter("all", "abidance_ingest_book_resyncs_total")))),
        ("rollover", dict(ingest_args=["--max-age", "1s", "--switch-timeout", "3s"], events=1200,
                          expect=expect_all(
                              expect_counter("rollover", "abidance_ingest_ws_rollovers_total", 2),
                              expect_quiet("rollover")))),
        ("silence", dict(ingest_args=["--silence-timeout", "1s"], linger=2.0,
                         expect=expect_counter("silence", "abidance_ingest_ws_silence_timeouts_total"))),
        ("subscribe", dict(ingest_args=["--url-streams-max", "1"],
                           expect=expect_all(
                               expect_counter("subscribe", "abidance_ingest_ws_control_messages_total"),
                               expect_quiet("subscribe")))),
        ("split", dict(ingest_args=["--streams-per-conn", "3"],
                       expect=expect_quiet("split"))),
        ("tls", dict(tls=tls, expect=expect_quiet("tls"))),
    ]
    for name, kw in scenarios:
        if args.only and args.only not in name:
            continue
        if time.monotonic() - START > BUDGET:
            check(False, f"time budget exhausted before {name}")
            break
        try:
            run_model(name, args, tmp, **kw)
        except Exception as e:  # a crash of one scenario is a failure, not an abort
            check(False, f"{name}: {type(e).__name__}: {e}")
    if not args.only or args.only in "backfill":
        try:
            check_backfill(args, tmp)
        except Exception as e:
            check(False, f"backfill: {type(e).__name__}: {e}")
    if not args.only or args.only in "api-key":
        try:
            check_api_key(args, tmp)
        except Exception as e:
            check(False, f"api-key: {type(e).__name__}: {e}")
    # The plain scenario's --record file, replayed: the recorder writes what
    # the simulator's replay reads, and the ingest syncs from it again.
    rec = os.path.join(tmp, "plain.rec")
    if (not args.only or args.only in "replay-record") and os.path.exists(rec):
        try:
            replay_one(args, tmp, "replay-record", [rec])
        except Exception as e:
            check(False, f"replay-record: {type(e).__name__}: {e}")
    caps = sorted(d for d in os.listdir(args.data) if d.startswith("cryptofeed-"))
    check(len(caps) == 4, f"expected 4 cryptofeed captures in {args.data}, found {caps}")
    for d in caps:
        name = "replay-" + d
        if args.only and args.only not in name:
            continue
        if time.monotonic() - START > BUDGET:
            check(False, f"time budget exhausted before {name}")
            break
        try:
            replay_one(args, tmp, name, capture_files(os.path.join(args.data, d)))
        except Exception as e:
            check(False, f"{name}: {type(e).__name__}: {e}")
    took = time.monotonic() - START
    print(f"{CHECKS} checks, {len(FAILURES)} failures, {took:.1f} s", flush=True)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

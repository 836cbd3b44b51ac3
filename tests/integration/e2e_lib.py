"""Helpers for the end-to-end tests (test_e2e.py): real processes over
loopback (abidance-sim -> abidance-ingest -> bus -> abidance-query ->
PostgreSQL, REST and WebSocket clients).

  PgCluster   a private throwaway cluster (pg-fixture.sh) the test may stop
              and start; one database per scenario; psql -At for queries
  Sim         the simulator on a free port ("listening on ..." on stdout)
  Query       abidance-query on fixed free ports (so a restart keeps them and
              clients reconnect to the same address); kill -9 and restart
  Ingest      abidance-ingest with --bus; kill -9 and restart; /metrics
  WsClient    a python3-websockets client in its own thread: subscribes,
              applies book snapshots and deltas with the continuity rule of
              api/websocket.md, keeps candles by open time, reconnects
  truth       the simulator's book and klines, compared exactly (Decimal)

Processes are stopped by their pid only. Everything polls with deadlines.
"""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg-fixture.sh")
IV_MS = {"1s": 1000, "1m": 60000, "3m": 180000, "5m": 300000}
# Slower runs (scripts/valgrind.sh sets ABIDANCE_TEST_TIME_SCALE) get longer
# waits, deadlines and timeouts: every time limit of these helpers, and of
# the tests that import SCALE, is multiplied by it.
try:
    SCALE = max(1.0, float(os.environ.get("ABIDANCE_TEST_TIME_SCALE", "1")))
except ValueError:
    SCALE = 1.0
# The simulator's clock runs MARKET_SLOWDOWN times slower in a slow run: a
# market of a few real seconds would otherwise freeze before the services
# under valgrind are even up (they take ~5 s to start), and they could not
# keep up with the event rate. Half the time scale: the whole market is
# still checked, and the valgrind run stays within about an hour.
MARKET_SLOWDOWN = max(1.0, SCALE / 2)
# Set by scripts/valgrind.sh: every service runs under memcheck, so what
# /proc shows of a pid (RSS, cmdline) is valgrind's, not the program's.
UNDER_VALGRIND = os.environ.get("ABIDANCE_UNDER_VALGRIND", "") not in ("", "0")


# ---------------------------------------------------------------- checks

class Checks:
    def __init__(self):
        self.failures = []
        self.count = 0
        self.lock = threading.Lock()

    def check(self, cond, what):
        with self.lock:
            self.count += 1
            if not cond:
                self.failures.append(what)
                print("FAIL:", what, flush=True)
        return cond


def wait_until(pred, timeout, step=0.1):
    """Polls pred() until it returns a true value or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=5 * SCALE):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def http_json(url, timeout=5 * SCALE):
    return json.loads(http_get(url, timeout)[1])


def parse_metrics(text):
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            try:
                vals[k] = float(v)
            except ValueError:
                pass
    return vals


def canon(text):
    """Canonical decimal string: no exponent, no trailing zeros."""
    d = Decimal(text)
    if d == 0:
        return "0"
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def levels(pairs):
    return {Decimal(p): Decimal(q) for p, q in pairs}


# ---------------------------------------------------------------- PostgreSQL

class PgCluster:
    """A private cluster in dir (Unix socket only), via pg-fixture.sh."""

    def __init__(self, dir, port):
        self.dir, self.port = dir, port
        out = subprocess.run([FIXTURE, "start", dir, str(port)], check=True,
                             capture_output=True, text=True).stdout.strip()
        self.base_url = out.splitlines()[-1]

    def url(self, db):
        return re.sub(r"^postgresql:///[^?]*", f"postgresql:///{db}", self.base_url)

    def psql(self, sql, db="abidance_test", timeout=30):
        r = subprocess.run(["psql", "-X", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1",
                            "-d", self.url(db), "-c", sql],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr.strip()}")
        return [line.split("|") for line in r.stdout.splitlines() if line]

    def createdb(self, name):
        self.psql(f"CREATE DATABASE {name}")

    def pause(self):
        subprocess.run([FIXTURE, "pause", self.dir], check=True, capture_output=True)

    def resume(self):
        subprocess.run([FIXTURE, "resume", self.dir], check=True, capture_output=True)

    def stop(self):
        subprocess.run([FIXTURE, "stop", self.dir], capture_output=True)


# ---------------------------------------------------------------- processes

class Proc:
    proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status (None when it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


def sanitizer_report(path):
    try:
        with open(path, errors="replace") as f:
            err = f.read()
    except OSError:
        return False
    return "AddressSanitizer" in err or "runtime error" in err or "LeakSanitizer" in err


class Sim(Proc):
    def __init__(self, binary, args, log):
        self.log = open(log, "w")
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"^listening on 127\.0\.0\.1:([0-9]+)$", line.strip())
        if not m:
            self.stop()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.port = int(m.group(1))
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"

    def get(self, path):
        """GET, retrying the simulator's injected 429/418 answers."""
        for _ in range(400):
            try:
                return http_json(self.base + path)
            except urllib.error.HTTPError as e:
                if e.code in (418, 429):
                    time.sleep(0.05)
                    continue
                raise
        raise RuntimeError("simulator keeps refusing " + path)

    def frozen(self):
        """True once every symbol's market froze (--events reached)."""
        st = self.get("/sim/stats")
        return bool(st.get("symbols")) and all(x["frozen"] for x in st["symbols"])

    def book(self, sym):
        d = self.get(f"/api/v3/depth?symbol={sym}&limit=5000")
        return d["lastUpdateId"], levels(d["bids"]), levels(d["asks"])

    def klines(self, sym, iv, start, end=None):
        rows = []
        while True:
            path = f"/api/v3/klines?symbol={sym}&interval={iv}&startTime={start}&limit=1000"
            if end is not None:
                path += f"&endTime={end}"
            page = self.get(path)
            rows += page
            if len(page) < 1000:
                return rows
            start = page[-1][0] + 1

    def stop(self, timeout=15):
        rc = super().stop(timeout)
        self.log.close()
        return rc


class Query(Proc):
    """abidance-query on fixed ports; start() may be called again after kill9()."""

    def __init__(self, binary, db_url, bus, symbols, intervals, logdir, name="query"):
        self.binary, self.db_url, self.bus = binary, db_url, bus
        self.symbols, self.intervals = symbols, intervals
        self.http_port, self.ws_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}/v1/stream"
        self.logdir, self.name, self.starts = logdir, name, 0
        self.logs = []

    def start(self, timeout=20):
        """Starts it and waits up to timeout (x SCALE) seconds for /healthz."""
        self.starts += 1
        log = os.path.join(self.logdir, f"{self.name}.{self.starts}.log")
        self.logs.append(log)
        env = dict(os.environ, DATABASE_URL=self.db_url)
        with open(log, "w") as f:
            self.proc = subprocess.Popen(
                [self.binary, "--http", f"127.0.0.1:{self.http_port}",
                 "--ws", f"127.0.0.1:{self.ws_port}", "--bus", self.bus,
                 "--symbols", ",".join(self.symbols), "--intervals", ",".join(self.intervals),
                 "--log-level", os.environ.get("E2E_LOG_LEVEL", "info")],
                stdout=f, stderr=subprocess.STDOUT, env=env)

        def up():
            if not self.alive():
                raise RuntimeError(f"{self.name} exited: " + open(log).read()[-2000:])
            try:
                return http_get(self.base + "/healthz", timeout=1 * SCALE)[0] == 200
            except (OSError, urllib.error.URLError):
                return False
        if not wait_until(up, timeout * SCALE):
            raise RuntimeError(f"{self.name} did not answer /healthz: " + open(log).read()[-2000:])

    def get(self, path, timeout=5):
        return http_json(self.base + path, timeout * SCALE)

    def metrics(self):
        return parse_metrics(http_get(self.base + "/metrics")[1])


class Ingest(Proc):
    def __init__(self, binary, sim, bus, args, logdir, name="ingest"):
        self.binary, self.sim, self.bus, self.args = binary, sim, bus, list(args)
        self.logdir, self.name, self.starts = logdir, name, 0
        self.logs = []
        self.health = None

    def start(self, timeout=10):
        """Starts it and waits up to timeout (x SCALE) seconds for its health port."""
        self.starts += 1
        log = os.path.join(self.logdir, f"{self.name}.{self.starts}.log")
        self.logs.append(log)
        with open(log, "w") as f:
            self.proc = subprocess.Popen(
                [self.binary, "--ws-url", self.sim.ws, "--rest-url", self.sim.base,
                 "--bus", self.bus, "--health", "127.0.0.1:0",
                 "--log-level", os.environ.get("E2E_LOG_LEVEL", "info"), *self.args],
                stdout=f, stderr=subprocess.STDOUT)

        def port():
            with open(log, errors="replace") as f:
                m = re.search(r"health: listening on 127\.0\.0\.1:([0-9]+)", f.read())
            if m:
                return int(m.group(1))
            if not self.alive():
                raise RuntimeError(f"{self.name} exited: " + open(log).read()[-2000:])
            return None
        self.health = wait_until(port, timeout * SCALE, 0.02)
        if not self.health:
            raise RuntimeError(f"{self.name} did not start: " + open(log).read()[-2000:])

    def metrics(self):
        return parse_metrics(http_get(f"http://127.0.0.1:{self.health}/metrics")[1])

    def healthz(self):
        return http_json(f"http://127.0.0.1:{self.health}/healthz")


# ---------------------------------------------------------------- WebSocket client

class WsClient:
    """A stream client in its own thread (asyncio + python3-websockets).

    Books: a snapshot replaces the book; each delta must satisfy
    prev_update_id == last and first_update_id <= last + 1 <= last_update_id,
    else it is a continuity error (the server promises it never happens; a
    fresh snapshot is the only way the sequence may jump). Candles: the
    latest update per (channel, open_time); closed ones kept. On a dropped
    connection it reconnects and subscribes again (counted), unless
    reconnect=False. slow_after: stop reading after that many messages for
    slow_for seconds or until resume is set (with a small receive buffer and
    a queue of one message in the library, the server sees a client that
    does not read).
    """

    def __init__(self, url, channels, name="ws", reconnect=True, slow_after=None,
                 slow_for=0.0, rcvbuf=None):
        self.url, self.channels, self.name = url, list(channels), name
        self.reconnect = reconnect
        self.slow_after, self.slow_for, self.rcvbuf = slow_after, slow_for, rcvbuf
        self.lock = threading.Lock()
        self.books = {}        # symbol -> [bids dict, asks dict]
        self.last = {}         # symbol -> last_update_id
        self.state = {}        # symbol -> last state seen
        self.snapshots = {}    # symbol -> count
        self.resnapshots = {}  # symbol -> live snapshots that replaced a live book
        self.deltas = {}       # symbol -> count
        self.errors = []       # continuity / protocol errors
        self.candles = {}      # (symbol, interval) -> {open_time: msg}
        self.candle_seq = {}   # (symbol, interval) -> [(open_time, is_closed, event_time)]
        self.closes = []       # close codes seen
        self.connects = 0
        self.messages = 0
        self.subscribed = threading.Event()
        self.resume = threading.Event()  # ends a slow client's stall early
        self.stalled = threading.Event()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # -- thread --

    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        import websockets
        backoff = 0.1
        while not self._stop:
            try:
                kw = dict(max_size=64 * 1024 * 1024, ping_interval=None,
                          open_timeout=5 * SCALE)
                if self.slow_after is not None:
                    kw["max_queue"] = 1
                if self.rcvbuf:
                    host, port = re.match(r"ws://([^:/]+):([0-9]+)", self.url).groups()
                    sock = socket.socket()
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                    sock.setblocking(False)
                    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
                    kw["sock"] = sock
                async with websockets.connect(self.url, **kw) as ws:
                    with self.lock:
                        self.connects += 1
                    backoff = 0.1
                    await ws.send(json.dumps({"op": "subscribe", "id": 1,
                                              "channels": self.channels}))
                    while not self._stop:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 0.2)
                        except asyncio.TimeoutError:
                            continue
                        self._handle(json.loads(raw))
                        if self.slow_after is not None and self.messages == self.slow_after:
                            self.stalled.set()
                            end = time.monotonic() + self.slow_for
                            while time.monotonic() < end and not self.resume.is_set():
                                await asyncio.sleep(0.05)
                    return
            except websockets.ConnectionClosed as e:
                with self.lock:
                    self.closes.append(e.code)
            except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake,
                    websockets.InvalidURI):
                pass
            if not self.reconnect or self._stop:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _handle(self, m):
        t = m.get("type")
        with self.lock:
            self.messages += 1
            ch = m.get("channel", "")
            if t == "subscribed":
                self.subscribed.set()
            elif t == "error":
                self.errors.append(f"error message {m}")
            elif t == "snapshot" and ch.startswith("book:"):
                s = ch[5:]
                if self.state.get(s) == "live" and m["state"] == "live":
                    self.resnapshots[s] = self.resnapshots.get(s, 0) + 1
                self.books[s] = [levels(m["bids"]), levels(m["asks"])]
                self.last[s] = m["last_update_id"]
                self.state[s] = m["state"]
                self.snapshots[s] = self.snapshots.get(s, 0) + 1
            elif t == "book_delta":
                s = ch[5:]
                last = self.last.get(s)
                U, u, prev = m["first_update_id"], m["last_update_id"], m["prev_update_id"]
                if s not in self.books or self.state.get(s) != "live":
                    self.errors.append(f"{s}: delta {U}..{u} without a live snapshot")
                elif prev != last or not (U <= last + 1 <= u):
                    self.errors.append(f"{s}: delta U={U} u={u} prev={prev} after {last}")
                if s in self.books:
                    for side, key in ((0, "bids"), (1, "asks")):
                        for p, q in m[key]:
                            p, q = Decimal(p), Decimal(q)
                            if q == 0:
                                self.books[s][side].pop(p, None)
                            else:
                                self.books[s][side][p] = q
                self.last[s] = u
                self.deltas[s] = self.deltas.get(s, 0) + 1
            elif t == "status" and ch.startswith("book:"):
                s = ch[5:]
                self.state[s] = m["state"]
                if m["state"] == "stale":
                    self.books.pop(s, None)
                    self.last.pop(s, None)
            elif t == "snapshot" and ch.startswith("candles:"):
                _, s, iv = ch.split(":")
                for c in m["candles"]:
                    self._candle((s, iv), c)
            elif t == "candle":
                _, s, iv = ch.split(":")
                self._candle((s, iv), m)

    def _candle(self, key, c):
        series = self.candles.setdefault(key, {})
        old = series.get(c["open_time"])
        if old is not None and old["is_closed"] and not c["is_closed"]:
            self.errors.append(f"{key}: open update of {c['open_time']} after its close")
        series[c["open_time"]] = c
        self.candle_seq.setdefault(key, []).append((c["open_time"], c["is_closed"],
                                                    c.get("event_time", 0)))

    # -- caller side --

    def view(self):
        """A consistent copy of (books, last, state, errors)."""
        with self.lock:
            books = {s: [dict(b[0]), dict(b[1])] for s, b in self.books.items()}
            return books, dict(self.last), dict(self.state), list(self.errors)

    def stop(self):
        self._stop = True
        self.thread.join(10 * SCALE)


# ---------------------------------------------------------------- truth

def kline_row(r):
    """A /api/v3/klines row, canonical: open time, OHLCV, close time, quote
    volume, trades, taker buy base and quote."""
    return (int(r[0]), canon(r[1]), canon(r[2]), canon(r[3]), canon(r[4]), canon(r[5]),
            int(r[6]), canon(r[7]), int(r[8]), canon(r[9]), canon(r[10]))


DB_CANDLE_SQL = (
    "SELECT symbol, timeframe, (extract(epoch from \"timestamp\") * 1000)::bigint, "
    "open::text, high::text, low::text, close::text, volume::text, "
    "(extract(epoch from close_time) * 1000)::bigint, quote_volume::text, num_trades, "
    "taker_buy_volume::text, taker_buy_quote_volume::text, is_closed "
    "FROM candlesticks ORDER BY 1, 2, 3")


def db_candles(pg, db):
    """{(symbol, interval): {open_time: (row tuple like kline_row, is_closed)}}."""
    out = {}
    for r in pg.psql(DB_CANDLE_SQL, db):
        key = (r[0], r[1])
        row = (int(r[2]), canon(r[3]), canon(r[4]), canon(r[5]), canon(r[6]), canon(r[7]),
               int(r[8]), canon(r[9]), int(r[10]), canon(r[11]), canon(r[12]))
        out.setdefault(key, {})[int(r[2])] = (row, r[13] == "t")
    return out


def ws_candle_row(c):
    return (c["open_time"], canon(c["open"]), canon(c["high"]), canon(c["low"]),
            canon(c["close"]), canon(c["volume"]), c["close_time"], canon(c["quote_volume"]),
            c["num_trades"], canon(c["taker_buy_volume"]), canon(c["taker_buy_quote_volume"]))


# ---------------------------------------------------------------- memory (soak)

def rss_kb(pid):
    """VmRSS of pid in kB from /proc/PID/status, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_slope(samples):
    """Least-squares growth of [(t seconds, kB)] as (kB per second, seconds
    covered); (0.0, 0.0) with fewer than 3 samples."""
    if len(samples) < 3:
        return 0.0, 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0, 0.0
    cov = sum((t - mt) * (v - mv) for t, v in samples)
    return cov / var, samples[-1][0] - samples[0][0]


def is_asan_binary(path):
    """True when the binary was built with AddressSanitizer (its RSS grows
    with the allocator's quarantine, so a flat-RSS check means nothing)."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False

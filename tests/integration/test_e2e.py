#!/usr/bin/python3
"""End-to-end test of the live path (issue 5), real processes over loopback:

    abidance-sim -> abidance-ingest --bus -> abidance-query -> PostgreSQL
                                                  |-> REST (/v1/book)
                                                  |-> WebSocket clients

Every scenario runs a fresh simulator (--events N: the market freezes after
N depth updates per symbol), a fresh database in a private PostgreSQL
cluster, the query, one or more WebSocket clients subscribed from the start
(book:<SYM> and candles:<SYM>:<iv>), and the ingest. Once the market froze
and everything caught up, it checks:

  - /v1/book?depth=5000 equals the simulator's /api/v3/depth?limit=5000,
    every level, at the same last update id, state live;
  - each WebSocket client that applied the snapshot and every delta (the
    continuity rule of api/websocket.md checked on each one) holds the same
    book; the closed candles it received equal the simulator's;
  - every closed candle in PostgreSQL equals the simulator's
    /api/v3/klines row (exact decimals, canonical form), and every candle
    that closed before the freeze is there, closed;
  - the ingest's bus is connected with nothing left unacknowledged and no
    candle lost; nothing crashed; clean SIGTERM exits; no sanitizer reports.

Scenarios: plain; each simulator fault alone and all together; kill -9 of
the query mid-stream and a restart; kill -9 of the ingest mid-stream and a
restart; PostgreSQL stopped for a few seconds mid-stream; a deliberately
slow WebSocket client beside a fast one (the fast one receives everything
in order; the slow one gets a fresh book snapshot or is closed with 4008).

Usage: test_e2e.py --sim BIN --ingest BIN --query BIN [--only NAME] [--pg-dir DIR]
Exit status 0 = all checks passed.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (IV_MS, MARKET_SLOWDOWN, SCALE, Checks, Ingest, PgCluster,  # noqa: E402
                     Query, Sim, WsClient, db_candles, kline_row, sanitizer_report,
                     wait_until, ws_candle_row)

SYMS = ["BTCUSDT", "ETHUSDT"]
INTERVALS = ["1s", "1m"]
BUDGET = 280 * SCALE  # seconds for the whole file (ABIDANCE_TEST_TIME_SCALE scales every wait)
START = time.monotonic()
C = Checks()
check = C.check


class Scenario:
    def __init__(self, args, pg, tmp, idx, name, sim_args=(), events=1200, speed=30,
                 ingest_args=(), frozen_ok=False, allow_lost=False, slowdown=MARKET_SLOWDOWN):
        self.args, self.pg, self.name = args, pg, name
        self.allow_lost = allow_lost
        # The simulator keeps closing the ingest's stream after the freeze
        # (--fault-close-every): the book may then be "resyncing", frozen at
        # the right id with the right levels, at any moment we look.
        self.states = ("live", "resyncing") if frozen_ok else ("live",)
        speed = speed / slowdown  # a slow run (valgrind): the same market, longer
        self.events, self.speed = events, speed
        self.logdir = os.path.join(tmp, name)
        os.makedirs(self.logdir, exist_ok=True)
        self.db = f"e2e_{idx}"
        pg.createdb(self.db)
        self.bus = os.path.join(tmp, f"bus{idx}.sock")
        self.start_time = (int(time.time() * 1000) // 60000) * 60000
        self.sim = Sim(args.sim, ["--symbols", ",".join(SYMS), "--seed", str(11 + idx),
                                  "--speed", str(speed), "--events", str(events),
                                  "--start-time", str(self.start_time),
                                  "--ping-interval", f"{int(300 * SCALE)}ms",
                                  "--pong-timeout", f"{int(1000 * SCALE)}ms",
                                  *sim_args], os.path.join(self.logdir, "sim.log"))
        self.t0 = time.monotonic()
        self.query = Query(args.query, pg.url(self.db), self.bus, SYMS, INTERVALS, self.logdir)
        self.ingest = Ingest(args.ingest, self.sim, self.bus,
                             ["--symbols", ",".join(SYMS), "--intervals", ",".join(INTERVALS),
                              "--depth-limit", "5000", "--backfill", "2m",
                              "--close-grace", "2s",
                              # resyncs at depth 5000 cost 250 each; the
                              # simulator does not limit weight itself
                              "--weight-limit", "1000000", *ingest_args], self.logdir)
        self.clients = []

    def channels(self):
        return [f"book:{s}" for s in SYMS] + [f"candles:{s}:{iv}" for s in SYMS
                                               for iv in INTERVALS]

    def add_client(self, name, **kw):
        c = WsClient(self.query.ws_url, self.channels(), name=name, **kw)
        check(c.subscribed.wait(10 * SCALE), f"{self.name}: {name} not subscribed")
        self.clients.append(c)
        return c

    def start(self):
        self.query.start()
        self.add_client("ws-fast")
        self.ingest.start()

    def freeze_in(self):
        """Seconds until the market freezes."""
        return self.t0 + self.events * 0.1 / self.speed - time.monotonic()

    # -- the truth and the comparisons --

    def truth(self):
        wait_until(lambda: self.freeze_in() <= -0.3, 120 * SCALE)
        # A slow run (valgrind) may be behind the nominal freeze: the truth
        # is the frozen market, so wait until the simulator says it froze.
        if not wait_until(self.sim.frozen, 30 * SCALE, 0.1):
            raise RuntimeError("the simulator's market never froze")
        self.want = {s: self.sim.book(s) for s in SYMS}
        self.freeze_time = self.start_time + self.events * 100
        self.sim_time = self.sim.get("/api/v3/time")["serverTime"]
        self.rows = {}
        self.must = {}
        for s in SYMS:
            for iv in INTERVALS:
                rows = {r[0]: kline_row(r) for r in
                        self.sim.klines(s, iv, self.start_time - 3600 * 1000)}
                self.rows[(s, iv)] = rows
                self.must[(s, iv)] = sorted(
                    ot for ot, r in rows.items()
                    if ot >= self.start_time and r[6] + 1 <= self.freeze_time
                    and r[6] < self.sim_time)

    def caught_up(self):
        """True once everything reached the frozen market; self.lag says what is behind."""
        try:
            for s in SYMS:
                b = self.query.get(f"/v1/book?symbol={s}&depth=1")
                if b.get("state") not in self.states or b.get("last_update_id") != self.want[s][0]:
                    self.lag = f"/v1/book {s} {b.get('state')} at {b.get('last_update_id')}"
                    return False
            for c in self.clients:
                if c.reconnect is False:
                    continue
                _, last, _, _ = c.view()
                for s in SYMS:
                    if last.get(s) != self.want[s][0]:
                        self.lag = f"{c.name} {s} at {last.get(s)}"
                        return False
            db = db_candles(self.pg, self.db)
            for key, ots in self.must.items():
                have = db.get(key, {})
                missing = [ot for ot in ots if ot not in have or not have[ot][1]]
                if missing:
                    self.lag = f"PostgreSQL {key} missing {len(missing)}, first {missing[:2]}"
                    return False
            return True
        except Exception as e:
            self.lag = f"{type(e).__name__}: {e}"
            return False

    def compare(self):
        n = self.name
        self.lag = ""
        t = time.monotonic()
        said = [t]

        def progress():
            if self.caught_up():
                return True
            if time.monotonic() - said[0] >= 10:
                said[0] = time.monotonic()
                print(f"   {n}: still waiting: {self.lag}", flush=True)
            return False
        ok = wait_until(progress, 40 * SCALE, 0.25)
        check(ok, f"{n}: did not catch up with the frozen market within {40 * SCALE:.0f} s: "
              f"{self.lag}")
        self.catch_up_s = time.monotonic() - t
        # REST book.
        for s in SYMS:
            lid, bids, asks = self.want[s]
            b = self.query.get(f"/v1/book?symbol={s}&depth=5000")
            check(b.get("state") in self.states, f"{n}: {s} /v1/book state {b.get('state')}")
            check(b.get("last_update_id") == lid,
                  f"{n}: {s} /v1/book at {b.get('last_update_id')}, sim at {lid}")
            from e2e_lib import levels
            check(levels(b.get("bids", [])) == bids,
                  f"{n}: {s} /v1/book bids differ ({len(b.get('bids', []))} vs {len(bids)} levels)")
            check(levels(b.get("asks", [])) == asks,
                  f"{n}: {s} /v1/book asks differ ({len(b.get('asks', []))} vs {len(asks)} levels)")
        # WebSocket books.
        for c in self.clients:
            books, last, state, errors = c.view()
            check(not errors, f"{n}: {c.name}: {len(errors)} stream errors, first {errors[:3]}")
            if c.reconnect is False:
                continue
            for s in SYMS:
                lid, bids, asks = self.want[s]
                check(last.get(s) == lid, f"{n}: {c.name} {s} book at {last.get(s)}, sim at {lid}")
                book = books.get(s, [{}, {}])
                check(book[0] == bids and book[1] == asks,
                      f"{n}: {c.name} {s} book differs from the sim "
                      f"({len(book[0])}/{len(book[1])} vs {len(bids)}/{len(asks)} levels)")
        # PostgreSQL.
        db = db_candles(self.pg, self.db)
        n_closed = 0
        for s in SYMS:
            for iv in INTERVALS:
                rows = self.rows[(s, iv)]
                have = db.get((s, iv), {})
                for ot, (row, closed) in have.items():
                    if not closed:
                        continue
                    n_closed += 1
                    want = rows.get(ot)
                    if want is None:  # closed after our first look
                        want = {r[0]: kline_row(r) for r in self.sim.klines(s, iv, ot)}.get(ot)
                    check(want is not None, f"{n}: {s} {iv} {ot} closed in PostgreSQL, not in sim")
                    if want is not None:
                        check(row == want, f"{n}: {s} {iv} {ot} PostgreSQL {row} != sim {want}")
                missing = [ot for ot in self.must[(s, iv)]
                           if ot not in have or not have[ot][1]]
                check(not missing, f"{n}: {s} {iv}: {len(missing)} of {len(self.must[(s, iv)])} "
                      f"closed candles missing in PostgreSQL, first {missing[:3]}")
        # Closed candles the WebSocket clients got.
        for c in self.clients:
            with c.lock:
                got = {k: dict(v) for k, v in c.candles.items()}
            bad = 0
            for (s, iv), series in got.items():
                for ot, m in series.items():
                    if m["is_closed"]:
                        want = self.rows[(s, iv)].get(ot)
                        if want is None:
                            want = {r[0]: kline_row(r) for r in self.sim.klines(s, iv, ot)}.get(ot)
                        if ws_candle_row(m) != want:
                            bad += 1
            check(bad == 0, f"{n}: {c.name}: {bad} closed candles differ from the sim")
        # The bus drained; nothing lost.
        def drained():
            m = self.ingest.metrics()
            return m.get("abidance_ingest_bus_unacked_frames") == 0 and m
        m = wait_until(drained, 10 * SCALE, 0.2) or self.ingest.metrics()
        check(m.get("abidance_ingest_bus_connected") == 1, f"{n}: ingest bus not connected")
        check(m.get("abidance_ingest_bus_unacked_frames") == 0,
              f"{n}: {m.get('abidance_ingest_bus_unacked_frames')} frames unacknowledged")
        if not self.allow_lost:
            check(m.get("abidance_ingest_bus_candles_lost_total") == 0,
                  f"{n}: candles dropped at the bus")
        check(m.get("abidance_ingest_bus_behind") == 0 and m.get("abidance_ingest_bus_retry_depth") == 0,
              f"{n}: the ingest is still behind at the bus")
        check(m.get("abidance_ingest_bus_invalid_total") == 0, f"{n}: frames refused as invalid")
        # The only publish failure allowed is a candle dropped at the bus.
        check(m.get("abidance_ingest_publish_failures_total") ==
              m.get("abidance_ingest_bus_candles_lost_total"), f"{n}: publish failures")
        h = self.ingest.healthz()
        check(h.get("status") == "ok" and h.get("bus", {}).get("connected") is True
              and h["bus"].get("behind") is False, f"{n}: ingest /healthz {h}")
        qm = self.query.metrics()
        check(qm.get("abidance_feed_candles_invalid_total", 0) == 0,
              f"{n}: the query refused candles as invalid")
        self.ingest_metrics, self.query_metrics = m, qm
        # recv_us travels with every frame: the query measures ingest -> query.
        lat_n = qm.get("abidance_feed_latency_seconds_count", 0)
        check(lat_n > 0, f"{n}: the query measured no bus latency")
        lat = qm.get("abidance_feed_latency_seconds_sum", 0) / lat_n * 1000 if lat_n else 0
        print(f"   {n}: caught up in {self.catch_up_s:.1f} s; {n_closed} closed candles in PostgreSQL, "
              f"ws deltas {sum(self.clients[0].deltas.values())}, "
              f"bus resent={m.get('abidance_ingest_bus_resent_total')} "
              f"deltas_dropped={m.get('abidance_ingest_bus_deltas_dropped_total')} "
              f"snapshots_resent={m.get('abidance_ingest_bus_snapshots_resent_total')} "
              f"reconnects={m.get('abidance_ingest_bus_reconnects_total')} "
              f"bus latency avg {lat:.2f} ms "
              f"max {qm.get('abidance_feed_latency_max_seconds', 0) * 1000:.1f} ms", flush=True)

    def finish(self):
        for c in self.clients:
            c.stop()
        for p, what in ((self.ingest, "ingest"), (self.query, "query")):
            rc = p.stop()
            check(rc == 0, f"{self.name}: {what} exited with {rc} on SIGTERM")
        self.sim.stop()
        for log in self.ingest.logs + self.query.logs:
            check(not sanitizer_report(log), f"{self.name}: sanitizer report in {log}")

    def abort(self):
        for c in self.clients:
            c._stop = True
        for p in (self.ingest, self.query, self.sim):
            try:
                p.kill9()
            except Exception:
                pass


def run(args, pg, tmp, idx, name, action=None, expect=None, extra_clients=None, **kw):
    print(f"== {name}", flush=True)
    t = time.monotonic()
    sc = Scenario(args, pg, tmp, idx, name, **kw)
    try:
        sc.start()
        if extra_clients:
            extra_clients(sc)
        if action:
            action(sc)
        sc.truth()
        sc.compare()
        if expect:
            expect(sc)
        sc.finish()
    except Exception as e:
        check(False, f"{name}: {type(e).__name__}: {e}")
        traceback.print_exc()
        sc.abort()
    print(f"   {name}: {time.monotonic() - t:.1f} s", flush=True)


# ---- outages ----

def at_fraction(sc, frac):
    """Sleeps until frac of the market's run has passed."""
    wait_until(lambda: time.monotonic() - sc.t0 >= frac * sc.events * 0.1 / sc.speed, 60 * SCALE)


# The query's outage lasts the same market time in a slow run (x
# MARKET_SLOWDOWN real time): bus-full needs enough candles queued while the
# query is away to overflow its tiny retry list.

def kill_query(sc):
    at_fraction(sc, 0.3)
    sc.query.kill9()
    time.sleep(1.5 * MARKET_SLOWDOWN)
    check(sc.freeze_in() > 1, f"{sc.name}: the market froze during the outage (too slow)")
    sc.query.start()


def kill_ingest(sc):
    at_fraction(sc, 0.3)
    sc.ingest.kill9()
    time.sleep(1.5)
    check(sc.freeze_in() > 1, f"{sc.name}: the market froze during the outage (too slow)")
    sc.ingest.start()


def stop_postgres(sc):
    at_fraction(sc, 0.25)
    sc.pg.pause()
    time.sleep(3)
    check(sc.freeze_in() > 1, f"{sc.name}: the market froze during the outage (too slow)")
    sc.pg.resume()


def expect_counter(key, minimum=1, where="ingest"):
    def f(sc):
        m = sc.ingest_metrics if where == "ingest" else sc.query_metrics
        v = m.get(key, 0)
        check(v >= minimum, f"{sc.name}: {key} = {v}, expected >= {minimum}")
    return f


def expect_client_reconnected(sc):
    c = sc.clients[0]
    check(c.connects >= 2, f"{sc.name}: {c.name} connected {c.connects} times (no reconnect?)")


def expect_all(*fs):
    def f(sc):
        for g in fs:
            g(sc)
    return f


# ---- the slow client ----

def slow_clients(sc):
    sc.slow = sc.add_client("ws-slow", reconnect=False, slow_after=20, slow_for=20.0, rcvbuf=4096)


def overflows(sc):
    m = sc.query.metrics()
    return (m.get('abidance_ws_overflows_total{kind="book_resnapshot"}', 0) +
            m.get('abidance_ws_closes_total{reason="slow_consumer"}', 0))


def stall_until_overflow(sc):
    """The slow client reads nothing until the query's queue for it overflowed
    (the kernel buffers a few MB first), then catches up."""
    check(sc.slow.stalled.wait(10 * SCALE), f"{sc.name}: the slow client never stalled")
    ok = wait_until(lambda: overflows(sc) > 0, 15 * SCALE, 0.25)
    check(ok, f"{sc.name}: no overflow within {15 * SCALE:.0f} s of the slow client's stall")
    check(sc.freeze_in() > 0.5, f"{sc.name}: the market froze before the overflow (too slow)")
    sc.slow.resume.set()


def expect_slow(sc):
    n = sc.name
    fast, slow = sc.clients[0], sc.slow
    # The fast client: never closed, one connection, every closed candle of
    # the run, stream closes in order.
    check(fast.connects == 1 and not fast.closes,
          f"{n}: fast client connects={fast.connects} closes={fast.closes}")
    with fast.lock:
        seqs = {k: list(v) for k, v in fast.candle_seq.items()}
        got = {k: dict(v) for k, v in fast.candles.items()}
    for key, ots in sc.must.items():
        have = got.get(key, {})
        missing = [ot for ot in ots if ot not in have or not have[ot]["is_closed"]]
        check(not missing, f"{n}: fast client missed {len(missing)} closed {key} candles, "
              f"first {missing[:3]}")
        # Closes from the exchange stream (event_time > 0; REST backfills may
        # interleave) come in open-time order; a repeat of the same update
        # is allowed (api/websocket.md).
        seen, order = set(), []
        for ot, closed, et in seqs.get(key, []):
            if closed and et > 0 and ot not in seen:
                seen.add(ot)
                order.append(ot)
        check(all(a < b for a, b in zip(order, order[1:])),
              f"{n}: fast client got {key} closes out of order: {order[:10]}")
    # The slow client: a fresh book snapshot after it fell behind, or the
    # documented close code; never a silent gap (its errors are checked in
    # compare()).
    books, last, state, errors = slow.view()
    resnap = any(v >= 1 for v in slow.resnapshots.values())
    check(resnap or 4008 in slow.closes,
          f"{n}: slow client got neither a fresh snapshot nor 4008 "
          f"(resnapshots={slow.resnapshots} closes={slow.closes} messages={slow.messages})")
    if not slow.closes:
        for s in SYMS:
            lid, bids, asks = sc.want[s]
            ok = wait_until(lambda: slow.view()[1].get(s) == lid, 15 * SCALE, 0.2)
            b = slow.view()[0].get(s, [{}, {}])
            check(ok and b[0] == bids and b[1] == asks,
                  f"{n}: slow client {s} book differs from the sim after catching up")
    print(f"   {n}: slow client resnapshots={slow.resnapshots} closes={slow.closes} "
          f"messages={slow.messages}; fast messages={fast.messages}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", required=True)
    ap.add_argument("--ingest", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--only", default="", help="run scenarios whose name contains this")
    ap.add_argument("--pg-dir", default="", help="private cluster directory (default: in the temp dir)")
    ap.add_argument("--pg-port", type=int, default=54331)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="e2e-", dir="/tmp")
    os.chmod(tmp, 0o755)  # the cluster runs as postgres when we are root
    pg_dir = args.pg_dir or os.path.join(tmp, "pg")
    pg = PgCluster(pg_dir, args.pg_port)
    all_faults = ["--fault-close-every", "4", "--fault-gap-every", "37",
                  "--fault-malformed-every", "97", "--fault-out-of-range-every", "11",
                  "--fault-rest-429", "20", "--fault-rest-418", "5", "--fault-rest-delay-ms", "100"]
    scenarios = [
        ("plain", dict()),
        ("fault-close", dict(sim_args=["--fault-close-every", "2"], events=1500, frozen_ok=True,
                             expect=expect_counter("abidance_ingest_ws_reconnects_total"))),
        ("fault-gap", dict(sim_args=["--fault-gap-every", "37"],
                           expect=expect_counter("abidance_ingest_book_resyncs_total"))),
        ("fault-malformed", dict(sim_args=["--fault-malformed-every", "97"])),
        ("fault-out-of-range", dict(sim_args=["--fault-out-of-range-every", "11"])),
        ("fault-no-pong", dict(sim_args=["--fault-no-pong"])),
        ("fault-rest-429", dict(sim_args=["--fault-rest-429", "40"],
                                expect=expect_counter("abidance_ingest_rest_429_total"))),
        ("fault-rest-418", dict(sim_args=["--fault-rest-418", "25"],
                                expect=expect_counter("abidance_ingest_rest_418_total"))),
        ("fault-rest-delay", dict(sim_args=["--fault-rest-delay-ms", "400"])),
        ("fault-all", dict(sim_args=all_faults, events=2400, frozen_ok=True)),
        ("kill-query", dict(action=kill_query, events=3000,
                            expect=expect_all(
                                expect_counter("abidance_ingest_bus_reconnects_total"),
                                expect_client_reconnected))),
        ("kill-ingest", dict(action=kill_ingest, events=3000,
                             expect=expect_counter("abidance_ingest_candles_backfilled_total"))),
        # A tiny bus buffer and retry list while the query is away: candles
        # are refused, retried, dropped and fetched again over REST, deltas
        # dropped and replaced by snapshots; nothing may be missing after.
        ("bus-full", dict(action=kill_query, events=3000, allow_lost=True,
                          ingest_args=["--bus-max-frames", "40", "--bus-retry-max", "8"],
                          expect=expect_all(
                              expect_counter("abidance_ingest_bus_refused_total"),
                              expect_counter("abidance_ingest_bus_candles_retried_total"),
                              expect_counter("abidance_ingest_bus_deltas_dropped_total"),
                              expect_counter("abidance_ingest_bus_snapshots_resent_total"),
                              expect_counter("abidance_ingest_bus_candles_lost_total")))),
        ("stop-postgres", dict(action=stop_postgres, events=3000,
                               expect=expect_counter("abidance_store_db_errors_total",
                                                     where="query"))),
        ("slow-client", dict(extra_clients=slow_clients, action=stall_until_overflow,
                             events=7200, speed=60,
                             expect=expect_slow)),
    ]
    try:
        for idx, (name, kw) in enumerate(scenarios):
            if args.only and args.only not in name:
                continue
            if time.monotonic() - START > BUDGET:
                check(False, f"time budget exhausted before {name}")
                break
            run(args, pg, tmp, idx, name, **kw)
    finally:
        pg.stop()
        if not args.keep and not C.failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}", flush=True)
    print(f"{C.count} checks, {len(C.failures)} failures, {time.monotonic() - START:.1f} s",
          flush=True)
    return 1 if C.failures else 0


if __name__ == "__main__":
    sys.exit(main())

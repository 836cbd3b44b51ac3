#!/usr/bin/python3
"""Turns the RESULT lines of a bench/run.sh run into the suite's table.

    /usr/bin/python3 bench/report.py RESULTS_FILE --out bench/RESULTS.md [--machine ...]

Each benchmark prints `RESULT id=<id> value=<v> unit=<u> [key=value ...]`.
This script pairs every figure with its same-run baseline, computes the
ratio, checks the target of issue 7, prints the table and writes it, with
the machine description, to --out. A figure whose benchmark did not run is
listed as "not run" (and counts as not met).
"""
import argparse
import sys


def parse(path):
    res = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("RESULT "):
                continue
            fields = {}
            for tok in line.split()[1:]:
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    fields[k] = v
            if "id" in fields:
                res[fields["id"]] = fields
    return res


def num(res, rid, key="value"):
    try:
        return float(res[rid][key])
    except (KeyError, ValueError):
        return None


def fmt(v, unit=""):
    if v is None:
        return "not run"
    if abs(v) >= 1000:
        s = f"{v:,.0f}"
    elif abs(v) >= 100:
        s = f"{v:.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}"
    return f"{s} {unit}".strip()


def ratio_row(res, figure, vid, bid, bname, unit, target, vkey="value", bkey="value"):
    v = num(res, vid, vkey)
    b = num(res, bid, bkey)
    r = v / b if v is not None and b else None
    met = r is not None and r >= target
    return [figure, fmt(v, unit), f"{fmt(b, unit)} ({bname})",
            "not run" if r is None else f"{r:.2f}x", f">= {target:g}x",
            "yes" if met else "NO"]


def build(res):
    rows = []
    rows.append(ratio_row(res, "Decode + validate + apply, recorded captures, one core",
                          "decode", "decode", "jansson json_loadb + json_decref",
                          "msg/s", 0.8, bkey="baseline"))
    rows.append(ratio_row(res, "Order-book level updates, 5000-level book",
                          "book", "book_seed", "seed OrderBook.update, python3",
                          "upd/s", 100))
    rows.append(ratio_row(res, "Indicators sma+ema+rsi+macd over 100k candles",
                          "indicators", "indicators_seed", "seed pandas functions",
                          "candles/s", 10))
    rows.append(ratio_row(res, "Candle upserts into PostgreSQL, 200k rows, sustained "
                          "(durability defaults: fsync, synchronous_commit on)",
                          "store_durable", "store_durable", "per-row INSERT ... ON CONFLICT",
                          "rows/s", 15, bkey="baseline"))
    r = ratio_row(res, "Candle upserts, same, on the test fixture's cluster "
                  "(fsync, synchronous_commit off; for reference)",
                  "store", "store", "per-row INSERT ... ON CONFLICT", "rows/s", 15,
                  bkey="baseline")
    r[4], r[5] = "-", "-"
    rows.append(r)
    rows.append(ratio_row(res, "GET /v1/candles?limit=1000, wrk -t2 -c64",
                          "http_live", "http_min", "minimal libmicrohttpd, same body",
                          "req/s", 0.7))
    rows.append(ratio_row(res, "GET /v1/candles?limit=1000, wrk -t2 -c64",
                          "http_live", "http_db", "same endpoint reading PostgreSQL",
                          "req/s", 5))
    # WebSocket fan-out: delivery, order, p99 and per-core frames.
    d = num(res, "ws_delivered")
    p50 = num(res, "ws_p50")
    p99 = num(res, "ws_p99")
    f = num(res, "ws_fanout")
    fb = num(res, "wsmin_fanout")
    missing = res.get("ws_delivered", {}).get("missing")
    ooo = res.get("ws_delivered", {}).get("out_of_order")
    r = f / fb if f is not None and fb else None
    ok_deliv = d is not None and d >= 100.0 and missing == "0" and ooo == "0"
    ok_p99 = p99 is not None and p99 <= 10.0
    ok_r = r is not None and r >= 0.8
    rows.append(["WebSocket fan-out 1000 x 100 msg/s: delivered in order",
                 "not run" if d is None else f"{d:.4f}% (missing {missing}, out of order {ooo})",
                 "-", "-", "100% in order", "yes" if ok_deliv else "NO"])
    rows.append(["WebSocket fan-out 1000 x 100 msg/s: publish -> client latency",
                 "not run" if p99 is None else f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                 "-", "-", "p99 <= 10 ms", "yes" if ok_p99 else "NO"])
    rows.append(["WebSocket fan-out 1000 x 100 msg/s: frames/s per core",
                 fmt(f, "frames/s/core"),
                 f"{fmt(fb, 'frames/s/core')} (minimal libwebsockets broadcaster)",
                 "not run" if r is None else f"{r:.2f}x", ">= 0.8x", "yes" if ok_r else "NO"])
    e50 = num(res, "e2e_p50")
    e99 = num(res, "e2e_p99")
    rows.append(["End to end sim -> ingest -> bus -> query -> WebSocket, 1000 msg/s",
                 "not run" if e50 is None else f"p50 {e50:.2f} ms, p99 {e99:.2f} ms",
                 "-", "-", "p50 <= 1 ms, p99 <= 5 ms",
                 "yes" if e50 is not None and e50 <= 1 and e99 <= 5 else "NO"])
    ci = num(res, "cap_ingest_cpu")
    cq = num(res, "cap_query_cpu")
    cb = res.get("cap_query_cpu", {}).get("backlog_growth")
    rows.append(["Capacity: 1500 symbols depth@100ms + kline_1m from the sim",
                 "not run" if ci is None or cq is None else
                 f"ingest {ci:.0f}% of a core, query {cq:.0f}%, backlog growth {cb}",
                 "-", "-", "each < 1 core, no backlog growth",
                 "yes" if ci is not None and cq is not None and ci < 100 and cq < 100
                 and cb == "0" else "NO"])
    m = res.get("mem_rss")
    if m:
        warm, mx, end = float(m["warm"]), float(m["max"]), float(m["end"])
        slope = float(m["slope_mb_per_min"])
        steady = mx - warm <= 0.02 * warm and abs(slope) <= 0.5
        rows.append(["Memory: abidance-query, 100 symbols x 10k cached candles",
                     f"RSS {end:.0f} MB (after load {warm:.0f}, max {mx:.0f}; "
                     f"slope {slope:+.2f} MB/min)", "-", "-",
                     "RSS stated; no growth", "yes" if steady else "NO"])
    else:
        rows.append(["Memory: abidance-query, 100 symbols x 10k cached candles", "not run",
                     "-", "-", "RSS stated; no growth", "NO"])
    return rows


HEAD = ["figure", "value", "same-run baseline", "ratio", "target", "met?"]


def markdown(rows):
    out = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


def text(rows):
    w = [max(len(str(r[i])) for r in rows + [HEAD]) for i in range(len(HEAD))]
    lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(HEAD)),
             "  ".join("-" * w[i] for i in range(len(HEAD)))]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--out", required=True)
    for k in ("machine", "memory", "kernel", "date", "commit", "postgres", "mode", "duration",
              "load"):
        ap.add_argument("--" + k, default="?")
    a = ap.parse_args()
    res = parse(a.results)
    rows = build(res)
    print(text(rows))
    met = sum(1 for r in rows if r[-1] == "yes")
    checked = sum(1 for r in rows if r[-1] != "-")
    with open(a.out, "w") as f:
        f.write("# Benchmark results\n\n")
        f.write("Written by `bench/run.sh` (do not edit by hand; rerun it). Each figure is "
                "compared with a baseline measured in the same run on the same machine; "
                "the ratios are what we track. Workloads: bench/README.md.\n\n")
        f.write(f"- machine: {a.machine}, {a.memory} RAM, {a.kernel}\n")
        f.write(f"- {a.postgres}; throwaway clusters on a Unix socket "
                "(fsync off, and one with the durability defaults for the upsert figure)\n")
        f.write(f"- run: {a.date}, commit {a.commit}, mode {a.mode}, {a.duration} s\n")
        f.write(f"- load average (1/5/15 min) at start -> end: {a.load} (other work on the "
                "machine inflates latencies and skews ratios whose two sides ran at different "
                "moments)\n")
        f.write(f"- targets met: {met} of {checked}\n\n")
        f.write(markdown(rows) + "\n\n")
        f.write("Raw RESULT lines of this run:\n\n```\n")
        with open(a.results) as r:
            f.write(r.read())
        f.write("```\n")
    print(f"\ntargets met: {met} of {checked}; written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/bin/sh
# The end-to-end latency figure of issue 7: a depth frame written by
# abidance-sim -> abidance-ingest (decode, book) -> bus -> abidance-query
# (live book, fan-out) -> a WebSocket client, 1000 depth messages/s in total.
#
#   bench/e2e.sh BUILD_DIR DATABASE_URL [SECONDS] [SYMBOLS]
#
# BUILD_DIR holds services/{sim,ingest,query}/abidance-* and
# bench/bench_e2e; DATABASE_URL is a throwaway database (the query service
# migrates it and stores the candles). SECONDS (default 30) is the measured
# window, after every book delivers deltas and a 3 s warm-up. SYMBOLS
# (default 100) symbols E0001USDT... are followed at depth@100ms (+ kline_1m);
# the sim clock runs at 100/SYMBOLS times real time so the sim always sends
# 1000 depth frames/s in total (SYMBOLS x 10 per sim second).
#
# Everything listens on 127.0.0.1 in a temporary directory; every process
# started here is stopped by its pid on exit, failure or Ctrl-C. The sim
# traces every depth frame it writes (--trace-file: symbol, final update id,
# CLOCK_MONOTONIC send time); bench_e2e records the receive time of every
# book_delta and joins both (see bench/bench_e2e.c). Prints the workload,
# then:
#   RESULT id=e2e_p50 value=<ms> unit=ms
#   RESULT id=e2e_p99 value=<ms> unit=ms msgs=<matched> rate=<msg/s>
# Logs stay in the printed directory when the run fails or E2E_KEEP=1.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: bench/e2e.sh BUILD_DIR DATABASE_URL [SECONDS] [SYMBOLS]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
url=$2
secs=${3:-30}
nsym=${4:-100}
py=/usr/bin/python3
sim=$build/services/sim/abidance-sim
ingest=$build/services/ingest/abidance-ingest
query=$build/services/query/abidance-query
client=$build/bench/bench_e2e
for b in "$sim" "$ingest" "$query" "$client"; do
    [ -x "$b" ] || {
        echo "e2e: $b is missing (build abidance-sim abidance-ingest abidance-query bench_e2e)" >&2
        exit 1
    }
done
case $secs in '' | *[!0-9]*) echo "e2e: SECONDS must be a number" >&2; exit 2 ;; esac
case $nsym in '' | *[!0-9]*) echo "e2e: SYMBOLS must be a number" >&2; exit 2 ;; esac
[ "$nsym" -ge 1 ] || { echo "e2e: SYMBOLS must be >= 1" >&2; exit 2; }

work=$(mktemp -d /tmp/abidance-e2e.XXXXXX)
who=e2e
. "$(dirname "$0")/lib.sh"
ok=0
trap 'cleanup_work "${E2E_KEEP:-}"' EXIT
trap 'exit 130' INT TERM

symbols=$($py -c "import sys; print(','.join('E%04dUSDT' % i for i in range(1, $nsym + 1)))")
speed=$($py -c "print(100 / $nsym)")

# ---- abidance-sim -----------------------------------------------------------------
"$sim" --listen 127.0.0.1:0 --symbols "$symbols" --speed "$speed" --seed 7 \
    --trace-file "$work/trace.txt" --log-level warn >"$work/sim.out" 2>"$work/sim.log" &
sp=$!
pids="$pids $sp"
wait_for "abidance-sim" 20 "$sp" grep -q '^listening on' "$work/sim.out"
simport=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/sim.out")

# ---- abidance-query ----------------------------------------------------------------
http=$(free_port)
ws=$(free_port)
mkdir -p "$work/qdata"
"$query" --database-url="$url" --http="127.0.0.1:$http" --ws="127.0.0.1:$ws" \
    --data-dir="$work/qdata" --bus="$work/bus.sock" --symbols="$symbols" --intervals=1m \
    --log-level=warn >"$work/query.log" 2>&1 &
qp=$!
pids="$pids $qp"
wait_for "abidance-query" 60 "$qp" $py -c \
    "import urllib.request as u; u.urlopen('http://127.0.0.1:$http/healthz', timeout=1)"

# ---- abidance-ingest ---------------------------------------------------------------
"$ingest" --ws-url="ws://127.0.0.1:$simport" --rest-url="http://127.0.0.1:$simport" \
    --bus="$work/bus.sock" --health=127.0.0.1:0 --symbols="$symbols" --intervals=1m \
    --backfill=1m --weight-limit=1000000 --log-level=warn >"$work/ingest.log" 2>&1 &
ip=$!
pids="$pids $ip"

echo "end to end: $nsym symbols at depth@100ms + kline_1m, sim speed $speed" \
    "(1000 depth frames/s), ${secs}s measured"
"$client" recv "$ws" "$symbols" "$secs" "$work/recv.txt" >"$work/client.log" 2>&1 || {
    cat "$work/client.log" >&2
    exit 1
}
sed 's/^/   /' "$work/client.log"
kill -0 "$ip" 2>/dev/null || { echo "e2e: abidance-ingest died" >&2; exit 1; }

# The sim flushes the rest of its trace when it exits.
stop_pid "$ip"
stop_pid "$sp"
stop_pid "$qp"
"$client" join "$work/trace.txt" "$work/recv.txt" >"$work/join.log" 2>&1 || {
    cat "$work/join.log" >&2
    exit 1
}
grep -v '^RESULT ' "$work/join.log" | sed 's/^/   /'
grep '^RESULT ' "$work/join.log"
ok=1

#!/bin/sh
# The benchmark suite in one command: builds in release mode, starts a
# throwaway PostgreSQL, runs every benchmark of bench/ with its same-run
# baseline, prints one table and writes it to bench/RESULTS.md.
#
#   bench/run.sh            the whole suite (about 10 minutes on 2 cores, plus the build;
#                           the capacity run alone is 5 minutes)
#   bench/run.sh quick      shorter runs of everything (smoke test, ~3 min;
#                           figures noisier; RESULTS.md is still written)
#
# Environment:
#   BENCH_BUILD=DIR   build into DIR (RelWithDebInfo) instead of the release
#                     preset's build/release
#   ABIDANCE_SHARED_DATA  recorded captures (default ../shared/data)
#
# Needs (installed when missing and running as root, like scripts/fuzz.sh):
# wrk, curl, Debian's python3 with pandas. Each benchmark states its
# workload in its own header comment and in bench/README.md; raw outputs
# are kept in the work directory printed at the end.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
mode=${1:-full}
case $mode in
full | quick) ;;
*) echo "usage: bench/run.sh [quick]" >&2; exit 2 ;;
esac
shared=${ABIDANCE_SHARED_DATA:-$root/../shared/data}
py=/usr/bin/python3

# ---- dependencies -------------------------------------------------------------
need=
command -v wrk >/dev/null 2>&1 || need="$need wrk"
command -v curl >/dev/null 2>&1 || need="$need curl"
$py -c 'import pandas' >/dev/null 2>&1 || need="$need python3-pandas"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench: missing:$need; run once as root (apt-get install$need)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# ---- build ----------------------------------------------------------------------
if [ -n "${BENCH_BUILD:-}" ]; then
    build=$BENCH_BUILD
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j "$(nproc)" --target bench abidance-query abidance-ingest abidance-sim >/dev/null
else
    build=$root/build/release
    cmake --preset release >/dev/null
    cmake --build --preset release -j "$(nproc)" --target bench abidance-query abidance-ingest abidance-sim >/dev/null
fi
bin=$build/bench
query=$build/services/query/abidance-query

# ---- work directory, PostgreSQL, cleanup ---------------------------------------------
work=$(mktemp -d /tmp/abidance-bench.XXXXXX)
chmod 755 "$work"
results=$work/results.txt
: >"$results"
who=bench
. "$root/bench/lib.sh"
cleanup() {
    stop_all
    sh "$root/tests/integration/pg-fixture.sh" stop "$work/pg" >/dev/null 2>&1 || true
    sh "$root/tests/integration/pg-fixture.sh" stop "$work/pg-durable" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
url=$(sh tests/integration/pg-fixture.sh start "$work/pg" 55439)

# wait_line FILE TEXT: waits up to 120 s for TEXT in FILE.
wait_line() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 1200 ]; then
            echo "bench: timed out waiting for '$2' in $1" >&2
            cat "$1" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# run NAME CMD...: runs a benchmark, shows its output, keeps its RESULT lines.
run() {
    name=$1
    shift
    echo "== $name"
    "$@" >"$work/$name.log" 2>"$work/$name.err" || {
        cat "$work/$name.log" "$work/$name.err" >&2
        echo "bench: $name failed" >&2
        exit 1
    }
    grep -v '^RESULT ' "$work/$name.log" | sed 's/^/   /'
    grep '^RESULT ' "$work/$name.log" >>"$results" || true
}

if [ "$mode" = quick ]; then
    secs=2 wrk_secs=4 store_rows=50000 base_rows=10000 ws_secs=5 seed_secs=5
    mem_candles=2000 mem_secs=20 e2e_secs=10 cap_secs=60
else
    secs=6 wrk_secs=10 store_rows=200000 base_rows=30000 ws_secs=10 seed_secs=20
    mem_candles=10000 mem_secs=60 e2e_secs=30 cap_secs=300
fi
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 1. decode + validate + apply ----------------------------------------------------
run decode "$bin/bench_decode" "$shared/binance" "$secs"

# ---- 2. order book ------------------------------------------------------------------
run book "$bin/bench_book" "$work/book-updates.jsonl" 100000 3
run book_seed $py bench/seed_orderbook.py "$work/book-updates.jsonl" "$seed_secs"

# ---- 3. indicators -------------------------------------------------------------------
run indicators "$bin/bench_indicators" "$work/closes.txt" 100000 3
run indicators_seed $py bench/seed_indicators.py "$work/closes.txt" 3

# ---- 4. candle upserts -----------------------------------------------------------------
# Twice: on the fixture cluster (fsync and synchronous_commit off), and on a
# second cluster with PostgreSQL's durability defaults (fsync,
# synchronous_commit and full_page_writes on), the settings production runs
# with, where the seed's per-row autocommit pays one WAL flush per row. The
# durable pass is the figure checked against the target.
run store "$bin/bench_store" --figure "$url" "$store_rows" "$base_rows"
durl=$(PG_FIXTURE_DURABLE=1 sh tests/integration/pg-fixture.sh start "$work/pg-durable" 55440)
run store_durable "$bin/bench_store" --figure "$durl" "$store_rows" "$base_rows"
sed -i '$ s/^RESULT id=store /RESULT id=store_durable /' "$results"
sh tests/integration/pg-fixture.sh stop "$work/pg-durable" >/dev/null

# ---- 5. GET /v1/candles?limit=1000 under wrk -------------------------------------------
path='/v1/candles?symbol=BTCUSDT&interval=1m&limit=1000'
# wrk_run ID PORT: 2 threads, 64 connections; records requests/s (non-2xx fail the run).
wrk_run() {
    wrk -t2 -c64 -d"${wrk_secs}s" "http://127.0.0.1:$2$path" >"$work/$1.log" 2>&1
    sed 's/^/   /' "$work/$1.log"
    if grep -q 'Non-2xx' "$work/$1.log"; then
        echo "bench: $1: error responses" >&2
        exit 1
    fi
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$work/$1.log")
    echo "RESULT id=$1 value=$rps unit=req/s" >>"$results"
}
echo "== http (wrk -t2 -c64 -d${wrk_secs}s, $path)"
for m in live db; do
    port=$(free_port)
    "$bin/bench_query" http "$url" "$port" $m >"$work/query-$m.log" 2>&1 &
    qp=$!
    pids="$pids $qp"
    wait_line "$work/query-$m.log" ready
    if [ $m = live ]; then
        curl -sf -o "$work/body.json" "http://127.0.0.1:$port$path"
        echo "   body: $(wc -c <"$work/body.json") bytes"
    fi
    echo "   abidance-query REST ($m):"
    wrk_run "http_$m" "$port"
    stop_pid "$qp"
done
port=$(free_port)
"$bin/bench_mhd_min" "$port" "$work/body.json" 4 >"$work/mhd-min.log" 2>&1 &
qp=$!
pids="$pids $qp"
wait_line "$work/mhd-min.log" ready
echo "   minimal libmicrohttpd server, same body:"
wrk_run http_min "$port"
stop_pid "$qp"

# ---- 6. WebSocket fan-out -----------------------------------------------------------------
# ws_run TAG SERVER...: the server (which waits for the subscribers), then the client.
ws_run() {
    tag=$1
    shift
    rm -f "$work/$tag.shm"
    "$@" >"$work/$tag-server.log" 2>&1 &
    sp=$!
    pids="$pids $sp"
    wait_line "$work/$tag-server.log" ready
    "$bin/bench_wsclient" "$tag" "$port" /v1/stream 1000 "$work/$tag.shm" \
        >"$work/$tag-client.log" 2>&1 || {
        cat "$work/$tag-client.log" >&2
        exit 1
    }
    wait "$sp" || true
    stop_pid "$sp"
    for f in "$work/$tag-server.log" "$work/$tag-client.log"; do
        grep -v '^RESULT ' "$f" | grep -v '^\[' | sed 's/^/   /'
        grep '^RESULT ' "$f" >>"$results" || true
    done
}
echo "== ws fan-out (1000 subscribers x 100 msg/s, ${ws_secs}s)"
port=$(free_port)
ws_run ws "$bin/bench_query" ws "$port" "$work/ws.shm" 1000 100 "$ws_secs"
port=$(free_port)
ws_run wsmin "$bin/bench_lws_min" "$port" "$work/wsmin.shm" 1000 100 "$ws_secs"

# ---- 7. memory: abidance-query with 100 symbols x 10k candles -----------------------------------
mkdir -p "$work/qdata"
"$query" --database-url="$url" --http="127.0.0.1:$(free_port)" --ws="127.0.0.1:$(free_port)" \
    --data-dir="$work/qdata" --log-level=error --live-candles=10000 >"$work/mem-query.log" 2>&1 &
qp=$!
pids="$pids $qp"
i=0
while [ ! -S "$work/qdata/bus.sock" ] && [ $i -lt 300 ]; do
    i=$((i + 1))
    sleep 0.1
done
run memory "$bin/bench_feed" "$work/qdata/bus.sock" "$qp" 100 "$mem_candles" 200 "$mem_secs"
stop_pid "$qp"

# ---- 8. end to end: sim -> ingest -> bus -> query -> WebSocket client ------------------------------
# bench/e2e.sh starts its own sim, ingest and query (against this run's
# PostgreSQL) and prints the RESULT lines itself.
run e2e sh bench/e2e.sh "$build" "$url" "$e2e_secs"

# ---- 9. capacity: 1500 symbols at depth@100ms + kline_1m --------------------------------------------
run capacity sh bench/capacity.sh "$build" "$url" "$cap_secs" 1500

# ---- report --------------------------------------------------------------------------------------
t_end=$(date +%s)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then
    commit="$commit (with uncommitted changes)"
fi
$py bench/report.py "$results" \
    --machine "$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
    --memory "$(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)" \
    --kernel "$(uname -sr)" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --commit "$commit" \
    --postgres "$("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/postgres" --version)" \
    --mode "$mode" --duration "$((t_end - t_start))" \
    --load "$load_start -> $(cut -d' ' -f1-3 /proc/loadavg)" --out bench/RESULTS.md
echo "(raw outputs: $work)"
trap - EXIT
cleanup

#!/usr/bin/env bash
# The run command: build what is needed and start the whole stack.
#
#   ./scripts/run.sh              live: abidance-ingest follows Binance
#   ./scripts/run.sh --offline    abidance-sim (fast clock) stands in for Binance
#   ./scripts/run.sh --help
#
# Steps: build the `release` preset (incremental), start a local PostgreSQL
# cluster under .data/pg unless DATABASE_URL is set (created on the first run,
# reused afterwards; Unix socket in .data/run only, no TCP), start
# abidance-query, [abidance-sim,] abidance-ingest with logs in .data/logs/,
# print where to look, and wait. Ctrl-C (or SIGTERM) stops the services
# (ingest, sim, query, each with SIGTERM), then the cluster (pg_ctl -m fast).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ./scripts/run.sh [--offline] [--no-build] [--help]

Builds the release preset (incremental), starts a local PostgreSQL cluster
under .data/pg (unless DATABASE_URL is set), then abidance-query and
abidance-ingest. Logs go to .data/logs/. Ctrl-C stops everything; the data
stays in .data/ for the next run.

Options:
  --offline     start abidance-sim (a local Binance simulator with a fast
                clock) and point abidance-ingest at it instead of Binance
  --no-build    use the binaries already in build/release (no cmake)
  -h, --help    show this help

Environment (the services read the same variables; see their --help):
  DATABASE_URL                 use this database; no local cluster is started
  ABIDANCE_HTTP_ADDR           REST address          (default 127.0.0.1:8080)
  ABIDANCE_WS_ADDR             WebSocket address     (default 127.0.0.1:8081)
  ABIDANCE_INGEST_HEALTH_ADDR  ingest /healthz       (default 127.0.0.1:8082)
  ABIDANCE_SYMBOLS             symbols               (default BTCUSDT,ETHUSDT)
  ABIDANCE_INTERVALS           candle intervals      (default 1m)
  ABIDANCE_WS_URL, ABIDANCE_REST_URL   exchange endpoints (live mode)
  ABIDANCE_SIM_LISTEN          simulator address     (default 127.0.0.1:9443)
  ABIDANCE_SIM_SPEED           simulator clock rate  (default 60: a 1m candle
                               closes every second)
  ABIDANCE_RUN_DIR             state directory       (default ./.data)
  ABIDANCE_PG_PORT             local cluster port; names its socket file only
                               (default 5433)
  PRESET                       CMake preset to build and run (default release)
  ABIDANCE_BIN_DIR             run the binaries of this directory (DIR/abidance-*
                               or a build tree's DIR/<service>/abidance-*);
                               implies --no-build

As root, the local cluster runs as the `postgres` OS user (initdb refuses
root) and .data/pg belongs to it; the services run as the invoking user.
EOF
}

offline=0
build=1
[ -z "${ABIDANCE_BIN_DIR:-}" ] || build=0
while [ $# -gt 0 ]; do
    case $1 in
    --offline) offline=1 ;;
    --no-build) build=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "run.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

cd "$(dirname "$0")/.."
root=$(pwd)
preset=${PRESET:-release}
bindir_build=$root/build/$preset/services

say() { printf 'run.sh: %s\n' "$*"; }
warn() { printf 'run.sh: warning: %s\n' "$*" >&2; }
die() {
    printf 'run.sh: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- state dir
data=${ABIDANCE_RUN_DIR:-$root/.data}
mkdir -p "$data"
data=$(cd "$data" && pwd)
logs=$data/logs
run=$data/run
mkdir -p "$logs" "$run"
# Shown paths are relative to the checkout when they are inside it.
show() { case $1 in "$root"/*) printf '%s' "${1#"$root"/}" ;; *) printf '%s' "$1" ;; esac; }

# One run at a time per state directory (fd 9 is closed in every child).
exec 9>"$data/run.lock"
if ! flock -n 9; then
    die "another run.sh already uses $(show "$data")"
fi

# ---------------------------------------------------------------- helpers
# http_status HOST:PORT PATH -> prints the HTTP status code (000 if none).
http_status() {
    local hostport=$1 path=$2 host port line code
    host=${hostport%:*}
    port=${hostport##*:}
    host=${host#[}
    host=${host%]}
    case $host in '' | 0.0.0.0) host=127.0.0.1 ;; ::) host=::1 ;; esac
    code=000
    if { exec 8<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
        printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&8 2>/dev/null || true
        if IFS=' ' read -r -t 3 _ line _ <&8; then
            code=$line
        fi
        exec 8<&-
    fi
    printf '%s' "$code"
}

# Shown in URLs: a wildcard listen address is reached over loopback.
url_host() {
    local hostport=$1
    case $hostport in
    0.0.0.0:*) printf '127.0.0.1:%s' "${hostport##*:}" ;;
    "[::]":*) printf '[::1]:%s' "${hostport##*:}" ;;
    *) printf '%s' "$hostport" ;;
    esac
}

# Percent-encodes a path for a postgresql:// URI's host parameter.
uri_escape() {
    local LC_ALL=C s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [A-Za-z0-9._~/-]) out+=$c ;;
        *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

# Rotates LOG to LOG.1 and starts it with a header line.
new_log() {
    [ -f "$1" ] && mv -f "$1" "$1.1"
    printf '=== run.sh %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" >"$1"
}

# ---------------------------------------------------------------- prerequisites
missing=()
for tool in cmake cc pkg-config flock setsid; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ] &&
    ! pkg-config --exists libwebsockets libmicrohttpd jansson libpq openssl libsodium; then
    missing+=("development libraries")
fi
# The newest Debian PostgreSQL (/usr/lib/postgresql/<major>/bin), else PATH.
find_pg_bin() {
    local d
    pg_bin=
    while read -r d; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && pg_bin=$d
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    if [ -z "$pg_bin" ] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        pg_bin=$(dirname "$(command -v pg_ctl)")
    fi
}
pg_bin=
if [ -z "${DATABASE_URL:-}" ]; then
    find_pg_bin
    [ -n "$pg_bin" ] || missing+=("PostgreSQL server (initdb, pg_ctl)")
fi
need_pkgs=0
if [ "$build" = 1 ] && [ ${#missing[@]} -gt 0 ]; then
    need_pkgs=1
fi
if [ -z "${DATABASE_URL:-}" ] && [ -z "$pg_bin" ]; then
    need_pkgs=1
fi
if [ "$need_pkgs" = 1 ]; then
    if [ "$(id -u)" = 0 ]; then
        say "missing: ${missing[*]}: installing the Debian packages (scripts/install-deps.sh)"
        ./scripts/install-deps.sh
        [ -n "${DATABASE_URL:-}" ] || find_pg_bin
    else
        die "missing: ${missing[*]}. Install the packages once with: sudo ./scripts/install-deps.sh"
    fi
fi

# ---------------------------------------------------------------- build
if [ "$build" = 1 ]; then
    say "building the $preset preset (log: $(show "$logs/build.log"))"
    : >"$logs/build.log"
    if [ ! -f "$root/build/$preset/CMakeCache.txt" ]; then
        extra=()
        # The tests need Criterion; the run command does not.
        pkg-config --exists criterion || extra+=(-DABIDANCE_TESTS=OFF)
        cmake --preset "$preset" "${extra[@]}" >>"$logs/build.log" 2>&1 ||
            { tail -n 30 "$logs/build.log" >&2; die "cmake configure failed (see $(show "$logs/build.log"))"; }
    fi
    targets=()
    for svc in query ingest sim; do
        [ -f "$root/services/$svc/CMakeLists.txt" ] && targets+=(--target "abidance-$svc")
    done
    cmake --build "$root/build/$preset" -j "$(nproc)" "${targets[@]}" >>"$logs/build.log" 2>&1 ||
        { tail -n 30 "$logs/build.log" >&2; die "build failed (see $(show "$logs/build.log"))"; }
fi

# bin NAME: the binary of service NAME (abidance-NAME).
bin() {
    if [ -n "${ABIDANCE_BIN_DIR:-}" ]; then
        if [ -x "$ABIDANCE_BIN_DIR/$1/abidance-$1" ]; then
            printf '%s' "$ABIDANCE_BIN_DIR/$1/abidance-$1"
        else
            printf '%s' "$ABIDANCE_BIN_DIR/abidance-$1"
        fi
    else
        printf '%s' "$bindir_build/$1/abidance-$1"
    fi
}
query_bin=$(bin query)
ingest_bin=$(bin ingest)
sim_bin=$(bin sim)
[ -x "$query_bin" ] || die "no $(show "$query_bin"): build failed or --no-build without a build"
have_ingest=1
if [ ! -x "$ingest_bin" ]; then
    have_ingest=0
    warn "no $(show "$ingest_bin"): starting without the ingest (no market data will arrive)"
fi
if [ "$offline" = 1 ] && [ ! -x "$sim_bin" ]; then
    die "--offline needs $(show "$sim_bin"), which was not built"
fi

# ---------------------------------------------------------------- shutdown
pids=()
names=()
pg_started=0
pg_data=$data/pg
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stopping=0
cleanup() {
    local rc=$? i pid name n
    [ "$stopping" = 1 ] && return
    stopping=1
    trap '' INT TERM
    # Services in reverse start order: the ingest first (stops publishing),
    # the query service last (flushes its writes to PostgreSQL).
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        name=${names[i]}
        rm -f "$run/$name.pid"
        kill -0 "$pid" 2>/dev/null || continue
        say "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((n = 0; n < 100; n++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            warn "$name did not stop within 10 s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ "$pg_started" = 1 ]; then
        say "stopping PostgreSQL"
        as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            warn "pg_ctl stop failed (see $(show "$logs/postgresql.log"))"
    fi
    say "stopped; data kept in $(show "$data")"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Services left over from a run that was killed with SIGKILL.
for f in "$run"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    case $exe in
    */abidance-*)
        warn "stopping $(basename "$f" .pid) (pid $pid) left over from an earlier run"
        kill -TERM "$pid" 2>/dev/null || true
        for ((n = 0; n < 100; n++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        ;;
    esac
    rm -f "$f"
done

# ---------------------------------------------------------------- PostgreSQL
if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL from the environment; no local cluster"
else
    pg_port=${ABIDANCE_PG_PORT:-5433}
    pg_sock=$run
    # sun_path holds 107 bytes: a deep checkout moves the socket to /tmp.
    if [ $((${#pg_sock} + 22)) -gt 100 ]; then
        pg_sock=/tmp/abidance-run-$(printf '%s' "$data" | md5sum | cut -c1-12)
        mkdir -p "$pg_sock"
    fi
    pg_log=$logs/postgresql.log
    [ -f "$pg_log" ] || : >"$pg_log"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' OS user (Debian's postgresql package)"
        mkdir -p "$pg_data"
        chown postgres: "$pg_data" "$pg_sock" "$pg_log"
        runuser -u postgres -- test -w "$pg_data" ||
            die "the postgres user cannot reach $(show "$pg_data"); set ABIDANCE_RUN_DIR to a directory it can reach, or run as a normal user"
    fi
    chmod 0700 "$pg_sock"
    if [ ! -f "$pg_data/PG_VERSION" ]; then
        say "creating a PostgreSQL cluster in $(show "$pg_data") (first run)"
        as_pg "$pg_bin/initdb" -D "$pg_data" -U abidance -A trust -E UTF8 --locale=C.UTF-8 \
            >"$logs/initdb.log" 2>&1 || { cat "$logs/initdb.log" >&2; die "initdb failed"; }
        echo "include_if_exists = 'abidance-run.conf'" | as_pg tee -a "$pg_data/postgresql.conf" >/dev/null
    else
        say "reusing the PostgreSQL cluster in $(show "$pg_data")"
    fi
    # Written on every start: socket directory and port may change between runs.
    as_pg tee "$pg_data/abidance-run.conf" >/dev/null <<CONF
# Written by scripts/run.sh on every start.
listen_addresses = ''
port = $pg_port
unix_socket_directories = '$pg_sock'
timezone = 'UTC'
log_timezone = 'UTC'
CONF
    if as_pg "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
        warn "PostgreSQL in $(show "$pg_data") was left running by an earlier run: restarting it"
        as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    say "starting PostgreSQL (socket $(show "$pg_sock")/.s.PGSQL.$pg_port, no TCP)"
    # setsid: a Ctrl-C in the terminal reaches run.sh only, which stops
    # PostgreSQL after the services.
    if ! as_pg setsid -w "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_log" -w -t 60 start >/dev/null 9>&-; then
        tail -n 20 "$pg_log" >&2
        die "PostgreSQL did not start (see $(show "$pg_log"))"
    fi
    pg_started=1
    exists=$(as_pg "$pg_bin/psql" -h "$pg_sock" -p "$pg_port" -U abidance -d postgres -Atqc \
        "select 1 from pg_database where datname = 'abidance'" 2>>"$logs/initdb.log" || true)
    if [ "$exists" != 1 ]; then
        as_pg "$pg_bin/createdb" -h "$pg_sock" -p "$pg_port" -U abidance abidance
    fi
    DATABASE_URL="postgresql:///abidance?host=$(uri_escape "$pg_sock")&port=$pg_port&user=abidance"
    export DATABASE_URL
fi

# ---------------------------------------------------------------- services
export ABIDANCE_HTTP_ADDR=${ABIDANCE_HTTP_ADDR:-127.0.0.1:8080}
export ABIDANCE_WS_ADDR=${ABIDANCE_WS_ADDR:-127.0.0.1:8081}
export ABIDANCE_INGEST_HEALTH_ADDR=${ABIDANCE_INGEST_HEALTH_ADDR:-127.0.0.1:8082}
export ABIDANCE_SYMBOLS=${ABIDANCE_SYMBOLS:-BTCUSDT,ETHUSDT}
export ABIDANCE_INTERVALS=${ABIDANCE_INTERVALS:-1m}
export ABIDANCE_DATA_DIR=${ABIDANCE_DATA_DIR:-$data/query}
mkdir -p "$ABIDANCE_DATA_DIR"
export ABIDANCE_BUS=${ABIDANCE_BUS:-$ABIDANCE_DATA_DIR/bus.sock}
[ ${#ABIDANCE_BUS} -le 107 ] || die "bus socket path longer than 107 bytes: set ABIDANCE_BUS or ABIDANCE_RUN_DIR"
if [ "$offline" = 1 ]; then
    export ABIDANCE_SIM_LISTEN=${ABIDANCE_SIM_LISTEN:-127.0.0.1:9443}
    export ABIDANCE_SIM_SPEED=${ABIDANCE_SIM_SPEED:-60}
    export ABIDANCE_SIM_SYMBOLS=${ABIDANCE_SIM_SYMBOLS:-$ABIDANCE_SYMBOLS}
    sim_at=$(url_host "$ABIDANCE_SIM_LISTEN")
    export ABIDANCE_WS_URL=ws://$sim_at
    export ABIDANCE_REST_URL=http://$sim_at
fi

# start NAME BINARY: runs it in its own session (Ctrl-C reaches run.sh only),
# output to .data/logs/NAME.log.
start() {
    local name=$1 bin=$2 log=$logs/$1.log
    new_log "$log" "$bin"
    setsid "$bin" >>"$log" 2>&1 9>&- </dev/null &
    pids+=($!)
    names+=("$name")
    echo $! >"$run/$name.pid"
}

# wait_http NAME HOST:PORT PATH SECONDS: until PATH answers 200, the process
# dies, or the time is up.
wait_http() {
    local name=$1 addr=$2 path=$3 secs=$4 pid=${pids[${#pids[@]} - 1]} n
    for ((n = 0; n < secs * 10; n++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$logs/$name.log" >&2
            die "$name exited during start (see $(show "$logs/$name.log"))"
        fi
        [ "$(http_status "$addr" "$path")" = 200 ] && return 0
        sleep 0.1
    done
    tail -n 20 "$logs/$name.log" >&2
    die "$name did not answer $path on $addr within $secs s (see $(show "$logs/$name.log"))"
}

say "starting abidance-query (log: $(show "$logs/query.log"))"
start query "$query_bin"
wait_http query "$ABIDANCE_HTTP_ADDR" /healthz 30

if [ "$offline" = 1 ]; then
    say "starting abidance-sim on $ABIDANCE_SIM_LISTEN, clock x$ABIDANCE_SIM_SPEED (log: $(show "$logs/sim.log"))"
    start sim "$sim_bin"
    wait_http sim "$ABIDANCE_SIM_LISTEN" /api/v3/ping 15
fi

if [ "$have_ingest" = 1 ]; then
    say "starting abidance-ingest from ${ABIDANCE_WS_URL:-wss://stream.binance.com:9443} (log: $(show "$logs/ingest.log"))"
    start ingest "$ingest_bin"
    wait_http ingest "$ABIDANCE_INGEST_HEALTH_ADDR" /healthz 15
fi

# ---------------------------------------------------------------- banner
rest=http://$(url_host "$ABIDANCE_HTTP_ADDR")
sym=${ABIDANCE_SYMBOLS%%,*}
iv=${ABIDANCE_INTERVALS%%,*}
cat <<EOF

abidance is running$([ "$offline" = 1 ] && printf ' offline (simulator at http://%s, clock x%s)' "$sim_at" "$ABIDANCE_SIM_SPEED")
  REST       $rest   (/v1/candles /v1/indicators/{name} /v1/book /v1/symbols /healthz /readyz /metrics)
  WebSocket  ws://$(url_host "$ABIDANCE_WS_ADDR")/v1/stream
  try        curl '$rest/v1/candles?symbol=$sym&interval=$iv&limit=5'
             curl '$rest/v1/book?symbol=$sym&depth=5'
             curl -i '$rest/readyz'
EOF
[ "$have_ingest" = 1 ] && echo "  ingest     http://$(url_host "$ABIDANCE_INGEST_HEALTH_ADDR")/healthz  /metrics"
if [ "$pg_started" = 1 ]; then
    echo "  database   $(show "$pg_data")   psql '$DATABASE_URL'"
fi
cat <<EOF
  logs       $(show "$logs")/   tail -f $(show "$logs")/*.log
Ctrl-C stops everything; the data stays in $(show "$data") for the next run.

EOF

# ---------------------------------------------------------------- wait
# Returns when a service exits (then everything stops) or on Ctrl-C/SIGTERM.
while :; do
    wait -n "${pids[@]}" || true
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[i]}" 2>/dev/null; then
            warn "${names[i]} exited unexpectedly; last lines of $(show "$logs/${names[i]}.log"):"
            tail -n 20 "$logs/${names[i]}.log" >&2
            exit 1
        fi
    done
done

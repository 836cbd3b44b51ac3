#!/bin/sh
# Builds the libFuzzer targets of fuzz/ with clang and runs each one.
#
#   scripts/fuzz.sh                 30 s per target
#   scripts/fuzz.sh 20              the CI short run (~20 s per target)
#   scripts/fuzz.sh 3600            a long run (an hour per target)
#   scripts/fuzz.sh 600 book decimal   only some targets
#
# Steps: install clang and the libFuzzer runtime when missing (Debian 12,
# needs root), build fuzz/ standalone into $FUZZ_BUILD (default build/fuzz:
# the main build is untouched), replay tests/data/fuzz-regressions/, build
# seed corpora from the recorded exchange data (../shared/data beside the
# checkout, or $ABIDANCE_SHARED_DATA), then fuzz each target for the given
# seconds. Corpora grow in $FUZZ_BUILD/corpus/<target> across runs; crashes
# land in $FUZZ_BUILD/artifacts/<target>/ and make the script exit 1 (logs in
# $FUZZ_BUILD/logs/). See fuzz/README.md for turning a crash into a test.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-30}
[ $# -gt 0 ] && shift
case $secs in
'' | *[!0-9]*) echo "fuzz: SECONDS_PER_TARGET must be a number, got '$secs'" >&2; exit 2 ;;
esac
build=${FUZZ_BUILD:-$root/build/fuzz}
shared=${ABIDANCE_SHARED_DATA:-$root/../shared/data}

# ---- dependencies -----------------------------------------------------------
fuzzer_rt() {
    command -v clang >/dev/null 2>&1 || return 1
    ls "$(clang -print-resource-dir)"/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1
}
if ! fuzzer_rt || ! command -v cmake >/dev/null 2>&1 || ! pkg-config --exists jansson libsodium libmicrohttpd; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "fuzz: clang, the libFuzzer runtime or a library is missing; run as root once" >&2
        echo "      (apt-get install clang libclang-rt-14-dev cmake pkg-config libjansson-dev" >&2
        echo "       libsodium-dev libmicrohttpd-dev python3)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev cmake pkg-config \
        libjansson-dev libsodium-dev libmicrohttpd-dev python3 >/dev/null
    fuzzer_rt || { echo "fuzz: libFuzzer runtime still missing" >&2; exit 1; }
fi

# ---- build --------------------------------------------------------------------
cmake -S fuzz -B "$build" -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
targets=${*:-$(cat "$build/targets.txt")}

# Input caps: big enough for the seeds, small enough to keep mutations fast.
max_len() {
    case $1 in
    decimal) echo 256 ;;
    interval) echo 64 ;;
    cred_file) echo 8192 ;;
    rest_params) echo 2048 ;;
    ws_request) echo 4097 ;;
    book | bus_frame) echo 8192 ;;
    *) echo 16384 ;;
    esac
}
dict() {
    case $1 in
    binance_stream | binance_rest) echo fuzz/binance.dict ;;
    capture_line) echo fuzz/capture.dict ;;
    *) [ -f "fuzz/$1.dict" ] && echo "fuzz/$1.dict" ;;
    esac
}

# ---- regressions: every saved crash must pass ----------------------------------
fail=0
for t in $targets; do
    [ -x "$build/fuzz_$t" ] || { echo "fuzz: no target '$t'" >&2; exit 2; }
    dir=tests/data/fuzz-regressions/$t
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        if ! "$build/fuzz_$t" "$dir"/* >"$build/regress-$t.log" 2>&1; then
            echo "fuzz: $t: a regression input fails again (see $build/regress-$t.log)" >&2
            fail=1
        fi
    fi
done

# ---- corpora -------------------------------------------------------------------
mkdir -p "$build/corpus" "$build/logs"
/usr/bin/python3 fuzz/make_corpus.py "$shared" "$build/corpus"

# ---- fuzz ----------------------------------------------------------------------
start=$(date +%s)
for t in $targets; do
    mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
    d=$(dict "$t" || true)
    log=$build/logs/$t.log
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: 2 GB is a leak.
    if "$build/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" ${d:+-dict="$d"} -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$t/" "$build/corpus/$t" "fuzz/seeds/$t" \
        >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz: $t: ok, ${runs:-?} runs in ${secs}s, corpus $(find "$build/corpus/$t" -type f | wc -l)"
    else
        echo "fuzz: $t: FAILED; input saved under $build/artifacts/$t/:" >&2
        ls "$build/artifacts/$t" >&2
        grep -E 'fuzz check failed|ERROR: |SUMMARY|runtime error' "$log" | head -5 >&2
        fail=1
    fi
done
echo "fuzz: $(echo "$targets" | wc -w) targets in $(($(date +%s) - start)) s"
exit $fail

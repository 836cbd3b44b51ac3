#!/bin/bash
# Valgrind memcheck over the unit and integration tests (docs/valgrind.md).
#
#   scripts/valgrind.sh                     the tests labelled unit or integration
#   scripts/valgrind.sh -L integration      arguments replace that selection:
#   scripts/valgrind.sh -R integration.sim  they go to ctest as they are
#
# Builds build/valgrind (Debug, no sanitizers), then replaces every executable
# of ours in that directory by a small shell wrapper that runs the real binary
# (moved to <dir>/vg-real/<name>) under memcheck. So whatever starts one of
# our binaries (ctest, a Python driver, a C test's fork+exec of
# abidance-query) starts it under valgrind, and nothing in the tests changes.
# Test executables are run with --trace-children=yes (Criterion re-executes
# itself once per test); their children that are not ours (/usr/*, /bin/*,
# shell scripts such as pg-fixture.sh) and our wrapped services (which start
# their own valgrind) are skipped.
#
# One log per process: build/valgrind/vg-logs/vg.<pid>.log. At the end the
# logs are summarised; the exit status is non-zero when a test failed, or
# when any process reported a memcheck error or a definite/indirect leak.
#
# Environment:
#   ABIDANCE_VG_BUILD       build directory (default build/valgrind)
#   ABIDANCE_VG_JOBS        ctest -j (default 2)
#   ABIDANCE_TEST_TIME_SCALE  factor for the CTest TIMEOUTs (default 10);
#                           exported: the Python drivers scale their waits,
#                           deadlines and timeouts by it
#   ABIDANCE_VG_NO_BUILD=1  reuse the build as it is (no configure/build)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${ABIDANCE_VG_BUILD:-$root/build/valgrind}
jobs=${ABIDANCE_VG_JOBS:-2}
scale=${ABIDANCE_TEST_TIME_SCALE:-10}
supp=$root/tests/valgrind.supp
export ABIDANCE_TEST_TIME_SCALE=$scale
# Tells the tests that every abidance process is valgrind running the real
# binary: /proc/<pid> (cmdline, environ, RSS) shows valgrind's, not the
# program's (docs/valgrind.md, "What changes under valgrind").
export ABIDANCE_UNDER_VALGRIND=1

command -v valgrind >/dev/null || {
    echo "valgrind: not installed (scripts/install-deps.sh)" >&2
    exit 2
}
case $build in /*) ;; *) build=$PWD/$build ;; esac
logs=$build/vg-logs

# The summary of the logs in $logs; non-zero when anything counts as a finding.
# How each log counts:
#  - the process exited (an ERROR SUMMARY line): its errors, leaks included;
#  - it was ended by a fatal signal ("Process terminating with default action
#    of signal N": SIGTERM before its handler was installed, a test's own
#    SIGSEGV/SIGABRT): its errors other than leaks, because memory it held
#    mid-operation is no leak; its leak records are listed, not counted;
#  - no ERROR SUMMARY (SIGKILL, or a forked child that exec'd a program not
#    traced: psql, a wrapper): the error records it wrote, if any.
summarise() {
    if ! compgen -G "$logs/vg.*.log" >/dev/null; then
        echo "valgrind: no logs in $logs" >&2
        return 2
    fi
    (cd "$logs" && awk '
    /== Command: / { cmd[FILENAME] = $0; sub(/^==[0-9]+== Command: /, "", cmd[FILENAME]) }
    /== ERROR SUMMARY: / {
        done[FILENAME] = 1; n = $0; sub(/.*ERROR SUMMARY: /, "", n); sub(/ .*/, "", n)
        gsub(/,/, "", n); errs[FILENAME] = n + 0
    }
    /== Process terminating with default action of signal / {
        n = $0; sub(/.*of signal [0-9]+ \(/, "", n); sub(/\).*/, "", n); sig[FILENAME] = n
    }
    /== (Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Argument .* of function|Jump to the invalid|Invalid alignment)/ {
        early[FILENAME]++
    }
    /are (definitely|indirectly) lost in loss record/ { leakrec[FILENAME]++ }
    /== +definitely lost: / { n = $0; sub(/.*lost: /, "", n); sub(/ .*/, "", n); gsub(/,/, "", n); def[FILENAME] += n }
    /== +indirectly lost: / { n = $0; sub(/.*lost: /, "", n); sub(/ .*/, "", n); gsub(/,/, "", n); ind[FILENAME] += n }
    END {
        for (f in cmd) {
            prog = cmd[f]; sub(/ .*/, "", prog); sub(/.*\//, "", prog)
            d = def[f] + 0; i = ind[f] + 0
            if (f in done && !(f in sig)) {
                checked++; progs[prog]++; e = errs[f]
            } else if (f in done) {
                signalled++; progs[prog]++; e = errs[f] - leakrec[f]
                what = prog " " sig[f]; sigs[what]++
                if (d + i > 0)
                    held = held sprintf("  %s: %d B held at the signal, not counted: %s\n", f, d + i, cmd[f])
                d = 0; i = 0
            } else {
                unfinished++; e = early[f] + 0; d = 0; i = 0
            }
            errors += e; defb += d; indb += i
            if (e > 0 || d > 0 || i > 0)
                bad = bad sprintf("  %s: %d errors, %d B definitely + %d B indirectly lost: %s\n",
                                  f, e, d, i, cmd[f])
        }
        printf "valgrind: %d processes ran to exit, %d ended by a fatal signal, %d without a summary (killed, or exec'\''d a program not traced)\n",
               checked, signalled, unfinished
        list = ""
        for (p in progs) list = list sprintf(" %s(%d)", p, progs[p])
        printf "valgrind: checked:%s\n", list
        if (signalled) {
            list = ""
            for (p in sigs) list = list sprintf(" %s x%d", p, sigs[p])
            printf "valgrind: ended by a signal (leaks not counted):%s\n", list
        }
        if (held != "") printf "%s", held
        printf "valgrind: %d errors, %d bytes definitely lost, %d bytes indirectly lost\n",
               errors, defb, indb
        if (bad != "") printf "valgrind: logs with findings:\n%s", bad
        exit (errors > 0 || defb > 0 || indb > 0) ? 1 : 0
    }' vg.*.log)
}

if [ "${1:-}" = --summary ]; then # the logs of the last run again
    summarise
    exit
fi

start=$(date +%s)

# ---- 1. a dedicated Debug build, no sanitizers -------------------------------
if [ "${ABIDANCE_VG_NO_BUILD:-0}" != 1 ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DABIDANCE_SANITIZE=OFF \
        -DABIDANCE_TESTS=ON >/dev/null
    cmake --build "$build" -j "$(nproc)"
fi

# ---- 2. wrap every executable of ours -----------------------------------------
# The options every process gets. Leaks that count: definite and indirect
# (still-reachable and possibly-lost memory at exit is not an error).
vg_common=(--tool=memcheck --leak-check=full "--show-leak-kinds=definite,indirect"
    "--errors-for-leak-kinds=definite,indirect" --error-exitcode=99 --track-origins=yes
    --num-callers=40 --suppressions="$supp" --log-file="$logs/vg.%p.log")
# Test executables also follow their children, but not into programs that are
# not ours, not into scripts, and not into our wrapped services.
vg_test=(--trace-children=yes
    "--trace-children-skip=/usr/*,/bin/*,/sbin/*,/lib/*,/lib64/*,/opt/*,*.sh,*.py,*/abidance-*,*/ws_harness")

write_wrapper() { # path real kind
    local q
    {
        echo '#!/bin/sh'
        echo "# Generated by scripts/valgrind.sh: the real binary is $2"
        printf 'exec valgrind'
        for q in "${vg_common[@]}"; do printf " '%s'" "$q"; done
        if [ "$3" = test ]; then
            for q in "${vg_test[@]}"; do printf " '%s'" "$q"; done
        fi
        printf " '%s' \"\$@\"\n" "$2"
    } >"$1.tmp"
    chmod +x "$1.tmp"
    mv "$1.tmp" "$1"
}

wrapped=0
while IFS= read -r -d '' f; do
    dir=$(dirname "$f") name=$(basename "$f")
    if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        mkdir -p "$dir/vg-real"
        mv -f "$f" "$dir/vg-real/$name" # a fresh link: the new real binary
    fi
    [ -x "$dir/vg-real/$name" ] || continue
    case $name in
    abidance-* | ws_harness) kind=service ;;
    *) kind="test" ;;
    esac
    write_wrapper "$f" "$dir/vg-real/$name" "$kind"
    wrapped=$((wrapped + 1))
done < <(find "$build/services" "$build/tests" -type f -perm -u+x \
    -not -path '*/CMakeFiles/*' -not -path '*/vg-real/*' -print0)
echo "valgrind: $wrapped executables wrapped"

# ---- 3. CTest time limits ------------------------------------------------------
# Memcheck runs code 10-50 times slower: scale every TIMEOUT of this build's
# CTest files, once per file (each configure writes them anew).
mark="# TIMEOUTs scaled by scripts/valgrind.sh"
while IFS= read -r -d '' f; do
    grep -qF "$mark" "$f" && continue
    # shellcheck disable=SC2016 # perl, not shell, expands $1
    perl -pi -e 's/\bTIMEOUT "(\d+)"/"TIMEOUT \"" . ($1 * '"$scale"') . "\""/ge' "$f"
    echo "$mark x$scale" >>"$f"
done < <(find "$build" -name CTestTestfile.cmake -not -path '*/vg-real/*' -print0)

# ---- 4. run ---------------------------------------------------------------------
rm -rf "$logs"
mkdir -p "$logs"
set +e
[ $# -gt 0 ] || set -- -L 'unit|integration'
ctest --test-dir "$build" -j "$jobs" --output-on-failure "$@"
test_rc=$?
set -e

# ---- 5. summary ----------------------------------------------------------------------
vg_rc=0
summarise || vg_rc=$?
echo "valgrind: logs in $logs; ctest exit $test_rc; $(($(date +%s) - start)) s in all"
if [ "$test_rc" != 0 ] || [ "$vg_rc" != 0 ]; then
    exit 1
fi

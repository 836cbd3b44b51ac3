# Shell helpers shared by bench/run.sh, bench/e2e.sh and bench/capacity.sh
# (POSIX sh; sourced, not run). The caller sets:
#   py     a python3 with the standard library (/usr/bin/python3)
#   who    the prefix of error messages ("e2e", "capacity", "bench")
# and keeps the processes it starts in $pids (space-separated), so that
# stop_all, called from its EXIT trap, stops whatever is still running.

pids=

# stop_all: SIGTERM to every process in $pids, then waits for them.
stop_all() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    for p in $pids; do
        wait "$p" 2>/dev/null || true
    done
    pids=
}

# stop_pid PID: SIGTERM to one process we started, waits for it, forgets it.
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    rest=
    for p in $pids; do
        [ "$p" = "$1" ] || rest="$rest $p"
    done
    pids=$rest
}

# cleanup_work KEEP: for an EXIT trap of a script with a $work directory and
# ok=1 once it succeeded: stops everything, then removes $work, unless the
# run failed or KEEP is non-empty (then it says where the logs are).
cleanup_work() {
    stop_all
    if [ "${ok:-0}" = 1 ] && [ -z "$1" ]; then
        rm -rf "$work"
    else
        echo "$who: logs in $work" >&2
    fi
}

# free_port: a free TCP port on 127.0.0.1.
free_port() {
    $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for DESC SECONDS PID CMD...: runs CMD every 0.2 s until it succeeds;
# exits 1 when PID dies or SECONDS pass first.
wait_for() {
    what=$1 limit=$(($2 * 5)) pid=$3
    shift 3
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if ! kill -0 "$pid" 2>/dev/null || [ $i -gt $limit ]; then
            echo "$who: $what did not come up" >&2
            exit 1
        fi
        sleep 0.2
    done
}

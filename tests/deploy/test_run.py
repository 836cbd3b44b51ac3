#!/usr/bin/python3
"""The run command end to end, offline (CTest deploy.run).

  test_run.py --run scripts/run.sh --bin-dir BUILD/services --work DIR

Starts `run.sh --offline` twice against the binaries of BIN_DIR with its
state in WORK (removed first) on free loopback ports:

1. first run: a fresh cluster is created; query, sim and ingest answer on the
   printed addresses; a marker table is written through the printed
   database URL; Ctrl-C (SIGINT to the whole process group, as a terminal
   sends it) stops every service and the cluster, exit status 130;
2. second run: the cluster is reused (the marker is still there); SIGTERM
   stops everything, exit status 143.
"""
import argparse
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

failures = []
# Slower runs (scripts/valgrind.sh sets ABIDANCE_TEST_TIME_SCALE) wait longer.
try:
    SCALE = max(1.0, float(os.environ.get("ABIDANCE_TEST_TIME_SCALE", "1")))
except ValueError:
    SCALE = 1.0


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=3 * SCALE) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def gone(pid, timeout=5.0 * SCALE):
    """True once PID has exited (a server may linger an instant after its pid file)."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start(args, env):
    def child():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return subprocess.Popen([args.run, "--offline"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=child)


def read_banner(proc, timeout):
    """Output up to the banner's last line; None if run.sh exits first."""
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            if b"Ctrl-C stops everything" in buf:
                return buf.decode(errors="replace")
    print(buf.decode(errors="replace"), file=sys.stderr)
    return None


def finish(proc, sig, to_group):
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    out = b""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return out.decode(errors="replace")


def one_run(args, env, work, ports, first):
    name = "first" if first else "second"
    proc = start(args, env)
    banner = read_banner(proc, 120)
    if not check(banner is not None, f"{name} run: no banner (run.sh exited or hung)"):
        if proc.poll() is None:
            finish(proc, signal.SIGKILL, True)
        return
    print(banner)
    if first:
        check("creating a PostgreSQL cluster" in banner, "first run: no new cluster")
    else:
        check("reusing the PostgreSQL cluster" in banner, "second run: cluster not reused")
    http, ingest_health, sim = ports[0], ports[2], ports[3]
    check(f"http://127.0.0.1:{http}" in banner, f"{name} run: REST address not printed")
    check(f"ws://127.0.0.1:{ports[1]}/v1/stream" in banner, f"{name} run: WS address not printed")
    check("curl '" in banner, f"{name} run: no curl example")
    root = os.path.dirname(os.path.dirname(os.path.abspath(args.run)))
    shown = os.path.relpath(work, root) if work.startswith(root + "/") else work
    check(f"logs       {shown}/logs/" in banner, f"{name} run: log directory not printed")
    check(http_status(f"http://127.0.0.1:{http}/healthz") == 200, f"{name} run: query /healthz")
    check(http_status(f"http://127.0.0.1:{sim}/api/v3/ping") == 200, f"{name} run: sim ping")
    if os.path.exists(os.path.join(args.bin_dir, "ingest", "abidance-ingest")):
        check(http_status(f"http://127.0.0.1:{ingest_health}/healthz") == 200,
              f"{name} run: ingest /healthz")

    m = re.search(r"psql '([^']+)'", banner)
    if check(m is not None, f"{name} run: database URL not printed"):
        url = m.group(1)
        if first:
            sql = "create table run_marker (n int); insert into run_marker values (42)"
        else:
            sql = "select n from run_marker"
        r = subprocess.run(["psql", url, "-Atqc", sql], capture_output=True, text=True)
        check(r.returncode == 0, f"{name} run: psql failed: {r.stderr.strip()}")
        if not first:
            check(r.stdout.strip() == "42", f"second run: marker row lost ({r.stdout!r})")

    run_dir = os.path.join(work, "run")
    pids = {}
    for f in os.listdir(run_dir):
        if f.endswith(".pid"):
            with open(os.path.join(run_dir, f)) as fh:
                pids[f[:-4]] = int(fh.read().strip())
    expect = {"query", "sim"}
    check(expect <= set(pids), f"{name} run: pid files {sorted(pids)}")
    pg_pid_file = os.path.join(work, "pg", "postmaster.pid")
    pg_pid = None
    if check(os.path.exists(pg_pid_file), f"{name} run: PostgreSQL not running"):
        with open(pg_pid_file) as fh:
            pg_pid = int(fh.readline())

    # A terminal's Ctrl-C reaches the whole foreground process group.
    sig = signal.SIGINT if first else signal.SIGTERM
    tail = finish(proc, sig, to_group=first)
    print(tail)
    want = 128 + sig
    check(proc.returncode == want, f"{name} run: exit status {proc.returncode}, want {want}")
    check("stopping PostgreSQL" in tail, f"{name} run: PostgreSQL not stopped")
    check("stopped; data kept" in tail, f"{name} run: no final message")
    # Services before the database.
    if "stopping query" in tail and "stopping PostgreSQL" in tail:
        check(tail.find("stopping query") < tail.find("stopping PostgreSQL"),
              f"{name} run: PostgreSQL stopped before the query service")
    for svc, pid in pids.items():
        check(gone(pid), f"{name} run: {svc} (pid {pid}) still running")
    if pg_pid:
        check(gone(pg_pid), f"{name} run: PostgreSQL (pid {pg_pid}) still running")
    check(not os.path.exists(pg_pid_file), f"{name} run: postmaster.pid left behind")
    left = [f for f in os.listdir(run_dir) if f.endswith(".pid")]
    check(not left, f"{name} run: pid files left: {left}")
    with open(os.path.join(work, "logs", "query.log")) as fh:
        log = fh.read()
    check("stopping signal=SIGTERM" in log, f"{name} run: query did not get SIGTERM")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()

    work = os.path.abspath(args.work)
    if os.path.exists(work):
        pg = os.path.join(work, "pg")
        if os.path.exists(os.path.join(pg, "postmaster.pid")):
            print("test_run: a cluster of an earlier test still runs in", pg, file=sys.stderr)
            return 1
        shutil.rmtree(work)
    os.makedirs(work)

    ports = free_ports(4)
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("ABIDANCE_", "PG")) or k == "DATABASE_URL":
            del env[k]
    env.update({
        "ABIDANCE_BIN_DIR": os.path.abspath(args.bin_dir),
        "ABIDANCE_RUN_DIR": work,
        "ABIDANCE_HTTP_ADDR": f"127.0.0.1:{ports[0]}",
        "ABIDANCE_WS_ADDR": f"127.0.0.1:{ports[1]}",
        "ABIDANCE_INGEST_HEALTH_ADDR": f"127.0.0.1:{ports[2]}",
        "ABIDANCE_SIM_LISTEN": f"127.0.0.1:{ports[3]}",
        "ABIDANCE_PG_PORT": "5433",
    })
    one_run(args, env, work, ports, first=True)
    if not failures:
        one_run(args, env, work, ports, first=False)
    if failures:
        print(f"test_run: {len(failures)} failures", file=sys.stderr)
        return 1
    print("test_run: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Cheap checks of the deployment files (CTest deploy.check); builds no image.
#
#   tests/deploy/check-deploy.sh [--query BIN] [--ingest BIN] [--sim BIN] [--cred BIN]
#
# Run from the checkout's root. Checks:
#   - docker-compose.yml: parses (docker-compose config, when installed, plain
#     and with the offline profile) and has the expected shape (python3-yaml):
#     services, health-gated depends_on, restart policies, the shared bus
#     volume, the offline profile, loopback-only ports;
#   - every ABIDANCE_* / DATABASE_URL / CREDENTIAL_KEY the compose file, the
#     env examples and run.sh hand to a service is a setting its --help lists;
#   - deploy/systemd/*.service: the hardening keys, and systemd-analyze verify
#     (when installed) reports nothing about them;
#   - Dockerfile: multi-stage, the install script's package sets, non-root
#     user, HEALTHCHECK; the --runtime package set holds every library the
#     built binaries load directly (objdump + dpkg);
#   - scripts/run.sh --help works, a bad argument is refused;
#   - shellcheck (when installed) on every deployment script.
set -uo pipefail

declare -A bin=()
while [ $# -gt 0 ]; do
    case $1 in
    --query | --ingest | --sim | --cred)
        [ $# -ge 2 ] || { echo "check-deploy: $1 needs a path" >&2; exit 2; }
        bin[${1#--}]=$2
        shift 2
        ;;
    *)
        echo "usage: $0 [--query BIN] [--ingest BIN] [--sim BIN] [--cred BIN]" >&2
        exit 2
        ;;
    esac
done

[ -f docker-compose.yml ] || { echo "check-deploy: run from the checkout's root" >&2; exit 2; }
failures=0
checks=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
ok() {
    checks=$((checks + 1))
}
# expect MESSAGE COMMAND...: COMMAND must succeed.
expect() {
    local msg=$1
    shift
    if "$@"; then ok; else fail "$msg"; fi
}
# refuse MESSAGE CODE COMMAND...: COMMAND must exit with CODE.
refuse() {
    local msg=$1 code=$2 rc
    shift 2
    "$@" >/dev/null 2>&1
    rc=$?
    if [ "$rc" -eq "$code" ]; then ok; else fail "$msg (exit $rc)"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ------------------------------------------------------------ compose
if command -v docker-compose >/dev/null 2>&1; then
    for args in "" "--profile offline" "--env-file deploy/env/compose-offline.env"; do
        # shellcheck disable=SC2086
        if docker-compose -f docker-compose.yml $args config -q 2>"$tmp/dc.err"; then
            ok
        else
            fail "docker-compose $args config: $(cat "$tmp/dc.err")"
        fi
    done
    docker-compose -f docker-compose.yml --env-file deploy/env/compose-offline.env config \
        >"$tmp/dc.offline" 2>&1
    if grep -q 'ABIDANCE_WS_URL: ws://sim:9443' "$tmp/dc.offline"; then
        ok
    else
        fail "compose-offline.env does not point the ingest at the simulator"
    fi
else
    echo "check-deploy: docker-compose not installed: structural checks only"
fi

if ! /usr/bin/python3 - docker-compose.yml >"$tmp/compose.out" 2>&1 <<'PY'; then
import sys
import yaml

doc = yaml.safe_load(open(sys.argv[1]))
bad = []
svcs = doc.get("services", {})
for name in ("postgres", "query", "ingest", "sim"):
    if name not in svcs:
        bad.append(f"no service {name}")
if bad:
    print("\n".join(bad))
    sys.exit(1)
pg = svcs["postgres"]
if not str(pg.get("image", "")).startswith(("postgres:15", "postgres:16")):
    bad.append("postgres: image is not postgres:15 or postgres:16")
if not any(str(v).endswith("/var/lib/postgresql/data") for v in pg.get("volumes", [])):
    bad.append("postgres: no data volume")
for name, svc in svcs.items():
    if "healthcheck" not in svc or not svc["healthcheck"].get("test"):
        bad.append(f"{name}: no healthcheck")
    if svc.get("restart") not in ("always", "unless-stopped", "on-failure"):
        bad.append(f"{name}: no restart policy")
    for p in svc.get("ports", []):
        if not str(p).startswith("127.0.0.1:"):
            bad.append(f"{name}: port {p} not published on 127.0.0.1 only")
for name in ("query", "ingest", "sim"):
    svc = svcs[name]
    if "build" not in svc:
        bad.append(f"{name}: not built from the Dockerfile")
    cmd = svc.get("command") or []
    if not cmd or cmd[0] != f"abidance-{name}":
        bad.append(f"{name}: command is not abidance-{name}")
dep = svcs["query"].get("depends_on", {})
if not isinstance(dep, dict) or dep.get("postgres", {}).get("condition") != "service_healthy":
    bad.append("query: does not wait for a healthy postgres")
dep = svcs["ingest"].get("depends_on", {})
if not isinstance(dep, dict) or dep.get("query", {}).get("condition") != "service_healthy":
    bad.append("ingest: does not wait for a healthy query")
def vols(svc):
    return {str(v).split(":")[0]: str(v).split(":")[1] for v in svc.get("volumes", [])}
qv, iv = vols(svcs["query"]), vols(svcs["ingest"])
shared = [v for v in qv if v in iv and qv[v] == iv[v]]
if not shared:
    bad.append("query and ingest share no volume (bus socket)")
else:
    bus_dir = qv[shared[0]]
    for name in ("query", "ingest"):
        bus = svcs[name].get("environment", {}).get("ABIDANCE_BUS", "")
        if not bus.startswith(bus_dir + "/"):
            bad.append(f"{name}: ABIDANCE_BUS {bus!r} is not in the shared volume {bus_dir}")
if "offline" not in svcs["sim"].get("profiles", []):
    bad.append("sim: not in the offline profile")
if "profiles" in svcs["query"] or "profiles" in svcs["ingest"]:
    bad.append("query/ingest must run without a profile")
env = svcs["query"].get("environment", {})
if "postgres:5432" not in env.get("DATABASE_URL", ""):
    bad.append("query: DATABASE_URL does not point at the postgres service")
for name in ("query", "ingest", "sim"):
    for k in svcs[name].get("environment", {}):
        print(f"ENV {name} {k}")
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY
    fail "docker-compose.yml: $(grep -v '^ENV ' "$tmp/compose.out")"
else
    ok
fi

# ------------------------------------------------------------ settings exist
# known NAME VAR: the service's --help mentions VAR.
help_of() {
    local name=$1
    if [ ! -f "$tmp/help.$name" ]; then
        "${bin[$name]}" --help >"$tmp/help.$name" 2>&1 || fail "abidance-$name --help failed"
    fi
    cat "$tmp/help.$name"
}
check_var() {
    local name=$1 var=$2 where=$3
    [ -n "${bin[$name]:-}" ] || return 0
    if help_of "$name" | grep -Eq "(^|[^A-Z_])$var([^A-Z_]|\$)"; then
        ok
    else
        fail "$where: $var is not a setting of abidance-$name (not in its --help)"
    fi
}
if [ -f "$tmp/compose.out" ]; then
    while read -r _ svc var; do
        check_var "$svc" "$var" "docker-compose.yml ($svc)"
    done < <(grep '^ENV ' "$tmp/compose.out")
fi
for pair in query:query.env.example ingest:ingest.env.example sim:sim.env.example; do
    svc=${pair%%:*}
    f=deploy/env/${pair#*:}
    [ -f "$f" ] || { fail "missing $f"; continue; }
    # Set and commented-out settings alike.
    while read -r var; do
        check_var "$svc" "$var" "$f"
    done < <(sed -nE 's/^#?((ABIDANCE|DATABASE|CREDENTIAL)_[A-Z_]*)=.*/\1/p' "$f" | sort -u)
done
for u in query ingest sim; do
    while read -r var; do
        check_var "$u" "$var" "deploy/systemd/abidance-$u.service"
    done < <(sed -nE 's/^#?[[:space:]]*Environment=((ABIDANCE|DATABASE)_[A-Z_]*)=.*/\1/p' \
        "deploy/systemd/abidance-$u.service" | sort -u)
done
for var in ABIDANCE_HTTP_ADDR ABIDANCE_WS_ADDR ABIDANCE_DATA_DIR ABIDANCE_BUS DATABASE_URL; do
    check_var query "$var" scripts/run.sh
done
for var in ABIDANCE_INGEST_HEALTH_ADDR ABIDANCE_BUS ABIDANCE_WS_URL ABIDANCE_REST_URL; do
    check_var ingest "$var" scripts/run.sh
done
for var in ABIDANCE_SIM_LISTEN ABIDANCE_SIM_SPEED ABIDANCE_SIM_SYMBOLS; do
    check_var sim "$var" scripts/run.sh
done

# ------------------------------------------------------------ systemd units
required=(
    "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes"
    "PrivateDevices=yes" "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"
    "MemoryDenyWriteExecute=yes" "SystemCallFilter=@system-service"
    "SystemCallArchitectures=native" "CapabilityBoundingSet=" "Restart=on-failure"
    "ProtectKernelTunables=yes" "ProtectKernelModules=yes" "ProtectControlGroups=yes"
    "RestrictNamespaces=yes" "LockPersonality=yes" "RestrictSUIDSGID=yes"
)
for u in query ingest sim; do
    f=deploy/systemd/abidance-$u.service
    [ -f "$f" ] || { fail "missing $f"; continue; }
    for kv in "${required[@]}"; do
        if grep -qxF "$kv" "$f"; then ok; else fail "$f: no '$kv'"; fi
    done
    expect "$f: runs as root" grep -Eq '^(User=abidance|DynamicUser=yes)$' "$f"
    expect "$f: ExecStart" grep -q "^ExecStart=/usr/local/bin/abidance-$u\$" "$f"
done
for u in query ingest; do
    f=deploy/systemd/abidance-$u.service
    expect "$f: EnvironmentFile" grep -qx "EnvironmentFile=/etc/abidance/$u.env" "$f"
    expect "$f: RuntimeDirectory" grep -qx "RuntimeDirectory=abidance" "$f"
    expect "$f: RuntimeDirectoryPreserve=yes (stopping one unit must keep the other's socket)" \
        grep -qx "RuntimeDirectoryPreserve=yes" "$f"
    expect "$f: ABIDANCE_BUS" grep -qx "Environment=ABIDANCE_BUS=/run/abidance/bus.sock" "$f"
done
expect "abidance-query.service: StateDirectory" \
    grep -qx "StateDirectory=abidance" deploy/systemd/abidance-query.service
expect "abidance.sysusers: no user" grep -qE '^u abidance ' deploy/systemd/abidance.sysusers
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$tmp/units"
    for f in deploy/systemd/*.service; do
        # verify wants an executable ExecStart: point it at one.
        sed 's#^ExecStart=/usr/local/bin/abidance-[a-z]*#ExecStart=/bin/true#' "$f" \
            >"$tmp/units/$(basename "$f")"
    done
    systemd-analyze verify "$tmp"/units/*.service >"$tmp/verify.out" 2>&1
    # It exits 0 on unknown keys and bad values: any line about our units fails.
    if grep -F "$tmp/units/" "$tmp/verify.out" >&2; then
        fail "systemd-analyze verify complained (above)"
    else
        ok
    fi
else
    echo "check-deploy: systemd-analyze not installed: unit keys checked by grep only"
fi

# ------------------------------------------------------------ Dockerfile
df=Dockerfile
expect "$df: not multi-stage" [ "$(grep -c '^FROM ' "$df")" -ge 2 ]
expect "$df: build stage does not use install-deps.sh --build" grep -q 'install-deps.sh --build' "$df"
expect "$df: runtime stage does not use install-deps.sh --runtime" grep -q 'install-deps.sh --runtime' "$df"
expect "$df: not Debian 12 (bookworm)" grep -Eq '^(FROM|ARG) .*debian:bookworm' "$df"
expect "$df: no non-root USER" grep -Eq '^USER +[1-9]' "$df"
expect "$df: no HEALTHCHECK" grep -q '^HEALTHCHECK ' "$df"
expect ".dockerignore: build/ is not excluded" grep -qx 'build' .dockerignore
# The runtime set covers what the binaries load directly (libc6 is in every
# image), itself or through the packages' own dependencies (libwebsockets16
# brings libcap2). Sanitizer runtimes are skipped: sanitized builds are for
# tests and are never shipped.
runtime=$(./scripts/install-deps.sh --list --runtime)
# shellcheck disable=SC2086
runtime_deps=$(dpkg-query -W -f='${Depends}\n' $runtime 2>/dev/null |
    tr ',|' '\n' | sed 's/(.*//; s/:any//; s/ //g' | sort -u)
if command -v objdump >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
    for name in "${!bin[@]}"; do
        b=${bin[$name]}
        while read -r lib; do
            case $lib in
            libasan.so* | libubsan.so* | liblsan.so* | libtsan.so*) continue ;;
            esac
            path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64|64bit/ {print $NF; exit}')
            [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
            [ -n "$path" ] || { fail "abidance-$name: $lib not found by ldconfig"; continue; }
            pkg=$(dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null ||
                dpkg -S "$(readlink -f "$path")" 2>/dev/null)
            pkg=${pkg%%:*}
            case " libc6 $(echo "$runtime" "$runtime_deps" | tr '\n' ' ') " in
            *" $pkg "*) ok ;;
            *) fail "abidance-$name loads $lib ($pkg), which install-deps.sh --runtime lacks" ;;
            esac
        done < <(objdump -p "$b" | awk '/NEEDED/ {print $2}')
    done
fi

# ------------------------------------------------------------ run.sh
if ./scripts/run.sh --help >"$tmp/run.help" 2>&1 && grep -q -- '--offline' "$tmp/run.help"; then
    ok
else
    fail "scripts/run.sh --help: $(cat "$tmp/run.help")"
fi
refuse "scripts/run.sh accepts an unknown flag" 2 ./scripts/run.sh --no-such-flag
refuse "install-deps.sh --list --build failed" 0 ./scripts/install-deps.sh --list --build
refuse "install-deps.sh accepts an unknown set" 2 ./scripts/install-deps.sh --bogus
refuse "healthcheck.sh: wrong exit against a closed port" 1 \
    ./deploy/docker/healthcheck.sh http://127.0.0.1:1/healthz
refuse "healthcheck.sh: accepts a non-http URL" 2 ./deploy/docker/healthcheck.sh ftp://x/

# ------------------------------------------------------------ shellcheck
if command -v shellcheck >/dev/null 2>&1; then
    if shellcheck scripts/run.sh scripts/install-deps.sh deploy/docker/healthcheck.sh \
        tests/deploy/*.sh >&2; then
        ok
    else
        fail "shellcheck (above)"
    fi
else
    echo "check-deploy: shellcheck not installed: skipped"
fi

echo "check-deploy: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]

#!/bin/sh
# Install the Debian 12 packages abidance needs. Run as root (or through sudo).
# Safe to run again: apt-get skips what is there.
#
#   ./scripts/install-deps.sh            everything: build, run, test (the README's
#                                        test and run commands rely on this)
#   ./scripts/install-deps.sh --build    only what compiling the services needs
#                                        (the Dockerfile's build stage)
#   ./scripts/install-deps.sh --runtime  only the shared libraries the binaries
#                                        load, plus CA certificates (the
#                                        Dockerfile's runtime stage)
#   ./scripts/install-deps.sh --list [SET]  print the packages of SET, install nothing
set -eu

# Shared libraries of the built binaries (objdump -p ... | grep NEEDED).
runtime="ca-certificates libwebsockets17 libmicrohttpd12 libjansson4 libpq5 libssl3
  libsodium23"
build="build-essential cmake pkg-config ca-certificates
  libwebsockets-dev libmicrohttpd-dev libjansson-dev libpq-dev libssl-dev libsodium-dev"
# Tests, the run command (local PostgreSQL cluster), the checks of tests/deploy
# and scripts/valgrind.sh.
all="$build git curl libcriterion-dev postgresql clang-format python3 python3-pandas
  python3-websockets python3-yaml shellcheck valgrind"

usage() {
    echo "usage: $0 [--all | --build | --runtime] | --list [--all | --build | --runtime]" >&2
    exit 2
}

list=0
if [ "${1:-}" = --list ]; then
    list=1
    shift
fi
case ${1:---all} in
--all) pkgs=$all ;;
--build) pkgs=$build ;;
--runtime) pkgs=$runtime ;;
-h | --help) usage ;;
*) usage ;;
esac
[ $# -le 1 ] || usage

if [ "$list" = 1 ]; then
    # shellcheck disable=SC2086
    printf '%s\n' $pkgs
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (sudo $0 ${1:-})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
echo "install-deps: ok (${1:---all})"

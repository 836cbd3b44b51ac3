#!/bin/sh
# Install everything abidance needs to build, test and run on Debian 12.
# Run as root (or through sudo). Safe to run again: apt-get skips what is there.
set -eu
pkgs="build-essential cmake pkg-config git ca-certificates curl
  libwebsockets-dev libmicrohttpd-dev libjansson-dev libpq-dev libssl-dev libsodium-dev
  libcriterion-dev postgresql clang-format python3 python3-pandas python3-websockets"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (sudo $0)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
echo "install-deps: ok"

#!/bin/sh
# The test command: install what is needed (Debian 12, as root), build the
# `dev` preset (warnings are errors) and run every test: unit, integration
# (each starts its own throwaway PostgreSQL and simulator), deployment checks
# and the format check. Then build the `release` preset as well, because
# gcc -O2 finds warnings (uninitialised values, truncation) that -O0 misses.
#
#   ./scripts/test.sh              everything, dev preset
#   PRESET=asan ./scripts/test.sh  the same under ASan+UBSan
#   SKIP_DEPS=1 ./scripts/test.sh  skip the apt-get step (packages already there)
set -eu
cd "$(dirname "$0")/.."
preset=${PRESET:-dev}
if [ "${SKIP_DEPS:-0}" != 1 ]; then
    ./scripts/install-deps.sh
fi
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
if [ "$preset" = dev ]; then
    cmake --preset release >/dev/null
    cmake --build --preset release -j "$(nproc)"
    echo "test: release build clean"
fi

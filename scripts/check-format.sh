#!/bin/sh
# Fails when any tracked C source is not formatted as .clang-format says.
# Usage: scripts/check-format.sh [clang-format]   (from the project root)
set -eu
cf=${1:-clang-format}
files=$(find common services tests bench fuzz -name '*.[ch]' 2>/dev/null | sort)
[ -n "$files" ] || { echo "check-format: no sources found" >&2; exit 1; }
# shellcheck disable=SC2086
"$cf" --dry-run --Werror $files
echo "check-format: $(echo "$files" | wc -l) files clean"

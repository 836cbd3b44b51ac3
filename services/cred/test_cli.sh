#!/bin/sh
# CLI test for abidance-cred: keygen -> encrypt -> check round trip, failure
# modes with their exit codes and messages, file modes, and that the secret
# never appears in any output.
# Usage: test_cli.sh /path/to/abidance-cred
set -u
BIN=${1:?usage: test_cli.sh /path/to/abidance-cred}
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT INT TERM
ALL="$dir/all-output"   # every stdout/stderr of every run, searched at the end
: >"$ALL"
failures=0
checks=0

API_KEY="vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
API_SECRET="NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

ok()  { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

# run EXPECTED_STATUS NAME cmd...: runs cmd, keeps its output in $out/$err.
run() {
    want=$1; name=$2; shift 2
    "$@" >"$dir/out" 2>"$dir/err" </dev/null
    got=$?
    cat "$dir/out" "$dir/err" >>"$ALL"
    if [ "$got" -eq "$want" ]; then ok; else
        bad "$name: exit $got, want $want"; sed 's/^/  | /' "$dir/out" "$dir/err" >&2
    fi
}
# run_in INPUT EXPECTED NAME cmd...: like run, with INPUT on stdin.
run_in() {
    input=$1; want=$2; name=$3; shift 3
    printf '%s' "$input" | "$@" >"$dir/out" 2>"$dir/err"
    got=$?
    cat "$dir/out" "$dir/err" >>"$ALL"
    if [ "$got" -eq "$want" ]; then ok; else
        bad "$name: exit $got, want $want"; sed 's/^/  | /' "$dir/out" "$dir/err" >&2
    fi
}
expect_in() { # FILE PATTERN NAME
    if grep -q -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(basename "$1"):"; sed 's/^/  | /' "$1" >&2; fi
}
mode_of() { stat -c %a "$1"; }

# --- help, version, usage ---
run 0 "--version" "$BIN" --version
expect_in "$dir/out" '^abidance-cred [0-9][0-9.]*' "--version"
run 0 "--help" "$BIN" --help
for w in keygen encrypt check CREDENTIAL_KEY ABIDANCE_API_KEY ABIDANCE_API_SECRET; do
    expect_in "$dir/out" "$w" "--help lists $w"
done
run 2 "no command" "$BIN"
run 2 "unknown command" "$BIN" frobnicate
expect_in "$dir/err" "unknown command" "unknown command message"
run 2 "keygen extra arg" "$BIN" keygen extra
run 2 "encrypt without --out" "$BIN" encrypt
run 2 "encrypt with credentials in argv" "$BIN" encrypt --out "$dir/x" "$API_KEY" "$API_SECRET"
expect_in "$dir/err" "never from arguments" "argv refusal message"
run 2 "check without file" "$BIN" check

# --- keygen ---
run 0 "keygen" "$BIN" keygen
KEY=$(cat "$dir/out")
if printf '%s' "$KEY" | grep -Eq '^[0-9a-f]{64}$'; then ok; else bad "keygen printed '$KEY'"; fi
run 0 "keygen again" "$BIN" keygen
KEY2=$(cat "$dir/out")
if [ "$KEY" != "$KEY2" ]; then ok; else bad "two keygens printed the same key"; fi

# --- encrypt from stdin, with a permissive umask: the file must still be 0600 ---
F="$dir/cred.bin"
run_in "$API_KEY
$API_SECRET
" 0 "encrypt stdin" env CREDENTIAL_KEY="$KEY" sh -c 'umask 000; exec "$0" "$@"' "$BIN" encrypt --out "$F"
expect_in "$dir/out" "ok: wrote" "encrypt reports success"
if [ -f "$F" ] && [ "$(mode_of "$F")" = 600 ]; then ok; else bad "mode of $F is $(mode_of "$F" 2>&1), want 600"; fi
if [ "$(wc -c <"$F")" -eq 565 ]; then ok; else bad "file size $(wc -c <"$F"), want 565"; fi
if grep -q "$API_SECRET" "$F" || grep -q "$API_KEY" "$F"; then bad "plaintext in the file"; else ok; fi
if ls "$dir" | grep -q '\.tmp\.'; then bad "temporary file left behind"; else ok; fi

# --- check ---
run 0 "check" env CREDENTIAL_KEY="$KEY" "$BIN" check "$F"
expect_in "$dir/out" "^ok: api key \.\.\.Eh8A, secret present$" "check output"
if grep -q "$API_KEY" "$dir/out"; then bad "check printed the whole API key"; else ok; fi
# key with surrounding whitespace (env files) still works
run 0 "check key with newline" env CREDENTIAL_KEY="$KEY
" "$BIN" check "$F"

# --- failures ---
run 1 "check wrong key" env CREDENTIAL_KEY="$KEY2" "$BIN" check "$F"
expect_in "$dir/err" "wrong key" "wrong key message"
run 1 "check without CREDENTIAL_KEY" env -u CREDENTIAL_KEY "$BIN" check "$F"
expect_in "$dir/err" "CREDENTIAL_KEY is not set" "missing key message"
run 1 "check malformed key" env CREDENTIAL_KEY="not-a-key" "$BIN" check "$F"
expect_in "$dir/err" "CREDENTIAL_KEY is malformed" "malformed key message"
run 1 "check short key" env CREDENTIAL_KEY="abcd" "$BIN" check "$F"
expect_in "$dir/err" "64 hex digits" "short key message"
run 1 "check missing file" env CREDENTIAL_KEY="$KEY" "$BIN" check "$dir/nope"
expect_in "$dir/err" "does not exist" "missing file message"

cp "$F" "$dir/open.bin"; chmod 644 "$dir/open.bin"
run 1 "check 0644 file" env CREDENTIAL_KEY="$KEY" "$BIN" check "$dir/open.bin"
expect_in "$dir/err" "chmod 600" "permission message"

cp "$F" "$dir/tampered.bin"; chmod 600 "$dir/tampered.bin"
printf 'A' | dd of="$dir/tampered.bin" bs=1 seek=300 conv=notrunc 2>/dev/null
cmp -s "$F" "$dir/tampered.bin" &&
    printf 'B' | dd of="$dir/tampered.bin" bs=1 seek=300 conv=notrunc 2>/dev/null
run 1 "check tampered file" env CREDENTIAL_KEY="$KEY" "$BIN" check "$dir/tampered.bin"
expect_in "$dir/err" "modified" "tamper message"

head -c 100 "$F" >"$dir/short.bin"; chmod 600 "$dir/short.bin"
run 1 "check truncated file" env CREDENTIAL_KEY="$KEY" "$BIN" check "$dir/short.bin"
expect_in "$dir/err" "truncated" "truncation message"

: >"$dir/empty.bin"; chmod 600 "$dir/empty.bin"
run 1 "check empty file" env CREDENTIAL_KEY="$KEY" "$BIN" check "$dir/empty.bin"
expect_in "$dir/err" "empty" "empty file message"

printf 'hello world, not a credential file\n' >"$dir/other.bin"; chmod 600 "$dir/other.bin"
run 1 "check foreign file" env CREDENTIAL_KEY="$KEY" "$BIN" check "$dir/other.bin"
expect_in "$dir/err" "bad magic" "magic message"

# --- overwrite policy ---
run_in "$API_KEY
$API_SECRET
" 1 "encrypt over existing file" env CREDENTIAL_KEY="$KEY" "$BIN" encrypt --out "$F"
expect_in "$dir/err" "already exists\|refusing to overwrite" "overwrite refusal message"
run_in "$API_KEY
$API_SECRET
" 0 "encrypt --force" env CREDENTIAL_KEY="$KEY" "$BIN" encrypt --out "$F" --force
if [ "$(mode_of "$F")" = 600 ]; then ok; else bad "mode after --force is $(mode_of "$F")"; fi

# --- encrypt from the environment ---
E="$dir/env.bin"
run 0 "encrypt from env" env CREDENTIAL_KEY="$KEY" ABIDANCE_API_KEY="$API_KEY" \
    ABIDANCE_API_SECRET="$API_SECRET" "$BIN" encrypt --out "$E"
run 0 "check env file" env CREDENTIAL_KEY="$KEY" "$BIN" check "$E"
expect_in "$dir/out" "Eh8A" "env file check output"
run 1 "encrypt with only the key in env" env CREDENTIAL_KEY="$KEY" ABIDANCE_API_KEY="$API_KEY" \
    "$BIN" encrypt --out "$dir/half.bin"
expect_in "$dir/err" "ABIDANCE_API_SECRET" "half env message"

# --- bad input on stdin ---
run_in "$API_KEY
" 1 "encrypt with one line" env CREDENTIAL_KEY="$KEY" "$BIN" encrypt --out "$dir/one.bin"
expect_in "$dir/err" "no API secret" "one line message"
run_in "key with space
$API_SECRET
" 1 "encrypt key with space" env CREDENTIAL_KEY="$KEY" "$BIN" encrypt --out "$dir/sp.bin"
expect_in "$dir/err" "API key contains a space" "bad character message"
long=$(head -c 300 /dev/zero | tr '\0' 'x')
run_in "$API_KEY
$long
" 1 "encrypt long secret" env CREDENTIAL_KEY="$KEY" "$BIN" encrypt --out "$dir/long.bin"
expect_in "$dir/err" "longer than 256" "long secret message"
run_in "$API_KEY
$API_SECRET
" 1 "encrypt without key" env -u CREDENTIAL_KEY "$BIN" encrypt --out "$dir/nokey.bin"
for f in one.bin sp.bin long.bin nokey.bin half.bin; do
    if [ -e "$dir/$f" ]; then bad "failed encrypt left $f behind"; else ok; fi
done

# --- the secret never appears in any output ---
if grep -q "$API_SECRET" "$ALL"; then bad "the API secret appeared in output"; else ok; fi
if grep -q "$API_KEY" "$ALL"; then bad "the full API key appeared in output"; else ok; fi
if grep -q "$KEY" "$ALL" && [ "$(grep -c "$KEY" "$ALL")" -gt 1 ]; then
    bad "the credential key was echoed beyond keygen"
else ok; fi

echo "test_cli: $checks checks, $failures failed"
[ "$failures" -eq 0 ]

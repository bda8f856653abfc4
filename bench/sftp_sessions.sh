#!/usr/bin/env bash
# Many SFTP sessions uploading at once: for each count in COUNTS, a fresh `lockbox serve`, then
# bench/sftp_sessions.py (asyncssh) opens that many sessions, waits until all are open, and has each
# upload 1 MiB at the same moment. Reports uploads done and refused, and the server's peak RSS
# (VmHWM). Not a timed test: the figures are for the closing note and for regressions.
#
#   bench/sftp_sessions.sh                     # COUNTS="500 2000 5000"
#   COUNTS=500 bench/sftp_sessions.sh
#
# Environment: COUNTS, SIZE (bytes per upload, default 1 MiB), PER_CONN_5000 (sessions per connection
# above 2,000 sessions, default 5: the server accepts 2,048 connections, and OpenSSH's MaxSessions-like
# cap is 10 channels per connection), LOCKBOX_BIN, CARGO_TARGET_DIR, KEEP=1.
# Loopback only (sources 127.0.0.2-127.0.0.251); every process and temp file is removed on exit.
set -euo pipefail

COUNTS=${COUNTS:-500 2000 5000}
SIZE=${SIZE:-1048576}
PER_CONN_5000=${PER_CONN_5000:-5}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_workdir lockbox-sessions-bench

if [ -n "${LOCKBOX_BIN:-}" ]; then
    LOCKBOX=$LOCKBOX_BIN
else
    log "building lockbox (release)"
    (cd "$ROOT" && cargo build --release -p lockbox >&2)
    LOCKBOX=$TARGET_DIR/release/lockbox
fi
[ -x "$LOCKBOX" ] || die "no lockbox binary at $LOCKBOX"
PY=$(bash "$ROOT/.ci/sftp-clients-venv")
# 5,000 sessions need more descriptors than the usual 1,024, on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
ssh-keygen -q -N "" -t ed25519 -C bench-client -f "$WORK/client_key"

printf '%-9s %-12s %-9s %-9s %-9s %-10s %-10s %s\n' sessions connections uploaded refused errors "open s" "upload s" "server peak RSS"
for n in $COUNTS; do
    dir=$WORK/run-$n
    mkdir -p "$dir"
    lb() { "$LOCKBOX" --data-dir "$dir/data" --key-file "$dir/master.key" "$@"; }
    env -u LOCKBOX_DATA_DIR -u LOCKBOX_KEY_FILE -u LOCKBOX_CONFIG -u LOCKBOX_SFTP_LISTEN \
        "$LOCKBOX" --data-dir "$dir/data" --key-file "$dir/master.key" serve --sftp-listen 127.0.0.1:0 \
        --https-listen 127.0.0.1:0 2>"$dir/serve.log" &
    pid=$!
    PIDS+=("$pid")
    port=
    for _ in $(seq 1 300); do
        port=$(sed -n 's/.*lockbox: sftp listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/serve.log" | head -1)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$dir/serve.log" >&2; die "lockbox did not start"; }
    lb org create bench >/dev/null
    printf 'bench-password-long-enough\n' | lb user create --org bench benchuser --password-stdin >/dev/null
    lb key add benchuser "$WORK/client_key.pub" >/dev/null
    per=1
    [ "$n" -gt 2000 ] && per=$PER_CONN_5000
    out=$("$PY" "$ROOT/bench/sftp_sessions.py" --port "$port" --user benchuser --key "$WORK/client_key" \
        --sessions "$n" --per-conn "$per" --size "$SIZE")
    rss=$(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$pid/status")
    log "$n sessions: $out"
    "$PY" - "$out" "$rss" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
print(f"{r['sessions']:<9} {r['connections']:<12} {r['uploaded']:<9} {r['refused']:<9} {r['open_errors']:<9} {r['open_s']:<10} {r['upload_s']:<10} {sys.argv[2]}")
if r["first_errors"]:
    print("   first errors:", r["first_errors"])
EOF
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done

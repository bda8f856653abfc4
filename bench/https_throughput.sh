#!/usr/bin/env bash
# HTTPS API throughput against the SFTP door of the SAME lockbox server, in ONE run, on loopback: curl
# (one streamed PUT, one GET) versus the OpenSSH `sftp` client (put/get). Both doors write through the same
# vault (encryption, SHA-256, PHI scan), so the ratio isolates what the HTTPS door costs.
#
#   bench/https_throughput.sh                  # 1 GiB, 3 runs
#   SIZE_MB=256 RUNS=5 bench/https_throughput.sh
#
# Environment: SIZE_MB (default 1024), RUNS (default 3), LOCKBOX_BIN (skip the build), CARGO_TARGET_DIR,
# KEEP=1 (keep the temp dir). Listens on 127.0.0.1 only; every process and temp file is removed on exit.
set -euo pipefail

SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_workdir lockbox-https-bench

for bin in curl sftp ssh-keygen python3; do command -v "$bin" >/dev/null || die "$bin is required"; done
if [ -n "${LOCKBOX_BIN:-}" ]; then
    LOCKBOX=$LOCKBOX_BIN
else
    log "building lockbox (release)"
    (cd "$ROOT" && cargo build --release -p lockbox >&2)
    LOCKBOX=$TARGET_DIR/release/lockbox
fi
[ -x "$LOCKBOX" ] || die "no lockbox binary at $LOCKBOX"

SRC=$WORK/src.bin
DOWN=$WORK/down.bin
log "generating ${SIZE_MB} MiB of random data"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$SRC"
SRC_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
ssh-keygen -q -N "" -t ed25519 -C bench-client -f "$WORK/client_key"

LB_DATA=$WORK/data
LB_KEY=$WORK/master.key
lb() { "$LOCKBOX" --data-dir "$LB_DATA" --key-file "$LB_KEY" "$@"; }
env -u LOCKBOX_DATA_DIR -u LOCKBOX_KEY_FILE -u LOCKBOX_CONFIG -u LOCKBOX_SFTP_LISTEN -u LOCKBOX_HTTPS_LISTEN \
    "$LOCKBOX" --data-dir "$LB_DATA" --key-file "$LB_KEY" serve --sftp-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 \
    2>"$WORK/serve.log" &
LB_PID=$!
PIDS+=("$LB_PID")
SFTP_PORT=
for _ in $(seq 1 300); do
    SFTP_PORT=$(sed -n 's/.*lockbox: sftp listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/serve.log" | head -1)
    [ -n "$SFTP_PORT" ] && break
    kill -0 "$LB_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "lockbox serve exited"; }
    sleep 0.1
done
[ -n "$SFTP_PORT" ] || die "lockbox did not start within 30 s"
BASE=$(sed -n 's/.*lockbox: https listening on \(https:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/serve.log" | head -1)
CA=$LB_DATA/https/cert.pem

lb org create bench >/dev/null
printf 'bench-password-long-enough\n' | lb user create --org bench benchuser --password-stdin >/dev/null
lb key add benchuser "$WORK/client_key.pub" >/dev/null
TOKEN=$(python3 "$ROOT/bench/web_token.py" "$BASE" benchuser bench-password-long-enough read,write "$CA" 2>/dev/null) \
    || die "could not sign in and create an API token"
CURL=(curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $TOKEN" --max-time 3600)

SFTP_OPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
    -o IdentitiesOnly=yes -o BatchMode=yes -o ControlMaster=no -i "$WORK/client_key")

# timed CMD...: "wall_seconds server_cpu_seconds" of one command.
timed() {
    local t0 t1 c0 c1
    sync
    c0=$(cpu_ticks "$LB_PID")
    t0=$(date +%s.%N)
    "$@" >"$WORK/cmd.out" 2>&1 || { cat "$WORK/cmd.out" >&2; die "failed: $*"; }
    t1=$(date +%s.%N)
    sleep 1
    c1=$(cpu_ticks "$LB_PID")
    awk -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f %.2f\n", t1 - t0, (c1 - c0) / hz }'
}

run_one() {
    local door=$1 op=$2
    rm -f "$DOWN"
    case "$door.$op" in
        https.put) timed "${CURL[@]}" -T "$SRC" "$BASE/api/v1/files/content?path=/home/https.bin" ;;
        https.get) timed "${CURL[@]}" -o "$DOWN" "$BASE/api/v1/files/content?path=/home/https.bin" ;;
        sftp.put) echo "put $SRC /home/sftp.bin" >"$WORK/batch"; timed_sftp "$LB_PID" "$SFTP_PORT" benchuser "$WORK/batch" "sftp put" ;;
        sftp.get) echo "get /home/sftp.bin $DOWN" >"$WORK/batch"; timed_sftp "$LB_PID" "$SFTP_PORT" benchuser "$WORK/batch" "sftp get" ;;
    esac
}

log "lockbox pid $LB_PID: https $BASE, sftp 127.0.0.1:$SFTP_PORT; ${SIZE_MB} MiB, $RUNS runs; $(curl --version | head -1 | cut -d' ' -f1-2)"
declare -A SECS CPU
for run in $(seq 1 "$RUNS"); do
    if [ $((run % 2)) = 1 ]; then order=(https sftp); else order=(sftp https); fi
    for door in "${order[@]}"; do
        for op in put get; do
            read -r secs cpu <<<"$(run_one "$door" "$op")"
            SECS[$door.$op]+="$secs "
            CPU[$door.$op]+="$cpu "
            log "run $run $door $op: ${secs}s, server CPU ${cpu}s"
            if [ "$op" = get ] && [ "$run" = 1 ]; then
                got=$(sha256sum "$DOWN" | cut -d' ' -f1)
                [ "$got" = "$SRC_SHA" ] || die "$door: downloaded file differs"
            fi
        done
    done
done

echo
echo "HTTPS API vs SFTP door of the same lockbox, ${SIZE_MB} MiB, loopback, median of $RUNS runs"
echo "(one request / one 'sftp -b' each, connection and authentication included; server CPU = lockbox process)"
put_get_table door 14 https sftp https/sftp

#!/usr/bin/env bash
# Slowdown of a 1 GiB SFTP upload caused by the PHI classifier, in ONE run, on loopback, with the OpenSSH
# `sftp` client: (a) random bytes (sniffed as opaque binary: the classifier does almost nothing; the
# baseline) vs (b) a synthetic X12 834 of the same size (every byte parsed, every member fingerprinted).
# Both files are the same size and go through the same lockbox server, alternating, RUNS times each.
#
#   bench/inventory_upload_slowdown.sh                   # 1 GiB, 3 runs, aes128-gcm@openssh.com
#   SIZE_MB=256 RUNS=5 bench/inventory_upload_slowdown.sh
#
# Environment: SIZE_MB (default 1024), RUNS (default 3), CIPHER (default aes128-gcm@openssh.com),
# PEOPLE (synthetic population, default 50000), LOCKBOX_BIN / SYNTH_BIN (skip the cargo build and use these
# binaries), CARGO_TARGET_DIR (respected), KEEP=1 (keep the temp dir).
# Output: median wall time and MiB/s of each upload, the slowdown (b/a - 1) in percent, and lockbox server
# CPU seconds per GiB for each. After the uploads, `lockbox --json inventory show` must report the
# expected format for both and people > 0 for the 834.
# Everything listens on 127.0.0.1 only. All processes and temp files are removed on exit.
set -euo pipefail

SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-3}
CIPHER=${CIPHER:-aes128-gcm@openssh.com}
PEOPLE=${PEOPLE:-50000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_workdir lockbox-invbench

# ---- prerequisites --------------------------------------------------------------------------------------------
command -v sftp >/dev/null || die "the OpenSSH sftp client is required (apt-get install openssh-client)"
command -v ssh-keygen >/dev/null || die "ssh-keygen is required (openssh-client)"
command -v jq >/dev/null || die "jq is required"

if [ -n "${LOCKBOX_BIN:-}" ] && [ -n "${SYNTH_BIN:-}" ]; then
    LOCKBOX=$LOCKBOX_BIN
    SYNTH=$SYNTH_BIN
else
    log "building lockbox and lockbox-synth (release)"
    (cd "$ROOT" && cargo build --release -p lockbox -p lockbox-synth >&2)
    LOCKBOX=${LOCKBOX_BIN:-$TARGET_DIR/release/lockbox}
    SYNTH=${SYNTH_BIN:-$TARGET_DIR/release/lockbox-synth}
fi
[ -x "$LOCKBOX" ] || die "no lockbox binary at $LOCKBOX"
[ -x "$SYNTH" ] || die "no lockbox-synth binary at $SYNTH"


# ---- test data --------------------------------------------------------------------------------------------------
BYTES=$((SIZE_MB * 1024 * 1024))
RAND=$WORK/random.bin
X12=$WORK/members.834
log "generating ${SIZE_MB} MiB of random data"
head -c "$BYTES" /dev/urandom >"$RAND"

log "generating a synthetic 834 ($PEOPLE people) and repeating it to ${SIZE_MB} MiB"
"$SYNTH" --seed 1 --people "$PEOPLE" --files-per-format 1 --orgs 1 --out "$WORK/synth" >&2
ONE=$(jq -r '.files[] | select(.format == "x12_834") | .path' "$WORK/synth/truth.json" | head -1)
[ -n "$ONE" ] && [ -s "$WORK/synth/$ONE" ] || die "no 834 in the generated corpus"
ONE=$WORK/synth/$ONE
ONE_SIZE=$(stat -c %s "$ONE")
# Whole interchanges only (several ISA..IEA in one file are valid X12); the last copy is not cut.
REPS=$(( (BYTES + ONE_SIZE - 1) / ONE_SIZE ))
[ "$REPS" -le 100000 ] || die "834 too small to repeat ($ONE_SIZE bytes)"
for _ in $(seq 1 "$REPS"); do cat "$ONE"; done >"$X12"
X12_SIZE=$(stat -c %s "$X12")
# Same size for both uploads: the random file gets the 834's exact size.
head -c "$X12_SIZE" /dev/urandom >"$RAND"
log "834: $REPS copies of $ONE_SIZE bytes = $X12_SIZE bytes; random: $X12_SIZE bytes"

ssh-keygen -q -N "" -t ed25519 -C bench-client -f "$WORK/client_key"

# ---- lockbox ---------------------------------------------------------------------------------------------------------
LB_DIR=$WORK/lockbox
mkdir -p "$LB_DIR"
LB_DATA=$LB_DIR/data
LB_KEY=$LB_DIR/master.key
lb() { env -u LOCKBOX_DATA_DIR -u LOCKBOX_KEY_FILE -u LOCKBOX_CONFIG "$LOCKBOX" --data-dir "$LB_DATA" --key-file "$LB_KEY" "$@"; }
env -u LOCKBOX_DATA_DIR -u LOCKBOX_KEY_FILE -u LOCKBOX_CONFIG -u LOCKBOX_SFTP_LISTEN \
    "$LOCKBOX" --data-dir "$LB_DATA" --key-file "$LB_KEY" serve --sftp-listen 127.0.0.1:0 2>"$LB_DIR/serve.log" &
LB_PID=$!
PIDS+=("$LB_PID")
LB_PORT=
for _ in $(seq 1 300); do
    LB_PORT=$(sed -n 's/.*lockbox: sftp listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$LB_DIR/serve.log" | head -1)
    [ -n "$LB_PORT" ] && break
    kill -0 "$LB_PID" 2>/dev/null || { cat "$LB_DIR/serve.log" >&2; die "lockbox serve exited"; }
    sleep 0.1
done
[ -n "$LB_PORT" ] || { cat "$LB_DIR/serve.log" >&2; die "lockbox did not start listening within 30 s"; }
ORG=bench
USER_NAME=benchuser
lb org create "$ORG" >/dev/null
printf 'bench-password-long-enough\n' | lb user create --org "$ORG" "$USER_NAME" --password-stdin >/dev/null
lb key add "$USER_NAME" "$WORK/client_key.pub" >/dev/null

log "lockbox on 127.0.0.1:$LB_PORT (pid $LB_PID); client: $(ssh -V 2>&1), cipher $CIPHER, $RUNS runs"

SFTP_OPTS=(-F /dev/null -o "Ciphers=$CIPHER" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o IdentitiesOnly=yes -o BatchMode=yes -o ControlMaster=no -i "$WORK/client_key")

# run_one KIND -> prints "seconds cpu_seconds". Each upload goes to its own name (a fresh file each time).
run_one() {
    local kind=$1 run=$2 src
    if [ "$kind" = random ]; then src=$RAND; else src=$X12; fi
    echo "put $src /home/$kind-$run.dat" >"$WORK/batch"
    timed_sftp "$LB_PID" "$LB_PORT" "$USER_NAME" "$WORK/batch" "$kind upload"
}

declare -A SECS CPU
for run in $(seq 1 "$RUNS"); do
    if [ $((run % 2)) = 1 ]; then order=(random x12); else order=(x12 random); fi
    for kind in "${order[@]}"; do
        read -r secs cpu <<<"$(run_one "$kind" "$run")"
        SECS[$kind]+="$secs "
        CPU[$kind]+="$cpu "
        log "run $run $kind: ${secs}s, server CPU ${cpu}s"
    done
done

# ---- verification ---------------------------------------------------------------------------------------------------
show() { lb --json inventory show "$ORG/home.$USER_NAME/$1"; }
X12_SHOW=$(show "x12-1.dat") || die "inventory show failed for the 834 upload"
RAND_SHOW=$(show "random-1.dat") || die "inventory show failed for the random upload"
x12_format=$(jq -r '.format' <<<"$X12_SHOW")
x12_persons=$(jq -r '.persons' <<<"$X12_SHOW")
x12_status=$(jq -r '.status' <<<"$X12_SHOW")
rand_format=$(jq -r '.format' <<<"$RAND_SHOW")
rand_status=$(jq -r '.status' <<<"$RAND_SHOW")
log "834 upload: format $x12_format, scan $x12_status, $x12_persons people; random upload: format $rand_format, scan $rand_status"
case "$x12_format" in x12-834|x12_834) ;; *) die "834 upload inventoried as $x12_format" ;; esac
[ "$x12_persons" -gt 0 ] 2>/dev/null || die "834 upload: no people found ($x12_persons)"
case "$rand_format" in binary) ;; *) die "random upload inventoried as $rand_format, expected binary" ;; esac

# ---- report ---------------------------------------------------------------------------------------------------------
MIB=$(awk -v b="$X12_SIZE" 'BEGIN { print b / 1048576 }')
GIB=$(awk -v b="$X12_SIZE" 'BEGIN { print b / 1073741824 }')
s_rand=$(median <<<"${SECS[random]}")
s_x12=$(median <<<"${SECS[x12]}")
c_rand=$(median <<<"${CPU[random]}")
c_x12=$(median <<<"${CPU[x12]}")

echo
echo "SFTP upload slowdown caused by the PHI classifier: $(printf '%.0f' "$MIB") MiB, loopback, cipher $CIPHER, median of $RUNS runs"
echo "(a) random bytes (opaque binary: baseline), (b) synthetic X12 834 ($x12_persons people in one upload)"
printf '%-22s %10s %10s %18s\n' upload "wall s" "MiB/s" "server CPU s/GiB"
printf '%-22s %10.2f %10.1f %18.2f\n' "(a) random" "$s_rand" "$(awk -v m="$MIB" -v s="$s_rand" 'BEGIN { print m / s }')" "$(awk -v c="$c_rand" -v g="$GIB" 'BEGIN { print c / g }')"
printf '%-22s %10.2f %10.1f %18.2f\n' "(b) x12 834" "$s_x12" "$(awk -v m="$MIB" -v s="$s_x12" 'BEGIN { print m / s }')" "$(awk -v c="$c_x12" -v g="$GIB" 'BEGIN { print c / g }')"
awk -v a="$s_rand" -v b="$s_x12" 'BEGIN { printf "slowdown (b/a - 1): %+.1f%% (goal: < 10%%)\n", (b / a - 1) * 100 }'
awk -v a="$c_rand" -v b="$c_x12" -v g="$GIB" 'BEGIN { printf "extra server CPU for the 834: %+.2f s/GiB\n", (b - a) / g }'

#!/usr/bin/env bash
# SFTP throughput: lockbox vs OpenSSH's own internal-sftp, in ONE run, on loopback, with the same OpenSSH
# `sftp` client and the same cipher.
#
#   bench/sftp_throughput.sh                 # 1 GiB file + 2,000 files of 8 KiB, 3 runs, aes128-gcm
#   SIZE_MB=256 RUNS=5 CIPHER=chacha20-poly1305@openssh.com bench/sftp_throughput.sh
#
# Two cases, each against both servers in the same run: one big file (`put`, `get`), and many small
# files in one session (`put -r` / `get -r` of SMALL_FILES files of SMALL_KB KiB; SMALL_FILES=0 skips).
#
# Environment: SIZE_MB (default 1024), RUNS (default 3), CIPHER (default aes128-gcm@openssh.com),
# SMALL_FILES (default 2000), SMALL_KB (default 8),
# LOCKBOX_BIN (skip the cargo build and use this binary), CARGO_TARGET_DIR (respected), KEEP=1 (keep temp dir).
# Everything listens on 127.0.0.1 only. All processes and temp files are removed on exit.
set -euo pipefail

SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-3}
SMALL_FILES=${SMALL_FILES:-2000}
SMALL_KB=${SMALL_KB:-8}
CIPHER=${CIPHER:-aes128-gcm@openssh.com}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_workdir lockbox-bench

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

# ---- prerequisites --------------------------------------------------------------------------------------------
need_pkgs=()
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
[ -x /usr/bin/sftp ] || need_pkgs+=(openssh-client)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" </dev/null >&2
fi
# sshd refuses to start without its privilege separation directory.
if [ ! -d /run/sshd ]; then $SUDO mkdir -p /run/sshd && $SUDO chmod 0755 /run/sshd; fi

if [ -n "${LOCKBOX_BIN:-}" ]; then
    LOCKBOX=$LOCKBOX_BIN
else
    log "building lockbox (release)"
    (cd "$ROOT" && cargo build --release -p lockbox >&2)
    LOCKBOX=$TARGET_DIR/release/lockbox
fi
[ -x "$LOCKBOX" ] || die "no lockbox binary at $LOCKBOX"

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    die "no free port found"
}


# ---- test data --------------------------------------------------------------------------------------------------
SRC=$WORK/src.bin
DOWN=$WORK/down.bin
log "generating ${SIZE_MB} MiB of random data"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$SRC"
SRC_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)

ssh-keygen -q -N "" -t ed25519 -C bench-client -f "$WORK/client_key"

# ---- OpenSSH sshd with internal-sftp ------------------------------------------------------------------------------
SSHD_DIR=$WORK/sshd
mkdir -p "$SSHD_DIR/files"
ssh-keygen -q -N "" -t ed25519 -f "$SSHD_DIR/host_key"
cp "$WORK/client_key.pub" "$SSHD_DIR/authorized_keys"
SSHD_PORT=$(free_port)
ME=$(id -un)
cat >"$SSHD_DIR/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_key
PidFile $SSHD_DIR/sshd.pid
AuthorizedKeysFile $SSHD_DIR/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $ME
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
/usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd_config" 2>"$SSHD_DIR/sshd.log" &
SSHD_PID=$!
PIDS+=("$SSHD_PID")

# ---- lockbox ---------------------------------------------------------------------------------------------------------
LB_DIR=$WORK/lockbox
mkdir -p "$LB_DIR"
LB_DATA=$LB_DIR/data
LB_KEY=$LB_DIR/master.key
lb() { "$LOCKBOX" --data-dir "$LB_DATA" --key-file "$LB_KEY" "$@"; }
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
lb org create bench >/dev/null
printf 'bench-password-long-enough\n' | lb user create --org bench benchuser --password-stdin >/dev/null
lb key add benchuser "$WORK/client_key.pub" >/dev/null

# Wait for sshd.
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null && break
    kill -0 "$SSHD_PID" 2>/dev/null || { cat "$SSHD_DIR/sshd.log" >&2; die "sshd exited"; }
    sleep 0.1
done

log "openssh sshd on 127.0.0.1:$SSHD_PORT (pid $SSHD_PID), lockbox on 127.0.0.1:$LB_PORT (pid $LB_PID)"
log "client: $(ssh -V 2>&1), cipher $CIPHER, ${SIZE_MB} MiB, $RUNS runs"

SFTP_OPTS=(-F /dev/null -o "Ciphers=$CIPHER" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o IdentitiesOnly=yes -o BatchMode=yes -o ControlMaster=no -i "$WORK/client_key")

# run_one SERVER OP -> prints "seconds cpu_seconds"
run_one() {
    local server=$1 op=$2 port pid user remote batch
    if [ "$server" = openssh ]; then
        port=$SSHD_PORT; pid=$SSHD_PID; user=$ME; remote=$SSHD_DIR/files/bench.bin
    else
        port=$LB_PORT; pid=$LB_PID; user=benchuser; remote=/home/bench.bin
    fi
    batch=$WORK/batch
    if [ "$op" = put ]; then
        echo "put $SRC $remote" >"$batch"
    else
        rm -f "$DOWN"
        echo "get $remote $DOWN" >"$batch"
    fi
    timed_sftp "$pid" "$port" "$user" "$batch" "$server $op"
}

declare -A SECS CPU
verified_openssh=0
verified_lockbox=0
for run in $(seq 1 "$RUNS"); do
    if [ $((run % 2)) = 1 ]; then order=(openssh lockbox); else order=(lockbox openssh); fi
    for server in "${order[@]}"; do
        for op in put get; do
            res=$(run_one "$server" "$op")
            read -r secs cpu <<<"$res"
            SECS[$server.$op]+="$secs "
            CPU[$server.$op]+="$cpu "
            log "run $run $server $op: ${secs}s, server CPU ${cpu}s"
            if [ "$op" = get ]; then
                v=verified_$server
                if [ "${!v}" = 0 ]; then
                    got=$(sha256sum "$DOWN" | cut -d' ' -f1)
                    [ "$got" = "$SRC_SHA" ] || die "$server: downloaded file differs (sha256 $got != $SRC_SHA)"
                    printf -v "$v" 1
                    log "$server: download verified (sha256 matches)"
                fi
            fi
        done
    done
done

echo
echo "SFTP throughput, ${SIZE_MB} MiB, loopback, cipher $CIPHER, median of $RUNS runs, client $(ssh -V 2>&1 | cut -d, -f1)"
echo "MiB/s = ${SIZE_MB} MiB / wall time of one 'sftp -b' (includes connect + auth)."
echo "server CPU s/GiB = (utime+stime+cutime+cstime) delta of the server's main process: lockbox = its own"
echo "  process (all threads); openssh = the listening sshd plus its reaped per-connection children."
put_get_table server 16 openssh lockbox lockbox/openssh

[ "$SMALL_FILES" -gt 0 ] || exit 0

# ---- many small files in one session ------------------------------------------------------------------------------
SMALL=$WORK/small
mkdir -p "$SMALL"
log "generating $SMALL_FILES files of $SMALL_KB KiB"
for i in $(seq 1 "$SMALL_FILES"); do head -c "$((SMALL_KB * 1024))" /dev/urandom >"$SMALL/f$i.bin"; done
SMALL_SUM=$(cd "$SMALL" && sha256sum -- * | sort | sha256sum | cut -d' ' -f1)
declare -A SMALL_SECS SMALL_CPU
run_small() {
    local server=$1 op=$2 run=$3 port pid user dst batch
    if [ "$server" = openssh ]; then
        port=$SSHD_PORT; pid=$SSHD_PID; user=$ME; dst=$SSHD_DIR/files/small-$run
    else
        port=$LB_PORT; pid=$LB_PID; user=benchuser; dst=/home/small-$run
    fi
    batch=$WORK/batch
    if [ "$op" = put ]; then
        printf 'put -r %s %s\n' "$SMALL" "$dst" >"$batch"
    else
        rm -rf "$WORK/small-down"
        printf 'get -r %s %s\n' "$dst" "$WORK/small-down" >"$batch"
    fi
    timed_sftp "$pid" "$port" "$user" "$batch" "$server small $op"
}
for run in $(seq 1 "$RUNS"); do
    if [ $((run % 2)) = 1 ]; then order=(openssh lockbox); else order=(lockbox openssh); fi
    for server in "${order[@]}"; do
        for op in put get; do
            read -r secs cpu <<<"$(run_small "$server" "$op" "$run")"
            SMALL_SECS[$server.$op]+="$secs "
            SMALL_CPU[$server.$op]+="$cpu "
            log "run $run $server small $op: ${secs}s, server CPU ${cpu}s"
            if [ "$op" = get ]; then
                n=$(find "$WORK/small-down" -type f | wc -l)
                got=$(cd "$WORK/small-down" && sha256sum -- * | sort | sha256sum | cut -d' ' -f1)
                [ "$n" = "$SMALL_FILES" ] && [ "$got" = "$SMALL_SUM" ] ||
                    die "$server: small-file download differs ($n files)"
            fi
        done
    done
done
echo
echo "Many small files: $SMALL_FILES x $SMALL_KB KiB in one session (put -r / get -r), median of $RUNS runs"
printf "%-16s %12s %12s %18s %18s\n" server "put s" "get s" "put CPU s" "get CPU s"
for name in openssh lockbox; do
    printf "%-16s %12s %12s %18s %18s\n" "$name" \
        "$(median <<<"${SMALL_SECS[$name.put]}")" "$(median <<<"${SMALL_SECS[$name.get]}")" \
        "$(median <<<"${SMALL_CPU[$name.put]}")" "$(median <<<"${SMALL_CPU[$name.get]}")"
done
printf "%-16s %12s %12s\n" "lockbox/openssh" \
    "$(awk -v a="$(median <<<"${SMALL_SECS[openssh.put]}")" -v b="$(median <<<"${SMALL_SECS[lockbox.put]}")" 'BEGIN { printf "%.2fx", a / b }')" \
    "$(awk -v a="$(median <<<"${SMALL_SECS[openssh.get]}")" -v b="$(median <<<"${SMALL_SECS[lockbox.get]}")" 'BEGIN { printf "%.2fx", a / b }')"
echo "(ratio = OpenSSH time / Lockbox time: above 1 means Lockbox is faster)"

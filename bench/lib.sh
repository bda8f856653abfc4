# Shared by the bench scripts: logging, a temporary work directory, and cleanup of every process the
# script started (listed in PIDS) and of the directory on exit. Source it after `set -euo pipefail`.

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

PIDS=()

bench_cleanup() {
    local rc=$?
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}

# bench_workdir NAME: creates $WORK and removes it (and stops PIDS) on exit; KEEP=1 keeps it.
bench_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: utime + stime + cutime + cstime of a process (all threads, reaped children), in ticks.
cpu_ticks() {
    local s
    s=$(cat "/proc/$1/stat") || { echo 0; return; }
    # The comm field may contain spaces: strip up to the last ')'; fields then start at state (3).
    s=${s##*) }
    awk '{ print $12 + $13 + $14 + $15 }' <<<"$s"
}

# timed_sftp SERVER_PID PORT USER BATCH_FILE WHAT: runs one `sftp -b` (options from SFTP_OPTS) and prints
# "wall_seconds server_cpu_seconds". The server's CPU is read 1 s after the client exits, so work that
# ends with the session (and sshd children reaped into the master) is counted.
timed_sftp() {
    local pid=$1 port=$2 user=$3 batch=$4 what=$5 t0 t1 c0 c1
    sync
    c0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    if ! timeout 3600 sftp "${SFTP_OPTS[@]}" -b "$batch" -P "$port" "$user@127.0.0.1" >"$WORK/sftp.out" 2>&1 </dev/null; then
        cat "$WORK/sftp.out" >&2
        die "$what failed"
    fi
    t1=$(date +%s.%N)
    sleep 1
    c1=$(cpu_ticks "$pid")
    awk -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f %.2f\n", t1 - t0, (c1 - c0) / hz }'
}

# median: of whitespace-separated numbers on stdin.
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

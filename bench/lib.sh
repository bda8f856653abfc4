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

# put_get_table HEADER WIDTH ROW1 ROW2 NUM/DEN: the put/get table of two servers (or doors) from the
# per-run figures in SECS and CPU (keyed NAME.put / NAME.get, space-separated): median MiB/s of a
# SIZE_MB transfer and median server CPU s/GiB for ROW1 and ROW2, then the NUM/DEN throughput ratio.
# HEADER names the first column and WIDTH is its width.
put_get_table() {
    local header=$1 width=$2 num=${5%/*} den=${5#*/} gib name op s c
    local -A mbs cpg
    gib=$(awk -v m="$SIZE_MB" 'BEGIN { print m / 1024 }')
    for name in "$3" "$4"; do
        for op in put get; do
            s=$(median <<<"${SECS[$name.$op]}")
            c=$(median <<<"${CPU[$name.$op]}")
            mbs[$name.$op]=$(awk -v m="$SIZE_MB" -v s="$s" 'BEGIN { printf "%.1f", m / s }')
            cpg[$name.$op]=$(awk -v c="$c" -v g="$gib" 'BEGIN { printf "%.2f", c / g }')
        done
    done
    printf "%-${width}s %12s %12s %18s %18s\n" "$header" "put MiB/s" "get MiB/s" "put CPU s/GiB" "get CPU s/GiB"
    for name in "$3" "$4"; do
        printf "%-${width}s %12s %12s %18s %18s\n" "$name" "${mbs[$name.put]}" "${mbs[$name.get]}" "${cpg[$name.put]}" "${cpg[$name.get]}"
    done
    printf "%-${width}s %12s %12s\n" "$5" \
        "$(awk -v a="${mbs[$num.put]}" -v b="${mbs[$den.put]}" 'BEGIN { printf "%.2fx", a / b }')" \
        "$(awk -v a="${mbs[$num.get]}" -v b="${mbs[$den.get]}" 'BEGIN { printf "%.2fx", a / b }')"
}

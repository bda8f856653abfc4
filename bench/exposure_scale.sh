#!/usr/bin/env bash
# Scale of the breach exposure report (issue 5): an inventory of 10 million individuals across 10,000 files
# in 20 organizations, and the throughput of the mailing-list step.
#
#   bench/exposure_scale.sh                     # generate, 3 timed reports, mailing-list throughput
#   REUSE=1 bench/exposure_scale.sh             # keep the generated data in $CACHE and reuse it next time
#   INDIVIDUALS=1000000 FILES=1000 bench/exposure_scale.sh
#
# Part 1: crates/exposure/examples/scale_inventory.rs builds a real data directory and key file
# (Vault::open, orgs/users/folders through the admin API) and bulk-inserts the files, file_inventory and
# file_persons rows (random fingerprints reused per person; 1-3 files per person; some rows carry only a
# name+DOB or only an SSN fingerprint, so linking matters; ~5% of versions deleted in the window). Then
# `lockbox exposure report --basis present --no-mailing-list` runs RUNS times under /usr/bin/time -v;
# the medians of elapsed time and maximum RSS are compared with the goal (60 s, 4 GiB).
# Part 2: lockbox_synth files (~200k person records) are uploaded through the vault (encrypted,
# inventoried on commit); the report runs RUNS times with and without the mailing list. Mailing-list
# phase = median(with) - median(without); throughput = individuals.csv rows (and person records
# re-scanned) per second of that phase.
#
# Environment: INDIVIDUALS (10000000), FILES (10000), ORGS (20), RUNS (3), MAIL_PEOPLE (110000),
# REUSE=1 + CACHE (default /tmp/lockbox-exposure-scale-cache), LOCKBOX_BIN / GEN_BIN (skip the build),
# CARGO_TARGET_DIR (respected), KEEP=1 (keep the temp dir).
set -euo pipefail

INDIVIDUALS=${INDIVIDUALS:-10000000}
FILES=${FILES:-10000}
ORGS=${ORGS:-20}
RUNS=${RUNS:-3}
MAIL_PEOPLE=${MAIL_PEOPLE:-110000}
CACHE=${CACHE:-/tmp/lockbox-exposure-scale-cache}
GOAL_SECONDS=60
GOAL_KIB=$((4 * 1024 * 1024))
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is required (apt-get install time)"
command -v python3 >/dev/null || die "python3 is required"

bench_workdir lockbox-exposure-bench

if [ -n "${LOCKBOX_BIN:-}" ] && [ -n "${GEN_BIN:-}" ]; then
    LOCKBOX=$LOCKBOX_BIN
    GEN=$GEN_BIN
else
    log "building lockbox and the scale_inventory example (release)"
    (cd "$ROOT" && cargo build --release -p lockbox >&2 &&
        cargo build --release -p lockbox-exposure --example scale_inventory >&2)
    LOCKBOX=$TARGET_DIR/release/lockbox
    GEN=$TARGET_DIR/release/examples/scale_inventory
fi

# Elapsed wall clock of a /usr/bin/time -v log, in seconds.
elapsed() { awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$1"; }
max_rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

# ---- part 1: 10M individuals, no mailing list ------------------------------------------------------------------
TAG="i${INDIVIDUALS}-f${FILES}-o${ORGS}"
if [ "${REUSE:-0}" = 1 ]; then
    BIG=$CACHE/$TAG
else
    BIG=$WORK/big
fi
log "disk: $(df -h "$(dirname "$BIG")" | awk 'NR==2 {print $4 " free on " $6}')"
SETUP="(reused)"
if [ "${REUSE:-0}" = 1 ] && [ -f "$BIG/ready" ]; then
    log "reusing $BIG"
else
    rm -rf "$BIG"
    mkdir -p "$BIG"
    log "generating $INDIVIDUALS individuals across $FILES files in $ORGS organizations"
    "$GEN" --individuals "$INDIVIDUALS" --files "$FILES" --orgs "$ORGS" \
        --data "$BIG/data" --key-file "$BIG/key" | tee "$BIG/gen.out" >&2
    SETUP=$(awk '/^setup_seconds/ {print $2 " s"}' "$BIG/gen.out")
    touch "$BIG/ready"
fi
log "database: $(du -sh "$BIG/data" | cut -f1)"

REPORT=(exposure report --from 2025-12-10 --to 2026-01-05 --discovered 2026-01-10 --keys-exposed no
    --basis present)
times=()
rsss=()
for i in $(seq 1 "$RUNS"); do
    out=$WORK/report-$i
    /usr/bin/time -v "$LOCKBOX" --data-dir "$BIG/data" --key-file "$BIG/key" --json "${REPORT[@]}" \
        --no-mailing-list --out "$out" >"$WORK/report-$i.json" 2>"$WORK/report-$i.time" ||
        { cat "$WORK/report-$i.time" >&2; die "report run $i failed"; }
    t=$(elapsed "$WORK/report-$i.time")
    r=$(max_rss "$WORK/report-$i.time")
    times+=("$t")
    rsss+=("$r")
    log "run $i: ${t} s, max RSS $((r / 1024)) MiB"
    [ "$i" = 1 ] && python3 - "$WORK/report-1.json" >&2 <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
rows = sum(o["individuals"] for o in r["organizations"])
print(f"[bench] report: {t['files']} files, {t['organizations']} orgs, {t['individuals']} distinct individuals, "
      f"{rows} per-organization individuals (individuals.csv rows)")
EOF
    rm -rf "$out"
done
T_MED=$(printf '%s\n' "${times[@]}" | median)
R_MED=$(printf '%s\n' "${rsss[@]}" | median)

# ---- part 2: mailing-list throughput ---------------------------------------------------------------------------
MAIL=$WORK/mail
log "uploading synthetic files (~$MAIL_PEOPLE people, 21 files) through the vault"
"$GEN" --mode real --people "$MAIL_PEOPLE" --files-per-format 3 --orgs 4 \
    --data "$MAIL/data" --key-file "$MAIL/key" | tee "$MAIL.gen" >&2
RECORDS=$(awk '/^real_files/ {print $4}' "$MAIL.gen")
TODAY=$(date -u +%F)
MREPORT=(exposure report --from 2020-01-01 --to "$TODAY" --discovered "$TODAY" --keys-exposed yes --basis present)
with=()
without=()
for i in $(seq 1 "$RUNS"); do
    for mode in without with; do
        flag=()
        [ "$mode" = without ] && flag=(--no-mailing-list)
        out=$WORK/mail-$mode-$i
        /usr/bin/time -v "$LOCKBOX" --data-dir "$MAIL/data" --key-file "$MAIL/key" --json "${MREPORT[@]}" \
            "${flag[@]}" --out "$out" >"$out.json" 2>"$out.time" ||
            { cat "$out.time" >&2; die "mailing report ($mode) failed"; }
        t=$(elapsed "$out.time")
        if [ "$mode" = with ]; then with+=("$t"); else without+=("$t"); fi
        rm -rf "$out"
    done
done
W_MED=$(printf '%s\n' "${with[@]}" | median)
WO_MED=$(printf '%s\n' "${without[@]}" | median)
read -r CSV_ROWS WITH_CONTACT DECRYPTED < <(python3 - "$WORK/mail-with-1.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
m = r["mailing_list"]
print(sum(o["individuals"] for o in r["organizations"]), m["individuals_with_contact"], m["files_decrypted"])
EOF
)

# ---- summary ---------------------------------------------------------------------------------------------------
python3 - <<EOF
t, r, goal_t, goal_r = $T_MED, $R_MED, $GOAL_SECONDS, $GOAL_KIB
w, wo = $W_MED, $WO_MED
phase = max(w - wo, 1e-3)
print()
print("exposure report at scale: $INDIVIDUALS individuals, $FILES files, $ORGS organizations")
print(f"  setup (generator):           $SETUP")
print(f"  report, median of $RUNS:       {t:.2f} s   (goal < {goal_t} s: {'MET' if t < goal_t else 'MISSED'})")
print(f"  peak RSS, median of $RUNS:     {r/1024:.0f} MiB (goal < 4096 MiB: {'MET' if r < goal_r else 'MISSED'})")
print(f"  runs (s):                    ${times[*]}")
print("mailing list ($DECRYPTED files decrypted and re-scanned, $RECORDS person records)")
print(f"  report with / without:       {w:.2f} s / {wo:.2f} s (medians of $RUNS)")
print(f"  mailing-list phase:          {phase:.2f} s")
print(f"  throughput:                  {$CSV_ROWS/phase:,.0f} individuals/s ($CSV_ROWS individuals.csv rows, $WITH_CONTACT with contact)")
print(f"                               {$RECORDS/phase:,.0f} person records/s")
EOF

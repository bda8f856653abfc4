#!/usr/bin/env bash
# PHI classifier throughput per core on X12 834 and CSV (~256 MB synthetic inputs), with a no-op person
# callback and with the vault's per-person work (fingerprints + merge), next to plain SHA-256 over the
# same bytes. Goal: >= 300 MB/s per core.
#
#   bench/classifier_throughput.sh
#   BENCH_MB=64 BENCH_RUNS=5 BENCH_ONLY=csv bench/classifier_throughput.sh
#
# Environment: BENCH_MB (default 256), BENCH_RUNS (default 3), BENCH_PEOPLE (default 50000),
# BENCH_ONLY (834 or csv), CARGO_TARGET_DIR (respected by cargo).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
exec cargo bench -p lockbox-inventory --bench throughput

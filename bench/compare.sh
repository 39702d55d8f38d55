#!/usr/bin/env bash
# Training and inference throughput of qsnn's default network against the PyTorch reference
# (../shared/bench/torch_lif_reference.py, with and without --hoist), in one run, same threads,
# same environment (OPENBLAS_CORETYPE included). Prints a table and the ratios.
# Each tool runs --repeat times, interleaved (so slow phases of a shared machine hit both), and
# the table shows the median of each figure.
#   bench/compare.sh [--threads N] [--batches N] [--repeat N] [--reference PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 batches=30 repeat=3 ref=../shared/bench/torch_lif_reference.py
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --reference) ref=$2; shift 2 ;;
    *) echo "usage: bench/compare.sh [--threads N] [--batches N] [--repeat N] [--reference PATH]" >&2; exit 2 ;;
  esac
done
[ -f "$ref" ] || { echo "compare.sh: reference script $ref not found" >&2; exit 1; }
[ -x build/qsnn_bench ] || { echo "compare.sh: build first (scripts/run.sh bench builds)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $(date -u +%F)"
for i in $(seq "$repeat"); do
  build/qsnn_bench --threads "$threads" --batches "$batches" >> "$out/qsnn.json"
  /usr/bin/python3 "$ref" --threads "$threads" --batches "$batches" --hoist >> "$out/ref_hoist.json"
  /usr/bin/python3 "$ref" --threads "$threads" --batches "$batches" >> "$out/ref.json"
done
/usr/bin/python3 bench/throughput_table.py "$out"

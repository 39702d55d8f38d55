#!/usr/bin/env bash
# What stateful quantization costs in training throughput, qsnn next to the PyTorch reference
# (../shared/bench/torch_lif_reference.py --hoist), in one run: full-precision membranes against
# 4-bit uniform and threshold-centered grids, each configuration --repeat times, interleaved; the
# medians and the overhead (1 - quantized/full precision samples per second) of each tool.
#   bench/state_quant_overhead.sh [--threads N] [--batches N] [--repeat N] [--bits B] [--reference PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 batches=30 repeat=3 bits=4 ref=../shared/bench/torch_lif_reference.py
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --bits) bits=$2; shift 2 ;;
    --reference) ref=$2; shift 2 ;;
    *) echo "usage: bench/state_quant_overhead.sh [--threads N] [--batches N] [--repeat N] [--bits B] [--reference PATH]" >&2
       exit 2 ;;
  esac
done
[ -f "$ref" ] || { echo "state_quant_overhead.sh: reference script $ref not found" >&2; exit 1; }
[ -x build/qsnn_bench ] || { echo "state_quant_overhead.sh: build first (scripts/run.sh bench builds)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $(date -u +%F)"
for i in $(seq "$repeat"); do
  build/qsnn_bench --threads "$threads" --batches "$batches" >> "$out/q_fp.json"
  build/qsnn_bench --threads "$threads" --batches "$batches" --set quant.state.bits="$bits" >> "$out/q_uniform.json"
  build/qsnn_bench --threads "$threads" --batches "$batches" --set quant.state.bits="$bits" \
    --set quant.state.grid=threshold_centered >> "$out/q_tc.json"
  /usr/bin/python3 "$ref" --threads "$threads" --batches "$batches" --hoist >> "$out/r_fp.json"
  /usr/bin/python3 "$ref" --threads "$threads" --batches "$batches" --hoist --state-bits "$bits" >> "$out/r_uniform.json"
  /usr/bin/python3 "$ref" --threads "$threads" --batches "$batches" --hoist --state-bits "$bits" \
    --grid threshold_centered >> "$out/r_tc.json"
done
/usr/bin/python3 - "$out" "$bits" <<'PY'
import json, os, statistics, sys
d, bits = sys.argv[1], sys.argv[2]
def med(name):
    runs = [json.loads(l) for l in open(os.path.join(d, name + ".json")) if l.strip()]
    return statistics.median(x["train_samples_per_s"] for x in runs), [round(x["train_samples_per_s"]) for x in runs]
print(f"training samples/s, medians of interleaved runs; overhead = 1 - quantized / full precision")
print(f"{'':34s} {'qsnn':>10s} {'PyTorch --hoist':>16s}")
rows = {}
for key, label in (("fp", "full-precision membrane"), ("uniform", f"{bits}-bit uniform grid"),
                   ("tc", f"{bits}-bit threshold-centered grid")):
    (q, qr), (r, rr) = med("q_" + key), med("r_" + key)
    rows[key] = (q, r)
    print(f"{label:34s} {q:10.0f} {r:16.0f}    runs qsnn {qr}, PyTorch {rr}")
for key in ("uniform", "tc"):
    q, r = rows[key]
    print(f"overhead {key:8s}  qsnn {100 * (1 - q / rows['fp'][0]):5.1f}%   PyTorch {100 * (1 - r / rows['fp'][1]):5.1f}%")
PY

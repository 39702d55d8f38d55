#!/usr/bin/env bash
# Progressive QIL (specs/quantizers.md §4, last line): QIL weights trained at 8 bits, then 4, 3 and 2
# bits, each run starting from the previous one's checkpoint (qsnn train --init), E epochs each; and,
# for comparison, 2-bit QIL from scratch for the same total (4 E epochs). Prints a markdown table
# (bits, test accuracy as the run reported it, wall seconds) and writes it to OUT/table.md.
#   bench/qil_progressive.sh [--epochs E] [--out DIR] [extra qsnn train args, e.g. --set data.train_limit=2048]
# Runs whose checkpoint OUT/NAME/model.h5 exists are skipped (their numbers come from OUT/NAME.log).
# QSNN=path/to/qsnn overrides the program (default: build/qsnn of this repository).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
q="${QSNN:-$root/build/qsnn}"
epochs=3 out=runs/qil_progressive
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) [ $# -ge 2 ] || { echo "qil_progressive.sh: --epochs needs a value" >&2; exit 2; }
              epochs=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || { echo "qil_progressive.sh: --out needs a value" >&2; exit 2; }
           out=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
case "$epochs" in ''|*[!0-9]*|0) echo "qil_progressive.sh: --epochs $epochs: expected a positive integer" >&2; exit 2 ;; esac
[ -x "$q" ] || { echo "qil_progressive.sh: $q is not an executable (build first, or set QSNN)" >&2; exit 1; }
mkdir -p "$out"
table="$out/table.md"
rows=()

# run NAME BITS EPOCHS INIT: trains OUT/NAME unless its checkpoint exists; INIT "" = from scratch.
run() {
  local name=$1 bits=$2 ep=$3 init=$4
  local model="$out/$name/model.h5" log="$out/$name.log"
  if [ ! -f "$model" ]; then
    echo "== $name: $bits-bit QIL, $ep epochs${init:+, --init $init}" >&2
    local t0 t1
    t0=$(date +%s.%N)
    "$q" train ${extra[@]+"${extra[@]}"} --no-progress --epochs "$ep" --out "$out/$name" \
      --set quant.weight.method=qil --set quant.weight.bits="$bits" ${init:+--init "$init"} > "$log"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' > "$out/$name.seconds"
  else
    echo "== $name: $model exists, skipped" >&2
  fi
  # accuracy from the run's own "saved ... (test accuracy X%" line; qsnn eval when the log is gone
  local acc secs
  acc=$( { [ -f "$log" ] && sed -n 's/^saved .*(test accuracy \([0-9.]*\)%.*/\1/p' "$log"; } | tail -1 || true)
  [ -n "$acc" ] || acc=$("$q" eval "$model" --no-progress | sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' | head -1)
  secs=$(cat "$out/$name.seconds" 2>/dev/null || echo "-")
  local from=-
  [ -z "$init" ] || from=$(basename "$(dirname "$init")")
  rows+=("| $name | $bits | $ep | $from | $acc | $secs |")
}

run qil8 8 "$epochs" ""
run qil4 4 "$epochs" "$out/qil8/model.h5"
run qil3 3 "$epochs" "$out/qil4/model.h5"
run qil2 2 "$epochs" "$out/qil3/model.h5"
run qil2_scratch 2 $((4 * epochs)) ""

{
  echo "| run | bits | epochs | init from | test accuracy % | wall s |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} > "$table"
cat "$table"

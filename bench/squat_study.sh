#!/usr/bin/env bash
# The SQUAT study (issue 3): the default Fashion-MNIST network trained with full precision, weight
# QAT only, state QAT only on each grid (uniform, threshold_centered, threshold_rest, lsq), weights and
# states together, and post-training quantization of the full-precision model, at 8, 4, 3 and 2
# bits. Writes the table (test accuracy, firing rates, fraction of membrane values saturated at the
# grid ends) to OUT/table.md and, with --update-docs, into docs/results.md between the
# squat-study markers; records traces of the 4-bit and 2-bit state-only models and plots their
# membrane histograms into docs/figures/.
#   bench/squat_study.sh [--epochs N] [--out DIR] [--bits "8 4 3 2"] [--update-docs]
# Finished runs are kept in OUT and skipped when the script runs again.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=8 out=runs/squat bits="8 4 3 2" update=0
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --bits) bits=$2; shift 2 ;;
    --update-docs) update=1; shift ;;
    *) echo "usage: bench/squat_study.sh [--epochs N] [--out DIR] [--bits \"8 4 3 2\"] [--update-docs]" >&2; exit 2 ;;
  esac
done
q=build/qsnn
[ -x "$q" ] || { echo "squat_study.sh: build first (scripts/run.sh test builds)" >&2; exit 1; }
mkdir -p "$out"
rows="$out/rows.tsv"
: > "$rows"

# train NAME [--set ...]: trains unless OUT/NAME/model.h5 exists; appends NAME and eval's line to rows.
train() {
  local name=$1; shift
  if [ ! -f "$out/$name/model.h5" ]; then
    echo "== $name: qsnn train --epochs $epochs $*" >&2
    "$q" train --epochs "$epochs" --no-progress --out "$out/$name" "$@" > "$out/$name.log"
  fi
  printf '%s\t%s\n' "$name" "$("$q" eval "$out/$name/model.h5" --no-progress | head -1)" >> "$rows"
}

train fp
for b in $bits; do
  train "w$b" --set quant.weight.bits=$b
  for g in uniform threshold_centered threshold_rest lsq; do
    train "s${b}_$g" --set quant.state.bits=$b --set quant.state.grid=$g
  done
  train "w${b}s${b}_uniform" --set quant.weight.bits=$b --set quant.state.bits=$b
  if [ ! -f "$out/ptq$b.h5" ]; then
    echo "== ptq$b: qsnn quantize fp --weight-bits $b --state-bits $b" >&2
    "$q" quantize "$out/fp/model.h5" --out "$out/ptq$b.h5" --weight-bits "$b" --state-bits "$b" --no-progress \
      > "$out/ptq$b.log"
  fi
  printf '%s\t%s\n' "ptq$b" "$("$q" eval "$out/ptq$b.h5" --no-progress | head -1)" >> "$rows"
  if [ "$b" -ge 2 ] && [ ! -f "$out/ptqa$b.h5" ]; then
    echo "== ptqa$b: qsnn quantize fp --weight-bits $b --state-bits $b --adaround" >&2
    "$q" quantize "$out/fp/model.h5" --out "$out/ptqa$b.h5" --weight-bits "$b" --state-bits "$b" --adaround \
      --no-progress > "$out/ptqa$b.log"
  fi
  [ -f "$out/ptqa$b.h5" ] && printf '%s\t%s\n' "ptqa$b" "$("$q" eval "$out/ptqa$b.h5" --no-progress | head -1)" >> "$rows"
done

# Membrane histograms of the grids that collapse and of those that work (4 and 2 bits, state only).
if [ "$update" = 1 ]; then
  mkdir -p docs/figures
  for name in s4_uniform s4_threshold_centered s4_threshold_rest s2_uniform s2_threshold_centered s2_threshold_rest; do
    [ -f "$out/$name/model.h5" ] || continue
    "$q" record "$out/$name/model.h5" --samples 64 --neurons 0:all --out "$out/$name.trace.h5" > /dev/null
    "$q" plot "$out/$name.trace.h5" --kind hist --layer 0 --out "docs/figures/hist_$name.png" > /dev/null
  done
fi

/usr/bin/python3 - "$rows" "$out/table.md" "$epochs" "$update" <<'PY'
import re, sys
rows, table, epochs, update = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
res = {}
for line in open(rows):
    name, ev = line.rstrip("\n").split("\t", 1)
    acc = float(re.search(r"test accuracy ([\d.]+)%", ev).group(1))
    rates = [float(x) for x in re.search(r"rates ([\d. ]+),", ev).group(1).split()]
    sat = [float(x) for x in re.search(r"saturated ([\d. ]+),", ev).group(1).split()]
    res[name] = dict(acc=acc, rates=rates, sat=sat)
fp = res["fp"]
def cell(name):
    r = res.get(name)
    if not r: return "| – | – | – |"
    return f"| {r['acc']:.2f} ({r['acc'] - fp['acc']:+.2f}) | {r['rates'][0]:.3f} / {r['rates'][1]:.3f} | {r['sat'][0]:.2f} / {r['sat'][1]:.2f} |"
bits = sorted({int(m.group(1)) for n in res for m in [re.match(r"w(\d+)$", n)] if m}, reverse=True)
kinds = [("weights only (uniform symmetric, per channel)", "w{b}"),
         ("states only, uniform grid", "s{b}_uniform"),
         ("states only, threshold-centered grid", "s{b}_threshold_centered"),
         ("states only, threshold_rest grid (new)", "s{b}_threshold_rest"),
         ("states only, lsq grid (learned step)", "s{b}_lsq"),
         ("weights + states, uniform grid", "w{b}s{b}_uniform"),
         ("PTQ of the full-precision model, weights + states (uniform)", "ptq{b}"),
         ("PTQ with AdaRound, weights + states (uniform)", "ptqa{b}")]
lines = [f"Default network (784-1000-10 LIF, T = 25), {epochs} epochs, seed 0; test accuracy in % (change from full",
         "precision), mean firing rate (spikes per neuron per step, hidden / output) and fraction of membrane",
         "values at the grid's ends (hidden / output) on the 10,000 test images.", "",
         "| model | bits | accuracy | rates | saturated |", "|---|---|---|---|---|",
         f"| full precision | 32 | {fp['acc']:.2f} | {fp['rates'][0]:.3f} / {fp['rates'][1]:.3f} | {fp['sat'][0]:.2f} / {fp['sat'][1]:.2f} |"]
for label, pat in kinds:
    for b in bits:
        lines.append(f"| {label} | {b} " + cell(pat.format(b=b)))
text = "\n".join(lines) + "\n"
open(table, "w").write(text)
print(text)
if update:
    p = "docs/results.md"
    doc = open(p).read()
    b, e = "<!-- squat-study:begin -->", "<!-- squat-study:end -->"
    new = f"{b}\n{text}{e}"
    doc = re.sub(re.escape(b) + ".*?" + re.escape(e), lambda m: new, doc, flags=re.S) if b in doc else doc + "\n" + new + "\n"
    open(p, "w").write(doc)
PY

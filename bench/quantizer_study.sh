#!/usr/bin/env bash
# The learned-quantizer study (issue 7): weights and states quantized together at 4, 3 and 2 bits by
# each quantizer family (min-max uniform, LSQ, QIL, Quantization Networks, CPQ, CPQ with learned bit
# widths), on the default network or the convolutional example. Writes OUT/table.md (test accuracy,
# mean firing rates, training time relative to full precision, learned weight bits) and, with
# --update-docs, puts it into docs/results.md between the quantizer-study markers for that network.
#   bench/quantizer_study.sh [--net default|conv] [--epochs N] [--bits "4 3 2"] [--methods "..."]
#                            [--threads N] [--out DIR] [--update-docs]
# Finished runs are kept in OUT and skipped when the script runs again.
set -euo pipefail
cd "$(dirname "$0")/.."
net=default epochs=3 bits="4 3 2" methods="uniform lsq qil qn cpq cpq_lb" threads=2 out= update=0
while [ $# -gt 0 ]; do
  case "$1" in
    --net) net=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --bits) bits=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --update-docs) update=1; shift ;;
    *) echo "usage: bench/quantizer_study.sh [--net default|conv] [--epochs N] [--bits \"4 3 2\"] [--methods \"...\"] [--threads N] [--out DIR] [--update-docs]" >&2; exit 2 ;;
  esac
done
q=${QSNN:-build/qsnn}
[ -x "$q" ] || { echo "quantizer_study.sh: build first (scripts/run.sh test builds)" >&2; exit 1; }
case "$net" in
  default) base=(); out=${out:-runs/lq_default} ;;
  # the convolutional network's states need the clipped straight-through gradient (docs/results.md)
  conv) base=(--config examples/conv.yaml); out=${out:-runs/lq_conv} ;;
  *) echo "quantizer_study.sh: --net default or conv" >&2; exit 2 ;;
esac
mkdir -p "$out"
rows="$out/rows.tsv"
: > "$rows"

# method -> weight quantizer, state grid, extra settings
settings() {
  local m=$1 b=$2
  case "$m" in
    uniform) echo "--set quant.weight.method=uniform_symmetric --set quant.state.grid=uniform" ;;
    lsq) echo "--set quant.weight.method=lsq --set quant.state.grid=lsq" ;;
    qil) echo "--set quant.weight.method=qil --set quant.state.grid=qil" ;;
    qn) echo "--set quant.weight.method=qn --set quant.state.grid=qn" ;;
    cpq) echo "--set quant.weight.method=cpq --set quant.state.grid=cpq" ;;
    cpq_lb) echo "--set quant.weight.method=cpq --set quant.state.grid=cpq --set quant.cpq.learn_bits=true" ;;
    *) echo "quantizer_study.sh: unknown method $m" >&2; exit 2 ;;
  esac
}

train() {
  local name=$1; shift
  if [ ! -f "$out/$name/model.h5" ]; then
    echo "== $name: qsnn train ${base[*]} --epochs $epochs $*" >&2
    OMP_WAIT_POLICY=PASSIVE "$q" train "${base[@]}" --epochs "$epochs" --threads "$threads" --no-progress \
      --out "$out/$name" "$@" > "$out/$name.log"
  fi
  printf '%s\t%s\n' "$name" "$("$q" eval "$out/$name/model.h5" --no-progress | head -1)" >> "$rows"
}

clip=()
[ "$net" = conv ] && clip=(--set quant.state.ste_clip=true)
train fp
for b in $bits; do
  for m in $methods; do
    # shellcheck disable=SC2046
    train "${m}_$b" --set quant.weight.bits=$b --set quant.state.bits=$b "${clip[@]}" $(settings "$m" "$b")
  done
done
# the table covers every run in OUT, also those of other --methods or --bits calls
for d in "$out"/*_[0-9]*/; do
  name=$(basename "$d")
  [ -f "$d/model.h5" ] && ! grep -q "^$name	" "$rows" &&
    printf '%s\t%s\n' "$name" "$("$q" eval "$d/model.h5" --no-progress | head -1)" >> "$rows"
done

/usr/bin/python3 - "$out" "$rows" "$out/table.md" "$net" "$epochs" "$update" <<'PY'
import re, sys
out, rows, table, net, epochs, update = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6] == "1"
def train_seconds(name):
    t = 0.0
    for line in open(f"{out}/{name}.log"):
        m = re.match(r"epoch \d+/\d+ .*\(([\d.]+) s\)", line)
        if m: t += float(m.group(1))
    return t
def learned_bits(name):
    bits = None
    for line in open(f"{out}/{name}.log"):
        m = re.search(r"learned weight bits ([\d. ]+)", line)
        if m: bits = [float(x) for x in m.group(1).split()]
    return bits
res = {}
for line in open(rows):
    name, ev = line.rstrip("\n").split("\t", 1)
    acc = float(re.search(r"test accuracy ([\d.]+)%", ev).group(1))
    rates = [float(x) for x in re.search(r"rates ([\d. ]+),", ev).group(1).split()]
    res[name] = dict(acc=acc, rates=rates, secs=train_seconds(name), lb=learned_bits(name))
fp = res["fp"]
labels = {"uniform": "uniform (min-max)", "lsq": "LSQ", "qil": "QIL", "qn": "Quantization Networks",
          "cpq": "CPQ (DropBits)", "cpq_lb": "CPQ, learned weight bits"}
netname = {"default": "Default network (784-1000-10 LIF, T = 25)",
           "conv": "Convolutional example (examples/conv.yaml, T = 4)"}[net]
def rates(r): return " / ".join(f"{x:.3f}" for x in r["rates"])
lines = [f"{netname}, {epochs} epochs, seed 0; weights and states quantized by the same family at b bits;",
         "test accuracy in % (change from full precision), mean firing rate per layer (spikes per neuron per",
         "step), training time relative to full precision, and the weight bits per layer.", "",
         "| quantizer | bits | accuracy | rates | training time | weight bits |", "|---|---|---|---|---|---|",
         f"| full precision | 32 | {fp['acc']:.2f} | {rates(fp)} | 1.00 ({fp['secs']:.0f} s) | 32 |"]
bits = sorted({int(n.rsplit('_', 1)[1]) for n in res if n != "fp"}, reverse=True)
for m in labels:
    for b in bits:
        r = res.get(f"{m}_{b}")
        if not r: continue
        wb = " / ".join(f"{x:.2f}".rstrip("0").rstrip(".") for x in r["lb"]) if r["lb"] else str(b)
        cost = r["secs"] / fp["secs"] if fp["secs"] else float("nan")
        lines.append(f"| {labels[m]} | {b} | {r['acc']:.2f} ({r['acc'] - fp['acc']:+.2f}) | {rates(r)} | {cost:.2f} | {wb} |")
text = "\n".join(lines) + "\n"
open(table, "w").write(text)
print(text)
if update:
    p = "docs/results.md"
    doc = open(p).read()
    b, e = f"<!-- quantizer-study-{net}:begin -->", f"<!-- quantizer-study-{net}:end -->"
    new = f"{b}\n{text}{e}"
    doc = re.sub(re.escape(b) + ".*?" + re.escape(e), lambda m: new, doc, flags=re.S) if b in doc else doc + "\n" + new + "\n"
    open(p, "w").write(doc)
PY

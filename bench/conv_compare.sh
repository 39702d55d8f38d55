#!/usr/bin/env bash
# Training and inference throughput of qsnn's convolutional network (examples/conv.yaml) against the
# PyTorch reference (bench/torch_conv_reference.py, with and without --hoist), in one run, same
# threads, same environment (OPENBLAS_CORETYPE included). Prints a table and the ratios.
# Each tool runs --repeat times, interleaved (so slow phases of a shared machine hit all of them),
# and the table shows the median of each figure.
# The reference's steps, beta, lr, batch and conv channels are read from qsnn's resolved
# configuration (`qsnn config`, next to the bench binary), so both run the same network; settings
# the reference does not model are named as warnings.
# Note: qsnn always runs the first convolution once per batch (its input is static under direct
# encoding), i.e. like the reference's --hoist.
#   bench/conv_compare.sh [--threads N] [--batches N] [--repeat N] [--reference PATH] [--bench PATH]
# --bench (or QSNN_BENCH=path) picks the qsnn_bench binary; default build/qsnn_bench.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2 batches=10 repeat=3 ref=bench/torch_conv_reference.py bench=${QSNN_BENCH:-build/qsnn_bench}
usage="usage: bench/conv_compare.sh [--threads N] [--batches N] [--repeat N] [--reference PATH] [--bench PATH]"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --reference) ref=$2; shift 2 ;;
    --bench) bench=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ -f "$ref" ] || { echo "conv_compare.sh: reference script $ref not found" >&2; exit 1; }
[ -x "$bench" ] || { echo "conv_compare.sh: $bench not found (build first: scripts/run.sh bench builds)" >&2; exit 1; }

if [ -f examples/conv.yaml ]; then
  qopts=(--config examples/conv.yaml)
else # the same network as options, for trees without the example
  qopts=(--set 'model.layers=[conv channels=32 kernel=3 padding=1 pool=max:2, conv channels=64 kernel=3 padding=1 pool=max:2 dropout=0.25, dense size=256 dropout=0.25]'
         --set 'model.input_shape=[1,28,28]' --set model.output_neuron=li --set model.beta=0.9 --set data.steps=4
         --set train.lr=2e-3)
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The reference's options from qsnn's resolved configuration.
refopts=(--steps 4 --beta 0.9 --lr 2e-3 --batch 128 --channels "32,64" --hidden 256 --dropout 0.25)
qsnn_cli=$(dirname "$bench")/qsnn
if [ -x "$qsnn_cli" ]; then
  if ! "$qsnn_cli" config "${qopts[@]}" > "$out/config.yaml" 2> "$out/config.err"; then
    cat "$out/config.err" >&2
    echo "conv_compare.sh: $qsnn_cli does not accept this network (a build older than conv layers? rebuild, or pass --bench)" >&2
    exit 1
  fi
  read -r -a refopts < <(/usr/bin/python3 - "$out/config.yaml" <<'PY'
import re, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
m, d, t, q = c["model"], c["data"], c["train"], c["quant"]
chans, hidden, drops = [], "0", set()
layers = m["layers"]
for i, line in enumerate(layers):
    kind, *opts = line.split()
    o = dict(x.split("=", 1) for x in opts)
    last_conv = kind == "conv" and (i + 1 == len(layers) or layers[i + 1].startswith("dense"))
    if kind == "dense" and i + 1 == len(layers) and chans:  # one dense layer after the convolutions
        hidden = o["size"]
        ok = all(k in ("size", "dropout") for k in o)
    else:
        want = {"kernel": "3", "padding": "1", "pool": "max:2"}
        ok = kind == "conv" and all(o.get(k, {"kernel": "3", "padding": "0", "pool": "none"}[k]) == v
                                    for k, v in want.items())
        ok = ok and all(o.get(k, dflt) == dflt for k, dflt in (("stride", "1"), ("groups", "1")))
        ok = ok and (last_conv or o.get("dropout", "0") == "0")
        ok = ok and o.get("neuron", m["neuron"]) == "lif" and not set(o) - {"channels", "kernel", "padding", "pool", "dropout"}
        if ok:
            chans.append(o["channels"])
    if "dropout" in o:
        drops.add(o["dropout"])
    if not ok:
        sys.exit(f"conv_compare.sh: model.layers[{i}] = {line!r}: the reference models only "
                 "'conv channels=N kernel=3 padding=1 pool=max:2' LIF layers, then optionally one 'dense size=N', "
                 "with dropout on the last two")
if len(drops) > 1 or (drops and len([l for l in layers if "dropout=" in l]) != (2 if hidden != "0" else 1)):
    sys.exit("conv_compare.sh: the reference applies one dropout rate to the last convolution and the dense layer")
if not chans:
    sys.exit("conv_compare.sh: the configuration has no conv layers")
expect = [("model.input_shape", m["input_shape"], [1, 28, 28]), ("model.inputs", m["inputs"], 784),
          ("model.outputs", m["outputs"], 10), ("model.neuron", m["neuron"], "lif"),
          ("model.output_neuron", m["output_neuron"], "li"), ("model.recurrent", m["recurrent"], "none"),
          ("model.threshold", m["threshold"], 1), ("model.reset", m["reset"], "subtract"),
          ("model.reset_grad", m["reset_grad"], False), ("model.learn_beta", m["learn_beta"], False),
          ("model.learn_threshold", m["learn_threshold"], False), ("model.surrogate", m["surrogate"], "arctan"),
          ("model.surrogate_slope", m["surrogate_slope"], 2), ("model.bias", m["bias"], True),
          ("data.encoding", d["encoding"], "direct"), ("train.optimizer", t["optimizer"], "adam"),
          ("train.loss", t["loss"], "ce_count"), ("train.weight_decay", t["weight_decay"], 0),
          ("quant.state.bits", q["state"]["bits"], 0), ("quant.weight.bits", q["weight"]["bits"], 0),
          ("quant.input.bits", q["input"]["bits"], 0), ("quant.current.bits", q["current"]["bits"], 0)]
for k, v, want in expect:
    if v != want:
        print(f"conv_compare.sh: warning: {k} = {v}; the reference runs {want}", file=sys.stderr)
print("--steps", d["steps"], "--beta", m["beta"], "--lr", t["lr"], "--batch", t["batch"], "--channels", ",".join(chans),
      "--hidden", hidden, "--dropout", drops.pop() if drops else "0")
PY
  )
  [ "${#refopts[@]}" -eq 14 ] || exit 1
else
  echo "conv_compare.sh: warning: $qsnn_cli not found; the reference runs its defaults (${refopts[*]})" >&2
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load $(cut -d' ' -f1-3 /proc/loadavg); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $(date -u '+%F %H:%M') UTC"
echo "qsnn: $bench ${qopts[*]}"
echo "reference: $ref ${refopts[*]}; threads $threads, $batches timed batches, $repeat runs each, interleaved"
for _ in $(seq "$repeat"); do
  "$bench" --threads "$threads" --batches "$batches" "${qopts[@]}" >> "$out/qsnn.json"
  /usr/bin/python3 "$ref" --threads "$threads" --batches "$batches" "${refopts[@]}" --hoist >> "$out/ref_hoist.json"
  /usr/bin/python3 "$ref" --threads "$threads" --batches "$batches" "${refopts[@]}" >> "$out/ref.json"
done
echo "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 bench/throughput_table.py "$out"

#!/usr/bin/env bash
# The COBA and CUBA benchmarks (Brette et al. 2007) with qsnn's two engines side by side with
# Brian2 (../shared/bench/brian_bench.py, C++ standalone), in one run, interleaved (slow phases of
# a shared machine hit every tool), median of --repeat runs. Prints a table of simulation time
# (the network loop only), total time (the whole command, compilation included) and rates.
# The CVODE engine is the exactness reference, not a fast path: it runs --cvode-duration of
# biological time (default 0.1 s) and its time is also shown scaled to 1 s.
#   bench/coba_compare.sh [--threads N] [--repeat N] [--seeds N] [--cvode-duration T] [--brian PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=1 repeat=3 cvode_dur=0.1 seeds=1 brian=../shared/bench/brian_bench.py
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --cvode-duration) cvode_dur=$2; shift 2 ;;
    --brian) brian=$2; shift 2 ;;
    *) echo "usage: bench/coba_compare.sh [--threads N] [--repeat N] [--seeds N] [--cvode-duration T] [--brian PATH]" >&2
       exit 2 ;;
  esac
done
qsnn=${QSNN:-build/qsnn}
[ -x "$qsnn" ] || { echo "coba_compare.sh: $qsnn not found (build first, or set QSNN=path)" >&2; exit 1; }
[ -f "$brian" ] || { echo "coba_compare.sh: $brian not found" >&2; exit 1; }
/usr/bin/python3 -c "import brian2" 2>/dev/null ||
  { echo "coba_compare.sh: Brian2 missing (scripts/setup.sh --bench installs python3-brian)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%F %H:%M') UTC"
echo "qsnn threads: $threads; Brian2 C++ standalone, single thread; $repeat runs each, interleaved"

wall() { # wall seconds of a command; its stdout's last line goes to $2
  local t0=$EPOCHREALTIME
  "${@:3}" > "$out/cmd.out" 2> "$out/cmd.err" || { cat "$out/cmd.err" >&2; return 1; }
  local t1=$EPOCHREALTIME
  tail -n 1 "$out/cmd.out" > "$2"
  awk "BEGIN { print $t1 - $t0 }" > "$1"
}

for i in $(seq "$repeat"); do
  for m in coba cuba; do
    wall "$out/w" "$out/j" "$qsnn" simulate "examples/$m.yaml" --no-save --json --no-progress --threads "$threads"
    paste -d' ' "$out/w" "$out/j" >> "$out/qsnn_step_$m"
    wall "$out/w" "$out/j" "$qsnn" simulate "examples/$m.yaml" --no-save --json --no-progress --threads "$threads" \
         --engine cvode --duration "$cvode_dur"
    paste -d' ' "$out/w" "$out/j" >> "$out/qsnn_cvode_$m"
    (cd "$out" && wall "$out/w" "$out/j" /usr/bin/python3 "$OLDPWD/$brian" --model "$m" --target cpp_standalone \
         --builddir "$out/bdir_$m")
    paste -d' ' "$out/w" "$out/j" >> "$out/brian_$m"
    rm -rf "$out/bdir_$m"
  done
done
# rates over other seeds (the networks are chaotic: one seed's rate is one sample)
for s in $(seq 2 "$seeds"); do
  for m in coba cuba; do
    "$qsnn" simulate "examples/$m.yaml" --no-save --json --no-progress --seed "$s" | tail -n 1 >> "$out/seeds_qsnn_$m"
    (cd "$out" && /usr/bin/python3 "$OLDPWD/$brian" --model "$m" --target cpp_standalone --seed "$s" \
         --builddir "$out/brian_s" 2>/dev/null | tail -n 1 >> "$out/seeds_brian_$m"; rm -rf "$out/brian_s")
  done
done

/usr/bin/python3 - "$out" "$cvode_dur" <<'PY'
import json, os, statistics, sys
d, cdur = sys.argv[1], float(sys.argv[2])
def load(name):
    rows = []
    for line in open(os.path.join(d, name)):
        w, j = line.split(" ", 1)
        r = json.loads(j); r["wall"] = float(w); rows.append(r)
    return rows
med = lambda xs: statistics.median(xs)
print()
print(f"{'model':5} {'tool':24} {'sim s':>8} {'total s':>8} {'rate Hz':>8} {'spikes':>8} {'synapses':>9}")
for m in ("coba", "cuba"):
    for tool, name in (("qsnn step", f"qsnn_step_{m}"), ("qsnn cvode", f"qsnn_cvode_{m}"), ("Brian2 cpp_standalone", f"brian_{m}")):
        rows = load(name)
        sim = med([r["t_sim_s"] for r in rows]); tot = med([r["wall"] for r in rows])
        rate = med([r["mean_rate_hz"] for r in rows]); sp = int(med([r["n_spikes"] for r in rows]))
        syn = rows[0]["n_synapses"]
        label = tool + (f" ({cdur:g} s)" if tool == "qsnn cvode" else "")
        print(f"{m:5} {label:24} {sim:8.3f} {tot:8.2f} {rate:8.2f} {sp:8d} {syn:9d}")
        if tool == "qsnn cvode":
            print(f"{'':5} {'  (scaled to 1 s)':24} {sim / cdur:8.1f}")
    qs = med([r["t_sim_s"] for r in load(f"qsnn_step_{m}")]); bs = med([r["t_sim_s"] for r in load(f"brian_{m}")])
    qt = med([r["wall"] for r in load(f"qsnn_step_{m}")]); bt = med([r["wall"] for r in load(f"brian_{m}")])
    print(f"{m}: qsnn step / Brian2 simulation time {qs / bs:.2f}x, total time {qt / bt:.3f}x")
for m in ("coba", "cuba"):
    for who in ("qsnn", "brian"):
        p = os.path.join(d, f"seeds_{who}_{m}")
        if os.path.exists(p):
            rates = [json.loads(l)["mean_rate_hz"] for l in open(p) if l.strip()]
            first = load(f"{'qsnn_step' if who == 'qsnn' else 'brian'}_{m}")[0]["mean_rate_hz"]
            allr = [first] + rates
            print(f"{m} {who} rates over {len(allr)} seeds: {min(allr):.2f}-{max(allr):.2f} Hz (mean {statistics.mean(allr):.2f})")
PY

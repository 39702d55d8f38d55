#!/usr/bin/python3
"""Medians of interleaved throughput runs, as a table with ratios: the summary that
bench/compare.sh and bench/conv_compare.sh print. Reads FOLDER/{qsnn,ref_hoist,ref}.json, one
JSON line per run (train_samples_per_s, infer_samples_per_s, peak_rss_mib); the per-run values go
to stderr.
  bench/throughput_table.py FOLDER
"""
import json
import os
import statistics
import sys

KEYS = ("train_samples_per_s", "infer_samples_per_s", "peak_rss_mib")


def median_of(folder, name):
    runs = [json.loads(line) for line in open(os.path.join(folder, name)) if line.strip()]
    for k in KEYS:
        print(f"  {name[:-5]:10s} {k:20s} runs: " + ", ".join(f"{x[k]:.0f}" for x in runs), file=sys.stderr)
    return {k: statistics.median(x[k] for x in runs) for k in KEYS}, len(runs)


def main():
    d = sys.argv[1]
    (q, n), (h, _), (r, _) = (median_of(d, f) for f in ("qsnn.json", "ref_hoist.json", "ref.json"))
    print(f"medians of {n} interleaved runs each")
    print(f"{'':28s} {'train samples/s':>16s} {'infer samples/s':>16s} {'peak RSS MiB':>13s}")
    for name, x in (("qsnn", q), ("PyTorch reference --hoist", h), ("PyTorch reference", r)):
        print(f"{name:28s} {x['train_samples_per_s']:16.0f} {x['infer_samples_per_s']:16.0f} {x['peak_rss_mib']:13.0f}")
    for name, x in (("--hoist", h), ("per-step", r)):
        print(f"qsnn / reference {name:11s} train x{q['train_samples_per_s'] / x['train_samples_per_s']:.2f}"
              f"  infer x{q['infer_samples_per_s'] / x['infer_samples_per_s']:.2f}")


if __name__ == "__main__":
    main()

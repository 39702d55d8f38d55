#!/usr/bin/python3
"""An independent implementation of the integer model file (io/int_model.h, docs/file-formats.md),
as a hardware engineer would write it from the documentation: NumPy integer arithmetic only, run on
the Fashion-MNIST test images, must give exactly the predictions of `qsnn eval --integer`. Trains a
small integer-exact model and a small approximate one first. Registered with ctest where Debian's
python3-h5py is installed.
  /usr/bin/python3 tests/int_model_reference.py build/qsnn
"""
import gzip
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
N = 512  # test images


def idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def round_half_down(v, s):
    """v / 2^s to the nearest integer, ties down; s <= 0 is a left shift."""
    if s <= 0:
        return v * (1 << -s)
    return (v + (1 << (s - 1)) - 1) >> s


def nearest_level(v, levels):
    """index of the nearest level, ties to the lower one, saturating."""
    hi = np.searchsorted(levels, v, side="left")  # levels[hi-1] < v <= levels[hi]
    hi = np.clip(hi, 1, len(levels) - 1)
    lo = hi - 1
    pick_lo = (v - levels[lo]) <= (levels[hi] - v)
    k = np.where(pick_lo, lo, hi)
    k = np.where(v <= levels[0], 0, k)
    return np.where(v >= levels[-1], len(levels) - 1, k)


def run(path, images):
    with h5py.File(path, "r") as f:
        steps, in_bits = int(f.attrs["steps"]), int(f.attrs["input_bits"])
        assert f.attrs["prediction"] in ("spike_count", b"spike_count")
        layers = []
        for l in range(int(f.attrs["n_layers"])):
            g = f["layers"][f"layer{l}"]
            a = {k: g.attrs[k] for k in g.attrs}
            layers.append(dict(w=g["weight_codes"][()].astype(np.int64), bias=g["bias"][()],
                               mul=g["multiplier"][()].astype(np.int64), shift=g["shift"][()],
                               levels=g["levels"][()], theta=int(a["theta"]), bm=int(a["beta_multiplier"]),
                               bb=int(a["beta_bits"]), reset=a["reset"] if isinstance(a["reset"], str)
                               else a["reset"].decode(), cstep=int(a["current_step"]),
                               ckmax=int(a["current_max_code"])))
    x = images.astype(np.float32) / np.float32(255.0)  # the pixels as qsnn normalizes them
    up = np.float32(2.0 ** in_bits) if in_bits else np.float32(255.0)
    codes = np.clip(np.rint(x * up), 0, up).astype(np.int64)  # rint: round half even, as nearbyintf
    inp = np.repeat(codes[None], steps, axis=0)  # [T][B][in], the same input every step
    for L in layers:
        acc = np.einsum("tbi,oi->tbo", inp, L["w"])
        cur = np.empty_like(acc)
        for o in range(acc.shape[2]):
            cur[:, :, o] = round_half_down((acc[:, :, o] + L["bias"][o]) * L["mul"][o], int(L["shift"][o]))
        if L["cstep"] > 0:  # the first layer's current quantizer: nearest code, ties to even, clamped
            q, r = np.divmod(cur, L["cstep"])
            q = q + ((2 * r > L["cstep"]) | ((2 * r == L["cstep"]) & (q % 2 == 1)))
            cur = np.clip(q, -L["ckmax"], L["ckmax"]) * L["cstep"]
        u = np.zeros(acc.shape[1:], np.int64)
        out = np.zeros_like(acc)
        for t in range(steps):
            r = u > L["theta"]
            leak = round_half_down(L["bm"] * u, L["bb"])
            if L["reset"] == "subtract":
                v = leak + cur[t] - np.where(r, L["theta"], 0)
            elif L["reset"] == "zero":
                v = np.where(r, 0, leak) + cur[t]
            else:
                v = leak + cur[t]
            u = L["levels"][nearest_level(v, L["levels"])]
            out[t] = u > L["theta"]
        inp = out
    return inp.sum(axis=0).argmax(axis=1)  # first maximum


def main():
    qsnn = sys.argv[1]
    images, labels = idx("t10k-images-idx3-ubyte.gz")[:N].reshape(N, -1), idx("t10k-labels-idx1-ubyte.gz")[:N]
    common = ["--no-progress", "--epochs", "1", "--set", "data.train_limit=1024", "--set", f"data.test_limit={N}",
              "--set", "model.hidden=48", "--set", "data.steps=10"]
    cases = {"exact": ["--set", "quant.integer=true", "--set", "quant.weight.bits=4", "--set", "quant.state.bits=6"],
             "current": ["--set", "quant.integer=true", "--set", "quant.weight.bits=4", "--set", "quant.state.bits=6",
                         "--set", "quant.current.bits=4"],
             "approx": ["--set", "quant.weight.bits=3", "--set", "quant.state.bits=4",
                        "--set", "quant.state.grid=threshold_centered", "--set", "model.reset=zero"]}
    with tempfile.TemporaryDirectory() as d:
        for name, sets in cases.items():
            run_dir = os.path.join(d, name)
            subprocess.run([qsnn, "train", "--out", run_dir] + common + sets, check=True, stdout=subprocess.DEVNULL)
            model, exported = os.path.join(run_dir, "model.h5"), os.path.join(d, name + "_int.h5")
            subprocess.run([qsnn, "export", model, "--integer", exported], check=True, stdout=subprocess.DEVNULL)
            ev = subprocess.run([qsnn, "eval", model, "--integer", "--no-progress"], check=True,
                                capture_output=True, text=True).stdout
            m = re.search(r"integer engine: test accuracy [\d.]+% \((\d+)/(\d+)\)", ev)
            assert m and int(m.group(2)) == N, ev
            pred = run(exported, images)
            correct = int((pred == labels).sum())
            assert correct == int(m.group(1)), f"{name}: reference {correct}/{N}, qsnn {m.group(1)}/{N}\n{ev}"
            print(f"{name}: the NumPy reference of the integer model file agrees with qsnn: {correct}/{N} correct")


if __name__ == "__main__":
    main()

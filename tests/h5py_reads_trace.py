#!/usr/bin/python3
"""A trace file written by `qsnn record` read with h5py, as an analyst would: the documented layout
(docs/file-formats.md), spike events consistent with the recorded membranes (a neuron spikes at a
step exactly when its membrane exceeds the threshold), level indices naming the membranes, the
inputs as the engine saw them, and the per-epoch layout of `qsnn train --record`.
Registered with ctest only where Debian's python3-h5py is installed.
  /usr/bin/python3 tests/h5py_reads_trace.py build/qsnn
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

TINY = ["--no-progress", "--epochs", "1", "--set", "data.train_limit=512", "--set", "data.test_limit=256",
        "--set", "model.hidden=32", "--set", "data.steps=6", "--set", "quant.weight.bits=4",
        "--set", "quant.state.bits=3"]


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def check_recording(rec, N, T):
    assert int(rec.attrs["samples"]) == N and int(rec.attrs["steps"]) == T
    inp = rec["input"]
    assert inp["sample_index"].dtype == np.int64 and inp["sample_index"][()].tolist() == list(range(N))
    assert inp["label"].dtype == np.int32 and inp["label"].shape == (N,)
    x = inp["x"][()]
    assert x.dtype == np.float32 and x.shape == (N, 784) and 0 <= x.min() and x.max() <= 1
    assert text(inp.attrs["encoding"]) == "direct" and int(inp.attrs["static"]) == 1
    assert rec["model/params/layer0.weight"].shape == (32, 784)
    for l, out in ((0, 32), (1, 10)):
        L = rec["layers"][f"layer{l}"]
        assert int(L.attrs["out"]) == out and int(L.attrs["T"]) == T and text(L.attrs["neuron"]) == "lif"
        assert int(L.attrs["state_bits"]) == 3 and int(L.attrs["weight_bits"]) == 4
        levels = L.attrs["state_levels"]
        assert levels.dtype == np.float32 and levels.shape == (8,) and np.all(np.diff(levels) > 0)
        s, t, n = (L["spikes/" + k] for k in ("sample", "step", "neuron"))
        assert (s.dtype, t.dtype, n.dtype) == (np.int32, np.int16, np.int32)
        assert s.chunks is not None and s.compression == "gzip" and s.maxshape == (None,)
        s, t, n = s[()], t[()], n[()]
        assert len(s) == len(t) == len(n) and len(s) > 0
        key = (s.astype(np.int64) * T + t) * out + n
        assert np.all(np.diff(key) > 0), "events not sorted by (sample, step, neuron)"
        raster = np.zeros((N, T, out), bool)
        raster[s, t, n] = True
        u = L["membrane"][()]
        assert u.shape == (N, T, out) and L["neurons"][()].tolist() == list(range(out))
        theta = np.float32(L.attrs["theta"])
        assert np.array_equal(raster, u > theta), f"layer {l}: events differ from membrane > threshold"
        lv = L["membrane_level"][()]
        assert lv.dtype == np.uint8 and np.array_equal(levels[lv], u)


def main():
    qsnn = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([qsnn, "train", "--out", d, *TINY], check=True, stdout=subprocess.DEVNULL)
        path = os.path.join(d, "t.h5")
        subprocess.run([qsnn, "record", os.path.join(d, "model.h5"), "--samples", "20", "--out", path],
                       check=True, stdout=subprocess.DEVNULL)
        with h5py.File(path, "r") as f:
            assert text(f.attrs["format"]) == "qsnn-trace" and int(f.attrs["format_version"]) == 1
            assert "record" in text(f.attrs["command_line"]) and "hidden: [32]" in text(f["config"][()])
            check_recording(f, 20, 6)
        path = os.path.join(d, "e.h5")
        subprocess.run([qsnn, "train", "--out", os.path.join(d, "r"), *TINY[:2], "2", *TINY[3:],
                        "--record", path, "--record-samples", "20"], check=True, stdout=subprocess.DEVNULL)
        with h5py.File(path, "r") as f:
            assert int(f.attrs["epochs"]) == 2 and sorted(k for k in f if k.startswith("epoch_")) == ["epoch_1", "epoch_2"]
            for k in (1, 2):
                assert int(f[f"epoch_{k}"].attrs["epoch"]) == k
                check_recording(f[f"epoch_{k}"], 20, 6)
    print("h5py reads the trace files as documented")


if __name__ == "__main__":
    main()

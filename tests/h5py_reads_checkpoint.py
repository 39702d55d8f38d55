#!/usr/bin/python3
"""A checkpoint written by `qsnn train` read with h5py, as an analyst would: the documented layout
(docs/file-formats.md), integer weight codes x scales equal to a symmetric uniform fake
quantization of the stored float weights, ascending state levels, and the stored YAML config.
Registered with ctest only where Debian's python3-h5py is installed.
  /usr/bin/python3 tests/h5py_reads_checkpoint.py build/qsnn
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np


def main():
    qsnn = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([qsnn, "train", "--no-progress", "--out", d, "--epochs", "1",
                        "--set", "data.train_limit=512", "--set", "data.test_limit=256",
                        "--set", "model.hidden=32", "--set", "data.steps=6",
                        "--set", "quant.weight.bits=4", "--set", "quant.state.bits=3"],
                       check=True, stdout=subprocess.DEVNULL)
        with h5py.File(os.path.join(d, "model.h5"), "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            assert attrs["format"] == "qsnn-checkpoint", attrs
            assert int(attrs["format_version"]) == 1 and int(attrs["epoch"]) == 1
            config = f["config"][()]
            config = config.decode() if isinstance(config, bytes) else config
            assert "bits: 4" in config and "hidden: [32]" in config, config
            shapes = {"layer0.weight": (32, 784), "layer0.bias": (32,), "layer1.weight": (10, 32),
                      "layer1.bias": (10,), "layer0.beta": (1,), "layer0.theta": (1,)}
            for name, shape in shapes.items():
                got = f["params"][name]
                assert got.shape == shape and got.dtype == np.float32, (name, got.shape, got.dtype)
            for layer in (0, 1):
                w = f["params"][f"layer{layer}.weight"][()]
                g = f["layers"][f"layer{layer}"]
                codes, scales = g["weight_codes"][()], g["weight_scales"][()]
                assert g["weight_codes"].attrs["bits"] == 4
                assert codes.min() >= -8 and codes.max() <= 7
                # per output channel (the default): s = max|w| / 7, codes = round-half-even(w / s)
                s = (np.abs(w).max(axis=1) / np.float32(7)).astype(np.float32)
                assert np.array_equal(scales, s), (scales[:4], s[:4])
                want = np.clip(np.round(w / s[:, None]), -8, 7).astype(np.int32)
                assert np.array_equal(codes, want), "integer codes differ from round(w / s)"
                levels = g["state_levels"][()]
                assert levels.shape == (8,) and np.all(np.diff(levels) > 0)
                assert np.isclose(levels[0], -1.0) and np.isclose(levels[-1], 1.2)
            opt = f["optimizer"]
            assert opt.attrs["name"] in (b"adam", "adam") and int(opt.attrs["step"]) > 0
            assert opt["layer0.weight.m"].shape == (32, 784)
            # the per-epoch history: one entry per epoch, [epochs][layers] firing rates
            m = f["metrics"]
            assert m["epoch"].dtype == np.int64 and m["epoch"][()].tolist() == [1], m["epoch"][()]
            for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy",
                         "samples_per_s", "seconds"):
                assert m[name].shape == (1,) and m[name].dtype == np.float64, (name, m[name].shape)
            for name in ("firing_rate", "test_firing_rate"):
                assert m[name].shape == (1, 2) and m[name].dtype == np.float64, (name, m[name].shape)
                assert np.all((m[name][()] >= 0) & (m[name][()] <= 1)), (name, m[name][()])
            assert np.isclose(m["test_accuracy"][0], attrs["test_accuracy"])
            assert m["train_loss"][0] == attrs["train_loss"]
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()

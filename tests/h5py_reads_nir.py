#!/usr/bin/python3
"""A NIR file written by `qsnn export` read with h5py the way the reference `nir` package reads one
(nir/serialization.py: /version, /node with type, nodes/<id>/<parameter>, edges as [E][2] strings,
an optional metadata group per node): the node types, exactly NIR's parameter names, shapes and
dtypes, the discrete-to-continuous mapping (tau = dt/(1-beta), r = tau/dt, v_leak = v_reset = 0), and
the quantization metadata (weight = codes x scales, ascending state levels).
Registered with ctest only where Debian's python3-h5py is installed.
  /usr/bin/python3 tests/h5py_reads_nir.py build/qsnn
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

PARAMS = {"Input": {"shape"}, "Output": {"shape"}, "Affine": {"weight", "bias"}, "Linear": {"weight"},
          "LIF": {"tau", "r", "v_leak", "v_threshold", "v_reset"}}


def text(v):
    return v.decode("utf8") if isinstance(v, bytes) else str(v)


def main():
    qsnn = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([qsnn, "train", "--no-progress", "--out", d, "--epochs", "1",
                        "--set", "data.train_limit=512", "--set", "data.test_limit=256",
                        "--set", "model.hidden=32", "--set", "data.steps=6",
                        "--set", "quant.weight.bits=4", "--set", "quant.state.bits=3"],
                       check=True, stdout=subprocess.DEVNULL)
        nir_path = os.path.join(d, "m.nir")
        subprocess.run([qsnn, "export", os.path.join(d, "model.h5"), "--nir", nir_path, "--dt", "0.001"],
                       check=True, stdout=subprocess.DEVNULL)
        dt = 0.001
        with h5py.File(nir_path, "r") as f:
            assert text(f["version"][()]) == "1.0.0", f["version"][()]
            g = f["node"]
            assert text(g["type"][()]) == "NIRGraph"
            edges = [(text(a), text(b)) for a, b in g["edges"][()]]
            assert g["edges"].shape == (5, 2), g["edges"].shape
            assert edges == [("input", "fc0"), ("fc0", "lif0"), ("lif0", "fc1"), ("fc1", "lif1"),
                             ("lif1", "output")], edges
            nodes = g["nodes"]
            assert sorted(nodes.keys()) == ["fc0", "fc1", "input", "lif0", "lif1", "output"]
            for name, node in nodes.items():
                t = text(node["type"][()])
                params = set(node.keys()) - {"type", "metadata"}
                assert params == PARAMS[t], (name, t, params)
            assert nodes["input"]["shape"][()].tolist() == [784] and nodes["input"]["shape"].dtype == np.int64
            assert nodes["output"]["shape"][()].tolist() == [10]
            assert float(g["metadata"]["dt"][()]) == dt
            for l, (n_in, n_out) in enumerate([(784, 32), (32, 10)]):
                fc, lif = nodes[f"fc{l}"], nodes[f"lif{l}"]
                w = fc["weight"][()]
                assert w.shape == (n_out, n_in) and w.dtype == np.float32, (w.shape, w.dtype)
                assert fc["bias"].shape == (n_out,)
                md = fc["metadata"]
                codes, scales = md["weight_codes"][()], md["weight_scales"][()]
                assert int(md["weight_quant_bits"][()]) == 4 and codes.min() >= -8 and codes.max() <= 7
                assert np.array_equal(w, (codes * scales[:, None]).astype(np.float32)), "weight != codes x scales"
                for p in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
                    assert lif[p].shape == (n_out,) and lif[p].dtype == np.float32, (p, lif[p].shape)
                lm = lif["metadata"]
                beta = float(lm["beta"][()])
                tau, r = lif["tau"][()].astype(np.float64), lif["r"][()].astype(np.float64)
                assert np.allclose(tau, dt / (1 - beta), rtol=1e-6), (tau[:3], beta)
                assert np.allclose(r, tau / dt, rtol=1e-6)
                assert np.all(lif["v_leak"][()] == 0) and np.all(lif["v_reset"][()] == 0)
                assert np.all(lif["v_threshold"][()] == np.float32(lm["theta"][()]))
                assert text(lm["reset"][()]) == "subtract" and float(lm["dt"][()]) == dt
                levels = lm["state_quant_levels"][()]
                assert levels.shape == (8,) and np.all(np.diff(levels) > 0)
                assert int(lm["state_quant_bits"][()]) == 3 and text(lm["state_quant_grid"][()]) == "uniform"
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Golden fixtures for tests/test_golden.c, from an independent PyTorch autograd implementation.

A small 2-layer LIF network (F -> H -> C, T steps, static input, subtract reset decided from the
previous membrane and detached, arctan surrogate alpha = 2, cross-entropy on output spike counts)
written per-time-step the way PyTorch SNN users write it. Cases cover full precision with
learnable beta/theta, 4-bit weights + 4-bit uniform membrane grid, and a 3-bit threshold-centered
grid. Writes tests/golden/golden.h5 (h5py). Run with Debian's python: /usr/bin/python3 gen_golden.py
Only the generator needs torch; the C test reads the HDF5 file.
"""
import math
import os

import h5py
import numpy as np
import torch

torch.set_default_dtype(torch.float32)
F, H, C, T, B = 20, 16, 4, 10, 3


class Arctan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).float()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        a = 2.0
        return g * (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)


def levels(bits, grid, thr=1.0, lower=0.0, upper=0.2):
    """specs/neurons.md, computed in float64 then rounded to float32."""
    n = 2 ** bits
    lo, hi = -thr * (1 + lower), thr * (1 + upper)
    if grid == "uniform":
        step = (hi - lo) / (n - 1)
        lv = [lo + i * step if i < n // 2 else hi - (n - 1 - i) * step for i in range(n)]
    else:
        r = {1: 0.05, 2: 0.1, 3: 0.3, 4: 0.5, 5: 0.7, 6: 0.9, 7: 0.925}.get(bits, 0.95)
        c = thr
        L = math.floor(n * (c - lo) / (hi - lo))
        M = n - L
        lv = [lo + (c - lo) * (1 - r ** i) / (1 - r ** L) for i in range(L)]
        lv += [c + (hi - c) * (r ** (M - k) - r ** M) / (1 - r ** M) for k in range(1, M + 1)]
    return torch.tensor(np.array(lv, dtype=np.float64).astype(np.float32))


def quantize(u, lv):
    """Nearest level, ties to the lower one, straight-through gradient."""
    idx = torch.bucketize(u.detach(), lv).clamp(1, len(lv) - 1)
    lower, upper = lv[idx - 1], lv[idx]
    q = torch.where((u.detach() - lower) <= (upper - u.detach()), lower, upper)
    return u + (q - u).detach()


def fake_quant_weight(w, bits):
    """Symmetric uniform, per tensor, min-max: s = max|w| / (2^(b-1) - 1), round half to even."""
    qp, qn = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    s = w.detach().abs().max() / qp
    q = torch.clamp(torch.round(w.detach() / s), qn, qp)
    return w + (s * q - w).detach()


def run(case, seed, state_bits, grid, weight_bits):
    g = np.random.default_rng(seed)
    x = torch.tensor(g.random((B, F), dtype=np.float32))
    W1 = torch.tensor(g.uniform(-0.6, 0.6, (H, F)).astype(np.float32), requires_grad=True)
    b1 = torch.tensor(g.uniform(-0.2, 0.2, (H,)).astype(np.float32), requires_grad=True)
    W2 = torch.tensor(g.uniform(-0.8, 0.8, (C, H)).astype(np.float32), requires_grad=True)
    b2 = torch.tensor(g.uniform(-0.2, 0.2, (C,)).astype(np.float32), requires_grad=True)
    beta = [torch.tensor(0.95, requires_grad=True) for _ in range(2)]
    thr = [torch.tensor(1.0, requires_grad=True) for _ in range(2)]
    y = torch.tensor(g.integers(0, C, (B,)))
    lv = levels(state_bits, grid) if state_bits else None
    w1 = fake_quant_weight(W1, weight_bits) if weight_bits else W1
    w2 = fake_quant_weight(W2, weight_bits) if weight_bits else W2

    def lif(cur, mem, l):
        reset = (mem > thr[l]).float().detach()
        mem = beta[l] * mem + cur - reset * thr[l]
        if lv is not None:
            mem = quantize(mem, lv)
        return Arctan.apply(mem - thr[l]), mem

    mem1, mem2 = torch.zeros(B, H), torch.zeros(B, C)
    U1, S1, U2, S2 = [], [], [], []
    cur1 = x @ w1.t() + b1
    for _ in range(T):
        s1, mem1 = lif(cur1, mem1, 0)
        s2, mem2 = lif(s1 @ w2.t() + b2, mem2, 1)
        U1.append(mem1), S1.append(s1), U2.append(mem2), S2.append(s2)
    counts = torch.stack(S2).sum(0)
    loss = torch.nn.functional.cross_entropy(counts, y)
    loss.backward()
    U1, U2 = torch.stack(U1).detach(), torch.stack(U2).detach()
    margin = min((U1 - 1).abs().min().item(), (U2 - 1).abs().min().item())
    return dict(x=x, y=y.int(), W1=W1.detach(), b1=b1.detach(), W2=W2.detach(), b2=b2.detach(),
                U1=U1, S1=torch.stack(S1).detach(), U2=U2, S2=torch.stack(S2).detach(),
                loss=loss.detach().reshape(1), gW1=W1.grad, gb1=b1.grad, gW2=W2.grad, gb2=b2.grad,
                gbeta=torch.stack([b.grad for b in beta]), gtheta=torch.stack([t.grad for t in thr]),
                levels=lv if lv is not None else torch.zeros(1)), margin


def main():
    cases = [("full_precision", 0, "uniform", 0), ("w4_s4_uniform", 4, "uniform", 4),
             ("s3_threshold_centered", 3, "threshold_centered", 0)]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.h5")
    with h5py.File(out, "w") as f:
        f.attrs["generator"] = "tests/golden/gen_golden.py (PyTorch %s)" % torch.__version__
        f.attrs["T"], f.attrs["B"], f.attrs["F"], f.attrs["H"], f.attrs["C"] = T, B, F, H, C
        for name, sb, grid, wb in cases:
            # Draw until no membrane lies within 1e-3 of the threshold, so ULP-level differences
            # between BLAS implementations cannot flip a spike.
            for seed in range(100):
                d, margin = run(name, seed, sb, grid, wb)
                if margin > 1e-3 and d["S2"].sum() > 0:
                    break
            grp = f.create_group(name)
            grp.attrs["state_bits"], grp.attrs["grid"], grp.attrs["weight_bits"] = sb, np.bytes_(grid), wb
            grp.attrs["seed"] = seed
            for k, v in d.items():
                grp.create_dataset(k, data=v.numpy())
            print(name, "seed", seed, "loss", float(d["loss"][0]), "spikes", int(d["S1"].sum()), int(d["S2"].sum()))


if __name__ == "__main__":
    main()

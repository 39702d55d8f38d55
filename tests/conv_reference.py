#!/usr/bin/python3
"""Writes tests/golden/conv_golden.bin: an independent reference for sim/conv.c from PyTorch.

Regenerate (Debian's python3-torch and python3-numpy; the file is committed, so CI needs neither):
    /usr/bin/python3 tests/conv_reference.py            # writes tests/golden/conv_golden.bin
    /usr/bin/python3 tests/conv_reference.py OUT.bin    # elsewhere
test_conv.c (conv::matches_pytorch_golden) reads it. Layout, little-endian:
    int32[11]: magic 0x43564e31, in_c, in_h, in_w, out_c, k, stride, pad, groups, pool_size, rows
    float32 arrays, channels-last as in qsnn:
      x[rows][H][W][in_c], W[out_c][k][k][in_c/groups], b[out_c], gy[rows][OH][OW][out_c],
      y = conv2d(x, W, b), p = max_pool2d(y, pool_size), gW, gb, gx = gradients of sum(gy * y),
      gyp = gradient of sum(gp * p) w.r.t. y, where gp = the first numel(p) values of gy.
Computed in float64 from the float32 inputs, stored as float32.
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

IN_C, IN_H, IN_W, OUT_C, K, STRIDE, PAD, GROUPS, POOL, ROWS = 4, 9, 7, 6, 3, 2, 2, 2, 2, 3


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "golden", "conv_golden.bin")
    rng = np.random.default_rng(20261123)
    f32 = lambda *shape: rng.uniform(-1, 1, size=shape).astype(np.float32)
    x = f32(ROWS, IN_H, IN_W, IN_C)
    w = f32(OUT_C, K, K, IN_C // GROUPS)
    b = f32(OUT_C)
    oh = (IN_H + 2 * PAD - K) // STRIDE + 1
    ow = (IN_W + 2 * PAD - K) // STRIDE + 1
    gy = f32(ROWS, oh, ow, OUT_C)

    # NHWC -> NCHW, W[oc][kh][kw][icg] -> [oc][icg][kh][kw]
    tx = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    ty = F.conv2d(tx, tw, tb, stride=STRIDE, padding=PAD, groups=GROUPS)
    assert ty.shape == (ROWS, OUT_C, oh, ow), ty.shape
    tgy = torch.tensor(gy.transpose(0, 3, 1, 2), dtype=torch.float64)
    (ty * tgy).sum().backward()

    yv = ty.detach().clone().requires_grad_(True)
    tp = F.max_pool2d(yv, POOL)
    gp = gy.reshape(-1)[: tp.numel()].reshape(ROWS, tp.shape[2], tp.shape[3], OUT_C)
    (tp * torch.tensor(gp.transpose(0, 3, 1, 2), dtype=torch.float64)).sum().backward()

    nhwc = lambda t: t.detach().numpy().transpose(0, 2, 3, 1)
    arrays = [x, w, b, gy, nhwc(ty), nhwc(tp), tw.grad.numpy().transpose(0, 2, 3, 1), tb.grad.numpy(),
              nhwc(tx.grad), nhwc(yv.grad)]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "wb") as fh:
        fh.write(struct.pack("<11i", 0x43564E31, IN_C, IN_H, IN_W, OUT_C, K, STRIDE, PAD, GROUPS, POOL, ROWS))
        for a in arrays:
            fh.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
    print(f"wrote {out}: conv {IN_C}x{IN_H}x{IN_W} -> {OUT_C}x{oh}x{ow}, max pool {POOL}, rows {ROWS}")


if __name__ == "__main__":
    main()

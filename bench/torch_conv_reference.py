#!/usr/bin/python3
"""PyTorch reference for qsnn's convolutional network (examples/conv.yaml), to measure against side by side.

Network: input the normalised 28x28 image (pixels/255), direct encoding (the same input at every
one of T steps); for each entry of --channels (default 32,64): conv 3x3, padding 1, bias, max pool 2
on the current (before the neurons), then LIF; flatten (64*7*7 = 3136), dense -> 10 with bias, then
a non-spiking leaky-integrator readout U[t] = beta U[t-1] + I[t] (no threshold, no reset).
LIF as snnTorch's Leaky: R[t] = H(U[t-1] - thr) detached, U[t] = beta U[t-1] + I[t] - R[t] thr,
S[t] = H(U[t] - thr), arctan surrogate (alpha = 2), thr = 1, initial U = 0. Loss: cross-entropy
on the readout membrane summed over steps; Adam (constant lr); PyTorch's default init. This is
the per-time-step loop that users of PyTorch SNN libraries write; --hoist computes the first
conv + pool once per batch (its input is static), not every step.

Runs with Debian's python3-torch (use /usr/bin/python3) and the dataset-fashion-mnist package.
Prints one JSON line with throughput, memory and (with --epochs) accuracy.

  /usr/bin/python3 torch_conv_reference.py --threads 2 --batches 10
  /usr/bin/python3 torch_conv_reference.py --threads 2 --batches 10 --hoist
  /usr/bin/python3 torch_conv_reference.py --threads 2 --epochs 1
"""
import argparse
import gzip
import json
import math
import os
import resource
import time

# torch's own threads plus OpenBLAS's threads oversubscribe 2 cores (3-4x slower); keep BLAS single
# threaded unless the caller chose otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data, split):
    x = load_idx(os.path.join(data, f"{split}-images-idx3-ubyte.gz")).reshape(-1, 1, 28, 28)
    y = load_idx(os.path.join(data, f"{split}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


class ArctanSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        alpha = 2.0
        return grad * (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


class Net(torch.nn.Module):
    def __init__(self, channels, beta, thr, hoist, hidden=0, dropout=0.0, side=28):
        super().__init__()
        self.convs = torch.nn.ModuleList()
        c_in = 1
        for c in channels:
            self.convs.append(torch.nn.Conv2d(c_in, c, 3, padding=1, bias=True))
            c_in, side = c, side // 2
        flat = c_in * side * side
        self.hidden = torch.nn.Linear(flat, hidden) if hidden else None
        self.fc = torch.nn.Linear(hidden or flat, 10)
        self.beta, self.thr, self.hoist, self.p = beta, thr, hoist, dropout

    def drop(self, h, masks, k):
        """Dropout with one mask per sample for all steps (training only), as qsnn draws it."""
        if not self.training or self.p == 0.0:
            return h
        if masks[k] is None:
            masks[k] = (torch.rand_like(h) >= self.p).to(h.dtype) / (1.0 - self.p)
        return h * masks[k]

    def lif(self, cur, mem):
        reset = (mem > self.thr).to(mem.dtype).detach()
        mem = self.beta * mem + cur - reset * self.thr
        return ArctanSpike.apply(mem - self.thr), mem

    def forward(self, x, steps):
        # membranes start at 0 (shaped on the first step, as snnTorch's init_leaky() does)
        mems = [None] * (len(self.convs) + 1)
        masks = [None, None]
        mem_out = torch.zeros(x.shape[0], self.fc.out_features, device=x.device)
        logits = torch.zeros_like(mem_out)
        cur1_static = F.max_pool2d(self.convs[0](x), 2) if self.hoist else None
        for _ in range(steps):
            h = x
            for k, conv in enumerate(self.convs):
                if k == 0 and self.hoist:
                    cur = cur1_static
                else:
                    cur = F.max_pool2d(conv(h), 2)
                if mems[k] is None:
                    mems[k] = torch.zeros_like(cur)
                h, mems[k] = self.lif(cur, mems[k])
            h = self.drop(h.flatten(1), masks, 0)  # the last convolution's spikes
            if self.hidden is not None:
                cur = self.hidden(h)
                if mems[-1] is None:
                    mems[-1] = torch.zeros_like(cur)
                h, mems[-1] = self.lif(cur, mems[-1])
                h = self.drop(h, masks, 1)
            mem_out = self.beta * mem_out + self.fc(h)  # leaky integrator readout
            logits = logits + mem_out
        return logits


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels", default="32,64", help="output channels of the conv layers, comma separated")
    ap.add_argument("--hidden", type=int, default=256, help="dense LIF layer after the convolutions (0: none)")
    ap.add_argument("--dropout", type=float, default=0.25,
                    help="dropout on the last convolution's and the dense layer's spikes, mask fixed over the steps")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--beta", type=float, default=0.9)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hoist", action="store_true", help="compute the first conv + pool once per batch, not every step")
    ap.add_argument("--batches", type=int, default=10, help="timed training batches (after 3 warm-up)")
    ap.add_argument("--epochs", type=int, default=0, help="if > 0, train this many epochs and report test accuracy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is present")
    a = ap.parse_args()
    channels = [int(c) for c in a.channels.split(",") if c.strip()]
    if not channels or min(channels) < 1 or 28 >> len(channels) < 1:
        ap.error(f"--channels {a.channels}: expected 1..4 positive integers")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    xtr, ytr = (t.to(dev) for t in load_split(a.data, "train"))
    xte, yte = (t.to(dev) for t in load_split(a.data, "t10k"))
    net = Net(channels, a.beta, 1.0, a.hoist, a.hidden, a.dropout).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr, betas=(0.9, 0.999))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_batch(xb, yb):
        loss = F.cross_entropy(net(xb, a.steps), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    out = {"tool": "pytorch-conv-reference", "torch": torch.__version__, "device": a.device, "threads": a.threads,
           "channels": channels, "hidden": a.hidden, "dropout": a.dropout, "steps": a.steps, "batch": a.batch, "beta": a.beta, "lr": a.lr, "hoist": a.hoist}

    for i in range(3):
        train_batch(xtr[i * a.batch:(i + 1) * a.batch], ytr[i * a.batch:(i + 1) * a.batch])
    sync()
    t0 = time.perf_counter()
    for i in range(a.batches):
        j = (i * a.batch) % (len(xtr) - a.batch)
        loss = train_batch(xtr[j:j + a.batch], ytr[j:j + a.batch])
    sync()
    out["train_samples_per_s"] = round(a.batches * a.batch / (time.perf_counter() - t0), 1)
    if a.batches:
        out["last_loss"] = round(loss.item(), 4)

    net.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        n = 0
        for j in range(0, min(len(xte), a.batches * a.batch), a.batch):
            net(xte[j:j + a.batch], a.steps)
            n += len(xte[j:j + a.batch])
        sync()
        out["infer_samples_per_s"] = round(n / (time.perf_counter() - t0), 1)

    if a.epochs:
        torch.manual_seed(a.seed)
        net = Net(channels, a.beta, 1.0, a.hoist, a.hidden, a.dropout).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=a.lr, betas=(0.9, 0.999))
        t0 = time.perf_counter()
        net.train()
        for _ in range(a.epochs):
            perm = torch.randperm(len(xtr), device=dev)
            for j in range(0, len(xtr) - a.batch + 1, a.batch):
                idx = perm[j:j + a.batch]
                train_batch(xtr[idx], ytr[idx])
        out["train_wall_s"] = round(time.perf_counter() - t0, 1)
        net.eval()
        with torch.no_grad():
            correct = sum((net(xte[j:j + 1000], a.steps).argmax(1) == yte[j:j + 1000]).sum().item()
                          for j in range(0, len(xte), 1000))
        out["epochs"] = a.epochs
        out["test_accuracy"] = round(correct / len(xte), 4)

    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

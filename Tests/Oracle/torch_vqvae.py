#!/usr/bin/env python3
"""The VQ-VAE igpt trains (Sources/IGPTVQVAE), in PyTorch: the speed peer of `igpt vqvae bench`.

Same architecture (DeepMind's sonnet example): strided 4x4 convolutions down by `downsample`
(hiddens/2 wide but the last), a 3x3 convolution, residual blocks x + conv1x1(relu(conv3x3(relu x))),
a ReLU, a 1x1 projection to the embedding; the quantiser (nearest code by matmul distances,
straight-through gradient, commitment beta 0.25, EMA codebook with decay 0.99, Laplace smoothing,
dead-code restarts); the mirror image up with transposed 4x4 convolutions. Adam (0.9, 0.999),
loss mse / variance + commitment.

  python torch_vqvae.py bench --resolution 32 --batch 32 --steps 20 --threads 2

prints one JSON line with images_per_s and median_step_ms.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Residual(nn.Module):
    def __init__(self, h, rh):
        super().__init__()
        self.conv3 = nn.Conv2d(h, rh, 3, padding=1)
        self.conv1 = nn.Conv2d(rh, h, 1)

    def forward(self, x):
        return x + self.conv1(F.relu(self.conv3(F.relu(x))))


class Stack(nn.Module):
    def __init__(self, h, rh, n):
        super().__init__()
        self.blocks = nn.ModuleList([Residual(h, rh) for _ in range(n)])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return F.relu(x)


class VQVAE(nn.Module):
    def __init__(self, channels, hiddens, rh, layers, dim, codes, downsample):
        super().__init__()
        strided = downsample.bit_length() - 1
        down, c = [], channels
        for i in range(strided):
            out = hiddens if i == strided - 1 else hiddens // 2
            down += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.ReLU()]
            c = out
        self.encoder = nn.Sequential(*down, nn.Conv2d(c, hiddens, 3, padding=1), Stack(hiddens, rh, layers),
                                     nn.Conv2d(hiddens, dim, 1))
        up, c = [], hiddens
        for i in range(strided):
            last = i == strided - 1
            out = channels if last else hiddens // 2
            up.append(nn.ConvTranspose2d(c, out, 4, stride=2, padding=1))
            if not last:
                up.append(nn.ReLU())
            c = out
        self.decoder = nn.Sequential(nn.Conv2d(dim, hiddens, 3, padding=1), Stack(hiddens, rh, layers), *up)
        self.register_buffer("codebook", torch.randn(codes, dim))
        self.register_buffer("cluster_size", torch.ones(codes))
        self.register_buffer("embed_sum", self.codebook.clone())
        self.beta, self.decay, self.eps, self.dead = 0.25, 0.99, 1e-5, 0.03

    def step(self, x, variance):
        z = self.encoder(x).permute(0, 2, 3, 1)  # NHWC, as igpt
        flat = z.reshape(-1, z.shape[-1])
        d = (self.codebook * self.codebook).sum(1) - 2 * flat @ self.codebook.t()
        idx = d.argmin(1)
        q = self.codebook[idx].view_as(z)
        commit = self.beta * F.mse_loss(z, q.detach())
        st = z + (q - z).detach()
        out = self.decoder(st.permute(0, 3, 1, 2))
        loss = F.mse_loss(out, x) / variance + commit
        with torch.no_grad():
            onehot = F.one_hot(idx, self.codebook.shape[0]).type(flat.dtype)
            self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
            self.embed_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.codebook.shape[0] * self.eps) * n
            self.codebook.copy_(self.embed_sum / smoothed[:, None])
            dead = self.cluster_size < self.dead
            if dead.any():
                pick = flat[torch.randint(0, flat.shape[0], (int(dead.sum()),))]
                self.codebook[dead] = pick
                self.embed_sum[dead] = pick
                self.cluster_size[dead] = 1
        return loss


def bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    m = VQVAE(a.channels, a.hiddens, a.residual_hiddens, a.residual_layers, a.embedding_dim, a.codes, a.downsample)
    opt = torch.optim.Adam(m.parameters(), lr=3e-4, betas=(0.9, 0.999))
    x = torch.rand(a.batch, a.channels, a.resolution, a.resolution) - 0.5
    times = []
    for s in range(a.steps + 2):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        m.step(x, 0.06).backward()
        opt.step()
        if s >= 2:
            times.append(time.perf_counter() - t0)
    med = sorted(times)[len(times) // 2]
    print(json.dumps({"impl": "torch", "images_per_s": a.batch / med, "median_step_ms": med * 1000, "batch": a.batch,
                      "resolution": a.resolution, "threads": a.threads, "torch": torch.__version__,
                      "parameters": sum(p.numel() for p in m.parameters())}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["bench"])
    for name, default in [("resolution", 32), ("channels", 3), ("batch", 32), ("steps", 20), ("threads", 2), ("hiddens", 128),
                          ("residual-hiddens", 32), ("residual-layers", 2), ("embedding-dim", 64), ("codes", 512), ("downsample", 4)]:
        p.add_argument("--" + name, type=int, default=default)
    bench(p.parse_args())

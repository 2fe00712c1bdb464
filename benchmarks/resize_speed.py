"""Throughput of the MATLAB-exact `imresize` against torch's own (non-MATLAB) bicubic.

    python benchmarks/resize_speed.py [--device cuda] [--batch 16] [--size 384]

Prints images per second for x1/4 downscaling (how training LR crops are made) and x4
upscaling (the bicubic baseline), and the ratio to `F.interpolate(..., antialias=True)`.
No assertions: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from srgan.resize import imresize


def _rate(fn, x: torch.Tensor, repeats: int) -> float:
    fn(x)  # warm-up: builds and caches the weight matrices
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    return repeats * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=384, help="HR side length")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    hr = torch.rand(args.batch, 3, args.size, args.size, device=args.device)
    lr = hr[..., : args.size // 4, : args.size // 4].contiguous()
    hr8 = (hr * 255).to(torch.uint8)
    cases = [
        ("down x1/4 float32", hr, lambda x: imresize(x, 0.25),
         lambda x: F.interpolate(x, scale_factor=0.25, mode="bicubic", antialias=True)),
        ("down x1/4 uint8", hr8, lambda x: imresize(x, 0.25), None),
        ("up x4 float32", lr, lambda x: imresize(x, 4),
         lambda x: F.interpolate(x, scale_factor=4, mode="bicubic")),
    ]  # fmt: skip
    print(f"device {args.device}, batch {args.batch}, HR {args.size}x{args.size}")
    for name, x, ours, theirs in cases:
        r = _rate(ours, x, args.repeats)
        line = f"{name:20s} imresize {r:9.1f} img/s"
        if theirs is not None:
            t = _rate(theirs, x, args.repeats)
            line += f"   F.interpolate {t:9.1f} img/s   ratio {r / t:5.2f}"
        print(line)


if __name__ == "__main__":
    main()

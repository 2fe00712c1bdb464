"""Training throughput: patches/s of `srgan train`'s step against a plain eager PyTorch loop.

    python benchmarks/train_throughput.py [--device cuda] [--batch-sizes 16,64,256]
        [--stages 1,2] [--steps 30] [--images DIR] [--compile] [--blocks 16 --channels 64]

"ours" is Trainer.train_step exactly as `srgan train` runs it: images resident on the device,
batched crops + flips/rot90 + MATLAB bicubic on the device, bf16 autocast and channels_last on
CUDA, fused Adam, one host sync per step (optionally torch.compile). "plain" is the loop most
SR repositories use: a CPU DataLoader (workers crop, flip and resize each patch with torch's
antialiased bicubic), float32 NCHW model, default Adam, `loss.item()` every step. Stage 2 uses
the offline SRGAN-MSE losses (pixel MSE + adversarial) in both, unless --vgg.

Prints one row per (stage, batch): patches/s of both and their ratio. No assertions.

`--cpu-variants` measures the CPU choices instead (issue 13), all in one process so the ratios
hold on a noisy shared machine: fp32, bf16 autocast, bf16 + channels_last, bf16 +
torch.compile, each against the fp32 row; the header says which CPU capability torch uses and
whether bf16 is native there (what `train.amp = "auto"` decides on).

`--degradations` measures the cost of the realistic degradation model (`data.degradation =
"realistic"`: blur, resize, noise and JPEG per patch in worker processes) against the bicubic
one, in one process, rounds alternated (bicubic, realistic with --workers worker(s), realistic
inline) so the ratios hold on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from srgan.data import ImageBank, RealisticTrainingSet, TrainingSet, read_rgb_uint8
from srgan.device import TorchrunEnv
from srgan.losses import discriminator_loss, generator_adversarial_loss
from srgan.nets import Discriminator, SRResNet
from srgan.train.config import load_config
from srgan.train.loop import Trainer

# Every training folder under ../shared/data/train (found by listing: folders get renamed).
DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


def load_images(folder: Path | None, limit: int) -> list[np.ndarray]:
    if folder is not None and folder.is_dir():
        from srgan.imageio import find_images

        return [read_rgb_uint8(p) for p in find_images([folder])[:limit]]
    rng = np.random.default_rng(0)  # no data at hand: smooth random images
    yy, xx = np.mgrid[0:321, 0:481].astype(np.float32)
    out = []
    for _ in range(limit):
        f = rng.uniform(0.01, 0.2, (3, 2))
        img = np.stack([np.sin(f[c, 0] * yy) * np.cos(f[c, 1] * xx) for c in range(3)], 2)
        out.append(((img * 0.4 + 0.5) * 255).astype(np.uint8))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------ ours


def ours(args, stage: int, batch: int, images: list[np.ndarray], device: torch.device,
         amp: str = "auto", channels_last: bool | None = None, compile: bool | None = None,
         workers: int | None = None) -> float:
    """patches/s of Trainer.train_step; `workers` set: realistic LR from that many worker
    processes (0 = inline) instead of bicubic."""
    config = "srresnet_x4" if stage == 1 else ("srgan_x4" if args.vgg else "srgan_mse_x4")
    compile = args.compile if compile is None else compile
    cfg = load_config(config, [
        f"run.device={device}", f"train.batch_size={batch}", f"data.crop={args.crop}",
        f"model.num_blocks={args.blocks}", f"model.channels={args.channels}",
        f"train.compile={'true' if compile else 'false'}", "log.progress=false",
        f"train.amp={amp}",
    ])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), TorchrunEnv(), device)
        if channels_last is not None:  # the trainer picks by device; force it to measure
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            trainer.memory_format = fmt
            for net in (trainer.state.g, trainer.state.d):
                if net is not None:
                    net.to(memory_format=fmt)
        bank = ImageBank.pack(images, [str(i) for i in range(len(images))], device)
        trainer.data = TrainingSet(bank, args.crop, 4, seed=0)
        if workers is not None:
            trainer.data = RealisticTrainingSet(trainer.data, workers=workers)
        trainer.wrap()
        for _ in range(args.warmup):
            trainer.train_step()
        sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step()
        sync(device)
        rate = args.steps * batch / (time.perf_counter() - start)
        if isinstance(trainer.data, RealisticTrainingSet):
            trainer.data.close()
        return rate


def degradations(args, images: list[np.ndarray], device: torch.device) -> None:
    """Bicubic vs realistic LR (worker processes, and inline), alternated over rounds."""
    workers = max(1, args.workers)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} training "
          f"thread(s), SRResNet {args.blocks}x{args.channels}, crop {args.crop}, "
          f"{args.steps} steps per row")
    rows = [("bicubic", None), (f"realistic, {workers} worker(s)", workers),
            ("realistic, inline", 0)]
    rates: dict[str, list[float]] = {label: [] for label, _ in rows}
    for stage in (int(s) for s in args.stages.split(",")):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            for _ in range(args.rounds):
                for label, w in rows:
                    rates[label].append(ours(args, stage, batch, images, device, workers=w))
            base = float(np.median(rates["bicubic"]))
            for label, _ in rows:
                med = float(np.median(rates[label]))
                print(f"stage {stage} batch {batch:>4}  {label:<26} {med:>7.1f} patches/s "
                      f"({med / base:.2f} of bicubic; rounds: "
                      + ", ".join(f"{r:.1f}" for r in rates[label]) + ")", flush=True)
                rates[label].clear()


# ------------------------------------------------------------------------------ plain


class PatchDataset(torch.utils.data.Dataset):
    """Per-patch CPU work, as in most SR repositories."""

    def __init__(self, images: list[np.ndarray], crop: int, length: int) -> None:
        self.images, self.crop, self.length = images, crop, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        rng = np.random.default_rng()
        img = self.images[rng.integers(len(self.images))]
        y = rng.integers(img.shape[0] - self.crop + 1)
        x = rng.integers(img.shape[1] - self.crop + 1)
        patch = img[y : y + self.crop, x : x + self.crop]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        if rng.random() < 0.5:
            patch = patch[::-1]
        patch = np.rot90(patch, rng.integers(4))
        hr = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float() / 255
        lr = F.interpolate(hr[None], scale_factor=0.25, mode="bicubic", antialias=True)[0]
        return lr.clamp(0, 1), hr


def plain(args, stage: int, batch: int, images: list[np.ndarray], device: torch.device) -> float:
    g = SRResNet(4, args.blocks, args.channels).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.9, 0.999))
    d = opt_d = None
    if stage == 2:
        d = Discriminator().to(device)
        opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.9, 0.999))
    total = (args.warmup + args.steps) * batch
    loader = torch.utils.data.DataLoader(
        PatchDataset(images, args.crop, total), batch_size=batch, drop_last=True,
        num_workers=args.workers, pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    start = None
    for i, (lr, hr) in enumerate(loader):
        if i == args.warmup:
            sync(device)
            start = time.perf_counter()
        lr, hr = lr.to(device, non_blocking=True), hr.to(device, non_blocking=True) * 2 - 1
        sr = g(lr)
        loss = F.mse_loss(sr, hr)
        if d is not None:
            loss = loss + 1e-3 * generator_adversarial_loss(d(sr))
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        if d is not None and opt_d is not None:
            d_loss = discriminator_loss(d(hr), d(sr.detach()))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
        loss.item()
    sync(device)
    assert start is not None
    return args.steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", default="16,64,256")
    parser.add_argument("--stages", default="1,2")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--max-images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--compile", action="store_true", help="torch.compile ours")
    parser.add_argument("--vgg", action="store_true", help="stage 2 with the VGG54 loss")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain loop")
    parser.add_argument("--degradations", action="store_true",
                        help="bicubic vs realistic LR (degradations in --workers processes)")
    parser.add_argument("--rounds", type=int, default=3, help="--degradations: rounds")
    parser.add_argument("--cpu-variants", action="store_true",
                        help="fp32 / bf16 / channels_last / compile rows for the CPU trainer")
    args = parser.parse_args()

    device = torch.device(args.device)
    images = load_images(args.images, args.max_images)
    if args.cpu_variants:
        cpu_variants(args, images)
        return
    if args.degradations:
        degradations(args, images, device)
        return
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {name}, torch {torch.__version__}, {len(images)} images, crop {args.crop}, "
          f"SRResNet {args.blocks} blocks x {args.channels} ch, {args.workers} loader workers"
          f"{', compiled' if args.compile else ''}")
    print(f"{'stage':>5} {'batch':>6} {'ours p/s':>10} {'plain p/s':>10} {'ratio':>6}")
    for stage in (int(s) for s in args.stages.split(",")):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            try:
                a = ours(args, stage, batch, images, device)
                b = float("nan") if args.no_plain else plain(args, stage, batch, images, device)
            except torch.OutOfMemoryError:
                print(f"{stage:>5} {batch:>6}  out of memory")
                torch.cuda.empty_cache()
                continue
            print(f"{stage:>5} {batch:>6} {a:>10.0f} {b:>10.0f} {a / b:>6.2f}", flush=True)


def cpu_variants(args, images: list[np.ndarray]) -> None:
    from srgan.cpu import capability, native_bf16
    from srgan.train.build import choose_amp

    device = torch.device("cpu")
    native, why = native_bf16()
    auto, _ = choose_amp("auto", device)
    print(f"CPU capability {capability()}, {why}; train.amp=auto -> {'bf16' if auto else 'fp32'}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"SRResNet {args.blocks}x{args.channels}, crop {args.crop}")
    variants = [("fp32", "none", False, False), ("bf16", "bf16", False, False),
                ("bf16 + channels_last", "bf16", True, False),
                ("fp32 + channels_last", "none", True, False)]
    if args.compile:
        variants.append(("bf16 + compile", "bf16", False, True))
    print(f"{'stage':>5} {'batch':>5}  {'variant':<22} {'patches/s':>9} {'vs fp32':>7}")
    for stage in (int(s) for s in args.stages.split(",")):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            base = None
            for label, amp, cl, comp in variants:
                rate = ours(args, stage, batch, images, device, amp=amp, channels_last=cl,
                            compile=comp)
                base = base or rate
                print(f"{stage:>5} {batch:>5}  {label:<22} {rate:>9.1f} {rate / base:>7.2f}",
                      flush=True)


if __name__ == "__main__":
    main()

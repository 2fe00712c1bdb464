"""Helpers the test modules share (imported as `helpers`): tiny networks, generated images,
tiny training configs, and `srgan` run in a subprocess. Fixtures are in conftest.py."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from srgan.cli import main
from srgan.imageio import display_path, from_array, write_image
from srgan.nets import SRResNet
from srgan.train.config import Config, load_config

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FAULTS = Path(__file__).resolve().parent / "faults.py"
HANG = 60  # s: only to catch a hang (generous: a busy machine is slow, not hung)

# 1 residual block, 8 channels, 16px HR crops (4px LR), batch 4: a step takes milliseconds.
TINY = [
    "model.num_blocks=1", "model.channels=8", "discriminator.base_channels=4",
    "data.crop=16", "train.batch_size=4", "log.progress=false", "log.tensorboard=false",
    "log.val_images=1",
]


def until(predicate, what: str, timeout: float = HANG) -> None:
    """Poll `predicate` until it is true; fail naming `what` if it never is (a hang)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def tiny_generator(scale: int = 4, blocks: int = 1, channels: int = 8, seed: int = 0) -> SRResNet:
    torch.manual_seed(seed)
    return SRResNet(scale=scale, num_blocks=blocks, channels=channels).eval()


def with_bn_statistics(net, seed=0):
    """Give every BatchNorm non-trivial statistics and affine terms (fresh ones are the
    identity, which would make folding trivially right)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)
    return net.eval()


def smooth_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A float32 HxWxC image in [0, 1] with structure at several scales (not just noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = []
    for c in range(channels):
        f1, f2 = rng.uniform(0.02, 0.2, 2)
        planes.append(0.5 + 0.25 * np.sin(f1 * xx + c) * np.cos(f2 * yy) + 0.1 * rng.random((h, w)))
    return np.clip(np.stack(planes, axis=2), 0, 1).astype(np.float32)


def smooth_uint8(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth colour images (learnable from 4x4 LR crops), uint8 H x W x 3."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = []
    for c in range(3):
        fy, fx, phase = rng.uniform(0.05, 0.3, 3)
        planes.append(0.5 + 0.4 * np.sin(fy * yy + phase * 7 + c) * np.cos(fx * xx))
    return (np.clip(np.stack(planes, axis=2), 0, 1) * 255).round().astype(np.uint8)


def make_images(folder: Path, count: int = 4, size: tuple[int, int] = (40, 48), seed: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_image(from_array(smooth_uint8(*size, seed=seed + i)), folder / f"im{i}.png")
    return folder


def tiny_config(image_dirs, *extra: str, config: str = "srresnet_x4") -> Config:
    train, val = image_dirs
    return load_config(config, [*TINY, f"data.train=[{train}]", f"data.val={val}", *extra])


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None,
            faults: dict | None = None):
    """`python -m srgan ARGS` in a subprocess with one thread (bit-exact comparisons); with
    `faults`, through tests/faults.py, which injects them into the training run."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"),
                **(env or {})}
    head = ["-m", "srgan"] if faults is None else [str(FAULTS), json.dumps(faults)]
    return subprocess.run([sys.executable, *head, *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=120)


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def cli(*args: object):
    """`srgan ARGS` in this process; an exception the CLI does not handle fails the test."""
    return CliRunner().invoke(main, [a if isinstance(a, str) else str(a) for a in args],
                              catch_exceptions=False)


def error_lines(output: str, prefix: str, path: Path) -> list[str]:
    """Report lines (`error: <file>: ...`, `skipped <file>: ...`) about one file: named by
    display_path, or as str(path) that stderr shows with \\udcXX escapes (non-UTF-8 names)."""
    shown = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    heads = (f"{prefix}{display_path(path)}: ", f"{prefix}{shown}: ")
    return [line for line in output.splitlines() if line.startswith(heads)]


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    """Uniform random uint8 RGB noise."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_random_png(path: Path | bytes, h: int = 16, w: int = 16, seed: int = 0) -> Path:
    return write_image(from_array(rgb(h, w, seed)), path)


def write_photo(path: Path, size: tuple[int, int] = (12, 10), mode: str = "RGB") -> Path:
    """A smooth RGB(A) or grey PNG (the four-channel image, cut to `mode`)."""
    arr = (smooth_image(size[1], size[0], 4) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[..., :len(mode)] if mode != "L" else arr[..., 0], mode).save(path)
    return path


def pink_noise(size: int, seed: int = 0) -> np.ndarray:
    """A random image with a photograph's 1/f amplitude spectrum, mean 128, std 40."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    radius[0, 0] = 1.0
    image = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) / radius))
    return 128 + 40 * image / image.std()


class _FillingFile:
    """The temporary file an image is written into, on a disk that fills up: the writes for
    which `full(target, n)` (n counts from 1) is true get half their bytes, then ENOSPC."""

    def __init__(self, fh, target: Path, full) -> None:
        self.fh, self.target, self.full, self.writes = fh, target, full, 0

    def write(self, data) -> int:
        self.writes += 1
        if self.full(self.target, self.writes):
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.fh.write(data)

    def __getattr__(self, name: str):
        return getattr(self.fh, name)


def fill_disk(monkeypatch, full) -> None:
    """Make image writes run out of space where `full(target, n)` says so, by handing the
    image writer srgan.atomic.atomic_write with the temporary file wrapped."""
    from srgan import atomic
    from srgan.imageio import write

    def filling_atomic_write(path, emit, *, overwrite=True):
        return atomic.atomic_write(path, lambda fh: emit(_FillingFile(fh, Path(path), full)),
                                   overwrite=overwrite)

    monkeypatch.setattr(write, "atomic_write", filling_atomic_write)

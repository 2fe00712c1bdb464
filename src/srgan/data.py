"""Training sets: every image is decoded once and kept in memory (on the GPU when training on
CUDA), so random crops, flips/rotations and the MATLAB-bicubic degradation of a whole batch
are a few tensor ops on the device, with no per-image Python work and no CPU data loader.

Images of different sizes are packed into one tensor of RGB pixels. A batch is one gather
from it: the crop offsets and the flip/rotation of each sample are applied to the index grid,
not to the pixels, so augmentation costs nothing extra.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srgan.imageio import display_path, display_text
from srgan.pairing import pair_lr_files
from srgan.resize import imresize

Log = Callable[[str], None]


class DataError(ValueError):
    """A training or validation set cannot be used (missing folder, no usable image)."""


# ------------------------------------------------------------------------------ decoding


def _find_images(folder: Path, log: Log = print) -> list[Path]:
    """The images of a data folder, less the validation images of training runs in it."""
    from srgan.imageio import find_images
    from srgan.outputs import is_run_output

    found = sorted(find_images([folder]))
    ours = [p for p in found if is_run_output(p)]
    if ours:
        log(f"note: {len(ours)} validation image(s) of srgan train runs in "
            f"{display_path(folder)} left out (they are not training data)")
    return [p for p in found if p not in ours] if ours else found


def read_rgb_uint8(path: Path) -> np.ndarray:
    """Decode an image file to H x W x 3 uint8 (grey replicated to RGB, alpha dropped)."""
    from srgan.imageio import read_rgb8

    return read_rgb8(path)[0]


def _decode_all(paths: Sequence[Path], log: Log) -> list[np.ndarray | None]:
    """Decode in threads (the decoders release the GIL); unreadable files -> None, reported."""

    def one(path: Path) -> np.ndarray | None:
        try:
            return read_rgb_uint8(path)
        except Exception as exc:  # any decoder failure: report the file, keep going
            log(f"warning: skipping unreadable image {display_path(path)}: {display_text(exc)}")
            return None

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, paths))


# ------------------------------------------------------------------------------ packing


@dataclass
class ImageBank:
    """Images of any sizes packed in one tensor, row-major each, one int32 per pixel (R, G, B
    and a pad byte): a batch of crops is then a single index_select of 4-byte words, several
    times faster than gathering 3-byte rows."""

    pixels: torch.Tensor  # (N,) int32 = (N, 4) uint8 RGB0
    offsets: torch.Tensor  # (n,) int64: first row of each image in `pixels`
    heights: torch.Tensor  # (n,) int64
    widths: torch.Tensor  # (n,) int64
    names: list[str]

    @classmethod
    def pack(
        cls, images: Sequence[np.ndarray], names: list[str], device: torch.device
    ) -> ImageBank:
        sizes = [im.shape[0] * im.shape[1] for im in images]
        total = sum(sizes)
        pixels = torch.zeros((total, 4), dtype=torch.uint8, device=device)
        offsets, start = [], 0
        for im, n in zip(images, sizes, strict=True):
            rgb = torch.from_numpy(np.ascontiguousarray(im)).view(n, 3)
            pixels[start : start + n, :3].copy_(rgb)
            offsets.append(start)
            start += n
        as_long = lambda v: torch.tensor(v, dtype=torch.int64, device=device)  # noqa: E731
        return cls(
            pixels.view(torch.int32).view(total),
            as_long(offsets),
            as_long([im.shape[0] for im in images]),
            as_long([im.shape[1] for im in images]),
            list(names),
        )

    def __len__(self) -> int:
        return len(self.names)

    def crops(
        self,
        index: torch.Tensor,
        y: torch.Tensor,
        x: torch.Tensor,
        size: int,
        transform: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) image indices, top-left corners and dihedral transforms (0..7) -> (B, 3, size,
        size) uint8 in channels_last memory. Bit 0: vertical flip, 1: horizontal, 2: transpose.
        """
        grid = torch.arange(size, device=self.pixels.device)
        dy = grid.view(1, size, 1).expand(len(index), size, size)
        dx = grid.view(1, 1, size).expand(len(index), size, size)
        t = transform.view(-1, 1, 1)
        dy = torch.where((t & 1).bool(), size - 1 - dy, dy)
        dx = torch.where((t & 2).bool(), size - 1 - dx, dx)
        swap = (t & 4).bool()
        dy, dx = torch.where(swap, dx, dy), torch.where(swap, dy, dx)
        rows = (y.view(-1, 1, 1) + dy) * self.widths[index].view(-1, 1, 1) + x.view(-1, 1, 1) + dx
        rows = rows + self.offsets[index].view(-1, 1, 1)
        words = self.pixels.index_select(0, rows.view(-1))
        rgb0 = words.view(torch.uint8).view(len(index), size, size, 4)
        return rgb0[..., :3].permute(0, 3, 1, 2)  # NCHW view of NHWC memory (pad byte skipped)


# ------------------------------------------------------------------------------ training set


class TrainingSet:
    """Random HR crops and their LR versions, drawn as whole batches on the bank's device.

    All randomness comes from `generator` (on the same device), whose state is saved in
    checkpoints: restoring it replays the same crops, the data order of an exact resume.
    """

    def __init__(
        self,
        hr: ImageBank,
        crop: int,
        scale: int,
        lr: ImageBank | None = None,
        augment: bool = True,
        sample: str = "image",
        quantize_lr: bool = True,
        seed: int = 0,
        out_device: torch.device | None = None,
    ) -> None:
        self.hr, self.lr = hr, lr
        self.crop, self.scale = crop, scale
        self.augment, self.quantize_lr = augment, quantize_lr
        self.device = hr.pixels.device
        self.out_device = out_device or self.device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        if sample == "area":
            weights = (hr.heights * hr.widths).double()
        else:
            weights = torch.ones(len(hr), dtype=torch.float64, device=self.device)
        self.weights = weights / weights.sum()

    def __len__(self) -> int:
        return len(self.hr)

    def _uniform_int(self, high: torch.Tensor) -> torch.Tensor:
        """Integers in [0, high] per element (high >= 0), from the set's generator."""
        u = torch.rand(
            high.shape, generator=self.generator, device=self.device, dtype=torch.float64
        )
        return torch.minimum((u * (high + 1)).long(), high)

    def sample_indices(self, batch: int) -> tuple[torch.Tensor, ...]:
        g, dev = self.generator, self.device
        index = torch.multinomial(self.weights, batch, replacement=True, generator=g)
        if self.augment:
            transform = torch.randint(0, 8, (batch,), generator=g, device=dev)
        else:
            transform = torch.zeros(batch, dtype=torch.int64, device=dev)
        if self.lr is not None:
            bank, size = self.lr, self.crop // self.scale
        else:
            bank, size = self.hr, self.crop
        y = self._uniform_int(bank.heights[index] - size)
        x = self._uniform_int(bank.widths[index] - size)
        return index, y, x, transform

    def batch(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR in [0, 1], (B, 3, crop/scale, crop/scale); HR in [0, 1], (B, 3, crop, crop))."""
        index, y, x, transform = self.sample_indices(batch)
        if self.lr is not None:
            lr_u8 = self.lr.crops(index, y, x, self.crop // self.scale, transform)
            hr_u8 = self.hr.crops(index, y * self.scale, x * self.scale, self.crop, transform)
            return self._to_float(lr_u8), self._to_float(hr_u8)
        hr = self._to_float(self.hr.crops(index, y, x, self.crop, transform))
        lr = degrade(hr, self.scale, self.quantize_lr)
        return lr, hr

    def _to_float(self, u8: torch.Tensor) -> torch.Tensor:
        u8 = u8.contiguous(memory_format=torch.channels_last)
        u8 = u8.to(self.out_device, non_blocking=True)
        return u8.to(torch.float32).div_(255.0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"].cpu())


class RealisticTrainingSet:
    """A TrainingSet whose LR crops come from the realistic degradation model (srgan.degrade)
    instead of bicubic, computed per patch in `workers` worker processes (0: inline) while the
    training process trains on the batch before.

    The crops and one seed per batch are drawn from the wrapped set's generator in the
    training process; a patch's degradation depends only on that seed, so the batches are the
    same whatever the number of workers. Batches are prepared `prefetch` ahead, and
    state_dict() is the generator as it was before the oldest batch not yet handed out: an
    exact resume replays that batch.
    """

    def __init__(self, base: TrainingSet, params=None, workers: int = 1, prefetch: int = 2
                 ) -> None:
        from srgan.degrade import DegradationParams

        self.base = base
        self.params = params or DegradationParams()
        self.workers, self.prefetch = workers, max(1, prefetch)
        self._pool = None
        self._pending: list[tuple[torch.Tensor, int, object]] = []  # (state, batch, result)

    # the TrainingSet face the trainer uses
    @property
    def hr(self) -> ImageBank:
        return self.base.hr

    def __len__(self) -> int:
        return len(self.base)

    def _draw(self, batch: int) -> object:
        b = self.base
        index, y, x, transform = b.sample_indices(batch)
        seed = int(torch.randint(0, 2**62, (1,), generator=b.generator, device=b.device))
        hr_u8 = b.hr.crops(index, y, x, b.crop, transform).cpu().contiguous().numpy()
        if self.workers <= 0:
            return hr_u8, degrade_batch(hr_u8, seed, b.scale, self.params)
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: a forked child of a process that already ran OpenMP can hang
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_one_thread)
        return hr_u8, self._pool.submit(degrade_batch, hr_u8, seed, b.scale, self.params)

    def batch(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR in [0, 1], (B, 3, crop/scale, crop/scale); HR in [0, 1], (B, 3, crop, crop))."""
        if self._pending and self._pending[0][1] != batch:
            self._rewind()
        while len(self._pending) < self.prefetch:
            state = self.base.generator.get_state()
            self._pending.append((state, batch, self._draw(batch)))
        _, _, (hr_u8, lr) = self._pending.pop(0)
        state = self.base.generator.get_state()
        self._pending.append((state, batch, self._draw(batch)))
        lr_u8 = lr if isinstance(lr, np.ndarray) else lr.result()
        to = self.base._to_float
        return to(torch.from_numpy(lr_u8)), to(torch.from_numpy(hr_u8))

    def _rewind(self) -> None:
        """Drop the prepared batches and put the generator back to before the first one."""
        if self._pending:
            self.base.generator.set_state(self._pending[0][0])
        for _, _, (_, lr) in self._pending:
            if not isinstance(lr, np.ndarray):
                lr.cancel()
        self._pending.clear()

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self._pending:
            return {"generator": self._pending[0][0].clone()}
        return self.base.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._rewind()
        self.base.load_state_dict(state)

    def close(self) -> None:
        self._rewind()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown
            self.close()


def _one_thread() -> None:
    torch.set_num_threads(1)


def degrade_batch(hr_u8: np.ndarray, seed: int, scale: int, params=None) -> np.ndarray:
    """(B, 3, H, W) uint8 HR crops -> (B, 3, H/scale, W/scale) uint8 realistic LR; patch i's
    random draws come from the i-th child of `seed` (srgan.degrade.degrade_patch)."""
    from srgan.degrade import degrade_patch

    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(hr_u8))]
    out = []
    for patch, rng in zip(hr_u8, rngs, strict=True):
        hr = torch.from_numpy(np.ascontiguousarray(patch)).float().div_(255.0)
        lr = degrade_patch(hr, scale, rng, params)
        out.append(lr.mul(255).round().to(torch.uint8).numpy())
    return np.stack(out)


def degrade(hr: torch.Tensor, scale: int, quantize: bool = True) -> torch.Tensor:
    """The paper's degradation: MATLAB bicubic x1/scale (antialiased), optionally 8-bit."""
    lr = imresize(hr, 1.0 / scale)
    if quantize:
        lr = lr.clamp_(0.0, 1.0).mul_(255.0).round_().div_(255.0)
    return lr.contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------ loading


def load_training_set(
    folders: Sequence[str | Path],
    crop: int,
    scale: int,
    lr_folders: Sequence[str | Path] = (),
    device: torch.device | str = "cpu",
    max_images: int = 0,
    log: Log = print,
    **kwargs,
) -> TrainingSet:
    """Decode every image of `folders` once into a TrainingSet on `device`.

    Images smaller than the crop are skipped with a warning, unreadable ones are reported and
    skipped; no usable image at all is a DataError naming the folders.
    """
    device = torch.device(device)
    paths: list[Path] = []
    partners: list[Path | None] = []
    for i, folder in enumerate(folders):
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(
                f"training folder {display_path(folder)} does not exist. Set the training "
                "images with --set data.train=[DIR,...] (or get DIV2K: "
                "srgan data download div2k data/DIV2K)"
            )
        found = _find_images(folder, log)
        if lr_folders:
            lr_folder = Path(lr_folders[i])
            if not lr_folder.is_dir():
                raise DataError(
                    f"LR folder {display_path(lr_folder)} (data.train_lr) does not exist")
            pairs = pair_lr_files(found, _find_images(lr_folder, log), scale)  # DIV2K's names too
            for p in found:
                partner = pairs[p]
                if partner is None:
                    log(f"warning: no LR image for {display_path(p)} in {display_path(lr_folder)}; "
                        "skipped")
                    continue
                paths.append(p)
                partners.append(partner)
        else:
            paths += found
            partners += [None] * len(found)
    if max_images and len(paths) > max_images:
        paths, partners = paths[:max_images], partners[:max_images]

    hr_images = _decode_all(paths, log)
    lr_images = _decode_all([p for p in partners if p is not None], log) if lr_folders else []
    lr_iter = iter(lr_images)
    keep_hr, keep_lr, names = [], [], []
    small = 0
    for path, partner, hr in zip(paths, partners, hr_images, strict=True):
        lr = next(lr_iter) if partner is not None else None
        if hr is None or (partner is not None and lr is None):
            continue
        h, w = hr.shape[:2]
        if h < crop or w < crop:
            small += 1
            log(f"warning: {display_path(path)} is {w}x{h}, smaller than the {crop}x{crop} "
                "crop; skipped")
            continue
        if lr is not None:
            if lr.shape[0] != h // scale or lr.shape[1] != w // scale:
                log(
                    f"warning: {display_path(partner)} is {lr.shape[1]}x{lr.shape[0]}, expected "
                    f"{w // scale}x{h // scale} (HR {display_path(path)} / {scale}); skipped"
                )
                continue
            keep_lr.append(lr)
        keep_hr.append(hr)
        names.append(str(path))
    if not keep_hr:
        where = ", ".join(display_path(f) for f in folders)
        why = f" ({small} smaller than the crop)" if small else ""
        raise DataError(f"no usable training image in {where}{why}")
    hr_bank = ImageBank.pack(keep_hr, names, device)
    lr_bank = ImageBank.pack(keep_lr, names, device) if lr_folders else None
    return TrainingSet(hr_bank, crop, scale, lr=lr_bank, **kwargs)


@dataclass
class ValImage:
    name: str
    lr: torch.Tensor  # (1, 3, h, w) float in [0, 1]
    hr: torch.Tensor  # (3, H, W) uint8, H and W multiples of the scale


def load_validation_set(
    folder: str | Path,
    scale: int,
    device: torch.device | str = "cpu",
    max_images: int = 0,
    log: Log = print,
    lr_folder: str | Path = "",
) -> list[ValImage]:
    """Whole HR images (cropped to a multiple of the scale) and their LR: MATLAB bicubic of
    the HR, or with `lr_folder` the real LR photographs there, paired by name (DRealSR)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"validation folder {display_path(folder)} (data.val) does not exist")
    paths = _find_images(folder, log)
    partners: dict[Path, Path | None] = {}
    if lr_folder:
        lr_dir = Path(lr_folder)
        if not lr_dir.is_dir():
            raise DataError(f"LR folder {display_path(lr_dir)} (data.val_lr) does not exist")
        partners = pair_lr_files(paths, _find_images(lr_dir, log), scale)
        for p in [p for p in paths if partners[p] is None]:
            log(f"warning: no LR image for {display_path(p)} in {display_path(lr_dir)}; skipped")
        paths = [p for p in paths if partners[p] is not None]
    if max_images and len(paths) > max_images:  # spread over the set (DRealSR's cameras)
        paths = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, max_images)]
    real = [partners[p] for p in paths] if lr_folder else []
    lr_images = iter(_decode_all(real, log)) if lr_folder else None
    out = []
    for path, im in zip(paths, _decode_all(paths, log), strict=True):
        real_lr = next(lr_images) if lr_images is not None else None
        if im is None or (lr_images is not None and real_lr is None):
            continue
        h, w = (im.shape[0] // scale) * scale, (im.shape[1] // scale) * scale
        if h < scale * 4 or w < scale * 4:
            log(f"warning: validation image {display_path(path)} is too small; skipped")
            continue
        hr = torch.from_numpy(np.ascontiguousarray(im[:h, :w])).permute(2, 0, 1).to(device)
        if real_lr is not None:
            if real_lr.shape[0] < h // scale or real_lr.shape[1] < w // scale:
                log(f"warning: {display_path(partners[path])} is {real_lr.shape[1]}x"
                    f"{real_lr.shape[0]}, expected {w // scale}x{h // scale}; skipped")
                continue
            lr_u8 = np.ascontiguousarray(real_lr[: h // scale, : w // scale])
            lr = torch.from_numpy(lr_u8).permute(2, 0, 1)[None].to(device).float() / 255.0
            lr = lr.contiguous(memory_format=torch.channels_last)
        else:
            lr = degrade(hr[None].float() / 255.0, scale, quantize=True)
        out.append(ValImage(path.stem, lr, hr.contiguous()))
    if not out:
        raise DataError(f"no usable validation image in {display_path(folder)}")
    return out

"""The literature's benchmark protocol (its result tables: `srgan.evaluate.results`).

For every HR image: read as 8-bit RGB, modcrop to the scale, LR = MATLAB bicubic of the uint8
HR (uint8, as MATLAB's `imresize` on uint8), SR by each method (uint8), then Y-PSNR, Y-SSIM
(`crop_border` = scale pixels shaved off each side) and RGB PSNR. `bicubic`, MATLAB-bicubic
upscaling of the same uint8 LR, is the baseline every table carries. With `niqe=True`, the
no-reference NIQE of every output and of the HR image itself (`srgan.niqe`, MATLAB's Y
rounded, the same border crop), lower being more natural.

    from srgan.evaluate import run_benchmark
    result = run_benchmark(["srresnet_x4"], ["Set5", "Set14"])
    print(result.to_markdown())
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import torch

from srgan.evaluate.methods import (
    Method,
    Network,
    ProtocolError,
    error_reason,
    load_methods,
    load_rgb8,
    prepare_pair,
    resolve_dataset,
    split_pair_folder,
)
from srgan.evaluate.results import BenchmarkResult, HrScore, ImageScore, Skipped
from srgan.evaluate.scoring import SSIM_KINDS, lpips_scorer, niqe_note, niqe_score, score_pair
from srgan.imageio import ImageReadError, display_path, display_text
from srgan.pairing import pair_lr_files


# --------------------------------------------------------------------------- the run
def dataset_names(paths: Sequence[Path]) -> list[str]:
    """Folder names, made unique with their parents where two datasets share a name."""
    names = [p.name or str(p) for p in paths]
    for i, p in enumerate(paths):
        if names.count(names[i]) > 1:
            names[i] = f"{p.parent.name}/{p.name}" if p.parent.name else str(p)
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            names[i] = f"{n}#{seen[n]}"
    return names


def versions() -> dict[str, str]:
    import numpy
    import PIL

    from srgan import __version__

    return {
        "srgan": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def run_benchmark(
    models: Sequence[str | Path | Method],
    datasets: Sequence[str | Path],
    scale: int = 4,
    crop_border: int | None = None,
    lr_dirs: Sequence[str | Path | None] | None = None,
    device: str = "auto",
    precision: str = "fp32",
    tta: bool = False,
    ssim: str = "wang",
    lpips: bool = True,
    tile: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    niqe: bool = False,
    data_root: str | Path | None = None,
) -> BenchmarkResult:
    """Score `models` (names, .safetensors paths or `Method`s; `bicubic` is always added
    first) on image folders `datasets`, under the literature's protocol.

    `datasets` (and `lr_dirs`) are folder paths or set names (`Set5`, `Set14/HR`, `DRealSR`)
    found under `data_root`, $SRGAN_DATA_ROOT or ../shared/data (`resolve_dataset`). A set
    folder of `HR/` and `LR/` (DRealSR) is scored on its own LR images, paired by name.
    `niqe` adds the no-reference NIQE of every output and of each HR image.

    `crop_border` defaults to `scale`. `lr_dirs`, one per dataset (None for "make it"),
    gives ready-made LR images, matched to HR files by name. `precision` defaults to fp32 so
    tables do not depend on the GPU's half-precision arithmetic. Images that cannot be read
    or used are recorded in `result.skipped` (and passed to `log` as one line each).
    """
    if ssim not in SSIM_KINDS:
        raise ValueError(f"ssim must be one of {SSIM_KINDS}, got {ssim!r}")
    crop = scale if crop_border is None else int(crop_border)
    if crop < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop}")
    names, paths, lrs = _folders(datasets, lr_dirs, data_root)
    methods = load_methods(models, scale=scale, device=device, precision=precision, tta=tta,
                           tile=tile)
    net_devices = sorted({m.device for m in methods if isinstance(m, Network)})
    for m in methods:
        if isinstance(m, Network):
            m.warm_up()
    lpips_fn, lpips_note = (None, "LPIPS not scored (disabled).")
    if lpips:
        lpips_fn, lpips_note = lpips_scorer(net_devices[0] if net_devices else "cpu")

    bar = _progress(0, enabled=False)  # the real bar once the images are counted

    def emit(line: str) -> None:
        if log is not None:
            with bar.external_write_mode():
                log(line)

    skipped: list[Skipped] = []
    jobs = _jobs(names, paths, lrs, scale, skipped, emit)
    run = _Scoring(methods, crop, ssim, lpips_fn, niqe)
    bar = _progress(len(jobs), progress)
    started = time.perf_counter()
    try:
        for name, hr_path, lr_path in jobs:
            bar.set_postfix_str(display_text(f"{name}/{hr_path.name}"), refresh=False)
            try:
                hr, lr, notes = _load_pair(hr_path, lr_path, scale, crop)
            except (ImageReadError, ProtocolError, OSError) as exc:
                skipped.append(Skipped(name, str(hr_path), error_reason(exc, hr_path)))
                emit(skipped[-1].line())
            else:
                run.score(name, hr_path, hr, lr, notes)
            bar.update(1)
    finally:
        bar.close()

    settings = _settings(names, paths, lrs, net_devices, precision=precision, scale=scale,
                         crop=crop, ssim=ssim, tta=tta, wall=time.perf_counter() - started,
                         lpips_note=lpips_note, niqe=niqe, run=run)
    return BenchmarkResult(run.scores, skipped, [m.name for m in methods], names, settings,
                           run.hr_scores)


def _settings(names: list[str], paths: list[Path], lrs: list[Path | None],
              net_devices: list[str], *, precision: str, scale: int, crop: int, ssim: str,
              tta: bool, wall: float, lpips_note: str, niqe: bool, run: _Scoring) -> dict:
    """How the tables were made, for summary.json: versions, protocol, folders, notes."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "device": net_devices[0] if len(net_devices) == 1 else (net_devices or "cpu"),
        "precision": precision,
        "scale": scale,
        "crop_border": crop,
        "ssim": ssim,
        "tta": tta,
        "y_channel": "ITU-R BT.601 studio range (MATLAB rgb2ycbcr), from 8-bit RGB",
        "lr": "given" if any(lrs) else "MATLAB bicubic (antialiased) of the modcropped uint8 HR",
        "dataset_paths": {n: str(p) for n, p in zip(names, paths, strict=True)},
        "lr_paths": {n: str(p) for n, p in zip(names, lrs, strict=True) if p is not None},
        "wall_seconds": round(wall, 3),
        "lpips_note": lpips_note,
        "niqe": niqe,
        "niqe_note": niqe_note(niqe, run.niqe_missing),
        "notes": [f"{n}: {', '.join(files)}." for n, files in sorted(run.notes_seen.items())],
    }


def _folders(datasets: Sequence[str | Path], lr_dirs: Sequence[str | Path | None] | None,
             data_root: str | Path | None) -> tuple[list[str], list[Path], list[Path | None]]:
    """(names, HR folders, LR folders or None) of the datasets; a folder of HR/ + LR/ is a
    set of real pairs."""
    if not datasets:
        raise ValueError("no dataset folders given")
    folders = [resolve_dataset(d, data_root) for d in datasets]
    lrs: list[Path | None] = [None] * len(folders) if lr_dirs is None else \
        [None if d is None else resolve_dataset(d, data_root, what="LR folder")
         for d in lr_dirs]
    if len(lrs) != len(folders):
        raise ValueError(f"{len(lrs)} LR folders for {len(folders)} datasets: give one per "
                         "dataset")
    paths = []
    for i, folder in enumerate(folders):
        hr_dir, real_lr = split_pair_folder(folder)
        paths.append(hr_dir)
        lrs[i] = lrs[i] or real_lr
    return dataset_names(folders), paths, lrs


def _jobs(names: list[str], paths: list[Path], lrs: list[Path | None], scale: int,
          skipped: list[Skipped], emit: Callable[[str], None]
          ) -> list[tuple[str, Path, Path | None]]:
    """(dataset, HR file, LR file or None) to score; empty sets and HR files without a
    single matching LR go to `skipped`."""
    from srgan.imageio import find_images

    jobs: list[tuple[str, Path, Path | None]] = []
    for name, folder, lr_dir in zip(names, paths, lrs, strict=True):
        files = find_images([folder], recursive=False)
        if not files:
            skipped.append(Skipped(name, str(folder), "no images found"))
            emit(skipped[-1].line())
        if not lr_dir:
            jobs += [(name, f, None) for f in files]
            continue
        pairs = pair_lr_files(files, find_images([lr_dir], recursive=False), scale)
        for f in files:
            if pairs.get(f) is None:
                skipped.append(Skipped(name, str(f), "no single matching LR in "
                                                     f"{display_path(lr_dir)}"))
                emit(skipped[-1].line())
            else:
                jobs.append((name, f, pairs[f]))
    return jobs


def _load_pair(hr_path: Path, lr_path: Path | None, scale: int, crop: int):
    """(HR, LR, notes) under the protocol; ProtocolError for an image too small to score."""
    hr, notes = load_rgb8(hr_path)
    lr = load_rgb8(lr_path)[0] if lr_path is not None else None
    hr, lr = prepare_pair(hr, scale, lr)
    if min(hr.shape[-2:]) - 2 * crop < 11:
        raise ProtocolError(f"{hr.shape[-1]}x{hr.shape[-2]} is too small to score with a "
                            f"{crop}-pixel border crop")
    return hr, lr, notes


class _Scoring:
    """Every method on one image pair at a time; the rows and notes gathered as they come."""

    def __init__(self, methods: list[Method], crop: int, ssim: str, lpips_fn, niqe: bool):
        self.methods, self.crop, self.ssim, self.lpips_fn, self.niqe = (
            methods, crop, ssim, lpips_fn, niqe)
        self.scores: list[ImageScore] = []
        self.hr_scores: list[HrScore] = []
        self.niqe_missing: dict[str, list[str]] = {}  # why NIQE was not scored -> images
        self.notes_seen: dict[str, list[str]] = {}

    def score(self, name: str, hr_path: Path, hr, lr, notes: list[str]) -> None:
        crop, key = self.crop, f"{name}/{hr_path.name}"
        for note in notes:
            self.notes_seen.setdefault(note, []).append(key)
        hr_niqe = None
        if self.niqe:
            hr_niqe, why = niqe_score(hr, crop)
            if why:
                self.niqe_missing.setdefault(why, []).append(key)
            self.hr_scores.append(HrScore(name, hr_path.name, hr.shape[-1], hr.shape[-2],
                                          hr_niqe))
        for method in self.methods:
            t0 = time.perf_counter()
            sr = method(lr)
            seconds = time.perf_counter() - t0
            if sr.shape != hr.shape:
                raise RuntimeError(f"{method.name} returned {tuple(sr.shape)} for "
                                   f"{display_path(hr_path)}, expected {tuple(hr.shape)}")
            lp = None
            if self.lpips_fn is not None:
                c = crop
                lp = self.lpips_fn(sr[:, c:sr.shape[1] - c, c:sr.shape[2] - c],
                                   hr[:, c:hr.shape[1] - c, c:hr.shape[2] - c])
            nq = niqe_score(sr, crop)[0] if hr_niqe is not None else None
            self.scores.append(ImageScore(
                dataset=name, image=hr_path.name, model=method.name, width=hr.shape[-1],
                height=hr.shape[-2], lpips=lp, seconds=seconds, notes="; ".join(notes),
                niqe=nq, **score_pair(sr, hr, crop, self.ssim),
            ))


def _progress(total: int, enabled: bool):
    """A tqdm bar on stderr (disabled: a silent one); skipped-image lines go around it."""
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="benchmark", dynamic_ncols=True,
                disable=not enabled)

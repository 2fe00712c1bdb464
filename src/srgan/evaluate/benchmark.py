"""The literature's benchmark protocol and its result tables.

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

import csv
import io
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch

from srgan.atomic import atomic_write
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
from srgan.evaluate.scoring import SSIM_KINDS, lpips_scorer, niqe_note, niqe_score, score_pair
from srgan.imageio import display_path, display_text
from srgan.jsonable import json_default
from srgan.pairing import pair_lr_files

# dB: the most one image's PSNR counts for in a mean. An exact reconstruction (a flat image
# that bicubic reproduces) has an infinite PSNR, which would make the whole mean inf; per-image
# values (scores.csv, `scores`) keep the real figure. The cap is far above any real SR score.
PSNR_CAP = 100.0
CSV_FIELDS = (
    "dataset", "image", "model", "width", "height",
    "psnr_y", "ssim_y", "psnr_rgb", "lpips", "niqe", "seconds", "notes",
)
HR = "HR"  # the NIQE table's column (and scores.csv's model) for the HR images themselves


@dataclass(frozen=True)
class ImageScore:
    """One image scored for one method. `width`/`height` are the HR size after modcrop."""

    dataset: str
    image: str
    model: str
    width: int
    height: int
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    lpips: float | None
    seconds: float
    notes: str = ""
    niqe: float | None = None


@dataclass(frozen=True)
class HrScore:
    """The NIQE of an HR image itself (after modcrop and the border crop): the floor a
    method's NIQE is read against. None when the image is too small for NIQE's blocks."""

    dataset: str
    image: str
    width: int
    height: int
    niqe: float | None


@dataclass(frozen=True)
class Skipped:
    """An image left out, and why (unreadable, too small, no matching LR...)."""

    dataset: str
    path: str
    reason: str

    def line(self) -> str:
        return f"skipped {display_path(self.path)}: {display_text(self.reason)}"


@dataclass
class BenchmarkResult:
    """Per-image scores plus the settings that produced them."""

    scores: list[ImageScore]
    skipped: list[Skipped]
    models: list[str]
    datasets: list[str]
    settings: dict = field(default_factory=dict)
    hr: list[HrScore] = field(default_factory=list)

    # ------------------------------------------------------------------ numbers
    def rows(self, dataset: str | None = None, model: str | None = None) -> list[ImageScore]:
        return [s for s in self.scores
                if (dataset is None or s.dataset == dataset)
                and (model is None or s.model == model)]

    def mean(self, dataset: str, model: str) -> dict[str, float] | None:
        """Means over a dataset's images for one method; None when nothing was scored.

        Each image's PSNR counts for at most PSNR_CAP dB (an exact reconstruction is inf);
        `psnr_capped` says how many images were capped (on Y or RGB)."""
        rows = self.rows(dataset, model)
        if not rows:
            return None
        n = len(rows)
        out = {
            "images": n,
            "psnr_y": sum(min(r.psnr_y, PSNR_CAP) for r in rows) / n,
            "ssim_y": sum(r.ssim_y for r in rows) / n,
            "psnr_rgb": sum(min(r.psnr_rgb, PSNR_CAP) for r in rows) / n,
            "psnr_capped": sum(max(r.psnr_y, r.psnr_rgb) > PSNR_CAP for r in rows),
            "seconds_per_image": sum(r.seconds for r in rows) / n,
        }
        if all(r.lpips is not None for r in rows):
            out["lpips"] = sum(r.lpips for r in rows) / n  # type: ignore[misc]
        out.update(_niqe_mean([r.niqe for r in rows]))
        return out

    def hr_mean(self, dataset: str) -> dict[str, float] | None:
        """Mean NIQE of a dataset's HR images; None when NIQE was not scored there."""
        values = [h.niqe for h in self.hr if h.dataset == dataset]
        scored = _niqe_mean(values)
        return {"images": len(values), **scored} if scored else None

    @property
    def has_niqe(self) -> bool:
        return any(s.niqe is not None for s in self.scores)

    @property
    def has_lpips(self) -> bool:
        return bool(self.scores) and all(s.lpips is not None for s in self.scores)

    def summary(self) -> dict:
        """What the JSON file holds: settings, versions, and per-dataset means."""
        datasets = {}
        for d in self.datasets:
            datasets[d] = {
                "path": self.settings.get("dataset_paths", {}).get(d),
                "images": len({s.image for s in self.rows(d)}),
                "skipped": [{"path": k.path, "reason": k.reason}
                            for k in self.skipped if k.dataset == d],
                "models": {m: self.mean(d, m) for m in self.models},
            }
            if self.hr:
                datasets[d]["hr"] = self.hr_mean(d)
        return {**self.settings, "models": self.models, "datasets": datasets}

    # ------------------------------------------------------------------ formats
    def to_markdown(self) -> str:
        """Datasets x methods, 'PSNR / SSIM' means, then RGB PSNR (and LPIPS if scored)."""
        s = self.settings
        ssim = "SSIM (daala convention, as the SRGAN paper)" if s.get("ssim") == "paper" \
            else "SSIM (Wang et al.)"
        lines = [
            f"x{s.get('scale')}: Y-PSNR (dB) / Y-{ssim}, mean over images; "
            f"{s.get('crop_border')} border pixels excluded.",
            "",
            _md_table(self, lambda m: f"{m['psnr_y']:.2f} / {m['ssim_y']:.4f}"),
            "",
            "RGB PSNR (dB):",
            "",
            _md_table(self, lambda m: f"{m['psnr_rgb']:.2f}"),
        ]
        capped = sum(max(r.psnr_y, r.psnr_rgb) > PSNR_CAP for r in self.scores)
        if capped:
            lines += ["", f"{capped} image score(s) had a PSNR above {PSNR_CAP:g} dB (inf: an "
                      f"exact reconstruction), counted as {PSNR_CAP:g} dB in these means; "
                      "scores.csv has the real values."]
        if self.has_lpips:
            lines += ["", "LPIPS (AlexNet, lower is better):", "",
                      _md_table(self, lambda m: f"{m['lpips']:.4f}")]
        if s.get("lpips_note"):
            lines += ["", s["lpips_note"]]
        if self.has_niqe:
            lines += ["", f"NIQE (no reference, lower is better; {HR} = the HR images "
                      f"themselves), Y channel, {s.get('crop_border')} border pixels excluded:",
                      "", _md_table(self, _niqe_cell, hr=True)]
        if s.get("niqe_note"):
            lines += ["", s["niqe_note"]]
        if s.get("notes"):
            lines += ["", *(display_text(n) for n in s["notes"])]
        return "\n".join(lines) + "\n"

    def csv_text(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in self.scores:
            d = asdict(row)
            for key in ("psnr_y", "psnr_rgb"):
                d[key] = f"{d[key]:.4f}"
            d["ssim_y"] = f"{d['ssim_y']:.6f}"
            d["lpips"] = "" if d["lpips"] is None else f"{d['lpips']:.6f}"
            d["niqe"] = "" if d["niqe"] is None else f"{d['niqe']:.6f}"
            d["seconds"] = f"{d['seconds']:.4f}"
            for key in ("dataset", "image", "model", "notes"):  # non-UTF-8 file names: \xNN
                d[key] = display_text(d[key])
            writer.writerow(d)
        for h in self.hr:  # the HR images' own NIQE: model "HR", the other scores empty
            writer.writerow({
                "dataset": display_text(h.dataset), "image": display_text(h.image),
                "model": HR, "width": h.width, "height": h.height,
                "niqe": "" if h.niqe is None else f"{h.niqe:.6f}",
            })
        return buf.getvalue()

    def to_csv(self, path: str | Path) -> Path:
        return _atomic_write(path, self.csv_text())

    def to_json(self, path: str | Path) -> Path:
        """Names stay exact here: JSON's ASCII escapes carry a non-UTF-8 name as \\udcXX,
        which json.loads turns back into the very path."""
        text = json.dumps(self.summary(), indent=2, default=json_default)
        return _atomic_write(path, text + "\n")

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """scores.csv, results.md and summary.json in `out_dir` (created if needed)."""
        out = Path(out_dir)
        return {
            "csv": self.to_csv(out / "scores.csv"),
            "markdown": _atomic_write(out / "results.md", self.to_markdown()),
            "json": self.to_json(out / "summary.json"),
        }


def _md_table(result: BenchmarkResult, cell: Callable[[dict], str], hr: bool = False) -> str:
    """Datasets x methods (x the HR images when `hr`); "-" where there is nothing to show."""
    columns = [display_text(m) for m in result.models] + ([HR] if hr else [])
    header = "| Dataset | " + " | ".join(columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    rows = []
    for d in result.datasets:
        cells = []
        means = [result.mean(d, m) for m in result.models] + ([result.hr_mean(d)] if hr else [])
        for mean in means:
            text = None if mean is None else cell(mean)
            cells.append("-" if text is None else text)
        n = len({s.image for s in result.rows(d)})
        rows.append(f"| {display_text(d)} ({n}) | " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])


def _niqe_mean(values: Sequence[float | None]) -> dict[str, float]:
    """{"niqe": mean, "niqe_images": count} over the images NIQE could score; {} if none."""
    scored = [v for v in values if v is not None]
    return {"niqe": sum(scored) / len(scored), "niqe_images": len(scored)} if scored else {}


def _niqe_cell(mean: dict) -> str | None:
    if "niqe" not in mean:
        return None
    text = f"{mean['niqe']:.3f}"
    if mean["niqe_images"] < mean["images"]:  # some images too small for NIQE's blocks
        text += f" ({mean['niqe_images']} of {mean['images']})"
    return text


def _atomic_write(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # names are escaped where they are written; backslashreplace is the backstop that keeps
    # one odd character from losing a whole run's results
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8", "backslashreplace")))


# --------------------------------------------------------------------------- the run
def _dataset_names(paths: Sequence[Path]) -> list[str]:
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
    from srgan.imageio import ImageReadError, find_images

    if ssim not in SSIM_KINDS:
        raise ValueError(f"ssim must be one of {SSIM_KINDS}, got {ssim!r}")
    crop = scale if crop_border is None else int(crop_border)
    if crop < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop}")
    if not datasets:
        raise ValueError("no dataset folders given")
    folders = [resolve_dataset(d, data_root) for d in datasets]
    lrs: list[Path | None] = [None] * len(folders) if lr_dirs is None else \
        [None if d is None else resolve_dataset(d, data_root, what="LR folder")
         for d in lr_dirs]
    if len(lrs) != len(folders):
        raise ValueError(f"{len(lrs)} LR folders for {len(folders)} datasets: give one per "
                         "dataset")
    names = _dataset_names(folders)
    paths = []
    for i, folder in enumerate(folders):  # a folder of HR/ + LR/ is a set of real pairs
        hr_dir, real_lr = split_pair_folder(folder)
        paths.append(hr_dir)
        lrs[i] = lrs[i] or real_lr

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

    jobs: list[tuple[str, Path, Path | None]] = []
    skipped: list[Skipped] = []
    for name, folder, lr_dir in zip(names, paths, lrs, strict=True):
        files = find_images([folder], recursive=False)
        if not files:
            skipped.append(Skipped(name, str(folder), "no images found"))
            emit(skipped[-1].line())
        pairs = {}
        if lr_dir:
            pairs = pair_lr_files(files, find_images([lr_dir], recursive=False), scale)
        jobs += [(name, f, pairs.get(f)) for f in files]
        if lr_dir:
            for f in files:
                if pairs.get(f) is None:
                    skipped.append(Skipped(name, str(f), "no single matching LR in "
                                                         f"{display_path(lr_dir)}"))
                    emit(skipped[-1].line())
            jobs = [j for j in jobs if j[0] != name or j[2] is not None]

    scores: list[ImageScore] = []
    hr_scores: list[HrScore] = []
    niqe_missing: dict[str, list[str]] = {}  # why NIQE was not scored -> images
    notes_seen: dict[str, list[str]] = {}
    bar = _progress(len(jobs), progress)
    started = time.perf_counter()
    try:
        for name, hr_path, lr_path in jobs:
            bar.set_postfix_str(display_text(f"{name}/{hr_path.name}"), refresh=False)
            try:
                hr, notes = load_rgb8(hr_path)
                lr = load_rgb8(lr_path)[0] if lr_path is not None else None
                hr, lr = prepare_pair(hr, scale, lr)
                if min(hr.shape[-2:]) - 2 * crop < 11:
                    raise ProtocolError(
                        f"{hr.shape[-1]}x{hr.shape[-2]} is too small to score with a "
                        f"{crop}-pixel border crop"
                    )
            except (ImageReadError, ProtocolError, OSError) as exc:
                skipped.append(Skipped(name, str(hr_path), error_reason(exc, hr_path)))
                emit(skipped[-1].line())
                bar.update(1)
                continue
            for note in notes:
                notes_seen.setdefault(note, []).append(f"{name}/{hr_path.name}")
            if niqe:
                hr_niqe, why = niqe_score(hr, crop)
                if why:
                    niqe_missing.setdefault(why, []).append(f"{name}/{hr_path.name}")
                hr_scores.append(HrScore(name, hr_path.name, hr.shape[-1], hr.shape[-2],
                                         hr_niqe))
            for method in methods:
                t0 = time.perf_counter()
                sr = method(lr)
                seconds = time.perf_counter() - t0
                if sr.shape != hr.shape:
                    raise RuntimeError(
                        f"{method.name} returned {tuple(sr.shape)} for {display_path(hr_path)}, "
                        f"expected {tuple(hr.shape)}"
                    )
                s = score_pair(sr, hr, crop, ssim)
                lp = None
                if lpips_fn is not None:
                    c = crop
                    lp = lpips_fn(sr[:, c:sr.shape[1] - c, c:sr.shape[2] - c],
                                  hr[:, c:hr.shape[1] - c, c:hr.shape[2] - c])
                nq = niqe_score(sr, crop)[0] if niqe and hr_scores[-1].niqe is not None \
                    else None
                scores.append(ImageScore(
                    dataset=name, image=hr_path.name, model=method.name,
                    width=hr.shape[-1], height=hr.shape[-2], lpips=lp, seconds=seconds,
                    notes="; ".join(notes), niqe=nq, **s,
                ))
            bar.update(1)
    finally:
        bar.close()

    settings = {
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
        "wall_seconds": round(time.perf_counter() - started, 3),
        "lpips_note": lpips_note,
        "niqe": niqe,
        "niqe_note": niqe_note(niqe, niqe_missing),
        "notes": [f"{n}: {', '.join(files)}." for n, files in sorted(notes_seen.items())],
    }
    return BenchmarkResult(scores, skipped, [m.name for m in methods], names, settings,
                           hr_scores)


def _progress(total: int, enabled: bool):
    """A tqdm bar on stderr (disabled: a silent one); skipped-image lines go around it."""
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="benchmark", dynamic_ncols=True,
                disable=not enabled)

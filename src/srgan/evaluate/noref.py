"""No-reference scoring of real low-resolution images that have no ground truth (RealSRSet,
one's own photos): each method upscales the LR as it is, and NIQE (lower is more natural)
is the only score. `bicubic` is the baseline column, as in the full benchmark.

    from srgan.evaluate.noref import run_noref
    print(run_noref(["srresnet_x4"], ["RealSRSet"]).to_markdown())
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from srgan.evaluate.benchmark import dataset_names
from srgan.evaluate.methods import error_reason, load_methods, load_rgb8, resolve_dataset
from srgan.evaluate.results import csv_row, csv_table, niqe_cell, niqe_mean, write_text
from srgan.evaluate.scoring import niqe_score
from srgan.imageio import ImageReadError, display_path, display_text, find_images
from srgan.jsonable import json_default

CSV_FIELDS = ("dataset", "image", "model", "width", "height", "niqe", "seconds")


@dataclass(frozen=True)
class NiqeScore:
    """One upscaled LR image's NIQE (None when too small or flat for NIQE's blocks)."""

    dataset: str
    image: str
    model: str
    width: int
    height: int
    niqe: float | None
    seconds: float


@dataclass
class NoRefResult:
    scores: list[NiqeScore]
    skipped: list[tuple[str, str]]  # (path, reason)
    models: list[str]
    datasets: list[str]
    settings: dict = field(default_factory=dict)

    def mean(self, dataset: str, model: str) -> dict[str, float] | None:
        rows = [s for s in self.scores if s.dataset == dataset and s.model == model]
        scored = niqe_mean([s.niqe for s in rows])
        return {"images": len(rows), **scored} if scored else None

    def to_markdown(self) -> str:
        header = "| Dataset | " + " | ".join(display_text(m) for m in self.models) + " |"
        lines = [f"NIQE of the x{self.settings.get('scale')} outputs of real LR images (no "
                 "ground truth; lower is more natural), Y channel, "
                 f"{self.settings.get('crop_border')} border pixels excluded:", "", header,
                 "|---|" + "---|" * len(self.models)]
        for d in self.datasets:
            cells = [(niqe_cell(mean) if (mean := self.mean(d, m)) else None) or "-"
                     for m in self.models]
            n = len({s.image for s in self.scores if s.dataset == d})
            lines.append(f"| {display_text(d)} ({n}) | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def csv_text(self) -> str:
        return csv_table(CSV_FIELDS, (csv_row(row, {"niqe": 6, "seconds": 4},
                                              ("dataset", "image", "model"))
                                      for row in self.scores))

    def summary(self) -> dict:
        return {**self.settings, "models": self.models, "datasets": {
            d: {"models": {m: self.mean(d, m) for m in self.models},
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}
            for d in self.datasets}}

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        out = Path(out_dir)
        return {"csv": write_text(out / "scores.csv", self.csv_text()),
                "markdown": write_text(out / "results.md", self.to_markdown()),
                "json": write_text(out / "summary.json", json.dumps(
                    self.summary(), indent=2, default=json_default) + "\n")}


def run_noref(
    models: Sequence[str | Path],
    datasets: Sequence[str | Path],
    scale: int = 4,
    crop_border: int | None = None,
    device: str = "auto",
    precision: str = "fp32",
    tta: bool = False,
    log: Callable[[str], None] | None = None,
    data_root: str | Path | None = None,
) -> NoRefResult:
    """Upscale every image of `datasets` (folders of real LR images, or set names found like
    `srgan benchmark --data`) with each of `models` and bicubic, and score NIQE."""
    crop = scale if crop_border is None else int(crop_border)
    folders = [resolve_dataset(d, data_root) for d in datasets]
    names = dataset_names(folders)  # unique, as in the full benchmark's tables
    methods = load_methods(models, scale=scale, device=device, precision=precision, tta=tta)
    scores: list[NiqeScore] = []
    skipped: list[tuple[str, str]] = []
    started = time.perf_counter()
    for name, folder in zip(names, folders, strict=True):
        for path in find_images([folder], recursive=False):
            try:
                lr = load_rgb8(path)[0]
            except (ImageReadError, OSError) as exc:
                skipped.append((str(path), error_reason(exc, path)))
                if log is not None:
                    log(f"skipped {display_path(path)}: {display_text(skipped[-1][1])}")
                continue
            for method in methods:
                t0 = time.perf_counter()
                sr = method(lr)
                seconds = time.perf_counter() - t0
                value = niqe_score(sr, crop)[0]
                scores.append(NiqeScore(name, path.name, method.name, sr.shape[-1],
                                        sr.shape[-2], value, seconds))
    settings = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": scale, "crop_border": crop, "precision": precision, "tta": tta,
        "lr": "given (real low-resolution images, no ground truth)",
        "dataset_paths": {n: str(f) for n, f in zip(names, folders, strict=True)},
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
    return NoRefResult(scores, skipped, [m.name for m in methods], names, settings)

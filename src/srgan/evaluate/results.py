"""The benchmark's result tables: one row per image and method (`ImageScore`, `HrScore`),
what was left out (`Skipped`), and the means as Markdown, CSV and JSON (`BenchmarkResult`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srgan.atomic import atomic_write
from srgan.imageio import display_path, display_text
from srgan.jsonable import json_default

__all__ = ["CSV_FIELDS", "HR", "PSNR_CAP", "BenchmarkResult", "HrScore", "ImageScore", "Skipped"]

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
        out.update(niqe_mean([r.niqe for r in rows]))
        return out

    def hr_mean(self, dataset: str) -> dict[str, float] | None:
        """Mean NIQE of a dataset's HR images; None when NIQE was not scored there."""
        values = [h.niqe for h in self.hr if h.dataset == dataset]
        scored = niqe_mean(values)
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
                      "", _md_table(self, niqe_cell, hr=True)]
        if s.get("niqe_note"):
            lines += ["", s["niqe_note"]]
        if s.get("notes"):
            lines += ["", *(display_text(n) for n in s["notes"])]
        return "\n".join(lines) + "\n"

    def csv_text(self) -> str:
        decimals = {"psnr_y": 4, "psnr_rgb": 4, "ssim_y": 6, "lpips": 6, "niqe": 6, "seconds": 4}
        rows = [csv_row(row, decimals, ("dataset", "image", "model", "notes"))
                for row in self.scores]
        rows += [{  # the HR images' own NIQE: model "HR", the other scores empty
            "dataset": display_text(h.dataset), "image": display_text(h.image),
            "model": HR, "width": h.width, "height": h.height,
            "niqe": "" if h.niqe is None else f"{h.niqe:.6f}",
        } for h in self.hr]
        return csv_table(CSV_FIELDS, rows)

    def to_csv(self, path: str | Path) -> Path:
        return write_text(path, self.csv_text())

    def to_json(self, path: str | Path) -> Path:
        """Names stay exact here: JSON's ASCII escapes carry a non-UTF-8 name as \\udcXX,
        which json.loads turns back into the very path."""
        text = json.dumps(self.summary(), indent=2, default=json_default)
        return write_text(path, text + "\n")

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """scores.csv, results.md and summary.json in `out_dir` (created if needed)."""
        out = Path(out_dir)
        return {
            "csv": self.to_csv(out / "scores.csv"),
            "markdown": write_text(out / "results.md", self.to_markdown()),
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


def csv_row(row: object, decimals: dict[str, int], texts: Sequence[str]) -> dict:
    """A score dataclass as one CSV row: numbers to fixed decimals (None -> empty), text
    fields shown as the terminal shows them (non-UTF-8 file names: \\xNN)."""
    d = asdict(row)  # type: ignore[call-overload]
    for key, places in decimals.items():
        d[key] = "" if d[key] is None else f"{d[key]:.{places}f}"
    for key in texts:
        d[key] = display_text(d[key])
    return d


def csv_table(fields: Sequence[str], rows: Iterable[dict]) -> str:
    """CSV text: a header of `fields`, then one line per row (rows from `csv_row`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def niqe_mean(values: Sequence[float | None]) -> dict[str, float]:
    """{"niqe": mean, "niqe_images": count} over the images NIQE could score; {} if none."""
    scored = [v for v in values if v is not None]
    return {"niqe": sum(scored) / len(scored), "niqe_images": len(scored)} if scored else {}


def niqe_cell(mean: dict) -> str | None:
    if "niqe" not in mean:
        return None
    text = f"{mean['niqe']:.3f}"
    if mean["niqe_images"] < mean["images"]:  # some images too small for NIQE's blocks
        text += f" ({mean['niqe_images']} of {mean['images']})"
    return text


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # names are escaped where they are written; backslashreplace is the backstop that keeps
    # one odd character from losing a whole run's results
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8", "backslashreplace")))

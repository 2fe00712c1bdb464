"""Draw the campaign's learning curve: Set5 validation PSNR against patches seen.

    python scripts/training_curve.py [-o docs/figures/training-curve.png] [RUN_DIR ...]

Reads every shipped segment under docs/training/logs/NN-NAME/ (log.jsonl, config.toml,
segment.json, written by scripts/campaign_ship.py) in order, plus any run folders given (a
segment still in progress), and puts them on one axis of cumulative patches, both stages, with
bicubic and the targets as reference lines. Needs matplotlib (`pip install 'srgan[plot]'`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOGS = REPO / "docs" / "training" / "logs"
BICUBIC_SET5 = 28.43
TARGET_SET5 = 31.0
STAGE_COLOURS = {"srresnet": "tab:blue", "srgan": "tab:orange"}


@dataclass
class Segment:
    label: str
    stage: str
    patches_before: int
    start_psnr: float | None
    points: list[tuple[int, float]] = field(default_factory=list)  # (patches, PSNR)


def read_segment(folder: Path, patches_before: int | None = None) -> Segment:
    """One segment's validation curve, shifted by the patches seen before it."""
    cfg = tomllib.loads((folder / "config.toml").read_text())
    batch = int(cfg["train"]["batch_size"])
    meta_path = folder / "segment.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    # stage 2 goes on from the stage-1 weights it started from (init_patches)
    before = int(meta.get("patches_before", patches_before or 0)) + int(meta.get("init_patches", 0))
    seg = Segment(folder.name, cfg["train"]["stage"], before, meta.get("shipped_before"))
    since = int(meta.get("since_step", 0))  # a run folder an earlier segment shipped from
    for line in (folder / "log.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "val/psnr_y" in row and int(row["step"]) > since:
            seg.points.append((before + (int(row["step"]) - since) * batch,
                               float(row["val/psnr_y"])))
    return seg


def draw(segments: list[Segment], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    seen_stage: set[str] = set()
    for seg in segments:
        xs = [p for p, _ in seg.points]
        ys = [v for _, v in seg.points]
        if seg.start_psnr is not None:
            xs, ys = [seg.patches_before, *xs], [seg.start_psnr, *ys]
        colour = STAGE_COLOURS.get(seg.stage, "tab:grey")
        label = None
        if seg.stage not in seen_stage:
            label = "stage 1: SRResNet (MSE)" if seg.stage == "srresnet" else (
                "stage 2: SRGAN-MSE")
            seen_stage.add(seg.stage)
        ax.plot([x / 1e3 for x in xs], ys, "-", color=colour, lw=1.4, label=label)
        ax.axvline(seg.patches_before / 1e3, color="0.85", lw=0.8, zorder=0)
    ax.axhline(BICUBIC_SET5, color="0.4", ls=":", lw=1, label=f"bicubic {BICUBIC_SET5} dB")
    ax.axhline(TARGET_SET5, color="tab:green", ls="--", lw=1,
               label=f"stage-1 target {TARGET_SET5} dB")
    ax.set_xlabel("training patches seen (thousands, 96x96 HR crops; grey lines: segments)")
    ax.set_ylabel("Set5 validation Y-PSNR (dB, x4)")
    ax.set_title("srgan CPU training campaign")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders still in progress")
    parser.add_argument("-o", "--out", type=Path,
                        default=REPO / "docs" / "figures" / "training-curve.png")
    args = parser.parse_args()
    folders = sorted(p for p in LOGS.glob("*-*") if p.is_dir()) if LOGS.is_dir() else []
    segments = [read_segment(f) for f in folders]
    for run in args.runs:
        before = max((s.points[-1][0] for s in segments if s.points), default=0)
        segments.append(read_segment(run, patches_before=before))
    if not any(s.points for s in segments):
        raise SystemExit("no validation points found: nothing to draw")
    draw(segments, args.out)
    for s in segments:
        best = max(s.points, key=lambda p: p[1]) if s.points else None
        print(f"{s.label}: {len(s.points)} points"
              + (f", best {best[1]:.3f} dB at {best[0]} patches" if best else ""))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as exc:  # a missing file, a bad value: one line, like srgan
        sys.exit(f"{Path(__file__).name}: error: {exc}")

"""Ship a campaign segment's best weights into the package when they beat the shipped ones.

    python scripts/campaign_ship.py srresnet_x4 [--run runs/campaign/srresnet_x4]
        [--min-gain 0.05] [--data ../shared/data/benchmark/Set5] [--dry-run]
    python scripts/campaign_ship.py srresnet_real_x4 --data ../shared/data/real/DRealSR \
        --against srresnet_x4 --min-gain 0.3

Issue 13's rule: the best validated weights of a run replace the shipped model only when they
score at least `--min-gain` dB more on Set5 under `srgan benchmark`'s protocol. A run with
`log.export = "last"` (stage 2, whose PSNR falls as it gains realism) ships its last EMA
weights instead, and only with --force, after NIQE and the compare figures have judged it. Then:
  - the weights go into src/srgan/weights/NAME.safetensors as fp16, with a model card that
    carries the campaign's running totals (patches seen, wall-clock training hours, the CPU,
    the precision) on top of the previous shipped model's;
  - the segment's log.jsonl and config.toml are copied to docs/training/logs/NN-NAME/, which
    scripts/training_curve.py draws.
Nothing is written when the gain is too small (exit status 3), so a cron-like loop can call it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import torch

from srgan.cpu import capability, cpu_flags, native_bf16
from srgan.export import export_generator
from srgan.weights import ModelCard, load_generator, read_metadata, save_generator

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "srgan" / "weights"
LOGS = REPO / "docs" / "training" / "logs"
# The interim srresnet_x4 (before the campaign): 2,405 steps of batch 16, 110 minutes.
INTERIM = {"patches_seen": 38_480, "train_hours": 110 / 60}
# What `srgan models` says a model is for, in plain words.
PURPOSE = {
    "srresnet_x4": "SRResNet x4 (16 blocks, 64 channels), trained for fidelity (pixel MSE): "
                   "faithful and smooth, the best PSNR; fine texture stays soft.",
    "srgan_mse_x4": "SRGAN x4 (the SRResNet generator trained against a discriminator): "
                    "trained for realism: sharper, with invented texture; lower PSNR.",
    "srresnet_real_x4": "SRResNet x4 for real photos: trained on photographs degraded as "
                        "cameras and the web degrade them (blur, resizing, sensor noise, JPEG, "
                        "twice over), so it removes noise and JPEG blocks instead of "
                        "sharpening them. For phone photos, web images, thumbnails and "
                        "scans; on clean images it is softer than srresnet_x4.",
}


def benchmark_psnr(models: list[str], data: Path) -> dict[str, float]:
    """Y-PSNR of each model on `data` through `srgan benchmark` itself (the shipped protocol)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "srgan", "benchmark", "--data", str(data), "-o", out,
               "-q", "--precision", "fp32", "--device", "cpu"]
        for m in models:
            cmd += ["-m", m]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        summary = json.loads((Path(out) / "summary.json").read_text())
    (scores,) = summary["datasets"].values()
    # the table names a model file by its stem
    return {m: scores["models"][Path(m).stem if m.endswith(".safetensors") else m]["psnr_y"]
            for m in models}


def segment_totals(log: Path, batch: int, best_step: int,
                   since_step: int = 0) -> tuple[int, float]:
    """(patches, training hours) from step `since_step` to `best_step`, from log.jsonl.

    The hours are wall clock while a process trained: from each start or resume to the next
    stop, so the time between a stop and the next session's resume does not count. A run
    folder that an earlier segment already shipped from is counted from that segment's best
    step (`since_step`), so no patch is counted twice."""
    hours = 0.0
    prev: tuple[float, int] | None = None
    for line in log.read_text().splitlines():
        row = json.loads(line)
        if "time" not in row or "step" not in row:
            continue
        time, step = float(row["time"]), int(row["step"])
        if row.get("event") in ("start", "resume"):
            prev = (time, step)
            continue
        if prev is not None and step > prev[1]:
            lo, hi = max(prev[1], since_step), min(step, best_step)
            if hi > lo:  # the part of this interval inside [since_step, best_step]
                hours += (time - prev[0]) * (hi - lo) / (step - prev[1]) / 3600
        prev = None if row.get("event") == "stopped" else (time, step)
    return (best_step - since_step) * batch, hours


def previous_totals(name: str) -> dict[str, float]:
    path = WEIGHTS / f"{name}.safetensors"
    if not path.is_file():
        return {"patches_seen": 0, "train_hours": 0.0}
    extra = read_metadata(path)[1].extra
    if "campaign_patches_seen" in extra:
        return {"patches_seen": int(extra["campaign_patches_seen"]),
                "train_hours": float(extra["campaign_train_hours"])}
    return dict(INTERIM) if name == "srresnet_x4" else {"patches_seen": 0, "train_hours": 0.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="shipped model name, e.g. srresnet_x4 or srgan_mse_x4")
    parser.add_argument("--run", type=Path, help="run folder [runs/campaign/NAME]")
    parser.add_argument("--min-gain", type=float, default=0.05, help="dB on --data")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" /
                        "benchmark" / "Set5")
    parser.add_argument("--against", help="the model the gain is measured against when NAME "
                        "is not shipped yet [NAME itself]; e.g. srresnet_x4 on DRealSR")
    parser.add_argument("--force", action="store_true",
                        help="ship even without the gain (a stage-2 model judged by NIQE)")
    parser.add_argument("--init-patches", type=int,
                        help="patches behind the weights the run started from (model.init) "
                             "[the shipped model's count: give it when that has changed since]")
    parser.add_argument("--checkpoint", type=Path,
                        help="ship this checkpoint of the run (its EMA weights) instead of the "
                             "best or last: a stage-2 step that the judging preferred")
    parser.add_argument("--since-step", type=int, default=0,
                        help="count this run's patches and hours from this step: the best "
                             "step of an earlier segment shipped from the same run folder")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    run = args.run or REPO / "runs" / "campaign" / args.name
    cfg = tomllib.loads((run / "config.toml").read_text())
    batch = int(cfg["train"]["batch_size"])
    ema = float(cfg["train"]["ema"]) > 0
    best = cfg["log"].get("export", "best") == "best"  # else the last weights (stage 2)
    which = args.checkpoint.name if args.checkpoint else ("best" if best else "last")

    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "candidate.safetensors"
        export_generator(args.checkpoint or run, candidate, ema=ema, best=best and not
                         args.checkpoint, dtype=torch.float16)
        card = read_metadata(candidate)[1]
        best_step = int(card.extra["steps"])
        shipped = WEIGHTS / f"{args.name}.safetensors"
        baseline = args.name if shipped.is_file() else args.against
        models = [str(candidate)] + ([baseline] if baseline else [])
        scores = benchmark_psnr(models, args.data)
        new = scores[str(candidate)]
        old = scores.get(baseline) if baseline else None
        gain = new - old if old is not None else float("inf")
        print(f"candidate ({which}, step {best_step}): {new:.3f} dB on {args.data.name}; "
              f"{baseline or 'shipped'}: {'none' if old is None else f'{old:.3f} dB'}; "
              f"gain {gain:+.3f} dB")
        if gain < args.min_gain and not args.force:
            print(f"not shipped: below the {args.min_gain} dB rule")
            return 3
        if args.dry_run:
            return 0

        before = previous_totals(args.name)
        patches, hours = segment_totals(run / "log.jsonl", batch, best_step, args.since_step)
        native, why = native_bf16()
        amp = cfg["train"]["amp"]
        precision = "bf16" if amp == "bf16" or (amp == "auto" and native) else "fp32"
        shipped_segments = [p for p in LOGS.glob("*-*") if p.is_dir()]
        segments = [p for p in shipped_segments if p.name.endswith(f"-{args.name}")]
        index = len(shipped_segments) + 1
        extra = dict(card.extra)
        extra.update({
            "campaign_patches_seen": str(before["patches_seen"] + patches),
            "campaign_train_hours": f"{before['train_hours'] + hours:.3f}",
            "campaign_segments": str(len(segments) + 1),
            "campaign_cpu": f"{capability()} ({why}), {os.cpu_count()} cores shared with "
                            "other work",
            "campaign_precision": precision,
            f"{args.data.name.lower()}_psnr_y": f"{new:.4f}",
        })
        init = str(cfg["model"].get("init", ""))
        init_patches = 0
        if init and init != args.name:
            init_patches = args.init_patches if args.init_patches is not None else \
                previous_totals(init)["patches_seen"]
        val_name = Path(str(cfg["data"].get("val", "") or "Set5")).name
        if val_name.upper() in ("HR", "GT"):  # DRealSR/HR: the set's own name
            val_name = Path(str(cfg["data"]["val"])).parent.name
        chosen = {"best": f"best {val_name}-validated", "last": "last"}.get(which,
                                                                             f"{which}'s")
        lr_made = ("realistic degradations (Real-ESRGAN's second-order blur, resize, noise "
                   "and JPEG)" if cfg["data"].get("degradation") == "realistic"
                   else "MATLAB-bicubic LR")
        start = f"from {init} ({init_patches:,} patches); " if init_patches else ""
        training = (
            f"CPU training campaign (docs/campaign.md): {start}"
            f"{int(extra['campaign_patches_seen']):,} "
            f"96x96 patches in {float(extra['campaign_train_hours']):.1f} h of training over "
            f"{extra['campaign_segments']} segment(s), {precision} on {capability()}; "
            f"688 photographs (BSD200, BSDS500-test, T91, General100, "
            f"Sun-Hays 80, Debian wallpapers), {lr_made}; {chosen} EMA "
            f"weights, stored fp16. Last segment: {card.training}"
        )
        net = load_generator(candidate)
        save_generator(net, shipped, ModelCard(
            name=args.name, description=PURPOSE.get(args.name, card.description),
            training=training, extra=extra), dtype=torch.float16)
        dest = LOGS / f"{index:02d}-{args.name}"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / "log.jsonl", dest / "log.jsonl")
        shutil.copy2(run / "config.toml", dest / "config.toml")
        (dest / "segment.json").write_text(json.dumps({
            "name": args.name, "best_step": best_step, "batch": batch,
            "patches_before": before["patches_seen"], "hours_before": before["train_hours"],
            "patches": patches, "hours": hours, f"{args.data.name.lower()}_psnr_y": new,
            "shipped_before": old, "against": baseline,
            "cpu_flags_bf16": sorted(f for f in cpu_flags() if "bf16" in f),
            "precision": precision,
            "weights": which,
            "init": init, "init_patches": init_patches, "since_step": args.since_step,
        }, indent=1) + "\n")
        print(f"shipped {shipped} ({extra['campaign_patches_seen']} patches, "
              f"{extra['campaign_train_hours']} h in all); log in {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

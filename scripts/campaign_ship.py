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
import math
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import torch

from srgan.cpu import capability, cpu_flags, native_bf16
from srgan.export import ExportError
from srgan.train.export import export_generator
from srgan.weights import (
    ModelCard,
    ModelFileError,
    interpolate_generators,
    load_generator,
    read_metadata,
    save_generator,
)

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "srgan" / "weights"
LOGS = REPO / "docs" / "training" / "logs"
# The interim srresnet_x4 (before the campaign): 2,405 steps of batch 16, 110 minutes.
INTERIM = {"patches_seen": 38_480, "train_hours": 110 / 60}
# What `srgan models` says a model is for, in plain words ({scale}, {blocks}, {channels}: the
# shipped network's own).
PURPOSE = {
    "srresnet_x4": "SRResNet x{scale} ({blocks} blocks, {channels} channels), trained for "
                   "fidelity (pixel MSE): "
                   "faithful and smooth, the best PSNR; fine texture stays soft.",
    "srgan_mse_x4": "SRGAN x4 (the SRResNet generator trained against a discriminator): "
                    "trained for realism: sharper, with invented texture; lower PSNR.",
    "srresnet_real_x4": "SRResNet x4 for real photos: trained on photographs degraded as "
                        "cameras and the web degrade them (blur, resizing, sensor noise, JPEG, "
                        "twice over), so it removes noise and JPEG blocks instead of "
                        "sharpening them. For phone photos, web images, thumbnails and "
                        "scans; on clean images it is softer than srresnet_x4.",
    "srgan_real_x4": "SRGAN x4 for real photos: srresnet_real_x4 trained further against a "
                     "discriminator on the same degraded photographs, for realism: sharper "
                     "edges and invented texture where srresnet_real_x4 is smooth, JPEG "
                     "blocks and noise still removed; lower PSNR.",
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


def portable(text: str) -> str:
    """`text` with this checkout's absolute path taken out, leaving paths relative to the
    repository as campaign.sh gives them (../shared/...): the run config resolves its
    folders, and a shipped card or log should name no build machine's folders."""
    return text.replace(f"{REPO}{os.sep}", "")


def previous_totals(name: str) -> dict[str, float]:
    path = WEIGHTS / f"{name}.safetensors"
    if not path.is_file():
        return {"patches_seen": 0, "train_hours": 0.0}
    extra = read_metadata(path)[1].extra
    if "campaign_patches_seen" in extra:
        return {"patches_seen": int(extra["campaign_patches_seen"]),
                "train_hours": float(extra["campaign_train_hours"])}
    return dict(INTERIM) if name == "srresnet_x4" else {"patches_seen": 0, "train_hours": 0.0}


class ShipError(Exception):
    """A run, a number or a file this script cannot use: one line, exit status 2."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument("--blend-with", metavar="MODEL",
                        help="ship (1 - T) MODEL + T the run's weights (network interpolation, "
                             "T = --strength): a model fine-tuned from MODEL that went too far "
                             "for the validation set, e.g. too smooth on real camera photos")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="T of --blend-with, in (0, 1] [1: the run's weights as they are]")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if not math.isfinite(args.min_gain):
        parser.error(f"--min-gain: a finite number of dB, got {args.min_gain}")
    if args.since_step < 0:
        parser.error(f"--since-step: a step, 0 or more, got {args.since_step}")
    if args.init_patches is not None and args.init_patches < 0:
        parser.error(f"--init-patches: 0 or more, got {args.init_patches}")
    if not 0 < args.strength <= 1:  # also refuses nan
        parser.error(f"--strength: a number in (0, 1], got {args.strength}")
    return args


def read_run(run: Path) -> dict:
    """The run folder's config.toml, with the keys this script reads checked."""
    if not run.is_dir():
        raise ShipError(f"{run}: no such run folder (give --run RUN_DIR)")
    try:
        cfg = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
        for section, key in (("train", "batch_size"), ("train", "ema"), ("train", "amp")):
            if key not in cfg.get(section, {}):
                raise KeyError(f"no {section}.{key}")
        for section in ("log", "model", "data"):
            cfg.setdefault(section, {})
    except OSError as exc:
        raise ShipError(f"{run}: not a run folder ({exc.strerror}: config.toml)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ShipError(f"{run / 'config.toml'}: not an srgan run config ({exc})") from None
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return ship(args)
    except ShipError as exc:
        print(f"campaign_ship.py: error: {exc}", file=sys.stderr)
    except (ExportError, ModelFileError, OSError) as exc:
        print(f"campaign_ship.py: error: {exc}", file=sys.stderr)
    except subprocess.CalledProcessError as exc:
        print(f"campaign_ship.py: error: srgan benchmark failed (exit {exc.returncode}; its "
              "error is above)", file=sys.stderr)
    return 2


def ship(args: argparse.Namespace) -> int:
    run = args.run or REPO / "runs" / "campaign" / args.name
    cfg = read_run(run)
    if not args.data.is_dir():
        raise ShipError(f"--data {args.data}: no such folder of HR images")
    ema = float(cfg["train"]["ema"]) > 0
    best = cfg["log"].get("export", "best") == "best"  # else the last weights (stage 2)
    which = args.checkpoint.name if args.checkpoint else ("best" if best else "last")

    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "candidate.safetensors"
        export_generator(args.checkpoint or run, candidate, ema=ema, best=best and not
                         args.checkpoint, dtype=torch.float16)
        card = read_metadata(candidate)[1]
        if args.blend_with:
            card = blend_candidate(candidate, card, args.blend_with, args.strength)
        best_step = int(card.extra["steps"])
        if args.since_step > best_step:
            raise ShipError(f"--since-step {args.since_step} is beyond the step being shipped "
                            f"({best_step}, the {which} weights of {run}): nothing to count")
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
        write_shipped(args, run, cfg, candidate, card, which, best_step, new, old, baseline)
    return 0


def blend_candidate(candidate: Path, card: ModelCard, base: str, strength: float) -> ModelCard:
    """Rewrite `candidate` as (1 - strength) base + strength candidate; the card says so."""
    mixed = interpolate_generators(load_generator(base).net, load_generator(candidate).net,
                                   strength)
    extra = dict(card.extra, blend=f"{1 - strength:.2f} x {base} + {strength:.2f} x this run")
    card = ModelCard(name=card.name, description=card.description, training=card.training,
                     extra=extra)
    save_generator(mixed, candidate, card, dtype=torch.float16)
    return card


def write_shipped(args: argparse.Namespace, run: Path, cfg: dict, candidate: Path,
                  card: ModelCard, which: str, best_step: int, new: float, old: float | None,
                  baseline: str | None) -> None:
    """The weights with their card into the package, the segment's log into docs/."""
    batch = int(cfg["train"]["batch_size"])
    shipped = WEIGHTS / f"{args.name}.safetensors"
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
        "train_config": portable(extra["train_config"]),
        "train_data": portable(extra["train_data"]),
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
    net = load_generator(candidate).net
    training = training_text(cfg, extra, which, init, init_patches, precision, card.training,
                             picked_on=args.data.name)
    description = (PURPOSE[args.name].format(scale=net.scale, blocks=net.num_blocks,
                                             channels=net.channels)
                   if args.name in PURPOSE else card.description)
    save_generator(net, shipped, ModelCard(
        name=args.name, description=description, training=training, extra=extra),
        dtype=torch.float16)
    dest = LOGS / f"{index:02d}-{args.name}"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run / "log.jsonl", dest / "log.jsonl")
    (dest / "config.toml").write_text(portable((run / "config.toml").read_text(encoding="utf-8")),
                                      encoding="utf-8")
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


def training_text(cfg: dict, extra: dict, which: str, init: str, init_patches: int,
                  precision: str, last_segment: str, picked_on: str) -> str:
    """The card's training paragraph, from the run's own config (crop, LR, validation set);
    `picked_on`: the set the blend strength was judged on (--data), which the card names so
    that no one reads that set's scores as held out."""
    val_name = Path(str(cfg["data"].get("val", "") or "Set5")).name
    if val_name.upper() in ("HR", "GT"):  # DRealSR/HR: the set's own name
        val_name = Path(str(cfg["data"]["val"])).parent.name
    chosen = {"best": f"best {val_name}-validated", "last": "last"}.get(which, f"{which}'s")
    lr_made = ("realistic degradations (Real-ESRGAN's second-order blur, resize, noise "
               "and JPEG; the ranges are the [degradation] section of train_config)"
               if cfg["data"].get("degradation") == "realistic" else "MATLAB-bicubic LR")
    crop = int(cfg["data"].get("crop", 96))
    start = f"from {init} ({init_patches:,} patches); " if init_patches else ""
    blend = (f" Shipped as a network interpolation: {extra['blend']} (its weights, "
             f"blended), the strength picked on {picked_on}." if "blend" in extra else "")
    return (
        f"CPU training campaign (docs/campaign.md): {start}"
        f"{int(extra['campaign_patches_seen']):,} "
        f"{crop}x{crop} patches in {float(extra['campaign_train_hours']):.1f} h of training over "
        f"{extra['campaign_segments']} segment(s), {precision} on {capability()}; "
        f"688 photographs (BSD200, BSDS500-test, T91, General100, "
        f"Sun-Hays 80, Debian wallpapers), {lr_made}; {chosen} EMA "
        f"weights, stored fp16.{blend} Last segment: {last_segment}"
    )


if __name__ == "__main__":
    raise SystemExit(main())

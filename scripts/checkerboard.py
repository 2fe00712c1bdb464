"""Score the periodic (checkerboard) artefacts or the halos of models on benchmark sets.

    python scripts/checkerboard.py -m srresnet_x4 -m runs/x/generator.safetensors --data Set14
    python scripts/checkerboard.py -m srgan_real_x4 --data Set14 --score halo

For every image: the benchmark's protocol (modcrop, MATLAB-bicubic LR as uint8), each model's
uint8 output, and `srgan.evaluate.artefacts.periodic_artefact_score` of its Y channel (about 1
for a natural image). The table has one row per image and the set's mean, with the HR image
and bicubic as references: a model well above the HR's score has laid a pattern over it.
`--score halo` gives instead `halo_score` against the HR: the grey levels by which the output
overshoots the HR's local range along strong edges (0 for the HR, small for bicubic).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from srgan.evaluate.artefacts import halo_score, periodic_artefact_score
from srgan.evaluate.methods import load_methods, load_rgb8, prepare_pair, resolve_dataset
from srgan.imageio import find_images
from srgan.metrics import rgb_to_y


def scores_table(models: list[str], data: list[str], image: str = "", tile: int = 32,
                 score: str = "checkerboard") -> tuple[list[str], list[tuple[str, list[float]]]]:
    """(column names, rows): one row per image ("Set14/baboon") and one per set ("Set14 mean"),
    each with the score of the HR image, then of every method (bicubic first)."""
    methods = load_methods(models, device="cpu")
    names = ["HR"] + [m.name for m in methods]
    rows: list[tuple[str, list[float]]] = []
    for item in data:
        folder = resolve_dataset(item)
        per_image = []
        for path in find_images([folder]):
            if image not in path.name:
                continue
            hr, lr = prepare_pair(load_rgb8(path)[0], 4)
            with torch.inference_mode():
                images = [hr] + [method(lr) for method in methods]  # uint8, as benchmarked
            lumas = [rgb_to_y(x.double()).numpy() for x in images]
            if score == "halo":
                scores = [halo_score(y, lumas[0]) for y in lumas]
            else:
                scores = [periodic_artefact_score(y, tile) for y in lumas]
            per_image.append(scores)
            rows.append((f"{folder.name}/{path.stem}", scores))
        if per_image:
            means = [sum(c) / len(c) for c in zip(*per_image, strict=True)]
            rows.append((f"{folder.name} mean", means))
    return names, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", action="append", required=True,
                        help="shipped model name or .safetensors file (repeatable)")
    parser.add_argument("--data", nargs="+", default=["Set14"], help="sets or folders")
    parser.add_argument("--image", default="", help="only images whose name contains this")
    parser.add_argument("--tile", type=int, default=32, help="spectrum tile side (multiple of 4)")
    parser.add_argument("--score", choices=["checkerboard", "halo"], default="checkerboard",
                        help="the periodic pattern (no reference) or halos against the HR")
    args = parser.parse_args(argv)
    if args.tile < 4 or args.tile % 4:
        parser.error(f"--tile: a positive multiple of 4, got {args.tile}")
    names, rows = scores_table(args.model, args.data, args.image, args.tile, args.score)
    print("| image | " + " | ".join(names) + " |")
    print("|" + " --- |" * (len(names) + 1))
    for label, scores in rows:
        bold = "**" if label.endswith(" mean") else ""
        print(f"| {bold}{label}{bold} | " + " | ".join(f"{bold}{v:.2f}{bold}" for v in scores)
              + " |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as exc:  # a missing file, a bad value: one line, like srgan
        sys.exit(f"{Path(__file__).name}: error: {exc}")

"""Split the shared training photos into shards small enough to travel to a lent GPU machine.

The device tool carries at most 64 MiB per command (repository included), and the 497
photographs of ../shared/data/train are about 62 MB, so they go in two commands, unchanged
(no re-encoding, so no quality cost): the first copies shard 1 to a folder on the GPU
machine, the second (while the machine is still warm) copies shard 2 and starts training.
See docs/gpu-training.md.

    python scripts/pack_training_data.py ../shared/data/train .gpu --max-mb 40
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from srgan.imageio import find_images


def pack(src: Path, dst: Path, max_bytes: int) -> list[Path]:
    files = sorted(find_images([src]), key=lambda p: (-p.stat().st_size, str(p)))
    shards: list[list[Path]] = []
    sizes: list[int] = []
    for f in files:  # first fit by decreasing size: few, evenly filled shards
        size = f.stat().st_size
        for i, used in enumerate(sizes):
            if used + size <= max_bytes:
                shards[i].append(f)
                sizes[i] += size
                break
        else:
            if size > max_bytes:
                raise SystemExit(f"{f}: {size} bytes is larger than one shard")
            shards.append([f])
            sizes.append(size)
    out = []
    for i, shard in enumerate(shards, 1):
        folder = dst / f"train-part{i}"
        for f in shard:
            target = folder / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        out.append(folder)
        print(f"{folder}: {len(shard)} files, {sizes[i - 1] / 2**20:.1f} MiB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--max-mb", type=float, default=40.0)
    args = ap.parse_args()
    if not 0 < args.max_mb < 1e6:  # nan too
        ap.error(f"--max-mb: a size in MiB above 0, got {args.max_mb}")
    pack(args.src, args.dst, int(args.max_mb * 2**20))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as exc:  # a missing file, a bad value: one line, like srgan
        sys.exit(f"{Path(__file__).name}: error: {exc}")

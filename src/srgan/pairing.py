"""Which LR file goes with which HR file, for paired training sets and benchmark sets alike.

Accepted namings, tried in this order for each HR file (names compared case-insensitively):

1. DIV2K's: `0001x4.png` for `0001.png` (the stem plus `x<scale>`);
2. the same stem: `LR/baby.png` for `HR/baby.png`;
3. the same stem once the usual HR/LR/xN suffixes are dropped (`match_key`):
   `baby_LRBI_x4` for `baby`, `img_001_SRF_4_LR` for `img_001_SRF_4_HR`.

The first rule that finds exactly one file decides; two or more candidates under a rule leave
the HR file unpaired rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["match_key", "pair_lr_files"]

_SUFFIXES = [r"[_\-.]?(?:hr|lr|lrbi|bi|bicubic)", r"[_\-.]?x{scale}"]


def match_key(stem: str, scale: int) -> str:
    """A file stem without the usual HR/LR/xN suffixes: 'baby_LRBI_x4' -> 'baby'."""
    pats = [re.compile(p.format(scale=scale) + "$", re.IGNORECASE) for p in _SUFFIXES]
    key, changed = stem, True
    while changed:
        changed = False
        for pat in pats:
            new = pat.sub("", key)
            if new and new != key:
                key, changed = new, True
    return key.lower()


def pair_lr_files(hr_files: Sequence[Path], lr_files: Sequence[Path], scale: int
                  ) -> dict[Path, Path | None]:
    """{hr_path: its LR path, or None when no rule finds exactly one} (rules: module doc)."""
    by_stem: dict[str, list[Path]] = {}
    by_key: dict[str, list[Path]] = {}
    for p in lr_files:
        by_stem.setdefault(p.stem.lower(), []).append(p)
        by_key.setdefault(match_key(p.stem, scale), []).append(p)
    out: dict[Path, Path | None] = {}
    for hr in hr_files:
        stem = hr.stem.lower()
        cands = (by_stem.get(f"{stem}x{scale}") or by_stem.get(stem)
                 or by_key.get(match_key(hr.stem, scale)) or [])
        out[hr] = cands[0] if len(cands) == 1 else None
    return out

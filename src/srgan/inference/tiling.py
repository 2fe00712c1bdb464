"""How an image is cut into tiles the network can hold, each read with context around it so
that the stitched result equals a whole-image pass (tests/test_inference.py checks it)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    """A tile of the input: the region it owns (y0:y1, x0:x1) and the padded region it reads."""

    y0: int
    y1: int
    x0: int
    x1: int
    py0: int
    py1: int
    px0: int
    px1: int


def _splits(n: int, parts: int) -> list[int]:
    # even split: tiles of near-equal size rather than a thin last one
    return [round(i * n / parts) for i in range(parts + 1)]


def plan_tiles(height: int, width: int, tile: int, pad: int, uniform: bool = False) -> list[Tile]:
    """Split an image into tiles of at most `tile` pixels a side, each read with `pad` context.

    `uniform`: every tile reads a window of the same size (so tiles can be batched), at
    least `pad` pixels of context wherever the image has them: windows at the borders are
    shifted inwards and read more real context instead of padding. Where a window would
    span the whole image, one tile does instead of several identical windows.
    """
    ny, nx = math.ceil(height / tile), math.ceil(width / tile)
    if uniform:  # a window that spans the image anyway needs only one tile across it
        ny = 1 if math.ceil(height / ny) + 2 * pad >= height else ny
        nx = 1 if math.ceil(width / nx) + 2 * pad >= width else nx
    ys, xs = _splits(height, ny), _splits(width, nx)
    wy = min(max(b - a for a, b in zip(ys, ys[1:], strict=False)) + 2 * pad, height)
    wx = min(max(b - a for a, b in zip(xs, xs[1:], strict=False)) + 2 * pad, width)
    tiles = []
    for i in range(ny):
        for j in range(nx):
            y0, y1, x0, x1 = ys[i], ys[i + 1], xs[j], xs[j + 1]
            if uniform:
                py0 = min(max(0, y0 - pad), height - wy)
                px0 = min(max(0, x0 - pad), width - wx)
                tiles.append(Tile(y0, y1, x0, x1, py0, py0 + wy, px0, px0 + wx))
            else:
                tiles.append(Tile(y0, y1, x0, x1, max(0, y0 - pad), min(height, y1 + pad),
                                  max(0, x0 - pad), min(width, x1 + pad)))
    return tiles

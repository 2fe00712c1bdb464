"""Numbers for two artefacts GAN training leaves in a x4 network's output: the checkerboard
of its sub-pixel layers (no reference needed) and halos along strong edges (against the HR).

Two x2 pixel shuffles repeat their sub-pixel pattern every 2 and 4 output pixels, so a
checkerboard shows as excess power at the spatial frequencies k/4 cycles per pixel (k = 1, 2,
3) along either axis. A photograph's power spectrum is smooth there, so each of those 15
frequencies (all pairs but the zero one) is compared with the power of its ring of neighbours
two bins away (beyond the window's leakage). The score is the mean of those 15 ratios over
the image's tiles: about 1 for a natural image, well above 1 when a periodic pattern is laid
over it. It needs no reference, and comparing the score of the SR image with the HR one's
tells artefacts from real fine structure, which the eye must otherwise judge at zoom.
"""

from __future__ import annotations

import numpy as np

_PERIOD = 4  # the pattern's period in output pixels (two x2 shuffles)


def periodic_artefact_score(y: np.ndarray, tile: int = 32) -> float:
    """Mean excess power at the period-2/period-4 frequencies of a 2-D (luma) image.

    `y` is any real 2-D array (e.g. the Y channel, 0-255); `tile` (a multiple of 4, >= 16) is
    the side of the square tiles whose Hann-windowed power spectra are averaged.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"periodic_artefact_score needs a 2-D image, got shape {y.shape}")
    if tile % _PERIOD or tile < 16:
        raise ValueError(f"tile must be a multiple of {_PERIOD} and at least 16, got {tile}")
    rows, cols = y.shape[0] // tile, y.shape[1] // tile
    if rows == 0 or cols == 0:
        raise ValueError(f"image {y.shape[1]}x{y.shape[0]} is smaller than one {tile}x{tile} tile")
    tiles = y[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile).swapaxes(1, 2)
    tiles = tiles.reshape(-1, tile, tile)
    tiles = tiles - tiles.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.hanning(tile), np.hanning(tile))
    power = (np.abs(np.fft.fft2(tiles * window)) ** 2).mean(axis=0)
    step = tile // _PERIOD
    peaks = [(u * step, v * step) for u in range(_PERIOD) for v in range(_PERIOD) if u or v]
    ring = [(du, dv) for du in range(-2, 3) for dv in range(-2, 3) if max(abs(du), abs(dv)) == 2]
    tiny = np.finfo(np.float64).tiny
    ratios = []
    for u, v in peaks:
        floor = np.mean([power[(u + du) % tile, (v + dv) % tile] for du, dv in ring])
        ratios.append(power[u, v] / max(floor, tiny))
    return float(np.mean(ratios))


def halo_score(sr: np.ndarray, hr: np.ndarray, radius: int = 3, edge_range: float = 48.0) -> float:
    """Mean overshoot, in the images' units (grey levels for 0-255 luma), of `sr` beyond the
    range of `hr` around each pixel near a strong edge.

    A halo is a bright or dark rim along an edge that the photograph does not have: the SR
    pixel is brighter than every HR pixel within `radius`, or darker than every one. Only
    pixels whose HR neighbourhood spans at least `edge_range` count (the edges, where
    sharpening and unsharp-masked targets put their rims); texture noise elsewhere is not a
    halo. 0 for the HR image itself and for anything that stays within its local range.
    """
    sr = np.asarray(sr, dtype=np.float64)
    hr = np.asarray(hr, dtype=np.float64)
    if sr.shape != hr.shape or sr.ndim != 2:
        raise ValueError(f"halo_score needs two 2-D images of one shape, got {sr.shape} and "
                         f"{hr.shape}")
    if radius < 1:
        raise ValueError(f"radius must be at least 1, got {radius}")
    side = 2 * radius + 1
    if min(hr.shape) < side:
        raise ValueError(f"image {hr.shape[1]}x{hr.shape[0]} is smaller than the {side}x{side} "
                         "neighbourhood")
    windows = np.lib.stride_tricks.sliding_window_view(hr, (side, side))
    high, low = windows.max(axis=(2, 3)), windows.min(axis=(2, 3))
    inner = sr[radius:-radius, radius:-radius]
    edges = (high - low) >= edge_range
    if not edges.any():
        return 0.0
    over = np.maximum(inner - high, 0.0) + np.maximum(low - inner, 0.0)
    return float(over[edges].mean())

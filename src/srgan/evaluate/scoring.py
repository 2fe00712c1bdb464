"""Per-image scorers of the benchmark: full-reference PSNR/SSIM, LPIPS when it is installed,
and the no-reference NIQE. Kept apart from the run and its tables (`benchmark`) so that
`compare` can score its figures the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["SSIM_KINDS", "lpips_scorer", "niqe_note", "niqe_score", "score_pair"]

SSIM_KINDS = ("wang", "paper")


def score_pair(
    sr: torch.Tensor, hr: torch.Tensor, crop_border: int, ssim: str = "wang"
) -> dict[str, float]:
    """Y-PSNR, Y-SSIM and RGB PSNR of uint8 (3, H, W) tensors, `crop_border` shaved off."""
    from srgan import metrics

    if ssim not in SSIM_KINDS:
        raise ValueError(f"ssim must be one of {SSIM_KINDS}, got {ssim!r}")
    if ssim == "paper":
        ssim_value = metrics.ssim_paper(sr, hr, crop_border=crop_border)
    else:
        ssim_value = metrics.ssim_y(sr, hr, crop_border=crop_border)
    return {
        "psnr_y": float(metrics.psnr_y(sr, hr, crop_border=crop_border)),
        "ssim_y": float(ssim_value),
        "psnr_rgb": float(metrics.psnr_rgb(sr, hr, crop_border=crop_border)),
    }


def niqe_score(img: torch.Tensor, crop_border: int) -> tuple[float | None, str | None]:
    """NIQE of a uint8 (3, H, W) image after the border crop, or (None, why not)."""
    from srgan.niqe import BLOCK, niqe

    h, w = img.shape[-2] - 2 * crop_border, img.shape[-1] - 2 * crop_border
    if min(h, w) < BLOCK:
        return None, f"smaller than NIQE's {BLOCK}x{BLOCK} block after the border crop"
    try:
        return niqe(img, crop_border=crop_border), None
    except ValueError as exc:  # e.g. a flat image: no block has usable statistics
        return None, str(exc).removeprefix("niqe: ")


def lpips_scorer(device: str | torch.device = "cpu") -> tuple[Callable | None, str]:
    """LPIPS (AlexNet) if the `lpips` package and all its weights are already on this
    machine; never downloads. Returns (scorer or None, one line saying why not)."""
    try:
        import lpips  # type: ignore[import-not-found]
    except ImportError:
        return None, "LPIPS not scored: the `lpips` package is not installed."
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if not any(hub.glob("alexnet-*.pth")):
        return None, f"LPIPS not scored: AlexNet weights not found in {hub} (no download)."
    try:
        net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
    except Exception as exc:  # its weights or torchvision missing: no column, say why
        return None, f"LPIPS not scored: could not load it ({exc})."

    @torch.inference_mode()
    def score(sr: torch.Tensor, hr: torch.Tensor) -> float:
        a = sr[None].to(device, torch.float32) / 127.5 - 1
        b = hr[None].to(device, torch.float32) / 127.5 - 1
        return float(net(a, b).item())

    return score, "LPIPS: lpips package, AlexNet v0.1, on RGB after the border crop."


def niqe_note(enabled: bool, missing: dict[str, list[str]]) -> str:
    if not enabled:
        return ""
    note = ("NIQE: Mittal et al. 2013 as MATLAB's niqe (96x96 blocks, the authors' pristine "
            "model) on the rounded MATLAB Y channel of each uint8 output, border cropped.")
    for why, files in sorted(missing.items()):
        note += f" Not scored ({why}): {', '.join(files)}."
    return note

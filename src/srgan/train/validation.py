"""Validation during training: Y-PSNR / SSIM of a network on whole images, the LR | SR | HR
strips, and `checkpoints/best.pt` (which the loop writes whenever the PSNR improves)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from srgan.data import ValImage
from srgan.train import checkpoint as ckpt
from srgan.train.logs import RunLogger
from srgan.train.state import TrainState


@torch.no_grad()
def validate(
    net: nn.Module, val_set: list[ValImage], step: int, *, strips: int = 0,
    folder: Path | None = None, logger: RunLogger | None = None,
    memory_format: torch.memory_format = torch.contiguous_format, niqe: bool = False,
) -> dict[str, float]:
    """Y-PSNR / SSIM (crop = scale) of `net` on whole images, in float32; the first `strips`
    images' LR | SR | HR strips go to `folder` as step_N_NAME.png (and to `logger`). With
    `niqe`, also the outputs' mean NIQE (realism: stage 2's PSNR falls as it gains it), over
    the images large enough for one NIQE block after the border crop."""
    from srgan.metrics import psnr_y, ssim_y
    from srgan.niqe import BLOCK
    from srgan.niqe import niqe as niqe_of

    was_training = net.training
    net.eval()
    scale = int(net.scale)
    psnrs, ssims, niqes = [], [], []
    for i, item in enumerate(val_set):
        sr = net(item.lr.contiguous(memory_format=memory_format)).float()
        sr255 = net.to_unit(sr).clamp_(0, 1).mul_(255).round_()[0]
        hr255 = item.hr.float()
        psnrs.append(psnr_y(sr255, hr255, crop_border=scale))
        ssims.append(ssim_y(sr255, hr255, crop_border=scale))
        if niqe and min(sr255.shape[-2:]) - 2 * scale >= BLOCK:
            niqes.append(niqe_of(sr255.cpu(), crop_border=scale))
        if i < strips and folder is not None:
            strip = _strip(item, sr255, scale)
            _write_png(strip, folder / f"step_{step:09d}_{item.name}.png")
            if logger is not None:
                logger.image(f"val/{item.name}", step, strip)
    net.train(was_training)
    finite = [p for p in psnrs if math.isfinite(p)]
    metrics = {
        "psnr_y": sum(finite) / max(1, len(finite)),
        "ssim_y": sum(ssims) / len(ssims),
    }
    if niqes:
        metrics["niqe"] = sum(niqes) / len(niqes)
    return metrics


def save_best(state: TrainState, config: str, folder: Path) -> Path:
    """FOLDER/best.pt: the generator (and EMA) of the best validation so far."""
    return ckpt.atomic_torch_save({"format": ckpt.FORMAT, "version": ckpt.VERSION,
                                   **state.to_best(config)}, folder / "best.pt")


def _strip(item: ValImage, sr255: torch.Tensor, scale: int) -> torch.Tensor:
    """LR (nearest-neighbour enlarged) | SR | HR, as a (3, H, 3W) uint8 tensor."""
    lr = item.lr[0].mul(255).round().clamp(0, 255)
    lr_big = lr.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return torch.cat([lr_big, sr255, item.hr.float()], dim=2).to(torch.uint8).cpu()


def _write_png(chw: torch.Tensor, path: Path) -> None:
    from srgan.imageio import from_array, write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(from_array(chw.permute(1, 2, 0).contiguous().numpy()), path, overwrite=True)

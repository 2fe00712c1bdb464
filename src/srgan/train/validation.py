"""Validation during training and best-model tracking: Y-PSNR / SSIM on whole images, the
LR | SR | HR strips, and `checkpoints/best.pt` whenever the PSNR improves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from srgan.data import ValImage
from srgan.train import checkpoint as ckpt
from srgan.train.logs import RunLogger

if TYPE_CHECKING:
    from srgan.train.loop import Trainer


@torch.no_grad()
def validate(trainer: Trainer, logger: RunLogger) -> dict[str, float]:
    """Y-PSNR / SSIM (crop = scale) on whole images with the weights that would be exported
    (the EMA when enabled), in float32."""
    from srgan.metrics import psnr_y, ssim_y

    net = trainer.ema.model if trainer.ema is not None else trainer.g
    was_training = net.training
    net.eval()
    scale = trainer.cfg.model.scale
    psnrs, ssims = [], []
    val_dir = trainer.run_dir / "val"
    for i, item in enumerate(trainer.val):
        sr = net(item.lr.contiguous(memory_format=trainer.memory_format)).float()
        sr255 = net.to_unit(sr).clamp_(0, 1).mul_(255).round_()[0]
        hr255 = item.hr.float()
        psnrs.append(psnr_y(sr255, hr255, crop_border=scale))
        ssims.append(ssim_y(sr255, hr255, crop_border=scale))
        if i < trainer.cfg.log.val_images:
            strip = _strip(item, sr255, scale)
            _write_png(strip, val_dir / f"step_{trainer.step:09d}_{item.name}.png")
            logger.image(f"val/{item.name}", trainer.step, strip)
    net.train(was_training)
    finite = [p for p in psnrs if math.isfinite(p)]
    return {
        "psnr_y": sum(finite) / max(1, len(finite)),
        "ssim_y": sum(ssims) / len(ssims),
    }


def validation_due(trainer: Trainer) -> bool:
    """Every log.val_every steps and at the last one, when there is a validation set."""
    every, last = trainer.cfg.log.val_every, trainer.cfg.train.steps
    return bool(trainer.val) and (trainer.step % every == 0 or trainer.step == last)


def validate_and_track(trainer: Trainer, logger: RunLogger) -> dict[str, float]:
    """Validate, log the metrics, and keep the weights as best.pt when the PSNR improved."""
    metrics = validate(trainer, logger)
    logger.scalars(trainer.step, metrics, prefix="val")
    improved = trainer.best_psnr is None or metrics["psnr_y"] > trainer.best_psnr
    if improved:
        trainer.best_psnr, trainer.best_step = metrics["psnr_y"], trainer.step
        save_best(trainer)
    logger.message(
        f"step {trainer.step}: val PSNR-Y {metrics['psnr_y']:.3f} dB, SSIM-Y "
        f"{metrics['ssim_y']:.4f}" + (" (best)" if improved else
                                       f" (best {trainer.best_psnr:.3f})")
    )
    return metrics


def save_best(trainer: Trainer) -> Path:
    """checkpoints/best.pt: the generator (and EMA) of the best validation so far."""
    state = {
        "kind": "best", "step": trainer.step, "config": trainer.cfg.to_toml(),
        "generator": trainer.g.state_dict(),
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "counters": {"best_psnr": trainer.best_psnr, "best_step": trainer.step},
    }
    return ckpt.atomic_torch_save({"format": ckpt.FORMAT, "version": ckpt.VERSION, **state},
                                  trainer.run_dir / "checkpoints" / "best.pt")


def _strip(item: ValImage, sr255: torch.Tensor, scale: int) -> torch.Tensor:
    """LR (nearest-neighbour enlarged) | SR | HR, as a (3, H, 3W) uint8 tensor."""
    lr = item.lr[0].mul(255).round().clamp(0, 255)
    lr_big = lr.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return torch.cat([lr_big, sr255, item.hr.float()], dim=2).to(torch.uint8).cpu()


def _write_png(chw: torch.Tensor, path: Path) -> None:
    from srgan.imageio import from_array, write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(from_array(chw.permute(1, 2, 0).contiguous().numpy()), path, overwrite=True)

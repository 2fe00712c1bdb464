"""Validation during training: the metrics it reports against the metrics' own functions."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_generator

from srgan.data import ValImage
from srgan.metrics import psnr_y
from srgan.niqe import niqe
from srgan.train.validation import validate


def _val_image(name: str, size: int, seed: int) -> ValImage:
    g = torch.Generator().manual_seed(seed)
    hr = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
    lr = torch.rand(1, 3, size // 4, size // 4, generator=g)
    return ValImage(name, lr, hr)


def test_validate_reports_niqe_of_its_outputs_when_asked():
    net = tiny_generator()
    val = [_val_image("big", 128, 0), _val_image("small", 64, 1)]  # 64 - 8 < one 96 block
    plain = validate(net, val, step=0)
    assert set(plain) == {"psnr_y", "ssim_y"}
    metrics = validate(net, val, step=0, niqe=True)
    with torch.no_grad():
        srs = [net.to_unit(net(v.lr)).clamp(0, 1).mul(255).round()[0] for v in val]
    # NIQE over the image large enough for a block only; PSNR over both, as before
    assert metrics["niqe"] == pytest.approx(niqe(srs[0], crop_border=4), rel=1e-6)
    psnrs = [psnr_y(sr, v.hr.float(), crop_border=4) for sr, v in zip(srs, val, strict=True)]
    assert metrics["psnr_y"] == plain["psnr_y"] == pytest.approx(sum(psnrs) / 2)


def test_stage_2_configs_validate_with_niqe():
    from srgan.train.config import load_config

    for name in ("srgan_real_x4", "srgan_mse_x4"):
        assert load_config(name).log.val_niqe, name
    assert not load_config("srresnet_x4").log.val_niqe

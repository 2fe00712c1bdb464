"""cosine_restarts: the open-ended campaign schedule (train/schedule.py)."""

from __future__ import annotations

import pytest

from srgan.train.config import ConfigError, load_config
from srgan.train.schedule import lr_at


def test_cosine_restarts_segments_end_low_and_restart_lower():
    cfg = load_config("srresnet_x4", [
        "train.schedule=cosine_restarts", "train.lr=1e-3", "train.warmup_steps=10",
        "train.period=100", "train.period_mult=2", "train.restart_decay=0.5",
        "train.min_lr=1e-6",
    ]).train
    assert lr_at(cfg, 0) == pytest.approx(1e-4)  # warmup 1/10
    assert lr_at(cfg, 10) == pytest.approx(1e-3)  # segment 0 starts at the peak
    assert lr_at(cfg, 60) == pytest.approx(1e-6 + (1e-3 - 1e-6) * 0.5)  # its middle
    assert lr_at(cfg, 109) < 2e-6  # ends at min_lr
    assert lr_at(cfg, 110) == pytest.approx(5e-4)  # segment 1: half the peak, 200 steps
    assert lr_at(cfg, 210) == pytest.approx(1e-6 + (5e-4 - 1e-6) * 0.5)
    assert lr_at(cfg, 310) == pytest.approx(2.5e-4)  # segment 2 starts after 100 + 200
    segment = [lr_at(cfg, s) for s in range(110, 310)]
    assert all(a >= b for a, b in zip(segment, segment[1:], strict=False))


def test_cosine_restarts_is_open_ended():
    cfg = load_config("srresnet_x4", ["train.schedule=cosine_restarts", "train.period=1000",
                                      "train.lr=2e-4"]).train
    lrs = [lr_at(cfg, s) for s in (10**6 - 1000, 10**6 + 500, 10**7)]
    assert all(0 < lr <= 2e-4 for lr in lrs)


@pytest.mark.parametrize("override", ["train.period=0", "train.period_mult=0.5",
                                      "train.restart_decay=0", "train.restart_decay=1.5"])
def test_cosine_restarts_settings_checked(override):
    with pytest.raises(ConfigError):
        load_config("srresnet_x4", ["train.schedule=cosine_restarts", override])


def test_adversarial_ramp_rises_linearly_then_stays_at_one():
    from srgan.train.schedule import adversarial_ramp

    assert adversarial_ramp(0, 0) == 1.0
    assert [adversarial_ramp(4, s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    with pytest.raises(ConfigError, match="loss.adversarial_warmup"):
        load_config("srgan_mse_x4", ["loss.adversarial_warmup=-1"])

"""discriminator.input = "highpass": stage 2's discriminator judges only the detail of real and
generated images alike (x - gaussian_blur(x)), in D's own step and in G's adversarial and
feature-matching terms; the default leaves D's inputs, and every loss, as they were."""

from __future__ import annotations

import re
import shutil

import pytest
import torch
from helpers import TINY, cli, tiny_config
from test_train_resume import assert_same_state

from srgan.device import TorchrunEnv
from srgan.losses import highpass
from srgan.train.checkpoint import list_checkpoints, load_checkpoint
from srgan.train.config import ConfigError, load_config
from srgan.train.loop import Trainer
from srgan.train.run import run_training

pytestmark = pytest.mark.usefixtures("one_thread")

CROP = 24
SHORT = ["train.steps=3", "log.every=1", f"data.crop={CROP}", "log.val_every=1000",
         "train.amp=none"]


def d_inputs_of_one_step(image_dirs, tmp_path, *sets: str):
    """One stage-2 step on a fixed batch: (what D's first layer received, in order, the
    generator's output, the HR batch in [-1, 1], the stage)."""
    cfg = tiny_config(image_dirs, *SHORT, *sets, config="srgan_mse_x4")
    trainer = Trainer(cfg, tmp_path / "run", TorchrunEnv(), torch.device("cpu"))
    seen, made = [], []
    d, g = trainer.state.d, trainer.state.g
    d.features[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    g.register_forward_hook(lambda m, args, out: made.append(out.detach().clone()))
    gen = torch.Generator().manual_seed(1)
    hr = torch.rand(4, 3, CROP, CROP, generator=gen)
    lr_img = torch.rand(4, 3, CROP // 4, CROP // 4, generator=gen)
    trainer.stage.step(lr_img, hr)
    assert len(made) == 1
    return seen, made[0], g.from_unit(hr), trainer.stage


@pytest.mark.parametrize("fm", [0.0, 0.1])  # D's plain forward, and the feature-matching pass
def test_highpass_discriminator_sees_exactly_the_detail_of_real_and_fake(image_dirs, tmp_path,
                                                                         fm):
    seen, sr, hr, stage = d_inputs_of_one_step(
        image_dirs, tmp_path, "discriminator.input=highpass", "discriminator.highpass_sigma=2",
        f"loss.feature_matching={fm}")
    real, fake = highpass(hr, 2.0), highpass(sr, 2.0)
    # G's step (fake, with fm also real), then D's step: real, then fake
    expected = [fake, real, real, fake] if fm else [fake, real, fake]
    assert len(seen) == len(expected)
    for i, (got, want) in enumerate(zip(seen, expected, strict=True)):
        assert torch.equal(got, want), i
    assert not torch.allclose(seen[-1], sr)
    # a flat colour and a shift of colour give D nothing to judge
    flat = torch.full((2, 3, CROP, CROP), 0.37)
    flat[1, 1] = -0.8
    assert stage.d_input(flat).abs().max() < 1e-6
    torch.testing.assert_close(stage.d_input(hr + 0.25), stage.d_input(hr), atol=1e-6, rtol=0)


def test_the_default_discriminator_sees_the_images_and_trains_as_before(image_dirs, tmp_path):
    seen, sr, hr, _ = d_inputs_of_one_step(image_dirs, tmp_path / "d")
    assert len(seen) == 3
    for got, want in zip(seen, [sr, hr, sr], strict=True):
        assert torch.equal(got, want)

    def losses(name: str, *sets: str) -> list[dict]:
        cfg = tiny_config(image_dirs, *SHORT, *sets, config="srgan_mse_x4")
        history = run_training(cfg, tmp_path / name).history
        return [{k: v for k, v in h.items() if k != "patches_per_s"} for h in history]

    default = losses("default")
    # the sigma means nothing to the default: the same bits
    assert losses("image", "discriminator.input=image",
                  "discriminator.highpass_sigma=3") == default
    changed = losses("highpass", "discriminator.input=highpass")
    assert changed[0]["content_mse"] == default[0]["content_mse"]  # same init, same batch
    assert [h["d_loss"] for h in changed] != [h["d_loss"] for h in default]


def test_a_highpass_run_resumes_bit_exactly(image_dirs, tmp_path):
    sets = ["train.steps=4", "log.ckpt_every=2", "log.keep=5", f"data.crop={CROP}",
            "log.val_every=1000", "loss.feature_matching=0.1", "discriminator.input=highpass"]
    run_training(tiny_config(image_dirs, *sets, config="srgan_mse_x4"), tmp_path / "whole")
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    last = tmp_path / "cut" / "checkpoints" / "step_000000004.pt"
    last.unlink()
    assert list_checkpoints(last.parent)[-1].name == "step_000000002.pt"
    cfg = load_config(tmp_path / "cut" / "config.toml")
    assert cfg.discriminator.input == "highpass"  # the run folder's config keeps the option
    assert run_training(cfg, tmp_path / "cut", resume=True).finished
    assert_same_state(load_checkpoint(tmp_path / "whole" / "checkpoints" / last.name),
                      load_checkpoint(last))


@pytest.mark.parametrize("override, message", [
    ("discriminator.input=lowpass",
     "discriminator.input: one of ('image', 'highpass') (got 'lowpass')"),
    ("discriminator.highpass_sigma=0", "discriminator.highpass_sigma: > 0 and at most 32"),
    ("discriminator.highpass_sigma=-1.5", "discriminator.highpass_sigma: > 0 and at most 32"),
    ("discriminator.highpass_sigma=1000", "discriminator.highpass_sigma: > 0 and at most 32"),
    ("discriminator.highpass_sigma=nan", "discriminator.highpass_sigma: expected a finite"),
    ("discriminator.highpass_sigma=wide", "discriminator.highpass_sigma: expected a finite"),
])
def test_bad_discriminator_input_values_are_one_line_config_errors(image_dirs, tmp_path,
                                                                   override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("srgan_mse_x4", [override])
    train, val = image_dirs
    sets = [*TINY, f"data.train=[{train}]", f"data.val={val}", override]
    res = cli("train", "srgan_mse_x4", "--run-dir", str(tmp_path / "r"),
              *[a for s in sets for a in ("--set", s)])
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "discriminator." in lines[0]
    assert not (tmp_path / "r").exists()

"""Stage 2 (SRGAN): alternating G/D updates, init from stage 1, VGG and offline variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import read_log, tiny_config
from safetensors.torch import save_file

from srgan.device import TorchrunEnv
from srgan.nets import VGGFeatures
from srgan.train.config import ConfigError
from srgan.train.loop import Trainer
from srgan.train.run import run_training
from srgan.weights import load_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_srgan_mse_lowers_its_content_loss_on_any_crop_size(image_dirs, tmp_path):
    # 24px crops: the discriminator is not tied to the paper's 96
    cfg = tiny_config(image_dirs, "train.steps=50", "train.lr=3e-3", "log.every=10",
                      "data.crop=24", "log.val_every=1000", config="srgan_mse_x4")
    result = run_training(cfg, tmp_path / "gan")
    assert result.finished
    content = [h["content_mse"] for h in result.history]
    assert np.mean(content[-2:]) < 0.8 * content[0], content
    last = result.history[-1]
    for key in ("loss", "adv", "d_loss", "d_real", "d_fake"):
        assert np.isfinite(last[key]), key
    assert 0 < last["d_real"] < 1 and 0 < last["d_fake"] < 1
    assert last["loss"] == pytest.approx(last["content_mse"] + 1e-3 * last["adv"], rel=1e-3)
    records = [r for r in read_log(tmp_path / "gan") if "train/d_loss" in r]
    assert records and "train/adv" in records[0]


def test_stage2_starts_from_a_stage1_run(image_dirs, tmp_path):
    stage1 = tmp_path / "stage1"
    run_training(tiny_config(image_dirs, "train.steps=3"), stage1)
    init = load_generator(stage1 / "generator.safetensors").net
    cfg = tiny_config(image_dirs, f"model.init={stage1}", config="srgan_mse_x4")
    trainer = Trainer(cfg, tmp_path / "s2", TorchrunEnv(), torch.device("cpu"))
    for k, v in init.state_dict().items():
        assert torch.equal(trainer.state.g.state_dict()[k], v), k
    wrong = tiny_config(image_dirs, f"model.init={stage1}", "model.channels=16",
                        config="srgan_mse_x4")
    with pytest.raises(ConfigError, match="model.init"):
        Trainer(wrong, tmp_path / "s3", TorchrunEnv(), torch.device("cpu"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no generator.safetensors"):
        Trainer(tiny_config(image_dirs, f"model.init={empty}", config="srgan_mse_x4"),
                tmp_path / "s4", TorchrunEnv(), torch.device("cpu"))


def test_vgg_content_and_feature_matching_are_logged(image_dirs, tmp_path):
    torch.manual_seed(3)
    state = VGGFeatures("vgg22", weights=None).state_dict()
    vgg = tmp_path / "vgg_part.safetensors"
    save_file({k: v for k, v in state.items() if k.startswith("features.")}, str(vgg))
    cfg = tiny_config(image_dirs, "train.steps=4", "log.every=2", f"loss.vgg_weights={vgg}",
                      "loss.content={vgg22=1.0}", "loss.feature_matching=0.1",
                      config="srgan_x4")
    result = run_training(cfg, tmp_path / "vgg")
    last = result.history[-1]
    assert {"content_vgg22", "content_vgg22_raw", "pixel_mse", "fm", "adv"} <= set(last)
    assert last["content_vgg22"] == pytest.approx(last["content_vgg22_raw"] / 12.75**2, rel=1e-4)


def test_vgg_run_without_weights_fails_at_start(tmp_path):
    from srgan.commands.train import train

    # the training folder does not exist: the VGG check must come before any data loading
    res = CliRunner().invoke(train, [
        "srgan_x4", "--set", f"loss.vgg_weights={tmp_path}/absent.pth",
        "--set", f"data.train=[{tmp_path}/not_decoded_yet]", "--run-dir", str(tmp_path / "run")])
    assert res.exit_code == 1, res.output
    assert "ImageNet VGG19 weights are needed" in res.output
    assert "srgan_mse_x4" in res.output and "Traceback" not in res.output


def test_adversarial_warmup_scales_the_adversarial_term_in_the_loss(image_dirs, tmp_path):
    # log.every=1: each record is one step, so its loss shows that step's weight exactly
    cfg = tiny_config(image_dirs, "train.steps=4", "log.every=1", "data.crop=24",
                      "loss.adversarial=0.5", "loss.adversarial_warmup=4",
                      "log.val_every=1000", config="srgan_mse_x4")
    history = run_training(cfg, tmp_path / "warm").history
    assert len(history) == 4
    for step, h in enumerate(history):
        weight = 0.5 * (step + 1) / 4  # 1/4, 2/4, 3/4, then the full weight
        assert h["loss"] == pytest.approx(h["content_mse"] + weight * h["adv"], rel=1e-4), step


def test_artifact_and_flat_terms_are_logged_and_weighted_in_the_loss(image_dirs, tmp_path):
    cfg = tiny_config(image_dirs, "train.steps=3", "log.every=1", "data.crop=24",
                      "train.ema=0.9", "loss.artifacts=2.0", "loss.flat_mse=3.0",
                      "log.val_every=1000", config="srgan_mse_x4")
    history = run_training(cfg, tmp_path / "ldl").history
    assert any(h["artifacts"] > 0 for h in history)  # from the second step the EMA differs
    for h in history:
        assert h["flat"] > 0
        expected = (h["content_mse"] + 1e-3 * h["adv"] + 2.0 * h["artifacts"]
                    + 3.0 * h["flat"])
        assert h["loss"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ConfigError, match="loss.artifacts"):
        tiny_config(image_dirs, "train.ema=0", "loss.artifacts=1", config="srgan_mse_x4")


def test_discriminator_antialias_reaches_the_network(image_dirs, tmp_path):
    from srgan.nets.discriminator import BlurConv2d

    for flag, count in (("false", 0), ("true", 4)):  # the paper's four stride-2 convs
        cfg = tiny_config(image_dirs, f"discriminator.antialias={flag}", config="srgan_mse_x4")
        trainer = Trainer(cfg, tmp_path / flag, TorchrunEnv(), torch.device("cpu"))
        assert sum(isinstance(m, BlurConv2d) for m in trainer.state.d.modules()) == count


def test_model_freeze_keeps_those_generator_weights_fixed(image_dirs, tmp_path):
    cfg = tiny_config(image_dirs, "train.steps=2", "data.crop=24", "log.val_every=1000",
                      "model.freeze=[\"upsample\", \"tail\"]", config="srgan_mse_x4")
    trainer = Trainer(cfg, tmp_path / "frozen", TorchrunEnv(), torch.device("cpu"))
    before = {k: v.clone() for k, v in trainer.state.g.state_dict().items()}
    result = run_training(cfg, tmp_path / "run")
    after = load_generator(tmp_path / "run" / "generator.safetensors").net.state_dict()
    assert result.finished
    for k, v in before.items():
        same = torch.equal(after[k], v)
        assert same == k.startswith(("upsample", "tail")) or "running" in k or "num_batches" in k, k
    wrong = tiny_config(image_dirs, "model.freeze=[\"upsampel\"]", config="srgan_mse_x4")
    with pytest.raises(ConfigError, match="upsampel.*upsample"):
        Trainer(wrong, tmp_path / "wrong", TorchrunEnv(), torch.device("cpu"))

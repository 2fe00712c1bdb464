"""SRGAN losses: pixel and VGG content terms, adversarial BCE, feature matching."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from srgan.losses import (
    ContentLoss,
    discriminator_features,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from srgan.nets import Discriminator, VGGFeatures, VGGWeightsMissing


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors; threads only add contention on a busy machine
    yield
    torch.set_num_threads(before)


@pytest.fixture
def pair():
    torch.manual_seed(0)
    return torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """Random VGG19 weights up to conv3_3 in torchvision's layout (a stand-in for ImageNet's)."""
    torch.manual_seed(1)
    state = VGGFeatures("vgg33", weights=None).state_dict()
    path = tmp_path_factory.mktemp("vgg") / "vgg19_part.safetensors"
    save_file({k: v for k, v in state.items() if k.startswith("features.")}, str(path))
    return path


def test_pixel_terms_and_weighted_sum(pair):
    sr, hr = pair
    total, parts = ContentLoss({"mse": 1.0})(sr, hr)
    assert total.item() == pytest.approx(torch.mean((sr - hr) ** 2).item(), rel=1e-6)
    total, parts = ContentLoss({"mse": 0.5, "l1": 2.0})(sr, hr)
    assert parts["l1"].item() == pytest.approx(torch.mean((sr - hr).abs()).item(), rel=1e-6)
    assert total.item() == pytest.approx(0.5 * parts["mse"].item() + 2 * parts["l1"].item())
    assert ContentLoss({"mse": 1.0})(hr, hr)[0].item() == 0


def test_vgg_terms_share_one_network_and_scale_quadratically(pair, vgg_file):
    sr, hr = pair
    loss = ContentLoss({"vgg22": 1.0, "vgg33_prerelu": 0.5}, vgg_scale=0.1,
                       vgg_weights=str(vgg_file))
    assert loss.uses_vgg and loss.vgg is not None
    total, parts = loss(sr, hr)
    for name in ("vgg22", "vgg33_prerelu"):
        ref = VGGFeatures(name, weights=vgg_file)  # the same layer computed on its own
        raw = F.mse_loss(ref((sr + 1) / 2), ref((hr + 1) / 2))
        assert parts[f"{name}_raw"].item() == pytest.approx(raw.item(), rel=1e-5)
        assert parts[name].item() == pytest.approx(0.01 * raw.item(), rel=1e-5)  # s^2 = 0.01
    expected = parts["vgg22"].item() + 0.5 * parts["vgg33_prerelu"].item()
    assert total.item() == pytest.approx(expected, rel=1e-6)
    # gradients reach SR, and VGG stays frozen
    sr = sr.clone().requires_grad_(True)
    loss(sr, hr)[0].backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_missing_vgg_weights_say_what_to_do(tmp_path):
    with pytest.raises(VGGWeightsMissing, match="srgan_mse_x4"):
        ContentLoss({"vgg54": 1.0}, vgg_weights=str(tmp_path / "absent.pth"))
    ContentLoss({"mse": 1.0}, vgg_weights=str(tmp_path / "absent.pth"))  # pixel only: no VGG


def test_adversarial_losses_are_the_papers_bce():
    logits = torch.tensor([-2.0, 0.0, 3.0])
    expected = -torch.log(torch.sigmoid(logits)).mean()
    assert generator_adversarial_loss(logits).item() == pytest.approx(expected.item(), rel=1e-6)
    real, fake = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 0.5])
    d = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    assert discriminator_loss(real, fake).item() == pytest.approx(d.item(), rel=1e-6)
    assert (discriminator_loss(real, None) + discriminator_loss(None, fake)).item() == (
        pytest.approx(d.item(), rel=1e-6))
    with pytest.raises(ValueError):
        discriminator_loss()
    # bf16 logits are scored in float32
    assert generator_adversarial_loss(logits.bfloat16()).dtype == torch.float32


def test_discriminator_features_and_feature_matching():
    torch.manual_seed(2)
    disc = Discriminator(base_channels=4).eval()
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    logits, feats = discriminator_features(disc, x)
    torch.testing.assert_close(logits, disc(x))
    assert len(feats) == 8
    assert feature_matching_loss(feats, feats).item() == 0
    _, other = discriminator_features(disc, y)
    xr = x.clone().requires_grad_(True)
    yr = y.clone().requires_grad_(True)
    fm = feature_matching_loss(discriminator_features(disc, xr)[1],
                               discriminator_features(disc, yr)[1])
    assert fm.item() > 0
    fm.backward()
    assert xr.grad is not None and yr.grad is None  # the real side is a constant

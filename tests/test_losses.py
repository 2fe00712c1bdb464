"""SRGAN losses: pixel and VGG content terms, adversarial BCE, feature matching, the LDL
artefact map."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from srgan.losses import (
    ContentLoss,
    artifact_loss,
    artifact_map,
    discriminator_features,
    discriminator_loss,
    feature_matching_loss,
    flat_mse_loss,
    flat_region_weight,
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


def _artifact_map_by_windows(hr, sr, ema, k=7):
    """The map written the slow, obvious way: unbiased variance over each reflect-padded window."""
    to01 = lambda t: (t + 1) / 2  # noqa: E731
    res = (to01(hr) - to01(sr)).abs().sum(1, keepdim=True)
    res_ema = (to01(hr) - to01(ema)).abs().sum(1, keepdim=True)
    p = k // 2
    win = F.pad(res, (p, p, p, p), mode="reflect").unfold(2, k, 1).unfold(3, k, 1)
    local = win.reshape(*win.shape[:4], -1).var(dim=-1)
    image = res.reshape(res.shape[0], -1).var(dim=1).reshape(-1, 1, 1, 1) ** 0.2
    return image * local * (res >= res_ema)


def test_artifact_map_matches_windowed_variance_and_marks_noise_not_flat_shifts():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 32, 40, generator=g) * 2 - 1
    sr = hr.clone()
    sr[:, :, 8:20, 8:24] += 0.3 * torch.randn(2, 3, 12, 16, generator=g)  # unstable texture
    sr[:, :, 24:, :] += 0.2  # a flat shift: large residual, no local variance
    ema = hr + 0.01 * torch.randn(hr.shape, generator=g)
    m = artifact_map(hr, sr, ema)
    torch.testing.assert_close(m, _artifact_map_by_windows(hr, sr, ema), rtol=1e-4, atol=1e-7)
    assert m.shape == (2, 1, 32, 40) and not m.requires_grad
    assert m[:, :, 10:18, 10:22].min() > 0  # inside the noisy patch
    assert m[:, :, 28:, 4:36].max() < 1e-6  # inside the flat shift, away from its edge
    # where the EMA generator does worse, nothing is blamed on the current one
    worse = artifact_map(hr, sr, hr + 2 * (sr - hr))
    assert (worse * (sr != hr).any(1, keepdim=True)).max() == 0


def test_artifact_loss_pulls_only_the_marked_pixels_towards_hr():
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(1, 3, 24, 24, generator=g) * 2 - 1
    sr = hr.clone()
    sr[:, :, :12] += 0.3 * torch.randn(1, 3, 12, 24, generator=g)
    sr[:, :, 12:] += 0.2
    sr.requires_grad_(True)
    loss = artifact_loss(hr, sr, hr.clone())
    loss.backward()
    assert loss.item() > 0
    assert sr.grad[:, :, :8].abs().sum() > 0 and sr.grad[:, :, 16:].abs().max() < 1e-9
    # in [0, 1] units: half the L1 of [-1, 1] images, weighted by the map
    expected = (artifact_map(hr, sr, hr) * (sr.detach() - hr).abs()).mean() / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_flat_region_weight_is_high_on_flat_hr_and_low_on_texture():
    g = torch.Generator().manual_seed(2)
    hr = torch.full((1, 3, 32, 32), 0.2)
    hr[:, :, :, 16:] += 0.4 * torch.rand(1, 3, 32, 16, generator=g)  # texture on the right
    w = flat_region_weight(hr)
    assert w.shape == (1, 1, 32, 32) and not w.requires_grad
    assert w[..., :12].min() > 0.99 and w[..., 20:].max() < 0.01
    # the same streak costs far more on the flat half than on the textured one
    streak = torch.zeros_like(hr)
    streak[:, :, 8::2] = 0.05
    left, right = hr.clone(), hr.clone()
    left[..., :12] += streak[..., :12]
    right[..., 20:] += streak[..., 20:]
    assert flat_mse_loss(hr, left) > 50 * flat_mse_loss(hr, right)
    expected = (flat_region_weight(hr) * (left - hr) ** 2).mean()
    assert flat_mse_loss(hr, left).item() == pytest.approx(expected.item(), rel=1e-6)

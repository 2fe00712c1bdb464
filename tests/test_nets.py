import pytest
import torch

from srgan.nets import Discriminator, SRResNet, VGGFeatures, VGGWeightsMissing
from srgan.nets.vgg import feature_layer_index, parse_layer


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_paper_srresnet_has_1_55m_parameters():
    # 9x9 head, 16 blocks, 3x3+BN, two sub-pixel blocks, 9x9 tail (Fig. 4 of the paper)
    assert count(SRResNet(scale=4)) == 1_549_462


@pytest.mark.parametrize("scale,blocks", [(2, 1), (4, 2), (8, 1)])
def test_srresnet_output_shape_per_scale(scale, blocks):
    net = SRResNet(scale=scale, num_blocks=blocks, channels=8)
    assert net(torch.rand(2, 3, 7, 9)).shape == (2, 3, 7 * scale, 9 * scale)
    assert len(net.upsample) == {2: 1, 4: 2, 8: 3}[scale]


def test_srresnet_rejects_non_power_of_two_scale():
    with pytest.raises(ValueError, match="power of two"):
        SRResNet(scale=3)


def test_output_range_round_trip():
    net = SRResNet(num_blocks=0, channels=4, output_range=(-1, 1))
    x = torch.rand(5)
    assert torch.allclose(net.to_unit(net.from_unit(x)), x)
    assert net.to_unit(torch.tensor([-1.0, 1.0])).tolist() == [0.0, 1.0]


def test_discriminator_is_the_paper_network_at_96():
    d = Discriminator()
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert d.features(torch.rand(1, 3, 96, 96)).shape == (1, 512, 6, 6)
    assert d.classifier[1].in_features == 512 * 6 * 6 and d.classifier[-1].out_features == 1


@pytest.mark.parametrize("size", [64, 96, 128, 192])
def test_discriminator_accepts_any_crop(size):
    d = Discriminator(base_channels=8)
    assert d(torch.rand(2, 3, size, size)).shape == (2,)


def test_antialiased_discriminator_has_the_paper_state_dict():
    plain, smooth = Discriminator(), Discriminator(antialias=True)
    assert plain.state_dict().keys() == smooth.state_dict().keys()
    smooth.load_state_dict(plain.state_dict())  # a plain D's checkpoint loads as it is
    x = torch.randn(2, 3, 96, 96)
    assert smooth(x).shape == (2,)


def test_blur_conv_passes_back_no_checkerboard():
    """A constant gradient through a 3x3 stride-2 conv comes back with a period-2 pattern
    (uneven overlap); through BlurConv2d it comes back flat away from the border."""
    from srgan.nets.discriminator import BlurConv2d

    torch.manual_seed(0)
    plain = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1, bias=False)
    smooth = BlurConv2d(4, 4, 3, stride=2, padding=1, bias=False)
    smooth.weight.data.copy_(plain.weight.data.abs())
    plain.weight.data.abs_()
    grads = []
    for conv in (plain, smooth):
        x = torch.zeros(1, 4, 32, 32, requires_grad=True)
        conv(x).sum().backward()
        grads.append(x.grad[0, :, 4:-4, 4:-4])
    uneven, flat = grads
    assert (uneven[:, 0::2, 0::2] - uneven[:, 1::2, 1::2]).abs().min() > 1e-3
    assert torch.allclose(flat, flat[:, :1, :1].expand_as(flat), atol=1e-5)


def test_vgg_layer_indices_match_torchvision_layout():
    # torchvision vgg19().features: conv5_4 is index 34, its ReLU 35; conv2_2's ReLU is 8
    assert feature_layer_index(5, 4) == 35
    assert feature_layer_index(5, 4, after_relu=False) == 34
    assert feature_layer_index(2, 2) == 8
    assert parse_layer("vgg54_prerelu") == (5, 4, False)
    with pytest.raises(ValueError):
        parse_layer("vgg99")


def test_vgg_features_shape_and_frozen():
    v = VGGFeatures("vgg22", weights=None)
    out = v(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 128, 16, 16)
    assert (out >= 0).all()  # after the ReLU
    assert not any(p.requires_grad for p in v.parameters())
    pre = VGGFeatures("vgg54_prerelu", weights=None)
    assert isinstance(pre.features[-1], torch.nn.Conv2d)


def test_vgg_loads_torchvision_layout_from_local_file(tmp_path):
    from safetensors.torch import save_file

    ref = VGGFeatures("vgg54", weights=None)
    state = {
        k: torch.randn_like(v) for k, v in ref.state_dict().items() if k.startswith("features")
    }
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full checkpoint: ignored
    torch.save(state, tmp_path / "vgg19.pth")
    save_file(state, str(tmp_path / "vgg19.safetensors"))
    for name in ("vgg19.pth", "vgg19.safetensors"):
        v = VGGFeatures("vgg54", weights=tmp_path / name)
        assert torch.equal(v.features[34].weight, state["features.34.weight"])


def test_vgg_missing_weights_message_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(VGGWeightsMissing) as info:
        VGGFeatures("vgg54")
    msg = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg
    assert "SRGAN_VGG19_WEIGHTS" in msg


def test_vgg_hub_cache_hash_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth").write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="sha256"):
        VGGFeatures("vgg54")

"""--denoise: the weights of the clean-photo and the real-photo model blended; 0 and 1 are the
two models exactly, values between move from one to the other."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_generator

from srgan import packaged
from srgan.inference import Upscaler
from srgan.weights import (
    ModelCard,
    ModelFileError,
    denoise_generator,
    interpolate_generators,
    list_models,
    load_generator,
    save_generator,
)


@pytest.fixture()
def pair(tmp_path, monkeypatch):
    files = []
    for i, name in enumerate(("clean", "real")):
        path = tmp_path / f"{name}.safetensors"
        save_generator(tiny_generator(seed=i), path, ModelCard(name=name))
        files.append(str(path))
    monkeypatch.setattr(packaged, "DENOISE_MODELS", tuple(files))
    return files


def _equal(a, b) -> bool:
    sa, sb = a.net.state_dict(), b.net.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_strength_0_and_1_are_the_two_models_exactly(pair):
    clean, real = (load_generator(p) for p in pair)
    assert _equal(denoise_generator(pair[0], 0.0), clean)
    assert _equal(denoise_generator(pair[0], 1.0), real)
    half = denoise_generator(pair[1], 0.5).net.state_dict()
    key = next(k for k, v in half.items() if v.is_floating_point())
    expected = (clean.net.state_dict()[key] + real.net.state_dict()[key]) / 2
    torch.testing.assert_close(half[key], expected)
    assert not _equal(denoise_generator(pair[0], 0.5), clean)
    assert "denoise 0.5" in denoise_generator(pair[0], 0.5).card.name


def test_upscaler_with_denoise_0_gives_the_clean_models_pixels(pair):
    x = torch.rand(1, 3, 12, 10)
    ref = Upscaler.from_pretrained(pair[0], precision="fp32").upscale(x)
    out = Upscaler.from_pretrained(pair[0], precision="fp32", denoise=0).upscale(x)
    assert torch.equal(ref, out)
    other = Upscaler.from_pretrained(pair[0], precision="fp32", denoise=1).upscale(x)
    assert not torch.equal(ref, other)


def test_denoise_refuses_other_models_bad_strengths_and_architectures(pair, tmp_path):
    other = tmp_path / "other.safetensors"
    save_generator(tiny_generator(seed=5), other, ModelCard(name="other"))
    with pytest.raises(ModelFileError, match="cannot be used with"):
        denoise_generator(str(other), 0.5)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="from 0 to 1"):
            denoise_generator(pair[0], bad)
    with pytest.raises(ModelFileError, match="different architectures"):
        interpolate_generators(tiny_generator(), tiny_generator(channels=4), 0.5)


@pytest.mark.skipif("srresnet_real_x4" not in list_models(), reason="not shipped")
def test_the_shipped_pair_blends():
    assert _equal(denoise_generator("srresnet_x4", 1), load_generator("srresnet_real_x4"))
    assert _equal(denoise_generator("srresnet_real_x4", 0), load_generator("srresnet_x4"))


def test_cli_denoise_names_the_strength_and_gives_the_blend(pair, tmp_path):
    from helpers import cli, write_photo
    from PIL import Image

    src = write_photo(tmp_path / "in" / "p.png", size=(12, 10))
    r = cli("upscale", src, "-o", tmp_path / "a", "-m", pair[0], "--precision", "fp32", "-q")
    assert r.exit_code == 0, r.output
    r = cli("upscale", src, "-o", tmp_path / "b", "-m", pair[0], "--denoise", "0",
            "--precision", "fp32", "-q")
    assert r.exit_code == 0, r.output
    plain = Image.open(tmp_path / "a" / "p_x4.png")
    blended = Image.open(tmp_path / "b" / "p_dn0_x4.png")
    assert plain.tobytes() == blended.tobytes()
    for bad in ("1.5", "nan", "-1"):
        r = cli("upscale", src, "-o", tmp_path / "c", "--denoise", bad)
        assert r.exit_code == 2, (bad, r.output)

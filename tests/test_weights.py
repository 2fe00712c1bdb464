import json

import pytest
import torch
from safetensors.torch import save_file

from srgan.nets import SRResNet
from srgan.weights import (
    CONFIG_KEY,
    ModelCard,
    ModelFileError,
    list_models,
    load_generator,
    read_metadata,
    save_generator,
)


def tiny(scale=4):
    torch.manual_seed(0)
    return SRResNet(scale=scale, num_blocks=2, channels=8, output_range=(0, 1)).eval()


def test_round_trip_rebuilds_from_metadata(tmp_path):
    net = tiny(scale=2)
    path = save_generator(net, tmp_path / "m.safetensors", ModelCard(name="t", training="x"))
    loaded = load_generator(path)
    assert (loaded.scale, loaded.num_blocks, loaded.channels) == (2, 2, 8)
    assert loaded.output_range == (0.0, 1.0)
    x = torch.rand(1, 3, 6, 6)
    assert torch.equal(net(x), loaded(x))
    config, card = read_metadata(path)
    assert card.name == "t" and config.scale == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_fp16_storage_loads_as_fp32(tmp_path):
    net = tiny()
    path = save_generator(net, tmp_path / "h.safetensors", dtype=torch.float16)
    loaded = load_generator(path)
    assert loaded.head[0].weight.dtype == torch.float32
    assert torch.allclose(loaded.head[0].weight, net.head[0].weight, atol=1e-3)


def _tensors(net):
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def test_metadata_that_does_not_match_tensors_is_refused(tmp_path):
    net = tiny()
    meta = {CONFIG_KEY: json.dumps({"scale": 4, "num_blocks": 3, "channels": 8})}
    save_file(_tensors(net), str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ModelFileError, match="missing"):
        load_generator(tmp_path / "bad.safetensors")
    meta = {CONFIG_KEY: json.dumps({"scale": 4, "num_blocks": 2, "channels": 16})}
    save_file(_tensors(net), str(tmp_path / "shape.safetensors"), metadata=meta)
    with pytest.raises(ModelFileError, match="shape"):
        load_generator(tmp_path / "shape.safetensors")


@pytest.mark.parametrize(
    "config",
    ['{"scale": 3}', '{"num_blocks": 100000000}', '{"channels": -1}', "[1, 2]", "{nope",
     '{"scale": 4, "evil": 1}', '{"output_range": [1, 1]}'],
)
def test_absurd_metadata_is_refused(tmp_path, config):
    save_file(_tensors(tiny()), str(tmp_path / "a.safetensors"), metadata={CONFIG_KEY: config})
    with pytest.raises(ModelFileError):
        load_generator(tmp_path / "a.safetensors")


def test_no_metadata_truncated_and_pickles_are_refused(tmp_path):
    save_file(_tensors(tiny()), str(tmp_path / "plain.safetensors"))
    with pytest.raises(ModelFileError, match="not an srgan model"):
        load_generator(tmp_path / "plain.safetensors")
    good = save_generator(tiny(), tmp_path / "good.safetensors")
    data = good.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_generator(tmp_path / "cut.safetensors")
    (tmp_path / "evil.pth").write_bytes(b"\x80\x04cos\nsystem\n.")
    with pytest.raises(ModelFileError, match="pickle"):
        load_generator(tmp_path / "evil.pth")
    with pytest.raises(ModelFileError, match="no such model"):
        load_generator("not_a_model_name")


def test_shipped_models_load():
    shipped = list_models()
    assert "srresnet_x4" in shipped
    net = load_generator("srresnet_x4")
    assert net.scale == 4 and not net.training


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(tmp_path, value):
    # issue 18 item 8: gave black images with exit status 0
    net = tiny()
    tensors = _tensors(net)
    tensors["head.0.weight"] = tensors["head.0.weight"].clone()
    tensors["head.0.weight"][0, 0, 0, 0] = value
    meta = {CONFIG_KEY: json.dumps({"scale": 4, "num_blocks": 2, "channels": 8})}
    save_file(tensors, str(tmp_path / "nan.safetensors"), metadata=meta)
    with pytest.raises(ModelFileError, match="head.0.weight has NaN or infinite"):
        load_generator(tmp_path / "nan.safetensors")


@pytest.mark.parametrize("rng", [[0, 1e30], [-1e30, 1e30], [0, 1e-9], [1e6, 1e6 + 1]])
def test_absurd_output_range_is_refused(tmp_path, rng):
    # issue 18 item 8: an output_range of (0, 1e30) made every image black, exit status 0
    meta = {CONFIG_KEY: json.dumps({"num_blocks": 2, "channels": 8, "output_range": rng})}
    save_file(_tensors(tiny()), str(tmp_path / "r.safetensors"), metadata=meta)
    with pytest.raises(ModelFileError, match="plausible pixel range"):
        load_generator(tmp_path / "r.safetensors")
    for fine in ([0, 255], [-1, 1], [0, 1]):
        meta = {CONFIG_KEY: json.dumps({"num_blocks": 2, "channels": 8, "output_range": fine})}
        save_file(_tensors(tiny()), str(tmp_path / "ok.safetensors"), metadata=meta)
        assert load_generator(tmp_path / "ok.safetensors").output_range == tuple(fine)


def test_save_generator_can_refuse_to_replace(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        save_generator(tiny(), path, overwrite=False)
    assert path.read_bytes() == b"mine"

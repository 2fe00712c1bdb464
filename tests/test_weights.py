"""Model files (srgan.weights): self-describing safetensors, shipped models, and files that
attack the loaders (pickles that would run code, lying headers, absurd metadata)."""

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import REPO, cli, tiny_generator, write_random_png
from safetensors.torch import save_file

from srgan.nets import SRResNet
from srgan.weights import (
    CARD_KEY,
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
    model = load_generator(path)
    loaded = model.net
    assert (loaded.scale, loaded.num_blocks, loaded.channels) == (2, 2, 8)
    assert model.scale == 2 and model.config.num_blocks == 2 and model.card.training == "x"
    assert loaded.output_range == (0.0, 1.0)
    x = torch.rand(1, 3, 6, 6)
    assert torch.equal(net(x), loaded(x))
    config, card = read_metadata(path)
    assert card.name == "t" and config.scale == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_fp16_storage_loads_as_fp32(tmp_path):
    net = tiny()
    path = save_generator(net, tmp_path / "h.safetensors", dtype=torch.float16)
    loaded = load_generator(path).net
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
    model = load_generator("srresnet_x4")
    assert model.scale == model.net.scale == 4 and not model.net.training
    assert model.card.name == "srresnet_x4" and model.size.minimum == 1


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
        assert load_generator(tmp_path / "ok.safetensors").net.output_range == tuple(fine)


def test_save_generator_can_refuse_to_replace(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        save_generator(tiny(), path, overwrite=False)
    assert path.read_bytes() == b"mine"


# --------------------------------------------------------------------------- model files


class _Evil:
    """Unpickling this runs code: it writes a marker file (a real payload would do worse)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def evil_files(folder: Path, marker: Path) -> dict[str, Path]:
    """Pickles that would run code: raw pickles and torch-zip checkpoints, under the names a
    user might be handed (.pth, .pt, .ckpt, .bin, and one disguised as .safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    raw = pickle.dumps({"state_dict": _Evil(marker)}, protocol=2)
    for name in ("raw.pth", "raw.ckpt", "disguised.safetensors", "model.bin"):
        (folder / name).write_bytes(raw)
        files[name] = folder / name
    for name in ("zip.pt", "vgg19.pth"):
        torch.save({"features.0.weight": torch.zeros(1), "evil": _Evil(marker)}, folder / name)
        files[name] = folder / name
    return files


def test_the_evil_files_really_run_code_when_unpickled(tmp_path):
    """The payloads are live (else the refusal tests below could not fail)."""
    marker = tmp_path / "ran"
    files = evil_files(tmp_path / "evil", marker)
    pickle.loads(files["raw.pth"].read_bytes())
    assert marker.read_text() == "pwned"
    marker.unlink()
    torch.load(files["zip.pt"], weights_only=False)
    assert marker.exists()


def test_malicious_pickles_are_refused_everywhere_without_running(tmp_path, tiny_model_path):
    from srgan.nets.vgg import VGGFeatures, load_vgg19_state_dict
    from srgan.train import checkpoint as ckpt

    marker = tmp_path / "ran"
    files = evil_files(tmp_path / "evil", marker)
    for name, path in files.items():
        with pytest.raises(ModelFileError, match=str(path)):
            load_generator(path)
        assert not marker.exists(), name
    img = write_random_png(tmp_path / "a.png")
    r = cli("upscale", img, "-o", tmp_path / "out", "-m", files["zip.pt"], "-q")
    assert r.exit_code == 1 and "pickle-based checkpoints are not loaded" in r.output
    assert not (tmp_path / "out").exists()
    r = cli("benchmark", "-m", files["raw.pth"], "--data", tmp_path, "-o", tmp_path / "b",
            "--no-lpips", "-q")
    assert r.exit_code == 1 and "pickle" in r.output
    # VGG weights go through torch.load(weights_only=True): refused before any code runs
    for path in (files["vgg19.pth"], files["raw.pth"], files["disguised.safetensors"]):
        with pytest.raises(Exception, match="(?i)weights only|unsupported|header|pickle"):
            load_vgg19_state_dict(path)
        with pytest.raises(Exception):  # noqa: B017 - any refusal; the point is the marker
            VGGFeatures("vgg22", weights=path)
        assert not marker.exists()
    # training resume: a poisoned newest checkpoint is skipped, the previous one used
    run = tmp_path / "run" / "checkpoints"
    ckpt.save_checkpoint({"step": 10, "generator": {"w": torch.ones(2)}}, run, 10, keep=5)
    shutil.copy(files["zip.pt"], run / ckpt.checkpoint_name(20))
    logs: list[str] = []
    path, state = ckpt.load_latest(run, log=logs.append)
    assert path.name == ckpt.checkpoint_name(10) and state["step"] == 10
    assert len(logs) == 1 and ckpt.checkpoint_name(20) in logs[0]
    with pytest.raises(ckpt.CheckpointError, match="unreadable checkpoint"):
        ckpt.load_checkpoint(files["raw.pth"])
    r = cli("export", files["zip.pt"], "-o", tmp_path / "x.safetensors")
    assert r.exit_code == 1 and "unreadable checkpoint" in r.output
    assert not marker.exists()
    try:
        from srgan.serve.app import create_app
    except ImportError:
        return
    with pytest.raises(ModelFileError, match="pickle"):
        create_app([str(files["raw.pth"])])
    assert not marker.exists()


def _parts(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _put(path: Path, header: dict, body: bytes, length: int | None = None) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + body)
    return path


def _with_config(header: dict, config: str | None = None, card: str | None = None) -> dict:
    header = dict(header)
    meta = dict(header["__metadata__"])
    if config is not None:
        meta[CONFIG_KEY] = config
    if card is not None:
        meta[CARD_KEY] = card
    header["__metadata__"] = meta
    return header


@pytest.mark.parametrize("attack", [
    "length_2^63", "length_past_eof", "offsets_past_eof", "offsets_overlap", "shape_lies",
    "dtype_unknown", "metadata_not_strings", "config_deep_nesting", "config_infinite_scale",
    "config_infinite_output_range", "config_unknown_arch", "config_is_a_list",
    "truncated_header", "truncated_data",
])
def test_lying_safetensors_get_a_clear_error(tmp_path, tiny_model_path, attack):
    header, body = _parts(tiny_model_path)
    key = next(k for k in header if k != "__metadata__" and header[k]["shape"])
    entry = header[key]
    bad = tmp_path / "bad.safetensors"
    if attack == "length_2^63":
        _put(bad, header, body, length=2**63)
    elif attack == "length_past_eof":
        _put(bad, header, body, length=len(json.dumps(header)) + len(body) + 10)
    elif attack == "offsets_past_eof":
        _put(bad, {**header, key: {**entry, "data_offsets": [0, 2**40]}}, body)
    elif attack == "offsets_overlap":
        a, b = entry["data_offsets"]
        _put(bad, {**header, key: {**entry, "data_offsets": [a + 4, b + 4]}}, body)
    elif attack == "shape_lies":
        _put(bad, {**header, key: {**entry, "shape": [2**20, 2**20]}}, body)
    elif attack == "dtype_unknown":
        _put(bad, {**header, key: {**entry, "dtype": "F128"}}, body)
    elif attack == "metadata_not_strings":
        _put(bad, {**header, "__metadata__": {CONFIG_KEY: {"scale": 4}}}, body)
    elif attack == "config_deep_nesting":
        _put(bad, _with_config(header, "[" * 100_000 + "]" * 100_000), body)
    elif attack == "config_infinite_scale":
        _put(bad, _with_config(header, '{"scale": 1e999}'), body)
    elif attack == "config_infinite_output_range":
        _put(bad, _with_config(header, '{"scale": 4, "num_blocks": 1, "channels": 8, '
                                       '"output_range": [-1, 1e999]}'), body)
    elif attack == "config_unknown_arch":
        _put(bad, _with_config(header, '{"arch": "resnet50"}'), body)
    elif attack == "config_is_a_list":
        _put(bad, _with_config(header, "[4, 16, 64]"), body)
    elif attack == "truncated_header":
        bad.write_bytes(tiny_model_path.read_bytes()[:100])
    else:
        bad.write_bytes(tiny_model_path.read_bytes()[:-7])
    with pytest.raises(ModelFileError, match=str(bad)):
        load_generator(bad)


def test_garbage_card_does_not_stop_a_good_model(tmp_path, tiny_model_path):
    header, body = _parts(tiny_model_path)
    path = _put(tmp_path / "m.safetensors", _with_config(header, card="[" * 50_000), body)
    _, card = read_metadata(path)
    assert card.name == ""
    assert load_generator(path).scale == 4


def test_special_files_posing_as_models_are_refused(tmp_path):
    link = tmp_path / "zero.safetensors"
    link.symlink_to("/dev/zero")
    (tmp_path / "dir.safetensors").mkdir()
    os.mkfifo(tmp_path / "fifo.safetensors")
    for path in (Path("/dev/zero"), link, tmp_path / "dir.safetensors",
                 tmp_path / "fifo.safetensors"):
        with pytest.raises(ModelFileError, match="no such model file"):
            load_generator(path)  # and never blocks reading


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def test_tiny_file_claiming_a_big_network_is_refused_without_allocating(tmp_path):
    """Shown with 8 blocks x 512 channels (~230 MB if built), which is safe to try; the
    limits allow 256 x 1024 (~20 GB), which is not."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    except OSError:
        pytest.skip("cannot reset the peak RSS here")
    path = tmp_path / "big.safetensors"
    save_file({"head.0.weight": torch.zeros(1)}, str(path),
              metadata={CONFIG_KEY: json.dumps({"num_blocks": 8, "channels": 512})})
    assert path.stat().st_size < 300
    base = _peak_rss_mb()
    with pytest.raises(ModelFileError, match="missing"):
        load_generator(path)
    assert _peak_rss_mb() - base < 50  # a 226 MB network was not allocated


def test_pickled_model_advice_works_as_written(tmp_path):
    # friction: "convert it with srgan export", which refused it too
    from srgan.weights import ModelFileError, load_generator

    net = tiny_generator()
    pth = tmp_path / "foreign.pth"
    torch.save(net, pth)  # a whole pickled module: not a state dict, not a checkpoint
    with pytest.raises(ModelFileError) as info:
        load_generator(pth)
    assert "weights_only=True" in str(info.value) and "save_generator" in str(info.value)
    res = cli("export", pth, "-o", tmp_path / "x.safetensors")
    assert res.exit_code == 1 and "not an srgan training checkpoint" in res.output
    assert "save_generator" in res.output and len(res.output) < 1500
    # the recipe, run as the message writes it (with this network's shape)
    sd = tmp_path / "sd.pth"
    torch.save(net.state_dict(), sd)
    from srgan.weights import state_dict_recipe

    line = state_dict_recipe(sd).splitlines()[1].strip()
    code = line.split('"')[1].replace("SRResNet(4, 16, 64)", "SRResNet(4, 1, 8)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    loaded = load_generator(tmp_path / "sd.safetensors").net
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_the_adversarial_model_ships_beside_the_faithful_one():
    """Issue 13: srgan_mse_x4 ships, same network as srresnet_x4, its card says how it was
    trained, and it upscales to something else than srresnet_x4 does."""
    import numpy as np

    from srgan import Upscaler
    from srgan.weights import list_models, read_metadata, resolve_model

    assert {"srresnet_x4", "srgan_mse_x4"} <= set(list_models())
    gan_cfg, card = read_metadata(resolve_model("srgan_mse_x4"))
    ref_cfg, _ = read_metadata(resolve_model("srresnet_x4"))
    assert gan_cfg == ref_cfg
    assert card.extra["stage"] == "srgan" and "adversarial 0.001" in card.training
    rng = np.random.default_rng(0)
    lr = (rng.random((24, 20, 3)) * 255).astype(np.uint8)
    out = {n: np.asarray(Upscaler.from_pretrained(n, device="cpu", precision="fp32").upscale(lr),
                         dtype=np.float64) for n in ("srresnet_x4", "srgan_mse_x4")}
    assert out["srgan_mse_x4"].shape == out["srresnet_x4"].shape == (96, 80, 3)
    assert np.abs(out["srgan_mse_x4"] - out["srresnet_x4"]).mean() > 1.0

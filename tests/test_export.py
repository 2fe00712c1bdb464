"""`srgan export --format onnx|torchscript` and the ONNX Runtime backend: parity with PyTorch
on [0, 1] outputs at several sizes (dynamic height, width and batch)."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import cli, smooth_image, tiny_generator, with_bn_statistics
from PIL import Image

from srgan.cli import main
from srgan.export import ExportError, read_onnx_config
from srgan.nets import SRResNet
from srgan.train.export import load_source
from srgan.weights import GeneratorConfig, ModelCard, save_generator

SIZES = [(1, 17, 23), (2, 32, 12)]  # (batch, height, width): the graph is not fixed to one


@pytest.fixture(scope="module")
def bn_model(tmp_path_factory):
    """A small generator with non-trivial BatchNorm statistics, as a model file."""
    torch.manual_seed(5)
    net = with_bn_statistics(SRResNet(num_blocks=2, channels=16), seed=5)
    path = tmp_path_factory.mktemp("export") / "bn_x4.safetensors"
    return net, save_generator(net, path, ModelCard(name="bn_x4"))


def reference(net, x):
    with torch.no_grad():
        return net.to_unit(net(x)).clamp(0, 1)


def export(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def test_onnx_export_matches_pytorch_at_any_size(bn_model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net, model_file = bn_model
    out = tmp_path / "m.onnx"
    res = export(model_file, "-o", out, "--format", "onnx")
    assert res.exit_code == 0, res.output
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "image" and outp.name == "upscaled"
    for b, h, w in SIZES:
        x = torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(h))
        y = session.run(None, {"image": x.numpy()})[0]
        assert y.shape == (b, 3, 4 * h, 4 * w)
        assert np.abs(y - reference(net, x).numpy()).max() < 1e-3
    assert read_onnx_config(out) == GeneratorConfig.of(net)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_export_matches_pytorch_at_any_size(bn_model, tmp_path):
    net, model_file = bn_model
    out = tmp_path / "m.pt"
    res = export(model_file, "-o", out, "--format", "torchscript")
    assert res.exit_code == 0, res.output
    extra = {"srgan.config": ""}
    scripted = torch.jit.load(str(out), _extra_files=extra)
    assert GeneratorConfig.from_json(extra["srgan.config"]) == GeneratorConfig.of(net)
    for b, h, w in SIZES:
        x = torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(w))
        with torch.no_grad():
            y = scripted(x)
        assert y.shape == (b, 3, 4 * h, 4 * w)
        assert (y - reference(net, x)).abs().max() < 1e-3


def test_export_errors_are_clear(bn_model, tmp_path):
    _, model_file = bn_model
    res = export("no_such_model", "-o", tmp_path / "m.pt", "--format", "torchscript")
    assert res.exit_code == 1 and "no such model file or shipped model" in res.output
    res = export(model_file, "-o", tmp_path / "m.onnx", "--format", "onnx", "--fp16")
    assert res.exit_code == 2 and "--fp16" in res.output
    res = export(model_file, "-o", tmp_path / "m.pt", "--format", "torchscript", "--ema")
    assert res.exit_code == 1 and "run folders and checkpoints" in res.output
    res = export(model_file, "-o", tmp_path / "nope" / "m.pt", "--format", "torchscript")
    assert res.exit_code == 1 and "does not exist" in res.output
    res = export(model_file, "-o", tmp_path / "m.onnx", "--format", "tensorrt")
    assert res.exit_code == 2


def test_run_folders_and_checkpoints_load_without_a_temporary_file(bn_model, tmp_path,
                                                                    monkeypatch):
    """load_source reads a run's generator (or its EMA, or best.pt) straight from the
    checkpoint, with the model card a .safetensors export would carry."""
    import tempfile

    from srgan.train import checkpoint as ckpt
    from srgan.train.config import load_config

    net, _ = bn_model
    ema = with_bn_statistics(SRResNet(num_blocks=2, channels=16), seed=6)
    cfg = load_config("srresnet_x4", ["model.num_blocks=2", "model.channels=16"])
    state = {"step": 7, "config": cfg.to_toml(), "generator": net.state_dict(),
             "ema": ema.state_dict(), "counters": {}}
    ckpt.save_checkpoint(state, tmp_path / "run" / "checkpoints", 7, keep=2)
    monkeypatch.setattr(tempfile, "mkstemp", None)  # no temporary file on the way
    monkeypatch.setattr(tempfile, "TemporaryDirectory", None)

    for source, want in [(tmp_path / "run", net), (tmp_path / "run" / "checkpoints" /
                                                   "step_000000007.pt", net)]:
        got = load_source(source)
        assert all(torch.equal(v, want.state_dict()[k]) for k, v in got.net.state_dict().items())
        assert got.card.extra["steps"] == "7" and got.card.extra["weights"] == "raw"
    got = load_source(tmp_path / "run", ema=True)
    assert all(torch.equal(v, ema.state_dict()[k]) for k, v in got.net.state_dict().items())
    assert got.card.extra["weights"] == "ema"
    with pytest.raises(ExportError, match="no best.pt"):
        load_source(tmp_path / "run", best=True)
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(ExportError, match="no checkpoint"):
        load_source(tmp_path / "empty_run")


def test_one_export_error_for_every_export_path():
    import srgan.export.formats as formats
    import srgan.train.export as train_export

    assert ExportError is formats.ExportError is train_export.ExportError


def test_upscale_with_the_onnxruntime_backend(bn_model, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    _, model_file = bn_model
    arr = (smooth_image(20, 26) * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    outs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        res = CliRunner().invoke(main, ["upscale", str(tmp_path / "a.png"), "-o", str(out),
                                        "-m", str(model_file), "-q", "--backend", backend])
        assert res.exit_code == 0, res.output
        outs[backend] = np.asarray(Image.open(out / "a_x4.png")).astype(int)
    assert outs["torch"].shape == (80, 104, 3)
    assert np.abs(outs["torch"] - outs["onnxruntime"]).max() <= 1


# --------------------------------------------------------------------------- export
@pytest.fixture
def run_folder(tmp_path):
    from srgan.train import checkpoint as ckpt
    from srgan.train.config import load_config

    cfg = load_config("srresnet_x4", ["model.num_blocks=1", "model.channels=8"])
    run = tmp_path / "run"
    for step in (2, 4):
        ckpt.save_checkpoint({"step": step, "generator": tiny_generator().state_dict(),
                              "config": cfg.to_toml(), "kind": "step"},
                             run / "checkpoints", step, keep=5)
    return run


@pytest.mark.parametrize("fmt", ["torchscript", "safetensors", "onnx"])
def test_export_never_replaces_a_checkpoint(run_folder, fmt):
    # item 3: `-o RUN/checkpoints/<newest>.pt --format torchscript` replaced it
    newest = run_folder / "checkpoints" / "step_000000004.pt"
    before = newest.read_bytes()
    for extra in ([], ["--overwrite"]):
        res = cli("export", run_folder, "-o", newest, "--format", fmt, *extra)
        assert res.exit_code == 1 and "checkpoint" in res.output, res.output
        assert newest.read_bytes() == before
    res = cli("export", newest, "-o", newest, "--format", fmt, "--overwrite")
    assert res.exit_code == 1 and newest.read_bytes() == before


@pytest.mark.parametrize("fmt", ["torchscript", "safetensors"])
def test_export_never_replaces_a_checkpoint_anywhere(run_folder, tmp_path, fmt):
    """Another run's newest checkpoint, or a stand-alone one, is known by its content."""
    import shutil

    import torch

    other = tmp_path / "other_run"
    shutil.copytree(run_folder, other)
    name = "x.safetensors" if fmt == "safetensors" else "x.pt"
    targets = [other / "checkpoints" / "step_000000004.pt", tmp_path / "other.pt",
               tmp_path / name]
    shutil.copy(targets[0], targets[1])
    torch.save({"anything": torch.zeros(2)}, targets[2], _use_new_zipfile_serialization=False)
    for target in targets:
        before = target.read_bytes()
        res = cli("export", run_folder, "-o", target, "--format", fmt, "--overwrite")
        assert res.exit_code == 1 and "is a PyTorch checkpoint" in res.output, res.output
        assert target.read_bytes() == before
    # an earlier export of ours (TorchScript is a zip too) is replaced with --overwrite
    out = tmp_path / ("m.safetensors" if fmt == "safetensors" else "m.pt")
    assert cli("export", run_folder, "-o", out, "--format", fmt).exit_code == 0
    res = cli("export", run_folder, "-o", out, "--format", fmt, "--overwrite")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("fmt,name", [("safetensors", "m.safetensors"),
                                      ("torchscript", "m.pt")])
def test_export_keeps_an_existing_file_unless_overwrite(run_folder, tmp_path, fmt, name):
    out = tmp_path / name
    out.write_bytes(b"precious")
    res = cli("export", run_folder, "-o", out, "--format", fmt)
    assert res.exit_code == 1 and "exists" in res.output and out.read_bytes() == b"precious"
    res = cli("export", run_folder, "-o", out, "--format", fmt, "--overwrite")
    assert res.exit_code == 0, res.output
    assert out.read_bytes() != b"precious"


def test_model_card_names_every_stage2_option_that_shaped_the_weights():
    from srgan.train.config import load_config
    from srgan.train.export import model_card

    cfg = load_config("srgan_mse_x4", ["loss.feature_matching=0.05", "loss.artifacts=2",
                                       "loss.flat_mse=50", "train.ema=0.999",
                                       'model.freeze=["upsample", "tail"]'])
    training = model_card(cfg, step=1500, ema=True).training
    for part in ("adversarial 0.001", "D feature matching 0.05", "LDL artefact map 2",
                 "flat-region MSE 50", "kept fixed: upsample, tail", "1500 steps", "EMA 0.999"):
        assert part in training, part
    plain = model_card(load_config("srgan_mse_x4", []), step=3, ema=False).training
    assert "LDL" not in plain and "flat-region" not in plain and "kept fixed" not in plain


def test_model_card_names_training_folders_without_the_machines_paths():
    from srgan.train.config import load_config
    from srgan.train.export import model_card

    cfg = load_config("srresnet_x4", ["data.train=['/home/me/photos', '../data/more']"])
    training = model_card(cfg, step=3, ema=False).training
    assert "crops from photos/, more/ with" in training and "/home" not in training

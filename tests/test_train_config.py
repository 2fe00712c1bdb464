"""Training configs: packaged TOML, overrides with type checks, round trip, clear errors."""

from __future__ import annotations

import tomllib

import pytest

from srgan.train.config import (
    PAPER_VGG_SCALE,
    ConfigError,
    config_from_dict,
    load_config,
    packaged_configs,
    parse_override,
)
from srgan.train.schedule import lr_at


def test_packaged_configs_are_the_paper_recipes():
    assert {"srresnet_x4", "srgan_x4", "srgan_mse_x4"} <= set(packaged_configs())
    s1 = load_config("srresnet_x4")
    assert (s1.train.stage, s1.data.crop, s1.train.batch_size, s1.train.lr) == (
        "srresnet", 96, 16, 1e-4)
    assert s1.train.betas[0] == 0.9 and s1.loss.content == {"mse": 1.0}
    s2 = load_config("srgan_x4")
    assert s2.train.stage == "srgan" and s2.loss.content == {"vgg54": 1.0}
    assert s2.loss.vgg_scale == pytest.approx(PAPER_VGG_SCALE)
    assert s2.loss.adversarial == 1e-3 and s2.uses_vgg()
    assert s2.train.milestones == [100_000] and s2.train.steps == 200_000
    mse = load_config("srgan_mse_x4")
    assert mse.loss.content == {"mse": 1.0} and not mse.uses_vgg()


def test_overrides_are_typed():
    cfg = load_config("srresnet_x4", [
        "train.batch_size=32", "data.train=[dir1,dir2]", "train.lr=2e-4", "run.name=2024",
        "train.ema=0.999", "data.augment=false", "loss.content.vgg22=0.5",
        "train.milestones=[10, 20]", 'data.val="my set"',
    ])
    assert cfg.train.batch_size == 32 and isinstance(cfg.train.batch_size, int)
    assert cfg.data.train == ["dir1", "dir2"]
    assert cfg.train.lr == 2e-4 and cfg.train.ema == 0.999
    assert cfg.run.name == "2024"  # a str key keeps the text even if it looks like a number
    assert cfg.data.augment is False
    assert cfg.loss.content == {"mse": 1.0, "vgg22": 0.5}
    assert cfg.train.milestones == [10, 20]
    assert cfg.data.val == "my set"
    # a single folder is a one-item list; an int is accepted where a float is expected
    cfg = load_config("srresnet_x4", ["data.train=/some/dir", "train.grad_clip=1"])
    assert cfg.data.train == ["/some/dir"] and cfg.train.grad_clip == 1.0
    # content as a table, a name or a list
    assert load_config("srgan_x4", ["loss.content={mse=1.0, vgg54=0.01}"]).loss.content == {
        "mse": 1.0, "vgg54": 0.01}
    assert load_config("srgan_x4", ["loss.content=l1"]).loss.content == {"l1": 1.0}
    assert load_config("srgan_x4", ["loss.content=[vgg22,mse]"]).loss.content == {
        "vgg22": 1.0, "mse": 1.0}


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=3.5", "train.batch_size: expected int"),
    ("train.bach_size=3", "did you mean train.batch_size"),
    ("train.stage=gan", "train.stage"),
    ("data.crop=95", "data.crop"),
    ("loss.content.vgg99=1", "vgg99"),
    ("train.augment=true", "unknown config key"),
    ("data.augment=3", "data.augment: expected bool"),
    ("train.batch_size", "expected key=value"),
    ("train.betas=[0.9]", "train.betas"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config("srresnet_x4", [override])


def test_bad_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[train]\nsteps = 'many'\n")
    with pytest.raises(ConfigError, match=r"mine\.toml.*train\.steps"):
        load_config(path)
    path.write_text("[trian]\nsteps = 5\n")
    with pytest.raises(ConfigError, match=r"did you mean \[train\]"):
        load_config(path)
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "absent.toml")


def test_resolved_toml_round_trips(tmp_path):
    cfg = load_config("srgan_x4", ["loss.content={vgg54=1.0, mse=0.01}", "data.val=a\\b \"c\"",
                                   "train.lr=1e-05"])
    text = cfg.to_toml(header="resolved\nsecond line")
    back = config_from_dict(tomllib.loads(text), source=cfg.source)
    assert back == cfg
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert load_config(path).flat() == cfg.flat()


def test_control_characters_round_trip_through_the_resolved_toml(tmp_path):
    """Every control character, in values, dict keys and the header comment, stays valid TOML
    and reads back as written."""
    odd = "".join(chr(c) for c in [*range(0x20), 0x7F]) + "é\\\"'"
    cfg = load_config("srresnet_x4")
    cfg.data.val = odd
    cfg.data.train = [odd, "plain"]
    cfg.loss.content = {"mse": 1.0}
    cfg.run.name = "x\x00y\x1bz"
    text = cfg.to_toml(header=f"resolved {odd}\nsecond line")
    back = config_from_dict(tomllib.loads(text), source=cfg.source)
    assert back == cfg and back.data.val == odd and back.run.name == "x\x00y\x1bz"


def test_parse_override_values():
    assert parse_override("a.b=1") == ("a.b", 1)
    assert parse_override("a.b=1.5e-3") == ("a.b", 1.5e-3)
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=[x, y z]") == ("a.b", ["x", "y z"])
    assert parse_override("a.b=[]") == ("a.b", [])
    assert parse_override("a.b=some/path=with=equals") == ("a.b", "some/path=with=equals")


def test_lr_schedules():
    cfg = load_config("srresnet_x4", ["train.steps=100", "train.schedule=multistep",
                                      "train.milestones=[50, 80]", "train.gamma=0.5"]).train
    assert [lr_at(cfg, s) for s in (0, 49, 50, 79, 80, 99)] == pytest.approx(
        [1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5])
    cfg = load_config("srresnet_x4", ["train.steps=110", "train.schedule=cosine",
                                      "train.warmup_steps=10", "train.lr=1e-3",
                                      "train.min_lr=1e-5"]).train
    assert lr_at(cfg, 0) == pytest.approx(1e-4)  # warmup: lr * 1/10
    assert lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 10) == pytest.approx(1e-3)
    assert lr_at(cfg, 60) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert lr_at(cfg, 110) == pytest.approx(1e-5)
    values = [lr_at(cfg, s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("deep", ["[" * 5000 + "]" * 5000, "{a=" * 5000 + "}" * 5000,
                                  "[" * 300 + "]" * 300])
def test_deeply_nested_config_is_a_config_error(tmp_path, deep):
    """Nesting that exhausts Python's recursion limit (or just a silly value) is a one-line
    ConfigError naming the file, not a RecursionError traceback."""
    path = tmp_path / "deep.toml"
    path.write_text(f"[train]\nsteps = {deep}\n")
    with pytest.raises(ConfigError, match=r"deep\.toml") as info:
        load_config(path)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"train\.steps") as info:
        load_config("srresnet_x4", [f"train.steps={deep}"])
    assert len(str(info.value)) < 300


def test_unreadable_config_file_is_a_config_error(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"binary\.toml: cannot read"):
        load_config(path)


def test_deep_config_through_the_cli(tmp_path):
    from click.testing import CliRunner

    from srgan.commands.train import train

    path = tmp_path / "deep.toml"
    path.write_text("[train]\nsteps = " + "[" * 5000 + "]" * 5000 + "\n")
    result = CliRunner().invoke(train, [str(path)])
    assert result.exit_code == 1 and "nested too deeply" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_absolute_paths_pins_every_data_path(tmp_path):
    (tmp_path / "init.safetensors").write_bytes(b"")
    cfg = load_config("srgan_x4", ["data.train=[a,/abs/b]", "data.train_lr=[la,lb]",
                                   "data.val=v", "model.init=init.safetensors",
                                   "loss.vgg_weights=vgg.pth"])
    cfg.absolute_paths(tmp_path)
    assert cfg.data.train == [str(tmp_path / "a"), "/abs/b"]
    assert cfg.data.train_lr == [str(tmp_path / "la"), str(tmp_path / "lb")]
    assert cfg.data.val == str(tmp_path / "v")
    assert cfg.model.init == str(tmp_path / "init.safetensors")
    assert cfg.loss.vgg_weights == str(tmp_path / "vgg.pth")
    named = load_config("srgan_x4", ["model.init=srresnet_x4"]).absolute_paths(tmp_path)
    assert named.model.init == "srresnet_x4" and named.loss.vgg_weights == "imagenet"
    assert named.data.val == ""  # no validation stays no validation

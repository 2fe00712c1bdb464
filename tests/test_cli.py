"""srgan.cli: subcommands all in srgan.commands, loaded lazily; an unknown name is 'No such
command', a missing optional extra says which extra to install, and any other import error
surfaces instead of being hidden as a missing command."""

from __future__ import annotations

import sys
import textwrap

import click
import pytest
from click.testing import CliRunner

from srgan import cli
from srgan.cli import SUBCOMMANDS, main


@pytest.fixture
def fake_command(monkeypatch, tmp_path):
    """Register `srgan fake`, whose module runs `body` when imported."""
    def make(body: str) -> None:
        (tmp_path / "srgan_fake_cmd.py").write_text(textwrap.dedent(body) + textwrap.dedent("""
            import click

            @click.command()
            def fake():
                click.echo("ran")
            """))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, "srgan_fake_cmd", raising=False)
        monkeypatch.setitem(SUBCOMMANDS, "fake", ("srgan_fake_cmd:fake", "a test command"))
    return make


def test_unknown_command_is_no_such_command():
    res = CliRunner().invoke(main, ["upscael"])
    assert res.exit_code == 2 and "No such command 'upscael'" in res.output


def test_a_broken_import_inside_srgan_propagates(fake_command):
    fake_command("import srgan.no_such_module\n")
    res = CliRunner().invoke(main, ["fake"])
    assert isinstance(res.exception, ModuleNotFoundError)
    assert res.exception.name == "srgan.no_such_module"
    assert "No such command" not in res.output


def test_an_import_error_of_a_name_propagates(fake_command):
    fake_command("from srgan.imageio import no_such_name\n")
    res = CliRunner().invoke(main, ["fake"])
    assert isinstance(res.exception, ImportError) and "no_such_name" in str(res.exception)


@pytest.mark.parametrize("package, extra", [("fastapi", "web"), ("av", "video"),
                                            ("onnxruntime", "onnx")])
def test_a_missing_extra_names_it(fake_command, monkeypatch, package, extra):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    fake_command(f"import {package}\n")
    res = CliRunner().invoke(main, ["fake"])
    assert res.exit_code == 1, res.output
    assert f"`srgan fake` needs the package '{package}': pip install 'srgan[{extra}]'" \
        in res.output


def test_a_working_fake_command_runs(fake_command):
    fake_command("")
    res = CliRunner().invoke(main, ["fake"])
    assert res.exit_code == 0 and res.output == "ran\n"


def test_every_subcommand_lives_in_srgan_commands_and_loads():
    ctx = click.Context(main)
    for name, (target, _) in SUBCOMMANDS.items():
        assert target.startswith("srgan.commands."), name
        assert isinstance(main.get_command(ctx, name), click.Command), name


def test_shared_options_are_declared_once():
    ctx = click.Context(main)

    def option(command: str, name: str) -> click.Option:
        cmd = main.get_command(ctx, command)
        return next(p for p in cmd.params if p.name == name)

    for name in ("device", "precision", "tile"):
        up, web = option("upscale", name), option("serve", name)
        assert (up.help, up.default, up.type.name) == (web.help, web.default, web.type.name)
    assert option("upscale", "precision").type.choices == option("benchmark",
                                                                 "precision").type.choices
    assert option("benchmark", "precision").default == "fp32"  # tables: the exact path
    res = CliRunner().invoke(main, ["upscale", "x.png", "-o", "out", "--tile", "4"])
    assert res.exit_code == 2 and "--tile" in res.output


def test_an_import_error_of_srgan_itself_names_no_extra():
    assert cli.missing_extra(ImportError("x", name="srgan.x")) is None


def test_srgan_models_shows_no_machine_paths():
    # the shipped cards carried the training machine's /work/... and ../shared/... folders
    import re

    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0, res.output
    assert "srresnet_x4" in res.output and "trained:" in res.output
    assert not re.search(r"(?<![\w.])(\.\.?)?/\w", res.output), res.output
    from srgan.commands.models import without_paths

    assert without_paths("crops from /home/a/../data/train, and ../shared/x/val; docs/c.md") \
        == "crops from train/, and val/; docs/c.md"


def test_srgan_models_says_which_is_the_default_and_what_each_is_for():
    from srgan.weights import list_models

    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    heads = [line for line in lines if not line.startswith(" ")]
    assert [h.split()[0] for h in heads] == list(list_models())
    defaults = [h for h in heads if h.endswith("(the default)")]
    assert defaults == ["srresnet_real_x4  x4  16 blocks, 64 ch  (the default)"]
    for head in heads:  # each model's first line under its name: what photos it is for
        below = lines[lines.index(head) + 1]
        assert below.startswith("    for: "), below
    assert "JPEG" in lines[lines.index(defaults[0]) + 1]


@pytest.mark.parametrize("args", [["upscale", "x.png", "-o", "out", "--ext", "png"],
                                  ["benchmark", "--out", "r"], ["compare", "x.png", "--out", "r"]])
def test_old_option_spellings_are_gone(args):
    # one name per concept: --output for where results go, --format for the file type
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "No such option" in res.output, res.output

"""Every `srgan ...` command of the README and of the `--help` examples runs as written.

Each is parsed from the text, given tiny inputs where it names files (photo.jpg, holiday/,
Set5, runs/srresnet_x4, my.safetensors ...) and tiny training settings where it trains, and
run in this process; it must exit 0 with no traceback. The README runs top to bottom in one
folder, as a newcomer runs it, so a later command must not silently skip because an earlier
one wrote the same file. Commands that need what a test cannot have are left out, each for a
reason listed in SKIPS (and every rule there must still match some command).
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from helpers import REPO, TINY, make_images, smooth_uint8
from test_docs import command_blocks

from srgan.cli import main
from srgan.imageio import from_array, write_image
from srgan.weights import list_models

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_EXTS = (".mp4", ".mkv")
OUTPUT_OPTIONS = ("-o", "--out", "--output", "--run-dir")
TRAIN_SETTINGS = [*TINY, "train.steps=2"]
SETS = ("Set5", "Set14", "BSD100")


def _has_codec(name: str) -> bool:
    try:
        import av

        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 (PyAV missing, or built without the encoder)
        return False
    return True


# (rule, reason): a command (its words) matching a rule is not run
SKIPS = [
    (lambda w: w[0] == "torchrun", "torchrun: several processes, one per GPU"),
    (lambda w: w[1] == "serve", "srgan serve runs until stopped (tests/test_serve_command.py)"),
    (lambda w: w[1:3] == ["data", "download"],
     "downloads DIV2K, Set5 or Set14 from the internet (tests/test_download.py and "
     "tests/test_download_sets.py serve them on loopback)"),
    (lambda w: "cuda" in w and not torch.cuda.is_available(), "needs a CUDA GPU"),
    (lambda w: any(x.endswith(VIDEO_EXTS) or x == "clips/" for x in w)
     and not _has_codec("libx264"),
     "needs PyAV (pip install -e '.[video]')"),
    (lambda w: "libx265" in w and not _has_codec("libx265"), "PyAV's FFmpeg has no libx265"),
]


def skip_reason(words: list[str]) -> str | None:
    return next((why for rule, why in SKIPS if rule(words)), None)


def commands_of(text: str) -> list[list[list[str]]]:
    """Each command line of `text`'s code blocks as a chain of commands (split at &&), each
    a list of words; lines that are not srgan or torchrun commands are left out."""
    chains = []
    for block in command_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            if not words or words[0] not in ("srgan", "torchrun"):
                continue
            chain, current = [], []
            for w in words:
                if w == "&&":
                    chain.append(current)
                    current = []
                else:
                    current.append(w)
            chains.append([*chain, current])
    return chains


def epilog_commands() -> list[tuple[str, list[str]]]:
    """(subcommand, words) for every example in a subcommand's help and epilog."""
    ctx = click.Context(main)
    found = []

    def walk(cmd: click.Command, name: str) -> None:
        if isinstance(cmd, click.Group):
            for sub in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, sub), f"{name} {sub}")
            return
        text = "\n".join("    " + line.strip() for line in
                         f"{cmd.help or ''}\n{cmd.epilog or ''}".splitlines())
        found.extend((name, words) for chain in commands_of(text) for words in chain)

    for sub in main.list_commands(ctx):
        walk(main.get_command(ctx, sub), sub)
    return found


# --------------------------------------------------------------------------- tiny inputs
def write_rgb(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(from_array(smooth_uint8(h, w, seed)), path)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_path):
    """Tiny benchmark sets (a data root), a tiny trained run folder and a tiny model file."""
    root = tmp_path_factory.mktemp("world")
    sets = root / "sets"
    for name in SETS:
        make_images(sets / name, 2, (104, 96), seed=len(name))
    make_images(sets / "DRealSR" / "HR", 2, (64, 64), seed=3)
    for f in (sets / "DRealSR" / "HR").iterdir():
        write_rgb(sets / "DRealSR" / "LR" / f.name, 16, 16)
    make_images(sets / "RealSRSet", 2, (24, 24), seed=5)
    run_home = root / "trained"
    make_images(run_home / "photos", 4, (40, 48))
    with chdir(run_home):
        r = CliRunner().invoke(main, ["train", "srresnet_x4", "--set", "data.train=[photos]",
                                      "--set", "train.ema=0.999",  # for export --ema
                                      *sum((["--set", s] for s in TRAIN_SETTINGS), [])])
    assert r.exit_code == 0, r.output
    return {"sets": sets, "run": run_home / "runs" / "srresnet_x4", "model": tiny_model_path}


class chdir:
    def __init__(self, path: Path) -> None:
        self.path, self.old = path, None

    def __enter__(self):
        self.old = Path.cwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        os.chdir(self.old)


def make_clip(path: Path) -> None:
    """Four frames at 0, 20, 40 and 60 s with sound: long enough for --start 60."""
    from test_video import make_clip as clip

    clip(path, n=4, w=16, h=12, steps_ms=[20000, 20000, 20000, 40], audio=True)


def prepare(words: list[str], world: dict, home: Path) -> list[str]:
    """Make the inputs `words` name (in the current folder) and return the words to run:
    `~` expanded, tiny training settings added to `srgan train CONFIG`."""
    sub = words[1]
    # HR images: the model sees a quarter of them
    hr = sub in ("benchmark", "compare") and "--lr-input" not in words
    out: list[str] = []
    previous = ""
    for w in words[1:]:
        w = w.replace("~", str(home)) if w.startswith("~") else w
        p = Path(w)
        is_output = previous in OUTPUT_OPTIONS
        if previous == "--lr-dir" and not p.exists():
            hr_dir = Path(out[out.index("--data") + 1])
            for f in hr_dir.iterdir():
                write_rgb(p / f.name, 26, 24)
        elif previous in ("-m", "--model") and w.endswith(".safetensors") and not p.exists():
            shutil.copy(world["model"], p)
        elif not is_output and w.startswith("runs/") and not p.exists():
            shutil.copytree(world["run"], p)
        elif not is_output and w.startswith("model.init=runs/") and \
                not Path(w.split("=", 1)[1]).exists():
            shutil.copytree(world["run"], w.split("=", 1)[1])
        elif w.startswith("data.train=["):
            for folder in w[len("data.train=["):-1].split(","):
                if not Path(folder).exists():
                    make_images(Path(folder), 4, (40, 48))
        elif not is_output and not w.startswith("-") and not p.exists():
            if w.lower().endswith(IMAGE_EXTS):
                write_rgb(p, *((160, 192) if hr else (20, 24)))
            elif w.lower().endswith(VIDEO_EXTS):
                make_clip(p)
            elif w == "clips/":
                p.mkdir()
                make_clip(p / "a.mp4")
            elif w.endswith("/") or (sub == "benchmark" and previous == "--data"
                                     and w not in SETS):
                make_images(p, 2, (104, 96) if hr else (24, 20))
        out.append(w)
        previous = w
    if sub == "train" and "--resume" not in out:
        out += sum((["--set", s] for s in TRAIN_SETTINGS), [])
    return out


def run(words: list[str], world: dict, home: Path) -> str:
    args = prepare(words, world, home)
    r = CliRunner().invoke(main, args, env={"SRGAN_DATA_ROOT": str(world["sets"]),
                                            "HOME": str(home), "TQDM_DISABLE": "1"})
    shown = " ".join(words)
    assert r.exception is None or isinstance(r.exception, SystemExit), \
        f"{shown}: {r.exc_info and r.exc_info[1]!r}\n{r.output}"
    assert r.exit_code == 0, f"{shown} (run as {args}) failed:\n{r.output}"
    assert "Traceback" not in r.output, f"{shown}:\n{r.output}"
    return r.output


# --------------------------------------------------------------------------- tests
def test_readme_commands_run_as_written_top_to_bottom(world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran, skipped = [], []
    for chain in commands_of((REPO / "README.md").read_text(encoding="utf-8")):
        why = next((skip_reason(words) for words in chain if skip_reason(words)), None)
        if why:
            skipped.append((" ".join(chain[0]), why))
            continue
        for words in chain:
            output = run(words, world, tmp_path)
            # run in order, a command that only skips ("exists") did nothing the README says
            assert "skip:" not in output, f"{' '.join(words)}:\n{output}"
            ran.append(words)
    subs = {w[1] for w in ran}
    assert {"upscale", "train", "export", "benchmark", "compare", "models"} <= subs, subs
    assert len(ran) >= 15, (ran, skipped)


def test_help_examples_run_as_written(world, tmp_path, monkeypatch):
    examples = epilog_commands()
    assert {sub for sub, _ in examples} >= {"upscale", "train", "export", "benchmark",
                                              "compare", "serve", "data download"}
    ran = 0
    for i, (_, words) in enumerate(examples):
        if skip_reason(words):
            continue
        folder = tmp_path / f"{i:02d}"  # each example on its own
        folder.mkdir()
        monkeypatch.chdir(folder)
        run(words, world, tmp_path)
        ran += 1
    assert ran >= 20


def test_every_skip_rule_still_matches_a_documented_command():
    """SKIPS lists what is not run; a rule matching nothing would hide a stale list."""
    readme = [w for chain in commands_of((REPO / "README.md").read_text(encoding="utf-8"))
              for w in chain]
    every = readme + [w for _, w in epilog_commands()]
    always = SKIPS[:3]
    for rule, why in always:
        assert any(rule(w) for w in every), why


def test_data_train_lists_are_quoted_in_every_example():
    """zsh (macOS's shell) refuses an unquoted `data.train=[photos]` ("no matches found")."""
    import json
    import re

    texts = {p.relative_to(REPO): p.read_text(encoding="utf-8") for p in
             [REPO / "README.md", REPO / "README.fr.md", REPO / "MODELS.md",
              *sorted((REPO / "docs").glob("*.md"))]}
    notebook = json.loads((REPO / "examples" / "tour.ipynb").read_text(encoding="utf-8"))
    texts["tour.ipynb"] = "\n".join("".join(c["source"]) for c in notebook["cells"])
    ctx = click.Context(main)
    for sub in main.list_commands(ctx):
        cmd = main.get_command(ctx, sub)
        for c in [cmd, *getattr(cmd, "commands", {}).values()]:
            texts[f"srgan {c.name} --help"] = "\n".join(
                [c.help or "", c.epilog or "", *(getattr(o, "help", "") or "" for o in c.params)])
    bare = {name: re.findall(r"(?<!['\"])data\.train=\[[^]]*\]", text)
            for name, text in texts.items()}
    assert not {k: v for k, v in bare.items() if v}


def _table_decimals(text: str, french: bool) -> list[str]:
    """The decimal numbers of a README's tables, written the English way (31.33)."""
    import re

    rows = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    if french:  # 438 000 -> 438000, 28,43 -> 28.43
        rows = re.sub(r"(?<=\d)[ \u00a0\u202f](?=\d{3}\b)", "", rows).replace(",", ".")
    else:  # 438,480 -> 438480
        rows = re.sub(r"(?<=\d),(?=\d{3}\b)", "", rows)
    return sorted(re.findall(r"\d+\.\d+", rows))


def test_the_french_readme_has_the_english_ones_commands_and_numbers():
    """README.fr.md in step with README.md: the same commands in the same order (comments
    may be translated), the same layout block, the same figures in its tables."""
    en = (REPO / "README.md").read_text(encoding="utf-8")
    fr = (REPO / "README.fr.md").read_text(encoding="utf-8")
    assert commands_of(fr) == commands_of(en)
    layout = [b for b in command_blocks(en) if b.startswith("src/srgan/")]
    assert layout and layout[0] in command_blocks(fr)
    assert _table_decimals(fr, french=True) == _table_decimals(en, french=False)
    assert len(_table_decimals(en, french=False)) > 30


def test_the_command_parser_splits_chains_and_drops_comments():
    text = ("    srgan a b.png -o out/   # comment\n"
            "    srgan x && srgan y 'data.train=[p]'\n"
            "    python3 -m venv .venv\n")
    assert commands_of(text) == [[["srgan", "a", "b.png", "-o", "out/"]],
                                 [["srgan", "x"], ["srgan", "y", "data.train=[p]"]]]


def parse_only(words: list[str]) -> None:
    """Parse one `srgan ...` (or `torchrun ... -m srgan ...`) command as click would, without
    running it: unknown options, missing required ones (`upscale` without `-o`) and bad
    values raise click's usage errors."""
    args = words[words.index("srgan") + 1:] if words[0] == "torchrun" else words[1:]
    cmd: click.Command = main
    parent = click.Context(main, info_name="srgan")
    while isinstance(cmd, click.Group):
        name, sub, args = cmd.resolve_command(parent, args)
        assert sub is not None and name is not None
        parent, cmd = click.Context(sub, info_name=name, parent=parent), sub
    cmd.make_context(cmd.name, list(args), parent=parent.parent)


def test_the_docs_commands_parse_as_written():
    """docs/training.md and `export --help` showed `srgan upscale` without the required `-o`,
    docs/evaluation.md a model not shipped (srgan_x4): every srgan command of docs/*.md and
    MODELS.md is a valid command line naming models that exist (the README and --help ones
    run in full above). A `...` marks a command the text shortened on purpose."""
    known = {*list_models(), "bicubic"}
    bad = []
    for path in [*sorted((REPO / "docs").glob("*.md")), REPO / "MODELS.md"]:
        for chain in commands_of(path.read_text(encoding="utf-8")):
            for words in chain:
                shown = f"{path.name}: {' '.join(words)}"
                own = words[words.index("srgan"):]  # torchrun's own `-m srgan` aside
                models = [b for a, b in zip(own, own[1:], strict=False)
                          if a in ("-m", "--model")]
                bad += [f"{shown}: no model {m}" for m in models
                        if m not in known and "/" not in m and "." not in m]
                if "..." in words:
                    continue
                try:
                    parse_only(words)
                except click.exceptions.Exit:
                    pass
                except click.UsageError as exc:  # includes BadParameter and a missing -o
                    if "built without CUDA" not in exc.format_message():
                        bad.append(f"{shown}: {exc.format_message()}")
    assert bad == []
    with pytest.raises(click.UsageError, match="outdir"):  # the check sees what it is for
        parse_only(["srgan", "upscale", "small.png"])

"""The French README keeps the English one's set-up commands, word for word."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command_blocks(text: str) -> list[str]:
    """Indented (4 spaces) and fenced code blocks, each as its stripped text."""
    blocks, current, fenced = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            if fenced:
                blocks.append("\n".join(current))
                current = []
            fenced = not fenced
            continue
        if fenced:
            current.append(line)
        elif line.startswith("    ") and (current or line.strip()):
            current.append(line[4:])
        elif current and not line.strip():
            current.append("")
        elif current:
            blocks.append("\n".join(current).strip("\n"))
            current = []
    if current:
        blocks.append("\n".join(current).strip("\n"))
    return [b.strip("\n") for b in blocks if b.strip()]


def first_section(text: str) -> str:
    return re.split(r"^## ", text, maxsplit=1, flags=re.M)[0]


def test_command_block_parser_finds_indented_and_fenced_blocks():
    text = "intro\n\n    a b\n    c\n\nprose\n```sh\nx\n```\n## Two\n    d\n"
    assert command_blocks(text) == ["a b\nc", "x", "d"]
    assert command_blocks(first_section(text)) == ["a b\nc", "x"]


def test_set_up_commands_are_identical_in_both_readmes():
    en = (ROOT / "README.md").read_text(encoding="utf-8")
    fr = (ROOT / "README.fr.md").read_text(encoding="utf-8")
    setup_en = [b for b in command_blocks(en) if b.startswith("python3 -m venv")]
    setup_fr = [b for b in command_blocks(fr) if b.startswith("python3 -m venv")]
    assert len(setup_en) == 2
    assert setup_fr == setup_en


def test_every_command_of_the_english_first_section_is_in_the_french_readme():
    en = (ROOT / "README.md").read_text(encoding="utf-8")
    fr_blocks = command_blocks((ROOT / "README.fr.md").read_text(encoding="utf-8"))
    first = command_blocks(first_section(en))
    assert first, "the English README's first section has no command block"
    for block in first:
        assert block in fr_blocks, f"missing from README.fr.md:\n{block}"


def test_readmes_link_each_other_and_french_uses_the_fields_terms():
    en = (ROOT / "README.md").read_text(encoding="utf-8")
    fr = (ROOT / "README.fr.md").read_text(encoding="utf-8")
    assert "(README.fr.md)" in first_section(en).splitlines()[2]
    assert "(README.md)" in fr.splitlines()[2]
    words = " ".join(fr.lower().split())  # a term may be wrapped over two lines
    for term in ("super-résolution", "réseau antagoniste génératif"):
        assert term in words
    for figure in re.findall(r"\(docs/figures/\w+\.png\)", en):
        assert figure in fr


# --------------------------------------------------------------------------- what the docs say

def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _words(text: str) -> str:
    """Lower-case, with every run of white space one space (a phrase may wrap)."""
    return " ".join(text.lower().split())


def _user_docs() -> dict[str, str]:
    names = ["README.md", "README.fr.md", "MODELS.md",
             *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
    return {name: _read(name) for name in names}


def test_the_docs_speak_to_users_not_of_how_the_project_was_built():
    """MODELS.md spoke of "Issue 13's targets", docs/performance.md of "the issue's goal" and
    the sessions that built it, docs/gpu-training.md of a borrowed machine's `$OUT` and its
    64 MiB limit; no absolute path of the machine that wrote them belongs there either."""
    building = re.compile(r"\bissue(?:'s| \d+)|\bsessions? that built|\$OUT\b|\b64 MiB limit|"
                          r"\blent to\b|\bborrowed\b|(?<![\w.])/(?:work|root|home|mnt)/\w",
                          re.I)
    found = {name: sorted({m.group(0) for m in building.finditer(text)})
             for name, text in _user_docs().items()}
    assert not {k: v for k, v in found.items() if v}
    assert "497 photographs" not in _read("docs/gpu-training.md")  # stale: 688 now


def test_the_readmes_give_cpu_and_cuda_torch_installs_and_say_to_activate():
    """`torch==2.13.0` brought the multi-GB CUDA build where a CPU wheel was meant, and every
    `srgan` command after the first was "command not found" without the venv activated."""
    for name in ("README.md", "README.fr.md"):
        blocks = "\n".join(command_blocks(_read(name)))
        assert ("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
                in blocks), name
        assert re.search(r"^\.venv/bin/pip install torch==2\.13\.0\s+#", blocks, re.M), name
        assert "source .venv/bin/activate" in _read(name), name
    faq = _words(_read("docs/faq.md"))
    assert "download.pytorch.org/whl/cpu" in faq and "command not found" in faq


def test_the_readmes_say_what_a_cpu_trains_in_an_hour():
    """The default training showed an ETA of 300-1,100 hours on a CPU with no word of it in
    the README: it says what an hour does, and points at --time-limit and the campaign."""
    for name, hour in (("README.md", "an hour"), ("README.fr.md", "une heure")):
        sections = re.split(r"^## ", _read(name), flags=re.M)
        (train,) = [_words(t) for t in sections if t.lower().startswith(("train", "entra"))]
        assert "300" in train and "1,100" in train.replace("1 100", "1,100"), name
        for needle in ("--time-limit minutes", "--resume", "scripts/campaign.sh",
                       "(docs/campaign.md)", hour, "patches", "gpu"):
            assert needle in train.replace("imagettes", "patches"), (name, needle)


def test_every_readme_figure_says_what_it_was_measured_with():
    """The 10000x10000 -> 40000x40000 run (5.5 minutes) used a tiny network; the README said
    so nowhere, while the shipped model takes about 1.25 h."""
    speed = _words(_read("README.md"))
    assert "40000x40000" in speed
    claim = speed[speed.index("40000x40000"):][:600]
    assert "tiny network" in claim and "5.5 minutes" in claim and "1.25 hours" in claim
    assert "with the shipped network" in speed  # the speed figures before it


def test_the_readmes_link_the_notebook_and_say_what_to_install():
    for name in ("README.md", "README.fr.md"):
        text = _words(_read(name))
        assert "(examples/tour.ipynb)" in text, name
        assert "pip install -e '.[plot]' notebook" in text, name
        assert "jupyter notebook examples/tour.ipynb" in text, name
        assert "(docs/faq.md)" in text, name


def test_the_faq_answers_the_first_hours_questions():
    """Out of memory, a slow CPU, the CUDA install, "skipped because it exists", "Set5 not
    found" and zsh's "no matches found": each a section, each with what to do."""
    faq = _read("docs/faq.md")
    heads = [h.lower() for h in re.findall(r"^## (.+)$", faq, flags=re.M)]
    for topic in ("out of memory", "slow", "cuda", "exists", "set5 not found",
                  "no matches found", "command not found"):
        assert any(topic in h for h in heads), (topic, heads)
    words = _words(faq)
    for remedy in ("--tile", "--time-limit", "--overwrite", "--data-root", "'data.train=["):
        assert remedy in words, remedy


def test_srgan_mse_x4s_artefacts_are_described_plainly():
    """On photographs it never saw, srgan_mse_x4 shows double-edged halos, ringing, worm-like
    texture and (on grey photos run as RGB) false colour; "a thin bright halo along some dark
    edges" understated it. The README and its card say what it does, and show it in a figure
    (credited, as the package's photographs must be)."""
    figure = "docs/figures/srgan_mse_artefacts.png"
    assert (ROOT / figure).is_file()
    assert "`srgan_mse_artefacts.png` | nature/" in _read("docs/figures/CREDITS.md")
    for name in ("README.md", "MODELS.md"):
        text = _words(_read(name))
        assert f"({figure})" in text, name
        for artefact in ("double-edged halos", "ringing", "worm-like texture", "zebra",
                         "grey", "33"):
            assert artefact in text, (name, artefact)
        assert "srresnet_x4` for" in text, name  # and which model to pick instead


def test_the_web_pages_screenshots_are_there_light_and_dark_and_linked():
    """docs/serve.md shows the page at 1280x900 and 390x844, light and dark (retaken by
    test_serve_browser.py's test_docs_screenshots)."""
    import numpy as np
    from PIL import Image

    serve = _read("docs/serve.md")
    brightness = {}
    for size, width in (("", 1280), ("-phone", 390)):
        for scheme in ("", "-dark"):
            name = f"serve-screenshot{size}{scheme}.png"
            assert f"({name})" in serve or f'src="{name}"' in serve, name
            with Image.open(ROOT / "docs" / name) as img:
                assert img.width == width, (name, img.size)
                brightness[size, scheme] = float(np.asarray(img.convert("L")).mean())
    for size in ("", "-phone"):
        assert brightness[size, "-dark"] < 0.6 * brightness[size, ""], brightness

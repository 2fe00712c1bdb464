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

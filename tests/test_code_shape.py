"""The project's size rules, checked on the source itself: no function over 80 lines and no
module over 500 lines in src/srgan (a longer one is split along a seam, not waved through)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "srgan"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500


def too_long(path: Path, root: Path = SRC.parent) -> list[str]:
    """`file: what (lines)` for each function or module of `path` over its limit."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(root)
    found = []
    if len(text.splitlines()) > MAX_MODULE_LINES:
        found.append(f"{rel}: module ({len(text.splitlines())} lines)")
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found.append(f"{rel}:{node.lineno}: {node.name} ({lines} lines)")
    return found


def test_no_function_over_80_lines_and_no_module_over_500():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the walk found the package
    found = [line for f in files for line in too_long(f)]
    assert not found, "split these along a seam:\n" + "\n".join(found)


def test_the_counter_sees_a_long_function_and_a_long_module(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def f():\n{body}\n\n\ndef g():\n    pass\n")
    assert too_long(tmp_path / "m.py", tmp_path) == ["m.py:1: f (81 lines)"]
    (tmp_path / "n.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert too_long(tmp_path / "n.py", tmp_path) == ["n.py: module (501 lines)"]

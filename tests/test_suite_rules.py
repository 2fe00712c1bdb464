"""Rules the test suite keeps so that it passes on a slow or busy machine: no test's verdict
depends on how fast something ran (speed belongs in benchmarks/); clocks only set generous
deadlines that catch hangs."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CLOCKS = {"perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "time", "time_ns"}


def _is_clock(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCKS and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "time")


def _reads_a_duration(node: ast.AST, durations: set[str]) -> bool:
    return any(_is_clock(n) or (isinstance(n, ast.Name) and n.id in durations)
               for n in ast.walk(node))


def wall_clock_asserts(source: str) -> list[int]:
    """Line numbers of asserts that judge a measured duration: a clock read, or a name holding
    `clock() - start`, compared with anything but a deadline (a hang check)."""
    tree = ast.parse(source)
    durations = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.BinOp) and _reads_a_duration(n.value, set())
                 for t in n.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and _reads_a_duration(node.test, durations):
            names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
            if not any("deadline" in name for name in names):
                found.append(node.lineno)
    return found


def test_the_rule_catches_what_it_is_for():
    assert wall_clock_asserts("import time\nt0 = time.perf_counter()\nf()\n"
                              "assert time.perf_counter() - t0 < 2\n") == [4]
    assert wall_clock_asserts("s = time.monotonic() - t0\nassert s < 120, s\n") == [2]
    assert wall_clock_asserts("deadline = time.monotonic() + 600\n"
                              "assert time.monotonic() < deadline, 'hang'\n") == []


def test_no_test_asserts_how_long_something_took():
    offenders = {path.name: lines for path in sorted(TESTS.glob("test_*.py"))
                 if (lines := wall_clock_asserts(path.read_text(encoding="utf-8")))}
    assert offenders == {}, f"wall-clock assertions (file: lines): {offenders}"

"""The layering of docs/architecture.md, held against the code: every import in src/srgan
(module-level and inside functions) goes to the importer's own layer or one below, and no
modules import each other round a circle. The layers are read from the document's table,
so the two cannot drift apart."""

import ast
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "srgan"


def module_name(path: Path, root: Path = SRC.parent) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Module -> the package modules it imports (the deepest module an import names:
    `from srgan.imageio import find` is srgan.imageio.find, `from srgan.imageio import
    has_mark` is srgan.imageio), relative imports resolved."""
    files = {module_name(p, src.parent): p for p in src.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                for alias in node.names:
                    mod = alias.name
                    while mod not in files and "." in mod:
                        mod = mod.rpartition(".")[0]
                    targets.append(mod)
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                targets += [f"{mod}.{a.name}" if f"{mod}.{a.name}" in files else mod
                            for a in node.names]
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def documented_layers(doc: Path = REPO / "docs" / "architecture.md") -> dict[str, int]:
    """Module or package -> its layer number, from the `| Layer | Modules | Why |` table."""
    layers = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if m:
            for name in re.findall(r"`([\w.]+)`", m.group(2)):
                layers[name] = int(m.group(1))
    return layers


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer of `module`, or of the nearest package above it that the table names."""
    name = module
    while name not in layers and "." in name:
        name = name.rpartition(".")[0]
    return layers.get(name)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles of `graph` (strongly connected parts of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def violations(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    found = []
    for importer in sorted(graph):
        mine = layer_of(importer, layers)
        if mine is None:
            found.append(f"{importer}: not in the table of docs/architecture.md")
            continue
        for target in sorted(graph[importer]):
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > mine:
                found.append(f"{importer} (layer {mine}) imports {target} (layer {theirs})")
    return found + [" <-> ".join(c) for c in cycles(graph)]


def test_every_import_runs_down_the_documented_layers_and_none_round_a_circle():
    graph = import_graph()
    layers = documented_layers()
    assert len(graph) > 50 and len(layers) > 20  # the walk and the table were found
    found = violations(graph, layers)
    assert not found, "against docs/architecture.md:\n" + "\n".join(found)


def test_the_walk_sees_function_level_imports_cycles_and_upward_imports(tmp_path):
    pkg = tmp_path / "srgan"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("from .a import x\n")
    (pkg / "low" / "a.py").write_text("def f():\n    from srgan.high import y\n")
    (pkg / "high.py").write_text("from srgan.low import a\n")
    graph = import_graph(pkg)
    assert graph["srgan.low.a"] == {"srgan.high"} and graph["srgan.high"] == {"srgan.low.a"}
    layers = {"srgan": 1, "srgan.low": 1, "srgan.high": 2}
    assert violations(graph, layers) == [
        "srgan.low.a (layer 1) imports srgan.high (layer 2)",
        "srgan.high <-> srgan.low.a",
    ]

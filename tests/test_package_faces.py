"""Each package's face (`srgan/__init__.py`, `srgan/imageio/__init__.py`, ...) says what it
offers in `__all__`, offers only its own package's names (no names kept from elsewhere for
old import paths), and every name it lists imports."""

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "srgan"
FACES = sorted(SRC.rglob("__init__.py"))


def package_of(face: Path, root: Path = SRC.parent) -> str:
    return ".".join(face.parent.relative_to(root).parts)


def face_problems(face: Path, package: str) -> list[str]:
    """What is wrong with one face: no `__all__`, a public name it binds that `__all__`
    leaves out, or a name imported from outside its package (srgan's own face excepted)."""
    tree = ast.parse(face.read_text(encoding="utf-8"), str(face))
    listed: list[str] | None = None
    bound: set[str] = set()
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if "__all__" in names:
                listed = [] if node.value is None else _literal_names(node.value)
            bound |= {n for n in names if not n.startswith("_")}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            bound.add(node.name)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module = node.module or ""
            mine = node.level > 0 or module == package or module.startswith(package + ".")
            for alias in node.names:
                name = alias.asname or alias.name
                if name.startswith("_"):
                    continue
                bound.add(name)
                if module.startswith("srgan") and not mine and package != "srgan":
                    found.append(f"{package}: {name} comes from {module}, not from this package")
    if listed is None:
        return [f"{package}: no __all__", *found]
    found += [f"{package}: {name} is public but not in __all__"
              for name in sorted(bound - set(listed) - {"annotations"})]
    return found


def _literal_names(value: ast.expr) -> list[str]:
    """The names of `__all__ = [...]` (or `sorted(_EXPORTS)`: the keys of that dict)."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
            and value.func.id == "sorted":
        return ["<computed>"]
    return list(ast.literal_eval(value))


def test_every_face_lists_its_own_public_names_in_all():
    assert len(FACES) > 5
    found = [line for face in FACES for line in face_problems(face, package_of(face))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("face", FACES, ids=package_of)
def test_every_listed_name_imports(face):
    module = importlib.import_module(package_of(face))
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{module.__name__}.{name}"


def test_the_check_sees_a_missing_all_a_left_out_name_and_a_borrowed_one(tmp_path):
    face = tmp_path / "__init__.py"
    face.write_text("from srgan.pkg.a import x\n")
    assert face_problems(face, "srgan.pkg") == ["srgan.pkg: no __all__"]
    face.write_text("from srgan.pkg.a import x, y\nfrom srgan.device import pick_device\n"
                    "__all__ = ['x']\n")
    assert face_problems(face, "srgan.pkg") == [
        "srgan.pkg: pick_device comes from srgan.device, not from this package",
        "srgan.pkg: pick_device is public but not in __all__",
        "srgan.pkg: y is public but not in __all__",
    ]

"""The floor plan, checked: installed packages match the folders, and private names of Faust, mode and aiokafka are
touched only inside `streams/internals/` (the fence). Import contracts live in `.importlinter` (`make lint`)."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("models", "streams", "benchmarks")
FENCE = ROOT / "streams" / "internals"
LIBRARIES = ("faust", "mode", "aiokafka")
# Underscore names of the standard library and of numpy that are public API, not private.
PUBLIC_UNDERSCORE = frozenset({"_asdict", "_replace", "_fields", "_make", "_exit", "_getframe", "_field_defaults"})


def _sources(folders: tuple[Path, ...]) -> Iterator[Path]:
    for folder in folders:
        yield from sorted(folder.rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORE


def _defined_names(tree: ast.AST) -> set[str]:
    """Private names the project defines itself: functions, classes, attributes it assigns, parameters."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _library_private_uses(source: str, label: str, project_names: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES:
            found += [f"{label}:{node.lineno} imports {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in project_names:
            found.append(f"{label}:{node.lineno} touches .{node.attr}")
    return sorted(found, key=lambda use: int(use.split(":")[1].split(" ")[0]))


def test_installed_packages_are_the_source_folders() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        "streamrec." + ".".join(init.parent.relative_to(ROOT).parts)
        for name in SOURCE_FOLDERS
        for init in (ROOT / name).rglob("__init__.py")
    }
    assert set(config["packages"]) == folders
    assert config["package-dir"] == {f"streamrec.{name}": name for name in SOURCE_FOLDERS}


def test_only_the_fence_touches_library_private_names() -> None:
    # The fence's own assignments (it patches library objects) don't make a library's name the project's.
    outside = [p for p in _sources(tuple(ROOT / name for name in SOURCE_FOLDERS)) if FENCE not in p.parents]
    project_names: set[str] = set()
    for path in outside:
        project_names |= {name for name in _defined_names(ast.parse(path.read_text())) if _private(name)}
    violations = [
        use
        for path in outside
        for use in _library_private_uses(path.read_text(), str(path.relative_to(ROOT)), project_names)
    ]
    assert violations == [], "private names of Faust/mode/aiokafka outside streams/internals:\n" + "\n".join(violations)


def test_the_fence_check_catches_a_private_touch() -> None:
    """The check itself: a library's private import and attribute are caught, the project's own attribute is not."""
    source = (
        "import faust\n"
        "from faust.streams import _current_event\n"
        "class A:\n"
        "    def f(self):\n"
        "        self._mine = 1\n"
        "        return self._mine, faust.App._fetcher\n"
    )
    own = {name for name in _defined_names(ast.parse(source)) if _private(name)}
    uses = _library_private_uses(source, "example.py", own)
    assert uses == ["example.py:2 imports _current_event", "example.py:6 touches ._fetcher"]

"""The fence against the installed Faust and aiokafka: every upstream function it mirrors is unchanged, and every
private name it touches still exists on the library object it belongs to."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from streamrec.streams.internals.upstream import MIRRORED, PRIVATE_ATTRIBUTES, resolve, source_sha256

FENCE = Path(__file__).resolve().parents[3] / "streams" / "internals"


@pytest.mark.parametrize("name", sorted(MIRRORED))
def test_a_mirrored_upstream_function_is_unchanged(name: str) -> None:
    assert source_sha256(name) == MIRRORED[name], (
        f"{name} changed in the installed library: re-read it and the fence code that names it "
        f"(streams/internals/), then update its hash in streams/internals/upstream.py"
    )


def _has(owner: object, name: str) -> bool:
    """`owner` (a module or class) has `name`: as an attribute, a class annotation, or assigned to `self.<name>`
    in the source of a class of its MRO (instance attributes)."""
    if hasattr(owner, name):
        return True
    if not inspect.isclass(owner):
        return False
    assigned = re.compile(rf"self\.{re.escape(name)}\s*(:[^=\n]*)?=[^=]")
    for cls in owner.__mro__:
        if name in vars(cls).get("__annotations__", {}):
            return True
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):  # builtins, classes without source
            continue
        if assigned.search(source):
            return True
    return False


@pytest.mark.parametrize(
    ("owner", "name"), sorted((owner, name) for owner, names in PRIVATE_ATTRIBUTES.items() for name in names)
)
def test_a_private_name_the_fence_uses_still_exists(owner: str, name: str) -> None:
    assert _has(resolve(owner), name), f"{owner} has no {name} any more: the fence (streams/internals/) uses it"


def _fence_private_attributes() -> set[str]:
    """Private attribute names the fence reads that it does not define itself (a library's, then)."""
    used: set[str] = set()
    defined: set[str] = set()
    for path in FENCE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Attribute):
                if isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name) and node.value.id == "self":
                    defined.add(node.attr)
                elif isinstance(node.ctx, ast.Load):
                    used.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                used.update(alias.name for alias in node.names)
    return {name for name in used - defined if name.startswith("_") and not name.startswith("__")}


def test_every_private_name_the_fence_uses_is_registered() -> None:
    registered = {name for names in PRIVATE_ATTRIBUTES.values() for name in names}
    assert _fence_private_attributes() - registered == set()


def test_the_check_fails_for_a_removed_attribute() -> None:
    class Library:
        def __init__(self) -> None:
            self._kept = 1

    assert _has(Library, "_kept")
    assert not _has(Library, "_gone")

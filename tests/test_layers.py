"""Imports flow one way, down the layers of the package (the map is in the README, "Contributing").

Every ``import`` of every module is read with :mod:`ast`, those inside functions (loaded lazily)
and under ``TYPE_CHECKING`` too, and checked against what its layer may import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "segeval"

BASE = {"errors", "version"}
# layer -> the layers it may import (itself and the base always)
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "core": set(),
    "reading": {"core"},
    "scoring": {"reading", "core"},
    "comparing": {"scoring", "core"},
    "presenting": {"comparing", "scoring", "reading", "core"},  # the report reads the masks it draws
    "train": {"presenting", "comparing", "scoring", "reading", "core"},
    "losses": {"train"},  # segeval.losses: the training losses under their short name
    "package": {"core", "reading", "scoring"},  # __init__: the public names (loaded on first use)
    "cli": {"train", "presenting", "comparing", "scoring", "reading", "core"},
    "main": {"cli"},
}


def _layer(module: str) -> str:
    """The layer of a module given as a dotted name below ``segeval`` ("" for the package itself)."""
    head = module.split(".")[0]
    if head in BASE:
        return "base"
    if module == "train.command":  # the typer command of `segeval train`: part of the command line
        return "cli"
    return {"": "package", "__init__": "package", "__main__": "main"}.get(head, head)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) if parts else ""


def _imported(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, module below segeval) of every import of segeval in the file (or in ``text``, as if it
    stood at ``path``), relative ones resolved."""
    here = _name(path).split(".") if _name(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8") if text is None else text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join(["segeval", *base, *([node.module] if node.module else [])])]
            else:
                names = [node.module or ""]
        else:
            continue
        for n in names:
            if n == "segeval" or n.startswith("segeval."):
                found.append((node.lineno, n[len("segeval."):] if n != "segeval" else ""))
    return found


def test_every_module_has_a_layer():
    layers = {_layer(_name(p)) for p in _modules()}
    assert layers <= set(ALLOWED), layers - set(ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path):
    own = _layer(_name(path))
    allowed = ALLOWED[own] | {own, "base"}
    bad = [f"line {line}: {target or 'segeval'} ({_layer(target)})" for line, target in _imported(path)
           if _layer(target) not in allowed]
    assert not bad, f"{path.name} ({own}) may import only {sorted(allowed)}; it imports " + "; ".join(bad)


def test_the_checker_sees_lazy_and_relative_imports():
    """The checker itself: an import inside a function and a relative one are both found."""
    at = PACKAGE / "core" / "x.py"
    assert _imported(at, "def f():\n    from segeval.cli import app\n") == [(2, "cli")]
    assert _imported(at, "from ..scoring.evaluate import Run\nfrom . import metrics\n") == [
        (1, "scoring.evaluate"), (2, "core")]
    assert _layer("train.command") == "cli" and _layer("train.trainer") == "train"

"""Each package's `__init__` is its contract: no code outside a package imports its `_private`
modules, and every name a package exports exists and is listed in `__all__`.

Unit tests of a package's internals may import its private modules; the product code may not.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import cg_gate

ROOT = Path(cg_gate.__file__).parent
PRIVATE = re.compile(r"^cg_gate\.([a-z_]+)\.(_[a-z_0-9]+)")
PACKAGES = sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []


def _package_of(path: Path) -> str | None:
    rel = path.relative_to(ROOT).parts
    return rel[0] if len(rel) > 1 else None


def test_no_package_imports_another_packages_private_modules() -> None:
    offences = []
    for path in sorted(ROOT.rglob("*.py")):
        own = _package_of(path)
        for line, module, _ in _imports(path):
            m = PRIVATE.match(module)
            if m and m.group(1) != own:
                offences.append(f"{path.relative_to(ROOT.parent)}:{line}: {module}")
    assert not offences, "imports of another package's private modules:\n" + "\n".join(offences)


def test_names_imported_from_a_package_are_in_its_all() -> None:
    alls = {p: set(importlib.import_module(f"cg_gate.{p}").__all__) for p in PACKAGES}
    offences = []
    for path in sorted(ROOT.rglob("*.py")):
        own = _package_of(path)
        for line, module, names in _imports(path):
            m = re.fullmatch(r"cg_gate\.([a-z_]+)", module)
            if not m or m.group(1) == own or m.group(1) not in alls:
                continue
            for name in names:
                if name not in alls[m.group(1)]:
                    offences.append(f"{path.relative_to(ROOT.parent)}:{line}: {module}.{name}")
    assert not offences, "names used but not listed in __all__:\n" + "\n".join(offences)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_listed_name_exists(package: str) -> None:
    mod = importlib.import_module(f"cg_gate.{package}")
    assert hasattr(mod, "__all__"), f"cg_gate.{package} has no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing

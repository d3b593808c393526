"""The import arrows of the house (``docs/architecture.md``): the trainer sees synthgen through
``synthgen.store`` and ``synthgen.core`` only, and nothing in synthgen imports upward.

Imports are read with :mod:`ast` from the source files (function-level imports included), so a
lazy import inside a function counts like a top-level one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What of synthgen the trainer may import. A module name matches a prefix when it is the prefix
#: or lies below it (``synthgen.core`` matches ``synthgen.core.joints``).
TRAINER_MAY_IMPORT = ("synthgen.store", "synthgen.core")
#: synthgen's lower layers and the synthgen modules each may import.
LAYERS = {
    "synthgen/core": ("synthgen.core",),
    "synthgen/steps": ("synthgen.core", "synthgen.steps", "synthgen.core.types", "synthgen.core.camera",
                       "synthgen.config"),
    "synthgen/sources": ("synthgen.core", "synthgen.sources", "synthgen.core.types", "synthgen.core.camera",
                         "synthgen.config"),
}
#: Arrows that break the rules today, listed so that the list can only shrink: the test fails
#: when one of them is fixed (remove it here then) or when a new one appears.
KNOWN_VIOLATIONS = {
    # The camera-motion cache format reads and builds with the camera-motion step and Ray.
    ("synthgen/sources/motion_cache.py", "synthgen.build.executor"),
    ("synthgen/sources/motion_cache.py", "synthgen.steps.camera_motion"),
}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (``from synthgen import store`` gives
    ``synthgen.store``; relative imports resolved against the file's package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_module(name: str) -> bool:
    """Whether ``name`` (under synthgen or trainer) is a module or package of the tree, so that
    ``from synthgen.store import spec`` counts as synthgen.store and not as synthgen.store.spec."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _ours(path: Path, top: str) -> set[str]:
    return {n for n in imported_modules(path) if _within(n, (top,)) and _is_module(n)}


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _violations(folder: str, allowed, top: str = "synthgen") -> set[tuple[str, str]]:
    found = set()
    for path in _files(folder):
        for name in _ours(path, top):
            if name != top and not _within(name, allowed):
                found.add((str(path.relative_to(ROOT)), name))
    return found


def _known(folder: str) -> set[tuple[str, str]]:
    return {v for v in KNOWN_VIOLATIONS if v[0].startswith(folder + "/")}


def test_import_reader_resolves_forms_of_import(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    module = tmp_path / "synthgen" / "steps" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("import synthgen.store\nfrom synthgen import core\nfrom . import tvl1\n"
                      "from ..sources.video import probe\n"
                      "def f():\n    from synthgen.build.synthetic import run\n")
    names = imported_modules(module)
    assert {"synthgen.store", "synthgen.core", "synthgen.steps.tvl1",
            "synthgen.sources.video", "synthgen.build.synthetic"} <= names


def test_trainer_imports_only_the_store_and_core_of_synthgen():
    found = _violations("trainer", TRAINER_MAY_IMPORT)
    assert found - _known("trainer") == set(), "the trainer may import synthgen.store and " \
                                               "synthgen.core only"
    assert _known("trainer") <= found, "a known violation is gone: remove it from " \
                                       "KNOWN_VIOLATIONS"
    # The rule is not vacuous: the trainer does read stores and the core.
    used = set().union(*(_ours(p, "synthgen") for p in _files("trainer")))
    assert {"synthgen.store", "synthgen.core.joints", "synthgen.core.config"} <= used


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_synthgen_layers_import_nothing_above_them(folder):
    found = _violations(folder, LAYERS[folder])
    assert found - _known(folder) == set(), f"{folder} imports a layer above it"
    assert _known(folder) <= found, "a known violation is gone: remove it from KNOWN_VIOLATIONS"


def test_synthgen_never_imports_the_trainer():
    for path in _files("synthgen"):
        assert not _ours(path, "trainer"), f"{path.relative_to(ROOT)} imports the trainer"


def test_joints_and_errors_live_in_core_only():
    assert not (ROOT / "synthgen" / "joints.py").exists()
    assert not (ROOT / "synthgen" / "errors.py").exists()
    assert not (ROOT / "trainer" / "joints.py").exists()

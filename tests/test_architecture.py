"""The import arrows of the house (``docs/architecture.md``): the trainer sees synthgen through
``synthgen.store`` and ``synthgen.core`` only, and nothing in synthgen imports upward (the layers:
core -> sources, steps -> example, clips -> store -> build -> tools, demo -> cli; testing on top).

Tests are no library: benchmarks, synthgen and the trainer import nothing from ``tests``, and no
test module imports another test module; what they share lives in ``synthgen.testing`` (or a
support module of ``tests`` that holds no tests).

Imports are read with :mod:`ast` from the source files (function-level imports included), so a
lazy import inside a function counts like a top-level one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What of synthgen the trainer may import. A module name matches a prefix when it is the prefix
#: or lies below it (``synthgen.core`` matches ``synthgen.core.joints``).
TRAINER_MAY_IMPORT = ("synthgen.store", "synthgen.core")
#: synthgen's layers, lowest first, each with its rank and modules. A module may import its own
#: layer and layers of lower rank only. Sources and steps share a rank but not a layer: neither
#: imports the other (a step works on numpy arrays). ``synthgen.config`` (the pipeline config on
#: the core base) is core: every layer reads its own section. Nothing imports ``testing``.
LAYERS = {
    "core": (0, ("synthgen.core", "synthgen.config")),
    "sources": (1, ("synthgen.sources",)),
    "steps": (1, ("synthgen.steps",)),
    "example": (2, ("synthgen.example", "synthgen.clips")),
    "store": (3, ("synthgen.store",)),
    "build": (4, ("synthgen.build",)),
    "tools": (5, ("synthgen.tools", "synthgen.demo")),
    "cli": (6, ("synthgen.cli", "synthgen.__main__")),
    "testing": (7, ("synthgen.testing",)),
}


def layer_of(name: str) -> str | None:
    """The layer of synthgen module ``name`` (None for the package ``synthgen`` itself)."""
    for layer, (_, prefixes) in LAYERS.items():
        if _within(name, prefixes):
            return layer
    return None


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


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _upward_imports() -> set[tuple[str, str]]:
    """(file, module) for every synthgen import that goes up or sideways between layers."""
    found = set()
    for path in _files("synthgen"):
        here = layer_of(_module(path))
        for name in _ours(path, "synthgen"):
            there = layer_of(name)
            if name != "synthgen" and there != here and LAYERS[there][0] >= LAYERS[here][0]:
                found.add((str(path.relative_to(ROOT)), name))
    return found


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
    found = {(str(path.relative_to(ROOT)), name) for path in _files("trainer")
             for name in _ours(path, "synthgen")
             if name != "synthgen" and not _within(name, TRAINER_MAY_IMPORT)}
    assert found == set(), "the trainer may import synthgen.store and synthgen.core only"
    # The rule is not vacuous: the trainer does read stores and the core.
    used = set().union(*(_ours(p, "synthgen") for p in _files("trainer")))
    assert {"synthgen.store", "synthgen.core.joints", "synthgen.core.config"} <= used


def test_every_synthgen_module_lies_in_a_layer():
    homeless = [str(p.relative_to(ROOT)) for p in _files("synthgen")
                if _module(p) != "synthgen" and layer_of(_module(p)) is None]
    assert homeless == [], "add these modules to a layer of LAYERS (docs/architecture.md)"


def test_nothing_in_synthgen_imports_upward():
    assert _upward_imports() == set(), "a layer imports a layer above it or beside it"


def test_the_layer_check_sees_an_upward_import(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    for name, text in [("store.py", "from synthgen.build import engine\n"),
                       ("build/__init__.py", ""), ("build/engine.py", "from synthgen import store\n"),
                       ("steps/__init__.py", ""), ("steps/x.py", "from synthgen.sources import v\n"),
                       ("sources/__init__.py", ""), ("sources/v.py", "")]:
        (tmp_path / "synthgen" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "synthgen" / name).write_text(text)
    found = _upward_imports()
    assert {("synthgen/store.py", "synthgen.build.engine"),
            ("synthgen/steps/x.py", "synthgen.sources.v")} <= found
    assert {file for file, _ in found} == {"synthgen/store.py", "synthgen/steps/x.py"}


def test_synthgen_never_imports_the_trainer():
    for path in _files("synthgen"):
        assert not _ours(path, "trainer"), f"{path.relative_to(ROOT)} imports the trainer"


def test_joints_and_errors_live_in_core_only():
    assert not (ROOT / "synthgen" / "joints.py").exists()
    assert not (ROOT / "synthgen" / "errors.py").exists()
    assert not (ROOT / "trainer" / "joints.py").exists()


def _imports_of_tests(folders, *, test_modules_only: bool = False) -> set[tuple[str, str]]:
    """(file, module) for every import of a ``tests`` module by the files of ``folders``
    (``test_modules_only``: of a ``test_*`` module only)."""
    return {(str(path.relative_to(ROOT)), name) for folder in folders for path in _files(folder)
            for name in imported_modules(path) if _within(name, ("tests",))
            and (not test_modules_only
                 or any(part.startswith("test_") for part in name.split(".")))}


def test_benchmarks_synthgen_and_the_trainer_never_import_tests():
    found = _imports_of_tests(("benchmarks", "synthgen", "trainer"))
    assert found == set(), "move what is shared with tests to synthgen/testing/"
    # The rule is not vacuous: the benchmarks do use the shared made inputs and measures.
    used = set().union(*(imported_modules(p) for p in _files("benchmarks")))
    assert {"synthgen.testing.made_inputs", "synthgen.testing.superpixels"} <= used


def test_no_test_module_imports_another():
    found = _imports_of_tests(("tests",), test_modules_only=True)
    assert found == set(), "move what test modules share to synthgen/testing/ or a support module"


def test_the_tests_import_check_sees_an_import_of_a_test_module(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    for name, text in [("benchmarks/bench_x.py", "from tests.steps.test_x import metric\n"),
                       ("tests/steps/test_y.py", "from tests.steps import test_x\n"
                                                 "from tests.trainer.support import store\n")]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert ("benchmarks/bench_x.py", "tests.steps.test_x") in _imports_of_tests(("benchmarks",))
    assert {name for _, name in _imports_of_tests(("tests",), test_modules_only=True)} == {
        "tests.steps.test_x"}

"""The one config base of synthgen and the trainer: sections, validation, TOML files, ``--set``.

A configuration is a frozen :class:`Root` dataclass of frozen :class:`Section` dataclasses. Every
field is checked when a section is made (so at load, before any work): its type (from the
annotation: ``int``, ``float``, ``bool``, ``str``, ``X | None``, ``tuple[X, Y]``, ``tuple[X, ...]``)
and the rules given with :func:`setting` (``min``, ``max``, ``choices``). Pipeline files are TOML
with one table per section; ``base = "name"`` names a file whose tables they override. Unknown
sections or keys are errors, so a typo never falls back to a default silently. Every problem is a
:class:`ConfigError`: one line naming the field (``clip.length``), the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from pathlib import Path

#: The named pipelines of both CLIs, package data (``synthgen/pipelines/*.toml``, so an installed
#: wheel has them; the trainer's are ``train_*.toml``).
PIPELINES_DIR = Path(__file__).resolve().parent.parent / "pipelines"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message is one line saying what and what to do."""


class UnknownPipelineError(ConfigError, FileNotFoundError):
    """A pipeline name or path that names no file."""


def setting(default, *, min=None, max=None, choices=None, infinite=False):
    """A section field with its rules: ``length: int = setting(31, min=2)``.

    ``min``/``max`` bound numbers (and every element of a tuple), inclusive; ``choices`` lists the
    allowed values. A number is never NaN, and infinite only where ``infinite`` (a field whose
    ``inf`` means "never" or "no limit").
    """
    return dataclasses.field(default=default, metadata={"min": min, "max": max,
                                                        "choices": choices,
                                                        "infinite": infinite})


class FieldError(ConfigError):
    """A field of the wrong type or outside its rules (``section`` is filled in by :class:`Root`)."""

    def __init__(self, key: str, value, expected: str, section: str = ""):
        self.key, self.value, self.expected, self.section = key, value, expected, section
        name = f"{section}.{key}" if section else key
        shown = f'"{value}"' if isinstance(value, str) else value
        super().__init__(f"bad config value {name} = {shown}: must be {expected} "
                         f"(fix the pipeline file or --set {name}=...)")


def _coerce(value, hint, key: str):
    """``value`` as type ``hint`` (lists become tuples, ints floats), or a :class:`FieldError`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(value, option, key)
            except FieldError as exc:
                errors.append(exc.expected)
        raise FieldError(key, value, " or ".join(errors + ["none"] * (type(None) in options)))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise FieldError(key, value, "a list")
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(value) != len(args):
            raise FieldError(key, value, f"a list of {len(args)} values")
        try:
            return tuple(_coerce(v, a, key) for v, a in zip(value, args))
        except FieldError as exc:
            raise FieldError(key, value, f"a list of items each {exc.expected}") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise FieldError(key, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(key, value, "an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FieldError(key, value, "a number")
        return float(value)
    if hint is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise FieldError(key, value, "a string")
        return value
    raise TypeError(f"config field {key}: unsupported annotation {hint!r}")


def _check_rules(value, meta, key: str) -> None:
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if choices is not None and value not in choices:
        raise FieldError(key, value, f"one of {list(choices)}")
    for v in value if isinstance(value, tuple) else (value,):
        if isinstance(v, float) and (math.isnan(v) or (math.isinf(v)
                                                      and not meta.get("infinite"))):
            raise FieldError(key, value, "a finite number" if not meta.get("infinite")
                             else "a number (not NaN)")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if (lo is not None and not v >= lo) or (hi is not None and not v <= hi):
                bounds = [f">= {lo}"] * (lo is not None) + [f"<= {hi}"] * (hi is not None)
                kind = "an integer" if isinstance(v, int) else "a number"
                raise FieldError(key, value, f"{kind} " + " and ".join(bounds))


class Section:
    """Base of a config section (a frozen dataclass): checks and normalises every field when made.

    Raises
    ------
    FieldError
        A field of the wrong type or outside its :func:`setting` rules (naming the field).
    """

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _coerce(getattr(self, f.name), hints[f.name], f.name)
            _check_rules(value, f.metadata, f.name)
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Rules between fields of the section (override; raise :class:`ConfigError`)."""


def _sections(root_cls) -> dict[str, type]:
    return {f.name: f.default_factory for f in dataclasses.fields(root_cls) if f.name != "name"}


def to_plain(value):
    """A config (or part of one) as plain dicts, lists and scalars (JSON/TOML-serialisable)."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [to_plain(v) for v in value]
    return value


def merge(base: dict, override: dict) -> dict:
    """``base`` with ``override``'s tables merged in key by key (nested dicts recursively)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class Root:
    """Base of a whole configuration: a frozen dataclass with ``name`` and one field per section.

    Subclasses set ``LABEL`` (``"config"``, ``"trainer config"``) used in messages.
    """

    LABEL = "config"

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Rules between sections (override; raise :class:`ConfigError`)."""

    def to_dict(self) -> dict:
        """Plain nested dict (JSON/TOML-serialisable), the form saved beside every output."""
        return to_plain(self)

    def replace(self, **sections):
        """A copy with section fields replaced: ``cfg.replace(clip={"length": 8})``."""
        return type(self).from_dict(merge(self.to_dict(), sections))

    @classmethod
    def from_dict(cls, data: dict):
        """Build and check a config from a nested dict.

        Raises
        ------
        ConfigError
            An unknown section or key (naming it and the known ones) or a bad value.
        """
        sections = _sections(cls)
        kwargs = {}
        for key, value in data.items():
            if key == "name":
                kwargs[key] = str(value)
                continue
            if key not in sections:
                raise ConfigError(f"unknown {cls.LABEL} section {key!r}; known: {sorted(sections)}")
            section = sections[key]
            if not isinstance(value, dict):
                raise ConfigError(f"{cls.LABEL} section {key!r} must be a table, got {value!r}")
            known = {f.name for f in dataclasses.fields(section)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ConfigError(f"unknown {cls.LABEL} key {key}.{unknown[0]}; known keys of "
                                  f"[{key}]: {sorted(known)}")
            try:
                kwargs[key] = section(**value)
            except FieldError as exc:
                raise FieldError(exc.key, exc.value, exc.expected, section=key) from None
        return cls(**kwargs)


def parse_sets(sets) -> dict:
    """``["clip.length=8", "crop_flow.backend=tvl1"]`` as a nested override dict.

    A value is read as a TOML value (``8``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``); one that is not
    TOML is a string (``tvl1``).

    Raises
    ------
    ConfigError
        An item without ``section.key=value``.
    """
    out: dict = {}
    for item in sets:
        target, sep, text = item.partition("=")
        section, dot, key = target.strip().partition(".")
        if not sep or not dot or not section or not key or "." in key:
            raise ConfigError(f"--set {item!r}: write --set section.key=value "
                              f"(e.g. --set clip.length=8)")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        out.setdefault(section, {})[key] = value
    return out


def resolve_pipeline(pipeline: str | Path, *, trainer: bool) -> Path:
    """The file of a pipeline name (``"full"``, ``"pipelines/full"``) or path.

    Names are looked up in :data:`PIPELINES_DIR` among the trainer's files (``train_*``) when
    ``trainer``, else among the data pipelines.

    Raises
    ------
    UnknownPipelineError
        No such file (the message lists the known pipelines of this kind).
    """
    path = Path(pipeline)
    candidates = [path, path.with_suffix(".toml")]
    if path.name.startswith("train_") == trainer:  # by name: only the pipelines of this kind
        candidates += [PIPELINES_DIR / path.name, PIPELINES_DIR / f"{path.name}.toml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in PIPELINES_DIR.glob("*.toml")
                   if p.name.startswith("train_") == trainer)
    kind = "trainer pipeline" if trainer else "pipeline"
    raise UnknownPipelineError(f"no {kind} {str(pipeline)!r}: give a name from synthgen/pipelines/ "
                               f"or a .toml path; known {kind}s: {known}")


def read_pipeline(pipeline: str | Path, *, trainer: bool, _seen: tuple = ()) -> dict:
    """A pipeline file's tables with its ``base`` chain merged in; ``name`` is the file's stem.

    Raises
    ------
    ConfigError
        Unknown file, TOML syntax error, a ``base`` that is not a name or is unknown, or a cycle.
    """
    path = resolve_pipeline(pipeline, trainer=trainer)
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: base cycle through {[p.name for p in _seen]}; remove a base")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a leading BOM is fine
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}; fix the file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start}): a pipeline is a "
                          f"TOML text file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base must be a pipeline name or path, got {base!r}")
        try:
            parent = read_pipeline(base, trainer=trainer, _seen=_seen + (path.resolve(),))
        except UnknownPipelineError as exc:
            raise UnknownPipelineError(f"{path}: bad base: {exc}") from None
        data = merge(parent, data)
    data["name"] = path.stem
    return data


def load(root_cls, pipeline: str | Path | None = None, *, overrides: dict | None = None, sets=(),
         trainer: bool = False):
    """Load a pipeline (name or path; ``None``: the defaults), then apply ``overrides`` (a nested
    dict, e.g. from command-line flags) and ``--set`` items, in that order.

    Raises
    ------
    ConfigError
        Any problem of the file, its base, the ``--set`` items or a value.
    """
    data = {} if pipeline is None else read_pipeline(pipeline, trainer=trainer)
    return root_cls.from_dict(merge(merge(data, overrides or {}), parse_sets(sets)))

"""Typed configuration: frozen dataclasses filled from YAML, unknown keys rejected by name.

Every config class documents its fields; `load_config(cls, data, source)` checks types loosely (numbers,
strings, lists, nested dataclasses) and ranges (``Annotated[float, Range(gt=0)]``), and names the file and key
at fault, so a typo never passes silently. Config files are bounded in size (`MAX_CONFIG_BYTES`) so that a
wrong file given as config fails at once, and messages list only the first few values.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mocap.errors import ConfigError, listing

T = TypeVar("T")
#: Largest config file read (session.yaml, pipeline YAML, calibration TOML): real ones are a few KB.
MAX_CONFIG_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a number field: ``Annotated[float, Range(gt=0)]``."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    def check(self, value: float, where: str) -> None:
        for bound, ok, word in ((self.gt, lambda b: value > b, "greater than"), (self.ge, lambda b: value >= b, "at least"),
                                (self.le, lambda b: value <= b, "at most")):
            if bound is not None and not ok(bound):
                raise ConfigError(f"{where}: {value!r} must be {word} {bound:g}")


def read_text_bounded(path: str | os.PathLike, what: str = "config file") -> str:
    """The text of a small input file, refusing one over `MAX_CONFIG_BYTES` before reading it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size / 1e6:.1f} MB is too large for a {what} "
                              f"(at most {MAX_CONFIG_BYTES // 1024} KB); is it the right file?")
        return path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what}") from None
    except OSError as e:
        raise ConfigError(f"{path}: unreadable ({e.strerror or e})") from None


def read_yaml(path: str | os.PathLike) -> dict:
    """``yaml.safe_load`` a mapping, or raise ConfigError naming the file."""
    path = Path(path)
    text = read_text_bounded(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where} ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(hint)
        value = _coerce(value, base, where)
        for extra in extras:
            if isinstance(extra, Range) and value is not None:
                extra.check(value, where)
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping")
        return load_config(hint, value, where)
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{where}: {_short(value)} is not one of {listing(map(repr, typing.get_args(hint)))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_short(value)}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_short(value)}")
        return value
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {_short(value)}")
        return str(value)
    return value


def load_config(cls: type[T], data: dict, source: str, base: T | None = None) -> T:
    """Build ``cls`` from ``data``; keys absent from ``data`` keep ``base``'s values (or the defaults).

    ``source`` names the file (and section) in error messages, e.g. ``session.yaml: board``.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {listing(unknown)}; allowed: {', '.join(fields)}")
    hints = typing.get_type_hints(cls, include_extras=True)
    values = {}
    for name, value in data.items():
        hint = hints[name]
        nested = getattr(base, name, None) if base is not None else None
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            values[name] = load_config(hint, value, f"{source}: {name}", nested)
        else:
            values[name] = _coerce(value, hint, f"{source}: {name}")
    return dataclasses.replace(base, **values) if base is not None else cls(**values)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def to_dict(config: Any) -> dict:
    """A config as plain YAML-able data (tuples become lists), to save next to outputs."""

    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


@dataclasses.dataclass(frozen=True)
class BoardConfig:
    """A calibration board."""

    type: typing.Literal["charuco", "checkerboard"] = "charuco"
    rows: int = 7
    """ChArUco: squares along the board's height."""
    cols: int = 10
    """ChArUco: squares along the board's width."""
    square: float = 0.025
    """Side of one square, metres."""
    marker: float = 0.01875
    """ChArUco: side of one ArUco marker, metres."""
    dict: str = "4x4_50"
    """ChArUco: ArUco dictionary, e.g. 4x4_50, 5x5_100."""
    corners: str = "4x7"
    """Checkerboard: inner corners as ROWSxCOLS."""


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    """`session.yaml`: what a session folder says about itself. Every key is optional."""

    fps: typing.Annotated[float, Range(gt=0, le=10_000)] | None = None
    """Frame rate; overrides what the videos report (image folders have none)."""
    cameras: tuple[str, ...] | None = None
    """Subset and order of cameras to use; all discovered cameras when absent."""
    body: str = "open"
    """Body model: `open` (bundled), `smpl` ($MOCAP_SMPL_DIR) or a path to SMPL files."""
    gender: typing.Literal["neutral", "male", "female"] = "neutral"
    board: BoardConfig = dataclasses.field(default_factory=BoardConfig)
    pipeline: str = "keypoints"
    """Pipeline preset name (pipelines/NAME.yaml) or path."""
    overrides: dict = dataclasses.field(default_factory=dict)
    """Pipeline overrides, checked by the pipeline's own config."""
    people: tuple[int, ...] | None = None
    """Ids of the people to fit (`mocap run` lists them); every person found when absent."""
    max_people: int | None = None
    """Fit at most this many people, the most seen first; the main subject always."""
    person: int | None = None
    """The main subject's id, written to output/smpl.npz (default 0: the person seen by the most views for the
    most frames); `mocap run --person` overrides it."""


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of dataclass ``cls`` (Python keeps none at run time, so they are read
    from the source), first line only; a Literal field without one lists its values."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:] + [None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            is_doc = isinstance(after, ast.Expr) and isinstance(getattr(after, "value", None), ast.Constant)
            docs[node.target.id] = inspect.cleandoc(after.value.value).split("\n")[0] if is_doc else ""
    for name, hint in typing.get_type_hints(cls).items():
        if typing.get_origin(hint) is typing.Literal and not docs.get(name):
            docs[name] = "one of " + ", ".join(map(str, typing.get_args(hint)))
    return docs



def commented_yaml(cls: type, indent: int = 0) -> list[str]:
    """Every key of config dataclass ``cls`` at its default, commented out, each with its field's docstring:
    a template to uncomment from (``mocap init``). Nested configs are indented under their key."""
    defaults = to_dict(cls())
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    lines = []
    for name, value in defaults.items():
        nested = dataclasses.is_dataclass(hints[name])
        doc = docs[name] or (hints[name].__doc__.split("\n")[0] if nested else "")
        note = f"  # {doc}" if doc else ""
        if nested:
            lines += [f"# {' ' * indent}{name}:{note}", *commented_yaml(hints[name], indent + 2)]
            continue
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix("\n").removesuffix("\n...")
        lines.append(f"# {' ' * indent}{name}: {text}{note}")
    return lines

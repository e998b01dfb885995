"""The machinery the run settings are written in: fields that are options, and the flat list of them.

``setting()`` makes a dataclass field whose metadata (``Spec``) holds its help text, bounds or
choices and the option it is on the faces; ``group()`` nests a group of settings. ``Option`` is
one field seen flat (its name, where it lives, its type); ``options()``/``option()`` list them
for the settings root that ``settings`` registers (``register(RunSettings)``), and ``_validate``/
``check_option`` check one value with the message that names the option. The groups themselves
(``RunSettings`` and its parts) are in ``settings``, which re-exports all of this: it is the one
module the rest of the project imports. Kept apart so that neither module holds both the rules
for a field and every field; the root is registered, not imported, so the two form no cycle.
Only the standard library, ``errors`` and ``sizes`` are imported (the magics load this with the
extension).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import AutoResearchError

__all__ = [
    "SECTIONS", "Option", "SettingsError", "Spec", "check_option", "group", "option", "option_error",
    "options", "register", "setting",
]

SECTIONS = {
    "protocol": "protocol (fixed before the first node)",
    "search": "search",
    "llm": "LLM proposer (--proposer llm or auto)",
    "evaluation": "separate evaluation (--eval: a grader the node's code cannot touch)",
}


class SettingsError(AutoResearchError):
    """A run setting has a bad value or an unknown name."""


class Spec:
    """What a field is as an option: help, bounds or choices, and how it is written.

    A plain class, not a dataclass: the magics build their traits from these when the extension
    loads, and each dataclass costs its generated methods at import. Read-only by convention.
    """

    __slots__ = ("help", "option", "flags", "section", "choices", "minimum", "maximum", "positive", "unit",
                 "text", "metavar", "repeat", "internal")

    def __init__(
        self, help: str, *,
        option: str = "",  # the option's name (trait, dest); default: the field's name
        flags: tuple[str, ...] = (),  # command-line flags; default: --option-with-dashes
        section: str = "search",  # the group in --help and in the README's table (see SECTIONS)
        choices: tuple[str, ...] = (),
        minimum: float | None = None,
        maximum: float | None = None,
        positive: bool = False,  # more than 0 (an exclusive minimum)
        unit: str = "",  # "seconds": said in messages
        text: str = "",  # "size" ("4G" -> bytes) or "list" ("0,1" -> ("0", "1")): how a value is typed
        metavar: str | None = None,
        repeat: bool = False,  # a list option whose flag may be given several times (--constraint A --constraint B)
        internal: bool = False,  # stored in run.json, set by a face: not an option
    ) -> None:
        self.help, self.option, self.flags, self.section, self.choices = help, option, flags, section, choices
        self.minimum, self.maximum, self.positive, self.unit = minimum, maximum, positive, unit
        self.text, self.metavar, self.repeat, self.internal = text, metavar, repeat, internal

    def __repr__(self) -> str:
        return f"Spec({self.help!r})"


def setting(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field with its option spec in the metadata."""
    meta = {"spec": Spec(help=help, **spec)}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed")
    return dataclasses.field(default=default, metadata=meta)


def group(cls: type) -> Any:
    """A nested group of settings (its own dataclass), defaulting to its defaults."""
    return dataclasses.field(default_factory=cls, metadata={"group": cls})


class Option:
    """One option, flat: where it lives in RunSettings and what it takes (read-only)."""

    __slots__ = ("name", "path", "spec", "kind", "nullable", "default")

    def __init__(self, *, name: str, path: tuple[str, ...], spec: Spec, kind: type, nullable: bool,
                 default: Any) -> None:
        self.name = name  # trait name and argparse dest
        self.path = path  # attribute path in RunSettings, e.g. ("executor", "workers")
        self.spec = spec
        self.kind = kind  # int, float, bool, str or tuple
        self.nullable = nullable
        self.default = default

    def __repr__(self) -> str:
        return f"Option({self.name!r}, {'.'.join(self.path)})"

    @property
    def flags(self) -> tuple[str, ...]:
        return self.spec.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def label(self) -> str:
        """How messages name the option: its flag(s)."""
        return " or ".join(self.flags)

    @property
    def takes(self) -> str:
        """What a valid value is, in words ("a positive number of seconds")."""
        if self.spec.text == "size":
            return "a size in bytes, e.g. 4G"
        if self.name == "metric":
            return "a metric name"
        if self.name == "direction":
            return "a flag"
        if self.name == "replicates":
            return "auto or a whole number from 1 to 10"
        return _what(self)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (the lab extension's defaults, the README's table)."""
        return {
            "name": self.name, "flags": list(self.flags), "type": self.kind.__name__, "nullable": self.nullable,
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "help": self.spec.help, "section": self.spec.section, "choices": list(self.spec.choices) or None,
            "minimum": self.spec.minimum, "maximum": self.spec.maximum, "positive": self.spec.positive,
            "takes": self.takes,
        }


# ---- checking one value ------------------------------------------------------------------


def _what(option: Option) -> str:
    """What a valid value is, in words, for messages."""
    spec, kind = option.spec, option.kind
    if spec.choices:
        return "one of " + ", ".join(spec.choices)
    if kind is bool:
        return "true or false"
    if kind is int:
        lo, hi = spec.minimum, spec.maximum
        if hi is not None:
            return f"an integer from {int(lo or 0)} to {int(hi)}"
        return {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            lo, f"an integer of at least {int(lo or 0)}")  # type: ignore[arg-type]
    if kind is float:
        unit = f" of {spec.unit}" if spec.unit else ""
        if spec.minimum is not None and spec.maximum is not None:
            return f"between {spec.minimum:g} and {spec.maximum:g}"
        if spec.positive:
            return f"a positive number{unit}"
        if spec.minimum == 0:
            return f"a non-negative number{unit}"
        return "a finite number"
    if kind is tuple:
        return "a comma-separated list"
    return "text"


def _convert(option: Option, value: Any) -> Any:
    """``value`` as the field's type (text forms parsed), or raise with the option's message."""
    given = value

    def bad() -> AutoResearchError:
        return option_error(option, f"{option.label} must be {_what(option)}, got {given!r}")

    if value is None:
        if option.nullable:
            return None
        raise bad()
    kind, spec = option.kind, option.spec
    if spec.text == "size":
        from .sizes import parse_size

        try:
            return parse_size(value)
        except AutoResearchError as err:
            raise option_error(option, f"{option.label}: {err}") from None
    if kind is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise bad()
        if spec.repeat:  # each occurrence may itself be a comma-separated list
            items = [part for item in items for part in str(item).split(",")]
        return tuple(str(item).strip() for item in items if str(item).strip())
    if kind is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad()
        value = float(value)
    elif not isinstance(value, str):
        raise bad()
    if spec.choices and value not in spec.choices:
        raise bad()
    if kind in (int, float):
        if spec.positive and not value > 0:
            raise bad()
        if spec.minimum is not None and value < spec.minimum:
            raise bad()
        if spec.maximum is not None and value > spec.maximum:
            raise bad()
    return value


def option_error(option: Option, message: str) -> AutoResearchError:
    """The error class of the option's group, with ``message``."""
    return _error_of(_GROUP_OF.get(option.path[:-1], _root()))(message)


def _error_of(cls: type) -> type[AutoResearchError]:
    """The error class a settings group raises (its ``error`` class variable)."""
    error: type[AutoResearchError] = getattr(cls, "error", SettingsError)
    return error


def check_option(name: str, value: Any) -> Any:
    """``value`` checked (and parsed) as the option ``name``, alone: for ``%config`` traits."""
    return _convert(option(name), value)


def _validate(obj: Any) -> None:
    """Check and normalise every field of a settings group, in place (frozen: via __setattr__)."""
    for field in dataclasses.fields(obj):
        opt = _field_option(type(obj), field.name)
        if opt is not None:
            object.__setattr__(obj, field.name, _convert(opt, getattr(obj, field.name)))


# ---- what every group shares ---------------------------------------------------------------


class _Group:
    """Equality, hashing and repr by field values, written once for every settings group (the
    dataclasses are made with eq=False, repr=False: fewer generated methods, a faster import)."""

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Group)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        return f"{type(self).__name__}({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in fields)})"


# ---- the flat list of options ----------------------------------------------------------------

_ROOT: list[type] = []  # the settings root (RunSettings), once registered
_GROUP_OF: dict[tuple[str, ...], type] = {}  # attribute path of a group -> its class; () -> the root
_SHARED: dict[type, type] = {}  # a base class -> the group whose options check its fields


def register(root: type, *, shared: Mapping[type, type] | None = None) -> None:
    """Make ``root`` the settings whose fields ``options()`` lists and ``_validate`` checks.

    ``settings`` calls this once, after defining the groups (this module cannot import them:
    they are written with it). ``shared`` maps a base class to the group deriving from it whose
    options check its fields too (``LLMOptions`` -> ``ProposerSettings``).
    """
    _ROOT[:] = [root]
    _GROUP_OF.clear()
    _GROUP_OF.update(_groups(root, ()))
    _SHARED.clear()
    _SHARED.update(shared or {})
    _all_options.cache_clear()
    _field_options.cache_clear()


def _root() -> type:
    if not _ROOT:
        raise RuntimeError("no run settings registered: import autoresearch_jupyter.core.settings")
    return _ROOT[0]


def _groups(cls: type, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], type]]:
    """(path, class) of ``cls`` and of every group nested in it."""
    yield path, cls
    for field in dataclasses.fields(cls):
        if "group" in field.metadata:
            yield from _groups(field.metadata["group"], path + (field.name,))


_KINDS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


def _kind(annotation: str) -> tuple[type, bool]:
    """(base type, nullable) of a field's annotation as written (``"int | None"`` -> (int, True)).

    The annotations are strings (``from __future__ import annotations``) in the few forms the
    fields use; reading them here is cheaper than ``typing.get_type_hints`` at extension load.
    """
    parts = [p.strip() for p in annotation.split("|")]
    rest = [p for p in parts if p != "None"]
    if len(rest) != 1 or not (rest[0] in _KINDS or rest[0].startswith("tuple[")):
        raise TypeError(f"a setting must be int, float, str, bool or a tuple (maybe | None), not {annotation}")
    return (tuple if rest[0].startswith("tuple[") else _KINDS[rest[0]]), len(rest) < len(parts)


def _collect(cls: type, path: tuple[str, ...]) -> Iterable[Option]:
    for field in dataclasses.fields(cls):
        if "group" in field.metadata:
            yield from _collect(field.metadata["group"], path + (field.name,))
            continue
        spec: Spec = field.metadata["spec"]
        kind, nullable = _kind(str(field.type))
        yield Option(name=spec.option or field.name, path=path + (field.name,), spec=spec, kind=kind,
                     nullable=nullable, default=field.default)


@functools.lru_cache(maxsize=None)
def _all_options() -> tuple[Option, ...]:
    found = tuple(_collect(_root(), ()))
    names = [o.name for o in found]
    assert len(names) == len(set(names)), f"two settings share an option name: {names}"
    return found


def options(*, internal: bool = False) -> tuple[Option, ...]:
    """The run options in help order (protocol first); ``internal`` adds the face-set ones."""
    order = list(SECTIONS)
    found = [o for o in _all_options() if internal or not o.spec.internal]
    return tuple(sorted(found, key=lambda o: order.index(o.spec.section)))


def option(name: str) -> Option:
    """The option called ``name``; SettingsError lists the valid names."""
    for found in _all_options():
        if found.name == name:
            return found
    raise SettingsError(f"unknown option {name!r}. Valid options: {', '.join(o.name for o in options())}")


@functools.lru_cache(maxsize=None)
def _field_options() -> dict[tuple[type, str], Option]:
    """Which Option checks which field of which group class."""
    out = {(_GROUP_OF[o.path[:-1]], o.path[-1]): o for o in _all_options()}
    for base, owner in _SHARED.items():
        for name in (f.name for f in dataclasses.fields(base)):
            out[(base, name)] = out[(owner, name)]
    return out


def _field_option(cls: type, name: str) -> Option | None:
    """The Option of field ``name`` of ``cls`` or of the settings group it derives from."""
    table = _field_options()
    for owner in cls.__mro__:
        if (owner, name) in table:
            return table[(owner, name)]
    return None

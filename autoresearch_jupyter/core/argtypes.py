"""argparse value types and the run options, shared by the faces (CLI and magics).

One wording for one mistake: the run options are generated from ``core.settings.RunSettings``
(``run_arguments``), so ``autoresearch run`` and ``%%autoresearch`` take the same options.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


def _parse(text: str, kind: Callable[[str], float], what: str) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def non_negative_int(text: str) -> int:
    value = int(_parse(text, int, "an integer"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _parse(text, float, "a number of seconds")
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def finite_float(text: str) -> float:
    value = _parse(text, float, "a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(_parse(text, int, "an integer"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def integer(text: str) -> int:
    """Any integer; RunSettings checks the bounds (one message for every face)."""
    return int(_parse(text, int, "an integer"))


def number(text: str) -> float:
    """Any number; RunSettings checks the bounds."""
    return _parse(text, float, "a number")


# ---- the run options, generated from RunSettings -----------------------------------------

Argument = tuple[tuple[str, ...], dict[str, Any]]


def run_arguments(*, config: bool = False) -> list[tuple[str, list[Argument]]]:
    """``(section title, [(flags, add_argument keywords)])`` for every run option, in help order.

    Every option defaults to None ("not given"), so a face can tell a given value from its own
    defaults (the magics' ``%config``); ``option_values`` turns the parsed namespace back into
    RunSettings option values. ``config``: the help names the ``AutoResearch`` trait too.
    """
    from .settings import SECTIONS, options

    sections: dict[str, list[Argument]] = {}
    for opt in options():
        shown = _shown(opt.default)
        parts = [f"AutoResearch.{opt.name}"] if config else []
        parts += [shown] if shown else []
        suffix = f" ({', '.join(parts)})" if parts else ""
        out = sections.setdefault(SECTIONS[opt.spec.section], [])
        if opt.name == "direction":
            where = " (AutoResearch.direction)" if config else ""
            out.append((("--maximize",), dict(dest="maximize", action="store_true", default=None,
                                             help=f"higher is better (--maximize or --minimize is required){where}")))
            out.append((("--minimize",), dict(dest="minimize", action="store_true", default=None,
                                             help="lower is better")))
            continue
        kwargs: dict[str, Any] = dict(dest=opt.name, default=None, help=opt.spec.help + suffix)
        if opt.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif opt.spec.repeat:
            kwargs["action"] = "append"
        elif opt.spec.choices:
            kwargs["choices"] = opt.spec.choices
        elif opt.spec.text:
            kwargs["metavar"] = opt.spec.metavar
        elif opt.kind is int:
            kwargs["type"] = integer
        elif opt.kind is float:
            kwargs["type"] = number
        if opt.spec.metavar and "choices" not in kwargs:
            kwargs["metavar"] = opt.spec.metavar
        out.append((opt.flags, kwargs))
    return list(sections.items())


def _shown(value: Any) -> str:
    """A default as help shows it ("" for none)."""
    if value is None or value in ("", ()) or value is False:
        return ""
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add every run option to ``parser``, one argument group per section."""
    for title, arguments in run_arguments():
        grp = parser.add_argument_group(title)
        for flags, kwargs in arguments:
            grp.add_argument(*flags, **kwargs)


def option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given in ``args`` (parsed with ``run_arguments``), by option name.

    ``--maximize`` and ``--minimize`` become ``direction``; both at once is a ProtocolError.
    """
    from .errors import ProtocolError
    from .settings import options

    values = {o.name: getattr(args, o.name) for o in options() if o.name != "direction"}
    maximize, minimize = getattr(args, "maximize", None), getattr(args, "minimize", None)
    if maximize and minimize:
        raise ProtocolError("--maximize is not allowed with --minimize: say which way is better, not both")
    values["direction"] = "maximize" if maximize else "minimize" if minimize else None
    return {k: v for k, v in values.items() if v is not None}

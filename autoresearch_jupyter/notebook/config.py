"""The magics' run options and ``%config AutoResearch.*`` traits, generated from RunSettings.

Both come from ``core.settings`` (through ``core.argtypes.run_arguments`` for the options), so
the cell magic takes exactly the options ``autoresearch run`` takes, with the same names, types
and messages, and every option has a trait of the same name as its default. A trait is checked
alone when it is set (``%config`` prints the error and keeps the old value); the options of one
cell are checked together when the cell runs.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.magic_arguments import argument, argument_group
from traitlets import Bool, Enum, Float, Int, List, TraitError, TraitType, Unicode, validate
from traitlets.config import Configurable

from ..core.argtypes import run_arguments
from ..core.errors import AutoResearchError
from ..core.settings import Option, RunSettings, check_option, options

if TYPE_CHECKING:
    from ..engine.search import Search

F = TypeVar("F", bound=Callable[..., Any])


def run_options(func: F) -> F:
    """Add every run option to a ``magic_arguments`` function, one group per section."""
    decorators: list[Any] = []
    for title, arguments in run_arguments(config=True):
        decorators.append(argument_group(title))
        decorators.extend(argument(*flags, **kwargs) for flags, kwargs in arguments)
    for deco in reversed(decorators):  # magic_arguments builds the parser from the last one applied
        func = deco(func)
    return func


def _trait(opt: Option) -> TraitType[Any, Any]:
    """The trait for one option: its type, its default (None where it has none) and its help."""
    flags = "/".join(opt.flags)
    help_text = f"{opt.spec.help[0].upper()}{opt.spec.help[1:]} ({flags})."
    default = opt.default
    # None passes the trait's type but not ``_check`` where the option takes no None
    if opt.spec.text:  # typed as on the command line: "4G", "0,1"
        text = ",".join(default) if isinstance(default, tuple) else default
        return Unicode(text, allow_none=True, help=help_text).tag(config=True)
    if opt.spec.choices:
        return Enum(opt.spec.choices, default, allow_none=True, help=help_text).tag(config=True)
    if opt.kind is tuple:  # a repeatable option: a list of texts
        return List(Unicode(), default_value=list(default or ()), help=help_text).tag(config=True)
    kinds: dict[type, Any] = {bool: Bool, int: Int, float: Float, str: Unicode}
    return kinds[opt.kind](default, allow_none=opt.nullable, help=help_text).tag(config=True)


def _check(self: Any, proposal: Any) -> Any:
    """A trait is checked alone, with the option's own message."""
    name, value = proposal["trait"].name, proposal["value"]
    try:
        check_option(name, value)
    except AutoResearchError as err:
        raise TraitError(f"AutoResearch.{name}: {err}") from None
    return value


def _configured(self: Any) -> RunSettings:
    """RunSettings from the traits (the config); a cell's options go on top (``with_options``)."""
    return RunSettings.from_options({opt.name: getattr(self, opt.name) for opt in options()})


def _make_traits_class() -> type:
    names = [opt.name for opt in options()]
    namespace: dict[str, Any] = {opt.name: _trait(opt) for opt in options()}
    namespace["_check"] = validate(*names)(_check)
    namespace["configured"] = _configured
    namespace["__doc__"] = "The run options as configurable traits (generated from core.settings.RunSettings)."
    return types.new_class("SettingsTraits", (Configurable,), exec_body=lambda ns: ns.update(namespace))


SettingsTraits: Any = _make_traits_class()


def print_llm_summary(search: Search) -> None:
    """``--llm-report`` after a blocking run: the model's notes on what worked."""
    from ..proposers import print_llm_summary as show

    show(search.tree, search.protocol, search.settings.to_dict(), stream=sys.stdout)

"""IPython glue shared by the magics (``magics.py``) and the line commands (``commands.py``).

Both read option lines the same way and report the user's mistakes as one-line ``UsageError`` s;
keeping these here lets ``commands`` use them without importing ``magics`` (which imports it).
"""

from __future__ import annotations

import os
from typing import Any

from IPython.core.error import UsageError

from ..core.errors import with_options


def split_options(line: str) -> list[str]:
    """The words of a magic's option line, quotes removed (``--goal 'be fast'`` is one value).

    IPython's ``parse_argstring`` splits without POSIX rules, so quotes would stay in the values;
    on Windows the non-POSIX split is kept (backslashes in paths), with outer quotes stripped.
    """
    from IPython.utils.process import arg_split

    words = arg_split(line, posix=os.name == "posix", strict=True)
    if os.name != "posix":
        words = [w[1:-1] if len(w) >= 2 and w[0] == w[-1] and w[0] in "'\"" else w for w in words]
    return words


def user_error(err: BaseException, prefix: str = "") -> UsageError:
    """A UsageError with the message of an AutoResearchError (and the options that would fix
    it), for IPython's one-line display."""
    return UsageError(f"{prefix}{with_options(err)}")


def show_view(view: Any) -> None:
    """Display a tree view once, with a display id where it has ``show()`` (its static fallback
    is then refreshed in place when the run ends)."""
    show = getattr(view, "show", None)
    if callable(show):
        show()
        return
    from IPython.display import display

    display(view)

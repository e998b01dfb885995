"""One root exception with narrow subclasses, so faces can turn any of them into one clean line."""

from __future__ import annotations


class AutoResearchError(Exception):
    """Root of every error this package raises on purpose; its message is meant for the user.

    ``settings`` names the run settings that would fix it (``"cwd"``, ``"time_budget"``); the
    message itself names no face's options, and each face adds its own spelling of them
    (``with_options``), so the CLI says ``--cwd`` and a program sees only the setting.
    """

    def __init__(self, *args: object, settings: tuple[str, ...] = ()) -> None:
        super().__init__(*args)
        self.settings = settings


_OPTION_NAMES = {"time_budget": "timeout"}  # settings whose option the faces name otherwise


def option_name(setting: str) -> str:
    """How the CLI and the magics spell a run setting as an option: ``cwd`` -> ``--cwd``."""
    return "--" + _OPTION_NAMES.get(setting, setting).replace("_", "-")


def with_options(err: BaseException) -> str:
    """The error's message with the options of the settings that would fix it (``(see --cwd)``)
    at the end of its first line; the message as it is for other errors."""
    text = str(err)
    settings = getattr(err, "settings", ())
    if not settings:
        return text
    first, newline, rest = text.partition("\n")
    return f"{first} (see {', '.join(option_name(s) for s in settings)}){newline}{rest}"


class ProtocolError(AutoResearchError):
    """The evaluation protocol is invalid (no metric, no direction, bad budget)."""


class ConstraintError(ProtocolError):
    """A constraint does not parse, has an unknown unit or names a metric no node can have."""


class ScriptError(AutoResearchError):
    """The baseline script cannot be read or parsed."""


class BaselineError(AutoResearchError):
    """The baseline failed, timed out or printed no metric: the search needs a working baseline."""


class AmbiguousMetricError(BaselineError):
    """The baseline prints several metrics whose names contain the requested one, but not it."""


class AblationError(AutoResearchError):
    """A run cannot be ablated: it has no best node beyond its baseline."""


class RunNotFoundError(AutoResearchError):
    """No run with that id or name exists under the runs directory."""


class RunActiveError(AutoResearchError):
    """The run is still being searched by a live process; two writers would corrupt its journal."""


class NodeNotFoundError(AutoResearchError):
    """No node with that id exists in the run."""


class JournalError(AutoResearchError):
    """The journal or run.json cannot be read as a run."""


class ExecutorError(AutoResearchError):
    """The executor cannot start or run node jobs (bad settings, broken interpreter)."""


class UnknownPluginError(AutoResearchError):
    """A proposer or executor name that is not registered."""


class ProposerError(AutoResearchError):
    """The proposer cannot go on (endpoint down after retries, bad credentials); resume later."""


class BudgetExhaustedError(AutoResearchError):
    """A token or cost budget of the run is spent; the search ends normally."""


class StorageError(AutoResearchError):
    """A write failed on this machine (disk full, read-only, no permission): the run stops; resume later."""

    STORAGE_ERRNOS = frozenset({28, 30, 13, 122, 5, 1})  # ENOSPC, EROFS, EACCES, EDQUOT, EIO, EPERM

    @classmethod
    def from_os_error(cls, err: OSError, path: object = None) -> "StorageError":
        """One line naming the path, the reason and the free space left where it is."""
        import shutil
        from pathlib import Path

        where = Path(str(path if path is not None else (err.filename or ".")))
        probe = where
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            free = shutil.disk_usage(probe).free
            space = f"{free / 2**20:.1f} MiB free" if free < 2**30 else f"{free / 2**30:.1f} GiB free"
        except OSError:
            space = "free space unknown"
        reason = err.strerror or str(err)
        return cls(f"cannot write {where}: {reason} ({space} on its file system)")

    @classmethod
    def is_storage(cls, err: BaseException) -> bool:
        return isinstance(err, OSError) and err.errno in cls.STORAGE_ERRNOS

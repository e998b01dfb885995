"""Executors run node jobs: ``local`` (subprocesses on this machine), ``ray`` (tasks on a Ray cluster)."""

from __future__ import annotations

from typing import Any

from ..core.errors import UnknownPluginError
from ._base import Executor, Job, JobResult

__all__ = ["Executor", "Job", "JobResult", "LocalExecutor", "RayExecutor", "get_executor"]


def __getattr__(name: str) -> Any:
    if name == "LocalExecutor":
        from .local import LocalExecutor

        return LocalExecutor
    if name == "RayExecutor":  # imports no ray until it is built
        from .ray import RayExecutor

        return RayExecutor
    raise AttributeError(name)


_NAMES = ("local", "ray")


def get_executor(name: str, **settings: Any) -> Executor:
    """Build an executor by name; the error lists the valid names."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(**settings)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(**settings)
    raise UnknownPluginError(f"Unknown executor {name!r}. Valid executors: {', '.join(_NAMES)}.")

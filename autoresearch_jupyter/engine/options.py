"""From the options a user gives (CLI flags, magic options, traitlets config) to a run's protocol
and settings.

The terminal and the notebook must start the same search from the same options, so both faces
call these two functions instead of each building the ``run.json`` settings by hand. Nothing here
parses text or imports a face: values arrive already typed, errors leave as AutoResearchError
subclasses whose message names the option, and each face turns them into its own one-line error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ProtocolError, ScriptError
from ..core.protocol import Protocol

LLM_PROPOSERS = ("llm", "auto")
"""Proposer names that take the model options (``model``, ``base_url``, ``temperature``...)."""

WARM_MODES = ("auto", "on", "off")


def build_protocol(
    code: str,
    *,
    metric: str,
    maximize: bool,
    timeout: float = 60.0,
    seed: int = 0,
    min_delta: float = 0.0,
    smoke_timeout: float = 10.0,
) -> Protocol:
    """The fixed protocol for a baseline script; ProtocolError names the bad option."""
    return Protocol.for_script(
        code, metric=metric, maximize=maximize, time_budget=timeout, seed=seed,
        min_delta=min_delta, smoke_budget=smoke_timeout,
    )


def proposer_settings(name: str, model_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``settings["proposer"]``: the name, plus the model options an LLM proposer takes.

    Options left unset (None or "") are dropped so the proposer's own defaults (and the
    ``OPENAI_*`` environment) apply; an offline proposer gets none of them. The options are
    checked here (ProposerError), before a run folder exists.
    """
    out: dict[str, Any] = {"name": name}
    if name in LLM_PROPOSERS:
        out.update({k: v for k, v in (model_options or {}).items() if v is not None and v != ""})
        if len(out) > 1:
            from ..proposers._config import LLMSettings

            LLMSettings.from_settings(out)
    return out


def build_settings(
    *,
    steps: int = 20,
    max_time: float | None = None,
    smoke: bool = False,
    proposer: str | Mapping[str, Any] = "auto",
    model_options: Mapping[str, Any] | None = None,
    goal: str = "",
    workers: int = 1,
    warm: str = "auto",
    memory_limit: str | int | None = None,
    gpus: str | Sequence[str] | None = None,
    patience: int = 3,
    debug_prob: float = 0.3,
    source_dir: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    sandbox: str = "auto",
    allow_paths: Sequence[str] = (),
    network: bool = True,
) -> dict[str, Any]:
    """The settings stored in run.json (see ``search.default_settings``), checked.

    ``proposer`` is a name (with ``model_options`` for llm/auto, see ``proposer_settings``) or a
    complete ``settings["proposer"]`` mapping. ``workers`` must be at least 1;
    ``memory_limit`` takes "4G" or bytes; ``gpus`` takes "0,1" or a list; ``cwd`` must be an
    existing folder.
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ProtocolError(f"--steps must be a non-negative integer, got {steps!r}")
    if max_time is not None and not max_time > 0:
        raise ProtocolError(f"--max-time must be a positive number of seconds, got {max_time!r}")
    if warm not in WARM_MODES:
        raise ProtocolError(f"--warm must be one of {', '.join(WARM_MODES)}, got {warm!r}")
    if not 0 <= debug_prob <= 1:
        raise ScriptError(f"--debug-prob must be between 0 and 1, got {debug_prob}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ProtocolError(f"--workers must be a positive integer (nodes run at once), got {workers!r}")
    executor: dict[str, Any] = {"name": "local", "workers": int(workers), "warm": warm}
    from ..executors._sandbox import SandboxSettings  # ExecutorError names the bad option

    box = SandboxSettings.build(sandbox, allow_paths, network)
    if box.mode != "auto":
        executor["sandbox"] = box.mode
    if box.allow:
        executor["allow_paths"] = [p + (":rw" if rw else "") for p, rw in box.allow]
    if not box.network:
        executor["network"] = False
    if memory_limit:
        from ..executors.local import parse_size  # ExecutorError names the bad size

        executor["memory_limit"] = parse_size(memory_limit)
    if gpus:
        items = gpus.split(",") if isinstance(gpus, str) else gpus
        executor["gpus"] = [str(g).strip() for g in items if str(g).strip()]
    if cwd is not None and not Path(cwd).is_dir():
        raise ScriptError(f"--cwd {cwd}: no such folder")
    return {
        "steps": steps,
        "max_time": max_time,
        "smoke": bool(smoke),
        "goal": goal or "",
        "proposer": (
            dict(proposer) if isinstance(proposer, Mapping) else proposer_settings(proposer, model_options)
        ),
        "executor": executor,
        "policy": {"patience": max(1, patience), "debug_prob": debug_prob},
        "source_dir": str(Path(source_dir).resolve()) if source_dir is not None else None,
        "cwd": str(Path(cwd).resolve()) if cwd is not None else None,
    }

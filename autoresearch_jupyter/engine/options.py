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
EXECUTORS = ("local", "ray")


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
    executor: str = "local",
    ray_address: str | None = None,
    cpus_per_node: float | None = None,
    gpus_per_node: float | None = None,
) -> dict[str, Any]:
    """The settings stored in run.json (see ``search.default_settings``), checked.

    ``proposer`` is a name (with ``model_options`` for llm/auto, see ``proposer_settings``) or a
    complete ``settings["proposer"]`` mapping. ``workers`` 0 means 1 (as on the command line);
    ``memory_limit`` takes "4G" or bytes; ``gpus`` takes "0,1" or a list; ``cwd`` must be an
    existing folder. ``executor`` "ray" takes ``ray_address``, ``cpus_per_node`` and
    ``gpus_per_node`` (see ``executor_settings``).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ProtocolError(f"--steps must be a non-negative integer, got {steps!r}")
    if max_time is not None and not max_time > 0:
        raise ProtocolError(f"--max-time must be a positive number of seconds, got {max_time!r}")
    if warm not in WARM_MODES:
        raise ProtocolError(f"--warm must be one of {', '.join(WARM_MODES)}, got {warm!r}")
    if not 0 <= debug_prob <= 1:
        raise ScriptError(f"--debug-prob must be between 0 and 1, got {debug_prob}")
    executor_options = executor_settings(
        executor, workers=workers, warm=warm, memory_limit=memory_limit, gpus=gpus, ray_address=ray_address,
        cpus_per_node=cpus_per_node, gpus_per_node=gpus_per_node,
    )
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
        "executor": executor_options,
        "policy": {"patience": max(1, patience), "debug_prob": debug_prob},
        "source_dir": str(Path(source_dir).resolve()) if source_dir is not None else None,
        "cwd": str(Path(cwd).resolve()) if cwd is not None else None,
    }


def executor_settings(
    name: str = "local",
    *,
    workers: int = 1,
    warm: str = "auto",
    memory_limit: str | int | None = None,
    gpus: str | Sequence[str] | None = None,
    ray_address: str | None = None,
    cpus_per_node: float | None = None,
    gpus_per_node: float | None = None,
) -> dict[str, Any]:
    """``settings["executor"]``, checked: the local executor's options, and for ``ray`` the
    cluster's address (None: found at start) and what each node asks for."""
    if name not in EXECUTORS:
        raise ProtocolError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    out: dict[str, Any] = {"name": name, "workers": max(1, int(workers)), "warm": warm}
    if memory_limit:
        from ..executors.local import parse_size  # ExecutorError names the bad size

        out["memory_limit"] = parse_size(memory_limit)
    ray_options = {"ray_address": ray_address, "cpus_per_node": cpus_per_node, "gpus_per_node": gpus_per_node}
    if name != "ray":
        given = [k for k, v in ray_options.items() if v is not None]
        if given:
            raise ProtocolError(f"--{given[0].replace('_', '-')} needs --executor ray")
    else:
        if gpus:
            raise ProtocolError("--gpus picks devices on this machine; with --executor ray use --gpus-per-node")
        for key in ("cpus_per_node", "gpus_per_node"):
            value = ray_options[key]
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise ProtocolError(f"--{key.replace('_', '-')} must be a non-negative number, got {value!r}")
        out["address"] = ray_address or None
        out["cpus_per_node"] = float(cpus_per_node) if cpus_per_node is not None else 1.0
        out["gpus_per_node"] = float(gpus_per_node) if gpus_per_node is not None else 0.0
    if gpus:
        items = gpus.split(",") if isinstance(gpus, str) else gpus
        out["gpus"] = [str(g).strip() for g in items if str(g).strip()]
    return out

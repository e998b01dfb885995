"""One typed model of everything a user can set for a run: ``RunSettings``.

Each field carries its type (the annotation), its default, and in its metadata (``Spec``) its
help text, bounds or choices and the option it is on the faces. The faces generate their options
from these fields, so ``autoresearch run --steps``, ``%%autoresearch --steps``,
``%config AutoResearch.steps`` and the lab extension's defaults share one name, one type, one
check and one message; ``options()`` lists them flat, in the order the help shows them.

This module holds the groups (``RunSettings`` and its parts: protocol, proposer and LLM,
executor, policy, evaluation), each group's own checks across fields, and run.json's shape;
the machinery they are written in (``setting()``, ``Spec``, ``Option``, checking one value, the
flat list) is in ``options``, registered with ``RunSettings`` here and re-exported, so this
stays the one module the rest of the project imports. Values are checked once, when a settings
object is made (``__post_init__``); a bad value raises the group's AutoResearchError subclass
with a one-line message that names the option. ``to_dict``/``from_dict`` convert to and from
run.json's ``settings``, in the shape earlier versions wrote (runs written before this model load
unchanged); the protocol options go to run.json's ``protocol`` through ``protocol_for``.

Only the standard library is imported (the magics build their traits from this module when the
extension loads), and nothing of the project but ``errors``, ``protocol``, ``constraints``
and ``options``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from .errors import AutoResearchError, EvaluatorError, ExecutorError, ProposerError, ProtocolError, ScriptError
from .constraints import MEASURED_NAMES, parse_constraints
from .options import (
    SECTIONS, Option, SettingsError, Spec, _error_of, _Group, _validate, check_option, group, option,
    option_error, options, register, setting,
)
from .protocol import METRIC_NAME, Protocol

__all__ = [
    "SECTIONS", "EvalSettings", "ExecutorSettings", "LLMOptions", "Option", "PolicySettings",
    "ProposerSettings", "ProtocolSettings", "RunSettings", "SettingsError", "Spec", "check_option",
    "default_runs_dir", "group", "option", "option_error", "options", "setting",
]

RUNS_DIR_ENV = "AUTORESEARCH_RUNS_DIR"


def default_runs_dir() -> str:
    """Where runs live unless ``--runs-dir`` says otherwise: ``$AUTORESEARCH_RUNS_DIR``, else
    ``.autoresearch`` (next to the script or notebook). Not a setting of a run: it says where
    runs are, for every command, on every face."""
    import os

    return os.environ.get(RUNS_DIR_ENV) or ".autoresearch"


# ---- the groups ----------------------------------------------------------------------------


def parse_replicates(value: Any) -> int | str:
    """``auto`` or a whole number from 1 to 10 (text or int); ProtocolError otherwise."""
    text = str(value).strip().lower() if not isinstance(value, bool) else ""
    if text == "auto":
        return "auto"
    if text.isdigit() and 1 <= int(text) <= 10:
        return int(text)
    raise ProtocolError(f"--replicates must be 'auto' or a whole number from 1 to 10, got {value!r}")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ProtocolSettings(_Group):
    """The options that become the run's Protocol (run.json's ``protocol``, fixed at the start)."""

    error: ClassVar[type[AutoResearchError]] = ProtocolError

    metric: str | None = setting(None, "the metric the script prints as 'NAME: value', or one the runner "
                                 "measures: time, peak_memory, gpu_memory (required)",
                                 section="protocol", metavar="NAME")
    direction: str | None = setting(None, "which way is better (required): higher or lower",
                                    choices=("maximize", "minimize"), flags=("--maximize", "--minimize"),
                                    section="protocol")
    timeout: float = setting(60.0, "seconds per node, enforced", positive=True, unit="seconds",
                             section="protocol")
    seed: int = setting(0, "the seed every node gets", minimum=0, maximum=2**32 - 1, section="protocol")
    min_delta: float = setting(0.0, "smallest improvement that counts", minimum=0, section="protocol")
    smoke_timeout: float = setting(10.0, "seconds per smoke run", positive=True, unit="seconds",
                                   section="protocol")
    constraints: tuple[str, ...] = setting(
        (), "a bound every counted node meets, e.g. peak_memory<2G, time<30, val_acc>=0.95 (repeatable); "
        "a node that breaks one is infeasible: never kept or best",
        flags=("--constraint",), section="protocol", metavar="EXPR", repeat=True)
    replicates: str = setting("auto", "baseline runs that measure the noise floor; a would-be new best on a noisy "
                              "script is re-run as often (auto: 2, up to 5 when they differ)",
                              section="protocol", metavar="N|auto")
    noise_k: float = setting(2.0, "on a noisy script, a change must beat its parent by K standard deviations",
                             minimum=0, maximum=10, section="protocol", metavar="K")

    def __post_init__(self) -> None:
        _validate(self)
        parse_replicates(self.replicates)
        if self.metric is not None and not METRIC_NAME.match(self.metric):
            raise ProtocolError(f"invalid metric name {self.metric!r}: use the name the script prints, e.g. val_acc")
        if self.metric in MEASURED_NAMES and self.direction == "maximize":
            raise ProtocolError(f"--metric {self.metric} is measured by the runner and lower is better: use --minimize")
        object.__setattr__(self, "constraints", tuple(c.text for c in parse_constraints(self.constraints)))

    @classmethod
    def of(cls, protocol: Protocol) -> ProtocolSettings:
        """The options a Protocol was made from."""
        return cls(metric=protocol.metric, direction=protocol.direction, timeout=protocol.time_budget,
                   seed=protocol.seed, min_delta=protocol.min_delta, smoke_timeout=protocol.smoke_budget,
                   constraints=protocol.constraints, replicates=str(protocol.replicates),
                   noise_k=protocol.noise_k)

    def require(self) -> ProtocolSettings:
        """These settings, if metric and direction are given (a run needs both); else ProtocolError."""
        if self.metric is None:
            raise ProtocolError("--metric is required: the name the script prints, e.g. --metric val_acc")
        if self.direction is None:
            raise ProtocolError("say which way is better: --maximize or --minimize")
        return self

    def protocol_for(self, code: str) -> Protocol:
        """The fixed protocol for a baseline script; metric and direction must be given."""
        self.require()
        assert self.metric is not None
        return Protocol.for_script(
            code, metric=self.metric, maximize=self.direction == "maximize", time_budget=self.timeout,
            seed=self.seed, min_delta=self.min_delta, smoke_budget=self.smoke_timeout,
            constraints=self.constraints, replicates=parse_replicates(self.replicates), noise_k=self.noise_k,
        )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LLMOptions(_Group):
    """The LLM proposer's options (``settings["proposer"]`` in run.json, besides its name).

    ``proposers.LLMSettings`` is this class with the proposer's own behaviour and its one check
    that needs the executors' rules (the API key variable must look like a secret).
    """

    error: ClassVar[type[AutoResearchError]] = ProposerError

    model: str | None = setting(None, "model name, sent as given (default: $OPENAI_MODEL)", section="llm")
    base_url: str | None = setting(
        None, "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default: $OPENAI_BASE_URL, else OpenAI's)",
        section="llm", metavar="URL")
    temperature: float | None = setting(None, "sampling temperature (default: the model's own)", minimum=0,
                                        maximum=2, section="llm")
    api_key_env: str = setting("OPENAI_API_KEY", "environment variable holding the API key; the key is never stored",
                               section="llm", metavar="NAME")
    max_prompt_tokens: int = setting(6000, "cap on each prompt's estimated tokens; the memory is cut to fit",
                                     minimum=500, section="llm")
    max_tokens: int | None = setting(None, "token budget of the run (prompt + completion); the run ends when spent",
                                     minimum=1, section="llm")
    max_cost: float | None = setting(None, "cost budget of the run (needs --price-in and --price-out)", minimum=0,
                                     section="llm")
    price_in: float | None = setting(None, "price per 1M prompt tokens", minimum=0, section="llm")
    price_out: float | None = setting(None, "price per 1M completion tokens", minimum=0, section="llm")
    llm_timeout: float = setting(120.0, "seconds for each whole request, however slowly the answer arrives",
                                 positive=True,
                                 unit="seconds", section="llm")
    llm_retries: int = setting(3, "retries with backoff on timeouts, 429 and 5xx before the run stops", minimum=0,
                               section="llm")
    hybrid_after: float | None = setting(
        None, "after this fraction of the budget, fine-tuning of literals goes to mutate (default: never)",
        minimum=0, maximum=1, section="llm", metavar="FRACTION")
    llm_report: bool = setting(False, "at the end, an LLM-written summary of what worked and what did not",
                               section="llm")

    def __post_init__(self) -> None:
        _validate(self)
        if self.max_cost is not None and (self.price_in is None or self.price_out is None):
            raise ProposerError("--max-cost needs --price-in and --price-out (prices per 1M tokens) to count cost")
        if self.base_url is not None and not _is_http(self.base_url):
            raise ProposerError(f"--base-url must be an http(s) URL, got {display_url(self.base_url)!r}")

    def llm_values(self) -> dict[str, Any]:
        """The LLM options that differ from their defaults (what run.json keeps)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(LLMOptions):
            value = getattr(self, field.name)
            if value != field.default:
                out[field.name] = value
        return out


def _is_http(url: str) -> bool:
    import urllib.parse

    return urllib.parse.urlsplit(url).scheme.startswith("http")


def display_url(url: str) -> str:
    """``url`` without any user or password in it (for names, logs and error messages)."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ProposerSettings(LLMOptions):
    """Who proposes changes, and the LLM's options (kept in run.json only for llm and auto)."""

    name: str = setting("auto", "mutate (offline literal mutations), llm (any OpenAI-compatible model), or auto: "
                        "llm when a model or base URL is configured, mutate otherwise",
                        option="proposer", choices=("auto", "mutate", "llm"))

    @property
    def uses_llm(self) -> bool:
        return self.name in ("llm", "auto")

    def options(self) -> dict[str, Any]:
        """What the proposer is built with (``get_proposer(name, **options)``): the LLM options
        that were set, for the proposers that take them."""
        return self.llm_values() if self.uses_llm else {}


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ExecutorSettings(_Group):
    """Where and how nodes run."""

    error: ClassVar[type[AutoResearchError]] = ExecutorError

    name: str = setting("local", "where nodes run: local subprocesses, or ray (tasks on a Ray cluster)",
                        option="executor", choices=("local", "ray"))
    workers: int = setting(1, "nodes run at once; with ray, nodes in flight", minimum=1)
    warm: str = setting("auto", "pre-import the script's imports in a warm interpreter", choices=("auto", "on", "off"))
    memory_limit: int | None = setting(None, "memory limit per node over its whole process tree, e.g. 4G",
                                       text="size", metavar="SIZE")
    gpus: tuple[str, ...] = setting((), "GPU ids for nodes, round-robin, e.g. 0,1", text="list", metavar="IDS")
    sandbox: str = setting("auto", "run nodes under bubblewrap: auto (where it works, else one warning), require, "
                           "off", choices=("auto", "require", "off"))
    allow_path: tuple[str, ...] = setting((), "a folder nodes may see in the sandbox, read-only (PATH:rw to "
                                          "write there); repeatable", text="list", metavar="PATH", repeat=True)
    network: bool = setting(True, "nodes may use the network (--no-network: none, needs the sandbox)")

    address: str | None = setting(None, "--executor ray: HOST:PORT, ray://HOST:PORT or auto (default: "
                                  "$RAY_ADDRESS, else a cluster running here, else a Ray instance for the run)",
                                  option="ray_address", metavar="ADDRESS")
    cpus_per_node: float | None = setting(None, "--executor ray: CPUs each node asks for, fractions allowed (1)",
                                          minimum=0, metavar="N")
    gpus_per_node: float | None = setting(None, "--executor ray: GPUs each node asks for, e.g. 1 or 0.5; Ray "
                                          "sets CUDA_VISIBLE_DEVICES (0)", minimum=0, metavar="N")

    def __post_init__(self) -> None:
        _validate(self)
        ray_only = {"ray_address": self.address, "cpus_per_node": self.cpus_per_node,
                    "gpus_per_node": self.gpus_per_node}
        if self.name != "ray":
            given = [k for k, v in ray_only.items() if v is not None]
            if given:
                raise ExecutorError(f"--{given[0].replace('_', '-')} needs --executor ray")
        elif self.gpus:
            raise ExecutorError("--gpus picks devices on this machine; with --executor ray use --gpus-per-node")

    def options(self) -> dict[str, Any]:
        """What the executor is built with (``get_executor(name, **options)``)."""
        out: dict[str, Any] = {"workers": self.workers, "warm": self.warm}
        if self.memory_limit is not None:
            out["memory_limit"] = self.memory_limit
        if self.gpus:
            out["gpus"] = list(self.gpus)
        if self.sandbox != "auto":
            out["sandbox"] = self.sandbox
        if self.allow_path:
            out["allow_paths"] = list(self.allow_path)
        if not self.network:
            out["network"] = False
        if self.name == "ray":
            out["address"] = self.address
            out["cpus_per_node"] = 1.0 if self.cpus_per_node is None else self.cpus_per_node
            out["gpus_per_node"] = 0.0 if self.gpus_per_node is None else self.gpus_per_node
        return out


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class PolicySettings(_Group):
    """How the tree grows (see engine/policy.py)."""

    error: ClassVar[type[AutoResearchError]] = SettingsError

    patience: int = setting(3, "children in a row without improvement before backtracking (0 means 1)", minimum=0)
    debug_prob: float = setting(0.3, "chance of debugging a failed leaf", minimum=0, maximum=1)

    def __post_init__(self) -> None:
        _validate(self)
        object.__setattr__(self, "patience", max(1, self.patience))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class EvalSettings(_Group):
    """The separate evaluator (evaluation/). The engine resolves ``eval`` into ``eval_code`` and
    ``eval_sha256`` before the run folder exists; run.json keeps them as ``settings["eval"]``."""

    error: ClassVar[type[AutoResearchError]] = EvaluatorError

    eval: str | None = setting(
        None, "a fixed evaluator run after each node in the node's folder: its printed or report()ed metric is "
        "the node's, the node's own number is only shown as self-reported", section="evaluation",
        metavar="EVALUATE.py")
    eval_data: tuple[str, ...] = setting(
        (), "files or folders only the evaluator sees, in $AUTORESEARCH_EVAL_DATA (comma-separated)",
        text="list", metavar="PATHS", section="evaluation")
    eval_timeout: float = setting(60.0, "seconds per evaluation, enforced", positive=True, unit="seconds",
                                  section="evaluation")
    holdout: tuple[str, ...] = setting(
        (), "data the search never uses: at the end the evaluator scores the baseline and the best nodes on it "
        "(AUTORESEARCH_EVAL_SPLIT=holdout, data in $AUTORESEARCH_HOLDOUT)", text="list", metavar="PATHS",
        section="evaluation")
    holdout_top: int = setting(3, "next best nodes scored on the holdout besides the baseline and the best",
                               minimum=0, section="evaluation")
    eval_code: str | None = setting(None, "the evaluator's code, fixed when the run starts", internal=True)
    eval_sha256: str | None = setting(None, "the sha256 of eval_code", internal=True)
    eval_use: tuple[str, ...] = setting((), "notebook variables for the evaluator only", internal=True, text="list")

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def wanted(self) -> bool:
        """Whether the run has (or asked for) an evaluator."""
        return self.eval is not None or self.eval_code is not None

    def to_dict(self) -> dict[str, Any]:
        """run.json's ``settings["eval"]`` (the shape ``evaluation.EvalSpec`` reads)."""
        return {"source": self.eval, "code": self.eval_code, "sha256": self.eval_sha256,
                "timeout": self.eval_timeout, "data": list(self.eval_data), "holdout": list(self.holdout),
                "use": list(self.eval_use), "holdout_top": self.holdout_top}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalSettings:
        return cls(eval=data.get("source"), eval_code=data.get("code"), eval_sha256=data.get("sha256"),
                   eval_timeout=data.get("timeout", 60.0), eval_data=tuple(data.get("data") or ()),
                   holdout=tuple(data.get("holdout") or ()), eval_use=tuple(data.get("use") or ()),
                   holdout_top=data.get("holdout_top", 3))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class RunSettings(_Group):
    """Every setting of a run; ``RunSettings()`` holds the defaults the faces show."""

    error: ClassVar[type[AutoResearchError]] = SettingsError

    protocol: ProtocolSettings = group(ProtocolSettings)
    steps: int = setting(20, "nodes to try after the baseline", minimum=0)
    max_time: float | None = setting(None, "seconds for the whole run", positive=True, unit="seconds")
    smoke: bool = setting(False, "run each node first with AUTORESEARCH_SMOKE=1")
    ablate: bool = setting(True, "at the end, leave each change on the path to the best out in turn and drop "
                           "those that do not matter from best.py")
    proposer: ProposerSettings = group(ProposerSettings)
    goal: str = setting("", "what you are after, in words; goes into every prompt", section="llm")
    executor: ExecutorSettings = group(ExecutorSettings)
    policy: PolicySettings = group(PolicySettings)
    cwd: str | None = setting(None, "run nodes in this folder (default: each in its own node folder)",
                              metavar="DIR")
    learn_from: tuple[str, ...] = setting(
        (), "use the lessons of earlier runs: a run id, name, 'latest', or 'auto' (the newest earlier run "
        "of this script or cell); repeatable", text="list", metavar="RUN", repeat=True)
    source_dir: str | None = setting(None, "the baseline's folder: on nodes' PYTHONPATH", internal=True)
    evaluation: EvalSettings = group(EvalSettings)

    def __post_init__(self) -> None:
        _validate(self)
        names = {self.protocol.metric, *(c.split("<")[0].split(">")[0] for c in self.protocol.constraints)}
        if "gpu_memory" in names and not self.executor.gpus:
            raise ProtocolError("gpu_memory is measured only on an assigned GPU: give --gpus (e.g. --gpus 0)")

    # ---- from and to options -----------------------------------------------------------

    def with_options(self, values: Mapping[str, Any]) -> RunSettings:
        """These settings with the options in ``values`` (by option name; None: not given)."""
        changes: dict[tuple[str, ...], Any] = {}
        for name, value in values.items():
            if value is not None:
                changes[option(name).path] = value
        return self._replace_paths(changes)

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> RunSettings:
        return cls().with_options(values)

    def option_values(self) -> dict[str, Any]:
        """Every option's value, by option name (the inverse of ``from_options``)."""
        return {o.name: self.get(o.name) for o in options()}

    def get(self, name: str) -> Any:
        """The value of the option ``name``."""
        value: Any = self
        for part in option(name).path:
            value = getattr(value, part)
        return value

    def _replace_paths(self, changes: Mapping[tuple[str, ...], Any]) -> RunSettings:
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for path, value in changes.items():
            if len(path) == 1:
                top[path[0]] = value
            else:
                nested.setdefault(path[0], {})[path[1]] = value
        for name, fields in nested.items():
            top[name] = dataclasses.replace(getattr(self, name), **fields)
        return dataclasses.replace(self, **top) if top else self

    def for_new_run(self, *, source_dir: str | None) -> RunSettings:
        """With the paths a new run stores: ``source_dir`` and ``cwd`` absolute, ``cwd`` existing."""
        from pathlib import Path

        if self.cwd is not None and not Path(self.cwd).is_dir():
            raise ScriptError(f"--cwd {self.cwd}: no such folder")
        return dataclasses.replace(
            self, cwd=str(Path(self.cwd).resolve()) if self.cwd is not None else None,
            source_dir=str(Path(source_dir).resolve()) if source_dir is not None else None,
        )

    def protocol_for(self, code: str) -> Protocol:
        return self.protocol.protocol_for(code)

    # ---- run.json ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """run.json's ``settings`` (the protocol options live in run.json's ``protocol``)."""
        return {
            "steps": self.steps,
            "max_time": self.max_time,
            "smoke": self.smoke,
            "ablate": self.ablate,
            "goal": self.goal,
            "proposer": {"name": self.proposer.name, **self.proposer.options()},
            "executor": {"name": self.executor.name, **self.executor.options()},
            "policy": {"patience": self.policy.patience, "debug_prob": self.policy.debug_prob},
            "source_dir": self.source_dir,
            "cwd": self.cwd,
            **({"eval": self.evaluation.to_dict()} if self.evaluation.wanted else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True,
                  protocol: Protocol | None = None) -> RunSettings:
        """From run.json's ``settings`` (or a hand-written part of it: missing keys take their
        defaults, a missing ``proposer`` is ``mutate``). ``strict``: unknown keys are an error
        (they are ignored for run.json files, which may come from other versions)."""
        values = dict(data)
        nested: dict[str, Any] = {}
        for name, kind in (("proposer", ProposerSettings), ("executor", ExecutorSettings),
                           ("policy", PolicySettings)):
            raw = values.pop(name, None)
            if name == "proposer":
                raw = {"name": "mutate"} if raw is None else {"name": raw} if isinstance(raw, str) else raw
            nested[name] = _group_from(kind, raw or {}, strict=strict, where=name)
        values.pop("protocol", None)
        raw_eval = values.pop("eval", None)
        if isinstance(raw_eval, Mapping):
            nested["evaluation"] = EvalSettings.from_dict(raw_eval)
        elif raw_eval is not None:
            raise EvaluatorError(f"settings['eval'] must be a mapping, got {raw_eval!r}")
        top = _known(cls, values, strict=strict, where="")
        if protocol is not None:
            top["protocol"] = ProtocolSettings.of(protocol)
        return cls(**top, **nested)

    @classmethod
    def coerce(cls, settings: RunSettings | Mapping[str, Any] | None) -> RunSettings:
        """RunSettings from what ``Search(settings=...)`` takes."""
        if isinstance(settings, RunSettings):
            return settings
        return cls.from_dict(settings or {})


def _known(cls: type, values: Mapping[str, Any], *, strict: bool, where: str) -> dict[str, Any]:
    """The entries of ``values`` that are fields of ``cls`` (None: default); unknown ones fail if strict."""
    fields = {f.name for f in dataclasses.fields(cls) if "group" not in f.metadata}
    unknown = sorted(set(values) - fields)
    if unknown and strict:
        prefix = f"{where}." if where else ""
        names = ", ".join(prefix + u for u in unknown)
        groups = [f.name for f in dataclasses.fields(cls) if "group" in f.metadata and f.name != "protocol"]
        valid = ", ".join(sorted([prefix + f for f in fields] + groups))
        raise _error_of(cls)(f"unknown setting(s): {names}. Valid settings: {valid}")
    return {k: v for k, v in values.items() if k in fields and v is not None}


def _group_from(cls: type, raw: Any, *, strict: bool, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise _error_of(cls)(f"settings[{where!r}] must be a mapping, got {raw!r}")
    return cls(**_known(cls, raw, strict=strict, where=where))


register(RunSettings, shared={LLMOptions: ProposerSettings})

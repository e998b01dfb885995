"""The grader: after a node's run ends well, its evaluator runs as a job of its own.

``GradingExecutor`` wraps the run's executor, so an evaluation gets what a node gets (process
group, time limit, memory cap, sandbox, warm interpreter) with none of the node's reach:

- the node's job is submitted with ``hidden_paths`` (the evaluator, its data, the holdout): a
  sandboxing executor makes them absent for the node;
- when the run ends well, ``eval/nodes/<id>/ran.json`` records it, then the evaluator's job runs
  with the node's folder as its working folder and its data visible (``extra_ro_binds``);
- the future the search waits on resolves once, with a ``GradedResult``: the node's run plus the
  ``Evaluation``. A run that failed resolves as it is: there is nothing to grade.

A search killed between a node's run and its evaluation finds ``ran.json`` when it resumes and
redoes only the evaluation.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..core.errors import ExecutorError
from ..core.metrics import failure_reason, parse_metric, read_metric, read_result
from ..executors import Executor, Job, JobResult
from ._files import EvalFiles
from ._spec import EvalSpec

logger = logging.getLogger(__name__)

VALIDATION, HOLDOUT = "validation", "holdout"
TAIL_CAP = 2000


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One run of the evaluator on one node's outputs."""

    split: str  # validation | holdout
    state: str  # ok | failed | timeout | no_metric | cancelled
    metric: float | None
    problem: str | None  # why there is no usable metric, in one line
    exec_time: float
    warm: bool
    output_tail: str

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def to_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "time": round(self.exec_time, 4), "warm": self.warm}
        if self.problem:
            out["reason"] = self.problem
        if self.output_tail:
            out["tail"] = self.output_tail[-TAIL_CAP:]
        return out


@dataclasses.dataclass(frozen=True)
class GradedResult(JobResult):
    """A node's job result with its evaluation; what the search's evaluation hook reads."""

    evaluation: Evaluation | None = None
    self_reported: float | None = None  # what the node itself printed or report()ed
    rerun: bool = True  # False: the run was done before a restart, only the evaluation is new


def script_hash(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


class Grader:
    """Builds evaluator jobs and reads what they say; knows the run's eval folder and protocol."""

    def __init__(self, spec: EvalSpec, files: EvalFiles, *, metric: str, seed: int,
                 source_dir: str | None = None) -> None:
        self.spec = spec
        self.files = files
        self.metric = metric
        self.seed = seed
        self.source_dir = source_dir

    @property
    def node_hidden(self) -> tuple[Path, ...]:
        """What no node may see: the eval folder, the user's original data paths, and the run's
        record (run.json holds the evaluator's code and data paths; the journal its output)."""
        record = (self.files.run_path / "run.json", self.files.run_path / "journal.jsonl")
        return (self.files.root, *self.spec.secret_paths, *record)

    def eval_job(self, node_id: int, split: str = VALIDATION) -> Job:
        files, spec = self.files, self.spec
        outputs = files.outputs(node_id)
        work = files.node_dir(node_id)
        prefix = "eval" if split == VALIDATION else "holdout"
        result = work / f"{prefix}-result.json"
        result.unlink(missing_ok=True)
        seed = str(self.seed)
        env = {
            "AUTORESEARCH_SEED": seed, "PYTHONHASHSEED": seed,
            "AUTORESEARCH_EVAL_SPLIT": split,
            "AUTORESEARCH_EVAL_DATA": str(files.data_dir),
            "AUTORESEARCH_OUTPUTS": str(outputs), "AUTORESEARCH_NODE_DIR": str(outputs),
            "AUTORESEARCH_NODE_ID": str(node_id),
            "AUTORESEARCH_RESULT": str(result),
            "AUTORESEARCH_METRIC": self.metric,
            "AUTORESEARCH_TIME_BUDGET": f"{spec.timeout:g}",
        }
        if spec.use:
            env["AUTORESEARCH_EVAL_USE"] = str(files.use_file)
        visible = [outputs, files.script, files.data_dir, *map(Path, spec.data)]
        if files.use_file.exists():
            visible.append(files.use_file)
        hidden: tuple[Path, ...] = ()
        if split == HOLDOUT:
            env["AUTORESEARCH_HOLDOUT"] = str(files.holdout_dir)
            visible += [files.holdout_dir, *map(Path, spec.holdout)]
        else:  # the holdout stays unseen by everything until the end
            hidden = (files.holdout_dir, *map(Path, spec.holdout))
        if self.source_dir:
            paths = [self.source_dir, *filter(None, [os.environ.get("PYTHONPATH")])]
            env.update(AUTORESEARCH_SOURCE_DIR=self.source_dir, PYTHONPATH=os.pathsep.join(paths))
        return Job(
            node_id=node_id, script=files.script, workdir=work, timeout=spec.timeout, env=env,
            log_name=f"{prefix}.log", cwd=outputs, hidden_paths=hidden, extra_ro_binds=tuple(visible),
        )

    def read(self, job: Job, result: JobResult, split: str = VALIDATION) -> Evaluation:
        """What the evaluator's job says about the node: its metric, or why there is none."""
        tail = result.output_tail or ""

        def done(state: str, metric: float | None = None, problem: str | None = None) -> Evaluation:
            return Evaluation(split, state, metric, self.redact(problem), result.exec_time, result.warm, tail)

        if result.cancelled:
            return done("cancelled", problem="the evaluation was cancelled")
        if result.timed_out:
            return done("timeout", problem=f"the evaluator timed out after {self.spec.timeout:g} s "
                                           "(raise --eval-timeout or make it faster)")
        if result.error or result.exit_code:
            line = result.error or failure_reason(tail, result.exit_code)
            hint = ""
            if "FileNotFoundError" in line or "No such file" in line:
                hint = " (the evaluator runs in the node's folder: the node must write the files it reads)"
            return done("failed", problem=f"the evaluator failed: {line}{hint}")
        output = _read_text(result.log_path)
        metric, why = read_metric(name=self.metric, output=output,
                                  result_path=Path(job.workdir) / f"{job.log_name[:-4]}-result.json")
        if why:
            if metric is None and "no metric" in why:
                why = f"the evaluator printed no '{self.metric}: <number>' line and did not call report()"
            else:
                why = f"the evaluator's {why}"
            return done("no_metric", metric, why)
        return done("ok", metric)

    def redact(self, text: str | None) -> str | None:
        """A reason without the paths of evaluator-only data (it reaches prompts and reports)."""
        if not text:
            return text
        for path in sorted({*self.spec.secret_paths, self.files.data_dir, self.files.holdout_dir, self.files.root},
                           key=lambda p: -len(str(p))):
            text = text.replace(str(path), "<evaluator-only data>")
        return text

    def escape(self, node_id: int, limit: int = 20_000) -> str | None:
        """A link in the node's folder that leads outside it, or None.

        The evaluator sees data the node does not; a node could still leave ``preds.npy`` as a
        symlink to the labels' path and let the evaluator read them for it. Such an output is
        refused, except links into the source folder (the executor mirrors its files into each
        node folder) that lead to nothing only the evaluator may read."""
        root = self.files.outputs(node_id)
        base = os.path.realpath(root)
        source = os.path.realpath(self.source_dir) if self.source_dir else None
        secret = [os.path.realpath(p) for p in (*self.spec.secret_paths, self.files.data_dir,
                                                 self.files.holdout_dir, self.files.root)]

        def inside(target: str, folder: str) -> bool:
            return os.path.commonpath([folder, target]) == folder
        seen = 0
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                seen += 1
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    target = os.path.realpath(path)
                    mirrored = source is not None and inside(target, source) and not any(
                        inside(target, s) for s in secret)
                    if not inside(target, base) and not mirrored:
                        return os.path.relpath(path, root)
            if seen > limit:
                return None
        return None

    def self_reported(self, node_id: int, log_path: Path) -> float | None:
        """The node's own number: shown next to the graded one, never used to decide."""
        value: Any = read_result(self.files.outputs(node_id) / "result.json").get(self.metric)
        if value is None:
            value = parse_metric(_read_text(log_path), self.metric)
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None


class GradingExecutor(Executor):
    """An executor that grades each full run of a node with the evaluator; see the module doc."""

    def __init__(self, inner: Executor, grader: Grader) -> None:
        self.inner = inner
        self.grader = grader
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    @property
    def hides_paths(self) -> bool:
        """Whether the wrapped executor honours ``Job.hidden_paths`` (a sandbox)."""
        return bool(getattr(self.inner, "hides_paths", False))

    def __getattr__(self, name: str) -> Any:  # warm_pid, wait_warm, memory_limit ... of the inner one
        if name in ("inner", "grader"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def start(self, *, warm_imports: Sequence[str] = (), env: Mapping[str, str] | None = None,
              workspace: Path | None = None) -> None:
        from ..executors.local import top_level_imports

        try:
            extra = top_level_imports(self.grader.spec.code, submodules=True)
        except SyntaxError:
            extra = []
        imports = list(dict.fromkeys([*warm_imports, *extra]))  # the evaluator runs warm as well
        self.inner.start(warm_imports=imports, env=env, workspace=workspace)

    def submit(self, *, job: Job) -> "concurrent.futures.Future[JobResult]":
        hidden = dataclasses.replace(job, hidden_paths=tuple(dict.fromkeys([*job.hidden_paths, *self.grader.node_hidden])))
        if job.env.get("AUTORESEARCH_SMOKE") == "1":
            return self.inner.submit(job=hidden)  # a smoke run only checks that the node starts
        outer: concurrent.futures.Future[JobResult] = concurrent.futures.Future()
        outer.set_running_or_notify_cancel()
        with self._lock:
            self._cancelled.discard(job.node_id)
        code_hash = script_hash(job.script)
        # a replicate run (output-run2.log ...) always trains again: only the first run is resumable
        first = job.log_name == "output.log"
        ran = self.grader.files.load_ran(job.node_id, code_hash) if code_hash and first else None
        if ran is not None:  # the run ended well before a restart: evaluate only
            log_path = Path(job.workdir) / job.log_name
            result = JobResult(
                node_id=job.node_id, exit_code=ran.get("exit_code", 0), timed_out=False, cancelled=False,
                exec_time=float(ran.get("exec_time") or 0.0), log_path=log_path,
                output_tail=_read_text(log_path)[-4096:], warm=bool(ran.get("warm")),
            )
            self._evaluate(job, result, outer, ran.get("self_reported"), rerun=False)
            return outer
        inner = self.inner.submit(job=hidden)
        inner.add_done_callback(lambda f: self._after_run(job, code_hash, f, outer))
        return outer

    def _after_run(self, job: Job, code_hash: str, future: concurrent.futures.Future, outer: concurrent.futures.Future) -> None:
        try:
            result = future.result()
        except BaseException as err:  # noqa: BLE001 - the executor broke; the search sees it
            outer.set_exception(err)
            return
        if result.cancelled or result.timed_out or result.error or result.exit_code:
            outer.set_result(result)  # a failed run: nothing to grade
            return
        self_reported = self.grader.self_reported(job.node_id, result.log_path)
        if job.log_name == "output.log":  # replicate runs are not resumable on their own (see submit)
            try:
                self.grader.files.save_ran(job.node_id, {
                    "code_hash": code_hash, "exit_code": result.exit_code, "exec_time": result.exec_time,
                    "warm": result.warm, "self_reported": self_reported, "t": time.time(),
                })
            except OSError as err:  # only resume-after-a-crash needs it; the evaluation goes on
                logger.warning("node %s: cannot record its run for resume: %s", job.node_id, err)
        self._evaluate(job, result, outer, self_reported, rerun=True)

    def _evaluate(self, job: Job, run: JobResult, outer: concurrent.futures.Future,
                  self_reported: float | None, *, rerun: bool) -> None:
        eval_job = self.grader.eval_job(job.node_id)

        def graded(evaluation: Evaluation) -> GradedResult:
            fields = {f.name: getattr(run, f.name) for f in dataclasses.fields(JobResult)}
            return GradedResult(**fields, evaluation=evaluation, self_reported=self_reported, rerun=rerun)

        link = self.grader.escape(job.node_id)
        if link is not None:
            outer.set_result(graded(refused(link)))
            return

        def finished(f: concurrent.futures.Future) -> None:
            try:
                outer.set_result(graded(self.grader.read(eval_job, f.result())))
            except BaseException as err:  # noqa: BLE001
                outer.set_exception(err)

        with self._lock:
            if job.node_id in self._cancelled:
                outer.set_result(dataclasses.replace(run, cancelled=True))
                return
            try:
                inner = self.inner.submit(job=eval_job)
            except ExecutorError:  # closing
                outer.set_result(dataclasses.replace(run, cancelled=True))
                return
        inner.add_done_callback(finished)

    def evaluate(self, node_id: int, split: str) -> "concurrent.futures.Future[Evaluation]":
        """Run the evaluator alone on a finished node's outputs (the holdout at the end)."""
        job = self.grader.eval_job(node_id, split)
        out: concurrent.futures.Future[Evaluation] = concurrent.futures.Future()
        out.set_running_or_notify_cancel()
        link = self.grader.escape(node_id)
        if link is not None:
            out.set_result(refused(link, split))
            return out

        def finished(f: concurrent.futures.Future) -> None:
            try:
                out.set_result(self.grader.read(job, f.result(), split))
            except BaseException as err:  # noqa: BLE001
                out.set_exception(err)

        self.inner.submit(job=job).add_done_callback(finished)
        return out

    def cancel(self, *, node_id: int) -> None:
        with self._lock:
            self._cancelled.add(node_id)
            self.inner.cancel(node_id=node_id)

    def close(self) -> None:
        self.inner.close()


def refused(link: str, split: str = VALIDATION) -> Evaluation:
    return Evaluation(split, "failed", None,
                      f"not evaluated: the node left {link}, a link that leads outside its folder "
                      "(the evaluator reads only the node's own files)", 0.0, False, "")


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


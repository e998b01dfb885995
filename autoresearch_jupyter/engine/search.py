"""The search loop: ask the policy and proposer, check, run, read the metric, keep or revert.

Only this loop changes node state: it alone holds the mutable nodes (its parts, the policy and
the proposer, read them while the loop waits for them). It knows the parts through their
interfaces and tells the world through callbacks (callbacks.py), with snapshots: each event
carries the node and the tree as they were at that moment, frozen, so a subscriber on another
thread never sees a node change under it. The journal is written before any callback runs, so
what a subscriber sees is already on disk.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from .callbacks import Callback, CallbackList
from ..core import noise
from ..core.errors import BaselineError, BudgetExhaustedError, ProposerError, ProtocolError, StorageError
from ..executors import Executor, JobResult, get_executor
from .baseline import check_baseline, smoke_usable
from .guard import Guard
from .jobs import build_job, seed_env, warm_imports
from .judge import Judge
from .learn import Learned, load_for, start_proposal
from .nodes import baseline_node, node_hash, proposed_node
from ..store.journal import Journal
from ..core.metrics import failure_reason
from .infra import disk_full, tolerate
from .ablation import run_ablation
from ..core.node import Node, NodeSnapshot, Operator, Status
from .policy import Decision, GreedyTreePolicy, Policy
from ..proposers import Context, Proposer, get_proposer
from ..evaluation import Grading
from ..core.protocol import Protocol
from ..store.lock import RunLock
from ..core.settings import ProtocolSettings, RunSettings
from ..store.runs import RunDir, summarize
from ..core.tree import Tree, TreeSnapshot
from .results import Outcome
from .resuming import check_ablatable, open_for_resume

__all__ = ["Outcome", "Search"]

logger = logging.getLogger(__name__)

_POLL = 0.25  # seconds between checks for stop requests while nodes run


class Search:
    """One run of the tree search over a baseline script.

    Build it with the baseline ``code`` and a fixed ``protocol``, then call :meth:`run`, which
    blocks until the budget is spent, nothing is left to try, or :meth:`stop` is called (from
    any thread). :meth:`resume` continues a run from its directory.
    """

    def __init__(
        self,
        *,
        code: str,
        protocol: Protocol,
        runs_dir: str | Path = ".autoresearch",
        name: str | None = None,
        settings: RunSettings | Mapping[str, Any] | None = None,
        source: str | None = None,
        proposer: Proposer | None = None,
        executor: Executor | None = None,
        policy: Policy | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        if not code.strip():
            raise ProtocolError("the baseline script is empty")
        from ..proposers.mutate import check_declarations

        check_declarations(code)  # a bad ``# search:`` line is the user's to fix, before anything runs
        self.code = code
        self.protocol = protocol
        # typed and checked once; a mapping is run.json's shape (a missing proposer is mutate)
        self.settings = dataclasses.replace(
            RunSettings.coerce(settings), protocol=ProtocolSettings.of(protocol))
        self._runs_dir = Path(runs_dir)
        self._name = name
        self._source = source
        self._proposer = proposer
        self._executor = executor
        self._policy = policy
        self.callbacks = CallbackList(callbacks)
        self.run_dir: RunDir | None = None
        self._tree = Tree()  # the live tree: only this loop changes it
        self._snapshot = TreeSnapshot()  # the tree as of the last event, for everyone else
        self._resumed = False
        self._reseeded = False
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._exhausted: set[tuple[int, Operator]] = set()
        self._inflight: dict[concurrent.futures.Future[JobResult], tuple[Node, str]] = {}
        self._journal: Journal | None = None
        self._guard = Guard(protocol=protocol)
        self._started = 0.0
        self._closing = False  # set while cancelling: nothing new may start
        self.learned = Learned()  # lessons of earlier runs (--learn-from), loaded by prepare()
        self._sigma = 0.0  # the noise floor, from the baseline's runs
        self._runs: dict[int, list[dict[str, Any]]] = {}  # fields of each finished run of a node still running
        self._smoke = bool(self.settings.smoke)
        self._ambiguous: str | None = None
        self._ablate_only = False
        self._infra_failed = False
        self._run_lock: RunLock | None = None  # the run's writer lock, held from prepare() to the end of run()
        # ---- separate evaluation (evaluation/): None unless the run has an evaluator (--eval) ----
        self._grading, self.settings = Grading.from_settings(self.settings, protocol)

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def resume(
        cls,
        run_dir: RunDir,
        *,
        steps: int | None = None,
        proposer: Proposer | None = None,
        executor: Executor | None = None,
        callbacks: Iterable[Callback] = (),
        ablate_only: bool = False,
    ) -> "Search":
        """Continue a run: finished nodes are kept, unfinished ones run again, same protocol.

        ``ablate_only`` proposes nothing new: it only ablates the path to the best (``autoresearch
        ablate``); a run without a best beyond its baseline is refused (AblationError).

        The proposer and the policy are reseeded (``reseed_rng``) from the protocol's seed and the
        number of nodes, so the resumed session is reproducible and draws anew.
        """
        lock, replay, settings = open_for_resume(run_dir)
        root = replay.tree.root
        assert root is not None  # open_for_resume refuses a run without a baseline
        if steps is not None:
            settings = dataclasses.replace(settings, steps=steps)
        search = cls(
            code=root.code,
            protocol=run_dir.protocol,
            settings=settings,
            proposer=proposer,
            executor=executor,
            callbacks=callbacks,
        )
        search.run_dir = run_dir
        search._run_lock = lock
        search._tree = replay.tree
        search._snapshot = replay.tree.snapshot()
        search._resumed = True
        for node in search._tree:
            search._guard.remember(node.code)
            if node.parent is not None and node.status is Status.BUGGY:
                search._guard.failures.record(node, search._tree[node.parent])
        search._sigma = noise.sigma_bound(search._tree)
        search._ablate_only = ablate_only
        if ablate_only:
            check_ablatable(search._tree, search.protocol, run_dir.id)
        return search

    def _build_parts(self) -> None:
        settings = self.settings
        if self._proposer is None:
            self._proposer = get_proposer(settings.proposer.name, seed=self.protocol.seed, **settings.proposer.options())
        if self._executor is None:
            self._executor = get_executor(settings.executor.name, **settings.executor.options())
        if self._policy is None:
            self._policy = GreedyTreePolicy(seed=self.protocol.seed, patience=settings.policy.patience,
                                            debug_prob=settings.policy.debug_prob)

    # ---- public API --------------------------------------------------------------------

    @property
    def proposer(self) -> Proposer | None:
        return self._proposer

    @property
    def name(self) -> str | None:
        """The run's name (``digits-1``), given or read back from its folder."""
        run_dir = getattr(self, "run_dir", None)
        return run_dir.name if run_dir is not None else self._name

    def stop(self) -> None:
        """Ask the loop to stop: running nodes are cancelled, the journal is kept. Thread-safe."""
        self._stop.set()

    @property
    def tree(self) -> TreeSnapshot:
        """The tree as of the last event: a snapshot that later events do not change. Thread-safe."""
        return self._snapshot

    @property
    def best(self) -> Node | None:
        return self._snapshot.best(self.protocol)

    def subscribe(self, callback: Callback) -> None:
        """Add a subscriber to the search's events (call before :meth:`run`)."""
        self.callbacks.callbacks.append(callback)

    def prepare(self) -> RunDir:
        """Build the proposer, executor and policy, then make the run folder; idempotent.

        Bad settings fail here, before any folder exists. Faces call it when they must put
        files into the run folder (e.g. kernel variables) before the baseline runs.
        """
        self._build_parts()
        if self._resumed and not self._reseeded:
            # A resumed session draws from its own stream: a function of the protocol's seed and
            # the nodes already there, so it is reproducible, whatever the parts drew before, and
            # it does not replay the draws of the session it continues (which would re-propose
            # what was tried).
            assert self._policy is not None and self._proposer is not None
            seed = random.Random(f"{self.protocol.seed}:resume:{len(self._tree)}").getrandbits(32)
            self._policy.reseed_rng(seed)
            self._proposer.reseed_rng(seed)
            self._reseeded = True
        if self.run_dir is None:
            self.run_dir = RunDir.create(
                self._runs_dir,
                name=self._name,
                protocol=self.protocol,
                settings=self.settings.to_dict(),
                source=self._source,
            )
            self.learned = load_for(self)
        if self._run_lock is None:
            self._run_lock = self.run_dir.lock("run")
        if self._grading is not None:  # ---- evaluation hook 1: the grader wraps the executor ----
            assert self._executor is not None
            self._executor = self._grading.wrap(self._executor, self.run_dir.path)
        return self.run_dir

    def run(self) -> Outcome:
        """Run the search to its end; raises BaselineError when the baseline does not work."""
        self.prepare()
        assert self._executor is not None and self.run_dir is not None
        self._journal = self.run_dir.journal()
        self._started = time.monotonic()
        state: str = "failed"
        reason: str | None = "internal error"
        try:
            (self._journal.run_resumed if self._resumed else self._journal.run_started)()
            self.callbacks.on_run_started(
                run_id=self.run_dir.id, run_dir=str(self.run_dir.path), resumed=self._resumed,
                protocol=self.protocol, tree=self._snapshot, proposer=getattr(self._proposer, "name", "?"),
                executor=self._executor.describe(),
            )
            self._smoke = smoke_usable(self.code, self.protocol, self._smoke)  # --smoke needs AUTORESEARCH_SMOKE read
            self._executor.start(warm_imports=warm_imports(self.code), env=seed_env(self.protocol),
                                 workspace=self.run_dir.path / "nodes")
            state, reason = self._loop()
            if state == "finished" and (self.settings.ablate or self._ablate_only):
                run_ablation(self)
            if self._grading is not None and state == "finished":  # ---- evaluation hook 3: holdout ----
                self._grading.holdout(self._tree, self._record_meta)
        except KeyboardInterrupt:
            state, reason = "stopped", "interrupted by the user"
        except BaselineError as err:
            state, reason = "failed", str(err).splitlines()[0]
            raise
        except OSError as err:  # a write of ours failed: one line, the node that hit it runs again on resume
            if not StorageError.is_storage(err):
                raise
            state, reason = "failed", str(StorageError.from_os_error(err))
            raise StorageError(f"{reason}; the run stopped: free space, then `autoresearch resume {self.run_dir.id}`") from None
        except StorageError as err:
            state, reason = "failed", str(err)
            raise StorageError(f"{reason}; the run stopped: free space, then `autoresearch resume {self.run_dir.id}`") from None
        finally:
            try:
                self._cancel_all()
                self._executor.close()
                self._finish(state, reason)
            finally:
                if self._run_lock is not None:
                    self._run_lock.release()
                    self._run_lock = None
        return Outcome(self.run_dir.id, self.run_dir.path, state, reason, self.protocol, self._snapshot)

    # ---- the loop ----------------------------------------------------------------------

    def _loop(self) -> tuple[str, str | None]:
        root = self._tree.root
        if root is None:
            root = self._create_baseline()
        if not root.status.is_finished() or root.status is Status.CANCELLED:
            self._submit(root)
            self._drain(until_empty=True)
            if self._stop.is_set():
                return "stopped", "stopped by the user"
        check_baseline(self._tree.root, protocol=self.protocol, settings=self.settings, ambiguous=self._ambiguous,
                       grading=self._grading)
        self._guard.set_baseline(self._tree.root.code)  # type: ignore[union-attr]
        self._sigma = noise.sigma_bound(self._tree)  # the keep rule errs against noise
        if self._ablate_only:
            return "finished", "ablation of the best node"
        start = start_proposal(self.learned, root.code) if len(self._tree) == 1 else None
        if start is not None:  # a first node from the earlier best values
            if (first := self._node_from(Decision(0, Operator.IMPROVE), root, start)).status is Status.PENDING:
                self._submit(first)
        # Unfinished nodes of an interrupted run are run again, ids and code unchanged.
        for unfinished in list(self._tree):
            if unfinished.id != 0 and unfinished.status in (Status.PENDING, Status.RUNNING, Status.CANCELLED):
                self._submit(unfinished)
        steps = self.settings.steps
        nothing_left = False
        ending: tuple[str, str] | None = None  # set when the proposer cannot go on
        while True:
            if self._stop.is_set():
                return "stopped", "stopped by the user"
            if self._time_up():
                return "finished", f"max time of {self.settings.max_time:g} s reached"
            while (
                not nothing_left
                and ending is None
                and len(self._inflight) < self._capacity()
                and self._spent() < steps
                and not self._stop.is_set()
            ):
                try:
                    node = self._propose_next()
                except BudgetExhaustedError as err:
                    ending = ("finished", str(err))
                    break
                except ProposerError as err:
                    logger.debug("proposer failed", exc_info=True)
                    ending = ("failed", str(err))
                    break
                if node is None:
                    nothing_left = True
                elif node.status is Status.PENDING:
                    self._submit(node)
            if not self._inflight:
                if ending is not None:
                    return ending  # nodes already running were let finish
                if self._spent() >= steps:
                    return "finished", f"step budget of {steps} nodes spent"
                return "finished", "no unexplored moves left"
            self._drain(until_empty=False)
            nothing_left = False  # a finished node may open new moves

    def _spent(self) -> int:
        """Nodes the step budget counts: every one but the baseline and ablation runs."""
        return sum(1 for n in self._tree if n.operator not in (Operator.BASELINE, Operator.ABLATE))

    def _capacity(self) -> int:
        assert self._executor is not None
        return max(1, self._executor.capacity)

    def _time_up(self) -> bool:
        max_time = self.settings.max_time
        return max_time is not None and time.monotonic() - self._started >= max_time

    def _progress(self) -> float:
        steps = max(1, self.settings.steps)
        progress = self._spent() / steps
        max_time = self.settings.max_time
        if max_time:
            progress = max(progress, (time.monotonic() - self._started) / max_time)
        return min(1.0, progress)

    def _drain(self, *, until_empty: bool) -> None:
        """Wait for running jobs; handle each as it finishes. Returns after at least one."""
        while self._inflight:
            timeout = _POLL
            max_time = self.settings.max_time
            if max_time is not None:
                timeout = min(timeout, max(0.0, max_time - (time.monotonic() - self._started)))
            done, _ = concurrent.futures.wait(
                list(self._inflight), timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                node, stage = self._inflight.pop(future)
                self._handle(node, stage, future.result())
            if self._stop.is_set() or self._time_up():
                self._cancel_all()
                return
            if done and not until_empty:
                return

    # ---- nodes -------------------------------------------------------------------------

    def _create_baseline(self) -> Node:
        node = baseline_node(self.code)
        self._add(node)
        return node

    def _propose_next(self) -> Node | None:
        """Ask the policy and the proposer for the next node; None when nothing is left."""
        assert self._policy is not None and self._proposer is not None
        while True:
            decision = self._policy.next(
                tree=self._tree, protocol=self.protocol,
                operators=self._proposer.operators, exhausted=self._exhausted,
            )
            if decision is None:
                return None
            parent = self._tree[decision.parent]
            context = Context(
                protocol=self.protocol, tree=self._tree, parent=parent, operator=decision.operator,
                progress=self._progress(), goal=self.settings.goal,
                is_known=functools.partial(self._known, parent.code),
                grading=self._grading.contract if self._grading is not None else "",  # ---- evaluation hook 4 ----
            )
            skipped = len(self.learned.skipped)
            proposal = self._proposer.propose(context=context)
            if proposal is None:
                self._exhausted.add((decision.parent, decision.operator))
                continue
            if len(self.learned.skipped) > skipped:  # earlier failures steered this proposal
                proposal.meta.setdefault("learned_from", self.learned.run_ids)
            return self._node_from(decision, parent, proposal)

    def _known(self, parent_code: str, code: str) -> bool:
        """Tried in this run, or known from earlier runs' lessons to fail (counted as skipped)."""
        return self._guard.is_known(code) or self.learned.skip(parent_code, code)

    def _node_from(self, decision: Decision, parent: Node, proposal: Any) -> Node:
        node = proposed_node(self._tree.next_id(), decision, parent, proposal, reject=self._rejects)
        self._add(node)
        return node

    def _rejects(self, parent_code: str, code: str) -> str | None:
        """Why ``code`` may not run: the guard's reason, or a failure known from earlier runs."""
        return self._guard.check(code=code, parent_code=parent_code) or self.learned.known_failure(parent_code, code)

    _hash = staticmethod(node_hash)  # ablation.py hashes its candidates with it

    def _publish(self, node: Node) -> NodeSnapshot:
        """Freeze ``node`` as it is now into the tree snapshot that subscribers see."""
        snap = node.snapshot()
        with self._lock:
            self._snapshot = self._snapshot.with_node(snap)
        return snap

    def _add(self, node: Node) -> None:
        assert self.run_dir is not None and self._journal is not None
        with self._lock:
            self._tree.add(node)
        self._guard.remember(node.code)
        self.run_dir.write_node_script(node.id, node.code)
        self._journal.node_created(node)
        snap = self._publish(node)
        self.callbacks.on_node_created(node=snap, tree=self._snapshot)
        if node.status is Status.REJECTED:
            self.callbacks.on_node_finished(node=snap, tree=self._snapshot)

    def _submit(self, node: Node, stage: str | None = None) -> None:
        assert self._executor is not None and self.run_dir is not None and self._journal is not None
        two_stage = self._smoke and node.id != 0 and node.operator is not Operator.ABLATE
        stage = stage or ("smoke" if two_stage else "full")
        job = build_job(node, stage, protocol=self.protocol, settings=self.settings, run_dir=self.run_dir)
        if stage == "smoke" or (stage == "full" and not two_stage):  # the first stage of the node starts it
            self._runs.pop(node.id, None)
            with self._lock:
                node.status, node.started_at = Status.RUNNING, time.time()
                node.metric = node.kept = node.reason = None
            self._journal.node_started(node.id, t=node.started_at)
            self.callbacks.on_node_started(node=self._publish(node), tree=self._snapshot)
        self._inflight[self._executor.submit(job=job)] = (node, stage)

    def _handle(self, node: Node, stage: str, result: JobResult) -> None:
        infra = result.infra_error or disk_full(
            result, failure_reason(result.output_tail, result.exit_code), Path(result.log_path).parent
        )
        if infra:  # this machine failed, not the node: stop; the node stays unfinished and runs on resume
            self._infra_failed = True
            journal = self._journal
            assert journal is not None
            tolerate(lambda: journal.node_updated(node.id, meta={"infra_failure": infra}), "not recorded")
            raise StorageError(f"node {node.id}: {infra}")
        if stage == "smoke" and not (result.cancelled or result.timed_out or result.exit_code):
            if not self._closing:
                self._submit(node, "full")
                return
            result = dataclasses.replace(result, cancelled=True)  # stopping: no full run now
        assert self.run_dir is not None
        judge = Judge(self.protocol, self._tree, self._sigma, self._grading, self._ambiguous)
        fields = judge.judge(node, stage, result, self.run_dir.node_dir(node.id))
        self._ambiguous = judge.ambiguous
        if stage != "smoke":
            runs = self._runs.setdefault(node.id, [])
            runs.append(fields)
            if fields["status"] is Status.OK and len(runs) < judge.runs_wanted(node, runs) and not self._closing:
                self._submit(node, f"run{len(runs) + 1}")  # the noise floor, or confirming a new best
                return
            fields = judge.combine(node, self._runs.pop(node.id))
        previous = self._snapshot.best(self.protocol)
        with self._lock:
            for key, value in fields.items():
                setattr(node, key, value)
            best_now = self._tree.best(self.protocol)
            if node.operator not in (Operator.BASELINE, Operator.ABLATE):
                node.new_best = fields["new_best"] = bool(
                    best_now is not None and best_now.id == node.id and (previous is None or previous.id != node.id)
                )
        assert self._journal is not None and self._proposer is not None
        self._journal.node_finished(node.id, **fields)
        if node.parent is not None and node.status is Status.BUGGY:
            self._guard.failures.record(node, self._tree[node.parent])
        snap = self._publish(node)
        if node.operator is not Operator.ABLATE:  # the proposer learns from the search, not from ablation
            self._proposer.on_node_finished(node=node, tree=self._tree)
        self.callbacks.on_node_finished(node=snap, tree=self._snapshot)
        best = self._snapshot.best(self.protocol)
        if best is not None and (previous is None or best.id != previous.id):
            self.callbacks.on_best_changed(node=best, previous=previous, tree=self._snapshot)

    def _record_meta(self, node: Node, meta: dict[str, Any]) -> None:
        """Merge facts learnt after a node finished (its holdout score) into it and the journal."""
        assert self._journal is not None
        with self._lock:
            node.meta = {**node.meta, **meta}
        self._journal.node_updated(node.id, meta=meta)
        self._publish(node)

    def _cancel_all(self) -> None:
        if not self._inflight or self._executor is None:
            return
        self._closing = True
        for node, _ in list(self._inflight.values()):
            self._executor.cancel(node_id=node.id)
        for future, (node, stage) in list(self._inflight.items()):
            try:
                result = future.result(timeout=30)
            except Exception:  # the executor itself broke; record what we know
                logger.exception("node %s: no result after cancel", node.id)
                continue
            finally:
                self._inflight.pop(future, None)
            if self._infra_failed:  # stopping over a broken disk: leave the others unfinished too
                continue
            self._handle(node, stage, result)

    def _finish(self, state: str, reason: str | None) -> None:
        assert self.run_dir is not None
        journal = self._journal
        if journal is not None:  # the disk that stopped the run may refuse these too: warnings then
            tolerate(lambda: journal.run_finished(state, reason, summary=summarize(self._tree, self.protocol)),
                     "could not record the end of the run")
            tolerate(journal.close, "could not close the journal")
        self.callbacks.on_run_finished(
            state=state, reason=reason, tree=self._snapshot, best=self._snapshot.best(self.protocol),
            run_id=self.run_dir.id, run_dir=str(self.run_dir.path), protocol=self.protocol,
            learned=self.learned.summary() if self.learned else None,
        )


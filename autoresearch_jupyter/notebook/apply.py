"""``%autoresearch apply``: run a node's training cell in the kernel, so its model is there.

A search only ever ran the cell in subprocesses; the user wants the fitted model, not a script.
Applying runs the node's cell (its code after the frozen setup) as a cell of this kernel, after
checks that can refuse without touching the namespace: the node must have run OK, the kernel
must hold the setup cells and ``--use`` variables the node was built on, and the files the cell
reads must exist from the kernel's folder. A refusal is one line (UsageError); nothing runs.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path
from typing import Any, Protocol as TypingProtocol

from ..core.errors import AutoResearchError
from ..core.node import Node, NodeSnapshot, Status
from ..core.protocol import Protocol
from ..core.tree import Tree
from .code import split_script
from .usevars import LOADER


class NotebookRun(TypingProtocol):
    """What apply reads of a run (``run.NotebookRun`` has it; run.py imports this module)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def protocol(self) -> Protocol: ...
    @property
    def tree(self) -> Tree: ...
    @property
    def best(self) -> Node | None: ...

READ_CALLS = ("open", "load", "loadtxt", "genfromtxt", "fromfile", "imread", "load_svmlight_file")
"""Calls whose first string argument is a file the cell reads (besides ``read_*`` of any kind)."""
USE_HEAD = "# Notebook variables handed over with --use: "


class ApplyError(AutoResearchError):
    """A node cannot be applied to this kernel (it failed, setup or files are missing)."""


def pick_node(run: NotebookRun, node_id: int | None) -> Node:
    """The node to apply: ``node_id``, or the run's best; ApplyError says why not."""
    tree = run.tree
    label = run.name or run.id
    if node_id is None:
        best = run.best
        if best is None:
            raise ApplyError(f"run {label} has no best node yet (its baseline has not finished OK): "
                             "wait for it, or pick one with --node ID")
        return best
    if node_id not in tree:
        raise ApplyError(f"run {label} has no node {node_id} (nodes 0-{len(tree) - 1})")
    node = tree[node_id]
    if node.status is not Status.OK:
        best = run.best
        hint = f", e.g. the best (node {best.id})" if best is not None else ""
        raise ApplyError(f"node {node_id} of run {label} did not run OK ({node.status.value}): "
                         f"apply a node that did{hint}")
    return node


def split_use(setup: str) -> tuple[list[str], str]:
    """(the ``--use`` names, the setup cells' code) of a node's frozen setup section."""
    lines = setup.splitlines(keepends=True)
    names: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(USE_HEAD):
            names = [n.strip() for n in line[len(USE_HEAD):].split(",") if n.strip()]
        if f"= {LOADER}(" in line:
            return names, "".join(lines[i + 1:]).strip("\n")
    return names, setup.strip("\n")


def files_read(code: str) -> list[str]:
    """Relative paths the code reads with a literal name: ``open('x.csv')``, ``pd.read_csv(...)``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    out: list[str] = []
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call) or not call.args:
            continue
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if not (name in READ_CALLS or name.startswith("read_")):
            continue
        first = call.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        if name == "open" and _mode(call) not in ("r", "rb", "rt", ""):
            continue
        path = first.value
        if path and "://" not in path and not os.path.isabs(path) and "\n" not in path:
            out.append(path)
    return out


def _mode(call: ast.Call) -> str:
    mode: ast.expr | None = call.args[1] if len(call.args) > 1 else None
    for kw in call.keywords:
        if kw.arg == "mode":
            mode = kw.value
    if mode is None:
        return ""
    return mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else "r"


def plan_apply(run: NotebookRun, node: Node, *, namespace: dict[str, Any], setup_code: str,
               with_setup: bool = False, cwd: Path | None = None) -> str:
    """The code to run in the kernel for ``node``, or ApplyError before anything runs."""
    setup, cell = split_script(node.code)
    names, node_setup = split_use(setup)
    missing_vars = [n for n in names if n not in namespace]
    if missing_vars:
        raise ApplyError(f"node {node.id} uses kernel variables this kernel does not have "
                         f"({', '.join(missing_vars)}): create them as the notebook did, then apply again")
    if node_setup and not with_setup and node_setup.strip() != setup_code.strip():
        why = "has not run them" if not setup_code.strip() else "has run different ones"
        raise ApplyError(f"node {node.id} was built on setup cells that this kernel {why}: run the notebook's "
                         "%%autoresearch_setup cells as they were, or pass --with-setup to run the node's own")
    code = (node_setup + "\n\n" + cell) if (with_setup and node_setup) else cell
    here = cwd or Path.cwd()
    absent = [p for p in dict.fromkeys(files_read(code)) if not (here / p).exists()]
    if absent:
        shown = ", ".join(absent[:3]) + (", ..." if len(absent) > 3 else "")
        raise ApplyError(f"node {node.id} reads {shown}, which {here} does not have: "
                         "apply from the folder its data is in (os.chdir), or copy the files here")
    return code


def apply_node(shell: Any, run: NotebookRun, node_id: int | None = None, *, setup_code: str = "",
               with_setup: bool = False) -> Node:
    """Run the node's cell in ``shell`` as a cell of its own; returns the node applied."""
    node = pick_node(run, node_id)
    code = plan_apply(run, node, namespace=shell.user_ns, setup_code=setup_code, with_setup=with_setup)
    env = {"AUTORESEARCH_SEED": str(run.protocol.seed),
           "AUTORESEARCH_TIME_BUDGET": f"{run.protocol.time_budget:g}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = shell.run_cell(code, store_history=False, silent=False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    label = run.name or run.id
    metric = f"{run.protocol.metric} {node.metric:.6g}" if node.metric is not None else "no metric"
    best = run.best
    which = "the best" if best is not None and best.id == node.id else f"node {node.id}"
    if getattr(result, "error_in_exec", None) is not None or getattr(result, "error_before_exec", None):
        raise ApplyError(f"node {node.id} of run {label} failed in this kernel (see the traceback above); "
                         "its variables may be partly set")
    print(f"applied node {node.id} of run {label} ({which}, {metric}): its variables are in the kernel")
    return node


def kernel_setup_code(shell: Any) -> str:
    """The setup cells this kernel registered with ``%%autoresearch_setup`` ("" when none)."""
    magics = getattr(getattr(shell, "magics_manager", None), "registry", {}).get("AutoResearch")
    setup = getattr(magics, "setup", None)
    return setup.code if setup is not None else ""


class ApplicableNode(NodeSnapshot):
    """A node of a notebook run, read-only like every snapshot; ``.apply()`` runs its cell in this
    kernel (see ``apply_node``)."""

    _run: NotebookRun

    @classmethod
    def wrap(cls, node: Node, run: NotebookRun) -> ApplicableNode:
        fields = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
        fields["meta"] = dict(fields["meta"])
        out = cls(**fields)
        object.__setattr__(out, "_run", run)
        return out

    def apply(self, *, with_setup: bool = False) -> Node:
        """Put this node's variables (the fitted model ...) into the kernel; ApplyError if it can't."""
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise ApplyError("apply needs an IPython kernel: run it in a notebook")
        return apply_node(shell, self._run, self.id, setup_code=kernel_setup_code(shell), with_setup=with_setup)

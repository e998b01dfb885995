"""The evaluator's corner of a run folder, ``<run>/eval/``: hidden from every node.

::

    eval/evaluate.py              the evaluator as it runs (the user's code, after a loader for --use)
    eval/data/<name>              --eval-data, linked or copied at the start (the evaluator's snapshot)
    eval/holdout/<name>           --holdout, the same
    eval/use.pkl                  notebook variables for the evaluator only (%%autoresearch_eval --use)
    eval/nodes/<id>/ran.json      a node's run ended well and awaits (or had) its evaluation
    eval/nodes/<id>/eval.log      what the evaluator printed for that node; eval-result.json its report()
    eval/nodes/<id>/holdout.log   the same for the holdout split

Nodes never write here (they write only their own ``nodes/<id>/``), so what the evaluator reports
cannot be planted by the code it grades; a sandbox also hides the whole folder from nodes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from ..core.errors import EvaluatorError
from ._spec import EvalSpec, code_sha256

EVAL_DIR = "eval"
SCRIPT = "evaluate.py"
USE_FILE = "use.pkl"
LOADER = "_autoresearch_eval_use"

_LOADER_CODE = '''\
# autoresearch: notebook variables handed to this evaluator only (%%autoresearch_eval --use)
def {loader}(*names, file=None):
    import os, pickle
    path = os.environ.get("AUTORESEARCH_EVAL_USE") or file
    if not path or not os.path.isfile(path):
        raise FileNotFoundError("this evaluator needs " + ", ".join(names) + " from the notebook: "
                                "set AUTORESEARCH_EVAL_USE to its run's eval/{use_file}")
    with open(path, "rb") as f:
        blobs = pickle.load(f)
    return [pickle.loads(blobs[name]) for name in names]


{targets} = {loader}({args})
# autoresearch: end of the loader; the evaluator follows
'''


def loader_code(names: tuple[str, ...], file: str | None = None) -> str:
    if not names:
        return ""
    args = ", ".join(repr(n) for n in names) + (f", file={file!r}" if file else "")
    targets = ", ".join(names) + ("," if len(names) == 1 else "")
    return _LOADER_CODE.format(loader=LOADER, use_file=USE_FILE, targets=targets, args=args)


def runnable_code(spec: EvalSpec, use_file: str | None = None) -> str:
    """The evaluator as it runs: the user's code after the loader of its notebook variables."""
    return loader_code(spec.use, use_file) + spec.code


class EvalFiles:
    """Paths of ``<run>/eval/`` and the few files the grader writes there."""

    def __init__(self, run_path: Path) -> None:
        self.run_path = Path(run_path).resolve()
        self.root = self.run_path / EVAL_DIR

    @property
    def script(self) -> Path:
        return self.root / SCRIPT

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def holdout_dir(self) -> Path:
        return self.root / "holdout"

    @property
    def use_file(self) -> Path:
        return self.root / USE_FILE

    def node_dir(self, node_id: int) -> Path:
        path = self.root / "nodes" / str(int(node_id))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def outputs(self, node_id: int) -> Path:
        """The node's own folder: what the evaluator reads (its working folder)."""
        return self.run_path / "nodes" / str(int(node_id))

    # ---- setting up --------------------------------------------------------------------

    def install(self, spec: EvalSpec) -> None:
        """Write the evaluator and snapshot its data (new runs); checks the hash (resumed runs)."""
        self.root.mkdir(exist_ok=True)
        if code_sha256(spec.code) != spec.sha256:
            raise EvaluatorError(
                f"the evaluator in {self.run_path / 'run.json'} does not match its sha256: run.json was edited; "
                "restore it or start a new run"
            )
        _write(self.script, runnable_code(spec))
        for paths, folder in ((spec.data, self.data_dir), (spec.holdout, self.holdout_dir)):
            folder.mkdir(exist_ok=True)
            for raw in paths:
                source, target = Path(raw), folder / Path(raw).name
                if target.exists():
                    continue  # a resumed run keeps the snapshot taken when it started
                if not source.exists():
                    raise EvaluatorError(f"evaluator data {source} is gone and the run has no copy of it")
                _snapshot(source, target)

    def write_use(self, blobs: Mapping[str, bytes]) -> None:
        import pickle

        self.root.mkdir(exist_ok=True)
        tmp = self.use_file.with_name(f".{USE_FILE}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(dict(blobs), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.use_file)

    # ---- a node between its run and its evaluation -------------------------------------

    def ran_path(self, node_id: int) -> Path:
        return self.root / "nodes" / str(int(node_id)) / "ran.json"

    def save_ran(self, node_id: int, record: Mapping[str, Any]) -> None:
        """Written in place, not through a rename (a rename costs milliseconds on some file
        systems, per node): a torn file does not parse, and the node then simply runs again."""
        (self.node_dir(node_id) / "ran.json").write_text(json.dumps(dict(record), allow_nan=True))

    def load_ran(self, node_id: int, code_hash: str) -> dict[str, Any] | None:
        """The record of a run that ended well for this very code, or None."""
        try:
            data = json.loads(self.ran_path(node_id).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("code_hash") == code_hash else None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP, errno.EEXIST):
            raise
        shutil.copy2(source, target)
    return target


def _snapshot(source: Path, target: Path) -> None:
    """Hard links where the file system allows (instant, no space), copies elsewhere."""
    try:
        if source.is_dir():
            shutil.copytree(source, target, copy_function=_link_or_copy, symlinks=False)
        else:
            _link_or_copy(str(source), str(target))
    except OSError as err:
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        raise EvaluatorError(f"cannot copy evaluator data {source} into the run: {err}") from None

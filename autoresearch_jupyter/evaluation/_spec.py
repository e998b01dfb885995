"""The evaluator as the protocol fixes it: its code, hash, time budget and the data only it sees.

An ``EvalSpec`` is built once from the user's options (``--eval``, ``--eval-data``,
``--holdout``, ``--eval-timeout`` or ``%%autoresearch_eval``), checked before any folder exists,
and stored whole in ``run.json`` (``settings["eval"]``), code included: the hash there is what
every later evaluation is checked against, and no proposer ever sees or edits the code, because
it is not part of any node's script.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import math
import os
import re
import tokenize
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..core.errors import EvaluatorError
from ..core.source import dotted_name

DEFAULT_TIMEOUT = 60.0
CONTRACT_CAP = 1500  # characters of the evaluator's docstring / first comment block in prompts
_FILE_NAME = re.compile(r"^[\w.\-/]*[\w\-]\.[A-Za-z][\w]{0,9}$")
_UNPICKLERS = {"pickle.load", "pickle.loads", "joblib.load", "torch.load", "dill.load", "cloudpickle.load",
               "pd.read_pickle", "pandas.read_pickle"}


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """What the evaluator is and what only it may read; JSON-safe through ``to_settings``."""

    code: str
    source: str  # where it came from: a path, or "notebook cell"
    sha256: str
    timeout: float = DEFAULT_TIMEOUT
    data: tuple[str, ...] = ()  # absolute paths given with --eval-data (files or folders)
    holdout: tuple[str, ...] = ()  # absolute paths given with --holdout
    use: tuple[str, ...] = ()  # notebook variables handed to the evaluator only
    holdout_top: int = 3  # besides the baseline and the best, this many next best get a holdout score

    def to_settings(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("data", "holdout", "use"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_settings(cls, data: dict[str, Any]) -> "EvalSpec":
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        for key in ("data", "holdout", "use"):
            kwargs[key] = tuple(kwargs.get(key) or ())
        return cls(**kwargs)

    @property
    def secret_paths(self) -> tuple[Path, ...]:
        """The user's original data paths: hidden from every node."""
        return tuple(Path(p) for p in (*self.data, *self.holdout))


def code_sha256(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def check_code(code: str, where: str) -> None:
    """EvaluatorError with the line when ``code`` is not Python or is empty."""
    if not code.strip():
        raise EvaluatorError(f"the evaluator {where} is empty")
    try:
        compile(code, where, "exec")
    except SyntaxError as err:
        raise EvaluatorError(f"the evaluator {where} is not valid Python: line {err.lineno}: {err.msg}") from None
    except ValueError as err:  # null bytes
        raise EvaluatorError(f"the evaluator {where} cannot be compiled: {err}") from None


def existing_paths(paths: Iterable[str | os.PathLike[str]], option: str) -> tuple[str, ...]:
    """Absolute paths, each checked to exist; their names must differ (they share one folder)."""
    out: list[str] = []
    names: dict[str, str] = {}
    for raw in paths:
        if raw is None or str(raw).strip() == "":
            continue
        path = Path(raw).expanduser()
        if not path.exists():
            raise EvaluatorError(f"{option} {raw}: no such file or folder")
        if not os.access(path, os.R_OK):
            raise EvaluatorError(f"{option} {raw}: not readable")
        resolved = str(path.resolve())
        name = Path(resolved).name
        if name in names and names[name] != resolved:
            raise EvaluatorError(f"{option}: {names[name]} and {resolved} have the same name {name!r}; rename one")
        if resolved not in out:
            names[name] = resolved
            out.append(resolved)
    return tuple(out)


def check_timeout(timeout: float | None) -> float:
    value = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if not (value > 0 and math.isfinite(value)):
        raise EvaluatorError(f"--eval-timeout must be a positive number of seconds, got {timeout!r}")
    return value


def build_spec(
    *,
    code: str,
    source: str,
    timeout: float | None = None,
    data: Sequence[str | os.PathLike[str]] = (),
    holdout: Sequence[str | os.PathLike[str]] = (),
    use: Sequence[str] = (),
    holdout_top: int = 3,
) -> EvalSpec:
    """A checked spec from an evaluator's code; every problem is one EvaluatorError line."""
    check_code(code, source)
    data_paths = existing_paths(data, "--eval-data")
    holdout_paths = existing_paths(holdout, "--holdout")
    both = set(data_paths) & set(holdout_paths)
    if both:
        raise EvaluatorError(f"{sorted(both)[0]} is given both as --eval-data and as --holdout; keep them apart")
    clash = {Path(p).name for p in data_paths} & {Path(p).name for p in holdout_paths}
    if clash:
        raise EvaluatorError(f"--eval-data and --holdout both have an item named {sorted(clash)[0]!r}; rename one")
    if not isinstance(holdout_top, int) or holdout_top < 0:
        raise EvaluatorError(f"the number of next best nodes scored on the holdout must be >= 0, got {holdout_top!r}")
    return EvalSpec(
        code=code, source=source, sha256=code_sha256(code), timeout=check_timeout(timeout),
        data=data_paths, holdout=holdout_paths, use=tuple(use), holdout_top=holdout_top,
    )


def load_spec(path: str | os.PathLike[str], **options: Any) -> EvalSpec:
    """``--eval EVALUATE.py``: read and check the file (missing, unreadable, not Python)."""
    file = Path(path).expanduser()
    try:
        code = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvaluatorError(f"--eval {path}: no such evaluator script") from None
    except IsADirectoryError:
        raise EvaluatorError(f"--eval {path} is a folder; give the evaluator script (a .py file)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise EvaluatorError(f"--eval {path}: cannot read it ({err})") from None
    return build_spec(code=code, source=str(file.resolve()), **options)


# ---- what a proposer may know: the contract, never the answers -------------------------------


def _first_comment_block(code: str) -> str:
    lines: list[str] = []
    last = -1
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                if lines and tok.start[0] > last + 1:
                    break
                text = tok.string.lstrip("#").strip()
                if not text.startswith("!") and "coding" not in text[:20]:
                    lines.append(text)
                last = tok.start[0]
            elif tok.type in (tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
                continue
            else:
                break
    except (tokenize.TokenError, SyntaxError):
        pass
    return "\n".join(lines).strip()


def file_names(code: str, *, secret_names: Iterable[str] = ()) -> list[str]:
    """String literals of the evaluator that look like file names, minus evaluator-only data."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    secret = {n for n in secret_names if n}
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _FILE_NAME.match(node.value):
            value = node.value
            parts = set(Path(value).parts)
            if os.path.isabs(value) or parts & secret or Path(value).name in secret:
                continue  # absolute paths and evaluator-only data are not the node's business
            if value not in out:
                out.append(value)
    return out[:20]


def secret_names(spec: EvalSpec, limit: int = 2000) -> list[str]:
    """Names that belong to evaluator-only data: the given paths, what their folders hold, --use."""
    names = [Path(p).name for p in (*spec.data, *spec.holdout)] + list(spec.use)
    for raw in (*spec.data, *spec.holdout):
        if Path(raw).is_dir():
            for _root, dirs, files in os.walk(raw):
                names += dirs + files
                if len(names) > limit:
                    break
    return [n for n in dict.fromkeys(names) if n]


def contract_text(spec: EvalSpec) -> str:
    """What the LLM prompt says about grading: the evaluator's own description and the files it
    opens in the node's folder. Evaluator-only data (names, paths, contents) never appears."""
    try:
        doc = ast.get_docstring(ast.parse(spec.code)) or ""
    except SyntaxError:
        doc = ""
    doc = doc or _first_comment_block(spec.code)
    secret = secret_names(spec)
    for name in secret:  # a docstring that names the labels' file does not pass it on
        doc = doc.replace(name, "<evaluator-only data>")
    if len(doc) > CONTRACT_CAP:
        doc = doc[:CONTRACT_CAP].rstrip() + " ..."
    names = file_names(spec.code, secret_names=secret)
    lines = ["- Grading: a separate, fixed evaluator runs after your script, in the script's working folder, "
             "and its metric is the one that counts; numbers your script prints are ignored."]
    if names:
        lines.append(f"- The evaluator reads these files from the working folder: {', '.join(names)}. "
                     "Write them, with the same names and format.")
    if doc:
        lines.append("- The evaluator describes itself as:\n" + "\n".join("  " + ln for ln in doc.splitlines()))
    return "\n".join(lines)


def unpickling_calls(code: str) -> list[str]:
    """Calls in the evaluator that unpickle (a node's pickle runs its code inside the evaluator)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = dotted_name(node.func)
            if name in _UNPICKLERS and name not in found:
                found.append(name)
    return found

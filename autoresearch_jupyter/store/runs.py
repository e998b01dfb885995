"""The runs directory (``.autoresearch/``): one folder per run, found by id, name or prefix.

A run folder holds ``run.json`` (protocol and settings, written once, atomically),
``journal.jsonl`` (the events; the truth), ``nodes/<id>/`` (each node's script and output) and
``best.py``. Run ids are ``YYYYmmdd-HHMMSS-xxxx`` (local time plus 4 random hex digits): they
sort by creation time, read as dates, and two runs started in the same second still differ.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from ..core.errors import AutoResearchError, JournalError, ProtocolError, RunNotFoundError, StorageError
from .journal import Journal, Replay, line_hash, load_journal, loads
from .lock import RunLock
from ..core.protocol import Protocol
from ..core.tree import Tree

RUN_VERSION = 1
DEFAULT_RUNS_DIR = Path(".autoresearch")
RUN_FILE = "run.json"
JOURNAL_FILE = "journal.jsonl"
LATEST = ("latest", "last")
_MAX_NAME = 100


class RunNameError(AutoResearchError):
    """A run name that is already taken or cannot be used as a name."""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One line of ``autoresearch ls``; a run that cannot be read has state "corrupt" and ``error``."""

    id: str
    path: str
    name: str | None = None
    created_at: float | None = None
    state: str = "corrupt"  # running | interrupted | finished | stopped | failed | corrupt
    nodes: int = 0
    best_id: int | None = None
    best_metric: float | None = None
    baseline_metric: float | None = None
    metric: str | None = None
    maximize: bool | None = None
    error: str | None = None

    @property
    def direction(self) -> str | None:
        return None if self.maximize is None else ("maximize" if self.maximize else "minimize")


def summarize(tree: Tree, protocol: Protocol) -> dict[str, Any]:
    """What ``list_runs`` shows about a tree; pass it to ``Journal.run_finished(summary=...)``."""
    best = tree.best(protocol)
    root = tree.root
    return {
        "nodes": len(tree),
        "counts": {k: v for k, v in tree.counts().items() if v},
        "best_id": best.id if best is not None else None,
        "best_metric": best.metric if best is not None else None,
        "baseline_metric": root.metric if root is not None and root.is_good else None,
    }


class RunDir:
    """One run's folder: its fixed facts from run.json and the paths of everything else."""

    def __init__(self, path: Path, info: dict[str, Any]) -> None:
        """Use ``RunDir.create`` or ``RunDir.open``."""
        self.path = path
        self.info = info
        self._protocol = Protocol.from_dict(info["protocol"])

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(
        cls,
        runs_dir: str | os.PathLike[str] | None,
        *,
        name: str | None = None,
        protocol: Protocol,
        settings: dict[str, Any],
        source: str | None = None,
    ) -> "RunDir":
        """Make a new run folder with its run.json; raises RunNameError if ``name`` is taken."""
        runs = Path(runs_dir) if runs_dir is not None else DEFAULT_RUNS_DIR
        check_runs_dir(runs)
        try:
            runs.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _runs_dir_error(runs, err) from None
        with _names_lock(runs):  # two runs started with one name at once: the second is refused
            if name is not None:
                _check_name(runs, name)
            return cls._create_locked(runs, name=name, protocol=protocol, settings=settings, source=source)

    @classmethod
    def _create_locked(
        cls, runs: Path, *, name: str | None, protocol: Protocol, settings: dict[str, Any], source: str | None
    ) -> "RunDir":
        for _ in range(100):
            run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
            try:
                (runs / run_id).mkdir()
                break
            except FileExistsError:
                continue
            except OSError as err:
                raise StorageError.from_os_error(err, runs / run_id) from None
        else:  # pragma: no cover - 100 collisions in one second
            raise AutoResearchError(f"cannot make a new run folder in {runs}")
        path = runs / run_id
        info = {
            "version": RUN_VERSION,
            "id": run_id,
            "name": name,
            "created_at": time.time(),
            "protocol": protocol.to_dict(),
            "settings": settings,
            "source": source,
        }
        text = json.dumps(info, indent=2, sort_keys=True, default=_json_default) + "\n"
        try:
            atomic_write(path / RUN_FILE, text)
            (path / JOURNAL_FILE).touch()
            (path / "nodes").mkdir()
        except OSError as err:
            raise StorageError.from_os_error(err, err.filename or path) from None
        return cls(path, json.loads(text))

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "RunDir":
        """Open an existing run folder; RunNotFoundError if absent, JournalError if run.json is bad."""
        path = Path(path)
        if not path.is_dir():
            raise RunNotFoundError(f"no run at {path}")
        return cls(path, _read_info(path))

    # fixed facts

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def name(self) -> str | None:
        return self.info.get("name")

    @property
    def created_at(self) -> float | None:
        return self.info.get("created_at")

    @property
    def protocol(self) -> Protocol:
        return self._protocol

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.info.get("settings") or {})

    @property
    def source(self) -> str | None:
        return self.info.get("source")

    # paths

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL_FILE

    @property
    def best_path(self) -> Path:
        return self.path / "best.py"

    def node_dir(self, node_id: int) -> Path:
        """``nodes/<id>/``, created on demand."""
        path = self.path / "nodes" / str(int(node_id))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def script_path(self, node_id: int) -> Path:
        """``nodes/<id>/train.py`` (not created; see ``write_node_script``)."""
        return self.path / "nodes" / str(int(node_id)) / "train.py"

    def output_path(self, node_id: int) -> Path:
        return self.path / "nodes" / str(int(node_id)) / "output.log"

    def result_path(self, node_id: int) -> Path:
        return self.path / "nodes" / str(int(node_id)) / "result.json"

    def write_node_script(self, node_id: int, code: str) -> Path:
        """Write a node's full script atomically; returns its path."""
        self.node_dir(node_id)
        path = self.script_path(node_id)
        atomic_write(path, code)
        return path

    # the journal

    def journal(self, *, durable: bool = True) -> Journal:
        """The journal, opened for append (a torn last line is repaired first), chained to run.json.

        Only the holder of the run's lock (``lock()``) may write it."""
        try:
            anchor = line_hash((self.path / RUN_FILE).read_bytes())
        except OSError:
            anchor = None
        try:
            return Journal(self.journal_path, durable=durable, anchor=anchor)
        except OSError as err:
            raise StorageError.from_os_error(err, self.journal_path) from None

    def lock(self, what: str = "resume") -> RunLock:
        """Take the run's writer lock (RunActiveError if another process holds it)."""
        return RunLock(self.path).acquire(what)

    def load(self) -> Replay:
        """Replay the journal; JournalError if it is damaged in the middle or was modified."""
        return load_journal(self.journal_path)

    def summary(self) -> RunSummary:
        """This run as ``list_runs`` shows it; reads only the journal's last line when it can."""
        protocol = self._protocol
        base: dict[str, Any] = dict(
            id=self.id, path=str(self.path), name=self.name, created_at=self.created_at,
            metric=protocol.metric, maximize=protocol.maximize,
        )
        finished = _finished_summary(self.journal_path)
        if finished is not None:
            state, data = finished
            return RunSummary(
                **base, state=state, nodes=int(data.get("nodes") or 0), best_id=data.get("best_id"),
                best_metric=data.get("best_metric"), baseline_metric=data.get("baseline_metric"),
            )
        replay = self.load()
        data = summarize(replay.tree, protocol)
        return RunSummary(
            **base, state=replay.state, nodes=data["nodes"], best_id=data["best_id"],
            best_metric=data["best_metric"], baseline_metric=data["baseline_metric"],
        )


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``: never half a file
    (a full disk leaves the old file, or none, and raises the OSError)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def check_runs_dir(runs: Path) -> None:
    """A runs directory that cannot hold runs (a file, a path under /proc or /sys): one line."""
    resolved = Path(os.path.abspath(runs))
    if resolved.exists() and not resolved.is_dir():
        raise StorageError(f"--runs-dir {runs} is a file, not a folder: give a folder for the runs")
    if str(resolved).split(os.sep)[1:2] in (["proc"], ["sys"], ["dev"]):
        raise StorageError(f"--runs-dir {runs} is under /{str(resolved).split(os.sep)[1]}, which holds no "
                           "files: give a folder on a disk")


def _runs_dir_error(runs: Path, err: OSError) -> StorageError:
    if isinstance(err, (NotADirectoryError, FileExistsError)):
        return StorageError(f"--runs-dir {runs}: a part of that path is a file, not a folder: give a folder")
    return StorageError.from_os_error(err, runs)


class _names_lock:
    """Holds an flock on the runs folder itself while a name is checked and its run folder made
    (no lock file: nothing new appears among the runs)."""

    def __init__(self, runs: Path) -> None:
        self.runs = runs
        self.fd = -1

    def __enter__(self) -> None:
        try:
            import fcntl

            self.fd = os.open(self.runs, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
            fcntl.flock(self.fd, fcntl.LOCK_EX)  # two runs started at once wait for each other here
        except (ImportError, OSError):
            pass  # no locks here (or a folder we cannot open): the name check still runs

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _json_default(obj: Any) -> Any:
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)  # settings are for people to read back; never fail a run over one value


def _read_info(path: Path) -> dict[str, Any]:
    file = path / RUN_FILE
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JournalError(f"{file} is missing: {path.name} is not a complete run (delete the folder)") from None
    except (OSError, ValueError) as err:
        raise JournalError(f"{file} is damaged ({str(err).splitlines()[0][:80]}): restore it or delete the run") from None
    if not isinstance(info, dict) or not isinstance(info.get("protocol"), dict):
        raise JournalError(f"{file} is not a run description (no protocol): restore it or delete the run")
    version = info.get("version", RUN_VERSION)
    if isinstance(version, int) and version > RUN_VERSION:
        raise JournalError(f"{file} is format v{version}, newer than this autoresearch-jupyter reads: upgrade it")
    try:
        Protocol.from_dict(info["protocol"])
    except (ProtocolError, TypeError, ValueError) as err:
        raise JournalError(f"{file} has an invalid protocol ({str(err).splitlines()[0][:80]})") from None
    return info


def _finished_summary(journal: Path) -> tuple[str, dict[str, Any]] | None:
    """(state, summary) from a last line that is a run_finished with a summary; else None."""
    try:
        with open(journal, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 8192))
            chunk = f.read()
    except OSError:
        return None
    lines = chunk.rstrip(b"\n").rsplit(b"\n", 1)
    if len(lines) < 2 and size > len(chunk):
        return None  # the last line is longer than the chunk: not a run_finished
    try:
        event = loads(lines[-1])
    except ValueError:
        return None
    if isinstance(event, dict) and event.get("prev") is not None and (
        len(lines) < 2 or event["prev"] != line_hash(lines[-2].rsplit(b"\n", 1)[-1])
    ):
        return None  # a last line that does not chain: the full replay says what is wrong
    if (
        isinstance(event, dict) and event.get("event") == "run_finished"
        and isinstance(event.get("summary"), dict) and event.get("state") in ("finished", "stopped", "failed")
    ):
        return event["state"], event["summary"]
    return None


SKIP_DIRS = frozenset({"node_modules", "site-packages", "__pycache__", ".git", ".venv", "venv"})


def find_runs_dirs(root: str | os.PathLike[str] = ".", *, max_depth: int = 4) -> list[Path]:
    """Every ``.autoresearch`` folder at or below ``root`` (notebook runs live next to their
    notebook, CLI runs where the command ran): ``ls --all`` and the runs sidebar find both."""
    root = Path(root)
    found: list[Path] = []
    base_depth = len(root.resolve().parts)
    for here, dirs, _files in os.walk(root):
        if DEFAULT_RUNS_DIR.name in dirs and (Path(here) / DEFAULT_RUNS_DIR.name).is_dir():
            found.append(Path(here) / DEFAULT_RUNS_DIR.name)
        depth = len(Path(here).resolve().parts) - base_depth
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and depth < max_depth)
    return found


def default_run_name(runs_dir: str | os.PathLike[str] | None, source: str | None) -> str | None:
    """A readable name for a new run: the script's or notebook's stem and the first free number
    (``digits-1``, ``digits-2``...), so two runs of one script are told apart at a glance."""
    if not source:
        return None
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(source)).stem).strip("-.")[:_MAX_NAME - 5] or "run"
    runs = Path(runs_dir) if runs_dir is not None else DEFAULT_RUNS_DIR
    taken = {str(n) for path, info in _scan(runs) for n in (path.name, (info or {}).get("name")) if n}
    number = 1
    while f"{stem}-{number}" in taken:
        number += 1
    return f"{stem}-{number}"


def _check_name(runs: Path, name: str) -> None:
    if not name or name != name.strip() or len(name) > _MAX_NAME or not name.isprintable():
        raise RunNameError(f"invalid run name {name!r}: use 1-{_MAX_NAME} printable characters, no outer spaces")
    if name.lower() in LATEST:
        raise RunNameError(f"{name!r} is reserved (it means the newest run); pick another name")
    for path, info in _scan(runs):
        if name in (path.name, (info or {}).get("name")):
            raise RunNameError(f"a run named {name!r} already exists ({path.name}); pick another name")


def _scan(runs: Path) -> Iterator[tuple[Path, dict[str, Any] | None]]:
    """Each run folder with its run.json (None where missing or unreadable)."""
    try:
        entries = sorted(runs.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for path in entries:
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            info = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = None
        yield path, info if isinstance(info, dict) else None


def _created(path: Path, info: dict[str, Any] | None) -> tuple[float, str]:
    created = (info or {}).get("created_at")
    if not isinstance(created, (int, float)):
        try:
            created = path.stat().st_mtime
        except OSError:
            created = 0.0
    return float(created), path.name


def list_runs(runs_dir: str | os.PathLike[str] | None = None) -> list[RunSummary]:
    """Every run under ``runs_dir``, oldest first; unreadable runs are listed as "corrupt"."""
    runs = Path(runs_dir) if runs_dir is not None else DEFAULT_RUNS_DIR
    out: list[tuple[tuple[float, str], RunSummary]] = []
    for path, info in _scan(runs):
        try:
            summary = RunDir.open(path).summary()
        except (JournalError, ProtocolError) as err:
            summary = RunSummary(
                id=path.name, path=str(path), name=(info or {}).get("name"),
                created_at=(info or {}).get("created_at"), error=str(err),
            )
        out.append((_created(path, info), summary))
    return [s for _, s in sorted(out, key=lambda pair: pair[0])]


T = TypeVar("T")


def match_runs(ref: str, runs: Sequence[T], *, id_of: Callable[[T], str], name_of: Callable[[T], str | None]) -> list[T]:
    """The runs that ``ref`` names, by the one rule every face uses: "latest"/"last" is the last
    of ``runs`` (give them oldest first), then an exact id, then an exact name, then an id
    prefix. One item: found; several: ambiguous; none: no such run."""
    if not runs:
        return []
    if ref.lower() in LATEST:
        return [runs[-1]]
    exact = [r for r in runs if id_of(r) == ref]
    if exact:
        return exact[:1]
    return [r for r in runs if name_of(r) == ref] or [r for r in runs if id_of(r).startswith(ref)]


def resolve_run(runs_dir: str | os.PathLike[str] | None, ref: str) -> RunDir:
    """The run that ``ref`` names: an exact id, an exact name, a unique id prefix, "latest"/"last",
    or a path to a run folder. RunNotFoundError if none or several match; JournalError if the
    run's run.json is damaged."""
    runs = Path(runs_dir) if runs_dir is not None else DEFAULT_RUNS_DIR
    ref = ref.strip()
    if not ref:
        raise RunNotFoundError("no run given: pass a run id, name, id prefix or 'latest'")
    if (os.sep in ref or "/" in ref) and (Path(ref) / RUN_FILE).exists():
        return RunDir.open(ref)
    if not runs.is_dir():
        raise RunNotFoundError(f"no run {ref!r}: there is no runs directory at {runs} (start a run first, or pass --runs-dir)")
    scanned = list(_scan(runs))
    if not scanned:
        raise RunNotFoundError(f"no run {ref!r}: there are no runs in {runs} yet")
    oldest_first = sorted(scanned, key=lambda pair: _created(*pair))
    found = match_runs(ref, oldest_first, id_of=lambda pair: pair[0].name,
                       name_of=lambda pair: (pair[1] or {}).get("name"))
    matches = [path for path, _ in found]
    if len(matches) == 1:
        return RunDir.open(matches[0])
    if matches:
        shown = ", ".join(p.name for p in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise RunNotFoundError(f"{ref!r} is ambiguous: it matches {len(matches)} runs ({shown}); give more of the id")
    newest = sorted(scanned, key=lambda pair: _created(*pair), reverse=True)[:5]
    known = ", ".join(p.name + (f" ({i['name']})" if i and i.get("name") else "") for p, i in newest)
    more = f" and {len(scanned) - 5} more" if len(scanned) > 5 else ""
    raise RunNotFoundError(f"no run {ref!r} in {runs}; known runs: {known}{more}")


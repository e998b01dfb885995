"""Folders as bytes, so a node's files travel to a Ray worker and back without a shared file system.

A node's folder, the run's top-level files (``use.pkl``) and the source folder go to the worker
as zip archives in Ray's object store; the node's folder (log, ``result.json``, outputs) comes
back the same way. Archives are capped: a node that writes gigabytes gets its biggest files left
behind on the worker, with a note, rather than filling the driver's memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path
from typing import Iterable, Mapping

# Folders never worth shipping from a source folder: environments, caches, version control, runs.
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", "env", "__pycache__", "node_modules", ".autoresearch",
    ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
})
SOURCE_LIMIT = 256 * 2**20  # bytes of the source folder shipped with a run
NODE_LIMIT = 256 * 2**20  # bytes of a node's folder sent back to the driver


def _files(root: Path, skip_dirs: frozenset[str], skip_names: frozenset[str], skip_paths: frozenset[str]
           ) -> Iterable[Path]:
    for here, dirs, names in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs
            if d not in skip_dirs and not os.path.islink(os.path.join(here, d))
            and os.path.realpath(os.path.join(here, d)) not in skip_paths
        )
        for name in sorted(names):
            path = Path(here) / name
            if name in skip_names:
                continue
            try:
                if stat.S_ISREG(path.lstat().st_mode):
                    yield path
            except OSError:
                continue


def pack(
    root: Path, *, limit: int, skip_dirs: frozenset[str] = frozenset(), skip_names: Iterable[str] = (),
    top_level_only: bool = False, skip_paths: Iterable[str] = (),
) -> tuple[bytes, list[str]]:
    """``root``'s regular files as a zip (stored, not compressed: speed over size on a LAN).

    Returns the archive and the relative paths left out because the total passed ``limit``
    (smallest files go first, so one huge output does not push out the log and the result).
    Folders named in ``skip_dirs`` and the paths in ``skip_paths`` (the runs folder) are left out.
    """
    root = Path(root)
    names = frozenset(skip_names)
    if top_level_only:
        files = [p for p in sorted(root.iterdir()) if p.name not in names and p.is_file() and not p.is_symlink()]
    else:
        files = list(_files(root, skip_dirs, names, frozenset(os.path.realpath(p) for p in skip_paths)))
    sized = sorted(((p.stat().st_size, p) for p in files), key=lambda item: (item[0], str(item[1])))
    buffer = io.BytesIO()
    left_out: list[str] = []
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for size, path in sized:
            rel = path.relative_to(root).as_posix()
            if total + size > limit:
                left_out.append(rel)
                continue
            try:
                archive.write(path, rel)
            except OSError:
                left_out.append(rel)
                continue
            total += size
    return buffer.getvalue(), left_out


def unpack(data: bytes, dest: Path, *, read_only: bool = False) -> None:
    """Extract an archive made by :func:`pack` into ``dest``; refuses paths that leave it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = dest.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            target = (dest / info.filename).resolve()
            if base != target and base not in target.parents:
                raise ValueError(f"archive member {info.filename!r} leaves its folder")
            if info.is_dir():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            with archive.open(info) as src, open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            if read_only:
                tmp.chmod(0o444)
            os.replace(tmp, target)


def digest(data: bytes) -> str:
    """A short content hash: the cache key of an extracted folder on a worker."""
    return hashlib.sha256(data).hexdigest()[:20]


def remap(value: str, roots: Mapping[str, str]) -> str:
    """``value`` with every driver path in ``roots`` replaced by the worker's path for it.

    Longest roots first, and only whole path components (``/a/b`` does not match ``/a/bc``),
    so ``PYTHONPATH`` lists and single paths both come out right.
    """
    for old in sorted(roots, key=len, reverse=True):
        new = roots[old]
        if not old:
            continue
        out, start = [], 0
        while (i := value.find(old, start)) != -1:
            end = i + len(old)
            boundary_before = i == 0 or value[i - 1] in (os.pathsep, "=", " ")
            boundary_after = end == len(value) or value[end] in ("/", os.pathsep, " ")
            if boundary_before and boundary_after:
                out.append(value[start:i] + new)
            else:
                out.append(value[start:end])
            start = end
        out.append(value[start:])
        value = "".join(out)
    return value

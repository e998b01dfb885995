"""The environment a node script gets: the parent's, minus secrets, plus per-worker thread counts.

Proposed code is untrusted, so anything that looks like a credential stays in the parent. The
notebook face reuses :func:`scrub_env` for the same reason.
"""

from __future__ import annotations

import os
from typing import Mapping

from ..core.credentials import SECRET_PREFIXES, SECRET_WORDS, is_secret  # noqa: F401 - re-exported

THREAD_VARS = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS",
)


def scrub_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) without anything that looks like a secret."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not is_secret(k, v)}


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS has no affinity call
        return max(1, os.cpu_count() or 1)


def thread_count(workers: int, cores: int | None = None) -> int:
    """BLAS/OpenMP threads per job: the cores shared fairly between the jobs that run at once."""
    return max(1, (cores or available_cores()) // max(1, workers))


def thread_env(
    workers: int, *, threads: int | None = None, parent: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The thread-count variables for one job.

    Precedence: an explicit ``threads`` setting, then a value the user exported in the parent's
    environment (they know their machine), then ``max(1, cores // workers)``.
    """
    parent = os.environ if parent is None else parent
    default = str(threads if threads is not None else thread_count(workers))
    out = {}
    for name in THREAD_VARS:
        explicit = parent.get(name, "").strip()
        out[name] = default if threads is not None or not explicit else explicit
    return out

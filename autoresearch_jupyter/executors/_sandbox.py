"""The sandbox a node runs in: bubblewrap (``bwrap``), the well-kept tool Flatpak uses.

A node is untrusted code. Under the sandbox it gets its own PID namespace (it sees no other
process, so no parent's ``/proc/<pid>/environ``; when it ends, everything it started ends), the
file system read-only except its node folder, a private ``/tmp`` and ``/dev/shm``, an empty
``/run`` (Unix sockets such as docker's or D-Bus's ignore read-only mounts), an empty home
(the user's ``~/.ssh``, ``~/.aws``, ``~/.netrc`` are not there; ``allow`` passes folders through),
optionally no network, and ``/dev/nvidia*`` when GPUs are in use.

Cold jobs run as ``bwrap ... -- python train.py``. The warm interpreter runs under one ``bwrap``
per run (its PID namespace holds only the zygote and its forks) and each fork isolates itself
further with ``unshare(2)`` (see ``_zygote.py``): own user and mount namespace (only its own
node folder writable, its own ``/tmp``), and a child subreaper, so daemons cannot outlive it.

``mode``: ``auto`` uses the sandbox where it works and otherwise says once, in one line on
stderr, what is not protected; ``require`` refuses to start without it; ``off`` never uses it.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..core.errors import ExecutorError
from ._base import Job

SANDBOX_MODES = ("auto", "require", "off")
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
UNPROTECTED = (
    "nodes run without a sandbox: they can read your home folder and other processes' environments, "
    "write outside their node folder and leave processes running"
)
_warned = threading.Event()


@dataclasses.dataclass(frozen=True)
class SandboxSettings:
    """What the user chose; ``allow`` holds (path, writable) pairs passed through into the sandbox."""

    mode: str = "auto"
    allow: tuple[tuple[str, bool], ...] = ()
    network: bool = True

    @classmethod
    def build(cls, mode: str = "auto", allow: Iterable[str] = (), network: bool = True) -> "SandboxSettings":
        """Checks the values; ``allow`` entries are ``PATH`` (read-only) or ``PATH:rw``."""
        if mode not in SANDBOX_MODES:
            raise ExecutorError(f"--sandbox must be one of {', '.join(SANDBOX_MODES)}, got {mode!r}")
        pairs = []
        for item in allow or ():
            text, writable = str(item), False
            if text.endswith(":rw") or text.endswith(":ro"):
                text, writable = text[:-3], text.endswith(":rw")
            path = Path(text).expanduser()
            if not path.exists():
                raise ExecutorError(f"--allow-path {item}: no such file or folder")
            pairs.append((str(path.resolve()), writable))
        return cls(mode=mode, allow=tuple(pairs), network=bool(network))


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None if bubblewrap works here (checked once per process); otherwise why not, in words."""
    exe = bwrap_path()
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    argv = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--unshare-pid", "--unshare-net", "--die-with-parent", "--", "/bin/sh", "-c", "exit 0"]
    if not os.path.exists("/bin/sh"):
        argv[-3:] = [sys.executable, "-c", "pass"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f"bubblewrap cannot start ({err})"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return "bubblewrap does not work here" + (f" ({detail[-1][:120]})" if detail else "")
    return None


def resolve(mode: str) -> bool:
    """Whether jobs run sandboxed under ``mode``; ``require`` without a working bwrap raises."""
    if mode == "off" or not sys.platform.startswith("linux"):
        if mode == "require":
            raise ExecutorError("--sandbox require: the sandbox needs Linux with bubblewrap")
        return False
    problem = probe()
    if problem is None:
        return True
    if mode == "require":
        raise ExecutorError(f"--sandbox require: {problem}; {INSTALL_HINT}, or use --sandbox off")
    if not _warned.is_set():
        _warned.set()
        print(f"autoresearch: warning: {problem}: {UNPROTECTED}; {INSTALL_HINT} "
              "(--sandbox off silences this)", file=sys.stderr)
    return False


@functools.lru_cache(maxsize=8)
def interpreter_paths(python: str) -> tuple[str, ...]:
    """Folders the interpreter needs (prefixes, site-packages, the executable's folder): they stay
    visible even when they live under the hidden home or /tmp."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        # sys.path[0] is where this process was started (the script's folder or the working
        # directory), not part of the interpreter: the sandbox must not show it through
        paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path[1:]]
    else:
        try:
            out = subprocess.run(
                [python, "-c", "import sys; print('\\n'.join([sys.prefix, sys.base_prefix, *sys.path[1:]]))"],
                capture_output=True, timeout=60, text=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        paths = out.splitlines()
    paths += [os.path.dirname(python), os.path.dirname(os.path.realpath(python))]
    return tuple(p for p in dict.fromkeys(os.path.realpath(p) for p in paths if p) if os.path.isdir(p))


def _hidden_roots() -> list[str]:
    """What the sandbox replaces by an empty folder: the home and /tmp."""
    roots = ["/tmp"]
    home = os.path.realpath(os.path.expanduser("~"))
    if home not in ("/", "") and os.path.isdir(home) and home not in roots:
        roots.append(home)
    return roots


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def gpu_devices(env: Mapping[str, str] | None = None) -> list[str]:
    """``/dev/nvidia*`` (and the caps folder) when the job may use a GPU."""
    seen: Mapping[str, str] = os.environ if env is None else env
    if seen.get("CUDA_VISIBLE_DEVICES", "") in ("", "-1"):
        return []
    return sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/*"))


def bwrap_argv(
    settings: SandboxSettings,
    *,
    writable: Sequence[str | os.PathLike[str]],
    readonly: Sequence[str | os.PathLike[str]] = (),
    python: str,
    chdir: str | os.PathLike[str],
    gpus: bool = False,
    die_with_parent: bool = True,
) -> list[str]:
    """The ``bwrap`` command line that prefixes a job (or the warm interpreter).

    Mounts are applied in order: the whole file system read-only, a fresh /dev, /proc of the new
    PID namespace, empty /tmp and home, then what must show through them (the interpreter,
    ``readonly`` folders such as the source folder, the user's ``allow`` paths) and last the
    ``writable`` folders (the node folder).
    """
    exe = bwrap_path()
    if exe is None:
        raise ExecutorError(f"the sandbox needs bubblewrap: {INSTALL_HINT}")
    argv = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/dev/shm", "--proc", "/proc",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    if die_with_parent:
        argv.append("--die-with-parent")
    if not settings.network:
        argv.append("--unshare-net")
    hidden = _hidden_roots()
    for root in hidden:
        argv += ["--tmpfs", root]
    if os.path.isdir("/run") and not os.path.islink("/run"):
        # sockets ignore read-only mounts (docker.sock, D-Bus, the user's agents): hide them all,
        # keeping only the resolver's files that /etc/resolv.conf may point to
        argv += ["--tmpfs", "/run", "--ro-bind-try", "/run/systemd/resolve", "/run/systemd/resolve",
                 "--ro-bind-try", "/run/resolvconf", "/run/resolvconf"]
    if gpus:
        for dev in gpu_devices({"CUDA_VISIBLE_DEVICES": "0"}):
            argv += ["--dev-bind-try", dev, dev]
    shown = [*interpreter_paths(python), *(os.path.realpath(p) for p in readonly)]
    for path in dict.fromkeys(shown):
        if _under(path, hidden) and os.path.exists(path):
            argv += ["--ro-bind", path, path]
    for path, rw in settings.allow:
        argv += ["--bind" if rw else "--ro-bind", path, path]
    for path in dict.fromkeys(os.path.realpath(p) for p in writable):
        argv += ["--bind", path, path]
    argv += ["--chdir", os.path.realpath(chdir), "--"]
    return argv


def job_readonly(job: Job, env: Mapping[str, str]) -> list[str]:
    """Folders a job reads that the sandbox must show: its PYTHONPATH (the source folder), the
    folder it mirrors, and its working directory when that is not the node folder."""
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.isdir(p)]
    for extra in (job.mirror, job.cwd, *job.readonly):
        if extra is not None and os.path.isdir(extra):
            paths.append(os.fspath(extra))
    return [os.path.realpath(p) for p in paths]


def hidden_needs(job: Job, env: Mapping[str, str]) -> list[str]:
    """The folders of ``job_readonly`` that the sandbox hides unless they are shown explicitly."""
    return [p for p in job_readonly(job, env) if _under(p, _hidden_roots())]


def exit_code(code: int | None) -> int | None:
    """bwrap reports a child killed by signal N as 128 + N; give it back as -N, like subprocess."""
    if code is not None and 128 < code < 128 + 65:
        try:
            signal.Signals(code - 128)
            return 128 - code
        except ValueError:
            pass
    return code

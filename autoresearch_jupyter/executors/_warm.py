"""Warm start, parent side: which imports to preload, whether forking is safe, the zygote handle.

A node script spends most of a small run importing (sklearn: ~1.6 s of ~2.2 s). A zygote pays
that once; each job is then a fork of it (see ``_zygote.py`` for the child's side). Warm start is
an optimisation only: whenever the zygote cannot start, dies or does not match a job, the job
runs cold.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ._env import THREAD_VARS
from ._zygote import BOOTSTRAP, FrameReader, encode

logger = logging.getLogger(__name__)

# Modules that start CUDA, thread pools or runtimes at import time: a fork of an interpreter that
# imported them may hang or crash, so "auto" runs such scripts cold.
FORK_UNSAFE = frozenset({
    "torch", "torchvision", "torchaudio", "torchtext", "lightning", "pytorch_lightning", "fastai",
    "timm", "transformers", "accelerate", "deepspeed", "tensorflow", "tensorflow_datasets", "keras",
    "tf_keras", "jax", "jaxlib", "flax", "optax", "cupy", "cudf", "cuml", "pycuda", "numba_cuda",
    "mxnet", "paddle", "paddlepaddle", "ray", "pyspark", "onnxruntime", "vllm", "tensorrt",
})
_NEVER_PRELOAD = frozenset({"__main__", "__future__", "antigravity", "this"})
ZYGOTE_SCRIPT = Path(__file__).with_name("_zygote.py")
_CLAUSES = (ast.excepthandler, *((ast.match_case,) if hasattr(ast, "match_case") else ()))


def top_level_imports(code: str, *, submodules: bool = False) -> list[str]:
    """Modules a script imports outside functions and classes, in order, without repeats.

    Root names by default (``sklearn`` for ``from sklearn.svm import SVC``); with
    ``submodules=True`` the full dotted names too (``sklearn.svm``, and ``sklearn.svm.SVC`` in
    case it is a module), which is what makes preloading pay off for packages with lazy
    submodules. Imports under ``if``/``try``/``with`` at module level count; relative imports do
    not. Unparsable code gives an empty list.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []

    def add(name: str) -> None:
        if name and name not in names:
            names.append(name)

    stack: list[ast.AST] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name.split(".")[0])
                if submodules:
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                continue
            add(node.module.split(".")[0])
            if submodules:
                add(node.module)
                for alias in node.names:
                    if alias.name != "*":
                        add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.stmt):  # if / try / with / for bodies, in source order
            inner: list[ast.AST] = []
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    inner.append(child)
                elif isinstance(child, _CLAUSES):
                    inner.extend(child.body)
            stack.extend(reversed(inner))
    return names


def fork_unsafe(imports: Iterable[str]) -> list[str]:
    """The imports whose root is known to start CUDA or threads when imported."""
    return [name for name in imports if name.split(".")[0] in FORK_UNSAFE]


def preloadable(imports: Iterable[str]) -> list[str]:
    return [name for name in imports if name.split(".")[0] not in _NEVER_PRELOAD]


def is_startup_var(name: str) -> bool:
    """Variables read once when an interpreter starts or a BLAS library loads."""
    return name.startswith("PYTHON") or name in THREAD_VARS


def zygote_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """What a zygote fixed when it started: interpreter settings and thread pools.

    A job whose environment differs here (another PYTHONHASHSEED, say) cannot use it.
    """
    return tuple(sorted((k, v) for k, v in env.items() if is_startup_var(k)))


class Zygote:
    """The parent's handle on one warm interpreter; thread-safe."""

    def __init__(self, *, python: str, env: Mapping[str, str], imports: Sequence[str],
                 sandbox: Sequence[str] | None = None, workspace: str | None = None,
                 visible: Sequence[str] = ()) -> None:
        """``sandbox``: the bwrap prefix the zygote runs under (None: none); ``workspace`` is the
        folder it may write (each fork narrows that to its node folder); ``visible``: folders a
        job may need to read that the sandbox shows."""
        self.key = zygote_key(env)
        self.imports = list(imports)
        self.sandboxed = sandbox is not None
        self.workspace = workspace
        self.visible = tuple(visible)
        self.info: dict = {}
        self.dead = False
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._ok = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if hasattr(socket, "SO_PASSCRED"):  # the zygote's own pid in our namespace (bwrap stands between)
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._pid: int | None = None
        try:
            self.proc = subprocess.Popen(
                [*(sandbox or ()), python, "-c", BOOTSTRAP, str(ZYGOTE_SCRIPT), str(theirs.fileno()),
                 json.dumps(self.imports)],
                env=dict(env), cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), start_new_session=True,
            )
        except OSError:
            ours.close()
            self.dead = True
            self._ready.set()
            raise
        finally:
            theirs.close()
        self._sock = ours
        threading.Thread(target=self._await_ready, daemon=True, name="zygote-ready").start()

    @property
    def started(self) -> bool:
        """True once the imports are done (successfully or not)."""
        return self._ready.is_set()

    @property
    def pid(self) -> int:
        """The warm interpreter's pid (not bwrap's, when it runs sandboxed)."""
        return self._pid if self._pid is not None else self.proc.pid

    def _await_ready(self) -> None:
        reader = FrameReader()
        try:
            while not self._ok:
                if hasattr(socket, "SCM_CREDENTIALS"):
                    data, anc, _flags, _addr = self._sock.recvmsg(1 << 16, socket.CMSG_SPACE(12))
                    for level, kind, payload in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and self._pid is None:
                            self._pid = int.from_bytes(payload[:4], sys.byteorder, signed=True)
                else:
                    data = self._sock.recv(1 << 16)
                if not data:
                    break
                for msg, _ in reader.feed(data):
                    if msg.get("ready"):
                        self.info, self._ok = msg, True
        except OSError:
            pass
        if not self._ok:
            self.dead = True
        elif self.info.get("failed"):
            logger.info("warm start: these imports failed in the zygote and are left to the jobs: %s",
                        ", ".join(name for name, _ in self.info["failed"]))
        self._ready.set()

    def covers(self, workdir: str, needs: Sequence[str]) -> bool:
        """Whether a job with this node folder and these folders to read can run in this zygote."""
        if not self.sandboxed:
            return True
        inside = lambda p, root: p == root or p.startswith(root.rstrip("/") + "/")  # noqa: E731
        return (self.workspace is not None and inside(workdir, self.workspace)
                and all(any(inside(n, v) for v in self.visible) for n in needs))  # noqa: E501

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the zygote has preloaded and can fork jobs; False if it failed or timed out."""
        return self._ready.wait(timeout) and self._ok and not self.dead and self.proc.poll() is None

    def spawn(self, request: dict, out_fd: int) -> socket.socket | None:
        """Ask for one forked child; returns the job socket to read its pid and exit from."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if hasattr(socket, "SO_PASSCRED"):  # the child's pid, translated into our PID namespace
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        data = encode({**request, "op": "run", "nfds": 2})
        try:
            with self._lock:
                if self.dead:
                    raise OSError("the zygote is gone")
                sent = socket.send_fds(self._sock, [data], [out_fd, theirs.fileno()])
                if sent < len(data):
                    self._sock.sendall(data[sent:])
        except OSError:
            self.dead = True
            ours.close()
            return None
        finally:
            theirs.close()
        return ours

    def _close_socket(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # also wakes the ready thread if it still waits
        except OSError:
            pass
        self._sock.close()

    def retire(self) -> None:
        """Stop taking jobs; the zygote exits by itself once its running children are done."""
        with self._lock:
            if not self.dead:
                try:
                    self._sock.sendall(encode({"op": "retire"}))
                except OSError:
                    pass
            self.dead = True
            self._close_socket()
        threading.Thread(target=self.proc.wait, daemon=True, name="zygote-reap").start()

    def kill(self, timeout: float = 2.0) -> None:
        """End the zygote: closing the control socket makes it kill its children and exit."""
        with self._lock:
            self.dead = True
            self._close_socket()
        if self.proc.poll() is not None:
            return
        if not self._ok:  # still importing: it has no children and would not notice for a while
            self.proc.kill()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # helpers its imports may have started
        except OSError:
            pass

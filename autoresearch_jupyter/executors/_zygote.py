"""The warm interpreter ("zygote"): imports a script's modules once, then forks one child per job.

It is a fresh ``python`` started with the jobs' scrubbed environment, never a fork of the parent
(a Jupyter kernel is multi-threaded, and forking it is unsafe). Forking this single-threaded
process is cheap and safe; each child becomes exactly what ``python train.py`` would have been:
own session, output on the capture pipe, cwd, environment, ``sys.argv``, ``sys.path[0]`` and a
fresh ``__main__``, and Python's normal shutdown (threads, atexit, flush) at the end.

Stdlib only and no package imports: the parent runs this file's text under the ``python``
setting, which may be another environment. The parent imports it as a module only for the
framing helpers.

Protocol: length-prefixed JSON frames over Unix sockets; file descriptors ride along (SCM_RIGHTS).

- zygote -> parent, control: ``{"ready": true, "pid", "imported", "failed", "threads"}``
- parent -> zygote, control: ``{"op": "run", "argv0", "workdir", "env", "memory_limit", "sandbox",
  "nfds": 2}`` (``sandbox``: null, or how the fork isolates itself, see ``_isolate``)
  with fds [output pipe, job socket]; ``{"op": "retire"}``: exit when the running children are
  done. End of file without "retire" means the parent died: kill every child's group and exit.
- child -> parent, job socket: ``{"pid": n}`` once it leads its own session (``{"error"}`` if its
  setup failed). zygote -> parent, job socket: ``{"exit": code, "maxrss": bytes}`` once the child is
  reaped (negative: killed by that signal, as in ``subprocess``; maxrss from its rusage).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

_HEADER = struct.Struct("!I")


def encode(msg: dict) -> bytes:
    """One frame: a 4-byte length, then JSON."""
    data = json.dumps(msg).encode()
    return _HEADER.pack(len(data)) + data


class FrameReader:
    """Reassembles frames from a byte stream; passed fds are handed to frames in order."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.fds: list[int] = []

    def feed(self, data: bytes, fds: list[int] | tuple = ()) -> list[tuple[dict, list[int]]]:
        self.buf += data
        self.fds.extend(fds)
        out = []
        while len(self.buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buf)
            if len(self.buf) < _HEADER.size + size:
                break
            msg = json.loads(bytes(self.buf[_HEADER.size : _HEADER.size + size]))
            del self.buf[: _HEADER.size + size]
            n = int(msg.get("nfds", 0))
            fds_now, self.fds = self.fds[:n], self.fds[n:]
            out.append((msg, fds_now))
        return out


def _preload(names: list[str]) -> dict:
    import importlib

    imported, failed = [], []
    for name in names:
        try:
            importlib.import_module(name)
            imported.append(name)
        except BaseException as err:  # a module that fails here is the job's to raise, not ours
            failed.append([name, f"{type(err).__name__}: {err}"[:200]])
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        threads = threading.active_count()
    import gc

    gc.collect()
    gc.freeze()  # keep the preloaded objects out of the collector: fewer copy-on-write pages per fork
    return {"ready": True, "pid": os.getpid(), "imported": imported, "failed": failed, "threads": threads}


def _reap(children: dict) -> None:
    """Report every exited child (the parent deals with what it left running)."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)  # rusage: the child's peak memory
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock = children.pop(pid, None)
        if sock is not None:
            code = os.waitstatus_to_exitcode(status)
            maxrss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
            try:
                sock.sendall(encode({"exit": code, "maxrss": maxrss}))
            except OSError:
                pass
            sock.close()


def serve(ctl: socket.socket, imports: list[str]):
    """The zygote's loop; returns None when it should exit, or (request, fds) in a forked child."""
    import selectors

    ctl.sendall(encode(_preload(imports)))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    reader = FrameReader()
    retiring, ctl_open = False, True
    while ctl_open or children:
        if retiring and not children:
            break
        for key, _ in sel.select():
            if key.fileobj is not ctl:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
                _reap(children)
                continue
            data, fds, _flags, _addr = socket.recv_fds(ctl, 1 << 16, 16)
            if not data:  # the parent is gone (or done with us)
                ctl_open = False
                sel.unregister(ctl)
                if not retiring:
                    for pid in children:
                        try:
                            os.killpg(pid, signal.SIGKILL)
                        except OSError:
                            pass
                retiring = True
                continue
            for msg, msg_fds in reader.feed(data, fds):
                if msg.get("op") == "retire":
                    retiring = True
                elif msg.get("op") == "run" and len(msg_fds) == 2:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    pid = os.fork()
                    if pid == 0:
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        sel.close()
                        os.close(wake_r)
                        os.close(wake_w)
                        ctl.close()
                        for sock in children.values():
                            sock.close()
                        return msg, msg_fds
                    os.close(msg_fds[0])
                    children[pid] = socket.socket(fileno=msg_fds[1])
                else:
                    for fd in msg_fds:
                        os.close(fd)
    return None


# ---- per-node isolation inside a sandboxed zygote (Linux; ctypes, as os.unshare is 3.12+) ----

_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWNET = 0x20000, 0x10000000, 0x40000000
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
_MS_KEEP = 2 | 4 | 8 | 1024 | 2048  # nosuid, nodev, noexec, noatime, nodiratime: locked, must be kept
_PR_SET_CHILD_SUBREAPER, _PR_SET_PDEATHSIG = 36, 1


def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def _mount(src, target: str, fstype, flags: int, data=None) -> None:
    ctypes, libc = _libc()
    enc = lambda v: v.encode() if isinstance(v, str) else v  # noqa: E731
    if libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _kept_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return (flags & _MS_KEEP) | ((1 << 21) if flags & 4096 else 0)  # ST_RELATIME -> MS_RELATIME


def _isolate(sandbox: dict) -> None:
    """This fork's own user and mount namespace: only its node folder writable (the zygote's
    sandbox had the whole workspace writable), its own /tmp and /dev/shm, optionally no network;
    and a child subreaper, so orphans it leaves come back to it and die with the job."""
    ctypes, libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWUSER | _CLONE_NEWNS | (0 if sandbox.get("network", True) else _CLONE_NEWNET)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    workdir = sandbox["workdir"]
    _mount(workdir, workdir, None, _MS_BIND | _MS_REC)
    for root in sandbox.get("readonly_roots", ()):
        _mount(None, root, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _kept_flags(root))
    for private in ("/tmp", "/dev/shm"):
        if os.path.isdir(private) and not workdir.startswith(private.rstrip("/") + "/"):
            _mount("tmpfs", private, "tmpfs", 2 | 4, "mode=1777")
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class _IsolationError(Exception):
    """The fork could not isolate itself (the parent then runs the job cold)."""


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except (OSError, ValueError):
            kids = []
        out.extend(kids)
        todo.extend(kids)
    return out


def _end_descendants(grace: float = 1.0) -> None:
    """What the script left running (adopted by us, the subreaper): SIGTERM, then SIGKILL."""
    import time

    me = os.getpid()
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        left = _descendants(me)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                return
            if not _descendants(me):
                return
            time.sleep(0.01)


def _monitor(script_pid: int) -> None:
    """The isolated fork's part after it forked the script: wait, clean up, exit like the script."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == script_pid:
            break
    _end_descendants()
    code = os.waitstatus_to_exitcode(status)
    sys.stdout.flush()
    if code < 0:  # die of the same signal, so the parent sees what killed the script
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


def _setup_child(msg: dict, fds: list[int]) -> None:
    """Become the job: own session, limits, output on the pipe, cwd, environment; report the pid.

    In a sandboxed zygote this fork isolates itself first, then forks again: it stays behind as
    the job's monitor (ignoring the signals meant for the script), and the script runs in the
    grandchild. The pid the parent learns comes from the kernel (SO_PASSCRED), in its namespace.
    """
    out_fd, job_fd = fds
    sock = socket.socket(fileno=job_fd)
    try:
        os.setsid()
        if msg.get("sandbox"):
            try:
                _isolate(msg["sandbox"])
            except BaseException as err:
                raise _IsolationError(f"{type(err).__name__}: {err}") from None
        limit = msg.get("memory_limit")
        if limit:
            import resource

            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            limit = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        os.chdir(msg["workdir"])
        os.environ.clear()
        os.environ.update(msg["env"])
        reply: dict[str, object] = {"pid": os.getpid()}
    except _IsolationError as err:
        reply = {"error": f"the warm sandbox failed: {err}", "isolation": True}
    except BaseException as err:
        reply = {"error": f"{type(err).__name__}: {err}"}
    try:
        sock.sendall(encode(reply))
    except OSError:
        reply = {"error": "the parent is gone"}
    sock.close()
    if "error" in reply:
        os._exit(127)
    if msg.get("sandbox"):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # the group's SIGTERM is for the script; we clean up after it
        pid = os.fork()
        if pid != 0:
            _monitor(pid)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _reseed() -> None:
    """Fresh entropy for global generators seeded at import (``random`` reseeds itself at fork).

    Without it every warm job would share numpy's legacy global stream, where cold runs differ;
    a script that seeds (as node scripts should) is unaffected either way.
    """
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        try:
            np_random.seed()
        except Exception:
            pass


def run_script(argv0: str) -> str | int | None:
    """Run the script as ``python argv0`` would; returns what ``sys.exit`` should get."""
    import builtins
    import io
    import types
    from importlib.machinery import SourceFileLoader

    path = os.path.abspath(argv0)
    sys.argv = [argv0]
    _reseed()
    sys.path.insert(0, os.path.dirname(os.path.realpath(path)))
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=path, __builtins__=builtins, __loader__=SourceFileLoader("__main__", path),
        __spec__=None, __cached__=None, __package__=None, __annotations__={},
    )
    sys.modules["__main__"] = main
    try:
        with io.open_code(path) as f:
            source = f.read()
        code = compile(source, path, "exec", dont_inherit=True)
        exec(code, main.__dict__)
    except SystemExit as err:
        return err.code
    except BaseException as err:
        tb = err.__traceback__.tb_next if err.__traceback__ is not None else None  # drop this frame
        sys.excepthook(type(err), err.with_traceback(tb), tb)
        if isinstance(err, KeyboardInterrupt):  # like CPython: die of SIGINT after the traceback
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        return 1
    return 0


# How the parent starts this file: the script's directory must not be on sys.path (the child sets
# its own sys.path[0]), so the text is run from -c after dropping -c's '' entry.
BOOTSTRAP = "import sys; del sys.path[0]; p = sys.argv[1]; exec(compile(open(p, 'rb').read(), p, 'exec'))"


def main() -> None:
    """Entry point under BOOTSTRAP: argv is [-c, this file, control fd, imports as JSON]."""
    ctl = socket.socket(fileno=int(sys.argv[2]))
    job = serve(ctl, json.loads(sys.argv[3]))
    if job is None:
        return
    _setup_child(*job)
    sys.exit(run_script(job[0]["argv0"]))  # Python's own shutdown: threads, atexit, flush


if __name__ == "__main__":
    main()

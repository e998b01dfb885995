"""One job from start to result: start (cold or warm), capture, enforce the clock, kill, report.

A single thread per job waits on everything at once with poll(): the output pipe, the process's
exit (a pidfd, or the zygote's message) and a wake-up pipe for cancel. No sleeps, so a job that
does nothing costs little more than the interpreter's own start-up.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import select
import signal
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Mapping

from ._base import Job, JobResult
from ._capture import CappedLog
from ._sandbox import SandboxSettings, bwrap_argv, exit_code, gpu_devices, job_readonly
from ._procs import ExitWatch, JobProcesses, format_size, memory_failure, set_memory_limit, signal_group, tree_memory
from ._usage import UsageSampler, wait_with_usage
from ._warm import Zygote
from ._watchdog import Watchdog
from ._zygote import FrameReader

logger = logging.getLogger(__name__)

READ_SIZE = 1 << 20
DRAIN_SECONDS = 1.0  # after the script exits, how long leftovers may keep the output pipe open
STUCK_SECONDS = 10.0  # after SIGKILL, how long to wait for an exit before giving up on the process
PID_TIMEOUT = 30.0  # how long a warm child may take to report that it started
MEMORY_POLL = 0.1  # seconds between sums of the job tree's memory, when memory_limit is set


def _recv_with_pid(sock: socket.socket) -> tuple[bytes, int | None]:
    """Data and the sender's pid as the kernel reports it (SCM_CREDENTIALS), where it does."""
    if not hasattr(socket, "SCM_CREDENTIALS"):
        return sock.recv(4096), None
    data, ancdata, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 4:
            return data, int.from_bytes(payload[:4], sys.byteorder, signed=True)
    return data, None


class StartError(Exception):
    """The process could not be started (bad interpreter, missing workdir)."""


@dataclasses.dataclass
class Settings:
    """The executor settings a job needs."""

    python: str
    grace: float
    log_limit: int
    memory_limit: int | None
    sandbox: SandboxSettings | None = None  # None: jobs run without bubblewrap


class _ColdProcess:
    """A ``python train.py`` child of ours; its exit is seen through a pidfd."""

    def __init__(self, proc: subprocess.Popen, sandboxed: bool = False) -> None:
        self.pid = proc.pid
        self.sandboxed = sandboxed
        self.started = time.monotonic()
        self.watch = ExitWatch(proc)
        self.fd = self.watch.fd
        self.exit_code: int | None = None
        self.maxrss: int | None = None  # peak RSS from the reaped rusage
        self.lost = False

    def on_ready(self) -> bool:
        return True  # exited; not reaped yet, so its group id stays reserved while leftovers are handled

    def finish(self) -> None:
        try:
            self.exit_code, self.maxrss = wait_with_usage(self.pid)
            self.watch.proc.returncode = self.exit_code
        except (ChildProcessError, OSError):
            self.exit_code = self.watch.reap()
        if self.sandboxed:
            self.exit_code = exit_code(self.exit_code)

    def close(self) -> None:
        self.watch.close()


class _WarmProcess:
    """A fork of the zygote; the zygote reports its exit code over the job socket."""

    def __init__(self, sock: socket.socket, pid: int, reader: FrameReader, pending: list[dict]) -> None:
        self.sock, self.pid, self.reader = sock, pid, reader
        self.pending = pending  # frames that came with the pid (a quick job's exit can)
        self.started = time.monotonic()
        self.fd = sock.fileno()
        self.exit_code: int | None = None
        self.maxrss: int | None = None  # peak RSS, as the zygote's rusage of the reaped child says
        self.lost = False

    def on_ready(self) -> bool:
        if not self.pending:
            data = self.sock.recv(4096)
            if not data:  # the zygote died: the exit code is lost; make sure nothing is left running
                self.lost = True
                signal_group(self.pid, signal.SIGKILL)
                return True
            self.pending = [msg for msg, _ in self.reader.feed(data)]
        messages, self.pending = self.pending, []
        for msg in messages:
            if "exit" in msg:
                self.exit_code = int(msg["exit"])
                self.maxrss = int(msg["maxrss"]) if isinstance(msg.get("maxrss"), int) else None
                return True
        return False

    def finish(self) -> None:
        """Nothing to do: the zygote reaped the child and sent its exit code."""

    def close(self) -> None:
        self.sock.close()


class RunningJob:
    """A job's life; ``run`` blocks in the job's thread, ``request_cancel`` may come from any thread."""

    def __init__(self, job: Job, settings: Settings, tag: str, watchdog: Watchdog | None = None) -> None:
        self.job = job
        self.settings = settings
        self.tag = tag
        self.watchdog = watchdog
        self.cancel_requested = False
        self.measure_gpu = False  # set by the executor when the job has a GPU of its own
        self._wake_r, self._wake_w = os.pipe()
        self._wake_lock = threading.Lock()  # never write to the wake fd after it closed (fds get reused)
        self._wake_open = True

    def request_cancel(self) -> None:
        self.cancel_requested = True
        with self._wake_lock:
            if self._wake_open:
                try:
                    os.write(self._wake_w, b"x")
                except OSError:
                    pass

    # ---- start ---------------------------------------------------------------------------

    def _argv0(self) -> str:
        job = self.job
        script = Path(job.script) if Path(job.script).is_absolute() else Path(job.workdir) / job.script
        try:
            return str(script.relative_to(job.run_in))
        except ValueError:
            return str(script)

    def _start_cold(self, env: Mapping[str, str], out_fd: int) -> _ColdProcess:
        argv = [self.settings.python, self._argv0()]
        limit = self.settings.memory_limit
        sandbox = self.settings.sandbox
        if sandbox is not None:
            exe = self.settings.python
            if not (shutil.which(exe) if os.sep not in exe else os.access(exe, os.X_OK) and os.path.isfile(exe)):
                raise StartError(f"[Errno 2] No such file or directory: {exe!r}")  # as Popen says it
            if not os.path.isdir(self.job.run_in):
                raise StartError(f"[Errno 2] No such file or directory: {str(self.job.run_in)!r}")
            if limit and shutil.which("prlimit"):  # inside, before python starts: no race with bwrap's fork
                argv = [shutil.which("prlimit") or "prlimit", f"--as={limit}", *argv]
            job = self.job
            argv = bwrap_argv(
                sandbox, writable=[job.workdir], readonly=job_readonly(job, env), python=self.settings.python,
                chdir=job.run_in, gpus=bool(gpu_devices(dict(env))),
            ) + argv
        try:
            proc = subprocess.Popen(
                argv, cwd=self.job.run_in, env=dict(env),
                stdin=subprocess.DEVNULL, stdout=out_fd, stderr=out_fd, start_new_session=True,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as err:
            raise StartError(str(err)) from None
        if limit and sandbox is None and not set_memory_limit(proc.pid, limit):
            logger.warning("memory_limit is not supported here; job %s runs without it", self.job.node_id)
        return _ColdProcess(proc, sandboxed=sandbox is not None)

    def _start_warm(self, zygote: Zygote, env: Mapping[str, str], out_fd: int) -> _WarmProcess | None:
        request = {
            "argv0": self._argv0(), "workdir": str(self.job.run_in), "env": dict(env),
            "memory_limit": self.settings.memory_limit,
            "sandbox": None if not zygote.sandboxed else {
                "workdir": os.path.realpath(self.job.workdir), "readonly_roots": [zygote.workspace],
                "network": self.settings.sandbox is None or self.settings.sandbox.network,
            },
        }
        sock = zygote.spawn(request, out_fd)
        if sock is None:
            return None
        reader = FrameReader()
        sock.settimeout(PID_TIMEOUT)
        while True:  # the child answers before it runs any user code
            try:
                data, sender = _recv_with_pid(sock)
            except OSError:  # a hung zygote; a child that answers late finds the socket closed and quits
                data, sender = b"", None
            if not data:
                sock.close()
                zygote.dead = True
                return None
            messages = [msg for msg, _ in reader.feed(data)]
            for i, msg in enumerate(messages):
                if "error" in msg:
                    sock.close()
                    if msg.get("isolation"):  # this zygote cannot isolate its forks: cold from now on
                        logger.warning("%s; jobs run cold", msg["error"])
                        zygote.dead = True
                        return None
                    raise StartError(msg["error"])
                if "pid" in msg:
                    sock.settimeout(None)
                    pid = sender if sender else int(msg["pid"])  # the kernel's, in our PID namespace
                    if zygote.sandboxed and not sender:
                        sock.close()
                        zygote.dead = True
                        return None
                    return _WarmProcess(sock, pid, reader, messages[i + 1 :])

    # ---- run -----------------------------------------------------------------------------

    def run(self, *, env: Mapping[str, str], zygote: Zygote | None) -> JobResult:
        """Start the job, supervise it to the end, and describe what happened."""
        job = self.job
        log_path = Path(job.workdir) / job.log_name
        try:
            if self.cancel_requested:
                return self._result(log_path, cancelled=True)
            try:
                log = CappedLog(log_path, self.settings.log_limit)
            except OSError as err:
                return self._result(log_path, error=f"failed to start: cannot write the log: {err}")
            try:
                return self._run_with_log(log, env, zygote)
            finally:
                log.close()
        finally:
            self.close()

    def close(self) -> None:
        """Release the wake-up pipe; safe to call twice."""
        with self._wake_lock:
            if self._wake_open:
                self._wake_open = False
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _run_with_log(self, log: CappedLog, env: Mapping[str, str], zygote: Zygote | None) -> JobResult:
        out_r, out_w = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(out_r, fcntl.F_SETPIPE_SZ, READ_SIZE)  # fewer wake-ups for chatty scripts
        except (ImportError, AttributeError, OSError):
            pass
        process: _ColdProcess | _WarmProcess | None = None
        try:
            try:
                if zygote is not None:
                    process = self._start_warm(zygote, env, out_w)
                    if process is None:
                        logger.warning("warm start failed for job %s; running it cold", self.job.node_id)
                if process is None:
                    process = self._start_cold(env, out_w)
            except StartError as err:
                log.note(f"failed to start: {err}")
                log.close()
                return self._result(log.path, error=f"failed to start: {err}", tail=log.tail_text())
            finally:
                os.close(out_w)
            if self.watchdog is not None:
                self.watchdog.register(process.pid, self.tag)
            return self._supervise(process, out_r, log)
        finally:
            os.close(out_r)
            if process is not None:
                process.close()
                if self.watchdog is not None:
                    self.watchdog.unregister(process.pid)

    def _supervise(self, process: _ColdProcess | _WarmProcess, out_r: int, log: CappedLog) -> JobResult:
        grace = self.settings.grace
        tree = JobProcesses(process.pid, self.tag)  # the script leads its own session: pgid == pid
        poller = select.poll()
        for fd in (out_r, process.fd, self._wake_r):
            poller.register(fd, select.POLLIN)
        deadline = process.started + self.job.timeout
        phase, until = "run", deadline
        timed_out = cancelled = swept = False
        out_open, exited = True, False
        procs: list = []
        ended = process.started
        usage = UsageSampler(process.pid, process.started, gpu=self.measure_gpu)
        late_output = 0.0  # output after the exit was handled: leftovers still working
        limit = self.settings.memory_limit
        next_memory = process.started + MEMORY_POLL if limit else math.inf
        over_memory: str | None = None
        while True:
            now = time.monotonic()
            if not exited:
                usage.maybe_sample(now)
            if phase == "run" and now >= next_memory:
                used, count = tree_memory(process.pid)
                next_memory = now + MEMORY_POLL
                if limit is not None and used > limit:
                    over_memory = (f"memory limit of {format_size(limit)} exceeded: the node's {count} "
                                   f"process{'es' if count > 1 else ''} used {format_size(used)} together")
                    procs = tree.terminate(leader_alive=True)
                    tree.kill(procs)
                    phase, until = "killed", now + STUCK_SECONDS
                    continue
            if phase == "run" and (self.cancel_requested or now >= deadline):
                cancelled, timed_out = self.cancel_requested, not self.cancel_requested
                procs = tree.terminate(leader_alive=True)
                phase, until = "term", now + grace
            elif phase == "term" and now >= until:
                tree.kill(procs)
                phase, until = "killed", now + STUCK_SECONDS
            elif phase == "killed" and now >= until:
                logger.error("job %s: process %s survived SIGKILL; giving up", self.job.node_id, process.pid)
                ended = now
                break
            elif phase == "drain" and (not out_open or now >= until):
                if out_open and not swept:  # something of the job still holds the pipe
                    tree.kill()
                    swept, until = True, now + DRAIN_SECONDS
                    continue
                break
            wake = min(until, next_memory) if phase == "run" else until
            wait_ms = max(0, math.ceil(min(wake - now, 3600.0) * 1000))  # poll takes a C int
            if not exited:
                wait_ms = usage.wait_ms(now, wait_ms)
            for fd, _event in poller.poll(wait_ms):
                if fd == out_r:
                    data = os.read(out_r, READ_SIZE)
                    if data:
                        log.write(data)
                        if exited:
                            late_output = time.monotonic()
                    else:
                        out_open = False
                        poller.unregister(out_r)
                elif fd == process.fd and not exited:
                    if process.on_ready():
                        exited, ended = True, time.monotonic()
                        poller.unregister(process.fd)
                        if phase == "run" and not process.lost:
                            tree.stop_leftovers(grace)
                        else:  # leftovers already had their SIGTERM, or the exit status is lost
                            tree.kill(procs)
                        process.finish()
                        phase, until = "drain", time.monotonic() + DRAIN_SECONDS
                elif fd == self._wake_r:
                    os.read(self._wake_r, 64)
        if over_memory is not None:
            log.note(f"{over_memory}: the job's processes were killed")
        elif timed_out:
            log.note(f"timed out after {self.job.timeout:g} s: the job's processes were killed")
        elif cancelled:
            log.note("cancelled: the job's processes were killed")
        log.close()
        tail = log.tail_text()
        error = None
        if over_memory is not None:
            error = over_memory
        elif process.lost:
            error = "the warm interpreter died while the job ran; its exit code is unknown"
        elif not exited:
            error = f"process {process.pid} could not be killed"
        elif not (timed_out or cancelled):
            error = memory_failure(process.exit_code, tail, self.settings.memory_limit)
        return JobResult(
            node_id=self.job.node_id, exit_code=process.exit_code, timed_out=timed_out, cancelled=cancelled,
            exec_time=ended - process.started, log_path=log.path, output_tail=tail, error=error,
            warm=isinstance(process, _WarmProcess), run_time=max(ended, late_output) - process.started,
            peak_memory=usage.peak_memory(process.maxrss), gpu_memory=usage.gpu_peak,
            sandboxed=self.settings.sandbox is not None,
        )

    def _result(
        self, log_path: Path, *, cancelled: bool = False, error: str | None = None, tail: str = ""
    ) -> JobResult:
        return JobResult(
            node_id=self.job.node_id, exit_code=None, timed_out=False, cancelled=cancelled, exec_time=0.0,
            log_path=log_path, output_tail=tail, error=error,
        )

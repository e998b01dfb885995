"""Attacks as an untrusted node would try them: real node scripts through the real CLI.

Each test is one bullet of "what a node must not do" (see the README's security model): the
script attacks, the test checks from outside that nothing got through.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sandboxing import cli, one_line_error, only_run, run_script, sandbox  # noqa: F401 - the fixture

SECRET = "sk-attack-" + uuid.uuid4().hex


def test_secrets_via_proc_and_home_files_do_not_leak(tmp_path: Path, sandbox: None) -> None:
    home = tmp_path / "home"
    for rel in (".aws/credentials", ".netrc", ".ssh/id_rsa", ".config/gcloud/token"):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(f"secret = {SECRET}\n")
    code = f"""import os, glob
found = []
for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/task/*/environ"):
    try:
        found.append(open(path, "rb").read().decode(errors="replace"))
    except OSError:
        pass
for root in (os.path.expanduser("~"), {str(home)!r}):
    for folder, _dirs, files in os.walk(root):  # dotfiles too
        for name in files:
            try:
                found.append(open(os.path.join(folder, name)).read())
            except OSError:
                pass
found.append(str(os.environ))
leaks = [text[text.index("sk-attack-"):][:60] for text in found if "sk-attack-" in text]
print("LEAK", leaks if leaks else "clean", len(found))  # a leak lands in output.log, which the test reads
leaked = len(leaks)
print(f"m: {{1 if not leaked else 0}}")
"""
    for warm in ("off", "on"):
        proc = run_script(tmp_path, code, "--warm", warm,
                          env={"HOME": str(home), "OPENAI_API_KEY": SECRET, "MY_SERVICE_TOKEN": SECRET})
        assert proc.returncode == 0, proc.stderr
        assert "baseline m: 1\n" in proc.stdout, proc.stdout
        for path in (tmp_path / "runs").rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path


def forged_ids(run: Path) -> list[int]:
    events = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines() if line.strip()]
    return [e["node"]["id"] for e in events if e["event"] == "node_created" and e["node"]["id"] == 777]


def test_a_forged_journal_line_is_refused(tmp_path: Path, sandbox: None) -> None:
    fake = {"event": "node_created", "v": 1, "t": time.time(), "node": {
        "id": 777, "parent": 0, "operator": "improve", "plan": "forged", "code": "print('m: 1.0')",
        "status": "ok", "metric": 1.0, "kept": True}}
    code = f"""import os, json
fake = json.dumps({fake!r})
done = 0
for path in ("../../journal.jsonl", os.path.join(os.environ["AUTORESEARCH_NODE_DIR"], "..", "..", "journal.jsonl")):
    try:
        with open(path, "a") as f:
            f.write(fake + "\\n")
        done += 1
    except OSError as err:
        print("refused:", err)
print(f"m: {{0.5 - done / 10}}")
"""
    proc = run_script(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    run = only_run(tmp_path)
    assert forged_ids(run) == []  # the sandbox kept the node out of the record
    shown = cli("show", str(run), "--json", cwd=tmp_path)
    assert shown.returncode == 0 and [n["id"] for n in json.loads(shown.stdout)["nodes"]] == [0]
    # Without the sandbox the node can write the file, but the record refuses the forged line.
    proc = run_script(tmp_path, code, "--sandbox", "off", "--name", "nosandbox")
    forged = next(p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".") and forged_ids(p))
    for command in (("show", str(forged)), ("show", str(forged), "--json"), ("export", str(forged), "-o", str(tmp_path / "out.py")),
                    ("resume", str(forged))):
        refused = cli(*command, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
        line = one_line_error(refused, "modified", "journal.jsonl:")
        assert refused.stdout == "", command
    lines = (forged / "journal.jsonl").read_text().splitlines()
    first_bad = next(i for i, text in enumerate(lines, 1) if '"id": 777' in text or '"id":777' in text)
    assert f"journal.jsonl:{first_bad}:" in line  # names the first bad line


def test_a_flipped_run_json_is_refused(tmp_path: Path) -> None:
    proc = run_script(tmp_path, "x = 1\nprint(f'm: {x}')\n", "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    run = only_run(tmp_path)
    info = json.loads((run / "run.json").read_text())
    info["protocol"]["maximize"] = False
    (run / "run.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    for command in (("show", str(run)), ("resume", str(run)), ("export", str(run), "-o", str(tmp_path / "out.py")), ("tree", str(run))):
        refused = cli(*command, cwd=tmp_path)
        one_line_error(refused, "run.json", "journal.jsonl:1")


DAEMON = """import os, sys, time
heartbeat = os.path.join(os.environ["AUTORESEARCH_NODE_DIR"], "heartbeat-{how}")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        if "{how}" == "exec":  # an empty environment: no tag left to find it by
            os.execve("/bin/sh", ["sh", "-c", f"while :; do echo x >> {{heartbeat}}; sleep 0.05; done"], {{}})
        while True:
            with open(heartbeat, "a") as f:
                f.write("x")
            time.sleep(0.05)
    os._exit(0)
time.sleep(0.5)
print("m: 1")
"""


@pytest.mark.parametrize("warm", ["on", "off"])
@pytest.mark.parametrize("how", ["python", "exec"])
def test_setsid_daemons_die_with_their_node(tmp_path: Path, sandbox: None, warm: str, how: str) -> None:
    proc = run_script(tmp_path, DAEMON.format(how=how), "--warm", warm)
    assert proc.returncode == 0, proc.stderr
    beats = list((tmp_path / "runs").rglob(f"heartbeat-{how}"))
    assert beats, "the daemon should have started"
    size = beats[0].stat().st_size
    time.sleep(0.6)
    assert beats[0].stat().st_size == size, "a daemon outlived its node"


def test_writes_to_the_source_folder_and_host_tmp_are_refused(tmp_path: Path, sandbox: None) -> None:
    marker = f"/tmp/autoresearch-attack-{uuid.uuid4().hex}"
    code = f"""import os
done = []
for path in (os.path.join(os.environ["AUTORESEARCH_SOURCE_DIR"], "evil.txt"), {marker!r},
             os.path.join(os.path.dirname(os.path.realpath(os.path.join(os.path.dirname(__file__), "helper.py"))), "evil2.txt")):
    try:
        with open(path, "w") as f:
            f.write("pwned")
        done.append(path)
    except OSError as err:
        print("refused", path, err)
try:
    with open(os.path.join(os.environ["AUTORESEARCH_SOURCE_DIR"], "train.py"), "a") as f:
        f.write("# pwned")
    done.append("train.py")
except OSError as err:
    print("refused train.py", err)
with open("mine.txt", "w") as f:  # its own folder is writable
    f.write("ok")
print(f"m: {{len([d for d in done if d != {marker!r}])}}")  # its private /tmp is writable, the host's is not
"""
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "helper.py").write_text("X = 1\n")
    proc = run_script(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert "baseline m: 0\n" in proc.stdout
    assert not os.path.exists(marker)
    assert sorted(p.name for p in (tmp_path / "project").iterdir()) == ["helper.py", "train.py"]
    assert (tmp_path / "project" / "train.py").read_text() == code
    assert list((tmp_path / "runs").rglob("mine.txt"))


def test_no_network_cuts_tcp(tmp_path: Path, sandbox: None) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[object] = []
    server.settimeout(0.2)

    def serve() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stop.is_set():
            try:
                accepted.append(server.accept())
            except (socket.timeout, OSError):
                continue

    stop = threading.Event()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    code = f"""import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    ok = 1
except OSError as err:
    print("refused", err)
    ok = 0
print(f"m: {{ok}}")
"""
    try:
        for warm in ("off", "on"):
            proc = run_script(tmp_path, code, "--no-network", "--warm", warm)
            assert proc.returncode == 0, proc.stderr
            assert "baseline m: 0\n" in proc.stdout
        assert accepted == []
        proc = run_script(tmp_path, code)  # with the network: the same script connects
        assert "baseline m: 1\n" in proc.stdout and len(accepted) == 1
    finally:
        stop.set()
        thread.join()
        server.close()


MEMORY_HOG = """import os, time
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (120 << 20)  # each child well under the limit alone
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("m: 1")
"""


@pytest.mark.parametrize("warm", ["off", "on"])
def test_memory_limit_bounds_the_whole_tree(tmp_path: Path, warm: str) -> None:
    started = time.monotonic()
    proc = run_script(tmp_path, MEMORY_HOG, "--memory-limit", "300M", "--warm", warm)
    line = one_line_error(proc, "memory limit of 300 MiB exceeded")
    assert "processes used" in line
    assert time.monotonic() - started < 25  # killed when the sum went over, not after 30 s


def test_two_resumes_at_once_one_is_refused(tmp_path: Path) -> None:
    code = "import time\nx = 1\ntime.sleep(0.3)\nprint(f'm: {x}')\n"
    proc = run_script(tmp_path, code, "--steps", "1")
    assert proc.returncode == 0, proc.stderr
    run = only_run(tmp_path)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, "-m", "autoresearch_jupyter", "resume", str(run), "--steps", "4"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], results
    refused = next(err for (out, err), p in zip(results, procs) if p.returncode == 1)
    assert "still running in another process" in refused and "Traceback" not in refused
    events = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "run_resumed" for e in events) == 1
    shown = cli("show", str(run), "--json", cwd=tmp_path)
    assert shown.returncode == 0 and len(json.loads(shown.stdout)["nodes"]) == 5


def test_a_run_with_the_same_name_while_one_is_live_is_refused(tmp_path: Path) -> None:
    code = "import time\nx = 1\ntime.sleep(1.5)\nprint(f'm: {x}')\n"
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "train.py").write_text(code)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    argv = [sys.executable, "-m", "autoresearch_jupyter", "run", "project/train.py", "--metric", "m", "--maximize",
            "--steps", "0", "--name", "same", "--runs-dir", str(tmp_path / "runs")]
    procs = [subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 1], results
    assert len([p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]) == 1


def test_bad_runs_dir_and_workers_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "train.py").write_text("print('m: 1')\n")
    (tmp_path / "afile").write_text("x")
    for runs_dir, word in (("/proc/x", "/proc"), (str(tmp_path / "afile"), "file"),
                           (str(tmp_path / "afile" / "sub"), "file")):
        proc = cli("run", "project/train.py", "--metric", "m", "--maximize", "--runs-dir", runs_dir, cwd=tmp_path)
        one_line_error(proc, "--runs-dir", word)
    proc = cli("run", "project/train.py", "--metric", "m", "--maximize", "--workers", "0", cwd=tmp_path)
    one_line_error(proc, "--workers", "positive")


def test_show_json_stays_json_with_a_torn_last_line(tmp_path: Path) -> None:
    proc = run_script(tmp_path, "x = 1\nprint(f'm: {x}')\n", "--steps", "1")
    assert proc.returncode == 0, proc.stderr
    run = only_run(tmp_path)
    with open(run / "journal.jsonl", "ab") as f:
        f.write(b'{"event": "node_upd')
    shown = cli("show", str(run), "--json", cwd=tmp_path)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["nodes"]
    assert "torn last line" in shown.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_stops_the_run_with_one_line_and_resume_reruns_the_node(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(runs)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        code = """import os
big = not os.path.exists(os.path.join(os.environ["AUTORESEARCH_SOURCE_DIR"], "small"))
with open("blob", "wb") as f:
    f.write(b"x" * ((8 if big else 0) << 20))
print("m: 1")
"""
        proc = run_script(tmp_path, code)
        line = one_line_error(proc, "No space left on device", "free")
        assert str(runs) in line
        run = only_run(tmp_path)
        assert not (run / "best.py").exists() or (run / "best.py").stat().st_size > 0
        (tmp_path / "project" / "small").write_text("")
        for blob in runs.rglob("blob"):
            blob.unlink()
        resumed = cli("resume", str(run), cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        shown = json.loads(cli("show", str(run), "--json", cwd=tmp_path).stdout)
        assert shown["nodes"][0]["status"] == "ok" and shown["nodes"][0]["metric"] == 1.0
        assert (run / "best.py").stat().st_size > 0
    finally:
        subprocess.run(["umount", "-l", str(runs)], capture_output=True)


def test_host_unix_sockets_under_run_are_out_of_reach(tmp_path: Path, sandbox: None) -> None:
    if not os.path.isdir("/run") or not os.access("/run", os.W_OK):
        pytest.skip("needs a writable /run to place a socket there")
    path = f"/run/autoresearch-attack-{uuid.uuid4().hex[:8]}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    code = f"""import socket
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({path!r})
    print("m: 0")
except OSError as err:
    print("refused", err)
    print("m: 1")
"""
    try:
        for warm in ("off", "on"):
            proc = run_script(tmp_path, code, "--warm", warm)
            assert proc.returncode == 0 and "baseline m: 1\n" in proc.stdout, proc.stdout + proc.stderr
    finally:
        server.close()
        os.unlink(path)


def test_a_node_started_from_a_real_kernel_cannot_read_the_kernels_secrets(tmp_path: Path, sandbox: None,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ipykernel")
    manager = pytest.importorskip("jupyter_client.manager")
    spec = tmp_path / "jupyter" / "kernels" / "autoresearch-attack"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "attack", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # the kernel has it; its nodes must not get it
    work = tmp_path / "nb"
    work.mkdir()
    km, kc = manager.start_new_kernel(kernel_name="autoresearch-attack", cwd=str(work))
    try:
        kc.execute_interactive("%load_ext autoresearch_jupyter", timeout=60)
        cell = ("%%autoresearch --metric m --maximize --steps 0 --proposer mutate\nimport glob\nfound = []\n"
                "for p in glob.glob('/proc/*/environ'):\n    try:\n        found.append(open(p, 'rb').read())\n"
                "    except OSError:\n        pass\nleaks = [t for t in found if b'sk-attack-' in t]\n"
                "print('LEAK', leaks)\nprint(f'm: {1 - len(leaks)}')\n")
        kc.execute_interactive(cell, timeout=120)
    finally:
        km.shutdown_kernel(now=True)
    logs = list((work / ".autoresearch").rglob("output.log"))
    assert logs
    for log in logs:
        text = log.read_text()
        assert "m: 1" in text and SECRET not in text

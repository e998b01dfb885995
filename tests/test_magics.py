"""The notebook magics, in process: IPython's test shell, real searches on tiny scripts."""

from __future__ import annotations

import contextlib
import json
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("IPython")
pytest.importorskip("cloudpickle")

from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython

from autoresearch_jupyter.engine.guard import Guard
from autoresearch_jupyter.core.node import Status
from autoresearch_jupyter.notebook.code import SETUP_BEGIN, SETUP_END
from autoresearch_jupyter.store.runs import RunDir, list_runs

EXT = "autoresearch_jupyter"
CELL = "x = 1.0  # search: float(0, 10)\nprint(f'score: {-(x - 3) ** 2}')\n"
SLOW_CELL = "import time\nx = 1.0  # search: float(0, 10)\ntime.sleep(0.3)\nprint(f'score: {-(x - 3) ** 2}')\n"
RUN = "--metric score --maximize"


def get_ipython():
    """IPython's test shell (``globalipapp`` makes it once per process and returns None after)."""
    from IPython.core.interactiveshell import InteractiveShell

    return start_ipython() or InteractiveShell.instance()


@pytest.fixture
def ip(tmp_path, monkeypatch):
    """The test shell with a fresh AutoResearch magics object; runs go to tmp_path/runs."""
    shell = get_ipython()
    monkeypatch.chdir(tmp_path)
    manager = shell.extension_manager
    if EXT in manager.loaded:
        manager.unload_extension(EXT)
    shell.config.pop("AutoResearch", None)  # %config in an earlier test lands in the shell's config
    manager.load_extension(EXT)
    magics = shell.magics_manager.registry["AutoResearch"]
    magics.runs_dir = str(tmp_path / "runs")
    magics.view = "text"
    shell.user_ns.pop("autoresearch_run", None)
    yield shell
    for run in list(magics.runs.values()):
        run.stop()
        with contextlib.suppress(Exception):  # a failed run re-raises its error; it is over either way
            run.wait(timeout=60)
    if EXT in manager.loaded:
        manager.unload_extension(EXT)


def magics_of(shell):
    return shell.magics_manager.registry["AutoResearch"]


def runs_in(tmp_path: Path) -> list:
    return list_runs(tmp_path / "runs")


# ---- loading -----------------------------------------------------------------------------


def test_load_and_unload_register_and_remove_the_magics(ip):
    magics = ip.magics_manager.magics
    assert "autoresearch" in magics["cell"] and "autoresearch_setup" in magics["cell"]
    assert "autoresearch" in magics["line"]
    assert magics_of(ip) in ip.configurables
    ip.extension_manager.unload_extension(EXT)
    assert "autoresearch" not in magics["cell"] and "autoresearch" not in magics["line"]
    assert "autoresearch_setup" not in magics["cell"]
    assert not any(type(c).__name__ == "AutoResearch" for c in ip.configurables)
    ip.extension_manager.load_extension(EXT)
    assert "autoresearch" in ip.magics_manager.magics["cell"]


def test_importing_the_package_does_not_import_ipython():
    code = "import sys, autoresearch_jupyter; print(sorted(m for m in ('IPython', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_loading_the_extension_imports_no_engine():
    code = (
        "import sys\nfrom IPython.testing.globalipapp import get_ipython\nip = get_ipython()\n"
        "ip.run_line_magic('load_ext', 'autoresearch_jupyter')\n"
        "heavy = ['autoresearch_jupyter.engine.search', 'autoresearch_jupyter.executors', 'ipywidgets', "
        "'autoresearch_jupyter.notebook.widget', 'cloudpickle', 'nbformat']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# ---- options -----------------------------------------------------------------------------


@pytest.mark.parametrize("line,words", [
    ("--maximize", ["--metric"]),
    ("--metric score", ["--maximize", "--minimize"]),
    ("--metric score --maximize --minimize", ["not both"]),
    ("--metric score --maximize --steps many", ["--steps", "many"]),
    ("--metric score --maximize --steps -1", ["--steps"]),
    ("--metric score --maximize --timeout 0", ["--timeout"]),
    ("--metric score --maximize --min-delta abc", ["--min-delta"]),
    ("--metric score --maximize --proposer nope", ["nope", "mutate"]),
    ("--metric score --maximize --memory-limit lots", ["lots"]),
    ("--metric score --maximize --bogus", ["--bogus"]),
    ("--metric 'score --maximize", ["quotation"]),
    ("--metric 9lives --maximize", ["metric"]),
    ("--metric score --maximize --cwd does/not/exist", ["--cwd"]),
    ("--metric score --maximize --warm sometimes", ["--warm"]),
    ("--metric score --maximize --replicates 0", ["--replicates"]),
    ("--metric score --maximize --replicates lots", ["--replicates", "auto"]),
    ("--metric score --maximize --noise-k -3", ["--noise-k"]),
])
def test_bad_options_are_one_line_usage_errors(ip, tmp_path, line, words):
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("autoresearch", line, CELL)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    assert runs_in(tmp_path) == []  # nothing started


def test_bad_cells_are_usage_errors(ip, tmp_path):
    with pytest.raises(UsageError, match="empty"):
        ip.run_cell_magic("autoresearch", RUN, "\n  \n")
    with pytest.raises(UsageError, match="IPython syntax"):
        ip.run_cell_magic("autoresearch", RUN, "%time x = 1\nprint('score: 1')\n")
    with pytest.raises(UsageError, match="line 2"):
        ip.run_cell_magic("autoresearch", RUN, "x = 1\nif x\n")
    assert runs_in(tmp_path) == []


def test_help_prints_and_runs_nothing(ip, tmp_path, capsys):
    assert ip.run_cell_magic("autoresearch", "--help", CELL) is None
    out = capsys.readouterr().out
    assert "--metric" in out and "--use" in out and "--background" in out
    ip.run_line_magic("autoresearch", "--help")
    out = capsys.readouterr().out
    assert "export" in out and "resume" in out and "report" in out
    ip.run_line_magic("autoresearch", "export --help")
    out = capsys.readouterr().out
    assert "--cell" in out and "--to" in out
    ip.run_line_magic("autoresearch", "")
    assert "COMMAND" in capsys.readouterr().out
    assert runs_in(tmp_path) == []
    assert "report" in ip.find_line_magic("autoresearch").__doc__  # what `%autoresearch?` shows


@pytest.mark.parametrize("line,words", [
    ("frobnicate", ["frobnicate", "invalid choice"]),
    ("--metric score --maximize", ["%%autoresearch"]),
    ("show nope", ["nope"]),
    ("export --node x", ["node id"]),
    ("wait", ["no run was started"]),
    ("stop", ["no run was started"]),
    ("report 'unclosed", ["quotation"]),
])
def test_bad_line_commands_are_one_line_usage_errors(ip, line, words):
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("autoresearch", line)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_config_sets_defaults_and_the_cell_wins(ip, tmp_path):
    ip.run_line_magic("config", "AutoResearch.steps = 2")
    ip.run_line_magic("config", "AutoResearch.proposer = 'mutate'")
    ip.run_line_magic("config", "AutoResearch.workers = 2")
    run = ip.run_cell_magic("autoresearch", RUN, CELL)
    assert len(run.nodes) == 3 and run.state == "finished"
    assert run.run_dir.settings["executor"]["workers"] == 2
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 1", CELL)
    assert len(run.nodes) == 2
    ip.run_line_magic("config", "AutoResearch.proposer = 'nope'")  # rejected by the trait like every option
    assert magics_of(ip).proposer == "mutate"
    assert magics_of(ip).steps == 2
    ip.run_line_magic("config", "AutoResearch.steps = -1")  # rejected by the trait, printed by %config
    assert magics_of(ip).steps == 2


def test_llm_options_reach_the_proposer_settings_only_for_llm_proposers(ip, monkeypatch):
    from autoresearch_jupyter import proposers
    from autoresearch_jupyter.engine import search

    seen = []
    real = proposers.get_proposer

    def spy(name, **settings):
        seen.append((name, settings))
        return real("mutate", seed=settings.get("seed", 0))

    monkeypatch.setattr(search, "get_proposer", spy)  # where the engine builds the proposer
    magics = magics_of(ip)
    magics.model, magics.temperature = "tiny-model", 0.2
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 0 --proposer llm --base-url http://127.0.0.1:9/v1", CELL)
    assert run.run_dir.settings["proposer"] == {
        "name": "llm", "model": "tiny-model", "temperature": 0.2, "base_url": "http://127.0.0.1:9/v1"}
    assert seen[-1] == ("llm", {"seed": 0, "model": "tiny-model", "temperature": 0.2,
                                "base_url": "http://127.0.0.1:9/v1"})
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 0 --proposer mutate --goal faster", CELL)
    assert run.run_dir.settings["proposer"] == {"name": "mutate"}
    assert run.run_dir.settings["goal"] == "faster"


def test_the_llm_proposer_searches_a_notebook_cell_and_cannot_edit_the_setup(ip, monkeypatch):
    pytest.importorskip("openai")
    from openai_server import FakeOpenAI, Reply, clear_openai_env, edit

    clear_openai_env(monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-magics-0000")
    ip.run_cell_magic("autoresearch_setup", "", "TARGET = 3\n")
    cheat = Reply(edit("TARGET = 3", "TARGET = 1", "move the target"))  # the frozen setup
    answers = [cheat, cheat, Reply(edit("x = 1.0", "x = 3.0", "hit the target"))]  # cheat, its retry, then honest
    with FakeOpenAI(*answers, default=Reply(status=500)) as server:
        run = ip.run_cell_magic(
            "autoresearch",
            f"{RUN} --steps 2 --proposer llm --model any-model --base-url {server.url} --goal 'reach the target'",
            "x = 1.0\nprint(f'score: {-(x - TARGET) ** 2}')\n",
        )
    assert run.run_dir.settings["proposer"]["model"] == "any-model"
    assert run.run_dir.settings["goal"] == "reach the target"
    assert "reach the target" in json.dumps(server.requests[0])
    assert "frozen" in json.dumps(server.requests[1])  # the retry told the model why
    cheated, honest = run.nodes[1], run.nodes[2]
    assert cheated.status is Status.REJECTED and "frozen" in cheated.reason
    assert honest.status is Status.OK and honest.metric == 0 and run.best.id == 2 and run.state == "finished"


# ---- running -----------------------------------------------------------------------------


def test_a_blocking_run_returns_the_run_and_keeps_it_in_the_namespace(ip, tmp_path, capsys):
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 4 --name 'first run'", CELL)
    assert ip.user_ns["autoresearch_run"] is run
    assert run.state == "finished" and run.id == runs_in(tmp_path)[0].id and run.name == "first run"
    assert [n.id for n in run.nodes if n.operator.value != "ablate"] == [0, 1, 2, 3, 4]
    assert run.best.metric == max(n.metric for n in run.nodes if n.kept or n.id == 0)
    assert "x =" in run.best.code
    assert run.nodes[0].code.strip() == CELL.strip()  # no setup registered: the cell alone
    assert "score" in str(run.report()) and run.report().data.experiments == 4
    assert "finished" in repr(run) and run.id in repr(run)
    progress = capsys.readouterr().out  # text progress lines
    assert any(line.split()[:2] == ["base", "baseline"] for line in progress.splitlines() if line.strip())
    assert run.run_dir.settings["source_dir"] == str(tmp_path.resolve())
    assert run.wait() is run  # waiting on a finished run returns at once
    html = run._repr_html_()
    assert html and "score" in html
    run.live_cell = ip.execution_count  # as if it were shown live in this cell
    assert run._repr_html_() is None


def test_a_failing_baseline_is_a_usage_error_with_the_output_tail(ip, tmp_path):
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("autoresearch", RUN, "print('about to fail')\n1 / 0\n")
    message = str(info.value)
    assert message.splitlines()[0].startswith("the baseline failed: ZeroDivisionError")
    assert "about to fail" in message and "autoresearch_jupyter/" not in message
    run = ip.user_ns["autoresearch_run"]
    assert run.state == "failed" and runs_in(tmp_path)[0].state == "failed"
    result = ip.run_cell(f"%%autoresearch {RUN}\nprint('no metric here')\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "score" in str(result.error_in_exec)
    run = ip.run_cell_magic("autoresearch", RUN + " --background", "raise SystemExit(3)\n")
    with pytest.raises(UsageError, match="baseline failed"):  # a background run's error comes with wait
        ip.run_line_magic("autoresearch", "wait")
    assert run.state == "failed" and "baseline" in run.reason and run.error is not None


def test_local_modules_next_to_the_notebook_import(ip, tmp_path):
    (tmp_path / "helpers.py").write_text("def best():\n    return 7\n")
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 0", "from helpers import best\nprint(f'score: {best()}')\n")
    assert run.best.metric == 7


# ---- setup -------------------------------------------------------------------------------


def test_setup_runs_in_the_kernel_and_is_frozen_at_the_top_of_every_node(ip, tmp_path, scripted):
    ip.run_cell_magic("autoresearch_setup", "", "TARGET = 3\nseen = 'setup ran'\n")
    assert ip.user_ns["seen"] == "setup ran" and ip.user_ns["TARGET"] == 3
    cell = "x = 1.0\nprint(f'score: {-(x - TARGET) ** 2}')\n"
    from autoresearch_jupyter.engine import search

    def edit_setup(code):
        return "cheat", code.replace("TARGET = 3", "TARGET = 1")

    def edit_cell(code):
        return "x to 3", code.replace("x = 1.0", "x = 3.0")

    fake = scripted([edit_setup, edit_cell])
    monkey = pytest.MonkeyPatch()
    monkey.setattr(search, "get_proposer", lambda name, **kw: fake)  # where the engine builds it
    try:
        run = ip.run_cell_magic("autoresearch", RUN + " --steps 2", cell)
    finally:
        monkey.undo()
    base = run.nodes[0].code
    assert base.startswith(SETUP_BEGIN) and SETUP_END in base and "TARGET = 3" in base
    assert base.index("TARGET = 3") < base.index(SETUP_END) < base.index("x = 1.0")
    cheat, honest = run.nodes[1], run.nodes[2]
    assert cheat.status is Status.REJECTED and "frozen" in cheat.reason
    assert honest.status is Status.OK and honest.metric == 0 and run.best.id == 2
    assert Guard(protocol=run.protocol).check(code=cheat.code, parent_code=base).startswith("frozen")
    # nodes run the setup themselves, in their own process
    assert "score: -4" in (run.path / "nodes" / "0" / "output.log").read_text()


def test_several_setup_cells_append_and_a_rerun_cell_replaces_itself(ip, capsys):
    ip.run_cell("%%autoresearch_setup\nA = 1\n", cell_id="cell-a")
    ip.run_cell("%%autoresearch_setup\nB = 2\n", cell_id="cell-b")
    ip.run_cell("%%autoresearch_setup\nA = 10\n", cell_id="cell-a")  # edited and run again
    magics = magics_of(ip)
    assert [b.code for b in magics.setup.blocks] == ["A = 10", "B = 2"]
    ip.run_cell_magic("autoresearch_setup", "", "C = 3\n")
    ip.run_cell_magic("autoresearch_setup", "", "C = 3\n")  # same text, no cell id: not stacked
    assert [b.code for b in magics.setup.blocks] == ["A = 10", "B = 2", "C = 3"]
    ip.run_line_magic("autoresearch", "setup")
    assert "A = 10" in capsys.readouterr().out
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 0", "print(f'score: {A + B + C}')\n")
    assert run.best.metric == 15
    ip.run_line_magic("autoresearch", "setup --clear")
    assert len(magics.setup) == 0


def test_a_failing_or_marked_setup_cell_is_not_registered(ip):
    result = ip.run_cell("%%autoresearch_setup\nD = 1\nraise ValueError('bad data')\n")
    assert isinstance(result.error_in_exec, UsageError) and "not registered" in str(result.error_in_exec)
    with pytest.raises(UsageError, match="marker"):
        ip.run_cell_magic("autoresearch_setup", "", "# autoresearch: end\nE = 1\n")
    with pytest.raises(UsageError, match="IPython syntax"):
        ip.run_cell_magic("autoresearch_setup", "", "!ls\n")
    with pytest.raises(UsageError, match="no options"):
        ip.run_cell_magic("autoresearch_setup", "--frozen", "F = 1\n")
    assert len(magics_of(ip).setup) == 0


def test_editing_the_setup_later_does_not_change_a_resumed_run(ip):
    ip.run_cell_magic("autoresearch_setup", "", "K = 1\n")
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 1", CELL.replace("-(x - 3)", "K - (x - 3)"))
    ip.run_cell_magic("autoresearch_setup", "", "K = 100\n")
    resumed = ip.run_line_magic("autoresearch", f"resume {run.id} --steps 3")
    assert resumed.id == run.id and len(resumed.nodes) == 4
    assert all("K = 1\n" in n.code and "K = 100" not in n.code for n in resumed.nodes)


# ---- --use -------------------------------------------------------------------------------


def test_use_hands_kernel_variables_to_every_node(ip, tmp_path):
    ip.user_ns["weights"] = [1.0, 2.0, 3.0]
    ip.user_ns["scale"] = lambda v: 10 * v  # cloudpickle ships functions defined in the notebook
    cell = "x = 1.0  # search: float(0, 10)\nprint(f'score: {scale(sum(weights)) - (x - 3) ** 2}')\n"
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 2 --use weights,scale", cell)
    assert run.state == "finished" and run.nodes[0].metric == 56.0
    blobs = pickle.loads((run.path / "use.pkl").read_bytes())
    assert set(blobs) == {"weights", "scale"} and pickle.loads(blobs["weights"]) == [1.0, 2.0, 3.0]
    assert run.protocol.frozen and "_autoresearch_use" in run.protocol.frozen[0]  # the loader is frozen
    # the exported script finds the variables from anywhere
    out = tmp_path / "elsewhere" / "best.py"
    out.parent.mkdir()
    ip.run_line_magic("autoresearch", f"export --to {out}")
    ran = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, cwd=out.parent, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    assert f"score: {run.best.metric}" in ran.stdout


@pytest.mark.parametrize("setup,use,words", [
    ("", "nothere", ["nothere", "no variable"]),
    ("import threading\nlock = threading.Lock()\n", "lock", ["lock", "cannot be serialised"]),
    ("gen = (i for i in range(3))\n", "gen", ["gen", "generator"]),
    ("", "not-a-name", ["not-a-name"]),
])
def test_use_errors_name_the_variable(ip, tmp_path, setup, use, words):
    if setup:
        ip.run_cell(setup)
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("autoresearch", f"{RUN} --use {use}", CELL)
    assert "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)
    assert runs_in(tmp_path) == []


# ---- stop, wait, resume ------------------------------------------------------------------


def test_background_run_stop_then_resume_finishes(ip, tmp_path):
    started = time.monotonic()
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 30 --background", SLOW_CELL)
    assert time.monotonic() - started < 5 and run.state == "running"
    assert ip.user_ns["autoresearch_run"] is run
    deadline = time.monotonic() + 60
    while len(run.nodes) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    ip.run_line_magic("autoresearch", "stop")
    assert run.state == "stopped"
    replay = RunDir.open(run.path).load()
    assert replay.state == "stopped" and all(n.status.is_finished() for n in replay.tree)
    assert len(replay.tree) < 31
    done = {n.id for n in replay.tree if n.status is Status.OK}
    resumed = ip.run_line_magic("autoresearch", f"resume {run.id} --steps 6")
    assert resumed.state == "finished" and ip.user_ns["autoresearch_run"] is resumed
    after = RunDir.open(run.path).load()
    searched = [n for n in after.tree if n.operator.value != "ablate"]  # ablation runs come on top
    assert after.state == "finished" and len(searched) == max(7, len(replay.tree))
    starts = [json.loads(line)["id"] for line in (run.path / "journal.jsonl").read_text().splitlines()
              if '"node_started"' in line]
    assert all(starts.count(i) == 1 for i in done)  # finished nodes did not run again


def test_wait_for_a_background_run(ip, capsys):
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 2 --background", CELL)
    ip.run_line_magic("autoresearch", f"wait {run.id}")
    assert run.state == "finished"
    assert f"run {run.id}: finished" in capsys.readouterr().out
    with pytest.raises(UsageError, match="still running|not running|no run"):
        ip.run_line_magic("autoresearch", "wait nosuchrun")


def test_interrupting_wait_stops_the_waiting_not_the_background_run(ip, capsys):
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 30 --background", SLOW_CELL)
    main = threading.main_thread().ident
    threading.Timer(1.0, lambda: signal.pthread_kill(main, signal.SIGINT)).start()
    ip.run_line_magic("autoresearch", "wait")
    assert "stopped waiting" in capsys.readouterr().err
    assert run.state == "running"
    run.stop()
    run.wait()
    assert run.state == "stopped"


def test_interrupting_a_blocking_run_stops_it_cleanly(ip, tmp_path, capsys):
    main = threading.main_thread().ident

    def interrupt():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = ip.user_ns.get("autoresearch_run")
            if run is not None and len(run.nodes) >= 3:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 40", SLOW_CELL)  # returns: no KeyboardInterrupt
    assert run.state == "stopped"
    assert f"%autoresearch resume {run.id}" in capsys.readouterr().err
    replay = RunDir.open(run.path).load()
    assert replay.state == "stopped" and all(n.status.is_finished() for n in replay.tree)
    assert any(n.status is Status.CANCELLED for n in replay.tree) or len(replay.tree) < 41
    path = tmp_path / "best.py"
    ip.run_line_magic("autoresearch", f"export {run.id} --to {path}")  # a stopped run exports
    assert path.exists()
    resumed = ip.run_line_magic("autoresearch", f"resume {run.id} --steps {len(replay.tree) + 1}")
    assert resumed.state == "finished"


def test_resume_refuses_a_run_that_is_still_running(ip):
    run = ip.run_cell_magic("autoresearch", RUN + " --steps 30 --background", SLOW_CELL)
    with pytest.raises(UsageError, match="still running"):
        ip.run_line_magic("autoresearch", f"resume {run.id}")
    run.stop()
    run.wait()


# ---- looking at runs, exporting ----------------------------------------------------------


@pytest.fixture
def finished(ip):
    ip.run_cell_magic("autoresearch_setup", "", "OFFSET = 0.5\n")
    return ip.run_cell_magic("autoresearch", RUN + " --steps 4 --name demo", CELL.replace("print(f'score: {", "print(f'score: {OFFSET + "))


def test_export_to_a_file_runs_on_its_own(ip, finished, tmp_path, capsys):
    path = tmp_path / "best.py"
    ip.run_line_magic("autoresearch", f"export demo --to {path}")
    assert f"wrote {path}" in capsys.readouterr().out
    ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert f"score: {finished.best.metric}" in ran.stdout
    assert "autoresearch-jupyter" in path.read_text().splitlines()[0]
    ip.run_line_magic("autoresearch", "export demo --node 1 --to node1.py")
    assert "node: 1" in (tmp_path / "node1.py").read_text()
    with pytest.raises(UsageError, match="no node 99"):
        ip.run_line_magic("autoresearch", "export demo --node 99 --to x.py")


def test_export_to_the_next_cell(ip, finished, monkeypatch):
    calls = []
    monkeypatch.setattr(ip, "set_next_input", lambda text, replace=False: calls.append((text, replace)))
    ip.run_line_magic("autoresearch", "export --cell")
    [(text, replace)] = calls
    assert replace is False
    assert text.startswith("# autoresearch-jupyter run") and f"node {finished.best.id}" in text.splitlines()[0]
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    assert "OFFSET = 0.5" not in body and "x =" in body  # the training cell only: the setup is in the notebook
    assert SETUP_BEGIN not in text


def test_show_tree_list_and_report(ip, finished, tmp_path, capsys):
    ip.run_line_magic("autoresearch", "list")
    out = capsys.readouterr().out
    assert "demo" in out and "finished" in out
    ip.run_line_magic("autoresearch", "show demo")
    assert "# autoresearch report" in capsys.readouterr().out
    ip.run_line_magic("autoresearch", "show demo --node 1")
    out = capsys.readouterr().out
    assert "node 1" in out and "@@" in out
    ip.run_line_magic("autoresearch", "tree demo --text")
    assert "best" in capsys.readouterr().out
    shown = []
    import IPython.display

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    try:
        ip.run_line_magic("autoresearch", "tree demo")
    finally:
        monkeypatch.undo()
    captured = capsys.readouterr()
    if shown:
        assert type(shown[0]).__name__ == "SVG" and "<svg" in shown[0].data
    else:  # no Graphviz here: the text tree and the warning
        assert "dot" in captured.err and "best" in captured.out
    report = ip.run_line_magic("autoresearch", "report")
    assert report.data.run_name == "demo" and "## Summary" in str(report)


def test_report_writes_a_lineage_notebook(ip, finished, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    ip.run_line_magic("autoresearch", "report demo --notebook lineage.ipynb")
    nb = nbformat.read(tmp_path / "lineage.ipynb", as_version=4)
    nbformat.validate(nb)
    path = finished.tree.path(finished.best.id)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert code[0] == "OFFSET = 0.5"  # the setup once
    assert len(code) == 1 + len(path)  # then the baseline and one cell per step
    assert code[-1].strip() == finished.best.code.split(SETUP_END)[1].strip()  # the best last
    assert "Baseline" in markdown[2] and "This is the best node" in markdown[-1]
    for node, text in zip(path[1:], markdown[3:]):
        assert f"node {node.id}" in text and node.plan.split(" ")[0] in text
    namespace: dict = {}
    for source in code:  # the lineage notebook runs top to bottom
        exec(compile(source, "<cell>", "exec"), namespace)


# ---- the tree widget ---------------------------------------------------------------------


@pytest.fixture
def widget_ip(ip):
    """The shell with AutoResearch.view = 'widget' (the tree view even without a kernel)."""
    pytest.importorskip("anywidget")
    try:
        import autoresearch_jupyter.notebook.widget  # noqa: F401
    except Exception as err:  # pragma: no cover - a build without the widget's JavaScript
        pytest.skip(f"the tree widget does not load here: {err}")
    ip.run_line_magic("config", "AutoResearch.view = 'widget'")
    return ip


def replies_of(view, monkeypatch):
    sent = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: sent.append(content))
    return sent


def test_a_blocking_run_shows_one_live_view_that_ends_with_the_tree(widget_ip, tmp_path, monkeypatch, capsys):
    run = widget_ip.run_cell_magic("autoresearch", RUN + " --steps 3", CELL)
    view = run.view
    assert view is not None and type(view).__name__ == "TreeView"
    assert "[base]" not in capsys.readouterr().out  # no text progress next to the view
    assert view.state == "finished" and sorted(view.node_ids()) == [n.id for n in run.nodes]
    assert view._meta["best_id"] == run.best.id and view._meta["state"] == "finished"
    assert {r["id"] for r in view._nodes["nodes"]} == {n.id for n in run.nodes}  # the saved snapshot
    assert run.live_cell == widget_ip.execution_count and run._repr_html_() is None  # no second tree in Out[]
    sent = replies_of(view, monkeypatch)
    view._on_custom_msg(view, {"type": "export", "id": 7, "node": run.best.id}, [])
    [reply] = sent
    path = Path(reply["path"])
    assert reply["id"] == 7 and path.parent == tmp_path and path.exists()
    ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert f"score: {run.best.metric}" in ran.stdout


def test_the_stop_button_stops_a_background_run(widget_ip, monkeypatch):
    run = widget_ip.run_cell_magic("autoresearch", RUN + " --steps 30 --background", SLOW_CELL)
    view = run.view
    deadline = time.monotonic() + 60
    while len(run.nodes) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view._meta["can_stop"]
    sent = replies_of(view, monkeypatch)
    view._on_custom_msg(view, {"type": "stop", "id": 1}, [])
    assert sent == [{"type": "stop", "id": 1}]
    run.wait(timeout=60)
    assert run.state == "stopped" and view.state == "stopped"
    assert RunDir.open(run.path).load().state == "stopped"


def test_interrupting_a_blocking_run_leaves_the_view_stopped(widget_ip):
    main = threading.main_thread().ident

    def interrupt():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = widget_ip.user_ns.get("autoresearch_run")
            if run is not None and len(run.nodes) >= 2:
                break
            time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    run = widget_ip.run_cell_magic("autoresearch", RUN + " --steps 40", SLOW_CELL)
    assert run.state == "stopped" and run.view.state == "stopped"
    assert run.view._meta["state"] == "stopped" and not run.view._meta["can_stop"]


def test_show_and_resume_load_the_existing_tree_into_a_view(widget_ip, monkeypatch):
    run = widget_ip.run_cell_magic("autoresearch", RUN + " --steps 2", CELL)
    shown = []
    from autoresearch_jupyter.notebook import magics as magics_module

    monkeypatch.setattr(magics_module, "show_view", lambda view: shown.append(view))
    widget_ip.run_line_magic("autoresearch", f"show {run.id}")
    [view] = shown
    assert view.state == "finished" and sorted(view.node_ids()) == [0, 1, 2]
    assert not view._meta["can_stop"] and view._meta["can_export"]
    resumed = widget_ip.run_line_magic("autoresearch", f"resume {run.id} --steps 4")
    live = shown[-1]
    assert live is resumed.view and live.state == "finished" and sorted(live.node_ids())[:5] == [0, 1, 2, 3, 4]
    assert all(resumed.tree[i].operator.value == "ablate" for i in sorted(live.node_ids())[5:])

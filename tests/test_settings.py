"""RunSettings, the one settings model, and the faces generated from it.

Drift tests: every setting is an option of `autoresearch run`, of `%%autoresearch`, a trait of
`AutoResearch`, and a row of the README's table; the two faces take the same run options, but
for the documented exceptions. Then the behaviour: one check and one message per option on every
face, and run.json in the shape earlier versions wrote (old runs still load).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from autoresearch_jupyter.cli import build_parser, main
from autoresearch_jupyter.core.errors import AutoResearchError, ProposerError, ProtocolError
from autoresearch_jupyter.core.settings import SECTIONS, RunSettings, SettingsError, check_option, options
from autoresearch_jupyter.store.runs import RunDir, list_runs

pytest.importorskip("IPython")
from test_magics import CELL, ip  # noqa: E402,F401 - the magics' test shell fixture

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# The documented exceptions (README, "Options of a run"): the CLI's headless-only output flag,
# and the magics' kernel-only options.
CLI_ONLY = {"--json"}
MAGICS_ONLY = {"--use", "--background"}


def cli_run_flags() -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {s for a in sub.choices["run"]._actions for s in a.option_strings} - {"-h", "--help"}


def magic_run_flags() -> set[str]:
    pytest.importorskip("IPython")
    from autoresearch_jupyter.notebook.magics import AutoResearch

    parser = AutoResearch.autoresearch_cell.parser
    return {s for a in parser._actions for s in a.option_strings} - {"-h", "--help"}


def setting_flags() -> set[str]:
    flags = {f for o in options() for f in o.flags}
    for o in options():
        if o.kind is bool:
            flags.add("--no-" + o.flags[0][2:])
    return flags


# ---- drift -----------------------------------------------------------------------------------


@pytest.mark.parametrize("option", options(), ids=lambda o: o.name)
def test_every_setting_is_an_option_of_both_faces_a_trait_and_in_the_readme(option):
    cli, magic = cli_run_flags(), magic_run_flags()
    for flag in option.flags:
        assert flag in cli, f"{flag} is not an option of `autoresearch run`"
        assert flag in magic, f"{flag} is not an option of %%autoresearch"
    from autoresearch_jupyter.notebook.magics import AutoResearch

    traits = AutoResearch.class_traits(config=True)
    assert option.name in traits, f"AutoResearch.{option.name} is not a configurable trait"
    assert f"`{option.name}`" in readme_table(), f"{option.name} is not in the README's options table"


def test_the_cli_and_the_magics_take_the_same_run_options_but_the_documented_exceptions():
    cli, magic = cli_run_flags(), magic_run_flags()
    assert cli - CLI_ONLY == magic - MAGICS_ONLY
    assert CLI_ONLY <= cli and MAGICS_ONLY <= magic
    assert setting_flags() <= cli
    shared_face_options = (cli - CLI_ONLY) - setting_flags()
    assert shared_face_options == {"--name", "--runs-dir"}  # who and where, not how: not settings
    for flag in CLI_ONLY | MAGICS_ONLY:
        assert f"`{flag}`" in readme_section(), f"the exception {flag} is not documented in the README"


def test_both_faces_parse_an_option_to_the_same_type():
    pytest.importorskip("IPython")
    from autoresearch_jupyter.notebook.magics import AutoResearch, split_options

    line = ("--metric acc --minimize --steps 3 --timeout 2.5 --min-delta 0.1 --debug-prob 0.5 --patience 2 "
            "--workers 2 --memory-limit 1G --gpus 0,1 --proposer llm --model m --temperature 0.2 "
            "--max-tokens 900 --hybrid-after 0.5 --llm-report --no-smoke --warm off --goal 'be fast'")
    words = split_options(line)
    cli = build_parser().parse_args(["run", "x.py", *words])
    magic = AutoResearch.autoresearch_cell.parser.parse_args(words)
    from autoresearch_jupyter.core.argtypes import option_values

    assert option_values(cli) == option_values(magic)
    values = option_values(cli)
    assert values["steps"] == 3 and values["timeout"] == 2.5 and values["smoke"] is False
    assert values["direction"] == "minimize" and values["goal"] == "be fast"


def readme_section() -> str:
    match = re.search(r"^### Options of a run\n(.*?)(?=^#)", README, re.M | re.S)
    assert match, "the README has no '### Options of a run' section"
    return match.group(1)


def readme_table() -> str:
    match = re.search(r"<!-- run-options -->\n(.*?)<!-- /run-options -->", README, re.S)
    assert match, "the README has no <!-- run-options --> table"
    return match.group(1)


def expected_table() -> str:
    """The README's options table, as generated from RunSettings."""
    rows = ["| option | `%config AutoResearch.` | takes | default | what it sets |", "|---|---|---|---|---|"]
    section = None
    for o in options():
        if o.spec.section != section:
            section = o.spec.section
            rows.append(f"| **{SECTIONS[section]}** | | | | |")
        flags = " / ".join(f"`{f}`" for f in o.flags)
        if o.kind is bool:
            flags += f" / `--no-{o.flags[0][2:]}`"
        shown = _shown(o.default)
        rows.append(f"| {flags} | `{o.name}` | {o.takes} | {f'`{shown}`' if shown else ''} | {o.spec.help} |")
    return "\n".join(rows) + "\n"


def _shown(value):
    from autoresearch_jupyter.core.argtypes import _shown as shown

    return shown(value)


def test_the_readme_table_is_generated_from_run_settings():
    assert readme_table() == expected_table(), "README's options table is stale; replace it with:\n" + expected_table()


# ---- one check, one message, on every face -----------------------------------------------------


BAD = [
    ("--steps -1", "--steps must be a non-negative integer"),
    ("--timeout 0", "--timeout must be a positive number of seconds"),
    ("--debug-prob 2", "--debug-prob must be between 0 and 1"),
    ("--temperature 5", "--temperature must be between 0 and 2"),
    ("--max-prompt-tokens 10", "--max-prompt-tokens must be an integer of at least 500"),
    ("--max-cost 1", "--max-cost needs --price-in and --price-out"),
    ("--memory-limit lots", "--memory-limit: invalid size 'lots'"),
    ("--base-url localhost:8000", "--base-url must be an http(s) URL"),
    ("--seed 5000000000", "--seed must be an integer from 0 to 4294967295"),
    ("--minimize", "--maximize is not allowed with --minimize"),
]


@pytest.mark.parametrize("line,message", BAD)
def test_a_bad_value_gets_the_same_one_line_message_on_both_faces(ip, tmp_path, capsys, line, message):
    from IPython.core.error import UsageError

    (tmp_path / "s.py").write_text(CELL)
    rc = main(["run", "s.py", "--metric", "score", "--maximize", *line.split(), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and message in err, err
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("autoresearch", f"--metric score --maximize {line}", CELL)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert list_runs(tmp_path / "runs") == []  # nothing started on either face


def test_a_trait_is_checked_like_its_option():
    pytest.importorskip("IPython")
    from traitlets import TraitError

    from autoresearch_jupyter.notebook.magics import AutoResearch

    magics = AutoResearch(shell=None)
    magics.debug_prob = 0.5
    magics.memory_limit = "2G"
    magics.gpus = "0, 1"
    for name, value, words in [("debug_prob", 1.5, "--debug-prob must be between 0 and 1"),
                               ("steps", -1, "--steps must be a non-negative integer"),
                               ("memory_limit", "lots", "invalid size"), ("proposer", "gpt", "gpt")]:
        with pytest.raises(TraitError, match=re.escape(words)):
            setattr(magics, name, value)
    settings = magics.configured()
    assert settings.policy.debug_prob == 0.5 and settings.executor.memory_limit == 2 * 2**30
    assert settings.executor.gpus == ("0", "1")
    with pytest.raises(AutoResearchError, match="--workers must be a positive integer"):  # not silently 1
        RunSettings.from_options({"workers": 0})


# ---- run.json --------------------------------------------------------------------------------


def test_defaults_round_trip_through_run_json():
    settings = RunSettings.from_options({"steps": 7, "proposer": "llm", "model": "m", "max_tokens": 900,
                                         "memory_limit": "512M", "gpus": "1", "patience": 5, "goal": "g"})
    data = json.loads(json.dumps(settings.to_dict()))
    assert data["proposer"] == {"name": "llm", "model": "m", "max_tokens": 900}
    assert data["executor"] == {"name": "local", "workers": 1, "warm": "auto", "memory_limit": 512 * 2**20,
                                "gpus": ["1"]}
    assert RunSettings.from_dict(data) == settings
    mutate = RunSettings.from_options({"proposer": "mutate", "model": "ignored"})
    assert mutate.to_dict()["proposer"] == {"name": "mutate"}  # LLM options only for LLM proposers


def test_runs_written_before_still_load():
    # what search.default_settings / build_settings wrote before RunSettings existed
    old = {"steps": 5, "max_time": None, "smoke": False, "goal": "", "proposer": {"name": "mutate"},
           "executor": {"name": "local", "workers": 1}, "policy": {}, "source_dir": None, "cwd": None}
    settings = RunSettings.from_dict(old)
    assert settings.steps == 5 and settings.proposer.name == "mutate" and settings.executor.warm == "auto"
    assert settings.policy.patience == 3 and settings.policy.debug_prob == 0.3
    assert RunSettings.from_dict({}).proposer.name == "mutate"  # hand-written settings without a proposer
    imported = {"imported_from": "aide", "aide_version": "2", "steps": 3}  # importers/aide.py
    assert RunSettings.from_dict(imported, strict=False).steps == 3
    with pytest.raises(SettingsError, match="unknown setting.*imported_from"):
        RunSettings.from_dict(imported)
    with pytest.raises(ProposerError, match="unknown setting.*proposer.colour"):
        RunSettings.from_dict({"proposer": {"name": "llm", "colour": "red"}})


def test_a_resumed_old_run_keeps_its_settings(tmp_path):
    from autoresearch_jupyter.core.protocol import Protocol
    from autoresearch_jupyter.engine.search import Search

    run = RunDir.create(tmp_path, protocol=Protocol(metric="score", maximize=True, time_budget=30),
                        settings={"steps": 0, "proposer": {"name": "mutate"}, "executor": {"name": "local"},
                                  "policy": {"patience": 2}, "written_by": "an older version"})
    from autoresearch_jupyter.store.journal import Journal
    from autoresearch_jupyter.core.node import Node, Operator

    with Journal(run.journal_path, durable=False) as journal:
        journal.node_created(Node(0, None, Operator.BASELINE, "baseline", "print('score: 1')\n"))
    search = Search.resume(run, steps=1)
    assert search.settings.steps == 1 and search.settings.policy.patience == 2
    assert search.settings.protocol.timeout == 30 and search.settings.protocol.direction == "maximize"


def test_errors_are_the_groups_own_classes():
    for values, kind in [({"timeout": -1}, ProtocolError), ({"temperature": 9}, ProposerError),
                         ({"steps": -2}, SettingsError), ({"warm": "hot"}, AutoResearchError)]:
        with pytest.raises(kind):
            RunSettings.from_options(values)
    with pytest.raises(ProtocolError, match="--metric is required"):
        RunSettings().protocol_for("print(1)\n")
    with pytest.raises(SettingsError, match="unknown option 'stepz'"):
        RunSettings.from_options({"stepz": 1})


def test_the_same_options_start_the_same_search_on_both_faces(ip, tmp_path):
    (tmp_path / "s.py").write_text(CELL)
    line = ("--metric score --maximize --steps 1 --debug-prob 0.4 --patience 2 --workers 2 --memory-limit 1G "
            "--warm off --seed 3 --min-delta 0.01 --goal faster")
    assert main(["run", "s.py", *line.split(), "--runs-dir", "cli", "--name", "cli"]) == 0
    ip.run_cell_magic("autoresearch", line + " --runs-dir magics --name magics", CELL)
    cli, magic = RunDir.open(list_runs("cli")[0].path), RunDir.open(list_runs("magics")[0].path)
    assert cli.settings == magic.settings  # source_dir too: the script's folder is the notebook's
    assert cli.protocol == magic.protocol
    assert cli.settings["policy"] == {"patience": 2, "debug_prob": 0.4}


def test_ls_and_list_and_export_to_answer_on_both_faces(ip, tmp_path, capsys):
    run = ip.run_cell_magic("autoresearch", "--metric score --maximize --steps 1 --warm off --name both", CELL)
    capsys.readouterr()
    runs = str(tmp_path / "runs")
    for command in ("ls", "list"):
        assert main([command, "--runs-dir", runs]) == 0
        assert "both" in capsys.readouterr().out
        ip.run_line_magic("autoresearch", command)
        assert run.id in capsys.readouterr().out
    for flag in ("-o", "--to"):
        assert main(["export", "both", "--runs-dir", runs, flag, str(tmp_path / f"cli{flag}.py")]) == 0
        ip.run_line_magic("autoresearch", f"export both {flag} {tmp_path / f'nb{flag}.py'}")
        assert (tmp_path / f"cli{flag}.py").read_text() == (tmp_path / f"nb{flag}.py").read_text()


def test_only_the_face_set_fields_are_not_options():
    internal = {".".join(o.path) for o in options(internal=True)} - {".".join(o.path) for o in options()}
    assert internal == {"executor.name", "source_dir"}  # set by the faces and the engine, stored in run.json


def test_llm_report_is_printed_by_a_blocking_cell_too(ip, monkeypatch, capsys):
    pytest.importorskip("openai")
    from openai_server import FakeOpenAI, clear_openai_env
    from test_llm_run import KEY, SCRIPT, SUMMARY, improving

    clear_openai_env(monkeypatch, KEY)
    with FakeOpenAI(default=improving()) as server:
        run = ip.run_cell_magic("autoresearch", f"--metric score --maximize --steps 2 --warm off --proposer llm "
                                f"--base-url {server.url} --model m --llm-report", SCRIPT)
    assert run.state == "finished" and run.run_dir.settings["proposer"]["llm_report"] is True
    assert SUMMARY in capsys.readouterr().out

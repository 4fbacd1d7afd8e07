"""The command line as users meet it: help for every command, README coverage, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.warehouse.db import workspace_lock
from pipeline.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(cli.commands)


def test_the_design_commands_all_exist():
    assert set(COMMANDS) >= {"ingest", "analyze", "report", "run", "demo", "status", "sql", "export",
                             "check", "shell"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [command, "--help"], obj={})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # the first help line is a real sentence, not click's empty default
    assert len(cli.commands[command].get_short_help_str(limit=200)) > 15


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command):
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"pipeline {command}\b", readme), f"`pipeline {command}` is not documented in README.md"


def test_make_targets_in_readme():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("make report", "make test", "make bench", "make shell", "make clean"):
        assert target in readme


def test_missing_warehouse_is_one_clear_line(workspace: Workspace):
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "sql", "select 1"], obj={})
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"Error: no warehouse at {workspace.warehouse_path}; run `pipeline ingest` first"]


def test_python_dash_m_entry_point_prints_one_line_no_traceback(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--workspace", str(tmp_path), "status"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("Error: ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_second_writer_gets_busy_message(workspace: Workspace):
    """A second pipeline process on the same workspace is refused with a clear message."""
    with workspace_lock(workspace, "ingest"):
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "--workspace", str(workspace.root), "analyze"],
            capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "is busy: another pipeline process" in proc.stderr
    assert "`ingest`" in proc.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_usage_errors_are_one_line_with_exit_code_2_for_every_command(command):
    result = CliRunner().invoke(cli, [command, "--no-such-option"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"Error: No such option '--no-such-option'. (see `pipeline {command} --help`)"]


def test_unknown_command_is_one_line_with_exit_code_2():
    result = CliRunner().invoke(cli, ["injest"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: No such command 'injest'.")
    assert lines[0].endswith("(see `pipeline --help`)")


def test_usage_error_from_a_real_process_has_no_usage_block(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--workspace", str(tmp_path), "export"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "Error: Missing argument 'OUT_DIR'. (see `pipeline export --help`)"]


def test_missing_workspace_folder_says_so(tmp_path: Path):
    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(cli, ["--workspace", str(missing), "status"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: no workspace folder {missing}: give --workspace DIR (or set $PIPELINE_WORKSPACE) to the folder "
        "holding data/raw, or create it"]


def test_make_clean_removes_every_generated_output(tmp_path: Path):
    """make clean on a workspace holding every kind of output leaves only data/raw (and READMEs)."""
    import shutil
    for rel in ("data/raw/ana/run.fit", "data/raw/README.md", "data/processed/warehouse.duckdb",
                "data/processed/warehouse.duckdb.wal", "data/processed/pipeline.lock",
                "data/processed/pipeline.owner", "reports/ana/index.html", "reports/ana/economy_timeline.png",
                "reports/index.html", "reports/block_effects_forest.png", "reports/README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    subprocess.run(["make", "-s", "clean"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["Makefile", "data/raw/README.md", "data/raw/ana/run.fit", "reports/README.md"]


EXIT_PROBE = """
import atexit, sys, threading, time
from pipeline.cli import _exit_without_teardown
atexit.register(lambda: print("atexit handler ran", flush=True))
if "--thread" in sys.argv:
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished", flush=True))).start()
print("printed before exit", end="")          # left in the buffer: the exit must flush it
sys.stderr.write("error line")
_exit_without_teardown(int(sys.argv[1]))
"""


@pytest.mark.parametrize("code", [0, 1, 2])
def test_the_fast_exit_keeps_the_code_the_output_and_the_atexit_handlers(code):
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(code)], capture_output=True, text=True,
                          timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == code
    assert proc.stdout.startswith("printed before exit") and "atexit handler ran" in proc.stdout
    assert proc.stderr == "error line"


def test_the_fast_exit_waits_for_a_running_thread_as_a_normal_exit_would():
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE, "3", "--thread"], capture_output=True, text=True,
                          timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 3
    assert "thread finished" in proc.stdout and "atexit handler ran" in proc.stdout


def test_the_console_script_exits_with_the_commands_code(tmp_path):
    """`pipeline` (the installed script, which ends in the fast exit): 0 with its output, 1 for an error,
    2 for a usage error, each message whole."""
    script = Path(sys.executable).parent / "pipeline"
    (tmp_path / "data" / "raw").mkdir(parents=True)
    ok = subprocess.run([str(script), "--workspace", str(tmp_path), "ingest"], capture_output=True, text=True,
                        timeout=120)
    usage = subprocess.run([str(script), "--workspace", str(tmp_path), "nosuch"], capture_output=True, text=True,
                           timeout=120)
    missing = subprocess.run([str(script), "--workspace", str(tmp_path / "absent"), "report"], capture_output=True,
                             text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("Ingest: 0 file(s)"), (ok.stdout, ok.stderr)
    assert (tmp_path / "data" / "processed" / "warehouse.duckdb").exists()
    assert usage.returncode == 2 and usage.stderr.startswith("Error: No such command 'nosuch'")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: no workspace folder")

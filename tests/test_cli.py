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

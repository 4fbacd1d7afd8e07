"""``pipeline shell`` / ``make shell``: the warehouse in the DuckDB command-line shell.

The CLI comes from the ``duckdb-cli`` package installed into the project environment (``.venv/bin/duckdb``,
beside the Python running the pipeline); a ``duckdb`` on PATH is the fallback. Read-only by default, so
an exploring session can never damage the warehouse or block an ingest for long.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

# Run first in every shell: UTC, like the pipeline's own connections, so times read the same.
INIT_SQL = "SET TimeZone = 'UTC';"


def duckdb_cli() -> Path:
    """The DuckDB CLI of the project environment, else the one on PATH, else a clear error."""
    beside_python = Path(sys.executable).parent / ("duckdb.exe" if os.name == "nt" else "duckdb")
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("duckdb")
    if on_path:
        return Path(on_path)
    raise PipelineError(
        "the DuckDB command-line shell is not installed: run `make install` "
        "(or `pip install duckdb-cli` in the project environment)"
    )


def shell_argv(ws: Workspace, write: bool = False) -> list[str]:
    """The command line that opens the warehouse in the DuckDB CLI (read-only unless ``write``)."""
    path = ws.warehouse_path
    if not path.exists():
        if not write:
            raise PipelineError(f"no warehouse at {path}; run `pipeline ingest` first")
    # Create or migrate it with the pipeline's own rules before handing it over (write), or check that
    # this pipeline can read it (read-only): the CLI itself would not say what to do.
    connect(ws, read_only=not write).close()
    argv = [str(duckdb_cli()), "-cmd", INIT_SQL]
    if not write:
        argv.append("-readonly")
    argv.append(str(path))
    return argv


def open_shell(ws: Workspace, write: bool = False) -> None:
    """Replace this process with the DuckDB shell on the warehouse; returns only on failure."""
    argv = shell_argv(ws, write=write)
    try:
        os.execv(argv[0], argv)
    except OSError as e:
        raise PipelineError(f"could not start {argv[0]}: {e.strerror}") from e

"""Opening the DuckDB warehouse: schema creation, the workspace lock, clear messages when busy.

Writers (ingest, analyze, demo, run) hold :func:`workspace_lock` for their whole run, so a second
``pipeline`` process gets a clear "busy" message instead of fighting over the file. Readers open the
warehouse read-only; DuckDB itself refuses a read-only open while a writer has it, which
:func:`connect` turns into the same kind of message.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from importlib import resources

import duckdb
from filelock import FileLock, Timeout

from pipeline.errors import PipelineError, WorkspaceBusy
from pipeline.workspace import Workspace

SCHEMA_VERSION = 1


def schema_sql() -> str:
    return resources.files("pipeline.warehouse").joinpath("schema.sql").read_text(encoding="utf-8")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every contract table that is missing and record the schema version."""
    con.execute(schema_sql())
    con.execute(
        "INSERT INTO pipeline_meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
        [str(SCHEMA_VERSION)],
    )


def connect(ws: Workspace, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the workspace warehouse. Read-only opens need an existing warehouse.

    The session time zone is UTC so TIMESTAMPTZ values come back in UTC.
    """
    path = ws.warehouse_path
    if read_only and not path.exists():
        raise PipelineError(f"no warehouse at {path}; run `pipeline ingest` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise WorkspaceBusy(
                f"the warehouse {path} is in use by another pipeline process; "
                "wait for it to finish and try again"
            ) from e
        raise PipelineError(f"cannot open the warehouse {path}: {e}") from e
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        ensure_schema(con)
    return con


@contextlib.contextmanager
def workspace_lock(ws: Workspace, command: str = "pipeline") -> Iterator[None]:
    """Hold the workspace's exclusive lock, or fail at once with a clear "busy" message."""
    ws.processed_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(ws.lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout as e:
        holder = _read_holder(ws)
        raise WorkspaceBusy(
            f"the workspace {ws.root} is busy: another pipeline process{holder} is working on it; "
            "wait for it to finish and try again"
        ) from e
    try:
        with open(ws.lock_path.with_suffix(".owner"), "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {command}\n")
        yield
    finally:
        lock.release()


def _read_holder(ws: Workspace) -> str:
    try:
        pid, _, cmd = ws.lock_path.with_suffix(".owner").read_text(encoding="utf-8").strip().partition(" ")
        return f" (pid {pid}, `{cmd}`)"
    except OSError:
        return ""

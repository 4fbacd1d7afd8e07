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

import duckdb
import pandas as pd
import pyarrow as pa
from filelock import FileLock, Timeout

from pipeline.errors import PipelineError, WorkspaceBusy
from pipeline.rawroot import RawRoot, raw_root
from pipeline.warehouse.migrations import UNVERSIONED, database_label, stored_version, upgrade
from pipeline.warehouse.transaction import transaction
from pipeline.workspace import Workspace

__all__ = ["SCHEMA_VERSION", "connect", "ensure_schema", "insert_frame", "transaction", "workspace_lock"]

# Bump with a numbered migration in migrations.py whenever a change is not purely additive.
# 1: the skeleton contract; 2: declared_blocks, stable views, column comments; 3: identity per athlete,
# source_files.shadowed_by (the warehouse follows data/raw).
SCHEMA_VERSION = 3

# DuckDB storage format written for new warehouses. The Python package (2.x) would otherwise write a
# format that the DuckDB CLI on PyPI (duckdb-cli, `make shell`) and DuckDB 1.x clients in R or other
# tools cannot open; v1.4.0 (the DuckDB LTS line) is readable by all of them.
STORAGE_COMPATIBILITY = "v1.4.0"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every contract table that is missing, migrate an older warehouse, record the version.

    See :mod:`pipeline.warehouse.migrations`: one transaction, data never dropped, a clear PipelineError
    for a warehouse written by a newer pipeline or one without a version. Costs one small query when the
    warehouse is already current.
    """
    upgrade(con, SCHEMA_VERSION)


def check_version(con: duckdb.DuckDBPyConnection) -> None:
    """For read-only opens: refuse a warehouse this pipeline cannot read as documented, saying what to do."""
    version, _ = stored_version(con, SCHEMA_VERSION)
    if version == UNVERSIONED:
        raise PipelineError(f"{database_label(con)} is empty; run `pipeline ingest` first")
    if version < SCHEMA_VERSION:
        raise PipelineError(
            f"{database_label(con)} has schema version {version}, this pipeline uses {SCHEMA_VERSION}: "
            "run `pipeline ingest` (or `pipeline analyze`) once to migrate it; no data is dropped"
        )


def connect(ws: Workspace, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the workspace warehouse. Read-only opens need an existing warehouse.

    The session time zone is UTC so TIMESTAMPTZ values come back in UTC.
    """
    path = ws.warehouse_path
    if read_only and not ws.root.is_dir():
        raise PipelineError(f"no workspace folder {ws.root}: give --workspace DIR (or set $PIPELINE_WORKSPACE) "
                            "to the folder holding data/raw, or create it")
    if read_only and not path.exists():
        raise PipelineError(f"no warehouse at {path}; run `pipeline ingest` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The storage version is fixed when the file is created and kept by later writes; passing the
        # option only then lets other code in the same process open the file with a plain
        # duckdb.connect(path) (DuckDB refuses a second in-process open with a different configuration).
        config = {} if path.exists() else {"storage_compatibility_version": STORAGE_COMPATIBILITY}
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise WorkspaceBusy(
                f"the warehouse {path} is in use by another pipeline process; "
                "wait for it to finish and try again"
            ) from e
        raise PipelineError(f"cannot open the warehouse {path}: {e}") from e
    con.execute("SET TimeZone = 'UTC'")
    try:
        if read_only:
            check_version(con)
        else:
            ensure_schema(con)
    except BaseException:
        con.close()
        raise
    return con


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame | pa.Table | None,
                 columns: list[str] | None = None, on_conflict_do_nothing: bool = False) -> int:
    """Bulk-insert a DataFrame (or an Arrow table: no pandas scan, ~3x less fixed cost per statement) into
    ``table``; never row by row.

    ``columns`` defaults to the frame's columns. Runs inside the caller's transaction. Returns rows offered.
    """
    if frame is None or not len(frame):
        return 0
    is_arrow = isinstance(frame, pa.Table)
    columns = (frame.column_names if is_arrow else list(frame.columns)) if columns is None else columns
    view = f"_insert_{table}"
    con.register(view, frame.select(columns) if is_arrow else frame[columns])
    try:
        cols = ", ".join(columns)
        conflict = " ON CONFLICT DO NOTHING" if on_conflict_do_nothing else ""
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {view}{conflict}")
    finally:
        con.unregister(view)
    return len(frame)


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


# pipeline_meta key of the raw data root the last ingest of data/raw reconciled the warehouse with
# ('data/raw', or the URL of pipeline.rawroot); the stages above ingest read athlete.toml from it.
RAW_ROOT_KEY = "raw_root"


def stored_raw_root(con: duckdb.DuckDBPyConnection) -> str | None:
    """The raw data root recorded by the last ingest of data/raw (None: none recorded yet)."""
    row = con.execute("SELECT value FROM pipeline_meta WHERE key = ?", [RAW_ROOT_KEY]).fetchone()
    return row[0] if row else None


def store_raw_root(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Record the raw data root the warehouse was just reconciled with (see :func:`stored_raw_root`)."""
    con.execute("INSERT OR REPLACE INTO pipeline_meta (key, value) VALUES (?, ?)", [RAW_ROOT_KEY, root])


def recorded_raw_root(con: duckdb.DuckDBPyConnection, ws: Workspace) -> RawRoot:
    """The raw data root the warehouse's data came from (recorded by the last ingest of data/raw; before any,
    the one pipeline.toml names): where the stages above ingest read athlete.toml."""
    return raw_root(ws, stored_raw_root(con))

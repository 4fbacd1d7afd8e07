"""``pipeline export``: every warehouse table and stable view to Parquet or CSV, for R, pandas or Spark.

Written with DuckDB's ``COPY ... TO`` (no rows pass through Python). ``samples``, by far the largest
table, is written hive-partitioned by athlete (``samples/athlete_id=<id>/data_0.parquet``), which every
one of those tools reads as one dataset with an ``athlete_id`` column. A ``README.md`` beside the files
lists each file with its row count and points to docs/warehouse.md for the columns.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.errors import PipelineError
from pipeline.warehouse.contract import RELATIONS, VIEW_NAMES
from pipeline.warehouse.db import SCHEMA_VERSION, connect
from pipeline.workspace import Workspace, validate_athlete_id

FORMATS = ("parquet", "csv")
PARTITIONED = {"samples": "athlete_id"}
# Tables without an athlete_id column reach their athlete through a parent row.
ATHLETE_VIA_PARENT = {
    "laps": ("activity_id", "activities"),
    "strength_sets": ("session_id", "strength_sessions"),
}
# Facts about the warehouse itself, not data: listed in the README instead of exported (source_versions:
# ingest's record of what a URL root's listing showed, meaningless without that root).
NOT_EXPORTED = {"pipeline_meta", "source_versions"}


@dataclass(frozen=True)
class ExportedRelation:
    """One table or view written: where, how many rows."""

    name: str
    path: Path           # file, or folder for partitioned tables
    rows: int
    files: tuple[Path, ...]


def export_tables(ws: Workspace, out_dir: Path, fmt: str = "parquet",
                  athlete_id: str | None = None) -> list[Path]:
    """Write every table and stable view to ``out_dir`` as ``fmt``; return the data files written.

    ``athlete_id`` keeps only that athlete's rows (tables without the column are filtered through their
    parent: laps through activities, strength_sets through strength_sessions). Files of a previous export
    of the same tables are replaced.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    if athlete_id is not None:
        validate_athlete_id(athlete_id)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PipelineError(f"{out_dir} is a file; give a folder to export into")
    con = connect(ws, read_only=True)
    try:
        if athlete_id is not None and not _athlete_known(con, athlete_id):
            raise PipelineError(f"no athlete {athlete_id!r} in the warehouse; see `pipeline status`")
        out_dir.mkdir(parents=True, exist_ok=True)   # only once the request is known to be good
        exported = [_export_one(con, name, out_dir, fmt, athlete_id) for name in exportable(con)]
    finally:
        con.close()
    _write_readme(out_dir, exported, fmt, athlete_id)
    return [f for e in exported for f in e.files]


def exportable(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Contract tables and stable views present in the warehouse, in the order of the docs."""
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "UNION SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal"
    ).fetchall()}
    return [name for name in RELATIONS if name in present and name not in NOT_EXPORTED]


def _athlete_known(con: duckdb.DuckDBPyConnection, athlete_id: str) -> bool:
    return con.execute(
        "SELECT EXISTS (SELECT 1 FROM activities WHERE athlete_id = $a) "
        "OR EXISTS (SELECT 1 FROM strength_sessions WHERE athlete_id = $a) "
        "OR EXISTS (SELECT 1 FROM source_files WHERE athlete_id = $a)", {"a": athlete_id}
    ).fetchone()[0]


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main' "
        "ORDER BY column_index", [name]).fetchall()]


def _select(con: duckdb.DuckDBPyConnection, name: str, athlete_id: str | None) -> str:
    if athlete_id is None:
        return f'SELECT * FROM "{name}"'
    # COPY takes no parameters; the id is validated (letters, digits, '_', '-', '.') and quoted anyway.
    literal = "'" + athlete_id.replace("'", "''") + "'"
    if "athlete_id" in _columns(con, name):
        return f'SELECT * FROM "{name}" WHERE athlete_id = {literal}'
    if name in ATHLETE_VIA_PARENT:
        key, parent = ATHLETE_VIA_PARENT[name]
        return (f'SELECT * FROM "{name}" WHERE "{key}" IN '
                f'(SELECT "{key}" FROM "{parent}" WHERE athlete_id = {literal})')
    return f'SELECT * FROM "{name}"'


def _export_one(con: duckdb.DuckDBPyConnection, name: str, out_dir: Path, fmt: str,
                athlete_id: str | None) -> ExportedRelation:
    select = _select(con, name, athlete_id)
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
    try:
        rows = con.execute(f"SELECT count(*) FROM ({select})").fetchone()[0]
        if name in PARTITIONED:
            target = out_dir / name
            if target.exists():
                # Only our own previous export lives here; stale athletes' folders must not survive.
                shutil.rmtree(target)
            if rows == 0:
                return ExportedRelation(name, target, 0, ())
            con.execute(f"COPY ({select}) TO '{_sql_path(target)}' "
                        f"({options}, PARTITION_BY ({PARTITIONED[name]}))")
            files = tuple(sorted(p for p in target.rglob(f"*.{fmt}")))
            return ExportedRelation(name, target, rows, files)
        target = out_dir / f"{name}.{fmt}"
        con.execute(f"COPY ({select}) TO '{_sql_path(target)}' ({options})")
        return ExportedRelation(name, target, rows, (target,))
    except duckdb.Error as e:
        raise PipelineError(f"export of {name} to {out_dir} failed: {str(e).splitlines()[0]}") from e


def _sql_path(path: Path) -> str:
    return path.resolve().as_posix().replace("'", "''")


def _write_readme(out_dir: Path, exported: list[ExportedRelation], fmt: str, athlete_id: str | None) -> None:
    lines = [
        "# Warehouse export",
        "",
        f"Exported {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} from a warehouse at schema "
        f"version {SCHEMA_VERSION}, as {fmt}"
        + (f", rows of athlete `{athlete_id}` only." if athlete_id else ", all athletes."),
        "Column meanings and units: docs/warehouse.md in the pipeline repository "
        "(also stored as DuckDB column comments in the warehouse).",
        "",
        "| table | kind | rows | path |",
        "|---|---|---:|---|",
    ]
    for e in exported:
        kind = "view" if e.name in VIEW_NAMES else "table"
        rel = e.path.relative_to(out_dir).as_posix()
        if e.name in PARTITIONED:
            rel += f"/ (partitioned by {PARTITIONED[e.name]}, {len(e.files)} file(s))"
        lines.append(f"| {e.name} | {kind} | {e.rows} | {rel} |")
    lines += [
        "",
        "Reading it back:",
        "",
        "```python",
        "import pandas as pd",
        f"runs = pd.read_{fmt}('runs.{fmt}')",
        "```",
        "",
    ]
    if fmt == "parquet":
        lines[-2:-2] = ["samples = pd.read_parquet('samples')  # all athletes, athlete_id from the folders"]
    (out_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")

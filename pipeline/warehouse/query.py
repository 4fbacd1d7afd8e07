"""``pipeline sql "QUERY"``: run user SQL on the warehouse, sandboxed, and format the result for a terminal.

Sandbox (:func:`sandboxed_connection`): the warehouse is opened read-only (no INSERT/UPDATE/DELETE/CREATE)
and DuckDB's external access is switched off and the configuration locked, so the query cannot reach
anything but the warehouse: no ``COPY ... TO`` a file, no ``read_csv``/``read_parquet``/``glob`` of other
files, no ``ATTACH``, no ``INSTALL``/``LOAD`` of extensions from disk or the network, no ``EXPORT
DATABASE``; and it cannot switch any of that back on. Write access is ``pipeline shell --write``.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import math
from collections.abc import Sequence
from typing import Any

import duckdb

from pipeline.errors import PipelineError
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

# A terminal table beyond this many rows is unreadable; the rest is counted, --csv gives everything.
MAX_TABLE_ROWS = 1000
MAX_CELL_CHARS = 60


def run_sql(ws: Workspace, query: str, as_csv: bool = False) -> str:
    """Run ``query`` on a read-only connection; return an aligned text table, or CSV when ``as_csv``.

    Several statements separated by ``;`` are allowed; the result of the last is shown. Any DuckDB error
    becomes one PipelineError line ``SQL: <DuckDB's message>``.
    """
    con = sandboxed_connection(ws)
    try:
        columns, rows, more = fetch(con, query, limit=None if as_csv else MAX_TABLE_ROWS)
    finally:
        con.close()
    if as_csv:
        return render_csv(columns, rows)
    return render_table(columns, rows, more=more)


# Applied in this order: the last one locks every setting, this list included, for the connection's life.
_SANDBOX = ("SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false",
            "SET enable_external_access = false", "SET lock_configuration = true")
SANDBOX_HINT = ("pipeline sql reads the warehouse only: no files, extensions or network (write with "
                "`pipeline shell --write`)")


def sandboxed_connection(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse with external access off and the configuration locked."""
    con = connect(ws, read_only=True)
    try:
        for statement in _SANDBOX:
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


def fetch(con: duckdb.DuckDBPyConnection, query: str,
          limit: int | None = None) -> tuple[list[str], list[tuple], bool]:
    """(column names, rows, more) of the last statement of ``query``; ``more`` when rows were cut at ``limit``.

    Statements without a result give ([], [], False). Rows travel through Arrow, which converts
    TIMESTAMPTZ without a Python time-zone package.
    """
    if not query.strip():
        raise PipelineError("SQL: the query is empty")
    try:
        relation = con.sql(query)
        if relation is None:
            return [], [], False
        if limit is not None:
            relation = relation.limit(limit + 1)
        table = relation.to_arrow_table()
    except duckdb.Error as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "read-only mode" in message:
            message += " (pipeline sql is read-only; write with `pipeline shell --write`)"
        elif "disabled by configuration" in message or "configuration has been locked" in message:
            message += f" ({SANDBOX_HINT})"
        raise PipelineError(f"SQL: {message}") from e
    columns = table.column_names
    rows = [tuple(r[i] for i in range(len(columns))) for r in
            (list(d.values()) for d in table.to_pylist())]
    more = limit is not None and len(rows) > limit
    return columns, rows[:limit] if more else rows, more


def format_cell(value: Any) -> str:
    """One value as shown in the table: NULL for missing, ISO times, floats to 6 significant digits."""
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.6g}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    text = str(value).replace("\n", " ")
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def render_table(columns: Sequence[str], rows: Sequence[tuple], more: bool = False) -> str:
    """Aligned plain-text table: numbers right-aligned, text left, a row count at the end.

    ``more``: the query returned more rows than ``rows`` holds (the table was cut).
    """
    if not columns:
        return "OK"
    shown = rows
    cells = [[format_cell(v) for v in row] for row in shown]
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    numeric = [bool(shown) and all(_is_number(r[i]) or r[i] is None for r in shown) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    footer = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    if more:
        footer = f"(more than {len(rows)} rows, first {len(rows)} shown; use --csv or LIMIT)"
    out.append(footer)
    return "\n".join(out)


def render_csv(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    """RFC 4180 CSV with a header; NULL is an empty field, times in ISO 8601."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if columns:
        writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else v
                         for v in row])
    return buffer.getvalue().rstrip("\n")

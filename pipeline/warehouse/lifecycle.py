"""Removing rows that belong together, in the caller's transaction: an athlete (every staging, weather and
analysis row) or activities (with every row keyed by them).

Used by ingest when a file or an athlete's folder is gone from ``data/raw`` (the warehouse follows the
folder) and when a richer recording replaces a poorer one. The tables come from the contract
(:mod:`pipeline.warehouse.contract`): every table with an ``athlete_id`` column, every table with an
``activity_id`` column (samples, laps, weather, run_metrics...), plus the rows that hang off them by key
(``strength_sets`` by session), so a table added later is covered without touching this module.
"""

from __future__ import annotations

import duckdb

from pipeline.warehouse.contract import TABLES

# Child tables without an athlete_id: (table, key column, parent table that has athlete_id).
_CHILDREN = (("laps", "activity_id", "activities"), ("strength_sets", "session_id", "strength_sessions"))


def athlete_tables() -> list[str]:
    """Contract tables with an ``athlete_id`` column, in contract order."""
    return [name for name, t in TABLES.items() if "athlete_id" in t.column_names]


def activity_tables() -> list[str]:
    """Contract tables keyed by ``activity_id`` other than ``activities`` (rows that go with an activity)."""
    return [name for name, t in TABLES.items() if "activity_id" in t.column_names and name != "activities"]


def delete_activities(con: duckdb.DuckDBPyConnection, ids_sql: str, params: list) -> None:
    """Delete the activities selected by ``ids_sql`` (a query returning activity ids, with ``params``) and
    every row keyed by them (samples, laps, weather, run metrics...)."""
    for table in activity_tables() + ["activities"]:
        con.execute(f'DELETE FROM "{table}" WHERE activity_id IN ({ids_sql})', params)


def warehouse_athletes(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every athlete id any table of the warehouse holds a row for."""
    union = " UNION ".join(f'SELECT DISTINCT athlete_id FROM "{t}"' for t in athlete_tables())
    return {r[0] for r in con.execute(union).fetchall() if r[0] is not None}


def delete_athlete_rows(con: duckdb.DuckDBPyConnection, athlete_id: str) -> int:
    """Delete every row of ``athlete_id`` in every table (run inside a transaction); returns rows deleted."""
    deleted = 0
    for table, key, parent in _CHILDREN:
        deleted += _count_changes(con, f'DELETE FROM "{table}" WHERE {key} IN '
                                       f'(SELECT {key} FROM "{parent}" WHERE athlete_id = ?)', athlete_id)
    for table in athlete_tables():
        deleted += _count_changes(con, f'DELETE FROM "{table}" WHERE athlete_id = ?', athlete_id)
    return deleted


def _count_changes(con: duckdb.DuckDBPyConnection, sql: str, athlete_id: str) -> int:
    row = con.execute(sql, [athlete_id]).fetchone()
    return int(row[0]) if row else 0

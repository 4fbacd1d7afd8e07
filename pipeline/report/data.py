"""Reading what the report shows from the warehouse (read-only).

The report reads the analysis tables (``run_metrics``, ``weekly``, ``strength_blocks``,
``block_effects``, ``placebo_checks``) and, for context only, ``athletes`` (display names),
``source_files`` (files that failed to ingest), ``analysis_runs`` (an athlete whose analysis failed) and
``strength_sessions`` (session dates drawn as marks
on the timeline). Never ``samples`` and never ``data/raw``: the report must be rebuildable from the
warehouse alone, and fast.

Times come back as tz-naive UTC ``datetime64`` so matplotlib and comparisons with DATE columns need no
time-zone juggling.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC, columns



@dataclass(frozen=True)
class AthleteReportData:
    """Everything one athlete's page shows, as DataFrames (one per source table)."""

    athlete_id: str
    display_name: str
    runs: pd.DataFrame               # run_metrics rows, start_time tz-naive UTC, sorted by time
    weekly: pd.DataFrame             # weekly rows, week_start as datetime64
    blocks: pd.DataFrame             # strength_blocks rows, sorted by start_date
    effects: pd.DataFrame            # block_effects rows (all metrics and methods)
    placebo: pd.DataFrame            # placebo_checks rows
    strength_sessions: pd.DataFrame  # session_id, start_time (tz-naive UTC), title
    source_files: pd.DataFrame       # path, format, status, message (all files of this athlete)
    analysis_error: str | None = None  # why the latest `pipeline analyze` could not analyse this athlete

    @property
    def included_runs(self) -> pd.DataFrame:
        """Runs the analysis kept and that carry an economy value."""
        runs = self.runs
        return runs[runs["included"].fillna(False).astype(bool) & runs["economy_m_per_beat"].notna()]

    @property
    def failed_files(self) -> pd.DataFrame:
        return self.source_files[self.source_files["status"] == "error"]

    @property
    def has_hr(self) -> bool:
        """Whether any run carries a heart rate at all (no HR -> no economy, said plainly)."""
        return bool(self.runs["heart_rate_bpm"].notna().any()) if len(self.runs) else False


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(found and found[0])


def _query(con: duckdb.DuckDBPyConnection, table: str, sql: str, params: list) -> pd.DataFrame:
    """Run ``sql``; an absent table (a warehouse from before a table existed) reads as empty rows."""
    if not _table_exists(con, table):
        return pd.DataFrame()
    return con.execute(sql, params).df()


def _naive_utc(series: pd.Series) -> pd.Series:
    """TIMESTAMPTZ (UTC) or DATE column -> tz-naive datetime64 (still UTC)."""
    out = pd.to_datetime(series)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _with_columns(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Guarantee the contract columns exist, so an empty result still has the expected shape."""
    for col in columns:
        if col not in df.columns:
            df[col] = pd.Series(dtype="float64")
    return df


RUN_COLUMNS = columns("run_metrics")
EFFECT_COLUMNS = columns("block_effects")


def list_athletes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Athletes to report on: those in ``athletes`` or with any runs, strength sessions or blocks."""
    parts = [f"SELECT athlete_id FROM {t}" for t in
             ("athletes", "run_metrics", "strength_sessions", "strength_blocks") if _table_exists(con, t)]
    if not parts:
        return []
    rows = con.execute(f"SELECT DISTINCT athlete_id FROM ({' UNION '.join(parts)}) ORDER BY 1").fetchall()
    return [r[0] for r in rows if r[0] is not None]


@dataclass(frozen=True)
class _TableRead:
    """How one :class:`AthleteReportData` frame is read: ``sql`` (one ``?``: the athlete) on ``table``, the
    ``columns`` it must have even when empty, and the time columns returned as tz-naive UTC."""

    table: str
    sql: str
    columns: list[str]
    times: tuple[str, ...] = ()


# AthleteReportData field -> how it is read.
_ATHLETE_READS = {
    "runs": _TableRead(
        "run_metrics", "SELECT * FROM run_metrics WHERE athlete_id = ? ORDER BY start_time", RUN_COLUMNS,
        ("start_time",)),
    "weekly": _TableRead(
        "weekly", "SELECT * FROM weekly WHERE athlete_id = ? ORDER BY week_start",
        columns("weekly"), ("week_start",)),
    "blocks": _TableRead(
        "strength_blocks", "SELECT * FROM strength_blocks WHERE athlete_id = ? ORDER BY start_date, block_id",
        columns("strength_blocks"), ("start_date", "end_date")),
    "effects": _TableRead(
        "block_effects", "SELECT * FROM block_effects WHERE athlete_id = ? ORDER BY block_id, metric, method",
        EFFECT_COLUMNS, ("baseline_start", "baseline_end", "response_start", "response_end")),
    "placebo": _TableRead(
        "placebo_checks", "SELECT * FROM placebo_checks WHERE athlete_id = ? ORDER BY block_id, fake_start",
        columns("placebo_checks"), ("fake_start",)),
    "strength_sessions": _TableRead(
        "strength_sessions",
        "SELECT * FROM strength_sessions WHERE athlete_id = ? ORDER BY start_time",
        columns("strength_sessions"), ("start_time",)),
    "source_files": _TableRead(
        "source_files",
        "SELECT * FROM source_files WHERE athlete_id = ? ORDER BY path", columns("source_files")),
}


def load_athlete_tables(con: duckdb.DuckDBPyConnection, athlete_id: str) -> AthleteReportData:
    """Read one athlete's rows from every table the page uses."""
    frames = {name: _read_athlete_table(con, read, athlete_id) for name, read in _ATHLETE_READS.items()}
    return AthleteReportData(athlete_id=athlete_id, display_name=_display_name(con, athlete_id), **frames,
                             analysis_error=latest_analysis_error(con, athlete_id))


def _read_athlete_table(con: duckdb.DuckDBPyConnection, read: _TableRead, athlete_id: str) -> pd.DataFrame:
    frame = _with_columns(_query(con, read.table, read.sql, [athlete_id]), read.columns)
    for col in read.times:
        frame[col] = _naive_utc(frame[col])
    return frame


def _display_name(con: duckdb.DuckDBPyConnection, athlete_id: str) -> str:
    """The athlete's display name from ``athletes``, else the id."""
    names = _query(con, "athletes", "SELECT display_name FROM athletes WHERE athlete_id = ?", [athlete_id])
    if len(names) and isinstance(names.iloc[0, 0], str) and names.iloc[0, 0].strip():
        return names.iloc[0, 0].strip()
    return athlete_id


SQUAD_TABLES = ("squad_blocks", "squad_pooled", "squad_did", "squad_dose_response")


def latest_analysis_error(con: duckdb.DuckDBPyConnection, athlete_id: str) -> str | None:
    """The message of the athlete's latest ``analysis_runs`` row when its status is 'error', else None."""
    rows = _query(con, "analysis_runs", "SELECT status, message FROM analysis_runs WHERE athlete_id = ? "
                  "ORDER BY started_at DESC LIMIT 1", [athlete_id])
    if len(rows) and rows.iloc[0]["status"] == "error":
        return str(rows.iloc[0]["message"] or "the analysis failed")
    return None


def load_squad_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """The squad tables (empty frames with the contract columns when absent or not computed yet)."""
    return {t: _with_columns(_query(con, t, f"SELECT * FROM {t}", []), columns(t)) for t in SQUAD_TABLES}

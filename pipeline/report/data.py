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


def load_athlete_tables(con: duckdb.DuckDBPyConnection, athlete_id: str) -> AthleteReportData:
    """Read one athlete's rows from every table the page uses."""
    p = [athlete_id]
    names = _query(con, "athletes", "SELECT display_name FROM athletes WHERE athlete_id = ?", p)
    display_name = athlete_id
    if len(names) and isinstance(names.iloc[0, 0], str) and names.iloc[0, 0].strip():
        display_name = names.iloc[0, 0].strip()

    runs = _with_columns(
        _query(con, "run_metrics", "SELECT * FROM run_metrics WHERE athlete_id = ? ORDER BY start_time", p),
        RUN_COLUMNS)
    runs["start_time"] = _naive_utc(runs["start_time"])

    weekly = _with_columns(
        _query(con, "weekly", "SELECT * FROM weekly WHERE athlete_id = ? ORDER BY week_start", p),
        ["week_start", "runs", "run_km", "strength_sessions", "economy_m_per_beat"])
    weekly["week_start"] = _naive_utc(weekly["week_start"])

    blocks = _with_columns(
        _query(con, "strength_blocks",
               "SELECT * FROM strength_blocks WHERE athlete_id = ? ORDER BY start_date, block_id", p),
        ["block_id", "start_date", "end_date", "sessions", "sessions_per_week", "volume_kg", "source",
         "label"])
    for col in ("start_date", "end_date"):
        blocks[col] = _naive_utc(blocks[col])

    effects = _with_columns(
        _query(con, "block_effects",
               "SELECT * FROM block_effects WHERE athlete_id = ? ORDER BY block_id, metric, method", p),
        EFFECT_COLUMNS)
    for col in ("baseline_start", "baseline_end", "response_start", "response_end"):
        effects[col] = _naive_utc(effects[col])

    placebo = _with_columns(
        _query(con, "placebo_checks",
               "SELECT * FROM placebo_checks WHERE athlete_id = ? ORDER BY block_id, fake_start", p),
        ["block_id", "metric", "method", "fake_start", "change_pct", "ci_low_pct", "ci_high_pct", "verdict"])
    placebo["fake_start"] = _naive_utc(placebo["fake_start"])

    sessions = _with_columns(
        _query(con, "strength_sessions",
               "SELECT session_id, start_time, title FROM strength_sessions WHERE athlete_id = ? "
               "ORDER BY start_time", p),
        ["session_id", "start_time", "title"])
    sessions["start_time"] = _naive_utc(sessions["start_time"])

    files = _with_columns(
        _query(con, "source_files",
               "SELECT path, format, status, message FROM source_files WHERE athlete_id = ? ORDER BY path", p),
        ["path", "format", "status", "message"])

    return AthleteReportData(athlete_id=athlete_id, display_name=display_name, runs=runs, weekly=weekly,
                             blocks=blocks, effects=effects, placebo=placebo, strength_sessions=sessions,
                             source_files=files, analysis_error=latest_analysis_error(con, athlete_id))


def latest_analysis_error(con: duckdb.DuckDBPyConnection, athlete_id: str) -> str | None:
    """The message of the athlete's latest ``analysis_runs`` row when its status is 'error', else None."""
    rows = _query(con, "analysis_runs", "SELECT status, message FROM analysis_runs WHERE athlete_id = ? "
                  "ORDER BY started_at DESC LIMIT 1", [athlete_id])
    if len(rows) and rows.iloc[0]["status"] == "error":
        return str(rows.iloc[0]["message"] or "the analysis failed")
    return None

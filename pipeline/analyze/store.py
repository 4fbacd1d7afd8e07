"""The analysis stage's reads and writes of the warehouse (the only ones :mod:`pipeline.analyze` makes).

Reads one athlete's staging rows at a time (samples in batches of activities, so memory is bounded by the
batch, not the history); writes the analysed athletes' rows of every analysis table in ONE transaction, so
re-running gives identical tables and an interrupted run leaves the previous ones intact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from pipeline.analyze.runs import RunAnalysisError, run_kind
from pipeline.errors import PipelineError
from pipeline.warehouse.contract import WEATHER_VALUE_COLUMNS, columns
from pipeline.warehouse.db import insert_frame, transaction

if TYPE_CHECKING:   # type hints only: process.py imports the estimators and scipy.stats, unneeded here
    from pipeline.analyze.process import AthleteAnalysis

SAMPLE_BATCH_ACTIVITIES = 40
ANALYSIS_TABLES = ("run_metrics", "weekly", "strength_blocks", "block_effects", "placebo_checks", "block_trends")


@dataclass(frozen=True)
class AthleteInputs:
    """One athlete's staging rows, as the pure analysis takes them (samples are read lazily)."""

    athlete_id: str
    activities: pd.DataFrame
    strength_sessions: pd.DataFrame
    strength_sets: pd.DataFrame
    declared_blocks: pd.DataFrame
    ref_speed_m_s: float | None        # athlete.toml reference speed, None = the athlete's median
    run_activity_ids: list[str]        # activities analysed as runs (samples needed)


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def samples_by_activity(con: duckdb.DuckDBPyConnection,
                        activity_ids: list[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield (activity_id, samples) for the given activities, fetching a batch of activities at a time.

    Batches are runs of consecutive ids and the query names the batch's id range as well as its ids: a
    constant range lets DuckDB skip every row group outside it (zone maps), so reading one athlete's samples
    costs the same however many other athletes the warehouse holds (a join on the id list alone scans the
    whole table each time: cost quadratic in the squad's size).
    """
    ordered = sorted(activity_ids)
    for k in range(0, len(ordered), SAMPLE_BATCH_ACTIVITIES):
        batch = ordered[k:k + SAMPLE_BATCH_ACTIVITIES]
        frame = _df(con, "SELECT * FROM samples WHERE activity_id BETWEEN ? AND ? "
                         "AND activity_id IN (SELECT UNNEST(?)) ORDER BY activity_id, ts",
                    [batch[0], batch[-1], batch])
        for activity_id, group in frame.groupby("activity_id", sort=False):
            yield activity_id, group.reset_index(drop=True)


def athlete_ids(con: duckdb.DuckDBPyConnection, only: str | None) -> list[str]:
    """Every athlete with activities, strength sessions or declared blocks (or just ``only``, checked)."""
    ids = [r[0] for r in con.execute(
        "SELECT athlete_id FROM activities UNION SELECT athlete_id FROM strength_sessions "
        "UNION SELECT athlete_id FROM declared_blocks ORDER BY 1").fetchall()]
    if only is not None:
        if only not in ids:
            raise PipelineError(f"no data for athlete {only!r} in the warehouse; known: {', '.join(ids) or 'none'}")
        return [only]
    return ids


def load_athlete_inputs(con: duckdb.DuckDBPyConnection, athlete_id: str) -> AthleteInputs:
    """One athlete's activities (with their archive weather, :func:`with_run_weather`), strength sessions and
    sets, declared blocks and settings."""
    activities = _df(con, "SELECT * FROM activities WHERE athlete_id = ? ORDER BY start_time, activity_id",
                     [athlete_id])
    activities = with_run_weather(con, activities)
    sessions = _df(con, "SELECT * FROM strength_sessions WHERE athlete_id = ? ORDER BY start_time", [athlete_id])
    sets = _df(con, "SELECT s.* FROM strength_sets s JOIN strength_sessions USING (session_id) "
                    "WHERE athlete_id = ? ORDER BY session_id, set_index", [athlete_id])
    declared = _df(con, "SELECT * FROM declared_blocks WHERE athlete_id = ?", [athlete_id])
    ref = con.execute("SELECT ref_speed_m_s FROM athletes WHERE athlete_id = ?", [athlete_id]).fetchone()
    runs = [a for a, s, ss in activities[["activity_id", "sport", "sub_sport"]].itertuples(index=False)
            if run_kind(s, ss)[0] in ("run", "maybe")]
    return AthleteInputs(athlete_id, activities, sessions, sets, declared,
                         float(ref[0]) if ref and ref[0] is not None else None, runs)


def with_run_weather(con: duckdb.DuckDBPyConnection, activities: pd.DataFrame) -> pd.DataFrame:
    """``activities`` plus the archive weather of each run (``pipeline weather``): the columns
    :data:`~pipeline.warehouse.contract.WEATHER_VALUE_COLUMNS` (NaN when unknown: no GPS, not looked up yet,
    or no archive data) and ``weather_source`` (None when unknown). Rows and their order are unchanged."""
    value_cols = list(WEATHER_VALUE_COLUMNS)
    weather = _df(con, f"SELECT activity_id, {', '.join(value_cols)}, source AS weather_source FROM weather "
                       "WHERE status = 'ok' AND activity_id IN (SELECT UNNEST(?))",
                  [list(activities["activity_id"])])
    out = activities.drop(columns=[c for c in [*value_cols, "weather_source"] if c in activities])
    out = out.merge(weather, on="activity_id", how="left", validate="one_to_one")
    out[value_cols] = out[value_cols].astype(float)
    out["weather_source"] = out["weather_source"].astype(object).where(out["weather_source"].notna(), None)
    return out


def stored_controls(con: duckdb.DuckDBPyConnection, except_athletes: list[str]) -> pd.DataFrame:
    """The stored ``placebo_checks`` rows (negative controls) of every athlete not in ``except_athletes``:
    the rest of the squad, for the calibration of the athletes analysed now."""
    return _df(con, "SELECT * FROM placebo_checks WHERE athlete_id NOT IN (SELECT UNNEST(?))", [except_athletes])


def replace_analysis_rows(con: duckdb.DuckDBPyConnection, athlete_ids: list[str] | None,
                          analyses: list[AthleteAnalysis], runs: pd.DataFrame) -> None:
    """Delete the analysed athletes' rows (all rows when ``athlete_ids`` is None) and insert the new ones,
    and append ``runs`` (``analysis_runs`` rows: what was analysed, when, how), in one transaction.

    Every row written carries its athlete's ``analysis_run_id`` (the provenance link)."""
    run_id = dict(zip(runs["athlete_id"], runs["analysis_run_id"])) if len(runs) else {}
    with transaction(con):
        insert_frame(con, "analysis_runs", runs, columns("analysis_runs"))
        for table in ANALYSIS_TABLES:
            cols = columns(table)
            if athlete_ids is None:
                con.execute(f"DELETE FROM {table}")
            else:
                con.execute(f"DELETE FROM {table} WHERE athlete_id IN (SELECT UNNEST(?))", [athlete_ids])
            frames = [getattr(t, table).assign(analysis_run_id=run_id.get(t.athlete_id))
                      for t in analyses if len(getattr(t, table))]
            if not frames:
                continue
            df = pd.concat(frames, ignore_index=True)[cols]
            df = df.replace({np.inf: np.nan, -np.inf: np.nan})
            insert_frame(con, table, df, cols)


def replace_block_effects(con: duckdb.DuckDBPyConnection, analysis: AthleteAnalysis, analysis_run_id: str,
                          pooled_fingerprint: str | None) -> None:
    """Replace one athlete's ``block_effects`` rows (recalibrated on the squad's controls) under its stored
    analysis, and record the pooled inputs' digest on that analysis, in one transaction."""
    cols = columns("block_effects")
    df = analysis.block_effects.assign(analysis_run_id=analysis_run_id)[cols]
    with transaction(con):
        con.execute("DELETE FROM block_effects WHERE athlete_id = ?", [analysis.athlete_id])
        if len(df):
            insert_frame(con, "block_effects", df.replace({np.inf: np.nan, -np.inf: np.nan}), cols)
        con.execute("UPDATE analysis_runs SET pooled_fingerprint = ? WHERE analysis_run_id = ?",
                    [pooled_fingerprint, analysis_run_id])


# Times the analysis can compute with: pandas works in nanoseconds (1677-2262) and silently wraps beyond
# (a start in the year 200000 came back as 1972). Rows outside this window make the athlete an error.
COMPUTABLE_TIMES = ("1900-01-01", "2200-01-01")
_IMPOSSIBLE_TIMES_SQL = f"""
    SELECT 'activity ' || a.activity_id, coalesce(f.path, '(file unknown)'), a.start_time::VARCHAR
    FROM activities a LEFT JOIN source_files f ON f.file_id = a.file_id AND f.athlete_id = a.athlete_id
         AND f.status = 'ok'
    WHERE a.athlete_id = $1 AND NOT (a.start_time >= TIMESTAMPTZ '{COMPUTABLE_TIMES[0]}'
                                     AND a.start_time < TIMESTAMPTZ '{COMPUTABLE_TIMES[1]}')
    UNION ALL
    SELECT 'strength session ' || s.session_id, coalesce(f.path, '(file unknown)'), s.start_time::VARCHAR
    FROM strength_sessions s LEFT JOIN source_files f ON f.file_id = s.file_id AND f.athlete_id = s.athlete_id
         AND f.status = 'ok'
    WHERE s.athlete_id = $1 AND NOT (s.start_time >= TIMESTAMPTZ '{COMPUTABLE_TIMES[0]}'
                                     AND s.start_time < TIMESTAMPTZ '{COMPUTABLE_TIMES[1]}')
    ORDER BY 1 LIMIT 5"""


def check_computable_times(con: duckdb.DuckDBPyConnection, athlete_id: str) -> None:
    """Refuse (PipelineError naming the files) an athlete whose activities or strength sessions start at
    a time the analysis cannot compute with, instead of letting it wrap silently into a wrong date."""
    rows = con.execute(_IMPOSSIBLE_TIMES_SQL, [athlete_id]).fetchall()
    if rows:
        named = "; ".join(f"{path} ({what}, starts {start})" for what, path, start in rows)
        raise PipelineError(f"impossible times, outside {COMPUTABLE_TIMES[0][:4]}-{COMPUTABLE_TIMES[1][:4]}: "
                            f"{named}; fix or remove the file(s) and run `pipeline ingest` again")


# What makes an activity's times absurd enough to break an analysis (the ingest sanity gate's limits).
_SUSPECT_ACTIVITIES_SQL = """
    SELECT a.activity_id, coalesce(f.path, '(file unknown)'), a.start_time::VARCHAR, a.elapsed_s
    FROM activities a LEFT JOIN source_files f ON f.file_id = a.file_id AND f.athlete_id = a.athlete_id
         AND f.status = 'ok'
    WHERE a.athlete_id = ? AND (a.start_time < TIMESTAMPTZ '2000-01-01' OR a.start_time > now() + INTERVAL 1 DAY
          OR a.elapsed_s > 48 * 3600 OR NOT isfinite(a.elapsed_s))
    ORDER BY a.start_time LIMIT 5"""


def _activity_files(con: duckdb.DuckDBPyConnection, activity_id: str) -> list[str]:
    rows = con.execute("SELECT DISTINCT f.path, f.status <> 'ok' FROM activities a JOIN source_files f "
                       "ON f.file_id = a.file_id AND f.athlete_id = a.athlete_id WHERE a.activity_id = ? "
                       "ORDER BY 2, 1", [activity_id]).fetchall()
    return [r[0] for r in rows]


def _duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "an unknown time"
    if seconds >= 2 * 365.25 * 86400:
        return f"{seconds / (365.25 * 86400):,.0f} years"
    return f"{seconds / 3600:,.1f} h"


def describe_failure(con: duckdb.DuckDBPyConnection, athlete_id: str, error: BaseException) -> str:
    """One line for an athlete whose analysis raised: the error and the activity/file(s) involved.

    An error inside one run's analysis names that run and its file. Otherwise the athlete's activities
    with absurd times (before 2000, in the future, longer than 48 h) are named as the likely cause. The
    warehouse is only read, in SQL (DuckDB holds any time).
    """
    cause = error.error if isinstance(error, RunAnalysisError) else error
    text = " ".join(str(cause).split())[:300] or "(no message)"
    message = f"{type(cause).__name__}: {text}"
    try:
        if isinstance(error, RunAnalysisError):
            files = _activity_files(con, error.activity_id)
            return f"{message} (in activity {error.activity_id}, file {', '.join(files) or 'unknown'})"
        suspects = con.execute(_SUSPECT_ACTIVITIES_SQL, [athlete_id]).fetchall()
    except duckdb.Error:
        return message
    if not suspects:
        return message
    named = "; ".join(f"{path} (activity {aid}, starts {start}, lasts {_duration(elapsed)})"
                      for aid, path, start, elapsed in suspects)
    return f"{message}; activities with impossible times, the likely cause: {named}"

"""``pipeline analyze``: read the staging tables, run the pure analysis per athlete, replace the analysis rows.

The only module of :mod:`pipeline.analyze` that touches the warehouse. For each athlete it loads the
activities, the samples of running activities (in batches of activities, so memory is bounded by the
batch, not the history), strength sessions/sets and declared blocks; computes ``strength_blocks`` with
:func:`pipeline.strength.blocks.strength_blocks_for_athlete`; runs :func:`athlete_process`; and replaces
the analysed athletes' rows of ``run_metrics``, ``weekly``, ``strength_blocks``, ``block_effects`` and
``placebo_checks`` in ONE transaction, so re-running gives identical tables and an interrupted run leaves
the previous ones intact.

Isolation: an athlete whose analysis fails (invalid athlete.toml, or any exception in its analysis, e.g.
absurd timestamps) gets an ``error`` row in ``analysis_runs`` with the reason and, where they can be
named, the activity and file(s) involved; its old analysis rows are removed (they no longer describe its
data) and every other athlete is analysed and stored as usual. ``AnalyzeSummary.failures`` lists them;
the CLI exits non-zero after printing what succeeded.
"""

from __future__ import annotations

import re

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import duckdb
import numpy as np
import pandas as pd

from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import RUN_METRICS_COLUMNS, AthleteTables, athlete_process
from pipeline.analyze.runs import RunAnalysisError, run_kind
from pipeline.errors import PipelineError
from pipeline.strength.blocks import BlockParams, strength_blocks_for_athlete
from pipeline.warehouse.db import connect, insert_frame
from pipeline.workspace import Workspace, load_athlete_config

SAMPLE_BATCH_ACTIVITIES = 40
ANALYSIS_TABLES = ("run_metrics", "weekly", "strength_blocks", "block_effects", "placebo_checks")


@dataclass
class AthleteSummary:
    """What one athlete's analysis found, for the one-screen summary."""

    athlete_id: str
    runs: int
    included: int
    exclusions: Counter
    not_runs: Counter
    blocks: int
    headline: list[dict] = field(default_factory=list)      # per block: change, CI, verdict
    placebo_gains: int = 0
    placebo_total: int = 0
    ref_speed_m_s: float = float("nan")
    placebo_losses: int = 0


@dataclass(frozen=True)
class AthleteFailure:
    """An athlete whose analysis could not be done, and why (file and key, or activity and file)."""

    athlete_id: str
    message: str


@dataclass
class AnalyzeSummary:
    """Result of :func:`analyze_workspace`; ``render()`` gives one screen of text."""

    athletes: list[AthleteSummary] = field(default_factory=list)
    failures: list[AthleteFailure] = field(default_factory=list)
    settings_note: str | None = None     # the non-default [analysis] settings, for the "no run included" hint

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        if not self.athletes and not self.failures:
            return "Analyze: no athletes in the warehouse; run `pipeline ingest` first."
        total = len(self.athletes) + len(self.failures)
        lines = [f"Analyze: {total} athlete(s)" + (f", {len(self.failures)} could not be analysed"
                                                     if self.failures else "")]
        for a in self.athletes:
            lines.extend(_athlete_lines(a, self.settings_note))
        for f in self.failures:
            lines.append(f"  {f.athlete_id}: NOT ANALYSED: {f.message}")
        return "\n".join(lines)


def _athlete_lines(a: AthleteSummary, settings_note: str | None) -> list[str]:
    """The summary lines of one analysed athlete."""
    lines = [f"  {a.athlete_id}: {a.included} of {a.runs} runs included"
             + (f" (reference speed {a.ref_speed_m_s:.2f} m/s)" if np.isfinite(a.ref_speed_m_s) else "")]
    for n, example in _grouped_reasons(a.exclusions)[:4]:
        lines.append(f"      excluded {n}, e.g. {example}")
    if a.runs and not a.included:
        lines.append("      hint: no run is included, so there is no economy index; "
                     + (f"check the settings in pipeline.toml ({settings_note}) and " if settings_note else "")
                     + "the reasons above (docs/analysis.md, 'Cleaning')")
    if a.not_runs:
        lines.append("      not runs (skipped): " + ", ".join(f"{k} {v}" for k, v in a.not_runs.most_common()))
    lines.append(f"    strength blocks: {a.blocks}")
    for h in a.headline:
        lines.append(_headline_line(h))
    if a.blocks:
        lines.append(f"    placebo: the same estimate at {a.placebo_total} fake block starts before the block "
                     f"claimed a gain at {a.placebo_gains} of {a.placebo_total} (a loss at {a.placebo_losses})"
                     if a.placebo_total else
                     "    placebo: not enough record before the block for a fake-start check "
                     "(needs ~4.5 months: 6 weeks + a 12-week fake response window)")
    return lines


def _signed(x: float) -> str:
    return f"{x:+.1f}" if np.isfinite(x) else "n/a"


def _headline_line(h: dict) -> str:
    """One block's headline effect; numbers that could not be estimated read 'n/a', never 'nan'."""
    if not np.isfinite(h["change_pct"]):
        return (f"    block {h['block_id']}: {h['verdict']} ({h['n_baseline']} runs before, "
                f"{h['n_response']} in the response window)")
    swc = f", SWC {h['swc_pct']:.1f} %" if np.isfinite(h["swc_pct"]) else ""
    return (f"    block {h['block_id']}: economy {_signed(h['change_pct'])} % beyond trend "
            f"(95 % CI {_signed(h['ci_low_pct'])} to {_signed(h['ci_high_pct'])}{swc}) -> {h['verdict']}")


def _grouped_reasons(reasons: Counter) -> list[tuple[int, str]]:
    """Reasons that differ only by numbers ("only 6 min steady..." / "only 9 min steady...") counted together.

    Returns (count, one real example of the group), most common first: the example keeps its numbers so
    the summary reads as a sentence, not a template.
    """
    counts: Counter = Counter()
    examples: dict[str, str] = {}
    for reason, n in sorted(reasons.items()):
        key = re.sub(r"\d+(\.\d+)?", "#", reason.split(";")[0])
        counts[key] += n
        examples.setdefault(key, reason.split(";")[0])
    return [(n, examples[key]) for key, n in counts.most_common()]


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _samples_by_activity(con: duckdb.DuckDBPyConnection, activity_ids: list[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield (activity_id, samples) for the given activities, fetching a batch of activities at a time."""
    for k in range(0, len(activity_ids), SAMPLE_BATCH_ACTIVITIES):
        batch = activity_ids[k:k + SAMPLE_BATCH_ACTIVITIES]
        frame = _df(con, "SELECT * FROM samples WHERE activity_id IN (SELECT UNNEST(?)) ORDER BY activity_id, ts",
                    [batch])
        for activity_id, group in frame.groupby("activity_id", sort=False):
            yield activity_id, group.reset_index(drop=True)


def _athlete_ids(con: duckdb.DuckDBPyConnection, only: str | None) -> list[str]:
    ids = [r[0] for r in con.execute(
        "SELECT athlete_id FROM activities UNION SELECT athlete_id FROM strength_sessions "
        "UNION SELECT athlete_id FROM declared_blocks ORDER BY 1").fetchall()]
    if only is not None:
        if only not in ids:
            raise PipelineError(f"no data for athlete {only!r} in the warehouse; known: {', '.join(ids) or 'none'}")
        return [only]
    return ids


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


def analyze_athlete(con: duckdb.DuckDBPyConnection, athlete_id: str, params: AnalysisParams,
                    block_params: BlockParams) -> AthleteTables:
    """Load one athlete's staging rows and run :func:`athlete_process` (reads only)."""
    check_computable_times(con, athlete_id)
    activities = _df(con, "SELECT * FROM activities WHERE athlete_id = ? ORDER BY start_time, activity_id", [athlete_id])
    sessions = _df(con, "SELECT * FROM strength_sessions WHERE athlete_id = ? ORDER BY start_time", [athlete_id])
    sets = _df(con, "SELECT s.* FROM strength_sets s JOIN strength_sessions USING (session_id) "
                    "WHERE athlete_id = ? ORDER BY session_id, set_index", [athlete_id])
    declared = _df(con, "SELECT * FROM declared_blocks WHERE athlete_id = ?", [athlete_id])
    ref = con.execute("SELECT ref_speed_m_s FROM athletes WHERE athlete_id = ?", [athlete_id]).fetchone()
    ref_speed = float(ref[0]) if ref and ref[0] is not None else None
    blocks = strength_blocks_for_athlete(athlete_id, sessions, sets, declared, block_params)
    runs = [a for a, s, ss in activities[["activity_id", "sport", "sub_sport"]].itertuples(index=False)
            if run_kind(s, ss)[0] in ("run", "maybe")]
    return athlete_process(athlete_id, activities, _samples_by_activity(con, runs), sessions, blocks, params,
                           ref_speed)


def _summary(t: AthleteTables) -> AthleteSummary:
    rm = t.run_metrics
    excl = Counter(rm.loc[~rm["included"], "exclusion_reason"].fillna("excluded").tolist())
    head = t.headline.to_dict("records")
    pl = t.placebo_checks
    pl = pl[(pl["metric"] == "economy_m_per_beat") & (pl["method"] == "its")]
    return AthleteSummary(t.athlete_id, len(rm), int(rm["included"].sum()), excl, t.not_runs, len(t.strength_blocks),
                          head, int((pl["verdict"] == "gain").sum()), len(pl),
                          t.model.ref_speed_m_s if t.model is not None else float("nan"),
                          int((pl["verdict"] == "loss").sum()))


_TABLE_COLUMNS = {
    "run_metrics": RUN_METRICS_COLUMNS,
    "weekly": ["athlete_id", "week_start", "runs", "run_km", "strength_sessions", "economy_m_per_beat"],
    "strength_blocks": ["athlete_id", "block_id", "start_date", "end_date", "sessions", "sessions_per_week",
                        "volume_kg", "source", "label"],
    "block_effects": ["athlete_id", "block_id", "metric", "method", "baseline_start", "baseline_end",
                      "response_start", "response_end", "n_baseline", "n_response", "baseline_value",
                      "response_value", "change_pct", "ci_low_pct", "ci_high_pct", "p_value", "swc_pct", "verdict"],
    "placebo_checks": ["athlete_id", "block_id", "metric", "method", "fake_start", "change_pct", "ci_low_pct",
                       "ci_high_pct", "verdict"],
}


ANALYSIS_RUN_COLUMNS = ["athlete_id", "status", "message", "started_at", "finished_at"]


@dataclass
class AthleteOutcome:
    """One athlete in one analyze run: its tables, or the reason it has none."""

    athlete_id: str
    started_at: pd.Timestamp
    finished_at: pd.Timestamp
    tables: AthleteTables | None = None
    error: str | None = None

    def analysis_run_row(self) -> dict:
        if self.tables is not None:
            rm = self.tables.run_metrics
            message = (f"{int(rm['included'].sum())} of {len(rm)} runs included, "
                       f"{len(self.tables.strength_blocks)} strength block(s)")
        else:
            message = self.error
        return {"athlete_id": self.athlete_id, "status": "ok" if self.tables is not None else "error",
                "message": message, "started_at": self.started_at, "finished_at": self.finished_at}


def _replace_rows(con: duckdb.DuckDBPyConnection, athlete_ids: list[str] | None,
                  outcomes: list[AthleteOutcome]) -> None:
    """Delete the analysed athletes' rows (all rows when ``athlete_ids`` is None), insert the new ones of
    the athletes that succeeded and one ``analysis_runs`` row per athlete, in one transaction."""
    tables = [o.tables for o in outcomes if o.tables is not None]
    con.execute("BEGIN TRANSACTION")
    try:
        for table, cols in _TABLE_COLUMNS.items():
            if athlete_ids is None:
                con.execute(f"DELETE FROM {table}")
            else:
                con.execute(f"DELETE FROM {table} WHERE athlete_id IN (SELECT UNNEST(?))", [athlete_ids])
            frames = [getattr(t, table) for t in tables if len(getattr(t, table))]
            if not frames:
                continue
            df = pd.concat(frames, ignore_index=True)[cols]
            df = df.replace({np.inf: np.nan, -np.inf: np.nan})
            insert_frame(con, table, df, cols)
        runs = pd.DataFrame([o.analysis_run_row() for o in outcomes], columns=ANALYSIS_RUN_COLUMNS)
        insert_frame(con, "analysis_runs", runs, ANALYSIS_RUN_COLUMNS)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# What makes an activity's times absurd enough to break an analysis (the ingest sanity gate's limits).
_SUSPECT_ACTIVITIES_SQL = """
    SELECT a.activity_id, coalesce(f.path, '(file unknown)'), a.start_time::VARCHAR, a.elapsed_s
    FROM activities a LEFT JOIN source_files f ON f.file_id = a.file_id AND f.athlete_id = a.athlete_id
         AND f.status = 'ok'
    WHERE a.athlete_id = ? AND (a.start_time < TIMESTAMPTZ '2000-01-01' OR a.start_time > now() + INTERVAL 1 DAY
          OR a.elapsed_s > 48 * 3600 OR NOT isfinite(a.elapsed_s))
    ORDER BY a.start_time LIMIT 5"""


def _activity_files(con: duckdb.DuckDBPyConnection, activity_id: str) -> list[str]:
    rows = con.execute("SELECT DISTINCT f.path FROM activities a JOIN source_files f ON f.file_id = a.file_id "
                       "AND f.athlete_id = a.athlete_id WHERE a.activity_id = ? ORDER BY f.status <> 'ok', 1",
                       [activity_id]).fetchall()
    return [r[0] for r in rows]


def describe_failure(con: duckdb.DuckDBPyConnection, athlete_id: str, error: BaseException) -> str:
    """One line for an athlete whose analysis raised: the error and the activity/file(s) involved.

    An error inside one run's analysis names that run and its file. Otherwise (e.g. reading rows pandas
    cannot hold), the athlete's activities with absurd times (before 2000, in the future, longer than
    48 h) are named as the likely cause. The warehouse is only read (in SQL: DuckDB holds any time).
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


def _duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "an unknown time"
    if seconds >= 2 * 365.25 * 86400:
        return f"{seconds / (365.25 * 86400):,.0f} years"
    return f"{seconds / 3600:,.1f} h"


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def analyze_one(con: duckdb.DuckDBPyConnection, ws: Workspace, athlete_id: str, params: AnalysisParams,
                block_params: BlockParams) -> AthleteOutcome:
    """Analyse one athlete, turning ANY failure into an outcome with a reason instead of an exception,
    so one athlete's bad data or settings never cost another athlete their results."""
    started = _now()
    try:
        if (ws.raw_dir / athlete_id).is_dir():
            load_athlete_config(ws.raw_dir, athlete_id)      # a bad athlete.toml is this athlete's error
        tables = analyze_athlete(con, athlete_id, params, block_params)
        return AthleteOutcome(athlete_id, started, _now(), tables=tables)
    except PipelineError as e:
        return AthleteOutcome(athlete_id, started, _now(), error=str(e))
    except Exception as e:  # noqa: BLE001 - isolation boundary: the reason is stored and shown, never lost
        return AthleteOutcome(athlete_id, started, _now(), error=describe_failure(con, athlete_id, e))


def _non_default_settings(params: AnalysisParams) -> str | None:
    """'min_steady_s = 3600, ...' for the settings that differ from the defaults (for the hint)."""
    changed = [f"{f.name} = {getattr(params, f.name)!r}" for f in fields(params)
               if getattr(params, f.name) != getattr(AnalysisParams(), f.name)]
    return ", ".join(changed) or None


def analyze_workspace(ws: Workspace, athlete_id: str | None = None) -> AnalyzeSummary:
    """Compute the analysis tables from the staging tables for every athlete (or one).

    Parameters come from pipeline.toml: ``[analysis]`` (:class:`AnalysisParams`) and ``[blocks]``
    (:class:`BlockParams`); invalid ones stop the command (they concern every athlete). Each athlete is
    analysed in isolation (:func:`analyze_one`); the summary lists the failures. The caller holds the
    workspace lock.
    """
    config = ws.pipeline_config()
    params = AnalysisParams.from_config(config.get("analysis"))
    block_params = BlockParams.from_config(config)
    con = connect(ws)
    try:
        ids = _athlete_ids(con, athlete_id)
        outcomes = [analyze_one(con, ws, a, params, block_params) for a in ids]
        _replace_rows(con, None if athlete_id is None else ids, outcomes)
    finally:
        con.close()
    return AnalyzeSummary([_summary(o.tables) for o in outcomes if o.tables is not None],
                          [AthleteFailure(o.athlete_id, o.error or "failed") for o in outcomes if o.tables is None],
                          _non_default_settings(params))

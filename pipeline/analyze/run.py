"""``pipeline analyze``: read the staging tables, run the pure analysis per athlete, replace the analysis rows.

The only module of :mod:`pipeline.analyze` that touches the warehouse. For each athlete it loads the
activities, the samples of running activities (in batches of activities, so memory is bounded by the
batch, not the history), strength sessions/sets and declared blocks; computes ``strength_blocks`` with
:func:`pipeline.strength.blocks.strength_blocks_for_athlete`; runs :func:`athlete_process`; and replaces
the analysed athletes' rows of ``run_metrics``, ``weekly``, ``strength_blocks``, ``block_effects`` and
``placebo_checks`` in ONE transaction, so re-running gives identical tables and an interrupted run leaves
the previous ones intact.
"""

from __future__ import annotations

import re

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import (
    BLOCK_EFFECT_COLUMNS,
    PLACEBO_COLUMNS,
    RUN_METRICS_COLUMNS,
    AthleteTables,
    athlete_process,
    recalibrate,
    squad_controls,
    stored_control_sets,
)
from pipeline.analyze.runs import run_kind
from pipeline.errors import PipelineError
from pipeline.strength.blocks import BlockParams, strength_blocks_for_athlete
from pipeline.warehouse.db import connect, insert_frame
from pipeline.workspace import Workspace

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


@dataclass
class AnalyzeSummary:
    """Result of :func:`analyze_workspace`; ``render()`` gives one screen of text."""

    athletes: list[AthleteSummary] = field(default_factory=list)

    def render(self) -> str:
        if not self.athletes:
            return "Analyze: no athletes in the warehouse; run `pipeline ingest` first."
        lines = [f"Analyze: {len(self.athletes)} athlete(s)"]
        for a in self.athletes:
            lines.append(f"  {a.athlete_id}: {a.included} of {a.runs} runs included"
                         + (f" (reference speed {a.ref_speed_m_s:.2f} m/s)" if np.isfinite(a.ref_speed_m_s) else ""))
            for n, example in _grouped_reasons(a.exclusions)[:4]:
                lines.append(f"      excluded {n}, e.g. {example}")
            if a.not_runs:
                lines.append("      not runs (skipped): " + ", ".join(f"{k} {v}" for k, v in a.not_runs.most_common()))
            lines.append(f"    strength blocks: {a.blocks}")
            lines += [_headline_line(h) for h in a.headline]
            if a.blocks:
                lines.append(f"    negative controls: the raw estimate at {a.placebo_total} fake block starts claimed a "
                             f"gain at {a.placebo_gains} and a loss at {a.placebo_losses}; the verdicts above are "
                             "calibrated on them" if a.placebo_total else
                             "    negative controls: none fit in this record (each needs 6 weeks before it and 12 "
                             "weeks after it clear of a block): calibrated with the squad's or the default")
        return "\n".join(lines)


def _headline_line(h: dict) -> str:
    """One block's calibrated headline (and the raw estimate) for the summary."""
    if not np.isfinite(h.get("calibrated_change_pct", np.nan)):
        return (f"    block {h['block_id']}: {h.get('calibrated_verdict') or h['verdict']} ({h['n_baseline']} runs "
                f"before, {h['n_response']} in the response window)")
    return (f"    block {h['block_id']}: economy {h['calibrated_change_pct']:+.1f} % beyond trend, calibrated "
            f"(95 % CI {h['calibrated_ci_low_pct']:+.1f} to {h['calibrated_ci_high_pct']:+.1f}; raw "
            f"{h['change_pct']:+.1f}, {h['ci_low_pct']:+.1f} to {h['ci_high_pct']:+.1f}; SWC {h['swc_pct']:.1f} %) "
            f"-> {h['calibrated_verdict']}: {h['verdict_reason']}")


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


def analyze_athlete(con: duckdb.DuckDBPyConnection, athlete_id: str, params: AnalysisParams,
                    block_params: BlockParams) -> AthleteTables:
    """Load one athlete's staging rows and run :func:`athlete_process` (reads only)."""
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
    "block_effects": BLOCK_EFFECT_COLUMNS,
    "placebo_checks": PLACEBO_COLUMNS,
}


def _squad_calibrated(con: duckdb.DuckDBPyConnection, tables: list[AthleteTables]) -> list[AthleteTables]:
    """Second pass: calibrate every athlete whose own negative controls are too few with the squad's pooled
    controls (the analysed athletes' own sets, plus the stored rows of athletes not analysed now)."""
    analysed = [t.athlete_id for t in tables]
    stored = _df(con, "SELECT * FROM placebo_checks WHERE athlete_id NOT IN (SELECT UNNEST(?))", [analysed])
    sets = [cs for t in tables for cs in t.controls.values()] + stored_control_sets(stored)
    squad = squad_controls(sets)
    return [recalibrate(t, squad) for t in tables]


def _replace_rows(con: duckdb.DuckDBPyConnection, athlete_ids: list[str] | None, tables: list[AthleteTables]) -> None:
    """Delete the analysed athletes' rows (all rows when ``athlete_ids`` is None) and insert the new ones,
    in one transaction."""
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
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def analyze_workspace(ws: Workspace, athlete_id: str | None = None) -> AnalyzeSummary:
    """Compute the analysis tables from the staging tables for every athlete (or one).

    Parameters come from pipeline.toml: ``[analysis]`` (:class:`AnalysisParams`) and ``[blocks]``
    (:class:`BlockParams`). The caller holds the workspace lock.
    """
    config = ws.pipeline_config()
    params = AnalysisParams.from_config(config.get("analysis", {}))
    block_params = BlockParams.from_config(config)
    con = connect(ws)
    try:
        ids = _athlete_ids(con, athlete_id)
        tables = [analyze_athlete(con, a, params, block_params) for a in ids]
        tables = _squad_calibrated(con, tables)
        _replace_rows(con, None if athlete_id is None else ids, tables)
    finally:
        con.close()
    return AnalyzeSummary([_summary(t) for t in tables])

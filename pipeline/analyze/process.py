"""One athlete, end to end, as a pure recipe: activities and samples in, the analysis tables out.

``athlete_process`` never opens a file or a connection: :mod:`pipeline.analyze.run` feeds it from the
warehouse, tests feed it from the simulator. Samples arrive as an iterable of per-activity frames so
memory stays bounded by one run's samples plus the steady samples kept for the model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.analyze.economy import EconomyModel, economy_fit, economy_ref_speed
from pipeline.analyze.effects import block_effects, placebo_checks
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.runs import (STEADY_COLUMNS, RunAnalysisError, RunResult, run_kind, run_process,
                                   runs_outside_reference_speed)
from pipeline.analyze.trends import block_trends
from pipeline.analyze.weekly import weekly_summary
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC, columns

# Every run_metrics column but the provenance link, which the store adds when it writes the rows.
RUN_METRICS_COLUMNS = [c for c in columns("run_metrics") if c != "analysis_run_id"]
# Kept in memory beside the warehouse columns (not written).
RUN_EXTRA_COLUMNS: list[str] = []
HEADLINE = (HEADLINE_METRIC, HEADLINE_METHOD)


@dataclass
class AthleteAnalysis:
    """Everything analysed for one athlete: the rows of each analysis table plus the fitted model."""

    athlete_id: str
    run_metrics: pd.DataFrame
    weekly: pd.DataFrame
    strength_blocks: pd.DataFrame
    block_effects: pd.DataFrame
    placebo_checks: pd.DataFrame
    model: EconomyModel | None
    not_runs: Counter = field(default_factory=Counter)   # other sports seen (never analysed)
    block_trends: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=columns("block_trends")))

    @property
    def headline(self) -> pd.DataFrame:
        e = self.block_effects
        return e[(e["metric"] == HEADLINE[0]) & (e["method"] == HEADLINE[1])]


def athlete_runs(activities: pd.DataFrame, samples: Iterable[tuple[str, pd.DataFrame]],
                 params: AnalysisParams) -> tuple[list[RunResult], Counter]:
    """Per-run recipe over every running (or unknown-sport) activity; other sports are only counted."""
    act = activities.set_index("activity_id", drop=False)
    results, not_runs, seen = [], Counter(), set()
    for activity_id, frame in samples:
        if activity_id not in act.index:
            continue
        seen.add(activity_id)
        try:
            results.append(run_process(frame, act.loc[activity_id].to_dict(), params))
        except Exception as e:  # name the activity: the caller reports it with its file
            raise RunAnalysisError(activity_id, e) from e
    for activity_id, row in act.iterrows():
        if activity_id in seen:
            continue
        kind, _ = run_kind(row.get("sport"), row.get("sub_sport"))
        if kind in ("run", "maybe"):
            results.append(run_process(pd.DataFrame(), row.to_dict(), params))  # no samples at all
        else:
            not_runs[kind.removeprefix("not a run: ").removeprefix("not analysed: ")] += 1
    return results, not_runs


def exclude_runs(rows: pd.DataFrame, steady: pd.DataFrame, reasons: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mark the runs in ``reasons`` (activity_id -> reason) excluded and drop their steady samples (pure)."""
    if not reasons:
        return rows, steady
    hit = rows["activity_id"].isin(list(reasons))
    rows = rows.copy()
    rows.loc[hit, "included"] = False
    rows.loc[hit, "exclusion_reason"] = rows.loc[hit, "activity_id"].map(reasons)
    return rows, steady[~steady["activity_id"].isin(list(reasons))].reset_index(drop=True)


def athlete_process(athlete_id: str, activities: pd.DataFrame, samples: Iterable[tuple[str, pd.DataFrame]],
                    strength_sessions: pd.DataFrame, strength_blocks: pd.DataFrame,
                    params: AnalysisParams | None = None, ref_speed_m_s: float | None = None) -> AthleteAnalysis:
    """Analyse one athlete.

    Parameters
    ----------
    activities : the athlete's ``activities`` rows (all sports).
    samples : (activity_id, samples frame) pairs, e.g. one per running activity.
    strength_sessions : ``strength_sessions`` rows (for the weekly counts).
    strength_blocks : ``strength_blocks`` rows (from :func:`pipeline.analyze.blocks.strength_blocks_for_athlete`).
    ref_speed_m_s : athlete.toml reference speed; None -> median steady grade-adjusted speed of included runs.
    """
    p = params or AnalysisParams()
    # 1. Every run cleaned and summarised on its own (steady samples kept for included runs only).
    results, not_runs = athlete_runs(activities, samples, p)
    rows = pd.DataFrame([r.row for r in results], columns=RUN_METRICS_COLUMNS + RUN_EXTRA_COLUMNS)
    rows["start_time"] = pd.to_datetime(rows["start_time"], utc=True)
    rows["included"] = rows["included"].astype(bool)
    steady = pd.concat([r.steady.assign(activity_id=r.row["activity_id"]) for r in results if r.included],
                       ignore_index=True) if any(r.included for r in results) else \
        pd.DataFrame(columns=[*STEADY_COLUMNS, "activity_id"])
    # 2. The athlete-level HR model: shared slope and drift, per-run intercept -> economy index.
    included = rows[rows["included"]]
    model = None
    if len(included):
        v_ref = economy_ref_speed(included, ref_speed_m_s)
        rows, steady = exclude_runs(rows, steady, runs_outside_reference_speed(steady, v_ref, p))
        included = rows[rows["included"]]
    if len(included):
        model = economy_fit(steady, included, v_ref, p)
        idx = model.runs.set_index("activity_id")
        for col in ("hr_at_ref_bpm", "economy_m_per_beat"):
            rows[col] = rows["activity_id"].map(idx[col]).astype(float)
            rows.loc[~rows["included"], col] = np.nan
    rows = rows.sort_values(["start_time", "activity_id"]).reset_index(drop=True)
    # 3. Weekly volume, strength and median economy.
    is_run = ~rows["exclusion_reason"].fillna("").str.startswith("sport not recorded")
    weekly = weekly_summary(athlete_id, rows.assign(is_run=is_run), strength_sessions)
    # 4. Block effects (window and ITS, every metric) and the placebo check on the included runs.
    inc = rows[rows["included"]]
    blocks = strength_blocks if strength_blocks is not None else pd.DataFrame(columns=["athlete_id", "block_id", "start_date"])
    heat_se = model.heat_se_bpm_per_c if model is not None and np.isfinite(model.heat_se_bpm_per_c) else 0.0
    effects = block_effects(inc, blocks, p, heat_se_bpm_per_c=heat_se)
    placebo = placebo_checks(inc, blocks, p, heat_se_bpm_per_c=heat_se)
    # 5. The headline's counterfactual as a curve (the same ITS fit), for the report's timeline.
    trends = block_trends(inc, blocks, p, heat_se_bpm_per_c=heat_se)
    return AthleteAnalysis(athlete_id, rows, weekly, blocks, effects, placebo, model, not_runs, trends)

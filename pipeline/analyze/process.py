"""One athlete, end to end, as a pure recipe: activities and samples in, the analysis tables out.

``athlete_process`` never opens a file or a connection: :mod:`pipeline.analyze.run` feeds it from the
warehouse, tests feed it from the simulator. Samples arrive as an iterable of per-activity frames and
each run is reduced to its model bins at once, so memory stays bounded by one run's samples plus a few rows
per run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pipeline.analyze.economy import EconomyModel, economy_bins, economy_fit, economy_ref_speed
from pipeline.analyze.effects import block_effects, placebo_checks
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.runs import (RunAnalysisError, RunResult, run_kind, run_process, runs_outside_speed_ranges,
                                   steady_speed_range)
from pipeline.analyze.weekly import weekly_summary
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC, columns

# Every run_metrics column but the provenance link, which the store adds when it writes the rows.
RUN_METRICS_COLUMNS = [c for c in columns("run_metrics") if c != "analysis_run_id"]
# Kept in memory beside the warehouse columns (not written).
RUN_EXTRA_COLUMNS: list[str] = []
HEADLINE = (HEADLINE_METRIC, HEADLINE_METHOD)
# What a run keeps for the athlete model once reduced (economy_bins' columns).
MODEL_BIN_COLUMNS = ["activity_id", "t_s", "dt_s", "gap_lag_m_s", "hr_bpm"]


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

    @property
    def headline(self) -> pd.DataFrame:
        e = self.block_effects
        return e[(e["metric"] == HEADLINE[0]) & (e["method"] == HEADLINE[1])]


def run_reduced(result: RunResult, params: AnalysisParams) -> RunResult:
    """The run with its steady samples reduced to what the athlete model reads: the model bins of an
    included run (:func:`pipeline.analyze.economy.economy_bins`, finite HR and speed only, as
    :func:`economy_fit` filters them), nothing for an excluded run. A run's arrays are dropped as soon as
    it is summarised, so memory grows with runs x bins, not with samples. The range of its steady speed is
    kept for the reference-speed check (:func:`~pipeline.analyze.runs.steady_speed_range`)."""
    if not result.included or result.steady.empty:
        return RunResult(result.row, pd.DataFrame(columns=MODEL_BIN_COLUMNS))
    s = result.steady.assign(activity_id=result.row["activity_id"])
    speed_range = steady_speed_range(s)
    s = s[np.isfinite(s["hr_bpm"]) & np.isfinite(s["gap_lag_m_s"])]
    return RunResult(result.row, economy_bins(s, params.model_bin_s).reset_index(drop=True), speed_range)


def athlete_runs(activities: pd.DataFrame, samples: Iterable[tuple[str, pd.DataFrame]],
                 params: AnalysisParams, reuse: dict[str, RunResult] | None = None) -> tuple[list[RunResult], Counter]:
    """Per-run recipe over every running (or unknown-sport) activity; other sports are only counted.

    Results come in ``activities`` order whatever order the samples arrive in, each reduced by
    :func:`run_reduced`. ``reuse``: already reduced results by activity_id (an unchanged run's, see
    :mod:`pipeline.analyze.run_cache`); they are taken as they are and need no samples.
    """
    act = activities.set_index("activity_id", drop=False)
    reuse = reuse or {}
    done: dict[str, RunResult] = {}
    for activity_id, frame in samples:
        if activity_id not in act.index or activity_id in reuse:
            continue
        try:
            done[activity_id] = run_reduced(run_process(frame, act.loc[activity_id].to_dict(), params), params)
        except Exception as e:  # name the activity: the caller reports it with its file
            raise RunAnalysisError(activity_id, e) from e
    results, not_runs = [], Counter()
    for activity_id, row in act.iterrows():
        if activity_id in reuse:
            results.append(reuse[activity_id])
        elif activity_id in done:
            results.append(done.pop(activity_id))
        else:
            kind, _ = run_kind(row.get("sport"), row.get("sub_sport"))
            if kind in ("run", "maybe"):
                results.append(run_reduced(run_process(pd.DataFrame(), row.to_dict(), params), params))  # no samples
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
    """Analyse one athlete: :func:`athlete_runs` then :func:`athlete_from_runs`.

    Parameters
    ----------
    activities : the athlete's ``activities`` rows (all sports).
    samples : (activity_id, samples frame) pairs, e.g. one per running activity.
    strength_sessions : ``strength_sessions`` rows (for the weekly counts).
    strength_blocks : ``strength_blocks`` rows (from :func:`pipeline.analyze.blocks.strength_blocks_for_athlete`).
    ref_speed_m_s : athlete.toml reference speed; None -> median steady grade-adjusted speed of included runs.
    """
    p = params or AnalysisParams()
    results, not_runs = athlete_runs(activities, samples, p)
    return athlete_from_runs(athlete_id, results, not_runs, strength_sessions, strength_blocks, p, ref_speed_m_s)


def athlete_from_runs(athlete_id: str, results: list[RunResult], not_runs: Counter,
                      strength_sessions: pd.DataFrame, strength_blocks: pd.DataFrame,
                      params: AnalysisParams | None = None, ref_speed_m_s: float | None = None) -> AthleteAnalysis:
    """The athlete-level part of :func:`athlete_process`, from the runs :func:`athlete_runs` reduced."""
    p = params or AnalysisParams()
    # 1. Every run cleaned and summarised on its own (model bins kept for included runs only).
    rows = pd.DataFrame([r.row for r in results], columns=RUN_METRICS_COLUMNS + RUN_EXTRA_COLUMNS)
    rows["start_time"] = pd.to_datetime(rows["start_time"], utc=True)
    rows["included"] = rows["included"].astype(bool)
    steady = pd.concat([r.steady for r in results if r.included], ignore_index=True) \
        if any(r.included for r in results) else pd.DataFrame(columns=MODEL_BIN_COLUMNS)
    # 2. The athlete-level HR model: shared slope and drift, per-run intercept -> economy index.
    included = rows[rows["included"]]
    model = None
    if len(included):
        v_ref = economy_ref_speed(included, ref_speed_m_s)
        ranges = {r.row["activity_id"]: r.speed_range for r in results if r.included}
        rows, steady = exclude_runs(rows, steady, runs_outside_speed_ranges(ranges, v_ref, p))
        included = rows[rows["included"]]
    if len(included):
        model = economy_fit(steady, included, v_ref, replace(p, model_bin_s=0.0))   # binned per run already
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
    return AthleteAnalysis(athlete_id, rows, weekly, blocks, effects, placebo, model, not_runs)

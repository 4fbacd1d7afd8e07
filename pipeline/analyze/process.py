"""One athlete, end to end, as a pure recipe: activities and samples in, the analysis tables out.

``athlete_process`` never opens a file or a connection: :mod:`pipeline.analyze.run` feeds it from the
warehouse, tests feed it from the simulator. Samples arrive as an iterable of per-activity frames so
memory stays bounded by one run's samples plus what is kept of each run for the athlete-level steps (its
row, ~12 model bins an hour and its pace range: :class:`~pipeline.analyze.runs.RunResult`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pipeline.analyze.calibration import Calibration, calibration_class, calibration_for
from pipeline.analyze.controls import CONTROL_COLUMNS, EMPTY_CONTROLS, ControlSet, negative_controls
from pipeline.analyze.economy import MODEL_BIN_COLUMNS, EconomyModel, economy_fit_bins, economy_ref_speed
from pipeline.analyze.effects import (
    EFFECT_COLUMNS,
    METRICS,
    WEEK,
    EffectContext,
    EffectFit,
    block_effect_fits,
    block_limits,
    block_windows,
    choose_harmonics,
    effects_frame,
    estimate,
    fit_season,
    utc,
)
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.runs import RunAnalysisError, RunResult, run_kind, run_process, runs_outside_reference_range
from pipeline.analyze.season import SeasonSpec, season_spec
from pipeline.analyze.sensor import NO_CHANGE, device_labels, sensor_check, with_device_indicators
from pipeline.analyze.trends import block_trends
from pipeline.analyze.verdict import BlockNotes, verdict_columns
from pipeline.analyze.weekly import weekly_summary
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC, columns

# Every run_metrics column but the provenance link, which the store adds when it writes the rows.
RUN_METRICS_COLUMNS = [c for c in columns("run_metrics") if c != "analysis_run_id"]
# Kept in memory beside the warehouse columns (not written): the settled device reading, the heat
# model's excess and key per run, the archive weather and the HR device label.
RUN_EXTRA_COLUMNS = ["device_temperature_c", "heat_excess_c", "heat_model"]
WEATHER_COLUMNS = ("air_temperature_c", "dew_point_c", "relative_humidity_pct")
HEADLINE = (HEADLINE_METRIC, HEADLINE_METHOD)
# The estimates calibrated against negative controls (the economy index, both methods).
CALIBRATED = ((HEADLINE_METRIC, HEADLINE_METHOD), (HEADLINE_METRIC, "window"))
# The provenance link is added by the store when it writes the rows (as for run_metrics).
BLOCK_EFFECT_COLUMNS = [c for c in columns("block_effects") if c != "analysis_run_id"]
CALIBRATION_COLUMNS = BLOCK_EFFECT_COLUMNS[len(EFFECT_COLUMNS):]     # calibrated, side by side with the raw
PLACEBO_COLUMNS = [c for c in columns("placebo_checks") if c != "analysis_run_id"]


@dataclass
class AthleteAnalysis:
    """Everything analysed for one athlete: the rows of each analysis table plus the fitted model, and
    what a second (squad) calibration pass needs."""

    athlete_id: str
    run_metrics: pd.DataFrame
    weekly: pd.DataFrame
    strength_blocks: pd.DataFrame
    block_effects: pd.DataFrame
    placebo_checks: pd.DataFrame
    model: EconomyModel | None
    not_runs: Counter = field(default_factory=Counter)   # other sports seen (never analysed)
    controls: dict[tuple[str, str], ControlSet] = field(default_factory=dict)
    calibration_class: str = "none"
    fits: list[tuple[dict, EffectFit]] = field(default_factory=list)
    notes: dict[str, BlockNotes] = field(default_factory=dict)
    params: AnalysisParams = field(default_factory=AnalysisParams)
    block_trends: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=columns("block_trends")))

    @property
    def headline(self) -> pd.DataFrame:
        e = self.block_effects
        return e[(e["metric"] == HEADLINE[0]) & (e["method"] == HEADLINE[1])]


def athlete_runs(activities: pd.DataFrame, samples: Iterable[tuple[str, pd.DataFrame]],
                 params: AnalysisParams, reuse: dict[str, RunResult] | None = None) -> tuple[list[RunResult], Counter]:
    """Per-run recipe over every running (or unknown-sport) activity; other sports are only counted.

    ``reuse``: results of :func:`~pipeline.analyze.runs.run_process` already computed for unchanged runs,
    by activity_id (:mod:`pipeline.analyze.run_cache`); they are taken as they are and need no samples (a
    reused run with samples comes in the stream as ``(activity_id, None)``, so the results keep the order a
    fresh analysis gives them: the model bins are concatenated in that order).
    """
    act = activities.set_index("activity_id", drop=False)
    reuse = reuse or {}
    results, not_runs, seen = [], Counter(), set()
    for activity_id, frame in samples:
        if activity_id not in act.index:
            continue
        seen.add(activity_id)
        if activity_id in reuse:          # in the stream's order, as a fresh result would be (frame unused)
            results.append(reuse[activity_id])
            continue
        try:
            results.append(run_process(frame, act.loc[activity_id].to_dict(), params))
        except Exception as e:  # name the activity: the caller reports it with its file
            raise RunAnalysisError(activity_id, e) from e
    for activity_id, row in act.iterrows():
        if activity_id in seen:
            continue
        if activity_id in reuse:
            results.append(reuse[activity_id])
            continue
        kind, _ = run_kind(row.get("sport"), row.get("sub_sport"))
        if kind in ("run", "maybe"):
            results.append(run_process(pd.DataFrame(), row.to_dict(), params))  # no samples at all
        else:
            not_runs[kind.removeprefix("not a run: ").removeprefix("not analysed: ")] += 1
    return results, not_runs


def _run_rows(results: list[RunResult], activities: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the warehouse columns, the in-memory extras, archive weather and HR device."""
    rows = pd.DataFrame([r.row for r in results]).reindex(columns=RUN_METRICS_COLUMNS + RUN_EXTRA_COLUMNS)
    rows["start_time"] = pd.to_datetime(rows["start_time"], utc=True)
    rows["included"] = rows["included"].astype(bool)
    act = activities.set_index("activity_id")
    for col in WEATHER_COLUMNS:
        rows[col] = rows["activity_id"].map(act[col]).astype(float) if col in act else np.nan
    rows["hr_device"] = rows["activity_id"].map(device_labels(activities)) if len(activities) else ""
    return rows


def _apply_model(rows: pd.DataFrame, model: EconomyModel, params: AnalysisParams) -> pd.DataFrame:
    """Copy the model's per-run values into the run rows; runs the heat model cannot place (no
    temperature anywhere near while heat matters) are excluded with the reason."""
    idx = model.runs.set_index("activity_id")
    for col in ("hr_at_ref_bpm", "economy_m_per_beat", "temperature_source", "heat_temperature_c",
                "heat_adjustment_bpm", "heat_excess_c", "heat_model"):
        rows[col] = rows["activity_id"].map(idx[col])
        rows.loc[~rows["included"], col] = np.nan
    for col in ("hr_at_ref_bpm", "economy_m_per_beat", "heat_temperature_c", "heat_adjustment_bpm", "heat_excess_c"):
        rows[col] = rows[col].astype(float)
    lost = rows["included"] & rows["activity_id"].map(~idx["heat_usable"].astype(bool)).fillna(False).astype(bool)
    gamma = model.heat_bpm_per_c
    rows.loc[lost, "exclusion_reason"] = (
        f"no temperature (watch, weather or runs within {params.heat_impute_days:.0f} days) while heat raises this "
        f"athlete's HR ({gamma:.2f} bpm per C)")
    rows.loc[lost, "included"] = False
    return rows


def effect_context(inc: pd.DataFrame, blocks: pd.DataFrame, model: EconomyModel | None,
             params: AnalysisParams) -> EffectContext:
    """What all estimates of this athlete share: season model, real block starts, heat SEs."""
    season = season_spec(inc["start_time"], params)
    heat_se = {k: model.heat.se(k) for k in model.heat.fits} if model is not None else {}
    starts = tuple(utc(x) for x in blocks["start_date"]) if len(blocks) else ()
    draws = model.heat.draws_frame() if model is not None else None
    ctx = EffectContext(params, season, starts, heat_se, heat_draws=draws)
    if season.controlled:
        h = choose_harmonics(inc, ctx)
        reason = "season controlled (annual harmonic" + (" and a second, preferred by BIC)" if h == 2 else ")")
        ctx = replace(ctx, season=replace(season, harmonics=h, reason=reason))
        ctx = replace(ctx, season_fit=fit_season(inc, ctx))
    return ctx


def _volume_change_pct(rows: pd.DataFrame, block_start: pd.Timestamp, params: AnalysisParams) -> float:
    """Running km per week from block start to the response window's end against the ITS pre-period."""
    t = rows["start_time"]
    km = pd.to_numeric(rows["distance_km"], errors="coerce").fillna(0.0)
    pre_w, during_w = params.its_pre_weeks, params.response_end_weeks
    pre = km[(t >= block_start - pre_w * WEEK) & (t < block_start)].sum() / pre_w
    during = km[(t >= block_start) & (t < block_start + during_w * WEEK)].sum() / during_w
    return float((during / pre - 1) * 100) if pre > 0 else float("nan")


def _block_notes(rows: pd.DataFrame, inc: pd.DataFrame, blocks: pd.DataFrame, ctx: EffectContext,
                 model: EconomyModel | None) -> dict[str, BlockNotes]:
    """Per block: sensor check (with the device-adjusted estimate), volume change, what is controlled."""
    p = ctx.params
    heat_ok = model is not None and model.heat.controlled
    heat_note = "" if heat_ok else "no temperature for enough runs (watch or weather): heat not controlled"
    with_dev, dev_cols = with_device_indicators(inc)
    out = {}
    for b, not_before in block_limits(blocks, p):
        w = block_windows(b["_start"], p, not_before)
        check = sensor_check(inc, w, p.sensor_change_share) if len(inc) else NO_CHANGE
        dev_fit = None
        if check.changed:
            f = estimate(with_dev, w, HEADLINE[0], HEADLINE[1], replace(ctx, covariates=dev_cols))
            dev_fit = f if np.isfinite(f.theta) and np.isfinite(f.se) and dev_cols else None
        out[b["block_id"]] = BlockNotes(ctx.season.reason, ctx.season.controlled, heat_ok, heat_note, check,
                                        dev_fit, _volume_change_pct(rows, b["_start"], p))
    return out


def _calibrated_effects(fits: list[tuple[dict, EffectFit]], controls: dict[tuple[str, str], ControlSet],
                        cls: str, notes: dict[str, BlockNotes], params: AnalysisParams,
                        squad: dict[str, dict[tuple[str, str], list[ControlSet]]] | None = None) -> pd.DataFrame:
    """``block_effects`` rows, raw and (for the economy index) calibrated side by side."""
    frame = effects_frame(fits)
    extra = []
    cals: dict[tuple[str, str], Calibration] = {}
    for ids, fit in fits:
        key = (fit.effect.metric, fit.effect.method)
        if key not in CALIBRATED:
            extra.append({})
            continue
        if key not in cals:
            others = (squad or {}).get(cls, {}).get(key, [])
            cals[key] = calibration_for(controls.get(key, EMPTY_CONTROLS), cls,
                                        params.calibration_min_effective_controls, others)
        extra.append(verdict_columns(fit, METRICS[key[0]], cals[key], notes[ids["block_id"]], params))
    cal = pd.DataFrame(extra, columns=CALIBRATION_COLUMNS, index=frame.index)
    return pd.concat([frame, cal], axis=1)[BLOCK_EFFECT_COLUMNS]


def _controls(inc: pd.DataFrame, blocks: pd.DataFrame, ctx: EffectContext, athlete_id: str,
              cls: str) -> tuple[pd.DataFrame, dict[tuple[str, str], ControlSet]]:
    frames, sets = [], {}
    for metric, method in CALIBRATED:
        frame, cs = negative_controls(inc, blocks, ctx, metric, method, athlete_id)
        frames.append(frame.assign(calibration_class=cls, n_effective_controls=cs.n_effective))
        sets[(metric, method)] = replace(cs, calibration_class=cls)
    return pd.concat(frames, ignore_index=True)[PLACEBO_COLUMNS], sets


def exclude_runs(rows: pd.DataFrame, reasons: dict[str, str]) -> pd.DataFrame:
    """Mark the runs in ``reasons`` (activity_id -> reason) excluded (pure)."""
    if not reasons:
        return rows
    hit = rows["activity_id"].isin(list(reasons))
    rows = rows.copy()
    rows.loc[hit, "included"] = False
    rows.loc[hit, "exclusion_reason"] = rows.loc[hit, "activity_id"].map(reasons)
    return rows


def model_bins(results: list[RunResult], activity_ids: Iterable[str]) -> pd.DataFrame:
    """The economy model's bins (activity_id and :data:`~pipeline.analyze.economy.MODEL_BIN_COLUMNS`) of
    the runs in ``activity_ids``, in the order of ``results``: the bins
    :func:`~pipeline.analyze.economy.economy_bins` gives for those runs' steady samples concatenated."""
    keep = set(activity_ids)
    chosen = [r for r in results if r.row["activity_id"] in keep]
    ids = np.array([r.row["activity_id"] for r in chosen], dtype=object)
    counts = np.array([len(r.model_bins) for r in chosen], dtype=np.int64)
    values = (np.concatenate([r.model_bins for r in chosen]) if chosen
              else np.zeros((0, len(MODEL_BIN_COLUMNS))))
    frame = pd.DataFrame(values, columns=list(MODEL_BIN_COLUMNS))
    frame.insert(0, "activity_id", pd.Series(np.repeat(ids, counts), dtype="str"))
    return frame


def athlete_process(athlete_id: str, activities: pd.DataFrame, samples: Iterable[tuple[str, pd.DataFrame]],
                    strength_sessions: pd.DataFrame, strength_blocks: pd.DataFrame,
                    params: AnalysisParams | None = None, ref_speed_m_s: float | None = None) -> AthleteAnalysis:
    """Analyse one athlete.

    Parameters
    ----------
    activities : the athlete's ``activities`` rows (all sports); optional archive weather columns
        air_temperature_c, dew_point_c, relative_humidity_pct per run (NaN when unknown).
    samples : (activity_id, samples frame) pairs, e.g. one per running activity.
    strength_sessions : ``strength_sessions`` rows (for the weekly counts).
    strength_blocks : ``strength_blocks`` rows (from :func:`pipeline.analyze.blocks.strength_blocks_for_athlete`).
    ref_speed_m_s : athlete.toml reference speed; None -> median steady grade-adjusted speed of included runs.

    The block verdicts are calibrated with the athlete's own negative controls or the conservative
    default; :func:`recalibrate` redoes them with a squad's controls.
    """
    p = params or AnalysisParams()
    # 1. Every run cleaned and summarised on its own (model bins and pace range kept for included runs only).
    results, not_runs = athlete_runs(activities, samples, p)
    return athlete_from_runs(athlete_id, activities, results, not_runs, strength_sessions, strength_blocks, p,
                             ref_speed_m_s)


def athlete_from_runs(athlete_id: str, activities: pd.DataFrame, results: list[RunResult], not_runs: Counter,
                      strength_sessions: pd.DataFrame, strength_blocks: pd.DataFrame,
                      params: AnalysisParams | None = None, ref_speed_m_s: float | None = None) -> AthleteAnalysis:
    """The athlete-level steps of :func:`athlete_process` (steps 2-4), from the runs :func:`athlete_runs`
    cleaned (fresh or reused: the same :class:`~pipeline.analyze.runs.RunResult` either way)."""
    p = params or AnalysisParams()
    rows = _run_rows(results, activities)
    # 2. The athlete-level HR model: shared slope and drift, per-run intercept, heat -> economy index.
    model = None
    included = rows[rows["included"]]
    if len(included):
        v_ref = economy_ref_speed(included, ref_speed_m_s)
        ranges = {r.row["activity_id"]: r.gap_lag_range_m_s for r in results if r.included}
        rows = exclude_runs(rows, runs_outside_reference_range(ranges, v_ref, p))
        included = rows[rows["included"]]
    if len(included):
        model = economy_fit_bins(model_bins(results, included["activity_id"]), included, v_ref, p)
        rows = _apply_model(rows, model, p)
    rows = rows.sort_values(["start_time", "activity_id"]).reset_index(drop=True)
    # 3. Weekly volume, strength and median economy.
    is_run = ~rows["exclusion_reason"].fillna("").str.startswith("sport not recorded")
    weekly = weekly_summary(athlete_id, rows.assign(is_run=is_run), strength_sessions)
    # 4. Block effects, negative controls across the record, calibration and verdicts.
    inc = rows[rows["included"]]
    blocks = strength_blocks if strength_blocks is not None else pd.DataFrame(columns=["athlete_id", "block_id", "start_date"])
    ctx = effect_context(inc, blocks, model, p)
    cls = calibration_class(ctx.season.controlled, model is not None and model.heat.controlled)
    fits = block_effect_fits(inc, blocks, ctx)
    notes = _block_notes(rows, inc, blocks, ctx, model)
    placebo, controls = _controls(inc, blocks, ctx, athlete_id, cls)
    effects = _calibrated_effects(fits, controls, cls, notes, p)
    # 5. The headline's counterfactual as a curve: the same ITS fit (same context: season, heat), for the
    # report's timeline.
    trends = block_trends(inc, blocks, ctx)
    return AthleteAnalysis(athlete_id, rows, weekly, blocks, effects, placebo, model, not_runs, controls, cls, fits,
                           notes, p, block_trends=trends)


def squad_controls(sets: Iterable[ControlSet]) -> dict[str, dict[tuple[str, str], list[ControlSet]]]:
    """Control sets (e.g. every athlete's ``AthleteAnalysis.controls`` values) by calibration class and
    metric/method, for :func:`recalibrate`."""
    out: dict[str, dict[tuple[str, str], list[ControlSet]]] = {}
    for cs in sets:
        out.setdefault(cs.calibration_class, {}).setdefault((cs.metric, cs.method), []).append(cs)
    return out


def recalibrate(tables: AthleteAnalysis, squad: dict[str, dict[tuple[str, str], list[ControlSet]]]) -> AthleteAnalysis:
    """The second pass: the same raw estimates calibrated with the squad's pooled controls where the
    athlete's own are too few (the athlete's own sets are left out of its squad prior)."""
    others = {cls: {key: [c for c in sets if c.athlete_id != tables.athlete_id] for key, sets in by.items()}
              for cls, by in squad.items()}
    effects = _calibrated_effects(tables.fits, tables.controls, tables.calibration_class, tables.notes,
                                  tables.params, others)
    return replace(tables, block_effects=effects)


def stored_control_sets(placebo: pd.DataFrame) -> list[ControlSet]:
    """Control sets rebuilt from stored ``placebo_checks`` rows (athletes not re-analysed in this run).

    Their correlation is not stored; an equicorrelated matrix with the stored effective number
    (n^2 / sum R_ij^2 = n / (1 + (n - 1) r^2)) stands in for it, which keeps what the calibration uses:
    the controls' effective number.
    """
    out = []
    if placebo.empty:
        return out
    for (aid, metric, method), g in placebo.groupby(["athlete_id", "metric", "method"], sort=True):
        g = g[np.isfinite(g["change_pct"]) & np.isfinite(g["se_pct"])]
        n = len(g)
        if n == 0:
            continue
        n_eff = float(g["n_effective_controls"].iloc[0]) if "n_effective_controls" in g and np.isfinite(
            g["n_effective_controls"].iloc[0]) else 1.0
        r = float(np.sqrt(np.clip((n / max(n_eff, 1e-9) - 1) / (n - 1), 0.0, 0.998))) if n > 1 else 0.0
        corr = (1 - r) * np.eye(n) + r * np.ones((n, n))
        out.append(ControlSet(str(aid), np.log1p(g["change_pct"].to_numpy(float) / 100), g["se_pct"].to_numpy(float) / 100,
                              corr, str(g["calibration_class"].iloc[0]) if "calibration_class" in g else "none",
                              metric=str(metric), method=str(method)))
    return out

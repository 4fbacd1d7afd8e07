"""The counterfactual curve (block_trends) against the block_effects its row it comes from."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.effects import EffectContext, SeasonFit, block_effects, block_windows, effect_its
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.trends import block_trend, block_trends
from pipeline.warehouse.contract import columns

P = AnalysisParams()
BLOCK = pd.Timestamp("2024-05-06", tz="UTC")


def _runs(seed: int, trend_pct_per_week: float, step_pct: float, season_pct: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = np.arange(-16 * 7, 14 * 7, 7 / 4) + 0.3
    t_w = days / 7
    when = BLOCK + pd.to_timedelta(days, unit="D")
    doy = (when.day_of_year - 1 + when.hour / 24).to_numpy(dtype=float)
    y = 1.30 * (1 + trend_pct_per_week / 100 * t_w) * (1 + step_pct / 100 * (t_w >= 6)) * np.exp(
        rng.normal(0, 0.008, len(days)) + season_pct / 100 * np.sin(2 * np.pi * doy / 365.25))
    return pd.DataFrame({"athlete_id": "a", "start_time": when, "economy_m_per_beat": y})


def _at(curve: pd.DataFrame, column: str, t: float) -> float:
    """The curve's value at ``t`` weeks (log-linear between the daily points)."""
    return float(np.exp(np.interp(t, curve["weeks_from_block_start"], np.log(curve[column]))))


def _t_c(runs: pd.DataFrame) -> float:
    resp = runs["start_time"][(runs["start_time"] >= BLOCK + pd.Timedelta(weeks=6))
                              & (runs["start_time"] < BLOCK + pd.Timedelta(weeks=12))]
    return float(((resp - BLOCK) / pd.Timedelta(weeks=1)).mean())


@pytest.mark.parametrize("ci_method", ["cochrane_orcutt1949", "newey_west1987", "kunsch1989"])
def test_curve_meets_the_effect_row_at_the_response_runs_mean_time(ci_method):
    """The gap drawn on the timeline is the headline estimate: at t_c the trend equals baseline_value and
    the response level equals response_value of the same block_effects row."""
    p = AnalysisParams(ci_method=ci_method, bootstrap_reps=200)
    runs = _runs(3, trend_pct_per_week=0.15, step_pct=3.0)
    blocks = pd.DataFrame({"athlete_id": ["a"], "block_id": ["b1"], "start_date": [BLOCK.date()]})
    its = block_effects(runs, blocks, p, metrics=("economy_m_per_beat",)).query("method == 'its'").iloc[0]
    curve = block_trends(runs, blocks, EffectContext(p))
    assert list(curve.columns) == [c for c in columns("block_trends") if c != "analysis_run_id"]
    r = curve[curve["segment"] == "response"]
    t_c = _t_c(runs)
    trend_at, resp_at = _at(r, "trend_value", t_c), _at(r, "response_value", t_c)
    assert trend_at == pytest.approx(its["baseline_value"], rel=1e-9)
    assert resp_at == pytest.approx(its["response_value"], rel=1e-9)
    assert resp_at / trend_at - 1 == pytest.approx(its["change_pct"] / 100, rel=1e-9)
    # the planted trend and step are recovered; the band holds the trend and widens with extrapolation
    assert its["change_pct"] == pytest.approx(3.0, abs=1.0)
    assert (curve["trend_low"] <= curve["trend_value"]).all() and (curve["trend_value"] <= curve["trend_high"]).all()
    width = curve["trend_high"] - curve["trend_low"]
    assert width.iloc[-1] > 2 * width[curve["segment"] == "fit"].min()
    assert curve["response_value"].notna().eq(curve["segment"] == "response").all()


def test_with_the_season_the_curve_carries_it_and_the_gap_is_still_the_estimate():
    """A season-controlled athlete: the ITS runs on season-adjusted values; the curve puts the season back
    (so it follows the runs as measured), its band adds the harmonics' uncertainty, and the gap at t_c is
    still the row's change."""
    runs = _runs(5, trend_pct_per_week=0.0, step_pct=2.0, season_pct=4.0)
    season = SeasonFit(1, np.array([0.04, 0.0]), np.diag([1e-5, 1e-5]))
    ctx = replace(EffectContext(P), season_fit=season)
    w = block_windows(BLOCK, P)
    row = effect_its(runs, w, "economy_m_per_beat", ctx)
    curve = block_trend(runs, w, ctx=ctx)
    without = block_trend(runs, w, ctx=replace(ctx, season_fit=SeasonFit(1, season.coef, np.zeros((2, 2)))))
    t_c = _t_c(runs)
    r = curve[curve["segment"] == "response"]
    mid_t_c = BLOCK + pd.Timedelta(weeks=t_c)
    factor = float(np.exp(season.offset(pd.Series([mid_t_c]))[0]))
    assert _at(r, "trend_value", t_c) == pytest.approx(row.baseline_value * factor, rel=1e-5)
    assert _at(r, "response_value", t_c) / _at(r, "trend_value", t_c) - 1 == pytest.approx(row.change_pct / 100,
                                                                                            rel=1e-5)
    # the season is in the curve: the trend follows the planted 4 % sine (trend itself flat)
    day_t = pd.Series(pd.to_datetime(curve["day"]).dt.tz_localize("UTC") + pd.Timedelta(hours=12))
    planted = np.exp(0.04 * np.sin(2 * np.pi * (day_t.dt.day_of_year - 1 + 0.5) / 365.25))
    ratio = curve["trend_value"].to_numpy() / planted.to_numpy()
    assert ratio.std() / ratio.mean() < 0.004
    # the harmonics' covariance widens the band
    assert ((curve["trend_high"] - curve["trend_low"]) > (without["trend_high"] - without["trend_low"])).all()


def test_segments_days_and_no_curve_without_enough_runs():
    runs = _runs(4, 0.0, 0.0)
    w = block_windows(BLOCK, P)
    curve = block_trend(runs, w, ctx=EffectContext(P))
    assert curve["day"].iloc[0] == runs["start_time"].min().date()     # from the first run of the fit
    assert curve["day"].iloc[-1] == (w.response_end - pd.Timedelta(days=1)).date()
    assert set(curve["segment"]) == {"fit", "ramp", "response"}
    assert (curve["day"] >= BLOCK.date()).eq(curve["segment"] != "fit").all()
    # the band of a flat series covers its level
    assert ((curve["trend_low"] < 1.30 * 1.004) & (curve["trend_high"] > 1.30 * 0.996)).mean() > 0.9
    few = runs[runs["start_time"] > BLOCK + pd.Timedelta(weeks=10)]
    assert block_trend(few, w, ctx=EffectContext(P)).empty

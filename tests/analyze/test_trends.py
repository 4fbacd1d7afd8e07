"""The counterfactual curve (block_trends) against the block_effects its row it comes from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.effects import block_effects, block_windows
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.trends import block_trend, block_trends
from pipeline.warehouse.contract import columns

P = AnalysisParams()
BLOCK = pd.Timestamp("2024-05-06", tz="UTC")


def _runs(seed: int, trend_pct_per_week: float, step_pct: float, ci_method: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = np.arange(-16 * 7, 14 * 7, 7 / 4) + 0.3
    t_w = days / 7
    y = 1.30 * (1 + trend_pct_per_week / 100 * t_w) * (1 + step_pct / 100 * (t_w >= 6)) * np.exp(
        rng.normal(0, 0.008, len(days)))
    return pd.DataFrame({"athlete_id": "a", "start_time": BLOCK + pd.to_timedelta(days, unit="D"),
                         "economy_m_per_beat": y})


@pytest.mark.parametrize("ci_method", ["cochrane_orcutt1949", "newey_west1987", "kunsch1989"])
def test_curve_meets_the_effect_row_at_the_response_runs_mean_time(ci_method):
    """The gap drawn on the timeline is the headline estimate: at t_c the trend equals baseline_value and
    the response level equals response_value of the same block_effects row."""
    p = AnalysisParams(ci_method=ci_method, bootstrap_reps=200)
    runs = _runs(3, trend_pct_per_week=0.15, step_pct=3.0)
    blocks = pd.DataFrame({"athlete_id": ["a"], "block_id": ["b1"], "start_date": [BLOCK.date()]})
    its = block_effects(runs, blocks, p, metrics=("economy_m_per_beat",)).query("method == 'its'").iloc[0]
    curve = block_trends(runs, blocks, p)
    assert list(curve.columns) == [c for c in columns("block_trends") if c != "analysis_run_id"]
    resp_times = runs["start_time"][(runs["start_time"] >= BLOCK + pd.Timedelta(weeks=6))
                                    & (runs["start_time"] < BLOCK + pd.Timedelta(weeks=12))]
    t_c = float(((resp_times - BLOCK) / pd.Timedelta(weeks=1)).mean())
    r = curve[curve["segment"] == "response"]
    # Both lines are straight on the log scale: interpolate them to t_c.
    trend_at = np.exp(np.interp(t_c, r["weeks_from_block_start"], np.log(r["trend_value"])))
    resp_at = np.exp(np.interp(t_c, r["weeks_from_block_start"], np.log(r["response_value"])))
    assert trend_at == pytest.approx(its["baseline_value"], rel=1e-9)
    assert resp_at == pytest.approx(its["response_value"], rel=1e-9)
    assert resp_at / trend_at - 1 == pytest.approx(its["change_pct"] / 100, rel=1e-9)
    # the planted trend and step are recovered; the band holds the trend and widens with extrapolation
    assert its["change_pct"] == pytest.approx(3.0, abs=1.0)
    assert (curve["trend_low"] <= curve["trend_value"]).all() and (curve["trend_value"] <= curve["trend_high"]).all()
    width = curve["trend_high"] - curve["trend_low"]
    assert width.iloc[-1] > 2 * width[curve["segment"] == "fit"].min()
    assert curve["response_value"].notna().eq(curve["segment"] == "response").all()


def test_segments_days_and_no_curve_without_enough_runs():
    runs = _runs(4, 0.0, 0.0)
    w = block_windows(BLOCK, P)
    curve = block_trend(runs, w, params=P)
    assert curve["day"].iloc[0] == runs["start_time"].min().date()     # from the first run of the fit
    assert curve["day"].iloc[-1] == (w.response_end - pd.Timedelta(days=1)).date()
    assert set(curve["segment"]) == {"fit", "ramp", "response"}
    assert (curve["day"] >= BLOCK.date()).eq(curve["segment"] != "fit").all()
    # the band of a flat series covers its level
    assert ((curve["trend_low"] < 1.30 * 1.004) & (curve["trend_high"] > 1.30 * 0.996)).mean() > 0.9
    few = runs[runs["start_time"] > BLOCK + pd.Timedelta(weeks=10)]
    assert block_trend(few, w, params=P).empty

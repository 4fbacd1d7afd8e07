"""Block-effect statistics on constructed run series with known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.effects import (
    EffectContext,
    block_effects,
    block_windows,
    effect_its,
    effect_verdict,
    effect_window,
)
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.regression import coef_ci
from pipeline.errors import PipelineError

P = AnalysisParams()
C = EffectContext(P)
BLOCK = pd.Timestamp("2024-05-06", tz="UTC")


def _series(rng, weeks_before=16, weeks_after=14, per_week=4, level=1.30, trend_pct_per_week=0.0, step_pct=0.0,
            noise_pct=0.8, ar=0.0, metric="economy_m_per_beat"):
    days = np.arange(-weeks_before * 7, weeks_after * 7, 7 / per_week) + 0.3
    t_w = days / 7
    e = np.zeros(len(days))
    shocks = rng.normal(0, noise_pct / 100 * np.sqrt(1 - ar**2), len(days))
    for k in range(len(days)):
        e[k] = (ar * e[k - 1] if k else 0) + shocks[k]
    resp = (t_w >= 6) & (t_w < 12)
    y = level * (1 + trend_pct_per_week / 100 * t_w) * (1 + step_pct / 100 * (t_w >= 6)) * np.exp(e)
    return pd.DataFrame({"start_time": BLOCK + pd.to_timedelta(days, unit="D"), metric: y}), resp


@pytest.mark.parametrize("change, lo, hi, nb, nr, verdict", [
    (3.0, 1.0, 5.0, 20, 20, "gain"),
    (0.8, 0.2, 1.4, 20, 20, "no clear change"),     # CI above 0 but below the SWC
    (3.0, -0.5, 6.5, 20, 20, "no clear change"),
    (-3.0, -5.0, -1.0, 20, 20, "loss"),
    (3.0, 1.0, 5.0, 7, 20, "insufficient data"),
    (3.0, 1.0, 5.0, 20, 7, "insufficient data"),
    (np.nan, np.nan, np.nan, 20, 20, "insufficient data"),
])
def test_verdict_rule(change, lo, hi, nb, nr, verdict):
    assert effect_verdict(change, lo, hi, nb, nr, swc_pct=1.0, min_runs=8) == verdict


def test_windows_default_dates():
    w = block_windows("2024-05-06", P)
    assert w.baseline_start == BLOCK - pd.Timedelta(weeks=6) and w.baseline_end == BLOCK
    assert w.response_start == BLOCK + pd.Timedelta(weeks=6) and w.response_end == BLOCK + pd.Timedelta(weeks=12)
    assert w.its_pre_start == BLOCK - pd.Timedelta(weeks=16)
    assert block_windows("2024-05-06", P, not_before="2024-04-01").its_pre_start == pd.Timestamp("2024-04-01", tz="UTC")


def test_window_recovers_a_step():
    runs, _ = _series(np.random.default_rng(1), step_pct=3.0)
    e = effect_window(runs, block_windows(BLOCK, P), "economy_m_per_beat", C)
    assert e.n_baseline == 24 and e.n_response == 24
    assert e.change_pct == pytest.approx(3.0, abs=0.6)
    assert e.ci_low_pct < 3.0 < e.ci_high_pct and e.verdict == "gain"
    assert e.response_value / e.baseline_value - 1 == pytest.approx(e.change_pct / 100)


def test_its_separates_a_step_from_a_pre_existing_trend():
    # Economy improves 0.15 %/week from ordinary running; no block effect.
    runs, _ = _series(np.random.default_rng(2), trend_pct_per_week=0.15)
    w = block_windows(BLOCK, P)
    window = effect_window(runs, w, "economy_m_per_beat", C)
    its = effect_its(runs, w, "economy_m_per_beat", C)
    assert window.change_pct > 1.5 and window.verdict == "gain"       # the naive comparison is fooled
    assert its.ci_low_pct < 0 < its.ci_high_pct and its.verdict == "no clear change"
    # Same trend plus a 3 % step: ITS finds the step beyond the trend.
    runs, _ = _series(np.random.default_rng(3), trend_pct_per_week=0.15, step_pct=3.0)
    its = effect_its(runs, w, "economy_m_per_beat", C)
    assert its.change_pct == pytest.approx(3.0, abs=1.0)
    assert its.ci_low_pct < 3.0 < its.ci_high_pct and its.verdict == "gain"
    # The ITS interval is wider than the window one: extrapolating the trend costs precision.
    window = effect_window(runs, w, "economy_m_per_beat", C)
    assert its.ci_high_pct - its.ci_low_pct > window.ci_high_pct - window.ci_low_pct


def test_sign_conventions_lower_hr_and_lower_decoupling_are_gains():
    rng = np.random.default_rng(4)
    hr, _ = _series(rng, level=140.0, step_pct=-3.0, metric="hr_at_ref_bpm")
    e = effect_window(hr, block_windows(BLOCK, P), "hr_at_ref_bpm", C)
    assert e.change_pct == pytest.approx(3.0, abs=0.6) and e.verdict == "gain"
    days = np.arange(-42, 84, 2.0)
    dec = pd.DataFrame({"start_time": BLOCK + pd.to_timedelta(days, unit="D"),
                        "decoupling_pct": np.where(days >= 42, 3.0, 5.0) + rng.normal(0, 0.3, len(days))})
    e = effect_window(dec, block_windows(BLOCK, P), "decoupling_pct", C)
    assert e.change_pct == pytest.approx(2.0, abs=0.3)   # percentage points, positive = less drift
    assert e.verdict == "gain"
    with pytest.raises(ValueError, match="economy_m_per_beat"):
        effect_window(dec, block_windows(BLOCK, P), "vo2max", C)


def test_insufficient_data():
    runs, _ = _series(np.random.default_rng(5), weeks_after=7)   # response window barely started
    for method in (effect_window, effect_its):
        assert method(runs, block_windows(BLOCK, P), "economy_m_per_beat", C).verdict == "insufficient data"


@pytest.mark.slow
@pytest.mark.parametrize("ci_method", ["cochrane_orcutt1949", "newey_west1987", "kunsch1989"])
def test_false_gain_rate_under_autocorrelated_noise(ci_method):
    """No effect, AR(1) noise between runs (phi 0.3), a trend: the ITS claims 'gain' in <= ~5 % of series."""
    rng = np.random.default_rng(6)
    p = replace(P, ci_method=ci_method, bootstrap_reps=199)
    n, gains, covered = 200, 0, 0
    for _ in range(n):
        runs, _ = _series(rng, trend_pct_per_week=0.1, ar=0.3)
        e = effect_its(runs, block_windows(BLOCK, p), "economy_m_per_beat", EffectContext(p))
        gains += e.verdict == "gain"
        covered += e.ci_low_pct <= 0 <= e.ci_high_pct
    assert gains / n <= 0.05
    # Nominal 95 %: AR(1) GLS holds it; small-sample HAC and the block bootstrap are known to be optimistic.
    assert covered / n >= (0.91 if ci_method == "cochrane_orcutt1949" else 0.85)


def test_block_effects_rows():
    runs, _ = _series(np.random.default_rng(7), weeks_before=30, weeks_after=14)
    runs["athlete_id"] = "ath"
    blocks = pd.DataFrame({"athlete_id": ["ath"], "block_id": ["B1"], "start_date": [BLOCK.date()]})
    eff = block_effects(runs, blocks, P, metrics=("economy_m_per_beat",))
    assert sorted(eff["method"]) == ["its", "window"] and (eff["block_id"] == "B1").all()
    # se_pct is the CI's half-width over the t quantile, on the log scale x 100 (~percent).
    its = eff[eff["method"] == "its"].iloc[0]
    half = (np.log1p(its["ci_high_pct"] / 100) - np.log1p(its["ci_low_pct"] / 100)) / 2 * 100
    assert half / its["se_pct"] == pytest.approx(2.0, abs=0.1)


def test_params_from_config():
    p = AnalysisParams.from_config({"swc_pct": 0.5, "min_runs": 10, "heat_method": "none"})
    assert p.swc_pct == 0.5 and p.min_runs == 10 and p.heat_method == "none"
    with pytest.raises(PipelineError, match="unknown key.*swc_percent.*valid keys:.*swc_pct"):
        AnalysisParams.from_config({"swc_percent": 1})
    with pytest.raises(PipelineError, match="must be a number"):
        AnalysisParams.from_config({"min_runs": "eight"})
    with pytest.raises(PipelineError, match="ci_method"):
        AnalysisParams.from_config({"ci_method": "bootstrap"})


def test_heat_coefficient_uncertainty_widens_the_ci_of_heat_adjusted_metrics_only():
    """Heat arrives with the response window: how much the economy estimate depends on the heat coefficient
    is the same estimator applied to excess/HR; times the coefficient's SE, it is added to the CI. With
    bootstrap draws of each run's adjustment, their spread through the same weights is added instead."""
    rng = np.random.default_rng(21)
    runs, resp = _series(rng, weeks_before=16, weeks_after=14)
    t_w = (runs["start_time"] - BLOCK).dt.days.to_numpy() / 7
    runs["heat_excess_c"] = np.clip(t_w, 0, None) * 0.8 + np.clip(rng.normal(0, 2, len(runs)), 0, None)
    runs["heat_model"] = "device"
    runs["hr_at_ref_bpm"] = 140.0
    runs["activity_id"] = [f"r{k}" for k in range(len(runs))]
    w = block_windows(BLOCK, P)
    gammas = 0.5 + 0.1 * rng.standard_normal(400)            # bootstrap draws of gamma: SE 0.1 bpm/C
    draws = pd.DataFrame(np.outer(runs["heat_excess_c"], gammas), index=runs["activity_id"])
    for method in (effect_its, effect_window):
        plain = method(runs, w, "economy_m_per_beat", C)
        for ctx in (EffectContext(P, heat_se={"device": 0.1}), EffectContext(P, heat_draws=draws)):
            wide = method(runs, w, "economy_m_per_beat", ctx)
            assert wide.change_pct == pytest.approx(plain.change_pct)            # same estimate
            assert wide.ci_low_pct < plain.ci_low_pct and wide.ci_high_pct > plain.ci_high_pct
            # Roughly: 0.1 bpm/C x ~7 C more excess in the response window / 140 bpm ~ 0.5 % extra SE.
            extra = ((wide.ci_high_pct - wide.ci_low_pct) ** 2 - (plain.ci_high_pct - plain.ci_low_pct) ** 2) ** 0.5 / 3.9
            assert 0.2 < extra < 1.0
            raw = method(runs.assign(m_per_beat=runs["economy_m_per_beat"]), w, "m_per_beat", ctx)
            raw0 = method(runs.assign(m_per_beat=runs["economy_m_per_beat"]), w, "m_per_beat", C)
            assert raw.ci_low_pct == pytest.approx(raw0.ci_low_pct)             # raw metrics: not heat-adjusted


def test_gls_weights_reproduce_the_estimate():
    rng = np.random.default_rng(22)
    runs, _ = _series(rng, ar=0.4)
    y = np.log(runs["economy_m_per_beat"].to_numpy())
    t = np.arange(len(y), dtype=float)
    X = np.column_stack([np.ones(len(y)), t, (t > 60).astype(float)])
    for method in ("cochrane_orcutt1949", "newey_west1987"):
        fit = coef_ci(X, y, 2, replace(P, ci_method=method))
        assert fit.weights @ y == pytest.approx(fit.est, abs=1e-10)
    # The estimate's weights per run come back with the effect (for the controls' correlation).
    e = effect_its(runs, block_windows(BLOCK, P), "economy_m_per_beat", C)
    y_fit = np.log(runs.loc[e.weights.index, "economy_m_per_beat"].to_numpy())
    assert e.weights.to_numpy() @ y_fit == pytest.approx(e.theta, abs=1e-10)

"""Empirical calibration against negative controls: the systematic-error fit, its sources, and that it is
not over-confident when neighbouring controls share most of their data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.calibration import (
    DEFAULT_TAU_PCT,
    calibrate,
    calibration_for,
)
from pipeline.analyze.controls import ControlSet, control_correlation, fake_starts

MIN_EFF = 4.0


def _independent(theta, se) -> ControlSet:
    theta, se = np.asarray(theta, float), np.broadcast_to(np.asarray(se, float), np.shape(theta)).copy()
    return ControlSet("a", theta, se, np.eye(len(theta)), "heat", "economy_m_per_beat", "its")


def test_many_independent_controls_recover_mu_and_tau():
    rng = np.random.default_rng(1)
    mu, tau, se = 0.01, 0.008, 0.004
    theta = mu + tau * rng.standard_normal(200) + se * rng.standard_normal(200)
    cal = calibration_for(_independent(theta, se), "heat", MIN_EFF)
    assert cal.source == "own" and cal.n_controls == 200 and cal.n_effective == pytest.approx(200)
    assert cal.mu == pytest.approx(mu, abs=0.002) and cal.tau == pytest.approx(tau, abs=0.0015)
    # Calibrated: the systematic mean removed, the spread added.
    c = calibrate(0.03, 0.004, cal)
    assert c.theta == pytest.approx(0.03 - cal.mu, abs=1e-4)
    assert c.se == pytest.approx(np.sqrt(0.004 ** 2 + cal.tau ** 2), rel=0.1)
    assert c.lo < c.theta < c.hi and (c.hi - c.lo) / (2 * c.se) == pytest.approx(1.96, abs=0.1)


def test_no_controls_fall_back_to_the_conservative_default_and_a_squad_beats_it():
    none = _independent([], 0.005)
    cal = calibration_for(none, "none", MIN_EFF)
    assert cal.source == "default" and cal.n_controls == 0
    assert cal.mu == pytest.approx(0.0, abs=1e-9)
    # mu and tau together have the default's root-mean-square
    assert np.hypot(cal.tau, np.sqrt(cal.post.weights @ cal.post.var)) * 100 == pytest.approx(DEFAULT_TAU_PCT["none"], rel=0.1)
    # A squad of other athletes with many controls of small systematic error: their distribution is used.
    rng = np.random.default_rng(2)
    squad = [_independent(0.002 * rng.standard_normal(10) + 0.003 * rng.standard_normal(10), 0.003) for _ in range(5)]
    cal = calibration_for(none, "season", MIN_EFF, squad)
    assert cal.source == "squad" and cal.tau < 0.004
    c_default, c_squad = calibrate(0.02, 0.005, calibration_for(none, "season", MIN_EFF)), calibrate(0.02, 0.005, cal)
    assert c_squad.hi - c_squad.lo < (c_default.hi - c_default.lo) / 2


def test_too_few_own_controls_are_not_used_and_no_squad_without_heat_or_season():
    """Three overlapping controls that all miss by ~-3 % (spring fakes of a short record whose heat fools
    the method) say little about a summer block's error: the default is used as it is. A squad of records
    shorter than a year is not pooled either (their errors depend on the time of year); of season-
    controlled records it is."""
    cs = ControlSet("a", np.array([-0.03, -0.028, -0.033]), np.full(3, 0.006), np.eye(3) * 0.5 + 0.5, "heat")
    assert cs.n_effective < MIN_EFF
    cal = calibration_for(cs, "heat", MIN_EFF)
    assert cal.source == "default" and cal.mu == pytest.approx(0.0, abs=1e-9) and cal.n_controls == 3
    rng = np.random.default_rng(4)
    squad = [_independent(0.002 * rng.standard_normal(10), 0.003) for _ in range(5)]
    assert calibration_for(cs, "none", MIN_EFF, squad).source == "default"
    assert calibration_for(cs, "heat", MIN_EFF, squad).source == "default"
    assert calibration_for(cs, "season", MIN_EFF, squad).source == "squad"


def _synthetic_controls(rng, n_runs=240, wander_sd=0.012, wander_tau=20.0, noise_sd=0.02, step=8, win=24):
    """A record of runs whose level wanders slowly (an OU process: the systematic error of a before/after
    comparison) plus run noise; window estimates (mean of the next `win` runs after a gap minus the mean of
    the `win` before) at fake starts every `step` runs, and one real start in a held-out stretch."""
    phi = np.exp(-1 / wander_tau)
    w = np.zeros(n_runs)
    w[0] = rng.normal(0, wander_sd)
    for k in range(1, n_runs):
        w[k] = phi * w[k - 1] + rng.normal(0, wander_sd * np.sqrt(1 - phi ** 2))
    y = w + rng.normal(0, noise_sd, n_runs)
    idx = pd.RangeIndex(n_runs)

    def est(f):
        wt = np.zeros(n_runs)
        wt[f - win:f] = -1 / win
        wt[f + win // 2:f + win // 2 + win] = 1 / win
        return float(wt @ y), noise_sd * np.sqrt(2 / win), pd.Series(wt, index=idx)[wt != 0]

    starts = range(win, n_runs - 2 * win, step)
    real = n_runs - 2 * win + step // 2
    fits = [est(f) for f in starts if abs(f - real) >= 2 * win]
    corr = control_correlation([f[2] for f in fits], idx, 0.0)
    cs = ControlSet("a", np.array([f[0] for f in fits]), np.array([f[1] for f in fits]), corr, "heat")
    theta, se, _ = est(real)
    return cs, theta, se


def test_calibration_with_overlapping_controls_is_not_over_confident():
    """Neighbouring fake starts share most of their runs. Modelled with their correlation, the calibrated
    CI of a null block covers the truth (0) at about the nominal rate; treating the same controls as
    independent draws (the naive fit) is over-confident."""
    rng = np.random.default_rng(3)
    covered = naive_covered = uncal_covered = 0
    n_eff = []
    reps = 300
    for _ in range(reps):
        cs, theta, se = _synthetic_controls(rng)
        n_eff.append(cs.n_effective)
        c = calibrate(theta, se, calibration_for(cs, "heat", MIN_EFF))
        covered += c.lo <= 0 <= c.hi
        naive = calibrate(theta, se, calibration_for(ControlSet("a", cs.theta, cs.se, np.eye(cs.n), "heat"),
                                                     "heat", MIN_EFF))
        naive_covered += naive.lo <= 0 <= naive.hi
        uncal_covered += abs(theta) <= 1.96 * se
    assert np.mean(n_eff) < 0.5 * cs.n                      # correlated: worth far fewer than their count
    assert covered / reps >= 0.93                            # nominal 95 %
    assert uncal_covered / reps < 0.85                       # the raw CI ignores the wander
    assert naive_covered / reps < covered / reps


def test_fake_starts_span_the_record_and_avoid_real_blocks():
    t = pd.Series(pd.date_range("2023-01-02", "2024-12-29", freq="2D", tz="UTC"))
    blocks = pd.DataFrame({"block_id": ["B1", "B2"], "start_date": [pd.Timestamp("2023-06-05"),
                                                                    pd.Timestamp("2024-03-04")]})
    fs = fake_starts(t, blocks, 2.0, 6.0, 12.0)
    starts = pd.Series([f.start for f in fs])
    assert {f.position for f in fs} == {"before", "between", "after"}
    span = pd.Timedelta(weeks=12)
    for s in pd.to_datetime(blocks["start_date"]).dt.tz_localize("UTC"):
        # never overlapping a real block's ramp and response window
        assert ((starts + span <= s) | (starts >= s + span)).all()
    # 2 weeks apart within each stretch, and each with >= 6 weeks of its own pre-period
    assert set(np.diff(starts.to_numpy()).astype("timedelta64[D]").astype(int)) >= {14}
    for f in fs:
        assert f.start - f.floor >= pd.Timedelta(weeks=6)
        assert f.start + span <= t.max()
    # Without blocks: controls all the same (athlete-level, for the squad)
    fs = fake_starts(t, blocks.iloc[0:0], 2.0, 6.0, 12.0)
    assert fs and {f.position for f in fs} == {"no block"} and {f.block_id for f in fs} == {""}

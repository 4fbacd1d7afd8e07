"""The simulator's physics and bookkeeping, checked on what it generates (not on its formulas)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.demo.physiology import (
    grade_adjusted_speed_m_s,
    ornstein_uhlenbeck,
)
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.formulas import minetti2002_cost
from pipeline.ingest.parsed import ACTIVITY_COLUMNS, SAMPLE_COLUMNS, STRENGTH_SESSION_COLUMNS, STRENGTH_SET_COLUMNS


@pytest.fixture(scope="module")
def null_athlete():
    return simulate_athlete("null", seed=11, sample_interval_s=2.0, keep_traces=True)


@pytest.fixture(scope="module")
def heat_athlete():
    return simulate_athlete("heat", seed=12, sample_interval_s=5.0, keep_traces=True)


def test_frames_have_the_ingest_shape(null_athlete):
    a = null_athlete
    assert list(a.activities.columns) == ACTIVITY_COLUMNS
    assert list(a.samples.columns) == SAMPLE_COLUMNS
    assert list(a.strength_sessions.columns) == STRENGTH_SESSION_COLUMNS
    assert list(a.strength_sets.columns) == STRENGTH_SET_COLUMNS
    assert str(a.activities["start_time"].dt.tz) == "UTC"
    assert str(a.samples["ts"].dt.tz) == "UTC"
    assert set(a.activities["sport"]) == {"running"}
    assert set(a.activities["sub_sport"]) <= {"road", "trail"}
    assert set(a.activities["device"]) == {"simulated"}
    assert a.activities["start_time"].is_unique
    # ~4 runs a week over the record
    assert 3.5 <= len(a.activities) / a.profile.weeks <= 5.0
    assert a.activities["n_samples"].sum() == len(a.samples)
    assert set(a.strength_sets["set_type"]) == {"warmup", "working"}


def test_same_seed_same_frames_other_seed_differs():
    one = simulate_athlete("gain", seed=5, sample_interval_s=5.0)
    two = simulate_athlete("gain", seed=5, sample_interval_s=5.0)
    pd.testing.assert_frame_equal(one.samples, two.samples)
    pd.testing.assert_frame_equal(one.activities, two.activities)
    pd.testing.assert_frame_equal(one.truth.truth_runs, two.truth.truth_runs)
    other = simulate_athlete("gain", seed=6, sample_interval_s=5.0)
    assert not one.activities["start_time"].equals(other.activities["start_time"])


def test_schedule_and_truth_do_not_depend_on_sample_interval(null_athlete):
    coarse = simulate_athlete("null", seed=11, sample_interval_s=5.0)
    pd.testing.assert_frame_equal(
        coarse.truth.truth_runs.drop(columns=["mean_speed_m_s"]),
        null_athlete.truth.truth_runs.drop(columns=["mean_speed_m_s"]))


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ValueError, match="gain, heat, faster, null"):
        simulate_athlete("nope", seed=1)


def test_minetti_cost_and_gap():
    assert minetti2002_cost(0.0) == pytest.approx(3.6)
    # the polynomial by hand at ±10 %: 0.001554 ∓ 0.00304 ∓ 0.0433 + 0.463 ± 1.95 + 3.6
    assert minetti2002_cost(0.10) == pytest.approx(5.968214)
    assert minetti2002_cost(-0.10) == pytest.approx(2.151706)
    assert grade_adjusted_speed_m_s(3.0, 0.05) > 3.0 > grade_adjusted_speed_m_s(3.0, -0.05)


def test_ou_noise_wanders_rather_than_jitters():
    x = ornstein_uhlenbeck(np.random.default_rng(0), 20_000, 1.0, 60.0, 3.0)
    lag10 = np.corrcoef(x[:-10], x[10:])[0, 1]
    assert x.std() == pytest.approx(3.0, rel=0.15)
    assert lag10 == pytest.approx(np.exp(-10 / 60), abs=0.05)


def _steady_samples(athlete) -> pd.DataFrame:
    """Samples after 10 min, moving, no cadence lock, GAP steady over the last 2 min (trace values)."""
    rows = []
    for aid, tr in athlete.traces.items():
        g = pd.Series(tr.gap_m_s)
        dt_s = tr.elapsed_s[1]
        win = int(120 / dt_s)
        steady = (g.rolling(win).std() < 0.05).to_numpy()
        keep = tr.moving & tr.recorded & ~tr.cadence_lock & (tr.elapsed_s > 600) & steady
        rows.append(pd.DataFrame({"activity_id": aid, "gap": tr.gap_m_s[keep], "elapsed_h": tr.elapsed_s[keep] / 3600,
                                  "hr_true": tr.hr_true_bpm[keep]}))
    return pd.concat(rows, ignore_index=True)


def test_steady_state_hr_rises_with_gap_at_the_intended_slope(null_athlete):
    df = _steady_samples(null_athlete)
    # within-run regression (run fixed effects) of HR on GAP and elapsed time
    cols = ["hr_true", "gap", "elapsed_h"]
    demeaned = df[cols] - df.groupby("activity_id")[cols].transform("mean")
    X = demeaned[["gap", "elapsed_h"]].to_numpy()
    slope, drift = np.linalg.lstsq(X, demeaned["hr_true"].to_numpy(), rcond=None)[0]
    p = PROFILES["null"]
    print(f"\nHR-GAP slope {slope:.2f} bpm per m/s (intended {p.hr_slope_bpm_per_m_s}), drift {drift:.2f} bpm/h")
    assert slope == pytest.approx(p.hr_slope_bpm_per_m_s, rel=0.12)
    assert drift == pytest.approx(p.drift_bpm_per_h, abs=1.5)


def test_recorded_hr_matches_model_except_cadence_lock(null_athlete):
    a = null_athlete
    locked = [aid for aid, tr in a.traces.items() if tr.cadence_lock.any()]
    assert locked, "some runs should have an optical-HR cadence-lock stretch"
    tr = a.traces[locked[0]]
    s = a.samples[a.samples.activity_id == locked[0]].reset_index(drop=True)
    lock = tr.cadence_lock[tr.recorded]
    assert 60 <= lock.sum() * a.sample_interval_s <= 182
    assert np.abs(s["heart_rate_bpm"][lock] - s["cadence_spm"][lock]).mean() < 2.5
    unlocked = ~lock
    assert np.abs(s["heart_rate_bpm"][unlocked] - tr.hr_true_bpm[tr.recorded][unlocked]).max() <= 3.0


def test_hr_relaxes_with_the_profile_time_constant():
    quiet = dataclasses.replace(PROFILES["null"], athlete_id="quiet", within_run_noise_sd_bpm=0.0,
                                drift_bpm_per_h=0.0, stops_per_hour=0.0, weeks=3)
    a = simulate_athlete(quiet, seed=3, sample_interval_s=1.0, keep_traces=True)
    tempo_id = a.truth.truth_runs.query("run_type == 'tempo' and route.str.startswith('flat')").activity_id.iloc[0]
    tr = a.traces[tempo_id]
    onset = np.flatnonzero(np.diff(tr.gap_m_s) > 0.05)
    onset = onset[tr.elapsed_s[onset] > 600][0]
    before, after = tr.hr_true_bpm[onset], tr.hr_steady_bpm[onset + 240]
    reached = (tr.hr_true_bpm[onset:onset + 240] - before) / (after - before)
    tau_s = tr.elapsed_s[onset + np.argmax(reached >= 1 - np.exp(-1))] - tr.elapsed_s[onset]
    print(f"\nHR time constant measured {tau_s:.0f} s (profile {quiet.hr_tau_s} s + ~4 s acceleration)")
    assert quiet.hr_tau_s - 5 <= tau_s <= quiet.hr_tau_s + 10


def test_heat_raises_hr_at_the_intended_rate(heat_athlete):
    a = heat_athlete
    rows = []
    for aid, tr in a.traces.items():
        keep = tr.moving & (tr.elapsed_s > 600)
        rows.append({"activity_id": aid, "gap": tr.gap_m_s[keep].mean(), "hr": tr.hr_true_bpm[keep].mean(),
                     "elapsed_h": tr.elapsed_s[keep].mean() / 3600})
    runs = pd.DataFrame(rows).merge(a.truth.truth_runs, on="activity_id")
    p = a.profile
    heat_c = np.maximum(runs["air_temperature_c"] - p.heat_threshold_c, 0.0)
    days = (runs["start_time"] - runs["start_time"].min()).dt.days
    X = np.column_stack([np.ones(len(runs)), runs["gap"], runs["elapsed_h"], heat_c, days])
    coef = np.linalg.lstsq(X, runs["hr"], rcond=None)[0]
    print(f"\nheat coefficient {coef[3]:.2f} bpm/°C (intended {p.heat_bpm_per_c})")
    assert coef[3] == pytest.approx(p.heat_bpm_per_c, abs=0.15)
    late = runs[runs.start_time.dt.date >= a.truth.block_end - dt.timedelta(weeks=4)]
    early = runs[runs.start_time.dt.date < a.truth.block_start - dt.timedelta(weeks=8)]
    assert late.air_temperature_c.mean() > 24 > 14 > early.air_temperature_c.mean()


def test_device_is_warmer_than_air_and_pauses_exist(null_athlete):
    a = null_athlete
    s = a.samples.merge(a.truth.truth_runs[["activity_id", "air_temperature_c", "auto_pause"]], on="activity_id")
    late = s[s.elapsed_s > 2400]
    excess = (late.temperature_c - late.air_temperature_c).groupby(late.activity_id).median()
    assert excess.between(3.5, 9.5).all()
    # stops: zero speed recorded (no auto-pause) or a timer gap (auto-pause)
    runs = a.truth.truth_runs.set_index("activity_id")
    gaps = a.samples.groupby("activity_id")["elapsed_s"].apply(lambda e: e.diff().max())
    zero = a.samples.assign(z=a.samples.speed_m_s == 0).groupby("activity_id")["z"].sum()
    assert (gaps[runs.auto_pause] > 10).sum() > 5
    assert (zero[~runs.auto_pause & runs.has_device_speed] > 3).sum() > 5

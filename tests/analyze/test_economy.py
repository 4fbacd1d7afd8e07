"""The athlete-level HR model: drift, heat and pace invariance on constructed runs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.economy import economy_fit
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import athlete_process
from pipeline.analyze.runs import run_settled_temperature_c
from analyze_builders import activity_row, make_run

P = AnalysisParams()
EMPTY_BLOCKS = pd.DataFrame(columns=["athlete_id", "block_id", "start_date"])


def _steady_frame(activity_id, minutes, speeds, a, b, drift_per_h, start_s=600.0):
    t = np.arange(start_s, start_s + minutes * 60.0, 5.0)
    v = np.asarray(speeds(t) if callable(speeds) else np.full(len(t), speeds), dtype=float)
    hr = a + b * v + drift_per_h * t / 3600.0
    return pd.DataFrame({"activity_id": activity_id, "t_s": t, "dt_s": 5.0, "gap_lag_m_s": v, "hr_bpm": hr})


def test_drift_and_slope_recovered_and_intercepts_referred_to_30_min():
    # Noise-free: HR = a_j + 22 v + 6 bpm/h * elapsed. Runs of very different length and pace.
    a = {"r1": 70.0, "r2": 72.0, "r3": 68.0, "r4": 71.0}
    steady = pd.concat([
        _steady_frame("r1", 30, 2.8, a["r1"], 22, 6),
        _steady_frame("r2", 110, 2.7, a["r2"], 22, 6),
        _steady_frame("r3", 45, lambda t: np.where(t < 1800, 2.8, 3.6), a["r3"], 22, 6),
        _steady_frame("r4", 50, lambda t: 2.6 + 0.3 * np.sin(t / 400), a["r4"], 22, 6),
    ])
    runs = pd.DataFrame({"activity_id": list(a), "start_time": pd.date_range("2024-03-01", periods=4, tz="UTC"),
                         "temperature_c": np.nan})
    m = economy_fit(steady, runs, 3.0, P)
    assert m.slope_bpm_per_m_s == pytest.approx(22.0, rel=1e-6)
    assert m.drift_bpm_per_h == pytest.approx(6.0, rel=1e-6)
    got = m.runs.set_index("activity_id")["hr_at_ref_bpm"]
    for run, intercept in a.items():
        # At v_ref = 3.0 m/s and 30 min elapsed, whatever the run's own length and pace.
        assert got[run] == pytest.approx(intercept + 22 * 3.0 + 6 * 0.5, abs=1e-6)
    assert m.runs.set_index("activity_id")["economy_m_per_beat"]["r1"] == pytest.approx(180 / got["r1"])


def _lagged_hr(t, v, a, b, drift, tau, rng, noise_sd=1.0):
    ss = a + b * v + drift * t / 3600
    hr = np.empty(len(t))
    hr[0] = 100.0
    for k in range(1, len(t)):
        hr[k] = hr[k - 1] + (1 - np.exp(-(t[k] - t[k - 1]) / tau)) * (ss[k] - hr[k - 1])
    return hr + rng.normal(0, noise_sd, len(t))


def test_economy_index_is_pace_invariant_while_pace_per_beat_is_not():
    """Same fitness (HR = 70 + 22 v + drift), runs at 2.7 and 3.5 m/s: equal index, raw ratio differs."""
    rng = np.random.default_rng(11)
    patterns = {
        "easy": lambda t: np.full(len(t), 2.7),
        "fast": lambda t: np.full(len(t), 3.5),
        "progression": lambda t: np.where(t < 1800, 2.7, 3.4),
        "tempo": lambda t: np.where((t >= 1200) & (t < 2400), 3.6, 2.8),
    }
    activities, samples, kinds = [], [], {}
    for k in range(16):
        kind = list(patterns)[k % 4]
        aid = f"r{k:02d}"
        start = pd.Timestamp("2024-03-01T07:00:00Z") + pd.Timedelta(days=2 * k)
        run = make_run(duration_s=3300, speed_m_s=patterns[kind], activity_id=aid, start=start.isoformat())
        t = run["elapsed_s"].to_numpy()
        # Generated with a 35 s HR time constant (the model assumes 45 s: robustness to a wrong guess).
        run["heart_rate_bpm"] = np.round(_lagged_hr(t, run["speed_m_s"].to_numpy(), 70, 22, 4.0, 35.0, rng))
        activities.append(activity_row(aid, start.isoformat(), elapsed_s=3300, distance_m=9000))
        samples.append((aid, run))
        kinds[aid] = kind
    res = athlete_process("ath", pd.DataFrame(activities), samples, pd.DataFrame(columns=["start_time"]),
                          EMPTY_BLOCKS, P, ref_speed_m_s=3.0)
    rm = res.run_metrics.assign(kind=lambda d: d["activity_id"].map(kinds))
    assert rm["included"].all()
    by = rm.groupby("kind")[["m_per_beat", "economy_m_per_beat", "hr_at_ref_bpm"]].mean()
    # Raw pace per beat rewards the faster run by ~9 %...
    assert by.loc["fast", "m_per_beat"] / by.loc["easy", "m_per_beat"] - 1 > 0.05
    # ...the economy index does not (within 0.5 %), and sits at the truth: 70 + 22*3 + 4*0.5 = 138 bpm.
    assert by.loc["fast", "economy_m_per_beat"] / by.loc["easy", "economy_m_per_beat"] - 1 == pytest.approx(0, abs=0.005)
    assert rm["hr_at_ref_bpm"].to_numpy() == pytest.approx(138.0, abs=1.0)
    assert res.model.slope_bpm_per_m_s == pytest.approx(22.0, rel=0.05)


def _device_trace(duration_s, settled_c, indoor_c=21.0, tau_s=600.0, dt_s=5.0):
    """A wrist device relaxing from indoor temperature to ``settled_c``, stored in whole degrees (FIT)."""
    t = np.arange(0.0, duration_s, dt_s)
    return t, np.round(settled_c + (indoor_c - settled_c) * np.exp(-t / tau_s))


@pytest.mark.parametrize("duration_min", [30, 45, 100])
@pytest.mark.parametrize("settled", [12.0, 21.5, 34.0])
def test_settled_temperature_removes_the_indoor_start(duration_min, settled):
    t, temp = _device_trace(duration_min * 60, settled)
    got = run_settled_temperature_c(t, temp, tau_s=600.0)
    assert got == pytest.approx(settled, abs=0.6)
    # The plain mean depends on the run's length and on indoor vs outdoor: that is what the fit removes.
    if abs(settled - 21.0) > 10 and duration_min <= 45:
        assert abs(temp.mean() - settled) > 1.0


def test_settled_temperature_edge_cases():
    assert np.isnan(run_settled_temperature_c(np.arange(10.0), np.full(10, np.nan)))
    assert run_settled_temperature_c(np.arange(0.0, 300, 5), np.full(60, 18.0)) == pytest.approx(18.0)  # too short
    t, temp = _device_trace(3600, 30.0)
    assert 21.0 <= run_settled_temperature_c(t, temp, tau_s=60.0) <= 33.0      # wrong tau: near the readings


def test_slope_is_not_flattened_by_speed_measurement_noise():
    """Tempo runs identify the slope; a noisy speed signal (GPS-like, ~40 s correlation) would flatten a
    least-squares slope. Instrumenting each 5-min bin by its neighbours recovers it."""
    rng = np.random.default_rng(12)
    frames = []
    for k in range(40):
        t = np.arange(600.0, 3600.0, 5.0)
        true_v = np.where((k % 3 == 0) & (t >= 1500) & (t < 2700), 3.6, 2.9)     # every third run a tempo run
        noise = np.zeros(len(t))
        for i in range(1, len(t)):
            noise[i] = 0.88 * noise[i - 1] + rng.normal(0, 0.15 * np.sqrt(1 - 0.88**2))
        hr = 70 + k * 0.1 + 22 * true_v + 4.0 * t / 3600 + rng.normal(0, 1.0, len(t))
        frames.append(pd.DataFrame({"activity_id": f"r{k:02d}", "t_s": t, "dt_s": 5.0,
                                    "gap_lag_m_s": true_v + noise, "hr_bpm": hr}))
    steady = pd.concat(frames)
    runs = pd.DataFrame({"activity_id": [f"r{k:02d}" for k in range(40)],
                         "start_time": pd.date_range("2024-03-01", periods=40, tz="UTC"), "temperature_c": np.nan})
    from dataclasses import replace
    ls = economy_fit(steady, runs, 3.0, replace(P, slope_method="within"))
    iv = economy_fit(steady, runs, 3.0, P)
    assert iv.slope_method == "adjacent_bins_iv" and ls.slope_method == "within"
    assert ls.slope_bpm_per_m_s < 21.3                               # attenuated
    assert iv.slope_bpm_per_m_s == pytest.approx(22.0, abs=0.4)
    # No within-run pace changes at all (only noise): the instrument is weak, least squares is used.
    flat = steady.assign(gap_lag_m_s=2.9 + rng.normal(0, 0.02, len(steady)))
    assert economy_fit(flat, runs, 3.0, P).slope_method == "within"


def test_model_from_each_runs_own_bins_equals_the_model_from_all_samples():
    """Runs are binned one at a time when cleaned (their samples are not kept): the model fitted on those
    bins concatenated is the one fitted on every steady sample, to the last bit (the run cache relies on it)."""
    from pipeline.analyze.economy import economy_fit_bins, economy_run_bins
    from pipeline.analyze.process import model_bins
    from pipeline.analyze.runs import RunResult

    rng = np.random.default_rng(5)
    frames = {}
    for i, (minutes, speed) in enumerate([(34, 2.8), (71, 3.1), (48, 2.6), (55, 3.4), (40, 2.9)]):
        t = np.arange(0.0, minutes * 60.0, 1.0) + rng.uniform(0, 1)
        v = speed + 0.3 * np.sin(t / (200 + 37 * i)) + rng.normal(0, 0.05, len(t))
        f = pd.DataFrame({"activity_id": f"r{i}", "t_s": t, "dt_s": np.r_[1.0, np.diff(t)], "gap_lag_m_s": v,
                          "hr_bpm": _lagged_hr(t, v, 70 + i, 22, 5, 30, rng)})
        f.loc[rng.choice(len(f), 40, replace=False), "hr_bpm"] = np.nan      # dropouts are left out of both
        frames[f"r{i}"] = f
    steady = pd.concat(frames.values(), ignore_index=True)
    runs = pd.DataFrame({"activity_id": ["r0", "r1", "r3", "r4"],           # r2 excluded: its bins are not used
                         "start_time": pd.date_range("2024-03-01", periods=4, tz="UTC"), "temperature_c": np.nan})
    whole = economy_fit(steady, runs, 3.0, P)
    results = [RunResult({"activity_id": a, "included": True}, economy_run_bins(f.drop(columns="activity_id"),
                                                                                  P.model_bin_s)) for a, f in frames.items()]
    binned = economy_fit_bins(model_bins(results, runs["activity_id"]), runs, 3.0, P)
    assert (binned.slope_bpm_per_m_s, binned.drift_bpm_per_h, binned.n_samples) == (
        whole.slope_bpm_per_m_s, whole.drift_bpm_per_h, whole.n_samples)
    pd.testing.assert_frame_equal(binned.runs, whole.runs, check_exact=True)


@pytest.mark.parametrize("bin_s", [300.0, 60.0, 17.3, 0.0])
def test_run_bins_equal_economy_bins_of_the_run(bin_s):
    """economy_run_bins computes economy_bins' products, grouped sums and quotients on arrays: the same bits."""
    from pipeline.analyze.economy import MODEL_BIN_COLUMNS, economy_bins, economy_run_bins

    rng = np.random.default_rng(int(bin_s * 10))
    for n in (0, 1, 7, 1800, 4321):
        t = np.cumsum(rng.uniform(0.5, 3.0, n)) + rng.uniform(0, 900)
        steady = pd.DataFrame({"t_s": t, "dt_s": rng.uniform(0.5, 3.0, n), "gap_lag_m_s": rng.normal(3, 0.2, n),
                               "hr_bpm": rng.normal(140, 3, n)})
        if n > 10:
            steady.loc[rng.choice(n, 10, replace=False), "hr_bpm"] = np.nan
        finite = steady[np.isfinite(steady["hr_bpm"])].assign(activity_id="r")
        expected = economy_bins(finite, bin_s)[list(MODEL_BIN_COLUMNS)].to_numpy(dtype=float)
        got = economy_run_bins(steady, bin_s)
        assert got.shape == expected.shape and np.array_equal(got, expected)

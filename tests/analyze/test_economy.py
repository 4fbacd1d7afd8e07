"""The athlete-level HR model: drift, heat and pace invariance on constructed runs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.economy import economy_fit, economy_heat_coefficient, economy_heat_fit, heat_excess_c
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


def test_heat_coefficient_from_day_to_day_weather_not_the_season():
    rng = np.random.default_rng(5)
    n = 140
    days = np.sort(rng.uniform(0, 245, n))
    season = 8 + 16 * np.clip((days - 60) / 120, 0, 1)                 # spring -> summer
    device_temp = season + rng.normal(0, 3.0, n) + 6.5                  # weather + wrist offset
    fitness = -0.03 * days                                              # HR falls as fitness grows
    excess = heat_excess_c(device_temp, P.ref_temperature_c)
    hr = 150 + fitness + 0.4 * excess + rng.normal(0, 0.8, n)
    start = pd.Series(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(days, unit="D"))
    gamma = economy_heat_coefficient(hr, excess, start, P.heat_detrend_days, P.heat_min_runs)
    assert gamma == pytest.approx(0.4, abs=0.1)
    # A naive pooled slope confounds heat with the season (fitness improves while it warms up).
    naive = np.polyfit(excess, hr, 1)[0]
    assert abs(naive - 0.4) > 0.15
    # Too few runs with a temperature: no heat term rather than a guess.
    assert economy_heat_coefficient(hr[:10], excess[:10], start[:10], 14, 20) == 0.0


def test_heat_methods():
    steady = pd.concat([_steady_frame(f"r{k}", 30, 3.0, 70.0, 22, 0) for k in range(3)])
    runs = pd.DataFrame({"activity_id": ["r0", "r1", "r2"], "start_time": pd.date_range("2024-06-01", periods=3, tz="UTC"),
                         "temperature_c": [P.ref_temperature_c + 10, P.ref_temperature_c, np.nan]})
    from dataclasses import replace
    fixed = economy_fit(steady, runs, 3.0, replace(P, heat_method="fixed", heat_bpm_per_c=0.5))
    hr = fixed.runs.set_index("activity_id")["hr_at_ref_bpm"]
    assert hr["r0"] == pytest.approx(136.0 - 0.5 * 10)   # 10 C above the threshold
    assert hr["r1"] == pytest.approx(136.0) and hr["r2"] == pytest.approx(136.0)
    with pytest.raises(ValueError, match="detrended"):
        economy_fit(steady, runs, 3.0, replace(P, heat_method="guess"))


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


def _heat_season(rng, n=150, gamma=0.4, sensor_sd=0.87):
    """Runs over a spring-summer season: air = season + weather; the device reads air + a per-run wrist
    warming of 5-8 C (SD 0.87); HR rises gamma bpm per C of air above 15 C; fitness improves."""
    days = np.sort(rng.uniform(0, 245, n))
    air = 10 + 18 * np.clip((days - 90) / 100, 0, 1) + rng.normal(0, 2.5, n)
    half = sensor_sd * np.sqrt(3)
    device = air + rng.uniform(6.5 - half, 6.5 + half, n)
    hr = 150 - 0.03 * days + gamma * np.maximum(0, air - 15) + rng.normal(0, 1.7, n)
    start = pd.Series(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(days, unit="D"))
    return hr, heat_excess_c(device, 21.5), start


def test_heat_coefficient_errors_in_variables_correction():
    """A wrist thermometer is a noisy proxy of air temperature: the plain slope is flattened (attenuation);
    the method-of-moments correction with the sensor SD restores it, and the jackknife SE is honest."""
    rng = np.random.default_rng(8)
    naive, corrected, ses = [], [], []
    for _ in range(40):
        hr, excess, start = _heat_season(rng)
        fit = economy_heat_fit(hr, excess, start, 14.0, 20, sensor_sd_c=0.87)
        naive.append(fit.naive_bpm_per_c)
        corrected.append(fit.gamma_bpm_per_c)
        ses.append(fit.se_bpm_per_c)
        assert 0.5 <= fit.reliability < 1
    assert np.mean(naive) < 0.4 * 0.92                       # attenuated by the sensor noise
    assert np.mean(corrected) == pytest.approx(0.4, abs=0.03)  # corrected (truth 0.4)
    assert np.mean(ses) == pytest.approx(np.std(corrected), rel=0.35)
    # Without the correction the function returns the plain slope.
    hr, excess, start = _heat_season(rng)
    plain = economy_heat_fit(hr, excess, start, 14.0, 20, sensor_sd_c=0.0)
    assert plain.gamma_bpm_per_c == pytest.approx(plain.naive_bpm_per_c) and plain.reliability == 1.0


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

"""Cleaning steps on short constructed series with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analyze.clean import (
    run_clean,
    run_gap_speed,
    run_grade,
    run_speed,
    run_steady_segments,
)
from pipeline.analyze.params import AnalysisParams
from pipeline.formulas import haversine_m, minetti2002_cost
from analyze_builders import make_run

P = AnalysisParams()


def _manual_cr(i: float) -> float:
    # Minetti et al. 2002, eq. for running, written out term by term (independent of np.polyval).
    return 155.4 * i**5 - 30.4 * i**4 - 43.3 * i**3 + 46.3 * i**2 + 19.5 * i + 3.6


@pytest.mark.parametrize("grade", [-0.45, -0.2, -0.1, 0.0, 0.05, 0.1, 0.3, 0.45])
def test_minetti2002_matches_published_polynomial(grade):
    assert minetti2002_cost(grade) == pytest.approx(_manual_cr(grade), abs=1e-12)


def test_minetti2002_known_values_and_shape():
    assert minetti2002_cost(0.0) == pytest.approx(3.6)
    assert minetti2002_cost(0.1) == pytest.approx(5.9685, abs=1e-3)   # uphill costs ~66 % more
    assert minetti2002_cost(-0.1) == pytest.approx(2.1517, abs=1e-3)
    # Published property: the cheapest running slope is a moderate descent of about -20 %.
    grid = np.linspace(-0.45, 0.45, 901)
    assert -0.22 <= grid[np.argmin(minetti2002_cost(grid))] <= -0.16
    # Outside the fitted range the grade is clipped, never extrapolated.
    assert minetti2002_cost(0.8) == pytest.approx(minetti2002_cost(0.45))


def test_gap_speed_methods():
    v = np.array([3.0, 3.0])
    g = np.array([0.0, 0.1])
    assert run_gap_speed(v, g)[0] == pytest.approx(3.0)
    assert run_gap_speed(v, g)[1] == pytest.approx(3.0 * 5.96848 / 3.6, rel=1e-4)
    assert np.allclose(run_gap_speed(v, g, method="none"), v)
    with pytest.raises(ValueError, match="minetti2002"):
        run_gap_speed(v, g, method="strava")


def test_pause_removed_and_hr_lag_after_restart_dropped():
    # 60 min at 3 m/s with a 3-minute stop (speed 0) from 30:00 to 33:00.
    def speed(t):
        return np.where((t >= 1800) & (t < 1980), 0.0, 3.0)
    seg = run_steady_segments(run_clean(make_run(speed_m_s=speed), P), P)
    t = seg["t_s"].to_numpy()
    stop = (t >= 1800) & (t < 1980)
    assert seg.loc[stop, "stopped"].all() and not seg.loc[~stop, "stopped"].any()
    assert not seg.loc[stop, "steady"].any()
    # HR needs time to settle after the restart: the transition hold is not steady.
    assert not seg.loc[(t >= 1980) & (t < 1980 + P.transition_hold_s), "steady"].any()
    assert seg.loc[(t >= 2200) & (t < 3500), "steady"].all()
    # Before the stop only the last transition window can see it coming.
    assert seg.loc[(t >= 700) & (t < 1800 - P.transition_window_s), "steady"].all()


def test_time_gap_is_a_pause():
    run = make_run()
    run = run[(run["elapsed_s"] < 1500) | (run["elapsed_s"] >= 1620)].reset_index(drop=True)  # auto-pause 2 min
    seg = run_steady_segments(run_clean(run, P), P)
    after = seg.index[seg["t_s"] == 1620][0]
    assert seg.loc[after, "after_gap"] and seg["after_gap"].sum() == 1
    assert seg.loc[after, "dt_s"] == pytest.approx(1.0)  # the gap itself is not counted as running time
    assert not seg.loc[(seg["t_s"] >= 1620) & (seg["t_s"] < 1620 + P.transition_hold_s), "steady"].any()


def test_sparse_recording_is_not_a_pause():
    seg = run_clean(make_run(dt_s=15.0), P)
    assert not seg["after_gap"].any()


def test_cadence_lock_detected_only_when_sustained():
    rng = np.random.default_rng(1)

    def hr(t):
        h = 150 + rng.normal(0, 1.0, len(t))
        h[(t >= 1500) & (t < 1560)] = 170 + rng.normal(0, 0.5, 60)        # 60 s locked to cadence
        h[(t >= 2500) & (t < 2520)] = 170                                 # 20 s coincidence: not a lock
        h[(t >= 3000) & (t < 3045)] = 85                                  # 45 s at half the step rate
        return h
    seg = run_clean(make_run(hr_bpm=hr, cadence_spm=170.0), P)
    t = seg["t_s"].to_numpy()
    lock = seg["cadence_lock"].to_numpy()
    assert lock[(t >= 1500) & (t < 1560)].all()
    assert lock[(t >= 3000) & (t < 3045)].all()
    assert not lock[(t >= 2500) & (t < 2520)].any()
    assert lock.sum() == 60 + 45
    assert seg.loc[lock, "hr_bpm"].isna().all()


def test_implausible_hr_and_spikes_dropped():
    def hr(t):
        h = np.full(len(t), 150.0)
        h[1000] = 250.0      # implausible
        h[1100] = 20.0       # implausible
        h[1200:1203] = 190.0  # 3-second spike of +40 bpm
        return h
    seg = run_clean(make_run(hr_bpm=hr), P)
    assert seg.loc[[1000, 1100], "hr_implausible"].all()
    assert seg.loc[1200:1202, "hr_spike"].all()
    assert seg["hr_bpm"].isna().sum() == 5
    assert seg["hr_bpm"].dropna().eq(150.0).all()


def test_speed_from_jittery_positions_is_smoothed():
    rng = np.random.default_rng(7)
    run = make_run(speed_m_s=3.0, with_speed=False, with_distance=False, with_positions=True)
    # 3 m GPS jitter on every point, as a phone gives.
    run["lat_deg"] += np.degrees(rng.normal(0, 3.0, len(run)) / 6_371_008.8)
    run["lon_deg"] += np.degrees(rng.normal(0, 3.0, len(run)) / 6_371_008.8) / np.cos(np.radians(51.0))
    t = run["elapsed_s"].to_numpy()
    speed, source = run_speed(run, t, P.speed_smoothing_s)
    assert source == "positions"
    assert np.median(speed[60:-60]) == pytest.approx(3.0, rel=0.03)
    # The naive point-to-point speed is badly inflated by the same jitter (why smoothing is needed).
    raw = haversine_m(run["lat_deg"].to_numpy()[:-1], run["lon_deg"].to_numpy()[:-1],
                      run["lat_deg"].to_numpy()[1:], run["lon_deg"].to_numpy()[1:])
    assert raw.mean() > 3.0 * 1.3


def test_speed_source_preference():
    t = np.arange(0.0, 600.0)
    run = make_run(duration_s=600, speed_m_s=3.0)
    run["speed_m_s"] = 2.5  # device speed wins over distance
    assert run_speed(run, t)[1] == "device" and np.allclose(run_speed(run, t)[0], 2.5)
    run["speed_m_s"] = np.nan
    v, src = run_speed(run, t)
    assert src == "distance" and np.median(v) == pytest.approx(3.0)
    assert run_speed(run.assign(distance_m=np.nan), t)[1] == "none"


def test_grade_from_noisy_altitude():
    rng = np.random.default_rng(3)
    d = np.arange(0.0, 5000.0, 3.0)
    alt = 100 + 0.05 * d + rng.normal(0, 0.5, len(d))  # a steady 5 % climb, barometric noise
    g = run_grade(d, alt, smoothing_m=50.0)
    inner = (d > 100) & (d < 4900)
    assert np.median(g[inner]) == pytest.approx(0.05, abs=0.002)
    assert np.abs(g[inner] - 0.05).max() < 0.03
    assert run_grade(d, np.full(len(d), np.nan)).tolist() == [0.0] * len(d)
    assert run_grade(d, 100 + 0.9 * d).max() == pytest.approx(0.45)  # clipped to Minetti's range


def test_treadmill_has_no_grade_adjustment():
    run = make_run(altitude_m=lambda t: 100 + 0.1 * t)  # belt with a wandering altimeter
    assert run_clean(run, P, treadmill=True)["grade"].eq(0).all()
    road = run_clean(run, P)
    assert road["grade"].iloc[100:-100].mean() > 0.02


def test_tempo_transition_hold():
    # 20 min easy at 2.8 m/s, then 40 min at 3.6 m/s: the change is a transition, the rest steady.
    seg = run_steady_segments(run_clean(make_run(speed_m_s=lambda t: np.where(t < 1200, 2.8, 3.6)), P), P)
    t = seg["t_s"].to_numpy()
    assert not seg.loc[(t >= 1200) & (t < 1200 + P.transition_hold_s), "steady"].any()
    assert seg.loc[(t >= 1200 + P.transition_window_s + P.transition_hold_s), "steady"].all()
    assert seg.loc[(t >= P.warmup_s) & (t < 1200 - P.transition_window_s), "steady"].all()
    assert not seg.loc[t < P.warmup_s, "steady"].any()


def test_hill_at_even_effort_is_not_a_transition():
    # A 6 % climb for 5 minutes at constant grade-adjusted pace: real speed drops by ~25 %, effort does not.
    cr = lambda i: 155.4 * i**5 - 30.4 * i**4 - 43.3 * i**3 + 46.3 * i**2 + 19.5 * i + 3.6  # noqa: E731
    climb = lambda t: (t >= 1800) & (t < 2100)  # noqa: E731
    speed = lambda t: np.where(climb(t), 3.0 * 3.6 / cr(0.06), 3.0)  # noqa: E731
    run = make_run(speed_m_s=speed)
    dist = run["distance_m"].to_numpy()
    t = run["elapsed_s"].to_numpy()
    start = dist[np.searchsorted(t, 1800)]
    end = dist[np.searchsorted(t, 2100)]
    run["altitude_m"] = 50 + 0.06 * np.clip(dist - start, 0, end - start)
    seg = run_steady_segments(run_clean(run, P), P)
    inner = (t >= 700) & (t < 3500)
    assert not seg.loc[inner, "transition"].any()
    assert seg.loc[inner, "steady"].mean() > 0.9


def test_gps_speed_and_altitude_noise_do_not_make_a_continuous_run_unsteady():
    """A real easy run: speed wanders by ~5 % over minutes and altitude noise makes grade-adjusted speed
    noisier still; neither is a change of pace that HR has to catch up with."""
    rng = np.random.default_rng(4)
    n = 3600
    wander = np.zeros(n)
    for k in range(1, n):
        wander[k] = 0.99 * wander[k - 1] + rng.normal(0, 0.05 * np.sqrt(1 - 0.99**2))
    run = make_run(speed_m_s=lambda t: 2.8 * (1 + wander) + rng.normal(0, 0.15, len(t)))
    alt_noise = np.zeros(n)
    for k in range(1, n):
        alt_noise[k] = 0.97 * alt_noise[k - 1] + rng.normal(0, 1.5 * np.sqrt(1 - 0.97**2))
    run["altitude_m"] = 80 + alt_noise
    seg = run_steady_segments(run_clean(run, P), P)
    after_warmup = seg["t_s"] >= P.warmup_s
    assert seg.loc[after_warmup, "steady"].mean() > 0.75
    assert seg.attrs["surges"] == 0


def test_interval_session_counts_surges():
    # 15 min jog, then 6 x (3 min at 4.6 m/s, 2 min jog at 2.8), then jog: the reps are surges.
    def speed(t):
        rep = (t >= 900) & (t < 900 + 6 * 300) & (((t - 900) % 300) < 180)
        return np.where(rep, 4.6, 2.8)
    seg = run_steady_segments(run_clean(make_run(duration_s=4500, speed_m_s=speed), P), P)
    assert seg.attrs["surges"] == 6
    # A tempo run (one long block at a faster pace) has at most one.
    tempo = run_steady_segments(run_clean(make_run(speed_m_s=lambda t: np.where((t > 1200) & (t < 2400), 3.6, 2.9)), P), P)
    assert tempo.attrs["surges"] <= 1

"""Per-run cleaning and steady-state selection: pure functions over one activity's samples.

The recipe (``run_clean`` then ``run_steady_segments``) turns the canonical ``samples`` columns of one
running activity into a frame with the time each sample stands for, speed, grade, grade-adjusted speed
and cleaned heart rate, plus one boolean flag per reason a sample may be dropped, so that the reason a
run is excluded can be said in words. Every threshold is a field of
:class:`~pipeline.analyze.params.AnalysisParams` (documented in docs/analysis.md).

References
----------
Minetti AE, Moia C, Roi GS, Susta D, Ferretti G (2002). Energy cost of walking and running at extreme
uphill and downhill slopes. J Appl Physiol 93:1039-1046.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import uniform_filter1d

from pipeline.analyze.params import GRADE_METHODS, AnalysisParams
from pipeline.formulas import haversine_m, minetti2002_cost


def run_gap_speed(speed_m_s: np.ndarray, grade: np.ndarray, method: str = "minetti2002") -> np.ndarray:
    """Grade-adjusted speed (m/s): the flat speed with the same energy cost per second.

    ``method="minetti2002"``: speed * Cr(grade) / Cr(0); ``method="none"``: speed unchanged.
    """
    speed = np.asarray(speed_m_s, dtype=float)
    if method == "minetti2002":
        return speed * minetti2002_cost(grade) / minetti2002_cost(0.0)
    if method == "none":
        return speed.copy()
    raise ValueError(f"unknown grade method {method!r}; valid: {', '.join(GRADE_METHODS)}")


def _integral_at(t_s: np.ndarray, x: np.ndarray, cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Integral of the piecewise-linear signal (t_s, x) from t_s[0] to each u (exact, any spacing).

    Interpolating the cumulative integral linearly would be wrong between samples (the integral of a
    linear piece is quadratic): with 10-s samples that error alone made a straight track wiggle and
    positions-derived speed read ~3 % fast.
    """
    k = np.clip(np.searchsorted(t_s, u, side="right") - 1, 0, len(t_s) - 2)
    return cum[k] + (u - t_s[k]) * (x[k] + np.interp(u, t_s, x)) / 2


def _window_mean(t_s: np.ndarray, x: np.ndarray, before_s: float, after_s: float,
                 at_s: np.ndarray | None = None) -> np.ndarray:
    """Time-weighted mean of ``x`` over [u - before_s, u + after_s] for every u in ``at_s`` (default:
    the sample times), for irregular sampling.

    ``x`` is taken as linear between samples; the window mean is the exact integral of that over the
    window (clipped to the recording) divided by the window's length, so it is the same quantity
    whatever the sampling interval.
    """
    x = np.asarray(x, dtype=float)
    u = t_s if at_s is None else np.asarray(at_s, dtype=float)
    if len(t_s) < 2:
        return np.interp(u, t_s, x) if len(t_s) else np.full(len(u), np.nan)
    cum = np.concatenate([[0.0], np.cumsum(np.diff(t_s) * (x[1:] + x[:-1]) / 2)])
    lo = np.clip(u - before_s, t_s[0], t_s[-1])
    hi = np.clip(u + after_s, t_s[0], t_s[-1])
    span = hi - lo
    total = _integral_at(t_s, x, cum, hi) - _integral_at(t_s, x, cum, lo)
    return np.where(span > 0, total / np.where(span > 0, span, 1.0), np.interp(u, t_s, x))


def _window_difference_speed(t_s: np.ndarray, dist_m: np.ndarray, window_s: float) -> np.ndarray:
    """Speed (m/s) from a cumulative distance as distance covered over a centred time window."""
    if len(t_s) < 2:
        return np.full(len(t_s), np.nan)
    lo = np.clip(t_s - window_s / 2, t_s[0], t_s[-1])
    hi = np.clip(t_s + window_s / 2, t_s[0], t_s[-1])
    span = hi - lo
    d = np.interp(hi, t_s, dist_m) - np.interp(lo, t_s, dist_m)
    return np.where(span > 0, d / np.where(span > 0, span, 1.0), np.nan)


def _rolling_time(values: np.ndarray, t_s: np.ndarray, window_s: float, how: str) -> np.ndarray:
    """Centred rolling ``how`` (e.g. median) over a window of ``window_s`` SECONDS (not samples)."""
    s = pd.Series(values, index=pd.to_timedelta(t_s, unit="s"))
    roll = s.rolling(pd.Timedelta(seconds=window_s), center=True, min_periods=1)
    return getattr(roll, how)().to_numpy()


def _fill_in_time(t_s: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Missing values of ``x`` linearly interpolated in TIME (not by sample position); ends held."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    if ok.all() or not ok.any():
        return x.copy()
    return np.interp(t_s, t_s[ok], x[ok])


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float | np.ndarray) -> float | np.ndarray:
    """Quantile(s) ``q`` of ``x`` with weights ``w`` (e.g. the seconds each sample stands for), so a
    statistic of a run does not depend on how often it was sampled. NaN without finite values."""
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    ok = np.isfinite(x) & np.isfinite(w) & (w > 0)
    if not ok.any():
        return np.full(np.shape(q), np.nan) if np.ndim(q) else float("nan")
    order = np.argsort(x[ok], kind="stable")
    xs, ws = x[ok][order], w[ok][order]
    mid = np.cumsum(ws) - ws / 2          # each value sits at the middle of its weight
    out = np.interp(np.asarray(q, dtype=float) * ws.sum(), mid, xs)
    return out if np.ndim(q) else float(out)


def _numeric(samples: pd.DataFrame, column: str) -> np.ndarray:
    """One canonical column as floats; all NaN when the source has no such column."""
    if column not in samples:
        return np.full(len(samples), np.nan)
    return pd.to_numeric(samples[column], errors="coerce").to_numpy(dtype=float)


def _recorded_distance_m(samples: pd.DataFrame, t_s: np.ndarray) -> np.ndarray | None:
    """The device's cumulative distance, gaps filled in time and never decreasing; None when fewer than
    half the samples carry one."""
    dist = _numeric(samples, "distance_m")
    if not len(dist) or np.isfinite(dist).mean() < 0.5:
        return None
    return np.maximum.accumulate(_fill_in_time(t_s, dist))


def run_speed(samples: pd.DataFrame, t_s: np.ndarray, smoothing_s: float = 15.0) -> tuple[np.ndarray, str]:
    """Speed (m/s) of each sample and where it came from: ``device``, ``distance``, ``positions`` or ``none``.

    Device speed is preferred (already filtered by the watch, Doppler-based on many). Otherwise the
    cumulative distance is differenced over a centred ``smoothing_s`` window. Otherwise positions are
    first smoothed (time-weighted mean over ``smoothing_s``) and then turned into distance: speed from
    raw point-to-point GPS distances is inflated by jitter, because noise only ever adds path length.
    Missing values are interpolated in time, and every window is in seconds, so a run recorded every
    second and the same run recorded every 5-9 s ("smart recording") get the same speed.
    """
    n = len(samples)
    dev = _numeric(samples, "speed_m_s")
    if n and np.isfinite(dev).mean() >= 0.5:
        return _fill_in_time(t_s, dev), "device"
    dist = _recorded_distance_m(samples, t_s)
    if dist is not None:
        return _window_difference_speed(t_s, dist, smoothing_s), "distance"
    lat, lon = _numeric(samples, "lat_deg"), _numeric(samples, "lon_deg")
    ok = np.isfinite(lat) & np.isfinite(lon)
    if n and ok.mean() >= 0.5 and ok.sum() >= 2:
        half = smoothing_s / 2
        lat_s = _window_mean(t_s, _fill_in_time(t_s, lat), half, half)
        lon_s = _window_mean(t_s, _fill_in_time(t_s, lon), half, half)
        step = haversine_m(lat_s[:-1], lon_s[:-1], lat_s[1:], lon_s[1:])
        d = np.concatenate([[0.0], np.cumsum(step)])
        return _window_difference_speed(t_s, d, smoothing_s), "positions"
    return np.full(n, np.nan), "none"


def run_grade(distance_m: np.ndarray, altitude_m: np.ndarray, smoothing_m: float = 50.0,
              clip: float = 0.45, grid_m: float = 5.0) -> np.ndarray:
    """Grade (fraction) at each sample from altitude smoothed over distance.

    Altitude is put on a regular ``grid_m`` distance grid, smoothed by a moving average over
    ``smoothing_m``, and differenced over ``smoothing_m`` (so a single noisy altitude point moves the
    grade of no sample by more than noise/smoothing_m). Clipped to +-``clip``; 0 where altitude or
    distance is missing.
    """
    d = np.asarray(distance_m, dtype=float)
    a = np.asarray(altitude_m, dtype=float)
    ok = np.isfinite(d) & np.isfinite(a)
    if ok.sum() < 2 or np.nanmax(d[ok]) - np.nanmin(d[ok]) < smoothing_m:
        return np.zeros(len(d))
    frame = pd.DataFrame({"d": d[ok], "a": a[ok]}).groupby("d", sort=True)["a"].mean()
    du, au = frame.index.to_numpy(), frame.to_numpy()
    grid = np.arange(du[0], du[-1] + grid_m, grid_m)
    alt = uniform_filter1d(np.interp(grid, du, au), size=max(1, int(round(smoothing_m / grid_m))), mode="nearest")
    half = smoothing_m / 2
    lo = np.clip(grid - half, grid[0], grid[-1])
    hi = np.clip(grid + half, grid[0], grid[-1])
    span = hi - lo
    g = np.where(span >= half, (np.interp(hi, grid, alt) - np.interp(lo, grid, alt)) / np.maximum(span, 1e-9), 0.0)
    out = np.interp(np.where(np.isfinite(d), d, du[0]), grid, g)
    return np.clip(np.where(np.isfinite(d), out, 0.0), -clip, clip)


def _runs_of_true(flag: np.ndarray, t_s: np.ndarray, dt_s: np.ndarray, min_s: float) -> np.ndarray:
    """Keep only stretches of consecutive True samples lasting at least ``min_s`` seconds."""
    out = np.zeros(len(flag), dtype=bool)
    if not flag.any():
        return out
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flag.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        if t_s[stop - 1] - t_s[start] + dt_s[stop - 1] >= min_s:
            out[start:stop] = True
    return out


# A sample more than a week after its activity's start is a broken timestamp, not running (the ingest
# sanity gate refuses activities longer than 48 h): it is dropped rather than allowed to stretch the
# run over years (a phone app wrote one point in the year 7494 and the rest in 1970).
MAX_RUN_ELAPSED_S = 7 * 86400.0


def _time_ordered(samples: pd.DataFrame) -> pd.DataFrame:
    """The samples with ``t_s`` (seconds since the first sample), in time order, one row per instant.

    ``elapsed_s`` is used when every sample has it, else the time since the first ``ts``, else the sample
    position (1 s apart). Of two samples at the same instant the first is kept; samples with a time that
    is not finite, negative or beyond :data:`MAX_RUN_ELAPSED_S` are dropped.
    """
    df = samples.copy()
    elapsed = pd.to_numeric(df["elapsed_s"], errors="coerce") if "elapsed_s" in df else None
    if elapsed is not None and len(df) and elapsed.notna().all():
        t = elapsed.to_numpy(dtype=float)
    elif "ts" in df and len(df):
        ts = pd.to_datetime(df["ts"], utc=True)
        t = (ts - ts.min()).dt.total_seconds().to_numpy()
    else:
        t = np.arange(len(df), dtype=float)
    with np.errstate(invalid="ignore"):
        df = df.assign(t_s=t)[np.isfinite(t) & (t >= 0) & (t <= MAX_RUN_ELAPSED_S)]
    df = df.sort_values("t_s", kind="stable").drop_duplicates("t_s", keep="first")
    return df.reset_index(drop=True)


def _distance_since_previous_m(samples: pd.DataFrame, t_s: np.ndarray, speed_m_s: np.ndarray) -> np.ndarray:
    """Distance covered between each sample and the one before it (m; 0 for the first), for telling a
    pause from a long recording interval: the device's distance, else the straight line between the
    two positions, else the lower of the two speeds times the interval (NaN where nothing is known)."""
    n = len(t_s)
    if n == 0:
        return np.zeros(0)
    dist = _recorded_distance_m(samples, t_s)
    if dist is not None:
        return np.diff(dist, prepend=dist[0])
    lat, lon = _numeric(samples, "lat_deg"), _numeric(samples, "lon_deg")
    if np.isfinite(lat).mean() >= 0.5 and np.isfinite(lon).mean() >= 0.5:
        lat, lon = _fill_in_time(t_s, lat), _fill_in_time(t_s, lon)
        return np.concatenate([[0.0], haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])])
    slower = np.fmin(speed_m_s, np.concatenate([[np.nan], speed_m_s[:-1]]))
    return np.concatenate([[0.0], (slower * np.diff(t_s, prepend=t_s[0]))[1:]])


def run_pauses(t_s: np.ndarray, step_m: np.ndarray, params: AnalysisParams) -> tuple[np.ndarray, np.ndarray]:
    """Seconds each sample stands for (``dt_s``) and whether a pause ends at it (``after_gap``).

    A sample stands for the time since the previous one. An interval longer than ``max_gap_s`` is a
    PAUSE (auto-pause, a stop with the watch paused, lost signal) when the runner did not keep moving
    across it (distance covered / interval < ``min_speed_m_s``) or when it lasts longer than
    ``max_recording_gap_s`` (what pace and HR did in between is unknown). Otherwise it is an ordinary
    recording interval: "smart recording" writes a point only when direction, speed or HR change, so
    intervals of 5-15 s while running steadily are normal and must not count as pauses. A pause is not
    running time: the sample after it stands for one typical interval.
    """
    n = len(t_s)
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    diffs = np.diff(t_s, prepend=t_s[0])
    typical = min(float(np.median(diffs[1:])), params.max_gap_s) if n > 2 else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        kept_moving = step_m / np.where(diffs > 0, diffs, np.nan) >= params.min_speed_m_s
    pause = (diffs > params.max_gap_s) & (~kept_moving | (diffs > params.max_recording_gap_s))
    pause[0] = False
    dt_s = np.where(pause, typical, diffs)
    dt_s[0] = typical
    return dt_s, pause


def _first_order_lag(t_s: np.ndarray, x: np.ndarray, tau_s: float) -> np.ndarray:
    """x filtered by a first-order lag with time constant ``tau_s`` (how HR follows a change of pace)."""
    y = np.empty(len(x))
    if not len(x):
        return y
    y[0] = x[0]
    alpha = 1.0 - np.exp(-np.diff(t_s) / tau_s) if tau_s > 0 else np.ones(len(x) - 1)
    for k in range(1, len(x)):
        y[k] = y[k - 1] + alpha[k - 1] * (x[k] - y[k - 1])
    return y


def _speed_and_grade(df: pd.DataFrame, t_s: np.ndarray, p: AnalysisParams, treadmill: bool) -> pd.DataFrame:
    """Speed (device > distance > smoothed positions), grade from smoothed altitude, grade-adjusted speed
    (Minetti 2002) and that speed through the HR lag; ``attrs['speed_source']`` says where speed came from."""
    n = len(t_s)
    speed, source = run_speed(df, t_s, p.speed_smoothing_s)
    dist = _recorded_distance_m(df, t_s)
    if dist is None:
        dist = np.concatenate([[0.0], np.cumsum(np.nan_to_num(speed[1:]) * np.diff(t_s))]) if n else np.zeros(0)
    alt = _numeric(df, "altitude_m")
    grade_method = "none" if treadmill else p.grade_method
    if treadmill or n == 0 or np.isfinite(alt).mean() < 0.5:
        grade = np.zeros(n)
    else:
        grade = run_grade(dist, alt, p.grade_smoothing_m, p.grade_clip)
    gap = run_gap_speed(speed, grade, grade_method)
    out = pd.DataFrame({"speed_m_s": speed, "grade": grade, "gap_speed_m_s": gap,
                        "gap_lag_m_s": _first_order_lag(t_s, np.nan_to_num(gap, nan=0.0), p.hr_lag_tau_s)})
    out.attrs["speed_source"] = source
    return out


def _heart_rate_checks(df: pd.DataFrame, t_s: np.ndarray, dt_s: np.ndarray, p: AnalysisParams) -> pd.DataFrame:
    """Raw HR, the reasons a sample's HR is dropped (missing, implausible, spike, optical cadence lock)
    and the clean HR ``hr_bpm`` (NaN where dropped). Windows are in seconds, so sampling does not matter."""
    hr = _numeric(df, "heart_rate_bpm")
    missing = ~np.isfinite(hr)
    implausible = ~missing & ((hr < p.hr_min_bpm) | (hr > p.hr_max_bpm))
    hr_ok = np.where(missing | implausible, np.nan, hr)
    med = _rolling_time(hr_ok, t_s, p.hr_spike_window_s, "median") if len(t_s) else hr_ok
    spike = np.isfinite(hr_ok) & (np.abs(hr_ok - med) > p.hr_spike_bpm)
    cad = _numeric(df, "cadence_spm")
    with np.errstate(invalid="ignore"):
        near = (np.abs(hr_ok - cad) <= p.cadence_lock_bpm) | (np.abs(hr_ok - cad / 2) <= p.cadence_lock_bpm)
    lock = _runs_of_true(near & np.isfinite(cad) & np.isfinite(hr_ok), t_s, dt_s, p.cadence_lock_min_s)
    return pd.DataFrame({"heart_rate_bpm": hr, "hr_missing": missing, "hr_implausible": implausible,
                         "hr_spike": spike, "cadence_lock": lock, "hr_bpm": np.where(spike | lock, np.nan, hr_ok)})


def run_clean(samples: pd.DataFrame, params: AnalysisParams | None = None, treadmill: bool = False) -> pd.DataFrame:
    """Clean one run's samples; one output row per distinct sample time, sorted by time.

    Parameters
    ----------
    samples : canonical ``samples`` columns of ONE activity (ts or elapsed_s, speed_m_s, distance_m,
        lat_deg, lon_deg, altitude_m, heart_rate_bpm, cadence_spm, temperature_c; any may be NULL).
    params : thresholds (defaults documented in docs/analysis.md).
    treadmill : no grade adjustment (a belt has no altitude profile; any altitude is noise).

    Returns
    -------
    DataFrame with ``t_s`` (s since start), ``dt_s`` (seconds the sample stands for), ``speed_m_s``,
    ``grade``, ``gap_speed_m_s``, ``gap_lag_m_s`` (grade-adjusted speed through the HR lag),
    ``heart_rate_bpm`` (raw), ``hr_bpm`` (clean; NaN where dropped), ``temperature_c`` and flags
    ``warmup``, ``stopped``, ``too_fast``, ``after_gap``, ``hr_missing``, ``hr_implausible``,
    ``hr_spike``, ``cadence_lock``. ``attrs['speed_source']`` says where speed came from.
    Every rule works in seconds, not samples (docs/analysis.md, "Sampling").
    """
    p = params or AnalysisParams()
    df = _time_ordered(samples)
    t = df["t_s"].to_numpy(dtype=float)
    out = pd.DataFrame({"t_s": t})
    moved = _speed_and_grade(df, t, p, treadmill)
    out = pd.concat([out, moved], axis=1)
    dt_s, after_gap = run_pauses(t, _distance_since_previous_m(df, t, out["speed_m_s"].to_numpy()), p)
    out["dt_s"] = dt_s
    out["after_gap"] = after_gap
    # Moving: stops, pauses and walking breaks are below min_speed; above max_speed is a GPS glitch.
    speed = out["speed_m_s"].to_numpy()
    out["stopped"] = ~(speed >= p.min_speed_m_s)
    out["too_fast"] = speed > p.max_speed_m_s
    out["warmup"] = t < p.warmup_s
    out = pd.concat([out, _heart_rate_checks(df, t, dt_s, p)], axis=1)
    out["temperature_c"] = _numeric(df, "temperature_c")
    out.attrs["speed_source"] = moved.attrs["speed_source"]
    out.attrs["treadmill"] = treadmill
    return out


# Pace changes are looked for on a 1-s grid whatever the sampling, so a change that lasts a few seconds
# is found between two samples 9 s apart too (the grid is coarser only for absurd spans: at most 200,000
# points, so a broken recording claiming to last years cannot exhaust memory).
TRANSITION_GRID_S = 1.0
TRANSITION_GRID_MAX_POINTS = 200_000


def _change_score_pct(t_s: np.ndarray, x: np.ndarray, window_s: float, floor: float,
                      at_s: np.ndarray | None = None) -> np.ndarray:
    """|mean over the next window - mean over the previous window| / previous mean, in percent."""
    before = _window_mean(t_s, x, window_s, 0.0, at_s)
    after = _window_mean(t_s, x, 0.0, window_s, at_s)
    return np.abs(after - before) / np.maximum(before, floor) * 100


def _transitions(t_s: np.ndarray, gap: np.ndarray, speed: np.ndarray, after_gap: np.ndarray,
                 p: AnalysisParams) -> np.ndarray:
    """Samples within ``transition_hold_s`` SECONDS after a sustained change of pace or a pause.

    The change score is evaluated on a 1-s grid in continuous time (window means are exact for any
    sampling), so a run sampled every 5-9 s finds the same changes, and loses the same time to holds,
    as the same run sampled every second.
    """
    step = max(TRANSITION_GRID_S, (t_s[-1] - t_s[0]) / TRANSITION_GRID_MAX_POINTS)
    grid = np.arange(t_s[0], t_s[-1] + step / 2, step)
    score = np.minimum(_change_score_pct(t_s, gap, p.transition_window_s, p.min_speed_m_s, grid),
                       _change_score_pct(t_s, speed, p.transition_window_s, p.min_speed_m_s, grid))
    events = np.sort(np.concatenate([grid[score > p.transition_change_pct], t_s[after_gap]]))
    if not len(events):
        return np.zeros(len(t_s), dtype=bool)
    k = np.searchsorted(events, t_s, side="right") - 1          # the latest event at or before each sample
    since = np.where(k >= 0, t_s - events[np.maximum(k, 0)], np.inf)
    return since <= p.transition_hold_s


def _unsteady(t_s: np.ndarray, gap: np.ndarray, moving: np.ndarray, p: AnalysisParams) -> np.ndarray:
    """Grade-adjusted speed (time-averaged over ``steady_smoothing_s``) outside ``steady_band_pct`` of its
    centred rolling median over ``steady_window_s``."""
    half = p.steady_smoothing_s / 2
    gap_smooth = _window_mean(t_s, gap, half, half) if half > 0 else gap
    ref = _rolling_time(np.where(moving, gap_smooth, np.nan), t_s, p.steady_window_s, "median")
    with np.errstate(invalid="ignore", divide="ignore"):
        return ~(np.abs(gap_smooth - ref) <= p.steady_band_pct / 100 * ref)


def _surges(t_s: np.ndarray, dt_s: np.ndarray, gap: np.ndarray, speed: np.ndarray, main: np.ndarray,
            p: AnalysisParams) -> np.ndarray:
    """Interval reps: at least ``interval_surge_min_s`` where the 60-s mean of both speed and grade-adjusted
    speed is ``interval_surge_pct`` above the run's time-weighted median over ``main`` samples."""
    if main.sum() < 2:
        return np.zeros(len(t_s), dtype=bool)
    factor = 1 + p.interval_surge_pct / 100
    high = main.copy()
    for x in (gap, speed):
        high &= _window_mean(t_s, x, 30.0, 30.0) > factor * weighted_quantile(x[main], dt_s[main], 0.5)
    return _runs_of_true(high, t_s, dt_s, p.interval_surge_min_s)


def run_steady_segments(clean: pd.DataFrame, params: AnalysisParams | None = None) -> pd.DataFrame:
    """Mark steady samples in the output of :func:`run_clean`; adds ``transition``, ``unsteady``,
    ``surge`` and ``steady`` (and ``attrs['surges']``, the number of surges).

    Transition: a sustained change of pace. The mean over the next ``transition_window_s`` differs from
    the mean over the previous one by more than ``transition_change_pct`` in BOTH speed and
    grade-adjusted speed (a change in speed alone is a hill run at even effort; a change in
    grade-adjusted speed alone is altitude noise); the ``transition_hold_s`` after it are dropped because
    HR needs about a minute to settle at a new pace. Restarts after pauses count too.

    Unsteady: grade-adjusted speed, averaged over a centred ``steady_smoothing_s`` (HR cannot follow
    shorter fluctuations, and GPS/altitude noise lives there), outside ``steady_band_pct`` of its
    centred rolling median over ``steady_window_s``.

    Surge: at least ``interval_surge_min_s`` where the 60-s mean of both speed and grade-adjusted speed
    is more than ``interval_surge_pct`` above the run's median moving value after the warm-up (an
    interval rep, a fartlek surge). ``steady`` also requires clean HR, no warm-up, movement.
    Every window and hold is in seconds, so the sampling interval does not change the decision.
    """
    p = params or AnalysisParams()
    out = clean.copy()
    t = out["t_s"].to_numpy(dtype=float)
    if len(out) == 0:
        for col in ("transition", "unsteady", "surge", "steady"):
            out[col] = np.zeros(0, dtype=bool)
        out.attrs["surges"] = 0
        return out
    gap = np.nan_to_num(out["gap_speed_m_s"].to_numpy(dtype=float), nan=0.0)
    speed = np.nan_to_num(out["speed_m_s"].to_numpy(dtype=float), nan=0.0)
    moving = ~out["stopped"].to_numpy()
    out["transition"] = _transitions(t, gap, speed, out["after_gap"].to_numpy(), p)
    out["unsteady"] = _unsteady(t, gap, moving, p)
    surge = _surges(t, out["dt_s"].to_numpy(dtype=float), gap, speed, moving & ~out["warmup"].to_numpy(), p)
    out["surge"] = surge
    out.attrs["surges"] = int(np.sum(np.diff(np.concatenate([[0], surge.astype(int)])) == 1))
    out["steady"] = (
        ~out["warmup"] & ~out["stopped"] & ~out["too_fast"] & ~out["after_gap"]
        & ~out["transition"] & ~out["unsteady"] & np.isfinite(out["hr_bpm"])
    )
    return out


@dataclass(frozen=True)
class HrResponse:
    """How much HR and pace varied over a run's moving time after the warm-up (5-95 % ranges,
    time-weighted): HR that stays within a few bpm while pace varies is a stuck sensor, not HR."""

    hr_low_bpm: float
    hr_high_bpm: float
    pace_range_pct: float          # 5-95 % range of lagged grade-adjusted speed, % of its median

    @property
    def hr_range_bpm(self) -> float:
        return self.hr_high_bpm - self.hr_low_bpm

    def flat_lined(self, params: AnalysisParams) -> bool:
        """HR range at most ``flat_hr_range_bpm`` while pace varied by at least ``flat_hr_pace_range_pct``."""
        return (np.isfinite(self.hr_range_bpm) and np.isfinite(self.pace_range_pct)
                and self.hr_range_bpm <= params.flat_hr_range_bpm
                and self.pace_range_pct >= params.flat_hr_pace_range_pct)


def run_hr_response(clean: pd.DataFrame) -> HrResponse:
    """5-95 % ranges of clean HR and of lagged grade-adjusted speed (the pace HR responds to) over the
    moving samples after the warm-up, weighted by the seconds each sample stands for."""
    use = (~clean["warmup"] & ~clean["stopped"] & ~clean["too_fast"]).to_numpy() & \
        np.isfinite(clean["hr_bpm"].to_numpy(dtype=float))
    w = clean["dt_s"].to_numpy(dtype=float)[use]
    lo, hi = weighted_quantile(clean["hr_bpm"].to_numpy(dtype=float)[use], w, [0.05, 0.95])
    pace = clean["gap_lag_m_s"].to_numpy(dtype=float)[use]
    p5, p50, p95 = weighted_quantile(pace, w, [0.05, 0.5, 0.95])
    pct = (p95 - p5) / p50 * 100 if np.isfinite(p50) and p50 > 0 else float("nan")
    return HrResponse(float(lo), float(hi), float(pct))

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


def _window_mean(t_s: np.ndarray, x: np.ndarray, before_s: float, after_s: float) -> np.ndarray:
    """Time-weighted mean of ``x`` over [t - before_s, t + after_s] for every t (irregular sampling).

    Uses the cumulative trapezoid integral, so each window costs two interpolations.
    """
    if len(t_s) < 2:
        return x.astype(float).copy()
    cum = np.concatenate([[0.0], np.cumsum(np.diff(t_s) * (x[1:] + x[:-1]) / 2)])
    lo = np.clip(t_s - before_s, t_s[0], t_s[-1])
    hi = np.clip(t_s + after_s, t_s[0], t_s[-1])
    span = hi - lo
    out = (np.interp(hi, t_s, cum) - np.interp(lo, t_s, cum)) / np.where(span > 0, span, 1.0)
    return np.where(span > 0, out, x)


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
    s = pd.Series(values, index=pd.to_timedelta(t_s, unit="s"))
    roll = s.rolling(pd.Timedelta(seconds=window_s), center=True, min_periods=1)
    return getattr(roll, how)().to_numpy()


def run_speed(samples: pd.DataFrame, t_s: np.ndarray, smoothing_s: float = 15.0) -> tuple[np.ndarray, str]:
    """Speed (m/s) of each sample and where it came from: ``device``, ``distance``, ``positions`` or ``none``.

    Device speed is preferred (already filtered by the watch, Doppler-based on many). Otherwise the
    cumulative distance is differenced over a centred ``smoothing_s`` window. Otherwise positions are
    first smoothed (rolling mean over ``smoothing_s``) and then turned into distance: speed from raw
    point-to-point GPS distances is inflated by jitter, because noise only ever adds path length.
    """
    n = len(samples)
    dev = pd.to_numeric(samples.get("speed_m_s"), errors="coerce") if "speed_m_s" in samples else None
    if dev is not None and dev.notna().mean() >= 0.5:
        v = pd.Series(dev.to_numpy(dtype=float)).interpolate(limit_direction="both").to_numpy()
        return v, "device"
    dist = pd.to_numeric(samples.get("distance_m"), errors="coerce") if "distance_m" in samples else None
    if dist is not None and dist.notna().mean() >= 0.5:
        d = pd.Series(dist.to_numpy(dtype=float)).interpolate(limit_direction="both").to_numpy()
        d = np.maximum.accumulate(d)
        return _window_difference_speed(t_s, d, smoothing_s), "distance"
    if {"lat_deg", "lon_deg"} <= set(samples.columns):
        lat = pd.to_numeric(samples["lat_deg"], errors="coerce")
        lon = pd.to_numeric(samples["lon_deg"], errors="coerce")
        ok = (lat.notna() & lon.notna()).to_numpy()
        if ok.mean() >= 0.5 and ok.sum() >= 2:
            lat_s = _rolling_time(lat.interpolate(limit_direction="both").to_numpy(), t_s, smoothing_s, "mean")
            lon_s = _rolling_time(lon.interpolate(limit_direction="both").to_numpy(), t_s, smoothing_s, "mean")
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


def run_clean(samples: pd.DataFrame, params: AnalysisParams | None = None, treadmill: bool = False) -> pd.DataFrame:
    """Clean one run's samples; one output row per input sample, sorted by time.

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
    """
    p = params or AnalysisParams()
    df = samples.copy()
    if "elapsed_s" in df and pd.to_numeric(df["elapsed_s"], errors="coerce").notna().all() and len(df):
        t = pd.to_numeric(df["elapsed_s"], errors="coerce").to_numpy(dtype=float)
    elif "ts" in df and len(df):
        ts = pd.to_datetime(df["ts"], utc=True)
        t = (ts - ts.min()).dt.total_seconds().to_numpy()
    else:
        t = np.arange(len(df), dtype=float)
    df = df.assign(t_s=t).sort_values("t_s", kind="stable").drop_duplicates("t_s", keep="first")
    df = df.reset_index(drop=True)
    t = df["t_s"].to_numpy(dtype=float)
    n = len(df)
    out = pd.DataFrame({"t_s": t})

    # Time each sample stands for; a longer gap than max_gap_s is a pause (auto-pause, lost signal).
    diffs = np.diff(t, prepend=t[0] - 1.0) if n else np.array([])
    nominal = float(np.median(diffs[1:])) if n > 2 else 1.0
    # A sparse recorder (every 15 s, say) is not pausing all the time: the threshold is at least 2.5x
    # the typical interval.
    gap_s = max(p.max_gap_s, 2.5 * nominal)
    after_gap = diffs > gap_s
    out["dt_s"] = np.where(after_gap, nominal, np.clip(diffs, 0, None))
    if n:
        out.loc[0, "dt_s"] = nominal
    out["after_gap"] = after_gap
    if n:
        out.loc[0, "after_gap"] = False

    # Speed, grade and grade-adjusted speed.
    speed, source = run_speed(df, t, p.speed_smoothing_s)
    out["speed_m_s"] = speed
    if "distance_m" in df and pd.to_numeric(df["distance_m"], errors="coerce").notna().mean() >= 0.5:
        dist = pd.to_numeric(df["distance_m"], errors="coerce").interpolate(limit_direction="both").to_numpy()
        dist = np.maximum.accumulate(dist)
    else:
        dist = np.concatenate([[0.0], np.cumsum(np.nan_to_num(speed[1:]) * np.diff(t))]) if n else np.array([])
    alt = pd.to_numeric(df["altitude_m"], errors="coerce").to_numpy(dtype=float) if "altitude_m" in df else np.full(n, np.nan)
    grade_method = "none" if treadmill else p.grade_method
    if treadmill or n == 0 or np.isfinite(alt).mean() < 0.5:
        grade = np.zeros(n)
    else:
        grade = run_grade(dist, alt, p.grade_smoothing_m, p.grade_clip)
    out["grade"] = grade
    out["gap_speed_m_s"] = run_gap_speed(speed, grade, grade_method)
    gap_filled = np.nan_to_num(out["gap_speed_m_s"].to_numpy(), nan=0.0)
    out["gap_lag_m_s"] = _first_order_lag(t, gap_filled, p.hr_lag_tau_s)

    # Moving: stops, pauses and walking breaks are below min_speed; above max_speed is a GPS glitch.
    out["stopped"] = ~(speed >= p.min_speed_m_s)
    out["too_fast"] = speed > p.max_speed_m_s
    out["warmup"] = t < p.warmup_s

    # Heart rate: implausible values, spikes against a rolling median, optical cadence lock.
    hr = pd.to_numeric(df["heart_rate_bpm"], errors="coerce").to_numpy(dtype=float) if "heart_rate_bpm" in df else np.full(n, np.nan)
    out["heart_rate_bpm"] = hr
    missing = ~np.isfinite(hr)
    implausible = ~missing & ((hr < p.hr_min_bpm) | (hr > p.hr_max_bpm))
    hr_ok = np.where(missing | implausible, np.nan, hr)
    med = _rolling_time(hr_ok, t, p.hr_spike_window_s, "median") if n else hr_ok
    spike = np.isfinite(hr_ok) & (np.abs(hr_ok - med) > p.hr_spike_bpm)
    cad = pd.to_numeric(df["cadence_spm"], errors="coerce").to_numpy(dtype=float) if "cadence_spm" in df else np.full(n, np.nan)
    with np.errstate(invalid="ignore"):
        near = (np.abs(hr_ok - cad) <= p.cadence_lock_bpm) | (np.abs(hr_ok - cad / 2) <= p.cadence_lock_bpm)
    lock = _runs_of_true(np.nan_to_num(near, nan=0).astype(bool) & np.isfinite(cad) & np.isfinite(hr_ok),
                         t, out["dt_s"].to_numpy(), p.cadence_lock_min_s)
    out["hr_missing"] = missing
    out["hr_implausible"] = implausible
    out["hr_spike"] = spike
    out["cadence_lock"] = lock
    out["hr_bpm"] = np.where(spike | lock, np.nan, hr_ok)
    temp = pd.to_numeric(df["temperature_c"], errors="coerce").to_numpy(dtype=float) if "temperature_c" in df else np.full(n, np.nan)
    out["temperature_c"] = temp
    out.attrs["speed_source"] = source
    out.attrs["treadmill"] = treadmill
    return out


def _change_score_pct(t_s: np.ndarray, x: np.ndarray, window_s: float, floor: float) -> np.ndarray:
    """|mean over the next window - mean over the previous window| / previous mean, in percent."""
    before = _window_mean(t_s, x, window_s, 0.0)
    after = _window_mean(t_s, x, 0.0, window_s)
    return np.abs(after - before) / np.maximum(before, floor) * 100


def run_steady_segments(clean: pd.DataFrame, params: AnalysisParams | None = None) -> pd.DataFrame:
    """Mark steady samples in the output of :func:`run_clean`; adds ``transition``, ``unsteady``,
    ``surge`` and ``steady`` (and ``attrs['surges']``, the number of surges).

    Transition: a sustained change of pace. The mean over the next ``transition_window_s`` differs from
    the mean over the previous one by more than ``transition_change_pct`` in BOTH speed and
    grade-adjusted speed (a change in speed alone is a hill run at even effort; a change in
    grade-adjusted speed alone is altitude noise); the ``transition_hold_s`` after it are dropped because
    HR needs about a minute to settle at a new pace. Restarts after pauses and gaps count too.

    Unsteady: grade-adjusted speed, averaged over a centred ``steady_smoothing_s`` (HR cannot follow
    shorter fluctuations, and GPS/altitude noise lives there), outside ``steady_band_pct`` of its
    centred rolling median over ``steady_window_s``.

    Surge: at least ``interval_surge_min_s`` where the 60-s mean of both speed and grade-adjusted speed
    is more than ``interval_surge_pct`` above the run's median moving value after the warm-up (an
    interval rep, a fartlek surge). ``steady`` also requires clean HR, no warm-up, movement.
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
    score = np.minimum(_change_score_pct(t, gap, p.transition_window_s, p.min_speed_m_s),
                       _change_score_pct(t, speed, p.transition_window_s, p.min_speed_m_s))
    event = (score > p.transition_change_pct) | out["after_gap"].to_numpy()
    last_event = pd.Series(np.where(event, t, np.nan)).ffill().to_numpy()
    transition = np.isfinite(last_event) & (t - last_event <= p.transition_hold_s)
    half = p.steady_smoothing_s / 2
    gap_smooth = _window_mean(t, gap, half, half) if half > 0 else gap
    ref = _rolling_time(np.where(moving, gap_smooth, np.nan), t, p.steady_window_s, "median")
    with np.errstate(invalid="ignore", divide="ignore"):
        unsteady = ~(np.abs(gap_smooth - ref) <= p.steady_band_pct / 100 * ref)
    # Surges (interval reps): both speed and grade-adjusted speed well above the run's usual pace.
    main = moving & ~out["warmup"].to_numpy()
    surge = np.zeros(len(out), dtype=bool)
    if main.sum() >= 2:
        factor = 1 + p.interval_surge_pct / 100
        high = main.copy()
        for x in (gap, speed):
            high &= _window_mean(t, x, 30.0, 30.0) > factor * float(np.median(x[main]))
        surge = _runs_of_true(high, t, out["dt_s"].to_numpy(dtype=float), p.interval_surge_min_s)
    out["transition"] = transition
    out["unsteady"] = unsteady
    out["surge"] = surge
    out.attrs["surges"] = int(np.sum(np.diff(np.concatenate([[0], surge.astype(int)])) == 1))
    out["steady"] = (
        ~out["warmup"] & ~out["stopped"] & ~out["too_fast"] & ~out["after_gap"]
        & ~out["transition"] & ~out["unsteady"] & np.isfinite(out["hr_bpm"])
    )
    return out

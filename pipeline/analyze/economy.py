"""The headline economy index: an athlete-level model of heart rate against grade-adjusted speed.

Model, fitted on the steady samples of all of one athlete's included runs (run j, sample k)::

    HR_jk = alpha_j + beta * v_jk + delta * (t_jk - t_ref) + eps_jk

* ``v`` is grade-adjusted speed passed through a first-order lag (HR follows pace with tau ~30 s), so
  hills and small surges inside steady stretches do not flatten the slope;
* ``beta`` (bpm per m/s) and ``delta`` (cardiac drift, bpm per s of elapsed time) are shared by all runs
  and estimated WITHIN runs (fixed effects: each run's own mean is removed), so a run's overall fitness,
  the weather and the season cannot leak into them;
* ``alpha_j`` is the run's own intercept: its fitness on that day, referred to elapsed time ``t_ref``.

Heat: temperature changes little within a run (and the device warms with the body, so within-run
temperature is confounded with drift), but a lot across runs, mostly with the season — which is also
when training and fitness change. The default ``heat_method="detrended"`` estimates the heat
coefficient ``gamma`` (bpm per degC) only from day-to-day weather: each run's HR-at-reference and
heat excess max(0, T - T_ref) minus their means over the runs within +-``heat_detrend_days``; slow changes (fitness, the
block, the season) cancel out. ``"fixed"`` uses ``heat_bpm_per_c``; ``"none"`` does not adjust.

    hr_at_ref_j = alpha_j + beta * v_ref - gamma * max(0, T_j - T_ref)  (T_j unknown: no heat term)
    economy_j   = v_ref * 60 / hr_at_ref_j                              (m per beat at v_ref)

Because speed enters through the shared slope, a run at a faster pace with the same fitness gives the
same ``hr_at_ref`` — the index is pace-invariant, unlike speed/HR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analyze.params import HEAT_METHODS, AnalysisParams


@dataclass(frozen=True)
class EconomyModel:
    """Fitted athlete-level HR model and the per-run index (one row per run in ``runs``)."""

    ref_speed_m_s: float
    ref_elapsed_s: float
    ref_temperature_c: float
    slope_bpm_per_m_s: float
    drift_bpm_per_h: float
    heat_bpm_per_c: float          # 0 when not adjusted
    heat_method: str
    n_samples: int
    runs: pd.DataFrame             # activity_id, intercept_bpm, hr_at_ref_bpm, economy_m_per_beat


def economy_ref_speed(run_rows: pd.DataFrame, configured_m_s: float | None = None) -> float:
    """Reference speed (m/s): the athlete's configured ``ref_speed_m_s``, else the median of the
    included runs' mean steady grade-adjusted speeds."""
    if configured_m_s is not None and np.isfinite(configured_m_s) and configured_m_s > 0:
        return float(configured_m_s)
    gap = pd.to_numeric(run_rows["gap_speed_m_s"], errors="coerce").dropna()
    return float(gap.median()) if len(gap) else float("nan")


def heat_excess_c(temperature_c: np.ndarray, ref_temperature_c: float) -> np.ndarray:
    """Degrees above the heat threshold, max(0, T - T_ref): HR at a fixed pace is roughly flat in cool
    weather and rises above ~15 C air (Ely et al. 2007), i.e. ~20 C on a wrist device worn while running."""
    return np.maximum(0.0, np.asarray(temperature_c, dtype=float) - ref_temperature_c)


def economy_heat_coefficient(hr_unadjusted: np.ndarray, temperature_c: np.ndarray, start_time: pd.Series,
                             half_width_days: float = 14.0, min_runs: int = 20) -> float:
    """Heat coefficient (bpm per degC) from day-to-day weather, with slow changes removed.

    For each run with a temperature, its HR-at-reference and temperature are taken relative to the mean
    over the OTHER runs within +-``half_width_days``; gamma is the least-squares slope of the first on
    the second (through the origin). Returns 0 when fewer than ``min_runs`` runs have a temperature or
    the local temperature deviations are too small (SD < 0.5 degC) to say anything; negative estimates
    are set to 0 (heat does not lower HR at a fixed pace in the range seen by running watches).
    """
    hr = np.asarray(hr_unadjusted, dtype=float)
    temp = np.asarray(temperature_c, dtype=float)
    days = (pd.to_datetime(start_time, utc=True) - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy() / 86400
    ok = np.isfinite(hr) & np.isfinite(temp)
    if ok.sum() < min_runs:
        return 0.0
    hr, temp, days = hr[ok], temp[ok], days[ok]
    near = (np.abs(days[:, None] - days[None, :]) <= half_width_days) & ~np.eye(len(days), dtype=bool)
    has = near.sum(axis=1) >= 2
    if has.sum() < min_runs:
        return 0.0
    cnt = near.sum(axis=1)[has]
    d_hr = hr[has] - (near[has] @ hr) / cnt
    d_t = temp[has] - (near[has] @ temp) / cnt
    if np.std(d_t) < 0.5:
        return 0.0
    return max(0.0, float(np.sum(d_hr * d_t) / np.sum(d_t * d_t)))


def economy_bins(steady: pd.DataFrame, bin_s: float) -> pd.DataFrame:
    """Time-weighted means of steady samples per run and ``bin_s``-second bin of elapsed time.

    Returns activity_id, t_s, dt_s (summed: the bin's weight), gap_lag_m_s, hr_bpm. ``bin_s`` <= 0 keeps
    the samples as they are.
    """
    cols = ["activity_id", "t_s", "dt_s", "gap_lag_m_s", "hr_bpm"]
    if bin_s <= 0 or steady.empty:
        return steady[cols]
    d = steady[cols].copy()
    d["_bin"] = np.floor(d["t_s"] / bin_s)
    for c in ("t_s", "gap_lag_m_s", "hr_bpm"):
        d[c] = d[c] * d["dt_s"]
    g = d.groupby(["activity_id", "_bin"], sort=False)[["t_s", "dt_s", "gap_lag_m_s", "hr_bpm"]].sum()
    for c in ("t_s", "gap_lag_m_s", "hr_bpm"):
        g[c] = g[c] / g["dt_s"]
    return g.reset_index()[cols]


def economy_fit(steady: pd.DataFrame, runs: pd.DataFrame, ref_speed_m_s: float,
                params: AnalysisParams | None = None) -> EconomyModel:
    """Fit the athlete-level HR model and compute each run's ``hr_at_ref_bpm`` and ``economy_m_per_beat``.

    Parameters
    ----------
    steady : steady samples of the athlete's included runs: activity_id, t_s (s), dt_s (s, weights),
        gap_lag_m_s (m/s), hr_bpm (bpm).
    runs : one row per included run: activity_id, start_time, temperature_c (degC, NaN if unknown).
    ref_speed_m_s : v_ref (see :func:`economy_ref_speed`).
    """
    p = params or AnalysisParams()
    if p.heat_method not in HEAT_METHODS:
        raise ValueError(f"unknown heat method {p.heat_method!r}; valid: {', '.join(HEAT_METHODS)}")
    runs = runs.reset_index(drop=True)
    empty = runs[["activity_id"]].assign(intercept_bpm=np.nan, hr_at_ref_bpm=np.nan, economy_m_per_beat=np.nan)
    s = steady[steady["activity_id"].isin(runs["activity_id"])]
    s = s[np.isfinite(s["hr_bpm"]) & np.isfinite(s["gap_lag_m_s"])]
    if s.empty or not np.isfinite(ref_speed_m_s):
        return EconomyModel(ref_speed_m_s, p.ref_elapsed_s, p.ref_temperature_c, np.nan, np.nan, 0.0,
                            p.heat_method, 0, empty)
    # Average steady samples in bins of model_bin_s elapsed seconds within each run: speed measurement
    # noise (GPS/foot-pod error, grade error) averages out instead of flattening the slope.
    s = economy_bins(s, p.model_bin_s)
    w = s["dt_s"].to_numpy(dtype=float)
    hr = s["hr_bpm"].to_numpy(dtype=float)
    v = s["gap_lag_m_s"].to_numpy(dtype=float)
    t = (s["t_s"].to_numpy(dtype=float) - p.ref_elapsed_s) / 3600.0  # hours from the reference time
    codes, uniq = pd.factorize(s["activity_id"])

    def run_mean(x: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=w * x) / np.bincount(codes, weights=w)

    # Within-run (fixed-effects) regression: remove each run's weighted means, then weighted LS.
    m_hr, m_v, m_t = run_mean(hr), run_mean(v), run_mean(t)
    X = np.column_stack([v - m_v[codes], t - m_t[codes]])
    y = hr - m_hr[codes]
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    beta, delta = float(coef[0]), float(coef[1])
    # Each run's intercept at v = 0 and t = t_ref (its own temperature still inside).
    intercept = m_hr - beta * m_v - delta * m_t
    per_run = pd.DataFrame({"activity_id": uniq, "intercept_bpm": intercept})
    out = runs[["activity_id", "start_time", "temperature_c"]].merge(per_run, on="activity_id", how="left")
    hr_unadj = out["intercept_bpm"].to_numpy() + beta * ref_speed_m_s
    temp = pd.to_numeric(out["temperature_c"], errors="coerce").to_numpy(dtype=float)
    # Heat: see the module docstring for why the default uses only day-to-day weather.
    if p.heat_method == "detrended":
        gamma = economy_heat_coefficient(hr_unadj, heat_excess_c(temp, p.ref_temperature_c), out["start_time"],
                                         p.heat_detrend_days, p.heat_min_runs)
    elif p.heat_method == "fixed":
        gamma = float(p.heat_bpm_per_c)
    else:
        gamma = 0.0
    heat = np.where(np.isfinite(temp), gamma * heat_excess_c(temp, p.ref_temperature_c), 0.0)
    hr_ref = hr_unadj - heat
    out["hr_at_ref_bpm"] = hr_ref
    out["economy_m_per_beat"] = ref_speed_m_s * 60.0 / hr_ref
    return EconomyModel(
        ref_speed_m_s=float(ref_speed_m_s), ref_elapsed_s=p.ref_elapsed_s, ref_temperature_c=p.ref_temperature_c,
        slope_bpm_per_m_s=beta, drift_bpm_per_h=delta, heat_bpm_per_c=gamma, heat_method=p.heat_method,
        n_samples=int(len(s)), runs=out[["activity_id", "intercept_bpm", "hr_at_ref_bpm", "economy_m_per_beat"]],
    )

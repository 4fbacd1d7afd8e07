"""The headline economy index: an athlete-level model of heart rate against grade-adjusted speed.

Model, fitted on the steady samples of all of one athlete's included runs (run j, sample k)::

    HR_jk = alpha_j + beta * v_jk + delta * (t_jk - t_ref) + eps_jk

* ``v`` is grade-adjusted speed passed through a first-order lag (HR follows pace with tau ~30 s), so
  hills and small surges inside steady stretches do not flatten the slope;
* ``beta`` (bpm per m/s) and ``delta`` (cardiac drift, bpm per s of elapsed time) are shared by all runs
  and estimated WITHIN runs (fixed effects: each run's own mean is removed), so a run's overall fitness,
  the weather and the season cannot leak into them. Samples are averaged in 5-min bins, and each bin's
  speed is instrumented by its neighbouring bins (``slope_method="adjacent_bins_iv"``, Griliches &
  Hausman 1986): speed measurement noise would otherwise flatten ``beta`` (errors in variables; 21.4
  instead of 22 bpm per m/s in simulation), and a flattened slope makes faster runs read too high;
* ``alpha_j`` is the run's own intercept: its fitness on that day, referred to elapsed time ``t_ref``.

Heat: temperature changes little within a run (and the device warms with the body, so within-run
temperature is confounded with drift), but a lot across runs, mostly with the season — which is also
when training and fitness change. The run's temperature is what the device SETTLED at (the indoor start
removed, :func:`pipeline.analyze.runs.run_settled_temperature_c`); the heat excess is max(0, T - T_ref)
with T_ref = 21.5 degC on the device (~15 degC air plus ~6.5 degC of wrist warming). The default
``heat_method="detrended"`` estimates the heat coefficient ``gamma`` (bpm per degC) only from
day-to-day weather: each run's HR-at-reference and heat excess minus their means over the runs within
+-``heat_detrend_days``; slow changes (fitness, the block, the season) cancel out. A wrist device reads
air temperature plus a warming that differs from run to run (``heat_sensor_sd_c``), which flattens that
slope; it is corrected by the reliability ratio (errors in variables, Fuller 1987) and its block-jackknife
standard error is carried into the block-effect CIs. ``"fixed"`` uses ``heat_bpm_per_c``; ``"none"``
does not adjust.

    hr_at_ref_j = alpha_j + beta * v_ref - gamma * max(0, T_j - T_ref)  (T_j unknown: no heat term)
    economy_j   = v_ref * 60 / hr_at_ref_j                              (m per beat at v_ref)

Because speed enters through the shared slope, a run at a faster pace with the same fitness gives the
same ``hr_at_ref`` — the index is pace-invariant, unlike speed/HR.

References: Griliches Z, Hausman JA (1986). Errors in variables in panel data. J Econometrics 31:93-118.
Fuller WA (1987). Measurement Error Models. Wiley. Staiger D, Stock JH (1997). Instrumental variables
regression with weak instruments. Econometrica 65:557-586. Ely MR et al. (2007) Med Sci Sports Exerc 39:487.
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
    heat_se_bpm_per_c: float = float("nan")   # standard error of heat_bpm_per_c (detrended); 0 for fixed
    heat_naive_bpm_per_c: float = float("nan")  # detrended slope before the errors-in-variables correction
    slope_method: str = ""                    # how the slope was estimated (adjacent_bins_iv or within)


def economy_ref_speed(run_rows: pd.DataFrame, configured_m_s: float | None = None) -> float:
    """Reference speed (m/s): the athlete's configured ``ref_speed_m_s``, else the median of the
    included runs' mean steady grade-adjusted speeds."""
    if configured_m_s is not None and np.isfinite(configured_m_s) and configured_m_s > 0:
        return float(configured_m_s)
    gap = pd.to_numeric(run_rows["gap_speed_m_s"], errors="coerce").dropna()
    return float(gap.median()) if len(gap) else float("nan")


def heat_temperature(runs: pd.DataFrame) -> np.ndarray:
    """The per-run temperature the heat model uses: ``heat_temperature_c`` (settled device temperature,
    see :func:`pipeline.analyze.runs.run_settled_temperature_c`) when present, else ``temperature_c``."""
    col = "heat_temperature_c" if "heat_temperature_c" in runs else "temperature_c"
    if col not in runs:
        return np.full(len(runs), np.nan)
    return pd.to_numeric(runs[col], errors="coerce").to_numpy(dtype=float)


def heat_excess_c(temperature_c: np.ndarray, ref_temperature_c: float) -> np.ndarray:
    """Degrees above the heat threshold, max(0, T - T_ref): HR at a fixed pace is roughly flat in cool
    weather and rises above ~15 C air (Ely et al. 2007), i.e. ~20 C on a wrist device worn while running."""
    return np.maximum(0.0, np.asarray(temperature_c, dtype=float) - ref_temperature_c)


@dataclass(frozen=True)
class HeatFit:
    """Heat coefficient from day-to-day weather: estimate, its standard error and how it was corrected."""

    gamma_bpm_per_c: float          # after the errors-in-variables correction, >= 0
    se_bpm_per_c: float             # block-jackknife standard error (4-week blocks); NaN if not estimable
    naive_bpm_per_c: float          # least-squares slope before the correction
    reliability: float              # share of the local temperature variance that is not sensor noise
    n_runs: int


NO_HEAT = HeatFit(0.0, float("nan"), 0.0, float("nan"), 0)


def economy_heat_fit(hr_unadjusted: np.ndarray, excess_c: np.ndarray, start_time: pd.Series,
                     half_width_days: float = 14.0, min_runs: int = 20, sensor_sd_c: float = 0.0,
                     jackknife_days: float = 28.0) -> HeatFit:
    """Heat coefficient (bpm per degC of heat excess) from day-to-day weather, with slow changes removed.

    For each run with a temperature, its HR-at-reference and heat excess are taken relative to the mean
    over the OTHER runs within +-``half_width_days``; gamma is the least-squares slope of the first on
    the second (through the origin). Slow changes (fitness, a block, the season) cancel out.

    Errors in variables: a wrist device reads air temperature plus a warming by the body that differs
    from run to run (sleeve, sun, wind, sweat) by ``sensor_sd_c`` (SD, degC). That noise is part of the
    local temperature deviations and flattens the slope by the reliability ratio
    lambda = 1 - noise variance / deviation variance (Fuller 1987, method of moments). With
    ``sensor_sd_c`` > 0 the slope is divided by lambda (lambda floored at 0.5, so a noisy estimate is
    never more than doubled). Only runs above the heat threshold carry the noise into the excess.

    Returns :data:`NO_HEAT` (gamma 0) when fewer than ``min_runs`` runs have a temperature or the local
    deviations are too small (SD < 0.5 degC) to say anything; negative estimates are set to 0 (heat does
    not lower HR at a fixed pace in the range seen by running watches). The standard error is a delete-
    one-block jackknife over ``jackknife_days`` blocks of the record (the local means make neighbouring
    deviations correlated, so a per-run formula would be optimistic).
    """
    hr = np.asarray(hr_unadjusted, dtype=float)
    x = np.asarray(excess_c, dtype=float)
    days = (pd.to_datetime(pd.Series(start_time), utc=True)
            - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy() / 86400
    ok = np.isfinite(hr) & np.isfinite(x)
    if ok.sum() < min_runs:
        return NO_HEAT
    hr, x, days = hr[ok], x[ok], days[ok]
    near = (np.abs(days[:, None] - days[None, :]) <= half_width_days) & ~np.eye(len(days), dtype=bool)
    has = near.sum(axis=1) >= 2
    if has.sum() < min_runs:
        return NO_HEAT
    nb = near[has].astype(float)
    cnt = nb.sum(axis=1)
    d_hr = hr[has] - (nb @ hr) / cnt
    d_x = x[has] - (nb @ x) / cnt
    if np.std(d_x) < 0.5:
        return NO_HEAT
    # Sensor-noise variance inside each deviation: the run's own (if above the threshold) plus its
    # neighbours' share through their mean.
    above = (x > 0).astype(float)
    noise_var = sensor_sd_c ** 2 * (above[has] + (nb @ above) / cnt ** 2)

    def slope(mask: np.ndarray) -> tuple[float, float, float]:
        sxx = float(np.sum(d_x[mask] ** 2))
        naive = float(np.sum(d_hr[mask] * d_x[mask]) / sxx) if sxx > 0 else float("nan")
        lam = max(0.5, 1.0 - float(np.sum(noise_var[mask])) / sxx) if sxx > 0 else float("nan")
        return naive / lam, naive, lam

    gamma, naive, lam = slope(np.ones(len(d_x), dtype=bool))
    blocks = np.floor((days[has] - days[has].min()) / jackknife_days).astype(int)
    ids = np.unique(blocks)
    se = float("nan")
    if len(ids) >= 3:
        reps = np.array([slope(blocks != b)[0] for b in ids])
        reps = reps[np.isfinite(reps)]
        if len(reps) >= 3:
            se = float(np.sqrt((len(reps) - 1) / len(reps) * np.sum((reps - reps.mean()) ** 2)))
    return HeatFit(max(0.0, gamma), se, naive, lam, int(has.sum()))


def economy_heat_coefficient(hr_unadjusted: np.ndarray, temperature_c: np.ndarray, start_time: pd.Series,
                             half_width_days: float = 14.0, min_runs: int = 20, sensor_sd_c: float = 0.0) -> float:
    """The heat coefficient of :func:`economy_heat_fit` alone (``temperature_c`` = heat excess, degC)."""
    return economy_heat_fit(hr_unadjusted, temperature_c, start_time, half_width_days, min_runs,
                            sensor_sd_c).gamma_bpm_per_c


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


def economy_adjacent_instrument(codes: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For each bin, the mean speed of the neighbouring bins of the same run (the one before and the one
    after; the bin's own value where it has no neighbour).

    Used as the instrument for a bin's own speed (Griliches & Hausman 1986, errors in variables in panel
    data): a sustained change of pace (a tempo segment) shows in neighbouring bins too, while speed
    measurement noise, which lasts seconds to a minute or two, is nearly independent between 5-minute
    bins. The instrument is therefore correlated with the true speed but not with the noise.
    """
    codes = np.asarray(codes)
    v = np.asarray(v, dtype=float)
    n = len(v)
    prev_ok = np.r_[False, codes[1:] == codes[:-1]]
    next_ok = np.r_[codes[:-1] == codes[1:], False]
    prev = np.where(prev_ok, np.r_[np.nan, v[:-1]], np.nan)
    nxt = np.where(next_ok, np.r_[v[1:], np.nan], np.nan)
    both = np.column_stack([prev, nxt])
    cnt = np.isfinite(both).sum(axis=1)
    z = np.where(cnt > 0, np.nansum(both, axis=1) / np.maximum(cnt, 1), v) if n else v
    return z


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
    slope_used = "within"
    if p.slope_method == "adjacent_bins_iv":
        # Errors in variables: bins still carry speed measurement noise, which flattens a least-squares
        # slope (in simulation 21.4 instead of 22 bpm per m/s: runs faster than v_ref then read ~0.3 bpm
        # high per m/s). Instrument each bin's speed by its neighbours' (two-stage least squares), unless
        # the instrument is weak (first-stage F < 10, Staiger & Stock 1997): then plain least squares.
        z = economy_adjacent_instrument(codes, v)
        zc = z - run_mean(z)[codes]
        first, *_ = np.linalg.lstsq(np.column_stack([zc, X[:, 1]]) * sw[:, None], X[:, 0] * sw, rcond=None)
        resid = (X[:, 0] - np.column_stack([zc, X[:, 1]]) @ first) * sw
        dof = max(1, len(v) - len(uniq) - 2)
        sxx = float(np.sum(w * zc ** 2))
        f_stat = (first[0] ** 2 * sxx) / (float(np.sum(resid ** 2)) / dof) if np.sum(resid ** 2) > 0 else np.inf
        Z = np.column_stack([zc, X[:, 1]])
        ZX = (Z * w[:, None]).T @ X
        if f_stat >= 10 and np.linalg.cond(ZX) < 1e8:
            coef = np.linalg.solve(ZX, (Z * w[:, None]).T @ y)
            slope_used = "adjacent_bins_iv"
    beta, delta = float(coef[0]), float(coef[1])
    # Each run's intercept at v = 0 and t = t_ref (its own temperature still inside).
    intercept = m_hr - beta * m_v - delta * m_t
    per_run = pd.DataFrame({"activity_id": uniq, "intercept_bpm": intercept})
    out = runs[["activity_id", "start_time"]].assign(_temp=heat_temperature(runs)).merge(
        per_run, on="activity_id", how="left")
    hr_unadj = out["intercept_bpm"].to_numpy() + beta * ref_speed_m_s
    temp = out["_temp"].to_numpy(dtype=float)
    # Heat: see the module docstring for why the default uses only day-to-day weather.
    heat_fit = NO_HEAT
    if p.heat_method == "detrended":
        heat_fit = economy_heat_fit(hr_unadj, heat_excess_c(temp, p.ref_temperature_c), out["start_time"],
                                    p.heat_detrend_days, p.heat_min_runs, p.heat_sensor_sd_c)
        gamma = heat_fit.gamma_bpm_per_c
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
        heat_se_bpm_per_c=(heat_fit.se_bpm_per_c if p.heat_method == "detrended" else 0.0),
        heat_naive_bpm_per_c=heat_fit.naive_bpm_per_c, slope_method=slope_used,
        n_samples=int(len(s)), runs=out[["activity_id", "intercept_bpm", "hr_at_ref_bpm", "economy_m_per_beat"]],
    )


def model_provenance(model: EconomyModel | None) -> dict[str, float | str | int | None]:
    """The fitted model's values as ``analysis_runs`` columns (all None when no model could be fitted):
    reference speed (m/s), elapsed time (s) and heat threshold (degC), HR-speed slope (bpm per m/s) and how
    it was estimated, cardiac drift (bpm/h), heat coefficient and its SE (bpm per degC), bins fitted."""
    if model is None:
        return {k: None for k in ("ref_speed_m_s", "ref_elapsed_s", "ref_temperature_c", "hr_speed_slope_bpm_per_m_s",
                                  "slope_method", "drift_bpm_per_h", "heat_bpm_per_c", "heat_se_bpm_per_c",
                                  "heat_method", "model_samples")}
    return {"ref_speed_m_s": model.ref_speed_m_s, "ref_elapsed_s": model.ref_elapsed_s,
            "ref_temperature_c": model.ref_temperature_c, "hr_speed_slope_bpm_per_m_s": model.slope_bpm_per_m_s,
            "slope_method": model.slope_method or None, "drift_bpm_per_h": model.drift_bpm_per_h,
            "heat_bpm_per_c": model.heat_bpm_per_c, "heat_se_bpm_per_c": model.heat_se_bpm_per_c,
            "heat_method": model.heat_method, "model_samples": model.n_samples}

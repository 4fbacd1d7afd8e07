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

Heat (:mod:`pipeline.analyze.heat`): each run's HR at the reference speed before heat,
``alpha_j + beta * v_ref``, is corrected by the athlete's heat model, whose threshold and coefficient are
estimated from day-to-day weather per temperature source (archive air weather, else the watch's settled
temperature); runs without a temperature get the adjustment of the runs around them, or none and no
index when there are none nearby.

    hr_at_ref_j = alpha_j + beta * v_ref - heat_adjustment_j
    economy_j   = v_ref * 60 / hr_at_ref_j                              (m per beat at v_ref)

Because speed enters through the shared slope, a run at a faster pace with the same fitness gives the
same ``hr_at_ref`` — the index is pace-invariant, unlike speed/HR.

References: Griliches Z, Hausman JA (1986). Errors in variables in panel data. J Econometrics 31:93-118.
Fuller WA (1987). Measurement Error Models. Wiley. Staiger D, Stock JH (1997). Instrumental variables
regression with weak instruments. Econometrica 65:557-586. Ely MR et al. (2007) Med Sci Sports Exerc 39:487.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.analyze.heat import HeatFit, HeatModel, heat_model
from pipeline.analyze.params import HEAT_METHODS, AnalysisParams

HEAT_RUN_COLUMNS = ["temperature_source", "heat_temperature_c", "heat_model", "heat_excess_c",
                    "heat_adjustment_bpm", "heat_usable"]


@dataclass(frozen=True)
class EconomyModel:
    """Fitted athlete-level HR model and the per-run index (one row per run in ``runs``)."""

    ref_speed_m_s: float
    ref_elapsed_s: float
    slope_bpm_per_m_s: float
    drift_bpm_per_h: float
    heat_method: str
    n_samples: int
    runs: pd.DataFrame             # activity_id, intercept_bpm, hr_at_ref_bpm, economy_m_per_beat + HEAT_RUN_COLUMNS
    heat: HeatModel = field(default_factory=HeatModel)
    slope_method: str = ""         # how the slope was estimated (adjacent_bins_iv or within)

    @property
    def main_heat(self) -> HeatFit:
        """The heat fit most runs use: air weather if there is one, else the device's."""
        return self.heat.fits.get("air") or self.heat.fits.get("device") or HeatFit(0.0, float("nan"), 0.0,
                                                                                     float("nan"), 0)

    @property
    def heat_bpm_per_c(self) -> float:
        return self.main_heat.gamma_bpm_per_c

    @property
    def heat_se_bpm_per_c(self) -> float:
        return self.main_heat.se_bpm_per_c

    @property
    def heat_naive_bpm_per_c(self) -> float:
        return self.main_heat.naive_bpm_per_c

    @property
    def heat_threshold_c(self) -> float:
        return self.main_heat.threshold_c


# The columns of a model bin (:func:`economy_bins`), besides its run's activity_id.
MODEL_BIN_COLUMNS = ("t_s", "dt_s", "gap_lag_m_s", "hr_bpm")


def economy_ref_speed(run_rows: pd.DataFrame, configured_m_s: float | None = None) -> float:
    """Reference speed (m/s): the athlete's configured ``ref_speed_m_s``, else the median of the
    included runs' mean steady grade-adjusted speeds."""
    if configured_m_s is not None and np.isfinite(configured_m_s) and configured_m_s > 0:
        return float(configured_m_s)
    gap = pd.to_numeric(run_rows["gap_speed_m_s"], errors="coerce").dropna()
    return float(gap.median()) if len(gap) else float("nan")


def economy_bins(steady: pd.DataFrame, bin_s: float) -> pd.DataFrame:
    """Time-weighted means of steady samples per run and ``bin_s``-second bin of elapsed time: what the
    model is fitted on (speed measurement noise averages out instead of flattening the slope).

    Returns activity_id, t_s, dt_s (summed: the bin's weight), gap_lag_m_s, hr_bpm. ``bin_s`` <= 0 keeps
    the samples as they are.
    """
    cols = ["activity_id", *MODEL_BIN_COLUMNS]
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


def economy_slope_drift(s: pd.DataFrame, p: AnalysisParams) -> tuple[float, float, str, pd.DataFrame]:
    """Shared slope (bpm per m/s) and drift (bpm per h) estimated within runs, and each run's intercept.

    ``s``: binned steady samples (activity_id, t_s, dt_s, gap_lag_m_s, hr_bpm). Returns slope, drift, the
    slope method used and a frame activity_id, intercept_bpm (HR at v = 0 and t = t_ref, heat inside).
    """
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
        iv = _adjacent_iv(codes, v, X, y, w, run_mean, len(uniq))
        if iv is not None:
            coef, slope_used = iv, "adjacent_bins_iv"
    beta, delta = float(coef[0]), float(coef[1])
    intercept = m_hr - beta * m_v - delta * m_t
    return beta, delta, slope_used, pd.DataFrame({"activity_id": uniq, "intercept_bpm": intercept})


def _adjacent_iv(codes, v, X, y, w, run_mean, n_runs) -> np.ndarray | None:
    """Two-stage least squares with each bin's speed instrumented by its neighbours' (see the module
    docstring); None when the instrument is weak (first-stage F < 10, Staiger & Stock 1997).

    Errors in variables: bins still carry speed measurement noise, which flattens a least-squares slope
    (in simulation 21.4 instead of 22 bpm per m/s: runs faster than v_ref then read ~0.3 bpm high per m/s).
    """
    sw = np.sqrt(w)
    z = economy_adjacent_instrument(codes, v)
    zc = z - run_mean(z)[codes]
    Z = np.column_stack([zc, X[:, 1]])
    first, *_ = np.linalg.lstsq(Z * sw[:, None], X[:, 0] * sw, rcond=None)
    resid = (X[:, 0] - Z @ first) * sw
    dof = max(1, len(v) - n_runs - 2)
    sxx = float(np.sum(w * zc ** 2))
    f_stat = (first[0] ** 2 * sxx) / (float(np.sum(resid ** 2)) / dof) if np.sum(resid ** 2) > 0 else np.inf
    ZX = (Z * w[:, None]).T @ X
    if f_stat >= 10 and np.linalg.cond(ZX) < 1e8:
        return np.linalg.solve(ZX, (Z * w[:, None]).T @ y)
    return None


def economy_fit(steady: pd.DataFrame, runs: pd.DataFrame, ref_speed_m_s: float,
                params: AnalysisParams | None = None) -> EconomyModel:
    """Fit the athlete-level HR model and compute each run's ``hr_at_ref_bpm`` and ``economy_m_per_beat``.

    Parameters
    ----------
    steady : steady samples of the athlete's included runs: activity_id, t_s (s), dt_s (s, weights),
        gap_lag_m_s (m/s), hr_bpm (bpm).
    runs : one row per included run: activity_id, start_time, device_temperature_c (settled device
        reading, degC, NaN if unknown) and optionally the archive weather columns (air_temperature_c,
        dew_point_c, relative_humidity_pct; see :func:`pipeline.analyze.heat.heat_model`).
    ref_speed_m_s : v_ref (see :func:`economy_ref_speed`).
    """
    p = params or AnalysisParams()
    s = steady[steady["activity_id"].isin(runs["activity_id"])]
    s = s[np.isfinite(s["hr_bpm"]) & np.isfinite(s["gap_lag_m_s"])]
    return economy_fit_bins(economy_bins(s, p.model_bin_s), runs, ref_speed_m_s, p)


def economy_run_bins(steady: pd.DataFrame, bin_s: float) -> np.ndarray:
    """One run's contribution to the model: :func:`economy_bins` of its steady samples with HR and speed,
    as an array with the columns of :data:`MODEL_BIN_COLUMNS`. Bins never span runs, so the bins of the
    athlete's runs concatenated in run order are exactly :func:`economy_bins` of their samples
    concatenated: each run is binned once, when it is cleaned, and its samples need not be kept.

    The same products, the same grouped sums (pandas' compensated group sum, bins in order of appearance)
    and the same quotients as :func:`economy_bins`, bit for bit (tested), without its frame copies and
    two-key grouping: it runs for every run cleaned (~0.6 ms instead of ~4.5 ms for an hour's run)."""
    hr = steady["hr_bpm"].to_numpy(dtype=float)
    v = steady["gap_lag_m_s"].to_numpy(dtype=float)
    ok = np.isfinite(hr) & np.isfinite(v)
    t, dt, v, hr = (steady["t_s"].to_numpy(dtype=float)[ok], steady["dt_s"].to_numpy(dtype=float)[ok], v[ok],
                    hr[ok])
    if bin_s <= 0 or not len(t):
        return np.column_stack([t, dt, v, hr])
    weighted = pd.DataFrame({"t_s": t * dt, "dt_s": dt, "gap_lag_m_s": v * dt, "hr_bpm": hr * dt})
    g = weighted.groupby(np.floor(t / bin_s), sort=False).sum().to_numpy(dtype=float)
    return np.column_stack([g[:, 0] / g[:, 1], g[:, 1], g[:, 2] / g[:, 1], g[:, 3] / g[:, 1]])


def economy_fit_bins(bins: pd.DataFrame, runs: pd.DataFrame, ref_speed_m_s: float,
                     params: AnalysisParams | None = None) -> EconomyModel:
    """:func:`economy_fit` from the model bins (:func:`economy_bins`: activity_id and
    :data:`MODEL_BIN_COLUMNS`) of the runs in ``runs``, in run order."""
    p = params or AnalysisParams()
    if p.heat_method not in HEAT_METHODS:
        raise ValueError(f"unknown heat method {p.heat_method!r}; valid: {', '.join(HEAT_METHODS)}")
    runs = runs.reset_index(drop=True)
    empty = runs[["activity_id"]].assign(intercept_bpm=np.nan, hr_at_ref_bpm=np.nan, economy_m_per_beat=np.nan,
                                         **{c: np.nan for c in HEAT_RUN_COLUMNS})
    if bins.empty or not np.isfinite(ref_speed_m_s):
        return EconomyModel(ref_speed_m_s, p.ref_elapsed_s, np.nan, np.nan, p.heat_method, 0, empty)
    beta, delta, slope_used, per_run = economy_slope_drift(bins, p)
    out = runs.merge(per_run, on="activity_id", how="left")
    hr_unadj = out["intercept_bpm"].to_numpy() + beta * ref_speed_m_s
    heat = heat_model(hr_unadj, out, p)
    h = heat.runs.drop(columns="activity_id").reset_index(drop=True)
    hr_ref = np.where(h["heat_usable"].to_numpy(bool), hr_unadj - h["heat_adjustment_bpm"].to_numpy(float), np.nan)
    result = pd.concat([out[["activity_id", "intercept_bpm"]], h], axis=1).assign(
        hr_at_ref_bpm=hr_ref, economy_m_per_beat=ref_speed_m_s * 60.0 / hr_ref)
    return EconomyModel(float(ref_speed_m_s), p.ref_elapsed_s, beta, delta, p.heat_method, int(len(bins)), result,
                        heat, slope_used)


def model_provenance(model: EconomyModel | None) -> dict[str, float | str | int | None]:
    """The fitted model's values as ``analysis_runs`` columns (all None when no model could be fitted):
    reference speed (m/s), elapsed time (s), the estimated heat threshold (degC) of the main heat fit (air
    weather if any, else the device), HR-speed slope (bpm per m/s) and how
    it was estimated, cardiac drift (bpm/h), heat coefficient and its SE (bpm per degC), bins fitted."""
    if model is None:
        return {k: None for k in ("ref_speed_m_s", "ref_elapsed_s", "ref_temperature_c", "hr_speed_slope_bpm_per_m_s",
                                  "slope_method", "drift_bpm_per_h", "heat_bpm_per_c", "heat_se_bpm_per_c",
                                  "heat_method", "model_samples")}
    return {"ref_speed_m_s": model.ref_speed_m_s, "ref_elapsed_s": model.ref_elapsed_s,
            "ref_temperature_c": _none_if_nan(model.heat_threshold_c), "hr_speed_slope_bpm_per_m_s": model.slope_bpm_per_m_s,
            "slope_method": model.slope_method or None, "drift_bpm_per_h": model.drift_bpm_per_h,
            "heat_bpm_per_c": _none_if_nan(model.heat_bpm_per_c), "heat_se_bpm_per_c": _none_if_nan(model.heat_se_bpm_per_c),
            "heat_method": model.heat_method, "model_samples": model.n_samples}


def _none_if_nan(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None

"""Heat: which temperature each run had, how much heat raises this athlete's HR, and from what threshold.

HR at a fixed pace is roughly flat in cool weather and rises in the heat (Ely et al. 2007: marathon
performance falls above ~10-15 C). Nothing here assumes where the rise starts or how steep it is: both are
estimated from the athlete's own runs, separately for each temperature source.

Sources, per run (``temperature_source``):

``air``
    Archive weather at the run's start (columns ``air_temperature_c`` with ``dew_point_c`` or
    ``relative_humidity_pct`` in the activity rows, filled by the weather stage). The heat-stress measure
    is the apparent temperature (Steadman 1994, shade, no wind, as the Australian Bureau of Meteorology
    computes it): AT = Ta + 0.33 e - 4.0 with e the vapour pressure (hPa) -- humid heat weighs more than
    dry heat. Without humidity the air temperature itself.
``device``
    The settled temperature of the watch (indoor start removed; see
    :func:`pipeline.analyze.runs.run_settled_temperature_c`): air plus the wrist's warmth. Used where a
    run has no archive weather. When at least ``heat_min_paired_runs`` runs have both, device readings are
    put on the air scale by the median (device - air) of those runs -- the wrist warming measured, not
    assumed -- and share the air model; otherwise the device runs get their own model.
``imputed``
    No temperature of its own: the heat adjustment is the mean adjustment of the athlete's runs within
    +-``heat_impute_days`` days (the season's heat, without the day's weather).
``none``
    No temperature and no run with one nearby (or no heat model for the athlete): never silently treated
    as cool -- when the athlete's heat model is active such a run gets no economy value (excluded from the
    block statistics, with the reason); without any heat model nothing is adjusted and the block verdicts
    say heat is not controlled.

Model, per source scale: a monotone piecewise-linear heat curve h(T) with segments starting every 5 C
in a documented range (air 5-25 C, device 10-35 C; the last segment open above; segments with fewer than
10 runs above their start dropped), each with its own non-negative slope (bpm per C). h is 0 below the
first segment, so where HR starts to rise (the threshold) and how fast it rises, and whether the rise
steepens or flattens, all come from the data: no constant of the wrist's warming, the air threshold or a
single slope is assumed. The slopes are fitted to the day-to-day deviations of the runs' HR at the
reference speed (deviations from the mean of the other runs within +-14 days, so the season, fitness
and a block cancel) by non-negative least squares, and divided by the reliability ratio of the
temperature's day-to-day deviations (errors in variables, Fuller 1987: 1 - noise variance / deviation
variance, floored at 0.5; noise = the wrist's run-to-run warming for a device, the archive's error for
weather). (A single hinge with a
searched threshold was tried first: real heat responses are not one straight line -- humid heat steepens
the rise -- and the hinge misread summer by 2-4 bpm when the truth was curved in the validation matrix.)

Uncertainty: a block bootstrap (``heat_bootstrap_reps`` resamples of the 4-week blocks of the record,
Künsch 1989) refits the curve; each replicate gives every run a heat adjustment, and the block estimates
carry the spread of those replicate adjustments through their own weights into their CIs.

References: Steadman RG (1994). Norms of apparent temperature in Australia. Aust Met Mag 43:1-16.
Ely MR et al. (2007). Impact of weather on marathon-running performance. Med Sci Sports Exerc 39:487.
Fuller WA (1987). Measurement Error Models. Wiley. Künsch HR (1989). The jackknife and the bootstrap for
general stationary observations. Ann Stat 17:1217-1241. Efron B, Tibshirani RJ (1993). An Introduction to
the Bootstrap. Chapman & Hall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from pipeline.analyze.params import AnalysisParams
from pipeline.warehouse.contract import TEMPERATURE_SOURCES  # noqa: F401  (run_metrics.temperature_source)



def vapour_pressure_hpa(dew_point_c) -> np.ndarray:
    """Water vapour pressure (hPa) at dew point Td: 6.105 exp(17.27 Td / (237.7 + Td)) (Magnus form used
    by the Australian Bureau of Meteorology with the apparent temperature)."""
    td = np.asarray(dew_point_c, dtype=float)
    return 6.105 * np.exp(17.27 * td / (237.7 + td))


def dew_point_from_humidity_c(air_c, relative_humidity_pct) -> np.ndarray:
    """Dew point (C) from air temperature and relative humidity (the same Magnus form inverted)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.log(np.asarray(relative_humidity_pct, dtype=float) / 100.0) + 17.27 * np.asarray(air_c, float) / (
            237.7 + np.asarray(air_c, float))
        return 237.7 * g / (17.27 - g)


def heat_measure_c(air_c, dew_point_c=None, relative_humidity_pct=None, measure: str = "steadman1994") -> np.ndarray:
    """The heat-stress value of archive weather: apparent temperature (Steadman 1994) where humidity is
    known, else the air temperature; ``measure="air"`` always the air temperature."""
    air = np.asarray(air_c, dtype=float)
    if measure == "air":
        return air.copy()
    dew = np.full(air.shape, np.nan) if dew_point_c is None else np.asarray(dew_point_c, dtype=float)
    if relative_humidity_pct is not None:
        dew = np.where(np.isfinite(dew), dew, dew_point_from_humidity_c(air, relative_humidity_pct))
    at = air + 0.33 * vapour_pressure_hpa(dew) - 4.0
    return np.where(np.isfinite(at), at, air)


def heat_excess_c(temperature_c: np.ndarray, threshold_c: float) -> np.ndarray:
    """Degrees above a threshold, max(0, T - T0) (NaN stays NaN)."""
    return np.maximum(0.0, np.asarray(temperature_c, dtype=float) - threshold_c)


def segment_basis(temperature_c, knots_c: np.ndarray) -> np.ndarray:
    """Degrees of ``temperature_c`` within each segment between consecutive knots (the last segment open
    above): h(T) = basis @ slopes is a monotone piecewise-linear curve, 0 below the first knot (n x K)."""
    t = np.asarray(temperature_c, dtype=float)[:, None]
    k = np.asarray(knots_c, dtype=float)[None, :]
    width = np.r_[np.diff(knots_c), np.inf][None, :]
    return np.clip(t - k, 0.0, width)


@dataclass(frozen=True)
class HeatFit:
    """One source's heat curve: non-negative slopes (bpm per C) on segments starting at ``knots_c``."""

    knots_c: np.ndarray
    slopes_bpm_per_c: np.ndarray    # after the errors-in-variables correction
    naive_slopes_bpm_per_c: np.ndarray
    reliability: float              # mean share of the deviations' variance that is not measurement noise
    n_runs: int
    t90_c: float = float("nan")     # 90th percentile of the source's temperatures (for the summary slope)
    boot_slopes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))   # replicates x segments

    def adjustment(self, temperature_c) -> np.ndarray:
        """bpm of heat at ``temperature_c`` (NaN stays NaN)."""
        t = np.asarray(temperature_c, dtype=float)
        if len(self.knots_c) == 0:
            return np.where(np.isfinite(t), 0.0, np.nan)
        return np.where(np.isfinite(t), segment_basis(np.nan_to_num(t), self.knots_c) @ self.slopes_bpm_per_c, np.nan)

    def adjustment_draws(self, temperature_c) -> np.ndarray:
        """Heat adjustment (bpm) at ``temperature_c`` under each bootstrap replicate (B x n)."""
        t = np.nan_to_num(np.asarray(temperature_c, dtype=float))
        if self.boot_slopes.size == 0:
            return np.zeros((0, len(t)))
        return self.boot_slopes @ segment_basis(t, self.knots_c).T

    @property
    def threshold_c(self) -> float:
        """Where HR starts to rise: the first segment with a positive slope."""
        pos = np.flatnonzero(self.slopes_bpm_per_c > 1e-9)
        return float(self.knots_c[pos[0]]) if len(pos) else float("nan")

    def _mean_slope(self, slopes: np.ndarray) -> float:
        thr = self.threshold_c
        if not (np.isfinite(thr) and np.isfinite(self.t90_c) and self.t90_c > thr):
            return 0.0
        basis = segment_basis(np.array([thr, self.t90_c]), self.knots_c)
        return float((basis[1] - basis[0]) @ slopes / (self.t90_c - thr))

    @property
    def gamma_bpm_per_c(self) -> float:
        """Summary slope: mean bpm per C from the threshold to the 90th percentile temperature."""
        return self._mean_slope(self.slopes_bpm_per_c)

    @property
    def naive_bpm_per_c(self) -> float:
        return self._mean_slope(self.naive_slopes_bpm_per_c)

    @property
    def se_bpm_per_c(self) -> float:
        """Robust bootstrap SE of the summary slope (half the 16-84 % range)."""
        if self.boot_slopes.shape[0] < 2:
            return float("nan")
        reps = np.array([self._mean_slope(b) for b in self.boot_slopes])
        return float(np.diff(np.quantile(reps, [0.15866, 0.84134]))[0] / 2)


NO_HEAT = HeatFit(np.zeros(0), np.zeros(0), np.zeros(0), float("nan"), 0)


def _days(start_time) -> np.ndarray:
    t = pd.to_datetime(pd.Series(start_time), utc=True)
    return (t - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy() / 86400


@dataclass
class _Local:
    """Runs with enough neighbours: the local-mean operator and the HR deviations."""

    rows: np.ndarray                # indices (into the fitted runs) of runs with >= 2 neighbours
    nb: np.ndarray                  # neighbour matrix (rows x all), 1 = within the half-width
    cnt: np.ndarray
    d_hr: np.ndarray
    blocks: np.ndarray              # bootstrap block (4 weeks) of each row


def _local(hr: np.ndarray, days: np.ndarray, half_width_days: float, block_days: float) -> _Local:
    near = (np.abs(days[:, None] - days[None, :]) <= half_width_days) & ~np.eye(len(days), dtype=bool)
    rows = np.flatnonzero(near.sum(axis=1) >= 2)
    nb = near[rows].astype(float)
    cnt = nb.sum(axis=1)
    d_hr = hr[rows] - (nb @ hr) / cnt
    blocks = np.floor((days[rows] - days[rows].min()) / block_days).astype(int) if len(rows) else rows
    return _Local(rows, nb, cnt, d_hr, blocks)


def _design(loc: _Local, temp: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Deviations of each segment's basis from its local mean (rows x K)."""
    B = segment_basis(temp, knots)
    return B[loc.rows] - (loc.nb @ B) / loc.cnt[:, None]


def _reliability(loc: _Local, temp: np.ndarray, noise_var: np.ndarray, first_knot: float) -> float:
    """Share of the day-to-day temperature deviations (runs above the first knot, where the curve can
    rise) that is not measurement noise: 1 - noise variance / deviation variance, floored at 0.5 (a noisy
    slope is at most doubled). Noise of a run's own reading and, through the local mean, its neighbours'."""
    dt = _deviations_of(loc, temp)
    above = temp[loc.rows] > first_knot
    if above.sum() < 3:
        return 1.0
    nv = noise_var[loc.rows] + (loc.nb @ noise_var) / loc.cnt ** 2
    var = float(np.mean(dt[above] ** 2))
    return max(0.5, 1.0 - float(np.mean(nv[above])) / var) if var > 0 else 1.0


def _deviations_of(loc: _Local, x: np.ndarray) -> np.ndarray:
    return x[loc.rows] - (loc.nb @ x) / loc.cnt


def _nnls_quadratic(G: np.ndarray, c: np.ndarray) -> np.ndarray:
    """argmin b'Gb - 2b'c subject to b >= 0 (G positive semi-definite), via NNLS on its Cholesky factor."""
    L = np.linalg.cholesky(G + 1e-9 * max(np.trace(G), 1e-12) / len(G) * np.eye(len(G)))
    return optimize.nnls(L.T, np.linalg.solve(L, c))[0]


def _solve(D: np.ndarray, d: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Non-negative least-squares slopes of the deviations with row weights ``m``."""
    return _nnls_quadratic((D * m[:, None]).T @ D, D.T @ (m * d))


def _knots(temp: np.ndarray, knot_range_c: tuple[float, float], params: AnalysisParams) -> np.ndarray:
    """Segment starts every ``heat_knot_step_c`` in the documented range, keeping those with at least
    ``heat_min_above_runs`` runs above them (the last kept segment is open above)."""
    lo, hi = knot_range_c
    grid = np.arange(lo, hi + 1e-9, params.heat_knot_step_c)
    return np.array([k for k in grid if np.sum(temp > k) >= params.heat_min_above_runs])


def heat_curve_fit(hr_unadjusted, temperature_c, start_time, knot_range_c: tuple[float, float],
                   params: AnalysisParams, noise_sd_c=0.0) -> HeatFit:
    """The heat curve of one temperature source from day-to-day weather (see the module docstring).

    ``hr_unadjusted``: each run's HR at the reference speed before any heat adjustment;
    ``temperature_c``: the source's value (NaN = none); ``noise_sd_c``: SD of its error against the air
    the runner felt (scalar or per run) for the errors-in-variables correction. Fewer than
    ``heat_min_runs`` runs with a temperature: :data:`NO_HEAT`.
    """
    hr, temp = np.asarray(hr_unadjusted, float), np.asarray(temperature_c, float)
    noise = np.broadcast_to(np.asarray(noise_sd_c, dtype=float), hr.shape)
    ok = np.isfinite(hr) & np.isfinite(temp)
    if ok.sum() < params.heat_min_runs:
        return NO_HEAT
    hr, temp, noise, days = hr[ok], temp[ok], noise[ok], _days(pd.Series(start_time)[ok])
    loc = _local(hr, days, params.heat_detrend_days, 28.0)
    knots = _knots(temp, knot_range_c, params)
    if len(loc.rows) < params.heat_min_runs or len(knots) == 0:
        return HeatFit(knots, np.zeros(len(knots)), np.zeros(len(knots)), float("nan"), len(loc.rows))
    D = _design(loc, temp, knots)
    use = D.std(axis=0) > 1e-6
    naive = np.zeros(len(knots))
    if use.any():
        naive[use] = _solve(D[:, use], loc.d_hr, np.ones(len(loc.rows)))
    # Errors in variables: the measurement noise of the temperature flattens the slopes by the reliability
    # ratio lambda (Fuller 1987); one ratio for the whole curve (per-segment ratios divide by the small
    # deviation variance of a 5-degree segment and are unstable).
    lam = _reliability(loc, temp, np.nan_to_num(noise) ** 2, float(knots[0]))
    boot = _bootstrap(loc, D, use, params) / lam
    return HeatFit(knots, naive / lam, naive, lam, len(loc.rows), float(np.quantile(temp, 0.9)), boot)


def _bootstrap(loc: _Local, D: np.ndarray, use: np.ndarray, params: AnalysisParams) -> np.ndarray:
    """Slopes of each block-bootstrap replicate (4-week blocks drawn with replacement), replicates x K."""
    ids = np.unique(loc.blocks)
    out = np.zeros((params.heat_bootstrap_reps, D.shape[1]))
    if len(ids) < 3 or not use.any():
        return out[:0]
    rng = np.random.default_rng(params.seed)
    pos = np.searchsorted(ids, loc.blocks)
    for r in range(params.heat_bootstrap_reps):
        m = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids)).astype(float)[pos]
        out[r, use] = _solve(D[:, use], loc.d_hr, m)
    return out


@dataclass(frozen=True)
class HeatModel:
    """The athlete's heat adjustment: per-source fits and, per run, source, value, excess and bpm removed."""

    fits: dict[str, HeatFit] = field(default_factory=dict)     # 'air' and/or 'device'
    device_offset_c: float = float("nan")   # median (device - air measure) on runs with both
    device_noise_sd_c: float = float("nan")
    runs: pd.DataFrame | None = None        # activity_id, temperature_source, heat_temperature_c,
    # heat_model ('air' | 'device' | ''), heat_excess_c, heat_adjustment_bpm, heat_usable
    draws: np.ndarray | None = None         # runs x replicates: each run's adjustment under each bootstrap draw

    def draws_frame(self) -> pd.DataFrame | None:
        """Bootstrap adjustments (bpm) per run (index activity_id) and replicate; None without a model."""
        if self.draws is None or self.runs is None or self.draws.shape[1] == 0:
            return None
        return pd.DataFrame(self.draws, index=self.runs["activity_id"].to_numpy())

    @property
    def controlled(self) -> bool:
        """Whether a heat model was estimated at all (its coefficient may be 0: no heat effect found)."""
        return any(f.n_runs > 0 for f in self.fits.values())

    def se(self, key: str) -> float:
        f = self.fits.get(key)
        return f.se_bpm_per_c if f is not None and np.isfinite(f.se_bpm_per_c) else 0.0


def _air_values(runs: pd.DataFrame, params: AnalysisParams) -> np.ndarray:
    if "air_temperature_c" not in runs:
        return np.full(len(runs), np.nan)
    col = lambda c: pd.to_numeric(runs[c], errors="coerce").to_numpy(float) if c in runs else None  # noqa: E731
    return heat_measure_c(col("air_temperature_c"), col("dew_point_c"), col("relative_humidity_pct"),
                          params.heat_measure)


def _fits(hr: np.ndarray, air: np.ndarray, dev: np.ndarray, start: pd.Series,
          params: AnalysisParams) -> tuple[dict[str, HeatFit], float, float]:
    """Per-source fits (method "detrended"), the device's offset from air and its noise SD."""
    fits: dict[str, HeatFit] = {}
    has_air, has_dev = np.isfinite(air), np.isfinite(dev)
    if has_air.sum() >= params.heat_min_runs:
        fits["air"] = heat_curve_fit(hr, air, start, params.heat_threshold_air_range_c, params,
                                     params.heat_air_error_sd_c)
    offset = noise = float("nan")
    both = has_air & has_dev
    if "air" in fits and both.sum() >= params.heat_min_paired_runs:
        diff = dev[both] - air[both]
        offset = float(np.median(diff))
        noise = float(1.4826 * np.median(np.abs(diff - offset)))
    dev_only = has_dev & ~(has_air & ("air" in fits))
    if not np.isfinite(offset) and dev_only.sum() >= params.heat_min_runs:
        fits["device"] = heat_curve_fit(np.where(dev_only, hr, np.nan), dev, start,
                                        params.heat_threshold_device_range_c, params, params.heat_sensor_sd_c)
    return fits, offset, noise


def _assign(air: np.ndarray, dev: np.ndarray, fits: dict[str, HeatFit], offset: float) -> pd.DataFrame:
    """Each run's source, value used, model, adjustment and equivalent excess (adjustment / summary slope),
    before imputation."""
    n = len(air)
    source = np.where(np.isfinite(air), "air", np.where(np.isfinite(dev), "device", "none")).astype(object)
    value = np.where(np.isfinite(air), air, dev)
    key = np.full(n, "", dtype=object)
    if "air" in fits:
        key[np.isfinite(air)] = "air"
        if np.isfinite(offset):
            conv = ~np.isfinite(air) & np.isfinite(dev)
            key[conv], value = "air", np.where(conv, dev - offset, value)
    if "device" in fits:
        use_dev = np.isfinite(dev) & (key == "")
        key[use_dev], source[use_dev], value = "device", "device", np.where(use_dev, dev, value)
    adjustment, excess = np.full(n, np.nan), np.full(n, np.nan)
    for k, f in fits.items():
        sel = key == k
        adjustment[sel] = f.adjustment(value[sel])
        excess[sel] = adjustment[sel] / f.gamma_bpm_per_c if f.gamma_bpm_per_c > 0 else 0.0
    return pd.DataFrame({"temperature_source": source, "heat_temperature_c": value, "heat_model": key,
                         "heat_adjustment_bpm": adjustment, "heat_excess_c": excess})


def _impute(out: pd.DataFrame, draws: np.ndarray, days: np.ndarray,
            half_width_days: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Runs without a modelled temperature get the mean adjustment (and excess, and bootstrap draws) of
    modelled runs within +-half_width_days; none nearby: source 'none', not usable."""
    have = np.isfinite(out["heat_adjustment_bpm"].to_numpy(float))
    adj, exc, key = (out[c].to_numpy().copy() for c in ("heat_adjustment_bpm", "heat_excess_c", "heat_model"))
    source, usable = out["temperature_source"].to_numpy().copy(), np.ones(len(out), dtype=bool)
    draws = draws.copy()
    for j in np.flatnonzero(~have):
        near = have & (np.abs(days - days[j]) <= half_width_days)
        if near.any():
            adj[j], exc[j] = float(np.mean(adj[near])), float(np.mean(exc[near]))
            draws[j] = draws[near].mean(axis=0)
            key[j] = pd.Series(key[near]).mode().iloc[0]
            source[j] = "imputed"
        else:
            source[j], usable[j], draws[j] = "none", False, 0.0
    return out.assign(heat_adjustment_bpm=adj, heat_excess_c=exc, heat_model=key, temperature_source=source,
                      heat_usable=usable), draws


def _draws(out: pd.DataFrame, fits: dict[str, HeatFit], reps: int) -> np.ndarray:
    """Each run's adjustment under each bootstrap replicate of its source's fit (runs x reps; NaN where
    the run has no modelled temperature yet)."""
    draws = np.full((len(out), reps), np.nan)
    value = out["heat_temperature_c"].to_numpy(float)
    for k, f in fits.items():
        sel = (out["heat_model"] == k).to_numpy()
        d = f.adjustment_draws(value[sel])
        # Without replicates (heat_method "fixed", or too short a record to resample) every draw is the fit.
        draws[sel] = d.T if d.shape[0] == reps else np.repeat(f.adjustment(value[sel])[:, None], reps, axis=1)
    return draws


def heat_model(hr_unadjusted: np.ndarray, runs: pd.DataFrame, params: AnalysisParams) -> HeatModel:
    """The athlete's heat adjustment per run (see the module docstring).

    ``runs``: one row per included run in the order of ``hr_unadjusted``: activity_id, start_time,
    device_temperature_c (settled device reading, NaN if none) and, optionally, air_temperature_c,
    dew_point_c, relative_humidity_pct (archive weather). ``heat_method``: "detrended" (estimated as
    described), "fixed" (``heat_bpm_per_c`` above ``ref_temperature_c`` of the device reading), "none".
    """
    hr = np.asarray(hr_unadjusted, dtype=float)
    start = runs["start_time"].reset_index(drop=True)
    air = _air_values(runs, params)
    dev = (pd.to_numeric(runs["device_temperature_c"], errors="coerce").to_numpy(float)
           if "device_temperature_c" in runs else np.full(len(runs), np.nan))
    fits, offset, noise = {}, float("nan"), float("nan")
    if params.heat_method == "detrended":
        fits, offset, noise = _fits(hr, air, dev, start, params)
    elif params.heat_method == "fixed" and np.isfinite(dev).any():
        slope = np.array([float(params.heat_bpm_per_c)])
        fits = {"device": HeatFit(np.array([float(params.ref_temperature_c)]), slope, slope, 1.0,
                                  int(np.isfinite(dev).sum()), float(np.nanquantile(dev, 0.9)))}
        air = np.full(len(runs), np.nan)
    out = _assign(air, dev, fits, offset)
    draws = _draws(out, fits, params.heat_bootstrap_reps)
    if fits:
        out, draws = _impute(out, draws, _days(start), params.heat_impute_days)
    else:
        out = out.assign(heat_adjustment_bpm=0.0, heat_excess_c=0.0, heat_usable=True)
        draws = np.zeros((len(out), 0))
    out.insert(0, "activity_id", runs["activity_id"].to_numpy())
    return HeatModel(fits, offset, noise, out, draws)

"""Block effects: did a metric change around a strength block, beyond noise and beyond the trend?

Two estimators per block and metric, both on the athlete's included runs (one value per run):

``method="window"``
    Mean of the response window (weeks 6-12 after block start) against the mean of the baseline window
    (the 6 weeks before it): OLS of the metric on a response indicator.
``method="its"``
    Interrupted time series (segmented regression, Wagner et al. 2002) on the pre-block record (up to
    ``its_pre_weeks``) plus the response window, leaving out the ramp weeks 0-6 while adaptations build::

        y = a + b*t + c*D + d*D*(t - t_c) (+ covariates)

    with t in weeks from block start, D = 1 in the response window and t_c the mean time of the
    response-window runs. ``c`` is the response level minus the pre-block trend extrapolated to t_c —
    the change *beyond* the pre-existing trend. Its standard error includes the uncertainty of that
    extrapolation, which is what makes the ITS interval honestly wider than the window one.

Ratio metrics are modelled on the log scale (so changes are relative); ``decoupling_pct`` on its own
scale, its change in percentage points. ``change_pct`` > 0 always means *more economical*: the sign is
reversed for ``hr_at_ref_bpm`` (lower HR at the reference speed is a gain) and ``decoupling_pct`` (less
drift is a gain).

Confidence intervals respect serial correlation of successive runs: by default feasible GLS with AR(1)
errors (iterated Cochrane-Orcutt, statsmodels GLSAR; t quantiles), which kept ~95 % coverage in our
simulations with 30-90 runs where Newey-West HAC errors covered only ~85-90 %; Newey-West (1987) HAC
and a moving-block bootstrap of the residuals (Künsch 1989) are options.

References
----------
Cochrane D, Orcutt GH (1949). Application of least squares regression to relationships containing
auto-correlated error terms. J Am Stat Assoc 44:32-61.
Newey WK, West KD (1987). A simple, positive semi-definite, heteroskedasticity and autocorrelation
consistent covariance matrix. Econometrica 55:703-708.
Künsch HR (1989). The jackknife and the bootstrap for general stationary observations. Ann Stat 17:1217.
Wagner AK, Soumerai SB, Zhang F, Ross-Degnan D (2002). Segmented regression analysis of interrupted time
series studies in medication use research. J Clin Pharm Ther 27:299-309.
Hopkins WG (2004). How to interpret changes in an athletic performance test. Sportscience 8:1-7 (SWC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from pipeline.analyze.economy import heat_excess_c, heat_temperature
from pipeline.analyze.params import CI_METHODS, AnalysisParams
from pipeline.warehouse.contract import columns

WEEK = pd.Timedelta(days=7)


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is modelled: ``log`` (relative change) or ``diff`` (percentage points), and its direction."""

    scale: str
    higher_is_better: bool


METRICS: dict[str, MetricSpec] = {
    "economy_m_per_beat": MetricSpec("log", True),
    "m_per_beat": MetricSpec("log", True),
    "gap_m_per_beat": MetricSpec("log", True),
    "hr_at_ref_bpm": MetricSpec("log", False),
    "decoupling_pct": MetricSpec("diff", False),
}
# ITS covariates (used when every run in the fit has them and they vary). heat_excess_c = max(0, settled
# device temperature - ref_temperature_c). The economy index and hr_at_ref_bpm are already heat-adjusted
# with a coefficient estimated from day-to-day weather over the whole record; re-estimating a heat slope
# inside the ITS fit (from the few runs of the pre-period and response window, where heat is nearly
# collinear with the block) only repeats the errors-in-variables attenuation and adds variance, so the
# uncertainty of that coefficient is propagated into their CIs instead (see ``heat_se_bpm_per_c``).
# The raw metrics are not heat-adjusted: they get heat excess and steady duration (drift) as covariates.
ITS_COVARIATES: dict[str, tuple[str, ...]] = {
    "economy_m_per_beat": (), "hr_at_ref_bpm": (),
    "m_per_beat": ("heat_excess_c", "steady_s"), "gap_m_per_beat": ("heat_excess_c", "steady_s"),
    "decoupling_pct": ("heat_excess_c", "steady_s"),
}
# d log(metric) / d gamma for the heat-adjusted metrics: hr_at_ref = hr_unadjusted - gamma * excess, so
# log(hr_at_ref) moves by -excess/hr_at_ref per bpm/degC of gamma, and log(economy) by +excess/hr_at_ref.
HEAT_ADJUSTED_SIGN: dict[str, float] = {"economy_m_per_beat": 1.0, "hr_at_ref_bpm": -1.0}


@dataclass(frozen=True)
class BlockWindows:
    """Dates (UTC timestamps, half-open [start, end)) of the windows around one block start."""

    block_start: pd.Timestamp
    baseline_start: pd.Timestamp
    baseline_end: pd.Timestamp
    response_start: pd.Timestamp
    response_end: pd.Timestamp
    its_pre_start: pd.Timestamp


@dataclass(frozen=True)
class Effect:
    """One estimate of a block effect, as a ``block_effects`` row (without the ids)."""

    metric: str
    method: str
    baseline_start: pd.Timestamp
    baseline_end: pd.Timestamp
    response_start: pd.Timestamp
    response_end: pd.Timestamp
    n_baseline: int
    n_response: int
    baseline_value: float
    response_value: float
    change_pct: float
    ci_low_pct: float
    ci_high_pct: float
    p_value: float
    swc_pct: float
    verdict: str


def block_windows(block_start, params: AnalysisParams | None = None, not_before=None) -> BlockWindows:
    """Baseline, response and ITS pre-period windows for a block starting on ``block_start``.

    ``not_before`` (e.g. the end of a previous block's response window) truncates the baseline and the
    ITS pre-period so an earlier block's adaptation is not mistaken for the pre-existing trend.
    """
    p = params or AnalysisParams()
    start = _utc(block_start)
    base0 = start - p.baseline_weeks * WEEK
    pre0 = start - p.its_pre_weeks * WEEK
    if not_before is not None:
        nb = _utc(not_before)
        base0, pre0 = max(base0, nb), max(pre0, nb)
    return BlockWindows(start, base0, start, start + p.response_start_weeks * WEEK,
                        start + p.response_end_weeks * WEEK, pre0)


def _utc(x) -> pd.Timestamp:
    ts = pd.Timestamp(x)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def effect_verdict(change_pct: float, ci_low_pct: float, ci_high_pct: float, n_baseline: int, n_response: int,
                   swc_pct: float = 1.0, min_runs: int = 8) -> str:
    """The verdict rule of DESIGN.md.

    'insufficient data' below ``min_runs`` in either window (or no estimate); 'gain' when the CI lies
    above 0 and the estimate exceeds the smallest worthwhile change; 'loss' mirrored; else
    'no clear change'.
    """
    if n_baseline < min_runs or n_response < min_runs or not np.isfinite(change_pct) or not np.isfinite(ci_low_pct):
        return "insufficient data"
    if ci_low_pct > 0 and change_pct > swc_pct:
        return "gain"
    if ci_high_pct < 0 and change_pct < -swc_pct:
        return "loss"
    return "no clear change"


def _hac_lags(n: int, params: AnalysisParams) -> int:
    if params.hac_max_lags is not None:
        return int(params.hac_max_lags)
    return max(1, int(np.floor(4 * (n / 100) ** (2 / 9))))


@dataclass(frozen=True)
class CoefFit:
    """One coefficient of a regression with its serial-correlation-robust CI."""

    est: float
    lo: float
    hi: float
    p: float
    df: float
    params: np.ndarray | None
    weights: np.ndarray | None     # the estimate is weights @ y (GLS with the fitted rho, or OLS)
    cov: np.ndarray | None = None  # covariance of all params (prediction bands, e.g. the ITS trend's)

    def widened(self, extra_se: float, alpha: float) -> CoefFit:
        """The same estimate with an independent extra standard error added in quadrature to each side of
        the CI (and to the p-value): how the uncertainty of the heat coefficient enters."""
        if not (np.isfinite(extra_se) and extra_se > 0 and np.isfinite(self.est)):
            return self
        q = float(stats.t.ppf(1 - alpha / 2, self.df)) if np.isfinite(self.df) and self.df > 0 else 1.96
        lo = self.est - float(np.hypot(self.est - self.lo, q * extra_se))
        hi = self.est + float(np.hypot(self.hi - self.est, q * extra_se))
        se = (hi - lo) / (2 * q)
        p = float(2 * stats.t.sf(abs(self.est) / se, self.df)) if se > 0 and np.isfinite(self.df) else self.p
        return CoefFit(self.est, lo, hi, p, self.df, self.params, self.weights, self.cov)


NO_FIT = CoefFit(np.nan, np.nan, np.nan, np.nan, np.nan, None, None)


def _ar1_weights(X: np.ndarray, rho: float, j: int) -> np.ndarray:
    """Row j of the GLS estimator for AR(1) errors with coefficient ``rho`` (Cochrane-Orcutt whitening:
    the first observation dropped), so that coefficient j = weights @ y."""
    n = len(X)
    W = np.zeros((n - 1, n))
    W[np.arange(n - 1), np.arange(1, n)] = 1.0
    W[np.arange(n - 1), np.arange(n - 1)] = -rho
    return (np.linalg.pinv(W @ X) @ W)[j]


def _coef_ci(X: np.ndarray, y: np.ndarray, j: int, params: AnalysisParams) -> CoefFit:
    """Coefficient j of y ~ X with a serial-correlation-robust CI (``params.ci_method``)."""
    n, k = X.shape
    if n <= k + 2 or np.linalg.matrix_rank(X) < k:
        return NO_FIT
    alpha = 1 - params.ci_level
    if params.ci_method == "cochrane_orcutt1949":
        # Feasible GLS with AR(1) errors, rho re-estimated from the residuals until stable.
        res = sm.GLSAR(y, X, rho=1).iterative_fit(maxiter=20)
        lo, hi = res.conf_int(alpha=alpha)[j]
        rho = float(np.atleast_1d(res.model.rho)[0])
        return CoefFit(float(res.params[j]), float(lo), float(hi), float(res.pvalues[j]), float(res.df_resid),
                       np.asarray(res.params), _ar1_weights(X, rho, j), np.asarray(res.cov_params()))
    ols_weights = np.linalg.pinv(X)[j]
    if params.ci_method == "newey_west1987":
        res = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": _hac_lags(n, params), "use_correction": True},
                               use_t=True)
        lo, hi = res.conf_int(alpha=alpha)[j]
        return CoefFit(float(res.params[j]), float(lo), float(hi), float(res.pvalues[j]), float(res.df_resid),
                       np.asarray(res.params), ols_weights, np.asarray(res.cov_params()))
    if params.ci_method == "kunsch1989":
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        fitted = X @ beta
        resid = y - fitted
        resid = resid * np.sqrt(n / (n - k))  # degrees-of-freedom inflation of the residuals
        rng = np.random.default_rng(params.seed)
        L = max(1, min(params.bootstrap_block_runs, n))
        n_blocks = int(np.ceil(n / L))
        pinv = np.linalg.pinv(X)
        all_draws = np.empty((params.bootstrap_reps, k))
        for r in range(params.bootstrap_reps):
            starts = rng.integers(0, n, n_blocks)
            idx = ((starts[:, None] + np.arange(L)[None, :]) % n).ravel()[:n]  # circular blocks
            all_draws[r] = pinv @ (fitted + resid[idx])
        draws = all_draws[:, j]
        est = float(beta[j])
        lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
        se = float(np.std(draws, ddof=1))
        p = float(2 * stats.t.sf(abs(est) / se, n - k)) if se > 0 else np.nan
        return CoefFit(est, float(lo), float(hi), p, float(n - k), beta, ols_weights, np.cov(all_draws.T))
    raise ValueError(f"unknown CI method {params.ci_method!r}; valid: {', '.join(CI_METHODS)}")


def _heat_extra_se(fit: pd.DataFrame, metric: str, coef: CoefFit, heat_se_bpm_per_c: float,
                   params: AnalysisParams) -> float:
    """Standard error (model scale) that the uncertainty of the heat coefficient adds to ``coef``.

    The heat-adjusted metrics depend on gamma through each run's heat excess: d log(metric)/d gamma =
    sign * excess / hr_at_ref. The estimate is linear in the runs' values, so its sensitivity to gamma is
    the same estimator applied to that series; times the SE of gamma (delta method; gamma comes from
    day-to-day weather deviations, nearly independent of the slow contrast estimated here).
    """
    if metric not in HEAT_ADJUSTED_SIGN or coef.weights is None or not (heat_se_bpm_per_c > 0):
        return 0.0
    if "hr_at_ref_bpm" not in fit:
        return 0.0
    excess = heat_excess_c(heat_temperature(fit), params.ref_temperature_c)
    hr = pd.to_numeric(fit["hr_at_ref_bpm"], errors="coerce").to_numpy(dtype=float)
    series = np.where(np.isfinite(excess) & np.isfinite(hr) & (hr > 0), excess / np.where(hr > 0, hr, 1.0), 0.0)
    sensitivity = float(coef.weights @ (HEAT_ADJUSTED_SIGN[metric] * series))
    return abs(sensitivity) * heat_se_bpm_per_c


def _to_pct(spec: MetricSpec, est: float, lo: float, hi: float) -> tuple[float, float, float]:
    """Model-scale change -> change_pct (> 0 = more economical) with its CI, bounds kept ordered."""
    if spec.scale == "log":
        vals = [(np.exp(x) - 1) * 100 for x in (est, lo, hi)]
    else:
        vals = [est, lo, hi]
    if not spec.higher_is_better:
        vals = [-v for v in vals]
    c, a, b = vals
    return c, min(a, b), max(a, b)


def _prepare(runs: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, MetricSpec]:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    spec = METRICS[metric]
    d = runs.assign(start_time=pd.to_datetime(runs["start_time"], utc=True)).sort_values("start_time")
    y = pd.to_numeric(d[metric], errors="coerce").to_numpy(dtype=float)
    if spec.scale == "log":
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(y > 0, np.log(y), np.nan)
    d = d.assign(_y=y)
    return d[np.isfinite(d["_y"])], spec


def _back(spec: MetricSpec, v: float) -> float:
    return float(np.exp(v)) if spec.scale == "log" else float(v)


def effect_window(runs: pd.DataFrame, windows: BlockWindows, metric: str,
                  params: AnalysisParams | None = None, heat_se_bpm_per_c: float = 0.0) -> Effect:
    """Response-window mean vs baseline-window mean of ``metric`` over ``runs`` (start_time + metric).

    ``baseline_value``/``response_value`` are the two fitted levels (for ratio metrics on the log scale,
    i.e. geometric means under the AR(1) GLS weighting), so response/baseline = 1 + change exactly.
    ``heat_se_bpm_per_c``: standard error of the heat coefficient used by the economy model; for the
    heat-adjusted metrics its effect on the estimate is added to the CI (delta method).
    """
    p = params or AnalysisParams()
    d, spec = _prepare(runs, metric)
    base = d[(d["start_time"] >= windows.baseline_start) & (d["start_time"] < windows.baseline_end)]
    resp = d[(d["start_time"] >= windows.response_start) & (d["start_time"] < windows.response_end)]
    nb, nr = len(base), len(resp)
    est = lo = hi = pv = np.nan
    bval = _back(spec, base["_y"].mean()) if nb else np.nan
    rval = _back(spec, resp["_y"].mean()) if nr else np.nan
    if nb >= 2 and nr >= 2:
        y = np.concatenate([base["_y"].to_numpy(), resp["_y"].to_numpy()])
        X = np.column_stack([np.ones(nb + nr), np.r_[np.zeros(nb), np.ones(nr)]])
        coef = _coef_ci(X, y, 1, p)
        coef = coef.widened(_heat_extra_se(pd.concat([base, resp]), metric, coef, heat_se_bpm_per_c, p),
                            1 - p.ci_level)
        est, lo, hi, pv, beta = coef.est, coef.lo, coef.hi, coef.p, coef.params
        if beta is not None:  # levels as fitted, so response/baseline matches change_pct exactly
            bval, rval = _back(spec, beta[0]), _back(spec, beta[0] + beta[1])
    change, cl, ch = _to_pct(spec, est, lo, hi)
    return Effect(metric, "window", windows.baseline_start, windows.baseline_end, windows.response_start,
                  windows.response_end, nb, nr, bval, rval, change, cl, ch, pv, p.swc_pct,
                  effect_verdict(change, cl, ch, nb, nr, p.swc_pct, p.min_runs))


@dataclass(frozen=True)
class ITSFit:
    """The interrupted-time-series regression of one metric around one block start, as fitted.

    ``fit``: the runs in the fit (pre-block period, then response window; ``_y`` on the model scale),
    ``t_weeks``: their time in weeks from block start, ``t_c``: the mean time of the response-window runs,
    ``n_pre``/``n_resp``: runs per part, ``coef``: the block coefficient ``c`` (column 2 of the design
    ``[1, t, D, D*(t - t_c), covariates...]``) with every parameter and their covariance.
    """

    spec: MetricSpec
    fit: pd.DataFrame
    t_weeks: np.ndarray
    t_c: float
    n_pre: int
    n_resp: int
    coef: CoefFit


def its_fit(runs: pd.DataFrame, windows: BlockWindows, metric: str, params: AnalysisParams | None = None,
            covariates: tuple[str, ...] | None = None, heat_se_bpm_per_c: float = 0.0) -> ITSFit:
    """Fit the ITS model of ``metric`` (see :func:`effect_its`); ``coef`` is ``NO_FIT`` with too few runs
    (< 3 before the block or < 2 in the response window)."""
    p = params or AnalysisParams()
    if "heat_excess_c" not in runs and ("temperature_c" in runs or "heat_temperature_c" in runs):
        runs = runs.assign(heat_excess_c=heat_excess_c(heat_temperature(runs), p.ref_temperature_c))
    d, spec = _prepare(runs, metric)
    pre = d[(d["start_time"] >= windows.its_pre_start) & (d["start_time"] < windows.block_start)]
    resp = d[(d["start_time"] >= windows.response_start) & (d["start_time"] < windows.response_end)]
    nb, nr = len(pre), len(resp)
    fit = pd.concat([pre, resp])
    t = ((fit["start_time"] - windows.block_start) / WEEK).to_numpy(dtype=float)
    if nb < 3 or nr < 2:
        return ITSFit(spec, fit, t, float("nan"), nb, nr, NO_FIT)
    D = np.r_[np.zeros(nb), np.ones(nr)]
    t_c = float(t[nb:].mean())
    cols = [np.ones(nb + nr), t, D, D * (t - t_c)]
    for cov in (ITS_COVARIATES[metric] if covariates is None else covariates):
        if cov in fit:
            x = pd.to_numeric(fit[cov], errors="coerce").to_numpy(dtype=float)
            if np.isfinite(x).all() and np.std(x) > 0:
                cols.append(x - x.mean())
    X = np.column_stack(cols)
    coef = _coef_ci(X, fit["_y"].to_numpy(), 2, p)
    coef = coef.widened(_heat_extra_se(fit, metric, coef, heat_se_bpm_per_c, p), 1 - p.ci_level)
    return ITSFit(spec, fit, t, t_c, nb, nr, coef)


def effect_its(runs: pd.DataFrame, windows: BlockWindows, metric: str, params: AnalysisParams | None = None,
               covariates: tuple[str, ...] | None = None, heat_se_bpm_per_c: float = 0.0) -> Effect:
    """Interrupted-time-series change of ``metric`` beyond the pre-block trend (see module docstring).

    ``covariates`` (run-level columns, e.g. heat_excess_c, steady_s) are added centred when every run in
    the fit has them and they vary; default: :data:`ITS_COVARIATES` for the metric.
    ``baseline_value`` is the pre-block trend extrapolated to the response window (the counterfactual),
    ``response_value`` the fitted response level there. ``heat_se_bpm_per_c``: as in :func:`effect_window`.
    The fit itself is :func:`its_fit` (also behind the trend curve of :mod:`pipeline.analyze.trends`).
    """
    p = params or AnalysisParams()
    its = its_fit(runs, windows, metric, p, covariates, heat_se_bpm_per_c)
    spec, coef, nb, nr = its.spec, its.coef, its.n_pre, its.n_resp
    bval = rval = np.nan
    beta = coef.params
    if beta is not None and np.isfinite(coef.est):
        counterfactual = beta[0] + beta[1] * its.t_c  # covariates at their mean (centred)
        bval, rval = _back(spec, counterfactual), _back(spec, counterfactual + beta[2])
    change, cl, ch = _to_pct(spec, coef.est, coef.lo, coef.hi)
    return Effect(metric, "its", windows.its_pre_start, windows.block_start, windows.response_start,
                  windows.response_end, nb, nr, bval, rval, change, cl, ch, coef.p, p.swc_pct,
                  effect_verdict(change, cl, ch, nb, nr, p.swc_pct, p.min_runs))


def block_limits(blocks: pd.DataFrame, params: AnalysisParams) -> list[tuple[pd.Series, pd.Timestamp | None]]:
    """Each block with the date before which its windows may not reach (previous block's response end)."""
    ordered = blocks.assign(_start=[_utc(x) for x in blocks["start_date"]]).sort_values("_start")
    out, prev = [], None
    for _, b in ordered.iterrows():
        out.append((b, prev))
        end = b["_start"] + params.response_end_weeks * WEEK
        prev = end if prev is None else max(prev, end)
    return out


def block_effects(runs: pd.DataFrame, blocks: pd.DataFrame, params: AnalysisParams | None = None,
                  metrics: tuple[str, ...] = tuple(METRICS), heat_se_bpm_per_c: float = 0.0) -> pd.DataFrame:
    """``block_effects`` rows for every block x metric x method.

    ``runs``: the athlete's INCLUDED runs (athlete_id, start_time, the metric columns, temperature_c /
    heat_temperature_c, steady_s). ``blocks``: athlete_id, block_id, start_date. ``heat_se_bpm_per_c``:
    standard error of the economy model's heat coefficient (its effect enters the CIs of the
    heat-adjusted metrics).
    """
    p = params or AnalysisParams()
    rows = []
    for b, not_before in block_limits(blocks, p):
        w = block_windows(b["_start"], p, not_before)
        for metric in metrics:
            for eff in (effect_window(runs, w, metric, p, heat_se_bpm_per_c=heat_se_bpm_per_c),
                        effect_its(runs, w, metric, p, heat_se_bpm_per_c=heat_se_bpm_per_c)):
                rows.append({"athlete_id": b["athlete_id"], "block_id": b["block_id"], **asdict(eff)})
    return _effects_frame(rows)


def _effects_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns("block_effects"))
    for c in ("baseline_start", "baseline_end", "response_start", "response_end"):
        df[c] = pd.to_datetime(df[c], utc=True).dt.date
    return df


def placebo_checks(runs: pd.DataFrame, blocks: pd.DataFrame, params: AnalysisParams | None = None,
                   metrics: tuple[str, ...] = ("economy_m_per_beat",),
                   methods: tuple[str, ...] = ("its", "window"), heat_se_bpm_per_c: float = 0.0) -> pd.DataFrame:
    """The same estimators at fake block starts before each real block, where nothing was planted.

    Fake starts step back every ``placebo_step_weeks`` from the latest start whose fake response window
    (weeks ``response_start_weeks``-``response_end_weeks`` after it) still ends before the real block
    starts, as long as at least ``placebo_min_pre_weeks`` of record (from the Monday of the first run's
    week, or from an earlier block's response window) precede the fake start, so its ITS has a pre-trend to extrapolate.
    Only runs before the real block are used. Rows whose verdict is 'insufficient data' are dropped.
    How often these claim a 'gain' is this athlete's own false-alarm rate (with ~6 months before a
    block: 5 fake starts; with ~4 months: none). Fake starts 2 weeks apart share most of their runs,
    so the k of n are not independent trials.
    """
    p = params or AnalysisParams()
    cols = columns("placebo_checks")
    if runs.empty or blocks.empty:
        return pd.DataFrame(columns=cols)
    first = pd.to_datetime(runs["start_time"], utc=True).min()
    first = first.normalize() - pd.Timedelta(days=first.weekday())   # record counted in (Monday) weeks
    rows = []
    for b, not_before in block_limits(blocks, p):
        floor = first if not_before is None else max(first, not_before)
        fake = b["_start"] - p.response_end_weeks * WEEK
        while fake - p.placebo_min_pre_weeks * WEEK >= floor:
            w = block_windows(fake, p, floor)
            before = runs[pd.to_datetime(runs["start_time"], utc=True) < b["_start"]]
            for metric in metrics:
                for method in methods:
                    eff = (effect_its if method == "its" else effect_window)(
                        before, w, metric, p, heat_se_bpm_per_c=heat_se_bpm_per_c)
                    if eff.verdict != "insufficient data":
                        rows.append({"athlete_id": b["athlete_id"], "block_id": b["block_id"], "metric": metric,
                                     "method": method, "fake_start": fake.date(), "change_pct": eff.change_pct,
                                     "ci_low_pct": eff.ci_low_pct, "ci_high_pct": eff.ci_high_pct,
                                     "verdict": eff.verdict})
            fake = fake - p.placebo_step_weeks * WEEK
    return pd.DataFrame(rows, columns=cols)

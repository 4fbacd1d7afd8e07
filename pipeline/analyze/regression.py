"""One regression coefficient with a confidence interval that respects serial correlation of successive runs.

Default ``ci_method="cochrane_orcutt1949"``: feasible GLS with AR(1) errors (iterated Cochrane-Orcutt,
:func:`gls_ar1`; t quantiles), which kept ~95 % coverage in our simulations with 30-90 runs where
Newey-West HAC errors covered only ~85-90 %. Options: Newey-West (1987) HAC errors and a moving-block
bootstrap of the residuals (Künsch 1989).

:func:`gls_ar1` is statsmodels' ``GLSAR(y, X, rho=1).iterative_fit(maxiter=20)`` written out in NumPy, step
for step (same whitening, pseudo-inverse, Yule-Walker update and stopping rule), so its estimates are those
of statsmodels (the tests compare them to 1e-9); it exists because one athlete's analysis runs a few
hundred such small fits (each block and negative control, each metric and method) and statsmodels' model
and results objects cost more than the least squares themselves, and its import adds ~0.4 s to every
analysis. statsmodels is imported only for the Newey-West option.

Every fit also returns the estimator's weights (the coefficient = weights @ y): the delta method for the
heat coefficient's uncertainty and the correlation between overlapping negative controls use them.

References: Cochrane D, Orcutt GH (1949). J Am Stat Assoc 44:32-61. Newey WK, West KD (1987).
Econometrica 55:703-708. Künsch HR (1989). Ann Stat 17:1217-1241.
"""

from __future__ import annotations

from dataclasses import dataclass

from functools import lru_cache

import numpy as np
from scipy import special, stats

from pipeline.analyze.params import CI_METHODS, AnalysisParams


@lru_cache(maxsize=256)
def _t_quantile(q: float, df: float) -> float:
    """Student t quantile; cached: the same few (level, df) pairs recur across an athlete's fits."""
    return float(stats.t.ppf(q, df))


def _t_two_sided_p(t_abs: float, df: float) -> float:
    """2 P(T > |t|) for Student's t with ``df`` degrees of freedom: ``2 * stats.t.sf(t_abs, df)``, computed by
    the function behind it (scipy.special.stdtr) without the distribution object's argument handling,
    which costs ~10x the function and runs twice for every estimate."""
    if not df > 0:
        return float(2 * stats.t.sf(t_abs, df))
    return float(2 * special.stdtr(df, -t_abs))


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

    def se(self, alpha: float = 0.05) -> float:
        """Standard error implied by the CI: half its width over the t quantile."""
        q = _t_quantile(1 - alpha / 2, self.df) if np.isfinite(self.df) and self.df > 0 else 1.96
        return (self.hi - self.lo) / (2 * q) if np.isfinite(self.hi) and np.isfinite(self.lo) else float("nan")

    def widened(self, extra_se: float, alpha: float) -> CoefFit:
        """The same estimate with an independent extra standard error added in quadrature to each side of
        the CI (and to the p-value): how the uncertainty of the heat coefficient enters."""
        if not (np.isfinite(extra_se) and extra_se > 0 and np.isfinite(self.est)):
            return self
        q = _t_quantile(1 - alpha / 2, self.df) if np.isfinite(self.df) and self.df > 0 else 1.96
        lo = self.est - float(np.hypot(self.est - self.lo, q * extra_se))
        hi = self.est + float(np.hypot(self.hi - self.est, q * extra_se))
        se = (hi - lo) / (2 * q)
        p = _t_two_sided_p(abs(self.est) / se, self.df) if se > 0 and np.isfinite(self.df) else self.p
        return CoefFit(self.est, lo, hi, p, self.df, self.params, self.weights, self.cov)


NO_FIT = CoefFit(np.nan, np.nan, np.nan, np.nan, np.nan, None, None)


def _hac_lags(n: int, params: AnalysisParams) -> int:
    if params.hac_max_lags is not None:
        return int(params.hac_max_lags)
    return max(1, int(np.floor(4 * (n / 100) ** (2 / 9))))


def _ar1_weights(X: np.ndarray, rho: float, j: int) -> np.ndarray:
    """Row j of the GLS estimator for AR(1) errors with coefficient ``rho`` (Cochrane-Orcutt whitening:
    the first observation dropped), so that coefficient j = weights @ y."""
    n = len(X)
    W = np.zeros((n - 1, n))
    W[np.arange(n - 1), np.arange(1, n)] = 1.0
    W[np.arange(n - 1), np.arange(n - 1)] = -rho
    return (np.linalg.pinv(W @ X) @ W)[j]


@dataclass(frozen=True)
class GLSAR1Fit:
    """Feasible GLS with AR(1) errors, as fitted: coefficients, their covariance (scale x (X~'X~)^-1 of the
    whitened design X~), the residual degrees of freedom (whitened rows - rank) and the AR(1) coefficient
    the final fit whitened with."""

    params: np.ndarray
    cov: np.ndarray
    df_resid: float
    rho: float


def _pinv_extended(x: np.ndarray, rcond: float = 1e-15) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-inverse and singular values, computed as statsmodels' ``tools.pinv_extended`` does (SVD,
    singular values below rcond * max set to 0), so the fits match statsmodels' to rounding."""
    u, s, vt = np.linalg.svd(x, False)
    s_orig = s.copy()
    cutoff = rcond * np.maximum.reduce(s)
    inv = np.where(s > cutoff, 1.0 / np.where(s > cutoff, s, 1.0), 0.0)
    return np.dot(np.transpose(vt), np.multiply(inv[:, np.newaxis], np.transpose(u))), s_orig


def _whiten_ar1(x: np.ndarray, rho: float) -> np.ndarray:
    """Cochrane-Orcutt whitening x_t - rho x_{t-1}, the first observation dropped (statsmodels' order 1)."""
    out = x.copy()
    out[1:] = out[1:] - rho * x[:-1]
    return out[1:]


def _yule_walker_ar1(resid: np.ndarray) -> float:
    """Lag-1 Yule-Walker coefficient of demeaned residuals with the 'adjusted' lag-1 autocovariance
    (divided by n - 1), as statsmodels' ``yule_walker(x, order=1)``."""
    x = np.array(resid, dtype=np.float64)
    x -= x.mean()
    n = x.shape[0]
    r0 = (x ** 2).sum() / n
    r1 = (x[0:-1] * x[1:]).sum() / (n - 1)
    return float(np.linalg.solve(np.array([[r0]]), np.array([r1]))[0])


def _whitened_ols(y: np.ndarray, X: np.ndarray, rho: float) -> tuple[np.ndarray, np.ndarray, float]:
    """One GLS fit at a fixed rho: params, their covariance and the residual degrees of freedom."""
    wX, wy = _whiten_ar1(X, rho), _whiten_ar1(y, rho)
    pinv, sv = _pinv_extended(wX)
    normalized_cov = np.dot(pinv, np.transpose(pinv))
    beta = np.dot(pinv, wy)
    df_resid = float(wX.shape[0]) - np.linalg.matrix_rank(np.diag(sv))
    wresid = wy - np.dot(wX, beta)
    return beta, normalized_cov * (np.dot(wresid, wresid) / df_resid), df_resid


def gls_ar1(y: np.ndarray, X: np.ndarray, maxiter: int = 20, rtol: float = 1e-4) -> GLSAR1Fit:
    """Feasible GLS of y ~ X with AR(1) errors, rho re-estimated from the (unwhitened) residuals until the
    coefficients change by less than ``rtol`` relative (iterated Cochrane-Orcutt 1949); statsmodels'
    ``GLSAR(y, X, rho=1).iterative_fit(maxiter, rtol)``, step for step (see the module docstring)."""
    y, X = np.asarray(y, dtype=np.float64), np.asarray(X, dtype=np.float64)
    rho, converged, last = 0.0, False, None
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(maxiter - 1):
            beta, _, _ = _whitened_ols(y, X, rho)
            if i == 0:
                last = beta
            else:
                if np.max(np.abs(last - beta) / np.abs(last)) < rtol:
                    converged = True
                    break
                last = beta
            rho = _yule_walker_ar1(y - np.dot(X, beta))
    beta, cov, df_resid = _whitened_ols(y, X, rho)   # statsmodels refits (a duplicate fit when converged)
    return GLSAR1Fit(beta, cov, df_resid, rho)


def _gls_ar1(X: np.ndarray, y: np.ndarray, j: int, alpha: float) -> CoefFit:
    # Feasible GLS with AR(1) errors, rho re-estimated from the residuals until stable.
    res = gls_ar1(y, X)
    with np.errstate(divide="ignore", invalid="ignore"):
        bse = np.sqrt(np.diag(res.cov))
        q = _t_quantile(1 - alpha / 2, res.df_resid)
        est, se = float(res.params[j]), float(bse[j])
        p = _t_two_sided_p(np.abs(est / se), res.df_resid)
    return CoefFit(est, est - q * se, est + q * se, p, res.df_resid, res.params, _ar1_weights(X, res.rho, j),
                   res.cov)


def _hac(X: np.ndarray, y: np.ndarray, j: int, alpha: float, params: AnalysisParams) -> CoefFit:
    # statsmodels only here (an option, not the default): imported when used, for start-up time (~0.4 s on
    # every analysis otherwise); not to dodge an import cycle, there is none.
    from statsmodels.regression.linear_model import OLS

    res = OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": _hac_lags(len(y), params), "use_correction": True},
                           use_t=True)
    lo, hi = res.conf_int(alpha=alpha)[j]
    return CoefFit(float(res.params[j]), float(lo), float(hi), float(res.pvalues[j]), float(res.df_resid),
                   np.asarray(res.params), np.linalg.pinv(X)[j], np.asarray(res.cov_params()))


def _block_bootstrap(X: np.ndarray, y: np.ndarray, j: int, alpha: float, params: AnalysisParams) -> CoefFit:
    n, k = X.shape
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    fitted = X @ beta
    resid = (y - fitted) * np.sqrt(n / (n - k))  # degrees-of-freedom inflation of the residuals
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
    return CoefFit(est, float(lo), float(hi), p, float(n - k), beta, pinv[j], np.cov(all_draws.T))


def coef_ci(X: np.ndarray, y: np.ndarray, j: int, params: AnalysisParams) -> CoefFit:
    """Coefficient j of y ~ X with a serial-correlation-robust CI (``params.ci_method``)."""
    n, k = X.shape
    if n <= k + 2 or np.linalg.matrix_rank(X) < k:
        return NO_FIT
    alpha = 1 - params.ci_level
    if params.ci_method == "cochrane_orcutt1949":
        return _gls_ar1(X, y, j, alpha)
    if params.ci_method == "newey_west1987":
        return _hac(X, y, j, alpha, params)
    if params.ci_method == "kunsch1989":
        return _block_bootstrap(X, y, j, alpha, params)
    raise ValueError(f"unknown CI method {params.ci_method!r}; valid: {', '.join(CI_METHODS)}")

"""One regression coefficient with a confidence interval that respects serial correlation of successive runs.

Default ``ci_method="cochrane_orcutt1949"``: feasible GLS with AR(1) errors (iterated Cochrane-Orcutt,
statsmodels GLSAR; t quantiles), which kept ~95 % coverage in our simulations with 30-90 runs where
Newey-West HAC errors covered only ~85-90 %. Options: Newey-West (1987) HAC errors and a moving-block
bootstrap of the residuals (Künsch 1989).

Every fit also returns the estimator's weights (the coefficient = weights @ y): the delta method for the
heat coefficient's uncertainty and the correlation between overlapping negative controls use them.

References: Cochrane D, Orcutt GH (1949). J Am Stat Assoc 44:32-61. Newey WK, West KD (1987).
Econometrica 55:703-708. Künsch HR (1989). Ann Stat 17:1217-1241.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import stats

from pipeline.analyze.params import CI_METHODS, AnalysisParams


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

    def se(self, alpha: float = 0.05) -> float:
        """Standard error implied by the CI: half its width over the t quantile."""
        q = float(stats.t.ppf(1 - alpha / 2, self.df)) if np.isfinite(self.df) and self.df > 0 else 1.96
        return (self.hi - self.lo) / (2 * q) if np.isfinite(self.hi) and np.isfinite(self.lo) else float("nan")

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
        return CoefFit(self.est, lo, hi, p, self.df, self.params, self.weights)


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


def _gls_ar1(X: np.ndarray, y: np.ndarray, j: int, alpha: float) -> CoefFit:
    # Feasible GLS with AR(1) errors, rho re-estimated from the residuals until stable.
    res = sm.GLSAR(y, X, rho=1).iterative_fit(maxiter=20)
    lo, hi = res.conf_int(alpha=alpha)[j]
    rho = float(np.atleast_1d(res.model.rho)[0])
    return CoefFit(float(res.params[j]), float(lo), float(hi), float(res.pvalues[j]), float(res.df_resid),
                   np.asarray(res.params), _ar1_weights(X, rho, j))


def _hac(X: np.ndarray, y: np.ndarray, j: int, alpha: float, params: AnalysisParams) -> CoefFit:
    res = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": _hac_lags(len(y), params), "use_correction": True},
                           use_t=True)
    lo, hi = res.conf_int(alpha=alpha)[j]
    return CoefFit(float(res.params[j]), float(lo), float(hi), float(res.pvalues[j]), float(res.df_resid),
                   np.asarray(res.params), np.linalg.pinv(X)[j])


def _block_bootstrap(X: np.ndarray, y: np.ndarray, j: int, alpha: float, params: AnalysisParams) -> CoefFit:
    n, k = X.shape
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    fitted = X @ beta
    resid = (y - fitted) * np.sqrt(n / (n - k))  # degrees-of-freedom inflation of the residuals
    rng = np.random.default_rng(params.seed)
    L = max(1, min(params.bootstrap_block_runs, n))
    n_blocks = int(np.ceil(n / L))
    pinv = np.linalg.pinv(X)
    draws = np.empty(params.bootstrap_reps)
    for r in range(params.bootstrap_reps):
        starts = rng.integers(0, n, n_blocks)
        idx = ((starts[:, None] + np.arange(L)[None, :]) % n).ravel()[:n]  # circular blocks
        draws[r] = (pinv @ (fitted + resid[idx]))[j]
    est = float(beta[j])
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    se = float(np.std(draws, ddof=1))
    p = float(2 * stats.t.sf(abs(est) / se, n - k)) if se > 0 else np.nan
    return CoefFit(est, float(lo), float(hi), p, float(n - k), beta, pinv[j])


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

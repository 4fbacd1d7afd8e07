"""The NumPy feasible GLS with AR(1) errors against statsmodels' GLSAR, which it replaces for speed."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.regression import coef_ci, gls_ar1


def _ar1_design(rng, n: int, k: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    X = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1)), (np.arange(n) > n // 2).astype(float)])
    e = np.zeros(n)
    for t in range(n):
        e[t] = (rho * e[t - 1] if t else 0.0) + rng.normal()
    return X, X @ rng.normal(size=X.shape[1]) + e * rng.uniform(0.01, 3)


@pytest.mark.parametrize("seed", range(40))
def test_gls_ar1_equals_statsmodels_glsar(seed):
    rng = np.random.default_rng(seed)
    X, y = _ar1_design(rng, int(rng.integers(8, 150)), int(rng.integers(1, 5)), float(rng.uniform(-0.5, 0.95)))
    ref = sm.GLSAR(y, X, rho=1).iterative_fit(maxiter=20)
    fit = gls_ar1(y, X)
    np.testing.assert_allclose(fit.params, ref.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.cov, ref.cov_params(), rtol=1e-9, atol=1e-15)
    assert fit.df_resid == ref.df_resid
    assert fit.rho == pytest.approx(float(np.atleast_1d(ref.model.rho)[0]), rel=1e-9, abs=1e-12)


def test_coef_ci_matches_statsmodels_conf_int_and_p_value():
    rng = np.random.default_rng(7)
    X, y = _ar1_design(rng, 70, 3, 0.5)
    j = X.shape[1] - 1
    ref = sm.GLSAR(y, X, rho=1).iterative_fit(maxiter=20)
    fit = coef_ci(X, y, j, AnalysisParams())
    lo, hi = ref.conf_int(alpha=0.05)[j]
    assert (fit.est, fit.lo, fit.hi) == pytest.approx((ref.params[j], lo, hi), rel=1e-9)
    assert fit.p == pytest.approx(ref.pvalues[j], rel=1e-9)
    assert fit.se() == pytest.approx(ref.bse[j], rel=1e-9)
    assert stats.t.ppf(0.975, fit.df) == pytest.approx((hi - ref.params[j]) / ref.bse[j], rel=1e-12)

"""The pooled-effect machinery against a published worked example: the BCG vaccine trials (Colditz et al.
1994; metafor's dat.bcg), log risk ratios, as R metafor reports them:

* ``rma(yi, vi, data=dat)`` (REML, z-test): tau^2 = 0.3132, I^2 = 92.22 %, Q(df = 12) = 152.2330,
  estimate -0.7145, se 0.1798, CI -1.0669 to -0.3622;
* ``rma(yi, vi, data=dat, test="knha")`` (REML, Hartung-Knapp): se 0.1808, CI -1.1084 to -0.3206, p 0.0019;
* ``rma(yi, vi, data=dat, method="DL")``: tau^2 = 0.3088, I^2 = 92.12 %, estimate -0.7141, se 0.1787,
  CI -1.0644 to -0.3638.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline.analyze.squad import meta_analysis, meta_regression

# tpos, tneg, cpos, cneg of the 13 trials (metafor dat.bcg), with absolute latitude (ablat).
BCG = np.array([
    [4, 119, 11, 128, 44], [6, 300, 29, 274, 55], [3, 228, 11, 209, 42], [62, 13536, 248, 12619, 52],
    [33, 5036, 47, 5761, 13], [180, 1361, 372, 1079, 44], [8, 2537, 10, 619, 19], [505, 87886, 499, 87892, 13],
    [29, 7470, 45, 7232, 27], [17, 1699, 65, 1600, 42], [186, 50448, 141, 27197, 18], [5, 2493, 3, 2338, 33],
    [27, 16886, 29, 17825, 33]], dtype=float)


def bcg():
    a, b, c, d, ablat = BCG.T
    yi = np.log((a / (a + b)) / (c / (c + d)))
    vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return yi, np.sqrt(vi), ablat


def test_bcg_log_risk_ratios_match_metafor_escalc():
    yi, _, _ = bcg()
    assert np.round(yi, 4).tolist() == [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120,
                                        -0.4694, -1.3713, -0.3394, 0.4459, -0.0173]


def test_reml_hksj_reproduces_metafor():
    yi, se, _ = bcg()
    m = meta_analysis(yi, se, "reml_hksj")
    assert m.k == 13
    assert m.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert m.i2_pct == pytest.approx(92.22, abs=0.005)
    assert m.q == pytest.approx(152.2330, abs=5e-4)
    assert m.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert m.se == pytest.approx(0.1808, abs=5e-5)
    assert (m.ci_low, m.ci_high) == (pytest.approx(-1.1084, abs=5e-5), pytest.approx(-0.3206, abs=5e-5))
    assert m.p_value == pytest.approx(0.0019, abs=5e-5)
    # Prediction interval (Higgins et al. 2009): mu +- t(k-2) sqrt(tau^2 + se^2), from the published values.
    half = stats.t.ppf(0.975, 11) * np.sqrt(0.3132 + 0.1808 ** 2)
    assert (m.pi_low, m.pi_high) == (pytest.approx(-0.7145 - half, abs=5e-4), pytest.approx(-0.7145 + half, abs=5e-4))
    assert m.weights.sum() == pytest.approx(1.0)


def test_reml_wald_and_dersimonian_laird_reproduce_metafor():
    yi, se, _ = bcg()
    wald = meta_analysis(yi, se, "reml_hksj", hksj=False)
    assert wald.se == pytest.approx(0.1798, abs=5e-5)
    assert (wald.ci_low, wald.ci_high) == (pytest.approx(-1.0669, abs=5e-5), pytest.approx(-0.3622, abs=5e-5))
    dl = meta_analysis(yi, se, "dersimonian_laird")
    assert dl.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert dl.i2_pct == pytest.approx(92.12, abs=0.005)
    assert dl.estimate == pytest.approx(-0.7141, abs=5e-5) and dl.se == pytest.approx(0.1787, abs=5e-5)
    assert (dl.ci_low, dl.ci_high) == (pytest.approx(-1.0644, abs=5e-5), pytest.approx(-0.3638, abs=5e-5))


def test_meta_regression_on_latitude_matches_metafor():
    """metafor: rma(yi, vi, mods = ~ ablat, data=dat): residual tau^2 0.0763, ablat -0.0291 (se 0.0072),
    CI -0.0432 to -0.0150 (z-test). Centring the moderator moves only the intercept. The Hartung-Knapp
    interval is wider and still excludes 0."""
    yi, se, ablat = bcg()
    r = meta_regression(yi, se, ablat, "reml_hksj", hksj=False)
    assert r.slope == pytest.approx(-0.0291, abs=5e-5)
    assert r.tau2 == pytest.approx(0.0763, abs=5e-5)
    assert (r.slope_ci_low, r.slope_ci_high) == (pytest.approx(-0.0432, abs=5e-5), pytest.approx(-0.0150, abs=5e-5))
    hk = meta_regression(yi, se, ablat, "reml_hksj")
    assert hk.slope == r.slope and hk.slope_ci_low < r.slope_ci_low and hk.slope_ci_high < 0


def test_unknown_method_is_named():
    yi, se, _ = bcg()
    with pytest.raises(ValueError, match="valid: reml_hksj, dersimonian_laird"):
        meta_analysis(yi, se, "fixed")


def test_single_block_is_its_own_estimate():
    m = meta_analysis([0.02], [0.01])
    assert m.k == 1 and m.estimate == 0.02 and m.tau2 == 0 and np.isnan(m.pi_low)
    assert m.ci_low == pytest.approx(0.02 - 1.96 * 0.01, abs=1e-4)

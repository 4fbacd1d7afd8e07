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
import pandas as pd
import pytest
from scipy import stats

from pipeline.analyze.squad import block_estimates, meta_analysis, meta_regression, squad_pooled

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


def _effects(rows):
    """block_effects headline rows: (athlete, raw change, raw CI, calibrated change, CI, SE) per block."""
    out = []
    for a, raw, raw_ci, cal, cal_ci, cal_se in rows:
        out.append({"athlete_id": a, "block_id": f"{a}-b1", "metric": "economy_m_per_beat", "method": "its",
                    "change_pct": raw, "ci_low_pct": raw_ci[0], "ci_high_pct": raw_ci[1],
                    "calibrated_change_pct": cal, "calibrated_ci_low_pct": cal_ci[0],
                    "calibrated_ci_high_pct": cal_ci[1], "calibrated_se_pct": cal_se})
    return pd.DataFrame(out)


def test_pooling_uses_each_blocks_calibrated_estimate_and_se():
    """The pooled effect takes calibrated_change_pct on the log scale with calibrated_se_pct / 100 as its SE
    (already the SE of the log change), not the raw estimate, and says so; a block without calibration
    enters raw."""
    e = _effects([("a", 6.0, (4.0, 8.0), 2.0, (-4.0, 8.4), 3.1),
                  ("b", 5.0, (3.0, 7.0), 1.0, (-5.0, 7.4), 3.1),
                  ("c", 7.0, (5.0, 9.0), 3.0, (-3.0, 9.4), 3.0)])
    est = block_estimates(e).set_index("athlete_id")
    assert (est["estimate_source"] == "calibrated").all()
    assert est.loc["a", "log_change"] == pytest.approx(np.log1p(0.02))
    assert est.loc["a", "se_log"] == pytest.approx(0.031)
    assert est.loc["c", "change_pct"] == 3.0 and est.loc["c", "ci_high_pct"] == 9.4
    pooled = squad_pooled(est.reset_index(), pd.DataFrame())
    row = pooled[pooled["meta_method"] == "dersimonian_laird"].iloc[0]
    # equal-ish SEs, no heterogeneity: about the mean of the calibrated changes (2 %), far from the raw 6 %
    assert row["estimate_source"] == "calibrated" and row["estimate_pct"] == pytest.approx(2.0, abs=0.05)
    m = meta_analysis(np.log1p([0.02, 0.01, 0.03]), [0.031, 0.031, 0.030], "dersimonian_laird")
    assert row["ci_low_pct"] == pytest.approx(np.expm1(m.ci_low) * 100)
    # a block the calibration left empty enters raw, with its CI width as SE; the pool is then 'mixed'
    e.loc[1, ["calibrated_change_pct", "calibrated_ci_low_pct", "calibrated_ci_high_pct",
              "calibrated_se_pct"]] = np.nan
    est = block_estimates(e).set_index("athlete_id")
    assert est.loc["b", "estimate_source"] == "raw" and est.loc["b", "change_pct"] == 5.0
    assert est.loc["b", "se_log"] == pytest.approx((np.log1p(0.07) - np.log1p(0.03)) / (2 * stats.norm.ppf(0.975)))
    assert squad_pooled(est.reset_index(), pd.DataFrame())["estimate_source"].iloc[0] == "mixed"


def test_hksj_is_never_narrower_than_the_plain_random_effects_interval():
    """Blocks that agree far better than their SEs (q < 1): plain HKSJ would shrink the CI below what the
    SEs allow; with the ad hoc floor (Knapp & Hartung 2003) the SE is the plain one, with t(k-1) quantiles.
    Where the blocks disagree (BCG), the floor does nothing (metafor's knha CI above)."""
    y, se = np.log1p([0.020, 0.021, 0.019, 0.020, 0.022]), np.full(5, 0.06)
    m = meta_analysis(y, se, "reml_hksj")
    wald = meta_analysis(y, se, "reml_hksj", hksj=False)
    assert m.se == pytest.approx(0.06 / np.sqrt(5)) and m.se == pytest.approx(wald.se)
    half = stats.t.ppf(0.975, 4) * m.se
    assert (m.ci_low, m.ci_high) == pytest.approx((m.estimate - half, m.estimate + half))
    x = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    r = meta_regression(y, se, x, "reml_hksj")
    rw = meta_regression(y, se, x, "reml_hksj", hksj=False)
    assert r.slope_ci_high - r.slope_ci_low > rw.slope_ci_high - rw.slope_ci_low

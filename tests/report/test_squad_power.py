"""What the squad can see (pipeline.report.squad_power): the power figures against a Monte Carlo of the
squad's own random-effects meta-analysis (REML tau^2, HKSJ CI; DerSimonian-Laird), and the line on the page."""

import html
import math

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.squad import meta_analysis
from pipeline.report.squad_power import (MAX_BLOCKS, SQUAD_POWER, blocks_needed, call_power,
                                         pooled_detectable_change_pct, pooled_se_log, squad_power_line)

GAIN_LOG = math.log1p(0.02)


def _pct(x: float) -> float:
    return 100 * math.expm1(x)


def _mc_power(se: np.ndarray, tau: float, delta_log: float, method: str, reps: int, seed: int) -> float:
    """Share of simulated squads (true log change delta_log, between-block SD tau) whose pooled CI is above 0."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        y = delta_log + rng.normal(0.0, np.sqrt(se ** 2 + tau ** 2))
        hits += meta_analysis(y, se, method).ci_low > 0
    return hits / reps


@pytest.mark.parametrize("method", ["reml_hksj", "dersimonian_laird"])
def test_pooled_se_is_read_back_from_the_stored_ci(method):
    rng = np.random.default_rng(3)
    se = rng.uniform(0.01, 0.03, 7)
    r = meta_analysis(GAIN_LOG + rng.normal(0, se), se, method)
    # squad_pooled stores the CI in percent; the SE must come back on the log scale
    assert pooled_se_log(_pct(r.ci_low), _pct(r.ci_high), 7, method) == pytest.approx(r.se, rel=1e-9)


@pytest.mark.parametrize("method", ["reml_hksj", "dersimonian_laird"])
def test_call_power_matches_a_monte_carlo_of_the_meta_analysis(method):
    # Mid-range power, where a wrong quantile, df or scale moves the figure by far more than the tolerance.
    se = np.linspace(0.012, 0.022, 6)
    tau = 0.004
    pooled = math.sqrt(1 / np.sum(1 / (se ** 2 + tau ** 2)))
    predicted = call_power(2.0, pooled, 6, method)
    assert 0.35 < predicted < 0.85
    simulated = _mc_power(se, tau, GAIN_LOG, method, reps=800, seed=11)
    # MC SE ~0.017; the planning formula takes tau^2 as known (REML's uncertainty about it costs a little)
    assert simulated == pytest.approx(predicted, abs=0.07)


def test_detectable_change_is_the_change_called_at_the_stated_power():
    pooled = 0.009
    d = pooled_detectable_change_pct(pooled, 8, "reml_hksj")
    assert call_power(d, pooled, 8, "reml_hksj") == pytest.approx(SQUAD_POWER, abs=1e-6)
    # more blocks at the same SE: the t quantile shrinks, so a smaller change is seen
    assert pooled_detectable_change_pct(pooled, 30, "reml_hksj") < d
    # the sign does not matter: a loss of the same size on the log scale is called as often
    assert call_power(_pct(-math.log1p(d / 100)), pooled, 8, "reml_hksj") == pytest.approx(SQUAD_POWER, abs=1e-6)


def test_blocks_needed_reach_the_power_in_a_monte_carlo():
    # Five like blocks (each SE 2.5 %, between-block SD 0.5 %): a 2 % gain needs more of them.
    se_one, tau, k = 0.025, 0.005, 5
    pooled = math.sqrt((se_one ** 2 + tau ** 2) / k)
    n = blocks_needed(pooled, k, "reml_hksj")
    assert n is not None and n > k
    per_block = pooled ** 2 * k
    assert call_power(2.0, math.sqrt(per_block / n), n, "reml_hksj") >= SQUAD_POWER
    assert call_power(2.0, math.sqrt(per_block / (n - 1)), n - 1, "reml_hksj") < SQUAD_POWER
    simulated = _mc_power(np.full(n, se_one), tau, GAIN_LOG, "reml_hksj", reps=600, seed=5)
    assert simulated == pytest.approx(SQUAD_POWER, abs=0.07)


def test_out_of_reach_and_unreadable_rows():
    # a per-block SE of ~400 %: not even MAX_BLOCKS blocks see 2 %
    assert blocks_needed(3.0, 2, "reml_hksj") is None
    assert "out of reach of any number of blocks" in squad_power_line(
        {"k": 2, "ci_low_pct": -99.9, "ci_high_pct": 1e6}, "reml_hksj")
    assert MAX_BLOCKS >= 100
    assert squad_power_line({"k": 1, "ci_low_pct": -3.0, "ci_high_pct": 5.0}, "reml_hksj") == ""
    assert squad_power_line({"k": 4, "ci_low_pct": float("nan"), "ci_high_pct": 5.0}, "reml_hksj") == ""
    # NULLs as DuckDB hands them to pandas (nullable dtypes: pd.NA), or None
    assert squad_power_line({"k": 4, "ci_low_pct": pd.NA, "ci_high_pct": 5.0}, "reml_hksj") == ""
    assert squad_power_line({"k": pd.NA, "ci_low_pct": -1.0, "ci_high_pct": 5.0}, "reml_hksj") == ""
    assert squad_power_line({"k": 4, "ci_low_pct": None, "ci_high_pct": 5.0}, "reml_hksj") == ""


def test_power_line_sentences():
    assert squad_power_line({"k": 10, "ci_low_pct": -1.9, "ci_high_pct": 4.0}, "dersimonian_laird") == (
        "With these 10 blocks a true average change of about 4.3 % either way would be called (95 % CI clear of 0) "
        "80 % of the time; calling a 2 % average gain 80 % of the time needs about 45 blocks like these.")
    assert squad_power_line({"k": 12, "ci_low_pct": 0.9, "ci_high_pct": 3.3}, "reml_hksj") == (
        "With these 12 blocks a true average change of about 1.7 % either way would be called (95 % CI clear of 0) "
        "80 % of the time; a 2 % average gain would be called 90 % of the time.")


def test_squad_page_says_what_the_squad_can_see(built_reports):
    ws, index = built_reports
    page = html.unescape(index.read_text(encoding="utf-8"))
    # the fixture's pooled row: 2 blocks, 95 % CI -4.2 to 7.1 % (REML-HKSJ, t with 1 df)
    assert 'id="squad-power"' in page
    assert ("All blocks: " + squad_power_line({"k": 2, "ci_low_pct": -4.2, "ci_high_pct": 7.1}, "reml_hksj")) in page
    assert "about 7.4 % either way" in page and "needs about 4 blocks like these" in page

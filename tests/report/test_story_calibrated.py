"""The headline uses the calibrated verdict and says how the method did on the athlete's negative controls."""

from __future__ import annotations

import pandas as pd

from pipeline.report import story
from pipeline.report.data import AthleteReportData

BLOCK_START = pd.Timestamp("2025-03-12")


def _tables(effect: dict, controls: list[str]) -> AthleteReportData:
    runs = pd.DataFrame({"start_time": pd.to_datetime(["2025-01-01", "2025-05-01"]), "heart_rate_bpm": [140.0, 138.0],
                         "economy_m_per_beat": [1.3, 1.32], "included": [True, True], "exclusion_reason": [None, None]})
    base = {"block_id": "b1", "metric": "economy_m_per_beat", "method": "its", "swc_pct": 1.0,
            "baseline_start": BLOCK_START - pd.Timedelta(weeks=16), "baseline_end": BLOCK_START,
            "response_start": BLOCK_START + pd.Timedelta(weeks=6), "response_end": BLOCK_START + pd.Timedelta(weeks=12)}
    blk = pd.DataFrame({"block_id": ["b1"], "start_date": [BLOCK_START], "end_date": [BLOCK_START + pd.Timedelta(weeks=12)],
                        "label": [None]})
    pc = pd.DataFrame({"block_id": "b1", "metric": "economy_m_per_beat", "method": "its",
                       "fake_start": pd.date_range("2024-01-01", periods=len(controls), freq="14D"),
                       "verdict": controls})
    return AthleteReportData("a", "A", runs, pd.DataFrame(), blk, pd.DataFrame([{**base, **effect}]), pc,
                         pd.DataFrame({"start_time": []}), pd.DataFrame())


RAW_GAIN = {"change_pct": 2.6, "ci_low_pct": 1.1, "ci_high_pct": 4.1, "verdict": "gain"}


def test_headline_follows_the_calibrated_verdict_not_the_raw_one():
    t = _tables({**RAW_GAIN, "calibrated_change_pct": 2.2, "calibrated_ci_low_pct": -1.4,
                 "calibrated_ci_high_pct": 5.9, "calibrated_verdict": "cannot tell",
                 "verdict_reason": "season not controlled: 9 months of included runs (needs 12)",
                 "calibration_source": "default", "systematic_mu_pct": 0.1, "systematic_tau_pct": 1.4}, ["no clear change"] * 5)
    text = story.headline_sentence(t)
    assert "cannot tell whether running economy changed" in text and "+2.2 %, 95 % CI \u22121.4 to 5.9 %" in text
    assert "season not controlled" in text and "better" not in text
    assert "few negative controls (5 fake block starts" in text and "conservative default (+0.1 \u00b1 1.4 %)" in text
    assert story.short_verdict(t) == "cannot tell"


def test_own_controls_line_counts_false_alarms_of_the_raw_method():
    t = _tables({**RAW_GAIN, "calibrated_change_pct": 2.4, "calibrated_ci_low_pct": 0.4,
                 "calibrated_ci_high_pct": 4.5, "calibrated_verdict": "gain", "verdict_reason": "",
                 "calibration_source": "own", "systematic_mu_pct": -0.2, "systematic_tau_pct": 0.6},
                ["gain", "loss", "loss"] + ["no clear change"] * 21)
    text = story.headline_sentence(t)
    assert "running economy was 2.4 % better" in text and "95 % CI 0.4 to 4.5 %" in text
    assert ("On your own negative controls (24 fake block starts across your record, where nothing began: "
            "the uncalibrated method claimed a gain at 1 and a loss at 2 of them), its systematic error was "
            "\u22120.2 \u00b1 0.6 %") in text


def test_rows_without_calibration_read_as_before():
    t = _tables(RAW_GAIN, [])
    text = story.headline_sentence(t)
    assert "2.6 % better" in text and "negative control" not in text


def test_detectable_change_is_the_change_the_verdict_rule_calls_80_percent_of_the_time():
    import numpy as np
    from pipeline.report.headline import call_probability, detectable_change_pct
    rng = np.random.default_rng(7)
    for se_pct, swc_pct in ((0.3, 1.0), (0.81, 1.0), (2.2, 1.0), (1.5, 0.0)):
        d = detectable_change_pct(se_pct, swc_pct)
        # The rule of pipeline.analyze.verdict on a log-scale estimate: CI above 0 and estimate above the SWC.
        est = rng.normal(np.log1p(d / 100), se_pct / 100, 200_000)
        called = (est - 1.959964 * se_pct / 100 > 0) & (np.expm1(est) * 100 > swc_pct)
        assert abs(called.mean() - 0.80) < 0.005, (se_pct, swc_pct, d)
        est2 = rng.normal(np.log1p(0.02), se_pct / 100, 200_000)
        called2 = (est2 - 1.959964 * se_pct / 100 > 0) & (np.expm1(est2) * 100 > swc_pct)
        assert abs(call_probability(2.0, se_pct, swc_pct) - called2.mean()) < 0.005
    # Small SE: the smallest worthwhile change binds, not the CI.
    assert 1.2 < detectable_change_pct(0.3, 1.0) < 1.3
    # The SE make validate says a year's record needs (0.81) calls about 70 % of 2 % gains.
    assert 0.66 < call_probability(2.0, 0.81, 1.0) < 0.72


def test_box_says_what_a_no_verdict_record_could_have_seen_and_nothing_for_a_clear_one():
    from pipeline.report.headline import headline_box
    unclear = _tables({**RAW_GAIN, "se_pct": 0.8, "calibrated_change_pct": 2.2, "calibrated_ci_low_pct": -1.4,
                       "calibrated_ci_high_pct": 5.9, "calibrated_se_pct": 1.87, "calibrated_verdict": "cannot tell",
                       "verdict_reason": "", "calibration_source": "default", "systematic_mu_pct": 0.1,
                       "systematic_tau_pct": 1.4}, ["no clear change"] * 5)
    line = headline_box(unclear).detectable
    # From the calibrated SE 1.87: exp(1.96 * 0.0187 + 0.8416 * 0.0187) - 1 = 5.4 %;
    # P(call a 2 % gain) = Phi((log 1.02 - 1.96 * 0.0187) / 0.0187) = 18 %.
    assert line == ("What this record can see: a true change of about 5.4 % either way would be called 80 % of "
                    "the time; a 2 % gain, 18 % of the time.")
    raw_no_change = _tables({**RAW_GAIN, "verdict": "no clear change", "se_pct": 0.5}, [])
    assert "about 1.4 %" in headline_box(raw_no_change).detectable
    clear = _tables({**RAW_GAIN, "se_pct": 0.8}, [])
    assert headline_box(clear).detectable == ""


def test_after_a_sensor_change_the_line_uses_the_device_adjusted_ci_the_verdict_used():
    import math
    from pipeline.report.headline import detectable_change_pct, headline_box
    cal = {**RAW_GAIN, "se_pct": 0.8, "calibrated_change_pct": 1.0, "calibrated_ci_low_pct": -1.0,
           "calibrated_ci_high_pct": 3.0, "calibrated_se_pct": 1.0, "calibrated_verdict": "cannot tell",
           "verdict_reason": "", "calibration_source": "own", "systematic_mu_pct": 0.0, "systematic_tau_pct": 0.5,
           "sensor_change": True}
    # Device-adjusted 95 % CI -4 to +6 %: SE on the log scale (log 1.06 - log 0.96) / 3.92 = 2.53 %.
    line = headline_box(_tables({**cal, "device_adjusted_ci_low_pct": -4.0, "device_adjusted_ci_high_pct": 6.0},
                                ["no clear change"] * 5)).detectable
    se = 100 * (math.log(1.06) - math.log(0.96)) / (2 * 1.959964)
    assert f"about {detectable_change_pct(se, 1.0):.1f} %" in line and "about 7.3 %" in line
    # No device-adjusted CI (the shift could not be separated): nothing to size.
    assert headline_box(_tables({**cal, "device_adjusted_ci_low_pct": float("nan"),
                                 "device_adjusted_ci_high_pct": float("nan")}, ["no clear change"] * 5)).detectable == ""


def test_read_with_care_lists_season_heat_and_sensor_from_warehouse_booleans():
    from pipeline.report.headline import trust_problems
    row = {**RAW_GAIN, "calibrated_change_pct": 1.0, "calibrated_ci_low_pct": -3.0, "calibrated_ci_high_pct": 5.0,
           "calibrated_verdict": "no clear change", "calibration_source": "own",
           "season_controlled": False, "heat_controlled": False, "sensor_change": True}
    t = _tables(row, ["no clear change"] * 5)
    # As DuckDB's BOOLEAN arrives: pandas' nullable boolean, so the row holds numpy bools, never True/False.
    for col in ("season_controlled", "heat_controlled", "sensor_change"):
        t.effects[col] = t.effects[col].astype("boolean")
    problems = " | ".join(trust_problems(t, t.effects.iloc[0]))
    assert "season is not modelled" in problems and "heat is not adjusted" in problems
    assert "heart-rate sensor changed" in problems
    t.effects["season_controlled"] = pd.array([pd.NA], dtype="boolean")   # NULL: not known against it
    t.effects["heat_controlled"] = pd.array([True], dtype="boolean")
    t.effects["sensor_change"] = pd.array([False], dtype="boolean")
    assert trust_problems(t, t.effects.iloc[0]) == []

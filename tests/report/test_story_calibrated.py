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

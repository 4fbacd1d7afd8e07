"""The words on the page, from hand-made table rows (no warehouse, no figures)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.report import story
from pipeline.report.data import AthleteReportData

BLOCK_START = pd.Timestamp("2025-03-12")


def tables(effects: list[dict], placebo: list[dict] | None = None, blocks: bool = True) -> AthleteReportData:
    runs = pd.DataFrame({"start_time": pd.to_datetime(["2025-01-01", "2025-05-01"]), "heart_rate_bpm": [140.0, 138.0],
                         "economy_m_per_beat": [1.3, 1.32], "included": [True, True],
                         "exclusion_reason": [None, None]})
    base = {"baseline_start": BLOCK_START - pd.Timedelta(weeks=6), "baseline_end": BLOCK_START - pd.Timedelta(days=1),
            "response_start": BLOCK_START + pd.Timedelta(weeks=6), "response_end": BLOCK_START + pd.Timedelta(weeks=12),
            "metric": "economy_m_per_beat", "method": "its", "swc_pct": 1.0}
    eff = pd.DataFrame([{**base, **e} for e in effects], columns=[*base, "block_id", "change_pct", "ci_low_pct",
                                                                  "ci_high_pct", "verdict"])
    blk = pd.DataFrame({"block_id": ["b1", "b2"], "start_date": [BLOCK_START, BLOCK_START + pd.Timedelta(weeks=30)],
                        "end_date": [BLOCK_START + pd.Timedelta(weeks=12), BLOCK_START + pd.Timedelta(weeks=40)],
                        "label": [None, "Autumn"]})
    pc = pd.DataFrame(placebo or [], columns=["block_id", "metric", "method", "fake_start", "verdict"])
    return AthleteReportData(athlete_id="a", display_name="A", runs=runs, weekly=pd.DataFrame(),
                         blocks=blk if blocks else blk.iloc[0:0], effects=eff, placebo=pc,
                         strength_sessions=pd.DataFrame({"start_time": []}), source_files=pd.DataFrame())


@pytest.mark.parametrize("value, text", [(2.14, "2.1"), (-1.25, "\u22121.2"), (-0.04, "0.0"), (None, "n/a"),
                                         (float("nan"), "n/a"), (0.96, "1.0")])
def test_format_1dp(value, text):
    assert story.format_1dp(value) == text


def test_signed_format_marks_positive_changes():
    assert story.format_signed_1dp(0.4) == "+0.4"
    assert story.format_signed_1dp(-0.4) == "\u22120.4"
    assert story.format_signed_1dp(0.01) == "0.0"


def test_loss_headline_says_worse_with_signed_numbers():
    t = tables([{"block_id": "b1", "change_pct": -1.83, "ci_low_pct": -3.02, "ci_high_pct": -1.11, "verdict": "loss"}])
    text = story.headline_sentence(t)
    assert "running economy was 1.8 % worse than the pre-block trend predicted" in text
    assert "change \u22121.8 %, 95 % CI \u22123.0 to \u22121.1 %" in text


def test_no_clear_change_headline():
    t = tables([{"block_id": "b1", "change_pct": 0.42, "ci_low_pct": -1.2, "ci_high_pct": 2.04,
                 "verdict": "no clear change"}])
    text = story.headline_sentence(t)
    assert "no clear change in running economy beyond the pre-block trend" in text
    assert "estimate +0.4 %, 95 % CI \u22121.2 to 2.0 %; smallest worthwhile change 1.0 %" in text
    assert "better" not in text


def test_most_recent_rated_block_wins_and_insufficient_is_skipped():
    later = BLOCK_START + pd.Timedelta(weeks=30)
    t = tables([
        {"block_id": "b1", "change_pct": 2.5, "ci_low_pct": 1.2, "ci_high_pct": 3.8, "verdict": "gain"},
        {"block_id": "b2", "change_pct": None, "ci_low_pct": None, "ci_high_pct": None,
         "verdict": "insufficient data", "response_start": later + pd.Timedelta(weeks=6)},
    ])
    assert story.headline_effect(t).row["block_id"] == "b1"
    t2 = tables([
        {"block_id": "b1", "change_pct": 2.5, "ci_low_pct": 1.2, "ci_high_pct": 3.8, "verdict": "gain"},
        {"block_id": "b2", "change_pct": 0.1, "ci_low_pct": -1.0, "ci_high_pct": 1.2, "verdict": "no clear change",
         "response_start": later + pd.Timedelta(weeks=6), "response_end": later + pd.Timedelta(weeks=12)},
    ])
    effect = story.headline_effect(t2)
    assert effect.row["block_id"] == "b2"
    assert effect.weeks_phrase == f"In weeks 6\u201312 after your strength block started ({story.format_day(later)})"


def test_no_blocks_and_no_sessions_says_no_strength():
    t = tables([], blocks=False)
    assert story.headline_sentence(t).startswith("No strength training was found")
    assert story.short_verdict(t) == "no strength block"


def test_run_periods_split_at_block_and_response_window():
    times = pd.Series(pd.to_datetime(["2025-03-01 00:00", "2025-03-12 06:00", "2025-04-23 07:00", "2025-06-04 20:00",
                                      "2025-06-05 01:00"]))
    labels = story.run_periods(times, BLOCK_START, BLOCK_START + pd.Timedelta(weeks=6),
                               BLOCK_START + pd.Timedelta(weeks=12))
    assert labels.tolist() == ["before block", "during ramp", "response window", "response window", "after"]
    assert set(story.run_periods(times, None, None, None)) == {"before block"}


def test_placebo_counts_only_rated_fake_starts_and_warns_when_frequent():
    rows = [{"block_id": "b1", "metric": "economy_m_per_beat", "method": "its", "fake_start": BLOCK_START, "verdict": v}
            for v in ("gain", "gain", "no clear change", "insufficient data")]
    rows.append({"block_id": "b1", "metric": "m_per_beat", "method": "its", "fake_start": BLOCK_START, "verdict": "gain"})
    summary = story.placebo_summary(tables([], placebo=rows), "b1")
    assert (summary.gains, summary.total) == (2, 3)
    assert summary.sentence.startswith("At 2 of 3 fake block starts") and "caution" in summary.sentence
    assert story.placebo_summary(tables([], placebo=rows), None).total == 0


def test_exclusions_are_grouped_by_kind_not_by_per_run_numbers():
    runs = pd.DataFrame({"included": [False, False, False, True, False],
                         "exclusion_reason": ["only 14 min steady (min 15); 14 min lost to pace changes",
                                              "only 8 min steady (min 15); 71 min lost to pace changes",
                                              "no heart rate", None, None]})
    counts = story.exclusion_counts(runs)
    assert counts[["reason", "runs"]].values.tolist() == [["only N min steady (min N)", 2],
                                                          ["no heart rate", 1], ["no reason recorded", 1]]
    assert counts["example"].iloc[0].startswith("only 14 min steady")

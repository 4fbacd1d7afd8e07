"""Block detection on planted schedules, declared blocks from blocks.csv, and their precedence."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.analyze.blocks import STRENGTH_BLOCK_COLUMNS, BlockParams, strength_blocks_for_athlete
from pipeline.ingest.declared_blocks import DECLARED_BLOCK_COLUMNS, load_declared_blocks
from pipeline.ingest.strength_rows import session_id_for, sets_frame, sessions_frame
from pipeline.warehouse.db import connect

NO_DECLARED = pd.DataFrame(columns=DECLARED_BLOCK_COLUMNS)


def _planted(days: list[date], athlete="a"):
    """Sessions at 18:00 UTC on the given days; each: one 10 x 40 kg warm-up and one 5 x 100 kg set."""
    sessions, sets = [], []
    for d in days:
        start = datetime(d.year, d.month, d.day, 18, 0, tzinfo=timezone.utc)
        sid = session_id_for(athlete, start)
        sessions.append({"session_id": sid, "athlete_id": athlete, "start_time": pd.Timestamp(start),
                         "duration_s": 3600.0, "title": None, "source_format": "generic_csv", "file_id": "f",
                         "n_sets": 2, "n_working_sets": 1})
        sets.append({"session_id": sid, "set_index": 0, "exercise": "Squat", "category": None,
                     "set_type": "warmup", "reps": 10, "weight_kg": 40.0})
        sets.append({"session_id": sid, "set_index": 1, "exercise": "Squat", "category": None,
                     "set_type": "working", "reps": 5, "weight_kg": 100.0})
    return sessions_frame(sessions), sets_frame(sets)


def _twice_weekly(first_monday: date, weeks: int, skip_weeks=()) -> list[date]:
    """Monday and Thursday of each week, except the skipped weeks (0-based)."""
    return [first_monday + timedelta(weeks=w, days=dd)
            for w in range(weeks) if w not in skip_weeks for dd in (0, 3)]


def _blocks(days, declared=NO_DECLARED, params=BlockParams()):
    sessions, sets = _planted(days)
    return strength_blocks_for_athlete("a", sessions, sets, declared, params)


def test_ten_weeks_twice_weekly_with_a_missed_week_is_one_block():
    days = _twice_weekly(date(2025, 1, 6), 10, skip_weeks={4})
    out = _blocks(days)
    assert list(out.columns) == STRENGTH_BLOCK_COLUMNS
    assert len(out) == 1
    b = out.iloc[0]
    assert (b["block_id"], b["start_date"], b["end_date"]) == ("B2025-01-06", date(2025, 1, 6), date(2025, 3, 13))
    assert b["sessions"] == 18
    assert b["sessions_per_week"] == pytest.approx(18 / (67 / 7))
    assert b["volume_kg"] == 18 * 500.0          # warm-ups excluded
    assert (b["source"], b["label"]) == ("detected", "detected 2025-01-06 to 2025-03-13")


def test_sporadic_sessions_are_no_block():
    rng = np.random.default_rng(7)
    gaps = rng.integers(12, 30, size=15)          # a session every 12-29 days for a year
    days = [date(2025, 1, 3) + timedelta(days=int(g)) for g in np.cumsum(gaps)]
    assert _blocks(days).empty


def test_weekly_sessions_are_too_sparse_for_a_block():
    days = [date(2025, 1, 6) + timedelta(weeks=w) for w in range(20)]
    assert _blocks(days).empty


def test_three_weeks_of_daily_sessions_is_too_short():
    days = [date(2025, 1, 6) + timedelta(days=i) for i in range(21)]
    assert _blocks(days).empty


def test_two_blocks_separated_by_six_weeks_are_two():
    first = _twice_weekly(date(2025, 1, 6), 6)
    second = _twice_weekly(date(2025, 1, 6) + timedelta(weeks=12), 6)
    out = _blocks(first + second)
    assert out[["block_id", "start_date", "end_date", "sessions"]].values.tolist() == [
        ["B2025-01-06", date(2025, 1, 6), date(2025, 2, 13), 12],
        ["B2025-03-31", date(2025, 3, 31), date(2025, 5, 8), 12],
    ]


def test_dense_block_followed_by_occasional_sessions_keeps_the_dense_part():
    dense = _twice_weekly(date(2025, 1, 6), 8)
    tail = [date(2025, 3, 3) + timedelta(days=9 * i) for i in range(1, 12)]   # every 9 days after
    out = _blocks(dense + tail)
    assert len(out) == 1
    b = out.iloc[0]
    assert b["start_date"] == date(2025, 1, 6)
    assert b["sessions_per_week"] >= 1.5
    assert b["end_date"] < tail[-1]


def test_declared_blocks_win_over_overlapping_detected_ones():
    days = _twice_weekly(date(2025, 1, 6), 10) + _twice_weekly(date(2025, 6, 2), 6)
    declared = pd.DataFrame({"athlete_id": ["a", "a"], "label": ["Winter", "Autumn (no data)"],
                             "start_date": [date(2025, 1, 1), date(2025, 10, 1)],
                             "end_date": [date(2025, 2, 28), date(2025, 11, 30)]})
    out = _blocks(days, declared)
    assert out[["block_id", "source", "label", "start_date", "end_date", "sessions", "volume_kg"]].values.tolist() == [
        ["B2025-01-01", "declared", "Winter", date(2025, 1, 1), date(2025, 2, 28), 16, 8000.0],
        ["B2025-06-02", "detected", "detected 2025-06-02 to 2025-07-10", date(2025, 6, 2), date(2025, 7, 10),
         12, 6000.0],
        ["B2025-10-01", "declared", "Autumn (no data)", date(2025, 10, 1), date(2025, 11, 30), 0, 0.0],
    ]
    assert out.iloc[0]["sessions_per_week"] == pytest.approx(16 / (59 / 7))


def test_other_athletes_sessions_and_blocks_are_ignored():
    mine, my_sets = _planted(_twice_weekly(date(2025, 1, 6), 6), "a")
    theirs, their_sets = _planted(_twice_weekly(date(2025, 5, 5), 6), "b")
    declared = pd.DataFrame({"athlete_id": ["b"], "label": ["B's"], "start_date": [date(2025, 1, 1)],
                             "end_date": [date(2025, 12, 31)]})
    out = strength_blocks_for_athlete("a", pd.concat([mine, theirs]), pd.concat([my_sets, their_sets]),
                                      declared, BlockParams())
    assert out[["block_id", "source", "sessions"]].values.tolist() == [["B2025-01-06", "detected", 12]]


def test_params_change_detection():
    days = _twice_weekly(date(2025, 1, 6), 10, skip_weeks={4})
    strict = BlockParams.from_config({"blocks": {"max_gap_days": 7}})
    out = _blocks(days, params=strict)
    assert out[["start_date", "end_date"]].values.tolist() == [[date(2025, 2, 10), date(2025, 3, 13)]]


def test_params_from_config():
    assert BlockParams.from_config({}) == BlockParams()
    assert BlockParams.from_config({"analysis": {"x": 1}}) == BlockParams()
    p = BlockParams.from_config({"blocks": {"min_sessions_per_week": 2, "min_weeks": 6, "max_gap_days": 14}})
    assert (p.min_sessions_per_week, p.min_weeks, p.max_gap_days, p.min_sessions) == (2.0, 6.0, 14, 4)
    with pytest.raises(PipelineError) as e:
        BlockParams.from_config({"blocks": {"min_week": 6}})
    assert str(e.value) == ("pipeline.toml [blocks]: unknown key min_week; valid keys: min_sessions_per_week, "
                            "min_weeks, max_gap_days, min_sessions")
    with pytest.raises(PipelineError, match=r"max_gap_days = -1 is out of range \(must be above 0 and at most 365 days\)"):
        BlockParams.from_config({"blocks": {"max_gap_days": -1}})
    with pytest.raises(PipelineError, match="min_sessions = 2.5 must be a whole number"):
        BlockParams.from_config({"blocks": {"min_sessions": 2.5}})


# ------------------------------------------------------------------------------------ blocks.csv


def _declared_rows(con):
    return con.execute("SELECT athlete_id, label, start_date::VARCHAR, end_date::VARCHAR FROM declared_blocks "
                       "ORDER BY start_date").fetchall()


def test_load_declared_blocks(workspace):
    folder = workspace.raw_dir / "alice"
    folder.mkdir()
    (folder / "blocks.csv").write_text(
        "\ufefflabel,start,end\n"
        "Winter strength,2025-01-06,2025-03-16\n"
        '"Heavy, low reps",2025-05-05,2025-06-29\n'
        "Broken,2025-13-01,2025-14-01\n"
        "Backwards,2025-08-01,2025-07-01\n"
        "\n"
        ",2025-09-01,2025-10-01\n"
        "Winter strength,2025-01-06,2025-03-20\n",
        encoding="utf-8")
    con = connect(workspace)
    try:
        con.execute("INSERT INTO declared_blocks VALUES ('bob', 'Bob', '2025-01-01', '2025-02-01')")
        warning = load_declared_blocks(con, workspace, "alice")
        assert warning == (
            "data/raw/alice/blocks.csv row 4: dates must be YYYY-MM-DD (start '2025-13-01', end '2025-14-01'); "
            "row ignored; "
            "data/raw/alice/blocks.csv row 5: end 2025-07-01 is before start 2025-08-01; row ignored; "
            "data/raw/alice/blocks.csv row 7: missing label; row ignored; "
            "data/raw/alice/blocks.csv row 8: block 'Winter strength' starting 2025-01-06 is listed twice; "
            "row ignored")
        expected = [("bob", "Bob", "2025-01-01", "2025-02-01"),
                    ("alice", "Winter strength", "2025-01-06", "2025-03-16"),
                    ("alice", "Heavy, low reps", "2025-05-05", "2025-06-29")]
        assert _declared_rows(con) == expected
        load_declared_blocks(con, workspace, "alice")          # again: replaced, not doubled
        assert _declared_rows(con) == expected
        (folder / "blocks.csv").write_text("name,from,to\nx,2025-01-01,2025-02-01\n", encoding="utf-8")
        assert load_declared_blocks(con, workspace, "alice") == (
            "data/raw/alice/blocks.csv: header must be label,start,end (found name,from,to)")
        (folder / "blocks.csv").unlink()
        assert load_declared_blocks(con, workspace, "alice") is None
        assert _declared_rows(con) == [("bob", "Bob", "2025-01-01", "2025-02-01")]
    finally:
        con.close()

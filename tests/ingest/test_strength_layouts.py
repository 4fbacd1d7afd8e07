"""Hand-written samples of every layout (tests/strength/samples/, named after their edge case), with the
exact values each must give."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.ingest.common import NothingToIngest, ReadContext, ReadError
from pipeline.ingest.dispatch import read_bytes
from pipeline.ingest.strength_csv import parse_duration_s, parse_strength_csv, sniff_strength_csv
from pipeline.workspace import AthleteConfig

SAMPLES = Path(__file__).parent / "strength_samples"
SET_FIELDS = ["exercise", "category", "set_type", "reps", "weight_kg", "duration_s", "rpe", "distance_m"]


def _parse(name, **athlete):
    """The file through the dispatcher, as ingest reads it: a reader's ReadError/NothingToIngest becomes
    an ``error``/``skipped`` result with the reader's message, format and per-row warnings."""
    data = (SAMPLES / name).read_bytes()
    fmt = sniff_strength_csv(data[:4096])
    assert fmt is not None, name
    parsed = read_bytes(data, name, ReadContext(path=f"samples/{name}", file_id="f", athlete_id="a",
                                                athlete=AthleteConfig("a", **athlete)))
    assert parsed.format == fmt, (parsed.format, fmt)
    return parsed


def _sets(parsed):
    """Sets as plain lists, NaN/NA as None, for whole-row comparison."""
    df = parsed.strength_sets[SET_FIELDS].astype(object)
    return [[None if pd.isna(v) else v for v in row] for row in df.values.tolist()]


@pytest.mark.parametrize("name, fmt", [
    ("strong-classic-lbs-wdf.csv", "strong_csv"),
    ("strong-weight-and-distance-unit-columns.csv", "strong_csv"),
    ("strong-android-semicolon-decimal-comma-bom.csv", "strong_csv"),
    ("strong-quoted-workout-number-seconds.csv", "strong_csv"),
    ("hevy-lbs-miles.csv", "hevy_csv"),
    ("fitnotes-weight-kgs-no-times.csv", "fitnotes_csv"),
    ("fitnotes-weight-unit-column-lbs.csv", "fitnotes_csv"),
    ("generic-all-columns.csv", "generic_csv"),
    ("generic-required-columns-only.csv", "generic_csv"),
    ("generic-semicolon-decimal-comma.csv", "generic_csv"),
])
def test_sniff_names_each_layout(name, fmt):
    assert sniff_strength_csv((SAMPLES / name).read_bytes()[:4096]) == fmt


@pytest.mark.parametrize("head", [
    b"timestamp,heart_rate,cadence,speed,distance,position_lat,position_long,altitude,temperature\n1,2",
    b"Timestamp, Heart Rate [bpm],Speed [m/s],Distance [m],Cadence [rpm]\n",
    b"", b"\x00\x01\x02\x03", b"label,start,end\nWinter,2025-01-06,2025-03-16\n",
])
def test_sniff_rejects_other_csvs(head):
    assert sniff_strength_csv(head) is None


def test_strong_classic_lbs_from_athlete_and_set_orders():
    p = _parse("strong-classic-lbs-wdf.csv", weight_unit="lbs")
    assert p.status == "ok" and p.warnings == []
    assert p.message == "2 sessions, 6 sets (5 working)"
    s = p.strength_sessions
    assert [str(t) for t in s["start_time"]] == ["2025-01-06 18:00:00+00:00", "2025-01-08 07:30:00+00:00"]
    assert s["duration_s"].tolist() == [3900.0, 2700.0]
    assert s["n_sets"].tolist() == [5, 1] and s["n_working_sets"].tolist() == [4, 1]
    assert _sets(p) == [
        ["Squat (Barbell)", None, "warmup", 5, 61.235, None, None, None],
        ["Squat (Barbell)", None, "working", 5, 102.058, None, 8.0, None],
        ["Squat (Barbell)", None, "working", 5, 102.058, None, 8.5, None],
        ["Squat (Barbell)", None, "drop", 8, 83.915, None, None, None],
        ["Squat (Barbell)", None, "failure", 6, 83.915, None, 10.0, None],
        ["Plank", None, "working", 0, 0.0, 60.0, None, None],
    ]
    assert p.strength_sets["set_index"].tolist() == [0, 1, 2, 3, 4, 0]


def test_strong_without_unit_defaults_to_kg():
    p = _parse("strong-classic-lbs-wdf.csv")
    assert p.strength_sets["weight_kg"].tolist()[:2] == [135.0, 225.0]


def test_strong_unit_columns_win_over_athlete_setting_and_rest_timer_rows_skipped():
    p = _parse("strong-weight-and-distance-unit-columns.csv", weight_unit="lbs")
    assert p.warnings == [] and p.message == "1 session, 4 sets (4 working)"
    assert _sets(p) == [
        ["Deadlift (Barbell)", None, "working", 5, 100.0, None, None, None],
        ["Deadlift (Barbell)", None, "working", 5, 102.058, None, None, None],
        ["Farmer's Walk", None, "working", None, 32.0, None, None, 40.0],
        ["Running", None, "working", None, None, 600.0, None, pytest.approx(2414.016)],
    ]


def test_strong_android_semicolons_decimal_commas_bom_and_time_zone():
    p = _parse("strong-android-semicolon-decimal-comma-bom.csv", time_zone="Europe/Berlin")
    assert p.warnings == [] and p.message == "1 session, 3 sets (2 working)"
    s = p.strength_sessions.iloc[0]
    assert str(s["start_time"]) == "2025-03-10 05:45:00+00:00"   # 06:45 CET
    assert (s["title"], s["duration_s"]) == ("Morgen", 3660.0)
    assert _sets(p) == [
        ["Bankdrücken (Langhantel)", None, "working", 8, 62.5, None, None, None],
        ["Bankdrücken (Langhantel)", None, "working", 7, 62.5, None, None, None],
        ["Kniebeuge", None, "warmup", 10, 40.0, None, None, None],
    ]


def test_strong_quoted_variant_units_in_headers():
    p = _parse("strong-quoted-workout-number-seconds.csv", weight_unit="lbs")
    assert p.warnings == [] and p.message == "2 sessions, 3 sets (3 working)"
    assert p.strength_sessions["duration_s"].tolist() == [3600.0, 2700.0]
    assert _sets(p) == [
        ["Squat", None, "working", 5, 100.0, None, 8.0, None],
        ["Rowing (Machine)", None, "working", None, None, 480.0, None, 2000.0],
        ["Squat", None, "working", 5, 102.5, None, None, None],
    ]


def test_hevy_lbs_miles_set_types_and_zone():
    p = _parse("hevy-lbs-miles.csv", time_zone="America/New_York")
    assert p.warnings == [] and p.message == "1 session, 4 sets (3 working)"
    s = p.strength_sessions.iloc[0]
    assert str(s["start_time"]) == "2025-03-03 23:05:00+00:00"   # 18:05 EST
    assert (s["title"], s["duration_s"]) == ("Push", 3900.0)
    assert _sets(p) == [
        ["Bench Press (Barbell)", None, "warmup", 10, 43.091, None, None, None],
        ["Bench Press (Barbell)", None, "working", 5, 83.915, None, 8.0, None],
        ["Bench Press (Barbell)", None, "drop", 10, 61.235, None, None, None],
        ["Treadmill", None, "working", None, None, 600.0, None, pytest.approx(1609.344)],
    ]


def test_fitnotes_one_session_per_date_at_noon_local():
    p = _parse("fitnotes-weight-kgs-no-times.csv", time_zone="Australia/Sydney")
    assert p.warnings == [] and p.message == "2 sessions, 4 sets (4 working)"
    # 12:00 in Sydney (AEST, UTC+10 in May) is 02:00 UTC the same day.
    assert [str(t) for t in p.strength_sessions["start_time"]] == [
        "2025-05-05 02:00:00+00:00", "2025-05-07 02:00:00+00:00"]
    assert p.strength_sessions["duration_s"].isna().all()
    assert _sets(p) == [
        ["Flat Barbell Bench Press", "Chest", "working", 8, 60.0, None, None, None],
        ["Flat Barbell Bench Press", "Chest", "working", 8, 60.0, None, None, None],
        ["Plank", "Abs", "working", None, None, 90.0, None, None],
        ["Deadlift", "Back", "working", 3, 140.0, None, None, None],
    ]


def test_fitnotes_weight_unit_column():
    p = _parse("fitnotes-weight-unit-column-lbs.csv")
    assert p.warnings == []
    assert _sets(p) == [
        ["Barbell Squat", "Legs", "working", 5, 102.058, None, None, None],
        ["Rowing Machine", "Cardio", "working", None, None, 480.0, None, 2000.0],
    ]


def test_generic_expands_sets_and_reads_units_per_row():
    p = _parse("generic-all-columns.csv", weight_unit="lbs")
    assert p.warnings == [] and p.message == "2 sessions, 9 sets (9 working)"
    assert [str(t) for t in p.strength_sessions["start_time"]] == [
        "2025-01-06 12:00:00+00:00", "2025-01-09 18:30:00+00:00"]
    assert p.strength_sessions["n_sets"].tolist() == [7, 2]
    rows = _sets(p)
    assert rows[0] == rows[2] == ["Back squat", None, "working", 5, 100.0, None, 8.0, None]
    assert rows[3] == rows[6] == ["Pull-up", None, "working", 8, None, None, None, None]
    assert rows[7] == rows[8] == ["Bench press", None, "working", 5, 61.235, None, None, None]


def test_generic_missing_optional_columns():
    p = _parse("generic-required-columns-only.csv")
    assert p.message == "1 session, 1 set (1 working)"
    assert _sets(p) == [["Push-up", None, "working", 20, None, None, None, None]]


def test_generic_semicolon_decimal_comma_and_dotted_date():
    p = _parse("generic-semicolon-decimal-comma.csv")
    assert str(p.strength_sessions["start_time"].iloc[0]) == "2025-01-06 12:00:00+00:00"
    assert _sets(p) == [["Kniebeuge", None, "working", 5, 102.5, None, 7.5, None]] * 3


def test_bad_rows_are_rejected_with_row_numbers_and_the_rest_kept():
    p = _parse("strong-bad-rows.csv")
    assert p.status == "ok"
    assert p.message == "1 session, 2 sets (2 working); 6 rows rejected"
    assert p.warnings == [
        "row 3: negative reps (-3)",
        "row 4: weight 2000 kg is above the limit of 600 kg",
        "row 5: unreadable date 'not a date'",
        "row 6: expected 12 fields, found 9",
        "row 7: unreadable reps 'five'",
        "row 8: RPE 15 outside 0..10, ignored",
        "row 9: missing exercise name",
    ]
    assert p.strength_sets["rpe"].isna().all()


def test_header_only_is_skipped_and_all_bad_is_an_error():
    empty = _parse("strong-header-only.csv")
    assert (empty.status, empty.message) == ("skipped", "strength log without any rows (header only)")
    bad = _parse("generic-every-row-bad.csv")
    assert bad.status == "error"
    assert bad.message == "no usable sets: 2 of 2 rows rejected (first: row 2: negative reps (-5))"
    assert bad.warnings == ["row 2: negative reps (-5)", "row 3: unknown weight unit 'stone' (use kg or lbs)"]
    assert len(bad.strength_sessions) == 0


def test_layout_mismatch_and_bad_time_zone_are_errors():
    data = (SAMPLES / "generic-all-columns.csv").read_bytes()
    with pytest.raises(ReadError, match="^header does not match the hevy_csv layout") as e:
        parse_strength_csv(data, path="x.csv", file_id="f", athlete_id="a", athlete=AthleteConfig("a"),
                           fmt="hevy_csv")
    assert e.value.fmt == "hevy_csv"
    with pytest.raises(ReadError) as e:
        parse_strength_csv(data, path="x.csv", file_id="f", athlete_id="a",
                           athlete=AthleteConfig("a", time_zone="Mars/Olympus"), fmt="generic_csv")
    assert str(e.value) == "unknown time zone 'Mars/Olympus' in athlete.toml"
    assert not isinstance(e.value, NothingToIngest)


@pytest.mark.parametrize("text, seconds", [
    ("35m", 2100.0), ("1h 5m", 3900.0), ("1h", 3600.0), ("45s", 45.0), ("1h 19m", 4740.0),
    ("1:05:00", 3900.0), ("0:45", 45.0), ("4320", 4320.0), ("", None),
])
def test_durations(text, seconds):
    assert parse_duration_s(text) == seconds


def test_session_ids_stable_across_files_and_layouts():
    """The same workout start from Strong and from the generic layout gives the same session id."""
    a = _parse("strong-classic-lbs-wdf.csv").strength_sessions["session_id"].iloc[0]
    b = parse_strength_csv(b"date,exercise,reps\n2025-01-06 18:00:40,Squat,5\n", path="g.csv", file_id="g",
                           athlete_id="a", athlete=AthleteConfig("a"),
                           fmt="generic_csv").strength_sessions["session_id"].iloc[0]
    assert a == b

"""Every strength file in the real-file corpus gives the sessions and working sets counted independently.

Counts are made here straight from the raw files (the csv module, fitparse) and compared with what the
readers produce; the actual numbers are pinned as well, so a silent change in either shows up.
"""

from __future__ import annotations

import csv
from datetime import timedelta

import fitparse
import pytest

from pipeline.ingest.fit_strength import strength_from_fit
from pipeline.ingest.strength_csv import parse_strength_csv, sniff_strength_csv
from pipeline.workspace import AthleteConfig

STRONG_DIR = "DaKheera47__strong-statistics/data_sample"

# (file, format, sessions, working sets) — counted by hand once and pinned.
CSV_FILES = [
    (f"{STRONG_DIR}/sample_strong.csv", "strong_csv", 15, 250),
    (f"{STRONG_DIR}/sample_strong_legacy.csv", "strong_csv", 3, 6),
    (f"{STRONG_DIR}/sample_hevy.csv", "hevy_csv", 335, 5016),
]


def _independent_counts(path, fmt):
    """Sessions = distinct workout start texts; working sets = every set row that is not a warm-up."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if fmt == "hevy_csv":
        return len({r["start_time"] for r in rows}), sum(r["set_type"] != "warmup" for r in rows)
    return len({r["Date"] for r in rows}), sum(r["Set Order"] != "W" for r in rows)


@pytest.mark.parametrize("rel, fmt, n_sessions, n_working", CSV_FILES)
def test_corpus_strength_csv_counts(corpus_dir, rel, fmt, n_sessions, n_working):
    path = corpus_dir / rel
    data = path.read_bytes()
    assert sniff_strength_csv(data[:4096]) == fmt
    parsed = parse_strength_csv(data, path=rel, file_id="f", athlete_id="a",
                                athlete=AthleteConfig("a"), fmt=fmt)
    assert parsed.status == "ok", parsed.message
    assert parsed.warnings == []
    sessions, sets = parsed.strength_sessions, parsed.strength_sets
    assert (len(sessions), int(sessions["n_working_sets"].sum())) == _independent_counts(path, fmt)
    assert (len(sessions), int(sessions["n_working_sets"].sum())) == (n_sessions, n_working)
    assert len(sets) == int(sessions["n_sets"].sum())
    assert sets.groupby("session_id").size().sort_index().tolist() == \
        sessions.set_index("session_id")["n_sets"].sort_index().tolist()


def test_corpus_hevy_values(corpus_dir):
    """First rows of the Hevy sample, whole: '15 Sep 2025, 07:48' to '09:13', warm-ups marked."""
    data = (corpus_dir / STRONG_DIR / "sample_hevy.csv").read_bytes()
    parsed = parse_strength_csv(data, path="h.csv", file_id="f", athlete_id="a",
                                athlete=AthleteConfig("a"), fmt="hevy_csv")
    first = parsed.strength_sessions.iloc[0]
    assert str(first["start_time"]) == "2025-09-15 07:48:00+00:00"
    assert first["duration_s"] == 85 * 60
    assert first["title"] == "Lower // Ramp // Strength // 1"
    sets = parsed.strength_sets[parsed.strength_sets["session_id"] == first["session_id"]]
    assert sets.iloc[:4][["exercise", "set_type", "reps", "weight_kg", "rpe"]].values.tolist() == [
        ["Seated Leg Curl (Machine)", "warmup", 10, 39.0, 6.0],
        ["Seated Leg Curl (Machine)", "warmup", 6, 51.0, 6.0],
        ["Seated Leg Curl (Machine)", "working", 12, 78.0, 9.0],
        ["Seated Leg Curl (Machine)", "failure", 10, 78.0, 9.5],
    ]
    counts = parsed.strength_sets["set_type"].value_counts().to_dict()
    assert counts == {"working": 3851, "warmup": 2195, "failure": 1122, "drop": 43}


def test_corpus_strong_duration_and_time_zone(corpus_dir):
    """'35m' -> 2100 s; local 17:36:08 in Europe/Helsinki (UTC+2 in November) -> 15:36:08 UTC."""
    data = (corpus_dir / STRONG_DIR / "sample_strong_legacy.csv").read_bytes()
    parsed = parse_strength_csv(data, path="s.csv", file_id="f", athlete_id="a",
                                athlete=AthleteConfig("a", time_zone="Europe/Helsinki"), fmt="strong_csv")
    s = parsed.strength_sessions
    assert [str(t) for t in s["start_time"]] == [
        "2024-11-28 15:36:08+00:00", "2024-11-29 08:15:00+00:00", "2024-12-03 16:00:00+00:00"]
    assert s["duration_s"].tolist() == [2100.0, 2400.0, 1800.0]
    assert s["title"].tolist() == ["B", "A", "C"]


def test_corpus_non_strength_csvs_are_not_sniffed(corpus_dir):
    others = [p for p in corpus_dir.rglob("*.csv") if STRONG_DIR not in p.as_posix()]
    assert len(others) >= 6
    for p in others:
        assert sniff_strength_csv(p.read_bytes()[:4096]) is None, p


# ----------------------------------------------------------------------------------------------- FIT

FIT_DIR = "jarkko__fit-analyzer/tests/fixtures"
# (file, active sets per strength session in time order); [] = no strength session at all.
FIT_FILES = [
    (f"{FIT_DIR}/20474406937_ACTIVITY.fit", [38]),
    (f"{FIT_DIR}/20548472357_ACTIVITY.fit", []),          # volleyball
    (f"{FIT_DIR}/20555050352_ACTIVITY.fit", [4, 16]),     # strength + running + strength
    (f"{FIT_DIR}/20744294788_ACTIVITY.fit", [41]),        # indoor cycling + strength
    (f"{FIT_DIR}/20747700969_ACTIVITY.fit", []),          # indoor cycling
    (f"{FIT_DIR}/20748058539_ACTIVITY.fit", [14]),
    ("jimmykane__fit-parser/examples/suunto-weight.fit", [0]),   # strength without set messages
    ("jimmykane__fit-parser/test/user_metrics.fit", [0]),
]


def _fit_values(path):
    fit = fitparse.FitFile(str(path))
    sessions = [m.get_values() for m in fit.get_messages("session")]
    sets = [m.get_values() for m in fit.get_messages("set")]
    return sessions, sets


@pytest.mark.parametrize("rel, expected", FIT_FILES)
def test_corpus_fit_strength_counts(corpus_dir, rel, expected):
    all_sessions, sets = _fit_values(corpus_dir / rel)
    strength = sorted((s for s in all_sessions
                       if s.get("sport") == "training" and s.get("sub_sport") == "strength_training"),
                      key=lambda s: s["start_time"])
    # Independent count: active sets whose start lies inside each strength session's span.
    independent = [sum(1 for v in sets if v.get("set_type") == "active"
                       and s["start_time"] <= v["start_time"]
                       <= s["start_time"] + timedelta(seconds=s["total_elapsed_time"]))
                   for s in strength]
    assert independent == expected

    sessions_df, sets_df = strength_from_fit(strength, sets, athlete_id="a", file_id="f")
    assert sessions_df["n_working_sets"].tolist() == expected
    assert len(sets_df) == sum(expected)
    assert (sessions_df["source_format"] == "fit").all()
    assert sessions_df["duration_s"].tolist() == pytest.approx([s["total_elapsed_time"] for s in strength])
    # Passing every session (running, cycling too) changes nothing: non-strength ones are ignored.
    again, _ = strength_from_fit(all_sessions, sets, athlete_id="a", file_id="f")
    assert again["session_id"].tolist() == sessions_df["session_id"].tolist()


def test_corpus_fit_set_values(corpus_dir):
    """First active sets of 20748058539: categories from the enum numbers, reps, kg, seconds."""
    sessions, sets = _fit_values(corpus_dir / FIT_DIR / "20748058539_ACTIVITY.fit")
    s_df, x_df = strength_from_fit(sessions, sets, athlete_id="a", file_id="f")
    assert str(s_df.iloc[0]["start_time"]) == "2025-10-20 17:44:06+00:00"
    first = x_df.iloc[0]
    # category (21, 26, 10): pull_up is the watch's best guess
    assert (first["category"], first["exercise"], first["reps"], first["weight_kg"], first["set_type"]) == \
        ("pull_up", "Pull up", 15, 0.0, "working")
    assert first["duration_s"] == pytest.approx(75.391)
    assert x_df.iloc[1]["category"] == "triceps_extension"   # (30, 22, 21)
    assert x_df["set_index"].tolist() == list(range(14))

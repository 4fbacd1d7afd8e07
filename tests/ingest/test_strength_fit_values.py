"""strength_from_fit on fitparse-shaped values: category names, warm-ups, rest sets, placement by time."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.ingest.fit_strength import category_name, read_fit_strength


def test_category_names_from_fit_enum_numbers():
    assert category_name((28, 8, 17)) == "squat"
    assert category_name((65534, 0, None)) == "bench_press"     # unknown first guess: next one
    assert category_name((65534, 65534, 65534)) is None
    assert category_name((None, None, None)) is None
    assert category_name(31) == "warm_up"
    assert category_name(53) == "bike_outdoor"
    assert category_name(48) == "category_48"                    # a number the profile does not name
    assert category_name("deadlift") == "deadlift"


def test_sets_go_to_the_session_containing_them_and_warm_ups_are_marked():
    t0 = datetime(2025, 3, 1, 8, 0, 0)
    sessions = [
        {"sport": "training", "sub_sport": "strength_training", "start_time": t0, "total_elapsed_time": 600.0},
        {"sport": "running", "sub_sport": "generic", "start_time": t0 + timedelta(minutes=10),
         "total_elapsed_time": 1200.0},
        {"sport": "training", "sub_sport": "strength_training", "start_time": t0 + timedelta(minutes=30),
         "total_elapsed_time": 900.0},
    ]

    def s(minute, set_type="active", cat=(28, None, None), reps=5, weight=80.0):
        # fitparse repeats the session start in 'timestamp'; start_time is the set's own time
        return {"timestamp": t0, "start_time": t0 + timedelta(minutes=minute), "set_type": set_type,
                "category": cat, "repetitions": reps, "weight": weight, "duration": 30.0,
                "message_index": minute}

    values = [s(1, cat=(31, None, None), reps=10, weight=0.0), s(2, "rest"), s(3), s(31), s(33),
              s(35, reps=-1), s(40, weight=900.0)]
    out = read_fit_strength(sessions, values, athlete_id="a", file_id="f")
    assert out.sessions["n_sets"].tolist() == [2, 2]
    assert out.sessions["n_working_sets"].tolist() == [1, 2]
    assert out.sessions["duration_s"].tolist() == [600.0, 900.0]
    assert [str(t) for t in out.sessions["start_time"]] == ["2025-03-01 08:00:00+00:00",
                                                            "2025-03-01 08:30:00+00:00"]
    assert out.sets[["set_index", "category", "set_type", "reps", "weight_kg"]].values.tolist() == [
        [0, "warm_up", "warmup", 10, 0.0], [1, "squat", "working", 5, 80.0],
        [0, "squat", "working", 5, 80.0], [1, "squat", "working", 5, 80.0],
    ]
    assert out.warnings == ["set message 35: negative reps (-1)",
                            "set message 40: weight 900 kg is above the limit of 600 kg"]


def test_no_strength_session_gives_empty_frames():
    out = read_fit_strength([{"sport": "cycling", "sub_sport": "indoor_cycling",
                              "start_time": datetime(2025, 1, 1), "total_elapsed_time": 60.0}],
                            [], athlete_id="a", file_id="f")
    assert out.sessions.empty and out.sets.empty

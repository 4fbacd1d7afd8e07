"""Per-run metrics and exclusion reasons on constructed runs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.runs import run_kind, run_process
from analyze_builders import activity_row, make_run

P = AnalysisParams()


def test_pace_per_heartbeat_of_a_flat_steady_run():
    res = run_process(make_run(speed_m_s=3.0, hr_bpm=150.0), activity_row(), P)
    assert res.included and res.row["exclusion_reason"] is None
    assert res.row["m_per_beat"] == pytest.approx(3.0 * 60 / 150)          # 1.2 m per beat
    assert res.row["gap_m_per_beat"] == pytest.approx(1.2)                   # flat: GAP = speed
    assert res.row["steady_s"] == pytest.approx(3600 - P.warmup_s, abs=2)    # all but the warm-up


def test_decoupling_of_a_run_with_known_halves():
    # Steady part is 10:00-60:00; HR 140 in its first half, 147 in its second, pace constant.
    res = run_process(make_run(speed_m_s=3.0, hr_bpm=lambda t: np.where(t < 2100, 140.0, 147.0)), activity_row(), P)
    expected = (1 - 140 / 147) * 100          # (r1 - r2) / r1 with r = v / HR
    assert res.row["decoupling_pct"] == pytest.approx(expected, abs=0.05)
    flat = run_process(make_run(speed_m_s=3.0, hr_bpm=150.0), activity_row(), P)
    assert flat.row["decoupling_pct"] == pytest.approx(0.0, abs=1e-9)


def test_grade_adjusted_pace_per_beat_on_a_climb():
    # A steady 4 % climb at 2.5 m/s: GAP = 2.5 * Cr(0.04)/Cr(0).
    cr = lambda i: 155.4 * i**5 - 30.4 * i**4 - 43.3 * i**3 + 46.3 * i**2 + 19.5 * i + 3.6  # noqa: E731
    res = run_process(make_run(speed_m_s=2.5, hr_bpm=150.0, altitude_m=lambda t: 50 + 0.04 * 2.5 * t),
                      activity_row(), P)
    assert res.row["gap_speed_m_s"] == pytest.approx(2.5 * cr(0.04) / 3.6, rel=0.01)
    assert res.row["gap_m_per_beat"] > res.row["m_per_beat"] * 1.15


@pytest.mark.parametrize("sport, sub, expected", [
    ("running", "road", ("run", False)), ("running", None, ("run", False)),
    ("running", "treadmill", ("run", True)), ("running", "trail", ("run", False)),
    ("cycling", "road", ("not a run: cycling", False)), ("unknown", None, ("maybe", False)),
])
def test_run_kind(sport, sub, expected):
    assert run_kind(sport, sub) == expected


@pytest.mark.parametrize("run, activity, reason", [
    (make_run(), activity_row(sport="cycling"), "not a run: cycling"),
    (make_run(hr_bpm=np.nan), activity_row(), "no heart rate"),
    (make_run(hr_bpm=lambda t: np.where((t // 60) % 2 == 0, 150.0, np.nan)), activity_row(),
     "heart rate on only 50 % of moving time (min 80 %)"),
    (make_run(duration_s=1200), activity_row(), "only 10 min steady (min 15)"),
    (make_run(speed_m_s=lambda t: np.where((t // 120) % 2 == 0, 2.6, 4.2)), activity_row(),
     "only 0 min steady (min 15); 50 min lost to pace changes"),
    (make_run(speed_m_s=1.2), activity_row(sport="unknown"), "sport not recorded and moving speed 1.2 m/s"),
    (make_run(with_speed=False, with_distance=False), activity_row(), "no speed, distance or position data"),
    (make_run(duration_s=4500, speed_m_s=lambda t: np.where((t >= 900) & (t < 2700) & (((t - 900) % 300) < 180),
                                                            4.6, 2.8)), activity_row(), "interval session: 6 surges"),
])
def test_exclusion_reasons_in_words(run, activity, reason):
    res = run_process(run, activity, P)
    assert not res.included
    assert res.row["exclusion_reason"].startswith(reason)
    assert res.steady.empty


def test_cadence_lock_named_as_the_cause():
    # 25 minutes of a 30-minute run locked to the step rate: too little steady HR left.
    hr = lambda t: np.where((t >= 300) & (t < 1800), 172.0, 150.0)  # noqa: E731
    res = run_process(make_run(duration_s=1800, hr_bpm=hr, cadence_spm=172.0), activity_row(), P)
    assert res.row["exclusion_reason"] == "only 0 min steady (min 15); 20 min lost to cadence lock of the optical HR"

"""Per-run metrics and exclusion reasons on constructed runs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    (make_run(speed_m_s=lambda t: np.where((t // 120) % 2 == 0, 2.6, 4.2),
              hr_bpm=lambda t: np.where((t // 120) % 2 == 0, 137.0, 176.0)), activity_row(),
     "only 0 min steady (min 15); 50 min lost to pace changes"),
    (make_run(speed_m_s=1.2), activity_row(sport="unknown"), "sport not recorded and moving speed 1.2 m/s"),
    (make_run(with_speed=False, with_distance=False), activity_row(), "no speed, distance or position data"),
    (make_run(duration_s=4500, speed_m_s=lambda t: np.where((t >= 900) & (t < 2700) & (((t - 900) % 300) < 180),
                                                            4.6, 2.8),
              hr_bpm=lambda t: np.where((t >= 900) & (t < 2700) & (((t - 900) % 300) < 180), 181.0, 142.0)),
     activity_row(), "interval session: 6 surges"),
])
def test_exclusion_reasons_in_words(run, activity, reason):
    res = run_process(run, activity, P)
    assert not res.included
    assert res.row["exclusion_reason"].startswith(reason)
    assert res.model_bins.size == 0 and np.isnan(res.gap_lag_range_m_s).all()


def test_cadence_lock_named_as_the_cause():
    # 25 minutes of a 30-minute run locked to the step rate: too little steady HR left.
    hr = lambda t: np.where((t >= 300) & (t < 1800), 172.0, 150.0)  # noqa: E731
    res = run_process(make_run(duration_s=1800, hr_bpm=hr, cadence_spm=172.0), activity_row(), P)
    assert res.row["exclusion_reason"] == "only 0 min steady (min 15); 20 min lost to cadence lock of the optical HR"


def _following_hr(speed):
    """HR that follows pace as a real one does: 80 + 22 bpm per m/s, through a 45-s lag."""
    from pipeline.analyze.clean import _first_order_lag

    def hr(t):
        return 80.0 + 22.0 * _first_order_lag(t, np.asarray(speed(t), dtype=float), 45.0)
    return hr


def test_flat_lined_hr_is_excluded_and_named():
    # A 20-min tempo block inside an easy run; the strap reads 66 bpm for every sample.
    pace = lambda t: np.where((t >= 1500) & (t < 2700), 3.6, 2.9)  # noqa: E731
    res = run_process(make_run(speed_m_s=pace, hr_bpm=66.0), activity_row(), P)
    assert not res.included and res.model_bins.size == 0
    assert res.row["exclusion_reason"] == (
        "flat-lined heart rate: 66 bpm while pace varied by 24 % (HR that does not follow pace is a stuck "
        "sensor; needs more than 3 bpm of range)")
    # The same run with a heart rate that follows the pace is included...
    assert run_process(make_run(speed_m_s=pace, hr_bpm=_following_hr(pace)), activity_row(), P).included
    # ...and so is a run at one even pace whose HR hardly moves (nothing says the sensor is stuck).
    assert run_process(make_run(speed_m_s=3.0, hr_bpm=lambda t: 150 + (t % 3 == 0)), activity_row(), P).included


def test_walking_run_is_excluded_instead_of_extrapolated():
    from pipeline.analyze.process import athlete_process

    runs, acts = [], []
    for k in range(6):  # easy runs with a progression, 2.8 -> 3.3 m/s
        speed = (lambda k: lambda t: 2.8 + 0.5 * t / 3600 + 0.02 * k)(k)
        runs.append((f"r{k}", make_run(speed_m_s=speed, hr_bpm=_following_hr(speed), activity_id=f"r{k}",
                                       start=f"2024-03-{k + 1:02d}T08:00:00Z")))
        acts.append(activity_row(f"r{k}", start=f"2024-03-{k + 1:02d}T08:00:00Z"))
    walk = lambda t: 1.39 + 0.0 * t  # noqa: E731
    runs.append(("walk", make_run(speed_m_s=walk, hr_bpm=_following_hr(walk), activity_id="walk",
                                  start="2024-03-09T08:00:00Z", cadence_spm=120.0)))
    acts.append(activity_row("walk", start="2024-03-09T08:00:00Z"))
    no_sessions = pd.DataFrame(columns=["session_id", "athlete_id", "start_time"])
    tables = athlete_process("ath", pd.DataFrame(acts), runs, no_sessions, None, P)
    rm = tables.run_metrics.set_index("activity_id")
    v_ref = tables.model.ref_speed_m_s
    assert 2.9 < v_ref < 3.2                      # the easy runs' median, chosen before the check
    assert rm["included"].sum() == 6 and not rm.loc["walk", "included"]
    assert rm.loc["walk", "exclusion_reason"] == (
        f"steady pace 1.39-1.39 m/s is more than 1.0 m/s below the reference speed {v_ref:.2f} m/s "
        "(HR there would be extrapolated)")
    assert np.isnan(rm.loc["walk", "economy_m_per_beat"])
    # The walk still reports what it measured; the runs' HR at the reference speed is the planted line.
    assert rm.loc["walk", "m_per_beat"] == pytest.approx(1.39 * 60 / (80 + 22 * 1.39), rel=1e-3)
    assert rm.loc[rm["included"], "hr_at_ref_bpm"].to_numpy() == pytest.approx(80 + 22 * v_ref, abs=0.5)


def test_runs_outside_reference_speed_both_sides_and_margin():
    from pipeline.analyze.runs import runs_outside_reference_speed

    def steady(aid, lo, hi):
        v = np.linspace(lo, hi, 101)
        return pd.DataFrame({"activity_id": aid, "dt_s": 1.0, "gap_lag_m_s": v})
    s = pd.concat([steady("slow", 1.6, 1.9), steady("jog", 2.05, 2.3), steady("race", 4.2, 4.5),
                   steady("tempo", 2.9, 4.1)], ignore_index=True)
    out = runs_outside_reference_speed(s, 3.0, P)
    assert set(out) == {"slow", "race"}
    assert out["race"].startswith("steady pace 4.21-4.49 m/s is more than 1.0 m/s above the reference speed 3.00")
    assert runs_outside_reference_speed(s, float("nan"), P) == {}
    assert set(runs_outside_reference_speed(s, 3.0, AnalysisParams(ref_speed_margin_m_s=1.5))) == set()


def test_no_nan_in_reasons():
    # Sport not recorded and never moving: there is no moving speed to quote.
    res = run_process(make_run(speed_m_s=0.0), activity_row(sport="unknown"), P)
    assert res.row["exclusion_reason"] == "sport not recorded and no moving samples to tell whether it is a run"
    reasons = [run_process(make_run(speed_m_s=v, hr_bpm=h), activity_row(), P).row["exclusion_reason"]
               for v, h in ((0.0, 150.0), (np.nan, 150.0), (3.0, np.nan), (3.0, 20.0))]
    assert all(r and "nan" not in r.lower() for r in reasons), reasons

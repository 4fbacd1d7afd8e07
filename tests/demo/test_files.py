"""Files the demo writes, read back by independent parsers (fitparse, gpxpy, csv), and their truth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import time
from pathlib import Path

import fitparse
import gpxpy
import numpy as np
import pandas as pd
import pytest

from pipeline.demo.fit_writer import encode_fit_activity, write_fit_activity
from pipeline.ingest.fit_crc import crc16 as fit_crc16
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import encode_gpx_activity, encode_strong_csv, write_athlete, write_demo
from pipeline.workspace import discover_athletes, load_athlete_config

SEMICIRCLE_DEG = 180.0 / 2**31


@pytest.fixture(scope="module")
def athlete():
    return simulate_athlete("gain", seed=21, sample_interval_s=3.0)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("ws") / "data" / "raw"
    t0 = time.perf_counter()
    ids = write_demo(raw, seed=2024)
    print(f"\nwrite_demo: 3 athletes generated and written in {time.perf_counter() - t0:.1f} s")
    assert ids == ["demo_gain", "demo_heat", "demo_faster"]
    return raw


def _pick(athlete, **flags):
    truth = athlete.truth.truth_runs
    for key, value in flags.items():
        truth = truth[truth[key] == value]
    row = athlete.activities.set_index("activity_id").loc[truth.activity_id.iloc[0]]
    row = row.copy()
    row["activity_id"] = truth.activity_id.iloc[0]
    samples = athlete.samples[athlete.samples.activity_id == row["activity_id"]].reset_index(drop=True)
    return row, samples


def _read_fit(data: bytes) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    fit = fitparse.FitFile(io.BytesIO(data))  # checks the file CRC
    msgs: dict[str, list[dict]] = {}
    for m in fit.get_messages():
        msgs.setdefault(m.name, []).append(m.get_values())
    return pd.DataFrame(msgs["record"]), msgs


def test_fit_crc_is_crc16_arc():
    assert fit_crc16(b"123456789") == 0xBB3D  # CRC-16/ARC check value


def test_fit_records_read_back_with_fitparse(athlete):
    row, s = _pick(athlete, source_format="fit", has_device_speed=True, auto_pause=False)
    rec, msgs = _read_fit(encode_fit_activity(row, s))
    assert len(rec) == len(s)
    ts = pd.to_datetime(rec["timestamp"]).dt.tz_localize("UTC")
    assert (ts.to_numpy() == s["ts"].to_numpy()).all()
    np.testing.assert_array_equal(rec["heart_rate"], s["heart_rate_bpm"])
    np.testing.assert_allclose(rec["enhanced_speed"], s["speed_m_s"], atol=1e-9)
    np.testing.assert_allclose(rec["distance"], s["distance_m"], atol=1e-6)
    np.testing.assert_allclose(rec["position_lat"] * SEMICIRCLE_DEG, s["lat_deg"], atol=1e-9)
    np.testing.assert_allclose(rec["position_long"] * SEMICIRCLE_DEG, s["lon_deg"], atol=1e-9)
    np.testing.assert_allclose(rec["enhanced_altitude"], s["altitude_m"], atol=1e-6)
    np.testing.assert_allclose((rec["cadence"] + rec["fractional_cadence"]) * 2, s["cadence_spm"], atol=1e-9)
    np.testing.assert_array_equal(rec["temperature"], s["temperature_c"])
    # plausible running values, and traffic-light stops recorded as zero speed
    assert 130 < rec["heart_rate"].median() < 170
    assert 2.3 < rec["enhanced_speed"][rec["enhanced_speed"] > 0].median() < 4.0
    assert (rec["enhanced_speed"] == 0).sum() >= 5
    session = msgs["session"][0]
    assert session["sport"] == "running" and session["sub_sport"] in ("road", "trail")
    assert session["total_distance"] == pytest.approx(s["distance_m"].iloc[-1], abs=0.01)
    assert msgs["file_id"][0]["type"] == "activity"
    assert msgs["activity"][0]["num_sessions"] == 1
    assert len(msgs["lap"]) == session["num_laps"] >= int(s["distance_m"].iloc[-1] // 1000)


def test_fit_auto_pause_is_a_timer_gap_with_events(athlete):
    row, s = _pick(athlete, source_format="fit", auto_pause=True, sub_sport="road")
    rec, msgs = _read_fit(encode_fit_activity(row, s))
    step = pd.to_datetime(rec["timestamp"]).diff().dt.total_seconds()
    assert step.max() >= 15  # a stop of >= 15 s leaves a gap
    events = [(e["event"], e["event_type"]) for e in msgs["event"]]
    assert events[0] == ("timer", "start") and events[-1] == ("timer", "stop_all")
    assert ("timer", "stop_all") in events[1:-1]
    session = msgs["session"][0]
    assert session["total_timer_time"] < session["total_elapsed_time"]
    # the in-memory activity row says what the file's session says
    assert session["total_timer_time"] == pytest.approx(row["timer_s"])
    assert session["total_elapsed_time"] == pytest.approx(row["elapsed_s"])
    assert session["total_distance"] == pytest.approx(row["distance_m"])
    assert session["avg_heart_rate"] == row["avg_heart_rate_bpm"]


def test_fit_without_device_speed_has_no_speed_field(athlete, tmp_path):
    row, s = _pick(athlete, source_format="fit", has_device_speed=False)
    assert s["speed_m_s"].isna().all()
    path = tmp_path / "no-speed.fit"
    write_fit_activity(path, row, s)
    rec, _ = _read_fit(path.read_bytes())
    assert "enhanced_speed" not in rec.columns and "speed" not in rec.columns
    assert rec["distance"].iloc[-1] == pytest.approx(s["distance_m"].iloc[-1])


def test_gpx_reads_back_with_gpxpy(athlete):
    row, s = _pick(athlete, source_format="gpx")
    gpx = gpxpy.parse(encode_gpx_activity(row, s).decode())
    track = gpx.tracks[0]
    assert track.type == "running"
    points = track.segments[0].points
    assert len(points) == len(s)
    hr, cad = [], []
    for p in points:
        ext = {e.tag.split("}")[1]: e.text for e in p.extensions[0]}
        hr.append(float(ext["hr"]))
        cad.append(float(ext["cad"]))
    np.testing.assert_array_equal(hr, s["heart_rate_bpm"])
    np.testing.assert_array_equal(np.array(cad) * 2, s["cadence_spm"])  # strides/min in GPX
    np.testing.assert_allclose([p.latitude for p in points], s["lat_deg"], atol=1e-9)
    np.testing.assert_allclose([p.elevation for p in points], s["altitude_m"], atol=1e-9)
    assert pd.Timestamp(points[0].time) == s["ts"].iloc[0]


def test_strong_csv_matches_sessions(athlete):
    csv = pd.read_csv(io.BytesIO(encode_strong_csv(athlete.strength_sessions, athlete.strength_sets,
                                                   athlete.profile.time_zone)))
    assert list(csv.columns) == ["Date", "Workout Name", "Duration", "Exercise Name", "Set Order", "Weight",
                                 "Reps", "Distance", "Seconds", "Notes", "Workout Notes", "RPE"]
    assert len(csv) == len(athlete.strength_sets)
    assert csv["Date"].nunique() == len(athlete.strength_sessions)
    assert (csv["Set Order"] == "W").sum() == (athlete.strength_sets.set_type == "warmup").sum()
    assert csv["Duration"].str.fullmatch(r"\d+m").all()
    local = pd.to_datetime(csv["Date"]).dt.tz_localize(athlete.profile.time_zone).dt.tz_convert("UTC")
    assert set(local) == set(athlete.strength_sessions.start_time)


def test_demo_files_truth_and_stories(demo_dir):
    assert discover_athletes(demo_dir) == ["demo_faster", "demo_gain", "demo_heat"]
    for aid in ("demo_gain", "demo_heat", "demo_faster"):
        folder = demo_dir / aid
        cfg = load_athlete_config(demo_dir, aid)
        assert cfg.hr_rest_bpm and cfg.hr_max_bpm and cfg.time_zone and cfg.ref_speed_m_s is None
        truth = json.loads((folder / ".truth" / "truth.json").read_text())
        runs = pd.read_csv(folder / ".truth" / "truth_runs.csv", parse_dates=["start_time"])
        fits, gpxs = sorted(folder.glob("runs/*.fit")), sorted(folder.glob("runs/*.gpx"))
        assert len(fits) + len(gpxs) == len(runs) == truth["n_runs"]
        assert 0.08 <= len(gpxs) / len(runs) <= 0.25
        # every truth run has its file, named by its UTC start time
        names = {p.name.split("_")[0] + "_" + p.name.split("_")[1] for p in fits + gpxs}
        assert names == set(runs.start_time.dt.strftime("%Y-%m-%d_%H%M%S"))
        # block dates agree with the Strong log: first and last of the twice-weekly sessions
        strong = pd.read_csv(folder / "strong_workouts.csv")
        days = sorted(pd.to_datetime(strong["Date"].unique()).date)
        block_start, block_end = (dt.date.fromisoformat(truth[k]) for k in ("block_start", "block_end"))
        in_block = [d for d in days if block_start <= d <= block_end]
        assert in_block[0] == block_start and in_block[-1] == block_end
        assert 20 <= len(in_block) <= 24 and (block_end - block_start).days in range(75, 85)
        assert len(days) > len(in_block)  # sporadic sessions outside the block
        if aid == "demo_gain":
            assert truth["planted_gain_pct"] == 3.0
            late = runs[runs.start_time.dt.date >= block_start + dt.timedelta(weeks=8)]
            early = runs[runs.start_time.dt.date < block_start + dt.timedelta(weeks=3)]
            assert np.allclose(late.effect_pct, 3.0) and np.allclose(early.effect_pct, 0.0)
        else:
            assert truth["planted_gain_pct"] == 0.0 and (runs.effect_pct == 0).all()
        before = runs[runs.start_time.dt.date < block_start].mean_speed_m_s.mean()
        after = runs[runs.start_time.dt.date >= block_start + dt.timedelta(weeks=3)].mean_speed_m_s.mean()
        if aid == "demo_faster":
            assert 0.3 <= after - before <= 0.5
        else:
            assert abs(after - before) < 0.1


def test_demo_fit_files_all_parse(demo_dir):
    for path in sorted(demo_dir.glob("demo_heat/runs/*.fit"))[::10]:
        rec, msgs = _read_fit(path.read_bytes())
        assert len(rec) > 100 and msgs["session"][0]["sport"] == "running"


def test_same_seed_same_bytes(athlete):
    again = simulate_athlete("gain", seed=21, sample_interval_s=3.0)
    row, s = _pick(athlete, source_format="fit")
    row2, s2 = _pick(again, source_format="fit")
    assert encode_fit_activity(row, s) == encode_fit_activity(row2, s2)
    row, s = _pick(athlete, source_format="gpx")
    row2, s2 = _pick(again, source_format="gpx")
    assert encode_gpx_activity(row, s) == encode_gpx_activity(row2, s2)


def test_rewriting_replaces_only_the_files_the_demo_wrote(tmp_path):
    short = dataclasses.replace(PROFILES["null"], weeks=4, block_start_week=1, block_weeks=2,
                                sporadic_strength_weeks=())
    write_athlete(simulate_athlete(short, seed=1, sample_interval_s=5.0), tmp_path)
    first = {p.name for p in (tmp_path / "sim_null" / "runs").iterdir()}
    own = tmp_path / "sim_null" / "runs" / "my_race.fit"
    own.write_bytes(b"mine")
    write_athlete(simulate_athlete(short, seed=2, sample_interval_s=5.0), tmp_path)
    second = {p.name for p in (tmp_path / "sim_null" / "runs").iterdir()} - {"my_race.fit"}
    assert first != second  # other seed, other start times: old runs removed, not mixed in
    manifest = json.loads((tmp_path / "sim_null" / ".truth" / "manifest.json").read_text())
    assert {Path(f).name for f in manifest["files"] if f.startswith("runs/")} == second
    assert own.read_bytes() == b"mine"

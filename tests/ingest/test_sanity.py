"""The sanity gate on every reader (FIT, GPX, TCX, strength CSV): each named rule on a generated broken
file, through the real readers (and the warehouse where the rule is about what remains there)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import re

import numpy as np
import pandas as pd
import pytest

from ingest_builders import START, Segment, fit_bytes, gpx_bytes, tcx_bytes
from pipeline.errors import PipelineError
from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_bytes
from pipeline.ingest.run import ingest_paths
from pipeline.ingest.sanity import SanityRules, apply_sanity, longest_non_decreasing
from pipeline.warehouse import checks
from pipeline.warehouse.checks import run_checks
from pipeline.warehouse.db import connect

UTC = dt.timezone.utc


def _read(data: bytes, name: str, **ctx):
    return read_bytes(data, name, ReadContext(path=name, file_id="f", athlete_id="anna", **ctx))


def _gpx(points: list[tuple[str, dict]], sport: str = "running") -> bytes:
    """A GPX track from (time text, {hr, lat, lon, speed}) points."""
    pts = []
    for i, (t, v) in enumerate(points):
        lat, lon = v.get("lat", 46.05 + i * 1e-5), v.get("lon", 14.5)
        ext = f"<gpxtpx:TrackPointExtension><gpxtpx:hr>{v.get('hr', 150)}</gpxtpx:hr></gpxtpx:TrackPointExtension>"
        speed = f"<speed>{v['speed']}</speed>" if "speed" in v else ""
        pts.append(f'<trkpt lat="{lat}" lon="{lon}"><ele>300</ele><time>{t}</time>{speed}'
                   f"<extensions>{ext}</extensions></trkpt>")
    return ('<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="phone" '
            'xmlns="http://www.topografix.com/GPX/1/1" '
            'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
            f"<trk><type>{sport}</type><trkseg>{''.join(pts)}</trkseg></trk></gpx>").encode()


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _times(start: dt.datetime, n: int) -> list[str]:
    return [_iso(start + dt.timedelta(seconds=i)) for i in range(n)]


def _phone_app_gpx(n: int = 300) -> bytes:
    """The phone-app pattern: the first point dated in the year 7494, the rest at 1970-01-01 + offset."""
    times = ["7494-03-08T11:42:17Z"] + _times(dt.datetime(1970, 1, 1, tzinfo=UTC), n - 1)
    return _gpx([(t, {}) for t in times])


# ------------------------------------------------------------------------------- time rules


def test_phone_app_pattern_is_a_clear_error_not_a_bogus_run():
    p = _read(_phone_app_gpx(), "phone.gpx")
    assert p.status == "error"
    assert p.message.startswith("sanity gate: nothing plausible left: time_range: activity 0")
    assert "the device clock was not set, so the date of the recording is unknown" in p.message


def test_53_phone_app_files_are_53_errors_or_53_runs_with_a_strava_index(workspace):
    anna = workspace.raw_dir / "anna"
    (anna / "export" / "activities").mkdir(parents=True)
    rows = ["Activity ID,Activity Date,Activity Name,Activity Type,Filename"]
    for k in range(53):
        (anna / "export" / "activities" / f"{k}.gpx").write_bytes(_phone_app_gpx(120 + k))
        day = dt.datetime(2023, 3, 1, 7, 30, tzinfo=UTC) + dt.timedelta(days=2 * k)
        rows.append(f'{k},"{day:%b %-d, %Y, %-I:%M:%S %p}",Run {k},Run,activities/{k}.gpx')
    first = ingest_paths(workspace, None, jobs=1, progress=False)
    assert first.files == {"error": 53} and first.sports == {}
    (anna / "export" / "activities.csv").write_text("\n".join(rows) + "\n")
    second = ingest_paths(workspace, None, jobs=1, progress=False)
    assert second.files == {"ok": 53, "skipped": 1} and second.sports == {"running": 53}
    con = connect(workspace, read_only=True)
    acts = con.execute("SELECT name, strftime(start_time, '%Y-%m-%d %H:%M:%S'), n_samples, elapsed_s "
                       "FROM activities ORDER BY start_time").fetchall()
    span = con.execute("SELECT min(ts), max(ts) FROM samples").fetchone()
    con.close()
    assert len(acts) == 53 and acts[0] == ("Run 0", "2023-03-01 07:30:00", 119, 118.0)
    assert acts[52] == ("Run 52", "2023-06-13 07:30:00", 171, 170.0)
    assert span[0].year == 2023 and span[1].year == 2023
    assert run_checks(workspace).ok


def test_a_few_backward_points_are_dropped_most_reject_the_activity():
    times = _times(START, 600)
    times[100], times[300] = _iso(START - dt.timedelta(hours=3)), _iso(START + dt.timedelta(hours=5))
    p = _read(_gpx([(t, {}) for t in times]), "glitch.gpx")
    assert p.status == "ok" and len(p.samples) == 598
    # one point 3 h early, one 5 h late: both off the course of time, both dropped
    assert "sanity time_order: 2 point(s) dated before an earlier point removed" in p.warnings
    assert p.activities["start_time"].iloc[0] == START and p.activities["elapsed_s"].iloc[0] == 599
    assert p.samples["ts"].is_monotonic_increasing
    rng = np.random.default_rng(5)
    shuffled = list(rng.permutation(_times(START, 600)))
    bad = _read(_gpx([(t, {}) for t in shuffled]), "shuffled.gpx")
    assert bad.status == "error" and "time_order: activity 0" in bad.message
    assert "points are dated before an earlier point" in bad.message


def test_duplicate_timestamps_are_collapsed_to_the_first():
    times = [t for t in _times(START, 100) for _ in (0, 1)]     # every second twice (a lap-boundary habit)
    points = [(t, {"hr": 150 + (k % 2)}) for k, t in enumerate(times)]
    p = _read(_gpx(points), "twice.gpx")
    assert p.status == "ok" and len(p.samples) == 100 and (p.samples["heart_rate_bpm"] == 150).all()
    assert "sanity duplicate_time: 100 point(s) repeating a timestamp collapsed" in p.warnings


@pytest.mark.parametrize("start,needle", [
    (dt.datetime(2100, 6, 1, tzinfo=UTC), "timestamps outside 2000-01-01 .. now + 1 day (2100-06-01"),
    (dt.datetime(1999, 12, 31, 23, 0, tzinfo=UTC), "the device clock was not set"),
])
def test_dates_before_2000_or_in_the_future_are_errors(start, needle):
    p = _read(_gpx([(t, {}) for t in _times(start, 60)]), "when.gpx")
    assert p.status == "error" and needle in p.message


def test_an_impossible_session_is_rejected_the_others_in_the_file_kept():
    data = fit_bytes([Segment(n=60), Segment(n=60, offset_s=3600),
                      Segment(n=60, offset_s=20 * 365 * 86400)])   # a session dated twenty years later
    p = _read(data, "three.fit")
    assert p.status == "ok" and list(p.activities["session_index"]) == [0, 1] and len(p.samples) == 120
    assert p.warnings[0].startswith("sanity time_range: activity 2 (running, start 2044-")


def test_activity_longer_than_48_h_is_rejected():
    gap = _gpx([(t, {}) for t in _times(START - dt.timedelta(days=3650), 60) + _times(START, 60)])
    g = _read(gap, "gap.gpx")
    assert g.status == "error"
    assert "activity_length: activity 0 (running, start 2014-05-04 06:15:00) rejected: it spans 87,600.0 h " \
           "(2014-05-04 06:15:00 .. 2024-05-01 06:15:59), more than 48 h: a clock jump" in g.message


# ------------------------------------------------------------------------------- value rules


def test_fit_values_out_of_range_are_removed_with_a_warning():
    p = _read(fit_bytes([Segment(n=60, heart_rate_bpm=254, speed_m_s=50.0)]), "absurd.fit")
    assert p.status == "ok" and len(p.samples) == 60
    assert p.samples["heart_rate_bpm"].isna().all() and p.samples["speed_m_s"].isna().all()
    assert "sanity heart_rate: 60 heart-rate value(s) outside 25-250 bpm removed" in p.warnings
    assert "sanity speed: 60 speed value(s) outside 0-12 m/s (running) removed" in p.warnings
    assert pd.isna(p.activities["avg_heart_rate_bpm"].iloc[0])
    assert "warnings: sanity" not in p.message   # the loader adds warnings to the message
    ride = _read(fit_bytes([Segment(sport=Segment().sport.__class__.CYCLING, n=60, speed_m_s=25.0)]), "r.fit")
    assert (ride.samples["speed_m_s"] == 25.0).all() and not ride.warnings


def test_gpx_positions_off_the_globe_and_tcx_distance_wraps_are_removed():
    points = [(t, {"lat": 400.0} if k == 3 else {}) for k, t in enumerate(_times(START, 60))]
    p = _read(_gpx(points), "pos.gpx")
    assert p.samples[["lat_deg", "lon_deg"]].iloc[3].isna().all() and p.samples["lat_deg"].notna().sum() == 59
    assert "sanity position: 1 position(s) outside the globe (or half missing) removed" in p.warnings
    tcx = tcx_bytes(n=60).replace(b"<DistanceMeters>30.0</DistanceMeters>",
                                  b"<DistanceMeters>42949672.9</DistanceMeters>")
    tcx = tcx.replace(b"<DistanceMeters>60.0</DistanceMeters>", b"<DistanceMeters>3.0</DistanceMeters>")
    t = _read(tcx, "wrap.tcx")
    d = t.samples["distance_m"]
    assert t.status == "ok" and d.isna().sum() == 2 and d.dropna().is_monotonic_increasing
    assert t.activities["distance_m"].iloc[0] == pytest.approx(177.0)


def test_strength_sessions_dated_1970_or_2100_are_dropped():
    csv = ("Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,RPE\n"
           "1970-01-01 00:00:00,Legs,45m,Squat,1,100,5,0,0,\n"
           "2024-03-01 18:00:00,Legs,45m,Squat,1,100,5,0,0,\n"
           "2100-01-01 18:00:00,Legs,45m,Squat,1,100,5,0,0,\n").encode()
    p = _read(csv, "strong.csv")
    assert p.status == "ok" and len(p.strength_sessions) == 1 and len(p.strength_sets) == 1
    assert any(w.startswith("sanity strength_date: 2 strength session(s) dated outside") for w in p.warnings)


def test_every_format_passes_the_gate_gz_included():
    """The gate sits in the dispatcher: a gzipped TCX is checked like any file."""
    tcx = tcx_bytes(n=60).replace(b"<Value>150</Value></HeartRateBpm>", b"<Value>0</Value></HeartRateBpm>")
    p = _read(gzip.compress(tcx), "hr0.tcx.gz")
    assert p.format == "tcx.gz" and p.samples["heart_rate_bpm"].isna().all()
    assert "sanity heart_rate: 60 heart-rate value(s) outside 25-250 bpm removed" in p.warnings


def test_longest_non_decreasing_keeps_the_most_points():
    values = np.array([1, 2, 99, 3, 4, 0, 5, 5, 6])
    assert longest_non_decreasing(values).tolist() == [1, 1, 0, 1, 1, 0, 1, 1, 1]


# ------------------------------------------------------------------------------- settings


def test_ingest_settings_come_from_pipeline_toml(workspace):
    (workspace.root / "pipeline.toml").write_text("[ingest]\nhr_range_bpm = [25, 200]\nmax_foot_speed_m_s = 8\n")
    (workspace.raw_dir / "anna").mkdir()
    (workspace.raw_dir / "anna" / "run.fit").write_bytes(fit_bytes([Segment(n=60, heart_rate_bpm=210)]))
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    con = connect(workspace, read_only=True)
    hr, message = con.execute("SELECT max(heart_rate_bpm), (SELECT message FROM source_files) FROM samples").fetchone()
    con.close()
    assert summary.files == {"ok": 1} and hr is None
    assert "sanity heart_rate: 60 heart-rate value(s) outside 25-200 bpm removed" in message


@pytest.mark.parametrize("toml,needle", [
    ("[ingest]\nhr_range = [1, 2]\n", "pipeline.toml [ingest]: unknown key hr_range; valid keys: earliest_year"),
    ("[ingest]\nhr_range_bpm = [250, 25]\n", "hr_range_bpm must be [low, high] with low < high"),
    ("[ingest]\nmax_activity_h = inf\n", "pipeline.toml [ingest]: max_activity_h = inf is not a finite number"),
    ("[ingest]\nmax_bad_time_share = 1.5\n", "max_bad_time_share = 1.5 is out of range (must be above 0 and at most 1)"),
    ("[ingest]\nmax_bad_time_share = 1\n", "max_bad_time_share must be between 0 and 1"),
    ("[ingest]\naltitude_range_m = [-500, 30000]\n", "altitude_range_m[1] = 30000 is out of range"),
    ("ingest = 5\n", "pipeline.toml: [ingest] must be a table of settings"),
])
def test_bad_ingest_settings_name_the_key(workspace, toml, needle):
    (workspace.root / "pipeline.toml").write_text(toml)
    with pytest.raises(PipelineError, match=re.escape(needle)):
        ingest_paths(workspace, None, jobs=1, progress=False)


def test_gate_defaults_are_at_least_as_strict_as_the_warehouse_checks():
    rules = SanityRules()
    sample_ranges = checks.TABLE_CHECKS["samples"]["ranges"]
    for field, column in (("hr_range_bpm", "heart_rate_bpm"), ("altitude_range_m", "altitude_m"),
                          ("cadence_range_spm", "cadence_spm"), ("power_range_w", "power_w"),
                          ("temperature_range_c", "temperature_c")):
        lo, hi = getattr(rules, field)
        assert sample_ranges[column][0] <= lo and hi <= sample_ranges[column][1], field
    assert rules.max_speed_m_s <= checks.ANY_SPEED_M_S[1] and rules.max_foot_speed_m_s <= checks.RUN_SPEED_M_S[1]
    assert rules.max_distance_m <= sample_ranges["distance_m"][1] and rules.earliest_year >= 2000
    assert set(checks.ON_FOOT_SPORTS) == set(__import__("pipeline.ingest.sanity").ingest.sanity.FOOT_SPORTS)
    assert dataclasses.replace(rules, earliest_year=2010).time_bounds()[0].year == 2010


def test_corpus_edge_500_repeated_timestamps_are_collapsed(corpus_dir):
    path = "dtcooper__python-fitparse/tests/files/garmin-edge-500-activity.fit"
    p = _read((corpus_dir / path).read_bytes(), path)
    assert p.status == "ok" and len(p.samples) == 10671 and p.samples["ts"].is_unique
    assert "sanity duplicate_time: 15 point(s) repeating a timestamp collapsed" in p.warnings


def test_apply_sanity_leaves_clean_files_alone():
    p = _read(fit_bytes(), "clean.fit")
    again = apply_sanity(p)
    assert again.status == "ok" and not again.warnings and len(again.samples) == 120

"""The weather stage as users meet it: `pipeline weather`, its place in `pipeline run` (a real GPX file through
ingest, weather against a local archive, analyze and report), `pipeline status` coverage, the analysis's
per-run inputs, and the demo athletes' opt-out."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.analyze.store import load_athlete_inputs
from pipeline.cli import cli
from pipeline.demo.simulate import DEMO_PROFILE_KEYS, PROFILES
from pipeline.demo.write import encode_athlete_toml
from pipeline.status import render_status
from pipeline.warehouse.contract import WEATHER_VALUE_COLUMNS
from pipeline.warehouse.db import connect
from pipeline.weather.run import weather_workspace
from pipeline.workspace import load_athlete_config

from archive_server import GRID_SHIFT_DEG, ArchiveServer, closed_port_url, planted_air_c
from weather_builders import TODAY, add_runs, configure, run, utc, weather_rows

LONDON = (51.4723, -0.1718)


def _cli(ws, *args):
    return CliRunner().invoke(cli, ["--workspace", str(ws.root), *args], obj={})


def test_pipeline_weather_offline_prints_one_line_and_exits_0(workspace):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    configure(workspace, closed_port_url())
    result = _cli(workspace, "weather")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Weather: not fetched: no network (cannot reach 127.0.0.1:")


def test_pipeline_weather_with_a_bad_setting_is_one_error_line(workspace):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    workspace.config_path.write_text("[weather]\ngrid = 0.1\n")
    result = _cli(workspace, "weather")
    assert result.exit_code == 1
    assert result.output.startswith("Error: pipeline.toml [weather]: unknown key grid; valid keys: enabled,")


def test_status_shows_weather_coverage_per_athlete(workspace):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON), run("ann", utc(2023, 5, 2, 7), *LONDON),
                         run("ann", utc(2023, 5, 3, 7), None, None), run("bob", utc(2023, 5, 1, 8), *LONDON)])
    with ArchiveServer() as server:
        configure(workspace, server.url)
        weather_workspace(workspace, athlete_id="ann", today=TODAY)
    text = render_status(workspace)
    assert text.endswith("weather (air at each outdoor run, from an archive):\n"
                         "  ann: 2 of 2 outdoor runs with weather (open_meteo_archive)\n"
                         "  bob: 0 of 1 outdoor run with weather; 1 not looked up yet")


def test_status_of_a_warehouse_from_before_the_weather_table(workspace):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    con = connect(workspace)
    con.execute("DROP TABLE weather")
    con.close()
    assert render_status(workspace).endswith("weather: not looked up yet (run `pipeline weather`)")


def test_the_analysis_gets_the_archive_weather_of_each_run_and_nan_where_unknown(workspace):
    runs = [run("ann", utc(2023, 5, 1, 7), *LONDON), run("ann", utc(2023, 5, 2, 7), None, None),
            run("ann", utc(2023, 5, 20, 7), *LONDON)]
    add_runs(workspace, runs)
    with ArchiveServer() as server:
        configure(workspace, server.url)
        weather_workspace(workspace, today=TODAY)
    con = connect(workspace)
    try:
        con.execute("UPDATE weather SET status = 'no_data', air_temperature_c = NULL, dew_point_c = NULL, "
                    "relative_humidity_pct = NULL, wind_speed_m_s = NULL, message = 'test' "
                    "WHERE activity_id = ?", [runs[2].activity_id])
        activities = load_athlete_inputs(con, "ann").activities
    finally:
        con.close()
    assert activities["activity_id"].tolist() == [r.activity_id for r in runs]       # order kept
    grid = (51.5 + GRID_SHIFT_DEG[0], -0.2 + GRID_SHIFT_DEG[1])
    expected = planted_air_c(*grid, runs[0].start + timedelta(seconds=runs[0].elapsed_s / 2))
    assert activities["air_temperature_c"].iloc[0] == pytest.approx(expected, abs=1e-9)
    assert activities["weather_source"].tolist() == ["open_meteo_archive", None, None]
    for column in WEATHER_VALUE_COLUMNS:
        assert activities[column].dtype == float
        assert np.isnan(activities[column].iloc[1]) and np.isnan(activities[column].iloc[2])


GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="handwritten test track" xmlns="http://www.topografix.com/GPX/1/1"
     xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">
  <trk><name>Morning run</name><type>running</type><trkseg>
{points}
  </trkseg></trk>
</gpx>
"""


def _gpx(start: datetime, minutes: int) -> str:
    points = []
    for k in range(0, minutes * 60 + 1, 10):              # a point every 10 s, north at ~3 m/s
        t = start + timedelta(seconds=k)
        points.append(f'    <trkpt lat="{LONDON[0] + 3 * k / 111_320:.7f}" lon="{LONDON[1]:.7f}"><ele>10.0</ele>'
                      f"<time>{t:%Y-%m-%dT%H:%M:%SZ}</time><extensions><gpxtpx:TrackPointExtension>"
                      f"<gpxtpx:hr>{140 + k % 7}</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions></trkpt>")
    return GPX.format(points="\n".join(points))


@pytest.mark.slow
def test_pipeline_run_fetches_weather_between_ingest_and_analyze(workspace):
    start = datetime(2023, 6, 10, 6, 30, tzinfo=timezone.utc)
    (workspace.raw_dir / "ann").mkdir()
    (workspace.raw_dir / "ann" / "morning.gpx").write_text(_gpx(start, 30), encoding="utf-8")
    with ArchiveServer() as server:
        configure(workspace, server.url)
        result = _cli(workspace, "run", "--quiet", "--jobs", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    weather_line = next(i for i, line in enumerate(lines) if line.startswith("Weather: "))
    assert lines[weather_line] == f"Weather: 1 run looked up in 1 request to {server.url.split('/')[2]} " \
                                  "(~1 API calls by its count)"
    assert any(line.startswith("Report: ") for line in lines[weather_line:])
    assert [s.param("start_date") for s in server.seen] == ["2023-06-10"]
    row = weather_rows(workspace).iloc[0]
    grid = (51.5 + GRID_SHIFT_DEG[0], -0.2 + GRID_SHIFT_DEG[1])
    assert row["air_temperature_c"] == pytest.approx(planted_air_c(*grid, start + timedelta(minutes=15)))
    assert math.isclose(row["distance_km"], 6.66, abs_tol=0.05)


@pytest.mark.parametrize("key", DEMO_PROFILE_KEYS)
def test_demo_athletes_never_send_their_positions(tmp_path, key):
    profile = PROFILES[key]
    folder = tmp_path / profile.athlete_id
    folder.mkdir()
    # encode_athlete_toml reads only the athlete's profile
    (folder / "athlete.toml").write_bytes(encode_athlete_toml(SimpleNamespace(profile=profile)))
    assert load_athlete_config(tmp_path, profile.athlete_id).weather is False


REAL_RUNS = ("georust__gpx/tests/fixtures/garmin-activity.gpx",
             "dtcooper__python-fitparse/tests/files/activity-small-fenix2-run.fit",
             "jimmykane__fit-parser/test/garmin-stamina.fit",
             "GoldenCheetah__sweatpy/sweat/examples/data/3173437224.tcx",
             # no GPS positions (a run, a transition, a row). Not the ANT-FS dump: its device clock was never
             # set (1990 dates), which the ingest sanity gate refuses
             "GoldenCheetah__sweatpy/sweat/examples/data/6471559601_ACTIVITY.fit")


@pytest.mark.slow
def test_real_watch_files_send_their_rounded_first_fix(workspace, corpus_dir):
    from pipeline.ingest.run import ingest_paths

    ingest_paths(workspace, [corpus_dir / p for p in REAL_RUNS], athlete_id="real", jobs=1, progress=False)
    con = connect(workspace, read_only=True)
    first_fix = dict(con.execute(
        "SELECT activity_id, [arg_min(lat_deg, ts), arg_min(lon_deg, ts)] FROM samples "
        "WHERE lat_deg IS NOT NULL AND NOT (lat_deg = 0 AND lon_deg = 0) GROUP BY activity_id").fetchall())
    n_runs = con.execute("SELECT count(*) FROM activities WHERE sport = 'running'").fetchone()[0]
    con.close()
    assert n_runs == 5 and len(first_fix) == 4                 # the multisport test file has no positions
    with ArchiveServer() as server:
        configure(workspace, server.url)
        summary = weather_workspace(workspace, today=TODAY)
    rows = weather_rows(workspace).set_index("activity_id")
    assert sorted(rows.index) == sorted(first_fix) and (rows["status"] == "ok").all()
    sent = {(s.param("latitude"), s.param("longitude")) for s in server.seen}
    expected = {tuple(f"{round(v, 1):g}" for v in fix) for fix in first_fix.values()}
    assert sent == expected and summary.requests == len(server.seen) <= 4
    assert (rows["distance_km"] < 10).all()

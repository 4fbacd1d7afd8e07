"""One athlete's bad data never costs another athlete their results.

A workspace with a healthy simulated athlete and two broken ones, all written as real files and run
through the real commands: ``broken`` has a phone-app GPX whose first point is dated in the year 7494
and the rest in 1970 (the pattern of issue 11, refused by the ingest sanity gate with the file named),
and a normal run; ``badconfig`` has a normal run and an athlete.toml with ``ref_speed_m_s = nan``. A
warehouse filled before the sanity gate existed may hold times pandas cannot represent at all: the broken
athlete's normal run is moved to the year 200000 (DuckDB holds it; reading it raised inside the
analysis), which stands for any exception in an analysis.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import replace

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.analyze.run import analyze_workspace, describe_failure
from pipeline.analyze.runs import RunAnalysisError
from pipeline.cli import cli
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import encode_gpx_activity, write_athlete
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect

PHONE_RUN = "phone-run.gpx"


def phone_app_gpx(n_points: int = 2400) -> bytes:
    """A GPX as the phone app wrote it: the first point in the year 7494, the others at 1970-01-01 + i s."""
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="phone app" '
            'xmlns="http://www.topografix.com/GPX/1/1" '
            'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">\n'
            '<trk><type>running</type><trkseg>\n')
    points = []
    for i in range(n_points):
        when = ("7494-03-01T10:00:00Z" if i == 0 else
                (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        points.append(f'<trkpt lat="{51.0 + i * 0.000027:.7f}" lon="-0.1000000"><ele>12.0</ele>'
                      f'<time>{when}</time><extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>{140 + i % 7}'
                      '</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions></trkpt>')
    return (head + "\n".join(points) + "\n</trkseg></trk></gpx>\n").encode()


@pytest.fixture(scope="module")
def squad(tmp_path_factory):
    """The workspace, ingested (module scope: the runs below only read it or re-run analyze)."""
    from pipeline.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("squad").resolve())
    # 20 weeks with a block from week 8 (~75 runs): a block with runs on both sides, so 'fully analysed'
    # includes block effects.
    good = simulate_athlete(replace(PROFILES["gain"], weeks=20, block_start_week=8, sporadic_strength_weeks=(2,)),
                            3, sample_interval_s=15.0, athlete_id="good")
    write_athlete(good, ws.raw_dir)
    donor = simulate_athlete(replace(PROFILES["null"], weeks=2, block_start_week=1, sporadic_strength_weeks=()),
                             4, sample_interval_s=15.0)
    for k, athlete in enumerate(("broken", "badconfig")):
        row = donor.activities.iloc[k]
        (ws.raw_dir / athlete).mkdir(parents=True)
        (ws.raw_dir / athlete / "normal-run.gpx").write_bytes(
            encode_gpx_activity(row, donor.samples[donor.samples["activity_id"] == row["activity_id"]]))
    (ws.raw_dir / "broken" / PHONE_RUN).write_bytes(phone_app_gpx())
    (ws.raw_dir / "badconfig" / "athlete.toml").write_text("display_name = 'Bad settings'\nref_speed_m_s = nan\n")
    summary = ingest_paths(ws, None, jobs=1, progress=False)
    assert any("data/raw/badconfig/athlete.toml: ref_speed_m_s = nan is not a finite number" in n
               for n in summary.notes)
    con = connect(ws)
    try:
        # The gate refuses the phone-app file at ingest (no bogus activity reaches the warehouse) ...
        status, message = con.execute("SELECT status, message FROM source_files WHERE path = ?",
                                      [f"data/raw/broken/{PHONE_RUN}"]).fetchone()
        assert status == "error" and message, (status, message)
        assert con.execute("SELECT count(*) FROM activities WHERE athlete_id = 'broken'").fetchone()[0] == 1
        # ... what a warehouse from before the sanity gate may hold: a time pandas cannot represent
        con.execute("UPDATE activities SET start_time = TIMESTAMPTZ '200000-01-01 00:00:00+00' "
                    "WHERE athlete_id = 'broken'")
    finally:
        con.close()
    return ws, good


def _latest_analysis(ws) -> dict[str, tuple[str, str]]:
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    try:
        rows = con.execute("SELECT athlete_id, status, message FROM analysis_runs QUALIFY row_number() OVER "
                           "(PARTITION BY athlete_id ORDER BY started_at DESC) = 1").fetchall()
        return {a: (s, m) for a, s, m in rows}
    finally:
        con.close()


def _count(ws, sql: str) -> int:
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_broken_athletes_get_error_rows_and_the_good_one_is_fully_analysed(squad):
    ws, good = squad
    summary = analyze_workspace(ws)
    assert [a.athlete_id for a in summary.athletes] == ["good"]
    failures = {f.athlete_id: f.message for f in summary.failures}
    assert set(failures) == {"broken", "badconfig"} and not summary.ok
    assert failures["badconfig"] == ("data/raw/badconfig/athlete.toml: ref_speed_m_s = nan is not a finite number "
                                     "(must be at least 1 and at most 7 m/s)")
    # The error names the file with the impossible time (it would otherwise wrap silently into 1972).
    assert re.fullmatch(r"impossible times, outside 1900-2200: data/raw/broken/normal-run\.gpx \(activity "
                        r"broken-\S+, starts 200000-01-01 00:00:00\+00\); fix or remove the file\(s\) and run "
                        r"`pipeline ingest` again", failures["broken"]), failures["broken"]
    text = summary.render()
    assert "Analyze: 3 athlete(s) analysed, 2 could not be analysed" in text
    assert "  broken: NOT ANALYSED: " in text and "nan m/s" not in text
    # The good athlete: every run analysed, a block, effects; the broken ones: no analysis rows at all.
    assert _count(ws, "SELECT count(*) FROM run_metrics WHERE athlete_id = 'good'") == len(good.activities)
    assert _count(ws, "SELECT count(*) FROM run_metrics WHERE athlete_id <> 'good'") == 0
    assert _count(ws, "SELECT count(*) FROM block_effects WHERE athlete_id = 'good'") == 10
    latest = _latest_analysis(ws)
    assert latest["good"] == ("ok", None)
    assert latest["broken"] == ("error", failures["broken"])
    assert latest["badconfig"] == ("error", failures["badconfig"])


@pytest.mark.slow
def test_run_writes_every_page_and_exits_non_zero_then_recovers(squad):
    ws, _ = squad
    runner = CliRunner()
    result = runner.invoke(cli, ["--workspace", str(ws.root), "run", "--quiet"])
    assert result.exit_code == 1, result.output
    assert "Report: " in result.output
    assert result.output.rstrip().endswith(
        "Error: 2 athlete(s) could not be analysed (badconfig, broken); the others' results were stored. "
        "The reasons are above and in `pipeline status`.")
    good_page = (ws.reports_dir / "good" / "index.html").read_text()
    assert 'id="analysis-error"' not in good_page and (ws.reports_dir / "good" / "economy_timeline.png").exists()
    broken_page = (ws.reports_dir / "broken" / "index.html").read_text()
    assert 'class="error-box" id="analysis-error"' in broken_page and "normal-run.gpx" in broken_page
    assert "ref_speed_m_s = nan is not a finite number" in (ws.reports_dir / "badconfig" / "index.html").read_text()
    squad_page = (ws.reports_dir / "index.html").read_text()
    assert squad_page.count("not analysed") == 2 and "good/index.html" in squad_page
    status = runner.invoke(cli, ["--workspace", str(ws.root), "status"])
    assert status.exit_code == 0
    assert "analysis: 1 athlete(s) analysed, 2 failed" in status.output
    assert "  analysis error: badconfig: data/raw/badconfig/athlete.toml: ref_speed_m_s = nan" in status.output
    # Fixing the settings clears the error for that athlete only; the broken one stays broken.
    (ws.raw_dir / "badconfig" / "athlete.toml").write_text("ref_speed_m_s = 3.0\n")
    result = runner.invoke(cli, ["--workspace", str(ws.root), "analyze", "--athlete", "badconfig"])
    assert result.exit_code == 0, result.output
    assert _latest_analysis(ws)["badconfig"] == ("ok", None)
    assert _count(ws, "SELECT count(*) FROM run_metrics WHERE athlete_id = 'badconfig' AND included") == 1
    assert _latest_analysis(ws)["broken"][0] == "error"
    assert _count(ws, "SELECT count(*) FROM run_metrics WHERE athlete_id = 'good'") > 0


@pytest.mark.slow
def test_an_unexpected_error_names_the_activity_and_file_where_it_can(squad):
    """What any exception in an athlete's analysis becomes (the text stored in analysis_runs)."""
    ws, _ = squad
    con = duckdb.connect(str(ws.warehouse_path), read_only=True)
    try:
        activity_id = con.execute("SELECT activity_id FROM activities WHERE athlete_id = 'badconfig'").fetchone()[0]
        # Inside one run's analysis: that run and its file.
        in_run = describe_failure(con, "badconfig", RunAnalysisError(activity_id, ValueError("x must be finite")))
        # Anywhere else: the athlete's activities with impossible times, as the likely cause.
        elsewhere = describe_failure(con, "broken", OverflowError("date value out of range"))
        nothing_suspect = describe_failure(con, "good", KeyError("heart_rate_bpm"))
    finally:
        con.close()
    assert in_run == f"ValueError: x must be finite (in activity {activity_id}, file data/raw/badconfig/normal-run.gpx)"
    assert re.fullmatch(r"OverflowError: date value out of range; activities with impossible times, the likely "
                        r"cause: data/raw/broken/normal-run\.gpx \(activity broken-\S+, starts 200000-01-01 "
                        r"00:00:00\+00, lasts [0-9.]+ h\)", elsewhere), elsewhere
    assert nothing_suspect == "KeyError: 'heart_rate_bpm'"


def test_a_report_page_that_cannot_be_built_costs_no_other_page(workspace):
    """A run dated in the year 200000 in run_metrics (matplotlib cannot draw it) breaks one page only."""
    from pipeline.errors import PipelineError
    from pipeline.report.build import build_reports

    con = connect(workspace)
    try:
        for athlete, start in (("good", "2024-03-0{d} 08:00:00+00"), ("broken", "200000-01-0{d} 00:00:00+00")):
            con.execute("INSERT INTO athletes (athlete_id) VALUES (?)", [athlete])
            for d in range(1, 5):
                con.execute("INSERT INTO run_metrics (activity_id, athlete_id, start_time, included, speed_m_s, "
                            "gap_speed_m_s, heart_rate_bpm, m_per_beat, economy_m_per_beat) "
                            "VALUES (?, ?, ?::TIMESTAMPTZ, true, 3.0, 3.0, 150, 1.2, 1.2)",
                            [f"{athlete}-{d}", athlete, start.format(d=d)])
    finally:
        con.close()
    with pytest.raises(PipelineError) as e:
        build_reports(workspace)
    # Which drawing step trips first over the year 200000 (a chart's date text, matplotlib's dates) is not
    # the point: the athlete and the exception are named, and the same reason is on its page.
    m = re.fullmatch(r"the report page of 1 athlete\(s\) could not be built: broken \((\w+Error: [^;]+)\); "
                     r"every other page and the squad page \S+index\.html were written", str(e.value))
    assert m, str(e.value)
    good = (workspace.reports_dir / "good" / "index.html").read_text()
    assert "4 of 4 runs usable" in good and (workspace.reports_dir / "good" / "economy_timeline.png").exists()
    broken = html.unescape((workspace.reports_dir / "broken" / "index.html").read_text())
    assert 'id="report-error"' in broken and m.group(1)[:60] in broken
    assert list((workspace.reports_dir / "broken").glob("*.png")) == []
    assert "good/index.html" in (workspace.reports_dir / "index.html").read_text()

"""Incremental analyze and report: what changes redo an athlete's analysis (or page), and what does not.

Two small simulated athletes (12 weeks, a sample every 20 s) written as real files, ingested into a real
warehouse; each test changes one thing and checks which athletes `analyze_workspace` redoes, that the rows
equal a from-scratch analysis, and what `pipeline status` says.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import pandas as pd
import pytest

from pipeline.analyze.fingerprint import (POOL_PENDING, AthleteFingerprint, StoredFingerprint, stale_reasons,
                                          uses_pooled_inputs)
from pipeline.analyze.run import analyze_workspace
from pipeline.analyze.run_cache import run_cache_path
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.ingest.run import ingest_paths
from pipeline.report.build import report_workspace
from pipeline.status import freshness_status
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

TABLES = ("run_metrics", "weekly", "strength_blocks", "block_effects", "placebo_checks")


def _athlete(athlete_id: str, seed: int, weeks: int = 12):
    profile = dataclasses.replace(PROFILES["gain"], weeks=weeks, block_start_week=3)
    return simulate_athlete(profile, seed, sample_interval_s=20.0, athlete_id=athlete_id)


@pytest.fixture(scope="module")
def analysed_template(tmp_path_factory):
    """Two athletes ingested and analysed once (copied per test: each test changes something)."""
    ws = Workspace(tmp_path_factory.mktemp("incremental"))
    for k, a in enumerate(("ann", "bob")):
        write_athlete(_athlete(a, 10 + k), ws.raw_dir)
    ingest_paths(ws, None, jobs=1, progress=False)
    first = analyze_workspace(ws)
    assert sorted(s.athlete_id for s in first.athletes) == ["ann", "bob"] and first.squad == "recomputed"
    report_workspace(ws)
    return ws


@pytest.fixture
def ws(analysed_template, tmp_path) -> Workspace:
    shutil.copytree(analysed_template.root, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def _analysed(summary) -> list[str]:
    return sorted(s.athlete_id for s in summary.athletes)


def _snapshot(ws: Workspace) -> dict[str, pd.DataFrame]:
    con = connect(ws, read_only=True)
    try:
        return {t: con.execute(f"SELECT * EXCLUDE (analysis_run_id) FROM {t} ORDER BY ALL").df() for t in TABLES}
    finally:
        con.close()


def _n_analysis_runs(ws: Workspace) -> int:
    con = connect(ws, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM analysis_runs").fetchone()[0]
    finally:
        con.close()


def test_nothing_new_redoes_nothing(ws):
    before, n_runs = _snapshot(ws), _n_analysis_runs(ws)
    summary = analyze_workspace(ws)
    assert _analysed(summary) == [] and summary.up_to_date == ["ann", "bob"] and summary.squad == "up to date"
    assert "0 athlete(s) analysed, 2 up to date" in summary.render() and " s (CPU " in summary.render()
    assert _n_analysis_runs(ws) == n_runs
    for t in TABLES:
        pd.testing.assert_frame_equal(before[t], _snapshot(ws)[t])
    report = report_workspace(ws)
    assert report.written == [] and report.up_to_date == ["ann", "bob"] and report.squad == "up to date"
    assert "analysis: 2 of 2 athletes up to date" in freshness_status(connect(ws, read_only=True), ws)


def test_bookkeeping_changes_do_not_count(ws):
    """Same bytes with a new mtime, a re-ingest (new ingested_at / updated_at) and another copy of a file
    under the same content are not changes of what the analysis reads."""
    for f in (ws.raw_dir / "ann").iterdir():
        os.utime(f, (1_700_000_000, 1_700_000_000))
    con = connect(ws)
    con.execute("UPDATE athletes SET updated_at = now() - INTERVAL 3 DAY")
    con.execute("UPDATE source_files SET ingested_at = now() - INTERVAL 3 DAY")
    con.close()
    ingest_paths(ws, None, jobs=1, progress=False)
    assert _analysed(analyze_workspace(ws)) == []


def test_new_run_file_redoes_that_athlete_only_and_equals_a_fresh_analysis(ws, tmp_path):
    extra = _athlete("ann", 99, weeks=13)          # its last run lies in week 13, after ann's record
    last = extra.activities.sort_values("start_time").iloc[[-1]]
    one = dataclasses.replace(extra, activities=last,
                              samples=extra.samples[extra.samples["activity_id"].isin(last["activity_id"])])
    write_athlete(one, tmp_path / "extra")
    src = next(p for p in (tmp_path / "extra" / "ann").rglob("*") if p.suffix in (".fit", ".gpx"))
    shutil.copy(src, ws.raw_dir / "ann" / f"new_{src.name}")
    ingest_paths(ws, None, jobs=1, progress=False)
    con = connect(ws, read_only=True)
    assert "ann (source_files, activities changed)" in freshness_status(con, ws)
    con.close()
    summary = analyze_workspace(ws)
    assert _analysed(summary) == ["ann"] and summary.up_to_date == ["bob"] and summary.squad == "recomputed"
    incremental = _snapshot(ws)
    # the same warehouse analysed from scratch, without the cached runs: identical rows
    shutil.rmtree(ws.processed_dir / "run_cache")
    analyze_workspace(ws, force=True)
    for t in TABLES:
        pd.testing.assert_frame_equal(incremental[t], _snapshot(ws)[t], check_exact=True)
    report = report_workspace(ws)
    assert report.written == ["ann"] and report.up_to_date == ["bob"] and report.squad == "written"


def test_settings_athlete_toml_blocks_and_weather_each_redo_their_athletes(ws):
    (ws.root / "pipeline.toml").write_text("[analysis]\nswc_pct = 1.5\n")
    assert _analysed(analyze_workspace(ws)) == ["ann", "bob"]          # [analysis] concerns everyone
    with open(ws.raw_dir / "bob" / "athlete.toml", "a") as fh:
        fh.write("\n# a comment is an edit: the file's bytes are an input\n")
    assert _analysed(analyze_workspace(ws)) == ["bob"]
    (ws.raw_dir / "ann" / "blocks.csv").write_text("label,start,end\nwinter,2024-01-15,2024-03-10\n")
    ingest_paths(ws, None, jobs=1, progress=False)
    assert _analysed(analyze_workspace(ws)) == ["ann"]                 # declared blocks
    con = connect(ws)
    act = con.execute("SELECT activity_id FROM activities WHERE athlete_id = 'bob' LIMIT 1").fetchone()[0]
    con.execute("INSERT INTO weather (activity_id, athlete_id, source, status, fetched_at, air_temperature_c) "
                "VALUES (?, 'bob', 'simulated', 'ok', now(), 21.5)", [act])
    con.close()
    summary = analyze_workspace(ws)
    assert _analysed(summary) == ["bob"]                               # archive weather of a run
    assert _analysed(analyze_workspace(ws, force=True)) == ["ann", "bob"]
    assert _analysed(analyze_workspace(ws, athlete_id="ann", force=True)) == ["ann"]


def test_a_cached_run_is_reused_only_while_its_inputs_match(ws):
    con = connect(ws)
    con.execute("UPDATE activities SET name = 'renamed' WHERE athlete_id = 'ann'")   # every ann run changed
    con.close()
    cache = run_cache_path(ws, "ann")
    assert cache.exists()
    assert _analysed(analyze_workspace(ws)) == ["ann"]
    cache.write_bytes(b"not a pickle")                         # a broken cache is recomputed, never trusted
    assert _analysed(analyze_workspace(ws, force=True)) == ["ann", "bob"]


def test_pooled_inputs_rule():
    """An analysis that drew on the squad's pooled controls is out of date when any athlete changed."""
    fp = AthleteFingerprint("ann", {"activities": "x"})
    own = StoredFingerprint(fp.value, fp.parts, None)
    pooled = StoredFingerprint(fp.value, fp.parts, "pool-1")
    assert stale_reasons(fp, own, "pool-2") == []
    assert stale_reasons(fp, pooled, "pool-1") == []
    assert stale_reasons(fp, pooled, "pool-2") == ["other athletes changed (pooled calibration)"]
    assert stale_reasons(AthleteFingerprint("ann", {"activities": "y"}), own, "pool-1") == ["activities"]
    assert stale_reasons(fp, None, "p") == ["not analysed yet"]
    assert not uses_pooled_inputs(pd.DataFrame({"metric": ["economy_m_per_beat"]}))   # before calibration
    assert uses_pooled_inputs(pd.DataFrame({"calibration_source": ["own", "squad"]}))
    assert uses_pooled_inputs(pd.DataFrame({"calibration_source": ["default", None]}))
    assert not uses_pooled_inputs(pd.DataFrame({"calibration_source": ["own", None]}))
    # the default in a class the squad cannot serve depends on nobody else; 'squad' always does
    assert not uses_pooled_inputs(pd.DataFrame({"calibration_source": ["default"]}), squad_class=False)
    assert uses_pooled_inputs(pd.DataFrame({"calibration_source": ["squad"]}), squad_class=False)
    pending = StoredFingerprint(fp.value, fp.parts, POOL_PENDING)     # stored before the squad pass ran
    assert stale_reasons(fp, pending, "pool-1") == ["squad calibration not finished (analyze was interrupted)"]


def test_stored_pooled_fingerprint_redoes_the_athlete_when_another_changes(ws):
    con = connect(ws)
    con.execute("UPDATE analysis_runs SET pooled_fingerprint = 'the squad as it was' WHERE athlete_id = 'bob'")
    con.close()
    summary = analyze_workspace(ws)
    assert _analysed(summary) == ["bob"]


def test_report_rebuilds_a_page_whose_file_went_missing(ws):
    (ws.reports_dir / "ann" / "index.html").unlink()
    report = report_workspace(ws)
    assert report.written == ["ann"] and (ws.reports_dir / "ann" / "index.html").exists()
    assert report_workspace(ws, force=True).written == ["ann", "bob"]
    assert "reports: 2 of 2 athlete pages up to date" in freshness_status(connect(ws, read_only=True), ws)

"""End to end: demo files -> ingest -> analyze_workspace; idempotency; real corpus running files."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

import pipeline
from pipeline.analyze.run import analyze_workspace
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect

TABLES = ("run_metrics", "weekly", "strength_blocks", "block_effects", "placebo_checks")


def _snapshot(ws) -> dict[str, pd.DataFrame]:
    con = connect(ws, read_only=True)
    try:
        # analysis_run_id differs by design between two analyses (it names the analysis); the rest must not.
        return {t: con.execute(f"SELECT * EXCLUDE (analysis_run_id) FROM {t} ORDER BY ALL").df().reset_index(drop=True)
                for t in TABLES}
    finally:
        con.close()


@pytest.mark.slow
def test_demo_athlete_end_to_end_and_idempotent(workspace):
    athlete = simulate_athlete(PROFILES["gain"], 1, sample_interval_s=10.0)
    write_athlete(athlete, workspace.raw_dir)
    ingest_paths(workspace, None, jobs=1, progress=False)
    summary = analyze_workspace(workspace)
    text = summary.render()
    assert "demo_gain" in text and "calibrated (95 % CI" in text and "negative controls" in text
    first = _snapshot(workspace)
    rm = first["run_metrics"]
    assert len(rm) == len(athlete.activities) and rm["included"].mean() > 0.8
    assert rm.loc[rm["included"], "economy_m_per_beat"].between(1.0, 2.5).all()
    assert rm.loc[~rm["included"], "exclusion_reason"].notna().all()
    assert len(first["strength_blocks"]) == 1 and len(first["block_effects"]) == 10
    head = first["block_effects"].query("metric == 'economy_m_per_beat' and method == 'its'").iloc[0]
    assert head["verdict"] == "gain"                       # raw: the planted 3 % is found
    # Calibrated side by side: a lone 40-week record has 5 overlapping controls (too few): the default.
    assert head["calibration_source"] == "default" and head["n_controls"] == 5
    assert head["calibrated_ci_high_pct"] - head["calibrated_ci_low_pct"] > head["ci_high_pct"] - head["ci_low_pct"]
    assert head["calibrated_verdict"] in ("gain", "cannot tell") and "default" in head["verdict_reason"]
    assert not head["season_controlled"] and head["heat_controlled"] and not head["sensor_change"]
    pc = first["placebo_checks"]
    assert set(pc["position"]) == {"before"} and pc["se_pct"].gt(0).all() and set(pc["calibration_class"]) == {"heat"}
    assert set(rm.loc[rm["included"], "temperature_source"]) <= {"device", "imputed"}
    con = connect(workspace, read_only=True)
    try:
        summary_row = con.execute("SELECT * FROM block_summary").df().iloc[0]
    finally:
        con.close()
    assert summary_row["verdict"] == head["calibrated_verdict"] and summary_row["raw_verdict"] == "gain"
    assert summary_row["change_pct"] == pytest.approx(head["calibrated_change_pct"])
    assert first["weekly"]["runs"].sum() == len(athlete.activities)
    assert first["weekly"]["strength_sessions"].sum() == len(athlete.strength_sessions)
    # Re-running with nothing new analyses nothing; forced (all, then one athlete) it leaves the same rows,
    # the second time from the cached runs (each run's reduction reused: the same numbers, exactly).
    assert analyze_workspace(workspace).up_to_date == ["demo_gain"]
    analyze_workspace(workspace, force=True)
    analyze_workspace(workspace, athlete_id="demo_gain", force=True)
    again = _snapshot(workspace)
    for t in TABLES:
        pd.testing.assert_frame_equal(first[t], again[t], check_exact=True)
    # Each analysis of the athlete is recorded with its version and every setting used.
    con = connect(workspace, read_only=True)
    runs = con.execute("SELECT athlete_id, status, pipeline_version, settings_json, finished_at >= started_at "
                       "FROM analysis_runs ORDER BY started_at").fetchall()
    con.close()
    assert [(r[0], r[1], r[4]) for r in runs] == [("demo_gain", "ok", True)] * 3
    settings = json.loads(runs[-1][3])
    assert settings["analysis"]["swc_pct"] == 1.0 and settings["blocks"]["max_gap_days"] == 10
    assert runs[-1][2] == pipeline.__version__
    # Provenance: every analysis row links to the latest analysis, which holds the fitted model's values.
    con = connect(workspace, read_only=True)
    latest = con.execute("SELECT analysis_run_id, n_runs, n_included, ref_speed_m_s, hr_speed_slope_bpm_per_m_s, "
                         "drift_bpm_per_h, heat_bpm_per_c, heat_se_bpm_per_c, heat_method, slope_method "
                         "FROM analysis_runs ORDER BY started_at DESC LIMIT 1").fetchone()
    links = {t: con.execute(f"SELECT DISTINCT analysis_run_id FROM {t}").fetchall() for t in TABLES}
    con.close()
    assert all(v == [(latest[0],)] for v in links.values()), links
    assert latest[1] == len(athlete.activities) and latest[2] == int(rm["included"].sum())
    assert 2.5 < latest[3] < 3.2 and 18 < latest[4] < 26      # simulator: HR slope 22 bpm per m/s
    assert 2 < latest[5] < 7 and latest[8] == "detrended" and latest[9] == "adjacent_bins_iv"  # drift 4.5 bpm/h


def test_empty_workspace_and_unknown_athlete(workspace):
    assert "no athletes" in analyze_workspace(workspace).render()
    from pipeline.errors import PipelineError
    with pytest.raises(PipelineError, match="no data for athlete 'nobody'"):
        analyze_workspace(workspace, athlete_id="nobody")


def test_unknown_analysis_setting_is_a_clear_error(workspace):
    from pipeline.errors import PipelineError
    (workspace.root / "pipeline.toml").write_text("[analysis]\nswc = 2\n")
    with pytest.raises(PipelineError, match="unknown key.*swc.*valid keys"):
        analyze_workspace(workspace)


# The real running files of ../shared/corpus (CORPUS.tsv) and what a runner would say about each, from
# their speed/HR traces (docs/analysis.md, "Calibration on real runs"). None = included.
CORPUS_RUNS = {
    "dtcooper__python-fitparse/tests/files/activity-small-fenix2-run.fit": None,        # continuous, 3.3-4 m/s
    "dtcooper__python-fitparse/tests/files/developer-types-sample.fit": None,           # slow continuous jog
    "georust__gpx/tests/fixtures/garmin-activity.gpx": None,                            # 90 min, GPS speed, hills
    "tormoder__fit/testdata/misc/mornindew-broken.fit": None,                           # long run, a few stops
    "jimmykane__fit-parser/test/garmin-stamina.fit": "interval session",                # 5 hard reps
    "dtcooper__python-fitparse/tests/files/2013-02-06-12-11-14.fit": "lost to pace changes",   # stop-start
    "GoldenCheetah__sweatpy/sweat/examples/data/3173437224.tcx": "lost to pace changes",       # run-walk
    "jimmykane__fit-parser/test/running-with-developer-data.fit": "lost to pace changes",      # 28 min, 2 stops
    "dtcooper__python-fitparse/tests/files/garmin-fenix-5-run.fit": "no moving time after the 10 min warm-up",
    "GoldenCheetah__sweatpy/sweat/examples/data/4801048867.fit": "not a run",  # a ride: not in run_metrics
}


@pytest.mark.slow
def test_real_running_files_plausible_or_excluded_with_reason(workspace, corpus_dir):
    folder = workspace.raw_dir / "corpus_runner"
    folder.mkdir()
    for rel in CORPUS_RUNS:
        src = corpus_dir / rel
        if src.exists():
            shutil.copy(src, folder / src.name)
    ingest_paths(workspace, None, jobs=1, progress=False)
    analyze_workspace(workspace)
    con = connect(workspace, read_only=True)
    try:
        rm = con.execute("SELECT r.*, f.path FROM run_metrics r JOIN activities USING (activity_id) "
                         "JOIN source_files f USING (file_id)").df()
    finally:
        con.close()
    rm["name"] = rm["path"].str.rsplit("/", n=1).str[-1]
    expected = {rel.rsplit("/", 1)[-1]: reason for rel, reason in CORPUS_RUNS.items()
                if (corpus_dir / rel).exists() and reason != "not a run"}
    assert set(rm["name"]) == set(expected)     # other sports are counted, never analysed
    for _, r in rm.iterrows():
        reason = expected[r["name"]]
        if reason is None:   # ordinary continuous runs with HR are analysed
            assert r["included"], (r["name"], r["exclusion_reason"])
        else:                # genuinely stop-start, interval, too short or not a run: a specific reason
            assert not r["included"] and reason in r["exclusion_reason"], (r["name"], r["exclusion_reason"])
    inc = rm[rm["included"]]
    assert len(inc) == 4
    # Pace per heartbeat of real runs: 0.8-2.5 m/beat. Easy running is ~2-4 m/s at ~120-170 bpm, i.e.
    # 0.8-2.0 m/beat; elite runners reach ~2.5 (5.5 m/s at 130 bpm). The 1.0 lower end is too
    # high for a slow jog: developer-types-sample runs 1.98 m/s at 133 bpm (0.89 m/beat) - a real,
    # ordinary run. Below ~0.8 would mean walking pace at running HR, or a bad speed or HR signal.
    assert inc["m_per_beat"].between(0.8, 2.5).all(), inc[["name", "m_per_beat"]]
    assert inc["economy_m_per_beat"].between(0.8, 2.5).all(), inc[["name", "economy_m_per_beat"]]
    assert inc["heart_rate_bpm"].between(100, 190).all()
    assert inc["steady_s"].ge(900).all()
    assert (rm.loc[rm["name"] == "developer-types-sample.fit", "m_per_beat"].iloc[0]
            == pytest.approx(0.89, abs=0.03))

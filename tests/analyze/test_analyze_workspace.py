"""End to end: demo files -> ingest -> analyze_workspace; idempotency; real corpus running files."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from pipeline.analyze.run import analyze_workspace
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect

TABLES = ("run_metrics", "weekly", "strength_blocks", "block_effects", "placebo_checks")


def _snapshot(ws) -> dict[str, pd.DataFrame]:
    con = connect(ws, read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").df().reset_index(drop=True) for t in TABLES}
    finally:
        con.close()


@pytest.mark.slow
def test_demo_athlete_end_to_end_and_idempotent(workspace):
    athlete = simulate_athlete(PROFILES["gain"], 1, sample_interval_s=10.0)
    write_athlete(athlete, workspace.raw_dir)
    ingest_paths(workspace, None, jobs=1, progress=False)
    summary = analyze_workspace(workspace)
    text = summary.render()
    assert "demo_gain" in text and "-> gain" in text and "placebo" in text
    first = _snapshot(workspace)
    rm = first["run_metrics"]
    assert len(rm) == len(athlete.activities) and rm["included"].mean() > 0.8
    assert rm.loc[rm["included"], "economy_m_per_beat"].between(1.0, 2.5).all()
    assert rm.loc[~rm["included"], "exclusion_reason"].notna().all()
    assert len(first["strength_blocks"]) == 1 and len(first["block_effects"]) == 10
    head = first["block_effects"].query("metric == 'economy_m_per_beat' and method == 'its'").iloc[0]
    assert head["verdict"] == "gain"
    assert first["weekly"]["runs"].sum() == len(athlete.activities)
    assert first["weekly"]["strength_sessions"].sum() == len(athlete.strength_sessions)
    # Re-running changes nothing; analysing one athlete leaves the same rows.
    analyze_workspace(workspace)
    analyze_workspace(workspace, athlete_id="demo_gain")
    again = _snapshot(workspace)
    for t in TABLES:
        pd.testing.assert_frame_equal(first[t], again[t], check_exact=False, rtol=1e-9)


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


CORPUS_RUNS = [
    "GoldenCheetah__sweatpy/sweat/examples/data/3173437224.tcx",
    "dtcooper__python-fitparse/tests/files/2013-02-06-12-11-14.fit",
    "dtcooper__python-fitparse/tests/files/activity-small-fenix2-run.fit",
    "dtcooper__python-fitparse/tests/files/developer-types-sample.fit",
    "dtcooper__python-fitparse/tests/files/garmin-fenix-5-run.fit",
    "georust__gpx/tests/fixtures/garmin-activity.gpx",
    "jimmykane__fit-parser/test/garmin-stamina.fit",
    "jimmykane__fit-parser/test/running-with-developer-data.fit",
    "tormoder__fit/testdata/misc/mornindew-broken.fit",
    "GoldenCheetah__sweatpy/sweat/examples/data/4801048867.fit",     # a ride: never a run
]


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
    rm = _snapshot(workspace)["run_metrics"]
    assert len(rm) >= 6
    inc = rm[rm["included"]]
    assert len(inc) >= 1
    # 0.7-2.5 m/beat: a real slow jog in the corpus runs 1.9 m/s at 133 bpm (0.87 m/beat), below the
    # 1.0 suggested in the issue; elite runners reach ~2.5.
    assert inc["m_per_beat"].between(0.7, 2.5).all(), inc[["activity_id", "m_per_beat"]]
    assert inc["economy_m_per_beat"].between(0.7, 2.5).all()
    assert inc["heart_rate_bpm"].between(90, 200).all()
    exc = rm[~rm["included"]]
    assert exc["exclusion_reason"].str.len().gt(5).all()

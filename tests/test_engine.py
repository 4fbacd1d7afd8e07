"""The scale-out engine: ingest and analyze on a real dask LocalCluster of 2 worker processes give the same
warehouse tables as a local run (parsing per file and analysis per athlete on the workers; one writer)."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest

from pipeline.analyze.run import analyze_workspace
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.engine import open_engine, parse_cluster
from pipeline.errors import PipelineError
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

# Every table either stage writes, with the columns that name a moment or an analysis left out.
COMPARED = {
    "source_files": "SELECT * EXCLUDE (ingested_at) FROM source_files",
    "activities": "SELECT * FROM activities",
    "samples": "SELECT * FROM samples",
    "laps": "SELECT * FROM laps",
    "strength_sessions": "SELECT * FROM strength_sessions",
    "strength_sets": "SELECT * FROM strength_sets",
    "run_metrics": "SELECT * EXCLUDE (analysis_run_id) FROM run_metrics",
    "weekly": "SELECT * EXCLUDE (analysis_run_id) FROM weekly",
    "strength_blocks": "SELECT * EXCLUDE (analysis_run_id) FROM strength_blocks",
    "block_effects": "SELECT * EXCLUDE (analysis_run_id) FROM block_effects",
    "placebo_checks": "SELECT * EXCLUDE (analysis_run_id) FROM placebo_checks",
    "analysis_runs": "SELECT athlete_id, status, n_runs, n_included, hr_speed_slope_bpm_per_m_s, "
                     "input_fingerprint, pooled_fingerprint FROM analysis_runs",
    "squad_blocks": "SELECT * EXCLUDE (analysis_run_id) FROM squad_blocks",
    "squad_pooled": "SELECT * EXCLUDE (computed_at) FROM squad_pooled",
}


def result_tables(ws: Workspace) -> dict[str, pd.DataFrame]:
    con = connect(ws, read_only=True)
    try:
        return {t: con.execute(f"{sql} ORDER BY ALL").df() for t, sql in COMPARED.items()}
    finally:
        con.close()


def test_parse_cluster_spec():
    assert parse_cluster("local:2") == (None, 2)
    assert parse_cluster("tcp://10.0.0.5:8786") == ("tcp://10.0.0.5:8786", None)
    assert parse_cluster("sched:8786") == ("tcp://sched:8786", None)
    for bad in ("local:0", "local:x", "", "a b"):
        with pytest.raises(PipelineError, match="--cluster"):
            parse_cluster(bad)


@pytest.mark.slow
def test_local_cluster_of_two_workers_equals_a_local_run(tmp_path):
    local, cluster = Workspace(tmp_path / "local"), Workspace(tmp_path / "cluster")
    for k, a in enumerate(("ann", "bob", "cy")):
        profile = dataclasses.replace(PROFILES["gain"], weeks=12, block_start_week=3)
        write_athlete(simulate_athlete(profile, 20 + k, sample_interval_s=20.0, athlete_id=a), local.raw_dir)
    shutil.copytree(local.raw_dir, cluster.raw_dir)
    local_files = ingest_paths(local, None, jobs=1, progress=False).files
    analyze_workspace(local)
    with open_engine("local:2") as engine:
        assert engine.n_workers == 2
        summary = ingest_paths(cluster, None, progress=False, engine=engine)
        assert summary.files == local_files and summary.files["ok"] > 100
        analysed = analyze_workspace(cluster, engine=engine)
    assert sorted(a.athlete_id for a in analysed.athletes) == ["ann", "bob", "cy"]
    assert "local cluster of 2 worker process(es)" in analysed.render()
    expected, got = result_tables(local), result_tables(cluster)
    assert len(expected["run_metrics"]) > 100 and len(expected["samples"]) > 10_000
    for table in COMPARED:
        pd.testing.assert_frame_equal(expected[table], got[table], check_exact=True, obj=table)

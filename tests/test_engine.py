"""The scale-out engine: ingest and analyze on a real dask LocalCluster of 2 worker processes give the same
warehouse tables as a local run (parsing per file and analysis per athlete on the workers; one writer)."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest

from bench.compare import COMPARED, result_tables
from pipeline.analyze.run import analyze_workspace
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.engine import open_engine, parse_cluster
from pipeline.errors import PipelineError
from pipeline.ingest.run import ingest_paths
from pipeline.workspace import Workspace

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

"""A small simulated squad written as real files, ingested and analysed once per session (the API,
status, squad page and notebook tests share it; they only read it)."""

from __future__ import annotations

import pytest

from pipeline.analyze.run import analyze_workspace
from pipeline.demo.squad import SquadDesign, write_squad
from pipeline.ingest.run import ingest_paths
from pipeline.report.build import build_reports
from pipeline.workspace import Workspace

# 4 block athletes (doses 0.5-2 sessions/week) and 2 teammates without a block, 34 weeks sampled every 20 s:
# enough for every squad table to have rows, small enough to build in about a minute.
SMALL_SQUAD = SquadDesign(n_block=4, n_control=2, weeks=34, block_start_week=19, sample_interval_s=20.0)


@pytest.fixture(scope="session")
def squad_ws(tmp_path_factory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("squad").resolve())
    for d in (ws.raw_dir, ws.processed_dir, ws.reports_dir):
        d.mkdir(parents=True)
    write_squad(ws.raw_dir, seed=11, design=SMALL_SQUAD)
    ingest_paths(ws, None, jobs=2, progress=False)
    analyze_workspace(ws)
    build_reports(ws)
    return ws

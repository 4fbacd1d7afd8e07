"""The warehouse interfaces on a real pipeline run: simulated athlete files -> ingest -> analyze.

One demo athlete (not all three) keeps this under half a minute; the squad is `make bench`'s job.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.analyze.run import analyze_workspace
from pipeline.demo.simulate import simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.checks import run_checks
from pipeline.warehouse.db import connect
from pipeline.warehouse.docs import example_queries
from pipeline.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def demo_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("demo_ws").resolve())
    athlete = simulate_athlete("gain", seed=2024, sample_interval_s=5.0)
    write_athlete(athlete, ws.raw_dir)
    _write_too_short_run(athlete, ws)
    ingest_paths(ws, None, jobs=2, progress=False)
    analyze_workspace(ws)
    return ws


def _write_too_short_run(athlete, ws: Workspace) -> None:
    """A 12-minute jog (warm-up + 2 min) a day after the last run: too short to be steady, so it is excluded.

    Nearly every simulated run is clean enough to be included, but the documented example queries include
    "runs excluded and why", which must return rows on a realistic warehouse.
    """
    from pipeline.demo.fit_writer import write_fit_activity

    last = athlete.activities.sort_values("start_time").iloc[-1]
    samples = athlete.samples[athlete.samples["activity_id"] == last["activity_id"]]
    samples = samples[samples["elapsed_s"] <= 12 * 60].copy()
    shift = pd.Timedelta(days=1)
    samples["ts"] = samples["ts"] + shift
    samples["activity_id"] = "short-jog"
    row = last.copy()
    row["activity_id"] = "short-jog"
    row["start_time"] = last["start_time"] + shift
    row["elapsed_s"] = row["timer_s"] = float(samples["elapsed_s"].max())
    row["distance_m"] = float(samples["distance_m"].max() - samples["distance_m"].min())
    row["source_format"] = "fit"
    write_fit_activity(ws.raw_dir / athlete.athlete_id / "short_jog.fit", row, samples)


def test_demo_warehouse_passes_every_check(demo_ws):
    result = run_checks(demo_ws)
    assert result.violations == [], result.render()


@pytest.mark.parametrize("query", example_queries(), ids=lambda q: q.split("\n")[0][:40])
def test_documented_example_query_returns_rows_on_the_demo(demo_ws, query):
    con = connect(demo_ws, read_only=True)
    try:
        rows = con.execute(query).fetchall()
    finally:
        con.close()
    assert rows, query


def test_demo_views_agree_with_the_tables(demo_ws):
    con = connect(demo_ws, read_only=True)
    try:
        runs, included = con.execute("SELECT count(*), count(*) FILTER (WHERE included) FROM runs").fetchone()
        assert (runs, included) == con.execute(
            "SELECT count(*), count(*) FILTER (WHERE included) FROM run_metrics").fetchone()
        assert runs > 100 and included > runs / 2
        assert con.execute("SELECT sum(runs) FROM monthly_economy").fetchone()[0] == runs
        headline = con.execute("SELECT verdict, change_pct FROM block_summary").fetchall()
        assert len(headline) >= 1 and all(v is not None for v, _ in headline)
    finally:
        con.close()


def test_demo_export_round_trips(demo_ws, tmp_path: Path):
    import pandas as pd

    from pipeline.warehouse.export import export_tables

    export_tables(demo_ws, tmp_path)
    con = connect(demo_ws, read_only=True)
    try:
        n_samples = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    finally:
        con.close()
    assert len(pd.read_parquet(tmp_path / "samples")) == n_samples

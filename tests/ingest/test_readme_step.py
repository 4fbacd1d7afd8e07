"""The README's step "remove the demo folders (data/raw/demo_*) and run make report again": afterwards the
warehouse and reports/ hold exactly what a workspace that only ever had your own folder holds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest_builders import START, Segment, fit_bytes
from pipeline.cli import cli
from pipeline.demo.write import write_demo
from pipeline.warehouse.contract import TABLES
from pipeline.warehouse.db import connect
from pipeline.warehouse.lifecycle import warehouse_athletes
from pipeline.workspace import Workspace

pytestmark = pytest.mark.slow

DEMO_FILES_KEPT = 8     # per demo athlete: enough for every stage to run, small enough to be quick
# Columns that record when or under which id a run happened, not what the data is.
RUN_STAMPS = {"ingested_at", "updated_at", "started_at", "finished_at", "analysis_run_id", "fetched_at"}


def _my_folder(raw: Path) -> None:
    me = raw / "me"
    me.mkdir(parents=True)
    for day in range(1, 9):
        (me / f"run{day:02d}.fit").write_bytes(fit_bytes([Segment(n=900, speed_m_s=3.0 + day * 0.01)],
                                                         start=START.replace(day=day)))
    (me / "strong.csv").write_text(
        "Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,RPE\n"
        + "".join(f"2024-05-{d:02d} 18:00:00,Legs,45m,Squat (Barbell),{k},100,5,0,0,\n"
                  for d in (2, 6, 9, 13) for k in (1, 2, 3)))


def _trimmed_demo(raw: Path) -> None:
    write_demo(raw, sample_interval_s=30)
    for folder in raw.glob("demo_*"):
        runs = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".fit", ".gpx"))
        for extra in runs[DEMO_FILES_KEPT:]:
            extra.unlink()


def _run(ws: Workspace) -> None:
    result = CliRunner().invoke(cli, ["--workspace", str(ws.root), "run", "--quiet"])
    assert result.exit_code == 0, result.output


def _content(ws: Workspace) -> dict[str, list[tuple]]:
    con = connect(ws, read_only=True)
    try:
        out = {}
        for name, table in TABLES.items():
            if name in ("pipeline_meta", "analysis_runs"):   # analysis_runs keeps every run's provenance
                continue
            cols = [c for c in table.column_names if c not in RUN_STAMPS]
            rows = con.execute(f"SELECT {', '.join(cols)} FROM {name}").fetchall()
            out[name] = sorted(map(repr, rows))
        return out
    finally:
        con.close()


def test_removing_the_demo_folders_leaves_exactly_your_own_data(tmp_path):
    ws = Workspace(tmp_path / "ws")
    (ws.root / "pipeline.toml").parent.mkdir(parents=True)
    (ws.root / "pipeline.toml").write_text("[weather]\nenabled = false\n")
    _trimmed_demo(ws.raw_dir)
    _my_folder(ws.raw_dir)
    _run(ws)
    assert {p.name for p in ws.reports_dir.iterdir() if p.is_dir()} == {"demo_faster", "demo_gain", "demo_heat",
                                                                        "me"}
    for folder in ws.raw_dir.glob("demo_*"):               # the README's step
        shutil.rmtree(folder)
    _run(ws)

    con = connect(ws, read_only=True)
    assert warehouse_athletes(con) == {"me"}
    assert con.execute("SELECT count(*) FROM source_files WHERE path NOT LIKE 'data/raw/me/%'").fetchone() == (0,)
    assert con.execute("SELECT DISTINCT athlete_id, status FROM analysis_runs").fetchall() == [("me", "ok")]
    con.close()
    assert {p.name for p in ws.reports_dir.iterdir() if p.is_dir()} == {"me"}
    assert "demo_" not in (ws.reports_dir / "index.html").read_text(encoding="utf-8")

    clean = Workspace(tmp_path / "clean")
    clean.root.mkdir()
    shutil.copy(ws.root / "pipeline.toml", clean.root / "pipeline.toml")
    _my_folder(clean.raw_dir)
    _run(clean)
    assert _content(ws) == _content(clean)

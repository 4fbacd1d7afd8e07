"""Batched loading: plain files in one transaction per batch give the same warehouse as loading file by
file; a batch that fails is retried file by file, so a bad file costs only itself; files that may be
duplicates, strength logs and changed paths take the careful per-file path."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest

from bench.compare import COMPARED
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_bytes, sha256_hex
from pipeline.ingest.load_batch import load_plain_or_retry, plain_files
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

# The staging tables, compared as the cluster bench compares them (without the moment a file was ingested).
STAGING = {t: COMPARED[t] for t in ("source_files", "activities", "samples", "laps", "strength_sessions",
                                    "strength_sets")}


def _write(raw_dir, athletes=("ann", "bob"), weeks=10):
    for k, a in enumerate(athletes):
        profile = dataclasses.replace(PROFILES["gain"], weeks=weeks, block_start_week=3)
        write_athlete(simulate_athlete(profile, 40 + k, sample_interval_s=30.0, athlete_id=a), raw_dir)


def _tables(ws: Workspace) -> dict[str, pd.DataFrame]:
    con = connect(ws, read_only=True)
    try:
        return {t: con.execute(f"{sql} ORDER BY ALL").df() for t, sql in STAGING.items()}
    finally:
        con.close()


def _parsed(ws: Workspace, athlete: str):
    """The athlete's run files as the reader parses them (real bytes through the real reader)."""
    out = []
    for path in sorted((ws.raw_dir / athlete).rglob("*.fit")):
        data = path.read_bytes()
        rel = ws.relative(path)
        out.append(read_bytes(data, path.name, ReadContext(path=rel, file_id=sha256_hex(data), athlete_id=athlete)))
    return out


@pytest.mark.slow
def test_batched_ingest_equals_file_by_file(tmp_path):
    batched, one_by_one = Workspace(tmp_path / "batched"), Workspace(tmp_path / "one")
    _write(batched.raw_dir)
    # the same run exported twice (FIT and GPX copy under another name): a duplicate inside the batch
    fit = sorted((batched.raw_dir / "ann").rglob("*.fit"))[3]
    shutil.copy(fit, fit.parent / f"copy_{fit.name}")
    shutil.copytree(batched.raw_dir, one_by_one.raw_dir)
    summary = ingest_paths(batched, None, jobs=1, progress=False)
    assert ingest_paths(one_by_one, None, jobs=1, progress=False, batch_files=0).n_batched == 0
    a, b = _tables(batched), _tables(one_by_one)
    # every run file but the twin pair (same bytes: the careful path) went through the batches
    assert summary.n_batched == a["source_files"]["format"].isin(["fit", "gpx"]).sum() - 2 > 50
    assert len(a["activities"]) > 50 and (a["source_files"]["status"] == "duplicate").sum() == 1
    for t in STAGING:
        pd.testing.assert_frame_equal(a[t], b[t], check_exact=True, obj=t)


def test_a_bad_file_in_a_batch_costs_only_itself(workspace):
    _write(workspace.raw_dir, athletes=("ann",), weeks=3)
    files = _parsed(workspace, "ann")
    assert len(files) >= 5 and all(f.status == "ok" for f in files)
    bad = files[2]
    samples = bad.samples.copy()
    samples.loc[samples.index[5], "ts"] = pd.NaT          # samples.ts is NOT NULL: this file cannot be stored
    files[2] = dataclasses.replace(bad, samples=samples)
    con = connect(workspace)
    try:
        assert all(plain_files(con, files, set(), set()))
        outcomes = load_plain_or_retry(con, files)
        rows = con.execute("SELECT path, status, message, n_samples FROM source_files ORDER BY path").fetchall()
        stored = con.execute("SELECT count(*) FROM samples").fetchone()[0]
    finally:
        con.close()
    assert [o.status for o in outcomes] == ["ok", "ok", "error"] + ["ok"] * (len(files) - 3)
    by_path = {r[0]: r for r in rows}
    assert by_path[bad.path][1] == "error" and by_path[bad.path][2].startswith("could not be stored: ")
    assert stored == sum(len(f.samples) for k, f in enumerate(files) if k != 2)   # nothing of the bad one


def test_only_plain_files_take_the_bulk_path(workspace):
    _write(workspace.raw_dir, athletes=("ann",), weeks=3)
    files = _parsed(workspace, "ann")
    con = connect(workspace)
    try:
        load_plain_or_retry(con, files[:2])                       # stored: their activities now exist
        again = files[1]                                          # same activity id and time as a stored one
        shifted = files[2].activities.assign(start_time=files[0].activities["start_time"].iloc[0]
                                             + pd.Timedelta(seconds=30))   # overlaps a stored activity
        overlap = dataclasses.replace(files[2], activities=shifted, path="ann/overlap.fit")
        twin_a, twin_b = files[3], dataclasses.replace(files[3], path="ann/twin.fit")   # same bytes twice
        fresh = files[4]
        verdict = plain_files(con, [again, overlap, twin_a, twin_b, fresh],
                              known_paths={f.path for f in files[:2]}, holders=set())
    finally:
        con.close()
    assert verdict == [False, False, False, False, True]

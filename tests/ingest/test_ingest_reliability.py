"""kill -9 in the middle of an ingest, then a re-run, equals one clean run; a second process is told 'busy'."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect, workspace_lock
from pipeline.workspace import Workspace


def _write_runs(raw) -> int:
    """Six weeks of one athlete's runs sampled every second (~80,000 samples in ~20 FIT and GPX files, and a
    strength log): enough work that the ingest is still running when it is killed (small files alone are
    read and loaded in one batch faster than the kill can land). Returns the number of files written."""
    profile = dataclasses.replace(PROFILES["gain"], weeks=6)
    return len(write_athlete(simulate_athlete(profile, 3, sample_interval_s=1.0, athlete_id="anna"), raw))


def _snapshot(ws) -> dict:
    con = connect(ws, read_only=True)
    try:
        return {
            "files": con.execute("SELECT path, file_id, status, n_samples FROM source_files ORDER BY path").fetchall(),
            "activities": con.execute("SELECT activity_id, n_samples, distance_m FROM activities ORDER BY 1").fetchall(),
            "samples": con.execute("SELECT activity_id, count(*), sum(heart_rate_bpm), sum(elapsed_s) FROM samples "
                                   "GROUP BY 1 ORDER BY 1").fetchall(),
        }
    finally:
        con.close()


def _cli(ws, *args) -> list[str]:
    return [sys.executable, "-m", "pipeline", "--workspace", str(ws.root), *args]


def test_kill_9_mid_ingest_then_rerun_equals_clean_run(tmp_path):
    killed, clean = Workspace(tmp_path / "killed"), Workspace(tmp_path / "clean")
    n_files = _write_runs(killed.raw_dir)
    shutil.copytree(killed.raw_dir, clean.raw_dir)
    proc = subprocess.Popen(_cli(killed, "ingest", "--jobs", "1", "--quiet"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # wait until the warehouse has been written to (its WAL exists), then kill without warning
    while time.monotonic() < deadline and not killed.warehouse_path.with_suffix(".duckdb.wal").exists():
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the ingest finished before it could be killed"
    partial = _snapshot(killed)
    assert len(partial["files"]) < n_files  # it really was interrupted
    stored = {activity_id: count for activity_id, count, _, _ in partial["samples"]}
    assert {a: n for a, n, _ in partial["activities"]} == stored   # nothing half-written

    rerun = subprocess.run(_cli(killed, "ingest", "--jobs", "1", "--quiet"), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    ingest_paths(clean, None, jobs=1, progress=False)
    assert _snapshot(killed) == _snapshot(clean)
    assert len(_snapshot(clean)["files"]) == n_files


def test_second_process_gets_busy_message(workspace):
    with workspace_lock(workspace, "ingest"):
        result = subprocess.run(_cli(workspace, "ingest", "--quiet"), capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: the workspace") and "busy" in result.stderr
    assert "Traceback" not in result.stderr

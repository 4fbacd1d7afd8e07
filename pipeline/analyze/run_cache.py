"""Per-run results kept between analyses, so re-analysing an athlete cleans only its new or changed runs.

Cleaning and summarising each run (:func:`pipeline.analyze.runs.run_process`) is most of an athlete's
analysis (~75 % for a 3-year athlete) and depends only on that run: its activities row (file sha256, sample
count, sport, times; the archive weather merged in), the ``[analysis]`` settings and the analysis code (the
whole ``pipeline/analyze`` folder: heat, sensor and season code included). After each analysis the runs'
results (the ``run_metrics`` row before the athlete model and the steady samples the model, heat model and
sensor guard read, :data:`~pipeline.analyze.runs.STEADY_COLUMNS`) are written to
``data/processed/run_cache/<athlete>.pkl`` keyed by that run's digest; the next analysis of the athlete
reuses every run whose digest is unchanged and reads samples only for the others. The athlete-level model,
block effects, negative controls and calibration are always recomputed from all runs, in the order a fresh
analysis takes them, so a reused run gives exactly the numbers a fresh one would (tested).

The cache is only ever a shortcut: a missing, unreadable or foreign file means "recompute", and deleting
the folder is always safe. It is a pickle written by this pipeline into the workspace's own processed data.
Its size is the athlete's steady samples (7 float columns a sample, included runs only): 73 MB for a 3-year
athlete recorded every second, ~4 MB for a 9-month demo athlete at the demo's sampling (measured).
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from pipeline.analyze.fingerprint import ANALYSIS_CODE
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.runs import RunResult
from pipeline.digest import code_digest, parts_digest
from pipeline.workspace import Workspace, validate_athlete_id

CACHE_FOLDER = "run_cache"
CACHE_FORMAT = 2      # 2: whole run results (1 held model bins, before verdicts)


def run_cache_path(ws: Workspace, athlete_id: str) -> Path:
    return ws.processed_dir / CACHE_FOLDER / f"{validate_athlete_id(athlete_id)}.pkl"


def run_digests(activities: pd.DataFrame, params: AnalysisParams) -> dict[str, str]:
    """activity_id -> digest of everything its reduction depends on (row values, settings, code)."""
    if not len(activities):
        return {}
    shared = parts_digest({"analysis": json.dumps(asdict(params), sort_keys=True),
                           "code": code_digest(*ANALYSIS_CODE)})
    rows = pd.util.hash_pandas_object(activities.reset_index(drop=True), index=False).to_numpy()
    return {a: f"{shared[:32]}:{h:016x}" for a, h in zip(activities["activity_id"], rows)}


def reusable_runs(ws: Workspace, athlete_id: str, digests: dict[str, str]) -> dict[str, RunResult]:
    """The cached reductions whose digest matches the run's current one."""
    try:
        with open(run_cache_path(ws, athlete_id), "rb") as fh:
            stored = pickle.load(fh)
        if stored.get("format") != CACHE_FORMAT:
            return {}
        entries = stored["entries"]
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError, TypeError, ValueError,
            ImportError):
        return {}
    return {a: result for a, (digest, result) in entries.items() if digests.get(a) == digest}


def save_runs(ws: Workspace, athlete_id: str, digests: dict[str, str], results: list[RunResult]) -> None:
    """Replace the athlete's cache with these cleaned runs (written to a temporary file, then renamed)."""
    path = run_cache_path(ws, athlete_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {r.row["activity_id"]: (digests[r.row["activity_id"]], r)
               for r in results if r.row.get("activity_id") in digests}
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        pickle.dump({"format": CACHE_FORMAT, "entries": entries}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def drop_runs(ws: Workspace, athlete_id: str) -> None:
    """Forget an athlete's cached runs (the athlete is gone from the warehouse)."""
    run_cache_path(ws, athlete_id).unlink(missing_ok=True)

"""Per-run results kept between analyses, so re-analysing an athlete cleans only its new or changed runs.

Cleaning and summarising each run (:func:`pipeline.analyze.runs.run_process`) is most of an athlete's first
analysis and depends only on that run: its activities row (file sha256, sample count, sport, times; the
archive weather merged in), the ``[analysis]`` settings and the analysis code (the whole
``pipeline/analyze`` folder). After each analysis the runs' results (:class:`~pipeline.analyze.runs.RunResult`:
the ``run_metrics`` row before the athlete model, and for an included run its economy-model bins and the
range of its steady pace, which is all the athlete-level steps read of its samples) are written to
``data/processed/run_cache/<athlete>.pkl`` keyed by that run's digest; the next analysis of the athlete
reuses every run whose digest is unchanged and reads samples only for the others. The athlete-level model,
heat, block effects, negative controls and calibration are always recomputed from all runs, in the order a
fresh analysis takes them, so a reused run gives exactly the numbers a fresh one would (tested).

The cache is only ever a shortcut: a missing, unreadable or foreign file means "recompute", and deleting
the folder is always safe. It is a pickle written by this pipeline into the workspace's own processed data:
a dict row and a small array per run, ~0.7 KB a run (0.4 MB for a 3-year athlete recorded every second,
read in a few milliseconds; measured). Format 2 held each run's steady samples (73 MB for the same athlete).
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
CACHE_FORMAT = 3      # 3: rows, model bins and pace range (2: with steady samples; 1: before verdicts)


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

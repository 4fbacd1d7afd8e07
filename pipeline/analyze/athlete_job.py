"""One athlete's analysis as a job: everything it needs read from the warehouse first (:func:`athlete_job`),
then a pure function of the job (:func:`run_athlete_job`) that can run here or on a cluster worker.

The job carries the athlete's activities, strength sessions and blocks, the cleaned runs it can reuse
(:mod:`pipeline.analyze.run_cache`) and the samples of the other runs only. Run here, the samples are a
stream read a batch of activities at a time; sent to a worker, they are materialised (one athlete at a time,
a bounded number in flight), because a worker cannot read the warehouse the single writer holds open.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import duckdb
import pandas as pd

from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete
from pipeline.analyze.calibration import SQUAD_CLASSES
from pipeline.analyze.fingerprint import uses_pooled_inputs
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import (AthleteAnalysis, athlete_from_runs, athlete_process, athlete_runs, recalibrate,
                                      squad_controls, stored_control_sets)
from pipeline.analyze.run_cache import reusable_runs, run_digests
from pipeline.analyze.runs import RunResult
from pipeline.analyze.store import check_computable_times, load_athlete_inputs, samples_by_activity, stored_controls
from pipeline.workspace import Workspace


@dataclass
class AthleteJob:
    """Inputs of one athlete's analysis (see the module docstring)."""

    athlete_id: str
    activities: pd.DataFrame
    samples: Iterable[tuple[str, pd.DataFrame]]   # (activity_id, samples) of the runs not reused
    reuse: dict[str, RunResult]
    strength_sessions: pd.DataFrame
    blocks: pd.DataFrame
    params: AnalysisParams
    ref_speed_m_s: float | None
    run_digests: dict[str, str]
    started_at: pd.Timestamp


@dataclass
class AthleteResult:
    """A job's outcome: the analysis and the cleaned runs to cache under their digests, or the error that
    stopped it (``analysis`` None; the caller names the activity and file)."""

    athlete_id: str
    analysis: AthleteAnalysis | None
    runs: list[RunResult]
    run_digests: dict[str, str]
    started_at: pd.Timestamp
    n_reused: int = 0
    error: BaseException | None = None


def athlete_job(con: duckdb.DuckDBPyConnection, ws: Workspace, athlete_id: str, params: AnalysisParams,
                block_params: BlockParams, materialise: bool = False, use_cache: bool = True) -> AthleteJob:
    """Read one athlete's inputs (reads only). ``materialise``: samples as a list (to send to a worker)."""
    started = pd.Timestamp.now(tz="UTC")
    inputs = load_athlete_inputs(con, athlete_id)
    blocks = strength_blocks_for_athlete(athlete_id, inputs.strength_sessions, inputs.strength_sets,
                                         inputs.declared_blocks, block_params)
    digests = run_digests(inputs.activities, params)
    reuse = reusable_runs(ws, athlete_id, digests) if use_cache else {}
    samples = _with_reused(samples_by_activity(con, [a for a in inputs.run_activity_ids if a not in reuse]),
                           inputs.activities, reuse)
    return AthleteJob(athlete_id, inputs.activities, list(samples) if materialise else samples, reuse,
                      inputs.strength_sessions, blocks, params, inputs.ref_speed_m_s, digests, started)


def _with_reused(fresh: Iterator[tuple[str, pd.DataFrame]], activities: pd.DataFrame,
                 reuse: dict[str, RunResult]) -> Iterator[tuple[str, pd.DataFrame | None]]:
    """The samples stream (in activity_id order, :func:`~pipeline.analyze.store.samples_by_activity`) with
    ``(activity_id, None)`` for each reused run that has samples, at the place its samples would have come:
    :func:`~pipeline.analyze.process.athlete_runs` then orders reused and fresh runs exactly as a fresh
    analysis does (the model's sums run in that order, so the numbers are identical, not just close)."""
    with_samples = activities.loc[pd.to_numeric(activities["n_samples"], errors="coerce").fillna(0) > 0,
                                  "activity_id"]
    reused = ((a, None) for a in sorted(a for a in with_samples if a in reuse))
    return heapq.merge(fresh, reused, key=lambda pair: pair[0])


def run_athlete_job(job: AthleteJob | AthleteResult) -> AthleteResult:
    """The pure analysis of one job (no warehouse, no files), here or on a worker. ANY failure is returned,
    not raised, so one athlete never costs another its results (a job that already failed while being
    read passes through as it is)."""
    if isinstance(job, AthleteResult):
        return job
    try:
        results, not_runs = athlete_runs(job.activities, job.samples, job.params, job.reuse)
        analysis = athlete_from_runs(job.athlete_id, job.activities, results, not_runs, job.strength_sessions,
                                     job.blocks, job.params, job.ref_speed_m_s)
    except Exception as e:  # noqa: BLE001 - isolation boundary: the caller stores and shows the reason
        return AthleteResult(job.athlete_id, None, [], {}, job.started_at, error=e)
    return AthleteResult(job.athlete_id, analysis, results, job.run_digests, job.started_at,
                         sum(1 for r in results if r.row["activity_id"] in job.reuse))


def analyze_athlete(con: duckdb.DuckDBPyConnection, athlete_id: str, params: AnalysisParams,
                    block_params: BlockParams) -> AthleteAnalysis:
    """Load one athlete's staging rows and run :func:`athlete_process` (reads only; no cache, no fingerprint:
    what the Python API uses to re-analyse in memory with other settings)."""
    check_computable_times(con, athlete_id)
    inputs = load_athlete_inputs(con, athlete_id)
    blocks = strength_blocks_for_athlete(athlete_id, inputs.strength_sessions, inputs.strength_sets,
                                         inputs.declared_blocks, block_params)
    return athlete_process(athlete_id, inputs.activities, samples_by_activity(con, inputs.run_activity_ids),
                           inputs.strength_sessions, blocks, params, inputs.ref_speed_m_s)


def draws_on_squad(analysis: AthleteAnalysis) -> bool:
    """Whether this analysis's calibration depends on other athletes' controls
    (:func:`pipeline.analyze.fingerprint.uses_pooled_inputs` for its calibration class)."""
    return uses_pooled_inputs(analysis.block_effects, analysis.calibration_class in SQUAD_CLASSES)


def slim(analysis: AthleteAnalysis) -> AthleteAnalysis:
    """What the squad calibration pass keeps of an analysis already stored: the raw fits, controls, notes and
    block effects (a few rows a block); the run rows, weekly rows and model are dropped, so that pass holds
    kilobytes per athlete, not its runs."""
    return replace(analysis, run_metrics=analysis.run_metrics.iloc[0:0], weekly=analysis.weekly.iloc[0:0],
                   placebo_checks=analysis.placebo_checks.iloc[0:0], model=None)


def squad_recalibrated(con: duckdb.DuckDBPyConnection, pending: list[AthleteAnalysis], analysed: list,
                       attempted: list[str]) -> Iterator[tuple[AthleteAnalysis, AthleteAnalysis | BaseException]]:
    """The squad calibration pass: each of ``pending`` (analyses whose own negative controls were too few)
    calibrated on the squad's pooled controls: those of every athlete analysed now (``analysed``: their
    control sets) plus the stored ones of athletes not attempted now (a failed athlete's are left out: they
    are removed). Yields (analysis, recalibrated analysis or the exception that stopped it)."""
    squad = squad_controls(list(analysed) + stored_control_sets(stored_controls(con, attempted)))
    for analysis in pending:
        try:
            yield analysis, recalibrate(analysis, squad)
        except Exception as e:  # noqa: BLE001 - isolation boundary: that athlete's error only
            yield analysis, e


def squad_calibrated_alone(con: duckdb.DuckDBPyConnection, analysis: AthleteAnalysis) -> AthleteAnalysis:
    """One athlete's analysis (e.g. in memory, with changed settings) calibrated as ``pipeline analyze``
    would: on the squad's stored controls (every other athlete's) where its own are too few."""
    sets = list(analysis.controls.values()) + stored_control_sets(stored_controls(con, [analysis.athlete_id]))
    return recalibrate(analysis, squad_controls(sets))

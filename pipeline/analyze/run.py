"""``pipeline analyze``, as a recipe: for each athlete whose inputs changed, read its staging rows, run the
pure analysis, then replace that athlete's rows of the analysis tables in one transaction.

1. which athletes, and which of them are out of date (:func:`pipeline.analyze.fingerprint.analysis_plan`:
   the fingerprint of each athlete's inputs against the one stored with its latest analysis);
2. per athlete to redo, one at a time and in isolation (here, or on a cluster: :func:`analysed_stream`):
   its athlete.toml checked, its inputs (:func:`~pipeline.analyze.store.load_athlete_inputs`, after
   :func:`~pipeline.analyze.store.check_computable_times`), its strength blocks
   (:func:`pipeline.analyze.blocks.strength_blocks_for_athlete`; declared win), the runs it can reuse
   (:mod:`pipeline.analyze.run_cache`), then the pure analysis
   (:func:`pipeline.analyze.athlete_job.run_athlete_job`) over the other runs' samples, streamed a batch
   at a time. ANY failure becomes that athlete's error (the reason naming the settings file and key, or the
   activity and file(s) involved: :func:`~pipeline.analyze.store.describe_failure`), never the others';
3. write its ``run_metrics``, ``weekly``, ``strength_blocks``, ``block_effects`` and ``placebo_checks`` rows
   and one ``analysis_runs`` row (when, pipeline version, settings, fitted model values, input fingerprint)
   that every row links to, in one transaction (:func:`~pipeline.analyze.store.replace_analysis_rows`), so
   an interrupted analyze leaves each athlete's rows whole, old or new, and a re-run finishes the rest (a
   failed athlete's old rows are removed: they no longer describe its data). The block verdicts are
   calibrated on the athlete's own negative controls, or, where those are too few, the default for now;
4. a second pass over the athletes of step 3 calibrated for want of their own controls: calibrated on the
   squad's (every athlete analysed now, plus the stored controls of athletes not analysed now)
   (:func:`_squad_calibration`, :func:`pipeline.analyze.process.recalibrate`), their ``block_effects`` rows
   replaced. Step 3 stores such an analysis with ``pooled_fingerprint`` = :data:`POOL_PENDING`, so an
   analyze interrupted before this pass redoes it; the pass keeps only kilobytes per athlete (controls,
   fits, notes), so memory does not grow with the athletes' runs. A failure here is that athlete's error;
5. the squad, when any athlete changed: pooled effects, teammates as controls, dose-response over every
   athlete in the warehouse (:func:`pipeline.analyze.squad_store.analyze_squad`), pooling each block's
   CALIBRATED estimate, so it runs after steps 3-4 (docs/squad.md, "Order"); a failure there is reported,
   not raised, since the athletes' own results are already stored;
6. return the one-screen summary (:mod:`pipeline.analyze.summary`) with the time taken, failures included;
   the CLI exits 1 when there are any.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
from tqdm import tqdm

import pipeline

from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete
from pipeline.analyze.economy import model_provenance
from pipeline.analyze.fingerprint import (POOL_PENDING, AnalysisPlan, analysis_plan, settings_json,
                                          squad_input_fingerprint, store_squad_fingerprint, stored_squad_fingerprint)
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.run_cache import drop_runs, save_runs
from pipeline.analyze.store import (athlete_ids, check_computable_times, describe_failure, replace_analysis_rows,
                                    replace_block_effects)
from pipeline.analyze.summary import AnalyzeSummary, AthleteFailure, athlete_summary
from pipeline.errors import PipelineError
from pipeline.rawroot import RawListing, RawRoot, RawUnreadable, athlete_config, top_level_listing
from pipeline.warehouse.db import connect, recorded_raw_root
from pipeline.workspace import Workspace

if TYPE_CHECKING:
    from pipeline.analyze.athlete_job import AthleteResult
    from pipeline.analyze.process import AthleteAnalysis


def _athlete_machinery():
    """The per-athlete analysis (:mod:`pipeline.analyze.athlete_job` and with it the estimators and
    scipy.stats), imported only once an athlete is to be analysed, for start-up time: it adds ~0.5-0.8 s on
    top of this module's (measured on the 2-core bench machine), which a re-run with nothing new would
    otherwise pay for nothing. Not to dodge an import cycle: there is none."""
    from pipeline.analyze import athlete_job

    return athlete_job


def _squad_machinery():
    """The squad analysis (:mod:`pipeline.analyze.squad_store`: pymare and scipy), imported only when the
    squad tables are to be recomputed, for start-up time: 1.0-1.3 s measured on the 2-core bench machine,
    paid for nothing when no athlete's analysis changed. Not to dodge an import cycle: there is none."""
    from pipeline.analyze import squad_store

    return squad_store


def prepared_job(con: duckdb.DuckDBPyConnection, ws: Workspace, athlete_id: str, params: AnalysisParams,
                 block_params: BlockParams, materialise: bool = False, root: RawRoot | None = None,
                 listing: RawListing | None = None):
    """The athlete's job (:func:`~pipeline.analyze.athlete_job.athlete_job`) after its athlete.toml and times
    are checked, or, if reading or checking failed, the failed :class:`AthleteResult` itself (isolation).
    ``root``: where athlete.toml is (:mod:`pipeline.rawroot`; default the workspace's data/raw), ``listing``
    its athlete folders when it is a URL."""
    started = pd.Timestamp.now(tz="UTC")
    try:
        _check_athlete_toml(root or RawRoot(), ws, athlete_id, listing)
        check_computable_times(con, athlete_id)
        return _athlete_machinery().athlete_job(con, ws, athlete_id, params, block_params, materialise=materialise)
    except Exception as e:  # noqa: BLE001 - isolation boundary: the reason is stored and shown, never lost
        return _athlete_machinery().AthleteResult(athlete_id, None, [], {}, started, error=e)


def _check_athlete_toml(root: RawRoot, ws: Workspace, athlete_id: str, listing: RawListing | None) -> None:
    """A bad athlete.toml is this athlete's error; one on a URL root that cannot be reached now is not
    (ingest read it, or said it could not, and the analysis reads only the warehouse)."""
    try:
        athlete_config(root, ws, athlete_id, listing)
    except RawUnreadable:
        pass


def _athlete_folders(root: RawRoot) -> RawListing | None:
    """A URL root's athlete folders, listed once per analyze (None: local, or not reachable now)."""
    try:
        return top_level_listing(root)
    except RawUnreadable:
        return None


def analysed_stream(con: duckdb.DuckDBPyConnection, ws: Workspace, ids: list[str], params: AnalysisParams,
                    block_params: BlockParams, engine=None) -> Iterator[AthleteResult]:
    """Each athlete's :class:`AthleteResult`, one athlete at a time: here, or on the cluster of ``engine``
    (:class:`pipeline.engine.Engine`; jobs read here, a bounded number in flight, results in order)."""
    if not ids:
        return
    root = recorded_raw_root(con, ws)
    listing = _athlete_folders(root)
    jobs = (prepared_job(con, ws, a, params, block_params, materialise=engine is not None, root=root,
                         listing=listing) for a in ids)
    run_job = _athlete_machinery().run_athlete_job
    if engine is None:
        yield from map(run_job, jobs)
    else:
        yield from engine.stream(run_job, jobs)


def _failure_message(con: duckdb.DuckDBPyConnection, result: AthleteResult) -> str:
    if isinstance(result.error, PipelineError):
        return str(result.error)
    return describe_failure(con, result.athlete_id, result.error)


def _analysis_run(result: AthleteResult, message: str | None, params: AnalysisParams, block_params: BlockParams,
                  plan: AnalysisPlan) -> dict:
    """The ``analysis_runs`` row of one athlete's analysis: ok with the fitted model's values, or error with
    its reason (model columns NULL); both with the fingerprint of its inputs (and the pooled inputs' digest
    when it drew on the squad's results)."""
    analysis = result.analysis
    fp = plan.fingerprints[result.athlete_id]
    rm = analysis.run_metrics if analysis is not None else None
    return {"analysis_run_id": uuid.uuid4().hex, "athlete_id": result.athlete_id,
            "started_at": result.started_at, "finished_at": pd.Timestamp.now(tz="UTC"),
            "status": "ok" if analysis is not None else "error", "message": message,
            "pipeline_version": pipeline.__version__, "settings_json": settings_json(params, block_params),
            "n_runs": None if rm is None else len(rm),
            "n_included": None if rm is None else (int(rm["included"].sum()) if len(rm) else 0),
            **model_provenance(analysis.model if analysis is not None else None),
            "input_fingerprint": fp.value, "input_parts_json": json.dumps(fp.parts, sort_keys=True),
            "pooled_fingerprint": POOL_PENDING if analysis is not None and _athlete_machinery().draws_on_squad(analysis)
            else None}


def _non_default_settings(params: AnalysisParams) -> str | None:
    """'min_steady_s = 7200.0, ...' for the settings that differ from the defaults (for the summary's hint)."""
    changed = [f"{f.name} = {getattr(params, f.name)!r}" for f in fields(params)
               if getattr(params, f.name) != getattr(AnalysisParams(), f.name)]
    return ", ".join(changed) or None


def _analyze_squad(con: duckdb.DuckDBPyConnection, config: dict, params: AnalysisParams) -> str | None:
    """Step 5, isolated: the athletes' results are stored by now, so a failure of the squad analysis is a
    reason in the summary (and exit 1), not an exception that would cost the report. Settings errors (a
    PipelineError) stop the command as everywhere."""
    try:
        _squad_machinery().analyze_squad(con, config, params)
        return None
    except PipelineError:
        raise
    except Exception as e:  # noqa: BLE001 - isolation boundary: named in the summary, the CLI exits 1
        return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def analyze_workspace(ws: Workspace, athlete_id: str | None = None, force: bool = False, progress: bool = False,
                      engine=None) -> AnalyzeSummary:
    """Compute the analysis tables from the staging tables for every athlete (or one) whose inputs changed.

    Parameters come from pipeline.toml: ``[analysis]`` (:class:`AnalysisParams`) and ``[blocks]``
    (:class:`BlockParams`); invalid ones stop the command (they concern every athlete). ``force`` redoes
    athletes whose inputs did not change; ``progress`` shows a bar per athlete on a terminal; ``engine``
    (``--cluster``) analyses athletes on a dask cluster. Each athlete is analysed in isolation; the summary
    lists the failures. The caller holds the workspace lock.
    """
    clock = (time.perf_counter(), time.process_time())
    config = ws.pipeline_config()
    params = AnalysisParams.from_config(config.get("analysis"))
    block_params = BlockParams.from_config(config)
    con = connect(ws)
    try:
        plan = analysis_plan(con, ws, athlete_ids(con, None), athlete_ids(con, athlete_id),     # 1
                             settings_json(params, block_params), force)
        summary = AnalyzeSummary(settings_note=_non_default_settings(params), up_to_date=plan.up_to_date,
                                 removed=plan.removed, where=engine.description if engine is not None else "")
        calibration = SquadPass()
        with tqdm(total=len(plan.todo), unit="athlete", desc="analyze", disable=None if progress else True,
                  leave=False) as bar:
            for result in analysed_stream(con, ws, list(plan.todo), params, block_params, engine):   # 2
                _store_result(con, ws, result, params, block_params, plan, summary, calibration)  # 3
                bar.update()
        _squad_calibration(con, calibration, list(plan.todo), (params, block_params), plan, summary)  # 4
        _remove_athletes(con, ws, plan.removed)
        summary.squad, summary.squad_error = _squad_step(con, config, params, force)             # 5
    finally:
        con.close()
    summary.seconds, summary.cpu_seconds = time.perf_counter() - clock[0], time.process_time() - clock[1]
    return summary                                                                               # 6


@dataclass
class SquadPass:
    """What step 4 needs of the athletes stored in step 3: every analysed athlete's negative-control sets
    and, for those calibrated for want of their own controls, the slimmed analysis to recalibrate with its
    ``analysis_runs`` id (kilobytes per athlete: fits, controls, notes; never runs or samples)."""

    control_sets: list = field(default_factory=list)
    pending: list[tuple[AthleteAnalysis, str]] = field(default_factory=list)


def _store_result(con: duckdb.DuckDBPyConnection, ws: Workspace, result: AthleteResult, params: AnalysisParams,
                  block_params: BlockParams, plan: AnalysisPlan, summary: AnalyzeSummary,
                  calibration: SquadPass) -> None:
    """Step 3 for one athlete: its rows and analysis_runs row in one transaction, its runs cached; what the
    squad calibration pass needs kept aside."""
    message = None if result.analysis is not None else _failure_message(con, result)
    analyses = [result.analysis] if result.analysis is not None else []
    row = _analysis_run(result, message, params, block_params, plan)
    replace_analysis_rows(con, [result.athlete_id], analyses, pd.DataFrame([row]))
    if result.analysis is not None:
        save_runs(ws, result.athlete_id, result.run_digests, result.runs)
        summary.athletes.append(athlete_summary(result.analysis))
        calibration.control_sets.extend(result.analysis.controls.values())
        if row["pooled_fingerprint"] is not None:
            calibration.pending.append((_athlete_machinery().slim(result.analysis), row["analysis_run_id"]))
    else:
        summary.failures.append(AthleteFailure(result.athlete_id, message or "failed"))


def _squad_calibration(con: duckdb.DuckDBPyConnection, calibration: SquadPass, attempted: list[str],
                       settings: tuple[AnalysisParams, BlockParams], plan: AnalysisPlan,
                       summary: AnalyzeSummary) -> None:
    """Step 4: the athletes analysed now whose own negative controls were too few, recalibrated on the
    squad's (:func:`pipeline.analyze.athlete_job.squad_recalibrated`); their block_effects rows replaced and
    their pooled inputs' digest recorded. A failure is that athlete's error only (its rows removed)."""
    if not calibration.pending:
        return
    run_ids = {a.athlete_id: run_id for a, run_id in calibration.pending}
    by_id = {s.athlete_id: s for s in summary.athletes}
    pending = [a for a, _ in calibration.pending]
    for analysis, out in _athlete_machinery().squad_recalibrated(con, pending, calibration.control_sets, attempted):
        if isinstance(out, BaseException):
            failed = _athlete_machinery().AthleteResult(analysis.athlete_id, None, [], {},
                                                        pd.Timestamp.now(tz="UTC"), error=out)
            message = _failure_message(con, failed)
            replace_analysis_rows(con, [analysis.athlete_id], [],
                                  pd.DataFrame([_analysis_run(failed, message, *settings, plan)]))
            summary.athletes.remove(by_id[analysis.athlete_id])
            summary.failures.append(AthleteFailure(analysis.athlete_id, message))
            continue
        replace_block_effects(con, out, run_ids[analysis.athlete_id], plan.pool)
        by_id[analysis.athlete_id].headline = out.headline.to_dict("records")


def _remove_athletes(con: duckdb.DuckDBPyConnection, ws: Workspace, removed: list[str]) -> None:
    """Analysis rows (and cached runs) of athletes the warehouse no longer holds go."""
    if removed:
        replace_analysis_rows(con, removed, [], pd.DataFrame())
        for a in removed:
            drop_runs(ws, a)


def _squad_step(con: duckdb.DuckDBPyConnection, config: dict, params: AnalysisParams,
                force: bool) -> tuple[str, str | None]:
    """Recompute the squad tables when what they are computed from changed (any athlete's analysis, the
    settings, the code): ('recomputed' | 'up to date' | 'failed', the failure's reason)."""
    # [squad] as written (its defaults are code, in the code digest); validated when the squad is recomputed
    squad_settings = json.dumps({"squad": config.get("squad") or {}, "analysis": asdict(params)}, sort_keys=True,
                                default=str)
    current = squad_input_fingerprint(con, squad_settings)
    if not force and stored_squad_fingerprint(con) == current:
        return "up to date", None
    error = _analyze_squad(con, config, params)
    if error is not None:
        return "failed", error
    store_squad_fingerprint(con, current)
    return "recomputed", None

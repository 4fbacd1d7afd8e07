"""``pipeline analyze``, as a recipe: for each athlete whose inputs changed, read its staging rows, run the
pure analysis, then replace that athlete's rows of the analysis tables in one transaction.

1. which athletes, and which of them are out of date (:func:`pipeline.analyze.fingerprint.analysis_plan`:
   the fingerprint of each athlete's inputs against the one stored with its latest analysis);
2. per athlete to redo, one at a time (here, or on a cluster: :func:`analysed_stream`): its inputs
   (:func:`~pipeline.analyze.store.load_athlete_inputs`), its strength blocks
   (:func:`pipeline.analyze.blocks.strength_blocks_for_athlete`; declared win), the runs it can reuse
   (:mod:`pipeline.analyze.run_cache`), then the pure analysis
   (:func:`pipeline.analyze.athlete_job.run_athlete_job`) over the other runs' samples, streamed a batch
   at a time;
3. write its ``run_metrics``, ``weekly``, ``strength_blocks``, ``block_effects`` and ``placebo_checks`` rows
   and one ``analysis_runs`` row (when, pipeline version, settings, fitted model values, input fingerprint)
   that every row links to, in one transaction (:func:`~pipeline.analyze.store.replace_analysis_rows`), so
   an interrupted analyze leaves each athlete's rows whole, old or new, and a re-run finishes the rest;
4. the squad, when any athlete changed: pooled effects, teammates as controls, dose-response over every
   athlete in the warehouse (:func:`pipeline.analyze.squad_store.analyze_squad`);
5. return the one-screen summary (:mod:`pipeline.analyze.summary`) with the time taken.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict

import duckdb
import pandas as pd
from tqdm import tqdm

import pipeline

from pipeline.analyze.athlete_job import AthleteResult, athlete_job, run_athlete_job
from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete
from pipeline.analyze.economy import model_provenance
from pipeline.analyze.fingerprint import (AnalysisPlan, analysis_plan, settings_json, squad_input_fingerprint,
                                          store_squad_fingerprint, stored_squad_fingerprint, uses_pooled_inputs)
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import AthleteAnalysis, athlete_process
from pipeline.analyze.run_cache import drop_runs, save_runs
from pipeline.analyze.squad import SquadParams
from pipeline.analyze.squad_store import analyze_squad
from pipeline.analyze.store import athlete_ids, load_athlete_inputs, replace_analysis_rows, samples_by_activity
from pipeline.analyze.summary import AnalyzeSummary, athlete_summary
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace


def analyze_athlete(con: duckdb.DuckDBPyConnection, athlete_id: str, params: AnalysisParams,
                    block_params: BlockParams) -> AthleteAnalysis:
    """Load one athlete's staging rows and run :func:`athlete_process` (reads only)."""
    inputs = load_athlete_inputs(con, athlete_id)
    blocks = strength_blocks_for_athlete(athlete_id, inputs.strength_sessions, inputs.strength_sets,
                                         inputs.declared_blocks, block_params)
    return athlete_process(athlete_id, inputs.activities, samples_by_activity(con, inputs.run_activity_ids),
                           inputs.strength_sessions, blocks, params, inputs.ref_speed_m_s)


def _analysis_run(result: AthleteResult, params: AnalysisParams, block_params: BlockParams,
                  plan: AnalysisPlan) -> dict:
    """The ``analysis_runs`` row of one athlete's (successful) analysis: the fitted model's values and the
    fingerprint of its inputs (with the pooled inputs' digest when it drew on the squad's results)."""
    analysis = result.analysis
    fp = plan.fingerprints[analysis.athlete_id]
    rm = analysis.run_metrics
    return {"analysis_run_id": uuid.uuid4().hex, "athlete_id": analysis.athlete_id, "started_at": result.started_at,
            "finished_at": pd.Timestamp.now(tz="UTC"), "status": "ok", "message": None,
            "pipeline_version": pipeline.__version__, "settings_json": settings_json(params, block_params),
            "n_runs": len(rm), "n_included": int(rm["included"].sum()) if len(rm) else 0,
            **model_provenance(analysis.model),
            "input_fingerprint": fp.value, "input_parts_json": json.dumps(fp.parts, sort_keys=True),
            "pooled_fingerprint": plan.pool if uses_pooled_inputs(analysis.block_effects) else None}


def analysed_stream(con: duckdb.DuckDBPyConnection, ws: Workspace, ids: list[str], params: AnalysisParams,
                    block_params: BlockParams, engine=None) -> Iterator[AthleteResult]:
    """Each athlete's :class:`AthleteResult`, one athlete at a time: here, or on the cluster of ``engine``
    (:class:`pipeline.engine.Engine`; jobs read here, a bounded number in flight, results in order)."""
    if engine is None:
        for a in ids:
            yield run_athlete_job(athlete_job(con, ws, a, params, block_params))
        return
    jobs = (athlete_job(con, ws, a, params, block_params, materialise=True) for a in ids)
    yield from engine.stream(run_athlete_job, jobs)


def analyze_workspace(ws: Workspace, athlete_id: str | None = None, force: bool = False, progress: bool = False,
                      engine=None) -> AnalyzeSummary:
    """Compute the analysis tables from the staging tables for every athlete (or one) whose inputs changed.

    Parameters come from pipeline.toml: ``[analysis]`` (:class:`AnalysisParams`) and ``[blocks]``
    (:class:`BlockParams`). ``force`` redoes athletes whose inputs did not change; ``progress`` shows a bar
    per athlete on a terminal; ``engine`` (``--cluster``) analyses athletes on a dask cluster. The caller
    holds the workspace lock.
    """
    clock = (time.perf_counter(), time.process_time())
    config = ws.pipeline_config()
    params = AnalysisParams.from_config(config.get("analysis", {}))
    block_params = BlockParams.from_config(config)
    con = connect(ws)
    try:
        all_ids = athlete_ids(con, None)                                                # 1
        plan = analysis_plan(con, ws, all_ids, athlete_ids(con, athlete_id), settings_json(params, block_params),
                             force)
        summaries = []
        bar = tqdm(total=len(plan.todo), unit="athlete", desc="analyze", disable=None if progress else True,
                   leave=False)
        with bar:
            for result in analysed_stream(con, ws, list(plan.todo), params, block_params, engine):   # 2
                replace_analysis_rows(con, [result.analysis.athlete_id], [result.analysis],       # 3
                                      pd.DataFrame([_analysis_run(result, params, block_params, plan)]))
                save_runs(ws, result.analysis.athlete_id, result.run_digests, result.runs)
                summaries.append(athlete_summary(result.analysis))
                bar.update()
        _remove_athletes(con, ws, plan.removed)
        squad = _squad_step(con, config, params, force)                                  # 4
    finally:
        con.close()
    return AnalyzeSummary(summaries, up_to_date=plan.up_to_date, removed=plan.removed, squad=squad,   # 5
                          seconds=time.perf_counter() - clock[0], cpu_seconds=time.process_time() - clock[1],
                          where=engine.description if engine is not None else "")


def _remove_athletes(con: duckdb.DuckDBPyConnection, ws: Workspace, removed: list[str]) -> None:
    """Analysis rows (and cached runs) of athletes the warehouse no longer holds go."""
    if removed:
        replace_analysis_rows(con, removed, [], pd.DataFrame())
        for a in removed:
            drop_runs(ws, a)


def _squad_step(con: duckdb.DuckDBPyConnection, config: dict, params: AnalysisParams, force: bool) -> str:
    """Recompute the squad tables when what they are computed from changed (any athlete's analysis, the
    settings, the code); 'recomputed' or 'up to date'."""
    squad_settings = json.dumps({"squad": asdict(SquadParams.from_config(config)), "analysis": asdict(params)},
                                sort_keys=True)
    current = squad_input_fingerprint(con, squad_settings)
    if not force and stored_squad_fingerprint(con) == current:
        return "up to date"
    analyze_squad(con, config, params)
    store_squad_fingerprint(con, current)
    return "recomputed"

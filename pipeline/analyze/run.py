"""``pipeline analyze``, as a recipe: for each athlete, read its staging rows, run the pure analysis,
then replace the analysed athletes' rows of the analysis tables in one transaction.

1. which athletes (:func:`pipeline.analyze.store.athlete_ids`);
2. per athlete: its inputs (:func:`~pipeline.analyze.store.load_athlete_inputs`), its strength blocks
   (:func:`pipeline.analyze.blocks.strength_blocks_for_athlete`; declared win), then
   :func:`pipeline.analyze.process.athlete_process` over its running samples, streamed a batch at a time;
3. write ``run_metrics``, ``weekly``, ``strength_blocks``, ``block_effects`` and ``placebo_checks``, and
   one ``analysis_runs`` row per athlete (when, pipeline version, settings, fitted model values) that every
   row links to (:func:`~pipeline.analyze.store.replace_analysis_rows`);
4. the squad: pooled effects, teammates as controls, dose-response over every athlete in the warehouse
   (:func:`pipeline.analyze.squad_store.analyze_squad`);
5. return the one-screen summary (:mod:`pipeline.analyze.summary`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

import duckdb
import pandas as pd

import pipeline

from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete
from pipeline.analyze.economy import model_provenance
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import AthleteAnalysis, athlete_process
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


def _analysis_run(analysis: AthleteAnalysis, started: pd.Timestamp, params: AnalysisParams,
                  block_params: BlockParams) -> dict:
    """The ``analysis_runs`` row of one athlete's (successful) analysis, with the fitted model's values."""
    settings = {"analysis": asdict(params), "blocks": asdict(block_params)}
    rm = analysis.run_metrics
    return {"analysis_run_id": uuid.uuid4().hex, "athlete_id": analysis.athlete_id, "started_at": started,
            "finished_at": pd.Timestamp.now(tz="UTC"), "status": "ok", "message": None,
            "pipeline_version": pipeline.__version__, "settings_json": json.dumps(settings, sort_keys=True),
            "n_runs": len(rm), "n_included": int(rm["included"].sum()) if len(rm) else 0,
            **model_provenance(analysis.model)}


def analyze_workspace(ws: Workspace, athlete_id: str | None = None) -> AnalyzeSummary:
    """Compute the analysis tables from the staging tables for every athlete (or one).

    Parameters come from pipeline.toml: ``[analysis]`` (:class:`AnalysisParams`) and ``[blocks]``
    (:class:`BlockParams`). The caller holds the workspace lock.
    """
    config = ws.pipeline_config()
    params = AnalysisParams.from_config(config.get("analysis", {}))
    block_params = BlockParams.from_config(config)
    con = connect(ws)
    try:
        ids = athlete_ids(con, athlete_id)                                              # 1
        analyses, runs = [], []
        for a in ids:                                                                   # 2
            started = pd.Timestamp.now(tz="UTC")
            analyses.append(analyze_athlete(con, a, params, block_params))
            runs.append(_analysis_run(analyses[-1], started, params, block_params))
        replace_analysis_rows(con, None if athlete_id is None else ids, analyses,     # 3
                              pd.DataFrame(runs))
        analyze_squad(con, config, params)                                              # 4
    finally:
        con.close()
    return AnalyzeSummary([athlete_summary(t) for t in analyses])                      # 5

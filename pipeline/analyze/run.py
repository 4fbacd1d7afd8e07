"""``pipeline analyze``, as a recipe: for each athlete, read its staging rows, run the pure analysis,
then replace the analysed athletes' rows of the analysis tables in one transaction.

1. which athletes (:func:`pipeline.analyze.store.athlete_ids`);
2. per athlete: its inputs (:func:`~pipeline.analyze.store.load_athlete_inputs`), its strength blocks
   (:func:`pipeline.analyze.blocks.strength_blocks_for_athlete`; declared win), then
   :func:`pipeline.analyze.process.athlete_process` over its running samples, streamed a batch at a time;
3. a second pass: athletes with too few negative controls of their own are calibrated on the squad's
   (every analysed athlete's controls, plus the stored ones of athletes not analysed now)
   (:func:`pipeline.analyze.process.recalibrate`);
4. write ``run_metrics``, ``weekly``, ``strength_blocks``, ``block_effects`` and ``placebo_checks``, and
   one ``analysis_runs`` row per athlete (when, pipeline version, settings)
   (:func:`~pipeline.analyze.store.replace_analysis_rows`);
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
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import AthleteAnalysis, athlete_process, recalibrate, squad_controls, stored_control_sets
from pipeline.analyze.store import (
    athlete_ids,
    load_athlete_inputs,
    replace_analysis_rows,
    samples_by_activity,
    stored_controls,
)
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


def _analysis_run(athlete_id: str, started: pd.Timestamp, params: AnalysisParams,
                  block_params: BlockParams) -> dict:
    """The ``analysis_runs`` row of one athlete's (successful) analysis."""
    settings = {"analysis": asdict(params), "blocks": asdict(block_params)}
    return {"analysis_run_id": uuid.uuid4().hex, "athlete_id": athlete_id, "started_at": started,
            "finished_at": pd.Timestamp.now(tz="UTC"), "status": "ok", "message": None,
            "pipeline_version": pipeline.__version__, "settings_json": json.dumps(settings, sort_keys=True)}


def squad_calibrated(con: duckdb.DuckDBPyConnection, analyses: list[AthleteAnalysis]) -> list[AthleteAnalysis]:
    """Calibrate every athlete whose own negative controls are too few on the squad's pooled controls:
    the analysed athletes' own sets plus the stored rows of athletes not analysed now."""
    analysed = [t.athlete_id for t in analyses]
    sets = [cs for t in analyses for cs in t.controls.values()] + stored_control_sets(stored_controls(con, analysed))
    squad = squad_controls(sets)
    return [recalibrate(t, squad) for t in analyses]


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
            runs.append(_analysis_run(a, started, params, block_params))
        analyses = squad_calibrated(con, analyses)                                      # 3
        replace_analysis_rows(con, None if athlete_id is None else ids, analyses,     # 4
                              pd.DataFrame(runs))
    finally:
        con.close()
    return AnalyzeSummary([athlete_summary(t) for t in analyses])                      # 5

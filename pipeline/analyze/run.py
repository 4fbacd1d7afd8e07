"""``pipeline analyze``, as a recipe: for each athlete, read its staging rows, run the pure analysis,
then replace the analysed athletes' rows of the analysis tables in one transaction.

1. which athletes (:func:`pipeline.analyze.store.athlete_ids`);
2. per athlete, in isolation (:func:`analyze_one`): its athlete.toml checked, its inputs
   (:func:`~pipeline.analyze.store.load_athlete_inputs`, after
   :func:`~pipeline.analyze.store.check_computable_times`), its strength blocks
   (:func:`pipeline.analyze.blocks.strength_blocks_for_athlete`; declared win), then
   :func:`pipeline.analyze.process.athlete_process` over its running samples, streamed a batch at a time.
   ANY failure becomes that athlete's error (the reason naming the settings file and key, or the activity
   and file(s) involved: :func:`~pipeline.analyze.store.describe_failure`), never the others';
3. a second pass over the athletes that succeeded: those with too few negative controls of their own are
   calibrated on the squad's (every analysed athlete's controls, plus the stored ones of athletes not
   analysed now) (:func:`squad_calibrated`, :func:`pipeline.analyze.process.recalibrate`); a failure there
   too is that athlete's error only;
4. write ``run_metrics``, ``weekly``, ``strength_blocks``, ``block_effects`` and ``placebo_checks`` for the
   athletes that succeeded (a failed athlete's old rows are removed: they no longer describe its data), and
   one ``analysis_runs`` row per athlete (when, status, message, pipeline version, settings, fitted model
   values) that every row links to (:func:`~pipeline.analyze.store.replace_analysis_rows`);
5. the squad: pooled effects, teammates as controls, dose-response over every athlete in the warehouse
   (:func:`pipeline.analyze.squad_store.analyze_squad`), pooling each block's CALIBRATED estimate, so it
   runs after steps 3-4 (docs/squad.md, "Order"); a failure there is reported, not raised, since the
   athletes' own results are already stored;
6. return the one-screen summary (:mod:`pipeline.analyze.summary`), failures included; the CLI exits 1
   when there are any.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, fields, replace

import duckdb
import pandas as pd

import pipeline

from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete
from pipeline.analyze.economy import model_provenance
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import AthleteAnalysis, athlete_process, recalibrate, squad_controls, stored_control_sets
from pipeline.analyze.squad_store import analyze_squad
from pipeline.analyze.store import (athlete_ids, check_computable_times, describe_failure, load_athlete_inputs,
                                    replace_analysis_rows, samples_by_activity, stored_controls)
from pipeline.analyze.summary import AnalyzeSummary, AthleteFailure, athlete_summary
from pipeline.errors import PipelineError
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace, load_athlete_config


def analyze_athlete(con: duckdb.DuckDBPyConnection, athlete_id: str, params: AnalysisParams,
                    block_params: BlockParams) -> AthleteAnalysis:
    """Load one athlete's staging rows and run :func:`athlete_process` (reads only)."""
    check_computable_times(con, athlete_id)
    inputs = load_athlete_inputs(con, athlete_id)
    blocks = strength_blocks_for_athlete(athlete_id, inputs.strength_sessions, inputs.strength_sets,
                                         inputs.declared_blocks, block_params)
    return athlete_process(athlete_id, inputs.activities, samples_by_activity(con, inputs.run_activity_ids),
                           inputs.strength_sessions, blocks, params, inputs.ref_speed_m_s)


@dataclass
class AthleteOutcome:
    """One athlete in one analyze run: its analysis, or the reason it has none."""

    athlete_id: str
    started_at: pd.Timestamp
    finished_at: pd.Timestamp
    analysis: AthleteAnalysis | None = None
    error: str | None = None


def analyze_one(con: duckdb.DuckDBPyConnection, ws: Workspace, athlete_id: str, params: AnalysisParams,
                block_params: BlockParams) -> AthleteOutcome:
    """Analyse one athlete, turning ANY failure into an outcome with a reason instead of an exception, so
    one athlete's bad data or settings never cost another athlete their results."""
    started = pd.Timestamp.now(tz="UTC")
    try:
        if (ws.raw_dir / athlete_id).is_dir():
            load_athlete_config(ws.raw_dir, athlete_id)      # a bad athlete.toml is this athlete's error
        analysis = analyze_athlete(con, athlete_id, params, block_params)
        return AthleteOutcome(athlete_id, started, pd.Timestamp.now(tz="UTC"), analysis=analysis)
    except PipelineError as e:
        return AthleteOutcome(athlete_id, started, pd.Timestamp.now(tz="UTC"), error=str(e))
    except Exception as e:  # noqa: BLE001 - isolation boundary: the reason is stored and shown, never lost
        return AthleteOutcome(athlete_id, started, pd.Timestamp.now(tz="UTC"),
                              error=describe_failure(con, athlete_id, e))


def _analysis_run(outcome: AthleteOutcome, params: AnalysisParams, block_params: BlockParams) -> dict:
    """The ``analysis_runs`` row of one athlete's analysis: ok with the fitted model's values, or error with
    its reason (model columns NULL)."""
    settings = {"analysis": asdict(params), "blocks": asdict(block_params)}
    rm = outcome.analysis.run_metrics if outcome.analysis is not None else None
    return {"analysis_run_id": uuid.uuid4().hex, "athlete_id": outcome.athlete_id,
            "started_at": outcome.started_at, "finished_at": outcome.finished_at,
            "status": "ok" if outcome.error is None else "error", "message": outcome.error,
            "pipeline_version": pipeline.__version__, "settings_json": json.dumps(settings, sort_keys=True),
            "n_runs": None if rm is None else len(rm),
            "n_included": None if rm is None else (int(rm["included"].sum()) if len(rm) else 0),
            **model_provenance(outcome.analysis.model if outcome.analysis is not None else None)}


def _non_default_settings(params: AnalysisParams) -> str | None:
    """'min_steady_s = 7200.0, ...' for the settings that differ from the defaults (for the summary's hint)."""
    changed = [f"{f.name} = {getattr(params, f.name)!r}" for f in fields(params)
               if getattr(params, f.name) != getattr(AnalysisParams(), f.name)]
    return ", ".join(changed) or None


def _analyze_squad(con: duckdb.DuckDBPyConnection, config: dict, params: AnalysisParams) -> str | None:
    """Step 4, isolated: the athletes' results are stored by now, so a failure of the squad analysis is a
    reason in the summary (and exit 1), not an exception that would cost the report. Settings errors (a
    PipelineError) stop the command as everywhere."""
    try:
        analyze_squad(con, config, params)
        return None
    except PipelineError:
        raise
    except Exception as e:  # noqa: BLE001 - isolation boundary: named in the summary, the CLI exits 1
        return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def squad_calibrated(con: duckdb.DuckDBPyConnection, outcomes: list[AthleteOutcome],
                     attempted: list[str]) -> list[AthleteOutcome]:
    """Step 3: calibrate every athlete whose own negative controls are too few on the squad's pooled
    controls: the analysed athletes' own sets plus the stored rows of athletes not attempted now (a failed
    athlete's stored controls are left out: they are about to be removed). A failure here is that athlete's
    error, as in step 2."""
    done = [o.analysis for o in outcomes if o.analysis is not None]
    sets = [cs for t in done for cs in t.controls.values()] + stored_control_sets(stored_controls(con, attempted))
    squad = squad_controls(sets)
    out = []
    for o in outcomes:
        if o.analysis is None:
            out.append(o)
            continue
        try:
            out.append(replace(o, analysis=recalibrate(o.analysis, squad)))
        except Exception as e:  # noqa: BLE001 - isolation boundary, as in analyze_one
            out.append(replace(o, analysis=None, error=describe_failure(con, o.athlete_id, e)))
    return out


def squad_calibrated_alone(con: duckdb.DuckDBPyConnection, analysis: AthleteAnalysis) -> AthleteAnalysis:
    """One athlete's analysis (e.g. in memory, with changed settings) calibrated as ``pipeline analyze``
    would: on the squad's stored controls (every other athlete's) where its own are too few."""
    sets = list(analysis.controls.values()) + stored_control_sets(stored_controls(con, [analysis.athlete_id]))
    return recalibrate(analysis, squad_controls(sets))


def analyze_workspace(ws: Workspace, athlete_id: str | None = None) -> AnalyzeSummary:
    """Compute the analysis tables from the staging tables for every athlete (or one).

    Parameters come from pipeline.toml: ``[analysis]`` (:class:`AnalysisParams`) and ``[blocks]``
    (:class:`BlockParams`); invalid ones stop the command (they concern every athlete). Each athlete is
    analysed in isolation (:func:`analyze_one`); the summary lists the failures. The caller holds the
    workspace lock.
    """
    config = ws.pipeline_config()
    params = AnalysisParams.from_config(config.get("analysis"))
    block_params = BlockParams.from_config(config)
    con = connect(ws)
    try:
        ids = athlete_ids(con, athlete_id)                                              # 1
        outcomes = [analyze_one(con, ws, a, params, block_params) for a in ids]         # 2
        outcomes = squad_calibrated(con, outcomes, ids)                                 # 3
        replace_analysis_rows(con, None if athlete_id is None else ids,                 # 4
                              [o.analysis for o in outcomes if o.analysis is not None],
                              pd.DataFrame([_analysis_run(o, params, block_params) for o in outcomes]))
        squad_error = _analyze_squad(con, config, params)                               # 5
    finally:
        con.close()
    return AnalyzeSummary([athlete_summary(o.analysis) for o in outcomes if o.analysis is not None],   # 6
                          [AthleteFailure(o.athlete_id, o.error or "failed") for o in outcomes if o.analysis is None],
                          _non_default_settings(params), squad_error)

"""Python API for notebooks: a workspace's warehouse as tidy DataFrames, analyses re-run in memory, figures.

    from pipeline import api

    with api.open_workspace("path/to/workspace") as ws:   # read-only: never changes the warehouse
        runs = ws.runs()                 # one row per run: period label, metrics, covariates (runs_tidy)
        pooled = ws.pooled()             # the squad's pooled effects (squad_pooled)
        trial = ws.analyze("ana", its_pre_weeks=12)   # the analysis with changed settings, in memory
        figs = ws.figures("ana")         # the report's figures for one athlete (matplotlib Figures)

Units are in the column names (``_pct`` percent, ``_m_per_beat`` metres per heartbeat, ``_bpm`` beats per
minute, ``_m_s`` metres per second, ``_s`` seconds, ``_km`` kilometres, ``_c`` degC); every column is
described in docs/warehouse.md. Times are UTC (``start_time`` tz-aware, dates as ``datetime.date``).
The same queries from R (arrow/duckdb) and Polars are in docs/api.md.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.analyze.blocks import BlockParams
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import AthleteAnalysis
from pipeline.analyze.athlete_job import analyze_athlete, squad_calibrated_alone
from pipeline.errors import PipelineError
from pipeline.report import figures as fg
from pipeline.report import story
from pipeline.report.data import load_athlete_tables, load_squad_tables
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace, resolve_workspace

__all__ = ["SquadWorkspace", "open_workspace"]


def open_workspace(path: str | Path | None = None) -> SquadWorkspace:
    """Open a workspace's warehouse read-only (``path`` as ``--workspace``: default $PIPELINE_WORKSPACE,
    else the current directory). Use as a context manager, or call ``close()``."""
    ws = resolve_workspace(Path(path) if path is not None else None)
    return SquadWorkspace(ws, connect(ws, read_only=True))


class SquadWorkspace:
    """A read-only view of one workspace's warehouse. Every getter returns a new pandas DataFrame."""

    def __init__(self, ws: Workspace, con: duckdb.DuckDBPyConnection) -> None:
        self.workspace = ws
        self.con = con

    def __enter__(self) -> SquadWorkspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the read-only connection (a writer such as `pipeline analyze` can then open the warehouse)."""
        self.con.close()

    # ------------------------------------------------------------------------------- tidy tables

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        """Any read-only SQL over the warehouse's tables and views, as a DataFrame."""
        return self.con.execute(query, params or []).df()

    def _rows(self, relation: str, athlete_id: str | None, order: str) -> pd.DataFrame:
        where = " WHERE athlete_id = ?" if athlete_id is not None else ""
        return self.sql(f"SELECT * FROM {relation}{where} ORDER BY {order}", [athlete_id] if athlete_id else [])

    def athletes(self) -> list[str]:
        """Athlete ids with any analysed runs or blocks."""
        return list(self.sql("SELECT athlete_id FROM run_metrics UNION SELECT athlete_id FROM strength_blocks "
                             "ORDER BY 1")["athlete_id"])

    def runs(self, athlete_id: str | None = None) -> pd.DataFrame:
        """One row per run (``runs_tidy``): date, athlete, block and period (baseline | ramp | response |
        other), weeks from block start, included flag and reason, every metric (economy_m_per_beat m/beat,
        hr_at_ref_bpm, decoupling_pct %, ...), covariates (temperature_c / heat_temperature_c degC and
        temperature_source, climb_m_per_km, mean_abs_grade_pct %, duration_s, distance_km), device."""
        return self._rows("runs_tidy", athlete_id, "athlete_id, start_time")

    def weekly(self, athlete_id: str | None = None) -> pd.DataFrame:
        """One row per athlete-week (Monday start): runs, run_km, strength_sessions, median economy_m_per_beat."""
        return self._rows("weekly", athlete_id, "athlete_id, week_start")

    def blocks(self, athlete_id: str | None = None) -> pd.DataFrame:
        """One row per strength block with its headline effect (``block_summary``): dates, weeks, sessions,
        sessions_per_week, volume_kg, change_pct (%) with its 95 % CI, verdict."""
        return self._rows("block_summary", athlete_id, "athlete_id, start_date")

    def effects(self, athlete_id: str | None = None, metric: str | None = HEADLINE_METRIC,
                method: str | None = HEADLINE_METHOD) -> pd.DataFrame:
        """``block_effects`` rows (default: the headline, economy_m_per_beat by ITS; None = every one):
        change_pct (%, > 0 more economical), ci_low_pct/ci_high_pct, verdict (raw), windows, run counts, and
        the headline beside them: calibrated_change_pct with its CI and SE (log scale x 100),
        calibrated_verdict, verdict_reason, calibration_source (own | squad | default)."""
        e = self._rows("block_effects", athlete_id, "athlete_id, block_id, metric, method")
        if metric is not None:
            e = e[e["metric"] == metric]
        if method is not None:
            e = e[e["method"] == method]
        return e.reset_index(drop=True)

    def placebo(self, athlete_id: str | None = None) -> pd.DataFrame:
        """``placebo_checks``: the negative controls, the estimator at fake block starts before, between and
        after the blocks (change_pct %, CI, se_pct, raw verdict, position, calibration_class)."""
        return self._rows("placebo_checks", athlete_id, "athlete_id, block_id, fake_start")

    def pooled(self) -> pd.DataFrame:
        """``squad_pooled``: the pooled effect of every block and of the teammate-controlled (DiD) estimates,
        per meta-analysis method: estimate_pct, 95 % CI, prediction interval (%), tau2, I^2 (%), Q."""
        return self.sql("SELECT * FROM squad_pooled ORDER BY target, meta_method")

    def squad(self) -> dict[str, pd.DataFrame]:
        """Every squad table: squad_blocks (each block's pooled estimate, SE, weight, dose), squad_pooled,
        squad_did (difference in differences with the parallel-trends check), squad_dose_response."""
        return load_squad_tables(self.con)

    def analysis_runs(self, athlete_id: str | None = None) -> pd.DataFrame:
        """Provenance: one row per analysis of an athlete (settings JSON, pipeline version, fitted model:
        ref_speed_m_s, hr_speed_slope_bpm_per_m_s, drift_bpm_per_h, heat_bpm_per_c +- heat_se_bpm_per_c)."""
        return self._rows("analysis_runs", athlete_id, "athlete_id, started_at")

    # -------------------------------------------------------------------------- in-memory analysis

    def analyze(self, athlete_id: str, blocks: dict | None = None, **analysis: object) -> AthleteAnalysis:
        """Re-run one athlete's analysis in memory with changed settings; the warehouse is not touched.

        ``analysis``: any field of :class:`~pipeline.analyze.params.AnalysisParams` (e.g.
        ``its_pre_weeks=12``, ``heat_method="none"``, ``swc_pct=0.5``); ``blocks``: fields of
        :class:`~pipeline.analyze.blocks.BlockParams`. Defaults are the workspace's pipeline.toml. Returns
        the frames ``pipeline analyze`` would write (``.run_metrics``, ``.block_effects``, ``.headline``,
        ``.placebo_checks``, ...) and the fitted model (``.model``), calibrated as it would be: own negative
        controls, else the squad's stored ones, else the default.
        """
        config = self.workspace.pipeline_config()
        params = _with(AnalysisParams.from_config(config.get("analysis", {})), analysis)
        block_params = _with(BlockParams.from_config(config), blocks or {})
        return squad_calibrated_alone(self.con, analyze_athlete(self.con, athlete_id, params, block_params))

    # ----------------------------------------------------------------------------------- figures

    def figures(self, athlete_id: str) -> dict:
        """The report's figures for one athlete as matplotlib Figures (keys: timeline, comparison, weekly,
        raw_vs_economy; only those with data). Save with ``fig.savefig(path)``."""
        t = load_athlete_tables(self.con, athlete_id)
        out, inc = {}, t.included_runs
        head = t.effects[t.effects["metric"] == HEADLINE_METRIC]
        if len(inc):
            out["timeline"] = fg.economy_timeline_plot(inc, t.strength_sessions, t.blocks, head)
        effect = story.headline_effect(t)
        if effect is not None and len(inc):
            rows = head[head["block_id"] == effect.row["block_id"]]
            out["comparison"] = fg.block_comparison_plot(inc, rows, rows["swc_pct"].dropna().iloc[0]
                                                         if rows["swc_pct"].notna().any() else None)
        if len(t.weekly):
            out["weekly"] = fg.weekly_volume_plot(t.weekly, t.blocks)
        if len(inc) >= 3:
            out["raw_vs_economy"] = fg.raw_vs_economy_plot(inc)
        return out

    def squad_figures(self) -> dict:
        """The squad page's figures (keys: forest, dose_response) when the squad has pooled estimates."""
        tables = self.squad()
        pooled, blocks = tables["squad_pooled"], tables["squad_blocks"]
        if pooled.empty or blocks.empty:
            return {}
        shown = pooled[pooled["meta_method"] == "reml_hksj"]
        labelled = blocks.assign(row_label=[f"{a} · {b}" for a, b in zip(blocks["athlete_id"], blocks["block_id"])])
        dose = tables["squad_dose_response"]
        fit = dose[(dose["moderator"] == "sessions_per_week") & (dose["meta_method"] == "reml_hksj")]
        return {"forest": fg.squad_forest_plot(labelled, shown),
                "dose_response": fg.dose_response_plot(blocks, fit.iloc[0] if len(fit) else None)}


def _with(settings, changes: dict):
    """``settings`` with ``changes`` applied and validated; unknown names raise listing the valid ones."""
    valid = {f.name for f in fields(settings)}
    unknown = sorted(set(changes) - valid)
    if unknown:
        raise PipelineError(f"unknown setting(s) {', '.join(unknown)} for {type(settings).__name__}; "
                            f"valid: {', '.join(sorted(valid))}")
    new = replace(settings, **changes)
    new.validate()
    return new

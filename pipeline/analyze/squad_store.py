"""The squad analysis's reads and writes of the warehouse: every athlete's analysis rows in, the squad
tables out (replaced whole, in one transaction), run by ``pipeline analyze`` after the per-athlete loop.

The squad tables always describe the whole warehouse, so ``pipeline analyze --athlete X`` recomputes them
from X's new rows and everyone else's stored ones. The pure work is :func:`pipeline.analyze.squad.squad_process`.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.squad import SQUAD_TABLES, SquadAnalysis, SquadParams, squad_process
from pipeline.warehouse.contract import columns
from pipeline.warehouse.db import insert_frame, transaction

# Only what the ITS estimator needs from each run: the squad's whole run_metrics would be wasted memory.
_RUN_COLUMNS = ("activity_id, athlete_id, start_time, included, economy_m_per_beat, hr_at_ref_bpm, heat_temperature_c, "
                "heat_adjustment_bpm, temperature_c")


def load_squad_inputs(con: duckdb.DuckDBPyConnection) -> dict:
    """Every athlete's included runs, block effects, blocks, weekly rows and each athlete's latest
    heat coefficient and its SE (analysis_runs), as the keyword arguments of :func:`squad_process`."""
    runs = con.execute(f"SELECT {_RUN_COLUMNS} FROM run_metrics WHERE included ORDER BY athlete_id, start_time").df()
    heat = con.execute(
        "SELECT athlete_id, heat_se_bpm_per_c, heat_bpm_per_c FROM analysis_runs WHERE status = 'ok' "
        "QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY started_at DESC) = 1").fetchall()
    return {"run_metrics": runs, "effects": con.execute("SELECT * FROM block_effects").df(),
            "blocks": con.execute("SELECT * FROM strength_blocks").df(),
            "weekly": con.execute("SELECT * FROM weekly").df(),
            "heat_se_bpm_per_c": {a: (float(v) if v is not None else 0.0) for a, v, _ in heat},
            "heat_bpm_per_c": {a: (float(g) if g is not None else 0.0) for a, _, g in heat}}


def replace_squad_rows(con: duckdb.DuckDBPyConnection, squad: SquadAnalysis) -> None:
    """Replace every squad table's rows, in one transaction."""
    with transaction(con):
        for table in SQUAD_TABLES:
            con.execute(f"DELETE FROM {table}")
            cols = columns(table)
            df = getattr(squad, table)
            if len(df):
                insert_frame(con, table, df[cols].replace({np.inf: np.nan, -np.inf: np.nan}), cols)


def analyze_squad(con: duckdb.DuckDBPyConnection, config: dict, params: AnalysisParams) -> SquadAnalysis:
    """Compute the squad tables from the warehouse's analysis rows and store them (``[squad]`` settings)."""
    squad = squad_process(**load_squad_inputs(con), params=params, squad=SquadParams.from_config(config))
    replace_squad_rows(con, squad)
    return squad

"""The result tables of a warehouse, for comparing two runs (local vs a dask cluster) row for row."""

from __future__ import annotations

import pandas as pd

# Every table ingest and analyze write, without the columns that name a moment or an analysis.
COMPARED = {
    "source_files": "SELECT * EXCLUDE (ingested_at) FROM source_files",
    "activities": "SELECT * FROM activities",
    "samples": "SELECT * FROM samples",
    "laps": "SELECT * FROM laps",
    "strength_sessions": "SELECT * FROM strength_sessions",
    "strength_sets": "SELECT * FROM strength_sets",
    "run_metrics": "SELECT * EXCLUDE (analysis_run_id) FROM run_metrics",
    "weekly": "SELECT * EXCLUDE (analysis_run_id) FROM weekly",
    "strength_blocks": "SELECT * EXCLUDE (analysis_run_id) FROM strength_blocks",
    "block_effects": "SELECT * EXCLUDE (analysis_run_id) FROM block_effects",
    "placebo_checks": "SELECT * EXCLUDE (analysis_run_id) FROM placebo_checks",
    "analysis_runs": "SELECT athlete_id, status, n_runs, n_included, hr_speed_slope_bpm_per_m_s, "
                     "input_fingerprint, pooled_fingerprint FROM analysis_runs",
    "squad_blocks": "SELECT * EXCLUDE (analysis_run_id) FROM squad_blocks",
    "squad_pooled": "SELECT * EXCLUDE (computed_at) FROM squad_pooled",
}


def result_tables(ws) -> dict[str, pd.DataFrame]:
    """Each compared table of the workspace's warehouse, sorted by every column."""
    from pipeline.warehouse.db import connect

    con = connect(ws, read_only=True)
    try:
        return {t: con.execute(f"{sql} ORDER BY ALL").df() for t, sql in COMPARED.items()}
    finally:
        con.close()


def differing_tables(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> list[str]:
    """Names of the tables whose rows differ (exactly) between two result_tables."""
    out = []
    for table in a:
        try:
            pd.testing.assert_frame_equal(a[table], b[table], check_exact=True)
        except AssertionError:
            out.append(table)
    return out

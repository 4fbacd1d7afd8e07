"""``pipeline status``: what the warehouse holds, in the same one-screen layout as the ingest summary."""

from __future__ import annotations

from collections import Counter

import duckdb

from pipeline.ingest.run import render_summary
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

# The latest analyze outcome per athlete (analysis_runs keeps one row per athlete per analyze run).
_LATEST_ANALYSIS_SQL = """
    SELECT athlete_id, status, message, finished_at FROM analysis_runs
    QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY started_at DESC) = 1
    ORDER BY athlete_id"""


def analysis_status(con: duckdb.DuckDBPyConnection) -> str:
    """Lines for the latest analysis of each athlete: how many succeeded, and each failure with its reason."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'analysis_runs'").fetchone()
    rows = con.execute(_LATEST_ANALYSIS_SQL).fetchall() if exists and exists[0] else []
    if not rows:
        return "analysis: not run yet (pipeline analyze)"
    failed = [(a, m) for a, s, m, _ in rows if s == "error"]
    last = max(r[3] for r in rows)
    lines = [f"analysis: {len(rows) - len(failed)} athlete(s) analysed, {len(failed)} failed "
             f"(last run {last:%Y-%m-%d %H:%M} UTC)"]
    for athlete_id, message in failed:
        lines.append(f"  analysis error: {athlete_id}: {message}")
    return "\n".join(lines)


def render_status(ws: Workspace) -> str:
    """Files by status, activities by sport, samples, athletes, errors with reasons, analysis, then strength."""
    con = connect(ws, read_only=True)
    try:
        files = Counter(dict(con.execute("SELECT status, count(*) FROM source_files GROUP BY status").fetchall()))
        sports = Counter(dict(con.execute("SELECT coalesce(sport, 'unknown'), count(*) FROM activities "
                                          "GROUP BY 1").fetchall()))
        errors = con.execute("SELECT path, message FROM source_files WHERE status = 'error' ORDER BY path").fetchall()
        skipped = con.execute("SELECT path, message FROM source_files WHERE status = 'skipped' "
                              "ORDER BY path").fetchall()
        n_samples = con.execute("SELECT count(*) FROM samples").fetchone()[0]
        athletes = [r[0] for r in con.execute(
            "SELECT athlete_id FROM (SELECT athlete_id FROM activities UNION SELECT athlete_id FROM athletes) "
            "ORDER BY 1").fetchall()]
        span = con.execute("SELECT min(start_time)::DATE::VARCHAR, max(start_time)::DATE::VARCHAR "
                           "FROM activities").fetchone()
        extra = [f"samples: {n_samples}", f"athletes: {', '.join(athletes) or '-'}"]
        if span[0] is not None:
            extra.append(f"activities from {span[0]} to {span[1]}")
        text = render_summary("Warehouse", files, sports, errors, skipped, extra=extra)
        text += "\n" + analysis_status(con)
        try:
            from pipeline.strength.summary import strength_status
        except ImportError:  # strength summary not available in this checkout
            return text
        return text + "\n" + strength_status(con)
    finally:
        con.close()

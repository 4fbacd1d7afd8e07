"""``pipeline status``: what the warehouse holds, in the same one-screen layout as the ingest summary."""

from __future__ import annotations

from collections import Counter

from pipeline.ingest.run import render_summary
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace


def render_status(ws: Workspace) -> str:
    """Files by status, activities by sport, samples, athletes, errors with reasons, then strength."""
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
        span = con.execute("SELECT min(start_time)::DATE, max(start_time)::DATE FROM activities").fetchone()
        extra = [f"samples: {n_samples}", f"athletes: {', '.join(athletes) or '-'}"]
        if span[0] is not None:
            extra.append(f"activities from {span[0]} to {span[1]}")
        text = render_summary("Warehouse", files, sports, errors, skipped, extra=extra)
        try:
            from pipeline.strength.summary import strength_status
        except ImportError:  # strength summary not available in this checkout
            return text
        return text + "\n" + strength_status(con)
    finally:
        con.close()

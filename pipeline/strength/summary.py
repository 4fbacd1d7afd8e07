"""What the warehouse holds of strength work, per athlete, for ``pipeline status``."""

from __future__ import annotations

import duckdb

from pipeline.strength.common import WORK_SET_TYPES

_WORK_LIST = ", ".join(f"'{t}'" for t in WORK_SET_TYPES)

# One row per athlete that has strength sessions or declared blocks.
_STATUS_SQL = f"""
WITH sessions AS (
    SELECT athlete_id, count(*) AS n_sessions,
           min(start_time)::DATE AS first_day, max(start_time)::DATE AS last_day,
           string_agg(DISTINCT source_format, ', ' ORDER BY source_format) AS sources
    FROM strength_sessions GROUP BY athlete_id
), work_sets AS (
    SELECT s.athlete_id, count(*) AS n_working_sets
    FROM strength_sets x JOIN strength_sessions s USING (session_id)
    WHERE x.set_type IN ({_WORK_LIST}) GROUP BY s.athlete_id
), declared AS (
    SELECT athlete_id, count(*) AS n_declared FROM declared_blocks GROUP BY athlete_id
), detected AS (
    SELECT athlete_id, count(*) FILTER (WHERE source = 'detected') AS n_detected,
           count(*) AS n_blocks
    FROM strength_blocks GROUP BY athlete_id
), athletes AS (
    SELECT athlete_id FROM sessions UNION SELECT athlete_id FROM declared
)
SELECT a.athlete_id, coalesce(n_sessions, 0), coalesce(n_working_sets, 0), first_day, last_day, sources,
       coalesce(n_declared, 0), n_detected, n_blocks
FROM athletes a
LEFT JOIN sessions USING (athlete_id) LEFT JOIN work_sets USING (athlete_id)
LEFT JOIN declared USING (athlete_id) LEFT JOIN detected USING (athlete_id)
ORDER BY a.athlete_id
"""


def strength_status(con: duckdb.DuckDBPyConnection) -> str:
    """Lines like ``alice: 24 strength sessions, 310 working sets, 2025-01-06..2025-03-20 (strong_csv);
    blocks: 1 declared, 1 detected``; ``strength: none`` when the warehouse holds no strength work.

    Detected blocks are shown once ``pipeline analyze`` has filled strength_blocks.
    """
    rows = con.execute(_STATUS_SQL).fetchall()
    if not rows:
        return "strength: none"
    lines = ["strength:"]
    for athlete, n_sessions, n_work, first, last, sources, n_declared, n_detected, n_blocks in rows:
        text = f"  {athlete}: {n_sessions} strength session{'s' if n_sessions != 1 else ''}"
        if n_sessions:
            text += f", {n_work} working set{'s' if n_work != 1 else ''}, {first}..{last} ({sources})"
        blocks = [f"{n_declared} declared"]
        if n_blocks is not None:
            blocks.append(f"{n_detected} detected")
        text += f"; blocks: {', '.join(blocks)}"
        lines.append(text)
    return "\n".join(lines)

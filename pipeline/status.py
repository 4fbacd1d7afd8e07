"""``pipeline status``: what the warehouse holds, in the same one-screen layout as the ingest summary,
then each athlete's strength work and blocks, then the squad's pooled effects."""

from __future__ import annotations

from collections import Counter

import duckdb

from pipeline.analyze.blocks import BlockParams
from pipeline.analyze.fingerprint import analysis_plan, settings_json
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.store import athlete_ids
from pipeline.errors import PipelineError
from pipeline.ingest.summary import render_summary
from pipeline.report.data import list_athletes, load_athlete_tables
from pipeline.report.manifest import Manifest, page_digest
from pipeline.warehouse.contract import WORK_SET_TYPES
from pipeline.warehouse.db import connect
from pipeline.weather.summary import weather_status
from pipeline.workspace import Workspace


def render_status(ws: Workspace) -> str:
    """Files by status, activities by sport, samples, athletes, errors with reasons, the latest analysis of
    each athlete (failures with their reason), then strength, then weather coverage."""
    con = connect(ws, read_only=True)
    try:
        return (files_status(con) + "\n" + analysis_status(con) + "\n" + strength_status(con) + "\n"
                + squad_status(con) + "\n" + freshness_status(con, ws) + "\n" + weather_status(con))
    finally:
        con.close()


# The latest analyze outcome per athlete (analysis_runs keeps one row per athlete per analyze run).
_LATEST_ANALYSIS_SQL = """
    SELECT athlete_id, status, message, started_at FROM analysis_runs
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


def files_status(con: duckdb.DuckDBPyConnection) -> str:
    """The files/activities part of the status screen."""
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
    # As text: a warehouse from before the ingest sanity gate may hold years Python's date cannot.
    span = con.execute("SELECT min(start_time)::DATE::VARCHAR, max(start_time)::DATE::VARCHAR "
                       "FROM activities").fetchone()
    extra = [f"samples: {n_samples}", f"athletes: {', '.join(athletes) or '-'}"]
    if span[0] is not None:
        extra.append(f"activities from {span[0]} to {span[1]}")
    return render_summary("Warehouse", files, sports, errors, skipped, extra=extra)


_WORK_LIST = ", ".join(f"'{t}'" for t in WORK_SET_TYPES)

# One row per athlete that has strength sessions or declared blocks.
_STATUS_SQL = f"""
WITH sessions AS (
    SELECT athlete_id, count(*) AS n_sessions,
           min(start_time)::DATE::VARCHAR AS first_day, max(start_time)::DATE::VARCHAR AS last_day,
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


def squad_status(con: duckdb.DuckDBPyConnection) -> str:
    """The squad's pooled effect, its teammate-controlled (DiD) version and the dose-response slope, e.g.
    ``squad: pooled economy change +2.3 % (95 % CI +1.4 to +3.3, prediction -0.0 to +4.7), 8 blocks of 8
    athletes, I^2 64 %, reml_hksj, raw estimates``; ``squad: nothing pooled yet`` before analyze has."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'squad_pooled'").fetchone()[0]:
        return "squad: not analysed yet (run `pipeline analyze`)"   # a warehouse from before the squad tables
    pooled = con.execute("SELECT target, meta_method, k, n_athletes, estimate_source, estimate_pct, ci_low_pct, "
                         "ci_high_pct, pi_low_pct, pi_high_pct, i2_pct FROM squad_pooled "
                         "WHERE meta_method = json_extract_string(settings_json, '$.meta_method') "
                         "ORDER BY target").fetchall()
    if not pooled:
        return "squad: nothing pooled yet (needs 2 or more blocks with an estimate; run `pipeline analyze`)"
    names = {"block_effect": "pooled economy change", "did": "vs teammates without a block (DiD)"}
    lines = ["squad:"]
    for target, method, k, n_ath, source, est, lo, hi, pil, pih, i2 in pooled:
        pi = f", prediction {pil:+.1f} to {pih:+.1f}" if pil is not None else ""
        lines.append(f"  {names.get(target, target)}: {est:+.1f} % (95 % CI {lo:+.1f} to {hi:+.1f}{pi}), "
                     f"{k} blocks of {n_ath} athletes, I^2 {i2:.0f} %, {method}, {source} estimates")
    trends = con.execute("SELECT parallel_trends, count(*) FROM squad_did GROUP BY 1 ORDER BY 1").fetchall()
    if trends:
        lines.append("  parallel-trends check (pre-period): " + ", ".join(f"{n} {t}" for t, n in trends))
    for mod, slope, lo, hi, k in con.execute(
            "SELECT moderator, slope_pct_per_unit, slope_ci_low, slope_ci_high, k FROM squad_dose_response "
            "WHERE meta_method = 'reml_hksj' ORDER BY moderator").fetchall():
        lines.append(f"  dose-response {mod}: {slope:+.2f} points per unit (95 % CI {lo:+.2f} to {hi:+.2f}), "
                     f"{k} blocks")
    return "\n".join(lines)


def freshness_status(con: duckdb.DuckDBPyConnection, ws: Workspace) -> str:
    """Which athletes' analyses and report pages are out of date, and why, e.g.
    ``analysis: 1 of 3 athletes out of date: demo_gain (source_files, activities changed); run `pipeline
    analyze``` then ``reports: 3 of 3 pages up to date``."""
    return analysis_freshness(con, ws) + "\n" + report_freshness(con, ws)


def analysis_freshness(con: duckdb.DuckDBPyConnection, ws: Workspace) -> str:
    try:
        config = ws.pipeline_config()
        settings = settings_json(AnalysisParams.from_config(config.get("analysis", {})),
                                 BlockParams.from_config(config))
    except PipelineError as e:
        return f"analysis: cannot tell what is out of date ({e})"
    ids = athlete_ids(con, None)
    if not ids:
        return "analysis: no athletes yet"
    plan = analysis_plan(con, ws, ids, ids, settings)
    if not plan.todo:
        return f"analysis: {len(ids)} of {len(ids)} athletes up to date"
    why = "; ".join(f"{a} ({', '.join(r)}{' changed' if r[0] in plan.fingerprints[a].parts else ''})"
                    for a, r in plan.todo.items())
    return f"analysis: {len(plan.todo)} of {len(ids)} athletes out of date: {why}; run `pipeline analyze`"


def report_freshness(con: duckdb.DuckDBPyConnection, ws: Workspace) -> str:
    athletes = list_athletes(con)
    if not athletes:
        return "reports: nothing to report yet"
    manifest = Manifest(ws.reports_dir)
    stale = [a for a in athletes if not manifest.is_current(a, page_digest(load_athlete_tables(con, a)))]
    if not stale:
        return f"reports: {len(athletes)} of {len(athletes)} athlete pages up to date"
    return (f"reports: {len(stale)} of {len(athletes)} athlete pages out of date ({', '.join(stale)}); "
            "run `pipeline report`")

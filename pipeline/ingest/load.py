"""Loading one :class:`ParsedFile` into the warehouse, in one transaction, with duplicate resolution.

Duplicates (docs/ingest.md, "What counts as a duplicate"): a new activity is the same recording as an
activity already stored for the same athlete from another file when their start times differ by at
most :data:`DUPLICATE_START_TOLERANCE_S`, their elapsed times by at most
:data:`DUPLICATE_ELAPSED_TOLERANCE` (relative) or :data:`DUPLICATE_ELAPSED_FLOOR_S`, whichever is larger,
and their sports agree (``unknown``, as GPX without a type gives, agrees with any sport).
The richer one is kept: source format (FIT > TCX > GPX), then number of recorded channels, then
number of samples; on a tie the activity already stored stays. A file all of whose activities lost
is ``duplicate`` with ``duplicate_of`` set.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from pipeline.ingest.common import UNKNOWN_SPORT
from pipeline.ingest.parsed import ACTIVITY_COLUMNS, LAP_COLUMNS, SAMPLE_COLUMNS, ParsedFile
from pipeline.ingest.load_strength import insert_strength
from pipeline.warehouse.db import insert_frame, transaction

DUPLICATE_START_TOLERANCE_S = 120.0
DUPLICATE_ELAPSED_TOLERANCE = 0.10
DUPLICATE_ELAPSED_FLOOR_S = 60.0
FORMAT_RANK = {"fit": 3, "tcx": 2, "gpx": 1}
CHANNEL_COLUMNS = ("lat_deg", "altitude_m", "distance_m", "speed_m_s", "heart_rate_bpm", "cadence_spm",
                   "power_w", "temperature_c")


@dataclass(frozen=True)
class LoadOutcome:
    """What loading one file did: its final status, message, and counts of rows written."""

    status: str
    message: str
    n_activities: int = 0
    n_samples: int = 0
    duplicate_of: str | None = None
    sports: tuple[str, ...] = ()     # sport of each activity written


def _channels(samples: pd.DataFrame) -> int:
    return int(sum(samples[c].notna().any() for c in CHANNEL_COLUMNS if c in samples))


def _rank(source_format: str, channels: int, n_samples: int) -> tuple[int, int, int]:
    return (FORMAT_RANK.get(str(source_format).split(".")[0], 0), channels, int(n_samples or 0))


def delete_file_rows(con: duckdb.DuckDBPyConnection, file_id: str, path: str) -> None:
    """Remove what a previous version of the file at ``path`` wrote (content changed or retried)."""
    for sql in (
        "DELETE FROM samples WHERE activity_id IN (SELECT activity_id FROM activities WHERE file_id = ?)",
        "DELETE FROM laps WHERE activity_id IN (SELECT activity_id FROM activities WHERE file_id = ?)",
        "DELETE FROM activities WHERE file_id = ?",
        "DELETE FROM strength_sets WHERE session_id IN (SELECT session_id FROM strength_sessions WHERE file_id = ?)",
        "DELETE FROM strength_sessions WHERE file_id = ?",
    ):
        con.execute(sql, [file_id])
    con.execute("DELETE FROM source_files WHERE path = ?", [path])


def _delete_activity(con: duckdb.DuckDBPyConnection, activity_id: str) -> None:
    for table in ("samples", "laps", "activities"):
        con.execute(f"DELETE FROM {table} WHERE activity_id = ?", [activity_id])


def _existing_match(con: duckdb.DuckDBPyConnection, act, file_id: str) -> dict | None:
    start = act.start_time.to_pydatetime()
    rows = con.execute(
        f"""SELECT a.activity_id, a.file_id, a.source_format, a.n_samples, a.elapsed_s, a.sport,
                   abs(epoch(a.start_time) - epoch(?::TIMESTAMPTZ)) AS gap_s
            FROM activities a
            WHERE a.athlete_id = ? AND a.file_id <> ?
              AND a.start_time BETWEEN ?::TIMESTAMPTZ - INTERVAL {int(DUPLICATE_START_TOLERANCE_S)} SECOND
                                   AND ?::TIMESTAMPTZ + INTERVAL {int(DUPLICATE_START_TOLERANCE_S)} SECOND
            ORDER BY gap_s, a.activity_id""",
        [start, act.athlete_id, file_id, start, start],
    ).fetchall()
    for activity_id, other_file, fmt, n_samples, elapsed, sport, _gap in rows:
        a, b = float(elapsed or 0.0), float(act.elapsed_s or 0.0)
        if sport != act.sport and UNKNOWN_SPORT not in (sport, act.sport):
            continue
        if abs(a - b) <= max(DUPLICATE_ELAPSED_FLOOR_S, DUPLICATE_ELAPSED_TOLERANCE * max(a, b)):
            channels = con.execute(
                "SELECT " + " + ".join(f"(count({c}) > 0)::INT" for c in CHANNEL_COLUMNS)
                + " FROM samples WHERE activity_id = ?", [activity_id]).fetchone()[0]
            return {"activity_id": activity_id, "file_id": other_file, "rank": _rank(fmt, channels, n_samples)}
    return None


def load_parsed(con: duckdb.DuckDBPyConnection, parsed: ParsedFile, previous_file_id: str | None) -> LoadOutcome:
    """Write one file's rows and its ``source_files`` row in one transaction.

    Args:
        con: read-write warehouse connection (no transaction open).
        parsed: the reader's result (any status).
        previous_file_id: sha256 stored for this path before, when the file changed since.
    """
    with transaction(con):
        if previous_file_id is not None:
            delete_file_rows(con, previous_file_id, parsed.path)
        outcome = _load_rows(con, parsed) if parsed.status == "ok" else LoadOutcome(parsed.status, parsed.message)
        con.execute(
            """INSERT OR REPLACE INTO source_files (path, file_id, athlete_id, format, size_bytes, status, message,
                   ingested_at, n_activities, n_samples, duplicate_of)
               VALUES (?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?)""",
            [parsed.path, parsed.file_id, parsed.athlete_id, parsed.format, parsed.size_bytes, outcome.status,
             outcome.message, outcome.n_activities, outcome.n_samples, outcome.duplicate_of],
        )
    return outcome


def _load_rows(con: duckdb.DuckDBPyConnection, parsed: ParsedFile) -> LoadOutcome:
    acts = parsed.activities
    samples = parsed.samples
    keep_ids: list[str] = []
    lost_to: list[str] = []
    replaced: list[str] = []
    for act in acts.itertuples(index=False):
        own = samples[samples["activity_id"] == act.activity_id] if len(acts) > 1 else samples
        match = _existing_match(con, act, parsed.file_id)
        if match is not None:
            mine = _rank(act.source_format, _channels(own), act.n_samples)
            if mine <= match["rank"]:
                lost_to.append(match["activity_id"])
                continue
            _delete_activity(con, match["activity_id"])
            _mark_if_fully_duplicate(con, match["file_id"], act.activity_id, parsed.path)
            replaced.append(match["activity_id"])
        keep_ids.append(act.activity_id)

    keep = acts["activity_id"].isin(keep_ids)
    new_acts = acts[keep].copy()
    # An id taken by a different (non-duplicate) recording starting the same second: make it unique.
    taken = {r[0] for r in con.execute(
        "SELECT activity_id FROM activities WHERE activity_id IN (SELECT * FROM unnest(?))",
        [list(new_acts["activity_id"])]).fetchall()} if len(new_acts) else set()
    rename = {a: f"{a}-{parsed.file_id[:8]}" for a in taken}
    new_samples = samples[samples["activity_id"].isin(keep_ids)]
    new_laps = parsed.laps[parsed.laps["activity_id"].isin(keep_ids)] if len(parsed.laps) else parsed.laps
    if rename:
        new_acts["activity_id"] = new_acts["activity_id"].replace(rename)
        new_samples = new_samples.assign(activity_id=new_samples["activity_id"].replace(rename))
        new_laps = new_laps.assign(activity_id=new_laps["activity_id"].replace(rename))
    insert_frame(con, "activities", new_acts, ACTIVITY_COLUMNS)
    insert_frame(con, "samples", new_samples, SAMPLE_COLUMNS)
    insert_frame(con, "laps", new_laps, LAP_COLUMNS)

    strength_note = insert_strength(con, parsed) if len(parsed.strength_sessions) else None
    n_strength = len(parsed.strength_sessions)
    parts = [parsed.message] if parsed.message else []
    if lost_to:
        parts.append(f"{len(lost_to)} activit{'y' if len(lost_to) == 1 else 'ies'} already present from a "
                     f"richer or equal source ({', '.join(lost_to)})")
    if replaced:
        parts.append(f"replaced poorer duplicate(s) {', '.join(replaced)}")
    if strength_note:
        parts.append(strength_note)
    if parsed.warnings:
        parts.append("warnings: " + "; ".join(parsed.warnings[:5])
                     + (f" (+{len(parsed.warnings) - 5} more)" if len(parsed.warnings) > 5 else ""))
    message = "; ".join(parts)
    if not keep_ids and lost_to and not n_strength:
        return LoadOutcome("duplicate", message, 0, 0, duplicate_of=lost_to[0])
    return LoadOutcome("ok", message, len(keep_ids), int(len(new_samples)),
                       sports=tuple(str(s) for s in new_acts["sport"]))


def _mark_if_fully_duplicate(con: duckdb.DuckDBPyConnection, file_id: str, winner_id: str, winner_path: str) -> None:
    """The older file lost its (last) activity to a richer source: mark it ``duplicate``."""
    remaining = con.execute("SELECT count(*) FROM activities WHERE file_id = ?", [file_id]).fetchone()[0]
    strength = con.execute("SELECT count(*) FROM strength_sessions WHERE file_id = ?", [file_id]).fetchone()[0]
    if remaining == 0 and strength == 0:
        con.execute(
            """UPDATE source_files SET status = 'duplicate', duplicate_of = ?, n_activities = 0, n_samples = 0,
                   message = 'same activity as ' || ? || ', a richer source'
               WHERE file_id = ? AND status = 'ok'""",
            [winner_id, winner_path, file_id])
    else:
        con.execute(
            """UPDATE source_files SET n_activities = ?,
                   n_samples = (SELECT count(*) FROM samples s JOIN activities a USING (activity_id)
                                WHERE a.file_id = ?)
               WHERE file_id = ? AND status = 'ok'""", [remaining, file_id, file_id])

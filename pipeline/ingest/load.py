"""Loading one :class:`ParsedFile` into the warehouse, in one transaction, with duplicate resolution.

Identity is per athlete: a file's rows are those of its athlete with its ``file_id``; the same bytes in
two athletes' folders are two files, each loaded for its own athlete.

Duplicates (docs/ingest.md, "What counts as a duplicate"): a new activity is the same recording as an
activity already stored for the same athlete from another file when their sports agree (``unknown``, as
GPX without a type gives, agrees with any sport) and either

* **same start**: their start times differ by at most :data:`DUPLICATE_START_TOLERANCE_S` and their
  elapsed times by at most :data:`DUPLICATE_ELAPSED_TOLERANCE` (relative) or
  :data:`DUPLICATE_ELAPSED_FLOOR_S`, whichever is larger; or
* **overlap**: their time ranges overlap by at least :data:`DUPLICATE_OVERLAP_SHARE` of the shorter one
  (two devices recording one run, started a few minutes apart).

The richer one is kept: source format (FIT > TCX > GPX), then number of recorded channels, then
number of samples; on a tie the activity already stored stays. A file all of whose activities (and
strength sessions) lost is ``duplicate`` with ``duplicate_of`` set. Every loss is recorded in the loser's
``source_files.shadowed_by``, so that when the winner's file goes, the loser is read again (promoted).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from pipeline.ingest.common import UNKNOWN_SPORT
from pipeline.ingest.load_strength import StrengthLoadResult, load_strength
from pipeline.ingest.parsed import ACTIVITY_COLUMNS, LAP_COLUMNS, SAMPLE_COLUMNS, ParsedFile
from pipeline.warehouse.db import insert_frame, transaction
from pipeline.warehouse.lifecycle import delete_activities

DUPLICATE_START_TOLERANCE_S = 120.0
DUPLICATE_ELAPSED_TOLERANCE = 0.10
DUPLICATE_ELAPSED_FLOOR_S = 60.0
# Two recordings of one athlete whose time ranges overlap by >= 80 % of the shorter one are one activity.
# 80 %: a second device started up to a fifth of the run late (or stopped early) still matches, while
# back-to-back activities (a warm-up then a race, overlapping by seconds) never do.
DUPLICATE_OVERLAP_SHARE = 0.8
FORMAT_RANK = {"fit": 3, "tcx": 2, "gpx": 1}
CHANNEL_COLUMNS = ("lat_deg", "altitude_m", "distance_m", "speed_m_s", "heart_rate_bpm", "cadence_spm",
                   "power_w", "temperature_c")


@dataclass(frozen=True)
class LoadOutcome:
    """What loading one file did: its final status, message, counts of rows written, and the activity and
    session ids that loading removed (the previous version of the file at this path)."""

    status: str
    message: str
    n_activities: int = 0
    n_samples: int = 0
    duplicate_of: str | None = None
    sports: tuple[str, ...] = ()     # sport of each activity written
    removed_ids: tuple[str, ...] = ()


def _channels(samples: pd.DataFrame) -> int:
    return int(sum(samples[c].notna().any() for c in CHANNEL_COLUMNS if c in samples))


def _rank(source_format: str, channels: int, n_samples: int) -> tuple[int, int, int]:
    return (FORMAT_RANK.get(str(source_format).split(".")[0], 0), channels, int(n_samples or 0))


def file_row_ids(con: duckdb.DuckDBPyConnection, athlete_id: str, file_id: str) -> list[str]:
    """Activity and session ids the file (``athlete_id``, ``file_id``) holds in the warehouse."""
    return [r[0] for r in con.execute(
        "SELECT activity_id FROM activities WHERE athlete_id = ? AND file_id = ? "
        "UNION ALL SELECT session_id FROM strength_sessions WHERE athlete_id = ? AND file_id = ?",
        [athlete_id, file_id, athlete_id, file_id]).fetchall()]


def delete_data_rows(con: duckdb.DuckDBPyConnection, athlete_id: str, file_id: str) -> list[str]:
    """Delete every data row of the file (``athlete_id``, ``file_id``); returns the ids removed."""
    ids = file_row_ids(con, athlete_id, file_id)
    args = [athlete_id, file_id]
    delete_activities(con, "SELECT activity_id FROM activities WHERE athlete_id = ? AND file_id = ?", args)
    for sql in (
        "DELETE FROM strength_sets WHERE session_id IN "
        "(SELECT session_id FROM strength_sessions WHERE athlete_id = ? AND file_id = ?)",
        "DELETE FROM strength_sessions WHERE athlete_id = ? AND file_id = ?",
    ):
        con.execute(sql, args)
    return ids


def delete_file_rows(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    """Remove what the file stored at ``path`` wrote: its ``source_files`` row and, when it is the file
    holding the data (status ``ok``; an identical copy at another path holds none), its data rows.

    Runs inside the caller's transaction. Returns the activity and session ids removed.
    """
    row = con.execute("SELECT file_id, athlete_id, status FROM source_files WHERE path = ?", [path]).fetchone()
    if row is None:
        return []
    file_id, athlete_id, status = row
    removed = delete_data_rows(con, athlete_id, file_id) if status == "ok" else []
    con.execute("DELETE FROM source_files WHERE path = ?", [path])
    return removed


def _delete_activity(con: duckdb.DuckDBPyConnection, activity_id: str) -> None:
    delete_activities(con, "SELECT ?", [activity_id])


def _same_recording(act_start_s: float, act, other: tuple) -> float | None:
    """How strongly ``other`` (a stored activity: ..., elapsed_s, sport, start in epoch seconds) matches
    ``act``: None = not the same recording, else a sort key (smaller = better: same-start matches first,
    closest start first; then overlaps, largest first)."""
    elapsed, sport, start_s = other[4], other[5], float(other[6])
    if sport != act.sport and UNKNOWN_SPORT not in (sport, act.sport):
        return None
    a, b = float(elapsed or 0.0), float(act.elapsed_s or 0.0)
    gap_s = abs(start_s - act_start_s)
    if gap_s <= DUPLICATE_START_TOLERANCE_S and abs(a - b) <= max(DUPLICATE_ELAPSED_FLOOR_S,
                                                                DUPLICATE_ELAPSED_TOLERANCE * max(a, b)):
        return gap_s / DUPLICATE_START_TOLERANCE_S - 1.0          # in [-1, 0]
    shorter = min(a, b)
    if shorter <= 0:
        return None
    overlap_s = min(start_s + a, act_start_s + b) - max(start_s, act_start_s)
    share = overlap_s / shorter
    return 1.0 - share if share >= DUPLICATE_OVERLAP_SHARE else None   # in [0, 0.2]


def _existing_match(con: duckdb.DuckDBPyConnection, act, file_id: str) -> dict | None:
    """The stored activity of the same athlete (another file) that is the same recording as ``act``."""
    start = act.start_time.to_pydatetime()
    start_s = act.start_time.timestamp()
    length_s = max(float(act.elapsed_s or 0.0), 0.0)
    rows = con.execute(
        f"""SELECT activity_id, file_id, source_format, n_samples, elapsed_s, sport, epoch(start_time)
            FROM activities
            WHERE athlete_id = ? AND file_id <> ?
              AND start_time <= ?::TIMESTAMPTZ + to_seconds(? + {DUPLICATE_START_TOLERANCE_S})
              AND start_time >= ?::TIMESTAMPTZ - to_seconds({DUPLICATE_START_TOLERANCE_S} + 172800)
            ORDER BY start_time, activity_id""",
        [act.athlete_id, file_id, start, length_s, start],
    ).fetchall()
    scored = sorted((key, row[0], row) for row in rows
                    if (key := _same_recording(start_s, act, row)) is not None)
    if not scored:
        return None
    activity_id, other_file, fmt, n_samples = scored[0][2][:4]
    channels = con.execute(
        "SELECT " + " + ".join(f"(count({c}) > 0)::INT" for c in CHANNEL_COLUMNS)
        + " FROM samples WHERE activity_id = ?", [activity_id]).fetchone()[0]
    return {"activity_id": activity_id, "file_id": other_file, "rank": _rank(fmt, channels, n_samples)}


def load_parsed(con: duckdb.DuckDBPyConnection, parsed: ParsedFile) -> LoadOutcome:
    """Write one file's rows and its ``source_files`` row in one transaction.

    Whatever was stored for ``parsed.path`` before (an earlier version of the file, or a retry) is
    replaced; ``LoadOutcome.removed_ids`` names the activities and sessions that went with it.

    Args:
        con: read-write warehouse connection (no transaction open).
        parsed: the reader's result (any status), after the sanity gate.
    """
    with transaction(con):
        removed = delete_file_rows(con, parsed.path)
        if parsed.status == "ok":
            outcome, shadowed_by = _load_rows(con, parsed)
        else:
            outcome, shadowed_by = LoadOutcome(parsed.status, parsed.message), []
        write_source_row(con, parsed, outcome, shadowed_by)
    return LoadOutcome(outcome.status, outcome.message, outcome.n_activities, outcome.n_samples,
                       outcome.duplicate_of, outcome.sports, tuple(removed))


def write_source_row(con: duckdb.DuckDBPyConnection, parsed: ParsedFile, outcome: LoadOutcome,
                     shadowed_by: list[str]) -> None:
    """The file's ``source_files`` row (inside the caller's transaction)."""
    con.execute(
        """INSERT OR REPLACE INTO source_files (path, file_id, athlete_id, format, size_bytes, status, message,
               ingested_at, n_activities, n_samples, duplicate_of, shadowed_by)
           VALUES (?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?::VARCHAR[])""",
        [parsed.path, parsed.file_id, parsed.athlete_id, parsed.format, parsed.size_bytes, outcome.status,
         outcome.message, outcome.n_activities, outcome.n_samples, outcome.duplicate_of, list(shadowed_by)],
    )


@dataclass
class _Plan:
    """Which of a file's activities are written, which lost to stored ones, which replaced stored ones."""

    keep_ids: list[str]
    lost_to: list[str]
    replaced: list[tuple[str, str, str]]    # (stored activity id, its file_id, the new activity id)


def _plan_activities(con: duckdb.DuckDBPyConnection, parsed: ParsedFile) -> _Plan:
    acts, samples = parsed.activities, parsed.samples
    plan = _Plan([], [], [])
    for act in acts.itertuples(index=False):
        own = samples[samples["activity_id"] == act.activity_id] if len(acts) > 1 else samples
        match = _existing_match(con, act, parsed.file_id)
        if match is not None:
            if _rank(act.source_format, _channels(own), act.n_samples) <= match["rank"]:
                plan.lost_to.append(match["activity_id"])
                continue
            _delete_activity(con, match["activity_id"])
            plan.replaced.append((match["activity_id"], match["file_id"], act.activity_id))
        plan.keep_ids.append(act.activity_id)
    return plan


def _insert_activities(con: duckdb.DuckDBPyConnection, parsed: ParsedFile,
                       keep_ids: list[str]) -> tuple[pd.DataFrame, int, dict]:
    """Insert the kept activities, their samples and laps; returns (activities written, samples, renames)."""
    acts = parsed.activities
    new_acts = acts[acts["activity_id"].isin(keep_ids)].copy()
    # An id taken by a different (non-duplicate) recording starting the same second: make it unique.
    taken = {r[0] for r in con.execute(
        "SELECT activity_id FROM activities WHERE activity_id IN (SELECT * FROM unnest(?))",
        [list(new_acts["activity_id"])]).fetchall()} if len(new_acts) else set()
    rename = {a: f"{a}-{parsed.file_id[:8]}" for a in taken}
    new_samples = parsed.samples[parsed.samples["activity_id"].isin(keep_ids)]
    new_laps = parsed.laps[parsed.laps["activity_id"].isin(keep_ids)] if len(parsed.laps) else parsed.laps
    if rename:
        new_acts["activity_id"] = new_acts["activity_id"].replace(rename)
        new_samples = new_samples.assign(activity_id=new_samples["activity_id"].replace(rename))
        new_laps = new_laps.assign(activity_id=new_laps["activity_id"].replace(rename))
    insert_frame(con, "activities", new_acts, ACTIVITY_COLUMNS)
    insert_frame(con, "samples", new_samples, SAMPLE_COLUMNS)
    insert_frame(con, "laps", new_laps, LAP_COLUMNS)
    return new_acts, len(new_samples), rename


def _load_rows(con: duckdb.DuckDBPyConnection, parsed: ParsedFile) -> tuple[LoadOutcome, list[str]]:
    """Write an ``ok`` file's rows; returns its outcome and the ids of other files that shadow it."""
    plan = _plan_activities(con, parsed)
    new_acts, n_samples, rename = _insert_activities(con, parsed, plan.keep_ids)
    for old_id, old_file, new_id in plan.replaced:
        record_loss(con, parsed.athlete_id, old_file, old_id, rename.get(new_id, new_id), parsed.path)
    strength = load_strength(con, parsed)
    for old_id, old_file, new_id in strength.replaced_pairs:
        record_loss(con, parsed.athlete_id, old_file, old_id, new_id, parsed.path)
    shadowed_by = plan.lost_to + list(strength.shadowed_by)
    message = _message(parsed, plan, strength)
    n_sessions = strength.inserted + strength.unchanged
    if not plan.keep_ids and not n_sessions and shadowed_by:
        return LoadOutcome("duplicate", message, 0, 0, duplicate_of=shadowed_by[0]), shadowed_by
    return (LoadOutcome("ok", message, len(plan.keep_ids) + n_sessions, n_samples,
                        sports=tuple(str(s) for s in new_acts["sport"])), shadowed_by)


def plain_message(parsed: ParsedFile) -> str:
    """The message of an ``ok`` file that met no duplicate and holds no strength sessions."""
    return _message(parsed, _Plan([], [], []), StrengthLoadResult())


def _message(parsed: ParsedFile, plan: _Plan, strength: StrengthLoadResult) -> str:
    parts = [parsed.message] if parsed.message else []
    lost_to, replaced = plan.lost_to, [old for old, _, _ in plan.replaced]
    if lost_to:
        parts.append(f"{len(lost_to)} activit{'y' if len(lost_to) == 1 else 'ies'} already present from a "
                     f"richer or equal source ({', '.join(lost_to)})")
    if replaced:
        parts.append(f"replaced poorer duplicate(s) {', '.join(replaced)}")
    if strength.note():
        parts.append(strength.note())
    if parsed.warnings:
        parts.append("warnings: " + "; ".join(parsed.warnings[:5])
                     + (f" (+{len(parsed.warnings) - 5} more)" if len(parsed.warnings) > 5 else ""))
    return "; ".join(parts)


def record_loss(con: duckdb.DuckDBPyConnection, athlete_id: str, loser_file_id: str, old_id: str, new_id: str,
                winner_path: str) -> None:
    """A stored activity/session (``old_id``) was replaced by a richer one (``new_id``) from ``winner_path``.

    Files shadowed by ``old_id`` are now shadowed by ``new_id``; the loser's file records ``new_id`` in its
    ``shadowed_by`` and becomes ``duplicate`` when nothing of it is left.
    """
    con.execute(
        """UPDATE source_files
           SET shadowed_by = [CASE WHEN x = ? THEN ? ELSE x END FOR x IN shadowed_by],
               duplicate_of = CASE WHEN duplicate_of = ? THEN ? ELSE duplicate_of END
           WHERE athlete_id = ? AND (list_contains(shadowed_by, ?) OR duplicate_of = ?)""",
        [old_id, new_id, old_id, new_id, athlete_id, old_id, old_id])
    remaining = len(file_row_ids(con, athlete_id, loser_file_id))
    n_samples = con.execute("SELECT count(*) FROM samples s JOIN activities a USING (activity_id) "
                            "WHERE a.athlete_id = ? AND a.file_id = ?", [athlete_id, loser_file_id]).fetchone()[0]
    con.execute(
        """UPDATE source_files
           SET shadowed_by = list_append(coalesce(shadowed_by, []::VARCHAR[]), ?),
               n_activities = ?, n_samples = ?,
               status = CASE WHEN ? = 0 THEN 'duplicate' ELSE status END,
               duplicate_of = CASE WHEN ? = 0 THEN ? ELSE duplicate_of END,
               message = CASE WHEN ? = 0 THEN 'same activity as ' || ? || ' from ' || ? || ', a richer source'
                              ELSE message END
           WHERE athlete_id = ? AND file_id = ? AND status = 'ok'""",
        [new_id, remaining, n_samples, remaining, remaining, new_id, remaining, new_id, winner_path,
         athlete_id, loser_file_id])


def load_identical_copy(con: duckdb.DuckDBPyConnection, parsed: ParsedFile, holder: str) -> LoadOutcome:
    """A file with the same bytes (and athlete) as the stored file ``holder``: a ``duplicate`` row
    shadowed by the holder's activities and sessions, in one transaction."""
    with transaction(con):
        removed = delete_file_rows(con, parsed.path)
        ids = file_row_ids(con, parsed.athlete_id, parsed.file_id)
        outcome = LoadOutcome("duplicate", f"identical content to {holder}", duplicate_of=ids[0] if ids else None,
                              removed_ids=tuple(removed))
        copy = ParsedFile(path=parsed.path, file_id=parsed.file_id, athlete_id=parsed.athlete_id,
                          format=parsed.format, size_bytes=parsed.size_bytes, status="duplicate")
        write_source_row(con, copy, outcome, ids)
    return outcome


def record_unloaded(con: duckdb.DuckDBPyConnection, files: list[ParsedFile]) -> list[LoadOutcome]:
    """The ``source_files`` rows of files that load no data (``error``/``skipped``) at paths the warehouse
    has never seen, in ONE transaction for the lot.

    Such rows have nothing to be half-written (no data rows, no earlier row to replace), so grouping them
    keeps every guarantee of :func:`load_parsed` while a commit (~7 ms of WAL sync) per unreadable member
    of a 100,000-member archive would cost minutes. Returns one outcome per file, in order.
    """
    if not files:
        return []
    assert all(f.status in ("error", "skipped") for f in files)
    rows = pd.DataFrame({
        "path": [f.path for f in files], "file_id": [f.file_id for f in files],
        "athlete_id": [f.athlete_id for f in files], "format": [f.format for f in files],
        "size_bytes": [f.size_bytes for f in files], "status": [f.status for f in files],
        "message": [f.message for f in files], "ingested_at": pd.Timestamp.now(tz="UTC"),
        "n_activities": 0, "n_samples": 0, "duplicate_of": None, "shadowed_by": [[] for _ in files],
    })
    with transaction(con):
        insert_frame(con, "source_files", rows)
    return [LoadOutcome(f.status, f.message) for f in files]

"""What every strength source shares: stable session ids, validation limits, unit conversion, frames.

Readers (CSV layouts in :mod:`pipeline.ingest.strength_csv`, FIT in :mod:`pipeline.ingest.fit_strength`) turn
their rows into :class:`SetRow` values; :func:`strength_frames` groups them into the two staging frames
``strength_sessions`` and ``strength_sets`` (columns in :mod:`pipeline.warehouse.contract`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd

from pipeline.ingest.parsed import STRENGTH_SESSION_COLUMNS, STRENGTH_SET_COLUMNS
from pipeline.warehouse.contract import WORK_SET_TYPES

KG_PER_LB = 0.45359237            # exact, by definition of the international pound
M_PER_MILE = 1609.344
M_PER_FOOT = 0.3048
M_PER_YARD = 0.9144

# Validation limits (docs/strength.md, "Validation"). A row outside them is rejected with a warning
# naming the row; the rest of the file is kept. Generous on purpose: they catch typos and unit mix-ups
# (a 2,000 kg squat, -3 reps), not unusual training.
MAX_WEIGHT_KG = 600.0             # above the heaviest raw lifts ever recorded (~500 kg deadlift)
MAX_REPS = 1000
MAX_SET_DURATION_S = 6 * 3600.0   # a single set (plank, carry, row) longer than 6 h is a typo
MAX_SET_DISTANCE_M = 100_000.0
MAX_SESSION_DURATION_S = 24 * 3600.0
RPE_RANGE = (0.0, 10.0)           # Borg CR-10 / RIR-based RPE; outside it the RPE is dropped, the set kept
MAX_SETS_PER_ROW = 100            # generic CSV "sets" column



class RowRejected(ValueError):
    """A row that cannot become a set; the message is the reason ("negative reps (-3)")."""


@dataclass(frozen=True)
class SetRow:
    """One set as read from a source, before grouping into sessions. Weights already in kg."""

    row: int                     # 1-based line number in the file (header = 1); FIT: message index
    start_utc: datetime          # session start, timezone-aware UTC
    session_duration_s: float | None
    title: str | None
    exercise: str | None
    category: str | None
    set_type: str                # warmup | working | drop | failure
    reps: int | None
    weight_kg: float | None
    duration_s: float | None
    rpe: float | None
    distance_m: float | None


def session_id_for(athlete_id: str, start_utc: datetime) -> str:
    """Stable session id: athlete + session start in UTC to the minute.

    The same workout read from two files (a Strong export today and the cumulative export next month)
    gets the same id, so re-ingest replaces nothing. Sources whose clocks differ by a few minutes are
    matched later by :func:`pipeline.ingest.load_strength.insert_strength` with a tolerance.
    """
    minute = start_utc.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    digest = hashlib.sha1(f"{athlete_id}|{minute}".encode()).hexdigest()[:16]
    return f"ss_{digest}"


def check_set_values(
    reps: int | None, weight_kg: float | None, duration_s: float | None, distance_m: float | None
) -> None:
    """Raise :class:`RowRejected` naming the first impossible value (limits above)."""
    if reps is not None:
        if reps < 0:
            raise RowRejected(f"negative reps ({reps})")
        if reps > MAX_REPS:
            raise RowRejected(f"{reps} reps is more than the limit of {MAX_REPS}")
    if weight_kg is not None:
        if weight_kg < 0:
            raise RowRejected(f"negative weight ({weight_kg:g} kg)")
        if weight_kg > MAX_WEIGHT_KG:
            raise RowRejected(f"weight {weight_kg:g} kg is above the limit of {MAX_WEIGHT_KG:g} kg")
    if duration_s is not None and not 0 <= duration_s <= MAX_SET_DURATION_S:
        raise RowRejected(f"set duration {duration_s:g} s outside 0..{MAX_SET_DURATION_S:g} s")
    if distance_m is not None and not 0 <= distance_m <= MAX_SET_DISTANCE_M:
        raise RowRejected(f"distance {distance_m:g} m outside 0..{MAX_SET_DISTANCE_M:g} m")


def strength_frames(
    rows: list[SetRow], *, athlete_id: str, file_id: str, source_format: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Group set rows into sessions (one per athlete + start minute) -> (strength_sessions, strength_sets).

    Sets keep file order; ``set_index`` counts from 0 within each session. A session's duration and
    title are the first non-empty ones among its rows.
    """
    sessions: dict[str, dict] = {}
    sets: list[dict] = []
    for r in rows:
        sid = session_id_for(athlete_id, r.start_utc)
        s = sessions.get(sid)
        if s is None:
            s = sessions[sid] = {
                "session_id": sid, "athlete_id": athlete_id,
                "start_time": pd.Timestamp(r.start_utc).tz_convert("UTC").floor("s"),
                "duration_s": r.session_duration_s, "title": r.title, "source_format": source_format,
                "file_id": file_id, "n_sets": 0, "n_working_sets": 0,
            }
        if s["duration_s"] is None:
            s["duration_s"] = r.session_duration_s
        if not s["title"]:
            s["title"] = r.title
        sets.append({
            "session_id": sid, "set_index": s["n_sets"], "exercise": r.exercise, "category": r.category,
            "set_type": r.set_type, "reps": r.reps, "weight_kg": r.weight_kg, "duration_s": r.duration_s,
            "rpe": r.rpe, "distance_m": r.distance_m,
        })
        s["n_sets"] += 1
        s["n_working_sets"] += r.set_type in WORK_SET_TYPES
    return sessions_frame(list(sessions.values())), sets_frame(sets)


def sessions_frame(records: list[dict]) -> pd.DataFrame:
    """``strength_sessions`` rows with the warehouse dtypes (empty list -> empty typed frame)."""
    df = pd.DataFrame.from_records(records, columns=STRENGTH_SESSION_COLUMNS)
    df["start_time"] = pd.to_datetime(df["start_time"], utc=True)
    for col in ("duration_s",):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("n_sets", "n_working_sets"):
        df[col] = df[col].astype("Int64")
    return df


def sets_frame(records: list[dict]) -> pd.DataFrame:
    """``strength_sets`` rows with the warehouse dtypes (nullable ints, float kg/s/m)."""
    df = pd.DataFrame.from_records(records, columns=STRENGTH_SET_COLUMNS)
    for col in ("set_index", "reps"):
        df[col] = df[col].astype("Int64")
    for col in ("weight_kg", "duration_s", "rpe", "distance_m"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("session_id", "exercise", "category", "set_type"):
        df[col] = df[col].astype("object")
    return df


def summary_message(sessions: pd.DataFrame, sets: pd.DataFrame, rejected: int) -> str:
    """"12 sessions, 143 sets (118 working); 2 rows rejected" (the file's source_files.message)."""
    n_work = int(sets["set_type"].isin(WORK_SET_TYPES).sum()) if len(sets) else 0
    msg = (f"{len(sessions)} session{'s' if len(sessions) != 1 else ''}, "
           f"{len(sets)} set{'s' if len(sets) != 1 else ''} ({n_work} working)")
    if rejected:
        msg += f"; {rejected} row{'s' if rejected != 1 else ''} rejected"
    return msg

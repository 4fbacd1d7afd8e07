"""The one shape every reader returns and every loader takes.

Readers are pure functions of a file's bytes (plus its name and the athlete's settings): they never
open connections, so parsing can run in a process pool. Loaders take a connection and a
:class:`ParsedFile` and write it in one transaction.

Column lists below are written once, with units in the names, and match ``warehouse/schema.sql``.
A reader fills the frames it has and leaves the others empty (use :func:`empty_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

ACTIVITY_COLUMNS = [
    "activity_id", "athlete_id", "file_id", "sport", "sub_sport", "start_time", "elapsed_s", "timer_s",
    "distance_m", "avg_heart_rate_bpm", "device", "name", "source_format", "session_index", "n_samples",
]
SAMPLE_COLUMNS = [
    "activity_id", "athlete_id", "ts", "elapsed_s", "lat_deg", "lon_deg", "altitude_m", "distance_m",
    "speed_m_s", "heart_rate_bpm", "cadence_spm", "power_w", "temperature_c",
]
LAP_COLUMNS = [
    "activity_id", "lap_index", "start_time", "elapsed_s", "timer_s", "distance_m", "avg_heart_rate_bpm",
    "avg_speed_m_s",
]
STRENGTH_SESSION_COLUMNS = [
    "session_id", "athlete_id", "start_time", "duration_s", "title", "source_format", "file_id", "n_sets",
    "n_working_sets",
]
STRENGTH_SET_COLUMNS = [
    "session_id", "set_index", "exercise", "category", "set_type", "reps", "weight_kg", "duration_s", "rpe",
    "distance_m",
]
SET_TYPES = ("warmup", "working", "drop", "failure")
FILE_STATUSES = ("ok", "error", "duplicate", "skipped")

TABLE_COLUMNS = {
    "activities": ACTIVITY_COLUMNS,
    "samples": SAMPLE_COLUMNS,
    "laps": LAP_COLUMNS,
    "strength_sessions": STRENGTH_SESSION_COLUMNS,
    "strength_sets": STRENGTH_SET_COLUMNS,
}


def empty_frame(table: str) -> pd.DataFrame:
    return pd.DataFrame(columns=TABLE_COLUMNS[table])


@dataclass
class ParsedFile:
    """What one input file (or archive member) turned into.

    ``status`` is ``ok`` when at least one activity or strength session came out, ``skipped`` when the
    file is readable but holds nothing to analyse (a route, a settings file), ``error`` when it could
    not be read; ``message`` always says why in words a user understands. ``warnings`` lists problems
    that did not stop the file (a malformed CSV row: "row 17: negative reps").
    """

    path: str                      # as stored in source_files.path
    file_id: str                   # sha256 hex of the bytes
    athlete_id: str
    format: str
    size_bytes: int
    status: str = "ok"
    message: str = ""
    activities: pd.DataFrame = field(default_factory=lambda: empty_frame("activities"))
    samples: pd.DataFrame = field(default_factory=lambda: empty_frame("samples"))
    laps: pd.DataFrame = field(default_factory=lambda: empty_frame("laps"))
    strength_sessions: pd.DataFrame = field(default_factory=lambda: empty_frame("strength_sessions"))
    strength_sets: pd.DataFrame = field(default_factory=lambda: empty_frame("strength_sets"))
    warnings: list[str] = field(default_factory=list)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {table: getattr(self, table) for table in TABLE_COLUMNS}

"""The one shape every reader returns and every loader takes.

Readers are pure functions of a file's bytes (plus its name and the athlete's settings): they never
open connections, so parsing can run in a process pool. Loaders take a connection and a
:class:`ParsedFile` and write it in one transaction.

Column lists come from the warehouse contract (:mod:`pipeline.warehouse.contract`), written once there.
A reader fills the frames it has and leaves the others empty (use :func:`empty_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipeline.warehouse.contract import columns

ACTIVITY_COLUMNS = columns("activities")
SAMPLE_COLUMNS = columns("samples")
LAP_COLUMNS = columns("laps")
STRENGTH_SESSION_COLUMNS = columns("strength_sessions")
STRENGTH_SET_COLUMNS = columns("strength_sets")

# Pseudo-status of a file not read again: same path, same content, already in the warehouse.
UNCHANGED = "unchanged"

TABLE_COLUMNS = {
    "activities": ACTIVITY_COLUMNS,
    "samples": SAMPLE_COLUMNS,
    "laps": LAP_COLUMNS,
    "strength_sessions": STRENGTH_SESSION_COLUMNS,
    "strength_sets": STRENGTH_SET_COLUMNS,
}


_EMPTY = {table: pd.DataFrame(columns=cols) for table, cols in TABLE_COLUMNS.items()}


def empty_frame(table: str) -> pd.DataFrame:
    """An empty frame with the contract columns of ``table`` (a copy of a template: ~50x faster than
    building one, which matters for archives of 100,000 unreadable members)."""
    return _EMPTY[table].copy()


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

    @classmethod
    def failed(cls, path: str, athlete_id: str, message: str, *, file_id: str = "", fmt: str = "unknown",
               size_bytes: int = 0) -> ParsedFile:
        """A file (or archive member) that could not be read: status ``error``, ``message`` says why.

        ``file_id`` is empty when the bytes could not be read at all (nothing to hash).
        """
        return cls(path=path, file_id=file_id, athlete_id=athlete_id, format=fmt, size_bytes=size_bytes,
                   status="error", message=message)

    def __getstate__(self) -> dict:
        # Results travel from parser processes by pickle: empty frames (most files fill one or two, an
        # unreadable one none) are left out and rebuilt from templates, ~10x cheaper than pickling them.
        state = dict(self.__dict__)
        for table in TABLE_COLUMNS:
            if not len(state[table]):
                state[table] = None
        return state

    def __setstate__(self, state: dict) -> None:
        for table in TABLE_COLUMNS:
            if state[table] is None:
                state[table] = empty_frame(table)
        self.__dict__.update(state)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {table: getattr(self, table) for table in TABLE_COLUMNS}

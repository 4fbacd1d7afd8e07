"""The one shape every reader returns and every loader takes.

Readers are pure functions of a file's bytes (plus its name and the athlete's settings): they never
open connections, so parsing can run in a process pool. Loaders take a connection and a
:class:`ParsedFile` and write it in one transaction (or, for plain new files, a batch of them at once).

Column lists come from the warehouse contract (:mod:`pipeline.warehouse.contract`), written once there.
A reader fills the tables it has and leaves the others empty.

Why tables are not always DataFrames: a squad's first ingest reads thousands of small files, and a pandas
DataFrame costs ~0.3-1 ms to build, filter or concatenate whatever its size: more than decoding a small FIT
file. So the per-file path (reader -> sanity gate -> pickle to the writer -> batch loader) carries a table
as :class:`Rows` (a list of row dicts: activities, laps) or :class:`Columns` (one NumPy array per column:
samples), and the batch loader builds ONE frame per table for a batch of files. Reading
``parsed.activities`` (``samples``, ``laps``, ...) still gives a DataFrame, built on first use exactly as
the readers used to build it, so every other caller (the careful loader, tests) sees frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

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
# The UTC time column of the tables readers hand over as rows or columns.
TIME_COLUMN = {"activities": "start_time", "samples": "ts", "laps": "start_time"}
# Text columns of samples (object arrays); every other sample column but ts is float64 (NaN = absent).
SAMPLE_TEXT_COLUMNS = ("activity_id", "athlete_id")

_EMPTY = {table: pd.DataFrame(columns=cols) for table, cols in TABLE_COLUMNS.items()}


def empty_frame(table: str) -> pd.DataFrame:
    """An empty frame with the contract columns of ``table`` (a copy of a template: ~50x faster than
    building one, which matters for archives of 100,000 unreadable members)."""
    return _EMPTY[table].copy()


class Rows:
    """A small table (activities, laps) as a list of row dicts keyed by contract column."""

    __slots__ = ("table", "rows")

    def __init__(self, table: str, rows: list[dict]):
        self.table, self.rows = table, rows

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self) -> pd.DataFrame:
        """The rows as a frame with the contract columns, the time column as UTC datetimes."""
        if not self.rows:
            return empty_frame(self.table)
        frame = pd.DataFrame(self.rows, columns=TABLE_COLUMNS[self.table])
        time_col = TIME_COLUMN.get(self.table)
        if time_col:
            frame[time_col] = pd.to_datetime(frame[time_col], utc=True)
        return frame

    @classmethod
    def from_frame(cls, table: str, frame: pd.DataFrame) -> Rows:
        return cls(table, frame.to_dict("records"))


class Columns:
    """Samples as one NumPy array per contract column, all of length ``n``: ``ts`` datetime64 (UTC, no
    time zone attached), the text columns object arrays, every other column float64 with NaN = absent."""

    __slots__ = ("data", "n")

    def __init__(self, data: dict[str, np.ndarray], n: int):
        self.data, self.n = data, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, column: str) -> np.ndarray:
        return self.data[column]

    @classmethod
    def build(cls, n: int, **data: np.ndarray | None) -> Columns:
        """From the columns a reader has; absent (None) sample channels are all-NaN."""
        out = {}
        for name in SAMPLE_COLUMNS:
            value = data.get(name)
            out[name] = np.full(n, np.nan) if value is None else value
        return cls(out, n)

    def __getstate__(self) -> tuple[dict, int]:
        # Text columns repeat one id per activity: they travel from the parser processes as runs (value,
        # length), ~0.25 ms a small file less to pickle and ~0.15 ms less to unpickle than object arrays.
        return {k: (_runs(v) if v.dtype == object else v) for k, v in self.data.items()}, self.n

    def __setstate__(self, state: tuple[dict, int]) -> None:
        data, self.n = state
        self.data = {k: (np.repeat(v[0], v[1]) if isinstance(v, tuple) else v) for k, v in data.items()}

    def take(self, rows: np.ndarray) -> Columns:
        """The rows selected by a boolean mask or an index array."""
        picked = {k: v[rows] for k, v in self.data.items()}
        return Columns(picked, len(picked["ts"]))

    def assign(self, **data: np.ndarray) -> Columns:
        return Columns({**self.data, **data}, self.n)

    @classmethod
    def concat(cls, parts: list[Columns]) -> Columns:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls.build(0, ts=np.array([], dtype="datetime64[us]"),
                             **{c: np.array([], dtype=object) for c in SAMPLE_TEXT_COLUMNS})
        return cls({k: np.concatenate([p.data[k] for p in parts]) for k in SAMPLE_COLUMNS},
                   sum(p.n for p in parts))

    def frame(self) -> pd.DataFrame:
        """The samples frame (``ts`` as UTC datetimes), as the readers built it."""
        data = dict(self.data)
        data["ts"] = pd.DatetimeIndex(data["ts"]).tz_localize("UTC")
        return pd.DataFrame(data, columns=SAMPLE_COLUMNS)

    def arrow(self) -> pa.Table:
        """The samples as an Arrow table for the warehouse (NaN and NaT become NULL, as from a frame)."""
        arrays = []
        for name in SAMPLE_COLUMNS:
            value = self.data[name]
            if name == "ts":
                arrays.append(pa.array(value, from_pandas=True).cast(pa.timestamp("us", tz="UTC"), safe=False))
            elif name in SAMPLE_TEXT_COLUMNS:
                arrays.append(pa.array(value, type=pa.string(), from_pandas=True))
            else:
                arrays.append(pa.array(value, type=pa.float64(), from_pandas=True))
        return pa.Table.from_arrays(arrays, names=SAMPLE_COLUMNS)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Columns:
        """A samples frame (a test's, or one a caller assigned) as columns."""
        data = {}
        for name in SAMPLE_COLUMNS:
            column = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
            if name == "ts":
                data[name] = pd.DatetimeIndex(pd.to_datetime(column, utc=True)).tz_convert(None).to_numpy()
            elif name in SAMPLE_TEXT_COLUMNS:
                data[name] = column.to_numpy(dtype=object)
            else:
                data[name] = float_column(column)
        return cls(data, len(frame))


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An object array as (value of each run of equal neighbours, run lengths): np.repeat gives it back."""
    if not len(values):
        return values, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    return values[starts], np.diff(np.append(starts, len(values)))


def float_column(column: pd.Series) -> np.ndarray:
    """A writable float copy of a column (non-numbers as NaN)."""
    if pd.api.types.is_float_dtype(column.dtype) and not isinstance(column.dtype, pd.ArrowDtype):
        return column.to_numpy(dtype=float, na_value=np.nan, copy=True)   # already numbers: no parsing
    return np.array(pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan), copy=True)


Table = pd.DataFrame | Rows | Columns | None


@dataclass
class ParsedFile:
    """What one input file (or archive member) turned into.

    ``status`` is ``ok`` when at least one activity or strength session came out, ``skipped`` when the
    file is readable but holds nothing to analyse (a route, a settings file), ``error`` when it could
    not be read; ``message`` always says why in words a user understands. ``warnings`` lists problems
    that did not stop the file (a malformed CSV row: "row 17: negative reps").

    The tables (``activities``, ``samples``, ``laps``, ``strength_sessions``, ``strength_sets``) read as
    DataFrames; they may be given as frames or, by readers, as :class:`Rows` / :class:`Columns`
    (see the module docstring). :meth:`rows`, :meth:`columns` and :meth:`n_rows` read them without
    building a frame.
    """

    path: str                      # as stored in source_files.path
    file_id: str                   # sha256 hex of the bytes
    athlete_id: str
    format: str
    size_bytes: int
    status: str = "ok"
    message: str = ""
    activities: Table = None
    samples: Table = None
    laps: Table = None
    strength_sessions: Table = None
    strength_sets: Table = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def failed(cls, path: str, athlete_id: str, message: str, *, file_id: str = "", fmt: str = "unknown",
               size_bytes: int = 0) -> ParsedFile:
        """A file (or archive member) that could not be read: status ``error``, ``message`` says why.

        ``file_id`` is empty when the bytes could not be read at all (nothing to hash).
        """
        return cls(path=path, file_id=file_id, athlete_id=athlete_id, format=fmt, size_bytes=size_bytes,
                   status="error", message=message)

    def n_rows(self, table: str) -> int:
        """Rows of ``table`` (no frame built)."""
        value = self._tables.get(table)
        return 0 if value is None else len(value)

    def rows(self, table: str) -> list[dict]:
        """``activities`` or ``laps`` as row dicts (no frame built when the reader gave rows)."""
        value = self._tables.get(table)
        if value is None:
            return []
        if isinstance(value, pd.DataFrame):
            value = self._tables[table] = Rows.from_frame(table, value)
        return value.rows

    def columns(self) -> Columns:
        """``samples`` as :class:`Columns` (no frame built when the reader gave columns)."""
        value = self._tables.get("samples")
        if not isinstance(value, Columns):
            value = self._tables["samples"] = Columns.from_frame(
                value if value is not None else empty_frame("samples"))
        return value

    def __getstate__(self) -> dict:
        # Results travel from parser processes by pickle: rows and NumPy columns pickle ~10x faster than
        # frames, and an empty table travels as None.
        state = {k: v for k, v in self.__dict__.items() if k != "_tables"}
        state["_tables"] = {t: (v if v is not None and len(v) else None) for t, v in self._tables.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {table: getattr(self, table) for table in TABLE_COLUMNS}


def _table_attribute(table: str) -> property:
    """``ParsedFile.<table>``: a DataFrame on reading (built once from rows or columns, an empty frame with
    the contract columns when the table is empty); set to a frame, :class:`Rows` or :class:`Columns`."""
    def get(self: ParsedFile) -> pd.DataFrame:
        value = self._tables.get(table)
        if value is None:
            value = self._tables[table] = empty_frame(table)
        elif not isinstance(value, pd.DataFrame):
            value = self._tables[table] = value.frame()
        return value

    def set_(self: ParsedFile, value: Table) -> None:
        self.__dict__.setdefault("_tables", {})[table] = value

    return property(get, set_, doc=f"The {table} table as a DataFrame.")


# The dataclass stores the tables through these properties (its generated __init__ assigns them).
for _table in TABLE_COLUMNS:
    setattr(ParsedFile, _table, _table_attribute(_table))

"""Loading parsed files in batches: one transaction and one bulk insert per table for a batch of plain
files, every other file one by one; a batch that fails is retried file by file. Wired into the ingest
recipe by :func:`pipeline.ingest.run.ingest_paths` (``batch_files``).

Why: loading file by file costs a commit and a dozen statements per file (~40 ms), which bounded a squad's
ingest at ~40 files/s whatever the parsers did. Most files of an ingest are **plain**
(:func:`plain_files`): a new path, content not stored under another path, ``ok``, no strength sessions,
activity ids not taken, and no activity whose time range, widened by the same-start tolerance (120 s),
meets any activity stored for the athlete or any other activity of the batch (so neither duplicate rule of
:mod:`pipeline.ingest.load`, same start or overlap, can reach it). For such a file :func:`pipeline.ingest.load.load_parsed`
would delete nothing, find no duplicate, rename nothing and write exactly its activities, samples, laps and
an ``ok`` ``source_files`` row; :func:`load_plain_batch` writes the same rows for the whole batch at once.
Files that are not plain take the careful path (duplicates, promotion, strength) one by one, in order; they
cannot interact with the plain ones (the overlap test is symmetric and covers the batch).

The guarantee is kept: a batch is ONE transaction, so ``kill -9`` loses the batch, not half of it, and the
next run parses those files again; a batch whose load fails is rolled back and retried file by file
(:func:`load_files_one_by_one`), so one bad file cannot take good ones with it: the bad one is recorded as an
``error`` with the reason, the others are loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from pipeline.ingest.load import DUPLICATE_START_TOLERANCE_S, LoadOutcome, load_parsed, plain_message
from pipeline.ingest.parsed import ACTIVITY_COLUMNS, LAP_COLUMNS, SAMPLE_COLUMNS, Columns, ParsedFile, Rows
from pipeline.warehouse.contract import columns
from pipeline.warehouse.db import insert_frame, transaction

# A batch is flushed at this many files or samples, whichever comes first: large enough that the commit and
# the four insert statements (~5 ms each, whatever their size) are shared by many files, small enough that a
# retried batch and the memory held stay small. 256 small files: ~0.6 ms of the writer's CPU a file (64: ~0.8).
BATCH_FILES = 256
EPOCH = pd.Timestamp(0, tz="UTC")
BATCH_SAMPLES = 400_000


def _ranges(files: list[ParsedFile], only: list[bool] | None = None) -> pd.DataFrame:
    """One row per activity of the files (of those ``only`` marks): index of its file, athlete, activity
    id, start and end (epoch seconds). One frame for the whole batch, from the files' activity rows."""
    k, athletes, ids, starts, elapsed = [], [], [], [], []
    for index, f in enumerate(files):
        if only is not None and not only[index]:
            continue
        for row in f.rows("activities"):
            k.append(index)
            athletes.append(f.athlete_id)
            ids.append(row["activity_id"])
            starts.append(row["start_time"])
            elapsed.append(row["elapsed_s"])
    if not k:
        return pd.DataFrame(columns=["k", "athlete_id", "activity_id", "start_s", "end_s"])
    # seconds since the epoch whatever the timestamps' resolution (ns, us...)
    start = (pd.DatetimeIndex(pd.to_datetime(pd.Series(starts, dtype=object), utc=True)) - EPOCH).total_seconds()
    start = start.to_numpy()
    length = pd.to_numeric(pd.Series(elapsed, dtype=object), errors="coerce").fillna(0).to_numpy(dtype=float)
    return pd.DataFrame({"k": k, "athlete_id": athletes, "activity_id": ids, "start_s": start,
                         "end_s": start + length})


def _overlapping_in_batch(ranges: pd.DataFrame, pad_s: float) -> set[int]:
    """Files with an activity whose (padded) time range meets another file's activity of the same athlete."""
    hit: set[int] = set()
    for _, g in ranges.groupby("athlete_id", sort=False):
        g = g.sort_values("start_s")
        start, end, k = g["start_s"].to_numpy(), g["end_s"].to_numpy() + pad_s, g["k"].to_numpy()
        reach = np.maximum.accumulate(end)          # furthest end among the earlier activities
        for i in range(1, len(g)):
            if start[i] - pad_s <= reach[i - 1]:
                others = k[:i][end[:i] >= start[i] - pad_s]
                if (others != k[i]).any():
                    hit.add(int(k[i]))
                    hit.update(int(x) for x in others if x != k[i])
    return hit


def _overlapping_stored(con: duckdb.DuckDBPyConnection, ranges: pd.DataFrame, pad_s: float) -> set[int]:
    """Files with an activity whose (padded) time range meets an activity stored for the same athlete, or
    whose activity id is taken."""
    if not len(ranges):
        return set()
    con.register("_batch_ranges", ranges)
    try:
        rows = con.execute(
            f"""SELECT DISTINCT r.k FROM _batch_ranges r JOIN activities a ON a.athlete_id = r.athlete_id
                WHERE epoch(a.start_time) <= r.end_s + {pad_s}
                  AND epoch(a.start_time) + coalesce(a.elapsed_s, 0) >= r.start_s - {pad_s}
                UNION SELECT r.k FROM _batch_ranges r JOIN activities a USING (activity_id)""").fetchall()
    finally:
        con.unregister("_batch_ranges")
    return {int(r[0]) for r in rows}


def _activity_ids(f: ParsedFile) -> list:
    return [row["activity_id"] for row in f.rows("activities")]


def plain_files(con: duckdb.DuckDBPyConnection, files: list[ParsedFile], known_paths: set[str],
                holders: set[tuple[str, str]]) -> list[bool]:
    """Which files can be bulk-loaded (see the module docstring); ``known_paths``: paths the warehouse holds
    a row for; ``holders``: (athlete_id, file_id) of content stored under some path."""
    candidate = [f.status == "ok" and f.path not in known_paths and (f.athlete_id, f.file_id) not in holders
                 and not f.n_rows("strength_sessions") and f.n_rows("activities") > 0 for f in files]
    keys = Counter((f.athlete_id, f.file_id) for f in files)
    candidate = [c and keys[(f.athlete_id, f.file_id)] == 1 for c, f in zip(candidate, files)]
    ids = Counter(a for f in files for a in _activity_ids(f))
    taken = {a for a, n in ids.items() if n > 1}
    if taken:                        # the same activity id twice in the batch: let the careful path rename
        candidate = [c and not any(a in taken for a in _activity_ids(f)) for c, f in zip(candidate, files)]
    pad = DUPLICATE_START_TOLERANCE_S      # wider than any duplicate rule reaches (same start +-120 s, overlap)
    blocked = _overlapping_in_batch(_ranges(files), pad) | _overlapping_stored(con, _ranges(files, candidate), pad)
    return [c and k not in blocked for k, c in enumerate(candidate)]


def _source_rows(files: list[ParsedFile], n_samples: list[int]) -> pd.DataFrame:
    return pd.DataFrame({
        "path": [f.path for f in files], "file_id": [f.file_id for f in files],
        "athlete_id": [f.athlete_id for f in files], "format": [f.format for f in files],
        "size_bytes": [f.size_bytes for f in files], "status": "ok",
        "message": [plain_message(f) for f in files], "ingested_at": pd.Timestamp.now(tz="UTC"),
        "n_activities": [f.n_rows("activities") for f in files], "n_samples": n_samples, "duplicate_of": None,
        "shadowed_by": [[] for _ in files]})


def _own_samples(f: ParsedFile) -> Columns:
    """The file's samples that belong to one of its activities (all of them, for a reader's file)."""
    samples, ids = f.columns(), _activity_ids(f)
    mine = np.zeros(len(samples), dtype=bool)
    for a in ids:
        mine |= samples["activity_id"] == a
    return samples if mine.all() else samples.take(mine)


def load_plain_batch(con: duckdb.DuckDBPyConnection, files: list[ParsedFile]) -> list[LoadOutcome]:
    """Write the plain files' rows (see :func:`plain_files`) in ONE transaction: one insert per table, each
    from one frame built for the whole batch. Raises (and rolls back) on any failure; the caller then
    retries file by file."""
    if not files:
        return []
    kept = [_own_samples(f) for f in files]
    laps = []
    for f in files:
        ids = set(_activity_ids(f))
        laps.extend(lap for lap in f.rows("laps") if lap["activity_id"] in ids)
    with transaction(con):
        insert_frame(con, "activities", Rows("activities", [r for f in files for r in f.rows("activities")]).frame(),
                     ACTIVITY_COLUMNS)
        insert_frame(con, "samples", Columns.concat(kept).arrow(), SAMPLE_COLUMNS)
        if laps:
            insert_frame(con, "laps", Rows("laps", laps).frame(), LAP_COLUMNS)
        insert_frame(con, "source_files", _source_rows(files, [len(s) for s in kept]), columns("source_files"))
    return [LoadOutcome("ok", plain_message(f), f.n_rows("activities"), len(s),
                        sports=tuple(str(r["sport"]) for r in f.rows("activities"))) for f, s in zip(files, kept)]


def load_one_safely(con: duckdb.DuckDBPyConnection, parsed: ParsedFile) -> LoadOutcome:
    """:func:`load_parsed`, and if storing the file fails, an ``error`` row saying so (its own transaction),
    so the failure is the file's, never the batch's."""
    try:
        return load_parsed(con, parsed)
    except Exception as e:  # noqa: BLE001 - isolation boundary: the file gets an error row with the reason
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        failed = ParsedFile.failed(parsed.path, parsed.athlete_id, f"could not be stored: {reason}",
                                   file_id=parsed.file_id, fmt=parsed.format, size_bytes=parsed.size_bytes)
        return load_parsed(con, failed)


def load_files_one_by_one(con: duckdb.DuckDBPyConnection, files: list[ParsedFile],
                          load_one: Callable[[ParsedFile], LoadOutcome] | None = None) -> list[LoadOutcome]:
    """Each file in its own transaction (:func:`load_one_safely` unless ``load_one`` is given)."""
    return [(load_one or (lambda f: load_one_safely(con, f)))(f) for f in files]


def load_plain_or_retry(con: duckdb.DuckDBPyConnection, files: list[ParsedFile]) -> list[LoadOutcome]:
    """:func:`load_plain_batch`; if the batch fails, the same files one by one (a bad file costs only itself)."""
    try:
        return load_plain_batch(con, files)
    except Exception:  # noqa: BLE001 - the batch was rolled back; each file is tried on its own
        return load_files_one_by_one(con, files)

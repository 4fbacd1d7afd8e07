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

from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from pipeline.ingest.load import DUPLICATE_START_TOLERANCE_S, LoadOutcome, load_parsed, plain_message
from pipeline.ingest.parsed import ACTIVITY_COLUMNS, LAP_COLUMNS, SAMPLE_COLUMNS, ParsedFile
from pipeline.warehouse.contract import columns
from pipeline.warehouse.db import insert_frame, transaction

# A batch is flushed at this many files or samples, whichever comes first: large enough that the commit and
# the statements are shared by many files, small enough that a retried batch and the memory held stay small.
BATCH_FILES = 64
EPOCH = pd.Timestamp(0, tz="UTC")
BATCH_SAMPLES = 400_000


def _ranges(files: list[ParsedFile], only: list[bool] | None = None) -> pd.DataFrame:
    """One row per activity of the files (of those ``only`` marks): index of its file, athlete, activity
    id, start and end (epoch seconds)."""
    rows = []
    for k, f in enumerate(files):
        a = f.activities
        if not len(a) or (only is not None and not only[k]):
            continue
        # seconds since the epoch whatever the frame's resolution (ns, us...)
        start = (pd.to_datetime(a["start_time"], utc=True) - EPOCH).dt.total_seconds().to_numpy()
        rows.append(pd.DataFrame({"k": k, "athlete_id": f.athlete_id, "activity_id": a["activity_id"].to_numpy(),
                                  "start_s": start,
                                  "end_s": start + pd.to_numeric(a["elapsed_s"], errors="coerce").fillna(0).to_numpy()}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["k", "athlete_id", "activity_id", "start_s", "end_s"])


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


def plain_files(con: duckdb.DuckDBPyConnection, files: list[ParsedFile], known_paths: set[str],
                holders: set[tuple[str, str]]) -> list[bool]:
    """Which files can be bulk-loaded (see the module docstring); ``known_paths``: paths the warehouse holds
    a row for; ``holders``: (athlete_id, file_id) of content stored under some path."""
    candidate = [f.status == "ok" and f.path not in known_paths and (f.athlete_id, f.file_id) not in holders
                 and not len(f.strength_sessions) and len(f.activities) > 0 for f in files]
    keys = pd.Series([(f.athlete_id, f.file_id) for f in files])
    candidate = [c and not dup for c, dup in zip(candidate, keys.duplicated(keep=False))]
    ids = pd.Series([a for f in files for a in f.activities["activity_id"]])
    if ids.duplicated().any():       # the same activity id twice in the batch: let the careful path rename
        taken = set(ids[ids.duplicated(keep=False)])
        candidate = [c and not f.activities["activity_id"].isin(taken).any() for c, f in zip(candidate, files)]
    pad = DUPLICATE_START_TOLERANCE_S      # wider than any duplicate rule reaches (same start +-120 s, overlap)
    blocked = _overlapping_in_batch(_ranges(files), pad) | _overlapping_stored(con, _ranges(files, candidate), pad)
    return [c and k not in blocked for k, c in enumerate(candidate)]


def _source_rows(files: list[ParsedFile], n_samples: list[int]) -> pd.DataFrame:
    return pd.DataFrame({
        "path": [f.path for f in files], "file_id": [f.file_id for f in files],
        "athlete_id": [f.athlete_id for f in files], "format": [f.format for f in files],
        "size_bytes": [f.size_bytes for f in files], "status": "ok",
        "message": [plain_message(f) for f in files], "ingested_at": pd.Timestamp.now(tz="UTC"),
        "n_activities": [len(f.activities) for f in files], "n_samples": n_samples, "duplicate_of": None,
        "shadowed_by": [[] for _ in files]})


def load_plain_batch(con: duckdb.DuckDBPyConnection, files: list[ParsedFile]) -> list[LoadOutcome]:
    """Write the plain files' rows (see :func:`plain_files`) in ONE transaction: one insert per table.
    Raises (and rolls back) on any failure; the caller then retries file by file."""
    if not files:
        return []
    kept = [f.samples[f.samples["activity_id"].isin(f.activities["activity_id"])] for f in files]
    laps = [f.laps[f.laps["activity_id"].isin(f.activities["activity_id"])] for f in files if len(f.laps)]
    with transaction(con):
        insert_frame(con, "activities", pd.concat([f.activities[ACTIVITY_COLUMNS] for f in files],
                                                  ignore_index=True), ACTIVITY_COLUMNS)
        insert_frame(con, "samples", pd.concat([s[SAMPLE_COLUMNS] for s in kept], ignore_index=True),
                     SAMPLE_COLUMNS)
        if laps:
            insert_frame(con, "laps", pd.concat([x[LAP_COLUMNS] for x in laps], ignore_index=True), LAP_COLUMNS)
        insert_frame(con, "source_files", _source_rows(files, [len(s) for s in kept]), columns("source_files"))
    return [LoadOutcome("ok", plain_message(f), len(f.activities), len(s),
                        sports=tuple(str(x) for x in f.activities["sport"])) for f, s in zip(files, kept)]


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

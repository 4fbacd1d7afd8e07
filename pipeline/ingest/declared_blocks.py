"""Declared strength blocks: ``data/raw/<athlete>/blocks.csv`` (label,start,end) into ``declared_blocks``.

:func:`read_declared_blocks` is pure (bytes in, rows and problems out); :func:`load_declared_blocks` runs
inside the ingest transaction that upserts the athlete. Declared blocks win over detected ones in the
analysis (:mod:`pipeline.analyze.blocks`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from pipeline.warehouse.contract import columns
from pipeline.warehouse.db import insert_frame
from pipeline.workspace import DECLARED_BLOCKS_NAME, Workspace, athlete_folder

DECLARED_BLOCK_COLUMNS = columns("declared_blocks")


@dataclass(frozen=True)
class DeclaredBlocksRead:
    """Rows read from one blocks.csv and the problems found (each naming file, row and reason)."""

    blocks: pd.DataFrame          # DECLARED_BLOCK_COLUMNS
    problems: list[str]


# Declared dates outside these years are typos (0205 for 2025) or placeholders, never a training block.
DECLARED_YEARS = (1970, 2100)


def _declared_row(rec: dict[str, str]) -> tuple[str, date, date]:
    """(label, start, end) of one blocks.csv row; ValueError with the reason when it is not usable."""
    label = rec.get("label", "")
    if not label:
        raise ValueError("missing label")
    try:
        start = date.fromisoformat(rec.get("start", ""))
        end = date.fromisoformat(rec.get("end", ""))
    except ValueError:
        raise ValueError(f"dates must be YYYY-MM-DD (start {rec.get('start')!r}, end {rec.get('end')!r})") from None
    if not all(DECLARED_YEARS[0] <= d.year <= DECLARED_YEARS[1] for d in (start, end)):
        raise ValueError(f"dates must lie between {DECLARED_YEARS[0]} and {DECLARED_YEARS[1]} (start {start}, end {end})")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return label, start, end


def read_declared_blocks(data: bytes, *, path: str, athlete_id: str) -> DeclaredBlocksRead:
    """Parse blocks.csv bytes (pure).

    Sample::

        label,start,end
        Winter strength,2025-01-06,2025-03-16
        "Heavy, low reps",2025-05-05,2025-06-29

    Dates are ISO (YYYY-MM-DD), both inclusive, between 1970 and 2100. Bad rows are skipped and
    reported: unreadable dates, end before start, a block listed twice, and a block that OVERLAPS one
    listed above it (each run would then sit in two blocks' windows at once, so neither comparison
    would be clean; the first listed is kept).
    """
    problems: list[str] = []
    text = data.decode("utf-8-sig", errors="replace")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header = [h.strip().lower() for h in next(reader, [])]
    if not {"label", "start", "end"} <= set(header):
        problems.append(f"{path}: header must be label,start,end (found {','.join(header) or 'nothing'})")
        return DeclaredBlocksRead(pd.DataFrame(columns=DECLARED_BLOCK_COLUMNS), problems)
    kept: list[tuple[int, str, date, date]] = []
    last = 1
    for fields_ in reader:
        row, last = last + 1, reader.line_num
        if not any(f.strip() for f in fields_):
            continue
        try:
            label, start, end = _declared_row(dict(zip(header, (f.strip() for f in fields_))))
            if any((label, start) == (k_label, k_start) for _, k_label, k_start, _ in kept):
                raise ValueError(f"block {label!r} starting {start} is listed twice")
            clash = next((k for k in kept if start <= k[3] and k[2] <= end), None)
            if clash is not None:
                raise ValueError(f"block {label!r} ({start} to {end}) overlaps block {clash[1]!r} "
                                 f"(row {clash[0]}, {clash[2]} to {clash[3]})")
        except ValueError as e:
            problems.append(f"{path} row {row}: {e}; row ignored")
            continue
        kept.append((row, label, start, end))
    records = [{"athlete_id": athlete_id, "label": label, "start_date": start, "end_date": end}
               for _, label, start, end in kept]
    return DeclaredBlocksRead(pd.DataFrame.from_records(records, columns=DECLARED_BLOCK_COLUMNS), problems)


def load_declared_blocks(con: duckdb.DuckDBPyConnection, ws: Workspace, athlete_id: str) -> str | None:
    """Replace the athlete's ``declared_blocks`` rows with ``data/raw/<athlete_id>/blocks.csv``.

    Runs inside the caller's transaction. A missing file clears the athlete's declared blocks. Returns
    a warning naming file, row and reason for bad rows (good rows are still loaded), or None.
    """
    path = athlete_folder(ws.raw_dir, athlete_id) / DECLARED_BLOCKS_NAME
    if not path.is_file():
        return replace_declared_blocks(con, athlete_id, None, "")
    rel = ws.relative(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        con.execute("DELETE FROM declared_blocks WHERE athlete_id = ?", [athlete_id])
        return f"{rel}: cannot read ({e.strerror})"
    return replace_declared_blocks(con, athlete_id, data, rel)


def replace_declared_blocks(con: duckdb.DuckDBPyConnection, athlete_id: str, data: bytes | None,
                            rel: str) -> str | None:
    """Replace the athlete's ``declared_blocks`` rows with those of a blocks.csv's bytes (None: the athlete
    has none), named ``rel`` in messages; inside the caller's transaction. Returns the problems or None."""
    con.execute("DELETE FROM declared_blocks WHERE athlete_id = ?", [athlete_id])
    if data is None:
        return None
    result = read_declared_blocks(data, path=rel, athlete_id=athlete_id)
    insert_frame(con, "declared_blocks", result.blocks, DECLARED_BLOCK_COLUMNS)
    return "; ".join(result.problems) or None

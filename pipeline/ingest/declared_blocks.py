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
from pipeline.workspace import DECLARED_BLOCKS_NAME, Workspace

DECLARED_BLOCK_COLUMNS = columns("declared_blocks")


@dataclass(frozen=True)
class DeclaredBlocksRead:
    """Rows read from one blocks.csv and the problems found (each naming file, row and reason)."""

    blocks: pd.DataFrame          # DECLARED_BLOCK_COLUMNS
    problems: list[str]


def read_declared_blocks(data: bytes, *, path: str, athlete_id: str) -> DeclaredBlocksRead:
    """Parse blocks.csv bytes (pure).

    Sample::

        label,start,end
        Winter strength,2025-01-06,2025-03-16
        "Heavy, low reps",2025-05-05,2025-06-29

    Dates are ISO (YYYY-MM-DD), both inclusive. Bad rows are skipped and reported.
    """
    problems: list[str] = []
    text = data.decode("utf-8-sig", errors="replace")
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header = [h.strip().lower() for h in next(reader, [])]
    records: list[dict] = []
    if not {"label", "start", "end"} <= set(header):
        problems.append(f"{path}: header must be label,start,end (found {','.join(header) or 'nothing'})")
        return DeclaredBlocksRead(pd.DataFrame(columns=DECLARED_BLOCK_COLUMNS), problems)
    seen: set[tuple[str, date]] = set()
    last = 1
    for fields_ in reader:
        row, last = last + 1, reader.line_num
        if not any(f.strip() for f in fields_):
            continue
        rec = dict(zip(header, (f.strip() for f in fields_)))
        label = rec.get("label", "")
        try:
            if not label:
                raise ValueError("missing label")
            try:
                start = date.fromisoformat(rec.get("start", ""))
                end = date.fromisoformat(rec.get("end", ""))
            except ValueError:
                raise ValueError(f"dates must be YYYY-MM-DD (start {rec.get('start')!r}, end {rec.get('end')!r})")
            if end < start:
                raise ValueError(f"end {end} is before start {start}")
            if (label, start) in seen:
                raise ValueError(f"block {label!r} starting {start} is listed twice")
        except ValueError as e:
            problems.append(f"{path} row {row}: {e}; row ignored")
            continue
        seen.add((label, start))
        records.append({"athlete_id": athlete_id, "label": label, "start_date": start, "end_date": end})
    return DeclaredBlocksRead(pd.DataFrame.from_records(records, columns=DECLARED_BLOCK_COLUMNS), problems)


def load_declared_blocks(con: duckdb.DuckDBPyConnection, ws: Workspace, athlete_id: str) -> str | None:
    """Replace the athlete's ``declared_blocks`` rows with ``data/raw/<athlete_id>/blocks.csv``.

    Runs inside the caller's transaction. A missing file clears the athlete's declared blocks. Returns
    a warning naming file, row and reason for bad rows (good rows are still loaded), or None.
    """
    path = ws.raw_dir / athlete_id / DECLARED_BLOCKS_NAME
    con.execute("DELETE FROM declared_blocks WHERE athlete_id = ?", [athlete_id])
    if not path.is_file():
        return None
    rel = ws.relative(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"{rel}: cannot read ({e.strerror})"
    result = read_declared_blocks(data, path=rel, athlete_id=athlete_id)
    insert_frame(con, "declared_blocks", result.blocks, DECLARED_BLOCK_COLUMNS)
    return "; ".join(result.problems) or None

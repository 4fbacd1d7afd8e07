"""Strength blocks: periods of consistent strength work, declared in blocks.csv or detected from dates.

* :func:`load_declared_blocks` (ingest) reads ``data/raw/<athlete>/blocks.csv`` into ``declared_blocks``.
* :func:`strength_blocks_for_athlete` (analyze) is pure: sessions, sets and declared blocks in, rows of
  ``strength_blocks`` out. Declared blocks win: a detected block overlapping one is dropped.

Detection (defaults in :class:`BlockParams`, documented in docs/strength.md):

1. Session days (UTC date of each session start), one per day.
2. Consecutive session days join one cluster while at most ``max_gap_days`` days *without* a session lie
   between them (Monday/Thursday training with one missed week leaves 10 empty days: still one block).
3. A cluster whose rate is below ``min_sessions_per_week`` is trimmed from its sparser end (the end with
   the longer gap to its neighbour) until the rate is met, so a dense block followed by occasional
   sessions keeps its dense part.
4. A cluster is a block when it spans at least ``min_weeks`` weeks, has at least ``min_sessions``
   sessions and at least ``min_sessions_per_week`` sessions per week; isolated sessions never qualify.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.strength.common import WORK_SET_TYPES
from pipeline.workspace import (DECLARED_BLOCKS_NAME, PIPELINE_CONFIG_NAME, Bounds, Workspace, setting_number,
                                settings_table)
from pipeline.warehouse.db import insert_frame

STRENGTH_BLOCK_COLUMNS = [
    "athlete_id", "block_id", "start_date", "end_date", "sessions", "sessions_per_week", "volume_kg",
    "source", "label",
]
DECLARED_BLOCK_COLUMNS = ["athlete_id", "label", "start_date", "end_date"]


@dataclass(frozen=True)
class BlockParams:
    """Block-detection settings; ``[blocks]`` in pipeline.toml overrides any of them."""

    # Sessions per week a block must sustain (~1.5: twice a week with the odd missed session).
    min_sessions_per_week: float = 1.5
    # Shortest block, weeks from first to last session day inclusive (adaptation needs weeks).
    min_weeks: float = 4.0
    # Longest run of days without a session that is still bridged inside one block.
    max_gap_days: int = 10
    # Fewest sessions a block may hold (with the defaults the rate and length already demand ~6).
    min_sessions: int = 4

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> BlockParams:
        """Settings from the parsed pipeline.toml (the whole file; its ``[blocks]`` section is used).

        Unknown keys, a section that is not a table, and values that are not finite numbers inside
        :data:`BLOCK_SETTING_BOUNDS` raise :class:`PipelineError` naming the key.
        """
        section = settings_table(PIPELINE_CONFIG_NAME, "blocks", (cfg or {}).get("blocks"))
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(section) - set(valid))
        if unknown:
            raise PipelineError(
                f"pipeline.toml [blocks]: unknown setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; valid: {', '.join(valid)}")
        return cls(**{key: setting_number("pipeline.toml [blocks]", key, value, BLOCK_SETTING_BOUNDS[key])
                      for key, value in section.items()})


# Allowed values of the [blocks] settings: positive, finite, and within what a training block can be.
BLOCK_SETTING_BOUNDS = {
    "min_sessions_per_week": Bounds(0, 14, low_open=True, unit="sessions per week"),
    "min_weeks": Bounds(0, 104, low_open=True, unit="weeks"),
    "max_gap_days": Bounds(0, 365, low_open=True, whole=True, unit="days"),
    "min_sessions": Bounds(0, 1000, low_open=True, whole=True, unit="sessions"),
}


# ------------------------------------------------------------------------------------ declared blocks


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
    insert_frame(con, "declared_blocks", result.blocks, ["athlete_id", "label", "start_date", "end_date"])
    return "; ".join(result.problems) or None


# ---------------------------------------------------------------------------------------- detection


def _weeks(start: date, end: date) -> float:
    """Length of a block in weeks, first to last day inclusive."""
    return ((end - start).days + 1) / 7.0


def _clusters(days: list[date], max_gap_days: int) -> list[list[date]]:
    out: list[list[date]] = []
    for d in days:
        if out and (d - out[-1][-1]).days - 1 <= max_gap_days:
            out[-1].append(d)
        else:
            out.append([d])
    return out


def _trim_to_rate(days: list[date], params: BlockParams) -> list[date]:
    """Drop sessions from the sparser end while the cluster's rate is below the minimum."""
    days = list(days)
    while len(days) >= 2 and len(days) / _weeks(days[0], days[-1]) < params.min_sessions_per_week:
        head_gap = (days[1] - days[0]).days
        tail_gap = (days[-1] - days[-2]).days
        if tail_gap >= head_gap:
            days.pop()
        else:
            days.pop(0)
    return days


def detect_block_spans(days: list[date], params: BlockParams) -> list[tuple[date, date]]:
    """(start, end) of each detected block among sorted unique session days (rules in the module doc)."""
    spans = []
    for cluster in _clusters(sorted(set(days)), params.max_gap_days):
        cluster = _trim_to_rate(cluster, params)
        if len(cluster) < max(params.min_sessions, 2):
            continue
        if _weeks(cluster[0], cluster[-1]) < params.min_weeks:
            continue
        spans.append((cluster[0], cluster[-1]))
    return spans


def strength_blocks_for_athlete(
    athlete_id: str, sessions: pd.DataFrame, sets: pd.DataFrame, declared: pd.DataFrame, params: BlockParams
) -> pd.DataFrame:
    """Rows of ``strength_blocks`` for one athlete (pure).

    ``sessions``: strength_sessions rows (``start_time`` UTC; other athletes' rows are ignored when an
    ``athlete_id`` column is present). ``sets``: strength_sets rows (for volume load). ``declared``:
    declared_blocks rows (label, start_date, end_date). Declared blocks are always kept and get their
    sessions and volume counted from the data; detected blocks overlapping a declared one are dropped.
    ``block_id`` is ``B`` + the start date (``B2025-01-06``), stable as long as the block's start is.
    ``volume_kg`` = sum of weight_kg x reps over working, drop and failure sets (warm-ups excluded).
    """
    if "athlete_id" in sessions.columns:
        sessions = sessions[sessions["athlete_id"] == athlete_id]
    if declared is not None and len(declared) and "athlete_id" in declared.columns:
        declared = declared[declared["athlete_id"] == athlete_id]
    day = pd.to_datetime(sessions["start_time"], utc=True).dt.date if len(sessions) else pd.Series([], dtype=object)
    per_session = pd.DataFrame({"session_id": sessions["session_id"].to_numpy() if len(sessions) else [],
                                "day": day.to_numpy()})
    volume = pd.Series(0.0, index=per_session["session_id"].to_numpy(), dtype="float64")
    if sets is not None and len(sets) and len(per_session):
        work = sets[sets["set_type"].isin(WORK_SET_TYPES) & sets["session_id"].isin(per_session["session_id"])]
        load = pd.to_numeric(work["weight_kg"], errors="coerce").fillna(0.0) * \
            pd.to_numeric(work["reps"], errors="coerce").fillna(0).astype("float64")
        volume = volume.add(load.groupby(work["session_id"].to_numpy()).sum(), fill_value=0.0)
    per_session["volume_kg"] = volume.reindex(per_session["session_id"]).to_numpy()

    def measured(start: date, end: date) -> tuple[int, float, float]:
        inside = per_session[(per_session["day"] >= start) & (per_session["day"] <= end)]
        n = int(inside["session_id"].nunique())
        return n, n / _weeks(start, end), float(inside["volume_kg"].sum())

    rows: list[dict] = []
    declared_spans: list[tuple[date, date]] = []
    if declared is not None and len(declared):
        for b in declared.sort_values(["start_date", "label"]).itertuples(index=False):
            start, end = pd.Timestamp(b.start_date).date(), pd.Timestamp(b.end_date).date()
            declared_spans.append((start, end))
            n, rate, vol = measured(start, end)
            rows.append({"athlete_id": athlete_id, "start_date": start, "end_date": end, "sessions": n,
                         "sessions_per_week": rate, "volume_kg": vol, "source": "declared", "label": b.label})
    for start, end in detect_block_spans(list(per_session["day"]), params):
        if any(start <= d_end and d_start <= end for d_start, d_end in declared_spans):
            continue
        n, rate, vol = measured(start, end)
        rows.append({"athlete_id": athlete_id, "start_date": start, "end_date": end, "sessions": n,
                     "sessions_per_week": rate, "volume_kg": vol, "source": "detected",
                     "label": f"detected {start.isoformat()} to {end.isoformat()}"})
    rows.sort(key=lambda r: (r["start_date"], r["source"], r["label"]))
    used: dict[str, int] = {}
    for r in rows:
        base = f"B{r['start_date'].isoformat()}"
        used[base] = used.get(base, 0) + 1
        r["block_id"] = base if used[base] == 1 else f"{base}-{used[base]}"
    out = pd.DataFrame.from_records(rows, columns=STRENGTH_BLOCK_COLUMNS)
    out["sessions"] = out["sessions"].astype("int64")
    out["sessions_per_week"] = out["sessions_per_week"].astype("float64")
    out["volume_kg"] = out["volume_kg"].astype("float64")
    return out

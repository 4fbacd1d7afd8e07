"""Strength blocks: periods of consistent strength work, declared in blocks.csv or detected from dates.

:func:`strength_blocks_for_athlete` is pure: sessions, sets and declared blocks (``declared_blocks``,
loaded by :mod:`pipeline.ingest.declared_blocks`) in, rows of ``strength_blocks`` out. Declared blocks
win: a detected block overlapping one is dropped.

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

from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import pandas as pd

from pipeline.settings import Bounds, setting_number, settings_from_section
from pipeline.warehouse.contract import WORK_SET_TYPES, columns

STRENGTH_BLOCK_COLUMNS = columns("strength_blocks")


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
        """Settings from the parsed pipeline.toml (the whole file; its ``[blocks]`` section is used), read
        by the same parser as ``[analysis]`` (:func:`pipeline.settings.settings_from_section`)."""
        return settings_from_section(cls, (cfg or {}).get("blocks"), "blocks")

    @classmethod
    def setting_bounds(cls, key: str, whole: bool = False) -> Bounds:
        """Allowed range of one ``[blocks]`` setting (:data:`BLOCK_SETTING_BOUNDS`)."""
        return BLOCK_SETTING_BOUNDS[key]

    def validate(self) -> None:
        """Every block setting must be a finite number inside :data:`BLOCK_SETTING_BOUNDS`."""
        for f in fields(self):
            setting_number("pipeline.toml [blocks]", f.name, getattr(self, f.name), BLOCK_SETTING_BOUNDS[f.name])


# Allowed values of the [blocks] settings: positive, finite, and within what a training block can be.
BLOCK_SETTING_BOUNDS = {
    "min_sessions_per_week": Bounds(0, 14, low_open=True, unit="sessions per week"),
    "min_weeks": Bounds(0, 104, low_open=True, unit="weeks"),
    "max_gap_days": Bounds(0, 365, low_open=True, whole=True, unit="days"),
    "min_sessions": Bounds(0, 1000, low_open=True, whole=True, unit="sessions"),
}


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

"""Which requests to make (pure): runs grouped by grid cell, each cell's run days grouped into date ranges.

A run needs the archive's hours from the hour at or before its start to the hour at or after its end (UTC),
so its days are ``floor(start, hour).date()`` to ``ceil(end, hour).date()``. In one cell, runs are taken in
order of those days and a range grows until the next run would make it longer than ``max_days`` or would
leave a gap of more than ``max_gap_days`` since the previous run's last day. A 5-year history of near-daily
runs in one place is then about 5 requests (one per ~year), not one per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import pandas as pd

# Columns :func:`weather_batches` needs (one row per run): its id, UTC span and first GPS position.
RUN_COLUMNS = ("activity_id", "start_time", "end_time", "lat_deg", "lon_deg")


@dataclass(frozen=True)
class Cell:
    """A grid position: what is sent to the archive instead of the run's own position."""

    lat_deg: float
    lon_deg: float
    decimals: int

    @property
    def cell_id(self) -> str:
        return f"{self.lat_deg:.{self.decimals}f},{self.lon_deg:.{self.decimals}f}"


@dataclass(frozen=True)
class Batch:
    """One request: a cell, a date range (UTC, inclusive) and the runs it answers for."""

    cell: Cell
    start_date: date
    end_date: date
    activity_ids: tuple[str, ...]

    @property
    def n_days(self) -> int:
        return (self.end_date - self.start_date).days + 1


def grid_cell(lat_deg: float, lon_deg: float, grid_deg: float) -> Cell:
    """The position rounded to a ``grid_deg`` grid (e.g. 0.1 degrees: 51.4723, -0.1718 -> 51.5, -0.2)."""
    text = f"{grid_deg:.10g}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    lat = min(90.0, max(-90.0, round(round(lat_deg / grid_deg) * grid_deg, decimals)))
    lon = round(round(lon_deg / grid_deg) * grid_deg, decimals)
    lon = lon - 360.0 if lon > 180 else lon
    return Cell(lat + 0.0, lon + 0.0, decimals)    # + 0.0 turns -0.0 into 0.0


def run_days(start_time: pd.Timestamp, end_time: pd.Timestamp) -> tuple[date, date]:
    """First and last UTC day whose hours a run's values are interpolated from."""
    first = pd.Timestamp(start_time).tz_convert("UTC").floor("h")
    last = pd.Timestamp(end_time).tz_convert("UTC").ceil("h")
    return first.date(), max(first, last).date()


def weather_batches(runs: pd.DataFrame, grid_deg: float, max_days: int, max_gap_days: int) -> list[Batch]:
    """Requests covering every run in ``runs`` (columns :data:`RUN_COLUMNS`), grouped by cell and dates.

    Each run is in exactly one batch, whose cell is its position's cell and whose dates cover its days.
    Batches come in cell order, then date order. A single run longer than ``max_days`` gets its own batch.
    """
    if not len(runs):
        return []
    rows = []
    for activity_id, start, end, lat, lon in runs[list(RUN_COLUMNS)].itertuples(index=False):
        first, last = run_days(start, end)
        rows.append((grid_cell(lat, lon, grid_deg), first, last, activity_id))
    rows.sort(key=lambda r: (r[0].lat_deg, r[0].lon_deg, r[1], r[2], r[3]))
    batches: list[Batch] = []
    current: list = []   # [cell, start, end, ids]
    for cell, first, last, activity_id in rows:
        if current and cell == current[0] and (last - current[1]).days < max_days \
                and (first - current[2]).days <= max_gap_days:
            current[2] = max(current[2], last)
            current[3].append(activity_id)
            continue
        if current:
            batches.append(Batch(current[0], current[1], current[2], tuple(current[3])))
        current = [cell, first, last, [activity_id]]
    batches.append(Batch(current[0], current[1], current[2], tuple(current[3])))
    return batches

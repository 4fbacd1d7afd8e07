"""Warehouses with outdoor runs for the weather tests: activity rows and their first GPS samples inserted
with the contract's columns (the stage reads only those), and a pipeline.toml pointing at a test server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd

from pipeline.warehouse.contract import columns
from pipeline.warehouse.db import connect, insert_frame, transaction
from pipeline.workspace import Workspace

# Fast defaults for tests: no pacing, short back-offs and time-outs, every run old enough.
FAST = {"request_interval_s": 0.0, "backoff_s": 0.05, "timeout_s": 5.0, "max_retries": 2}
# Far-away "today" for the stage, so no generated run counts as too recent unless a test says so.
TODAY = pd.Timestamp("2030-01-01", tz="UTC")


@dataclass(frozen=True)
class Run:
    activity_id: str
    athlete_id: str
    start: datetime
    elapsed_s: float
    lat_deg: float | None
    lon_deg: float | None
    sport: str = "running"
    sub_sport: str | None = None


def run(athlete: str, start: datetime, lat: float | None, lon: float | None, minutes: float = 45.0,
        **kw) -> Run:
    return Run(f"{athlete}-{start:%Y%m%dT%H%M%S}Z-0", athlete, start, minutes * 60.0, lat, lon, **kw)


def add_runs(ws: Workspace, runs: list[Run]) -> None:
    """Insert ``runs`` into activities, each with two samples (at its start and 60 s later, ~10 m further
    north) at its position; a 0,0 position (a device without a fix) stays 0,0."""
    acts, samples = [], []
    for r in runs:
        acts.append({"activity_id": r.activity_id, "athlete_id": r.athlete_id, "file_id": "f" * 64,
                     "sport": r.sport, "sub_sport": r.sub_sport, "start_time": r.start, "elapsed_s": r.elapsed_s,
                     "timer_s": r.elapsed_s, "distance_m": 8000.0, "source_format": "gpx", "n_samples": 2})
        for k, dt in enumerate((0, 60)):
            samples.append({"activity_id": r.activity_id, "athlete_id": r.athlete_id,
                            "ts": r.start + timedelta(seconds=dt), "elapsed_s": float(dt),
                            "lat_deg": r.lat_deg if not r.lat_deg else r.lat_deg + 0.0001 * k,   # 0,0 stays
                            "lon_deg": r.lon_deg, "heart_rate_bpm": 140.0})
    con = connect(ws)
    try:
        with transaction(con):
            insert_frame(con, "activities", _frame(acts, "activities"), columns("activities"))
            insert_frame(con, "samples", _frame(samples, "samples"), columns("samples"))
    finally:
        con.close()


def _frame(rows: list[dict], table: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in columns(table):
        if column not in frame:
            frame[column] = None
    for column in ("lat_deg", "lon_deg"):
        if column in frame:
            frame[column] = frame[column].astype(float)
    return frame[columns(table)]


def configure(ws: Workspace, base_url: str, **settings) -> None:
    """Write pipeline.toml with a [weather] section: ``base_url`` plus :data:`FAST` and ``settings``."""
    values = {"base_url": base_url, **FAST, **settings}
    lines = ["[weather]"] + [f"{k} = {_toml(v)}" for k, v in values.items()]
    ws.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def weather_rows(ws: Workspace) -> pd.DataFrame:
    """The weather table, by activity_id."""
    con = connect(ws, read_only=True)
    try:
        return con.execute("SELECT * FROM weather ORDER BY activity_id").df()
    finally:
        con.close()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)

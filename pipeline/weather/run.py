"""``pipeline weather``, as a recipe: look up the air during each outdoor run in a historical archive.

1. the settings (``[weather]`` in pipeline.toml); off -> say so and stop;
2. the outdoor runs without weather (:func:`pipeline.weather.store.outdoor_runs`), minus athletes with
   ``weather = false`` in athlete.toml and runs too recent for the archive;
3. the requests: runs grouped by grid cell and date range (:func:`pipeline.weather.plan.weather_batches`);
4. per request, the archive's answer (:class:`pipeline.weather.openmeteo.ArchiveClient`: pacing, retries,
   rate limits) turned into one row per run (:mod:`pipeline.weather.values`) and committed in its own
   transaction (:func:`~pipeline.weather.store.store_rows`), so an interrupted fetch resumes where it
   stopped. No network, a rate limit that asks for a long wait, or repeated server errors end the loop with
   a message, never an error: offline is normal;
5. the one-line summary (:class:`pipeline.weather.summary.WeatherSummary`).

Only each request's grid position (the run's start rounded to ``grid_deg``) and dates leave the machine.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd

from pipeline.rawroot import RawListing, RawRoot, RawUnreadable, athlete_config, top_level_listing
from pipeline.warehouse.db import connect, recorded_raw_root
from pipeline.weather.openmeteo import SOURCE, ArchiveClient, ArchiveOffline, ArchiveRefused, ArchiveStopped, \
    call_weight
from pipeline.weather.plan import Batch, grid_cell, run_days, weather_batches
from pipeline.weather.settings import WeatherSettings
from pipeline.weather.store import outdoor_runs, store_rows
from pipeline.weather.summary import WeatherSummary
from pipeline.weather.values import batch_rows, no_data_rows
from pipeline.errors import PipelineError
from pipeline.workspace import Workspace


def weather_workspace(ws: Workspace, athlete_id: str | None = None, retry_no_data: bool = False,
                      today: pd.Timestamp | None = None) -> WeatherSummary:
    """Fill the ``weather`` table for every outdoor run that has no row yet (or one athlete's).

    ``retry_no_data`` also asks again for runs the archive had nothing for. ``today`` (UTC) decides which
    runs are too recent for the archive; default now. The caller holds the workspace lock.
    """
    settings = WeatherSettings.from_config(ws.pipeline_config())                         # 1
    if not settings.enabled:
        return WeatherSummary(enabled=False)
    con = connect(ws)
    try:
        runs = outdoor_runs(con, athlete_id)                                             # 2
        todo = runs[runs["status"].isna() | ((runs["status"] == "no_data") & retry_no_data)]
        todo, opted_out = _without_opted_out(ws, recorded_raw_root(con, ws), todo)
        summary = WeatherSummary(outdoor_runs=len(runs), pending=len(todo), opted_out=opted_out)
        todo, summary.too_recent = _old_enough(todo, settings.min_age_days, today)
        todo = _with_cells(todo, settings.grid_deg)
        batches = weather_batches(todo, settings.grid_deg, settings.max_days_per_request,  # 3
                                  settings.max_gap_days)
        _fetch_batches(con, settings, batches, todo, summary)                            # 4
    finally:
        con.close()
    return summary                                                                       # 5


def _weather_allowed(ws: Workspace, root: RawRoot, athlete_id: str, listing: RawListing | None) -> bool:
    """False when the athlete's athlete.toml (in the raw data root ``root``) says ``weather = false``, or
    cannot be read: an invalid file (reported by ingest and analyze), or one on a server that does not answer
    now, cannot have allowed positions to leave the machine, and it must not stop the stage for the others."""
    try:
        return athlete_config(root, ws, athlete_id, listing).weather is not False
    except PipelineError:
        return False


def _without_opted_out(ws: Workspace, root: RawRoot, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop the runs of athletes whose athlete.toml says ``weather = false`` (or is invalid); return them
    by name."""
    try:
        listing = top_level_listing(root)      # a URL root's athlete folders, listed once
    except RawUnreadable:
        return runs.iloc[0:0], sorted(runs["athlete_id"].unique())   # no athlete.toml can be read: none sent
    opted_out = [a for a in sorted(runs["athlete_id"].unique()) if not _weather_allowed(ws, root, a, listing)]
    return runs[~runs["athlete_id"].isin(opted_out)], opted_out


def _old_enough(runs: pd.DataFrame, min_age_days: int, today: pd.Timestamp | None) -> tuple[pd.DataFrame, int]:
    """Keep runs whose last needed day is at least ``min_age_days`` old (the archive lags real time)."""
    today = (pd.Timestamp.now(tz="UTC") if today is None else pd.Timestamp(today)).date()
    last_day = [run_days(s, e)[1] for s, e in zip(runs["start_time"], runs["end_time"])]
    old = pd.Series([d <= today - timedelta(days=min_age_days) for d in last_day], index=runs.index,
                    dtype=bool)
    return runs[old], int((~old).sum())


def _with_cells(runs: pd.DataFrame, grid_deg: float) -> pd.DataFrame:
    """The runs with the id of the grid cell each one's position is sent as."""
    out = runs.copy()
    out["cell_id"] = [grid_cell(lat, lon, grid_deg).cell_id for lat, lon in zip(out["lat_deg"], out["lon_deg"])]
    return out


def _fetch_batches(con: duckdb.DuckDBPyConnection, settings: WeatherSettings, batches: list[Batch],
                   runs: pd.DataFrame, summary: WeatherSummary) -> None:
    """Ask the archive for each batch and store its rows; stop at the first problem that is not the batch's
    own (no network, long rate limit, repeated server errors), leaving the rest for the next run."""
    if not batches:
        return
    client = ArchiveClient(settings)
    summary.host = client.host
    by_id = runs.set_index("activity_id", drop=False)
    try:
        for batch in batches:
            batch_runs = by_id.loc[list(batch.activity_ids)].reset_index(drop=True)
            try:
                series = client.fetch(batch.cell.lat_deg, batch.cell.lon_deg, batch.start_date, batch.end_date)
                rows = batch_rows(batch_runs, series)
            except ArchiveRefused as e:
                rows = no_data_rows(batch_runs, str(e))
            except ArchiveOffline as e:      # after some answers: the network went away mid-way
                if summary.fetched_ok + summary.fetched_no_data:
                    summary.stopped = f"no network ({e})"
                else:
                    summary.offline = str(e)
                break
            except ArchiveStopped as e:
                summary.stopped = str(e)
                break
            finally:
                summary.requests = client.requests_sent
            summary.call_weight += call_weight(batch.n_days)
            store_rows(con, rows, SOURCE, pd.Timestamp.now(tz="UTC"))
            summary.fetched_ok += int((rows["status"] == "ok").sum())
            summary.fetched_no_data += int((rows["status"] == "no_data").sum())
    finally:
        client.close()

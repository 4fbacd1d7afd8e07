"""A run's weather from an archive answer (pure): hourly values averaged over the run's span.

The archive's hourly values are instantaneous at the full hour (its documentation: "Instant"), so between two
hours the air is taken to change linearly, and a run's value is the mean of that line over the run's span
(start_time to start_time + elapsed_s): the exact integral of the interpolated curve divided by the duration.
A 40-minute run from 10:10 to 10:50 gets the line's value at 10:30; a 2-hour run gets its time average.
A variable is unknown (NaN) for a run when any hour it needs is missing (null) in the answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.formulas import haversine_m
from pipeline.warehouse.contract import WEATHER_VALUE_COLUMNS
from pipeline.weather.openmeteo import HourlySeries

HOUR_S = 3600.0


def run_weather(hourly: pd.DataFrame, start_time: pd.Timestamp, end_time: pd.Timestamp) -> dict[str, float]:
    """The run's mean of each :data:`WEATHER_VALUE_COLUMNS` column, and ``n_hours`` (hours it spans).

    ``hourly`` has a UTC ``time`` column on full hours and one column per variable.
    """
    return _run_weather(_HourlyArrays(hourly), start_time, end_time)


class _HourlyArrays:
    """An answer's hourly values as sorted arrays (seconds since 1970 UTC), built once per batch."""

    def __init__(self, hourly: pd.DataFrame) -> None:
        ordered = hourly.sort_values("time")
        self.t_s = (ordered["time"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
        self.values = {c: ordered[c].to_numpy(dtype=float) for c in WEATHER_VALUE_COLUMNS}


def _run_weather(arrays: _HourlyArrays, start_time: pd.Timestamp, end_time: pd.Timestamp) -> dict[str, float]:
    start_s = pd.Timestamp(start_time).timestamp()
    end_s = max(start_s, pd.Timestamp(end_time).timestamp())
    first = np.floor(start_s / HOUR_S) * HOUR_S
    last = max(np.ceil(end_s / HOUR_S) * HOUR_S, first + HOUR_S)
    i0, i1 = np.searchsorted(arrays.t_s, first, "left"), np.searchsorted(arrays.t_s, last, "right")
    t_hours = arrays.t_s[i0:i1]
    out: dict[str, float] = {"n_hours": float(len(t_hours))}
    if len(t_hours) != int(round((last - first) / HOUR_S)) + 1:   # the answer does not cover the run
        return out | {c: np.nan for c in WEATHER_VALUE_COLUMNS}
    knots = np.concatenate([[start_s], t_hours[(t_hours > start_s) & (t_hours < end_s)], [end_s]])
    for column in WEATHER_VALUE_COLUMNS:
        values = arrays.values[column][i0:i1]
        if not np.isfinite(values).all():
            out[column] = np.nan
            continue
        curve = np.interp(knots, t_hours, values)
        area = np.sum((curve[1:] + curve[:-1]) / 2.0 * np.diff(knots))     # exact for a piecewise line
        out[column] = float(curve[0]) if end_s <= start_s else float(area / (end_s - start_s))
    return out


def batch_rows(runs: pd.DataFrame, series: HourlySeries) -> pd.DataFrame:
    """One weather row per run of a batch (``runs``: activity_id, athlete_id, start_time, end_time, lat_deg,
    lon_deg, cell_id) from the batch's answer: values, status, the archive's grid cell and its distance."""
    rows = []
    arrays = _HourlyArrays(series.hourly)
    for run in runs.itertuples(index=False):
        values = _run_weather(arrays, run.start_time, run.end_time)
        status = "ok" if np.isfinite(values["air_temperature_c"]) else "no_data"
        message = None if status == "ok" else "the archive has no air temperature for the run's hours"
        distance = haversine_m(run.lat_deg, run.lon_deg, series.grid_lat_deg, series.grid_lon_deg) / 1000.0
        rows.append({"activity_id": run.activity_id, "athlete_id": run.athlete_id, "status": status,
                     **{c: values[c] for c in WEATHER_VALUE_COLUMNS}, "n_hours": int(values["n_hours"]),
                     "cell_id": run.cell_id, "grid_lat_deg": series.grid_lat_deg,
                     "grid_lon_deg": series.grid_lon_deg, "grid_elevation_m": series.grid_elevation_m,
                     "distance_km": float(distance), "message": message})
    return pd.DataFrame(rows)


def no_data_rows(runs: pd.DataFrame, message: str) -> pd.DataFrame:
    """Rows saying the archive had nothing for these runs (e.g. it refused the request), so they are not
    asked for again."""
    frame = pd.DataFrame({"activity_id": runs["activity_id"], "athlete_id": runs["athlete_id"],
                          "status": "no_data", "cell_id": runs["cell_id"], "message": message})
    for column in WEATHER_VALUE_COLUMNS:
        frame[column] = np.nan
    return frame.reset_index(drop=True)

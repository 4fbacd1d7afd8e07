"""The weather stage's reads and writes of the warehouse (the only ones :mod:`pipeline.weather` makes).

An outdoor run is a running activity (or one whose file does not say its sport, as the analysis treats it)
that is not on a treadmill and has at least one GPS position other than 0,0 (a device without a fix may
write 0,0). Its position is its first such sample. Rows are written one batch (one archive answer) per
transaction, so an interrupted fetch keeps every finished batch and leaves no half of one.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.warehouse.contract import columns
from pipeline.warehouse.db import insert_frame, transaction

# Sport/sub-sport names as in analyze.runs.run_kind: runs, and activities whose file does not say the sport
# (the analysis decides those by speed); treadmill-like sub-sports have no outdoor air.
RUN_SPORTS = ("running", "run", "1", "unknown", "generic", "")
INDOOR_SUB_SPORTS = ("treadmill", "indoor_running", "virtual_activity", "1", "45", "58")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# One row per outdoor run: its span and first GPS position.
OUTDOOR_RUNS_SQL = f"""
WITH first_fix AS (
    SELECT activity_id,
           arg_min(lat_deg, ts) AS lat_deg,
           arg_min(lon_deg, ts) AS lon_deg
    FROM samples
    WHERE lat_deg IS NOT NULL AND lon_deg IS NOT NULL AND NOT (lat_deg = 0 AND lon_deg = 0)
    GROUP BY activity_id
)
SELECT a.activity_id, a.athlete_id, a.start_time,
       a.start_time + to_microseconds(CAST(round(coalesce(a.elapsed_s, a.timer_s, 0) * 1e6) AS BIGINT))
           AS end_time,
       f.lat_deg, f.lon_deg
FROM activities a JOIN first_fix f USING (activity_id)
WHERE lower(coalesce(a.sport, '')) IN ({_in(RUN_SPORTS)})
  AND lower(coalesce(a.sub_sport, '')) NOT IN ({_in(INDOOR_SUB_SPORTS)})
"""


def weather_table_exists(con: duckdb.DuckDBPyConnection) -> bool:
    """False for a warehouse written before the weather table existed and opened read-only."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                            "AND table_name = 'weather'").fetchone()[0])


def outdoor_runs(con: duckdb.DuckDBPyConnection, athlete_id: str | None = None) -> pd.DataFrame:
    """Every outdoor run (or one athlete's) with its weather status (None when not looked up yet), ordered
    by athlete and start; columns activity_id, athlete_id, start_time, end_time, lat_deg, lon_deg, status."""
    sql = (f"SELECT r.*, w.status FROM ({OUTDOOR_RUNS_SQL}) r LEFT JOIN weather w USING (activity_id) "
           "WHERE (? IS NULL OR r.athlete_id = ?) ORDER BY r.athlete_id, r.start_time, r.activity_id")
    return con.execute(sql, [athlete_id, athlete_id]).df()


def store_rows(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, source: str,
               fetched_at: pd.Timestamp) -> None:
    """Write one batch's rows in one transaction (replacing earlier rows of the same runs, e.g. no_data
    rows being retried)."""
    if not len(rows):
        return
    frame = rows.copy()
    frame["source"], frame["fetched_at"] = source, fetched_at
    cols = columns("weather")
    for column in cols:
        if column not in frame:
            frame[column] = None
    with transaction(con):
        con.execute("DELETE FROM weather WHERE activity_id IN (SELECT UNNEST(?))", [list(frame["activity_id"])])
        insert_frame(con, "weather", frame[cols], cols)


# Per athlete with outdoor runs: how many, how many have weather / no archive data / nothing yet.
COVERAGE_SQL = f"""
SELECT r.athlete_id,
       count(*)                                          AS outdoor_runs,
       count(*) FILTER (WHERE w.status = 'ok')           AS with_weather,
       count(*) FILTER (WHERE w.status = 'no_data')      AS no_data,
       count(*) FILTER (WHERE w.activity_id IS NULL)     AS not_fetched,
       coalesce(string_agg(DISTINCT w.source, ', ' ORDER BY w.source), '') AS sources
FROM ({OUTDOOR_RUNS_SQL}) r LEFT JOIN weather w USING (activity_id)
GROUP BY r.athlete_id
ORDER BY r.athlete_id
"""


def weather_coverage(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per athlete with outdoor runs: outdoor_runs, with_weather, no_data, not_fetched, sources."""
    return con.execute(COVERAGE_SQL).df()

"""The pure parts of the weather stage: settings, the archive's JSON format, grid cells and request grouping,
and a run's mean of interpolated hourly values."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.weather.openmeteo import ArchiveStopped, archive_query, call_weight, parse_archive_json
from pipeline.weather.plan import grid_cell, run_days, weather_batches
from pipeline.weather.settings import OPEN_METEO_ARCHIVE_URL, WeatherSettings
from pipeline.weather.values import run_weather

from archive_server import EXAMPLE, RESPONSES


def utc(*args) -> pd.Timestamp:
    return pd.Timestamp(datetime(*args, tzinfo=timezone.utc))


# ------------------------------------------------------------------------------------------------ settings

def test_settings_defaults_and_both_spellings_of_off():
    assert WeatherSettings.from_config({}) == WeatherSettings()
    assert WeatherSettings().base_url == OPEN_METEO_ARCHIVE_URL and WeatherSettings().grid_deg == 0.1
    assert WeatherSettings.from_config({"weather": "off"}).enabled is False
    assert WeatherSettings.from_config({"weather": "on"}).enabled is True
    assert WeatherSettings.from_config({"weather": {"enabled": False}}).enabled is False
    s = WeatherSettings.from_config({"weather": {"request_interval_s": 2, "grid_deg": 0.25}})
    assert (s.request_interval_s, s.grid_deg) == (2.0, 0.25)


@pytest.mark.parametrize(("cfg", "message"), [
    ({"weather": {"pace": 1}}, "pipeline.toml [weather]: unknown key pace; valid keys: enabled, provider,"),
    ({"weather": {"provider": "meteostat"}}, "provider = 'meteostat' is not one of open_meteo"),
    ({"weather": {"grid_deg": 0}}, "grid_deg must be in (0, 1] degrees"),
    ({"weather": {"base_url": "ftp://x"}}, "base_url must start with http:// or https://"),
    ({"weather": {"enabled": "no"}}, "pipeline.toml [weather]: enabled must be a bool, got 'no'"),
    ({"weather": "maybe"}, "pipeline.toml: weather = 'maybe'; use weather = \"off\" or \"on\""),
])
def test_bad_settings_say_which_and_why(cfg, message):
    with pytest.raises(PipelineError) as e:
        WeatherSettings.from_config(cfg)
    assert message in str(e.value)


# ------------------------------------------------------------------------------- the archive's JSON format

def test_the_documented_example_parses_to_utc_hours_in_our_units():
    series = parse_archive_json(EXAMPLE)
    assert (series.grid_lat_deg, series.grid_lon_deg, series.grid_elevation_m) == (52.52, 13.419, 38.0)
    h = series.hourly
    assert len(h) == 24 and str(h["time"].dt.tz) == "UTC"
    assert h["time"].iloc[0] == utc(2022, 7, 1, 0) and h["time"].iloc[-1] == utc(2022, 7, 1, 23)
    assert h["air_temperature_c"].iloc[:9].tolist() == [13, 12.7, 12.7, 12.5, 12.5, 12.8, 13, 12.9, 13.3]
    assert h["relative_humidity_pct"].iloc[0] == 87 and h["dew_point_c"].iloc[0] == 10.9
    assert h["wind_speed_m_s"].iloc[:22].notna().all() and h["wind_speed_m_s"].iloc[22:].isna().all()


def test_local_times_are_shifted_back_to_utc_and_units_converted():
    doc = json.loads(json.dumps(EXAMPLE))
    doc["utc_offset_seconds"] = 7200                  # timezone=Europe/Berlin: local times, CEST
    doc["hourly_units"] |= {"temperature_2m": "°F", "dew_point_2m": "°F", "wind_speed_10m": "km/h"}
    doc["hourly"]["temperature_2m"][0] = 212.0
    doc["hourly"]["wind_speed_10m"][0] = 36.0
    h = parse_archive_json(doc).hourly
    assert h["time"].iloc[0] == utc(2022, 6, 30, 22)
    assert h["air_temperature_c"].iloc[0] == pytest.approx(100.0)
    assert h["wind_speed_m_s"].iloc[0] == pytest.approx(10.0)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("hourly"), "no hourly.time array"),
    (lambda d: d["hourly"]["temperature_2m"].pop(), "hourly.temperature_2m does not have one value per"),
    (lambda d: d["hourly_units"].update(wind_speed_10m="beaufort"), "hourly_units.wind_speed_10m is 'beaufort'"),
    (lambda d: d.pop("latitude"), "KeyError"),
])
def test_an_answer_in_another_format_is_refused_with_the_reason(change, message):
    doc = json.loads(json.dumps(EXAMPLE))
    change(doc)
    with pytest.raises(ArchiveStopped) as e:
        parse_archive_json(doc)
    assert message in str(e.value)


def test_the_documented_error_object_is_not_taken_for_data():
    error = json.loads((RESPONSES / "archive_error_400.json").read_text())
    with pytest.raises(ArchiveStopped, match="Cannot initialize WeatherVariable"):
        parse_archive_json(error)


def test_query_is_exactly_position_dates_variables_utc_and_metres_per_second():
    assert archive_query(51.5, -0.2, date(2024, 1, 1), date(2024, 12, 31)) == {
        "latitude": "51.5", "longitude": "-0.2", "start_date": "2024-01-01", "end_date": "2024-12-31",
        "hourly": "temperature_2m,dew_point_2m,relative_humidity_2m,wind_speed_10m", "timezone": "GMT",
        "wind_speed_unit": "ms"}


def test_call_weight_follows_the_archive_rule():
    assert call_weight(1) == 1.0 and call_weight(35) == 1.0      # 4 variables: 0.4 x 35/14 = 1
    assert call_weight(366) == pytest.approx(0.4 * 366 / 14)     # a year: ~10.5 calls
    assert call_weight(14, n_variables=15) == pytest.approx(1.5)  # the pricing FAQ's example


# ----------------------------------------------------------------------------------- cells and batches

@pytest.mark.parametrize(("lat", "lon", "grid", "cell"), [
    (51.4723, -0.1718, 0.1, "51.5,-0.2"),
    (51.4499, -0.0401, 0.1, "51.4,0.0"),           # -0.0 written as 0.0
    (-33.8688, 151.2093, 0.25, "-33.75,151.25"),
    (40.78, -73.97, 1, "41,-74"),
    (12.0, 179.96, 0.1, "12.0,180.0"),
])
def test_positions_are_rounded_to_the_grid(lat, lon, grid, cell):
    assert grid_cell(lat, lon, grid).cell_id == cell


def test_run_days_include_the_hour_after_a_run_ending_near_midnight():
    assert run_days(utc(2024, 3, 1, 22, 10), utc(2024, 3, 1, 23, 10)) == (date(2024, 3, 1), date(2024, 3, 2))
    assert run_days(utc(2024, 3, 1, 6, 0), utc(2024, 3, 1, 7, 0)) == (date(2024, 3, 1), date(2024, 3, 1))


def _runs(starts: list[pd.Timestamp], lat: float, lon: float, prefix: str) -> pd.DataFrame:
    return pd.DataFrame({"activity_id": [f"{prefix}{i}" for i in range(len(starts))], "start_time": starts,
                         "end_time": [s + pd.Timedelta(minutes=50) for s in starts], "lat_deg": lat,
                         "lon_deg": lon})


def test_batches_group_by_cell_and_cover_every_run_once():
    london = _runs([utc(2023, 1, 1, 7) + pd.Timedelta(days=2 * k) for k in range(400)], 51.47, -0.17, "l")
    near = _runs([utc(2023, 6, 1, 7)], 51.52, -0.21, "n")           # same 0.1-degree cell as London
    madrid = _runs([utc(2023, 3, 1, 7), utc(2023, 3, 9, 7)], 40.42, -3.70, "m")
    batches = weather_batches(pd.concat([london, near, madrid]), 0.1, max_days=366, max_gap_days=35)
    ids = [a for b in batches for a in b.activity_ids]
    assert sorted(ids) == sorted([*london["activity_id"], *near["activity_id"], *madrid["activity_id"]])
    assert len(ids) == len(set(ids))
    assert [(b.cell.cell_id, b.start_date, b.end_date) for b in batches] == [
        ("40.4,-3.7", date(2023, 3, 1), date(2023, 3, 9)),
        ("51.5,-0.2", date(2023, 1, 1), date(2023, 12, 31)),     # the next run day would make 367 days
        ("51.5,-0.2", date(2024, 1, 2), date(2024, 12, 31)),
        ("51.5,-0.2", date(2025, 1, 2), date(2025, 3, 9)),
    ]
    assert all(b.n_days <= 366 for b in batches)


def test_a_long_gap_starts_a_new_request_and_short_gaps_are_bridged():
    starts = [utc(2023, 1, 1, 7), utc(2023, 2, 5, 7), utc(2023, 3, 20, 7)]   # gaps of 35 and 43 days
    batches = weather_batches(_runs(starts, 51.47, -0.17, "r"), 0.1, max_days=366, max_gap_days=35)
    assert [(b.start_date, b.end_date, len(b.activity_ids)) for b in batches] == [
        (date(2023, 1, 1), date(2023, 2, 5), 2), (date(2023, 3, 20), date(2023, 3, 20), 1)]


# ---------------------------------------------------------------------------------- a run's mean values

def _hourly(first: pd.Timestamp, n: int, air=lambda t: 10 + 0.5 * t, nulls=()) -> pd.DataFrame:
    times = [first + pd.Timedelta(hours=h) for h in range(n)]
    frame = pd.DataFrame({"time": times, "air_temperature_c": [air(h) for h in range(n)],
                          "dew_point_c": 5.0, "relative_humidity_pct": 70.0, "wind_speed_m_s": 3.0})
    for h in nulls:
        frame.loc[h, "air_temperature_c"] = np.nan
    return frame


def test_the_mean_over_the_run_of_the_linear_interpolation():
    hourly = _hourly(utc(2024, 6, 1), 48, air=lambda h: 10 + (h % 24))   # 10 C at 0:00 rising 1 C/hour
    v = run_weather(hourly, utc(2024, 6, 1, 10, 10), utc(2024, 6, 1, 10, 50))
    assert v["air_temperature_c"] == pytest.approx(20.5)                  # the line at 10:30
    assert v["n_hours"] == 2 and v["dew_point_c"] == 5.0 and v["relative_humidity_pct"] == 70.0
    v = run_weather(hourly, utc(2024, 6, 1, 9, 30), utc(2024, 6, 1, 12, 30))  # 3 h over three hour-steps
    assert v["air_temperature_c"] == pytest.approx(21.0) and v["n_hours"] == 5


def test_a_peak_inside_the_run_is_averaged_not_sampled():
    hourly = _hourly(utc(2024, 6, 1), 24, air=lambda h: {10: 10.0, 11: 20.0, 12: 10.0}.get(h, 0.0))
    v = run_weather(hourly, utc(2024, 6, 1, 10), utc(2024, 6, 1, 12))
    assert v["air_temperature_c"] == pytest.approx(15.0)                  # triangle: mean of the line


def test_a_missing_hour_makes_the_value_unknown_not_a_guess():
    hourly = _hourly(utc(2024, 6, 1), 24, nulls=(11,))
    assert np.isnan(run_weather(hourly, utc(2024, 6, 1, 10, 30), utc(2024, 6, 1, 11, 20))["air_temperature_c"])
    earlier = run_weather(hourly, utc(2024, 6, 1, 8, 30), utc(2024, 6, 1, 9, 20))   # hours 8-10 are there
    assert earlier["air_temperature_c"] == pytest.approx(10 + 0.5 * (8 + 55 / 60))     # the line at 8:55
    beyond = run_weather(hourly, utc(2024, 6, 1, 23, 30), utc(2024, 6, 2, 0, 20))   # next day not in answer
    assert np.isnan(beyond["air_temperature_c"]) and beyond["n_hours"] == 1


def test_a_run_crossing_midnight_uses_both_days():
    first = utc(2024, 6, 1)
    hourly = _hourly(first, 48)
    v = run_weather(hourly, first + timedelta(hours=23, minutes=30), first + timedelta(hours=24, minutes=30))
    assert v["air_temperature_c"] == pytest.approx(10 + 0.5 * 24)

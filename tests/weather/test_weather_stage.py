"""The weather stage against a real HTTP server on localhost speaking the archive's documented format:
success, rate limits, server errors, time-outs, no network, refusals, resuming, grouping and privacy.
Every case ends in stored rows or a clear one-line message, never an exception or half a batch."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline.warehouse.checks import run_checks
from pipeline.weather.run import weather_workspace

from archive_server import (
    EXAMPLE, GRID_SHIFT_DEG, PLANTED_RH_PCT, RATE_LIMIT_REASON, ArchiveServer, Reply, closed_port_url,
    planted_air_c, planted_dew_c, planted_wind_m_s,
)
from weather_builders import TODAY, add_runs, configure, run, utc, weather_rows

LONDON = (51.4723, -0.1718)      # cell 51.5,-0.2
MADRID = (40.4168, -3.7038)      # cell 40.4,-3.7


def _weather_checks_pass(ws) -> bool:
    """Every data check of the weather table passes (the builders' activities have no source files, so
    other tables' relationship checks are not the point here)."""
    outcomes = [o for o in run_checks(ws).outcomes if o.check.table == "weather"]
    return len(outcomes) >= 15 and all(o.count == 0 and o.error is None for o in outcomes)


@pytest.fixture
def server():
    with ArchiveServer() as s:
        yield s


def _three_runs(ws):
    runs = [run("ann", utc(2023, 5, 1, 7, 10), *LONDON, minutes=50),
            run("ann", utc(2023, 5, 3, 23, 30), *LONDON, minutes=60),     # crosses midnight UTC
            run("ann", utc(2023, 8, 3, 6, 0), *MADRID, minutes=40)]
    add_runs(ws, runs)
    return runs


def test_success_stores_the_planted_air_of_each_run_and_a_second_run_sends_nothing(workspace, server):
    runs = _three_runs(workspace)
    configure(workspace, server.url)
    summary = weather_workspace(workspace, today=TODAY)
    assert summary.render() == (f"Weather: 3 runs looked up in 2 requests to {server.url.split('/')[2]} "
                                "(~2 API calls by its count)")
    rows = weather_rows(workspace).set_index("activity_id")
    assert (rows["status"] == "ok").all() and (rows["source"] == "open_meteo_archive").all()
    for r in runs:
        cell = (51.5, -0.2) if r.lat_deg > 50 else (40.4, -3.7)
        grid = (cell[0] + GRID_SHIFT_DEG[0], cell[1] + GRID_SHIFT_DEG[1])
        middle = r.start + timedelta(seconds=r.elapsed_s / 2)     # planted air is linear in time
        row = rows.loc[r.activity_id]
        assert row["air_temperature_c"] == pytest.approx(planted_air_c(*grid, middle), abs=1e-9)
        assert row["dew_point_c"] == pytest.approx(planted_dew_c(*grid, middle), abs=1e-9)
        assert row["wind_speed_m_s"] == pytest.approx(planted_wind_m_s(*grid, middle), abs=1e-9)
        assert row["relative_humidity_pct"] == PLANTED_RH_PCT
        assert row["cell_id"] == f"{cell[0]},{cell[1]}"
        assert (row["grid_lat_deg"], row["grid_lon_deg"]) == pytest.approx(grid)
        assert 0 < row["distance_km"] < 10 and row["grid_elevation_m"] == 42.0
    assert rows.loc[runs[1].activity_id, "n_hours"] == 3            # 23:00, 00:00, 01:00 (ends 00:30)
    assert _weather_checks_pass(workspace)

    n = len(server.seen)
    again = weather_workspace(workspace, today=TODAY)
    assert len(server.seen) == n                                     # the table is the cache
    assert again.render() == "Weather: nothing to fetch (all 3 outdoor runs with GPS already looked up)"


def test_only_the_rounded_position_and_dates_leave_the_machine(workspace, server):
    _three_runs(workspace)
    configure(workspace, server.url)
    weather_workspace(workspace, today=TODAY)
    queries = sorted((s.path, s.raw_query) for s in server.seen)
    variables = "hourly=temperature_2m,dew_point_2m,relative_humidity_2m,wind_speed_10m"
    assert queries == [
        ("/v1/archive", f"latitude=40.4&longitude=-3.7&start_date=2023-08-03&end_date=2023-08-03&{variables}"
                        "&timezone=GMT&wind_speed_unit=ms"),
        ("/v1/archive", f"latitude=51.5&longitude=-0.2&start_date=2023-05-01&end_date=2023-05-04&{variables}"
                        "&timezone=GMT&wind_speed_unit=ms"),
    ]
    assert all(s.user_agent.startswith("pipeline/") and "ann" not in s.user_agent for s in server.seen)


def test_rate_limit_with_retry_after_is_waited_out_then_rows_are_stored(workspace, server):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    configure(workspace, server.url)
    server.script.append(Reply(429, {"error": True, "reason": RATE_LIMIT_REASON["minutely"]}, {"Retry-After": "1"}))
    summary = weather_workspace(workspace, today=TODAY)
    assert len(server.seen) == 2 and server.seen[1].at - server.seen[0].at >= 1.0
    assert summary.fetched_ok == 1 and summary.stopped is None
    assert weather_rows(workspace)["status"].tolist() == ["ok"]


@pytest.mark.parametrize(("reply", "message"), [
    (Reply(429, {"error": True, "reason": RATE_LIMIT_REASON["minutely"]}),        # no Retry-After: 61 s
     "rate limited by {host}: it asks to wait 61 s (more than [weather] max_wait_s = 5)"),
    (Reply(429, {"error": True, "reason": RATE_LIMIT_REASON["daily"]}),
     "rate limited by {host} (Daily API request limit exceeded. Please try again tomorrow.)"),
    (Reply(429, "Too Many Requests", {"Retry-After": "3600"}),
     "rate limited by {host}: it asks to wait 3600 s"),
])
def test_a_long_rate_limit_stops_with_a_message_and_no_rows(workspace, server, reply, message):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    configure(workspace, server.url, max_wait_s=5.0)
    server.script.append(reply)
    summary = weather_workspace(workspace, today=TODAY)
    host = server.url.split("/")[2]
    assert len(server.seen) == 1
    assert summary.render().startswith(f"Weather: stopped: {message.format(host=host)}")
    assert summary.render().endswith("; 1 run left for the next `pipeline weather`")
    assert weather_rows(workspace).empty


def test_server_errors_are_retried_with_backoff_then_succeed(workspace, server):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    configure(workspace, server.url, backoff_s=0.2, max_retries=3)
    server.script.extend([Reply(500, "Internal Server Error"), Reply(503, "Service Unavailable")])
    summary = weather_workspace(workspace, today=TODAY)
    gaps = np.diff([s.at for s in server.seen])
    assert len(server.seen) == 3 and gaps[0] >= 0.2 and gaps[1] >= 0.4       # 0.2 s, then doubled
    assert summary.fetched_ok == 1 and summary.requests == 3
    assert weather_rows(workspace)["status"].tolist() == ["ok"]


def test_a_server_that_keeps_failing_stops_the_stage_and_keeps_nothing_of_the_batch(workspace, server):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    configure(workspace, server.url, max_retries=2)
    server.script.extend([Reply(500, {"error": True, "reason": "database offline"})] * 3)
    summary = weather_workspace(workspace, today=TODAY)
    assert len(server.seen) == 3
    assert summary.render() == ("Weather: stopped: server error (HTTP 500: database offline) after 3 tries; "
                                "1 run left for the next `pipeline weather`")
    assert weather_rows(workspace).empty


def test_a_timeout_is_retried_and_then_reported(workspace, server):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    configure(workspace, server.url, timeout_s=0.3, max_retries=1)
    server.script.extend([Reply(delay_s=1.0), Reply(delay_s=1.0)])
    summary = weather_workspace(workspace, today=TODAY)
    host = server.url.split("/")[2]
    assert len(server.seen) == 2
    assert summary.stopped == f"{host} did not answer within 0.3 s after 2 tries"
    assert weather_rows(workspace).empty
    # the same run is fetched by the next `pipeline weather` once the server answers in time
    assert weather_workspace(workspace, today=TODAY).fetched_ok == 1


def test_no_network_is_one_line_and_no_rows(workspace):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON), run("ann", utc(2023, 5, 2, 7), *LONDON)])
    url = closed_port_url()
    configure(workspace, url)
    text = weather_workspace(workspace, today=TODAY).render()
    assert text == (f"Weather: not fetched: no network (cannot reach {url.split('/')[2]}: Failed to establish a "
                    "new connection: [Errno 111] Connection refused); 2 outdoor runs wait for `pipeline weather` "
                    "with network; the analysis uses device temperatures where recorded")
    assert "\n" not in text
    assert weather_rows(workspace).empty


def test_a_refused_request_stores_no_data_rows_that_are_not_asked_again(workspace, server):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON), run("ann", utc(2023, 8, 3, 6), *MADRID)])
    configure(workspace, server.url)
    server.script.append(Reply(400, {"error": True, "reason": "Parameter 'start_date' is out of allowed range"}))
    summary = weather_workspace(workspace, today=TODAY)
    rows = weather_rows(workspace).set_index("cell_id")
    assert summary.fetched_no_data == 1 and summary.fetched_ok == 1       # the other batch went on
    assert rows.loc["40.4,-3.7", "status"] == "no_data" and np.isnan(rows.loc["40.4,-3.7", "air_temperature_c"])
    assert rows.loc["40.4,-3.7", "message"] == ("the archive refused the request: Parameter 'start_date' is out "
                                                "of allowed range")
    assert _weather_checks_pass(workspace)
    n = len(server.seen)
    weather_workspace(workspace, today=TODAY)
    assert len(server.seen) == n
    retried = weather_workspace(workspace, today=TODAY, retry_no_data=True)
    assert len(server.seen) == n + 1 and retried.fetched_ok == 1
    assert (weather_rows(workspace)["status"] == "ok").all()


def test_hours_the_archive_has_no_values_for_become_no_data_rows(workspace):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON), run("ann", utc(2023, 5, 20, 7), *LONDON)])
    with ArchiveServer(null_from=date(2023, 5, 10)) as server:
        configure(workspace, server.url)
        weather_workspace(workspace, today=TODAY)
    rows = weather_rows(workspace)
    assert rows["status"].tolist() == ["ok", "no_data"]
    assert rows["message"].iloc[1] == "the archive has no air temperature for the run's hours"


def test_an_interrupted_fetch_resumes_without_asking_twice(workspace, server):
    starts = [utc(2019, 1, 1, 7) + timedelta(days=3 * k) for k in range(600)]      # ~5 years, 1 place
    add_runs(workspace, [run("ann", s, *LONDON) for s in starts])
    configure(workspace, server.url, max_retries=0)
    server.script.extend([Reply(), Reply(), Reply(500, "boom")])                   # dies at the 3rd request
    first = weather_workspace(workspace, today=TODAY)
    done = weather_rows(workspace)
    assert first.stopped.startswith("server error (HTTP 500") and first.fetched_ok == len(done) > 0
    asked = {(s.param("start_date"), s.param("end_date")) for s in server.seen[:2]}
    seen_before = len(server.seen)
    second = weather_workspace(workspace, today=TODAY)
    again = [(s.param("start_date"), s.param("end_date")) for s in server.seen[seen_before:]]
    assert not asked & set(again)                                                  # no batch asked twice
    assert second.fetched_ok == 600 - len(done)
    rows = weather_rows(workspace)
    assert len(rows) == 600 and (rows["status"] == "ok").all()


def test_five_years_in_three_places_cost_a_few_requests(workspace, server):
    places = {"home": LONDON, "work": (51.7520, -1.2577), "holiday": MADRID}
    runs = []
    for k in range(5 * 365):
        day = utc(2019, 1, 1, 6) + timedelta(days=k)
        if k % 7 in (0, 2, 4, 5):                                      # 4 runs a week
            runs.append(run("ann", day, *(places["home"] if k % 7 != 5 else places["work"])))
        if k % 365 in range(200, 214) and k % 2:                       # two weeks in Madrid each summer
            runs.append(run("ann", day + timedelta(hours=3), *places["holiday"]))
    add_runs(workspace, runs)
    configure(workspace, server.url)
    summary = weather_workspace(workspace, today=TODAY)
    assert len(runs) > 1000
    assert len(server.seen) == summary.requests == 15                  # 5 per place, not one per run
    assert summary.fetched_ok == len(runs) == 1078 and summary.call_weight == pytest.approx(108.14, abs=0.01)
    for s in server.seen:
        span = (date.fromisoformat(s.param("end_date")) - date.fromisoformat(s.param("start_date"))).days + 1
        assert span <= 366


def test_requests_are_paced(workspace, server):
    add_runs(workspace, [run("ann", utc(2020 + k, 5, 1, 7), *LONDON) for k in range(3)])
    configure(workspace, server.url, request_interval_s=0.4)
    weather_workspace(workspace, today=TODAY)
    assert len(server.seen) == 3
    # the client starts requests 0.4 s apart; the server's arrival times carry a few ms of send jitter
    assert min(np.diff([s.at for s in server.seen])) >= 0.35


def test_athletes_who_opt_out_runs_without_gps_indoor_and_recent_runs_send_nothing(workspace, server):
    (workspace.raw_dir / "demo").mkdir()
    (workspace.raw_dir / "demo" / "athlete.toml").write_text("weather = false\n")
    add_runs(workspace, [run("demo", utc(2023, 5, 1, 7), *LONDON),
                         run("ann", utc(2023, 5, 1, 7), None, None),                        # no GPS
                         run("ann", utc(2023, 5, 2, 7), *LONDON, sub_sport="treadmill"),    # indoor
                         run("ann", utc(2023, 5, 3, 7), *LONDON, sport="cycling"),          # not a run
                         run("ann", utc(2023, 5, 4, 7), 0.0, 0.0),                          # no fix
                         run("ann", utc(2024, 6, 28, 7), *LONDON)])                         # 3 days ago
    configure(workspace, server.url)
    summary = weather_workspace(workspace, today=pd.Timestamp("2024-07-01", tz="UTC"))
    assert server.seen == []
    assert summary.render() == ("Weather: 1 too recent for the archive (it lags ~5 days), fetched later; "
                                "not looked up for demo (weather = false in athlete.toml)")


@pytest.mark.parametrize("config", ['weather = "off"\n', "[weather]\nenabled = false\n"])
def test_switched_off_nothing_is_sent(workspace, server, config):
    add_runs(workspace, [run("ann", utc(2023, 5, 1, 7), *LONDON)])
    workspace.config_path.write_text(config + f'# base_url would be {server.url}\n')
    summary = weather_workspace(workspace, today=TODAY)
    assert summary.render() == ("Weather: off (pipeline.toml); nothing was sent, the analysis uses device "
                                "temperatures where recorded")
    assert server.seen == [] and weather_rows(workspace).empty


def test_the_documented_example_answer_is_stored_as_served(workspace, server):
    # A run on the documentation's day at its place, 02:00-03:00 UTC: temperatures 12.7 and 12.5 there.
    add_runs(workspace, [run("ann", utc(2022, 7, 1, 2, 0), 52.52, 13.41, minutes=60)])
    configure(workspace, server.url)
    server.script.append(Reply(body=EXAMPLE))
    weather_workspace(workspace, today=TODAY)
    row = weather_rows(workspace).iloc[0]
    assert row["air_temperature_c"] == pytest.approx((12.7 + 12.5) / 2)
    assert row["relative_humidity_pct"] == pytest.approx((87 + 88) / 2)
    assert (row["grid_lat_deg"], row["grid_lon_deg"], row["grid_elevation_m"]) == (52.52, 13.419, 38.0)
    assert row["distance_km"] == pytest.approx(0.6, abs=0.05)

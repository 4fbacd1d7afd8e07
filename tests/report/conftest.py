"""A real DuckDB warehouse holding analysis-table rows with the exact contract columns.

The rows are inserted here (not produced by the analysis) so the report tests know every number the
page must show and do not depend on the other stages. Athletes:

- ``gainer``: runs with HR, a detected strength block, block_effects with a clear gain, placebo checks,
  a failed file and excluded runs;
- ``nullish``: runs and strength sessions but no block;
- ``nohr``: runs without heart rate (so no economy), no strength;
- ``ghost``: only in ``athletes`` (no runs, no strength);
- ``thin``: a block whose every effect is "insufficient data";
- ``broken``: its latest analysis failed (an ``analysis_runs`` error row; the analysis then leaves no
  other rows for it).

The squad tables hold gainer's and thin's blocks (thin's with a made-up estimate: these rows only need to
be drawn), their REML/HKSJ pooled effect and a dose-response fit.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from pipeline.warehouse.db import connect

BLOCK_START = date(2025, 3, 12)
FIRST_RUN = datetime(2024, 11, 1, 7, 0, tzinfo=timezone.utc)

GAIN_ITS = dict(change_pct=2.14, ci_low_pct=0.87, ci_high_pct=3.35, swc_pct=1.0, verdict="gain")
GAIN_WINDOW = dict(change_pct=3.02, ci_low_pct=1.41, ci_high_pct=4.63, swc_pct=1.0, verdict="gain")


def _runs(athlete_id: str, n: int, rng: np.random.Generator, with_hr: bool = True) -> pd.DataFrame:
    starts = [FIRST_RUN + timedelta(days=int(d)) for d in np.sort(rng.choice(240, n, replace=False))]
    speed = rng.normal(3.1, 0.25, n)
    gain = np.array([0.025 if s.date() >= BLOCK_START + timedelta(weeks=6) else 0.0 for s in starts])
    hr = 60 + 28 * speed + rng.normal(0, 2.5, n) - 3.5 * gain / 0.025
    hr_at_ref = 60 + 28 * 3.0 + rng.normal(0, 1.5, n) - 3.5 * gain / 0.025
    included = rng.random(n) > 0.12
    df = pd.DataFrame({
        "activity_id": [f"{athlete_id}-run-{i:03d}" for i in range(n)],
        "athlete_id": athlete_id,
        "start_time": starts,
        "sub_sport": "generic",
        "duration_s": rng.uniform(1800, 4200, n),
        "distance_km": rng.uniform(5, 14, n),
        "steady_s": rng.uniform(1200, 3600, n),
        "speed_m_s": speed,
        "gap_speed_m_s": speed * rng.normal(1.0, 0.01, n),
        "heart_rate_bpm": hr,
        "m_per_beat": speed * 60 / hr,
        "gap_m_per_beat": speed * 60 / hr,
        "hr_at_ref_bpm": hr_at_ref,
        "economy_m_per_beat": 3.0 * 60 / hr_at_ref,
        "decoupling_pct": rng.normal(3, 1.5, n),
        "temperature_c": rng.normal(14, 5, n),
        "included": included,
        "exclusion_reason": np.where(included, None,
                                     rng.choice(["too little steady running", "heart-rate dropouts"], n)),
    })
    if not with_hr:
        for col in ("heart_rate_bpm", "m_per_beat", "gap_m_per_beat", "hr_at_ref_bpm", "economy_m_per_beat",
                    "decoupling_pct"):
            df[col] = np.nan
        df["included"] = False
        df["exclusion_reason"] = "no heart rate"
    return df


def _weekly(runs: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    r = runs.assign(week_start=runs["start_time"].dt.tz_convert(None).dt.to_period("W-SUN").dt.start_time)
    w = r.groupby("week_start").agg(runs=("activity_id", "size"), run_km=("distance_km", "sum"),
                                    economy_m_per_beat=("economy_m_per_beat", "median")).reset_index()
    if len(sessions):
        s = sessions.assign(week_start=sessions["start_time"].dt.tz_convert(None).dt.to_period("W-SUN").dt.start_time)
        counts = s.groupby("week_start").size().rename("strength_sessions").reset_index()
        w = w.merge(counts, on="week_start", how="outer")
    else:
        w["strength_sessions"] = 0
    w["strength_sessions"] = w["strength_sessions"].fillna(0).astype(int)
    w["runs"] = w["runs"].fillna(0).astype(int)
    w["athlete_id"] = runs["athlete_id"].iloc[0] if len(runs) else sessions["athlete_id"].iloc[0]
    w["week_start"] = w["week_start"].dt.date
    return w[["athlete_id", "week_start", "runs", "run_km", "strength_sessions", "economy_m_per_beat"]]


def _sessions(athlete_id: str, start: date, weeks: int, per_week: int = 2) -> pd.DataFrame:
    times = [datetime(start.year, start.month, start.day, 18, tzinfo=timezone.utc) + timedelta(days=7 * w + 3 * k)
             for w in range(weeks) for k in range(per_week)]
    return pd.DataFrame({"session_id": [f"{athlete_id}-s{i:03d}" for i in range(len(times))],
                         "athlete_id": athlete_id, "start_time": times, "duration_s": 3000.0,
                         "title": "Lower body", "source_format": "strong_csv", "file_id": "f" * 64,
                         "n_sets": 12, "n_working_sets": 9})


def _effect(athlete_id: str, block_id: str, metric: str, method: str, block_start: date, **values) -> dict:
    row = {"athlete_id": athlete_id, "block_id": block_id, "metric": metric, "method": method,
           "baseline_start": block_start - timedelta(weeks=6), "baseline_end": block_start - timedelta(days=1),
           "response_start": block_start + timedelta(weeks=6), "response_end": block_start + timedelta(weeks=12),
           "n_baseline": 17, "n_response": 19, "baseline_value": 1.402, "response_value": 1.437,
           "change_pct": None, "ci_low_pct": None, "ci_high_pct": None, "p_value": 0.004, "swc_pct": 1.0,
           "verdict": "insufficient data"}
    row.update(values)
    return row


def _trend(athlete_id: str, block_id: str) -> pd.DataFrame:
    """block_trends rows: a straight pre-block trend from 16 weeks before the block to the end of its response
    window, widening band, and a response level 2.14 % above the trend (the GAIN_ITS row)."""
    days = pd.date_range(pd.Timestamp(BLOCK_START) - pd.Timedelta(weeks=16),
                         pd.Timestamp(BLOCK_START) + pd.Timedelta(weeks=12) - pd.Timedelta(days=1))
    t = ((days + pd.Timedelta(hours=12) - pd.Timestamp(BLOCK_START)) / pd.Timedelta(weeks=1)).to_numpy()
    trend = 1.40 + 0.0005 * t
    half = 0.004 + 0.0004 * np.abs(t + 8)
    segment = np.where(t < 0, "fit", np.where(t >= 6, "response", "ramp"))
    return pd.DataFrame({"athlete_id": athlete_id, "block_id": block_id, "metric": "economy_m_per_beat",
                         "day": days.date, "weeks_from_block_start": t, "segment": segment, "trend_value": trend,
                         "trend_low": trend - half, "trend_high": trend + half,
                         "response_value": np.where(segment == "response", trend * 1.0214, np.nan)})


def _insert(con, table: str, df: pd.DataFrame) -> None:
    con.register("incoming", df)
    cols = ", ".join(df.columns)
    con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM incoming")
    con.unregister("incoming")


def fill_warehouse(ws) -> None:
    rng = np.random.default_rng(7)
    con = connect(ws)
    try:
        _insert(con, "athletes", pd.DataFrame({
            "athlete_id": ["gainer", "nullish", "nohr", "ghost", "thin", "broken"],
            "display_name": ["Gail <Gainer>", None, "No HR Nora", "Ghost Runner", None, None]}))
        gainer_runs = _runs("gainer", 120, rng)
        gainer_sessions = _sessions("gainer", BLOCK_START, 14)
        nullish_runs = _runs("nullish", 60, rng)
        nullish_sessions = _sessions("nullish", date(2025, 1, 6), 3, per_week=1)
        nohr_runs = _runs("nohr", 20, rng, with_hr=False)
        thin_runs = _runs("thin", 12, rng)
        thin_sessions = _sessions("thin", BLOCK_START, 8)
        _insert(con, "run_metrics", pd.concat([gainer_runs, nullish_runs, nohr_runs, thin_runs], ignore_index=True))
        _insert(con, "strength_sessions", pd.concat([gainer_sessions, nullish_sessions, thin_sessions],
                                                    ignore_index=True))
        _insert(con, "weekly", pd.concat([_weekly(gainer_runs, gainer_sessions), _weekly(nullish_runs, nullish_sessions),
                                          _weekly(nohr_runs, nohr_runs.iloc[0:0]), _weekly(thin_runs, thin_sessions)],
                                         ignore_index=True))
        _insert(con, "strength_blocks", pd.DataFrame({
            "athlete_id": ["gainer", "thin"], "block_id": ["b1", "b1"],
            "start_date": [BLOCK_START, BLOCK_START], "end_date": [BLOCK_START + timedelta(weeks=14)] * 2,
            "sessions": [28, 16], "sessions_per_week": [2.0, 2.0], "volume_kg": [52000.0, 30000.0],
            "source": ["detected", "declared"], "label": [None, "Winter gym"]}))
        effects = [
            _effect("gainer", "b1", "economy_m_per_beat", "its", BLOCK_START, **GAIN_ITS),
            _effect("gainer", "b1", "economy_m_per_beat", "window", BLOCK_START, **GAIN_WINDOW),
            _effect("gainer", "b1", "m_per_beat", "its", BLOCK_START, change_pct=1.6, ci_low_pct=-0.9,
                    ci_high_pct=4.1, verdict="no clear change", baseline_value=1.19, response_value=1.21),
            _effect("gainer", "b1", "hr_at_ref_bpm", "its", BLOCK_START, change_pct=2.0, ci_low_pct=0.8,
                    ci_high_pct=3.2, verdict="gain", baseline_value=144.0, response_value=141.1),
            _effect("thin", "b1", "economy_m_per_beat", "its", BLOCK_START, n_baseline=3, n_response=2),
        ]
        _insert(con, "block_effects", pd.DataFrame(effects))
        fake_starts = [BLOCK_START - timedelta(weeks=w) for w in (8, 10, 12, 14, 16)]
        _insert(con, "placebo_checks", pd.DataFrame({
            "athlete_id": "gainer", "block_id": "b1", "metric": "economy_m_per_beat", "method": "its",
            "fake_start": fake_starts, "change_pct": [0.3, -0.5, 1.4, 0.1, -0.2],
            "ci_low_pct": [-1.0, -1.8, 0.2, -1.2, -1.5], "ci_high_pct": [1.6, 0.8, 2.6, 1.4, 1.1],
            "verdict": ["no clear change", "no clear change", "gain", "no clear change", "insufficient data"]}))
        _insert(con, "block_trends", _trend("gainer", "b1"))
        _insert(con, "analysis_runs", pd.DataFrame({
            "analysis_run_id": ["run-gainer", "run-broken"], "athlete_id": ["gainer", "broken"],
            "started_at": [datetime(2025, 7, 1, tzinfo=timezone.utc)] * 2,
            "finished_at": [datetime(2025, 7, 1, 0, 1, tzinfo=timezone.utc)] * 2, "status": ["ok", "error"],
            "message": [None, "broken: analysis failed <on purpose>"], "pipeline_version": "0.1.0",
            "settings_json": ['{"analysis": {"swc_pct": 1.0}}', None], "ref_speed_m_s": [3.0, None]}))
        _insert(con, "squad_blocks", pd.DataFrame({
            "athlete_id": ["gainer", "thin"], "block_id": ["b1", "b1"], "block_start": [BLOCK_START] * 2,
            "estimate_source": "raw", "change_pct": [2.14, -0.6], "ci_low_pct": [0.87, -3.1],
            "ci_high_pct": [3.35, 1.9], "weight_pct": [71.0, 29.0], "sessions_per_week": [2.0, 1.5]}))
        _insert(con, "squad_pooled", pd.DataFrame({
            "target": ["block_effect"], "meta_method": ["reml_hksj"], "k": [2], "n_athletes": [2],
            "estimate_source": ["raw"], "estimate_pct": [1.3], "ci_low_pct": [-4.2], "ci_high_pct": [7.1],
            "pi_low_pct": [None], "pi_high_pct": [None], "i2_pct": [48.0]}))
        _insert(con, "squad_dose_response", pd.DataFrame({
            "moderator": ["sessions_per_week"], "meta_method": ["reml_hksj"], "k": [2], "moderator_mean": [1.75],
            "intercept_pct": [1.3], "slope_pct_per_unit": [5.5], "slope_ci_low": [-30.0], "slope_ci_high": [41.0]}))
        now = datetime(2025, 7, 1, tzinfo=timezone.utc)
        _insert(con, "source_files", pd.DataFrame({
            "path": ["data/raw/gainer/a.fit", "data/raw/gainer/broken.fit", "data/raw/gainer/a.gpx"],
            "file_id": ["1" * 64, "2" * 64, "3" * 64], "athlete_id": "gainer", "format": ["fit", "fit", "gpx"],
            "size_bytes": [1000, 12, 900], "status": ["ok", "error", "duplicate"],
            "message": [None, "truncated FIT file: header says 4000 bytes <b>", "same run as a.fit"],
            "ingested_at": now}))
    finally:
        con.close()


@pytest.fixture
def filled_workspace(workspace):
    """A workspace whose warehouse holds the rows described in this module's docstring."""
    fill_warehouse(workspace)
    return workspace


@pytest.fixture(scope="module")
def built_reports(tmp_path_factory):
    """The report built once per test module over :func:`fill_warehouse` (figures are the slow part)."""
    from pipeline.report.build import build_reports
    from pipeline.workspace import Workspace

    root = tmp_path_factory.mktemp("ws").resolve()
    ws = Workspace(root)
    for d in (ws.raw_dir, ws.processed_dir, ws.reports_dir):
        d.mkdir(parents=True)
    fill_warehouse(ws)
    index = build_reports(ws)
    return ws, index


@pytest.fixture(scope="session")
def demo_reports(tmp_path_factory):
    """The demo athletes end to end (simulate -> ingest -> analyze -> report), once per test session."""
    from pipeline.analyze.run import analyze_workspace
    from pipeline.demo.write import write_demo
    from pipeline.ingest.run import ingest_paths
    from pipeline.report.build import build_reports
    from pipeline.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("demo").resolve())
    # 10 s between samples instead of the demo's 5 s: half the ingest time, same stories.
    write_demo(ws.raw_dir, sample_interval_s=10)
    ingest_paths(ws, None, jobs=2, progress=False)
    analyze_workspace(ws)
    return ws, build_reports(ws)

"""The demo's files through the real ingest: every file accounted for, samples equal to the simulation."""

from __future__ import annotations

import dataclasses

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.ingest import run as ingest_run



def test_ingest_reads_back_what_was_simulated(workspace):
    short = dataclasses.replace(PROFILES["gain"], athlete_id="demo_short", weeks=6, block_start_week=2,
                                block_weeks=3, sporadic_strength_weeks=(0,), gpx_share=0.3)
    sim = simulate_athlete(short, seed=4, sample_interval_s=5.0)
    write_athlete(sim, workspace.raw_dir)
    ingest_run.ingest_paths(workspace, None, jobs=1, progress=False)
    with duckdb.connect(str(workspace.warehouse_path), read_only=True) as con:
        files = con.execute("select status, count(*) from source_files group by 1").fetchall()
        acts = con.execute("select * from activities").df()
        samples = con.execute("select * from samples order by activity_id, ts").df()
        n_sessions = con.execute("select count(*) from strength_sessions").fetchone()[0]
    assert files == [("ok", len(sim.activities) + 1)]           # runs + the Strong CSV
    assert n_sessions == len(sim.strength_sessions)
    acts["start_time"] = pd.to_datetime(acts["start_time"], utc=True)
    m = sim.activities.merge(acts, on="start_time", suffixes=("_sim", "_ing"))
    assert len(m) == len(sim.activities) == len(acts)
    assert (m["n_samples_sim"] == m["n_samples_ing"]).all()
    fit = m[m.source_format_sim == "fit"]
    np.testing.assert_allclose(fit["timer_s_ing"], fit["timer_s_sim"])
    np.testing.assert_allclose(fit["distance_m_ing"], fit["distance_m_sim"], atol=1e-6)
    ids = dict(zip(m["activity_id_ing"], m["activity_id_sim"]))
    samples["activity_id"] = samples["activity_id"].map(ids)
    expected = sim.samples.sort_values(["activity_id", "ts"]).reset_index(drop=True)
    for col in ("heart_rate_bpm", "cadence_spm", "lat_deg", "lon_deg", "altitude_m", "speed_m_s",
                "distance_m", "temperature_c"):
        got = samples[col].astype(float).to_numpy()
        want = expected[col].to_numpy(dtype=float)
        known = ~np.isnan(want)
        np.testing.assert_allclose(got[known], want[known], atol=1e-6, err_msg=col)

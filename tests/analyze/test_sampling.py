"""Sampling must not change the decision: a run recorded every second and the same run written as
"smart recording" (a point every few seconds, irregularly) are included or excluded alike and give the
same economy index.

The 1-s runs come from the demo simulator; the smart-recorded twins keep a subset of their samples:
irregular 5-9 s intervals (the test the issue asks for), and a Garmin-like mixture of 1-5 s intervals
on turns and 6-14 s on straights, whose median below 5 s used to turn every 10-14 s interval into a
"pause" with a 75-s hold after it (17 of 154 runs kept, 137 "lost to pace changes").
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.clean import run_clean, run_pauses, run_steady_segments
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import athlete_process
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete
from analyze_builders import make_run

P = AnalysisParams()
NO_DECLARED = pd.DataFrame(columns=["athlete_id", "label", "start_date", "end_date"])


def smart_recording(samples: pd.DataFrame, draw_intervals, seed: int) -> pd.DataFrame:
    """Keep, per activity, the samples nearest to irregular steps from the first one (a device that
    writes a point only every few seconds records exactly these values at those instants)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _, run in samples.groupby("activity_id", sort=False):
        t = run["elapsed_s"].to_numpy()
        wanted = np.concatenate([[0.0], np.cumsum(draw_intervals(rng, len(t)))])
        keep = np.unique(np.searchsorted(t, t[0] + wanted[wanted <= t[-1] - t[0]]))
        frames.append(run.iloc[keep[keep < len(t)]])
    return pd.concat(frames, ignore_index=True)


def every_5_to_9_s(rng, n):
    return rng.integers(5, 10, n)


def garmin_like_1_to_14_s(rng, n):
    return np.where(rng.random(n) < 0.6, rng.integers(1, 6, n), rng.integers(6, 15, n))


@lru_cache(maxsize=None)
def one_second_athlete():
    # 12 weeks (46 runs: flat and hilly routes, FIT with and without device speed, GPX from positions).
    profile = replace(PROFILES["gain"], weeks=12, block_start_week=4, sporadic_strength_weeks=(1,))
    return simulate_athlete(profile, 11, sample_interval_s=1.0)


def analysed(samples: pd.DataFrame) -> pd.DataFrame:
    a = one_second_athlete()
    blocks = strength_blocks_for_athlete(a.athlete_id, a.strength_sessions, a.strength_sets, NO_DECLARED,
                                         BlockParams())
    tables = athlete_process(a.athlete_id, a.activities, samples.groupby("activity_id", sort=False),
                             a.strength_sessions, blocks, P)
    return tables.run_metrics.set_index("activity_id")


@pytest.mark.slow
@pytest.mark.parametrize("draw, seed", [(every_5_to_9_s, 5), (garmin_like_1_to_14_s, 6)])
def test_smart_recorded_twin_gives_the_same_decision_and_economy(draw, seed):
    a = one_second_athlete()
    smart = smart_recording(a.samples, draw, seed)
    assert len(smart) < len(a.samples) / 3
    dense, sparse = analysed(a.samples), analysed(smart)
    # Same inclusion for every run, and nearly all ordinary runs are included.
    assert (dense["included"] == sparse["included"]).all()
    assert dense["included"].sum() >= len(dense) - 2
    # No ordinary steady run loses its time to "pace changes" because of the sampling.
    assert not sparse["exclusion_reason"].fillna("").str.contains("pace changes").any()
    both = dense["included"] & sparse["included"]
    economy = (sparse.loc[both, "economy_m_per_beat"] / dense.loc[both, "economy_m_per_beat"] - 1) * 100
    assert economy.abs().max() < 0.5        # measured: 0.15 % at most
    # Raw pace per beat depends on which seconds are steady (on hills, speed varies with the grade):
    # a change score touching its threshold for a second can be seen or missed. Measured on 154 runs:
    # 95 % within 0.3 %, all within 0.9 %.
    per_beat = (sparse.loc[both, "m_per_beat"] / dense.loc[both, "m_per_beat"] - 1) * 100
    assert per_beat.abs().quantile(0.9) < 0.5 and per_beat.abs().max() < 1.5
    assert abs(per_beat.median()) < 0.1 and abs(economy.median()) < 0.1


def test_long_recording_intervals_while_moving_are_not_pauses():
    # A steady hour recorded every 3 s, with every fifth interval 14 s long (a straight road): no pause.
    t = np.cumsum(np.where(np.arange(1500) % 5 == 4, 14.0, 3.0))
    t = np.concatenate([[0.0], t[t < 3600]])
    run = make_run().set_index("elapsed_s").loc[t.astype(int)].reset_index()
    seg = run_steady_segments(run_clean(run, P), P)
    assert not seg["after_gap"].any() and not seg["transition"].iloc[100:].any()
    assert seg["dt_s"].max() == 14.0        # each sample stands for its whole interval
    assert seg.loc[seg["steady"], "dt_s"].sum() == pytest.approx(3600 - P.warmup_s, abs=20)


def test_pause_needs_no_movement_or_a_long_dropout():
    p = P
    t = np.array([0.0, 5.0, 20.0, 25.0, 70.0, 75.0])
    # 15 s covering 45 m: running (smart recording); 15 s covering 2 m: stopped (auto-pause);
    # 45 s covering 135 m: still a dropout (what happened to pace and HR meanwhile is unknown).
    for step, pause in ((45.0, False), (2.0, True)):
        dt, after = run_pauses(t[:4], np.array([0.0, 15.0, step, 15.0]), p)
        assert after.tolist() == [False, False, pause, False]
        assert dt[2] == (5.0 if pause else 15.0)
    dt, after = run_pauses(t, np.array([0.0, 15.0, 45.0, 15.0, 135.0, 15.0]), p)
    assert after.tolist() == [False, False, False, False, True, False]
    # Without any distance across the interval (HR only), a long interval is a pause.
    assert run_pauses(t[:3], np.array([0.0, 15.0, np.nan]), p)[1].tolist() == [False, False, True]

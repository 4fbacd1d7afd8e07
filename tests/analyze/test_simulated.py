"""Truth tests: the analysis against the demo simulator's planted answers (pipeline.demo.simulate).

Coarse sampling (10-15 s between samples) keeps these affordable; the schedule, fitness state and
planted effect do not depend on the sampling interval.

Two kinds of check. Verdicts and estimates per simulated athlete (what a user sees), and, much more
sensitive, the per-run error of ``hr_at_ref_bpm`` against the simulator's noise-free fitness state:
a systematic pattern of that error with the season, air temperature or pace is exactly what biases
a block estimate, and it shows in a few athletes where an estimate-level bias of a few tenths of a
percent would need hundreds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import athlete_process
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete

P = AnalysisParams()
NO_DECLARED = pd.DataFrame(columns=["athlete_id", "label", "start_date", "end_date"])


@lru_cache(maxsize=None)
def analysed(profile: str, seed: int, sample_interval_s: float = 10.0):
    a = simulate_athlete(PROFILES[profile], seed, sample_interval_s=sample_interval_s)
    blocks = strength_blocks_for_athlete(a.athlete_id, a.strength_sessions, a.strength_sets, NO_DECLARED,
                                         BlockParams())
    tables = athlete_process(a.athlete_id, a.activities, a.samples.groupby("activity_id", sort=False),
                             a.strength_sessions, blocks, P)
    return a, tables


def effect(tables, metric="economy_m_per_beat", method="its"):
    e = tables.block_effects
    rows = e[(e["metric"] == metric) & (e["method"] == method)]
    assert len(rows) == 1, "the simulated athlete has exactly one block"
    return rows.iloc[0]


def truth_change_pct(a) -> float:
    """Target: the economy change the planted gain implies, averaged over the truth runs in the response
    window (weeks 6-12). The gain divides (a + b*v) by 1 + g but not the drift term, so the economy gain
    at 30 min elapsed is a little smaller than g itself (2.84 % for a planted 3 %)."""
    tr = a.truth.truth_runs
    start = pd.Timestamp(a.truth.block_start, tz="UTC")
    t = pd.to_datetime(tr["start_time"], utc=True)
    inside = (t >= start + pd.Timedelta(weeks=P.response_start_weeks)) & (t < start + pd.Timedelta(weeks=P.response_end_weeks))
    g = tr["effect_pct"] / 100
    drift = a.profile.drift_bpm_per_h * a.truth.ref_elapsed_s / 3600
    hr_without_gain = (tr["true_hr_at_ref_bpm"] - drift) * (1 + g) + drift
    return float(((hr_without_gain / tr["true_hr_at_ref_bpm"])[inside]).mean() - 1) * 100


def run_errors(profile: str, seeds, sample_interval_s: float = 10.0) -> pd.DataFrame:
    """Included runs with the error of hr_at_ref (converted to the truth's 3.0 m/s with the fitted slope)
    against the noise-free truth plus the day's intercept noise (which is real, not an error)."""
    frames = []
    for seed in seeds:
        a, t = analysed(profile, seed, sample_interval_s)
        m = t.model
        rm = t.run_metrics[t.run_metrics["included"]].merge(a.truth.truth_runs, on="activity_id",
                                                            suffixes=("", "_truth"))
        g = rm["effect_pct"] / 100
        hr3 = rm["hr_at_ref_bpm"] + m.slope_bpm_per_m_s * (a.truth.ref_speed_m_s - m.ref_speed_m_s)
        rm["error_bpm"] = hr3 - rm["true_hr_at_ref_bpm"] - rm["day_offset_bpm"] / (1 + g)
        rm["weeks"] = (rm["start_time"] - pd.Timestamp(a.truth.block_start, tz="UTC")).dt.days / 7
        rm["seed"] = seed
        frames.append(rm)
    return pd.concat(frames, ignore_index=True)


def _slope(x, y) -> float:
    return float(np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)[0])


GAIN_SEEDS = (1, 2, 3, 4)


@pytest.mark.slow
def test_planted_gain_is_found_with_the_right_size():
    """Measured over 20 seeds (15 s sampling, before the heat curve): recovered - truth = -0.18 +- 0.14 pp
    (SD 0.63: the day-to-day noise of the athlete); 17 of 20 within +-1 pp. With the heat curve, seeds 1-4
    at 10 s: -0.22, 0.00, -0.28, -1.28 pp. Here: every seed within 1.5 pp (2.4 SD), most within 1 pp."""
    errors, covered = [], 0
    for seed in GAIN_SEEDS:
        a, tables = analysed("gain", seed)
        assert pd.Timestamp(tables.strength_blocks["start_date"].iloc[0]) == pd.Timestamp(a.truth.block_start)
        e = effect(tables)
        target = truth_change_pct(a)
        assert target == pytest.approx(2.84, abs=0.1)
        assert e["verdict"] == "gain", (seed, e.to_dict())
        errors.append(e["change_pct"] - target)
        covered += e["ci_low_pct"] <= target <= e["ci_high_pct"]
    assert all(abs(x) < 1.5 for x in errors), errors
    assert sum(abs(x) < 1.0 for x in errors) >= 3, errors
    assert abs(np.mean(errors)) < 0.6, errors
    assert covered == len(GAIN_SEEDS)


@pytest.mark.slow
def test_heat_athlete_gets_no_gain_and_heat_is_not_under_corrected():
    """Summer heat arrives with the block (truth: no change). Before the fix (mean device temperature,
    hinge at 20 C, heat slope re-estimated inside the ITS) the estimate was -0.84 +- 0.21 % over 30
    seeds (heat under-corrected); now -0.10 +- 0.24 %. Each athlete's estimate is uncertain by ~1.3 %
    (mostly the heat coefficient, SE ~0.12 bpm per C), which its CI carries."""
    for seed in (1, 2, 3):
        a, tables = analysed("heat", seed)
        e = effect(tables)
        assert e["verdict"] != "gain"
        # The headline: calibrated (the raw CI carries the heat curve's bootstrap spread, which understated
        # the heat error by up to ~1.8x in the validation matrix; the calibration carries the rest).
        assert e["calibrated_verdict"] not in ("gain", "loss")
        assert e["calibrated_ci_low_pct"] <= 0 <= e["calibrated_ci_high_pct"]
    # With the heat curve (5-degree segments on the device scale, no threshold assumed) the raw estimate
    # over these 12 seeds averages -0.68 % (SD 1.36, so -0.68 +- 0.39: 1.7 SE, a mild under-correction
    # we cannot rule out); the old fixed-threshold hinge, built on the simulator's own constants, -0.06.
    est = np.array([effect(analysed("heat", seed, 15.0)[1])["change_pct"] for seed in range(1, 13)])
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean()) < min(0.9, 2.5 * se), est
    # The heat curve (estimated on the device scale, nothing about the wrist assumed) removes what the
    # summer adds between the pre-block months and the response window: truth 0.4 bpm per C of air
    # above 15 C.
    errors = []
    for seed in range(1, 13):
        a, t = analysed("heat", seed, 15.0)
        rm = t.run_metrics[t.run_metrics["included"]].merge(a.truth.truth_runs, on="activity_id",
                                                              suffixes=("", "_truth"))
        weeks = (rm["start_time"] - pd.Timestamp(a.truth.block_start, tz="UTC")).dt.days / 7
        true_heat = 0.4 * np.maximum(0, rm["air_temperature_c_truth"] - 15.0)
        resp, pre = (weeks >= 6) & (weeks < 12), (weeks >= -16) & (weeks < 0)
        diff = lambda x: x[resp].mean() - x[pre].mean()  # noqa: E731
        errors.append(diff(rm["heat_adjustment_bpm"]) - diff(true_heat))
    assert np.mean(errors) == pytest.approx(0.0, abs=0.8), errors


@pytest.mark.slow
def test_settled_device_temperature_tracks_air_temperature():
    """The heat model's per-run temperature: what the watch settled at. The plain mean of the readings
    carries the indoor start (a watch starts at ~21 C), so it compresses the season (slope -0.1 against
    air) and depends on run length; the settled value differs from air only by the wrist's warming."""
    frames = []
    for seed in (1, 2, 3):
        a, tables = analysed("heat", seed)
        rm = tables.run_metrics[tables.run_metrics["included"]]
        frames.append(rm.drop(columns="air_temperature_c").merge(
            a.truth.truth_runs[["activity_id", "air_temperature_c"]], on="activity_id"))
    rm = pd.concat(frames)
    settled = rm["heat_temperature_c"] - rm["air_temperature_c"]
    mean = rm["temperature_c"] - rm["air_temperature_c"]
    assert abs(_slope(rm["air_temperature_c"], settled)) < 0.04 < abs(_slope(rm["air_temperature_c"], mean))
    assert settled.mean() == pytest.approx(6.5, abs=0.4)      # simulator: warming uniform 5-8 C
    assert settled.std() < 1.05 < mean.std()                  # warming SD 0.87
    assert set(rm["temperature_source"]) <= {"device", "imputed"}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_faster_athlete_raw_ratio_rises_but_economy_does_not(seed):
    a, tables = analysed("faster", seed)
    assert effect(tables)["verdict"] != "gain"
    raw = effect(tables, "m_per_beat", "window")
    assert raw["change_pct"] > 5.0 and raw["verdict"] == "gain"   # the naive metric is fooled


@pytest.mark.slow
def test_economy_index_pace_invariant_on_simulated_runs():
    """Tempo runs are ~0.5 m/s faster than easy runs at the same fitness: equal index, unequal raw ratio;
    and the HR-speed slope is not flattened by speed noise (truth 22 bpm per m/s; plain least squares on
    5-min bins gave 21.4, so every run 1 m/s off the reference speed read ~0.4 bpm off)."""
    a, tables = analysed("gain", 1)
    rm = tables.run_metrics.merge(a.truth.truth_runs[["activity_id", "run_type", "true_economy_m_per_beat"]],
                                  on="activity_id")
    rm = rm[rm["included"]]
    rel = rm["economy_m_per_beat"] / rm["true_economy_m_per_beat"]
    by = rm.assign(rel=rel).groupby("run_type")[["rel", "m_per_beat", "speed_m_s"]].mean()
    assert by.loc["tempo", "speed_m_s"] - by.loc["easy", "speed_m_s"] > 0.3
    assert by.loc["tempo", "m_per_beat"] / by.loc["easy", "m_per_beat"] - 1 > 0.05
    assert by.loc["tempo", "rel"] / by.loc["easy", "rel"] - 1 == pytest.approx(0, abs=0.003)
    # The index tracks the true fitness state run by run (day-to-day noise aside).
    assert np.corrcoef(rm["economy_m_per_beat"], rm["true_economy_m_per_beat"])[0, 1] > 0.6
    # Slope: pre-block truth 22, after the 3 % gain 22/1.03; the record is ~2/3 pre-block.
    assert tables.model.slope_method == "adjacent_bins_iv"
    assert 21.5 < tables.model.slope_bpm_per_m_s < 22.5


NULL_SEEDS = range(100, 120)


@pytest.mark.slow
def test_null_athletes_unbiased_and_false_gain_and_loss_rates_bounded():
    """No planted effect. Measured (30 seeds 100-129 at 15 s): mean ITS estimate +0.16 +- 0.12 %, 1 gain,
    0 losses. Here over 20 seeds: each tail at most 2 of 20 (P(3+ | 2.5 % per tail) ~ 1.4 %), the mean
    within 3 standard errors of 0, and no drift of the per-run error over the season."""
    est, verdicts = [], []
    for seed in NULL_SEEDS:
        e = effect(analysed("null", seed, 15.0)[1])
        est.append(e["change_pct"])
        verdicts.append(e["verdict"])
    est = np.asarray(est)
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean()) < max(3 * se, 0.15) and abs(est.mean()) < 0.4, (est.mean(), se)
    assert sum(v == "gain" for v in verdicts) <= 2, verdicts
    assert sum(v == "loss" for v in verdicts) <= 2, verdicts
    # Per-run error against truth: flat over the season (a bias of 0.3 % of the index at the response
    # window, 9 weeks past the block, would be ~0.05 bpm per week).
    err = run_errors("null", NULL_SEEDS, 15.0)
    assert abs(_slope(err["weeks"], err["error_bpm"])) < 0.005
    # A constant offset does not bias a block estimate: the heat curve's non-negative slopes, fitted to
    # weather that never gets hot (12 C), remove ~0.8 bpm on average (truncation of noise at 0).
    assert abs(err["error_bpm"].mean()) < 1.2


def placebo_its(tables) -> pd.DataFrame:
    pl = tables.placebo_checks
    return pl[(pl["metric"] == "economy_m_per_beat") & (pl["method"] == "its")]


@pytest.mark.slow
def test_placebo_fake_starts_rarely_claim_a_gain():
    """With the demo's ~26 weeks before the block, every athlete gets 5 fake starts (weeks -20 to -12),
    all before the block. Nothing happened there, so gains are rare on every kind of athlete, the gain
    athlete included (its real gain comes only after the block). Measured here: null 1 gain (4 losses)
    of 100, heat 3 (4) of 60, gain 2 (0) of 20. Fake starts 2 weeks apart share most of their runs, and
    their short pre-periods (6-14 weeks) make each estimate about twice as uncertain as the real one."""
    null = [placebo_its(analysed("null", seed, 15.0)[1]) for seed in NULL_SEEDS]
    heat = [placebo_its(analysed("heat", seed, 15.0)[1]) for seed in range(1, 13)]
    gain = [placebo_its(analysed("gain", seed)[1]) for seed in GAIN_SEEDS]
    for pl in null + heat + gain:
        assert len(pl) == 5
    for profile, seed in [("gain", 1), ("heat", 1)]:
        a, tables = analysed(profile, seed)
        fake = pd.to_datetime(placebo_its(tables)["fake_start"]).dt.tz_localize("UTC")
        block = pd.Timestamp(a.truth.block_start, tz="UTC")
        assert (fake + pd.Timedelta(weeks=P.response_end_weeks) <= block).all()
        first = pd.to_datetime(a.activities["start_time"], utc=True).min().normalize()
        assert (fake - first >= pd.Timedelta(weeks=P.placebo_min_pre_weeks, days=-6)).all()   # Monday weeks
    rate = lambda frames: np.mean(np.concatenate([f["verdict"].eq("gain").to_numpy() for f in frames]))  # noqa: E731
    assert rate(null) <= 0.05 and rate(heat) <= 0.1 and rate(gain) <= 0.1
    assert rate(null + heat + gain) <= 0.05
    loss = lambda frames: np.mean(np.concatenate([f["verdict"].eq("loss").to_numpy() for f in frames]))  # noqa: E731
    assert loss(null + heat) <= 0.1

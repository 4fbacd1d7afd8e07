"""The squad analysis against a simulated squad's planted truth (pipeline.demo.squad).

12 teammates over 34 weeks, sampled every 15 s: 8 with strength blocks of 0.5, 1, 1.5 and 2 sessions a week
(planted economy gain 2 % per weekly session, so ~1-4 %), starting within three weeks of each other, and 4
without a block. The same simulated files are analysed twice: as they are, and with a shared season
(every athlete's economy +3 % from weeks 22-26 of the record, inside the blocks' response windows).
Each athlete goes through the real per-athlete analysis (athlete_process); the squad tables come from
squad_process, exactly as `pipeline analyze` computes them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.blocks import BlockParams, strength_blocks_for_athlete
from pipeline.analyze.process import athlete_process
from pipeline.analyze.squad import squad_process
from pipeline.demo.squad import SquadDesign, expected_change_pct, simulate_squad, with_season

DESIGN = SquadDesign(weeks=34, block_start_week=19, sample_interval_s=15.0, season_start_week=22,
                     season_end_week=26)
SEASON_PCT = 3.0
SEED = 7


def analyse(members):
    """The per-athlete analysis of each member (declared blocks, as the demo squad's blocks.csv) and the
    squad tables over all of them."""
    analyses = []
    for m in members:
        a = m.athlete
        declared = pd.DataFrame({"athlete_id": [a.athlete_id], "label": ["block"], "start_date": [m.block_start],
                                 "end_date": [m.block_end]}) if m.has_block else \
            pd.DataFrame(columns=["athlete_id", "label", "start_date", "end_date"])
        blocks = strength_blocks_for_athlete(a.athlete_id, a.strength_sessions, a.strength_sets, declared,
                                             BlockParams())
        analyses.append(athlete_process(a.athlete_id, a.activities, a.samples.groupby("activity_id", sort=False),
                                        a.strength_sessions, blocks))

    def cat(name):
        return pd.concat([getattr(x, name) for x in analyses], ignore_index=True)

    return squad_process(cat("run_metrics"), cat("block_effects"), cat("strength_blocks"), cat("weekly"),
                         {x.athlete_id: x.model.heat_se_bpm_per_c for x in analyses},
                         heat_bpm_per_c={x.athlete_id: x.model.heat_bpm_per_c for x in analyses})


@pytest.fixture(scope="module")
def squads():
    members = simulate_squad(SEED, DESIGN)
    seasonal = with_season(members, replace(DESIGN, season_gain_pct=SEASON_PCT), SEED)
    plain = analyse([m for m in members if m.has_block])
    return members, plain, seasonal, analyse(seasonal)


def _truth(members) -> pd.Series:
    """The block effect without the season, per block athlete (what the squad should recover)."""
    return pd.Series({m.athlete_id: expected_change_pct(m, with_season=False) for m in members if m.has_block})


def _pooled(squad, target, method="reml_hksj"):
    p = squad.squad_pooled
    return p[(p["target"] == target) & (p["meta_method"] == method)].iloc[0]


@pytest.mark.slow
def test_pooled_ci_covers_the_planted_mean_effect(squads):
    members, plain, _, _ = squads
    truth = _truth(members).mean()                                        # ~2.4 %
    assert 2.0 < truth < 2.8
    for method in ("reml_hksj", "dersimonian_laird"):
        row = _pooled(plain, "block_effect", method)
        assert row["k"] == 8 and row["estimate_source"] == "calibrated"
        assert row["ci_low_pct"] <= truth <= row["ci_high_pct"], (method, row.to_dict())
        assert abs(row["estimate_pct"] - truth) < 0.6
        assert row["pi_low_pct"] < row["ci_low_pct"] and row["pi_high_pct"] > row["ci_high_pct"]
    # HKSJ is wider than DerSimonian-Laird's normal-theory interval with 8 blocks
    hk, dl = _pooled(plain, "block_effect"), _pooled(plain, "block_effect", "dersimonian_laird")
    assert hk["ci_high_pct"] - hk["ci_low_pct"] > dl["ci_high_pct"] - dl["ci_low_pct"]
    blocks = plain.squad_blocks
    assert len(blocks) == 8 and blocks["weight_pct"].sum() == pytest.approx(100)
    assert set(blocks["estimate_source"]) == {"calibrated"}
    # 34-week records without temperature: each block's calibrated CI carries the conservative default
    # systematic error (~9 %), and the blocks agreeing with each other does not remove it (errors at the
    # same time of year are shared): alone, the squad's pooled calibrated estimate cannot tell 2 % from 0.
    hk = _pooled(plain, "block_effect")
    assert (blocks["ci_high_pct"] - blocks["ci_low_pct"]).min() > 20
    assert hk["ci_low_pct"] < 0 < hk["ci_high_pct"] and hk["ci_high_pct"] - hk["ci_low_pct"] > 8


@pytest.mark.slow
def test_dose_response_slope_has_the_planted_sign(squads):
    _, plain, _, _ = squads
    dose = plain.squad_dose_response.set_index(["moderator", "meta_method"])
    sessions = dose.loc[("sessions_per_week", "reml_hksj")]
    # planted: +2 % per weekly session (~1.9 points of the index after the drift term)
    assert sessions["k"] == 8 and sessions["slope_pct_per_unit"] > 0.5
    assert sessions["slope_ci_low"] < 1.9 < sessions["slope_ci_high"]
    assert dose.loc[("volume_kg_per_week", "reml_hksj"), "slope_pct_per_unit"] > 0
    blocks = plain.squad_blocks.set_index("athlete_id")
    dose_order = blocks["sessions_per_week"].sort_values()
    assert blocks.loc[dose_order.index[:2], "change_pct"].mean() < blocks.loc[dose_order.index[-2:], "change_pct"].mean()


@pytest.mark.slow
def test_did_removes_a_shared_season_that_fools_single_athlete_estimates(squads):
    members, _, seasonal, squad = squads
    truth = _truth(members)
    its = _pooled(squad, "block_effect")
    did = _pooled(squad, "did")
    # The single-athlete (ITS) estimates carry the season: their pooled estimate lies 3 points above the
    # truth; calibrated, its CI is honest about it only by being wide (it cannot tell).
    assert its["estimate_pct"] > truth.mean() + 2.0, its.to_dict()
    # Teammates without a block share the season; the difference in differences removes it.
    assert did["k"] == 8 and did["ci_low_pct"] <= truth.mean() <= did["ci_high_pct"], did.to_dict()
    assert did["ci_low_pct"] > 0 and did["estimate_source"] == "raw"
    assert its["ci_high_pct"] - its["ci_low_pct"] > 3 * (did["ci_high_pct"] - did["ci_low_pct"])
    d = squad.squad_did.set_index("athlete_id")
    assert (d["n_controls"] == 4).all() and set(d["controls"]) == {"squad_09,squad_10,squad_11,squad_12"}
    assert d["controls_change_pct"].mean() == pytest.approx(SEASON_PCT, abs=1.2)
    its_err = (squad.squad_blocks.set_index("athlete_id")["change_pct"] - truth).abs().mean()
    did_err = (d["did_change_pct"] - truth).abs().mean()
    assert did_err < its_err / 2, (did_err, its_err)
    # did = (1 + athlete) / (1 + controls) - 1
    ratio = (1 + d["athlete_change_pct"] / 100) / (1 + d["controls_change_pct"] / 100) - 1
    assert np.allclose(ratio * 100, d["did_change_pct"])


@pytest.mark.slow
def test_parallel_trends_checked_on_the_pre_period(squads):
    _, _, _, squad = squads
    d = squad.squad_did
    assert (d["n_pre_checks"] >= 1).all()
    assert set(d["parallel_trends"]) <= {"ok", "violated"}
    assert (d["parallel_trends"] == "ok").sum() >= 6
    pre = squad.squad_did_placebo
    # before the blocks, the other block athletes are teammates without a block too
    assert len(pre) == d["n_pre_checks"].sum() and (pre["n_controls"] >= 4).all()
    assert pd.to_datetime(pre["fake_start"]).max() < pd.to_datetime(d["block_start"]).min()

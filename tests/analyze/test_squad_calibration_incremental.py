"""The squad calibration pass of ``pipeline analyze`` when athletes are analysed one at a time and stored as
they finish: the rows equal the in-memory two-pass calibration (every athlete analysed, then those with too
few own negative controls calibrated on the squad's), and the fingerprints redo exactly the athletes whose
calibration drew on the squad.

Three simulated athletes with records over a year (season class), written as real files and ingested into a
real warehouse: bob's 25 months give him enough negative controls of his own; ann's and cat's ~13 months give
fewer than ``calibration_min_effective_controls = 8`` (measured n_effective 4.3-5.5), so theirs come from
the squad.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.athlete_job import analyze_athlete
from pipeline.analyze.blocks import BlockParams
from pipeline.analyze.fingerprint import POOL_PENDING
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.process import recalibrate, squad_controls, stored_control_sets
from pipeline.analyze.run import analyze_workspace
from pipeline.analyze.store import stored_controls
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect
from pipeline.workspace import Workspace

pytestmark = pytest.mark.slow
ATHLETES = (("ann", 60, 44, 1), ("bob", 110, 60, 2), ("cat", 56, 40, 3))   # id, weeks, block start week, seed
MIN_CONTROLS = 8.0
EFFECT_KEYS = ["athlete_id", "block_id", "metric", "method"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("squadcal"))
    (ws.root / "pipeline.toml").write_text(f"[analysis]\ncalibration_min_effective_controls = {MIN_CONTROLS}\n")
    for aid, weeks, block_week, seed in ATHLETES:
        profile = dataclasses.replace(PROFILES["gain"], weeks=weeks, block_start_week=block_week)
        write_athlete(simulate_athlete(profile, seed, sample_interval_s=30.0, athlete_id=aid), ws.raw_dir)
    ingest_paths(ws, None, jobs=1, progress=False)
    assert len(analyze_workspace(ws).athletes) == 3
    return ws


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    shutil.copytree(template.root, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def _stored(ws: Workspace, table: str) -> pd.DataFrame:
    con = connect(ws, read_only=True)
    try:
        return con.execute(f"SELECT * EXCLUDE (analysis_run_id) FROM {table} ORDER BY ALL").df()
    finally:
        con.close()


def _in_memory(ws: Workspace, attempted: list[str]) -> pd.DataFrame:
    """The reference: ``attempted`` analysed in memory, then calibrated on the squad as one pass over all of
    them (plus the stored controls of the others), as the analysis did before it stored athletes one by one."""
    params = AnalysisParams(calibration_min_effective_controls=MIN_CONTROLS)
    con = connect(ws, read_only=True)
    try:
        done = [analyze_athlete(con, a, params, BlockParams()) for a in attempted]
        squad = squad_controls([cs for t in done for cs in t.controls.values()]
                               + stored_control_sets(stored_controls(con, attempted)))
    finally:
        con.close()
    effects = pd.concat([recalibrate(t, squad).block_effects for t in done], ignore_index=True)
    return effects.sort_values(EFFECT_KEYS).reset_index(drop=True)


def _effects(ws: Workspace, athletes: list[str]) -> pd.DataFrame:
    e = _stored(ws, "block_effects")
    return e[e["athlete_id"].isin(athletes)].sort_values(EFFECT_KEYS).reset_index(drop=True)


def _sources(ws: Workspace) -> dict[str, set[str]]:
    e = _stored(ws, "block_effects").dropna(subset=["calibration_source"])
    return {a: set(g["calibration_source"]) for a, g in e.groupby("athlete_id")}


def _assert_same(stored: pd.DataFrame, reference: pd.DataFrame) -> None:
    reference = reference[stored.columns]
    num = [c for c in stored.columns if pd.api.types.is_float_dtype(stored[c])]
    other = [c for c in stored.columns if c not in num]
    pd.testing.assert_frame_equal(stored[other], reference[other].astype(stored[other].dtypes.to_dict()),
                                  check_dtype=False)
    np.testing.assert_allclose(stored[num].to_numpy(float), reference[num].to_numpy(float), rtol=1e-9, atol=1e-12,
                               equal_nan=True)


def test_stored_one_by_one_equals_the_in_memory_squad_pass(template):
    assert _sources(template) == {"ann": {"squad"}, "bob": {"own"}, "cat": {"squad"}}
    _assert_same(_effects(template, ["ann", "bob", "cat"]), _in_memory(template, ["ann", "bob", "cat"]))
    con = connect(template, read_only=True)
    pooled = dict(con.execute("SELECT athlete_id, pooled_fingerprint FROM analysis_runs").fetchall())
    con.close()
    assert pooled["bob"] is None and pooled["ann"] == pooled["cat"] != POOL_PENDING and pooled["ann"]


def test_a_changed_athlete_redoes_the_squad_calibrated_ones_only(ws):
    with open(ws.raw_dir / "bob" / "athlete.toml", "a") as fh:
        fh.write("\n# an edit: bob's controls may have changed, so ann's and cat's calibration may have\n")
    summary = analyze_workspace(ws)
    assert sorted(s.athlete_id for s in summary.athletes) == ["ann", "bob", "cat"]
    with open(ws.raw_dir / "cat" / "athlete.toml", "a") as fh:
        fh.write("\n# cat changed: ann draws on the squad, bob on his own controls only\n")
    summary = analyze_workspace(ws)
    assert sorted(s.athlete_id for s in summary.athletes) == ["ann", "cat"] and summary.up_to_date == ["bob"]
    _assert_same(_effects(ws, ["ann", "cat"]), _in_memory(ws, ["ann", "cat"]))
    head = {s.athlete_id: s.headline for s in summary.athletes}
    assert {h["calibration_source"] for h in head["ann"]} == {"squad"}       # the summary shows the final pass


def test_an_analyze_stopped_before_the_squad_pass_is_redone(ws):
    con = connect(ws)
    con.execute("UPDATE analysis_runs SET pooled_fingerprint = ? WHERE athlete_id = 'cat'", [POOL_PENDING])
    con.close()
    summary = analyze_workspace(ws)
    assert sorted(s.athlete_id for s in summary.athletes) == ["cat"]
    assert _sources(ws)["cat"] == {"squad"}

"""Declarative data checks: a clean warehouse passes; each planted violation is caught by the right check."""

from __future__ import annotations

import pytest

from pipeline.warehouse.checks import TABLE_CHECKS, expand_checks, run_checks
from pipeline.warehouse.db import connect


def test_clean_populated_warehouse_passes_every_check(populated_ws):
    result = run_checks(populated_ws)
    assert result.violations == []
    assert result.ok
    assert len(result.outcomes) == len(expand_checks())
    n = len(result.outcomes)
    assert n > 100
    assert result.render() == f"{n} checks: {n} passed, 0 failed; no violations"


def test_every_contract_table_has_a_key_check():
    names = {c.name for c in expand_checks()}
    con_tables = set(TABLE_CHECKS)
    for table in ("source_files", "activities", "samples", "laps", "strength_sessions", "strength_sets",
                  "strength_blocks", "run_metrics", "weekly", "block_effects"):
        assert table in con_tables
        assert any(n.startswith(f"unique_{table}_") for n in names), table


def _plant(ws, *statements):
    con = connect(ws)
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


@pytest.mark.parametrize(("planted", "check_name", "count", "example"), [
    # samples has no enforced key (too costly on the largest table), so duplicates are possible
    ("INSERT INTO samples SELECT * FROM samples WHERE activity_id = 'ana-run-3' AND elapsed_s = 120",
     "unique_samples_activity_id_ts", 1, "activity_id=ana-run-3"),
    ("INSERT INTO samples (activity_id, athlete_id, ts, heart_rate_bpm) "
     "VALUES ('ghost-run', 'ana', TIMESTAMPTZ '2024-03-01 10:00:00+00', 150)",
     "relationships_samples_activity_id__activities", 1, "activity_id=ghost-run"),
    ("UPDATE strength_sets SET set_type = 'superset' WHERE session_id = 'ben-lift-7' AND set_index = 2",
     "accepted_values_strength_sets_set_type", 1, "set_type=superset"),
    ("UPDATE samples SET heart_rate_bpm = 400 WHERE activity_id = 'ben-run-10' AND elapsed_s = 60",
     "range_samples_heart_rate_bpm", 1, "heart_rate_bpm=400.0"),
    ("UPDATE strength_sets SET weight_kg = 2500 WHERE session_id LIKE 'ana-lift-%' AND set_index = 1",
     "range_strength_sets_weight_kg", 52, "weight_kg=2500.0"),
    ("UPDATE samples SET athlete_id = 'ben' WHERE activity_id = 'ana-run-0'",
     "consistent_samples_athlete_id__activities", 10, "athlete_id=ben"),
    ("INSERT INTO run_metrics (activity_id, athlete_id, start_time, included, exclusion_reason) "
     "VALUES ('deleted-run', 'ana', TIMESTAMPTZ '2024-03-01 10:00:00+00', false, 'no heart rate')",
     "relationships_run_metrics_activity_id__activities", 1, "activity_id=deleted-run"),
    ("UPDATE source_files SET status = 'weird' WHERE path = 'data/raw/ana/run1.fit'",
     "accepted_values_source_files_status", 1, "status=weird"),
    ("UPDATE block_effects SET verdict = 'caused a gain' WHERE athlete_id = 'ben'",
     "accepted_values_block_effects_verdict", 1, "verdict=caused a gain"),
    ("UPDATE run_metrics SET exclusion_reason = NULL WHERE activity_id = 'ana-run-4'",
     "run_metrics_excluded_runs_have_reason", 1, "activity_id=ana-run-4"),
    ("UPDATE run_metrics SET m_per_beat = 9 WHERE activity_id = 'ana-run-1'",
     "range_run_metrics_m_per_beat", 1, "m_per_beat=9.0"),
    ("DELETE FROM strength_sessions WHERE session_id = 'ben-lift-0'",
     "relationships_strength_sets_session_id__strength_sessions", 4, "session_id=ben-lift-0"),
])
def test_planted_violation_is_reported_by_its_check(populated_ws, planted, check_name, count, example):
    _plant(populated_ws, planted)
    result = run_checks(populated_ws)
    assert not result.ok
    assert [o.name for o in result.violations] == [check_name]
    outcome = result.outcome(check_name)
    assert outcome.count == count
    assert any(example in e for e in outcome.examples), outcome.examples
    assert f"FAIL  {check_name}: {count} row" in result.render()


def test_several_violations_are_all_reported_not_just_the_first(populated_ws):
    _plant(populated_ws,
           "UPDATE samples SET heart_rate_bpm = 400 WHERE activity_id = 'ben-run-10'",
           "UPDATE strength_sets SET reps = -3 WHERE session_id = 'ana-lift-1'")
    result = run_checks(populated_ws)
    assert {o.name: o.count for o in result.violations} == {
        "range_samples_heart_rate_bpm": 10, "range_strength_sets_reps": 4}
    assert "2 failed" in result.render()


def test_a_check_that_cannot_run_is_reported_not_raised(populated_ws):
    _plant(populated_ws, "DROP VIEW block_summary", "ALTER TABLE weekly RENAME COLUMN runs TO n_runs")
    # reopening for writing would re-create the column; read-only checks see the damaged table
    result = run_checks(populated_ws)
    bad = result.outcome("range_weekly_runs")
    assert bad.error is not None and "runs" in bad.error
    assert not result.ok
    assert "ERROR range_weekly_runs" in result.render()


def test_cli_check_exits_1_and_lists_violations(populated_ws):
    from click.testing import CliRunner

    from pipeline.cli import cli

    runner = CliRunner()
    ok = runner.invoke(cli, ["--workspace", str(populated_ws.root), "check"])
    assert ok.exit_code == 0, ok.output
    assert "0 failed; no violations" in ok.output
    _plant(populated_ws, "UPDATE samples SET speed_m_s = 40 WHERE activity_id = 'ana-run-2' AND elapsed_s = 0")
    bad = runner.invoke(cli, ["--workspace", str(populated_ws.root), "check"])
    assert bad.exit_code == 1
    assert ("FAIL  samples_on_foot_speed_plausible: 1 row - samples: not (speed_m_s IS NULL OR speed_m_s <= 15"
            in bad.output)

"""Schema versions and migrations on real warehouse files; the generated docs and their example queries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import pytest

from pipeline.errors import PipelineError
from pipeline.warehouse import docs as warehouse_docs
from pipeline.warehouse import contract, migrations
from pipeline.warehouse.contract import RELATIONS
from pipeline.warehouse.docs import example_queries
from pipeline.warehouse.db import SCHEMA_VERSION, STORAGE_COMPATIBILITY, connect, ensure_schema
from pipeline.warehouse.migrations import MIGRATIONS

FIXTURES = Path(__file__).parent / "fixtures"
DOC = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"


def _v1_warehouse(ws) -> None:
    """A warehouse exactly as the version-1 pipeline left it: its schema.sql, data, version stamp 1."""
    con = duckdb.connect(str(ws.warehouse_path),
                         config={"storage_compatibility_version": STORAGE_COMPATIBILITY})
    con.execute((FIXTURES / "schema_v1.sql").read_text())
    con.execute("INSERT INTO pipeline_meta VALUES ('schema_version', '1')")
    con.execute("""
        INSERT INTO activities (activity_id, athlete_id, file_id, sport, start_time, distance_m)
        VALUES ('a1', 'ana', 'f1', 'running', TIMESTAMPTZ '2024-03-01 08:00:00+00', 10000);
        INSERT INTO run_metrics (activity_id, athlete_id, start_time, economy_m_per_beat, distance_km, included)
        VALUES ('a1', 'ana', TIMESTAMPTZ '2024-03-01 08:00:00+00', 1.2, 10, true);
        INSERT INTO samples (activity_id, athlete_id, ts, heart_rate_bpm)
        SELECT 'a1', 'ana', TIMESTAMPTZ '2024-03-01 08:00:00+00' + INTERVAL (i) SECOND, 140 FROM range(500) t(i);
    """)
    con.close()


def test_fresh_warehouse_records_the_current_version(workspace):
    con = connect(workspace)
    assert con.execute("SELECT value FROM pipeline_meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),)
    con.close()


def test_v1_warehouse_is_migrated_in_place_keeping_every_row(workspace):
    _v1_warehouse(workspace)
    # read-only commands cannot migrate: they say what to do
    with pytest.raises(PipelineError, match=f"has schema version 1, this pipeline uses {SCHEMA_VERSION}: "
                                            "run `pipeline ingest`"):
        connect(workspace, read_only=True)
    con = connect(workspace)
    assert con.execute("SELECT value FROM pipeline_meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),)
    assert con.execute("SELECT count(*) FROM samples").fetchone() == (500,)
    assert con.execute("SELECT athlete_id, CAST(month AS VARCHAR), runs, median_economy_m_per_beat "
                       "FROM monthly_economy").fetchall() == [("ana", "2024-03-01", 1, 1.2)]
    assert con.execute("SELECT count(*) FROM declared_blocks").fetchone() == (0,)
    assert con.execute("SELECT activity_id, sport, distance_km FROM runs").fetchall() == [("a1", "running", 10.0)]
    con.close()
    connect(workspace, read_only=True).close()   # now current


def test_columns_added_to_the_contract_reach_existing_warehouses(workspace, monkeypatch):
    connect(workspace).close()
    con = connect(workspace)
    con.execute("INSERT INTO weekly (athlete_id, week_start, runs) VALUES ('ana', DATE '2024-03-04', 3)")
    con.close()
    weekly = contract.TABLES["weekly"]
    added = contract.Column("long_run_km", "DOUBLE", "Longest run of the week.")
    tables = {**contract.TABLES, "weekly": dataclasses.replace(weekly, columns=(*weekly.columns, added))}
    extended = "\n\n".join(t.create_sql() for t in tables.values())
    assert extended != migrations.schema_sql()
    monkeypatch.setattr(migrations, "TABLES", tables)
    monkeypatch.setattr(migrations, "schema_sql", lambda: extended)
    con = connect(workspace)
    assert con.execute("SELECT runs, long_run_km FROM weekly").fetchall() == [(3, None)]
    con.close()


def test_failed_migration_leaves_the_file_unchanged(workspace, monkeypatch):
    _v1_warehouse(workspace)

    def broken(con):
        con.execute("CREATE TABLE half_done (x INTEGER)")
        con.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(migrations, "MIGRATIONS", (migrations.Migration(2, "broken", broken),))
    with pytest.raises(PipelineError, match=f"could not bring the warehouse .* from schema version 1 to "
                                            f"{SCHEMA_VERSION}; it was left unchanged"):
        connect(workspace)
    con = duckdb.connect(str(workspace.warehouse_path), read_only=True)
    assert con.execute("SELECT value FROM pipeline_meta WHERE key='schema_version'").fetchone() == ("1",)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "half_done" not in tables and "declared_blocks" not in tables
    assert con.execute("SELECT count(*) FROM samples").fetchone() == (500,)
    con.close()


def test_newer_warehouse_is_refused_with_upgrade_advice(workspace):
    connect(workspace).close()
    con = duckdb.connect(str(workspace.warehouse_path))
    con.execute("UPDATE pipeline_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    for read_only in (False, True):
        with pytest.raises(PipelineError, match=rf"has schema version 99, newer than this pipeline knows "
                                                rf"\({SCHEMA_VERSION}\).*Upgrade the pipeline"):
            connect(workspace, read_only=read_only)


def test_unversioned_warehouse_with_tables_says_what_to_do(workspace):
    con = duckdb.connect(str(workspace.warehouse_path))
    con.execute("CREATE TABLE activities (activity_id VARCHAR); INSERT INTO activities VALUES ('x')")
    con.close()
    with pytest.raises(PipelineError, match=r"has tables \(activities\) but no pipeline_meta.*Move it aside.*"
                                            r"`pipeline ingest` to rebuild"):
        connect(workspace)
    con = duckdb.connect(str(workspace.warehouse_path), read_only=True)
    assert con.execute("SELECT * FROM activities").fetchall() == [("x",)]   # untouched
    con.close()


def _v2_warehouse_with_duplicates(ws) -> None:
    """A version-2 warehouse (no shadowed_by) holding every kind of duplicate row version 2 wrote."""
    con = connect(ws)
    con.execute("ALTER TABLE source_files DROP COLUMN shadowed_by")
    con.execute("UPDATE pipeline_meta SET value = '2' WHERE key = 'schema_version'")
    con.execute("""
        INSERT INTO source_files (path, file_id, athlete_id, format, size_bytes, status, message, ingested_at,
                                  n_activities, n_samples, duplicate_of) VALUES
        ('data/raw/ana/plan.csv', 'fc', 'ana', 'strong_csv', 9, 'ok', '8 sessions', now(), 8, 0, NULL),
        ('data/raw/ben/plan.csv', 'fc', 'ben', 'strong_csv', 9, 'duplicate',
         'identical content to data/raw/ana/plan.csv', now(), 0, 0, NULL),
        ('data/raw/ana/run.fit', 'ff', 'ana', 'fit', 9, 'ok', '2 activities', now(), 1, 10, NULL),
        ('data/raw/ana/copy/run.fit', 'ff', 'ana', 'fit', 9, 'duplicate',
         'identical content to data/raw/ana/run.fit', now(), 0, 0, 'ana-20240501T061500Z-0'),
        ('data/raw/ana/run.gpx', 'fg', 'ana', 'gpx', 9, 'duplicate', 'same activity as ...', now(), 0, 0,
         'ana-20240501T061500Z-0'),
        ('data/raw/ana/multi.tcx', 'ft', 'ana', 'tcx', 9, 'ok', '2 activities (running, running), 20 samples; '
         '1 activity already present from a richer or equal source (ana-20240502T061500Z-1-0a1b2c3d); '
         'warnings: x', now(), 1, 10, NULL);
        INSERT INTO activities (activity_id, athlete_id, file_id, start_time) VALUES
        ('ana-20240501T061500Z-0', 'ana', 'ff', TIMESTAMPTZ '2024-05-01 06:15:00+00');
        INSERT INTO strength_sessions (session_id, athlete_id, start_time, file_id) VALUES
        ('ss_1', 'ana', TIMESTAMPTZ '2024-03-01 18:00:00+00', 'fc');
    """)
    con.close()


def test_v2_warehouse_gets_identity_per_athlete_and_shadows(workspace):
    _v2_warehouse_with_duplicates(workspace)
    con = connect(workspace)
    rows = dict(con.execute("SELECT regexp_replace(path, 'data/raw/', ''), shadowed_by FROM source_files").fetchall())
    con.close()
    # ben's copy of ana's bytes was wrongly a duplicate: gone, so the next ingest reads it for ben
    assert "ben/plan.csv" not in rows
    assert rows == {"ana/plan.csv": None, "ana/run.fit": None,
                    "ana/copy/run.fit": ["ana-20240501T061500Z-0"],
                    "ana/run.gpx": ["ana-20240501T061500Z-0"],
                    "ana/multi.tcx": ["ana-20240502T061500Z-1-0a1b2c3d"]}


def test_migrations_are_numbered_in_order_up_to_the_current_version():
    numbers = [m.number for m in MIGRATIONS]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert numbers[-1] == SCHEMA_VERSION


def test_warehouse_files_open_in_the_duckdb_cli(populated_ws):
    import subprocess

    from pipeline.warehouse.shell import duckdb_cli

    done = subprocess.run([str(duckdb_cli()), "-readonly", "-csv", str(populated_ws.warehouse_path)],
                          input="SELECT count(*) AS n FROM samples;\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["n", "1200"]


# ------------------------------------------------------------------ docs/warehouse.md

def test_every_table_view_and_column_has_a_description():
    con = duckdb.connect()
    ensure_schema(con)
    assert warehouse_docs.undocumented(con) == []
    # and the contract describes nothing that does not exist, in the live schema's column order
    live = warehouse_docs.live_columns(con)
    for name, relation in RELATIONS.items():
        assert name in live, name
        assert relation.column_names == [c[0] for c in live[name]], name
    con.close()


def test_docs_warehouse_md_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == warehouse_docs.generate(), (
        "docs/warehouse.md is out of date: run `python -m pipeline.warehouse.docs`")


def test_docs_hold_the_promised_example_queries():
    text = "\n".join(example_queries())
    for needle in ("FROM monthly_economy", "WHERE NOT included", "strength_sets", "FROM block_summary"):
        assert needle in text


@pytest.mark.parametrize("query", example_queries(), ids=lambda q: q.split("\n")[0][:40])
def test_documented_example_query_returns_rows(populated_ws, query):
    con = connect(populated_ws, read_only=True)
    try:
        rows = con.execute(query).fetchall()
    finally:
        con.close()
    assert rows, query

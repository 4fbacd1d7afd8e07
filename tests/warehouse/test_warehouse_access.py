"""pipeline sql, export and shell on a populated warehouse."""

from __future__ import annotations

import subprocess

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.errors import PipelineError
from pipeline.warehouse.contract import TABLES, VIEW_NAMES
from pipeline.warehouse.export import NOT_EXPORTED, export_tables
from pipeline.warehouse.query import render_table, run_sql
from pipeline.warehouse.shell import duckdb_cli, shell_argv


# ------------------------------------------------------------------ pipeline sql

def test_run_sql_prints_an_aligned_table_with_row_count(populated_ws):
    out = run_sql(populated_ws, "SELECT athlete_id, count(*) AS runs, round(avg(distance_km), 2) AS km "
                                "FROM runs GROUP BY athlete_id ORDER BY athlete_id")
    assert out.splitlines() == [
        "athlete_id  runs     km",
        "----------  ----  -----",
        "ana           60  10.29",
        "ben           60  10.29",
        "(2 rows)",
    ]


def test_run_sql_csv_has_header_iso_times_and_empty_nulls(populated_ws):
    out = run_sql(populated_ws, "SELECT activity_id, start_time, exclusion_reason FROM run_metrics "
                                "WHERE activity_id IN ('ana-run-3', 'ana-run-4') ORDER BY activity_id",
                  as_csv=True)
    assert out.splitlines() == [
        "activity_id,start_time,exclusion_reason",
        "ana-run-3,2024-01-10T07:00:00+00:00,",
        "ana-run-4,2024-01-13T07:00:00+00:00,too little steady running (4 min < 20 min)",
    ]


def test_run_sql_errors_are_one_line_and_writes_are_refused(populated_ws):
    with pytest.raises(PipelineError, match=r"^SQL: Catalog Error: Table with name nope does not exist!"):
        run_sql(populated_ws, "SELECT * FROM nope")
    with pytest.raises(PipelineError, match=r"read-only.*pipeline shell --write"):
        run_sql(populated_ws, "DELETE FROM samples")
    with pytest.raises(PipelineError, match="^SQL: the query is empty$"):
        run_sql(populated_ws, "  ")


def test_run_sql_cannot_reach_outside_the_warehouse(populated_ws, tmp_path):
    """External access off, configuration locked: no file written or read, no extension installed."""
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    out = tmp_path / "copy.csv"
    for query in (f"COPY (SELECT * FROM samples) TO '{out}'", f"SELECT * FROM read_csv('{secret}')",
                  f"SELECT * FROM read_text('{secret}')", f"SELECT * FROM glob('{tmp_path}/*')",
                  f"ATTACH '{tmp_path / 'other.duckdb'}'", f"EXPORT DATABASE '{tmp_path / 'dump'}'",
                  "INSTALL httpfs"):
        with pytest.raises(PipelineError, match=r"^SQL: Permission Error: .*disabled by configuration.*"
                                                r"pipeline sql reads the warehouse only"):
            run_sql(populated_ws, query)
    for query in ("SET enable_external_access = true", "SET lock_configuration = false"):
        with pytest.raises(PipelineError, match="configuration has been locked"):
            run_sql(populated_ws, f"{query}; COPY (SELECT 1) TO '{out}'")
    assert not out.exists() and not (tmp_path / "other.duckdb").exists() and not (tmp_path / "dump").exists()
    assert run_sql(populated_ws, "SELECT count(*) AS n FROM samples").splitlines()[2].strip() == "1200"


def test_sql_help_says_precisely_what_read_only_means():
    result = CliRunner().invoke(cli, ["sql", "--help"])
    assert "Read-only for the warehouse, and nothing outside it" in result.output
    assert "COPY ... TO" in result.output and "INSTALL/LOAD" in result.output


def test_run_sql_cuts_long_tables_but_not_csv(populated_ws):
    table = run_sql(populated_ws, "SELECT * FROM range(1500)")
    assert table.splitlines()[-1] == "(more than 1000 rows, first 1000 shown; use --csv or LIMIT)"
    assert len(run_sql(populated_ws, "SELECT * FROM range(1500)", as_csv=True).splitlines()) == 1501


def test_render_table_formats_nulls_and_floats():
    assert render_table(["a", "b"], [(None, 1 / 3), ("x", 12.0)]).splitlines() == [
        "a            b", "----  --------", "NULL  0.333333", "x           12", "(2 rows)"]


def test_cli_sql_error_is_one_line_exit_1(populated_ws):
    result = CliRunner().invoke(cli, ["--workspace", str(populated_ws.root), "sql", "SELEC 1"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: SQL: Parser Error: syntax error at or near \"SELEC\"")
    assert result.output.count("\n") == 1


def test_sql_without_warehouse_says_to_ingest(workspace):
    with pytest.raises(PipelineError, match="no warehouse at .*run `pipeline ingest` first"):
        run_sql(workspace, "SELECT 1")


# ------------------------------------------------------------------ pipeline export

def test_export_parquet_round_trips_every_table_and_partitions_samples(populated_ws, tmp_path):
    out = tmp_path / "export"
    written = export_tables(populated_ws, out)
    names = sorted(p.relative_to(out).as_posix() for p in written)
    assert "samples/athlete_id=ana/data_0.parquet" in names
    assert "samples/athlete_id=ben/data_0.parquet" in names
    for name in ("activities", "run_metrics", "strength_sets", "block_effects", "runs", "block_summary",
                 "monthly_economy"):
        assert f"{name}.parquet" in names
    assert "pipeline_meta.parquet" not in names
    samples = pd.read_parquet(out / "samples")
    assert len(samples) == 1200
    assert sorted(samples["athlete_id"].astype(str).unique()) == ["ana", "ben"]
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 120 and int((~runs["included"]).sum()) == 24
    readme = (out / "README.md").read_text()
    assert "| samples | table | 1200 | samples/ (partitioned by athlete_id, 2 file(s)) |" in readme
    assert "| monthly_economy | view | 12 | monthly_economy.parquet |" in readme


def test_export_csv_for_one_athlete_filters_every_table(populated_ws, tmp_path):
    out = tmp_path / "ana"
    export_tables(populated_ws, out, fmt="csv", athlete_id="ana")
    con = duckdb.connect()
    assert con.execute(f"SELECT DISTINCT athlete_id FROM '{out}/activities.csv'").fetchall() == [("ana",)]
    # laps and strength_sets have no athlete_id: filtered through their parents
    assert con.execute(f"SELECT count(*) FROM '{out}/laps.csv'").fetchone()[0] == 120
    assert con.execute(f"SELECT count(*) FROM '{out}/strength_sets.csv'").fetchone()[0] == 208
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["athlete_id=ana"]
    assert con.execute(f"SELECT count(*) FROM '{out}/samples/*/*.csv'").fetchone()[0] == 600


def test_export_again_replaces_the_previous_files(populated_ws, tmp_path):
    out = tmp_path / "export"
    export_tables(populated_ws, out)
    export_tables(populated_ws, out, athlete_id="ben")
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["athlete_id=ben"]
    assert pd.read_parquet(out / "activities.parquet")["athlete_id"].unique().tolist() == ["ben"]


def test_export_unknown_athlete_is_a_clear_error(populated_ws, tmp_path):
    with pytest.raises(PipelineError, match="no athlete 'zoe' in the warehouse"):
        export_tables(populated_ws, tmp_path / "x", athlete_id="zoe")
    assert not (tmp_path / "x").exists()   # nothing created for a refused request


def test_cli_export(populated_ws, tmp_path):
    result = CliRunner().invoke(cli, ["--workspace", str(populated_ws.root), "export", "--format", "csv",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    # every contract table but pipeline_meta (samples as 2 athlete partitions: one file more) and every view
    n_files = len(TABLES) - len(NOT_EXPORTED) + 1 + len(VIEW_NAMES)
    assert n_files >= 18
    assert result.output.startswith(f"Wrote {n_files} file(s) to ")


# ------------------------------------------------------------------ pipeline shell

def test_shell_argv_is_read_only_by_default_and_runs_queries(populated_ws):
    argv = shell_argv(populated_ws)
    assert argv[0] == str(duckdb_cli())
    assert "-readonly" in argv and argv[-1] == str(populated_ws.warehouse_path)
    done = subprocess.run(argv + ["-csv"], input="SELECT count(*) AS n FROM runs WHERE included;\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["n", "96"]
    refused = subprocess.run(argv, input="DELETE FROM samples;\n", capture_output=True, text=True, timeout=60)
    assert "read-only" in (refused.stdout + refused.stderr)


def test_shell_write_mode_can_write(populated_ws):
    argv = shell_argv(populated_ws, write=True)
    assert "-readonly" not in argv
    done = subprocess.run(argv + ["-csv"], input="CREATE TABLE my_notes AS SELECT 1 AS x;\n"
                                                 "SELECT count(*) AS n FROM my_notes;\n",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["n", "1"]


def test_shell_shows_times_in_utc(populated_ws):
    done = subprocess.run(shell_argv(populated_ws) + ["-csv"],
                          input="SELECT start_time FROM activities WHERE activity_id = 'ana-run-0';\n",
                          capture_output=True, text=True, timeout=60, env={"TZ": "America/New_York"})
    assert done.stdout.split() == ["start_time", "2024-01-01", "07:00:00+00"]


def test_shell_without_warehouse_is_a_clear_error(workspace):
    with pytest.raises(PipelineError, match="no warehouse at .*run `pipeline ingest` first"):
        shell_argv(workspace)

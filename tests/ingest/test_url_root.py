"""data/raw given as a URL (pipeline.rawroot, pipeline.ingest.url_root): a real HTTP server on localhost
(Python's http.server, as tests/ingest/raw_server.py) and file:// URLs, read through fsspec by this process,
by local parser processes and by a real dask LocalCluster of 2 workers, give the warehouse an ingest of the
same folder on disk gives; changes and removals on the server reach the warehouse; a server failing for one
file costs that file only."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gzip
import os
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from ingest_builders import START, fit_bytes, gpx_bytes
from raw_server import serve_folder

from bench.compare import COMPARED
from pipeline.analyze.run import analyze_workspace
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import write_athlete
from pipeline.engine import open_engine
from pipeline.errors import PipelineError
from pipeline.ingest.run import ingest_paths
from pipeline.rawroot import RawRoot, RawUnreadable, athlete_config, raw_root
from pipeline.warehouse.db import connect
from pipeline.weather.run import weather_workspace
from pipeline.workspace import Workspace, athlete_id_from_folder

ZOE = "Zoë O'Brien"                       # a folder whose name is mapped to an id (quoted in HTTP links)
ZOE_ID = athlete_id_from_folder(ZOE)
# Tables compared: ingest's (bench.compare, as the cluster bench compares them) and the athletes' settings
# and declared blocks, which come from athlete.toml and blocks.csv on the root.
TABLES = {**{t: COMPARED[t] for t in ("source_files", "activities", "samples", "laps", "strength_sessions",
                                      "strength_sets")},
          "athletes": "SELECT * EXCLUDE (updated_at) FROM athletes",
          "declared_blocks": "SELECT * FROM declared_blocks"}


def write_raw_tree(raw: Path) -> None:
    """A small data/raw: a simulated athlete (FIT, GPX, Strong CSV, athlete.toml, a hidden .truth/), a mapped
    folder name with athlete.toml and blocks.csv, a zip export (one member an identical copy of a plain file,
    so removing that file promotes the member), a .gz, an athlete to remove, a README."""
    profile = dataclasses.replace(PROFILES["gain"], weeks=5, block_start_week=2)
    write_athlete(simulate_athlete(profile, 31, sample_interval_s=30.0, athlete_id="ann"), raw)
    zoe = raw / ZOE
    zoe.mkdir()
    (zoe / "morning run.fit").write_bytes(fit_bytes(start=START + dt.timedelta(days=1)))
    (zoe / "evening.gpx").write_bytes(gpx_bytes(start=START + dt.timedelta(days=2)))
    (zoe / "athlete.toml").write_text("weather = false\nhr_max_bpm = 190\n", encoding="utf-8")
    (zoe / "blocks.csv").write_text("label,start,end\nWinter,2024-01-08,2024-03-03\n", encoding="utf-8")
    cy = raw / "cy"
    cy.mkdir()
    copied = fit_bytes(start=START + dt.timedelta(days=3))
    (cy / "a.fit").write_bytes(copied)
    with zipfile.ZipFile(cy / "z-export.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("activities/x.fit", copied)
        zf.writestr("activities/y.gpx", gpx_bytes(start=START + dt.timedelta(days=4)))
    (cy / "run.gpx.gz").write_bytes(gzip.compress(gpx_bytes(start=START + dt.timedelta(days=5))))
    (raw / "dee").mkdir()
    (raw / "dee" / "only.gpx").write_bytes(gpx_bytes(start=START + dt.timedelta(days=6)))
    (raw / "README.md").write_text("exports\n", encoding="utf-8")


@pytest.fixture(scope="module")
def raw_tree(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("served") / "raw"
    write_raw_tree(raw)
    return raw


def tables(ws: Workspace) -> dict[str, pd.DataFrame]:
    con = connect(ws, read_only=True)
    try:
        return {t: con.execute(f"{sql} ORDER BY ALL").df() for t, sql in TABLES.items()}
    finally:
        con.close()


def assert_same_warehouse(expected: Workspace, got: Workspace) -> None:
    a, b = tables(expected), tables(got)
    for table in TABLES:
        pd.testing.assert_frame_equal(a[table], b[table], check_exact=True, obj=table)


def local_copy_ingested(tmp_path: Path, raw: Path, name: str = "local") -> Workspace:
    """The same folder ingested from disk (the reference)."""
    ws = Workspace(tmp_path / name)
    shutil.copytree(raw, ws.raw_dir)
    ingest_paths(ws, None, jobs=1, progress=False)
    return ws


@contextlib.contextmanager
def served(raw: Path, scheme: str):
    """(URL of ``raw``, the HTTP server or None for file://)."""
    if scheme == "file":
        yield raw.as_uri(), None
        return
    with serve_folder(raw) as server:
        yield server.url, server


def data_gets(server) -> list[str]:
    """Files fetched (GET) other than listing pages and athletes' settings."""
    return [p for p in server.gets() if not p.endswith("/") and not p.endswith(("athlete.toml", "blocks.csv"))]


@pytest.mark.parametrize("scheme", ["http", "file"])
def test_url_root_gives_the_warehouse_of_the_same_folder_on_disk(tmp_path, raw_tree, scheme):
    local = local_copy_ingested(tmp_path, raw_tree)
    remote = Workspace(tmp_path / "remote")
    with served(raw_tree, scheme) as (url, server):
        summary = ingest_paths(remote, None, jobs=2, progress=False, raw=url)
        if server:
            fetched = data_gets(server)
            server.requests.clear()
        again = ingest_paths(remote, None, jobs=2, progress=False, raw=url)
    assert_same_warehouse(local, remote)
    n_files = sum(summary.files.values())
    # the zip's copy of cy/a.fit is an identical copy (a duplicate row), every other file is ok
    assert summary.files == {"ok": n_files - 1, "duplicate": 1} and n_files >= 20
    assert summary.athletes == sorted(["ann", "cy", "dee", ZOE_ID])
    t = tables(remote)
    zoe = t["athletes"].set_index("athlete_id").loc[ZOE_ID]
    assert (zoe["display_name"], zoe["hr_max_bpm"]) == (ZOE, 190.0)
    assert t["declared_blocks"]["athlete_id"].tolist() == [ZOE_ID]
    assert f"data/raw/{ZOE}/morning run.fit" in set(t["source_files"]["path"])
    # the re-run: every file unchanged by its listed version, none downloaded (files counts the archive
    # row and its 2 members; a re-run counts the archive unchanged and does not list its members)
    assert again.files == ingest_paths(local, None, jobs=1, progress=False).files == {"unchanged": n_files - 2}
    if server:
        assert "/cy/z-export.zip" in fetched and f"/{ZOE}/morning run.fit" in fetched
        assert data_gets(server) == [], "unchanged files were downloaded again"
    con = connect(remote, read_only=True)
    try:
        versions = con.execute("SELECT count(*), count(DISTINCT file_id) FROM source_versions").fetchone()
        recorded = con.execute("SELECT value FROM pipeline_meta WHERE key = 'raw_root'").fetchone()[0]
    finally:
        con.close()
    assert versions == (n_files - 2, n_files - 2)     # the plain files and the archive (not its 2 members)
    assert recorded == url


def test_changes_and_removals_on_the_server_reach_the_warehouse(tmp_path, raw_tree):
    raw = tmp_path / "served"
    shutil.copytree(raw_tree, raw)
    remote = Workspace(tmp_path / "remote")
    with serve_folder(raw) as server:
        ingest_paths(remote, None, jobs=1, progress=False, raw=server.url)
        gone_run = sorted((raw / "ann" / "runs").glob("*.fit"))[0]
        gone_run.unlink()
        (raw / "cy" / "a.fit").unlink()                   # its identical copy in the zip must take its place
        shutil.rmtree(raw / "dee")                        # a whole athlete
        changed = raw / ZOE / "morning run.fit"
        changed.write_bytes(fit_bytes(start=START + dt.timedelta(days=9)))
        later = changed.stat().st_mtime + 100             # Last-Modified has one-second resolution
        os.utime(changed, (later, later))
        server.requests.clear()
        summary = ingest_paths(remote, None, jobs=1, progress=False, raw=server.url)
        fetched = data_gets(server)
    assert sorted(summary.removed_files) == sorted([f"data/raw/ann/runs/{gone_run.name}", "data/raw/cy/a.fit",
                                                    "data/raw/dee/only.gpx"])
    assert summary.removed_athletes == ["dee"]
    assert summary.promoted == ["data/raw/cy/z-export.zip!activities/x.fit"]
    assert sorted(fetched) == sorted([f"/{ZOE}/morning run.fit", "/cy/z-export.zip"])   # changed + promoted
    assert_same_warehouse(local_copy_ingested(tmp_path, raw), remote)


def test_a_server_failing_for_one_file_costs_that_file_only(tmp_path, raw_tree):
    raw = tmp_path / "served"
    shutil.copytree(raw_tree, raw)
    remote = Workspace(tmp_path / "remote")
    failing = sorted((raw / "ann" / "runs").glob("*.fit"))[1]
    with serve_folder(raw) as server:
        server.failing.add(f"/ann/runs/{failing.name}")
        server.cut.add(f"/{ZOE}/evening.gpx")
        first = ingest_paths(remote, None, jobs=2, progress=False, raw=server.url)
        errors = dict(first.errors)
        server.failing, server.cut = {"/cy/"}, set()     # next time: the files answer, a folder's page does not
        second = ingest_paths(remote, None, jobs=2, progress=False, raw=server.url)
        server.failing = set()
        ingest_paths(remote, None, jobs=2, progress=False, raw=server.url)
    assert sorted(errors) == sorted([f"data/raw/ann/runs/{failing.name}", f"data/raw/{ZOE}/evening.gpx"])
    message = errors[f"data/raw/ann/runs/{failing.name}"]
    assert message.startswith("cannot read file: HTTP 500 Internal Server Error") and failing.name in message
    assert errors[f"data/raw/{ZOE}/evening.gpx"].startswith("cannot read file: ClientPayloadError")
    reference = tables(local_copy_ingested(tmp_path, raw_tree, "reference"))["source_files"]
    assert first.files["ok"] == (reference["status"] == "ok").sum() - 2
    # the folder whose page failed keeps its files (nothing removed), the others' failed files are read
    assert second.errors == [] and second.removed_files == [] and second.files["ok"] == 2
    assert any(n.startswith("data/raw/cy: could not be listed") and "HTTP 500" in n for n in second.notes)
    assert_same_warehouse(local_copy_ingested(tmp_path, raw), remote)


@pytest.mark.slow
def test_local_cluster_workers_read_the_http_root_themselves(tmp_path, raw_tree):
    local = local_copy_ingested(tmp_path, raw_tree)
    remote = Workspace(tmp_path / "remote")
    with serve_folder(raw_tree) as server, open_engine("local:2") as engine:
        assert engine.n_workers == 2
        summary = ingest_paths(remote, None, progress=False, engine=engine, raw=server.url)
    # the writer only lists and asks for versions (HEAD); every FIT file was fetched by a worker process
    fetched = {p for p in data_gets(server) if p.endswith(".fit")}
    assert summary.files["ok"] >= 20 and len(fetched) == sum(1 for _ in raw_tree.rglob("*.fit"))
    assert_same_warehouse(local, remote)


def test_athlete_toml_is_read_from_the_url_root(tmp_path, raw_tree):
    ws = Workspace(tmp_path / "ws")
    with serve_folder(raw_tree) as server:
        root = raw_root(ws, server.url)
        assert athlete_config(root, ws, ZOE_ID).weather is False          # the weather stage's opt-out
        assert athlete_config(root, ws, "cy").weather is None             # no athlete.toml: defaults
        server.failing.add(f"/{ZOE}/athlete.toml")
        with pytest.raises(RawUnreadable, match=rf"data/raw/{ZOE}/athlete.toml: cannot be read \(HTTP 500"):
            athlete_config(root, ws, ZOE_ID)


def test_raw_setting_is_checked_naming_file_and_key(tmp_path):
    ws = Workspace(tmp_path)
    cases = [
        ('[raw]\nurl = "/mnt/raw"\n', "pipeline.toml [raw]: url must be a URL such as"),
        ('[raw]\nurl = 5\n', "pipeline.toml [raw]: url must be a URL such as"),
        ('[raw]\nuri = "http://x/"\n', "pipeline.toml [raw]: unknown key uri; valid keys: url, storage_options"),
        ('[raw]\nurl = "http://x/"\nstorage_options = 3\n', "pipeline.toml [raw]: storage_options must be a table"),
        ('[raw]\nurl = "nosuch://x/raw"\n', "pipeline.toml [raw]: url: nosuch:// is not a storage fsspec knows"),
        ("raw = 5\n", "pipeline.toml: [raw] must be a table"),
    ]
    for text, message in cases:
        ws.config_path.write_text(text, encoding="utf-8")
        with pytest.raises(PipelineError) as e:
            raw_root(ws)
        assert str(e.value).startswith(message), (text, str(e.value))
    ws.config_path.write_text('[raw]\nurl = "http://127.0.0.1:9/raw/"\nstorage_options = { headers = { A = "b" } }\n',
                              encoding="utf-8")
    assert raw_root(ws) == RawRoot("http://127.0.0.1:9/raw/", '{"headers": {"A": "b"}}')
    assert raw_root(ws, "data/raw") == RawRoot()       # a recorded local root
    with pytest.raises(PipelineError, match="--raw names the raw data root"):
        ingest_paths(ws, [tmp_path], raw="http://127.0.0.1:9/raw/")


def test_weather_keeps_positions_of_athletes_whose_athlete_toml_on_the_url_root_says_so(tmp_path, raw_tree):
    """`pipeline ingest --raw URL` then a stand-alone `pipeline weather`: the opt-out is read from the root
    the warehouse was ingested from (recorded in pipeline_meta), not from the empty local data/raw; with the
    root unreachable, nobody's positions are sent."""
    ws = Workspace(tmp_path / "ws")
    offline_archive = 'base_url = "http://127.0.0.1:9/v1/archive"\nmax_retries = 0\nrequest_interval_s = 0.0\n'
    with serve_folder(raw_tree) as server:
        ingest_paths(ws, None, jobs=1, progress=False, raw=server.url)
        ws.config_path.write_text("[weather]\n" + offline_archive, encoding="utf-8")
        reachable = weather_workspace(ws)
    unreachable = weather_workspace(ws)
    # ann (a simulated athlete: its athlete.toml says weather = false) and Zoë are kept back; cy's and dee's
    # runs are asked for (the archive here is offline)
    assert reachable.opted_out == sorted(["ann", ZOE_ID]) and reachable.pending > 0
    assert set(unreachable.opted_out) == {"ann", "cy", "dee", ZOE_ID} and unreachable.pending == 0
    assert unreachable.requests == 0


def test_analyze_checks_athlete_toml_on_the_url_root_and_goes_on_when_it_is_unreachable(tmp_path, raw_tree):
    raw = tmp_path / "served"
    shutil.copytree(raw_tree, raw)
    ws = Workspace(tmp_path / "ws")
    with serve_folder(raw) as server:
        ingest_paths(ws, None, jobs=1, progress=False, raw=server.url)
        (raw / "cy" / "athlete.toml").write_text("hr_max_bpm = 5000\n", encoding="utf-8")
        checked = analyze_workspace(ws, athlete_id="cy", force=True)
    unreachable = analyze_workspace(ws, athlete_id="cy", force=True)
    assert [(f.athlete_id, f.message.split(" is out of range")[0]) for f in checked.failures] == [
        ("cy", "data/raw/cy/athlete.toml: hr_max_bpm = 5000")]
    assert unreachable.failures == [] and [a.athlete_id for a in unreachable.athletes] == ["cy"]

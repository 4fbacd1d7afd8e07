"""The warehouse follows data/raw: deleted, changed and duplicated files, deleted athletes, identity per
athlete, overlapping recordings, athlete folder names. Every test asserts the exact rows that remain."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from ingest_builders import START, Segment, fit_bytes, gpx_bytes
from pipeline.analyze.run import analyze_workspace
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.checks import run_checks
from pipeline.warehouse.db import connect
from pipeline.warehouse.lifecycle import athlete_tables, warehouse_athletes
from pipeline.workspace import athlete_id_from_folder

STRONG_CSV = (
    "Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,RPE\n"
    + "".join(f"2024-0{m}-{d:02d} 18:00:00,Legs,45m,Squat (Barbell),{k},100,5,0,0,\n"
              for m in (3, 4) for d in (1, 8, 15, 22) for k in (1, 2, 3))
)
BLOCKS_CSV = "label,start,end\nSpring,2024-03-01,2024-04-30\n"


def _ingest(ws, paths=None, **kw):
    return ingest_paths(ws, paths, jobs=1, progress=False, **kw)


def _day(day: int, **seg) -> bytes:
    return fit_bytes([Segment(**seg)], start=START.replace(day=day))


def _rows(ws, sql: str, params=None) -> list[tuple]:
    con = connect(ws, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _files(ws) -> dict[str, str]:
    return {p.split("data/raw/", 1)[-1]: s for p, s in _rows(ws, "SELECT path, status FROM source_files")}


def _activities(ws) -> list[tuple]:
    return _rows(ws, "SELECT activity_id, source_format, n_samples FROM activities ORDER BY 1")


def _counts(ws) -> dict[str, int]:
    tables = ("source_files", "activities", "samples", "laps", "strength_sessions", "strength_sets",
              "declared_blocks", "athletes")
    return {t: _rows(ws, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def test_deleted_file_leaves_with_everything_it_wrote(workspace):
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "run1.fit").write_bytes(_day(1))
    (anna / "run2.fit").write_bytes(_day(2, n=90))
    _ingest(workspace)
    (anna / "run2.fit").unlink()
    summary = _ingest(workspace)
    assert summary.removed_files == ["data/raw/anna/run2.fit"]
    assert summary.files == {"unchanged": 1}
    assert "removed: 1 file(s) no longer in data/raw" in summary.render()
    assert _files(workspace) == {"anna/run1.fit": "ok"}
    assert _activities(workspace) == [("anna-20240501T061500Z-0", "fit", 120)]
    assert _counts(workspace) == {"source_files": 1, "activities": 1, "samples": 120, "laps": 1,
                                  "strength_sessions": 0, "strength_sets": 0, "declared_blocks": 0, "athletes": 1}


def test_rows_keyed_by_a_removed_activity_go_with_it(workspace):
    """Weather and run metrics of a deleted file's activity do not outlive it (pipeline check stays clean)."""
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "run1.fit").write_bytes(_day(1))
    (anna / "run2.fit").write_bytes(_day(2))
    _ingest(workspace)
    analyze_workspace(workspace)
    con = connect(workspace)
    con.execute("INSERT INTO weather (activity_id, athlete_id, source, status, fetched_at, message) "
                "SELECT activity_id, athlete_id, 'open_meteo_archive', 'no_data', now(), 'test' FROM activities")
    con.close()
    (anna / "run2.fit").unlink()
    _ingest(workspace)
    for table in ("weather", "run_metrics", "samples", "laps"):
        assert _rows(workspace, f"SELECT DISTINCT activity_id FROM {table}") == [("anna-20240501T061500Z-0",)], table
    assert run_checks(workspace).ok, run_checks(workspace).render()


def test_changed_file_replaces_its_rows(workspace):
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "run.fit").write_bytes(_day(1))
    _ingest(workspace)
    (anna / "run.fit").write_bytes(_day(3, n=60))   # re-exported: another recording under the same name
    summary = _ingest(workspace)
    assert summary.files == {"ok": 1} and summary.removed_files == []
    assert _activities(workspace) == [("anna-20240503T061500Z-0", "fit", 60)]
    assert _counts(workspace)["samples"] == 60 and _counts(workspace)["laps"] == 1


def test_summary_counts_what_the_warehouse_holds_after_a_demotion(workspace):
    """a.gpx is loaded first, then b.fit (the same run, richer) demotes it: the summary says ok 1,
    duplicate 1, as the warehouse does (it used to count the GPX as ok)."""
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "a.gpx").write_bytes(gpx_bytes(start=START.replace(second=1)))
    (anna / "b.fit").write_bytes(_day(1))
    summary = _ingest(workspace)
    held = dict(_rows(workspace, "SELECT status, count(*) FROM source_files GROUP BY 1"))
    assert summary.files == held == {"ok": 1, "duplicate": 1}
    assert summary.sports == {"running": 1} and summary.n_samples == 120
    assert _files(workspace) == {"anna/a.gpx": "duplicate", "anna/b.fit": "ok"}


def test_duplicate_is_promoted_when_the_richer_copy_goes(workspace):
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "run.fit").write_bytes(_day(1))
    (anna / "run.gpx").write_bytes(gpx_bytes(start=START.replace(second=1)))
    first = _ingest(workspace)
    assert first.files == {"ok": 1, "duplicate": 1}
    assert _rows(workspace, "SELECT shadowed_by FROM source_files WHERE path LIKE '%.gpx'") == \
        [(["anna-20240501T061500Z-0"],)]
    (anna / "run.fit").unlink()
    summary = _ingest(workspace)
    assert summary.promoted == ["data/raw/anna/run.gpx"] and summary.files == {"ok": 1}
    assert _files(workspace) == {"anna/run.gpx": "ok"}
    assert _activities(workspace) == [("anna-20240501T061501Z-0", "gpx", 120)]


def test_identical_copy_is_promoted_when_the_original_goes(workspace):
    for name in ("a", "b"):
        (workspace.raw_dir / "anna" / name).mkdir(parents=True)
        (workspace.raw_dir / "anna" / name / "run.fit").write_bytes(_day(1))
    assert _ingest(workspace).files == {"ok": 1, "duplicate": 1}
    shutil.rmtree(workspace.raw_dir / "anna" / "a")
    summary = _ingest(workspace)
    assert summary.promoted == ["data/raw/anna/b/run.fit"]
    assert _files(workspace) == {"anna/b/run.fit": "ok"}
    assert _activities(workspace) == [("anna-20240501T061500Z-0", "fit", 120)]


def test_a_changed_duplicate_never_deletes_the_original(workspace):
    for name in ("a", "b"):
        (workspace.raw_dir / "anna" / name).mkdir(parents=True)
        (workspace.raw_dir / "anna" / name / "run.fit").write_bytes(_day(1))
    _ingest(workspace)
    (workspace.raw_dir / "anna" / "b" / "run.fit").write_bytes(_day(5))
    _ingest(workspace)
    assert _files(workspace) == {"anna/a/run.fit": "ok", "anna/b/run.fit": "ok"}
    assert [a for a, *_ in _activities(workspace)] == ["anna-20240501T061500Z-0", "anna-20240505T061500Z-0"]


def test_deleted_athlete_leaves_every_table(workspace):
    for athlete in ("anna", "bob"):
        folder = workspace.raw_dir / athlete
        folder.mkdir()
        for day in range(1, 4):
            (folder / f"run{day}.fit").write_bytes(_day(day, n=300))
        (folder / "strong.csv").write_text(STRONG_CSV)
        (folder / "blocks.csv").write_text(BLOCKS_CSV)
    _ingest(workspace)
    analyze_workspace(workspace)
    assert warehouse_athletes(connect(workspace, read_only=True)) == {"anna", "bob"}
    before = _counts(workspace)
    shutil.rmtree(workspace.raw_dir / "bob")
    summary = _ingest(workspace)
    assert summary.removed_athletes == ["bob"] and len(summary.removed_files) == 4
    con = connect(workspace, read_only=True)
    try:
        for table in athlete_tables():
            assert con.execute(f"SELECT count(*) FROM {table} WHERE athlete_id = 'bob'").fetchone()[0] == 0, table
        assert con.execute("SELECT count(*) FROM run_metrics WHERE athlete_id = 'anna'").fetchone()[0] == 3
        assert warehouse_athletes(con) == {"anna"}
    finally:
        con.close()
    after = _counts(workspace)
    assert after == {t: n // 2 for t, n in before.items()}   # anna's half, exactly


def test_explicit_path_is_additive(workspace, tmp_path_factory):
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "run1.fit").write_bytes(_day(1))
    _ingest(workspace)
    outside = tmp_path_factory.mktemp("usb") / "watch.fit"
    outside.write_bytes(_day(2))
    summary = _ingest(workspace, [outside], athlete_id="anna")
    assert summary.files == {"ok": 1} and summary.removed_files == []
    (anna / "run1.fit").unlink()
    _ingest(workspace, [outside], athlete_id="anna")     # explicit: nothing removed
    assert len(_activities(workspace)) == 2
    summary = _ingest(workspace)                          # data/raw: reconciled, the outside file stays
    assert summary.removed_files == ["data/raw/anna/run1.fit"]
    assert [a for a, *_ in _activities(workspace)] == ["anna-20240502T061500Z-0"]


def test_identical_strength_logs_of_two_athletes_are_two_files(workspace):
    for athlete in ("anna", "bob"):
        (workspace.raw_dir / athlete).mkdir()
        (workspace.raw_dir / athlete / "plan.csv").write_text(STRONG_CSV)
        (workspace.raw_dir / athlete / "blocks.csv").write_text(BLOCKS_CSV)
    summary = _ingest(workspace)
    assert summary.files == {"ok": 2} and summary.n_strength_sessions == 16
    assert _rows(workspace, "SELECT athlete_id, count(*) FROM strength_sessions GROUP BY 1 ORDER BY 1") == \
        [("anna", 8), ("bob", 8)]
    assert _rows(workspace, "SELECT athlete_id, count(*) FROM strength_sets s JOIN strength_sessions USING "
                            "(session_id) GROUP BY 1 ORDER BY 1") == [("anna", 24), ("bob", 24)]
    assert _rows(workspace, "SELECT athlete_id, label FROM declared_blocks ORDER BY 1") == \
        [("anna", "Spring"), ("bob", "Spring")]
    # one of them leaves: the other keeps everything
    shutil.rmtree(workspace.raw_dir / "anna")
    _ingest(workspace)
    assert _rows(workspace, "SELECT athlete_id, count(*) FROM strength_sessions GROUP BY 1") == [("bob", 8)]


def test_identical_run_files_of_two_athletes_are_two_activities(workspace):
    for athlete in ("anna", "bob"):
        (workspace.raw_dir / athlete).mkdir()
        (workspace.raw_dir / athlete / "run.fit").write_bytes(_day(1))
    _ingest(workspace)
    assert [a for a, *_ in _activities(workspace)] == ["anna-20240501T061500Z-0", "bob-20240501T061500Z-0"]
    (workspace.raw_dir / "bob" / "run.fit").unlink()
    (workspace.raw_dir / "bob" / "other.fit").write_bytes(_day(9))
    _ingest(workspace)
    assert [a for a, *_ in _activities(workspace)] == ["anna-20240501T061500Z-0", "bob-20240509T061500Z-0"]


@pytest.mark.parametrize("late_s", [180, 420])
def test_overlapping_recordings_of_two_devices_are_one_activity(workspace, late_s):
    """A watch (FIT, 40 min) and a phone app (GPX) started a few minutes later and stopped a little
    earlier: one activity, the FIT kept, the GPX a duplicate of it."""
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "watch.fit").write_bytes(_day(1, n=2400))
    phone_start = START.replace(day=1) + dt.timedelta(seconds=late_s)
    (anna / "phone.gpx").write_bytes(gpx_bytes(n=2400 - late_s - 60, start=phone_start))
    # an unrelated short run later that day overlaps nothing
    (anna / "later.gpx").write_bytes(gpx_bytes(n=600, start=START.replace(day=1, hour=18)))
    summary = _ingest(workspace)
    assert summary.files == {"ok": 2, "duplicate": 1}
    assert _files(workspace) == {"anna/watch.fit": "ok", "anna/phone.gpx": "duplicate", "anna/later.gpx": "ok"}
    assert _activities(workspace) == [("anna-20240501T061500Z-0", "fit", 2400),
                                      ("anna-20240501T181500Z-0", "gpx", 600)]


def test_recordings_overlapping_less_than_most_of_the_shorter_are_two(workspace):
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "warmup.fit").write_bytes(_day(1, n=900))
    # starts 10 min into the 15-min warm-up: overlaps a third of itself
    (anna / "race.gpx").write_bytes(gpx_bytes(n=1800, start=START.replace(day=1) + dt.timedelta(seconds=600)))
    assert _ingest(workspace).files == {"ok": 2}


def test_athlete_folder_names_are_mapped_to_ids(workspace):
    names = ["Zoë O'Brien", "山田 太郎", "ana"]
    for name in names:
        (workspace.raw_dir / name).mkdir()
        (workspace.raw_dir / name / "run.fit").write_bytes(_day(1))
    summary = _ingest(workspace)
    ids = {athlete_id_from_folder(n) for n in names}
    assert ids == {"Zoe-O-Brien-0f5d7ebe", athlete_id_from_folder("山田 太郎"), "ana"}
    assert set(summary.athletes) == ids and summary.files == {"ok": 3}
    assert dict(_rows(workspace, "SELECT athlete_id, display_name FROM athletes")) == {
        "Zoe-O-Brien-0f5d7ebe": "Zoë O'Brien", athlete_id_from_folder("山田 太郎"): "山田 太郎", "ana": None}
    assert _ingest(workspace).files == {"unchanged": 3}


def test_two_folders_mapping_to_one_id_are_refused_with_a_reason(workspace):
    """Only a folder literally named like another's mapped id collides: the valid name keeps the id."""
    for name, day in (("Zoë O'Brien", 1), ("Zoe-O-Brien-0f5d7ebe", 2)):
        (workspace.raw_dir / name).mkdir()
        (workspace.raw_dir / name / "run.fit").write_bytes(_day(day))
    summary = _ingest(workspace)
    assert summary.files == {"ok": 1}
    assert _activities(workspace) == [("Zoe-O-Brien-0f5d7ebe-20240502T061500Z-0", "fit", 120)]
    assert any("Zoë O'Brien: its athlete id 'Zoe-O-Brien-0f5d7ebe' is already the folder" in n
               for n in summary.notes)

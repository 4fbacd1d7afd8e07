"""insert_strength in a real DuckDB warehouse: idempotent re-ingest, one session per workout across sources."""

from __future__ import annotations

from pathlib import Path

import fitparse
import pytest

from pipeline.ingest.parsed import ParsedFile
from pipeline.ingest.fit_strength import strength_from_fit
from pipeline.ingest.load_strength import insert_strength
from pipeline.ingest.strength_csv import parse_strength_csv, sniff_strength_csv
from pipeline.status import strength_status
from pipeline.warehouse.db import connect
from pipeline.workspace import AthleteConfig

SAMPLES = Path(__file__).parent / "strength_samples"
STRONG_DIR = "DaKheera47__strong-statistics/data_sample"
FIT_14_SETS = "jarkko__fit-analyzer/tests/fixtures/20748058539_ACTIVITY.fit"   # 2025-10-20 17:44:06 UTC


@pytest.fixture
def con(workspace):
    con = connect(workspace)
    yield con
    con.close()


def _csv(data: bytes, file_id: str, **athlete) -> ParsedFile:
    fmt = sniff_strength_csv(data)
    return parse_strength_csv(data, path=f"{file_id}.csv", file_id=file_id, athlete_id="a",
                              athlete=AthleteConfig("a", **athlete), fmt=fmt)


def _fit(path: Path, file_id: str) -> ParsedFile:
    fit = fitparse.FitFile(str(path))
    sessions, sets = strength_from_fit([m.get_values() for m in fit.get_messages("session")],
                                       [m.get_values() for m in fit.get_messages("set")],
                                       athlete_id="a", file_id=file_id)
    return ParsedFile(path=path.name, file_id=file_id, athlete_id="a", format="fit",
                      size_bytes=path.stat().st_size, strength_sessions=sessions, strength_sets=sets)


def _load(con, parsed):
    """As the ingest loader does: inside a per-file transaction."""
    con.begin()
    note = insert_strength(con, parsed)
    con.commit()
    return note


def _tables(con):
    # TIMESTAMPTZ as text: fetching it as Python datetimes would need pytz.
    return (con.execute("SELECT * REPLACE (start_time::VARCHAR AS start_time) FROM strength_sessions "
                        "ORDER BY session_id").fetchall(),
            con.execute("SELECT * FROM strength_sets ORDER BY session_id, set_index").fetchall())


def test_reingest_changes_nothing(con, corpus_dir):
    parsed = _csv((corpus_dir / STRONG_DIR / "sample_strong.csv").read_bytes(), "strong")
    assert _load(con, parsed) is None
    before = _tables(con)
    assert (len(before[0]), len(before[1])) == (15, 250)
    assert _load(con, parsed) is None
    assert _tables(con) == before


def test_cumulative_export_keeps_one_session_and_the_richer_copy(con, corpus_dir):
    """The legacy sample holds 2 sets of the 2024-11-28 workout; the full export holds all 10."""
    legacy = _csv((corpus_dir / STRONG_DIR / "sample_strong_legacy.csv").read_bytes(), "legacy")
    full = _csv((corpus_dir / STRONG_DIR / "sample_strong.csv").read_bytes(), "full")
    assert _load(con, legacy) is None
    assert _load(con, full) == "1 poorer session from another source replaced"
    n_sessions, = con.execute("SELECT count(*) FROM strength_sessions").fetchone()
    assert n_sessions == 3 + 15 - 1
    row = con.execute("""SELECT file_id, n_sets, (SELECT count(*) FROM strength_sets x
                         WHERE x.session_id = s.session_id)
                         FROM strength_sessions s WHERE start_time = '2024-11-28 17:36:08+00'""").fetchall()
    assert row == [("full", 10, 10)]
    # Loading the poorer file again leaves the richer session in place.
    before = _tables(con)
    assert _load(con, legacy) == "1 session already present from another source"
    assert _tables(con) == before


STRONG_SAME_WORKOUT = (
    b"Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,Notes,Workout Notes,RPE\n"
    b"2025-10-20 19:50:00,Evening,30m,Pull Up,1,0,15,0,0,,,\n"
    b"2025-10-20 19:50:00,Evening,30m,Squat (Barbell),1,60,8,0,0,,,\n"
    b"2025-10-20 19:50:00,Evening,30m,Squat (Barbell),2,60,8,0,0,,,\n"
)


@pytest.mark.parametrize("fit_first", [True, False])
def test_same_workout_from_watch_and_app_is_one_session(con, corpus_dir, fit_first):
    """Strong logged 19:50 Helsinki (16:50 UTC), the watch started 17:44:06 UTC: more than 30 min apart,
    so first check they stay two; then the app logged at 20:40 local (17:40 UTC) is the same workout."""
    fit = _fit(corpus_dir / FIT_14_SETS, "watch")
    far = _csv(STRONG_SAME_WORKOUT, "app-early", time_zone="Europe/Helsinki")
    near = _csv(STRONG_SAME_WORKOUT.replace(b"19:50", b"20:40"), "app", time_zone="Europe/Helsinki")
    first, second = (fit, near) if fit_first else (near, fit)
    assert _load(con, first) is None
    note = _load(con, second)
    assert note == ("1 session already present from another source" if fit_first
                    else "1 poorer session from another source replaced")
    rows = con.execute("SELECT source_format, n_working_sets, start_time::VARCHAR FROM strength_sessions").fetchall()
    assert rows == [("fit", 14, "2025-10-20 17:44:06+00")]
    assert con.execute("SELECT count(*) FROM strength_sets").fetchone() == (14,)
    assert _load(con, far) is None
    assert con.execute("SELECT count(*) FROM strength_sessions").fetchone() == (2,)


def test_date_only_source_matches_same_day_workout(con):
    """FitNotes stores 12:00 local; the Strong copy of the 18:00 workout that day is the same session."""
    fitnotes = _csv((SAMPLES / "fitnotes-weight-kgs-no-times.csv").read_bytes(), "fitnotes")
    strong = _csv(b"Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,RPE\n"
                  b"2025-05-05 18:00:00,Push,40m,Bench,1,60,8,0,0,\n", "strong")
    assert _load(con, fitnotes) is None
    assert _load(con, strong) == "1 session already present from another source"
    assert con.execute("SELECT count(*), sum(n_sets) FROM strength_sessions").fetchone() == (2, 4)


def test_athletes_never_merge(con):
    a = _csv((SAMPLES / "generic-all-columns.csv").read_bytes(), "f1")
    b = _csv((SAMPLES / "generic-all-columns.csv").read_bytes(), "f2")
    b.athlete_id = "b"
    b.strength_sessions = b.strength_sessions.assign(athlete_id="b", session_id=lambda d: "b" + d["session_id"])
    b.strength_sets = b.strength_sets.assign(session_id=lambda d: "b" + d["session_id"])
    _load(con, a)
    assert _load(con, b) is None
    assert con.execute("SELECT athlete_id, count(*) FROM strength_sessions GROUP BY 1 ORDER BY 1").fetchall() == \
        [("a", 2), ("b", 2)]


def test_strength_status(con):
    assert strength_status(con) == "strength: none"
    _load(con, _csv((SAMPLES / "strong-classic-lbs-wdf.csv").read_bytes(), "s"))
    con.execute("INSERT INTO declared_blocks VALUES ('a', 'Winter', '2025-01-01', '2025-02-28')")
    assert strength_status(con) == (
        "strength:\n  a: 2 strength sessions, 5 working sets, 2025-01-06..2025-01-08 (strong_csv); "
        "blocks: 1 declared")
    con.execute("INSERT INTO strength_blocks (athlete_id, block_id, start_date, end_date, sessions, "
                "sessions_per_week, volume_kg, source, label) VALUES ('a', 'B2025-01-01', '2025-01-01', '2025-02-28', 2, 0.2, "
                "0, 'declared', 'Winter')")
    assert strength_status(con).endswith("blocks: 1 declared, 0 detected")

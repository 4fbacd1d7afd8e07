"""Readers, archives and the loader on small generated files (FIT via fit_tool, GPX/TCX as text)."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from fit_tool.profile.profile_type import Sport, SubSport

from ingest_builders import START, Segment, fit_bytes, gpx_bytes, tcx_bytes
from pipeline.ingest.archives import ArchiveLimits
from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_bytes
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect


def _read(data: bytes, name: str, **ctx):
    return read_bytes(data, name, ReadContext(path=name, file_id="f", athlete_id="anna", **ctx))


def test_fit_multisport_sessions_units_and_cadence():
    data = fit_bytes([Segment(n=60, cadence=85),
                      Segment(sport=Sport.CYCLING, sub_sport=SubSport.ROAD, n=90, cadence=90, offset_s=100)])
    p = _read(data, "multi.fit")
    assert p.status == "ok"
    acts = p.activities
    assert list(acts["sport"]) == ["running", "cycling"] and list(acts["sub_sport"]) == ["generic", "road"]
    assert list(acts["n_samples"]) == [60, 90]
    assert acts["activity_id"].iloc[0] == "anna-20240501T061500Z-0"
    run = p.samples[p.samples["activity_id"] == acts["activity_id"].iloc[0]]
    ride = p.samples[p.samples["activity_id"] == acts["activity_id"].iloc[1]]
    assert (run["cadence_spm"] == 170).all() and (ride["cadence_spm"] == 90).all()  # strides x2 for running only
    assert run["lat_deg"].iloc[0] == pytest.approx(46.05, abs=1e-6) and run["lon_deg"].iloc[0] == pytest.approx(14.5)
    assert run["speed_m_s"].iloc[5] == pytest.approx(3.0) and run["altitude_m"].iloc[10] == pytest.approx(301.0, abs=0.2)
    assert run["elapsed_s"].iloc[-1] == 59 and ride["elapsed_s"].iloc[0] == 0
    assert str(run["ts"].dt.tz) == "UTC" and run["ts"].iloc[0] == START
    assert len(p.laps) == 2 and p.laps["distance_m"].iloc[0] == pytest.approx(177.0)


@pytest.mark.parametrize("style", ["gpxtpx", "ns3", "plain"])
def test_gpx_heart_rate_extension_styles(style):
    p = _read(gpx_bytes(hr_style=style), "run.gpx")
    assert p.status == "ok" and len(p.samples) == 120
    assert (p.samples["heart_rate_bpm"] == 150).all() and (p.samples["cadence_spm"] == 170).all()
    assert p.activities["sport"].iloc[0] == "running" and p.activities["name"].iloc[0] == "Morning Run"
    assert p.samples["speed_m_s"].isna().all()  # never derived at ingest


@pytest.mark.parametrize("word,sport", [("9", "running"), ("Run", "running"), ("1", "cycling"),
                                        ("Ride", "cycling"), ("kiteboarding", "unknown"), (None, "unknown")])
def test_gpx_sport_mapping(word, sport):
    assert _read(gpx_bytes(sport=word), "x.gpx").activities["sport"].iloc[0] == sport


def test_gpx_bom_empty_segment_and_no_times():
    assert _read(gpx_bytes(bom=True, empty_segment=True), "bom.gpx").status == "ok"
    untimed = _read(gpx_bytes(times=False), "route.gpx")
    assert untimed.status == "skipped" and "timestamps" in untimed.message


def test_xml_entity_expansion_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(f'<!ENTITY lol{i} "{"&lol" + str(i - 1) + ";" if i else "&lol;"}' .encode() * 1 for i in range(0))
            + b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
            + b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>'
            + b'<gpx version="1.1"><trk><name>&lol2;</name></trk></gpx>')
    p = _read(bomb, "bomb.gpx")
    assert p.status == "error" and "unsafe XML" in p.message


def test_tcx_leading_whitespace_laps_and_sport():
    p = _read(tcx_bytes(), "run.tcx")
    assert p.status == "ok" and len(p.samples) == 120
    assert p.activities["sport"].iloc[0] == "running" and p.activities["device"].iloc[0] == "Forerunner 935"
    assert p.samples["distance_m"].iloc[-1] == pytest.approx(357.0) and len(p.laps) == 1
    assert _read(tcx_bytes(sport="Biking"), "ride.tcx").activities["sport"].iloc[0] == "cycling"


def test_gz_is_read_like_the_plain_file():
    plain, packed = _read(fit_bytes(), "a.fit"), _read(gzip.compress(fit_bytes()), "a.fit.gz")
    assert packed.format == "fit.gz" and packed.samples.equals(plain.samples)


@pytest.mark.parametrize("data,needle", [(b"", "empty"), (b"hello world", "unknown format"),
                                         (b"\x1f\x8b\x08\x00garbage", "gzip")])
def test_empty_unknown_and_corrupt_files_are_errors(data, needle):
    p = _read(data, "x.fit")
    assert p.status == "error" and needle in p.message


def test_truncated_fit_is_an_error_with_the_offset():
    data = fit_bytes()
    p = _read(data[: len(data) // 2], "cut.fit")
    assert p.status == "error" and "truncated" in p.message and "at byte" in p.message


# ---------------------------------------------------------------- through the warehouse


def _tables(ws) -> dict[str, list]:
    con = connect(ws, read_only=True)
    try:
        return {
            "source_files": con.execute("SELECT path, file_id, status, message, n_activities, n_samples, duplicate_of "
                                        "FROM source_files ORDER BY path").fetchall(),
            # Arrow keeps TIMESTAMPTZ as UTC without needing pytz
            "activities": con.execute("SELECT * FROM activities ORDER BY activity_id").df().astype(str).values.tolist(),
            "samples": con.execute("SELECT * FROM samples ORDER BY activity_id, ts").df().astype(str).values.tolist(),
            "laps": con.execute("SELECT * FROM laps ORDER BY activity_id, lap_index").df().astype(str).values.tolist(),
        }
    finally:
        con.close()


def _write_mixed(raw):
    anna = raw / "anna"
    anna.mkdir(exist_ok=True)
    (anna / "run.fit").write_bytes(fit_bytes())
    (anna / "ride.tcx").write_bytes(tcx_bytes(sport="Biking", start=START.replace(day=3)))
    (anna / "walk.gpx.gz").write_bytes(gzip.compress(gpx_bytes(sport="walk", start=START.replace(day=5)), mtime=0))
    (anna / "broken.fit").write_bytes(fit_bytes()[:300])
    (anna / "notes.txt").write_text("not data")
    (anna / ".hidden.fit").write_bytes(b"ignored")


def test_ingest_twice_changes_nothing_and_skips_unchanged(workspace):
    _write_mixed(workspace.raw_dir)
    first = ingest_paths(workspace, None, jobs=1, progress=False)
    assert first.files == {"ok": 3, "error": 2}
    assert first.sports == {"running": 1, "cycling": 1, "walking": 1}
    before = _tables(workspace)
    second = ingest_paths(workspace, None, jobs=1, progress=False)
    assert second.files == {"unchanged": 5}
    assert _tables(workspace) == before
    assert "ok 3" in first.render() and "broken.fit" in first.render()


def test_parallel_equals_serial(workspace, tmp_path_factory):
    from pipeline.workspace import Workspace

    _write_mixed(workspace.raw_dir)
    other = Workspace(tmp_path_factory.mktemp("serial"))
    _write_mixed(other.raw_dir.mkdir(parents=True) or other.raw_dir)
    ingest_paths(workspace, None, jobs=2, progress=False)
    ingest_paths(other, None, jobs=1, progress=False)
    a, b = _tables(workspace), _tables(other)
    assert a == b and len(a["samples"]) == 360


@pytest.mark.parametrize("order", [("run.gpx", "run.fit"), ("run.fit", "run.gpx")])
def test_fit_and_gpx_of_one_run_are_one_activity(workspace, order):
    folder = workspace.raw_dir / "anna"
    folder.mkdir()
    files = {"run.fit": fit_bytes(), "run.gpx": gpx_bytes(start=START.replace(second=1))}
    for name in order:  # ingest in the given order, one file at a time
        (folder / name).write_bytes(files[name])
        ingest_paths(workspace, [folder / name], athlete_id="anna", jobs=1, progress=False)
    con = connect(workspace, read_only=True)
    acts = con.execute("SELECT activity_id, source_format FROM activities").fetchall()
    rows = dict(con.execute("SELECT regexp_replace(path, '.*/', ''), status || ':' || coalesce(duplicate_of, '') "
                            "FROM source_files").fetchall())
    con.close()
    assert acts == [("anna-20240501T061500Z-0", "fit")]
    assert rows == {"run.fit": "ok:", "run.gpx": "duplicate:anna-20240501T061500Z-0"}


def test_identical_copy_is_a_duplicate(workspace):
    for name in ("a", "b"):
        (workspace.raw_dir / "anna" / name).mkdir(parents=True)
        (workspace.raw_dir / "anna" / name / "run.fit").write_bytes(fit_bytes())
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    assert summary.files == {"ok": 1, "duplicate": 1}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_strava_bulk_export_zip(workspace):
    csv = ("Activity ID,Activity Date,Activity Name,Activity Type,Elapsed Time,Filename\n"
           "11,\"May 1, 2024, 6:15:00 AM\",Tempo Tuesday,Run,119,activities/11.fit.gz\n"
           "12,\"May 3, 2024, 6:15:00 AM\",Commute,Ride,119,activities/12.gpx\n").encode()
    export = _zip({"activities.csv": csv, "activities/11.fit.gz": gzip.compress(fit_bytes()),
                   "activities/12.gpx": gpx_bytes(sport=None, start=START.replace(day=3)),
                   "profile.csv": b"Athlete ID,Email\n1,a@b.c\n"})
    (workspace.raw_dir / "anna").mkdir()
    (workspace.raw_dir / "anna" / "export_1.zip").write_bytes(export)
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    con = connect(workspace, read_only=True)
    acts = con.execute("SELECT sport, name, source_format FROM activities ORDER BY start_time").fetchall()
    paths = dict(con.execute("SELECT path, status FROM source_files").fetchall())
    con.close()
    assert acts == [("running", "Tempo Tuesday", "fit"), ("cycling", "Commute", "gpx")]
    assert paths["data/raw/anna/export_1.zip!activities/11.fit.gz"] == "ok"
    assert paths["data/raw/anna/export_1.zip"] == "ok"
    assert paths["data/raw/anna/export_1.zip!activities.csv"] == "skipped"
    assert summary.files["ok"] == 3
    # the same run also dropped in as a plain file: a duplicate of the export's activity
    (workspace.raw_dir / "anna" / "11.fit").write_bytes(fit_bytes())
    again = ingest_paths(workspace, None, jobs=1, progress=False)
    assert again.files == {"unchanged": 1, "duplicate": 1}


def test_garmin_export_nested_zips(workspace):
    inner = _zip({"123_ACTIVITY.fit": fit_bytes(), "124_ACTIVITY.fit": fit_bytes(start=START.replace(day=2))})
    outer = _zip({"DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1.zip": inner,
                  "DI_CONNECT/DI-Connect-User/user_profile.json": b"{}"})
    (workspace.raw_dir / "anna").mkdir()
    (workspace.raw_dir / "anna" / "garmin.zip").write_bytes(outer)
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    assert summary.sports == {"running": 2}
    # the account JSON is export clutter: skipped, saying what it is, never an error
    assert summary.files["error"] == 0 and summary.files["skipped"] == 1
    assert summary.skipped[0][1].startswith("JSON data: not activity data")


def test_hostile_archives(workspace):
    (workspace.raw_dir / "anna").mkdir()
    (workspace.raw_dir / "anna" / "evil.zip").write_bytes(_zip({"../../escape.fit": fit_bytes(), "ok.fit": fit_bytes()}))
    (workspace.raw_dir / "anna" / "bomb.zip").write_bytes(_zip({"big.gpx": b"\0" * (40 << 20)}))
    (workspace.raw_dir / "anna" / "bomb.gpx.gz").write_bytes(gzip.compress(b" " * (40 << 20)))
    ingest_paths(workspace, None, jobs=1, progress=False, limits=ArchiveLimits(ratio_floor_bytes=8 << 20))
    con = connect(workspace, read_only=True)
    rows = dict(con.execute("SELECT regexp_replace(path, '.*/anna/', ''), status || ': ' || message "
                            "FROM source_files").fetchall())
    con.close()
    assert rows["evil.zip!../../escape.fit"].startswith("error: unsafe member path")
    assert rows["evil.zip!ok.fit"].startswith("ok")
    assert rows["bomb.zip!big.gpx"].startswith("error") and "decompression bomb" in rows["bomb.zip!big.gpx"]
    assert rows["bomb.gpx.gz"].startswith("error") and "decompression bomb" in rows["bomb.gpx.gz"]
    assert not (workspace.root / "escape.fit").exists()


# ---------------------------------------------------------------- GPX via gpxpy, behind a defusedxml pass

_GPX_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">')


@pytest.mark.parametrize("doc,reason", [
    ('<!DOCTYPE gpx SYSTEM "http://example.invalid/gpx.dtd">' + _GPX_HEAD[39:] + "</gpx>", "DTD"),
    ('<!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]><gpx version="1.1"><trk><name>&x;</name></trk></gpx>',
     "entity declarations"),
])
def test_gpx_with_dtd_or_external_entity_is_refused_with_the_reason(doc, reason):
    p = _read(('<?xml version="1.0"?>' + doc).encode(), "x.gpx")
    assert p.status == "error" and p.message.startswith("GPX: refused unsafe XML") and reason in p.message


def test_gpx_extensions_time_offsets_segments_and_strava_type():
    def pt(i, t, ext):
        return (f'<trkpt lat="46.{i}" lon="14.5"><ele>{300 + i}</ele><time>{t}</time>'
                f"<extensions>{ext}</extensions></trkpt>")
    garmin = ('<gpxtpx:TrackPointExtension><gpxtpx:atemp>21.5</gpxtpx:atemp><gpxtpx:hr>140</gpxtpx:hr>'
              "<gpxtpx:cad>88</gpxtpx:cad></gpxtpx:TrackPointExtension>")
    doc = (_GPX_HEAD.replace('creator="t"', 'creator="t" xmlns:gpxtpx="http://www.garmin.com/xmlschemas/'
                             'TrackPointExtension/v1"')
           + "<trk><name> Lunch Run </name><type>9</type>"
           + "<trkseg>" + pt(1, "2024-05-01T08:15:00+02:00", garmin) + pt(2, "2024-05-01T06:15:01Z", garmin)
           + "</trkseg><trkseg></trkseg><trkseg>"
           + pt(3, "2024-05-01T06:15:02.500Z", "<power>250</power><heart_rate>141</heart_rate><temp>22</temp>")
           + pt(4, "2024-05-01T06:15:03", "<heartrate>142</heartrate><cadence>89</cadence>")
           + "</trkseg></trk></gpx>")
    p = _read(doc.encode(), "lunch.gpx")
    assert p.status == "ok" and len(p.samples) == 4, p.message
    act, s = p.activities.iloc[0], p.samples
    assert (act["sport"], act["name"], act["device"]) == ("running", "Lunch Run", "t")
    assert act["start_time"] == START  # +02:00 converted to UTC; a time without offset is UTC
    assert list(s["elapsed_s"]) == [0.0, 1.0, 2.5, 3.0]
    assert list(s["heart_rate_bpm"]) == [140, 140, 141, 142]
    assert s["cadence_spm"].tolist()[:2] == [176, 176] and s["cadence_spm"].iloc[3] == 178
    assert s["power_w"].iloc[2] == 250 and s["temperature_c"].tolist()[:3] == [21.5, 21.5, 22]
    assert s["altitude_m"].tolist() == [301, 302, 303, 304]


def test_gpx_declared_encoding_is_honoured():
    doc = (_GPX_HEAD.replace("UTF-8", "ISO-8859-1") + "<trk><name>Téléphérique</name><trkseg>"
           + "".join(f'<trkpt lat="46" lon="14"><time>2024-05-01T06:15:0{i}Z</time></trkpt>' for i in range(3))
           + "</trkseg></trk></gpx>")
    p = _read(doc.encode("latin-1"), "x.gpx")
    assert p.status == "ok" and p.activities["name"].iloc[0] == "Téléphérique"


def test_gpx_untimed_track_beside_a_timed_one_is_left_out_with_the_reason():
    timed = gpx_bytes(n=10).decode()
    untimed_trk = gpx_bytes(n=5, times=False).decode().split("<trk>")[1].split("</trk>")[0]
    doc = timed.replace("</gpx>", f"<trk>{untimed_trk}</trk></gpx>")
    p = _read(doc.encode(), "two.gpx")
    assert p.status == "ok" and len(p.samples) == 10
    assert any("track 1 (5 points, 0 with a time) has no usable timestamps" in w for w in p.warnings)


def _day(n: int) -> bytes:
    return fit_bytes(start=START.replace(day=n))


def test_zip_with_too_many_members_is_refused_and_the_rest_loads(workspace):
    limits = ArchiveLimits(max_members=5)
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "many.zip").write_bytes(_zip({f"run{i}.fit": _day(1 + i) for i in range(6)}))
    # the same limit inside an archive: the inner zip is refused, its siblings are read
    (anna / "outer.zip").write_bytes(_zip({"ok.fit": _day(10),
                                           "inner.zip": _zip({f"r{i}.fit": _day(11 + i) for i in range(6)})}))
    (anna / "plain.fit").write_bytes(_day(20))
    summary = ingest_paths(workspace, None, jobs=1, progress=False, limits=limits)
    con = connect(workspace, read_only=True)
    rows = dict(con.execute("SELECT regexp_replace(path, '.*/anna/', ''), status || ': ' || message "
                            "FROM source_files").fetchall())
    n_acts = con.execute("SELECT count(*) FROM activities").fetchone()[0]
    con.close()
    assert rows["many.zip"] == "error: many.zip: 6 members, more than the limit of 5"
    assert not any(p.startswith("many.zip!") for p in rows)  # nothing read from the refused archive
    assert rows["outer.zip!inner.zip"] == "error: inner.zip: 6 members, more than the limit of 5"
    assert rows["outer.zip!ok.fit"].startswith("ok") and rows["outer.zip"].startswith("ok")
    assert rows["plain.fit"].startswith("ok")
    assert n_acts == 2 and summary.files["ok"] == 3 and summary.files["error"] == 2


def test_zip_nested_deeper_than_the_limit_is_refused_and_the_rest_loads(workspace):
    assert ArchiveLimits().max_nesting == 3
    level4 = _zip({"deep.fit": _day(4)})
    level3 = _zip({"l3.fit": _day(3), "level4.zip": level4})
    level2 = _zip({"l2.fit": _day(2), "level3.zip": level3})
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "level1.zip").write_bytes(_zip({"l1.fit": _day(1), "level2.zip": level2,
                                            "disguised.dat": _zip({"x.fit": _day(5)})}))
    (anna / "plain.fit").write_bytes(_day(20))
    ingest_paths(workspace, None, jobs=1, progress=False)
    con = connect(workspace, read_only=True)
    rows = dict(con.execute("SELECT regexp_replace(path, '.*/anna/', ''), status || ': ' || message "
                            "FROM source_files").fetchall())
    con.close()
    assert rows["level1.zip!level2.zip!level3.zip!level4.zip"] == "error: zip nested deeper than 3 levels"
    assert not any("deep.fit" in p for p in rows)
    assert rows["level1.zip!disguised.dat"].startswith("error: a zip archive inside a .gz file or under a member")
    for ok in ("level1.zip", "level1.zip!l1.fit", "level1.zip!level2.zip!l2.fit",
               "level1.zip!level2.zip!level3.zip!l3.fit", "plain.fit"):
        assert rows[ok].startswith("ok"), (ok, rows[ok])

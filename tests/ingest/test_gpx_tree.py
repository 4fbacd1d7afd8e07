"""GPX 1.1 in its common shape is read from the safety parse's tree (pipeline.ingest.gpx_tree) and gives
exactly what gpxpy gives; every file outside the shape still goes to gpxpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fuzz_mutants import mutants
from ingest_builders import gpx_bytes
from pipeline.demo.simulate import PROFILES, simulate_athlete
from pipeline.demo.write import encode_gpx_activity
from pipeline.ingest import xml_readers
from pipeline.ingest.common import ReadContext, ReadError
from pipeline.ingest.dispatch import read_bytes, utf8_xml
from pipeline.ingest.gpx_tree import common_gpx_tracks
from pipeline.ingest.sanity import apply_sanity

CTX = ReadContext(path="t.gpx", file_id="f", athlete_id="anna")


def _tree(data: bytes):
    data = utf8_xml(data)
    return common_gpx_tracks(xml_readers._parse_xml(data, "gpx", forbid_dtd=True), data)


def _with_gpxpy(data: bytes):
    """The reader's result as the gpxpy path makes it: what read_gpx did for every small file before the
    tree path (gpxpy, or the streaming parser when gpxpy refuses a value), then the sanity gate."""
    data = utf8_xml(data)
    gpx, refused = xml_readers._parse_gpx(xml_readers._xml_text(data))
    try:
        if gpx is None:
            parsed = xml_readers._read_gpx_streamed(data, CTX, [f"read with the streaming GPX parser: gpxpy "
                                                                f"refused a value ({refused})"])
        else:
            tracks = [(t.name, t.type, xml_readers._gpx_track_points(t)) for t in gpx.tracks]
            parsed = xml_readers._gpx_result(CTX, len(data), tracks, gpx.creator, bool(gpx.routes), [])
    except ReadError as e:
        return f"{type(e).__name__}: {e}"
    return apply_sanity(parsed)


def _read(data: bytes):
    parsed = read_bytes(data, "t.gpx", CTX)
    return parsed if parsed.status != "skipped" else f"NothingToIngest: {parsed.message}"


def _assert_same(ours, gpxpy, what: str) -> None:
    if isinstance(ours, str) or isinstance(gpxpy, str):
        assert ours == gpxpy, what
        return
    for table in ("activities", "samples", "laps"):
        pd.testing.assert_frame_equal(getattr(ours, table), getattr(gpxpy, table), check_exact=True,
                                      obj=f"{what} {table}")
    assert (ours.status, ours.message, ours.warnings) == (gpxpy.status, gpxpy.message, gpxpy.warnings), what


def _simulated_gpx(n_runs: int = 6) -> list[bytes]:
    athlete = simulate_athlete(PROFILES["gain"], 7, sample_interval_s=30.0, athlete_id="anna")
    runs = athlete.activities.head(n_runs)
    return [encode_gpx_activity(row, athlete.samples[athlete.samples["activity_id"] == row["activity_id"]])
            for _, row in runs.iterrows()]


def test_simulated_and_generated_gpx_take_the_tree_path_and_equal_gpxpy():
    files = _simulated_gpx() + [gpx_bytes(n=80, **kw) for kw in
                                ({}, {"hr_style": "ns3"}, {"hr_style": "plain"}, {"bom": True})]
    for k, data in enumerate(files):
        assert _tree(data) is not None, k
        _assert_same(_read(data), _with_gpxpy(data), f"file {k}")


def test_corpus_gpx_files_equal_gpxpy_on_either_path(corpus_dir):
    taken = 0
    for path in sorted(corpus_dir.rglob("*.gpx")):
        data = path.read_bytes()
        if _tree(data) is None:
            continue
        taken += 1
        _assert_same(_read(data), _with_gpxpy(data), path.name)
    assert taken >= 5      # Garmin/Strava-style GPX 1.1 files of the corpus are in the common shape


@pytest.mark.slow
def test_seeded_mutants_in_the_shape_equal_gpxpy():
    """Token mutations (extreme numbers, impossible or shuffled times) that stay in the shape must give
    gpxpy's values; those that leave it are gpxpy's to read."""
    taken = 0
    for m in mutants(300, seed=20240917):
        if not m.name.endswith(".gpx"):
            continue
        try:
            in_shape = _tree(m.data) is not None
        except ReadError:
            continue        # not well-formed: the safety parse refuses it on both paths
        if in_shape:
            taken += 1
            _assert_same(_read(m.data), _with_gpxpy(m.data), m.name)
    assert taken >= 40


_BASE = gpx_bytes(n=20).decode()


@pytest.mark.parametrize("change", [
    ('version="1.1"', 'version="1.0"'),                                   # GPX 1.0: gpxpy reads <speed> there
    ("<trkseg>", "<trkseg><trkpt lat=\"1\" lon=\"2\"><sat>7</sat></trkpt>"),   # a point field gpxpy reads
    ("<trk>", "<trk><number>x</number>"),                                 # a number gpxpy refuses
    ("<trk>", "<wpt lat=\"1\" lon=\"2\"/><trk>"),                         # waypoints
    ("<trk>", "<metadata><bounds minlat=\"a\"/></metadata><trk>"),        # bounds
    ("Z</time>", "+02:00</time>"),                                        # a time with an offset
    ("<trkseg>", "<trkseg xmlns=\"http://www.topografix.com/GPX/1/1\">"),  # a second default namespace
], ids=["gpx10", "sat", "number", "wpt", "bounds", "offset", "second-xmlns"])
def test_files_outside_the_shape_go_to_gpxpy(change):
    data = _BASE.replace(*change, 1).encode()
    assert data.decode() != _BASE
    assert _tree(data) is None
    _assert_same(_read(data), _with_gpxpy(data), change[1])


def test_first_child_wins_and_empty_elements_are_no_value_as_in_gpxpy():
    data = _BASE.replace("<ele>", "<ele/><ele>", 1).replace("</time>", "</time><time>2030-01-01T00:00:00Z</time>", 1)
    tree = _tree(data.encode())
    assert tree is not None
    points = tree.tracks[0][2]
    assert np.isnan(points["ele"][0]) and points["time"][0] < pd.Timestamp("2025-01-01", tz="UTC")
    _assert_same(_read(data.encode()), _with_gpxpy(data.encode()), "first child")

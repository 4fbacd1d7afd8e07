"""ParsedFile carries a reader's tables as rows and NumPy columns (no per-file DataFrames on the hot path);
read as attributes they are the frames the readers always gave, and they survive the trip from a parser
process (pickle) unchanged."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from ingest_builders import Segment, fit_bytes, gpx_bytes
from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_bytes
from pipeline.ingest.parsed import SAMPLE_COLUMNS, Columns, ParsedFile, Rows

CTX = ReadContext(path="f", file_id="f", athlete_id="anna")
TABLES = ("activities", "samples", "laps", "strength_sessions", "strength_sets")


def test_reader_results_keep_rows_and_columns_until_a_frame_is_read():
    p = read_bytes(fit_bytes([Segment(n=60), Segment(n=40, offset_s=3600)]), "two.fit", CTX)
    assert isinstance(p._tables["samples"], Columns) and isinstance(p._tables["activities"], Rows)
    assert p.n_rows("samples") == 100 and p.n_rows("activities") == 2 and p.n_rows("strength_sets") == 0
    samples = p.samples                                  # built once, then kept
    assert samples is p.samples and list(samples.columns) == SAMPLE_COLUMNS
    assert str(samples["ts"].dtype) == "datetime64[us, UTC]" and samples["ts"].is_monotonic_increasing
    assert samples["activity_id"].nunique() == 2 and (samples["athlete_id"] == "anna").all()
    assert list(p.activities["n_samples"]) == [60, 40]


def test_results_survive_pickling_unchanged():
    files = [read_bytes(fit_bytes([Segment(n=60), Segment(n=40, offset_s=3600)]), "two.fit", CTX),
             read_bytes(gpx_bytes(n=50), "g.gpx", CTX), ParsedFile.failed("x", "anna", "empty file (0 bytes)")]
    back = pickle.loads(pickle.dumps(files))
    for a, b in zip(files, back):
        assert (a.status, a.message, a.warnings, a.path) == (b.status, b.message, b.warnings, b.path)
        for table in TABLES:
            pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True, obj=table)


def test_text_columns_travel_as_runs_and_come_back_object_for_object():
    ids = np.array(["a", "a", None, None, np.nan, "b", "a"], dtype=object)
    cols = Columns.build(len(ids), activity_id=ids, athlete_id=np.full(len(ids), "x", dtype=object),
                         ts=np.arange(len(ids)).astype("datetime64[s]").astype("datetime64[us]"))
    back = pickle.loads(pickle.dumps(cols))
    assert back.n == 7 and back["activity_id"].dtype == object
    assert [x if x == x else "nan" for x in back["activity_id"]] == ["a", "a", None, None, "nan", "b", "a"]
    assert back["ts"].dtype == np.dtype("datetime64[us]") and np.array_equal(back["ts"], cols["ts"])


def test_a_frame_assigned_by_a_caller_is_read_back_as_columns():
    p = read_bytes(fit_bytes([Segment(n=30)]), "one.fit", CTX)
    frame = p.samples.copy()
    frame.loc[frame.index[3], "heart_rate_bpm"] = np.nan
    p.samples = frame
    cols = p.columns()
    assert cols.n == 30 and np.isnan(cols["heart_rate_bpm"][3]) and cols["ts"].dtype.kind == "M"
    pd.testing.assert_frame_equal(cols.frame(), frame.reset_index(drop=True), check_exact=True)

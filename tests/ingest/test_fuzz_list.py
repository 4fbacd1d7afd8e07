"""The issue's fuzz list, one named input each: a clear status and message, never an internal error."""

from __future__ import annotations

import re

import pytest

from fuzz_mutants import fix_fit_crcs
from ingest_builders import gpx_bytes, tcx_bytes, fit_bytes
from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_bytes, read_work_item
from pipeline.ingest.dispatch import WorkItem

INTERNAL = re.compile(r"internal|please report|Traceback|Fit\w*Error|struct\.error", re.IGNORECASE)


def _read(data: bytes, name: str):
    p = read_bytes(data, name, ReadContext(path=name, file_id="f", athlete_id="a"))
    assert not INTERNAL.search(p.message), p.message
    return p


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_gpx_and_tcx_are_read(codec):
    gpx = gpx_bytes(n=30).decode().replace('encoding="UTF-8"', f'encoding="{codec.upper()}"')
    tcx = tcx_bytes(n=30, leading_ws=False).decode().replace('encoding="UTF-8"', f'encoding="{codec.upper()}"')
    for text, name in ((gpx, "u.gpx"), (tcx, "u.tcx")):
        p = _read(text.encode(codec), name)
        assert p.status == "ok" and len(p.samples) == 30, (codec, name, p.message)


@pytest.mark.parametrize("fmt", ["gpx", "tcx"])
def test_unknown_xml_encoding_is_a_clear_error(fmt):
    data = (gpx_bytes(n=5) if fmt == "gpx" else tcx_bytes(n=5, leading_ws=False)).replace(b"UTF-8", b"x-klingon")
    p = _read(data, f"x.{fmt}")
    assert p.status == "error"
    assert p.message == ("XML declares the encoding 'x-klingon', which is not a known text encoding; save the "
                         "file as UTF-8")


@pytest.mark.parametrize("bad_time", ["May 1 2024 6:15am", "2024-13-45T99:99:99Z", "yesterday", "",
                                      "99999-05-01T06:15:05Z", "2024-05-01T06:15:05+25:00"])
def test_tcx_and_gpx_with_a_non_iso_time_read_the_rest(bad_time):
    for data, name in ((tcx_bytes(n=30), "t.tcx"), (gpx_bytes(n=30), "t.gpx")):
        data = data.replace(b"2024-05-01T06:15:05Z", bad_time.encode())
        p = _read(data, name)
        assert p.status in ("ok", "error"), p.message
        if p.status == "ok":
            assert len(p.samples) == 29, (name, bad_time, p.message)


def test_csv_with_a_1_mb_field_is_a_clear_error():
    csv = ("Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,RPE\n"
           '2024-03-01 18:00:00,"' + "x" * (1 << 20) + '",45m,Squat,1,100,5,0,0,\n').encode()
    p = _read(csv, "big.csv")
    assert p.status == "error" and p.message.startswith("CSV: cannot read past line 2 (field larger than field limit")


def test_fit_that_neither_decoder_reads_says_why_in_plain_words():
    data = bytearray(fit_bytes())
    data[data[0]] = 0x0F       # the first record: a data message of local type 15, never defined
    p = _read(fix_fit_crcs(data), "x.fit")
    assert p.status == "error"
    assert p.message == ("FIT: data message for undefined local message type 15 (at byte 12); fitparse cannot "
                         "read it either (the file is structurally damaged)")


def test_a_reader_bug_is_reported_as_such_but_never_stops_the_batch(tmp_path):
    """The batch boundary still catches what no rule foresaw (here: a file that vanishes is not a bug)."""
    missing = WorkItem(tmp_path / "gone.fit", (), "gone.fit", "a")
    p = read_work_item(missing, None)
    assert p.status == "error" and p.message.startswith("cannot read file: No such file")

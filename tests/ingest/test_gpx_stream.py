"""The streaming GPX reader (large files, and files gpxpy refuses a value in) gives what gpxpy gives:
same activities and samples on every corpus GPX file and on generated ones."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from ingest_builders import START, gpx_bytes
from pipeline.ingest import xml_readers
from pipeline.ingest.common import ReadContext, ReadError
from pipeline.ingest.dispatch import read_unchecked

CORPUS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus").resolve()


def _corpus_gpx() -> list[str]:
    if not (CORPUS / "CORPUS.tsv").exists():
        return []
    with open(CORPUS / "CORPUS.tsv", newline="") as fh:
        return [r["path"] for r in csv.DictReader(fh, delimiter="\t") if r["format"] == "gpx"]


def _both(data: bytes, name: str):
    ctx = ReadContext(path=name, file_id="f", athlete_id="a")
    outcomes = []
    for reader in (lambda: xml_readers.read_gpx(data, ctx), lambda: xml_readers._read_gpx_streamed(data, ctx, [])):
        try:
            outcomes.append(reader())
        except ReadError as e:
            outcomes.append(f"{type(e).__name__}: {e}")
    return outcomes


def _assert_same(tree, streamed, what: str) -> None:
    if isinstance(tree, str) or isinstance(streamed, str):
        assert tree == streamed, what
        return
    pd.testing.assert_frame_equal(tree.activities, streamed.activities, obj=f"{what} activities")
    pd.testing.assert_frame_equal(tree.samples, streamed.samples, check_exact=False, rtol=0, atol=1e-9,
                                  obj=f"{what} samples")
    assert tree.warnings == streamed.warnings and tree.message == streamed.message, what


@pytest.mark.parametrize("path", _corpus_gpx(), ids=lambda p: p.rsplit("/", 1)[-1])
def test_streamed_equals_gpxpy_on_every_corpus_gpx(corpus_dir, path):
    tree, streamed = _both((corpus_dir / path).read_bytes(), path)
    _assert_same(tree, streamed, path)


@pytest.mark.parametrize("kwargs", [{}, {"hr_style": "ns3"}, {"hr_style": "plain", "sport": None},
                                    {"bom": True, "empty_segment": True}, {"times": False}])
def test_streamed_equals_gpxpy_on_generated_gpx(kwargs):
    tree, streamed = _both(gpx_bytes(n=50, **kwargs), "g.gpx")
    _assert_same(tree, streamed, str(kwargs))


def test_large_gpx_is_streamed(monkeypatch):
    data = gpx_bytes(n=400)
    monkeypatch.setattr(xml_readers, "STREAM_ABOVE_BYTES", len(data) - 1)
    p = read_unchecked(data, "big.gpx", ReadContext(path="big.gpx", file_id="f", athlete_id="a"))
    assert p.status == "ok" and len(p.samples) == 400 and p.samples["ts"].iloc[0] == START
    assert not p.warnings


def test_streamed_reader_refuses_what_the_safety_pass_refuses(monkeypatch):
    monkeypatch.setattr(xml_readers, "STREAM_ABOVE_BYTES", 10)
    bomb = (b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaa">]><gpx version="1.1"><trk><name>&a;</name>'
            b"</trk></gpx>")
    p = read_unchecked(bomb, "bomb.gpx", ReadContext(path="bomb.gpx", file_id="f", athlete_id="a"))
    assert p.status == "error" and p.message.startswith("GPX: refused unsafe XML: entity declarations")
    kml = b'<?xml version="1.0"?><kml><Document/></kml>' + b" " * 20
    assert "not well-formed" in read_unchecked(b"<gpx><trk>", "x.gpx",
                                               ReadContext(path="x.gpx", file_id="f", athlete_id="a")).message
    assert read_unchecked(kml, "k.gpx", ReadContext(path="k.gpx", file_id="f", athlete_id="a")).status == "error"

"""Streaming GPX: the points of a large GPX file without building its document tree.

gpxpy (the GPX reader of :mod:`pipeline.ingest.xml_readers`) builds an ElementTree and an object per
point: a valid 50 MB GPX of 225,000 points peaked at 1.1 GB in one worker. Files larger than
:data:`STREAM_ABOVE_BYTES` are read here instead, with defusedxml's ``iterparse`` (the same safety rules:
no DTD, no entity declarations, no external references), one point at a time, each point's element freed
as soon as it is read, values kept in compact arrays. It yields the same tracks, names, types, creator and
point columns as the gpxpy path (tested equal on every corpus GPX file); times are kept as text and
parsed by the shared activity builder.
"""

from __future__ import annotations

import io
from array import array
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd
from defusedxml.ElementTree import iterparse

# Above this size a GPX file is streamed (docs/ingest.md, "Large files"): typical GPX files are well
# below it (a 3-hour run at 1 s with HR and cadence is ~4 MB), so they keep the gpxpy path.
STREAM_ABOVE_BYTES = 8 << 20

_HR = {"hr", "heartrate", "heart_rate", "heartratebpm"}
_CAD = {"cad", "cadence", "runcadence"}
_POWER = {"power", "watts", "pwr"}
_TEMP = {"atemp", "temp", "temperature", "wtemp"}
_SPEED = {"speed"}
_CHANNELS = ("lat", "lon", "ele", "distance", "speed", "hr", "cadence", "power", "temp")
# Times are parsed a batch at a time into int64 microseconds, so no list of 225,000 strings piles up.
_TIME_BATCH = 8192
_NO_TIME = np.iinfo(np.int64).min


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _float(text: str | None) -> float:
    try:
        return float(text) if text is not None and text.strip() else float("nan")
    except ValueError:
        return float("nan")


def _parse_times(texts: list[str | None]) -> np.ndarray:
    """ISO 8601 times (any offset, converted to UTC) as int64 microseconds; unparseable -> _NO_TIME."""
    ts = pd.to_datetime(pd.Series(texts, dtype=object), utc=True, format="ISO8601", errors="coerce")
    return pd.DatetimeIndex(ts).as_unit("us").asi8


@dataclass
class StreamedTrack:
    """One ``<trk>``: its name and type, and its points as columns (times as int64 microseconds)."""

    name: str | None = None
    type: str | None = None
    columns: dict[str, array] = field(default_factory=lambda: {c: array("d") for c in _CHANNELS})
    _times_us: array = field(default_factory=lambda: array("q"))
    _pending: list[str | None] = field(default_factory=list)

    def add_time(self, text: str | None) -> None:
        self._pending.append(text)
        if len(self._pending) >= _TIME_BATCH:
            self.flush_times()

    def flush_times(self) -> None:
        if self._pending:
            self._times_us.extend(_parse_times(self._pending).tolist())
            self._pending = []

    def times(self) -> pd.DatetimeIndex:
        """The points' times, UTC (NaT where a point has none or an unparseable one)."""
        self.flush_times()
        return pd.DatetimeIndex(np.frombuffer(self._times_us, dtype="datetime64[us]"), tz="UTC")

    @property
    def n_timed(self) -> int:
        self.flush_times()
        return int((np.frombuffer(self._times_us, dtype=np.int64) != _NO_TIME).sum())

    def __len__(self) -> int:
        return len(self.columns["lat"])

    def points(self) -> dict[str, object]:
        """Columns in the layout of the XML readers' point dictionaries (``time`` a DatetimeIndex)."""
        return {"time": self.times(), **self.columns}


@dataclass
class StreamedGpx:
    """What a streamed GPX file holds (``root``: local name of the root element)."""

    root: str | None = None
    creator: str | None = None
    tracks: list[StreamedTrack] = field(default_factory=list)
    has_routes: bool = False


def _point(elem: Element, track: StreamedTrack) -> None:
    values = {c: float("nan") for c in _CHANNELS}
    values["lat"], values["lon"] = _float(elem.get("lat")), _float(elem.get("lon"))
    time = None
    for child in elem:
        tag = _local(child.tag)
        if tag == "time":
            time = child.text.strip() if child.text and child.text.strip() else None
        elif tag == "ele":
            values["ele"] = _float(child.text)
        elif tag == "speed":
            values["speed"] = _float(child.text)
        elif tag == "extensions":
            _extensions(child, values)
    track.add_time(time)
    for c in _CHANNELS:
        track.columns[c].append(values[c])


def _extensions(ext: Element, values: dict[str, float]) -> None:
    for e in ext.iter():
        if e.text is None or not e.text.strip():
            continue
        tag = _local(e.tag).lower()
        key = ("hr" if tag in _HR else "cadence" if tag in _CAD else "power" if tag in _POWER
               else "temp" if tag in _TEMP else "speed" if tag in _SPEED else None)
        if key:
            values[key] = _float(e.text)


def stream_gpx(data: bytes) -> StreamedGpx:
    """Read a GPX document point by point (defusedxml ``iterparse``; raises its errors for unsafe XML and
    ``xml.etree.ElementTree.ParseError`` for malformed XML)."""
    out = StreamedGpx()
    stack: list[Element] = []
    track: StreamedTrack | None = None
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")   # BOM and leading whitespace, as the tree parser strips
    for event, elem in iterparse(io.BytesIO(text), events=("start", "end"), forbid_dtd=True):
        tag = _local(elem.tag)
        if event == "start":
            stack.append(elem)
            if len(stack) == 1:
                out.root = tag
                out.creator = elem.get("creator")
            elif tag == "trk":
                track = StreamedTrack()
                out.tracks.append(track)
            elif tag == "rte":
                out.has_routes = True
            continue
        stack.pop()
        parent = stack[-1] if stack else None
        if tag == "trkpt" and track is not None:
            _point(elem, track)
        elif tag in ("name", "type") and parent is not None and _local(parent.tag) == "trk" and track is not None:
            setattr(track, tag, elem.text.strip() if elem.text and elem.text.strip() else None)
            continue
        elif tag == "trk":
            track = None
        if parent is not None and tag in ("trkpt", "trkseg", "trk", "rte", "wpt", "rtept"):
            parent.remove(elem)   # free what was read: memory stays flat whatever the number of points
    return out

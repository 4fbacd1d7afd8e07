"""GPX 1.1 in its common shape, read straight from the safety parse's tree (no second parse, no gpxpy).

Every GPX file is parsed once with defusedxml (:mod:`pipeline.ingest.xml_readers`); gpxpy then parsed the
text a second time and built an object with ~25 fields per point, ~10 ms of a ~19 ms small file. Most
files are the shape Garmin, Strava and our simulator write: GPX 1.1 declared once on the root, and track
points holding only ``ele``, ``time`` and ``extensions``. :func:`common_gpx_tracks` reads that shape from
the tree already built, with gpxpy's own rules for each value (first child wins; ``float(text.strip())``;
an absent or empty element is no value) so the result is the one gpxpy gives; any file outside the shape
(GPX 1.0, waypoints, routes, bounds, other point fields, a time that is not ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``,
a value gpxpy would refuse) returns None and is read by gpxpy as before. Tested equal to the gpxpy path on
the corpus, the simulator's files and seeded mutants (``tests/ingest/test_gpx_tree.py``).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd

GPX11_NS = "{http://www.topografix.com/GPX/1/1}"
_HR_TAGS = {"hr", "heartrate", "heart_rate", "heartratebpm"}
_CAD_TAGS = {"cad", "cadence", "runcadence"}
_POWER_TAGS = {"power", "watts", "pwr"}
_TEMP_TAGS = {"atemp", "temp", "temperature", "wtemp"}
_SPEED_TAGS = {"speed"}
# Extension element (local name, lower case) -> point column.
EXTENSION_COLUMNS = {tag: column for column, tags in (
    ("hr", _HR_TAGS), ("cadence", _CAD_TAGS), ("power", _POWER_TAGS), ("temp", _TEMP_TAGS), ("speed", _SPEED_TAGS),
) for tag in tags}
POINT_COLUMNS = ("time", "lat", "lon", "ele", "distance", "speed", "hr", "cadence", "power", "temp")

# gpxpy removes the first default-namespace declaration of the text before parsing (its own regex); the
# shape requires it to be the root's and the only one, so "GPX element" means the same in both readings.
_DEFAULT_NS_DECLARATION = re.compile(rb"""\sxmlns=(['"])[^'"]+\1""")
# Children that gpxpy reads as text only (they cannot make it refuse a file), per parent.
_TEXT_ONLY = {
    "trk": {"name", "type", "desc", "cmt", "src", "link", "extensions", "trkseg"},
    "metadata": {"name", "desc", "author", "copyright", "link", "time", "keywords", "extensions"},
}
_ZULU_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z")


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _float_or_nan(text: str | None) -> float:
    try:
        return float(text) if text is not None else math.nan
    except ValueError:
        return math.nan


_COLUMN_OF_TAG: dict[str, str | None] = {}     # tag as parsed -> point column (a few tags per file)


def _column_of(tag: str) -> str | None:
    column = _COLUMN_OF_TAG.get(tag, "")
    if column == "":
        column = _COLUMN_OF_TAG[tag] = EXTENSION_COLUMNS.get(local_name(tag).lower())
        if len(_COLUMN_OF_TAG) > 10_000:     # tags are few; a file inventing thousands cannot grow this
            _COLUMN_OF_TAG.clear()
    return column


def read_extensions(ext: Element | None, pt: dict[str, object]) -> None:
    """Sensor values from an ``<extensions>`` element (any depth, any namespace) into point ``pt``."""
    if ext is None:
        return
    for e in ext.iter():
        column = _column_of(e.tag)
        if column is not None and e.text is not None and e.text.strip():
            pt[column] = _float_or_nan(e.text)


class TreeGpx(NamedTuple):
    """What :func:`common_gpx_tracks` read: each track as (name, type, point columns), and the creator."""

    tracks: list[tuple[str | None, str | None, dict]]
    creator: str | None


class _Outside(Exception):
    """The document is not in the common shape: gpxpy reads it."""


def common_gpx_tracks(root: Element, data: bytes) -> TreeGpx | None:
    """The tracks and creator of a GPX 1.1 document in the common shape, or None (gpxpy reads it).

    ``root``: the defusedxml tree of ``data``. Point columns are those of
    :func:`pipeline.ingest.xml_readers._gpx_track_points` (``time`` already a UTC DatetimeIndex).
    """
    if root.tag != f"{GPX11_NS}gpx" or root.get("version") != "1.1" or not _root_declares_the_namespace(data):
        return None
    tracks = []
    try:
        for child in root:
            tag = child.tag
            if tag == f"{GPX11_NS}trk":
                tracks.append(_track(child))
            elif tag == f"{GPX11_NS}metadata":
                _check_text_only(child, "metadata")
            elif tag != f"{GPX11_NS}extensions":
                raise _Outside
    except _Outside:
        return None
    return TreeGpx(tracks, root.get("creator"))


def _root_declares_the_namespace(data: bytes) -> bool:
    declarations = list(_DEFAULT_NS_DECLARATION.finditer(data))
    if len(declarations) != 1:
        return False
    at = declarations[0].start()
    root_start = data.find(b"<gpx")
    return 0 <= root_start < at < data.find(b">", root_start)


def _check_text_only(elem: Element, kind: str) -> None:
    allowed = _TEXT_ONLY[kind]
    for child in elem:
        if not child.tag.startswith(GPX11_NS) or child.tag[len(GPX11_NS):] not in allowed:
            raise _Outside


def _first_text(elem: Element, tag: str) -> str | None:
    found = elem.find(tag)
    return found.text if found is not None else None


def _track(trk: Element) -> tuple[str | None, str | None, dict]:
    """One ``<trk>``: (name, type, point columns); raises :class:`_Outside` off the shape."""
    _check_text_only(trk, "trk")
    points: dict[str, list] = {k: [] for k in POINT_COLUMNS}
    for seg in trk:
        if seg.tag != f"{GPX11_NS}trkseg":
            continue
        for pt in seg:
            if pt.tag == f"{GPX11_NS}trkpt":
                _point(pt, points)
            elif pt.tag != f"{GPX11_NS}extensions":
                raise _Outside
    points["time"] = _zulu_times(points["time"])
    return _first_text(trk, f"{GPX11_NS}name"), _first_text(trk, f"{GPX11_NS}type"), points


_ELE, _TIME, _EXT = f"{GPX11_NS}ele", f"{GPX11_NS}time", f"{GPX11_NS}extensions"


def _point(elem: Element, points: dict[str, list]) -> None:
    """One ``<trkpt>`` appended to the point columns, as gpxpy reads it (first child of a name wins)."""
    lat, lon = elem.get("lat"), elem.get("lon")
    if lat is None or lon is None:
        raise _Outside                      # mandatory in gpxpy: it refuses the file
    first: dict[str, Element] = {}
    for child in elem:
        if child.tag not in (_ELE, _TIME, _EXT):
            raise _Outside
        first.setdefault(child.tag, child)
    try:
        pt: dict[str, object] = {"lat": float(lat.strip()), "lon": float(lon.strip()), "speed": math.nan}
        ele = first.get(_ELE)
        pt["ele"] = math.nan if ele is None or ele.text is None else float(ele.text.strip())
    except ValueError:
        raise _Outside from None            # gpxpy refuses the value
    time = first.get(_TIME)
    pt["time"] = time.text if time is not None else None
    ext = first.get(_EXT)
    if ext is not None:
        for child in ext:
            read_extensions(child, pt)
    for k, column in points.items():
        column.append(pt.get(k, math.nan))


def _zulu_times(texts: list[str | None]) -> pd.DatetimeIndex:
    """Point times ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (None: no time) as a UTC index, NaT where absent.

    Exactly what gpxpy's parse_time, then conversion to UTC, gives for such text: the calendar is checked
    by formatting the parsed seconds back (a date gpxpy's datetime would refuse is off the shape)."""
    present = [i for i, t in enumerate(texts) if t is not None]
    if not present:   # no time at all (a route drawn as a track): as the gpxpy path converts it
        return pd.DatetimeIndex(pd.to_datetime(pd.Series(texts, dtype=object), utc=True, errors="coerce"))
    matches = [_ZULU_TIME.fullmatch(texts[i]) for i in present]
    if not all(matches):
        raise _Outside
    whole = [m.group(1) for m in matches]
    try:
        seconds = np.array(whole, dtype="datetime64[s]")
    except ValueError:
        raise _Outside from None
    if any(w.startswith("0000") for w in whole) or np.datetime_as_string(seconds, unit="s").tolist() != whole:
        raise _Outside
    micros = np.array([int((m.group(2) or "").ljust(6, "0")) for m in matches], dtype="timedelta64[us]")
    out = np.full(len(texts), np.datetime64("NaT"), dtype="datetime64[us]")
    out[present] = seconds.astype("datetime64[us]") + micros
    return pd.DatetimeIndex(out).tz_localize("UTC")

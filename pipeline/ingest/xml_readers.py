"""GPX and TCX readers: XML bytes -> :class:`ParsedFile`.

Safety first: every file is parsed once with ``defusedxml`` (no entity expansion, no DTD, no external
references, no network: an XML bomb is an ``error`` row naming the reason, not a hung ingest).

- **GPX** is then read with gpxpy (tracks, segments, points, times, elevation, GPX 1.0 ``<speed>``); HR,
  cadence, power, temperature (and a speed extension) come from each point's ``extensions`` elements,
  matched by *local* tag name (``gpxtpx:hr``, ``ns3:hr``, plain ``heartrate``... all alike). One
  ``<trk>`` is one activity (its segments joined).
- **TCX** is walked in the defused ElementTree by local tag names; one ``<Activity>`` is one activity.

Cadence: Garmin and Strava write running cadence in GPX/TCX as strides/min, like FIT, so running
cadence is doubled to steps/min; other sports keep the recorded rpm. Speed comes only from the file
(GPX 1.0 ``<speed>``, a ``speed`` extension, TCX ``TPX/Speed``); it is never derived here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from xml.etree.ElementTree import Element, ParseError

import gpxpy
import gpxpy.gpx
import numpy as np
import pandas as pd
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring

from pipeline.formulas import haversine_m
from pipeline.ingest.common import (
    NothingToIngest, ReadContext, ReadError, activity_id_for, sport_from_word, typed_frame,
)
from pipeline.ingest.gpx_stream import STREAM_ABOVE_BYTES, stream_gpx
from pipeline.ingest.gpx_tree import POINT_COLUMNS, common_gpx_tracks
from pipeline.ingest.gpx_tree import read_extensions as _read_extensions
from pipeline.ingest.parsed import Columns, ParsedFile, Rows

# A GPX track is a recording only when at least this share of its points carry a time.
MIN_TIMED_FRACTION = 0.5


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_UNSAFE_REASONS = (
    (DTDForbidden, "a DTD (<!DOCTYPE ...>) is not accepted"),
    (EntitiesForbidden, "entity declarations are not accepted (XML bomb / external entity)"),
    (ExternalReferenceForbidden, "external references are not followed"),
)
_XML_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _strip_xml_prefix(data: bytes) -> bytes:
    # Strava writes whitespace before <?xml; some tools a UTF-8 BOM. Both make strict parsers fail.
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")


def _parse_xml(data: bytes, fmt: str, forbid_dtd: bool = False) -> Element:
    """Parse with defusedxml; unsafe XML is a :class:`ReadError` that names the reason."""
    text = _strip_xml_prefix(data)
    if not text:
        raise ReadError(f"{fmt.upper()}: empty file")
    try:
        return fromstring(text, forbid_dtd=forbid_dtd)
    except DefusedXmlException as e:
        raise _unsafe_xml(e, fmt, text) from e
    except ParseError as e:
        raise ReadError(f"{fmt.upper()}: not well-formed XML ({e})") from e


def _unsafe_xml(e: DefusedXmlException, fmt: str, text: bytes) -> ReadError:
    """The error for XML defusedxml refused, naming the reason."""
    kind = type(e)
    if kind is DTDForbidden and b"<!ENTITY" in text:
        kind = EntitiesForbidden  # the DTD is refused first; name the more telling reason
    reason = next((r for cls, r in _UNSAFE_REASONS if issubclass(kind, cls)), kind.__name__)
    return ReadError(f"{fmt.upper()}: refused unsafe XML: {reason}")


def _float(text: str | None) -> float:
    try:
        return float(text) if text is not None else math.nan
    except ValueError:
        return math.nan


def _child(elem: Element, name: str) -> Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _child_text(elem: Element, name: str) -> str | None:
    c = _child(elem, name)
    return c.text.strip() if c is not None and c.text else None


def _haversine_total_m(lat: np.ndarray, lon: np.ndarray) -> float | None:
    ok = ~(np.isnan(lat) | np.isnan(lon))
    if ok.sum() < 2:
        return None
    la, lo = lat[ok], lon[ok]
    with np.errstate(invalid="ignore", over="ignore"):   # garbage positions: the sanity gate redoes this
        return float(np.sum(haversine_m(la[:-1], lo[:-1], la[1:], lo[1:])))


def _to_utc(times: list[str | None] | pd.DatetimeIndex) -> pd.DatetimeIndex:
    if isinstance(times, pd.DatetimeIndex):   # already parsed (streamed GPX)
        return times
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(times, dtype=object), utc=True, format="ISO8601",
                                           errors="coerce"))


def _activity(ctx: ReadContext, fmt: str, index: int, points: dict[str, list], sport: str,
              sub_sport: str | None, name: str | None, device: str | None,
              start_hint: str | None = None) -> tuple[dict, Columns, list[str]]:
    """One activity row + its samples columns from point columns (``time`` strings and floats)."""
    warnings = []
    ts = _to_utc(points["time"])
    keep = ~ts.isna()
    if (~keep).any():
        warnings.append(f"{int((~keep).sum())} point(s) without a valid time dropped")
    ts = ts[keep]
    if len(ts) > 2 and ts.nunique() == 1:
        raise NothingToIngest(f"all {len(ts)} points share one timestamp ({ts[0]:%Y-%m-%d %H:%M:%S}): "
                              "a placeholder, not a recording")
    cols = {k: np.asarray(v, dtype=float)[keep] for k, v in points.items() if k != "time"}
    start = ts.min()
    if start_hint:
        hinted = _to_utc([start_hint])[0]
        if not pd.isna(hinted):
            start = min(start, hinted)
    activity_id = activity_id_for(ctx.athlete_id, start, index)
    with np.errstate(over="ignore"):   # an absurd cadence (1e308) overflows to inf: the sanity gate removes it
        cadence = cols["cadence"] * 2.0 if sport == "running" else cols["cadence"]
    n = len(ts)
    samples = Columns.build(
        n, activity_id=np.full(n, activity_id, dtype=object), athlete_id=np.full(n, ctx.athlete_id, dtype=object),
        ts=ts.tz_convert(None).to_numpy(), elapsed_s=(ts - start).total_seconds().to_numpy(),
        lat_deg=cols["lat"], lon_deg=cols["lon"], altitude_m=cols["ele"],
        distance_m=cols["distance"], speed_m_s=cols["speed"], heart_rate_bpm=cols["hr"],
        cadence_spm=cadence, power_w=cols["power"], temperature_c=cols["temp"],
    )
    dist = cols["distance"]
    distance_m = float(np.nanmax(dist)) if (~np.isnan(dist)).any() else _haversine_total_m(cols["lat"], cols["lon"])
    hr = cols["hr"]
    row = {
        "activity_id": activity_id, "athlete_id": ctx.athlete_id, "file_id": ctx.file_id,
        "sport": sport, "sub_sport": sub_sport, "start_time": start,
        "elapsed_s": (ts.max() - start).total_seconds(), "timer_s": None, "distance_m": distance_m,
        "avg_heart_rate_bpm": float(np.nanmean(hr)) if (~np.isnan(hr)).any() else None,
        "device": device, "name": ctx.name_override or name, "source_format": fmt, "session_index": index,
        "n_samples": n,
    }
    return row, samples, warnings


def _new_points() -> dict[str, list]:
    return {k: [] for k in POINT_COLUMNS}


def _append_point(points: dict[str, list], pt: dict[str, object]) -> None:
    """Add one point to the point columns; a value the point lacks is NaN (its time: as given)."""
    for k, v in points.items():
        v.append(pt.get(k, math.nan) if k != "time" else pt["time"])


def _finish(ctx: ReadContext, fmt: str, size: int, rows: list[dict], frames: list[Columns],
            laps: list[pd.DataFrame], warnings: list[str]) -> ParsedFile:
    parsed = ctx.parsed(fmt, size, warnings=warnings)
    parsed.activities = Rows("activities", rows)
    parsed.samples = Columns.concat(frames)
    if laps:
        parsed.laps = pd.concat(laps, ignore_index=True)
    sports = ", ".join(str(row["sport"]) for row in rows)
    parsed.message = (f"{len(rows)} activit{'y' if len(rows) == 1 else 'ies'} ({sports}), "
                      f"{parsed.n_rows('samples')} samples")
    return parsed


def _xml_text(data: bytes) -> str:
    """The document as text for gpxpy: BOM and leading whitespace stripped, decoded as declared."""
    text = _strip_xml_prefix(data)
    match = _XML_DECLARED_ENCODING.match(text)
    encoding = match.group(1).decode("ascii") if match else "utf-8"
    try:
        decoded = text.decode(encoding)
    except (LookupError, UnicodeDecodeError) as e:
        raise ReadError(f"GPX: cannot decode the text as {encoding} ({e})") from e
    if match:  # gpxpy's parser reads text as UTF-8: the declaration must say so
        decoded = decoded.replace(match.group(1).decode("ascii"), "UTF-8", 1)
    return decoded


def _utc(time: dt.datetime | None) -> dt.datetime | None:
    if time is None:
        return None
    if time.tzinfo is None:  # GPX times without an offset are UTC (GPX 1.1 schema: xsd:dateTime in UTC)
        return time.replace(tzinfo=dt.timezone.utc)
    return time.astimezone(dt.timezone.utc)


def _none_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def read_gpx(data: bytes, ctx: ReadContext) -> ParsedFile:
    """Parse GPX 1.0/1.1 bytes: each ``<trk>`` with timed points is an activity (segments joined).

    Files up to :data:`~pipeline.ingest.gpx_stream.STREAM_ABOVE_BYTES` are parsed with defusedxml (no DTD,
    entities or external references); a file in the common GPX 1.1 shape is read from that tree
    (:mod:`pipeline.ingest.gpx_tree`, the values gpxpy would give), any other with gpxpy; larger ones, and files gpxpy refuses
    for a value (a time it cannot parse, an offset beyond 24 h, a non-number), by the streaming parser of
    :mod:`pipeline.ingest.gpx_stream` (same safety rules, same columns; an unreadable time drops its point
    with a warning, as in TCX), the refusal named in a warning.

    Raises:
        ReadError: unsafe or malformed XML, or not GPX.
        NothingToIngest: no track points, or no timestamps (a route or drawn track, not a recording).
    """
    if len(data) > STREAM_ABOVE_BYTES:
        return _read_gpx_streamed(data, ctx, [])
    root = _parse_xml(data, "gpx", forbid_dtd=True)
    if _local(root.tag) != "gpx":
        raise ReadError(f"GPX: root element is <{_local(root.tag)}>, not <gpx>")
    text = _xml_text(data)
    common = common_gpx_tracks(root, data)      # the common shape, read from this tree (gpx_tree)
    del root
    if common is not None:
        return _gpx_result(ctx, len(data), common.tracks, common.creator, False, [])
    gpx, refused = _parse_gpx(text)
    if gpx is not None:
        try:
            tracks = [(t.name, t.type, _gpx_track_points(t)) for t in gpx.tracks]
        except (ValueError, OverflowError) as e:   # a time gpxpy parsed into something impossible (+25:00)
            gpx, refused = None, str(e) or type(e).__name__
    if gpx is None:
        return _read_gpx_streamed(data, ctx, [f"read with the streaming GPX parser: gpxpy refused a value "
                                              f"({refused})"])
    return _gpx_result(ctx, len(data), tracks, gpx.creator, bool(gpx.routes), [])


def _read_gpx_streamed(data: bytes, ctx: ReadContext, warnings: list[str]) -> ParsedFile:
    try:
        streamed = stream_gpx(data)
    except DefusedXmlException as e:
        raise _unsafe_xml(e, "gpx", data) from e
    except ParseError as e:
        raise ReadError(f"GPX: not well-formed XML ({e})") from e
    if streamed.root != "gpx":
        raise ReadError(f"GPX: root element is <{streamed.root}>, not <gpx>")
    tracks = [(t.name, t.type, t.points()) for t in streamed.tracks]
    creator, has_routes = streamed.creator, streamed.has_routes
    del streamed   # each track's columns are freed as soon as its activity is built (peak memory)
    return _gpx_result(ctx, len(data), tracks, creator, has_routes, warnings)


def _gpx_result(ctx: ReadContext, size: int, tracks: list[tuple[str | None, str | None, dict]],
                creator: str | None, has_routes: bool, warnings: list[str]) -> ParsedFile:
    """Activities from (name, type, point columns) per track; untimed tracks left out with a warning."""
    rows, frames = [], []
    n_points_total = 0
    untimed_warnings: list[str] = []
    for trk_index in range(len(tracks)):
        name, kind, points = tracks[trk_index]
        tracks[trk_index] = (name, kind, None)   # the caller's list no longer holds the columns
        times = points["time"]
        n = len(times)
        n_points_total += n
        n_timed = int(times.notna().sum()) if isinstance(times, pd.DatetimeIndex) else \
            sum(t is not None for t in times)
        if n == 0:
            continue
        if n_timed < MIN_TIMED_FRACTION * n:  # a drawn/edited track with a few stray times, not a recording
            untimed_warnings.append(f"track {trk_index} ({n} points, {n_timed} with a time) has no usable "
                                    "timestamps; not ingested")
            continue
        sport = ctx.sport_override or sport_from_word(kind)
        row, frame, warn = _activity(ctx, "gpx", len(rows), points, sport, None,
                                     name.strip() if name else None, creator)
        rows.append(row)
        frames.append(frame)
        warnings.extend(warn)
    warnings.extend(untimed_warnings)
    if not rows:
        raise _no_gpx_recording(has_routes, n_points_total)
    return _finish(ctx, "gpx", size, rows, frames, [], warnings)


def _parse_gpx(text: str) -> tuple[gpxpy.gpx.GPX | None, str | None]:
    """The document (text for gpxpy, see :func:`_xml_text`) read by gpxpy, after the defusedxml safety parse
    has accepted it as ``<gpx>``; or (None, gpxpy's reason) when gpxpy refuses a value in it."""
    try:
        return gpxpy.parse(text), None
    except (gpxpy.gpx.GPXException, ValueError, OverflowError) as e:
        return None, str(e) or type(e).__name__


def _gpx_track_points(track: gpxpy.gpx.GPXTrack) -> dict[str, list]:
    """Point columns of a track, its segments joined: times (UTC), position, elevation, speed, extensions."""
    points = _new_points()
    for segment in track.segments:
        for point in segment.points:
            pt = {"time": _utc(point.time), "lat": _none_nan(point.latitude),
                  "lon": _none_nan(point.longitude), "ele": _none_nan(point.elevation),
                  "speed": _none_nan(point.speed)}
            for ext in point.extensions:
                _read_extensions(ext, pt)
            _append_point(points, pt)
    return points


def _no_gpx_recording(has_routes: bool, n_points_total: int) -> NothingToIngest:
    """Why a GPX file gave no activity: untimed points, a route only, or nothing at all."""
    if n_points_total:
        return NothingToIngest(f"GPX track of {n_points_total} points has no usable timestamps "
                               "(a route or drawn track, not a recorded activity)")
    return NothingToIngest("GPX holds a route only, no recorded track" if has_routes
                           else "GPX holds no track points")


def _stripped_text(elem: Element) -> str | None:
    return elem.text.strip() if elem.text else None


def _text_float(elem: Element) -> float:
    return _float(elem.text)


def _child_float(name: str) -> Callable[[Element], float]:
    """Converter: the number in the element's first child called ``name`` (NaN when absent)."""
    return lambda elem: _float(_child_text(elem, name))


# <Trackpoint> child (local name) -> (point column, converter of that element) for each value it holds:
#   <Trackpoint><Time>2024-05-01T06:15:02Z</Time>
#     <Position><LatitudeDegrees>52.1</LatitudeDegrees><LongitudeDegrees>4.3</LongitudeDegrees></Position>
#     <AltitudeMeters>3.2</AltitudeMeters><DistanceMeters>12.5</DistanceMeters>
#     <HeartRateBpm><Value>142</Value></HeartRateBpm><Cadence>84</Cadence>
#     <Extensions><TPX><Speed>3.1</Speed><RunCadence>84</RunCadence></TPX></Extensions></Trackpoint>
# <Extensions> is read like GPX extensions (_read_extensions). A later element overrides an earlier one.
_TCX_TRACKPOINT_FIELDS: dict[str, tuple[tuple[str, Callable[[Element], object]], ...]] = {
    "Time": (("time", _stripped_text),),
    "Position": (("lat", _child_float("LatitudeDegrees")), ("lon", _child_float("LongitudeDegrees"))),
    "AltitudeMeters": (("ele", _text_float),),
    "DistanceMeters": (("distance", _text_float),),
    "HeartRateBpm": (("hr", _child_float("Value")),),
    "Cadence": (("cadence", _text_float),),
}
# <Lap> child (local name) -> (lap column, converter); the first such child counts.
_TCX_LAP_FIELDS: dict[str, tuple[str, Callable[[Element], float]]] = {
    "TotalTimeSeconds": ("elapsed_s", _text_float),
    "DistanceMeters": ("distance_m", _text_float),
    "AverageHeartRateBpm": ("avg_heart_rate_bpm", _child_float("Value")),
}


def read_tcx(data: bytes, ctx: ReadContext) -> ParsedFile:
    """Parse TCX bytes: each ``<Activity>`` is an activity with its laps and trackpoints.

    Raises:
        ReadError: unsafe or malformed XML, or not TCX.
        NothingToIngest: no activity with timed trackpoints (e.g. a course file).
    """
    root = _parse_xml(data, "tcx")
    if _local(root.tag) != "TrainingCenterDatabase":
        raise ReadError(f"TCX: root element is <{_local(root.tag)}>, not <TrainingCenterDatabase>")
    rows, frames, lap_frames, warnings = [], [], [], []
    for act in [a for a in root.iter() if _local(a.tag) == "Activity"]:
        points, lap_rows = _tcx_points_and_laps(act)
        if not points["time"] or all(t is None for t in points["time"]):
            continue
        sport = ctx.sport_override or sport_from_word(act.get("Sport"))
        creator = _child(act, "Creator")
        device = _child_text(creator, "Name") if creator is not None else None
        row, frame, warn = _activity(ctx, "tcx", len(rows), points, sport, None, None, device,
                                     start_hint=_child_text(act, "Id"))
        rows.append(row)
        frames.append(frame)
        warnings.extend(warn)
        if lap_rows:
            lap_frames.append(_tcx_lap_frame(row["activity_id"], lap_rows))
    if not rows:
        raise NothingToIngest("TCX holds no activity with timed trackpoints")
    return _finish(ctx, "tcx", len(data), rows, frames, lap_frames, warnings)


def _tcx_points_and_laps(act: Element) -> tuple[dict[str, list], list[dict]]:
    """An ``<Activity>``'s point columns (every lap's trackpoints in order) and one row per ``<Lap>``."""
    points = _new_points()
    lap_rows = []
    for lap in (c for c in act if _local(c.tag) == "Lap"):
        lap_rows.append(_tcx_lap_row(lap))
        for tp in (e for e in lap.iter() if _local(e.tag) == "Trackpoint"):
            _append_point(points, _tcx_trackpoint(tp))
    return points, lap_rows


def _tcx_trackpoint(tp: Element) -> dict[str, object]:
    """One ``<Trackpoint>`` as a point (see :data:`_TCX_TRACKPOINT_FIELDS`); time None when absent."""
    pt: dict[str, object] = {"time": None}
    for c in tp:
        tag = _local(c.tag)
        if tag == "Extensions":
            _read_extensions(c, pt)
        for column, convert in _TCX_TRACKPOINT_FIELDS.get(tag, ()):
            pt[column] = convert(c)
    return pt


def _tcx_lap_row(lap: Element) -> dict[str, object]:
    """One ``<Lap>``: its StartTime attribute and the values of :data:`_TCX_LAP_FIELDS` (NaN when absent)."""
    row: dict[str, object] = {"start_time": lap.get("StartTime")}
    for name, (column, convert) in _TCX_LAP_FIELDS.items():
        child = _child(lap, name)
        row[column] = convert(child) if child is not None else math.nan
    return row


def _tcx_lap_frame(activity_id: str, lap_rows: list[dict]) -> pd.DataFrame:
    """``laps`` rows of one activity; average speed = distance / elapsed time (no timer time in TCX)."""
    laps = pd.DataFrame(lap_rows)
    laps.insert(0, "activity_id", activity_id)
    laps.insert(1, "lap_index", range(len(laps)))
    laps["start_time"] = _to_utc(list(laps["start_time"]))
    laps["timer_s"] = np.nan
    laps["avg_speed_m_s"] = laps["distance_m"] / laps["elapsed_s"].where(laps["elapsed_s"] > 0)
    return laps[typed_frame("laps", {}, 0).columns]

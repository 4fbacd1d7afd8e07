"""FIT reader: bytes of a .fit file -> :class:`ParsedFile` (activities, samples, laps, strength).

Each ``session`` message becomes one activity (a multisport file gives several); records are assigned
to the session whose start time is the latest at or before them, so no record is lost. Files without
session messages get one activity spanning their records. Units follow the FIT profile's scale/offset
and are converted once here (positions semicircles -> degrees; ``enhanced_*`` speed/altitude preferred;
running cadence strides/min -> steps/min including ``fractional_cadence``).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fitparse import FitFile
from fitparse import profile as fit_profile
from fitparse.records import FieldDefinition
from fitparse.utils import FitCRCError as FitparseCRCError
from fitparse.utils import FitEOFError, FitHeaderError, FitParseError

from pipeline.ingest.common import UNKNOWN_SPORT, NothingToIngest, ReadContext, ReadError, activity_id_for
from pipeline.ingest.fit_decode import (
    FIT_EPOCH_S, FIT_RELATIVE_TIME_MAX, DecodedFit, FitCRCError, FitDecodeError, MessageDefinition, decode_fit,
)
from pipeline.ingest.fit_profile import (
    FIELD_TIMESTAMP, FILE_ID_MANUFACTURER, FILE_ID_PRODUCT, FILE_ID_TYPE, FILE_TYPE_ACTIVITY, LAP_AVG_HEART_RATE,
    LAP_AVG_SPEED, LAP_ENHANCED_AVG_SPEED, LAP_START_TIME, LAP_TOTAL_DISTANCE, LAP_TOTAL_ELAPSED_TIME,
    LAP_TOTAL_TIMER_TIME, MESG_DEVICE_INFO, MESG_FILE_ID, MESG_LAP, MESG_RECORD, MESG_SESSION, MESG_SET,
    MESG_SPORT, RECORD_ALTITUDE, RECORD_CADENCE, RECORD_COMPRESSED_SPEED_DISTANCE, RECORD_DISTANCE,
    RECORD_ENHANCED_ALTITUDE, RECORD_ENHANCED_SPEED, RECORD_FRACTIONAL_CADENCE, RECORD_HEART_RATE,
    RECORD_POSITION_LAT, RECORD_POSITION_LONG, RECORD_POWER, RECORD_SPEED, RECORD_TEMPERATURE,
    SESSION_AVG_HEART_RATE, SESSION_SPORT, SESSION_START_TIME, SESSION_SUB_SPORT, SESSION_TOTAL_DISTANCE,
    SESSION_TOTAL_ELAPSED_TIME, SESSION_TOTAL_TIMER_TIME, SPORT_SPORT, SPORT_SUB_SPORT, SPORT_TRAINING,
    SUB_SPORT_STRENGTH_TRAINING,
)
from pipeline.ingest.parsed import Columns, ParsedFile, Rows
from pipeline.ingest.fit_strength import strength_from_fit

_KEEP = frozenset({MESG_FILE_ID, MESG_SESSION, MESG_LAP, MESG_DEVICE_INFO, MESG_SPORT, MESG_SET})
_SEMICIRCLES_PER_DEG = 2**31 / 180.0  # value_deg = raw / this
_GARMIN_LIKE_MANUFACTURERS = {1, 13, 15}  # garmin, dynastream_oem, dynastream: garmin_product names

# record field number -> (column, scale, offset): value = raw / scale - offset
_RECORD_FIELDS = {
    RECORD_POSITION_LAT: ("lat", _SEMICIRCLES_PER_DEG, 0.0),
    RECORD_POSITION_LONG: ("lon", _SEMICIRCLES_PER_DEG, 0.0),
    RECORD_ALTITUDE: ("altitude", 5.0, 500.0),
    RECORD_ENHANCED_ALTITUDE: ("enhanced_altitude", 5.0, 500.0),
    RECORD_HEART_RATE: ("heart_rate", 1.0, 0.0),
    RECORD_CADENCE: ("cadence", 1.0, 0.0),
    RECORD_FRACTIONAL_CADENCE: ("fractional_cadence", 128.0, 0.0),
    RECORD_DISTANCE: ("distance", 100.0, 0.0),
    RECORD_SPEED: ("speed", 1000.0, 0.0),
    RECORD_ENHANCED_SPEED: ("enhanced_speed", 1000.0, 0.0),
    RECORD_POWER: ("power", 1.0, 0.0),
    RECORD_TEMPERATURE: ("temperature", 1.0, 0.0),
}


def _enum_name(type_name: str, value: int | None) -> str | None:
    """fitparse profile name of an enum value; unknown numbers are kept as the number's string."""
    if value is None:
        return None
    return fit_profile.FIELD_TYPES[type_name].values.get(value, str(value))


def _unix_s(fit_ts: float) -> float:
    return fit_ts + FIT_EPOCH_S


def _record_columns(records: list) -> dict[str, np.ndarray]:
    """Column arrays (float, NaN = absent) for every record, in file order, scaled to SI units."""
    n = len(records)
    cols = {name: np.full(n, np.nan) for name, _, _ in _RECORD_FIELDS.values()}
    cols["ts"] = np.array([np.nan if r[1] is None else r[1] for r in records], dtype=float)
    csd_raw = np.full(n, -1, dtype=np.int64)  # compressed_speed_distance, -1 = absent
    for defn, rows in _rows_by_definition(records):
        idx = np.asarray(rows)
        by_field = list(zip(*(records[i][2] for i in rows)))    # the rows' values, one tuple per field
        for j, (num, kind, inv) in enumerate(zip(defn.field_nums, defn.kinds, defn.invalid)):
            if num in _RECORD_FIELDS and kind == "n":
                name, scale, offset = _RECORD_FIELDS[num]
                raw = np.array(by_field[j], dtype=float)
                if inv is not None:
                    raw[raw == inv] = np.nan
                cols[name][idx] = raw / scale - offset
            elif num == RECORD_COMPRESSED_SPEED_DISTANCE and kind == "b":
                _read_compressed_speed_distance(records, rows, j, csd_raw)
    if (csd_raw >= 0).any():
        _expand_compressed_speed_distance(csd_raw, cols)
    return cols


def _rows_by_definition(records: list) -> list[tuple[MessageDefinition, list[int]]]:
    """Record indices grouped by the definition that laid them out (their values share one layout)."""
    by_def: dict[int, tuple[MessageDefinition, list[int]]] = {}
    for i, (defn, _, _) in enumerate(records):
        entry = by_def.get(id(defn))
        if entry is None:
            entry = by_def[id(defn)] = (defn, [])
        entry[1].append(i)
    return list(by_def.values())


def _read_compressed_speed_distance(records: list, rows: list[int], j: int, csd_raw: np.ndarray) -> None:
    """The 3-byte little-endian value of field ``j`` of ``rows`` into ``csd_raw`` (all 0xFF: invalid)."""
    for i in rows:
        b = records[i][2][j]
        if len(b) == 3 and b != b"\xff\xff\xff":
            csd_raw[i] = b[0] | (b[1] << 8) | (b[2] << 16)


def _expand_compressed_speed_distance(csd_raw: np.ndarray, cols: dict[str, np.ndarray]) -> None:
    """FR70-style component field: 12 bits speed (1/100 m/s) + 12 bits rolling distance (1/16 m).

    The distance component accumulates (FIT "accumulate" components), wrapping every 4096 units.
    """
    accumulated = 0
    last = None
    for i in np.flatnonzero(csd_raw >= 0):
        raw = int(csd_raw[i])
        cols["speed"][i] = (raw & 0xFFF) / 100.0
        dist = raw >> 12
        if last is None:
            accumulated = dist
        else:
            accumulated += (dist - last) & 0xFFF
        last = dist
        cols["distance"][i] = accumulated / 16.0


def _device_name(file_id: dict[int, object]) -> str | None:
    manufacturer = file_id.get(FILE_ID_MANUFACTURER)
    product = file_id.get(FILE_ID_PRODUCT)
    if manufacturer is None:
        return None
    name = _enum_name("manufacturer", manufacturer)
    if product is None:
        return name
    if manufacturer in _GARMIN_LIKE_MANUFACTURERS:
        return f"{name}/{_enum_name('garmin_product', product)}"
    return f"{name}/{product}"


@dataclass
class _SessionFrames:
    """One session of a FIT file as rows: its ``activities`` row, its samples and its lap rows."""

    activity: dict
    samples: Columns
    laps: list[dict]
    is_strength: bool


def read_fit(data: bytes, ctx: ReadContext) -> ParsedFile:
    """Parse a FIT file's bytes into activities (one per session), samples, laps and strength rows.

    Recipe: decode the bytes (:func:`_decode`), refuse files that are not activities, turn the records
    into scaled columns, give every record and lap to a session (:func:`_session_of`) and build each
    session's rows (:func:`_session_frames`).

    Raises:
        ReadError: not a FIT file, a CRC mismatch (corrupt), truncated, or structurally damaged (message
            says where), and fitparse cannot read it either (a decoder refusal falls back to fitparse once).
        NothingToIngest: a valid FIT file that is not an activity (settings, monitoring, workout...).
    """
    warnings: list[str] = []
    decoded = _decode(data, warnings)
    msgs = decoded.messages
    file_ids = msgs.get(MESG_FILE_ID, [])
    _require_activity(file_ids, msgs.get(MESG_SESSION, []), decoded.records)
    cols = _timed_record_columns(decoded.records, warnings)
    ts = cols["ts"]
    device = _device_name(file_ids[0]) if file_ids else None
    sessions = _sessions_or_synthetic(msgs.get(MESG_SESSION, []), ts, msgs.get(MESG_SPORT, []))
    starts = np.array([s[SESSION_START_TIME] for s in sessions], dtype=float)
    laps = msgs.get(MESG_LAP, [])
    record_owner = _session_of(starts, ts)
    lap_owner = _session_of(starts, np.array(
        [lap.get(LAP_START_TIME, lap.get(FIELD_TIMESTAMP, np.nan)) for lap in laps], dtype=float))
    frames = [
        _session_frames(index, sess, {name: col[record_owner == index] for name, col in cols.items()},
                        [laps[k] for k in np.flatnonzero(lap_owner == index)], ctx, device)
        for index, sess in enumerate(sessions)
    ]
    return _parsed_file(data, ctx, warnings, frames)


def _decode(data: bytes, warnings: list[str]) -> DecodedFit:
    """The file's messages from the fast decoder, or from fitparse when the decoder refuses the file.

    Strictness policy: the fast decoder's refusal is checked once with fitparse (the reference); if
    fitparse reads the file, its reading is used and a warning says so. A CRC mismatch is not retried
    (corrupt: fitparse refuses it too).
    """
    try:
        return decode_fit(data, _KEEP)
    except FitCRCError as e:
        raise ReadError(str(e)) from e
    except FitDecodeError as e:
        decoded, fitparse_error = decode_with_fitparse(data)
        if decoded is None:
            raise ReadError(f"FIT: {e}; fitparse cannot read it either ({fitparse_error})") from e
        warnings.append(f"read with fitparse: the fast decoder stopped ({e})")
        return decoded


def _require_activity(file_ids: list[dict], sessions: list[dict], records: list) -> None:
    """Raise :class:`NothingToIngest` for a FIT file that holds no activity (settings, workout, ...)."""
    file_type = file_ids[0].get(FILE_ID_TYPE) if file_ids else None
    if file_type is not None and file_type != FILE_TYPE_ACTIVITY and not sessions:
        raise NothingToIngest(f"not an activity file (FIT file type '{_enum_name('file', file_type)}')")
    if not sessions and not records:
        raise NothingToIngest("FIT file holds no sessions and no records")


def _timed_record_columns(records: list, warnings: list[str]) -> dict[str, np.ndarray]:
    """:func:`_record_columns` of the records that carry a timestamp; says what was dropped or odd."""
    cols = _record_columns(records)
    has_ts = ~np.isnan(cols["ts"])
    if (~has_ts).any():
        warnings.append(f"{int((~has_ts).sum())} record(s) without a timestamp dropped")
        cols = {k: v[has_ts] for k, v in cols.items()}
    ts = cols["ts"]
    if len(ts) and ts.min() < FIT_RELATIVE_TIME_MAX:
        warnings.append("device clock was not set: times are relative to power-on (shown as 1990 dates)")
    return cols


def _session_of(session_starts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the session each time belongs to: the latest session started at or before it; times
    before every session belong to the first, so no record or lap is lost (FIT times, s)."""
    if not len(times):
        return np.array([], dtype=int)
    order = np.argsort(session_starts, kind="stable")
    return order[np.clip(np.searchsorted(session_starts[order], times, side="right") - 1, 0, None)]


def _session_frames(index: int, sess: dict, cols: dict[str, np.ndarray], laps: list[dict], ctx: ReadContext,
                    device: str | None) -> _SessionFrames:
    """The rows of session ``index``, given the record columns and laps assigned to it."""
    sport_num, sub_num = sess.get(SESSION_SPORT), sess.get(SESSION_SUB_SPORT)
    sport = _enum_name("sport", sport_num) or UNKNOWN_SPORT
    start_fit = sess[SESSION_START_TIME]
    start = pd.Timestamp(_unix_s(start_fit), unit="s", tz="UTC")
    activity_id = activity_id_for(ctx.athlete_id, start, index)
    activity = {
        "activity_id": activity_id, "athlete_id": ctx.athlete_id, "file_id": ctx.file_id,
        "sport": sport, "sub_sport": _enum_name("sub_sport", sub_num), "start_time": start,
        **_session_totals(sess, cols, start_fit),
        "device": device, "name": ctx.name_override, "source_format": "fit",
        "session_index": index, "n_samples": len(cols["ts"]),
    }
    return _SessionFrames(
        activity=activity,
        samples=_samples_frame(cols, sport, activity_id, ctx.athlete_id, start_fit),
        laps=_lap_rows(activity_id, laps),
        is_strength=sport_num == SPORT_TRAINING and sub_num == SUB_SPORT_STRENGTH_TRAINING,
    )


def _session_totals(sess: dict, cols: dict[str, np.ndarray], start_fit: float) -> dict[str, float | None]:
    """Elapsed and timer time (s), distance (m) and average HR (bpm) of a session: the session message's
    values, else (elapsed, distance, HR) what its records show."""
    ts, distance, hr = cols["ts"], cols["distance"], cols["heart_rate"]
    elapsed = sess.get(SESSION_TOTAL_ELAPSED_TIME)
    return {
        "elapsed_s": elapsed / 1000.0 if elapsed is not None else (float(ts[-1] - start_fit) if len(ts) else 0.0),
        "timer_s": sess[SESSION_TOTAL_TIMER_TIME] / 1000.0 if SESSION_TOTAL_TIMER_TIME in sess else None,
        "distance_m": (sess[SESSION_TOTAL_DISTANCE] / 100.0 if SESSION_TOTAL_DISTANCE in sess
                       else _stat_or_none(np.nanmax, distance)),
        "avg_heart_rate_bpm": (float(sess[SESSION_AVG_HEART_RATE]) if SESSION_AVG_HEART_RATE in sess
                               else _stat_or_none(np.nanmean, hr)),
    }


def _stat_or_none(stat, values: np.ndarray) -> float | None:
    """``stat`` (a NaN-ignoring reduction) of ``values``, or None when no value is present."""
    return float(stat(values)) if (~np.isnan(values)).any() else None


def _samples_frame(cols: dict[str, np.ndarray], sport: str, activity_id: str, athlete_id: str,
                   start_fit: float) -> Columns:
    """A session's records as ``samples`` columns (``enhanced_*`` speed/altitude preferred)."""
    n = len(cols["ts"])
    cadence = cols["cadence"]
    if sport == "running":  # running cadence is strides/min (+ 1/128 fractions): steps/min is twice that
        cadence = (cadence + np.nan_to_num(cols["fractional_cadence"])) * 2.0
    return Columns.build(
        n,
        activity_id=np.full(n, activity_id, dtype=object),
        athlete_id=np.full(n, athlete_id, dtype=object),
        ts=_utc_datetimes(cols["ts"] + FIT_EPOCH_S),
        elapsed_s=cols["ts"] - start_fit,
        lat_deg=cols["lat"], lon_deg=cols["lon"],
        altitude_m=_enhanced_or_plain(cols, "altitude"),
        distance_m=cols["distance"], speed_m_s=_enhanced_or_plain(cols, "speed"),
        heart_rate_bpm=cols["heart_rate"], cadence_spm=cadence,
        power_w=cols["power"], temperature_c=cols["temperature"],
    )


def _utc_datetimes(unix_s: np.ndarray) -> np.ndarray:
    """Unix seconds as datetime64[us] (UTC): whole seconds (every FIT timestamp) exactly, by integer
    arithmetic; anything else as pandas converts it (``to_datetime(unit="s")``, ~0.1 ms a call)."""
    whole = unix_s.astype(np.int64)
    if np.array_equal(whole, unix_s):
        return (whole * 1_000_000).view("datetime64[us]")
    return pd.to_datetime(unix_s, unit="s", utc=True).tz_convert(None).as_unit("us").to_numpy()


def _enhanced_or_plain(cols: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The ``enhanced_<name>`` column where present, else the plain ``<name>`` field."""
    enhanced = cols[f"enhanced_{name}"]
    return np.where(np.isnan(enhanced), cols[name], enhanced)


def _parsed_file(data: bytes, ctx: ReadContext, warnings: list[str], sessions: list[_SessionFrames]
                 ) -> ParsedFile:
    """The :class:`ParsedFile` of all sessions, with the strength sets when a session is strength training."""
    parsed = ctx.parsed("fit", len(data), warnings=warnings)
    parsed.activities = Rows("activities", [s.activity for s in sessions])
    if sessions:
        parsed.samples = Columns.concat([s.samples for s in sessions])
    parsed.laps = Rows("laps", [lap for s in sessions for lap in s.laps])
    if any(s.is_strength for s in sessions):
        _add_fit_strength(data, ctx, parsed)
    n = len(sessions)
    parsed.message = (f"{n} activit{'y' if n == 1 else 'ies'} "
                      f"({', '.join(str(s.activity['sport']) for s in sessions)}), {parsed.n_rows('samples')} samples")
    return parsed


# The fallback's records: one synthetic definition, values in the decoder's raw units (NaN = absent).
_FALLBACK_FIELDS = tuple(_RECORD_FIELDS)
_FALLBACK_RECORD_DEF = MessageDefinition(
    global_num=MESG_RECORD, size_bytes=0, unpacker=None, field_nums=_FALLBACK_FIELDS,  # type: ignore[arg-type]
    invalid=(None,) * len(_FALLBACK_FIELDS), kinds=("n",) * len(_FALLBACK_FIELDS))
_FIT_NAMES = {
    RECORD_POSITION_LAT: "position_lat", RECORD_POSITION_LONG: "position_long", RECORD_ALTITUDE: "altitude",
    RECORD_ENHANCED_ALTITUDE: "enhanced_altitude", RECORD_HEART_RATE: "heart_rate", RECORD_CADENCE: "cadence",
    RECORD_FRACTIONAL_CADENCE: "fractional_cadence", RECORD_DISTANCE: "distance", RECORD_SPEED: "speed",
    RECORD_ENHANCED_SPEED: "enhanced_speed", RECORD_POWER: "power", RECORD_TEMPERATURE: "temperature",
}


def decode_with_fitparse(data: bytes) -> tuple[DecodedFit | None, str | None]:
    """Read a FIT file with fitparse into the decoder's :class:`DecodedFit` shape (the fallback).

    Records carry fitparse's values converted back to the decoder's raw units (``raw = (value + offset)
    * scale``; positions stay semicircles), so :func:`_record_columns` treats both alike; fitparse's
    expanded components (compressed speed/distance, ``enhanced_*``) come along. Other kept messages are
    the fields the file wrote, as raw numbers or strings, keyed by field number, like the decoder's.
    Returns ``(None, reason)`` when fitparse cannot read the file either.
    """
    result = DecodedFit()
    try:
        for message in FitFile(io.BytesIO(data), check_crc=True).get_messages():
            num = message.mesg_num
            if num == MESG_RECORD:
                result.records.append(_fallback_record(message))
            elif num in _KEEP:
                result.messages.setdefault(num, []).append(_fallback_message(message))
    except Exception as e:  # noqa: BLE001 - fitparse raises assorted errors on broken files
        return None, fitparse_refusal(e)
    result.n_parts = 1
    return result, None


# fitparse's exception types in plain words (its own texts name its internals: "Got data message with
# invalid local message type", "'>=' not supported between instances of 'tuple' and 'int'"...).
_FITPARSE_REASONS = ((FitparseCRCError, "its CRC does not match: the file is corrupt"),
                     (FitEOFError, "the file ends early: it is truncated"),
                     (FitHeaderError, "the header is not a FIT header"),
                     (FitParseError, "the file is structurally damaged"))


def fitparse_refusal(error: Exception) -> str:
    """Why fitparse could not read a file, in words for the file's message."""
    return next((words for kind, words in _FITPARSE_REASONS if isinstance(error, kind)),
                "it stops on the damaged data too")


def _fallback_record(message) -> tuple[MessageDefinition, int | None, tuple]:
    """A fitparse ``record`` as the decoder's record tuple (values in raw units, NaN = absent)."""
    values = []
    for field_num in _FALLBACK_FIELDS:
        value = message.get_value(_FIT_NAMES[field_num])
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            values.append(math.nan)
        elif field_num in (RECORD_POSITION_LAT, RECORD_POSITION_LONG):  # semicircles: no scale in fitparse
            values.append(float(value))
        else:
            _, scale, offset = _RECORD_FIELDS[field_num]
            values.append((value + offset) * scale)
    return _FALLBACK_RECORD_DEF, message.get_raw_value("timestamp"), tuple(values)


def _fallback_message(message) -> dict[int, object]:
    """A fitparse message as the decoder's dict: the file's own fields (no expanded components), raw."""
    msg: dict[int, object] = {}
    for f in message.fields:
        if type(f.field_def) is FieldDefinition and isinstance(f.raw_value, (int, float, str)):
            msg[f.def_num] = f.raw_value
    ts = message.get_raw_value("timestamp")
    if ts is not None:
        msg[FIELD_TIMESTAMP] = ts
    return msg


def _sessions_or_synthetic(sessions: list[dict], ts: np.ndarray, sport_msgs: list[dict]) -> list[dict]:
    """Sessions with a start time; a file without any gets one session spanning its records."""
    out = []
    for sess in sessions:
        sess = dict(sess)
        if SESSION_START_TIME not in sess:
            if len(ts) == 0 and FIELD_TIMESTAMP not in sess:
                continue
            sess[SESSION_START_TIME] = float(ts.min()) if len(ts) else sess[FIELD_TIMESTAMP]
        out.append(sess)
    if not out:
        if len(ts) == 0:
            raise NothingToIngest("FIT file holds no timed records")
        out.append(_synthetic_session(ts, sport_msgs))
    return out


def _synthetic_session(ts: np.ndarray, sport_msgs: list[dict]) -> dict:
    """A session spanning the records, with the sport of the file's first ``sport`` message if any."""
    synthetic = {SESSION_START_TIME: float(ts.min()),
                 SESSION_TOTAL_ELAPSED_TIME: (float(ts.max()) - float(ts.min())) * 1000.0}
    if sport_msgs:
        for sport_field, session_field in ((SPORT_SPORT, SESSION_SPORT), (SPORT_SUB_SPORT, SESSION_SUB_SPORT)):
            if sport_field in sport_msgs[0]:
                synthetic[session_field] = sport_msgs[0][sport_field]
    return synthetic


def _lap_rows(activity_id: str, laps: list[dict]) -> list[dict]:
    """``laps`` rows of one session (start as a UTC timestamp, NaT when the lap has none)."""
    rows = []
    for i, lap in enumerate(laps):
        start = lap.get(LAP_START_TIME, lap.get(FIELD_TIMESTAMP))
        speed = lap.get(LAP_ENHANCED_AVG_SPEED, lap.get(LAP_AVG_SPEED))
        rows.append({
            "activity_id": activity_id, "lap_index": i,
            "start_time": pd.Timestamp(_unix_s(start), unit="s", tz="UTC") if start is not None else pd.NaT,
            "elapsed_s": lap[LAP_TOTAL_ELAPSED_TIME] / 1000.0 if LAP_TOTAL_ELAPSED_TIME in lap else None,
            "timer_s": lap[LAP_TOTAL_TIMER_TIME] / 1000.0 if LAP_TOTAL_TIMER_TIME in lap else None,
            "distance_m": lap[LAP_TOTAL_DISTANCE] / 100.0 if LAP_TOTAL_DISTANCE in lap else None,
            "avg_heart_rate_bpm": float(lap[LAP_AVG_HEART_RATE]) if LAP_AVG_HEART_RATE in lap else None,
            "avg_speed_m_s": speed / 1000.0 if speed is not None else None,
        })
    return rows


def _add_fit_strength(data: bytes, ctx: ReadContext, parsed: ParsedFile) -> None:
    """Strength sessions/sets of a FIT file with training/strength_training sessions.

    fitparse decodes these (small) files fully, because the strength engineer's
    ``strength_from_fit`` takes fitparse ``get_values()`` dicts of ``session`` and ``set`` messages.
    """
    try:
        fit = FitFile(io.BytesIO(data), check_crc=False)
        session_values, set_values = [], []
        for message in fit.get_messages(["session", "set"]):
            values = message.get_values()
            if message.name == "set":
                set_values.append(values)
            elif values.get("sport") == "training" and values.get("sub_sport") == "strength_training":
                session_values.append(values)
    except FitParseError as e:
        parsed.warnings.append(f"strength sets not read: {e}")
        return
    sessions, sets = strength_from_fit(session_values, set_values, athlete_id=ctx.athlete_id,
                                       file_id=ctx.file_id)
    parsed.strength_sessions = sessions
    parsed.strength_sets = sets

"""FIT reader: bytes of a .fit file -> :class:`ParsedFile` (activities, samples, laps, strength).

Each ``session`` message becomes one activity (a multisport file gives several); records are assigned
to the session whose start time is the latest at or before them, so no record is lost. Files without
session messages get one activity spanning their records. Units follow the FIT profile's scale/offset
and are converted once here (positions semicircles -> degrees; ``enhanced_*`` speed/altitude preferred;
running cadence strides/min -> steps/min including ``fractional_cadence``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from fitparse import profile as fit_profile

from pipeline.ingest.common import (
    UNKNOWN_SPORT, NothingToIngest, ReadContext, ReadError, activity_id_for, typed_frame,
)
from pipeline.ingest.fit_decode import (
    FIELD_TIMESTAMP, FIT_EPOCH_S, FIT_RELATIVE_TIME_MAX, MESG_DEVICE_INFO, MESG_FILE_ID, MESG_LAP, MESG_RECORD,
    MESG_SESSION, MESG_SET, MESG_SPORT, DecodedFit, FitCRCError, FitDecodeError, MessageDefinition, decode_fit,
)
from pipeline.ingest.parsed import ParsedFile
from pipeline.ingest.fit_strength import strength_from_fit

_KEEP = frozenset({MESG_FILE_ID, MESG_SESSION, MESG_LAP, MESG_DEVICE_INFO, MESG_SPORT, MESG_SET})
_SEMICIRCLES_PER_DEG = 2**31 / 180.0  # value_deg = raw / this
_SPORT_TRAINING, _SUB_SPORT_STRENGTH = 10, 20
_FILE_TYPE_ACTIVITY = 4
_GARMIN_LIKE_MANUFACTURERS = {1, 13, 15}  # garmin, dynastream_oem, dynastream: garmin_product names

# record field number -> (column, scale, offset): value = raw / scale - offset
_RECORD_FIELDS = {
    0: ("lat", _SEMICIRCLES_PER_DEG, 0.0), 1: ("lon", _SEMICIRCLES_PER_DEG, 0.0),
    2: ("altitude", 5.0, 500.0), 78: ("enhanced_altitude", 5.0, 500.0),
    3: ("heart_rate", 1.0, 0.0), 4: ("cadence", 1.0, 0.0), 53: ("fractional_cadence", 128.0, 0.0),
    5: ("distance", 100.0, 0.0), 6: ("speed", 1000.0, 0.0), 73: ("enhanced_speed", 1000.0, 0.0),
    7: ("power", 1.0, 0.0), 13: ("temperature", 1.0, 0.0),
}
_FIELD_COMPRESSED_SPEED_DISTANCE = 8


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
    by_def: dict[int, tuple] = {}
    for i, (defn, _, _) in enumerate(records):
        entry = by_def.get(id(defn))
        if entry is None:
            entry = by_def[id(defn)] = (defn, [])
        entry[1].append(i)
    csd_raw = np.full(n, -1, dtype=np.int64)  # compressed_speed_distance, -1 = absent
    for defn, rows in by_def.values():
        idx = np.asarray(rows)
        for j, (num, kind, inv) in enumerate(zip(defn.field_nums, defn.kinds, defn.invalid)):
            if num in _RECORD_FIELDS and kind == "n":
                name, scale, offset = _RECORD_FIELDS[num]
                raw = np.fromiter((records[i][2][j] for i in rows), dtype=float, count=len(rows))
                if inv is not None:
                    raw[raw == inv] = np.nan
                cols[name][idx] = raw / scale - offset
            elif num == _FIELD_COMPRESSED_SPEED_DISTANCE and kind == "b":
                for i in rows:
                    b = records[i][2][j]
                    if len(b) == 3 and b != b"\xff\xff\xff":
                        csd_raw[i] = b[0] | (b[1] << 8) | (b[2] << 16)
    if (csd_raw >= 0).any():
        _expand_compressed_speed_distance(csd_raw, cols)
    return cols


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
    manufacturer = file_id.get(1)
    product = file_id.get(2)
    if manufacturer is None:
        return None
    name = _enum_name("manufacturer", manufacturer)
    if product is None:
        return name
    if manufacturer in _GARMIN_LIKE_MANUFACTURERS:
        return f"{name}/{_enum_name('garmin_product', product)}"
    return f"{name}/{product}"


def read_fit(data: bytes, ctx: ReadContext) -> ParsedFile:
    """Parse a FIT file's bytes into activities (one per session), samples, laps and strength rows.

    Raises:
        ReadError: not a FIT file, a CRC mismatch (corrupt), truncated, or structurally damaged (message
            says where), and fitparse cannot read it either (a decoder refusal falls back to fitparse once).
        NothingToIngest: a valid FIT file that is not an activity (settings, monitoring, workout...).
    """
    warnings: list[str] = []
    try:
        decoded = decode_fit(data, _KEEP)
    except FitCRCError as e:  # corrupt: fitparse refuses it too
        raise ReadError(str(e)) from e
    except FitDecodeError as e:
        # Strictness policy: the fast decoder's refusal is checked once with fitparse (the reference);
        # if fitparse reads the file, its reading is used and the message says so.
        decoded, fitparse_error = decode_with_fitparse(data)
        if decoded is None:
            raise ReadError(f"FIT: {e}; fitparse cannot read it either ({fitparse_error})") from e
        warnings.append(f"read with fitparse: the fast decoder stopped ({e})")
    msgs = decoded.messages
    file_ids = msgs.get(MESG_FILE_ID, [])
    file_type = file_ids[0].get(0) if file_ids else None
    sessions = msgs.get(MESG_SESSION, [])
    if file_type is not None and file_type != _FILE_TYPE_ACTIVITY and not sessions:
        raise NothingToIngest(f"not an activity file (FIT file type '{_enum_name('file', file_type)}')")
    if not sessions and not decoded.records:
        raise NothingToIngest("FIT file holds no sessions and no records")

    cols = _record_columns(decoded.records)
    has_ts = ~np.isnan(cols["ts"])
    if (~has_ts).any():
        warnings.append(f"{int((~has_ts).sum())} record(s) without a timestamp dropped")
        cols = {k: v[has_ts] for k, v in cols.items()}
    ts = cols["ts"]
    if len(ts) and ts.min() < FIT_RELATIVE_TIME_MAX:
        warnings.append("device clock was not set: times are relative to power-on (shown as 1990 dates)")

    device = _device_name(file_ids[0]) if file_ids else None
    sessions = _sessions_or_synthetic(sessions, ts, msgs.get(MESG_SPORT, []))
    starts = np.array([s[2] for s in sessions], dtype=float)
    # A record belongs to the latest session started at or before it; earlier ones to the first.
    order = np.argsort(starts, kind="stable")
    owner_sorted = np.clip(np.searchsorted(starts[order], ts, side="right") - 1, 0, None)
    owner = order[owner_sorted] if len(ts) else np.array([], dtype=int)
    laps = msgs.get(MESG_LAP, [])
    lap_starts = np.array([lap.get(2, lap.get(253, np.nan)) for lap in laps], dtype=float)
    lap_owner = order[np.clip(np.searchsorted(starts[order], lap_starts, side="right") - 1, 0, None)] \
        if len(laps) else np.array([], dtype=int)

    activity_rows, sample_frames, lap_frames, strength_sessions = [], [], [], []
    for index, sess in enumerate(sessions):
        sport_num, sub_num = sess.get(5), sess.get(6)
        sport = _enum_name("sport", sport_num) or UNKNOWN_SPORT
        sub_sport = _enum_name("sub_sport", sub_num)
        mask = owner == index
        start_fit = sess[2]
        start = pd.Timestamp(_unix_s(start_fit), unit="s", tz="UTC")
        activity_id = activity_id_for(ctx.athlete_id, start, index)
        n = int(mask.sum())
        s_ts = ts[mask]
        cadence = cols["cadence"][mask]
        if sport == "running":
            frac = np.nan_to_num(cols["fractional_cadence"][mask])
            cadence = (cadence + frac) * 2.0
        speed = np.where(np.isnan(cols["enhanced_speed"][mask]), cols["speed"][mask],
                         cols["enhanced_speed"][mask])
        altitude = np.where(np.isnan(cols["enhanced_altitude"][mask]), cols["altitude"][mask],
                            cols["enhanced_altitude"][mask])
        sample_frames.append(typed_frame("samples", {
            "activity_id": np.full(n, activity_id, dtype=object),
            "athlete_id": np.full(n, ctx.athlete_id, dtype=object),
            "ts": pd.to_datetime(s_ts + FIT_EPOCH_S, unit="s", utc=True),
            "elapsed_s": s_ts - start_fit,
            "lat_deg": cols["lat"][mask], "lon_deg": cols["lon"][mask], "altitude_m": altitude,
            "distance_m": cols["distance"][mask], "speed_m_s": speed,
            "heart_rate_bpm": cols["heart_rate"][mask], "cadence_spm": cadence,
            "power_w": cols["power"][mask], "temperature_c": cols["temperature"][mask],
        }, n))
        elapsed = sess.get(7)
        hr = cols["heart_rate"][mask]
        activity_rows.append({
            "activity_id": activity_id, "athlete_id": ctx.athlete_id, "file_id": ctx.file_id,
            "sport": sport, "sub_sport": sub_sport, "start_time": start,
            "elapsed_s": elapsed / 1000.0 if elapsed is not None else (float(s_ts[-1] - start_fit) if n else 0.0),
            "timer_s": sess[8] / 1000.0 if 8 in sess else None,
            "distance_m": sess[9] / 100.0 if 9 in sess else (float(np.nanmax(cols["distance"][mask]))
                                                              if n and (~np.isnan(cols["distance"][mask])).any()
                                                              else None),
            "avg_heart_rate_bpm": float(sess[16]) if 16 in sess else (float(np.nanmean(hr))
                                                                       if n and (~np.isnan(hr)).any() else None),
            "device": device, "name": ctx.name_override, "source_format": "fit",
            "session_index": index, "n_samples": n,
        })
        lap_rows = [laps[k] for k in np.flatnonzero(lap_owner == index)]
        if lap_rows:
            lap_frames.append(_lap_frame(activity_id, lap_rows))
        if sport_num == _SPORT_TRAINING and sub_num == _SUB_SPORT_STRENGTH:
            strength_sessions.append(index)

    parsed = ctx.parsed("fit", len(data), warnings=warnings)
    parsed.activities = pd.DataFrame(activity_rows, columns=parsed.activities.columns)
    parsed.activities["start_time"] = pd.to_datetime(parsed.activities["start_time"], utc=True)
    parsed.samples = pd.concat(sample_frames, ignore_index=True) if sample_frames else parsed.samples
    if lap_frames:
        parsed.laps = pd.concat(lap_frames, ignore_index=True)
    if strength_sessions:
        _add_fit_strength(data, ctx, parsed)
    n_samples = len(parsed.samples)
    parsed.message = (f"{len(activity_rows)} activit{'y' if len(activity_rows) == 1 else 'ies'} "
                      f"({', '.join(parsed.activities['sport'].astype(str))}), {n_samples} samples")
    return parsed


# The fallback's records: one synthetic definition, values in the decoder's raw units (NaN = absent).
_FALLBACK_FIELDS = tuple(_RECORD_FIELDS)
_FALLBACK_RECORD_DEF = MessageDefinition(
    global_num=MESG_RECORD, size_bytes=0, unpacker=None, field_nums=_FALLBACK_FIELDS,  # type: ignore[arg-type]
    invalid=(None,) * len(_FALLBACK_FIELDS), kinds=("n",) * len(_FALLBACK_FIELDS))
_FIT_NAMES = {0: "position_lat", 1: "position_long", 2: "altitude", 78: "enhanced_altitude", 3: "heart_rate",
              4: "cadence", 53: "fractional_cadence", 5: "distance", 6: "speed", 73: "enhanced_speed",
              7: "power", 13: "temperature"}


def decode_with_fitparse(data: bytes) -> tuple[DecodedFit | None, str | None]:
    """Read a FIT file with fitparse into the decoder's :class:`DecodedFit` shape (the fallback).

    Records carry fitparse's values converted back to the decoder's raw units (``raw = (value + offset)
    * scale``; positions stay semicircles), so :func:`_record_columns` treats both alike; fitparse's
    expanded components (compressed speed/distance, ``enhanced_*``) come along. Other kept messages are
    the fields the file wrote, as raw numbers or strings, keyed by field number, like the decoder's.
    Returns ``(None, reason)`` when fitparse cannot read the file either.
    """
    import io

    from fitparse import FitFile
    from fitparse.records import FieldDefinition

    result = DecodedFit()
    try:
        for message in FitFile(io.BytesIO(data), check_crc=True).get_messages():
            num = message.mesg_num
            if num == MESG_RECORD:
                ts = message.get_raw_value("timestamp")
                values = []
                for field_num in _FALLBACK_FIELDS:
                    value = message.get_value(_FIT_NAMES[field_num])
                    if not isinstance(value, (int, float)) or isinstance(value, bool):
                        values.append(math.nan)
                    elif field_num in (0, 1):
                        values.append(float(value))
                    else:
                        _, scale, offset = _RECORD_FIELDS[field_num]
                        values.append((value + offset) * scale)
                result.records.append((_FALLBACK_RECORD_DEF, ts, tuple(values)))
            elif num in _KEEP:
                msg: dict[int, object] = {}
                for f in message.fields:
                    if type(f.field_def) is FieldDefinition and isinstance(f.raw_value, (int, float, str)):
                        msg[f.def_num] = f.raw_value
                ts = message.get_raw_value("timestamp")
                if ts is not None:
                    msg[FIELD_TIMESTAMP] = ts
                result.messages.setdefault(num, []).append(msg)
    except Exception as e:  # noqa: BLE001 - fitparse raises assorted errors on broken files
        return None, f"{type(e).__name__}: {e}"
    result.n_parts = 1
    return result, None


def _sessions_or_synthetic(sessions: list[dict], ts: np.ndarray, sport_msgs: list[dict]) -> list[dict]:
    """Sessions with a start time; a file without any gets one session spanning its records."""
    out = []
    for sess in sessions:
        sess = dict(sess)
        if 2 not in sess:
            if len(ts) == 0 and 253 not in sess:
                continue
            sess[2] = float(ts.min()) if len(ts) else sess[253]
        out.append(sess)
    if not out:
        if len(ts) == 0:
            raise NothingToIngest("FIT file holds no timed records")
        synthetic = {2: float(ts.min()), 7: (float(ts.max()) - float(ts.min())) * 1000.0}
        if sport_msgs:
            for key in (0, 1):
                if key in sport_msgs[0]:
                    synthetic[5 + key] = sport_msgs[0][key]
        out.append(synthetic)
    return out


def _lap_frame(activity_id: str, laps: list[dict]) -> pd.DataFrame:
    rows = []
    for i, lap in enumerate(laps):
        start = lap.get(2, lap.get(253))
        speed = lap.get(110, lap.get(13))
        rows.append({
            "activity_id": activity_id, "lap_index": i,
            "start_time": pd.Timestamp(_unix_s(start), unit="s", tz="UTC") if start is not None else pd.NaT,
            "elapsed_s": lap[7] / 1000.0 if 7 in lap else None,
            "timer_s": lap[8] / 1000.0 if 8 in lap else None,
            "distance_m": lap[9] / 100.0 if 9 in lap else None,
            "avg_heart_rate_bpm": float(lap[15]) if 15 in lap else None,
            "avg_speed_m_s": speed / 1000.0 if speed is not None else None,
        })
    frame = pd.DataFrame(rows, columns=typed_frame("laps", {}, 0).columns)
    frame["start_time"] = pd.to_datetime(frame["start_time"], utc=True)
    return frame


def _add_fit_strength(data: bytes, ctx: ReadContext, parsed: ParsedFile) -> None:
    """Strength sessions/sets of a FIT file with training/strength_training sessions.

    fitparse decodes these (small) files fully, because the strength engineer's
    ``strength_from_fit`` takes fitparse ``get_values()`` dicts of ``session`` and ``set`` messages.
    """
    import io

    from fitparse import FitFile
    from fitparse.utils import FitParseError

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

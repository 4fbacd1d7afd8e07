"""A small FIT activity encoder (struct + numpy), verified by reading its output back with fitparse.

Why not fit-tool: it builds a Python object per field per record; for the demo's ~400k records that is
tens of seconds, while packing a numpy structured array is milliseconds (measured: docs/demo.md).

File layout (FIT SDK "Flexible and Interoperable Data Transfer Protocol", v2.0):

* 14-byte header: size 14, protocol 0x20, profile version 21.32, data size, ``.FIT``, header CRC;
* definition messages (header byte ``0x40 | local``; reserved, little-endian, global number, fields),
  then data messages (header byte ``local``), for: file_id, device_info, event (timer start/stop,
  also around auto-pause gaps), record, lap, session, activity;
* file CRC: CRC-16/ARC (poly 0xA001 reflected, init 0), the FIT checksum, over header and data.

Record fields and their FIT scaling: timestamp (s since 1989-12-31 UTC), position_lat/long (semicircles,
deg·2^31/180), distance (cm), enhanced_altitude (m·5 + 500·5), enhanced_speed (mm/s), heart_rate (bpm),
cadence (strides/min) + fractional_cadence (1/128 stride), temperature (°C, sint8). A samples frame whose
``speed_m_s`` is all NaN gets no speed field at all (some watches store none), to exercise fallbacks.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from pipeline.ingest.fit_crc import crc16
from pipeline.ingest.fit_profile import (
    ACTIVITY_EVENT, ACTIVITY_EVENT_TYPE, ACTIVITY_NUM_SESSIONS, ACTIVITY_TOTAL_TIMER_TIME, ACTIVITY_TYPE,
    DEVICE_INFO_DEVICE_INDEX, DEVICE_INFO_MANUFACTURER, DEVICE_INFO_PRODUCT, DEVICE_INFO_PRODUCT_NAME,
    DEVICE_INFO_SERIAL_NUMBER, DEVICE_INFO_SOFTWARE_VERSION, EVENT_EVENT, EVENT_EVENT_TYPE, FIELD_MESSAGE_INDEX,
    FIELD_TIMESTAMP, FILE_ID_MANUFACTURER, FILE_ID_PRODUCT, FILE_ID_PRODUCT_NAME, FILE_ID_SERIAL_NUMBER,
    FILE_ID_TIME_CREATED, FILE_ID_TYPE, FILE_TYPE_ACTIVITY, LAP_AVG_HEART_RATE, LAP_ENHANCED_AVG_SPEED, LAP_EVENT,
    LAP_EVENT_TYPE, LAP_MAX_HEART_RATE, LAP_SPORT, LAP_START_TIME, LAP_TOTAL_DISTANCE, LAP_TOTAL_ELAPSED_TIME,
    LAP_TOTAL_TIMER_TIME, MESG_ACTIVITY, MESG_DEVICE_INFO, MESG_EVENT, MESG_FILE_ID, MESG_LAP, MESG_RECORD,
    MESG_SESSION, RECORD_CADENCE, RECORD_DISTANCE, RECORD_ENHANCED_ALTITUDE, RECORD_ENHANCED_SPEED,
    RECORD_FRACTIONAL_CADENCE, RECORD_HEART_RATE, RECORD_POSITION_LAT, RECORD_POSITION_LONG, RECORD_TEMPERATURE,
    SESSION_AVG_CADENCE, SESSION_AVG_HEART_RATE, SESSION_ENHANCED_AVG_SPEED, SESSION_ENHANCED_MAX_SPEED,
    SESSION_EVENT, SESSION_EVENT_TYPE, SESSION_FIRST_LAP_INDEX, SESSION_MAX_HEART_RATE, SESSION_NUM_LAPS,
    SESSION_SPORT, SESSION_START_POSITION_LAT, SESSION_START_POSITION_LONG, SESSION_START_TIME, SESSION_SUB_SPORT,
    SESSION_TOTAL_ASCENT, SESSION_TOTAL_DESCENT, SESSION_TOTAL_DISTANCE, SESSION_TOTAL_ELAPSED_TIME,
    SESSION_TOTAL_TIMER_TIME, SPORT_RUNNING,
)
from pipeline.ingest.parsed import LAP_COLUMNS

FIT_EPOCH = pd.Timestamp("1989-12-31", tz="UTC")
PROFILE_VERSION = 2132
MANUFACTURER_DEVELOPMENT = 255
PRODUCT_NAME = b"simulated"
SUB_SPORTS = {"generic": 0, "treadmill": 1, "street": 2, "trail": 3, "track": 4, "road": 7}
EVENT_TIMER, EVENT_SESSION, EVENT_LAP, EVENT_ACTIVITY = 0, 8, 9, 26
EVENT_TYPE_START, EVENT_TYPE_STOP, EVENT_TYPE_STOP_ALL = 0, 1, 4
# A gap between samples longer than this many sample intervals is an auto-pause (timer stopped).
PAUSE_GAP_INTERVALS = 2.5
_SEMICIRCLES_PER_DEG = 2**31 / 180.0
# Local message types (the file's own short numbers for its definitions), one per message written.
(_LOCAL_FILE_ID, _LOCAL_DEVICE_INFO, _LOCAL_EVENT, _LOCAL_RECORD, _LOCAL_LAP, _LOCAL_SESSION,
 _LOCAL_ACTIVITY) = range(7)

# base type name -> (FIT base type byte, numpy dtype, invalid value)
_BASE = {
    "enum": (0x00, "u1", 0xFF), "sint8": (0x01, "i1", 0x7F), "uint8": (0x02, "u1", 0xFF),
    "uint16": (0x84, "<u2", 0xFFFF), "sint32": (0x85, "<i4", 0x7FFFFFFF), "uint32": (0x86, "<u4", 0xFFFFFFFF),
    "uint32z": (0x8C, "<u4", 0),
}


class _FitEncoder:
    """Accumulates definition and data messages; ``finish`` adds header and CRC."""

    def __init__(self) -> None:
        self._body = io.BytesIO()
        self._dtypes: dict[int, np.dtype] = {}

    def define(self, local: int, global_num: int, fields: list[tuple[int, str, int]]) -> None:
        """Fields are (field number, base type name, size in bytes; >1 only for strings)."""
        out = [struct.pack("<BBBHB", 0x40 | local, 0, 0, global_num, len(fields))]
        dtype = [("header", "u1")]
        for num, base, size in fields:
            if base == "string":
                out.append(struct.pack("<BBB", num, size, 0x07))
                dtype.append((f"f{num}", f"S{size}"))
            else:
                code, np_type, _ = _BASE[base]
                out.append(struct.pack("<BBB", num, np.dtype(np_type).itemsize, code))
                dtype.append((f"f{num}", np_type))
        self._body.write(b"".join(out))
        self._dtypes[local] = np.dtype(dtype)

    def data(self, local: int, n: int, values: dict[int, object]) -> None:
        """Write ``n`` data messages; each value is a scalar or an array of length ``n`` (already raw)."""
        arr = np.zeros(n, dtype=self._dtypes[local])
        arr["header"] = local
        for num, value in values.items():
            arr[f"f{num}"] = value
        self._body.write(arr.tobytes())

    def finish(self) -> bytes:
        body = self._body.getvalue()
        header = struct.pack("<BBHI4s", 14, 0x20, PROFILE_VERSION, len(body), b".FIT")
        header += struct.pack("<H", crc16(header))
        data = header + body
        return data + struct.pack("<H", crc16(data))


def _raw(values, scale: float, offset: float, base: str) -> np.ndarray:
    """Physical values -> raw integers (round(value·scale + offset·scale)), NaN -> the type's invalid value."""
    _, np_type, invalid = _BASE[base]
    v = np.asarray(values, dtype=float)
    raw = np.round((v + offset) * scale)
    info = np.iinfo(np.dtype(np_type))
    raw = np.where(np.isfinite(raw), np.clip(raw, info.min, info.max - 1 if invalid == info.max else info.max),
                   invalid)
    return raw.astype(np_type)


def _fit_time(ts) -> np.ndarray:
    """UTC timestamps -> FIT seconds since 1989-12-31 (floored to whole seconds)."""
    t = pd.to_datetime(pd.Series(ts), utc=True)
    return ((t - FIT_EPOCH).dt.total_seconds().to_numpy() // 1).astype("<u4")


def auto_laps(samples: pd.DataFrame, lap_distance_m: float = 1000.0, pause_gap_s: float | None = None
              ) -> pd.DataFrame:
    """Auto-laps every ``lap_distance_m`` of recorded distance (one lap when distance is absent).

    Returns a LAP_COLUMNS frame (activity_id empty). Timer time excludes auto-pause gaps.
    """
    ts = pd.to_datetime(samples["ts"], utc=True).reset_index(drop=True)
    dist = samples["distance_m"].to_numpy(dtype=float)
    hr = samples["heart_rate_bpm"].to_numpy(dtype=float)
    secs = (ts - ts.iloc[0]).dt.total_seconds().to_numpy()
    step = np.diff(secs)
    gap = pause_gap_s if pause_gap_s is not None else PAUSE_GAP_INTERVALS * (np.median(step) if len(step) else 1)
    timer_step = np.concatenate([[0.0], np.where(step > gap, 0.0, step)])
    if np.isfinite(dist).all() and dist[-1] > 0:
        lap_of = np.minimum((dist // lap_distance_m).astype(int), int(dist[-1] // lap_distance_m))
        # the last partial lap of less than 100 m joins the one before
        if dist[-1] - (lap_of[-1] * lap_distance_m) < 100.0 and lap_of[-1] > 0:
            lap_of[lap_of == lap_of[-1]] = lap_of[-1] - 1
    else:
        lap_of = np.zeros(len(ts), dtype=int)
    rows = []
    bounds = np.flatnonzero(np.diff(lap_of)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(ts)]])
    for k, (a, b) in enumerate(zip(starts, ends)):
        # a lap runs from its first sample to the first sample of the next lap (or the last sample)
        last = min(b, len(ts) - 1)
        elapsed = secs[last] - secs[a]
        timer = timer_step[a + 1:last + 1].sum()
        d = (dist[last] - dist[a]) if np.isfinite(dist).all() else np.nan
        rows.append({"activity_id": None, "lap_index": k, "start_time": ts.iloc[a], "elapsed_s": elapsed,
                     "timer_s": timer, "distance_m": d, "avg_heart_rate_bpm": float(np.nanmean(hr[a:b])),
                     "avg_speed_m_s": d / timer if timer > 0 else np.nan})
    return pd.DataFrame(rows, columns=LAP_COLUMNS)


def _serial(activity_id: str) -> int:
    return zlib.crc32(str(activity_id).encode()) or 1


def encode_fit_activity(activity_row, samples_df: pd.DataFrame, laps: pd.DataFrame | None = None) -> bytes:
    """The bytes of one FIT activity file holding ``samples_df`` (SAMPLE_COLUMNS) and ``activity_row``.

    ``activity_row`` needs start_time (UTC), sub_sport and activity_id (for a deterministic serial number).
    ``laps`` (LAP_COLUMNS) defaults to 1 km auto-laps. Messages in file order: file_id, device_info,
    timer events, records, laps, session, activity.
    """
    s = samples_df.reset_index(drop=True)
    if s.empty:
        raise ValueError("cannot write a FIT activity without samples")
    laps = auto_laps(s) if laps is None else laps.reset_index(drop=True)
    ts = _fit_time(s["ts"])
    start = int(_fit_time([activity_row["start_time"]])[0])
    end = int(ts[-1])
    timer = float(laps["timer_s"].sum())
    enc = _FitEncoder()
    _write_device(enc, start, _serial(activity_row["activity_id"]))
    _write_timer_events(enc, ts, start, end)
    _write_records(enc, s, ts)
    _write_laps(enc, laps, s, ts)
    _write_session(enc, s, start, end, timer, len(laps), SUB_SPORTS.get(str(activity_row.get("sub_sport")), 0))
    _write_activity(enc, end, timer)
    return enc.finish()


def _write_device(enc: _FitEncoder, start: int, serial: int) -> None:
    """file_id (an activity file) and device_info: a development-manufacturer device named "simulated"."""
    enc.define(_LOCAL_FILE_ID, MESG_FILE_ID, [
        (FILE_ID_TYPE, "enum", 1), (FILE_ID_MANUFACTURER, "uint16", 2), (FILE_ID_PRODUCT, "uint16", 2),
        (FILE_ID_SERIAL_NUMBER, "uint32z", 4), (FILE_ID_TIME_CREATED, "uint32", 4),
        (FILE_ID_PRODUCT_NAME, "string", len(PRODUCT_NAME) + 1)])
    enc.data(_LOCAL_FILE_ID, 1, {
        FILE_ID_TYPE: FILE_TYPE_ACTIVITY, FILE_ID_MANUFACTURER: MANUFACTURER_DEVELOPMENT, FILE_ID_PRODUCT: 0,
        FILE_ID_SERIAL_NUMBER: serial, FILE_ID_TIME_CREATED: start, FILE_ID_PRODUCT_NAME: PRODUCT_NAME})
    enc.define(_LOCAL_DEVICE_INFO, MESG_DEVICE_INFO, [
        (FIELD_TIMESTAMP, "uint32", 4), (DEVICE_INFO_DEVICE_INDEX, "uint8", 1),
        (DEVICE_INFO_MANUFACTURER, "uint16", 2), (DEVICE_INFO_SERIAL_NUMBER, "uint32z", 4),
        (DEVICE_INFO_PRODUCT, "uint16", 2), (DEVICE_INFO_SOFTWARE_VERSION, "uint16", 2),
        (DEVICE_INFO_PRODUCT_NAME, "string", len(PRODUCT_NAME) + 1)])
    enc.data(_LOCAL_DEVICE_INFO, 1, {
        FIELD_TIMESTAMP: start, DEVICE_INFO_DEVICE_INDEX: 0, DEVICE_INFO_MANUFACTURER: MANUFACTURER_DEVELOPMENT,
        DEVICE_INFO_SERIAL_NUMBER: serial, DEVICE_INFO_PRODUCT: 0, DEVICE_INFO_SOFTWARE_VERSION: 100,
        DEVICE_INFO_PRODUCT_NAME: PRODUCT_NAME})


def _write_timer_events(enc: _FitEncoder, ts: np.ndarray, start: int, end: int) -> None:
    """Timer events: start, stop/start around auto-pause gaps (see PAUSE_GAP_INTERVALS), final stop."""
    step = np.diff(ts.astype(float))
    gap = PAUSE_GAP_INTERVALS * (np.median(step) if len(step) else 1.0)
    pauses = np.flatnonzero(step > gap)
    ev_time = [start] + [t for i in pauses for t in (int(ts[i]), int(ts[i + 1]))] + [end]
    ev_type = [EVENT_TYPE_START] + [t for _ in pauses for t in (EVENT_TYPE_STOP_ALL, EVENT_TYPE_START)] + [
        EVENT_TYPE_STOP_ALL]
    enc.define(_LOCAL_EVENT, MESG_EVENT, [(FIELD_TIMESTAMP, "uint32", 4), (EVENT_EVENT, "enum", 1),
                                          (EVENT_EVENT_TYPE, "enum", 1)])
    enc.data(_LOCAL_EVENT, len(ev_time), {FIELD_TIMESTAMP: np.array(ev_time, dtype="<u4"), EVENT_EVENT: EVENT_TIMER,
                                          EVENT_EVENT_TYPE: np.array(ev_type, dtype="u1")})


def _write_records(enc: _FitEncoder, s: pd.DataFrame, ts: np.ndarray) -> None:
    """One record per sample; no speed field at all when the samples carry no speed."""
    has_speed = s["speed_m_s"].notna().any()
    fields = [(FIELD_TIMESTAMP, "uint32", 4), (RECORD_POSITION_LAT, "sint32", 4), (RECORD_POSITION_LONG, "sint32", 4),
              (RECORD_DISTANCE, "uint32", 4), (RECORD_ENHANCED_ALTITUDE, "uint32", 4)]
    fields += [(RECORD_ENHANCED_SPEED, "uint32", 4)] if has_speed else []
    fields += [(RECORD_HEART_RATE, "uint8", 1), (RECORD_CADENCE, "uint8", 1),
               (RECORD_FRACTIONAL_CADENCE, "uint8", 1), (RECORD_TEMPERATURE, "sint8", 1)]
    enc.define(_LOCAL_RECORD, MESG_RECORD, fields)
    strides = _strides_per_min(s)
    whole = np.floor(strides)
    values = {
        FIELD_TIMESTAMP: ts,
        RECORD_POSITION_LAT: _raw(s["lat_deg"], _SEMICIRCLES_PER_DEG, 0.0, "sint32"),
        RECORD_POSITION_LONG: _raw(s["lon_deg"], _SEMICIRCLES_PER_DEG, 0.0, "sint32"),
        RECORD_DISTANCE: _raw(s["distance_m"], 100.0, 0.0, "uint32"),
        RECORD_ENHANCED_ALTITUDE: _raw(s["altitude_m"], 5.0, 500.0, "uint32"),
        RECORD_HEART_RATE: _raw(s["heart_rate_bpm"], 1.0, 0.0, "uint8"),
        RECORD_CADENCE: _raw(whole, 1.0, 0.0, "uint8"),
        RECORD_FRACTIONAL_CADENCE: _raw(strides - whole, 128.0, 0.0, "uint8"),
        RECORD_TEMPERATURE: _raw(s["temperature_c"], 1.0, 0.0, "sint8"),
    }
    if has_speed:
        values[RECORD_ENHANCED_SPEED] = _raw(s["speed_m_s"], 1000.0, 0.0, "uint32")
    enc.data(_LOCAL_RECORD, len(s), values)


def _strides_per_min(s: pd.DataFrame) -> np.ndarray:
    """Running cadence as FIT stores it: strides/min (half the steps/min of ``cadence_spm``)."""
    return s["cadence_spm"].to_numpy(dtype=float) / 2.0


def _write_laps(enc: _FitEncoder, laps: pd.DataFrame, s: pd.DataFrame, ts: np.ndarray) -> None:
    """One lap message per lap row; its max HR from the samples within the lap."""
    enc.define(_LOCAL_LAP, MESG_LAP, [
        (FIELD_MESSAGE_INDEX, "uint16", 2), (FIELD_TIMESTAMP, "uint32", 4), (LAP_EVENT, "enum", 1),
        (LAP_EVENT_TYPE, "enum", 1), (LAP_START_TIME, "uint32", 4), (LAP_TOTAL_ELAPSED_TIME, "uint32", 4),
        (LAP_TOTAL_TIMER_TIME, "uint32", 4), (LAP_TOTAL_DISTANCE, "uint32", 4), (LAP_AVG_HEART_RATE, "uint8", 1),
        (LAP_MAX_HEART_RATE, "uint8", 1), (LAP_SPORT, "enum", 1), (LAP_ENHANCED_AVG_SPEED, "uint32", 4)])
    lap_start = _fit_time(laps["start_time"])
    hr = s["heart_rate_bpm"].to_numpy(dtype=float)
    lap_max = [np.nanmax(hr[(ts >= a) & (ts <= a + e)]) for a, e in zip(lap_start, laps["elapsed_s"])]
    enc.data(_LOCAL_LAP, len(laps), {
        FIELD_MESSAGE_INDEX: np.arange(len(laps), dtype="<u2"),
        FIELD_TIMESTAMP: (lap_start + np.round(laps["elapsed_s"].to_numpy(dtype=float))).astype("<u4"),
        LAP_EVENT: EVENT_LAP, LAP_EVENT_TYPE: EVENT_TYPE_STOP, LAP_START_TIME: lap_start,
        LAP_TOTAL_ELAPSED_TIME: _raw(laps["elapsed_s"], 1000.0, 0.0, "uint32"),
        LAP_TOTAL_TIMER_TIME: _raw(laps["timer_s"], 1000.0, 0.0, "uint32"),
        LAP_TOTAL_DISTANCE: _raw(laps["distance_m"], 100.0, 0.0, "uint32"),
        LAP_AVG_HEART_RATE: _raw(laps["avg_heart_rate_bpm"], 1, 0, "uint8"),
        LAP_MAX_HEART_RATE: _raw(lap_max, 1.0, 0.0, "uint8"), LAP_SPORT: SPORT_RUNNING,
        LAP_ENHANCED_AVG_SPEED: _raw(laps["avg_speed_m_s"], 1000.0, 0.0, "uint32"),
    })


_SESSION_FIELDS = [
    (FIELD_MESSAGE_INDEX, "uint16", 2), (FIELD_TIMESTAMP, "uint32", 4), (SESSION_EVENT, "enum", 1),
    (SESSION_EVENT_TYPE, "enum", 1), (SESSION_START_TIME, "uint32", 4), (SESSION_START_POSITION_LAT, "sint32", 4),
    (SESSION_START_POSITION_LONG, "sint32", 4), (SESSION_SPORT, "enum", 1), (SESSION_SUB_SPORT, "enum", 1),
    (SESSION_TOTAL_ELAPSED_TIME, "uint32", 4), (SESSION_TOTAL_TIMER_TIME, "uint32", 4),
    (SESSION_TOTAL_DISTANCE, "uint32", 4), (SESSION_AVG_HEART_RATE, "uint8", 1),
    (SESSION_MAX_HEART_RATE, "uint8", 1), (SESSION_AVG_CADENCE, "uint8", 1), (SESSION_TOTAL_ASCENT, "uint16", 2),
    (SESSION_TOTAL_DESCENT, "uint16", 2), (SESSION_FIRST_LAP_INDEX, "uint16", 2), (SESSION_NUM_LAPS, "uint16", 2),
    (SESSION_ENHANCED_AVG_SPEED, "uint32", 4), (SESSION_ENHANCED_MAX_SPEED, "uint32", 4),
]


def _write_session(enc: _FitEncoder, s: pd.DataFrame, start: int, end: int, timer: float, n_laps: int,
                   sub_sport: int) -> None:
    """The one running session: totals, averages and maxima of the samples (timer time: the laps' sum)."""
    distance = float(s["distance_m"].iloc[-1]) if s["distance_m"].notna().any() else np.nan
    alt = s["altitude_m"].to_numpy(dtype=float)
    dalt = np.diff(alt[np.isfinite(alt)])
    hr = s["heart_rate_bpm"].to_numpy(dtype=float)
    speed = s["speed_m_s"].to_numpy(dtype=float)
    strides = _strides_per_min(s)
    moving_cad = strides[strides > 0]
    enc.define(_LOCAL_SESSION, MESG_SESSION, _SESSION_FIELDS)
    enc.data(_LOCAL_SESSION, 1, {
        FIELD_MESSAGE_INDEX: 0, FIELD_TIMESTAMP: end, SESSION_EVENT: EVENT_SESSION, SESSION_EVENT_TYPE: EVENT_TYPE_STOP,
        SESSION_START_TIME: start,
        SESSION_START_POSITION_LAT: _raw(s["lat_deg"], _SEMICIRCLES_PER_DEG, 0.0, "sint32")[0],
        SESSION_START_POSITION_LONG: _raw(s["lon_deg"], _SEMICIRCLES_PER_DEG, 0.0, "sint32")[0],
        SESSION_SPORT: SPORT_RUNNING, SESSION_SUB_SPORT: sub_sport,
        SESSION_TOTAL_ELAPSED_TIME: _raw(float(end - start), 1000.0, 0.0, "uint32"),
        SESSION_TOTAL_TIMER_TIME: _raw(timer, 1000.0, 0.0, "uint32"),
        SESSION_TOTAL_DISTANCE: _raw(distance, 100.0, 0.0, "uint32"),
        SESSION_AVG_HEART_RATE: _raw(np.nanmean(hr), 1, 0, "uint8"),
        SESSION_MAX_HEART_RATE: _raw(np.nanmax(hr), 1, 0, "uint8"),
        SESSION_AVG_CADENCE: _raw(moving_cad.mean() if len(moving_cad) else np.nan, 1, 0, "uint8"),
        SESSION_TOTAL_ASCENT: _raw(dalt[dalt > 0].sum(), 1, 0, "uint16"),
        SESSION_TOTAL_DESCENT: _raw(-dalt[dalt < 0].sum(), 1, 0, "uint16"),
        SESSION_FIRST_LAP_INDEX: 0, SESSION_NUM_LAPS: n_laps,
        SESSION_ENHANCED_AVG_SPEED: _raw(distance / timer if timer > 0 else np.nan, 1000.0, 0.0, "uint32"),
        SESSION_ENHANCED_MAX_SPEED: _raw(np.nanmax(speed) if s["speed_m_s"].notna().any() else np.nan,
                                         1000.0, 0.0, "uint32"),
    })


def _write_activity(enc: _FitEncoder, end: int, timer: float) -> None:
    """The closing activity message: one session, its timer time (s)."""
    enc.define(_LOCAL_ACTIVITY, MESG_ACTIVITY, [
        (FIELD_TIMESTAMP, "uint32", 4), (ACTIVITY_TOTAL_TIMER_TIME, "uint32", 4),
        (ACTIVITY_NUM_SESSIONS, "uint16", 2), (ACTIVITY_TYPE, "enum", 1), (ACTIVITY_EVENT, "enum", 1),
        (ACTIVITY_EVENT_TYPE, "enum", 1)])
    enc.data(_LOCAL_ACTIVITY, 1, {
        FIELD_TIMESTAMP: end, ACTIVITY_TOTAL_TIMER_TIME: _raw(timer, 1000.0, 0.0, "uint32"),
        ACTIVITY_NUM_SESSIONS: 1, ACTIVITY_TYPE: 0, ACTIVITY_EVENT: EVENT_ACTIVITY,
        ACTIVITY_EVENT_TYPE: EVENT_TYPE_STOP})


def write_fit_activity(path_or_buffer: str | os.PathLike | BinaryIO, activity_row, samples_df: pd.DataFrame,
                       laps: pd.DataFrame | None = None) -> None:
    """Write one FIT activity file (see :func:`encode_fit_activity`) to a path or a binary buffer."""
    data = encode_fit_activity(activity_row, samples_df, laps)
    if hasattr(path_or_buffer, "write"):
        path_or_buffer.write(data)
    else:
        Path(path_or_buffer).write_bytes(data)

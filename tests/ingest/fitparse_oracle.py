"""fitparse 1.2.0 as the oracle for the fast FIT decoder: per-record values and sessions of a file.

A module of its own so a process pool can run :func:`fitparse_values` (fitparse manages a few thousand
records per second; the parity test spreads the corpus over two processes).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from fitparse import FitFile
from fitparse.utils import FitParseError

# decoder column (pipeline.ingest.fit_reader._record_columns) -> fitparse record field name
RECORD_FIELDS = {
    "lat": "position_lat", "lon": "position_long",
    "altitude": "altitude", "enhanced_altitude": "enhanced_altitude",
    "heart_rate": "heart_rate", "cadence": "cadence", "fractional_cadence": "fractional_cadence",
    "distance": "distance", "speed": "speed", "enhanced_speed": "enhanced_speed",
    "power": "power", "temperature": "temperature",
}
_FIT_EPOCH = dt.datetime(1989, 12, 31, tzinfo=dt.timezone.utc)


def _unix(value) -> float:
    """Unix seconds of a fitparse date_time; a raw number (< 0x10000000: seconds since power-on) as is."""
    if value is None:
        return np.nan
    if isinstance(value, dt.datetime):
        return (value.replace(tzinfo=dt.timezone.utc) - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).total_seconds()
    return float(value)


def fitparse_values(path: str, stride: int = 1) -> dict:
    """Every record (count) and every ``stride``-th record's values as fitparse 1.2.0 reads them.

    Returns ``{"error": str}`` when fitparse refuses the file, else ``{"n_records", "index", "ts",
    <decoder column>: array, "sessions": [...]}``; ``ts`` is the raw FIT timestamp (s since the FIT
    epoch, compressed-timestamp headers included), positions are degrees, NaN = no value.
    """
    try:
        fit = FitFile(path)  # CRC checked
        records, sessions = [], []
        for message in fit.get_messages(["record", "session"]):
            if message.name == "session":
                v = message.get_values()
                sessions.append({"sport": v.get("sport"), "sub_sport": v.get("sub_sport"),
                                 "start_time": _unix(v.get("start_time")),
                                 "timestamp": _unix(v.get("timestamp")),
                                 "total_elapsed_time": v.get("total_elapsed_time")})
            else:
                records.append(message)
    except FitParseError as e:
        return {"error": f"{type(e).__name__}: {e}"}
    index = np.arange(0, len(records), stride)
    out = {"n_records": len(records), "index": index, "sessions": sessions,
           "ts": np.full(len(index), np.nan)}
    for column in RECORD_FIELDS:
        out[column] = np.full(len(index), np.nan)
    for row, i in enumerate(index):
        message = records[i]
        for field in message.fields:
            if field.name == "timestamp" and field.raw_value is not None:
                out["ts"][row] = field.raw_value
        for column, name in RECORD_FIELDS.items():
            value = message.get_value(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[column][row] = value
    for column in ("lat", "lon"):
        out[column] = out[column] * 180.0 / 2**31  # semicircles -> degrees
    return out

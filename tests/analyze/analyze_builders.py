"""Constructed runs with known answers for the analysis tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.formulas import EARTH_RADIUS_M


def make_run(duration_s: float = 3600, dt_s: float = 1.0, speed_m_s=3.0, hr_bpm=None, *, cadence_spm=None,
             altitude_m=None, temperature_c=None, with_speed: bool = True, with_distance: bool = True,
             with_positions: bool = False, activity_id: str = "a1", start: str = "2024-03-01T08:00:00Z",
             ) -> pd.DataFrame:
    """Samples of one run in the canonical columns. ``speed_m_s``/``hr_bpm`` may be scalars, arrays or
    callables of elapsed seconds."""
    t = np.arange(0.0, duration_s, dt_s)

    def val(x, default):
        if x is None:
            return np.full(len(t), default, dtype=float)
        if callable(x):
            return np.asarray(x(t), dtype=float)
        return np.broadcast_to(np.asarray(x, dtype=float), t.shape).copy()

    v = val(speed_m_s, 3.0)
    hr = val(hr_bpm, 150.0)
    dist = np.concatenate([[0.0], np.cumsum(v[1:] * np.diff(t))])
    lat = lon = np.full(len(t), np.nan)
    if with_positions:  # due north along a meridian
        lat = 51.0 + np.degrees(dist / EARTH_RADIUS_M)
        lon = np.full(len(t), -0.1)
    return pd.DataFrame({
        "activity_id": activity_id, "athlete_id": "ath",
        "ts": pd.Timestamp(start) + pd.to_timedelta(t, unit="s"), "elapsed_s": t,
        "lat_deg": lat, "lon_deg": lon, "altitude_m": val(altitude_m, np.nan),
        "distance_m": dist if with_distance else np.nan, "speed_m_s": v if with_speed else np.nan,
        "heart_rate_bpm": hr, "cadence_spm": val(cadence_spm, 170.0), "power_w": np.nan,
        "temperature_c": val(temperature_c, np.nan),
    })


def activity_row(activity_id: str = "a1", start: str = "2024-03-01T08:00:00Z", sport="running",
                 sub_sport="road", elapsed_s=3600.0, distance_m=10000.0) -> dict:
    return {"activity_id": activity_id, "athlete_id": "ath", "sport": sport, "sub_sport": sub_sport,
            "start_time": pd.Timestamp(start), "elapsed_s": elapsed_s, "distance_m": distance_m}

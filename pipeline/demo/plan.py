"""The simulated runner's schedule and each day's conditions: pace, weather, fitness, device (pure, seeded).

Two random streams. ``rng`` draws the schedule exactly as the original simulator did (which runs happen,
their segments, route, start time, the day's standard-normal intercept and weather draws, file format),
so every default profile produces the same athletes as before. ``extra_rng`` (a separate stream) draws
what the variation knobs need: the slow fitness wander, which files lack a temperature, dew points and the
weather archive's error. Knobs that only transform existing draws (autocorrelation of day offsets and of
weather anomalies, the annual climate, saturating fitness, volume) add no draws at all.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from pipeline.demo.physiology import apparent_temperature_c, ornstein_uhlenbeck, relative_humidity_pct
from pipeline.demo.profile import AthleteProfile

DAYS_PER_MONTH = 30.44
DAYS_PER_YEAR = 365.25
CHRONIC_LOAD_TAU_DAYS = 42.0   # Banister's fitness time constant (Banister et al. 1975; ~42 days in TrainingPeaks' CTL)


@dataclass(frozen=True)
class PlannedRun:
    """One run of the schedule: segments of (duration_s, target GAP m/s) and the day's conditions."""

    index: int
    start_time: pd.Timestamp      # UTC
    run_type: str                 # easy, tempo, long
    segments: tuple[tuple[float, float], ...]
    route_index: int
    intercept_bpm: float          # a_day including the day's noise
    day_offset_bpm: float
    trend_bpm: float              # the day's fitness state relative to hr_intercept_bpm (trend, wander, volume)
    gain_fraction: float
    air_temperature_c: float
    source_format: str            # fit or gpx
    has_device_speed: bool
    auto_pause: bool
    # --- variation knobs (defaults: the original model) ---------------------------------------
    dew_point_c: float = float("nan")
    heat_driver_c: float = float("nan")     # what the heat term sees: air or apparent temperature
    season_factor: float = 1.0              # (a + b*GAP) is multiplied by this (non-heat season)
    has_temperature: bool = True            # the file carries the device's temperature
    weather_air_c: float = float("nan")     # the weather archive's air temperature (with its error)
    weather_dew_point_c: float = float("nan")
    device: str = "simulated"
    hr_bias_bpm: float = 0.0
    hr_noise_bpm: float = 0.0
    cadence_lock_prob: float = 0.08
    planned_km: float = 0.0


def smooth_ramp(x: np.ndarray | float, start: float, end: float) -> np.ndarray:
    """0 before ``start``, 1 after ``end``, half-cosine in between (no kinks for the analysis to find)."""
    x = np.asarray(x, dtype=float)
    if end <= start:
        return (x >= start).astype(float)
    u = np.clip((x - start) / (end - start), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def planted_gain_fraction(profile: AthleteProfile, weeks_since_block_start: np.ndarray | float) -> np.ndarray:
    """Economy gain g (fraction, 0.03 = 3 %) on a day, ``weeks_since_block_start`` after the block began."""
    ramp = smooth_ramp(weeks_since_block_start, profile.gain_ramp_start_week, profile.gain_ramp_end_week)
    return profile.planted_gain_pct / 100.0 * ramp


def mean_air_temperature_c(profile: AthleteProfile, weeks_since_start: np.ndarray | float,
                           day_of_year: np.ndarray | float | None = None) -> np.ndarray:
    """Mean air temperature (°C) of the day before weather noise: the profile's ramp ``weeks_since_start``
    into the record, or with ``climate = "annual"`` a cosine of ``day_of_year``."""
    if profile.climate == "annual":
        doy = np.asarray(day_of_year, dtype=float)
        return profile.temp_mean_c + profile.temp_amplitude_c * np.cos(
            2 * np.pi * (doy - profile.temp_peak_doy) / DAYS_PER_YEAR)
    ramp = smooth_ramp(weeks_since_start, profile.temp_rise_start_week, profile.temp_rise_end_week)
    return profile.temp_start_c + (profile.temp_end_c - profile.temp_start_c) * ramp


def season_factor(profile: AthleteProfile, day_of_year: np.ndarray | float) -> np.ndarray:
    """Multiplier of (a + b·GAP) from the non-heat season: 1 + swing/2 at the worst day of the year."""
    half = profile.season_swing_pct / 200.0
    return 1.0 + half * np.cos(2 * np.pi * (np.asarray(day_of_year, dtype=float) - profile.season_worst_doy)
                               / DAYS_PER_YEAR)


def fitness_trend_bpm(profile: AthleteProfile, days_since_start: np.ndarray | float) -> np.ndarray:
    """Intercept change from running itself: linear per month, or saturating towards ``-fitness_total_bpm``."""
    days = np.asarray(days_since_start, dtype=float)
    if profile.fitness_shape == "saturating":
        return -profile.fitness_total_bpm * (1.0 - np.exp(-days / (7.0 * profile.fitness_tau_weeks)))
    return profile.fitness_trend_bpm_per_month * (days / DAYS_PER_MONTH)


def pace_offset_m_s(profile: AthleteProfile, weeks_since_block_start: float) -> float:
    """Speed added to every target pace (m/s): 0 before the block, ``pace_change_m_s`` after a linear ramp."""
    if profile.pace_change_m_s == 0.0 or weeks_since_block_start <= 0:
        return 0.0
    frac = min(1.0, weeks_since_block_start / max(profile.pace_change_ramp_weeks, 1e-9))
    return profile.pace_change_m_s * frac


def local_to_utc(day: dt.date, minutes_after_midnight: float, tz: ZoneInfo) -> pd.Timestamp:
    local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=float(minutes_after_midnight))
    return pd.Timestamp(local.replace(tzinfo=tz, microsecond=0).astimezone(dt.timezone.utc)).tz_convert("UTC")


def _slot_draws(profile: AthleteProfile, rng: np.random.Generator, week: int, kind: str, pace: float) -> dict:
    """One scheduled run's draws after its pace, in the original order (segments, route, start minute,
    day and weather normals, file format, device speed, auto-pause)."""
    if kind == "easy":
        segments = ((rng.uniform(35, 55) * 60, profile.easy_speed_m_s + pace),)
        route = int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2]))
    elif kind == "tempo":
        segments = ((rng.uniform(12, 15) * 60, profile.easy_speed_m_s + pace),
                    (rng.uniform(20, 25) * 60, profile.tempo_speed_m_s + pace),
                    (rng.uniform(8, 12) * 60, profile.easy_speed_m_s + pace))
        route = int(rng.choice([0, 1]))
    else:
        segments = ((rng.uniform(75, 100) * 60 + 15 * week / profile.weeks * 60, profile.long_speed_m_s + pace),)
        route = int(rng.choice([0, 2, 3], p=[0.3, 0.35, 0.35]))
    return {"segments": tuple((float(s), float(v)) for s, v in segments), "route": route}


def _slot_times(profile: AthleteProfile, rng: np.random.Generator, weekday: int) -> dict:
    weekend = weekday >= 5
    minute = rng.uniform(480, 600) if weekend else (
        rng.uniform(390, 480) if rng.random() < 0.5 else rng.uniform(1050, 1140))
    z_day = rng.normal(0.0, 1.0)
    z_temp = rng.normal(0.0, 1.0)
    source_format = "gpx" if rng.random() < profile.gpx_share else "fit"
    has_speed = source_format == "fit" and rng.random() >= profile.no_device_speed_share
    return {"minute": minute, "z_day": z_day, "z_temp": z_temp, "source_format": source_format,
            "has_device_speed": has_speed, "auto_pause": bool(rng.random() < profile.auto_pause_share)}


def plan_slots(profile: AthleteProfile, rng: np.random.Generator, start_date: dt.date,
               block_start: dt.date) -> list[dict]:
    """The weekly schedule: which runs happen and their draws (the original simulator's draw order)."""
    slots = []
    for week in range(profile.weeks):
        for weekday, kind in profile.week_plan:
            if kind == "extra":
                if rng.random() >= profile.extra_easy_prob:
                    continue
                kind = "easy"
            if rng.random() < profile.skip_prob:
                continue
            day = start_date + dt.timedelta(days=7 * week + weekday)
            weeks_since_block = (day - block_start).days / 7.0
            pace = pace_offset_m_s(profile, weeks_since_block) + rng.normal(0.0, profile.pace_day_sd_m_s)
            slot = {"day": day, "week": week, "kind": kind, **_slot_draws(profile, rng, week, kind, pace)}
            slot.update(_slot_times(profile, rng, weekday))
            slots.append(slot)
    return slots


def _ar1(z: np.ndarray, phi: float) -> np.ndarray:
    """Unit-variance AR(1) series from standard normals ``z`` (phi = 0 returns ``z`` itself)."""
    if phi == 0.0 or len(z) == 0:
        return z
    out = np.empty(len(z))
    out[0] = z[0]
    scale = math.sqrt(1.0 - phi * phi)
    for k in range(1, len(z)):
        out[k] = phi * out[k - 1] + scale * z[k]
    return out


def _block_volume(profile: AthleteProfile, slots: list[dict], block_start: dt.date) -> None:
    """Multiply run durations by ``block_volume_factor`` during the block; record each run's planned km."""
    block_end = block_start + dt.timedelta(weeks=profile.block_weeks)
    for s in slots:
        if profile.block_volume_factor != 1.0 and block_start <= s["day"] < block_end:
            s["segments"] = tuple((d * profile.block_volume_factor, v) for d, v in s["segments"])
        s["km"] = sum(d * v for d, v in s["segments"]) / 1000.0


def chronic_load_km_week(days_since_start: np.ndarray, km: np.ndarray, n_days: int) -> np.ndarray:
    """Exponentially weighted running volume (km per week, time constant 42 days) on each run's day,
    counting the runs before that day."""
    daily = np.zeros(n_days + 1)
    np.add.at(daily, np.clip(days_since_start, 0, n_days), km)
    a = math.exp(-1.0 / CHRONIC_LOAD_TAU_DAYS)
    load, level = np.zeros(n_days + 1), 0.0
    for d in range(n_days + 1):
        load[d] = level
        level = a * level + (1 - a) * daily[d]
    return 7.0 * load[np.clip(days_since_start, 0, n_days)]


def _fitness_bpm(profile: AthleteProfile, slots: list[dict], start_date: dt.date, block_start: dt.date,
                 extra_rng: np.random.Generator) -> np.ndarray:
    """Each run's fitness state (bpm): trend, slow wander and the chronic-load response."""
    days = np.array([(s["day"] - start_date).days for s in slots], dtype=int)
    n_days = 7 * profile.weeks + 7
    wander = ornstein_uhlenbeck(extra_rng, n_days + 1, 1.0, profile.fitness_wander_tau_days,
                                profile.fitness_wander_sd_bpm)
    fitness = fitness_trend_bpm(profile, days) + (wander[days] if profile.fitness_wander_sd_bpm > 0 else 0.0)
    if profile.volume_fitness_bpm_per_km_week != 0.0 and len(slots):
        load = chronic_load_km_week(days, np.array([s["km"] for s in slots]), n_days)
        pre = load[np.array([s["day"] < block_start for s in slots])]
        ref = float(np.median(pre[len(pre) // 3:])) if len(pre) >= 3 else float(np.median(load))
        fitness = fitness - profile.volume_fitness_bpm_per_km_week * (load - ref)
    return fitness


def _weather(profile: AthleteProfile, slots: list[dict], start_date: dt.date,
             extra_rng: np.random.Generator) -> list[dict]:
    """Air temperature, dew point, the heat driver and the archive's reading per run."""
    z = _ar1(np.array([s["z_temp"] for s in slots]), profile.temp_day_ar)
    out = []
    for s, zk in zip(slots, z):
        weeks = (s["day"] - start_date).days / 7.0
        doy = s["day"].timetuple().tm_yday
        air = round(float(mean_air_temperature_c(profile, weeks, doy) + profile.temp_day_sd_c * zk), 1)
        dew = air - extra_rng.uniform(*profile.dew_depression_c)
        errors = extra_rng.normal(0.0, profile.weather_error_sd_c, 2)
        driver = apparent_temperature_c(air, dew) if profile.heat_driver == "apparent" else air
        out.append({"air": air, "dew": float(dew), "driver": float(driver),
                    "weather_air": round(air + float(errors[0]), 1), "weather_dew": round(dew + float(errors[1]), 1),
                    "doy": doy})
    return out


def plan_runs(profile: AthleteProfile, rng: np.random.Generator, start_date: dt.date,
              block_start: dt.date, extra_rng: np.random.Generator | None = None) -> list[PlannedRun]:
    """The schedule with each day's pace, temperature, fitness state and device setup."""
    extra_rng = extra_rng if extra_rng is not None else np.random.default_rng(0)
    tz = ZoneInfo(profile.time_zone)
    slots = plan_slots(profile, rng, start_date, block_start)
    _block_volume(profile, slots, block_start)
    fitness = _fitness_bpm(profile, slots, start_date, block_start, extra_rng)
    weather = _weather(profile, slots, start_date, extra_rng)
    day_z = _ar1(np.array([s["z_day"] for s in slots]), profile.day_noise_ar)
    has_temp = extra_rng.random(len(slots)) >= profile.no_temperature_share
    change = (block_start + dt.timedelta(weeks=profile.sensor_change_week)
              if profile.sensor_change_week is not None else None)
    runs = []
    for k, (s, w) in enumerate(zip(slots, weather)):
        after = change is not None and s["day"] >= change
        day_offset = profile.day_noise_sd_bpm * float(day_z[k])
        runs.append(PlannedRun(
            index=k, start_time=local_to_utc(s["day"], s["minute"], tz), run_type=s["kind"],
            segments=s["segments"], route_index=s["route"],
            intercept_bpm=profile.hr_intercept_bpm + float(fitness[k]) + day_offset,
            day_offset_bpm=day_offset, trend_bpm=float(fitness[k]),
            gain_fraction=float(planted_gain_fraction(profile, (s["day"] - block_start).days / 7.0)),
            air_temperature_c=w["air"], source_format=s["source_format"], has_device_speed=s["has_device_speed"],
            auto_pause=s["auto_pause"], dew_point_c=w["dew"], heat_driver_c=w["driver"],
            season_factor=float(season_factor(profile, w["doy"])), has_temperature=bool(has_temp[k]),
            weather_air_c=w["weather_air"], weather_dew_point_c=w["weather_dew"],
            device=profile.device_after if after else profile.device_name,
            hr_bias_bpm=profile.hr_bias_after_bpm if after else 0.0,
            hr_noise_bpm=profile.hr_noise_after_bpm if after else 0.0,
            cadence_lock_prob=profile.cadence_lock_prob_after if after else profile.cadence_lock_prob,
            planned_km=float(s["km"]),
        ))
    return runs


def with_weather_columns(activities: pd.DataFrame, plans: list[PlannedRun]) -> pd.DataFrame:
    """The activity rows plus the weather archive's columns (as the weather stage would add them)."""
    air = np.array([p.weather_air_c for p in plans])
    dew = np.array([p.weather_dew_point_c for p in plans])
    return activities.assign(air_temperature_c=air, dew_point_c=dew,
                             relative_humidity_pct=np.round(relative_humidity_pct(air, dew), 1))


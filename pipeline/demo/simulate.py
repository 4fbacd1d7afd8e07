"""Simulated runners with a known answer: the demo data and the ground truth of the analysis tests.

The model (every constant is a field of :class:`AthleteProfile`, documented there and in docs/demo.md):

* **Plan.** ``weeks`` weeks starting on ``start_date`` (a Monday): easy runs on Tue and Sat (and Wed with
  probability ``extra_easy_prob``), a tempo run on Thu (warm-up, tempo segment, cool-down), a long run on
  Sun; every planned run is skipped with probability ``skip_prob`` (~4 runs/week).
* **Terrain.** Each athlete has four routes (two flat, two hilly; the second hilly one is a trail):
  an elevation profile along distance (sum of sinusoids) and a wandering horizontal path. The runner
  holds a target *grade-adjusted* speed (Minetti 2002), so real speed drops on climbs.
* **Heart rate.** Steady state
  ``HR_ss = (a_day + b·GAP) / (1 + g(day)) + drift·elapsed_h + heat·max(0, T_air − T0) + within-run noise``
  with ``a_day = hr_intercept_bpm + fitness_trend·months + N(0, day_noise_sd)``; HR follows HR_ss with a
  first-order lag ``hr_tau_s``. ``g(day)`` is the planted economy gain (a fraction): economy is defined as
  ``v_ref·60 / HR_at_ref``, so a gain g lowers HR at any fixed GAP by the factor 1/(1+g).
* **Device.** Recording every ``sample_interval_s``; traffic-light stops (speed 0) and, on runs with
  auto-pause, gaps in the timer instead; wandering GPS error (Ornstein-Uhlenbeck, a few metres);
  device speed with slow error (absent from some FIT files); optical-HR cadence lock (HR reads the step
  rate for 1-3 min on some runs); device temperature warmer than air (body heat); values quantised
  exactly as the file format stores them, so the in-memory samples equal what ingest reads back.
* **Strength.** Two sessions a week for ``block_weeks`` weeks from ``block_start_week`` plus a few
  sporadic sessions outside the block, as Strong would log them (warm-up sets, progressive loads).

Randomness: one :class:`numpy.random.SeedSequence` per athlete, spawned into independent streams for the
plan, the routes and each run, so the schedule and the truth do not depend on ``sample_interval_s``.

Matching truth to ingested data: activity ids here are ``<athlete>-run-NNNN``; ingest makes its own ids,
so match truth runs to ingested activities by ``start_time`` (UTC, whole seconds, unique per athlete).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from pipeline.demo.physiology import (
    first_order_response,
    grade_adjusted_speed_m_s,
    ornstein_uhlenbeck,
    speed_for_grade_adjusted_m_s,
)
from pipeline.demo.fit_writer import PAUSE_GAP_INTERVALS
from pipeline.ingest.parsed import (
    ACTIVITY_COLUMNS,
    SAMPLE_COLUMNS,
    STRENGTH_SESSION_COLUMNS,
    STRENGTH_SET_COLUMNS,
)

# A Monday. With block_start_week 26 the block runs 2024-05-06 to late July: the heat athlete's summer
# arrives during it, and ~6 months of pre-block record carry the ITS trend fit and the placebo starts.
DEFAULT_START_DATE = dt.date(2023, 11, 6)
DAYS_PER_MONTH = 30.44
METRES_PER_DEG_LAT = 111_320.0
FIT_SEMICIRCLES_PER_DEG = 2**31 / 180.0
# Runners do not exploit descents fully (braking, footing): real speed is capped at 1.25x the target GAP,
# so on steep descents GAP falls below target (HR follows the GAP actually run, so the model stays exact).
DOWNHILL_SPEED_CAP = 1.25


# --------------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AthleteProfile:
    """All physiological, plan, weather and device parameters of one simulated athlete.

    Heart-rate constants (typical of trained recreational runners):
    ``hr_slope_bpm_per_m_s`` ~20-25 bpm per m/s of flat speed (linear HR-speed relation in the aerobic
    range, e.g. Lambert et al. 1998; Vesterinen et al. 2016); ``hr_tau_s`` ~30-60 s HR on-kinetics;
    ``drift_bpm_per_h`` cardiac drift ~3-6 bpm/h at constant pace in moderate conditions (Coyle &
    González-Alonso 2001); ``heat_bpm_per_c`` ~0.3-0.5 bpm per °C above ~15 °C (Ely et al. 2007 show
    pace loss above ~10-15 °C; HR at fixed pace rises by a few bpm per 10 °C); ``planted_gain_pct``
    ~3 % economy gain after 6-12 weeks of strength work (Balsalobre-Fernández et al. 2016 meta-analysis:
    2-8 %).
    """

    athlete_id: str
    display_name: str
    story: str = ""
    # --- athlete / heart rate -------------------------------------------------------------------
    hr_rest_bpm: float = 50.0
    hr_max_bpm: float = 190.0
    hr_intercept_bpm: float = 76.0          # steady-state HR extrapolated to GAP 0 at the start
    hr_slope_bpm_per_m_s: float = 22.0      # steady-state HR rise per m/s of grade-adjusted speed
    hr_tau_s: float = 45.0                  # first-order HR time constant
    drift_bpm_per_h: float = 4.5            # cardiac drift per hour of elapsed time
    heat_bpm_per_c: float = 0.4             # HR per °C of air temperature above heat_threshold_c
    heat_threshold_c: float = 15.0
    day_noise_sd_bpm: float = 1.7           # day-to-day SD of the intercept (sleep, hydration, ...)
    within_run_noise_sd_bpm: float = 1.2    # slow within-run wander (OU) of HR around the model
    within_run_noise_tau_s: float = 30.0
    fitness_trend_bpm_per_month: float = -0.7   # intercept decline from running itself
    # --- pace --------------------------------------------------------------------------------
    easy_speed_m_s: float = 2.9
    tempo_speed_m_s: float = 3.6
    long_speed_m_s: float = 2.8
    pace_day_sd_m_s: float = 0.12           # day-to-day variation of the chosen pace
    pace_change_m_s: float = 0.0            # added to every target pace after block start
    pace_change_ramp_weeks: float = 2.0     # ...reached linearly over this many weeks
    # --- plan and strength block --------------------------------------------------------------
    # 26 pre-block weeks: the ITS fits the pre-block trend, and the placebo check needs several fake starts
    # with weeks of record before each and their weeks 6-12 response window ending before the real block.
    weeks: int = 40                          # ~9 months: block + response window (weeks 6-12) + 2 weeks
    block_start_week: int = 26               # ~6 months in
    block_weeks: int = 12
    skip_prob: float = 0.12
    extra_easy_prob: float = 0.35
    strength_skip_prob: float = 0.08
    # Wednesdays of these weeks, all >= 5 weeks before the block (no detector bridges them in); the record
    # ends too soon after the block for an equally isolated session after it.
    sporadic_strength_weeks: tuple[int, ...] = (4, 9, 14, 20)
    # --- planted economy effect (fraction of economy gained, reached as a smooth ramp) ---------------
    planted_gain_pct: float = 0.0
    gain_ramp_start_week: float = 3.0        # weeks after block start
    gain_ramp_end_week: float = 8.0
    # --- weather: air temperature rises smoothly from temp_start_c to temp_end_c ---------------------
    temp_start_c: float = 9.0
    temp_end_c: float = 15.0
    temp_rise_start_week: float = 0.0
    temp_rise_end_week: float = 40.0
    temp_day_sd_c: float = 2.5
    # --- device and recording -----------------------------------------------------------------
    time_zone: str = "Europe/London"
    home_lat_deg: float = 51.50
    home_lon_deg: float = -0.12
    gpx_share: float = 0.15                  # runs exported as GPX instead of FIT
    no_device_speed_share: float = 0.10      # FIT files without a speed field
    auto_pause_share: float = 0.5            # runs recorded with auto-pause (stops become timer gaps)
    stops_per_hour: float = 1.5              # traffic lights (Poisson), road routes only
    gps_error_sd_m: float = 3.0
    gps_error_tau_s: float = 90.0
    cadence_lock_prob: float = 0.08
    device_temp_offset_c: tuple[float, float] = (5.0, 8.0)


def _profiles() -> dict[str, AthleteProfile]:
    gain = AthleteProfile(
        athlete_id="demo_gain", display_name="Demo: economy gain",
        story="Strength block twice weekly; running economy improves ~3 % over weeks 3-8 of the block "
              "and stays. Mild weather, unchanged paces.",
        planted_gain_pct=3.0,
        time_zone="Europe/London", home_lat_deg=51.47, home_lon_deg=-0.17,
    )
    heat = AthleteProfile(
        athlete_id="demo_heat", display_name="Demo: summer heat",
        story="Strength block with no effect on economy; summer heat arrives during the block "
              "(~10 °C to ~28 °C), raising HR at the same pace: a naive analysis sees a loss.",
        hr_intercept_bpm=78.0, hr_slope_bpm_per_m_s=23.0, easy_speed_m_s=2.8, tempo_speed_m_s=3.5,
        long_speed_m_s=2.7, temp_start_c=10.0, temp_end_c=28.0, temp_rise_start_week=22.0,
        temp_rise_end_week=36.0, time_zone="Europe/Madrid", home_lat_deg=40.42, home_lon_deg=-3.70,
    )
    faster = AthleteProfile(
        athlete_id="demo_faster", display_name="Demo: faster, not fitter",
        story="Strength block with no effect on economy, but runs get ~0.4 m/s faster after the block "
              "starts: raw pace per heartbeat rises, true economy does not.",
        hr_intercept_bpm=74.0, hr_slope_bpm_per_m_s=21.0, easy_speed_m_s=2.75, tempo_speed_m_s=3.4,
        long_speed_m_s=2.7, pace_change_m_s=0.4, time_zone="America/New_York",
        home_lat_deg=40.78, home_lon_deg=-73.97,
    )
    null = AthleteProfile(
        athlete_id="sim_null", display_name="Null athlete",
        story="Strength block, no effect, constant weather, unchanged paces (false-positive tests).",
        temp_start_c=12.0, temp_end_c=12.0,
    )
    return {"gain": gain, "heat": heat, "faster": faster, "null": null}


PROFILES: dict[str, AthleteProfile] = _profiles()
DEMO_PROFILE_KEYS = ("gain", "heat", "faster")


# --------------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------------

@dataclass
class AthleteTruth:
    """What the simulation knows and the analysis must recover.

    ``truth_runs`` has one row per run: activity_id, start_time (UTC), true_hr_at_ref_bpm (HR of the
    athlete's noise-free model at ``ref_speed_m_s`` on flat ground, elapsed ``ref_elapsed_s``, air
    ``ref_temperature_c``: the day's fitness state), true_economy_m_per_beat (= ref_speed·60/that),
    effect_pct (planted effect that day), air_temperature_c, mean_speed_m_s (moving), plus run_type,
    route, sub_sport, source_format, day_offset_bpm (the day's intercept noise, not in the truth HR).
    """

    athlete_id: str
    profile_key: str
    seed: int
    block_start: dt.date
    block_end: dt.date
    planted_gain_pct: float
    ramp_start_week: float
    ramp_end_week: float
    ref_speed_m_s: float
    ref_elapsed_s: float
    ref_temperature_c: float
    hr_slope_bpm_per_m_s: float
    pace_change_m_s: float
    truth_runs: pd.DataFrame

    def to_json_dict(self) -> dict:
        """Scalar truth for ``.truth/truth.json`` (runs go to ``truth_runs.csv``)."""
        return {
            "athlete_id": self.athlete_id, "profile": self.profile_key, "seed": self.seed,
            "block_start": self.block_start.isoformat(), "block_end": self.block_end.isoformat(),
            "planted_gain_pct": self.planted_gain_pct, "ramp_start_week": self.ramp_start_week,
            "ramp_end_week": self.ramp_end_week, "ref_speed_m_s": self.ref_speed_m_s,
            "ref_elapsed_s": self.ref_elapsed_s, "ref_temperature_c": self.ref_temperature_c,
            "hr_slope_bpm_per_m_s": self.hr_slope_bpm_per_m_s, "pace_change_m_s": self.pace_change_m_s,
            "n_runs": int(len(self.truth_runs)),
            "match_runs_by": "start_time (UTC, whole seconds)",
        }


@dataclass
class RunTrace:
    """Noise-free internals of one run on the simulation grid (only kept with ``keep_traces=True``)."""

    activity_id: str
    elapsed_s: np.ndarray
    moving: np.ndarray           # bool: runner moving (False at stops)
    recorded: np.ndarray         # bool: sample recorded (False during auto-pause)
    speed_m_s: np.ndarray        # true speed
    grade: np.ndarray            # true grade (fraction)
    gap_m_s: np.ndarray          # true grade-adjusted speed
    hr_steady_bpm: np.ndarray    # steady-state target (incl. drift, heat, within-run noise)
    hr_true_bpm: np.ndarray      # lagged physiological HR before device effects
    cadence_lock: np.ndarray     # bool: optical HR locked to cadence


@dataclass
class SimulatedAthlete:
    """One simulated athlete: frames shaped exactly like ingest's output, plus the truth."""

    athlete_id: str
    profile: AthleteProfile
    activities: pd.DataFrame
    samples: pd.DataFrame
    strength_sessions: pd.DataFrame
    strength_sets: pd.DataFrame
    truth: AthleteTruth
    sample_interval_s: float
    traces: dict[str, RunTrace] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Pure model pieces
# --------------------------------------------------------------------------------------------------

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


def mean_air_temperature_c(profile: AthleteProfile, weeks_since_start: np.ndarray | float) -> np.ndarray:
    """Seasonal mean air temperature (°C) ``weeks_since_start`` into the record (before daily noise)."""
    ramp = smooth_ramp(weeks_since_start, profile.temp_rise_start_week, profile.temp_rise_end_week)
    return profile.temp_start_c + (profile.temp_end_c - profile.temp_start_c) * ramp


def pace_offset_m_s(profile: AthleteProfile, weeks_since_block_start: float) -> float:
    """Speed added to every target pace (m/s): 0 before the block, ``pace_change_m_s`` after a linear ramp."""
    if profile.pace_change_m_s == 0.0 or weeks_since_block_start <= 0:
        return 0.0
    frac = min(1.0, weeks_since_block_start / max(profile.pace_change_ramp_weeks, 1e-9))
    return profile.pace_change_m_s * frac


def true_hr_bpm(profile: AthleteProfile, intercept_bpm: float, gap_m_s, gain_fraction: float,
                elapsed_s, air_temperature_c: float):
    """Noise-free steady-state HR (bpm) of the athlete's model at grade-adjusted speed ``gap_m_s``."""
    heat = profile.heat_bpm_per_c * max(0.0, air_temperature_c - profile.heat_threshold_c)
    return ((intercept_bpm + profile.hr_slope_bpm_per_m_s * np.asarray(gap_m_s)) / (1.0 + gain_fraction)
            + profile.drift_bpm_per_h * np.asarray(elapsed_s) / 3600.0 + heat)


def cadence_spm_for_speed(speed_m_s):
    """Step rate (steps/min) of a typical recreational runner: ~168 spm at 2.9 m/s, +11 spm per m/s."""
    return 136.0 + 11.0 * np.asarray(speed_m_s)


# --------------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """A route as arrays along distance (every ``step_m``): path x/y east/north (m) and elevation (m)."""

    name: str
    hilly: bool
    sub_sport: str
    step_m: float
    x_m: np.ndarray
    y_m: np.ndarray
    elevation_m: np.ndarray

    @property
    def length_m(self) -> float:
        return self.step_m * (len(self.x_m) - 1)

    def at(self, distance_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """x, y, elevation and grade at ``distance_m`` (wrapping round the route if run longer)."""
        d = np.mod(distance_m, self.length_m)
        grid = np.arange(len(self.x_m)) * self.step_m
        elev = np.interp(d, grid, self.elevation_m)
        grade_grid = np.gradient(self.elevation_m, self.step_m)
        return (np.interp(d, grid, self.x_m), np.interp(d, grid, self.y_m), elev,
                np.interp(d, grid, grade_grid))


def make_route(rng: np.random.Generator, name: str, hilly: bool, sub_sport: str,
               length_m: float = 32_000.0, step_m: float = 10.0) -> Route:
    """A wandering path with a smooth elevation profile.

    Hilly: sinusoids of 14/6/2 m amplitude and 2.5/1.1/0.5 km wavelength (grades up to ~±8 %);
    flat: 2/1 m over 3/1.2 km (grades < 1 %). Heading drifts as a random walk (0.03 rad per 10 m).
    """
    n = int(length_m / step_m) + 1
    d = np.arange(n) * step_m
    amps, waves = ((14.0, 6.0, 2.0), (2500.0, 1100.0, 500.0)) if hilly else ((2.0, 1.0), (3000.0, 1200.0))
    base = rng.uniform(20.0, 120.0) + (150.0 if hilly else 0.0)
    elev = base + sum(a * np.sin(2 * np.pi * d / w + rng.uniform(0, 2 * np.pi)) for a, w in zip(amps, waves))
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.03, n))
    x = np.concatenate([[0.0], np.cumsum(np.cos(heading[:-1]) * step_m)])
    y = np.concatenate([[0.0], np.cumsum(np.sin(heading[:-1]) * step_m)])
    return Route(name, hilly, sub_sport, step_m, x, y, elev)


def make_routes(rng: np.random.Generator) -> list[Route]:
    """Each athlete's four routes: two flat road, one hilly road, one hilly trail."""
    return [
        make_route(rng, "flat-1", False, "road"),
        make_route(rng, "flat-2", False, "road"),
        make_route(rng, "hilly-road", True, "road"),
        make_route(rng, "hilly-trail", True, "trail"),
    ]


# --------------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------------

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
    trend_bpm: float
    gain_fraction: float
    air_temperature_c: float
    source_format: str            # fit or gpx
    has_device_speed: bool
    auto_pause: bool


def _local_to_utc(day: dt.date, minutes_after_midnight: float, tz: ZoneInfo) -> pd.Timestamp:
    local = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=float(minutes_after_midnight))
    return pd.Timestamp(local.replace(tzinfo=tz, microsecond=0).astimezone(dt.timezone.utc)).tz_convert("UTC")


def plan_runs(profile: AthleteProfile, rng: np.random.Generator, start_date: dt.date,
              block_start: dt.date) -> list[PlannedRun]:
    """The weekly running schedule with each day's pace, temperature, fitness state and device setup."""
    tz = ZoneInfo(profile.time_zone)
    # weekday -> run type; Wednesday is optional
    week_plan = ((1, "easy"), (2, "extra"), (3, "tempo"), (5, "easy"), (6, "long"))
    runs: list[PlannedRun] = []
    for week in range(profile.weeks):
        for weekday, kind in week_plan:
            if kind == "extra":
                if rng.random() >= profile.extra_easy_prob:
                    continue
                kind = "easy"
            if rng.random() < profile.skip_prob:
                continue
            day = start_date + dt.timedelta(days=7 * week + weekday)
            weeks_since_start = (day - start_date).days / 7.0
            weeks_since_block = (day - block_start).days / 7.0
            months = (day - start_date).days / DAYS_PER_MONTH
            pace = pace_offset_m_s(profile, weeks_since_block) + rng.normal(0.0, profile.pace_day_sd_m_s)
            if kind == "easy":
                segments = ((rng.uniform(35, 55) * 60, profile.easy_speed_m_s + pace),)
                route = int(rng.choice([0, 1, 2], p=[0.4, 0.4, 0.2]))
            elif kind == "tempo":
                segments = ((rng.uniform(12, 15) * 60, profile.easy_speed_m_s + pace),
                            (rng.uniform(20, 25) * 60, profile.tempo_speed_m_s + pace),
                            (rng.uniform(8, 12) * 60, profile.easy_speed_m_s + pace))
                route = int(rng.choice([0, 1]))
            else:
                segments = ((rng.uniform(75, 100) * 60 + 15 * week / profile.weeks * 60,
                             profile.long_speed_m_s + pace),)
                route = int(rng.choice([0, 2, 3], p=[0.3, 0.35, 0.35]))
            weekend = weekday >= 5
            minute = rng.uniform(480, 600) if weekend else (
                rng.uniform(390, 480) if rng.random() < 0.5 else rng.uniform(1050, 1140))
            day_offset = rng.normal(0.0, profile.day_noise_sd_bpm)
            trend = profile.fitness_trend_bpm_per_month * months
            temp = float(mean_air_temperature_c(profile, weeks_since_start)
                         + rng.normal(0.0, profile.temp_day_sd_c))
            source_format = "gpx" if rng.random() < profile.gpx_share else "fit"
            runs.append(PlannedRun(
                index=len(runs), start_time=_local_to_utc(day, minute, tz), run_type=kind,
                segments=tuple((float(s), float(v)) for s, v in segments), route_index=route,
                intercept_bpm=profile.hr_intercept_bpm + trend + day_offset, day_offset_bpm=float(day_offset),
                trend_bpm=float(trend), gain_fraction=float(planted_gain_fraction(profile, weeks_since_block)),
                air_temperature_c=round(temp, 1), source_format=source_format,
                has_device_speed=source_format == "fit" and rng.random() >= profile.no_device_speed_share,
                auto_pause=bool(rng.random() < profile.auto_pause_share),
            ))
    return runs


# --------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------

@dataclass
class SimulatedRun:
    """One run's recorded samples (SAMPLE_COLUMNS minus ids), its activity summary values and trace."""

    samples: pd.DataFrame
    elapsed_s: float
    timer_s: float
    distance_m: float
    mean_moving_speed_m_s: float
    trace: RunTrace


def _quantise_fit(frame: pd.DataFrame) -> pd.DataFrame:
    """Round every column to what a FIT record stores (semicircles, 1/5 m, cm, mm/s, bpm, 1/128 stride, °C)."""
    out = frame.copy()
    for col in ("lat_deg", "lon_deg"):
        out[col] = np.round(out[col] * FIT_SEMICIRCLES_PER_DEG) / FIT_SEMICIRCLES_PER_DEG
    out["altitude_m"] = np.round((out["altitude_m"] + 500.0) * 5.0) / 5.0 - 500.0
    out["distance_m"] = np.round(out["distance_m"] * 100.0) / 100.0
    out["speed_m_s"] = np.round(out["speed_m_s"] * 1000.0) / 1000.0
    strides = np.round(out["cadence_spm"] / 2.0 * 128.0) / 128.0
    out["cadence_spm"] = strides * 2.0
    out["heart_rate_bpm"] = np.round(out["heart_rate_bpm"])
    out["temperature_c"] = np.round(out["temperature_c"])
    return out


def _quantise_gpx(frame: pd.DataFrame) -> pd.DataFrame:
    """Round to what the GPX writer stores: 7-decimal degrees, 0.1 m elevation, bpm, strides/min, °C.

    GPX carries no device speed or distance, so those are NaN (ingest derives them itself).
    """
    out = frame.copy()
    out["lat_deg"] = np.round(out["lat_deg"], 7)
    out["lon_deg"] = np.round(out["lon_deg"], 7)
    out["altitude_m"] = np.round(out["altitude_m"], 1)
    out["distance_m"] = np.nan
    out["speed_m_s"] = np.nan
    out["cadence_spm"] = np.round(out["cadence_spm"] / 2.0) * 2.0
    out["heart_rate_bpm"] = np.round(out["heart_rate_bpm"])
    out["temperature_c"] = np.round(out["temperature_c"])
    return out


def simulate_run(profile: AthleteProfile, plan: PlannedRun, route: Route, home_xy_m: tuple[float, float],
                 rng: np.random.Generator, sample_interval_s: float, activity_id: str) -> SimulatedRun:
    """Simulate one run on a grid of ``sample_interval_s``; returns recorded samples and the trace."""
    dt_s = float(sample_interval_s)
    moving_total_s = sum(s for s, _ in plan.segments)
    # Every per-run scalar is drawn first, so the run's events do not depend on the sample interval.
    # Traffic-light stops (road only): Poisson count, 15-75 s each, not in the first 3 minutes.
    n_stops = rng.poisson(profile.stops_per_hour * moving_total_s / 3600.0) if route.sub_sport == "road" else 0
    stop_at = np.sort(rng.uniform(180.0, moving_total_s - 60.0, n_stops))
    stop_len = rng.uniform(15.0, 75.0, n_stops)
    hr0 = profile.hr_rest_bpm + rng.uniform(10.0, 25.0)   # standing around before pressing start
    cadence_offset_spm = rng.normal(0.0, 3.0)
    has_lock = bool(rng.random() < profile.cadence_lock_prob and moving_total_s > 900)
    lock_start_frac, lock_len_s = rng.random(), rng.uniform(60.0, 180.0)
    altitude_offset_m = rng.normal(0.0, 3.0)
    distance_scale = 1.0 + rng.normal(0.0, 0.005)
    body_heat_c = rng.uniform(*profile.device_temp_offset_c)
    device_temp0_c = 21.0 + rng.normal(0.0, 1.0)
    total_s = moving_total_s + stop_len.sum()
    n = int(total_s // dt_s) + 1
    elapsed = np.arange(n) * dt_s
    # Map elapsed time to moving time by walking through the stops.
    moving = np.ones(n, dtype=bool)
    shift = 0.0
    for at, length in zip(stop_at, stop_len):
        begin = at + shift
        moving[(elapsed >= begin) & (elapsed < begin + length)] = False
        shift += length
    moving_time = np.cumsum(moving) * dt_s
    bounds = np.cumsum([s for s, _ in plan.segments])
    targets = np.array([v for _, v in plan.segments])
    target_gap = targets[np.minimum(np.searchsorted(bounds, moving_time, side="right"), len(targets) - 1)]
    target_gap = np.where(moving, target_gap, 0.0)
    # Accelerate/decelerate over a few seconds rather than jumping.
    gap = np.maximum(first_order_response(target_gap, dt_s, 4.0, 0.0), 0.0)
    gap[~moving] = 0.0
    # Runner holds GAP: real speed depends on grade at the current distance (fixed-point iteration).
    speed = gap.copy()
    for _ in range(4):
        distance = np.concatenate([[0.0], np.cumsum(speed[:-1] * dt_s)])
        _, _, _, grade = route.at(distance)
        speed = np.minimum(speed_for_grade_adjusted_m_s(gap, grade), DOWNHILL_SPEED_CAP * gap)
    distance = np.concatenate([[0.0], np.cumsum(speed[:-1] * dt_s)])
    x, y, elevation, grade = route.at(distance)
    gap_true = grade_adjusted_speed_m_s(speed, grade)

    # Heart rate: steady state, lag, within-run wander.
    hr_ss = true_hr_bpm(profile, plan.intercept_bpm, gap_true, plan.gain_fraction, elapsed,
                        plan.air_temperature_c)
    hr_ss = hr_ss + ornstein_uhlenbeck(rng, n, dt_s, profile.within_run_noise_tau_s,
                                       profile.within_run_noise_sd_bpm)
    hr_true = first_order_response(hr_ss, dt_s, profile.hr_tau_s, hr0)

    # Cadence (steps/min): speed-dependent, per-run offset, slow wander; 0 when stopped.
    cadence = cadence_spm_for_speed(speed) + cadence_offset_spm + ornstein_uhlenbeck(rng, n, dt_s, 20.0, 1.5)
    cadence = np.where(moving, cadence, 0.0)
    # Optical HR cadence lock: HR reads the step rate for 1-3 minutes.
    lock = np.zeros(n, dtype=bool)
    if has_lock:
        start = 300.0 + lock_start_frac * (total_s - 600.0)
        lock = (elapsed >= start) & (elapsed < start + lock_len_s) & moving
    hr_device = np.where(lock, cadence + rng.normal(0.0, 1.0, n), hr_true + rng.normal(0.0, 0.5, n))

    # GPS: position error wanders (OU) in east/north metres.
    err_x = ornstein_uhlenbeck(rng, n, dt_s, profile.gps_error_tau_s, profile.gps_error_sd_m)
    err_y = ornstein_uhlenbeck(rng, n, dt_s, profile.gps_error_tau_s, profile.gps_error_sd_m)
    hx, hy = home_xy_m
    lat = profile.home_lat_deg + (y - hy + err_y) / METRES_PER_DEG_LAT
    lon = profile.home_lon_deg + (x - hx + err_x) / (METRES_PER_DEG_LAT * math.cos(math.radians(profile.home_lat_deg)))
    # Barometric altitude: slow offset error of ~2 m.
    altitude = elevation + altitude_offset_m + ornstein_uhlenbeck(rng, n, dt_s, 600.0, 1.0)
    # Device speed and distance: footpod/GPS fusion with slow error; distance slightly mis-scaled.
    device_speed = np.where(moving, np.maximum(speed + ornstein_uhlenbeck(rng, n, dt_s, 10.0, 0.08), 0.0), 0.0)
    device_distance = distance * distance_scale
    # Device temperature: starts at indoor ~21 °C, relaxes (tau 10 min) to air + body-heat offset.
    device_temp = first_order_response(np.full(n, plan.air_temperature_c + body_heat_c), dt_s, 600.0,
                                       device_temp0_c)

    recorded = moving | ~np.bool_(plan.auto_pause)
    frame = pd.DataFrame({
        "elapsed_s": elapsed, "lat_deg": lat, "lon_deg": lon, "altitude_m": altitude,
        "distance_m": device_distance, "speed_m_s": device_speed, "heart_rate_bpm": hr_device,
        "cadence_spm": cadence, "power_w": np.nan, "temperature_c": device_temp,
    })[recorded].reset_index(drop=True)
    frame = _quantise_fit(frame) if plan.source_format == "fit" else _quantise_gpx(frame)
    if not plan.has_device_speed:
        frame["speed_m_s"] = np.nan
    # Timer time as the FIT writer (and a watch) counts it: sample steps, minus auto-pause gaps.
    steps = np.diff(frame["elapsed_s"].to_numpy())
    timer_s = float(steps[steps <= PAUSE_GAP_INTERVALS * dt_s].sum())
    trace = RunTrace(activity_id, elapsed, moving, recorded, speed, grade, gap_true, hr_ss, hr_true, lock)
    # FIT: the last recorded distance (cm), as the session stores it; GPX stores none: the device's value
    # is kept in memory (readers derive theirs from positions, a little longer through GPS wander).
    distance_m = float(frame["distance_m"].iloc[-1]) if plan.source_format == "fit" else float(device_distance[-1])
    return SimulatedRun(frame, float(elapsed[-1]), timer_s, distance_m,
                        float(speed[moving].mean()), trace)


# --------------------------------------------------------------------------------------------------
# Strength
# --------------------------------------------------------------------------------------------------

# (exercise, category, working sets, reps, start kg, end kg, seconds) - loads progress over the block.
STRENGTH_EXERCISES = (
    ("Squat (Barbell)", "lower_body", 3, 6, 50.0, 75.0, 0.0),
    ("Romanian Deadlift (Barbell)", "lower_body", 3, 8, 40.0, 62.5, 0.0),
    ("Bulgarian Split Squat (Dumbbell)", "lower_body", 3, 8, 10.0, 18.0, 0.0),
    ("Standing Calf Raise (Dumbbell)", "lower_body", 3, 12, 12.0, 20.0, 0.0),
    ("Plank", "core", 2, 0, 0.0, 0.0, 60.0),
)


def plan_strength(profile: AthleteProfile, rng: np.random.Generator, start_date: dt.date,
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dt.date, dt.date]:
    """Strength sessions (Mon/Fri in the block, plus sporadic ones at 18:00-19:00 local) as ingest frames.

    Returns sessions, sets, and the block's first and last session dates. Plank sets hold 0 reps, 0 kg and
    60 s, as Strong logs a timed exercise.
    """
    tz = ZoneInfo(profile.time_zone)
    days: list[tuple[dt.date, bool]] = []
    block_first = start_date + dt.timedelta(weeks=profile.block_start_week)
    for week in range(profile.block_start_week, profile.block_start_week + profile.block_weeks):
        for weekday in (0, 4):
            day = start_date + dt.timedelta(days=7 * week + weekday)
            first_or_last = day == block_first or (week == profile.block_start_week + profile.block_weeks - 1
                                                   and weekday == 4)
            if first_or_last or rng.random() >= profile.strength_skip_prob:
                days.append((day, True))
    block_start, block_end = days[0][0], days[-1][0]
    for week in profile.sporadic_strength_weeks:
        if week < profile.weeks:
            days.append((start_date + dt.timedelta(days=7 * week + 2), False))
    days.sort()
    sessions, sets = [], []
    for k, (day, in_block) in enumerate(days):
        progress = ((day - block_start).days / (block_end - block_start).days) if in_block else 0.0
        minute = rng.uniform(1050, 1140)
        local = (dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=float(minute))).replace(microsecond=0)
        start_utc = pd.Timestamp(local.replace(tzinfo=tz).astimezone(dt.timezone.utc)).tz_convert("UTC")
        duration_min = int(rng.integers(40, 61))
        session_id = f"{profile.athlete_id}-strength-{k:04d}"
        title = "Lower body A" if k % 2 == 0 else "Lower body B"
        set_index = 0
        for name, category, n_sets, reps, kg0, kg1, seconds in STRENGTH_EXERCISES:
            kg = round((kg0 + (kg1 - kg0) * progress) / 2.5) * 2.5 if kg0 else 0.0
            order = (["W"] if name.startswith("Squat") else []) + [str(i) for i in range(1, n_sets + 1)]
            for so in order:
                warm = so == "W"
                set_kg = round(kg * 0.5 / 2.5) * 2.5 if warm else kg
                rpe = float(rng.choice([7.0, 7.5, 8.0, 8.5])) if (not warm and rng.random() < 0.6) else np.nan
                sets.append({"session_id": session_id, "set_index": set_index, "exercise": name,
                             "category": category, "set_type": "warmup" if warm else "working",
                             "reps": float(reps), "weight_kg": set_kg,
                             "duration_s": seconds if seconds else np.nan, "rpe": rpe, "distance_m": np.nan})
                set_index += 1
        n_warm = 1
        sessions.append({"session_id": session_id, "athlete_id": profile.athlete_id, "start_time": start_utc,
                         "duration_s": duration_min * 60.0, "title": title, "source_format": "strong_csv",
                         "file_id": None, "n_sets": set_index, "n_working_sets": set_index - n_warm})
    sessions_df = pd.DataFrame(sessions, columns=STRENGTH_SESSION_COLUMNS)
    sets_df = pd.DataFrame(sets, columns=STRENGTH_SET_COLUMNS)
    return sessions_df, sets_df, block_start, block_end


# --------------------------------------------------------------------------------------------------
# Athlete
# --------------------------------------------------------------------------------------------------

REF_SPEED_M_S = 3.0          # truth reference speed (the economy *percent* change does not depend on it)
REF_ELAPSED_S = 1800.0       # truth at 30 min elapsed (cardiac drift fixed)
REF_TEMPERATURE_C = 15.0     # truth at the heat threshold (no heat term)


def simulate_athlete(profile: AthleteProfile | str, seed: int, *, sample_interval_s: float = 1.0,
                     athlete_id: str | None = None, start_date: dt.date = DEFAULT_START_DATE,
                     keep_traces: bool = False) -> SimulatedAthlete:
    """Simulate one athlete's ~9 months (40 weeks) of runs and strength sessions.

    ``profile`` is an :class:`AthleteProfile` or a key of :data:`PROFILES`. ``seed`` fixes every random
    draw; the plan, truth and strength log do not depend on ``sample_interval_s`` (s between recorded
    samples; integer values give whole-second timestamps as FIT stores them). ``start_date`` should be a
    Monday. ``keep_traces`` keeps each run's noise-free internals in ``traces``.
    """
    profile_key = profile if isinstance(profile, str) else next(
        (k for k, p in PROFILES.items() if p == profile), "custom")
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        profile = PROFILES[profile]
    if athlete_id is not None:
        profile = replace(profile, athlete_id=athlete_id)
    aid = profile.athlete_id
    seq = np.random.SeedSequence(seed)
    plan_seq, route_seq, strength_seq, runs_seq = seq.spawn(4)
    routes = make_routes(np.random.default_rng(route_seq))
    sessions, sets, block_start, block_end = plan_strength(profile, np.random.default_rng(strength_seq),
                                                              start_date)
    plans = plan_runs(profile, np.random.default_rng(plan_seq), start_date, block_start)
    run_seqs = runs_seq.spawn(len(plans))

    activities, sample_frames, truth_rows, traces = [], [], [], {}
    for plan, run_seq in zip(plans, run_seqs):
        activity_id = f"{aid}-run-{plan.index:04d}"
        route = routes[plan.route_index]
        run = simulate_run(profile, plan, route, (0.0, 0.0), np.random.default_rng(run_seq),
                           sample_interval_s, activity_id)
        s = run.samples
        s.insert(0, "activity_id", activity_id)
        s.insert(1, "athlete_id", aid)
        s.insert(2, "ts", plan.start_time + pd.to_timedelta(s["elapsed_s"], unit="s"))
        sample_frames.append(s[SAMPLE_COLUMNS])
        activities.append({
            "activity_id": activity_id, "athlete_id": aid, "file_id": None, "sport": "running",
            "sub_sport": route.sub_sport, "start_time": plan.start_time, "elapsed_s": run.elapsed_s,
            "timer_s": run.timer_s, "distance_m": run.distance_m,
            # FIT sessions store a whole-bpm average; GPX has none, so readers average the samples
            "avg_heart_rate_bpm": (float(np.round(s["heart_rate_bpm"].mean())) if plan.source_format == "fit"
                                   else float(s["heart_rate_bpm"].mean())),
            "device": "simulated",
            "name": f"{plan.run_type.capitalize()} run", "source_format": plan.source_format,
            "session_index": 0, "n_samples": len(s),
        })
        hr_ref = float(true_hr_bpm(profile, profile.hr_intercept_bpm + plan.trend_bpm, REF_SPEED_M_S,
                                   plan.gain_fraction, REF_ELAPSED_S, REF_TEMPERATURE_C))
        truth_rows.append({
            "activity_id": activity_id, "start_time": plan.start_time, "true_hr_at_ref_bpm": hr_ref,
            "true_economy_m_per_beat": REF_SPEED_M_S * 60.0 / hr_ref,
            "effect_pct": plan.gain_fraction * 100.0, "air_temperature_c": plan.air_temperature_c,
            "mean_speed_m_s": run.mean_moving_speed_m_s, "run_type": plan.run_type, "route": route.name,
            "sub_sport": route.sub_sport, "source_format": plan.source_format,
            "has_device_speed": plan.has_device_speed, "auto_pause": plan.auto_pause,
            "cadence_lock": bool(run.trace.cadence_lock.any()), "day_offset_bpm": plan.day_offset_bpm,
        })
        if keep_traces:
            traces[activity_id] = run.trace
    activities_df = pd.DataFrame(activities, columns=ACTIVITY_COLUMNS)
    samples_df = pd.concat(sample_frames, ignore_index=True)
    truth = AthleteTruth(
        athlete_id=aid, profile_key=profile_key, seed=seed, block_start=block_start, block_end=block_end,
        planted_gain_pct=profile.planted_gain_pct, ramp_start_week=profile.gain_ramp_start_week,
        ramp_end_week=profile.gain_ramp_end_week, ref_speed_m_s=REF_SPEED_M_S, ref_elapsed_s=REF_ELAPSED_S,
        ref_temperature_c=REF_TEMPERATURE_C, hr_slope_bpm_per_m_s=profile.hr_slope_bpm_per_m_s,
        pace_change_m_s=profile.pace_change_m_s, truth_runs=pd.DataFrame(truth_rows),
    )
    return SimulatedAthlete(aid, profile, activities_df, samples_df, sessions, sets, truth,
                            float(sample_interval_s), traces)


DEMO_SAMPLE_INTERVAL_S = 5.0   # "smart recording"-like fixed interval: small files, fast ingest


def simulate_demo(seed: int = 2024, *, sample_interval_s: float = DEMO_SAMPLE_INTERVAL_S,
                  keep_traces: bool = False) -> list[SimulatedAthlete]:
    """The three demo athletes (gain, heat, faster), each from its own seed derived from ``seed``."""
    return [simulate_athlete(PROFILES[key], seed + k, sample_interval_s=sample_interval_s,
                             keep_traces=keep_traces)
            for k, key in enumerate(DEMO_PROFILE_KEYS)]

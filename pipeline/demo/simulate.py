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

Variation knobs (issue 12's validation matrix, all off by default): HR-speed curvature, autocorrelated
day offsets, saturating and wandering fitness, a non-heat seasonal swing, an annual climate with weather
spells and dew points (heat driven by air or apparent temperature), fitness from running volume and more
volume during the block, files without temperature, weather-archive columns in the activity rows, an HR
sensor change, smart recording every 5-9 s, other weekly plans. See :class:`AthleteProfile` and
:mod:`pipeline.demo.plan`.

Randomness: one :class:`numpy.random.SeedSequence` per athlete, spawned into independent streams for the
plan, the routes, the strength log, each run and the variation knobs, so the schedule and the truth do not
depend on ``sample_interval_s``, and a default profile draws exactly what the original simulator drew.

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

from pipeline.demo.fit_writer import PAUSE_GAP_INTERVALS
from pipeline.demo.physiology import (
    first_order_response,
    grade_adjusted_speed_m_s,
    ornstein_uhlenbeck,
    speed_for_grade_adjusted_m_s,
)
from pipeline.demo.plan import (  # noqa: F401  (re-exported: the simulator's public names)
    PlannedRun,
    mean_air_temperature_c,
    pace_offset_m_s,
    plan_runs,
    planted_gain_fraction,
    smooth_ramp,
    with_weather_columns,
)
from pipeline.demo.profile import DEMO_PROFILE_KEYS, PROFILES, AthleteProfile  # noqa: F401
from pipeline.ingest.parsed import (
    ACTIVITY_COLUMNS,
    SAMPLE_COLUMNS,
    STRENGTH_SESSION_COLUMNS,
    STRENGTH_SET_COLUMNS,
)

# A Monday. With block_start_week 26 the block runs 2024-05-06 to late July: the heat athlete's summer
# arrives during it, and ~6 months of pre-block record carry the ITS trend fit and the placebo starts.
DEFAULT_START_DATE = dt.date(2023, 11, 6)
METRES_PER_DEG_LAT = 111_320.0
FIT_SEMICIRCLES_PER_DEG = 2**31 / 180.0
# Runners do not exploit descents fully (braking, footing): real speed is capped at 1.25x the target GAP,
# so on steep descents GAP falls below target (HR follows the GAP actually run, so the model stays exact).
DOWNHILL_SPEED_CAP = 1.25
# Smart recording: a sample every 5-9 s (Garmin's default "smart" mode records when something changes).
SMART_INTERVAL_S = (5, 9)
CURVATURE_CENTRE_M_S = 3.0


# --------------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------------

@dataclass
class AthleteTruth:
    """What the simulation knows and the analysis must recover.

    ``truth_runs`` has one row per run: activity_id, start_time (UTC), true_hr_at_ref_bpm (HR of the
    athlete's noise-free model at ``ref_speed_m_s`` on flat ground, elapsed ``ref_elapsed_s``, no heat:
    the day's fitness state, season included), true_hr_at_ref_no_gain_bpm (the same without the planted
    gain), true_economy_m_per_beat (= ref_speed·60/true_hr_at_ref_bpm), effect_pct (planted effect that
    day), air_temperature_c, dew_point_c, heat_driver_c, mean_speed_m_s (moving), plus run_type, route,
    sub_sport, source_format, device, has_temperature, day_offset_bpm (the day's intercept noise, not in
    the truth HR).
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

def true_hr_bpm(profile: AthleteProfile, intercept_bpm: float, gap_m_s, gain_fraction: float,
                elapsed_s, heat_driver_c: float, season: float = 1.0):
    """Noise-free steady-state HR (bpm) of the athlete's model at grade-adjusted speed ``gap_m_s``.

    ``heat_driver_c``: air or apparent temperature (``profile.heat_driver``); ``season``: the non-heat
    seasonal factor of the day. Curvature bends the HR-speed relation around 3 m/s.
    """
    heat = profile.heat_bpm_per_c * max(0.0, heat_driver_c - profile.heat_threshold_c)
    gap = np.asarray(gap_m_s)
    base = intercept_bpm + profile.hr_slope_bpm_per_m_s * gap
    if profile.hr_curvature_bpm_per_m_s2:
        base = base + profile.hr_curvature_bpm_per_m_s2 * (gap - CURVATURE_CENTRE_M_S) ** 2
    if season != 1.0:
        base = base * season
    return base / (1.0 + gain_fraction) + profile.drift_bpm_per_h * np.asarray(elapsed_s) / 3600.0 + heat


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
        return (np.interp(d, grid, self.x_m), np.interp(d, grid, self.y_m), elev,
                np.interp(d, grid, self.grade_grid))

    @property
    def grade_grid(self) -> np.ndarray:
        cached = self.__dict__.get("_grade_grid")
        if cached is None:
            cached = np.gradient(self.elevation_m, self.step_m)
            object.__setattr__(self, "_grade_grid", cached)
        return cached


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


def _quantise_fit(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Round every column to what a FIT record stores (semicircles, 1/5 m, cm, mm/s, bpm, 1/128 stride, °C)."""
    out = dict(cols)
    for col in ("lat_deg", "lon_deg"):
        out[col] = np.round(cols[col] * FIT_SEMICIRCLES_PER_DEG) / FIT_SEMICIRCLES_PER_DEG
    out["altitude_m"] = np.round((cols["altitude_m"] + 500.0) * 5.0) / 5.0 - 500.0
    out["distance_m"] = np.round(cols["distance_m"] * 100.0) / 100.0
    out["speed_m_s"] = np.round(cols["speed_m_s"] * 1000.0) / 1000.0
    strides = np.round(cols["cadence_spm"] / 2.0 * 128.0) / 128.0
    out["cadence_spm"] = strides * 2.0
    out["heart_rate_bpm"] = np.round(cols["heart_rate_bpm"])
    out["temperature_c"] = np.round(cols["temperature_c"])
    return out


def _quantise_gpx(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Round to what the GPX writer stores: 7-decimal degrees, 0.1 m elevation, bpm, strides/min, °C.

    GPX carries no device speed or distance, so those are NaN (ingest derives them itself).
    """
    out = dict(cols)
    out["lat_deg"] = np.round(cols["lat_deg"], 7)
    out["lon_deg"] = np.round(cols["lon_deg"], 7)
    out["altitude_m"] = np.round(cols["altitude_m"], 1)
    out["distance_m"] = np.full(len(cols["distance_m"]), np.nan)
    out["speed_m_s"] = np.full(len(cols["speed_m_s"]), np.nan)
    out["cadence_spm"] = np.round(cols["cadence_spm"] / 2.0) * 2.0
    out["heart_rate_bpm"] = np.round(cols["heart_rate_bpm"])
    out["temperature_c"] = np.round(cols["temperature_c"])
    return out


@dataclass(frozen=True)
class _RunDraws:
    """Every per-run scalar, drawn first so the run's events do not depend on the sample interval."""

    stop_at: np.ndarray
    stop_len: np.ndarray
    hr0: float
    cadence_offset_spm: float
    has_lock: bool
    lock_start_frac: float
    lock_len_s: float
    altitude_offset_m: float
    distance_scale: float
    body_heat_c: float
    device_temp0_c: float


def _run_draws(profile: AthleteProfile, plan: PlannedRun, route: Route, rng: np.random.Generator,
               moving_total_s: float) -> _RunDraws:
    # Traffic-light stops (road only): Poisson count, 15-75 s each, not in the first 3 minutes.
    n_stops = rng.poisson(profile.stops_per_hour * moving_total_s / 3600.0) if route.sub_sport == "road" else 0
    stop_at = np.sort(rng.uniform(180.0, moving_total_s - 60.0, n_stops))
    stop_len = rng.uniform(15.0, 75.0, n_stops)
    hr0 = profile.hr_rest_bpm + rng.uniform(10.0, 25.0)   # standing around before pressing start
    cadence_offset_spm = rng.normal(0.0, 3.0)
    has_lock = bool(rng.random() < plan.cadence_lock_prob and moving_total_s > 900)
    lock_start_frac, lock_len_s = rng.random(), rng.uniform(60.0, 180.0)
    altitude_offset_m = rng.normal(0.0, 3.0)
    distance_scale = 1.0 + rng.normal(0.0, 0.005)
    body_heat_c = rng.uniform(*profile.device_temp_offset_c)
    device_temp0_c = 21.0 + rng.normal(0.0, 1.0)
    return _RunDraws(stop_at, stop_len, hr0, cadence_offset_spm, has_lock, lock_start_frac, lock_len_s,
                     altitude_offset_m, distance_scale, body_heat_c, device_temp0_c)


@dataclass(frozen=True)
class _Motion:
    elapsed: np.ndarray
    moving: np.ndarray
    speed: np.ndarray
    distance: np.ndarray
    grade: np.ndarray
    gap: np.ndarray
    x: np.ndarray
    y: np.ndarray
    elevation: np.ndarray


def _run_motion(plan: PlannedRun, route: Route, draws: _RunDraws, dt_s: float) -> _Motion:
    """Where the runner is: stops, target grade-adjusted pace per segment, real speed on the route's grades."""
    moving_total_s = sum(s for s, _ in plan.segments)
    total_s = moving_total_s + draws.stop_len.sum()
    n = int(total_s // dt_s) + 1
    elapsed = np.arange(n) * dt_s
    # Map elapsed time to moving time by walking through the stops.
    moving = np.ones(n, dtype=bool)
    shift = 0.0
    for at, length in zip(draws.stop_at, draws.stop_len):
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
    return _Motion(elapsed, moving, speed, distance, grade, grade_adjusted_speed_m_s(speed, grade), x, y, elevation)


def _run_heart(profile: AthleteProfile, plan: PlannedRun, rng: np.random.Generator, m: _Motion,
               draws: _RunDraws, dt_s: float) -> tuple[np.ndarray, ...]:
    """Steady-state HR, the lagged physiological HR, cadence, cadence-lock mask and what the sensor reads."""
    n = len(m.elapsed)
    hr_ss = true_hr_bpm(profile, plan.intercept_bpm, m.gap, plan.gain_fraction, m.elapsed,
                        plan.heat_driver_c if np.isfinite(plan.heat_driver_c) else plan.air_temperature_c,
                        plan.season_factor)
    hr_ss = hr_ss + ornstein_uhlenbeck(rng, n, dt_s, profile.within_run_noise_tau_s, profile.within_run_noise_sd_bpm)
    hr_true = first_order_response(hr_ss, dt_s, profile.hr_tau_s, draws.hr0)
    # Cadence (steps/min): speed-dependent, per-run offset, slow wander; 0 when stopped.
    cadence = cadence_spm_for_speed(m.speed) + draws.cadence_offset_spm + ornstein_uhlenbeck(rng, n, dt_s, 20.0, 1.5)
    cadence = np.where(m.moving, cadence, 0.0)
    # Optical HR cadence lock: HR reads the step rate for 1-3 minutes.
    lock = np.zeros(n, dtype=bool)
    if draws.has_lock:
        start = 300.0 + draws.lock_start_frac * (_total_s(plan, draws) - 600.0)
        lock = (m.elapsed >= start) & (m.elapsed < start + draws.lock_len_s) & m.moving
    # A sensor reads HR with white noise (0.5 bpm; a new sensor after a change adds bias and noise).
    sd = math.hypot(0.5, plan.hr_noise_bpm)
    hr_device = np.where(lock, cadence + rng.normal(0.0, 1.0, n), hr_true + plan.hr_bias_bpm + rng.normal(0.0, sd, n))
    return hr_ss, hr_true, cadence, lock, hr_device


def _total_s(plan: PlannedRun, draws: _RunDraws) -> float:
    return sum(s for s, _ in plan.segments) + draws.stop_len.sum()


def _recorded_mask(profile: AthleteProfile, plan: PlannedRun, rng: np.random.Generator, moving: np.ndarray,
                   ) -> np.ndarray:
    """Samples the device stores: all but auto-paused ones; with smart recording one every 5-9 s of the
    1-s grid (drawn last, so every other draw of the run is the same as with fixed recording)."""
    recorded = moving | ~np.bool_(plan.auto_pause)
    if profile.recording == "smart":
        lo, hi = SMART_INTERVAL_S
        steps = rng.integers(lo, hi + 1, size=len(moving) // lo + 2)
        idx = np.concatenate([[0], np.cumsum(steps)])
        on_grid = np.zeros(len(moving), dtype=bool)
        on_grid[idx[idx < len(moving)]] = True
        recorded = recorded & on_grid
    return recorded


def simulate_run(profile: AthleteProfile, plan: PlannedRun, route: Route, home_xy_m: tuple[float, float],
                 rng: np.random.Generator, sample_interval_s: float, activity_id: str) -> SimulatedRun:
    """Simulate one run on a grid of ``sample_interval_s`` (1 s with smart recording); returns the recorded
    samples and the trace."""
    dt_s = 1.0 if profile.recording == "smart" else float(sample_interval_s)
    draws = _run_draws(profile, plan, route, rng, sum(s for s, _ in plan.segments))
    m = _run_motion(plan, route, draws, dt_s)
    n = len(m.elapsed)
    hr_ss, hr_true, cadence, lock, hr_device = _run_heart(profile, plan, rng, m, draws, dt_s)
    # GPS: position error wanders (OU) in east/north metres.
    err_x = ornstein_uhlenbeck(rng, n, dt_s, profile.gps_error_tau_s, profile.gps_error_sd_m)
    err_y = ornstein_uhlenbeck(rng, n, dt_s, profile.gps_error_tau_s, profile.gps_error_sd_m)
    hx, hy = home_xy_m
    lat = profile.home_lat_deg + (m.y - hy + err_y) / METRES_PER_DEG_LAT
    lon = profile.home_lon_deg + (m.x - hx + err_x) / (METRES_PER_DEG_LAT * math.cos(math.radians(profile.home_lat_deg)))
    # Barometric altitude: slow offset error of ~2 m.
    altitude = m.elevation + draws.altitude_offset_m + ornstein_uhlenbeck(rng, n, dt_s, 600.0, 1.0)
    # Device speed and distance: footpod/GPS fusion with slow error; distance slightly mis-scaled.
    device_speed = np.where(m.moving, np.maximum(m.speed + ornstein_uhlenbeck(rng, n, dt_s, 10.0, 0.08), 0.0), 0.0)
    device_distance = m.distance * draws.distance_scale
    # Device temperature: starts at indoor ~21 °C, relaxes (tau 10 min) to air + body-heat offset.
    device_temp = first_order_response(np.full(n, plan.air_temperature_c + draws.body_heat_c), dt_s, 600.0,
                                       draws.device_temp0_c)
    recorded = _recorded_mask(profile, plan, rng, m.moving)
    cols = {"elapsed_s": m.elapsed, "lat_deg": lat, "lon_deg": lon, "altitude_m": altitude,
            "distance_m": device_distance, "speed_m_s": device_speed, "heart_rate_bpm": hr_device,
            "cadence_spm": cadence, "power_w": np.full(n, np.nan), "temperature_c": device_temp}
    cols = {k: v[recorded] for k, v in cols.items()}
    cols = _quantise_fit(cols) if plan.source_format == "fit" else _quantise_gpx(cols)
    if not plan.has_device_speed:
        cols["speed_m_s"] = np.full(len(cols["speed_m_s"]), np.nan)
    if not plan.has_temperature:
        cols["temperature_c"] = np.full(len(cols["temperature_c"]), np.nan)
    frame = pd.DataFrame(cols)
    # Timer time as the FIT writer (and a watch) counts it: sample steps, minus auto-pause gaps.
    nominal_s = SMART_INTERVAL_S[1] if profile.recording == "smart" else dt_s
    steps = np.diff(frame["elapsed_s"].to_numpy())
    timer_s = float(steps[steps <= PAUSE_GAP_INTERVALS * nominal_s].sum())
    trace = RunTrace(activity_id, m.elapsed, m.moving, recorded, m.speed, m.grade, m.gap, hr_ss, hr_true, lock)
    # FIT: the last recorded distance (cm), as the session stores it; GPX stores none: the device's value
    # is kept in memory (readers derive theirs from positions, a little longer through GPS wander).
    distance_m = float(frame["distance_m"].iloc[-1]) if plan.source_format == "fit" else float(device_distance[-1])
    return SimulatedRun(frame, float(m.elapsed[-1]), timer_s, distance_m, float(m.speed[m.moving].mean()), trace)

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
REF_TEMPERATURE_C = 15.0     # reported reference; the truth has no heat term (cool air)


def _resolve_profile(profile: AthleteProfile | str, athlete_id: str | None) -> tuple[str, AthleteProfile]:
    profile_key = profile if isinstance(profile, str) else next(
        (k for k, p in PROFILES.items() if p == profile), "custom")
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        profile = PROFILES[profile]
    if athlete_id is not None:
        profile = replace(profile, athlete_id=athlete_id)
    return profile_key, profile


def _activity_row(aid: str, activity_id: str, plan: PlannedRun, route: Route, run: SimulatedRun,
                  s: pd.DataFrame) -> dict:
    return {
        "activity_id": activity_id, "athlete_id": aid, "file_id": None, "sport": "running",
        "sub_sport": route.sub_sport, "start_time": plan.start_time, "elapsed_s": run.elapsed_s,
        "timer_s": run.timer_s, "distance_m": run.distance_m,
        # FIT sessions store a whole-bpm average; GPX has none, so readers average the samples
        "avg_heart_rate_bpm": (float(np.round(s["heart_rate_bpm"].mean())) if plan.source_format == "fit"
                               else float(s["heart_rate_bpm"].mean())),
        "device": plan.device,
        "name": f"{plan.run_type.capitalize()} run", "source_format": plan.source_format,
        "session_index": 0, "n_samples": len(s),
    }


def _truth_row(profile: AthleteProfile, activity_id: str, plan: PlannedRun, route: Route,
               run: SimulatedRun) -> dict:
    def hr_at_ref(gain: float) -> float:
        return float(true_hr_bpm(profile, profile.hr_intercept_bpm + plan.trend_bpm, REF_SPEED_M_S, gain,
                                 REF_ELAPSED_S, -math.inf, plan.season_factor))
    hr_ref = hr_at_ref(plan.gain_fraction)
    return {
        "activity_id": activity_id, "start_time": plan.start_time, "true_hr_at_ref_bpm": hr_ref,
        "true_economy_m_per_beat": REF_SPEED_M_S * 60.0 / hr_ref,
        "effect_pct": plan.gain_fraction * 100.0, "air_temperature_c": plan.air_temperature_c,
        "mean_speed_m_s": run.mean_moving_speed_m_s, "run_type": plan.run_type, "route": route.name,
        "sub_sport": route.sub_sport, "source_format": plan.source_format,
        "has_device_speed": plan.has_device_speed, "auto_pause": plan.auto_pause,
        "cadence_lock": bool(run.trace.cadence_lock.any()), "day_offset_bpm": plan.day_offset_bpm,
        "true_hr_at_ref_no_gain_bpm": hr_at_ref(0.0), "dew_point_c": plan.dew_point_c,
        "heat_driver_c": plan.heat_driver_c, "season_factor": plan.season_factor,
        "has_temperature": plan.has_temperature, "device": plan.device, "planned_km": plan.planned_km,
    }


def simulate_athlete(profile: AthleteProfile | str, seed: int, *, sample_interval_s: float = 1.0,
                     athlete_id: str | None = None, start_date: dt.date = DEFAULT_START_DATE,
                     keep_traces: bool = False) -> SimulatedAthlete:
    """Simulate one athlete's record (``profile.weeks`` weeks, 40 by default) of runs and strength sessions.

    ``profile`` is an :class:`AthleteProfile` or a key of :data:`PROFILES`. ``seed`` fixes every random
    draw; the plan, truth and strength log do not depend on ``sample_interval_s`` (s between recorded
    samples; integer values give whole-second timestamps as FIT stores them; ignored with smart
    recording). ``start_date`` should be a Monday. ``keep_traces`` keeps each run's noise-free internals.
    With ``profile.weather_in_activities`` the activity rows carry the weather archive's columns
    (air_temperature_c, dew_point_c, relative_humidity_pct) as the weather stage would add them.
    """
    profile_key, profile = _resolve_profile(profile, athlete_id)
    aid = profile.athlete_id
    seq = np.random.SeedSequence(seed)
    # Children 0-3 are what the original simulator spawned; the fifth feeds only the variation knobs.
    plan_seq, route_seq, strength_seq, runs_seq, extra_seq = seq.spawn(5)
    routes = make_routes(np.random.default_rng(route_seq))
    sessions, sets, block_start, block_end = plan_strength(profile, np.random.default_rng(strength_seq), start_date)
    plans = plan_runs(profile, np.random.default_rng(plan_seq), start_date, block_start,
                      np.random.default_rng(extra_seq))
    activities, sample_frames, truth_rows, traces = [], [], [], {}
    for plan, run_seq in zip(plans, runs_seq.spawn(len(plans))):
        activity_id = f"{aid}-run-{plan.index:04d}"
        route = routes[plan.route_index]
        run = simulate_run(profile, plan, route, (0.0, 0.0), np.random.default_rng(run_seq),
                           sample_interval_s, activity_id)
        sample_frames.append(run.samples)
        activities.append(_activity_row(aid, activity_id, plan, route, run, run.samples))
        truth_rows.append(_truth_row(profile, activity_id, plan, route, run))
        if keep_traces:
            traces[activity_id] = run.trace
    activities_df = pd.DataFrame(activities, columns=ACTIVITY_COLUMNS)
    samples_df = _samples_frame(sample_frames, activities_df)
    if profile.weather_in_activities:
        activities_df = with_weather_columns(activities_df, plans)
    truth = AthleteTruth(
        athlete_id=aid, profile_key=profile_key, seed=seed, block_start=block_start, block_end=block_end,
        planted_gain_pct=profile.planted_gain_pct, ramp_start_week=profile.gain_ramp_start_week,
        ramp_end_week=profile.gain_ramp_end_week, ref_speed_m_s=REF_SPEED_M_S, ref_elapsed_s=REF_ELAPSED_S,
        ref_temperature_c=REF_TEMPERATURE_C, hr_slope_bpm_per_m_s=profile.hr_slope_bpm_per_m_s,
        pace_change_m_s=profile.pace_change_m_s, truth_runs=pd.DataFrame(truth_rows),
    )
    return SimulatedAthlete(aid, profile, activities_df, samples_df, sessions, sets, truth, float(sample_interval_s),
                            traces)


def _samples_frame(frames: list[pd.DataFrame], activities: pd.DataFrame) -> pd.DataFrame:
    """All runs' samples in the ingest's columns: ids and timestamps added once, not per run."""
    lengths = np.array([len(f) for f in frames])
    body = pd.concat(frames, ignore_index=True)
    ids = np.repeat(activities["activity_id"].to_numpy(), lengths)
    starts = pd.DatetimeIndex(pd.to_datetime(activities["start_time"], utc=True)).repeat(lengths)
    body.insert(0, "activity_id", ids)
    body.insert(1, "athlete_id", np.repeat(activities["athlete_id"].to_numpy(), lengths))
    body.insert(2, "ts", pd.Series(starts) + pd.to_timedelta(body["elapsed_s"], unit="s"))
    return body[SAMPLE_COLUMNS]


def truth_block_change_pct(athlete: SimulatedAthlete, response_start_weeks: float = 6.0,
                           response_end_weeks: float = 12.0) -> float:
    """The economy change (%) the planted gain implies, averaged over the truth runs in the response window.

    The gain divides (a + b*v) by 1 + g but not the drift term, so the economy gain at 30 min elapsed is
    a little smaller than g itself (2.84 % for a planted 3 %). Fitness, season and volume are not part of
    it: they are real changes of economy, but not the block's.
    """
    tr = athlete.truth.truth_runs
    start = pd.Timestamp(athlete.truth.block_start, tz="UTC")
    t = pd.to_datetime(tr["start_time"], utc=True)
    inside = (t >= start + pd.Timedelta(weeks=response_start_weeks)) & (t < start + pd.Timedelta(weeks=response_end_weeks))
    if not inside.any():
        return float("nan")
    ratio = tr["true_hr_at_ref_no_gain_bpm"] / tr["true_hr_at_ref_bpm"]
    return float(ratio[inside].mean() - 1) * 100


DEMO_SAMPLE_INTERVAL_S = 5.0   # "smart recording"-like fixed interval: small files, fast ingest


def simulate_demo(seed: int = 2024, *, sample_interval_s: float = DEMO_SAMPLE_INTERVAL_S,
                  keep_traces: bool = False) -> list[SimulatedAthlete]:
    """The three demo athletes (gain, heat, faster), each from its own seed derived from ``seed``."""
    return [simulate_athlete(PROFILES[key], seed + k, sample_interval_s=sample_interval_s,
                             keep_traces=keep_traces)
            for k, key in enumerate(DEMO_PROFILE_KEYS)]

"""Simulated athletes' profiles: every physiological, plan, weather and device constant, with the demo set.

See :mod:`pipeline.demo.simulate` for the model and docs/demo.md for the values and their sources.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    # --- variation knobs (issue 12's validation matrix; every default keeps the original model) ------
    # Heart rate: the HR-speed relation bends upwards at faster paces (curvature around 3 m/s), the day
    # offsets of successive runs are correlated (fatigue and recovery last days: lag-1 autocorrelation
    # 0.2-0.7 on real records), fitness can saturate and wander slowly (illness, life, motivation).
    hr_curvature_bpm_per_m_s2: float = 0.0  # HR += c * (GAP - 3 m/s)^2
    day_noise_ar: float = 0.0               # lag-1 autocorrelation of the day offsets of successive runs
    fitness_shape: str = "linear"           # "linear" (fitness_trend_bpm_per_month) | "saturating"
    fitness_total_bpm: float = 5.0          # saturating: intercept falls by this much ...
    fitness_tau_weeks: float = 26.0         # ... with this time constant (weeks from the record's start)
    fitness_wander_sd_bpm: float = 0.0      # slow Ornstein-Uhlenbeck wander of the intercept (SD, bpm)
    fitness_wander_tau_days: float = 45.0
    # Economy that varies with the season for reasons other than heat (clothing, footing, daylight, colds):
    # a cosine of the day of year, worst on ``season_worst_doy``, peak-to-peak ``season_swing_pct`` %.
    season_swing_pct: float = 0.0
    season_worst_doy: float = 15.0
    # Running volume: fitness follows the chronic load (6-week exponentially weighted km per week;
    # Banister's fitness component); during the block run durations are multiplied by block_volume_factor.
    volume_fitness_bpm_per_km_week: float = 0.0
    block_volume_factor: float = 1.0
    # The weekly schedule (weekday 0 = Monday, kind easy | tempo | long | extra = easy with extra_easy_prob).
    week_plan: tuple[tuple[int, str], ...] = ((1, "easy"), (2, "extra"), (3, "tempo"), (5, "easy"), (6, "long"))
    # Climate: "ramp" (temp_start_c -> temp_end_c, the demo athletes) or "annual" (a cosine of the day of
    # year around temp_mean_c, warmest on temp_peak_doy); weather anomalies of successive runs correlated
    # by temp_day_ar (hot or cold spells). Dew point = air minus a depression drawn per run.
    climate: str = "ramp"
    temp_mean_c: float = 12.0
    temp_amplitude_c: float = 8.0
    temp_peak_doy: float = 200.0
    temp_day_ar: float = 0.0
    dew_depression_c: tuple[float, float] = (2.0, 10.0)
    # What drives the heat term: "air" temperature or "apparent" temperature (Steadman 1994, from air
    # temperature and dew point: humid heat weighs more).
    heat_driver: str = "air"
    # Recording: share of runs whose files carry no temperature; weather columns (air temperature, dew
    # point, relative humidity from an "archive" that misses the runner's air by weather_error_sd_c) in the
    # activity rows; the HR sensor (device name) and a sensor change sensor_change_week weeks after block
    # start (a new sensor reading hr_bias_after_bpm high with extra per-sample noise and more cadence lock);
    # "fixed" recording every sample_interval_s or "smart" recording every 5-9 s (irregular).
    no_temperature_share: float = 0.0
    weather_in_activities: bool = False
    weather_error_sd_c: float = 1.0
    device_name: str = "simulated"
    sensor_change_week: float | None = None
    device_after: str = "simulated optical"
    hr_bias_after_bpm: float = 2.0
    hr_noise_after_bpm: float = 2.0
    cadence_lock_prob_after: float = 0.2
    recording: str = "fixed"


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

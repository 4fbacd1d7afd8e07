"""Every threshold of the analysis, as one documented dataclass loadable from ``[analysis]`` in pipeline.toml.

Each field is a named default with its unit in the name; docs/analysis.md explains each in plain words.
Unknown keys raise :class:`~pipeline.errors.PipelineError` listing the valid ones, so a typo in
pipeline.toml never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from pipeline.errors import PipelineError
# The one parser of pipeline.toml sections lives on the ground floor (the weather stage uses it too);
# imported here so `from pipeline.analyze.params import settings_from_section` keeps working.
from pipeline.settings import Bounds, setting_number, settings_from_section, suffix_bounds

GRADE_METHODS = ("minetti2002", "none")
HEAT_METHODS = ("detrended", "fixed", "none")
HEAT_TEMPERATURES = ("settled", "mean")
HEAT_MEASURES = ("steadman1994", "air")
SLOPE_METHODS = ("adjacent_bins_iv", "within")
CI_METHODS = ("cochrane_orcutt1949", "newey_west1987", "kunsch1989")


@dataclass(frozen=True)
class AnalysisParams:
    """Defaults of the cleaning, the economy model and the block statistics (``[analysis]`` section)."""

    # ---- cleaning (per run) -------------------------------------------------------------------
    warmup_s: float = 600.0               # skip the first 10 min: HR still rising to steady state
    min_speed_m_s: float = 1.0            # below: stopped / paused / walking (a 16:40 min/km shuffle)
    max_speed_m_s: float = 7.0            # above: GPS glitch for an endurance run (2:23 min/km)
    max_gap_s: float = 10.0               # a gap between samples longer than this is a pause, unless the runner
                                          # kept moving across it (smart recording writes points 1-15 s apart)
    max_recording_gap_s: float = 30.0     # ... and any gap longer than this is a pause (a dropout: pace unknown)
    hr_min_bpm: float = 35.0              # physiologically implausible below
    hr_max_bpm: float = 230.0             # physiologically implausible above
    hr_spike_bpm: float = 15.0            # |HR - rolling median| above this is a spike (strap/optical glitch)
    hr_spike_window_s: float = 30.0       # width of the rolling median for spikes
    cadence_lock_bpm: float = 3.0         # |HR - step rate| (or |HR - step rate/2|) within this = locked
    cadence_lock_min_s: float = 30.0      # ... sustained at least this long
    speed_smoothing_s: float = 15.0       # window for distance- / position-derived speed (GPS jitter)
    grade_smoothing_m: float = 50.0       # altitude difference taken over this distance for the grade
    grade_clip: float = 0.45              # Minetti 2002 polynomial valid for -0.45..0.45
    grade_method: str = "minetti2002"     # or "none" (grade-adjusted speed = speed)
    # Steadiness and transitions, calibrated on real files (docs/analysis.md, "Calibration on real runs"):
    # real easy runs change their 2-min mean pace by 5-10 % all the time (GPS speed noise, terrain,
    # turns), and grade-adjusted speed carries altitude noise on top.
    steady_window_s: float = 90.0         # centred window of the steady-speed reference (rolling median)
    steady_smoothing_s: float = 30.0      # grade-adjusted speed averaged over 30 s before the band test
    steady_band_pct: float = 15.0         # ... within +-15 % of that reference = steady
    transition_window_s: float = 120.0    # mean pace over the 2 min before vs the 2 min after a moment
    transition_change_pct: float = 15.0   # a change larger than this, in speed AND grade-adjusted speed...
    transition_hold_s: float = 75.0       # ... and the next 75 s are dropped (HR lags pace by ~1 min)
    interval_surge_pct: float = 20.0      # surge: 60-s pace more than 20 % above the run's median...
    interval_surge_min_s: float = 60.0    # ... for at least 60 s
    interval_max_surges: int = 2          # more surges than this: an interval session, excluded
    min_steady_s: float = 900.0           # a run needs 15 min of steady, clean samples to be included
    min_hr_coverage: float = 0.8          # ... and valid HR on 80 % of its moving time after warm-up
    unknown_sport_speed_range_m_s: tuple[float, float] = (1.6, 6.5)  # 'unknown' sport analysed as a run if moving speed in range
    # Flat-lined HR (a stuck sensor): HR that does not follow pace. HR rises ~20-25 bpm per m/s, so a 10 %
    # change of pace at 3 m/s should move HR by ~6-7 bpm; a 5-95 % HR range of 3 bpm or less is not HR.
    flat_hr_range_bpm: float = 3.0        # 5-95 % range of HR over the moving time after warm-up at most this...
    flat_hr_pace_range_pct: float = 10.0  # ... while lagged grade-adjusted pace varies by at least this (% of median)
    # No extrapolation of HR-at-reference: a run whose steady pace lies this far from the reference speed is
    # excluded (walking, or a race far from easy pace): 1 m/s x a 10 % slope error is already ~2 bpm (~1.3 %).
    ref_speed_margin_m_s: float = 1.0

    # ---- economy model (per athlete) ------------------------------------------------------------
    hr_lag_tau_s: float = 45.0            # HR follows speed as a first-order lag (on-kinetics tau 30-60 s)
    slope_method: str = "adjacent_bins_iv"  # or "within": plain within-run least squares (attenuated)
    model_bin_s: float = 300.0            # steady samples averaged per 5 min of elapsed time before the fit
    ref_elapsed_s: float = 1800.0         # every run's intercept is referred to 30 min elapsed (drift)
    # Heat (docs/analysis.md, "Heat"; pipeline/analyze/heat.py): threshold and coefficient estimated per
    # temperature source from day-to-day weather. Nothing about the wrist's warming is assumed: device
    # readings get their own threshold range, or are put on the air scale by the offset measured on runs
    # that have both.
    heat_method: str = "detrended"        # detrended | fixed | none (see docs/analysis.md)
    heat_measure: str = "steadman1994"    # archive weather: apparent temperature (Steadman 1994) or "air"
    heat_threshold_air_range_c: tuple[float, float] = (5.0, 25.0)     # air/apparent: heat curve segments start here
    heat_threshold_device_range_c: tuple[float, float] = (10.0, 35.0)  # settled device: segment starts
    heat_knot_step_c: float = 5.0         # a heat-curve segment every 5 C (its own non-negative slope)
    heat_min_above_runs: int = 10         # a segment needs this many runs above its start
    heat_min_paired_runs: int = 10        # runs with both air weather and a device reading to convert devices
    heat_air_error_sd_c: float = 1.0      # archive air vs the air the runner felt (errors in variables)
    heat_impute_days: float = 14.0        # a run without temperature: mean adjustment of runs within +-14 d
    heat_temperature: str = "settled"     # device reading per run: "settled" (indoor start removed) or "mean"
    device_temp_tau_s: float = 600.0      # thermal time constant of a wrist device (indoor -> outdoor)
    ref_temperature_c: float = 21.5       # heat_method = "fixed" only: threshold in settled device degC
    heat_bpm_per_c: float = 0.4           # heat_method = "fixed" only: bpm per C above ref_temperature_c
    heat_detrend_days: float = 14.0       # half-width of the local window of the day-to-day deviations
    heat_sensor_sd_c: float = 1.0         # run-to-run SD of the wrist device's warming (errors-in-variables)
    heat_min_runs: int = 20               # fewer runs with a source's temperature: no model for that source
    heat_bootstrap_reps: int = 200        # block-bootstrap replicates of the heat model (its uncertainty)

    # ---- block statistics -----------------------------------------------------------------------
    baseline_weeks: float = 6.0           # window method: the 6 weeks before block start
    response_start_weeks: float = 6.0     # response window: weeks 6..12 after block start
    response_end_weeks: float = 12.0
    its_pre_weeks: float = 16.0           # ITS: pre-block trend fitted on up to 16 weeks before the block
    swc_pct: float = 1.0                  # smallest worthwhile change
    min_runs: int = 8                     # fewer runs in either window: 'insufficient data'
    ci_level: float = 0.95
    ci_method: str = "cochrane_orcutt1949"  # AR(1) feasible GLS; or "newey_west1987" HAC, "kunsch1989" block bootstrap
    hac_max_lags: int | None = None       # None: floor(4 (n/100)^(2/9)) (Newey & West 1994 rule)
    bootstrap_block_runs: int = 4         # block length of the moving-block bootstrap (runs)
    bootstrap_reps: int = 999
    cannot_tell_halfwidth_pct: float = 3.0  # calibrated CI half-width above which a non-verdict is "cannot tell"
    volume_note_pct: float = 15.0         # running volume change during the block worth naming in the verdict
    sensor_change_share: float = 0.5      # pre-block share on the response window's HR device below: a change
    # ---- season (docs/analysis.md, "Season") -------------------------------------------------------
    season_min_days: float = 365.0        # included runs spanning a year: annual harmonic in the model
    season_min_months: int = 8            # ... with runs in at least 8 of the 12 calendar months
    # ---- negative controls and calibration (docs/analysis.md, "Negative controls", "Calibration") --
    placebo_step_weeks: float = 2.0       # fake block starts every 2 weeks across the whole record
    placebo_min_pre_weeks: float = 6.0    # ... each with at least 6 weeks of record before it (its trend)
    calibration_min_effective_controls: float = 4.0  # own controls worth fewer: squad's, else the default
    seed: int = 20020901                  # bootstrap random seed (results are reproducible)

    @classmethod
    def from_config(cls, section: dict[str, Any] | None) -> AnalysisParams:
        """Build from the ``[analysis]`` section of pipeline.toml (see :func:`settings_from_section`)."""
        return settings_from_section(cls, section, "analysis")

    @classmethod
    def setting_bounds(cls, key: str, whole: bool = False) -> Bounds:
        """Allowed range of one numeric setting (:func:`setting_bounds`)."""
        return setting_bounds(key, whole)

    def validate(self) -> None:
        """Reject settings that cannot work, with a message saying which and why.

        Generic, so a new setting is checked without an entry: every number must be finite and inside
        :func:`setting_bounds` (from :data:`SETTING_BOUNDS`, else from its unit suffix); the pairs in
        :data:`ORDERED_SETTINGS` must be in order; text settings must name a known method.
        """
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str):
                continue
            if isinstance(value, tuple):
                for k, v in enumerate(value):
                    setting_number(WHERE, f"{f.name}[{k}]", v, setting_bounds(f.name))
                if list(value) != sorted(value) or len(set(value)) < len(value):
                    raise PipelineError(f"{WHERE}: {f.name} = {list(value)} must be increasing")
            elif value is not None:
                setting_number(WHERE, f.name, value, setting_bounds(f.name, "int" in str(f.type)))
        for low, high in ORDERED_SETTINGS:
            if not getattr(self, low) < getattr(self, high):
                raise PipelineError(f"{WHERE}: {low} ({getattr(self, low):g}) must be below {high} "
                                    f"({getattr(self, high):g})")
        for key, choices in METHOD_CHOICES.items():
            _choice(key, getattr(self, key), choices)


WHERE = "pipeline.toml [analysis]"
METHOD_CHOICES = {"grade_method": GRADE_METHODS, "heat_method": HEAT_METHODS, "heat_temperature": HEAT_TEMPERATURES,
                  "heat_measure": HEAT_MEASURES, "slope_method": SLOPE_METHODS, "ci_method": CI_METHODS}

# Settings whose range is narrower than their suffix's, or that have no unit suffix.
SETTING_BOUNDS = {
    "max_speed_m_s": Bounds(0, 12, low_open=True, unit="m/s"),
    "max_gap_s": Bounds(0, 3600, low_open=True, unit="s"),
    "max_recording_gap_s": Bounds(0, 3600, low_open=True, unit="s"),
    "hr_spike_window_s": Bounds(0, 3600, low_open=True, unit="s"),
    "speed_smoothing_s": Bounds(0, 600, low_open=True, unit="s"),
    "grade_smoothing_m": Bounds(0, 5000, low_open=True, unit="m"),
    "grade_clip": Bounds(0, 0.45, low_open=True, unit="(fraction; Minetti 2002 is fitted to 0.45)"),
    "steady_window_s": Bounds(0, 3600, low_open=True, unit="s"),
    "steady_band_pct": Bounds(0, 100, low_open=True, unit="%"),
    "transition_window_s": Bounds(0, 3600, low_open=True, unit="s"),
    "transition_change_pct": Bounds(0, 1000, low_open=True, unit="%"),
    "interval_surge_pct": Bounds(0, 1000, low_open=True, unit="%"),
    "interval_surge_min_s": Bounds(0, 3600, low_open=True, unit="s"),
    "interval_max_surges": Bounds(0, 1000, whole=True),
    "min_hr_coverage": Bounds(0, 1, low_open=True, unit="(fraction)"),
    "ref_speed_margin_m_s": Bounds(0, 12, low_open=True, unit="m/s"),
    "model_bin_s": Bounds(0, 86400, low_open=True, unit="s"),
    "heat_detrend_days": Bounds(0, 3650, low_open=True, unit="days"),
    "heat_sensor_sd_c": Bounds(0, 20, unit="degC"),
    "heat_min_runs": Bounds(1, 100_000, whole=True),
    "heat_knot_step_c": Bounds(0, 30, low_open=True, unit="degC"),
    "heat_min_above_runs": Bounds(1, 100_000, whole=True),
    "heat_min_paired_runs": Bounds(1, 100_000, whole=True),
    "heat_air_error_sd_c": Bounds(0, 20, unit="degC"),
    "heat_bootstrap_reps": Bounds(0, 100_000, whole=True),
    "baseline_weeks": Bounds(0, 104, low_open=True, unit="weeks"),
    "response_start_weeks": Bounds(0, 104, unit="weeks"),
    "response_end_weeks": Bounds(0, 104, low_open=True, unit="weeks"),
    "its_pre_weeks": Bounds(0, 520, low_open=True, unit="weeks"),
    "swc_pct": Bounds(0, 100, unit="%"),
    "min_runs": Bounds(1, 100_000, whole=True),
    "ci_level": Bounds(0, 0.999, low_open=True, unit="(fraction)"),
    "hac_max_lags": Bounds(0, 1000, whole=True),
    "bootstrap_block_runs": Bounds(1, 1000, whole=True),
    "bootstrap_reps": Bounds(1, 100_000, whole=True),
    "placebo_step_weeks": Bounds(0, 104, low_open=True, unit="weeks"),
    "placebo_min_pre_weeks": Bounds(0, 520, unit="weeks"),
    "cannot_tell_halfwidth_pct": Bounds(0, 100, unit="%"),
    "sensor_change_share": Bounds(0, 1, unit="(fraction)"),
    "season_min_days": Bounds(0, 3650, unit="days"),
    "season_min_months": Bounds(0, 12, whole=True),
    "calibration_min_effective_controls": Bounds(0, 10_000, unit="(controls)"),
    "seed": Bounds(0, 2**32 - 1, whole=True),
}
# (low, high): the first must be below the second.
ORDERED_SETTINGS = (("hr_min_bpm", "hr_max_bpm"), ("min_speed_m_s", "max_speed_m_s"),
                    ("max_gap_s", "max_recording_gap_s"), ("response_start_weeks", "response_end_weeks"))


def setting_bounds(key: str, whole: bool = False) -> Bounds:
    """Allowed range of one numeric ``[analysis]`` setting: its own entry in :data:`SETTING_BOUNDS`, else
    the range of its unit suffix (:data:`pipeline.settings.SUFFIX_BOUNDS`), else any finite number up to
    1e6 in size, so a setting added later is checked without an entry."""
    if key not in SETTING_BOUNDS:
        return suffix_bounds(key, whole)
    return replace(SETTING_BOUNDS[key], whole=True) if whole else SETTING_BOUNDS[key]


def _choice(key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise PipelineError(f"{WHERE}: {key} = {value!r} is not one of {', '.join(valid)}")

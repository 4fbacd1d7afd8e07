"""Heat without assumed constants: threshold and coefficient per temperature source, archive weather first,
the wrist device as fallback, and no run treated as cool for lack of a temperature."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.heat import (
    heat_excess_c,
    heat_measure_c,
    heat_model,
    heat_curve_fit,
    vapour_pressure_hpa,
)
from pipeline.analyze.params import AnalysisParams

P = AnalysisParams()


def _season(rng, n=170, gamma=0.8, threshold=14.0, days_span=300, weather_sd=3.0):
    """Runs from spring into summer: air = season + weather; HR at the reference speed falls with fitness and
    rises gamma bpm per C of air above the threshold."""
    days = np.sort(rng.uniform(0, days_span, n))
    air = 8 + 17 * np.clip(days / (0.8 * days_span), 0, 1) + rng.normal(0, weather_sd, n)   # spring -> summer
    hr = 150 - 0.02 * days + gamma * np.maximum(0, air - threshold) + rng.normal(0, 1.7, n)
    start = pd.Series(pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(days, unit="D"))
    return hr, air, start


def test_apparent_temperature_and_humidity():
    # Steadman (1994) / Bureau of Meteorology, shade, no wind: AT = Ta + 0.33 e - 4, e in hPa.
    assert vapour_pressure_hpa(20.0) == pytest.approx(23.4, abs=0.1)
    assert heat_measure_c(30.0, 20.0) == pytest.approx(30 + 0.33 * 23.4 - 4, abs=0.05)
    # Humid heat weighs more than dry heat at the same air temperature.
    assert heat_measure_c(30.0, 24.0) > heat_measure_c(30.0, 10.0) + 4
    # Relative humidity instead of dew point gives the same value; neither: the air temperature itself.
    rh = 100 * vapour_pressure_hpa(20.0) / vapour_pressure_hpa(30.0)
    assert heat_measure_c(30.0, None, rh) == pytest.approx(heat_measure_c(30.0, 20.0), abs=0.05)
    assert heat_measure_c(30.0, np.nan) == 30.0 and heat_measure_c(30.0, 20.0, measure="air") == 30.0


def test_heat_curve_estimated_from_day_to_day_weather():
    """Truth: 0.8 bpm per C above 14 C. The pooled slope over the season is confounded (fitness improves
    while it warms); the day-to-day fit finds where the curve starts and the heat a summer run carries."""
    rng = np.random.default_rng(1)
    cool, summer = [], []
    for _ in range(12):
        hr, air, start = _season(rng)
        fit = heat_curve_fit(hr, air, start, P.heat_threshold_air_range_c, P, 0.0)
        cool.append(float(fit.adjustment([12.0])[0]))                # truth 0
        summer.append(float(fit.adjustment([24.0])[0]))              # truth 8 bpm
        assert fit.boot_slopes.shape == (P.heat_bootstrap_reps, len(fit.knots_c)) and fit.se_bpm_per_c > 0
        assert (fit.slopes_bpm_per_c >= 0).all() and fit.threshold_c <= 15.0
    assert np.mean(cool) < 1.0
    assert np.mean(summer) == pytest.approx(8.0, rel=0.2)
    naive = np.polyfit(np.maximum(0, air - 14.0), hr, 1)[0]
    assert abs(naive - 0.8) > 0.2


def test_no_heat_effect_gives_a_small_adjustment():
    rng = np.random.default_rng(2)
    adj = []
    for _ in range(10):
        hr, air, start = _season(rng, gamma=0.0)
        fit = heat_curve_fit(hr, air, start, P.heat_threshold_air_range_c, P, 0.0)
        adj.append(float(fit.adjustment([24.0])[0]))
    assert np.mean(adj) < 1.5          # non-negative slopes fitted to noise stay small on average


def test_device_curve_moves_with_the_wrist_warming_it_does_not_assume():
    """The same athlete through a wrist device that reads 2, 5 or 8 C above the air: the device-scale
    curve moves with the warming; a summer run's adjustment does not."""
    rng = np.random.default_rng(3)
    hr, air, start = _season(rng)
    for warming in (2.0, 5.0, 8.0):
        device = air + warming + rng.uniform(-1.5, 1.5, len(air))
        fit = heat_curve_fit(hr, device, start, P.heat_threshold_device_range_c, P, 0.87)
        assert float(fit.adjustment([24.0 + warming])[0]) == pytest.approx(8.0, rel=0.3)
        assert float(fit.adjustment([12.0 + warming])[0]) < 1.5


def _runs(hr, air, start, **cols) -> pd.DataFrame:
    return pd.DataFrame({"activity_id": [f"r{k}" for k in range(len(hr))], "start_time": start.to_numpy(), **cols})


def test_sources_air_first_device_converted_and_runs_without_temperature_imputed():
    rng = np.random.default_rng(4)
    hr, air, start = _season(rng, n=200)
    device = air + 6.0 + rng.uniform(-1.5, 1.5, len(air))
    has_air = rng.random(len(air)) < 0.7
    no_temp = rng.random(len(air)) < 0.15
    archive = air + rng.normal(0, 1.0, len(air))                # a grid cell's air, not the runner's
    runs = _runs(hr, air, start, air_temperature_c=np.where(has_air & ~no_temp, archive, np.nan),
                 device_temperature_c=np.where(no_temp, np.nan, device))
    m = heat_model(hr, runs, P)
    r = m.runs.set_index("activity_id")
    src = r["temperature_source"].to_numpy()
    assert set(src[has_air & ~no_temp]) == {"air"}
    assert set(src[~has_air & ~no_temp]) == {"device"} and m.device_offset_c == pytest.approx(6.0, abs=0.4)
    assert set(src[no_temp]) == {"imputed"}                   # runs every few days: neighbours within 14 d
    assert list(m.fits) == ["air"] and m.controlled
    # The adjustments are as right as the heat model: their mean error within the model's own bootstrap
    # uncertainty, and the imputed runs (the season's heat, not the day's) hardly worse than the measured.
    truth = 0.8 * np.maximum(0, air - 14.0)
    err = r["heat_adjustment_bpm"].to_numpy() - truth
    assert m.draws.shape == (len(hr), P.heat_bootstrap_reps)
    boot_sd = np.std(m.draws[~no_temp].mean(axis=0))
    assert abs(err[~no_temp].mean()) < 2.5 * boot_sd
    assert abs(err[no_temp].mean() - err[~no_temp].mean()) < 1.0


def test_a_run_without_any_temperature_is_never_treated_as_cool():
    """Treating runs without a temperature as cool would read their summer heat as lost economy. The rule:
    the season's heat from the runs around them; with none nearby, no economy value (excluded)."""
    rng = np.random.default_rng(5)
    hr, air, start = _season(rng, n=170)
    summer = (air > 20).to_numpy() if hasattr(air, "to_numpy") else air > 20
    missing = summer & (rng.random(len(air)) < 0.4)
    runs = _runs(hr, air, start, device_temperature_c=np.where(missing, np.nan, air + 6))
    m = heat_model(hr, runs, P)
    r = m.runs
    adj_missing = r.loc[missing, "heat_adjustment_bpm"].to_numpy()
    true_missing = 0.8 * np.maximum(0, air[missing] - 14.0)
    assert (r.loc[missing, "temperature_source"] == "imputed").all()
    # Imputed: off by the day's weather only; "cool" (no adjustment) would be off by the whole summer heat.
    assert abs(np.mean(adj_missing - true_missing)) < 1.0 < np.mean(true_missing)
    # An isolated run with no temperature and no run within 14 days: not usable.
    lonely = runs.copy()
    lonely.loc[len(lonely)] = {"activity_id": "far", "start_time": start.max() + pd.Timedelta(days=40),
                               "device_temperature_c": np.nan}
    m2 = heat_model(np.r_[hr, 155.0], lonely, P)
    far = m2.runs.set_index("activity_id").loc["far"]
    assert far["temperature_source"] == "none" and not far["heat_usable"]


def test_no_temperature_at_all_means_no_heat_model_and_fixed_and_none_methods():
    rng = np.random.default_rng(6)
    hr, air, start = _season(rng)
    m = heat_model(hr, _runs(hr, air, start, device_temperature_c=np.full(len(hr), np.nan)), P)
    assert not m.controlled and (m.runs["heat_adjustment_bpm"] == 0).all()
    assert (m.runs["temperature_source"] == "none").all() and m.runs["heat_usable"].all()
    runs = _runs(hr, air, start, device_temperature_c=air + 6.5)
    fixed = heat_model(hr, runs, replace(P, heat_method="fixed", heat_bpm_per_c=0.5, ref_temperature_c=21.5))
    assert fixed.runs["heat_adjustment_bpm"].to_numpy() == pytest.approx(0.5 * heat_excess_c(air + 6.5, 21.5))
    none = heat_model(hr, runs, replace(P, heat_method="none"))
    assert not none.controlled and (none.runs["heat_adjustment_bpm"] == 0).all()


def test_errors_in_variables_correction_of_a_noisy_thermometer():
    """A wrist thermometer is a noisy proxy of the air: the plain slope is flattened; the method-of-moments
    correction with the sensor SD restores it (threshold held fixed to isolate the correction)."""
    rng = np.random.default_rng(8)
    p = replace(P, heat_bootstrap_reps=20)
    naive, corrected = [], []
    for _ in range(30):
        hr, air, start = _season(rng, gamma=0.5, threshold=14.0)
        device = air + 6.5 + rng.uniform(-1.5, 1.5, len(air))     # SD 0.87
        fit = heat_curve_fit(hr, device, start, (20.5, 20.5), p, 0.87)
        naive.append(fit.naive_bpm_per_c)
        corrected.append(fit.gamma_bpm_per_c)
        assert 0.5 <= fit.reliability < 1
    assert np.mean(naive) < 0.5 * 0.95
    assert np.mean(corrected) == pytest.approx(0.5, abs=0.04)

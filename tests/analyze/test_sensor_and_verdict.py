"""The sensor-change guard and the calibrated verdict rule with its reasons."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.analyze.calibration import calibration_for
from pipeline.analyze.controls import EMPTY_CONTROLS, ControlSet
from pipeline.analyze.effects import METRICS, EffectContext, block_windows, effect_its
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.sensor import NO_CHANGE, device_labels, sensor_check, with_device_indicators
from pipeline.analyze.verdict import BlockNotes, verdict_columns

P = AnalysisParams()
BLOCK = pd.Timestamp("2024-05-06", tz="UTC")
SPEC = METRICS["economy_m_per_beat"]


def _runs(rng, devices, shift_pct=-1.4, step_pct=0.0, weeks_before=20, weeks_after=14):
    """Economy per run with a level shift on the 'optical' device (it reads HR ~2 bpm high) and a step in
    the response window; ``devices(t_weeks)`` gives each run's device."""
    days = np.arange(-weeks_before * 7, weeks_after * 7, 1.75) + 0.3
    t_w = days / 7
    dev = np.array([devices(x) for x in t_w])
    y = 1.3 * np.exp(np.where(dev == "optical", shift_pct / 100, 0) + np.where(t_w >= 6, step_pct / 100, 0)
                     + rng.normal(0, 0.01, len(days)))
    return pd.DataFrame({"start_time": BLOCK + pd.to_timedelta(days, unit="D"), "economy_m_per_beat": y,
                         "hr_device": dev})


def test_device_labels():
    act = pd.DataFrame({"activity_id": ["a", "b", "c"], "device": ["Forerunner 955", None, " "],
                        "source_format": ["fit", "gpx", None]})
    assert device_labels(act).tolist() == ["Forerunner 955", "unknown gpx device", ""]


def _notes(check, dev_fit=None) -> BlockNotes:
    return BlockNotes("season not controlled: 9 months of included runs (needs 12)", False, True, "", check,
                      dev_fit, 0.0)


def test_a_new_sensor_at_the_block_is_flagged_and_cannot_be_told_apart():
    rng = np.random.default_rng(1)
    runs = _runs(rng, lambda t: "strap" if t < 0 else "optical")
    w = block_windows(BLOCK, P)
    check = sensor_check(runs, w)
    assert check.changed and check.before == "strap" and check.after == "optical" and check.share_before == 0
    raw = effect_its(runs, w, "economy_m_per_beat", EffectContext(P))
    assert raw.verdict == "loss"                     # the shift reads as lost economy
    with_dev, cols = with_device_indicators(runs)
    adjusted = effect_its(with_dev, w, "economy_m_per_beat", EffectContext(P, covariates=cols))
    assert not np.isfinite(adjusted.theta)           # the device indicator is the block: not separable
    cal = calibration_for(EMPTY_CONTROLS, "heat", 4.0)
    out = verdict_columns(raw, SPEC, cal, _notes(check), P)
    assert out["calibrated_verdict"] == "cannot tell" and out["sensor_change"]
    assert "HR device changed" in out["verdict_reason"] and "cannot be separated" in out["verdict_reason"]


def test_a_sensor_used_on_and_off_gets_its_shift_estimated():
    """Strap and optical alternate before the block, optical only after: the device shift is learnt from
    the pre-block runs and the planted +3 % step is recovered beside the raw estimate."""
    rng = np.random.default_rng(2)
    runs = _runs(rng, lambda t: "optical" if t >= 0 or int(t * 4) % 3 == 0 else "strap", step_pct=3.0)
    w = block_windows(BLOCK, P)
    check = sensor_check(runs, w)
    assert check.changed
    raw = effect_its(runs, w, "economy_m_per_beat", EffectContext(P))
    with_dev, cols = with_device_indicators(runs)
    adjusted = effect_its(with_dev, w, "economy_m_per_beat", EffectContext(P, covariates=cols))
    assert adjusted.change_pct == pytest.approx(3.0, abs=0.8)
    assert abs(raw.change_pct - 3.0) > abs(adjusted.change_pct - 3.0)
    cal = calibration_for(EMPTY_CONTROLS, "season", 4.0)
    out = verdict_columns(raw, SPEC, cal, _notes(check, adjusted), P)
    assert out["device_adjusted_change_pct"] == pytest.approx(adjusted.change_pct - cal.mu * 100, abs=0.2)
    assert "level shift per device" in out["verdict_reason"]


@pytest.mark.parametrize("theta, se, n_b, verdict", [
    (0.04, 0.004, 20, "gain"), (-0.04, 0.004, 20, "loss"), (0.0, 0.003, 20, "no clear change"),
    (0.0, 0.02, 20, "cannot tell"), (0.04, 0.004, 5, "insufficient data"),
])
def test_calibrated_verdict_rule(theta, se, n_b, verdict):
    rng = np.random.default_rng(3)
    runs = _runs(rng, lambda t: "strap")
    fit = effect_its(runs, block_windows(BLOCK, P), "economy_m_per_beat", EffectContext(P))
    fit = replace(fit, theta=theta, se=se, effect=replace(fit.effect, n_baseline=n_b))
    # 60 own controls with a small systematic error: the calibration hardly widens the CI.
    th = 0.002 * rng.standard_normal(60) + 0.003 * rng.standard_normal(60)
    own = ControlSet("a", th, np.full(60, 0.003), np.eye(60), "season")
    cal = calibration_for(own, "season", 4.0)
    out = verdict_columns(fit, SPEC, cal, _notes(NO_CHANGE), P)
    assert out["calibrated_verdict"] == verdict
    assert out["calibration_source"] == "own" and out["n_controls"] == 60
    if verdict == "cannot tell":
        assert "too wide" in out["verdict_reason"] and "season not controlled" in out["verdict_reason"]
    # Without any controls the conservative default widens every CI: a null estimate cannot tell.
    few = calibration_for(EMPTY_CONTROLS, "none", 4.0)
    out = verdict_columns(replace(fit, theta=0.0, se=0.003), SPEC, few, _notes(NO_CHANGE), P)
    assert out["calibration_source"] == "default" and out["calibrated_verdict"] in ("cannot tell", "insufficient data")

"""The calibrated verdict of a block and the sentence that says why.

Rule, on the calibrated estimate and CI (:mod:`pipeline.analyze.calibration`):

* ``insufficient data``: fewer than ``min_runs`` runs before the block or in the response window;
* ``gain``: the calibrated 95 % CI lies above 0 and the calibrated estimate exceeds the smallest
  worthwhile change; ``loss`` mirrored;
* ``cannot tell``: neither, and the CI is too wide to rule out a typical strength-training effect on
  economy -- its half-width exceeds ``cannot_tell_halfwidth_pct`` (3 %; reported effects are 2-8 %,
  Balsalobre-Fernández et al. 2016) -- or the HR device changed around the block and the device shift
  cannot be separated from it;
* ``no clear change``: otherwise (a CI narrow enough to say a typical effect did not happen).

With a sensor change flagged, the rule is applied to the device-adjusted estimate (one level per device),
calibrated the same way. The reason names what limited the answer: season not modelled (record shorter
than a year), no temperature, where the systematic-error distribution came from, a device change, a
change in running volume.

Reference: Balsalobre-Fernández C, Santos-Concejero J, Grivas GV (2016). J Strength Cond Res 30:2361.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.analyze.calibration import Calibrated, Calibration, calibrate
from pipeline.analyze.effects import EffectFit, MetricSpec, theta_to_pct
from pipeline.analyze.params import AnalysisParams
from pipeline.analyze.sensor import SensorCheck, sensor_note
from pipeline.warehouse.contract import CALIBRATED_VERDICTS  # noqa: F401  (the vocabulary _verdict returns)



@dataclass(frozen=True)
class BlockNotes:
    """What the verdict of one block depends on besides its estimate."""

    season_reason: str
    season_controlled: bool
    heat_controlled: bool
    heat_note: str
    sensor: SensorCheck
    device_fit: EffectFit | None
    volume_change_pct: float


def _pct(spec: MetricSpec, c: Calibrated) -> tuple[float, float, float]:
    return theta_to_pct(spec, c.theta), theta_to_pct(spec, c.lo), theta_to_pct(spec, c.hi)


def _source_phrase(cal: Calibration) -> str:
    spread = f"systematic error {cal.mu * 100:+.1f} \u00b1 {cal.tau * 100:.1f} %"
    if cal.source == "own":
        return f"calibrated on {cal.n_controls} own negative controls (~{cal.n_effective:.0f} independent; {spread})"
    own = f" ({cal.n_controls} own, ~{cal.n_effective:.0f} independent)" if cal.n_controls else " (none fit)"
    if cal.source == "squad":
        return f"too few own negative controls{own}: calibrated on the squad's ({spread})"
    return f"too few negative controls{own}: calibrated with the conservative default ({spread})"


def _limits(notes: BlockNotes, cal: Calibration) -> list[str]:
    out = []
    if not notes.season_controlled:
        out.append(notes.season_reason)
    if not notes.heat_controlled:
        out.append(notes.heat_note)
    if cal.source != "own":
        out.append(_source_phrase(cal))
    return out


def verdict_columns(fit: EffectFit, spec: MetricSpec, cal: Calibration, notes: BlockNotes,
                    params: AnalysisParams) -> dict:
    """The calibrated columns of one ``block_effects`` row, verdict and reason included."""
    e = fit.effect
    c = calibrate(fit.theta, fit.se, cal, params.ci_level)
    est, lo, hi = _pct(spec, c)
    cols = {"calibrated_change_pct": est, "calibrated_ci_low_pct": lo, "calibrated_ci_high_pct": hi,
            "calibrated_se_pct": c.se * 100, "systematic_mu_pct": cal.mu * 100, "systematic_tau_pct": cal.tau * 100,
            "n_controls": cal.n_controls, "n_effective_controls": cal.n_effective, "calibration_source": cal.source,
            "season_controlled": notes.season_controlled, "heat_controlled": notes.heat_controlled,
            "sensor_change": notes.sensor.changed, "volume_change_pct": notes.volume_change_pct}
    dev = notes.device_fit
    dc = calibrate(dev.theta, dev.se, cal, params.ci_level) if dev is not None else Calibrated(*[np.nan] * 4)
    cols.update(zip(("device_adjusted_change_pct", "device_adjusted_ci_low_pct", "device_adjusted_ci_high_pct"),
                    _pct(spec, dc)))
    verdict, reason = _verdict(e.n_baseline, e.n_response, (est, lo, hi), _pct(spec, dc), cal, notes, params)
    return {**cols, "calibrated_verdict": verdict, "verdict_reason": reason}


def _verdict(n_b: int, n_r: int, ci: tuple, dev_ci: tuple, cal: Calibration, notes: BlockNotes,
             params: AnalysisParams) -> tuple[str, str]:
    extra = [n for n in (sensor_note(notes.sensor), _volume_note(notes.volume_change_pct, params)) if n]
    if n_b < params.min_runs or n_r < params.min_runs or not np.isfinite(ci[0]):
        return "insufficient data", (f"{n_b} runs before the block and {n_r} in the response window "
                                     f"(needs {params.min_runs} each)")
    if notes.sensor.changed:
        if not np.isfinite(dev_ci[0]):
            return "cannot tell", "; ".join([*extra, "the device's shift cannot be separated from the block",
                                            _source_phrase(cal)])
        ci = dev_ci
        extra.append("verdict on the estimate with a level shift per device")
    est, lo, hi = ci
    limits = _limits(notes, cal)
    uncontrolled = [x for x in limits if "not controlled" in x]
    if lo > 0 and est > params.swc_pct:
        return "gain", "; ".join([_source_phrase(cal), *uncontrolled, *extra])
    if hi < 0 and est < -params.swc_pct:
        return "loss", "; ".join([_source_phrase(cal), *uncontrolled, *extra])
    if (hi - lo) / 2 > params.cannot_tell_halfwidth_pct:
        why = limits or ["day-to-day noise of this record"]
        return "cannot tell", "; ".join([f"calibrated 95 % CI {lo:+.1f} to {hi:+.1f} % is too wide to tell a "
                                         f"typical effect (2-8 %) from none", *why, *extra])
    return "no clear change", "; ".join([_source_phrase(cal), *uncontrolled, *extra])


def _volume_note(change_pct: float, params: AnalysisParams) -> str:
    if not np.isfinite(change_pct) or abs(change_pct) < params.volume_note_pct:
        return ""
    return (f"running volume was {change_pct:+.0f} % during the block against before it: part of a change "
            "may be running fitness, not the strength work")

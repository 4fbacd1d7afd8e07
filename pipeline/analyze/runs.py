"""Per-run metrics: which activities are runs, pace per heartbeat, decoupling, and the per-run recipe.

``run_process`` reads as the recipe for one activity: decide whether it is a run, clean it, keep its
steady part, summarise it, or say in words why it is excluded.

References
----------
Friel J. The Triathlete's Training Bible (efficiency factor = normalised pace / HR; aerobic decoupling
= change of that ratio from the first to the second half of a steady run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.analyze.clean import run_clean, run_hr_response, run_steady_segments, weighted_quantile
from pipeline.analyze.economy import MODEL_BIN_COLUMNS, economy_run_bins
from pipeline.analyze.params import AnalysisParams

# sub_sport values analysed as runs (fitparse names; None = not given). Treadmill-like ones get no grade.
RUN_SUB_SPORTS = frozenset({"generic", "road", "street", "trail", "track", "treadmill", "indoor_running",
                            "virtual_activity", "0", "1", "2", "3", "4", "45", "58"})
TREADMILL_SUB_SPORTS = frozenset({"treadmill", "indoor_running", "virtual_activity", "1", "45", "58"})
UNKNOWN_SPORTS = frozenset({"unknown", "generic", ""})

STEADY_COLUMNS = ["t_s", "dt_s", "gap_lag_m_s", "gap_speed_m_s", "speed_m_s", "hr_bpm", "temperature_c"]


class RunAnalysisError(Exception):
    """An unexpected error while analysing one activity; carries the activity so it can be named."""

    def __init__(self, activity_id: str, error: BaseException):
        super().__init__(f"activity {activity_id}: {type(error).__name__}: {error}")
        self.activity_id = activity_id
        self.error = error

    def __reduce__(self):  # picklable with its own arguments: it travels back from cluster workers
        return (RunAnalysisError, (self.activity_id, self.error))


@dataclass
class RunResult:
    """One activity analysed: its ``run_metrics`` row (model columns still empty) and, for an included run,
    all that the athlete-level steps read of its steady samples, so the samples themselves can go once the
    run is summarised:

    * ``model_bins``: its bins for the economy model (:func:`pipeline.analyze.economy.economy_run_bins`:
      one row per ``model_bin_s`` of elapsed time, columns :data:`~pipeline.analyze.economy.MODEL_BIN_COLUMNS`);
    * ``gap_lag_range_m_s``: the 5-95 % time-weighted range of its lagged grade-adjusted speed, which
      decides whether it came near the athlete's reference speed (:func:`runs_outside_reference_range`).

    Both depend on the run and the settings only (never on the athlete's other runs), so a cached run is
    reused as it is (:mod:`pipeline.analyze.run_cache`). Excluded runs keep neither.
    """

    row: dict[str, Any]
    model_bins: np.ndarray = field(default_factory=lambda: np.zeros((0, len(MODEL_BIN_COLUMNS))))
    gap_lag_range_m_s: tuple[float, float] = (math.nan, math.nan)

    @property
    def included(self) -> bool:
        return bool(self.row["included"])


def run_kind(sport: str | None, sub_sport: str | None) -> tuple[str, bool]:
    """Classify an activity: (``'run'`` | ``'maybe'`` | reason it is not a run, treadmill?).

    ``'maybe'`` is an activity whose file does not say its sport (a GPX without ``<type>``); it is
    analysed as a run only when its moving speed is typical of running.
    """
    s = (str(sport).strip().lower() if sport is not None and not _isna(sport) else "")
    sub = (str(sub_sport).strip().lower() if sub_sport is not None and not _isna(sub_sport) else None)
    if s in UNKNOWN_SPORTS:
        return "maybe", sub in TREADMILL_SUB_SPORTS
    if s not in ("running", "run", "1"):
        return f"not a run: {s}", False
    if sub is not None and sub not in RUN_SUB_SPORTS:
        return f"not analysed: running/{sub}", False
    return "run", sub in TREADMILL_SUB_SPORTS


def _isna(x: Any) -> bool:
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(w) & (w > 0)
    return float(np.sum(x[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else float("nan")


def run_decoupling(steady: pd.DataFrame) -> float:
    """Aerobic decoupling (%) of a run's steady samples: (r1 - r2) / r1 * 100.

    r = mean grade-adjusted speed / mean HR over the first and second half of the steady time (halves
    by accumulated steady seconds, in time order). Positive = HR drifted up relative to pace (worse).
    """
    if steady.empty:
        return float("nan")
    s = steady.sort_values("t_s")
    cum = np.cumsum(s["dt_s"].to_numpy())
    first = cum <= cum[-1] / 2
    if first.sum() == 0 or (~first).sum() == 0:
        return float("nan")
    ratios = []
    for part in (s[first], s[~first]):
        w = part["dt_s"].to_numpy()
        ratios.append(_wmean(part["gap_speed_m_s"].to_numpy(), w) / _wmean(part["hr_bpm"].to_numpy(), w))
    return (ratios[0] - ratios[1]) / ratios[0] * 100


def run_settled_temperature_c(t_s: np.ndarray, temperature_c: np.ndarray, dt_s: np.ndarray | None = None,
                              tau_s: float = 600.0) -> float:
    """Device temperature the run settled at (degC): the indoor start removed.

    A watch starts a run at indoor temperature and relaxes towards air temperature plus the warmth of
    the wrist with a thermal time constant of ~10 min (Garmin advises taking a watch off for 20-30 min
    to read air temperature). The run's mean reading therefore depends on its length and on how far
    indoor and outdoor temperature differ. Here ``T(t) = T_settled + c * exp(-t / tau_s)`` is fitted by
    (time-weighted) least squares over all samples with a temperature, and ``T_settled`` is returned,
    clamped to the range of the readings. Runs shorter than ``tau_s`` or with fewer than 10 readings:
    the mean reading. NaN without readings.
    """
    t = np.asarray(t_s, dtype=float)
    y = np.asarray(temperature_c, dtype=float)
    w = np.ones(len(t)) if dt_s is None else np.asarray(dt_s, dtype=float)
    ok = np.isfinite(t) & np.isfinite(y) & np.isfinite(w) & (w > 0)
    if not ok.any():
        return float("nan")
    t, y, w = t[ok], y[ok], w[ok]
    mean = float(np.sum(w * y) / np.sum(w))
    if len(t) < 10 or tau_s <= 0 or t[-1] - t[0] < tau_s:
        return mean
    x = np.exp(-(t - t[0]) / tau_s)
    X = np.column_stack([np.ones(len(t)), x]) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(X, y * np.sqrt(w), rcond=None)
    if not np.isfinite(coef[0]):
        return mean
    return float(np.clip(coef[0], y.min() - 3.0, y.max() + 3.0))


def run_summary(steady: pd.DataFrame) -> dict[str, float]:
    """Time-weighted means over a run's steady samples and the pace-per-heartbeat metrics.

    ``m_per_beat`` = mean speed (m/min) / mean HR (bpm) — the efficiency factor in metric units;
    ``gap_m_per_beat`` the same with grade-adjusted speed (Minetti 2002).
    """
    w = steady["dt_s"].to_numpy(dtype=float)
    speed = _wmean(steady["speed_m_s"].to_numpy(dtype=float), w)
    gap = _wmean(steady["gap_speed_m_s"].to_numpy(dtype=float), w)
    hr = _wmean(steady["hr_bpm"].to_numpy(dtype=float), w)
    temp = _wmean(steady["temperature_c"].to_numpy(dtype=float), w)
    return {
        "steady_s": float(np.sum(w)),
        "speed_m_s": speed,
        "gap_speed_m_s": gap,
        "heart_rate_bpm": hr,
        "m_per_beat": speed * 60 / hr,
        "gap_m_per_beat": gap * 60 / hr,
        "decoupling_pct": run_decoupling(steady),
        "temperature_c": temp,
    }


def run_terrain(steady_seg: pd.DataFrame) -> dict[str, float]:
    """Terrain of a run's steady samples: ascent per km (m/km) and mean absolute grade (%).

    ``steady_seg`` needs ``grade`` (fraction), ``speed_m_s`` and ``dt_s``; ascent is the sum of the positive
    grade x distance of each sample (the smoothed profile the grade-adjusted speed uses, so GPS altitude
    noise is not counted as climbing).
    """
    if steady_seg.empty or "grade" not in steady_seg:
        return {"climb_m_per_km": np.nan, "mean_abs_grade_pct": np.nan}
    grade = steady_seg["grade"].to_numpy(dtype=float)
    step_m = steady_seg["speed_m_s"].to_numpy(dtype=float) * steady_seg["dt_s"].to_numpy(dtype=float)
    ok = np.isfinite(grade) & np.isfinite(step_m)
    dist_km = float(np.sum(step_m[ok])) / 1000
    climb = float(np.sum(np.maximum(grade[ok], 0.0) * step_m[ok]))
    return {"climb_m_per_km": climb / dist_km if dist_km > 0 else np.nan,
            "mean_abs_grade_pct": _wmean(np.abs(grade) * 100, steady_seg["dt_s"].to_numpy(dtype=float))}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"


def _reason_no_signal(seg: pd.DataFrame, params: AnalysisParams) -> str | None:
    """No speed at all, no heart rate at all, or no moving time after the warm-up."""
    if seg.attrs.get("speed_source") == "none":
        return "no speed, distance or position data"
    if seg["hr_missing"].all() or (seg["hr_missing"] | seg["hr_implausible"]).all():
        return "no heart rate"
    dt = seg["dt_s"].to_numpy()
    if dt[_moving(seg)].sum() <= 0:
        total = float(seg["t_s"].iloc[-1] - seg["t_s"].iloc[0]) if len(seg) else 0.0
        return f"no moving time after the {_minutes(params.warmup_s)} warm-up (recorded {_minutes(total)})"
    return None


def _moving(seg: pd.DataFrame) -> np.ndarray:
    return ~(seg["warmup"] | seg["stopped"] | seg["too_fast"]).to_numpy()


def _reason_hr_coverage(seg: pd.DataFrame, params: AnalysisParams) -> str | None:
    """Valid HR on less than ``min_hr_coverage`` of the moving time after the warm-up."""
    dt = seg["dt_s"].to_numpy()
    moving = _moving(seg)
    hr_present = ~(seg["hr_missing"] | seg["hr_implausible"]).to_numpy()
    coverage = float(dt[moving & hr_present].sum()) / float(dt[moving].sum())
    if coverage < params.min_hr_coverage:
        return f"heart rate on only {coverage * 100:.0f} % of moving time (min {params.min_hr_coverage * 100:.0f} %)"
    return None


def _reason_flat_hr(seg: pd.DataFrame, params: AnalysisParams) -> str | None:
    """A stuck HR sensor: HR within ``flat_hr_range_bpm`` while pace varies (docs/analysis.md)."""
    response = run_hr_response(seg)
    if not response.flat_lined(params):
        return None
    hr = (f"{response.hr_low_bpm:.0f} bpm" if round(response.hr_low_bpm) == round(response.hr_high_bpm)
          else f"{response.hr_low_bpm:.0f}-{response.hr_high_bpm:.0f} bpm")
    return (f"flat-lined heart rate: {hr} while pace varied by {response.pace_range_pct:.0f} % "
            f"(HR that does not follow pace is a stuck sensor; needs more than "
            f"{params.flat_hr_range_bpm:.0f} bpm of range)")


def _reason_intervals(seg: pd.DataFrame, params: AnalysisParams) -> str | None:
    """More than ``interval_max_surges`` surges: an interval session."""
    surges = int(seg.attrs.get("surges", 0))
    if surges > params.interval_max_surges:
        return (f"interval session: {surges} surges of at least {params.interval_surge_min_s:.0f} s more than "
                f"{params.interval_surge_pct:.0f} % above the run's usual pace (HR never settles)")
    return None


def _reason_steady_time(seg: pd.DataFrame, params: AnalysisParams) -> str | None:
    """Less than ``min_steady_s`` of steady samples; the largest cause of lost moving time is named."""
    dt = seg["dt_s"].to_numpy()
    steady_s = float(dt[seg["steady"].to_numpy()].sum())
    if steady_s >= params.min_steady_s:
        return None
    moving = _moving(seg)
    losses = {
        "pace changes (intervals, surges, stops)": (moving & (seg["transition"] | seg["after_gap"]).to_numpy()),
        "unsteady pace": (moving & seg["unsteady"].to_numpy() & ~seg["transition"].to_numpy()),
        "cadence lock of the optical HR": (moving & seg["cadence_lock"].to_numpy()),
        "HR spikes/dropouts": (moving & ~np.isfinite(seg["hr_bpm"].to_numpy()) & ~seg["cadence_lock"].to_numpy()),
    }
    cause, mask = max(losses.items(), key=lambda kv: dt[kv[1]].sum())
    detail = f"; {_minutes(dt[mask].sum())} lost to {cause}" if dt[mask].sum() > 0 else ""
    # Whole minutes rounded DOWN: "only 15 min steady (min 15)" for 14.6 minutes would read as a contradiction.
    return f"only {math.floor(steady_s / 60):.0f} min steady (min {params.min_steady_s / 60:.0f}){detail}"


# The checks of one cleaned run, in order; the first that fails names the reason.
EXCLUSION_CHECKS = (_reason_no_signal, _reason_hr_coverage, _reason_flat_hr, _reason_intervals, _reason_steady_time)


def run_exclusion_reason(seg: pd.DataFrame, params: AnalysisParams) -> str | None:
    """Why a cleaned run cannot be included, in words; None when it can.

    Checks, in order (:data:`EXCLUSION_CHECKS`): speed source, any HR, moving time after warm-up, HR
    coverage of the moving time, flat-lined HR, interval session (repeated surges), steady time. When
    steady time is short, the largest cause of lost moving time is named. The reference-speed check
    needs the whole athlete and runs later (:func:`runs_outside_reference_speed`).
    """
    for check in EXCLUSION_CHECKS:
        reason = check(seg, params)
        if reason is not None:
            return reason
    return None


def run_gap_lag_range(steady: pd.DataFrame) -> tuple[float, float]:
    """The 5-95 % (time-weighted) range of a run's lagged grade-adjusted speed over its steady samples
    (m/s): the range of pace the run covers, for :func:`runs_outside_reference_range`."""
    lo, hi = weighted_quantile(steady["gap_lag_m_s"].to_numpy(dtype=float), steady["dt_s"].to_numpy(dtype=float),
                               [0.05, 0.95])
    return float(lo), float(hi)


def runs_outside_reference_range(ranges: Mapping[str, tuple[float, float]], ref_speed_m_s: float,
                                 params: AnalysisParams) -> dict[str, str]:
    """Runs whose steady pace lies more than ``ref_speed_margin_m_s`` from the reference speed, with the reason.

    The economy index is each run's HR predicted at the athlete's reference speed; a run that never came
    near that speed (a walk, a race) would have it EXTRAPOLATED along the athlete's HR-speed line, which
    is not linear down at walking speeds and whose slope error grows with the distance. ``ranges``: per
    run still included (activity_id), the range its steady pace covers (:func:`run_gap_lag_range`).
    Returns {activity_id: reason} for the runs to exclude (pure; empty without a finite reference speed).
    """
    if not np.isfinite(ref_speed_m_s) or not ranges:
        return {}
    margin = params.ref_speed_margin_m_s
    out: dict[str, str] = {}
    for activity_id, (lo, hi) in ranges.items():
        if not (np.isfinite(lo) and np.isfinite(hi)):
            continue
        if hi < ref_speed_m_s - margin or lo > ref_speed_m_s + margin:
            side = "below" if hi < ref_speed_m_s else "above"
            out[activity_id] = (f"steady pace {lo:.2f}-{hi:.2f} m/s is more than {margin:.1f} m/s {side} the "
                                f"reference speed {ref_speed_m_s:.2f} m/s (HR there would be extrapolated)")
    return out


def runs_outside_reference_speed(steady: pd.DataFrame, ref_speed_m_s: float,
                                 params: AnalysisParams) -> dict[str, str]:
    """:func:`runs_outside_reference_range` from the steady samples of the runs still included
    (activity_id, dt_s, gap_lag_m_s: the lagged grade-adjusted speed the model uses)."""
    if not np.isfinite(ref_speed_m_s) or steady.empty:
        return {}
    ranges = {a: run_gap_lag_range(run) for a, run in steady.groupby("activity_id", sort=False)}
    return runs_outside_reference_range(ranges, ref_speed_m_s, params)


def _unknown_sport_reason(seg: pd.DataFrame, p: AnalysisParams) -> str | None:
    """Why an activity without a recorded sport is not taken for a run (its moving speed), or None."""
    moving = seg.loc[~seg["stopped"], "speed_m_s"]
    lo, hi = p.unknown_sport_speed_range_m_s
    med = float(moving.median()) if len(moving) else float("nan")
    if not np.isfinite(med):
        return "sport not recorded and no moving samples to tell whether it is a run"
    if not (lo <= med <= hi):
        return f"sport not recorded and moving speed {med:.1f} m/s is not typical of running ({lo:g}-{hi:g} m/s)"
    return None


def run_process(samples: pd.DataFrame, activity: Mapping[str, Any], params: AnalysisParams | None = None) -> RunResult:
    """Analyse one activity: the per-run recipe.

    ``activity`` is one ``activities`` row (activity_id, athlete_id, sport, sub_sport, start_time,
    elapsed_s, distance_m). Returns its ``run_metrics`` row (``hr_at_ref_bpm``/``economy_m_per_beat``
    are filled later by the athlete-level model) and, for included runs, what the athlete-level steps
    read of its steady samples (see :class:`RunResult`).
    """
    p = params or AnalysisParams()
    row: dict[str, Any] = {
        "activity_id": activity["activity_id"], "athlete_id": activity["athlete_id"],
        "start_time": activity["start_time"], "sub_sport": activity.get("sub_sport"),
        "duration_s": activity.get("elapsed_s"),
        "distance_km": (activity.get("distance_m") or np.nan) / 1000 if not _isna(activity.get("distance_m")) else np.nan,
        "steady_s": 0.0, "speed_m_s": np.nan, "gap_speed_m_s": np.nan, "heart_rate_bpm": np.nan,
        "m_per_beat": np.nan, "gap_m_per_beat": np.nan, "hr_at_ref_bpm": np.nan, "economy_m_per_beat": np.nan,
        "decoupling_pct": np.nan, "temperature_c": np.nan, "device_temperature_c": np.nan, "included": False,
        "exclusion_reason": None, "climb_m_per_km": np.nan, "mean_abs_grade_pct": np.nan,
    }
    # 1. Is it a run at all? (cycling, swimming... are listed with the reason, never analysed)
    kind, treadmill = run_kind(activity.get("sport"), activity.get("sub_sport"))
    if kind not in ("run", "maybe"):
        row["exclusion_reason"] = kind
        return RunResult(row)
    if samples is None or len(samples) < 2:
        row["exclusion_reason"] = "no samples"
        return RunResult(row)
    # 2. Clean: time base, speed (device > distance > smoothed positions), grade, GAP, HR checks.
    seg = run_clean(samples, p, treadmill=treadmill)
    if _isna(row["duration_s"]) and len(seg):
        row["duration_s"] = float(seg["t_s"].iloc[-1])
    if _isna(row["distance_km"]) and "distance_m" in samples and samples["distance_m"].notna().any():
        row["distance_km"] = float(pd.to_numeric(samples["distance_m"], errors="coerce").max()) / 1000
    if kind == "maybe" and (not_a_run := _unknown_sport_reason(seg, p)):
        row["exclusion_reason"] = not_a_run
        return RunResult(row)
    # 3. Steady state: stable grade-adjusted pace, outside tempo transitions, with clean HR.
    seg = run_steady_segments(seg, p)
    reason = run_exclusion_reason(seg, p)
    steady = seg.loc[seg["steady"], STEADY_COLUMNS].reset_index(drop=True)
    # 4. Summarise the steady part (reported even for excluded runs when there is some).
    if len(steady):
        row.update(run_summary(steady))
        row.update(run_terrain(seg.loc[seg["steady"]]))
    # The temperature the heat model uses: what the device settled at (indoor start removed), or the
    # steady-sample mean (heat_temperature = "mean").
    if p.heat_temperature == "settled":
        row["device_temperature_c"] = run_settled_temperature_c(seg["t_s"].to_numpy(), seg["temperature_c"].to_numpy(),
                                                              seg["dt_s"].to_numpy(), p.device_temp_tau_s)
    else:
        row["device_temperature_c"] = row["temperature_c"]
    row["included"] = reason is None
    row["exclusion_reason"] = reason
    if reason is not None:
        return RunResult(row)
    # 5. What the athlete-level steps read of the steady samples (the samples themselves are dropped).
    return RunResult(row, economy_run_bins(steady, p.model_bin_s), run_gap_lag_range(steady))

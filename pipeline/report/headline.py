"""The headline box: the verdict, the change with its CI, the same in a runner's units, how the method did at
fake block starts in the athlete's own record, and, first, why the verdict cannot be trusted where it cannot.

Pure functions of :class:`~pipeline.report.data.AthleteReportData`. The numbers are ``block_effects``
values: the headline estimate (calibrated against negative controls where the row has calibrated columns,
else raw) and, for the runner's units, the same row's counterfactual heart rate (the ``hr_at_ref_bpm`` its
row's ``baseline_value``: the heart rate at the reference speed that the pre-block trend predicted). The
economy index is v_ref x 60 / HR at v_ref, so a change of c % in economy is HR x (1 - 1 / (1 + c/100))
fewer beats at that speed; for the raw estimate this equals the hr_at_ref_bpm row's baseline_value -
response_value exactly (both are the same ITS fit, on the log scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import pandas as pd

from pipeline.report import story
from pipeline.report.story import calibrated
from pipeline.report.data import AthleteReportData
from pipeline.warehouse.contract import HEADLINE_METHOD, HEADLINE_METRIC

M_PER_MILE = 1609.344
# The smallest detectable change (Bloom 1995, "Minimum detectable effects", Evaluation Review 19:547): the true
# change the verdict rule would call with this power, given the headline estimate's SE. 80 % is the usual
# convention (Cohen 1988); the page's CIs are 95 %.
DETECT_POWER = 0.80
Z_CI = NormalDist().inv_cdf(0.975)
# Fake-start false-verdict rate above which the page warns (DESIGN.md "placebo check": 10 %).
FALSE_VERDICT_WARN = 0.10
FALSE_VERDICTS = ("gain", "loss")


CALIBRATED_FIELDS = ("change_pct", "ci_low_pct", "ci_high_pct", "verdict")


def flag(row: pd.Series, name: str) -> bool | None:
    """A BOOLEAN column of a ``block_effects`` row: True, False, or None when NULL or absent. (DuckDB's
    BOOLEAN arrives as pandas' nullable boolean, so a row holds numpy bools and pd.NA, never the ``True``
    and ``False`` singletons an ``is`` test would need.)"""
    value = row.get(name)
    return None if value is None or pd.isna(value) else bool(value)


def is_calibrated(row: pd.Series) -> bool:
    value = row.get("calibrated_change_pct")
    return value is not None and value is not pd.NA and not (isinstance(value, float) and math.isnan(value))


def pace_text(speed_m_s: float | None, units: str = "metric") -> str:
    """``5:43 /km`` (or ``9:12 /mi``) from a speed in m/s; "n/a" when unknown."""
    if speed_m_s is None or not (isinstance(speed_m_s, (int, float)) and speed_m_s > 0):
        return "n/a"
    per = M_PER_MILE if units == "imperial" else 1000.0
    total = int(round(per / speed_m_s))
    return f"{total // 60}:{total % 60:02d} /{'mi' if units == 'imperial' else 'km'}"


def distance_text(km: float | None, units: str = "metric") -> str:
    if km is None or pd.isna(km):
        return "n/a"
    return f"{km * 1000 / M_PER_MILE:.1f} mi" if units == "imperial" else f"{km:.1f} km"


@dataclass(frozen=True)
class RunnerUnits:
    """The headline change as beats per minute at the athlete's reference pace (> 0 = fewer beats)."""

    bpm_lower: float
    bpm_lower_low: float
    bpm_lower_high: float
    hr_predicted_bpm: float
    pace: str
    sentence: str


def _bpm_lower(hr_bpm: float, change_pct: float) -> float:
    return hr_bpm * (1 - 1 / (1 + change_pct / 100))


def reference_speed(tables: AthleteReportData) -> float | None:
    """The reference speed of the economy index the analysis used (analysis_runs), else None."""
    run = tables.analysis
    value = None if run is None else run.get("ref_speed_m_s")
    return float(value) if value is not None and not pd.isna(value) and value > 0 else None


def runner_units(tables: AthleteReportData, row: pd.Series) -> RunnerUnits | None:
    """The headline ``row`` (block_effects, headline metric and method) in beats per minute at the reference
    pace; None without the block's hr_at_ref_bpm counterfactual or the reference speed."""
    eff = tables.effects
    hr = eff[(eff["block_id"] == row["block_id"]) & (eff["metric"] == "hr_at_ref_bpm")
             & (eff["method"] == HEADLINE_METHOD)]
    speed = reference_speed(tables)
    change, lo, hi = (calibrated(row, k) for k in ("change_pct", "ci_low_pct", "ci_high_pct"))
    if hr.empty or speed is None or change is None or pd.isna(change) or pd.isna(hr.iloc[0]["baseline_value"]):
        return None
    hr_cf = float(hr.iloc[0]["baseline_value"])
    bpm, b_lo, b_hi = (_bpm_lower(hr_cf, c) if c is not None and not pd.isna(c) else math.nan
                       for c in (change, lo, hi))
    pace = pace_text(speed, tables.units)
    n = round(abs(bpm))
    clear = calibrated(row, "verdict") in ("gain", "loss")
    if n == 0:
        what = "no change in heart rate"
    else:
        what = f"{'about' if clear else 'an estimated'} {n} bpm {'lower' if bpm > 0 else 'higher'} heart rate"
    ci = ""
    if not (math.isnan(b_lo) or math.isnan(b_hi)):
        ci = f" (change in heart rate 95 % CI {_signed_bpm(-b_hi)} to {_signed_bpm(-b_lo)} bpm)"
    sentence = (f"In a runner's units: {what} at your usual steady pace of {pace}{ci}, against the "
                f"{hr_cf:.0f} bpm your pre-block trend predicted there"
                + ("." if clear else ", too uncertain to call a change."))
    return RunnerUnits(bpm, b_lo, b_hi, hr_cf, pace, sentence)


def _signed_bpm(hr_change_bpm: float) -> str:
    """A change in heart rate, whole beats with its sign: "−3", "+1", "0"."""
    n = round(hr_change_bpm)
    return "0" if n == 0 else f"{'+' if n > 0 else story.MINUS}{abs(n)}"


@dataclass(frozen=True)
class FakeStarts:
    """How one method did at the fake block starts (placebo_checks) of one block: rated starts, false
    verdicts (gain or loss where nothing began)."""

    method: str
    total: int
    gains: int
    losses: int

    @property
    def false(self) -> int:
        return self.gains + self.losses

    @property
    def rate(self) -> float:
        return self.false / self.total if self.total else math.nan

    @property
    def text(self) -> str:
        if not self.total:
            return "no fake block start fits your record"
        return f"false verdicts at {self.false} of {self.total} fake starts"


def fake_starts(tables: AthleteReportData, block_id: str | None, method: str) -> FakeStarts:
    pc = tables.placebo
    rows = pc[(pc["metric"] == HEADLINE_METRIC) & (pc["method"] == method)]
    record_wide = "position" in rows and rows["position"].notna().any()
    if block_id is not None and not record_wide:  # before the record-wide controls: per block
        rows = rows[rows["block_id"] == block_id]
    rated = rows[rows["verdict"].notna() & (rows["verdict"] != story.INSUFFICIENT)]
    return FakeStarts(method, len(rated), int((rated["verdict"] == "gain").sum()),
                      int((rated["verdict"] == "loss").sum()))


def honesty_line(tables: AthleteReportData, row: pd.Series) -> str:
    """One sentence: how the method did at fake block starts in this athlete's record. A calibrated row:
    :func:`pipeline.report.story.controls_sentence` (the controls, the systematic error measured on them
    and where the calibration came from); a raw row: the false verdicts there."""
    if is_calibrated(row):
        text = story.controls_sentence(tables, row)
        if text:
            return text
    f = fake_starts(tables, row["block_id"], HEADLINE_METHOD)
    if not f.total:
        return ("The same method could not be tried at fake block starts: your record has too few runs "
                "outside the block's windows, so how often it errs on your data is unknown.")
    rate = f"{100 * f.rate:.0f} %"
    tail = (" The calibrated result above allows for that error." if is_calibrated(row) else
            (" Treat the headline with caution." if f.rate > FALSE_VERDICT_WARN else ""))
    return (f"The same method at {f.total} fake block starts in your record, where no block began: a gain at "
            f"{f.gains}, a loss at {f.losses} ({rate} false verdicts).{tail}")


def _call_threshold(se: float, swc_pct: float) -> float:
    """The log-scale estimate above which the verdict rule calls a gain: its 95 % CI clear of zero and the
    estimate beyond the smallest worthwhile change."""
    return max(Z_CI * se, math.log1p(max(swc_pct, 0.0) / 100))


def detectable_change_pct(se_pct: float, swc_pct: float, power: float = DETECT_POWER) -> float:
    """The smallest true change (%) the verdict rule would call ``power`` of the time, for an unbiased estimate
    with standard error ``se_pct`` (log scale x 100, as ``block_effects`` stores it); NaN without an SE."""
    if not (se_pct > 0 and math.isfinite(se_pct)):
        return math.nan
    se = se_pct / 100
    return 100 * math.expm1(_call_threshold(se, swc_pct) + NormalDist().inv_cdf(power) * se)


def call_probability(true_change_pct: float, se_pct: float, swc_pct: float) -> float:
    """How often the verdict rule calls a true gain of ``true_change_pct`` (> 0) a gain, for an unbiased
    estimate with standard error ``se_pct``: Phi((log(1 + change) - threshold) / se)."""
    if not (se_pct > 0 and math.isfinite(se_pct)):
        return math.nan
    se = se_pct / 100
    return NormalDist().cdf((math.log1p(true_change_pct / 100) - _call_threshold(se, swc_pct)) / se)


# The change the line quotes the chance of calling: a gain at the low end of what strength training is
# reported to bring (2-8 %, Balsalobre-Fernandez et al. 2016; the brief's 2-4 %).
TYPICAL_GAIN_PCT = 2.0


def detectable_line(row: pd.Series) -> str:
    """For a verdict other than gain or loss: how large a change this record could have called, so that "no
    clear change" and "cannot tell" say what they could and could not see. Empty without an SE."""
    if calibrated(row, "verdict") not in ("no clear change", "cannot tell"):
        return ""
    if flag(row, "sensor_change"):
        # The verdict was on the device-adjusted estimate (pipeline.analyze.verdict), whose SE is not stored:
        # it is read back from its 95 % CI on the log scale (NaN when the shift could not be separated).
        lo, hi = (story.as_float(row.get(f"device_adjusted_ci_{end}_pct")) for end in ("low", "high"))
        se = 100 * story.log_se_from_ci_pct(lo, hi, Z_CI)
    else:
        se = story.as_float(calibrated(row, "se_pct"))
    swc = story.as_float(row.get("swc_pct"))
    swc = 0.0 if math.isnan(swc) else swc
    d = detectable_change_pct(se, swc)
    if not math.isfinite(d):
        return ""
    p = call_probability(TYPICAL_GAIN_PCT, se, swc)
    return (f"What this record can see: a true change of about {d:.1f} % either way would be called "
            f"{100 * DETECT_POWER:.0f} % of the time; a {TYPICAL_GAIN_PCT:.0f} % gain, {100 * p:.0f} % of the time.")


def trust_problems(tables: AthleteReportData, row: pd.Series) -> list[str]:
    """Why the headline verdict cannot be taken at face value, in words (empty: nothing known against it)."""
    problems = []
    verdict = calibrated(row, "verdict")
    if verdict == "cannot tell":     # the reason itself is in the sentence below ("Why: ...")
        problems.append("the data cannot tell a typical effect from none")
    if flag(row, "sensor_change"):
        problems.append("your heart-rate sensor changed between the pre-block runs and the response window, "
                        "and a sensor change shifts heart rate by itself")
    if flag(row, "season_controlled") is False:
        problems.append("your record is shorter than 12 months, so the season is not modelled")
    if flag(row, "heat_controlled") is False:
        problems.append("too few runs carry a temperature, so heat is not adjusted for")
    source = row.get("calibration_source")
    if source in ("squad", "default"):
        problems.append("your record has too few fake block starts to measure the method's error on your data "
                        f"({'the squad' if source == 'squad' else 'a conservative default'} is used instead)")
    f = fake_starts(tables, row["block_id"], HEADLINE_METHOD)
    if not is_calibrated(row):
        if not f.total:
            problems.append("the method could not be checked at fake block starts in your record")
        elif f.rate > FALSE_VERDICT_WARN:
            problems.append(f"the same method gave {f.false} false verdicts at {f.total} fake block starts")
    return problems


@dataclass(frozen=True)
class HeadlineBox:
    verdict: str
    change: str
    ci: str
    sentence: str
    runner: RunnerUnits | None
    honesty: str
    detectable: str
    problems: list[str]
    calibrated: bool


def headline_box(tables: AthleteReportData) -> HeadlineBox | None:
    """The box's parts for the headline block; None when there is no usable headline estimate (the page
    then shows :func:`pipeline.report.story.headline_sentence` alone)."""
    effect = story.headline_effect(tables)
    if effect is None:
        return None
    r = effect.row
    change, lo, hi, verdict = (calibrated(r, k) for k in ("change_pct", "ci_low_pct", "ci_high_pct", "verdict"))
    return HeadlineBox(str(verdict), story.format_signed_1dp(change),
                       f"{story.format_1dp(lo)} to {story.format_1dp(hi)}",
                       story.headline_sentence(tables, with_controls=False),
                       runner_units(tables, r), honesty_line(tables, r), detectable_line(r), trust_problems(tables, r),
                       is_calibrated(r))

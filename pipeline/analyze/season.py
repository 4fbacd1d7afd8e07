"""Season: when a record is long enough to learn the athlete's annual cycle, and the terms that model it.

Economy swings with the season for reasons a heat model does not see (clothing, footing, daylight, colds,
training phases) and, without any temperature, heat itself. With at least a year of included runs the
block model carries an annual harmonic of the day of year (sine and cosine), estimated jointly with the
block terms from the whole record, so a spring block is compared with the season's expected course. A
second harmonic (a six-month cycle) is added only when the Bayesian information criterion (Schwarz 1978)
of the athlete's base model prefers it. The slow fitness trend is then a natural cubic spline of time with
knots at least a year apart (one interior knot per full year beyond the first), flexible enough for
fitness that builds and plateaus, too stiff to mimic the annual cycle.

Shorter records: the season is not controlled; the block verdict says so and the calibration against
negative controls (or its conservative default) carries that uncertainty.

References: Schwarz G (1978). Estimating the dimension of a model. Ann Stat 6:461-464. Hastie T,
Tibshirani R, Friedman J (2009). The Elements of Statistical Learning, 2nd ed., sect. 5.2.1 (natural
cubic splines).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analyze.params import AnalysisParams

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class SeasonSpec:
    """Whether the season is modelled for an athlete, with what, and over which span."""

    controlled: bool
    harmonics: int                 # 0 (not controlled), 1 or 2
    reason: str                    # why not (or what was chosen), in words
    record_start: pd.Timestamp | None = None
    record_end: pd.Timestamp | None = None
    trend_knots: int = 0           # interior knots of the natural-spline trend


NOT_CONTROLLED = SeasonSpec(False, 0, "no included runs")


def season_spec(start_times: pd.Series, params: AnalysisParams) -> SeasonSpec:
    """Decide whether the athlete's included runs carry a season model (harmonics chosen later).

    Needs ``season_min_days`` (365) between the first and last included run and runs in at least
    ``season_min_months`` (8) of the 12 calendar months, so each part of the cycle is seen.
    """
    t = pd.to_datetime(pd.Series(start_times), utc=True).dropna()
    if t.empty:
        return NOT_CONTROLLED
    span_days = (t.max() - t.min()).total_seconds() / 86400
    months = t.dt.month.nunique()
    if span_days < params.season_min_days:
        return SeasonSpec(False, 0, f"season not controlled: {span_days / 30.44:.0f} months of included runs "
                                    f"(needs {params.season_min_days / 30.44:.0f})", t.min(), t.max())
    if months < params.season_min_months:
        return SeasonSpec(False, 0, f"season not controlled: runs in only {months} of 12 calendar months "
                                    f"(needs {params.season_min_months})", t.min(), t.max())
    knots = max(0, int(span_days // DAYS_PER_YEAR) - 1)
    return SeasonSpec(True, 1, "season controlled (annual harmonic)", t.min(), t.max(), knots)


def _day_of_year_utc(times: pd.Series) -> np.ndarray:
    """Days since 1 January (UTC) with the hour as a fraction: day_of_year - 1 + hour / 24."""
    t = pd.to_datetime(pd.Series(times), utc=True)
    if t.isna().any():
        return (t.dt.day_of_year - 1 + t.dt.hour.to_numpy() / 24.0).to_numpy(dtype=float)
    # The same integers as the .dt accessors, from the UTC datetime64 values directly (each estimate of an
    # athlete's negative controls asks for them, and the accessors cost ~10x more).
    v = t.dt.tz_convert(None).to_numpy()
    day = v.astype("datetime64[D]")
    day0 = (day - v.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)
    hour = ((v - day) // np.timedelta64(1, "h")).astype(np.int64)
    return day0 + hour / 24.0


def season_harmonic_columns(times: pd.Series, harmonics: int) -> np.ndarray:
    """sin/cos of 2 pi h doy / 365.25 for h = 1..harmonics (n x 2*harmonics)."""
    doy = _day_of_year_utc(times)
    cols = []
    for h in range(1, harmonics + 1):
        angle = 2 * np.pi * h * doy / DAYS_PER_YEAR
        cols += [np.sin(angle), np.cos(angle)]
    return np.column_stack(cols) if cols else np.zeros((len(doy), 0))


def natural_spline_basis(x: np.ndarray, lo: float, hi: float, interior_knots: int) -> np.ndarray:
    """Natural cubic spline basis (with intercept) on [lo, hi] with evenly spaced interior knots
    (Hastie et al. 2009, eq. 5.4-5.5); 0 interior knots gives a straight line (1, x)."""
    x = np.asarray(x, dtype=float)
    scale = max(hi - lo, 1e-9)
    u = (x - lo) / scale
    cols = [np.ones(len(u)), u]
    if interior_knots > 0:
        knots = np.linspace(0.0, 1.0, interior_knots + 2)

        def d(k: int) -> np.ndarray:
            return (np.maximum(u - knots[k], 0) ** 3 - np.maximum(u - knots[-1], 0) ** 3) / (knots[-1] - knots[k])
        last = d(len(knots) - 2)
        cols += [d(k) - last for k in range(len(knots) - 2)]
    return np.column_stack(cols)


def season_trend_columns(times: pd.Series, spec: SeasonSpec) -> np.ndarray:
    """The slow trend of the whole-record model: natural spline of time in weeks over the record."""
    t = pd.to_datetime(pd.Series(times), utc=True)
    weeks = ((t - spec.record_start) / pd.Timedelta(weeks=1)).to_numpy(dtype=float)
    span = (spec.record_end - spec.record_start) / pd.Timedelta(weeks=1)
    return natural_spline_basis(weeks, 0.0, float(span), spec.trend_knots)


def season_bic(y: np.ndarray, X: np.ndarray) -> float:
    """Bayesian information criterion of an OLS fit with Gaussian errors: n log(RSS/n) + k log n."""
    n, k = X.shape
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    rss = float(np.sum((y - X @ beta) ** 2))
    return n * np.log(max(rss, 1e-300) / n) + k * np.log(n)

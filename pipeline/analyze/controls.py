"""Negative controls: the block estimator at fake block starts across the whole record, where nothing began.

Fake starts lie every ``placebo_step_weeks`` (2) on a grid anchored at the first real block's start (or,
without blocks, at the first run's Monday + ``placebo_min_pre_weeks``), wherever

* the fake's ramp and response window [F, F + 12 weeks) overlap no real block's [S, S + 12 weeks) -- so
  before, between and after real blocks, never inside what a block could have changed;
* at least ``placebo_min_pre_weeks`` (6) of record precede F since the record's first Monday or the end of
  the previous real block's response window (the fake's own pre-trend);
* the fake's response window ends before the last included run.

Each is estimated exactly like a real block (same model, covariates, season, heat, calibration class);
estimates without enough runs in either window are dropped. Neighbouring fakes share most of their runs,
so their estimates are strongly correlated; :func:`control_correlation` gives that correlation from the
estimators' own weights and the serial correlation of the runs, and the calibration uses it (the
controls' joint likelihood, and an effective number of controls instead of their count).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import toeplitz

from pipeline.analyze.effects import WEEK, EffectContext, EffectFit, block_windows, estimate, utc
from pipeline.analyze.regression import gls_ar1
from pipeline.analyze.season import season_harmonic_columns, season_trend_columns
from pipeline.warehouse.contract import columns

# placebo_checks' columns up to position (the calibration class and effective number are the athlete's).
CONTROL_COLUMNS = columns("placebo_checks")[:columns("placebo_checks").index("position") + 1]


@dataclass(frozen=True)
class FakeStart:
    start: pd.Timestamp
    floor: pd.Timestamp             # the fake's pre-period may not reach before this
    position: str                   # before | between | after (real blocks) | no block
    block_id: str                   # nearest real block ('' without blocks)


@dataclass(frozen=True)
class ControlSet:
    """One athlete's negative controls for one metric and method: model-scale estimates (> 0 = better),
    their SEs and the correlation matrix of their sampling errors."""

    athlete_id: str
    theta: np.ndarray
    se: np.ndarray
    corr: np.ndarray
    calibration_class: str = ""
    metric: str = ""
    method: str = ""

    @property
    def n(self) -> int:
        return int(len(self.theta))

    @property
    def n_effective(self) -> float:
        """How many independent controls the correlated ones are worth: n^2 / sum of squared correlations
        (the effective number of independent components, Bretherton et al. 1999, J Climate 12:1990);
        n when uncorrelated, 1 when all move together. Negative correlations (one fake's response window is
        a later fake's pre-period) count as dependence too."""
        if self.n == 0:
            return 0.0
        return float(self.n ** 2 / np.sum(self.corr ** 2))


EMPTY_CONTROLS = ControlSet("", np.zeros(0), np.zeros(0), np.zeros((0, 0)))


def fake_starts(run_times: pd.Series, blocks: pd.DataFrame, step_weeks: float, min_pre_weeks: float,
                response_end_weeks: float) -> list[FakeStart]:
    """Valid fake block starts for one athlete (see the module docstring)."""
    t = pd.to_datetime(pd.Series(run_times), utc=True).dropna()
    if t.empty:
        return []
    first = t.min().normalize() - pd.Timedelta(days=t.min().weekday())   # record counted in (Monday) weeks
    last = t.max()
    real = sorted((utc(s), str(b)) for s, b in zip(blocks.get("start_date", []), blocks.get("block_id", [])))
    span = response_end_weeks * WEEK
    anchor = real[0][0] if real else first + min_pre_weeks * WEEK
    k0 = int(np.floor((first - anchor) / (step_weeks * WEEK)))
    out, k = [], k0
    while True:
        f = anchor + k * step_weeks * WEEK
        k += 1
        if f + span > last:
            break
        if f < first or any(f < s + span and s < f + span for s, _ in real):
            continue
        ends = [s + span for s, _ in real if s + span <= f]
        floor = max([first, *ends])
        if f - min_pre_weeks * WEEK < floor:
            continue
        before, after = any(s < f for s, _ in real), any(s > f for s, _ in real)
        position = "no block" if not real else "between" if before and after else "after" if before else "before"
        nearest = min(real, key=lambda sb: abs(sb[0] - f))[1] if real else ""
        out.append(FakeStart(f, floor, position, nearest))
    return out


def run_sequence_rho(runs: pd.DataFrame, metric: str, ctx: EffectContext) -> float:
    """Lag-1 autocorrelation of the metric's residuals around a smooth trend (the runs in time order):
    the serial correlation the controls' correlation is computed with (feasible GLS, Cochrane-Orcutt)."""
    d = runs.assign(start_time=pd.to_datetime(runs["start_time"], utc=True)).sort_values("start_time", kind="stable")
    y = pd.to_numeric(d[metric], errors="coerce")
    d = d[np.isfinite(y) & (y > 0)]
    if len(d) < 20:
        return 0.0
    t = d["start_time"]
    weeks = ((t - t.min()) / WEEK).to_numpy(dtype=float)
    X = np.column_stack([np.ones(len(d)), weeks, weeks ** 2])
    if ctx.season.controlled:
        X = np.column_stack([season_trend_columns(t, ctx.season), season_harmonic_columns(t, ctx.season.harmonics)])
    res = gls_ar1(np.log(pd.to_numeric(d[metric]).to_numpy(dtype=float)), X)
    return float(np.clip(res.rho, 0.0, 0.95))


def control_correlation(weights: list[pd.Series], order: pd.Index, rho: float) -> np.ndarray:
    """Correlation of the controls' estimates: w_i' S w_j / sqrt(...) with S the AR(1) correlation
    (``rho``) of the runs in time order ``order`` (run labels) and w the estimators' weights."""
    if not weights:
        return np.zeros((0, 0))
    W = np.zeros((len(weights), len(order)))
    pos = pd.Series(np.arange(len(order)), index=order)
    for i, w in enumerate(weights):
        W[i, pos.loc[w.index].to_numpy()] = w.to_numpy()
    S = toeplitz(rho ** np.arange(len(order))) if rho > 0 else np.eye(len(order))
    cov = W @ S @ W.T
    sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    return np.clip(cov / np.outer(sd, sd), -1.0, 1.0)


def negative_controls(runs: pd.DataFrame, blocks: pd.DataFrame, ctx: EffectContext, metric: str, method: str,
                      athlete_id: str) -> tuple[pd.DataFrame, ControlSet]:
    """``placebo_checks`` rows for one metric/method and the :class:`ControlSet` the calibration uses.

    ``runs``: the athlete's included runs (index = run labels), ``blocks``: athlete_id, block_id,
    start_date (real blocks; may be empty).
    """
    p = ctx.params
    rows, fits = [], []
    for fs in fake_starts(runs["start_time"], blocks, p.placebo_step_weeks, p.placebo_min_pre_weeks,
                          p.response_end_weeks):
        fit: EffectFit = estimate(runs, block_windows(fs.start, p, fs.floor), metric, method, ctx)
        e = fit.effect
        if e.verdict == "insufficient data" or not np.isfinite(fit.se) or fit.weights is None:
            continue
        fits.append(fit)
        rows.append({"athlete_id": athlete_id, "block_id": fs.block_id, "metric": metric, "method": method,
                     "fake_start": fs.start.date(), "change_pct": e.change_pct, "ci_low_pct": e.ci_low_pct,
                     "ci_high_pct": e.ci_high_pct, "verdict": e.verdict, "se_pct": e.se_pct,
                     "position": fs.position})
    frame = pd.DataFrame(rows, columns=CONTROL_COLUMNS)
    if not fits:
        return frame, ControlSet(athlete_id, np.zeros(0), np.zeros(0), np.zeros((0, 0)), metric=metric, method=method)
    order = runs.assign(start_time=pd.to_datetime(runs["start_time"], utc=True)).sort_values(
        "start_time", kind="stable").index
    corr = control_correlation([f.weights for f in fits], order, run_sequence_rho(runs, metric, ctx))
    return frame, ControlSet(athlete_id, np.array([f.theta for f in fits]), np.array([f.se for f in fits]), corr,
                             metric=metric, method=method)

"""The counterfactual behind a block effect, as a curve: what the pre-block trend predicted, day by day.

The headline estimate (``block_effects``, method ``its``) is the gap between two things: the pre-block
trend extrapolated into the response window, and the level the runs in that window actually reached.
:func:`block_trends` returns both as rows of ``block_trends`` so the report can draw them, from THE SAME
fit that produced the ``block_effects`` row (:func:`pipeline.analyze.effects.its_fit` with the athlete's
:class:`~pipeline.analyze.effects.EffectContext`: same runs, same windows, same design, same season and
heat context, same CI method; no second model):

- ``trend_value``: a + b*t (covariates at their mean), plus the annual season the fit removed where the
  season is controlled (so the curve sits on the runs as they were measured, season included), from the
  first day of the fitting period through the end of the response window (through the ramp weeks it is
  the extrapolation the model assumes there, though they do not enter the fit);
- ``trend_low`` / ``trend_high``: its pointwise 95 % confidence band: x' Cov x with x = (1, t) and the
  parameters' covariance of the fit (AR(1) GLS by default), plus h' Cov_s h for the season's harmonic
  coefficients (their own covariance from the whole-record fit, taken as independent of the local fit),
  t quantile with the fit's residual degrees of freedom. It is the uncertainty of the trend line itself,
  not the spread of single runs, and without the heat model's extra uncertainty that widens the effect's
  CI;
- ``response_value``: the fitted response-window level a + b*t + c + d*(t - t_c) (plus the season), on
  response-window days only. The ratio response_value / trend_value at t = t_c (mean time of the response
  runs) is 1 + the raw ``change_pct``; without a season the two equal the row's ``baseline_value`` and
  ``response_value`` there (with one, those are on season-adjusted values: the curve's values divided by
  the season's factor at t_c).

Values are in the metric's unit (ratio metrics are fitted on the log scale and exponentiated back). The
calibrated headline (``calibrated_change_pct``) is the raw gap minus the systematic error measured on the
negative controls; the curve shows the raw fit, which is what can be drawn through the runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.analyze.effects import WEEK, BlockWindows, EffectContext, block_limits, block_windows, its_fit
from pipeline.analyze.season import season_harmonic_columns
from pipeline.warehouse.contract import HEADLINE_METRIC, columns

# The trend is reported at one point per day: smooth enough for the slightly curved band and the season.
TREND_STEP = pd.Timedelta(days=1)


def _back(scale: str, values: np.ndarray) -> np.ndarray:
    return np.exp(values) if scale == "log" else values


def _season_part(its, times: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The season the fit removed at ``times`` (model scale) and its variance from the harmonics' covariance."""
    if its.season is None or its.season.harmonics == 0:
        return np.zeros(len(times)), np.zeros(len(times))
    h = its.season_sign * season_harmonic_columns(times, its.season.harmonics)
    return h @ its.season.coef, np.einsum("ij,jk,ik->i", h, its.season.cov, h)


def block_trend(runs: pd.DataFrame, windows: BlockWindows, metric: str = HEADLINE_METRIC,
                ctx: EffectContext | None = None) -> pd.DataFrame:
    """One block's curve (columns of ``block_trends`` without the ids); empty when the ITS could not be
    fitted (too few runs). ``runs``: the athlete's included runs; ``windows``: the block's
    :class:`~pipeline.analyze.effects.BlockWindows` and ``ctx`` its athlete's context (as
    :func:`pipeline.analyze.effects.block_effect_fits` uses them)."""
    ctx = ctx or EffectContext()
    its = its_fit(runs, windows, metric, ctx)
    coef = its.coef
    out_cols = [c for c in columns("block_trends") if c not in ("athlete_id", "block_id", "analysis_run_id")]
    if coef.params is None or coef.cov is None or not np.isfinite(coef.est):
        return pd.DataFrame(columns=out_cols)
    first = max(windows.its_pre_start, its.fit["start_time"].min()).normalize()  # no curve before the first run
    days = pd.date_range(first, windows.response_end - TREND_STEP, freq=TREND_STEP)
    middays = pd.Series(days + pd.Timedelta(hours=12))
    t = ((middays - windows.block_start) / WEEK).to_numpy(dtype=float)
    beta, cov = coef.params, coef.cov
    x = np.column_stack([np.ones_like(t), t])
    season, season_var = _season_part(its, middays)
    trend = x @ beta[:2] + season
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", x, cov[:2, :2], x) + season_var, 0.0))
    q = float(stats.t.ppf(1 - (1 - ctx.params.ci_level) / 2, coef.df)) if np.isfinite(coef.df) and coef.df > 0 \
        else 1.96
    in_response = (days >= windows.response_start.normalize()) & (days < windows.response_end)
    response = np.where(in_response, trend + beta[2] + beta[3] * (t - its.t_c), np.nan)
    segment = np.where(days < windows.block_start.normalize(), "fit", np.where(in_response, "response", "ramp"))
    scale = its.spec.scale
    return pd.DataFrame({
        "metric": metric, "day": days.date, "weeks_from_block_start": t, "segment": segment,
        "trend_value": _back(scale, trend), "trend_low": _back(scale, trend - q * se),
        "trend_high": _back(scale, trend + q * se), "response_value": _back(scale, response),
    }, columns=out_cols)


def block_trends(runs: pd.DataFrame, blocks: pd.DataFrame, ctx: EffectContext | None = None,
                 metric: str = HEADLINE_METRIC) -> pd.DataFrame:
    """``block_trends`` rows (without ``analysis_run_id``) for every block of one athlete, with the
    windows and context :func:`pipeline.analyze.effects.block_effect_fits` uses (an earlier block's
    response window truncates a later block's fitting period)."""
    ctx = ctx or EffectContext()
    cols = [c for c in columns("block_trends") if c != "analysis_run_id"]
    frames = []
    if len(runs) and len(blocks):
        for b, not_before in block_limits(blocks, ctx.params):
            curve = block_trend(runs, block_windows(b["_start"], ctx.params, not_before), metric, ctx)
            if len(curve):
                frames.append(curve.assign(athlete_id=b["athlete_id"], block_id=b["block_id"]))
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)

"""Squad science, pure: pooled effects across athletes, teammates as controls, dose-response.

One athlete's honest CI is wider than the 2-4 % effect a strength block may have on running economy; the
squad is where the power is. Everything here takes the analysis tables of many athletes as DataFrames and
returns the rows of the squad tables (``squad_blocks``, ``squad_pooled``, ``squad_did``,
``squad_did_placebo``, ``squad_dose_response``); :mod:`pipeline.analyze.squad_store` reads and writes them.

**Pooled effect** (:func:`meta_analysis`). Each block's headline estimate (economy index, ITS) is taken on
the log scale, y = ln(1 + change/100), with its standard error: the CALIBRATED estimate and SE
(``calibrated_change_pct``, ``calibrated_se_pct``: the block's raw estimate with the systematic error its
negative controls show removed, and that error's spread in the SE) when empirical calibration filled
them, else the raw one (:func:`block_estimates` says which, per block and pooled). The calibration only
reads negative controls (fake block starts), never another block's estimate, and runs before this step,
so pooling cannot feed back into it (docs/squad.md, "Order"). A random-effects model
y_i ~ N(mu, se_i^2 + tau^2) is fitted by ``method``:

``"reml_hksj"`` (default)
    tau^2 by restricted maximum likelihood (Viechtbauer 2005), the CI of mu by Hartung-Knapp-Sidik-Jonkman:
    the variance of mu scaled by the weighted residual mean square, t(k-1) quantiles (Hartung & Knapp
    2001; Sidik & Jonkman 2002). With few blocks the Wald CI is far too narrow (IntHout et al. 2014). The
    scaled variance is never below the unscaled one (the ad hoc floor, Knapp & Hartung 2003; Roever et al.
    2015; :func:`_hk_floor`), so calibrated SEs that carry a systematic error the blocks share are kept.
``"dersimonian_laird"``
    the classic moment estimator of tau^2 (DerSimonian & Laird 1986) with a normal-theory CI.

The fitting is PyMARE's (REML, DL, Knapp-Hartung and meta-regression in one API, checked against R
metafor); the prediction interval (Higgins, Thompson & Spiegelhalter 2009: mu +- t(k-2) sqrt(tau^2 + se^2))
and I^2 from tau^2 and the typical within-block variance (Higgins & Thompson 2002, as metafor reports it)
are computed here. ``tests/analyze/test_squad_meta.py`` reproduces metafor's published BCG vaccine results.

**Teammates as controls** (:func:`squad_did`). For each block, the athlete's change beyond its own
pre-block trend minus the same ITS estimate for teammates without a block over the same calendar windows
(the random-effects mean of the controls' estimates). Both sides are the same local ITS, recomputed here on
the stored runs, raw (not calibrated, no season harmonic): the teammates ARE the control for the season and
the calendar, and calibrating one side would remove the shared systematic error twice. What the season, the weather or a shared calendar
do to everyone cancels; the athlete's own linear trend is already removed by the ITS on both sides.
Assumption (parallel trends): without the block, the athlete's deviation from its linear trend would
have matched the teammates'. Checked on the pre-period: the same difference at fake block starts before
the real one (``squad_did_placebo``), where it should find nothing.

**Dose-response** (:func:`dose_response`). A random-effects meta-regression of the block estimates on one
moderator at a time (sessions per week, weekly volume load, block length, change in running volume),
same methods; with ~10 blocks a model with several moderators would be fitted noise.

References
----------
DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials 7:177-188.
Hartung J, Knapp G (2001). On tests of the overall treatment effect in meta-analysis with normally
distributed responses. Stat Med 20:1771-1782.
Sidik K, Jonkman JN (2002). A simple confidence interval for meta-analysis. Stat Med 21:3153-3159.
Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the random-effects model.
J Educ Behav Stat 30:261-293.
Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. Stat Med 21:1539-1558.
Higgins JPT, Thompson SG, Spiegelhalter DJ (2009). A re-evaluation of random-effects meta-analysis.
J R Stat Soc A 172:137-159.
Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression with a single covariate.
Stat Med 22:2693-2710.
Roever C, Knapp G, Friede T (2015). Hartung-Knapp-Sidik-Jonkman approach and its modification for
random-effects meta-analysis with few studies. BMC Med Res Methodol 15:99.
IntHout J, Ioannidis JPA, Borm GF (2014). The Hartung-Knapp-Sidik-Jonkman method for random effects
meta-analysis is straightforward and considerably outperforms the standard DerSimonian-Laird method.
BMC Med Res Methodol 14:25.
Angrist JD, Pischke J-S (2009). Mostly Harmless Econometrics, ch. 5 (differences-in-differences).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.analyze.effects import WEEK, BlockWindows, EffectContext, block_windows, effect_its
from pipeline.analyze.params import AnalysisParams, settings_from_section
from pipeline.errors import PipelineError
from pipeline.warehouse.contract import (
    DOSE_MODERATORS, HEADLINE_METHOD, HEADLINE_METRIC, META_METHODS, columns,
)

# The calibrated columns of block_effects (empirical calibration, docs/analysis.md). Used when present.
CALIBRATED_COLUMNS = ("calibrated_change_pct", "calibrated_ci_low_pct", "calibrated_ci_high_pct")
CALIBRATED_SE_COLUMN = "calibrated_se_pct"   # log scale x 100 (the SD of the calibrated log change)
# The per-run heat key the squad's ITS uses: one heat curve per athlete, its uncertainty as a scale (below).
SQUAD_HEAT_KEY = "athlete"
Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class SquadParams:
    """Squad-analysis settings; ``[squad]`` in pipeline.toml overrides any of them."""

    meta_method: str = "reml_hksj"        # or "dersimonian_laird"
    ci_level: float = 0.95
    min_blocks: int = 2                   # fewer blocks: nothing is pooled (HKSJ has k-1 degrees of freedom)
    min_controls: int = 1                 # teammates needed for a difference-in-differences estimate
    min_moderator_blocks: int = 4         # fewer blocks with a moderator (or no spread): no meta-regression
    pre_check_step_weeks: float = 2.0     # parallel-trends check: fake starts every 2 weeks before the block

    @classmethod
    def from_config(cls, cfg: dict | None) -> SquadParams:
        """Settings from the parsed pipeline.toml (its ``[squad]`` section)."""
        return settings_from_section(cls, (cfg or {}).get("squad"), "squad")

    def validate(self) -> None:
        """Reject settings that cannot work."""
        if self.meta_method not in META_METHODS:
            raise PipelineError(f"pipeline.toml [squad]: meta_method = {self.meta_method!r} is not one of "
                                f"{', '.join(META_METHODS)}")
        if not 0 < self.ci_level < 1:
            raise PipelineError("pipeline.toml [squad]: ci_level must be between 0 and 1")
        for f in fields(self):
            if f.name not in ("meta_method", "ci_level") and getattr(self, f.name) <= 0:
                raise PipelineError(f"pipeline.toml [squad]: {f.name} must be positive")


# ------------------------------------------------------------------------------------------ meta-analysis


@dataclass(frozen=True)
class MetaResult:
    """A random-effects meta-analysis on the log scale (estimate, CI and PI in log units)."""

    method: str
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    p_value: float
    tau2: float
    i2_pct: float
    q: float
    q_p_value: float
    weights: np.ndarray      # random-effects weights 1 / (se_i^2 + tau^2), normalised to sum to 1


def _pymare_fit(y: np.ndarray, v: np.ndarray, X: np.ndarray | None, method: str, hksj: bool | None = None):
    """Fit y ~ X (intercept added) with PyMARE; returns its MetaRegressionResults."""
    from pymare import Dataset
    from pymare.estimators import DerSimonianLaird, VarianceBasedLikelihoodEstimator

    if method not in META_METHODS:
        raise ValueError(f"unknown meta-analysis method {method!r}; valid: {', '.join(META_METHODS)}")
    use_hk = (method == "reml_hksj") if hksj is None else hksj
    correction = "knapp-hartung" if use_hk else "wald"
    est = (VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction=correction)
           if method == "reml_hksj" else DerSimonianLaird(small_sample_correction=correction))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # PyMARE warns about tiny k; the t(k-1) interval says it already
        est.fit_dataset(Dataset(y, v, X, add_intercept=True))
    return est.summary()


def _hk_floor(y: np.ndarray, v: np.ndarray, X: np.ndarray | None, method: str, hksj: bool | None, alpha: float,
              j: int) -> tuple[float, float, float, float, float] | None:
    """The Knapp-Hartung ad hoc floor (Knapp & Hartung 2003; Roever, Knapp & Friede 2015): coefficient ``j``'s
    (estimate, SE, CI low, CI high, p) with the SE never below the plain random-effects (Wald) SE, t(k - p)
    quantiles; None when the Knapp-Hartung correction is not in use.

    Why: HKSJ scales the variance by the weighted residual mean square q, so blocks that agree better than
    their SEs say (q < 1) make the CI NARROWER than the normal-theory one. The blocks' calibrated SEs carry
    each one's systematic error (season, heat, time of year); errors the athletes share -- blocks at the same
    time of year -- do not show as spread between the estimates, and plain HKSJ would silently drop them."""
    if not ((method == "reml_hksj") if hksj is None else hksj):
        return None
    wald = _pymare_fit(y, v, X, method, hksj=False).get_fe_stats(alpha=alpha)
    est, se = float(np.ravel(wald["est"])[j]), float(np.ravel(wald["se"])[j])
    dof = len(y) - (1 if X is None else 1 + X.shape[1])
    q = float(stats.t.ppf(1 - alpha / 2, max(dof, 1)))
    return est, se, est - q * se, est + q * se, float(2 * stats.t.sf(abs(est) / se, max(dof, 1))) if se > 0 else np.nan


def meta_analysis(y, se, method: str = "reml_hksj", ci_level: float = 0.95, hksj: bool | None = None) -> MetaResult:
    """Random-effects pooled mean of estimates ``y`` with standard errors ``se`` (same units, e.g. log ratios).

    ``method``: ``"reml_hksj"`` (REML tau^2, Hartung-Knapp-Sidik-Jonkman CI, t(k-1)) or
    ``"dersimonian_laird"`` (DL tau^2, normal CI); ``hksj`` overrides the CI choice. Prediction interval:
    mu +- t(k-2) sqrt(tau^2 + se(mu)^2) (Higgins et al. 2009), NaN for k < 3. I^2 = tau^2 / (tau^2 + s^2)
    with s^2 the typical within-study variance (Higgins & Thompson 2002, metafor's definition).
    k = 1 returns that estimate with its own CI (tau^2 0).
    """
    y = np.asarray(y, dtype=float)
    v = np.asarray(se, dtype=float) ** 2
    k = len(y)
    alpha = 1 - ci_level
    if k == 0:
        raise ValueError("meta_analysis needs at least one estimate")
    if k == 1:
        z = float(stats.norm.ppf(1 - alpha / 2))
        s = float(np.sqrt(v[0]))
        return MetaResult(method, 1, float(y[0]), s, y[0] - z * s, y[0] + z * s, np.nan, np.nan,
                          float(2 * stats.norm.sf(abs(y[0]) / s)), 0.0, 0.0, 0.0, np.nan, np.ones(1))
    res = _pymare_fit(y, v, None, method, hksj)
    fe = res.get_fe_stats(alpha=alpha)
    mu, se_mu = float(np.ravel(fe["est"])[0]), float(np.ravel(fe["se"])[0])
    ci_low, ci_high, p_value = float(np.ravel(fe["ci_l"])[0]), float(np.ravel(fe["ci_u"])[0]), float(np.ravel(fe["p"])[0])
    floored = _hk_floor(y, v, None, method, hksj, alpha, 0)
    if floored is not None and floored[1] > se_mu:
        se_mu, ci_low, ci_high, p_value = floored[1:]
    tau2 = float(np.ravel(res.tau2)[0])
    het = res.get_heterogeneity_stats()
    w = 1 / v
    s2 = (k - 1) * w.sum() / (w.sum() ** 2 - (w ** 2).sum())
    pi_low = pi_high = np.nan
    if k >= 3:
        half = float(stats.t.ppf(1 - alpha / 2, k - 2)) * np.sqrt(tau2 + se_mu ** 2)
        pi_low, pi_high = mu - half, mu + half
    re_w = 1 / (v + tau2)
    return MetaResult(method, k, mu, se_mu, ci_low, ci_high,
                      pi_low, pi_high, p_value, tau2, float(100 * tau2 / (tau2 + s2)),
                      float(np.ravel(het["Q"])[0]), float(np.ravel(het["p(Q)"])[0]), re_w / re_w.sum())


@dataclass(frozen=True)
class MetaRegression:
    """Slope of a one-moderator random-effects meta-regression (log units per unit of the moderator)."""

    k: int
    moderator_mean: float
    intercept: float
    slope: float
    slope_ci_low: float
    slope_ci_high: float
    slope_p_value: float
    tau2: float


def meta_regression(y, se, x, method: str = "reml_hksj", ci_level: float = 0.95,
                    hksj: bool | None = None) -> MetaRegression:
    """y ~ intercept + slope * (x - mean x), random effects, by ``method`` (as :func:`meta_analysis`;
    with ``reml_hksj`` the slope's CI is Knapp-Hartung's, t(k-2))."""
    y, se, x = (np.asarray(a, dtype=float) for a in (y, se, x))
    xc = x - x.mean()
    res = _pymare_fit(y, se ** 2, xc[:, None], method, hksj)
    fe = res.get_fe_stats(alpha=1 - ci_level)
    est, lo, hi, p, sd = (np.ravel(fe[key]) for key in ("est", "ci_l", "ci_u", "p", "se"))
    slope = (float(est[1]), float(sd[1]), float(lo[1]), float(hi[1]), float(p[1]))
    floored = _hk_floor(y, se ** 2, xc[:, None], method, hksj, 1 - ci_level, 1)
    if floored is not None and floored[1] > slope[1]:
        slope = (slope[0], *floored[1:])
    return MetaRegression(len(y), float(x.mean()), float(est[0]), slope[0], slope[2], slope[3], slope[4],
                          float(np.ravel(res.tau2)[0]))


# ---------------------------------------------------------------------------------- block estimates


def _log_pct(pct) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log1p(np.asarray(pct, dtype=float) / 100)


def _pct_log(x) -> np.ndarray:
    return np.expm1(np.asarray(x, dtype=float)) * 100


def block_estimates(effects: pd.DataFrame) -> pd.DataFrame:
    """The estimate each headline block_effects row contributes, calibrated when present, else raw.

    Returns athlete_id, block_id, estimate_source ('calibrated' | 'raw'), change_pct, ci_low_pct,
    ci_high_pct, log_change (ln(1 + change/100)) and se_log: for calibrated rows ``calibrated_se_pct`` / 100
    (already the SE of the log change: the calibrated posterior-predictive SD, systematic error included)
    when given, else (like raw rows) the CI width on the log scale / (2 x 1.96). Rows without a finite
    estimate and CI are dropped.
    """
    e = effects[(effects["metric"] == HEADLINE_METRIC) & (effects["method"] == HEADLINE_METHOD)]
    out = e[["athlete_id", "block_id"]].copy()
    raw = e[["change_pct", "ci_low_pct", "ci_high_pct"]].to_numpy(dtype=float)
    use_cal = np.zeros(len(e), dtype=bool)
    if all(c in e for c in CALIBRATED_COLUMNS):
        cal = e[list(CALIBRATED_COLUMNS)].to_numpy(dtype=float)
        use_cal = np.isfinite(cal).all(axis=1)
        raw = np.where(use_cal[:, None], cal, raw)
    out["estimate_source"] = np.where(use_cal, "calibrated", "raw")
    out["change_pct"], out["ci_low_pct"], out["ci_high_pct"] = raw.T
    out["log_change"] = _log_pct(raw[:, 0])
    se = (_log_pct(raw[:, 2]) - _log_pct(raw[:, 1])) / (2 * Z95)
    if CALIBRATED_SE_COLUMN in e:
        se_pct = pd.to_numeric(e[CALIBRATED_SE_COLUMN], errors="coerce").to_numpy(dtype=float)
        given = use_cal & np.isfinite(se_pct) & (se_pct > 0)
        se = np.where(given, se_pct / 100, se)
    out["se_log"] = se
    ok = np.isfinite(out["log_change"]) & np.isfinite(out["se_log"]) & (out["se_log"] > 0)
    return out[ok].reset_index(drop=True)


def block_doses(blocks: pd.DataFrame, effects: pd.DataFrame, weekly: pd.DataFrame,
                params: AnalysisParams | None = None) -> pd.DataFrame:
    """The dose of each block: sessions_per_week, volume_kg_per_week, block_weeks and run_km_change_pct.

    ``run_km_change_pct``: mean weekly running km from block start to the end of the response window
    against the baseline weeks before the block (the window method's dates; default 6 weeks), percent.
    More running during a block is a rival explanation of an economy gain, so it is a moderator too.
    """
    p = params or AnalysisParams()
    b = blocks[["athlete_id", "block_id", "start_date", "end_date", "sessions_per_week", "volume_kg"]].copy()
    start = pd.to_datetime(b["start_date"])
    b["block_weeks"] = ((pd.to_datetime(b["end_date"]) - start).dt.days + 1) / 7.0
    b["volume_kg_per_week"] = pd.to_numeric(b["volume_kg"], errors="coerce") / b["block_weeks"]
    win = effects[(effects["metric"] == HEADLINE_METRIC) & (effects["method"] == "window")]
    win = win.set_index(["athlete_id", "block_id"])
    w = weekly.assign(week_start=pd.to_datetime(weekly["week_start"]))
    change = []
    for r, s in zip(b.itertuples(index=False), start):
        key = (r.athlete_id, r.block_id)
        base0 = pd.to_datetime(win.loc[key, "baseline_start"]) if key in win.index else s - p.baseline_weeks * WEEK
        resp1 = pd.to_datetime(win.loc[key, "response_end"]) if key in win.index else s + p.response_end_weeks * WEEK
        mine = w[w["athlete_id"] == r.athlete_id]
        before = mine[(mine["week_start"] >= base0) & (mine["week_start"] < s)]["run_km"]
        during = mine[(mine["week_start"] >= s) & (mine["week_start"] < resp1)]["run_km"]
        ok = len(before) and len(during) and before.mean() > 0
        change.append((during.mean() / before.mean() - 1) * 100 if ok else np.nan)
    b["run_km_change_pct"] = change
    return b.rename(columns={"start_date": "block_start"})[
        ["athlete_id", "block_id", "block_start", "sessions_per_week", "volume_kg_per_week", "block_weeks",
         "run_km_change_pct"]]


def squad_blocks(effects: pd.DataFrame, blocks: pd.DataFrame, weekly: pd.DataFrame,
                 params: AnalysisParams | None = None, squad: SquadParams | None = None) -> pd.DataFrame:
    """``squad_blocks`` rows: each block's pooled estimate (:func:`block_estimates`), its dose
    (:func:`block_doses`) and its weight in the pooled estimate (percent)."""
    sp = squad or SquadParams()
    est = block_estimates(effects)
    out = est.merge(block_doses(blocks, effects, weekly, params), on=["athlete_id", "block_id"], how="left")
    out["weight_pct"] = np.nan
    if len(out) >= sp.min_blocks:
        out["weight_pct"] = meta_analysis(out["log_change"], out["se_log"], sp.meta_method, sp.ci_level).weights * 100
    if "analysis_run_id" in effects:
        ids = effects.drop_duplicates(["athlete_id", "block_id"]).set_index(["athlete_id", "block_id"])["analysis_run_id"]
        out["analysis_run_id"] = [ids.get((a, b)) for a, b in zip(out["athlete_id"], out["block_id"])]
    cols = [c for c in columns("squad_blocks")]
    return out.reindex(columns=cols).sort_values(["block_start", "athlete_id"]).reset_index(drop=True)


def _pooled_row(target: str, data: pd.DataFrame, y: str, se: str, method: str, sp: SquadParams) -> dict:
    m = meta_analysis(data[y], data[se], method, sp.ci_level)
    sources = set(data["estimate_source"]) if "estimate_source" in data else {"raw"}
    pct = _pct_log([m.estimate, m.ci_low, m.ci_high, m.pi_low, m.pi_high])
    return {"target": target, "meta_method": method, "k": m.k, "n_athletes": int(data["athlete_id"].nunique()),
            "estimate_source": sources.pop() if len(sources) == 1 else "mixed",
            "estimate_pct": pct[0], "ci_low_pct": pct[1], "ci_high_pct": pct[2], "pi_low_pct": pct[3],
            "pi_high_pct": pct[4], "p_value": m.p_value, "tau2": m.tau2, "tau_pct": 100 * np.sqrt(m.tau2),
            "i2_pct": m.i2_pct, "q": m.q, "q_p_value": m.q_p_value}


def squad_pooled(blocks: pd.DataFrame, did: pd.DataFrame, squad: SquadParams | None = None,
                 computed_at: pd.Timestamp | None = None) -> pd.DataFrame:
    """``squad_pooled`` rows: the block estimates and the difference-in-differences estimates, each pooled
    by every method of :data:`~pipeline.warehouse.contract.META_METHODS` (the configured one first)."""
    sp = squad or SquadParams()
    rows = []
    methods = [sp.meta_method] + [m for m in META_METHODS if m != sp.meta_method]
    d = did.assign(log_did=_log_pct(did["did_change_pct"]),
                   se_did=(_log_pct(did["ci_high_pct"]) - _log_pct(did["ci_low_pct"])) / (2 * Z95),
                   estimate_source="raw") if len(did) else did
    for target, data, y, se in (("block_effect", blocks, "log_change", "se_log"), ("did", d, "log_did", "se_did")):
        if len(data) < sp.min_blocks:
            continue
        for method in methods:
            rows.append(_pooled_row(target, data, y, se, method, sp))
    out = pd.DataFrame(rows, columns=columns("squad_pooled"))
    out["computed_at"] = computed_at if computed_at is not None else pd.Timestamp.now(tz="UTC")
    out["settings_json"] = json.dumps(asdict(sp), sort_keys=True)
    return out


def dose_response(blocks: pd.DataFrame, squad: SquadParams | None = None,
                  computed_at: pd.Timestamp | None = None) -> pd.DataFrame:
    """``squad_dose_response`` rows: one meta-regression per moderator with enough blocks and spread."""
    sp = squad or SquadParams()
    rows = []
    for moderator in DOSE_MODERATORS:
        d = blocks[np.isfinite(pd.to_numeric(blocks[moderator], errors="coerce").astype(float))]
        if len(d) < sp.min_moderator_blocks or d[moderator].astype(float).std() <= 0:
            continue
        for method in [sp.meta_method] + [m for m in META_METHODS if m != sp.meta_method]:
            r = meta_regression(d["log_change"], d["se_log"], d[moderator].astype(float), method, sp.ci_level)
            rows.append({"moderator": moderator, "meta_method": method, "k": r.k, "moderator_mean": r.moderator_mean,
                         "intercept_pct": float(_pct_log(r.intercept)), "slope_pct_per_unit": 100 * r.slope,
                         "slope_ci_low": 100 * r.slope_ci_low, "slope_ci_high": 100 * r.slope_ci_high,
                         "slope_p_value": r.slope_p_value, "tau2": r.tau2})
    out = pd.DataFrame(rows, columns=columns("squad_dose_response"))
    out["computed_at"] = computed_at if computed_at is not None else pd.Timestamp.now(tz="UTC")
    return out


# ------------------------------------------------------------------------------ teammates as controls


def _utc(x) -> pd.Timestamp:
    ts = pd.Timestamp(x)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _busy_spans(blocks: pd.DataFrame, params: AnalysisParams) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Per athlete, the spans a block may move economy: block start to the end of its response window."""
    spans: dict[str, list] = {}
    for r in blocks.itertuples(index=False):
        start = _utc(r.start_date)
        end = max(_utc(r.end_date) + pd.Timedelta(days=1), start + params.response_end_weeks * WEEK)
        spans.setdefault(r.athlete_id, []).append((start, end))
    return spans


def did_controls(athlete_id: str, lo: pd.Timestamp, hi: pd.Timestamp, athletes, spans: dict) -> list[str]:
    """Teammates of ``athlete_id`` with no block span overlapping [lo, hi) (calendar time, UTC)."""
    return [a for a in athletes if a != athlete_id
            and not any(s < hi and lo < e for s, e in spans.get(a, []))]


def _its_log(runs: pd.DataFrame, w: BlockWindows, params: AnalysisParams, heat_rel_se: float) -> tuple[float, float] | None:
    """The local ITS estimate of the headline metric over ``runs`` as (log change, SE on the log scale), or
    None. ``heat_rel_se``: the SE of the athlete's heat curve as a share of it (SE / coefficient); each run's
    heat adjustment (bpm, column ``heat_excess_c`` under :data:`SQUAD_HEAT_KEY`, see :func:`squad_runs`)
    times it enters the CI, the delta method :func:`pipeline.analyze.effects.heat_extra_se` applies."""
    e = effect_its(runs, w, HEADLINE_METRIC, EffectContext(params, heat_se={SQUAD_HEAT_KEY: heat_rel_se}))
    if e.verdict == "insufficient data" or not np.isfinite(e.change_pct) or not np.isfinite(e.ci_low_pct):
        return None
    y = float(_log_pct(e.change_pct))
    se = float((_log_pct(e.ci_high_pct) - _log_pct(e.ci_low_pct)) / (2 * Z95))
    return (y, se) if se > 0 else None


def _difference(treated: tuple[float, float], controls: list[tuple[float, float]], sp: SquadParams) -> dict:
    """Treated minus the controls' random-effects mean (REML, normal-theory SE: the controls' spread around
    the shared season is estimated, but a t(k-1) interval from 2-5 controls would swamp the estimate)."""
    y_c, se_c = np.array(controls).T
    m = meta_analysis(y_c, se_c, "reml_hksj", sp.ci_level, hksj=False)
    diff = treated[0] - m.estimate
    se = float(np.hypot(treated[1], m.se))
    z = float(stats.norm.ppf(1 - (1 - sp.ci_level) / 2))
    pct = _pct_log([treated[0], m.estimate, diff, diff - z * se, diff + z * se])
    return {"athlete_change_pct": pct[0], "controls_change_pct": pct[1], "did_change_pct": pct[2],
            "ci_low_pct": pct[3], "ci_high_pct": pct[4], "p_value": float(2 * stats.norm.sf(abs(diff) / se))}


@dataclass(frozen=True)
class SquadRuns:
    """Every athlete's included runs (athlete_id, start_time, economy_m_per_beat, hr_at_ref_bpm and the heat
    columns of :func:`squad_runs`) and each athlete's heat curve SE as a share of the curve (0 when unknown),
    as the ITS estimator takes them."""

    runs: pd.DataFrame
    heat_rel_se: dict[str, float]

    def of(self, athlete_id: str, before: pd.Timestamp | None = None) -> pd.DataFrame:
        r = self.runs[self.runs["athlete_id"] == athlete_id]
        return r if before is None else r[r["start_time"] < before]

    def heat_se(self, athlete_id: str) -> float:
        v = self.heat_rel_se.get(athlete_id)
        return float(v) if v is not None and np.isfinite(v) else 0.0


def squad_runs(run_metrics: pd.DataFrame, heat_se_bpm_per_c: dict[str, float] | None,
               heat_bpm_per_c: dict[str, float] | None) -> SquadRuns:
    """The included runs with what the squad's ITS needs for the heat model's uncertainty.

    Stored runs keep the bpm removed for heat (``heat_adjustment_bpm``), not the curve behind it, so the
    curve's uncertainty is carried as a scale: each run's adjustment times the athlete's SE / coefficient of
    its main heat fit (``analysis_runs.heat_se_bpm_per_c`` / ``heat_bpm_per_c``) -- for a single slope
    exactly excess x SE, the per-athlete estimate's delta method. Without a coefficient (no heat model, or
    0): no heat term."""
    inc = run_metrics[run_metrics["included"].astype(bool)].assign(
        start_time=lambda d: pd.to_datetime(d["start_time"], utc=True))
    adj = (pd.to_numeric(inc["heat_adjustment_bpm"], errors="coerce").fillna(0.0)
           if "heat_adjustment_bpm" in inc else pd.Series(0.0, index=inc.index))
    inc = inc.assign(heat_excess_c=adj.to_numpy(float), heat_model=SQUAD_HEAT_KEY)
    rel = {}
    for a, se in (heat_se_bpm_per_c or {}).items():
        gamma = (heat_bpm_per_c or {}).get(a)
        ok = se is not None and gamma is not None and np.isfinite(se) and np.isfinite(gamma) and gamma > 0
        rel[a] = float(se) / float(gamma) if ok else 0.0
    return SquadRuns(inc, rel)


def _controls_at(sr: SquadRuns, athlete_id: str, w: BlockWindows, athletes, spans, params: AnalysisParams,
                 before: pd.Timestamp | None = None) -> tuple[list[str], list[tuple[float, float]]]:
    """Controls eligible over the windows ``w`` and their ITS estimates over the same windows."""
    names, estimates = [], []
    for c in did_controls(athlete_id, w.its_pre_start, w.response_end, athletes, spans):
        est = _its_log(sr.of(c, before), w, params, sr.heat_se(c))
        if est is not None:
            names.append(c)
            estimates.append(est)
    return names, estimates


def did_pre_checks(sr: SquadRuns, athlete_id: str, block_start: pd.Timestamp, floor: pd.Timestamp, athletes,
                   spans, params: AnalysisParams, sp: SquadParams) -> list[dict]:
    """The difference-in-differences at fake starts before ``block_start`` (only runs before it): fake
    starts step back every ``pre_check_step_weeks`` from the latest whose response window ends before the
    block, as long as ``placebo_min_pre_weeks`` of record (from ``floor``) precede them."""
    rows = []
    fake = block_start - params.response_end_weeks * WEEK
    while fake - params.placebo_min_pre_weeks * WEEK >= floor:
        w = block_windows(fake, params, floor)
        treated = _its_log(sr.of(athlete_id, block_start), w, params, sr.heat_se(athlete_id))
        names, ests = _controls_at(sr, athlete_id, w, athletes, spans, params, block_start)
        if treated is not None and len(ests) >= sp.min_controls:
            d = _difference(treated, ests, sp)
            rows.append({"fake_start": fake.date(), "n_controls": len(names), "did_change_pct": d["did_change_pct"],
                         "ci_low_pct": d["ci_low_pct"], "ci_high_pct": d["ci_high_pct"]})
        fake = fake - sp.pre_check_step_weeks * WEEK
    return rows


def parallel_trends_verdict(pre_checks: list[dict], ci_level: float = 0.95) -> tuple[int, int, str]:
    """(checks, checks whose CI excludes 0, 'ok' | 'violated' | 'not checked').

    'violated' when more fake starts exclude 0 than chance allows: above the 95th percentile of
    Binomial(n, 1 - ci_level) (with up to 7 checks: 2 or more). Neighbouring fake starts share most of
    their runs, so the checks are not independent and this rule is lenient rather than exact.
    """
    n = len(pre_checks)
    nonzero = sum(1 for r in pre_checks if r["ci_low_pct"] > 0 or r["ci_high_pct"] < 0)
    if n == 0:
        return 0, 0, "not checked"
    allowed = int(stats.binom.ppf(0.95, n, 1 - ci_level))
    return n, nonzero, "violated" if nonzero > allowed else "ok"


def _record_floor(sr: SquadRuns, athlete_id: str, block_start: pd.Timestamp, spans: dict) -> pd.Timestamp:
    """The earliest date a pre-period check may reach: the Monday of the athlete's first run, or the end of
    an earlier block's response window."""
    r = sr.of(athlete_id)
    first = r["start_time"].min() if len(r) else block_start
    floor = first.normalize() - pd.Timedelta(days=first.weekday())
    for s, e in spans.get(athlete_id, []):
        if s < block_start:
            floor = max(floor, e)
    return floor


def squad_did(sr: SquadRuns, effects: pd.DataFrame, blocks: pd.DataFrame, params: AnalysisParams | None = None,
              squad: SquadParams | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``squad_did`` and ``squad_did_placebo`` rows for every block with a headline ITS estimate.

    ``effects``: block_effects rows (the headline ITS row gives the athlete's estimate and the windows);
    ``blocks``: every athlete's strength_blocks rows (who is busy when). Blocks without enough controls get
    no row. See the module docstring for the estimator and its assumption.
    """
    p, sp = params or AnalysisParams(), squad or SquadParams()
    spans = _busy_spans(blocks, p)
    athletes = sorted(set(sr.runs["athlete_id"]))
    its = effects[(effects["metric"] == HEADLINE_METRIC) & (effects["method"] == HEADLINE_METHOD)]
    did_rows, pre_rows = [], []
    for e in its.itertuples(index=False):
        if not (np.isfinite(e.change_pct) and np.isfinite(e.ci_low_pct)):
            continue
        start = _utc(e.baseline_end)
        w = BlockWindows(start, _utc(e.baseline_start), start, _utc(e.response_start), _utc(e.response_end),
                         _utc(e.baseline_start))
        treated = _its_log(sr.of(e.athlete_id), w, p, sr.heat_se(e.athlete_id))   # as the controls' (raw, local)
        names, ests = _controls_at(sr, e.athlete_id, w, athletes, spans, p)
        if treated is None or len(ests) < sp.min_controls:
            continue
        checks = did_pre_checks(sr, e.athlete_id, start, _record_floor(sr, e.athlete_id, start, spans),
                                athletes, spans, p, sp)
        n, nonzero, verdict = parallel_trends_verdict(checks, sp.ci_level)
        run_id = getattr(e, "analysis_run_id", None)
        did_rows.append({"athlete_id": e.athlete_id, "block_id": e.block_id, "its_pre_start": w.its_pre_start.date(),
                         "block_start": start.date(), "response_start": w.response_start.date(),
                         "response_end": w.response_end.date(), "n_controls": len(names), "controls": ",".join(names),
                         **_difference(treated, ests, sp), "n_pre_checks": n, "n_pre_checks_nonzero": nonzero,
                         "parallel_trends": verdict, "analysis_run_id": run_id})
        pre_rows += [{"athlete_id": e.athlete_id, "block_id": e.block_id, **c, "analysis_run_id": run_id}
                     for c in checks]
    return (pd.DataFrame(did_rows, columns=columns("squad_did")),
            pd.DataFrame(pre_rows, columns=columns("squad_did_placebo")))


# ----------------------------------------------------------------------------------------- recipe


@dataclass
class SquadAnalysis:
    """The rows of every squad table."""

    squad_blocks: pd.DataFrame
    squad_pooled: pd.DataFrame
    squad_did: pd.DataFrame
    squad_did_placebo: pd.DataFrame
    squad_dose_response: pd.DataFrame


SQUAD_TABLES = tuple(f.name for f in fields(SquadAnalysis))


def squad_process(run_metrics: pd.DataFrame, effects: pd.DataFrame, blocks: pd.DataFrame, weekly: pd.DataFrame,
                  heat_se_bpm_per_c: dict[str, float] | None = None, params: AnalysisParams | None = None,
                  squad: SquadParams | None = None, heat_bpm_per_c: dict[str, float] | None = None) -> SquadAnalysis:
    """The squad analysis as a recipe, over every athlete's analysis-table rows.

    1. each block's estimate (calibrated when present), dose and weight (:func:`squad_blocks`);
    2. teammates as controls: difference in differences with its pre-period check (:func:`squad_did`);
    3. the block estimates and the DiD estimates pooled (:func:`squad_pooled`);
    4. dose-response meta-regressions (:func:`dose_response`).

    ``heat_se_bpm_per_c`` and ``heat_bpm_per_c``: per athlete, its main heat fit's coefficient SE and
    coefficient (``analysis_runs``), for the heat term of the DiD's ITS (:func:`squad_runs`).
    """
    p, sp = params or AnalysisParams(), squad or SquadParams()
    now = pd.Timestamp.now(tz="UTC")
    sb = squad_blocks(effects, blocks, weekly, p, sp)                                           # 1
    sr = squad_runs(run_metrics, heat_se_bpm_per_c, heat_bpm_per_c)
    did, did_pre = squad_did(sr, effects, blocks, p, sp)                                        # 2
    pooled = squad_pooled(sb, did, sp, now)                                                     # 3
    dose = dose_response(sb, sp, now)                                                           # 4
    return SquadAnalysis(sb, pooled, did, did_pre, dose)

"""Empirical calibration of block estimates against negative controls (Schuemie et al. 2014, 2018).

An estimator that is unbiased on paper still errs systematically on real records: a trend that bends, a
season or weather it does not see, a sensor that drifts. The negative controls (fake block starts where
nothing began, :mod:`pipeline.analyze.controls`) show how large those errors are for this athlete and
this method. Model: a control's estimate theta_i = b_i + e_i, with e_i its sampling error (SE s_i) and
b_i the systematic error, b ~ N(mu, tau^2). A real block's estimate is calibrated by removing that
distribution: true change ~ theta - b - e, so its calibrated CI has variance s^2 + tau^2 (+ the
uncertainty of mu and tau).

Overlap. Fake starts two weeks apart share most of their runs, so their estimates are far from
independent; treating 30 overlapping controls as 30 draws would pin mu and tau down far too tightly.
The controls enter through a composite likelihood tempered to their effective number (Varin, Reid &
Firth 2011): each control's Gaussian log-likelihood is multiplied by n_effective / n, where n_effective =
n^2 / sum R_ij^2 (Bretherton et al. 1999) and R is the correlation of the controls' estimates, computed
from the estimators' own weights and the runs' serial correlation (``n_effective_controls``). So 30
overlapping controls worth ~5 independent ones inform mu and tau like 5 would. (A full Gaussian
likelihood with the sampling correlation R was tried first: the systematic errors of neighbouring fake
starts -- a slowly wandering fitness, the season -- are more strongly correlated than their sampling
errors, and with R alone tau came out too small: 80 % coverage of nominal 95 % in the overlap test.)

Uncertainty of mu and tau. Rather than plugging in maximum-likelihood values (tau-hat is often 0 with a
handful of controls: over-confident), the calibration integrates over them: a grid over tau, mu given tau
normal (conjugate), weights proportional to prior x marginal likelihood. The calibrated estimate is the
raw one minus the posterior mean of mu; its CI the 2.5/97.5 % quantiles of the posterior-predictive
mixture of N(theta - mu(tau), s^2 + tau^2 + var mu(tau)).

Where the prior comes from (``calibration_source``):
``own``      the athlete's controls are worth at least ``calibration_min_effective_controls`` effective
             controls: a flat prior on mu and a uniform one on tau over [0, 20 %] (the data decide);
``squad``    too few own controls, but the other athletes of the workspace in the same calibration class
             (season modelled, or heat adjusted; not for records with neither, see :data:`SQUAD_CLASSES`)
             pool to enough: their posterior is used;
``default``  neither: a documented conservative distribution per class (see :data:`DEFAULT_TAU_PCT`).
Too few own controls are then not used at all (see :func:`calibration_for`).

References: Varin C, Reid N, Firth D (2011). An overview of composite likelihood methods. Statistica
Sinica 21:5-42. Bretherton CS, Widmann M, Dymnikov VP, Wallace JM, Bladé I (1999). The effective number of
spatial degrees of freedom of a time-varying field. J Climate 12:1990-2009.
Schuemie MJ, Ryan PB, DuMouchel W, Suchard MA, Madigan D (2014). Interpreting observational
studies: why empirical calibration is needed to correct p-values. Stat Med 33:209-218. Schuemie MJ,
Hripcsak G, Ryan PB, Madigan D, Suchard MA (2018). Empirical confidence interval calibration for
population-level effect estimation studies in observational healthcare data. PNAS 115:2571-2577.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from pipeline.analyze.controls import ControlSet

# tau grid on the model (log) scale: 0 to 0.20 (~20 %), denser near 0.
TAU_GRID = np.linspace(0.0, np.sqrt(0.20), 201) ** 2
# Conservative default systematic error (percent RMS: mu and tau together) per calibration class when
# neither the athlete nor the squad has enough negative controls: the largest cell-level systematic error
# measured on the null blocks of the validation matrix (bench/validate.py) within the class, rounded up
# (docs/analysis.md, "Calibration", has the figures and why they are what a lone record deserves).
DEFAULT_TAU_PCT = {"season": 2.0, "heat": 6.5, "none": 9.0}


def calibration_class(season_controlled: bool, heat_controlled: bool) -> str:
    """Which systematic errors are comparable: with the season modelled ("season"), without it but with
    heat adjusted ("heat"), or neither ("none")."""
    return "season" if season_controlled else "heat" if heat_controlled else "none"


@dataclass(frozen=True)
class Prior:
    """Belief about (mu, tau) on the grid: weights over tau and mu | tau ~ N(mean, var)."""

    weights: np.ndarray
    mean: np.ndarray
    var: np.ndarray            # np.inf = flat
    source: str


def flat_prior() -> Prior:
    """Flat on mu, uniform on the tau grid: own controls decide."""
    g = len(TAU_GRID)
    return Prior(np.full(g, 1.0 / g), np.zeros(g), np.full(g, np.inf), "own")


def default_prior(cls: str) -> Prior:
    """The conservative default of a class, with root-mean-square systematic error DEFAULT_TAU_PCT: mu
    normal around 0 with SD tau_d / 2, tau log-normal (SD 0.5 in log) with E[tau^2] = 3/4 tau_d^2, so
    E[mu^2 + tau^2] = tau_d^2."""
    tau_d = DEFAULT_TAU_PCT.get(cls, max(DEFAULT_TAU_PCT.values())) / 100
    t = np.maximum(TAU_GRID, TAU_GRID[1] / 2)
    scale = np.sqrt(0.75) * tau_d * np.exp(-0.25)        # E[tau^2] = scale^2 exp(2 * 0.5^2)
    w = stats.lognorm.pdf(t, 0.5, scale=scale) * np.gradient(TAU_GRID)
    return Prior(w / w.sum(), np.zeros(len(t)), np.full(len(t), (tau_d / 2) ** 2), "default")


@dataclass(frozen=True)
class _Suff:
    """Per tau: sum 1/v, sum theta/v, sum theta^2/v and sum log v (v = s^2 + tau^2), each times the
    controls' weight n_effective / n."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    logdet: np.ndarray


def _sufficient(cs: ControlSet) -> _Suff:
    """Composite-likelihood pieces of one athlete's controls, tempered by n_effective / n."""
    g = len(TAU_GRID)
    if cs.n == 0:
        return _Suff(*(np.zeros(g) for _ in range(4)))
    weight = min(1.0, cs.n_effective / cs.n)
    v = cs.se[None, :] ** 2 + TAU_GRID[:, None] ** 2          # grid x controls
    a = weight * np.sum(1 / v, axis=1)
    b = weight * np.sum(cs.theta[None, :] / v, axis=1)
    c = weight * np.sum(cs.theta[None, :] ** 2 / v, axis=1)
    return _Suff(a, b, c, weight * np.sum(np.log(v), axis=1))


def _pool(parts: list[_Suff]) -> _Suff:
    g = len(TAU_GRID)
    return _Suff(*(sum((getattr(p, f) for p in parts), np.zeros(g)) for f in ("a", "b", "c", "logdet")))


def posterior(prior: Prior, s: _Suff) -> Prior:
    """Update a prior with controls' sufficient statistics (mu | tau conjugate normal, tau on the grid)."""
    flat = ~np.isfinite(prior.var)
    prec0 = np.where(flat, 0.0, 1.0 / np.where(flat, 1.0, prior.var))
    prec = s.a + prec0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(prec > 0, (s.b + prec0 * prior.mean) / prec, prior.mean)
        var = np.where(prec > 0, 1.0 / prec, np.inf)
        # log marginal likelihood of the controls given tau (mu integrated out; flat prior: restricted)
        quad = s.c - np.where(s.a > 0, s.b ** 2 / np.where(s.a > 0, s.a, 1.0), 0.0)
        fit_mu = np.where(s.a > 0, s.b / np.where(s.a > 0, s.a, 1.0), prior.mean)
        shrink = np.where(flat, -0.5 * np.log(np.where(s.a > 0, s.a, 1.0)),
                          -0.5 * np.log1p(s.a * np.where(flat, 0.0, prior.var))
                          - 0.5 * np.where(s.a > 0, (fit_mu - prior.mean) ** 2 /
                                           (1.0 / np.where(s.a > 0, s.a, 1.0) + np.where(flat, 1.0, prior.var)), 0.0))
    loglik = -0.5 * s.logdet - 0.5 * quad + shrink
    logw = np.log(np.maximum(prior.weights, 1e-300)) + loglik
    w = np.exp(logw - logw.max())
    return Prior(w / w.sum(), mean, var, prior.source)


@dataclass(frozen=True)
class Calibration:
    """The systematic-error distribution a block is calibrated with."""

    post: Prior
    source: str
    n_controls: int
    n_effective: float

    @property
    def mu(self) -> float:
        return float(self.post.weights @ self.post.mean)

    @property
    def tau(self) -> float:
        """Posterior root-mean-square tau."""
        return float(np.sqrt(self.post.weights @ TAU_GRID ** 2))


# Classes whose systematic errors a squad's controls can stand for: only records with the season
# modelled. In shorter records the error depends on the time of year (heat that arrives or leaves, a
# season the model cannot learn), and the squad's controls -- pre-block fakes in winter and spring --
# do not represent a block elsewhere in the year (measured in the validation matrix: a squad prior made
# 14 of 20 null summer blocks without temperature "gains", and 2 gains and 1 loss of 20 null spring
# blocks with a wrist thermometer).
SQUAD_CLASSES = ("season",)


def calibration_for(own: ControlSet, cls: str, min_effective: float,
                    squad: list[ControlSet] | None = None) -> Calibration:
    """Choose the systematic-error distribution (own | squad | default, see the module docstring).

    ``squad``: the OTHER athletes' control sets of the same class. Own controls worth fewer than
    ``min_effective`` are not used at all: a handful of overlapping fakes, all from one part of the year,
    say little about the error at the block's time of year and can pull the mean the wrong way (measured:
    null summer blocks without temperature, whose spring fakes erred the other way).
    """
    if own.n_effective >= min_effective:
        return Calibration(posterior(flat_prior(), _sufficient(own)), "own", own.n, own.n_effective)
    others = [c for c in (squad or []) if c.n] if cls in SQUAD_CLASSES else []
    if others and sum(c.n_effective for c in others) >= min_effective:
        prior = posterior(flat_prior(), _pool([_sufficient(c) for c in others]))
        return Calibration(Prior(prior.weights, prior.mean, prior.var, "squad"), "squad", own.n, own.n_effective)
    return Calibration(default_prior(cls), "default", own.n, own.n_effective)


def _mixture_quantile(q: float, means: np.ndarray, sds: np.ndarray, w: np.ndarray) -> float:
    def cdf(x: float) -> float:
        return float(w @ stats.norm.cdf((x - means) / sds)) - q
    lo, hi = float(np.min(means - 10 * sds)), float(np.max(means + 10 * sds))
    return float(optimize.brentq(cdf, lo, hi, xtol=1e-7))


@dataclass(frozen=True)
class Calibrated:
    """A calibrated estimate on the model scale (> 0 = better)."""

    theta: float
    se: float
    lo: float
    hi: float


def calibrate(theta: float, se: float, cal: Calibration, level: float = 0.95) -> Calibrated:
    """Calibrated estimate, SE and CI of a raw model-scale estimate ``theta`` with SE ``se``."""
    if not (np.isfinite(theta) and np.isfinite(se)):
        return Calibrated(np.nan, np.nan, np.nan, np.nan)
    w = cal.post.weights
    var_mu = np.where(np.isfinite(cal.post.var), cal.post.var, 0.0)
    means = theta - cal.post.mean
    sds = np.sqrt(se ** 2 + TAU_GRID ** 2 + var_mu)
    keep = w > 1e-12
    means, sds, w = means[keep], sds[keep], w[keep] / w[keep].sum()
    centre = float(w @ means)
    sd = float(np.sqrt(w @ (sds ** 2) + w @ (means - centre) ** 2))
    alpha = 1 - level
    return Calibrated(centre, sd, _mixture_quantile(alpha / 2, means, sds, w),
                      _mixture_quantile(1 - alpha / 2, means, sds, w))

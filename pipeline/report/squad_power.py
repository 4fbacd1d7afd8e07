"""What the squad's pooled estimate can see: the smallest average change it would call, and how many blocks
like these a typical gain would need.

The athlete page sizes one record ("What this record can see", :mod:`pipeline.report.headline`); this is
the same question for the squad, where the power is (docs/analysis.md). A pooled estimate is "called" here
when its 95 % CI is clear of 0 (the squad table has no smallest-worthwhile-change rule).

Power of the random-effects test (Hedges & Pigott 2001), with k blocks and a pooled standard error s on the
log scale, delta the true log change:
- DerSimonian-Laird rows (normal CI): Phi(delta / s - z), z the normal quantile of the CI.
- REML-HKSJ rows: the pooled mean is N(delta, s^2); the Hartung-Knapp-Sidik-Jonkman CI scales s by
  sqrt(X / (k - 1)), X ~ chi-square(k - 1) (normal theory), and the squad's CI never narrower than the
  unscaled one (the Knapp & Hartung 2003 floor, pipeline.analyze.squad) uses max(1, that factor). So the
  power is E_X[Phi(delta / s - t max(1, sqrt(X / (k - 1))))], t the t(k - 1) quantile of the CI: one
  integral over the chi-square, taken on its probability scale. (Without the floor this is the non-central
  t of Hedges & Pigott; with it, power at small k is lower: 0.55 instead of 0.65 for the six blocks of the
  tests, whose Monte Carlo of the real meta-analysis gives 0.57.)
s is read from the stored CI itself (its half width over the quantile), so the figures restate what the
table shows.

"Blocks like these": k' blocks with the same average weight as the squad's k, so s' = s sqrt(k / k'), the
between-block variance tau^2 taken as estimated. That ignores the uncertainty of tau^2, assumes new
blocks are like the old ones and that each block's error is its own (blocks at the same time of year share
their season's error, which more of them do not average out); it is a planning figure, said as "about".

Reference: Hedges LV, Pigott TD (2001). The power of statistical tests in meta-analysis. Psychological
Methods 6:203-217. Valentine JC, Pigott TD, Rothstein HR (2010). How many studies do you need? J Educ Behav
Stat 35:215-247.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, stats

from pipeline.report import story
from pipeline.report.headline import DETECT_POWER, TYPICAL_GAIN_PCT

# The athlete page's power (Cohen's convention) and the gain it quotes (docs/report.md).
SQUAD_POWER = DETECT_POWER
CI_LEVEL = 0.95
MAX_BLOCKS = 1000       # beyond this "blocks needed" is reported as out of reach


def _df(method: str, k: int) -> float:
    """Degrees of freedom of the pooled CI's quantile: t(k - 1) for REML-HKSJ, normal otherwise."""
    return float(k - 1) if method == "reml_hksj" else math.inf


def _quantile(df: float) -> float:
    q = 1 - (1 - CI_LEVEL) / 2
    return float(stats.norm.ppf(q) if math.isinf(df) else stats.t.ppf(q, df))


def pooled_se_log(ci_low_pct: float, ci_high_pct: float, k: int, method: str) -> float:
    """The pooled mean's standard error on the log scale implied by its stored CI; NaN if it cannot be read."""
    return story.log_se_from_ci_pct(ci_low_pct, ci_high_pct, _quantile(_df(method, k))) if k >= 2 else math.nan


def call_power(true_change_pct: float, se_log: float, k: int, method: str) -> float:
    """How often a pooled CI of ``k`` blocks with standard error ``se_log`` is clear of 0 on the side of a true
    average change ``true_change_pct`` (either sign)."""
    if not (se_log > 0 and math.isfinite(se_log)) or k < 2:
        return math.nan
    df = _df(method, k)
    nc = abs(math.log1p(true_change_pct / 100)) / se_log
    q = _quantile(df)
    if math.isinf(df):
        return float(stats.norm.sf(q - nc))

    # Below x = df the floor binds (scale 1): that part is exact. Above, the expectation over the chi-square
    # is taken on its probability scale (midpoint rule in p, x = chi2.ppf(p)): a smooth, bounded integrand.
    p_floor, scale = _hksj_scale(df)
    return float(p_floor * stats.norm.cdf(nc - q) + (1 - p_floor) * stats.norm.cdf(nc - q * scale).mean())


_P_NODES = (np.arange(4000) + 0.5) / 4000


@functools.lru_cache(maxsize=64)
def _hksj_scale(df: float) -> tuple[float, np.ndarray]:
    """P(X <= df) for X ~ chi-square(df), and the HKSJ scale sqrt(X / df) at the midpoints of the rest of its
    probability (where the scale exceeds 1 and the Knapp-Hartung floor does not bind)."""
    p_floor = float(stats.chi2.cdf(df, df))
    return p_floor, np.sqrt(stats.chi2.ppf(p_floor + (1 - p_floor) * _P_NODES, df) / df)


def pooled_detectable_change_pct(se_log: float, k: int, method: str, power: float = SQUAD_POWER) -> float:
    """The smallest true average gain (%) the pooled CI would be clear of 0 for ``power`` of the time."""
    if not (se_log > 0 and math.isfinite(se_log)) or k < 2:
        return math.nan
    root = optimize.brentq(lambda log_d: call_power(100 * math.expm1(log_d), se_log, k, method) - power,
                           1e-9, 50 * se_log + 10)
    return 100 * math.expm1(root)


def blocks_needed(se_log: float, k: int, method: str, true_change_pct: float = TYPICAL_GAIN_PCT,
                  power: float = SQUAD_POWER) -> int | None:
    """The fewest blocks like these (same average weight) whose pooled CI would be clear of 0 for a true
    average change ``true_change_pct`` ``power`` of the time; None beyond :data:`MAX_BLOCKS`."""
    if not (se_log > 0 and math.isfinite(se_log)) or k < 2:
        return None
    per_block_var = se_log ** 2 * k          # the variance one block like these contributes

    def enough(n: int) -> bool:
        return call_power(true_change_pct, math.sqrt(per_block_var / n), n, method) >= power

    if not enough(MAX_BLOCKS):
        return None
    lo, hi = 1, MAX_BLOCKS                   # enough(hi) holds, enough(lo) does not (k' >= 2)
    while hi - lo > 1:                       # power grows with n: bisection
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


def squad_power_line(row: dict, method: str) -> str:
    """One sentence for a squad_pooled row: what these blocks can see and what a 2 % gain needs. Empty when
    the row's CI cannot be read."""
    k_blocks = story.as_float(row.get("k"))
    k = int(k_blocks) if math.isfinite(k_blocks) else 0
    se = pooled_se_log(story.as_float(row.get("ci_low_pct")), story.as_float(row.get("ci_high_pct")), k,
                       method)
    if not math.isfinite(se):
        return ""
    detect = pooled_detectable_change_pct(se, k, method)
    need = blocks_needed(se, k, method)
    gain = f"{TYPICAL_GAIN_PCT:g} %"
    if need is None:
        needs = f"a {gain} average gain is out of reach of any number of blocks like these"
    elif need <= k:
        needs = (f"a {gain} average gain would be called {100 * call_power(TYPICAL_GAIN_PCT, se, k, method):.0f} % "
                 f"of the time")
    else:
        needs = (f"calling a {gain} average gain {100 * SQUAD_POWER:.0f} % of the time needs about {need} blocks "
                 f"like these")
    return (f"With these {k} blocks a true average change of about {detect:.1f} % either way would be called "
            f"(95 % CI clear of 0) {100 * SQUAD_POWER:.0f} % of the time; {needs}.")

"""Pure physiological building blocks of the simulator (no randomness, no files).

Every function takes and returns plain numbers or numpy arrays with units in the names. The same
Minetti cost-of-running polynomial is used by the analysis (DESIGN.md, "Metrics"), so the simulated
truth and the measured metric share one definition of grade-adjusted speed.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

# Minetti AE, Moia C, Roi GS, Susta D, Ferretti G (2002). Energy cost of walking and running at extreme
# uphill and downhill slopes. J Appl Physiol 93:1039-1046 (pipeline.formulas.minetti2002_cost).
from pipeline.formulas import minetti2002_cost


def grade_adjusted_speed_m_s(speed_m_s: np.ndarray, grade: np.ndarray) -> np.ndarray:
    """Flat-ground speed of equal metabolic cost: speed · Cr(i) / Cr(0)."""
    return np.asarray(speed_m_s, dtype=float) * minetti2002_cost(grade) / minetti2002_cost(0.0)


def speed_for_grade_adjusted_m_s(gap_m_s: np.ndarray, grade: np.ndarray) -> np.ndarray:
    """Inverse of :func:`grade_adjusted_speed_m_s`: the real speed a runner holding ``gap_m_s`` runs at."""
    return np.asarray(gap_m_s, dtype=float) * minetti2002_cost(0.0) / minetti2002_cost(grade)


def first_order_response(target: np.ndarray, dt_s: float, tau_s: float, initial: float) -> np.ndarray:
    """Exact discrete first-order lag of a piecewise-constant ``target`` sampled every ``dt_s``.

    y[n] = a·y[n-1] + (1-a)·x[n] with a = exp(-dt/tau): the heart-rate on-kinetics model (HR relaxes
    to its steady state with time constant ``tau_s``; ~30-60 s for moderate running, e.g.
    Stirling et al. 2008, J Physiol Sci; Zakynthinaki 2015).
    """
    a = float(np.exp(-dt_s / tau_s))
    y, _ = lfilter([1.0 - a], [1.0, -a], np.asarray(target, dtype=float), zi=[a * initial])
    return y


def ornstein_uhlenbeck(rng: np.random.Generator, n: int, dt_s: float, tau_s: float, sd: float) -> np.ndarray:
    """Stationary OU (AR(1)) noise: ``n`` samples every ``dt_s`` with correlation time ``tau_s``, SD ``sd``.

    Used for wandering GPS error and within-run HR noise: errors that persist for tens of seconds, unlike
    white jitter, are what real devices show and what cleaning code must survive.
    """
    if n == 0:
        return np.zeros(0)
    phi = float(np.exp(-dt_s / tau_s))
    shocks = rng.normal(0.0, sd * np.sqrt(1.0 - phi * phi), n)
    shocks[0] = rng.normal(0.0, sd)
    out, _ = lfilter([1.0], [1.0, -phi], shocks, zi=[0.0])
    return out


def vapour_pressure_hpa(dew_point_c: np.ndarray | float) -> np.ndarray:
    """Water vapour pressure (hPa) at dew point ``dew_point_c`` (Magnus formula, Bolton 1980 constants
    as used by the Australian Bureau of Meteorology: 6.105 exp(17.27 Td / (237.7 + Td)))."""
    td = np.asarray(dew_point_c, dtype=float)
    return 6.105 * np.exp(17.27 * td / (237.7 + td))


def apparent_temperature_c(air_c: np.ndarray | float, dew_point_c: np.ndarray | float) -> np.ndarray:
    """Apparent temperature in the shade without wind (Steadman 1994, as the Australian Bureau of
    Meteorology computes it): AT = Ta + 0.33 e - 4.0, e the vapour pressure in hPa."""
    return np.asarray(air_c, dtype=float) + 0.33 * vapour_pressure_hpa(dew_point_c) - 4.0


def relative_humidity_pct(air_c: np.ndarray | float, dew_point_c: np.ndarray | float) -> np.ndarray:
    """Relative humidity (%) from air temperature and dew point: e(Td) / e(Ta) x 100."""
    return 100.0 * vapour_pressure_hpa(dew_point_c) / vapour_pressure_hpa(air_c)

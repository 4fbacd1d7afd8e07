"""Published formulas used by more than one stage, written once.

* :func:`minetti2002_cost` — energy cost of running on a slope (the analysis grade-adjusts speed with it,
  the simulator makes hilly runs with it);
* :func:`haversine_m` — great-circle distance (readers total a track's length, the analysis derives speed
  from positions).
"""

from __future__ import annotations

import numpy as np

# Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8
# Minetti et al. 2002, running: Cr(i) in J/kg/m for grade i (fraction), valid for -0.45 <= i <= 0.45.
MINETTI2002_RUN_COEFFS = (155.4, -30.4, -43.3, 46.3, 19.5, 3.6)  # i^5 ... i^0
MINETTI2002_GRADE_LIMIT = 0.45


def minetti2002_cost(grade: np.ndarray | float) -> np.ndarray:
    """Energy cost of running on a slope, J/kg/m (Minetti et al. 2002, J Appl Physiol 93:1039).

    Cr(i) = 155.4 i^5 - 30.4 i^4 - 43.3 i^3 + 46.3 i^2 + 19.5 i + 3.6, with ``grade`` i as a fraction
    (0.1 = 10 %), clipped to the fitted range -0.45..0.45. Cr(0) = 3.6 J/kg/m.
    """
    i = np.clip(np.asarray(grade, dtype=float), -MINETTI2002_GRADE_LIMIT, MINETTI2002_GRADE_LIMIT)
    return np.polyval(MINETTI2002_RUN_COEFFS, i)


def haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres between points given in degrees (haversine formula)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))

"""The dew point: one formula for the rules (mr.humidity) and for the stored series (`dew_point_c`)."""

from __future__ import annotations

import math


def dew_point(temp_c: float, rh_pct: float) -> float:
    """Magnus formula (a = 17.62, b = 243.12 °C, Sonntag 1990), good to ~0.35 °C for -45..60 °C.
    RH is clamped to [0.1, 100] %: a probe's 0 % or 101 % still gives a finite value."""
    rh = min(max(rh_pct, 0.1), 100.0)
    gamma = math.log(rh / 100.0) + 17.62 * temp_c / (243.12 + temp_c)
    return 243.12 * gamma / (17.62 - gamma)

"""Grafana's InfluxQL interpolation, as Grafana 10/11 does it, for running board queries for real.

* Template variables (frontend, `interpolateQueryExpr` of the InfluxDB datasource): a multi-value or
  include-all variable is regex-escaped; several values become `(a|b)`; "All" with a custom all value
  becomes that value verbatim (our boards use `.*`).
* `$timeFilter` (backend, pkg/tsdb/influxdb/models/query.go): `time >= <from>ms and time <= <to>ms`.
* `$__interval` / `$interval` (backend, gtime.FormatInterval) from the range and max data points,
  rounded like Grafana's `roundInterval`; `$__interval_ms` in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

ALL = "$__all"

_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/]")

# Grafana's roundInterval: (upper bound exclusive in ms, rounded interval in ms).
_ROUND = [
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000), (3_500, 2_000),
    (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000), (45_000, 30_000),
    (90_000, 60_000), (210_000, 120_000), (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000),
    (1_500_000, 1_200_000), (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
    (16_200_000, 10_800_000), (32_400_000, 21_600_000), (86_400_000, 43_200_000),
    (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
]


def escape_regex(value: str) -> str:
    return _REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


def round_interval(ms: float) -> int:
    for bound, rounded in _ROUND:
        if ms < bound:
            return rounded
    return 31_536_000_000  # a year


def format_interval(ms: int) -> str:
    units = (("y", 31_536_000_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))
    for unit, size in units:
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def interval_ms(start: datetime, end: datetime, max_data_points: int = 1000, min_interval_ms: int = 0) -> int:
    span = (end - start) / timedelta(milliseconds=1)
    return max(round_interval(span / max_data_points), min_interval_ms)


def format_variable(values: Sequence[str] | str, all_value: str | None = ".*") -> str:
    """The value a multi-value, include-all variable takes inside an InfluxQL regex."""
    if isinstance(values, str):
        values = [values]
    if list(values) == [ALL]:
        if all_value is None:
            raise ValueError("All without a custom all value needs the variable's full value list")
        return all_value
    escaped = [escape_regex(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(
    query: str, variables: Mapping[str, Sequence[str] | str], start: datetime, end: datetime,
    max_data_points: int = 1000,
) -> str:
    def var(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            return m.group(0)  # Grafana's own ($timeFilter, $__interval) are handled below
        return format_variable(variables[name])

    # Longest names first is what Grafana does implicitly with its regex; ${name} and $name forms.
    out = re.sub(r"\$\{(\w+)\}|\$(\w+)", var, query)
    ims = interval_ms(start, end, max_data_points)
    from_ms = int(start.timestamp() * 1000)
    to_ms = int(end.timestamp() * 1000)
    out = out.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    out = out.replace("$interval", format_interval(ims))
    out = out.replace("$__interval_ms", str(ims))
    out = out.replace("$__interval", format_interval(ims))
    return out


def parse_relative(expr: str, now: datetime) -> datetime:
    """`now`, `now-6h`, `now-1y` (the forms our boards use)."""
    if expr == "now":
        return now
    m = re.fullmatch(r"now-(\d+)([smhdwy])", expr)
    if not m:
        raise ValueError(f"unsupported time expression {expr!r}")
    n, unit = int(m.group(1)), m.group(2)
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}[unit]
    return now - timedelta(seconds=n * seconds)

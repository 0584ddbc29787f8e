"""InfluxDB line protocol: escaping, one point or one reading to one line."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final

from gateway.contract import KNOWN_METRICS, Reading
from server.adapters.timeseries.points import FieldValue, PointIn, dew_point_c, to_ms
from server.adapters.timeseries.schema import BOOLEAN_METRICS
from server.domain.device_meta import DeviceMeta

# Escaping as the line-protocol spec does it, backslashes included: the v2 line protocol reads two
# contiguous backslashes as one, and an unescaped backslash at the end of a value (or before a space or
# comma) would escape the separator after it and corrupt the line (influxdb-client leaves them as they are).
_ESCAPE_MEASUREMENT: Final = str.maketrans(
    {"\\": "\\\\", ",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_KEY: Final = str.maketrans(
    {"\\": "\\\\", ",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)


_ESCAPE_STRING: Final = str.maketrans({'"': r"\"", "\\": r"\\"})


def escape_measurement(name: str) -> str:
    return name.translate(_ESCAPE_MEASUREMENT)


def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key."""
    return key.translate(_ESCAPE_KEY)


def format_field(value: FieldValue) -> str:
    """A field value in line protocol: floats as floats, booleans as booleans, strings quoted.

    Integers are written as floats (``3`` -> ``3.0``) so that a field never changes type.
    """
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPE_STRING) + '"'
    return repr(float(value))


def point_to_line(point: PointIn) -> str | None:
    """Serialise a point; ``None`` when it has no writable field (non-finite numbers are skipped)."""
    parts = []
    for key, value in point.fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        parts.append(escape_key(key) + "=" + format_field(value))
    if not parts:
        return None
    tags = "".join(
        "," + escape_key(k) + "=" + escape_key(v) for k, v in sorted(point.tags.items()) if v != ""
    )
    return f"{escape_measurement(point.measurement)}{tags} {','.join(parts)} {point.ts_ms}"


@lru_cache(maxsize=65536)
def _line_prefix(device: str, meta: DeviceMeta) -> str:
    tags = "".join(
        "," + k + "=" + escape_key(v) for k, v in sorted(meta.tags(device).items()) if v != ""
    )
    return escape_measurement(meta.kind) + tags + " "


def reading_to_line(reading: Reading, meta: DeviceMeta) -> str:
    """The hot path: one canonical reading straight to one line of line protocol (ms precision).

    Same fields as :func:`reading_fields`, written in one pass. Metric names need no escaping: the
    contract restricts them to ``[a-z][a-z0-9_]*``.
    """
    parts = []
    current = temp = rh = None
    for name, value in reading.metrics.items():
        if name in BOOLEAN_METRICS or ((value is True or value is False) and name not in KNOWN_METRICS):
            parts.append(name + ("=true" if value else "=false"))
        else:
            v = float(value)
            parts.append(name + "=" + repr(v))
            if name == "current_a":
                current = v
            elif name == "temperature_c":
                temp = v
            elif name == "humidity_pct":
                rh = v
    rated = meta.rated_a
    if rated:
        parts.append("rated_a=" + repr(float(rated)))
        if current is not None:
            parts.append("load_pct=" + repr(round(current / rated * 100.0, 3)))
    if temp is not None and rh is not None:
        dp = dew_point_c(temp, rh)
        if dp is not None:
            parts.append("dew_point_c=" + repr(dp))
    return _line_prefix(reading.device, meta) + ",".join(parts) + " " + str(to_ms(reading.ts))

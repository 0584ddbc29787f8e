"""The schema of what the server writes (the single source for the dashboards' schema test)."""

from __future__ import annotations

from typing import Final

from gateway.contract import KNOWN_METRICS

DEVICE_KINDS: Final = frozenset(
    {
        "smart_plug", "strip_meter", "smoke_detector", "temp_sensor", "door_controller", "mr_probe",
        "leak_sensor", "heat_detector", "siren", "other",
    }
)
"""Measurements for readings: one per device kind. A kind outside this set is written as given."""

DEVICE_TAGS: Final = ("device", "floor", "kind", "site", "zone")
"""Tags of every reading and event point (sorted, as InfluxDB prefers)."""

BOOLEAN_METRICS: Final = frozenset(
    {
        "relay_on", "smoke", "water_leak", "door_open", "tamper", "door_locked", "battery_low",
        "detector_fault", "siren_on",
    }
)
"""Known metrics that are always written as booleans."""

DERIVED_FIELDS: Final = frozenset({"rated_a", "load_pct", "dew_point_c"})

EVENT_MEASUREMENT: Final = "event"
EVENT_TAGS: Final = (*DEVICE_TAGS, "type", "direction")
EVENT_FIELDS: Final = frozenset({"n", "count"})

ALARM_MEASUREMENT: Final = "alarm"
ALARM_TAGS: Final = ("device", "rule", "severity", "site", "zone")
ALARM_FIELDS: Final = frozenset({"active", "value"})

INSPECTION_MEASUREMENT: Final = "inspection"
INSPECTION_TAGS: Final = ("schedule", "site", "zone")
INSPECTION_FIELDS: Final = frozenset({"on_time", "late", "missed", "failed"})

READING_FIELDS: Final = frozenset(KNOWN_METRICS | DERIVED_FIELDS)
"""Fields a reading measurement may carry (unknown metrics are stored too, but boards use only these)."""


def schema() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Measurement -> (tags, fields) that the writers produce; boards may reference only these."""
    out: dict[str, tuple[frozenset[str], frozenset[str]]] = {
        kind: (frozenset(DEVICE_TAGS), READING_FIELDS) for kind in DEVICE_KINDS
    }
    out[EVENT_MEASUREMENT] = (frozenset(EVENT_TAGS), EVENT_FIELDS)
    out[ALARM_MEASUREMENT] = (frozenset(ALARM_TAGS), ALARM_FIELDS)
    out[INSPECTION_MEASUREMENT] = (frozenset(INSPECTION_TAGS), INSPECTION_FIELDS)
    return out

"""Which cleared alarms make an inspection of the device (or zone) due, and within how long."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from server.domain.inspections.catalog import H

TRIGGERS: Mapping[str, timedelta] = {
    "elec.plug_overcurrent": 4 * H,
    "elec.strip_overload": 4 * H,
    "elec.strip_load_high": 4 * H,
    "elec.strip_cascade": 4 * H,
    "elec.residual_current": H,
    "door.forced_open": H,
    "door.tamper": H,
    "fire.detector_fault": 24 * H,
    "fire.detector_disabled": 24 * H,
    "fire.smoke_alarm": H,
    "fire.heat_alarm": H,
    "fire.confirmed": H,
}
"""Rule whose alarm, once cleared, makes an inspection of the device (or zone) due within the time."""

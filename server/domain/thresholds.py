"""Default parameters of every sensor rule, straight from RULES.md §2.1–§2.7.

One table, so that the numbers live in one place and a site can override any of them per zone or per
device (`thresholds:` in the site YAML; the site parser checks the rule id and parameter names against
this table). Durations are in seconds, ratios are fractions of `rated_a`, temperatures in °C.
Values marked (pick) in RULES.md are picks there too; values marked "ours" are picks made here (no
number in RULES.md) and are listed in the module docstring of the rule that uses them.

This module imports nothing from the domain, so that `site.py` can validate overrides against it
and the rules can read their defaults from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

Params = Mapping[str, float]

DEFAULTS: Final[Mapping[str, Params]] = {
    # §2.1 electrical
    "elec.strip_load_high": {"raise_ratio": 0.80, "hold_s": 300, "clear_ratio": 0.75, "clear_hold_s": 300},
    "elec.strip_continuous_high": {
        "raise_ratio": 0.80,
        "hold_s": 3 * 3600,
        "clear_ratio": 0.75,
        "clear_hold_s": 300,
    },
    "elec.strip_overload": {
        "major_ratio": 1.00,
        "major_hold_s": 60,
        "critical_hold_s": 300,
        "surge_ratio": 1.25,
        "surge_hold_s": 10,
        "clear_ratio": 0.95,
        "clear_hold_s": 60,  # ours: clear below 95 % held 60 s
    },
    "elec.plug_overcurrent": {
        "major_ratio": 0.80,
        "major_hold_s": 60,
        "critical_ratio": 1.00,
        "critical_hold_s": 10,
        "clear_ratio": 0.75,
        "clear_hold_s": 60,  # ours
    },
    "elec.high_power_appliance": {
        "step_w": 800,
        "hold_s": 30,
        "clear_step_w": 400,
        "clear_hold_s": 30,
        "cut_delay_s": 60,  # relay off this long after the raise unless the shift lead holds it
    },
    "elec.unmetered_load": {
        "residual_a": 1.0,
        "hold_s": 600,
        "major_after_s": 24 * 3600,
        "clear_residual_a": 0.5,
        "clear_hold_s": 600,  # ours
    },
    "elec.strip_cascade": {},
    "elec.voltage_out_of_range": {
        "low_v": 198.0,
        "high_v": 235.4,
        "hold_s": 60,
        "major_after_s": 15 * 60,
        "major_fraction": 0.25,
        "clear_hold_s": 60,
    },
    "elec.relay_mismatch": {"power_w": 5.0, "hold_s": 5},
    "elec.continuous_runtime": {"active_above_idle_w": 50, "hold_s": 3600, "clear_hold_s": 300},
    "elec.after_shift_load": {"power_w": 15, "grace_s": 1800, "hold_s": 1800, "clear_hold_s": 300},
    "elec.plug_unplugged": {"offline_s": 300},
    "elec.residual_current": {"limit_ma": 0, "hold_s": 10},  # 0 = disabled (RULES.md §7 item 12)
    # §2.2 fire
    "fire.smoke_alarm": {},
    "fire.confirmed": {"ack_s": 60, "verdict_s": 180},
    "fire.manual_report": {},
    "fire.false_alarm_close": {},
    "fire.short_smoke_event": {"max_s": 60, "heat_rise_c": 2.0},
    "fire.heat_prewarn": {
        "static_c": 45,
        "rate_c_per_min": 4,
        "rate_min_c": 36,
        "clear_c": 43,
        "clear_hold_s": 60,
    },
    "fire.heat_alarm": {
        "static_c": 54,
        "rate_c_per_min": 4,
        "rate_min_c": 46,
        "clear_c": 50,
        "clear_hold_s": 60,
    },
    "fire.detector_fault": {},
    "fire.detector_disabled": {"max_s": 8 * 3600},
    "fire.battery_low": {},
    "evac.notice": {},
    # §2.3 doors
    "door.fire_release_zone": {"readback_s": 10},
    "door.fire_release_floor": {"readback_s": 10},
    "door.egress_controller_offline": {"offline_s": 200},
    "door.held_open": {"hold_s": 30},
    "door.fire_door_held_open": {"hold_s": 300},
    "door.forced_open": {"access_window_s": 10, "grant_tolerance_s": 1},
    "door.tamper": {},
    # §2.4 access
    "access.denied_repeat": {"count": 3, "window_s": 300},
    "access.revoked_badge_used": {},
    "access.leaver_badge_active": {},
    "access.visitor_unapproved": {},
    "access.visitor_unescorted": {"escort_s": 30},
    "access.visitor_overstay": {"grace_s": 900},
    "access.mr_unlisted": {},
    "access.mr_entry_notice": {},
    # §2.5 machine room
    "mr.temp_high": {
        "warning_c": 27,
        "warning_hold_s": 600,
        "major_c": 30,
        "major_hold_s": 300,
        "critical_c": 32,
        "critical_hold_s": 300,
        "clear_delta_c": 1.0,
        "clear_hold_s": 600,
    },
    "mr.temp_low": {"low_c": 18, "hold_s": 1800, "clear_c": 19, "clear_hold_s": 600},
    "mr.temp_rate": {"delta_c": 5, "window_s": 900},
    "mr.humidity_high": {
        "rh_pct": 60,
        "dew_point_c": 15,
        "hold_s": 1800,
        "major_rh_pct": 80,
        "major_hold_s": 60,
        "clear_margin_pct": 2,
        "clear_margin_c": 0.5,
        "clear_hold_s": 600,
    },
    "mr.humidity_low": {
        "dew_point_c": 5.5,
        "hold_s": 3600,
        "major_rh_pct": 30,
        "major_hold_s": 60,
        "clear_margin_pct": 2,
        "clear_margin_c": 0.5,
        "clear_hold_s": 600,
    },
    "mr.leak": {"debounce_s": 5},
    "mr.smoke": {},
    # §2.6 floor environment
    "env.office_temp": {"hold_s": 1800, "hysteresis_c": 0.5, "clear_hold_s": 300},
    "env.office_rh": {"hold_s": 3600, "hysteresis_pct": 2, "clear_hold_s": 300},
    "env.equipment_hotspot": {"hot_c": 40, "samples": 2, "clear_c": 38, "mean_c": 35, "mean_window_s": 86400},
    # §2.7 supervision and plausibility
    "sup.smoke_offline": {"offline_s": 200},
    "sup.smoke_offline_lpwan": {"extra_s": 300, "max_heartbeat_s": 3600},
    "sup.probe_offline": {"offline_s": 200},
    "sup.sensor_offline": {"intervals": 3, "min_s": 900},
    "sup.gateway_offline": {"fraction": 0.5, "window_s": 60},
    "sup.notify_channel": {"failures": 3},
    "sensor.temp_sentinel": {"power_on_c": 85.0, "indoor_min_c": -40.0},
    "sensor.temp_jump": {"jump_c": 15, "max_gap_s": 60, "neighbour_c": 2},
    "sensor.temp_out_of_range": {},
    "sensor.stuck": {"temp_s": 6 * 3600, "voltage_s": 24 * 3600, "lsb": 0.01},
    "sensor.rh_implausible": {"high_pct": 99, "hold_s": 3600},
    "sensor.tamper": {},
}
"""rule id -> parameter -> default. Every rule id of RULES.md §2.1–§2.7 that this engine evaluates."""

SITE_WIDE: Final[Mapping[str, frozenset[str]]] = {
    "sup.gateway_offline": frozenset({"fraction", "window_s"}),  # judged per edge, neither zone nor device
    "sup.notify_channel": frozenset({"failures"}),  # judged per channel
    # judged per floor; low_v and high_v do apply per plug
    "elec.voltage_out_of_range": frozenset({"hold_s", "clear_hold_s", "major_after_s", "major_fraction"}),
    "sup.smoke_offline_lpwan": frozenset({"max_heartbeat_s"}),  # the start-up warning's limit
    "access.visitor_overstay": frozenset({"grace_s"}),  # judged per visitor, not per door
}
"""Parameters that only the catalog default sets: the site parser refuses them per zone or device
rather than accept a value that would be ignored."""

CONTROLS: Final = frozenset({"elec.relay_reenable_guard", "evac.all_clear"})
"""Catalog entries that are controls (a permission check), not alarms; see `rules.controls`."""


def param(rule: str, name: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> float:
    """One parameter: the site's override when there is one, else the catalog default."""
    if overrides:
        layer = overrides.get(rule)
        value = layer.get(name) if layer is not None else None
        if value is not None:
            return value
    return DEFAULTS[rule][name]

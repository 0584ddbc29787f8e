"""Automatic power cut-off for overloads (RULES.md §2.1 power-cut policy), as a pure decision.

- elec.strip_overload critical: open the relays of the strip's non-essential (cuttable) smart plugs,
  largest load first, until the strip is estimated below 80 % of its rating.
- elec.plug_overcurrent critical: open that plug's relay, if it is cuttable.

Never an essential plug, never a distribution circuit: essential seat equipment gets the alarm and a
one-tap manual cut by the shift lead or supervisor instead (the issue's rule "only devices marked
cuttable, never essential ones"; RULES.md would also let an essential plug protect itself at ≥ 100 %,
which we leave to a person). The edge's own interlock (125 % for 10 s) works with the uplink down.

- elec.high_power_appliance (major): a delayed cut (`plan_delayed_cut`). When the seat plug is cuttable
  and either of class non-essential or on a strip at >= 80 % of its rating, its relay goes off
  `cut_delay_s` (60 s, a site threshold) after the raise unless the shift lead (or a role above it in
  the §4 chain, `CUT_HOLDERS`) holds the cut. The page says when (`cut_note`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from server.domain.policy import PERMISSIONS, Permission
from server.domain.site import Device, DeviceKind, PlugClass, Site
from server.domain.thresholds import DEFAULTS

STRIP_TARGET = 0.80
"""Cut until the strip is below this share of its rating (the catalog's continuous-load level)."""
NOMINAL_V = 220.0
"""The supply voltage the catalog's ratings are read at (RULES.md §2.1: 10 A ≈ 2 200 W at 220 V)."""


@dataclass(frozen=True, slots=True)
class CutPlan:
    devices: tuple[str, ...]
    reason: str
    short_by_a: float = 0.0
    """Current still above the target after every cuttable plug is off (essential loads remain)."""


def cuttable(device: Device) -> bool:
    """May a safety rule switch this plug off: marked cuttable, and neither essential nor of class essential
    (what is plugged in is essential equipment: `cuttable` beside it is a site-file slip, not a licence)."""
    return (device.kind is DeviceKind.SMART_PLUG and device.cuttable and not device.essential
            and device.plug_class is not PlugClass.ESSENTIAL)


def plug_current_a(metrics: Mapping[str, object]) -> float | None:
    """A plug's load in A: its `current_a`, else its `power_w` at NOMINAL_V (a plug that reports power only,
    as a Shelly Gen1 Plug S: read as idle, it would never be chosen for a cut); None when it reported neither."""
    for name, scale in (("current_a", 1.0), ("power_w", 1.0 / NOMINAL_V)):
        value = metrics.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) * scale
    return None


def plan_cut(rule: str, subject: str, value: float | None, site: Site,
             plug_current_a: Mapping[str, float]) -> CutPlan | None:
    """What to switch off for a critical overload alarm of `rule` on `subject`; None: nothing to do.

    `value` is the alarm's measured current (A); `plug_current_a` the latest current per plug.
    """
    device = site.devices.get(subject)
    if device is None:
        return None
    if rule == "elec.plug_overcurrent":
        if not cuttable(device):
            return None
        return CutPlan((subject,), f"elec.plug_overcurrent critical: {subject} over its {device.rating_a:g} A rating")
    if rule != "elec.strip_overload" or value is None:
        return None
    target = STRIP_TARGET * device.rating_a
    remaining = value
    chosen: list[str] = []
    candidates = sorted((p for p in site.plugs_of_strip(subject) if cuttable(p)),
                        key=lambda p: (-plug_current_a.get(p.id, 0.0), p.id))
    for plug in candidates:
        if remaining < target:
            break
        load = plug_current_a.get(plug.id, 0.0)
        if load <= 0:
            continue  # an idle plug: cutting it relieves nothing
        chosen.append(plug.id)
        remaining -= load
    if not chosen:
        return None
    return CutPlan(tuple(chosen), f"elec.strip_overload critical: {subject} at {value:.1f} A on "
                   f"{device.rating_a:g} A; cut largest non-essential loads to below {STRIP_TARGET:.0%}",
                   short_by_a=max(0.0, remaining - target))


# -- elec.high_power_appliance: the delayed cut (RULES.md §2.1) -----------------------------------------

HIGH_POWER = "elec.high_power_appliance"
CUT_HOLDERS = PERMISSIONS[Permission.HOLD_CUT]
"""Who may hold a delayed cut (the authorization table's hold_cut; admin too, as everywhere)."""


@dataclass(frozen=True, slots=True)
class DelayedCut:
    device: str
    delay: timedelta
    reason: str


def plan_delayed_cut(rule: str, subject: str, site: Site, strip_current_a: float | None) -> DelayedCut | None:
    """The cut to schedule when `rule` is raised on `subject`, or None (not this rule, essential, not
    cuttable, or neither non-essential nor on a loaded strip). `strip_current_a`: the plug's strip now."""
    if rule != HIGH_POWER:
        return None
    device = site.devices.get(subject)
    if device is None or not cuttable(device):
        return None  # never an essential plug, only plugs the site marked cuttable
    strip = site.devices.get(device.strip) if device.strip else None
    loaded = strip is not None and strip_current_a is not None and strip_current_a >= STRIP_TARGET * strip.rating_a
    if device.plug_class is not PlugClass.NON_ESSENTIAL and not loaded:
        return None
    why = "non-essential plug" if device.plug_class is PlugClass.NON_ESSENTIAL else (
        f"strip {device.strip} at {strip_current_a:.1f} A, >= {STRIP_TARGET:.0%} of its rating")
    seconds = site.overrides(device).get(HIGH_POWER, {}).get("cut_delay_s", DEFAULTS[HIGH_POWER]["cut_delay_s"])
    delay = timedelta(seconds=float(seconds))
    return DelayedCut(subject, delay, f"{HIGH_POWER}: {subject} ({why}); relay off {delay.total_seconds():g} s "
                      "after the alarm unless the shift lead holds the cut")


@dataclass(frozen=True, slots=True)
class ScheduledCut:
    """One alarm's delayed cut as stored (a row, not a timer): pending, held, cut (command sent), done,
    failed or cancelled."""

    alarm_id: int
    device: str
    reason: str
    created_at: datetime
    due_at: datetime
    status: str
    by: str = ""
    why: str = ""
    done_at: datetime | None = None
    """When it was held, cut, done, failed or cancelled."""
    command_id: str | None = None


@dataclass(frozen=True, slots=True)
class CutHold:
    """A person keeps a plug on: its delayed cuts are held until `until` (None: only those pending then)."""

    device: str
    until: datetime | None
    by: str
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CutOutcome:
    """A `cut` delayed cut whose command came back: `command_status` ok or failed."""

    alarm_id: int
    command_status: str
    result_at: datetime | None
    error: str | None


def safety_cut_note(devices: Sequence[str]) -> tuple[str, str]:
    """The line a page about an overload carries (zh, en) when the server switched plugs off for it."""
    plugs = ", ".join(devices)
    return f"已断电：服务器已向插座 {plugs} 下发断电指令", f"cut: the server switched plug {plugs} OFF"


def cut_note(status: str, due_at: datetime, tz: tzinfo, by: str = "", why: str = "") -> tuple[str, str]:
    """The line a page about the alarm carries (zh, en): when the cut comes, or who held it."""
    at = due_at.astimezone(tz).strftime("%H:%M:%S")
    if status == "pending":
        return (f"若领班不干预,将于 {at} 断开该插座电源",
                f"relay OFF at {at} unless the shift lead holds the cut")
    if status == "held":
        return f"断电已由 {by} 暂缓:{why}", f"cut held by {by}: {why}"
    if status == "cut":
        return f"已于 {at} 断开该插座电源", f"relay switched OFF at {at}"
    return "", ""

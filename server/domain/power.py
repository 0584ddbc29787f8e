"""Automatic power cut-off for overloads (RULES.md §2.1 power-cut policy), as a pure decision.

- elec.strip_overload critical: open the relays of the strip's non-essential (cuttable) smart plugs,
  largest load first, until the strip is estimated below 80 % of its rating.
- elec.plug_overcurrent critical: open that plug's relay, if it is cuttable.

Never an essential plug, never a distribution circuit: essential seat equipment gets the alarm and a
one-tap manual cut by the shift lead or supervisor instead (the issue's rule "only devices marked
cuttable, never essential ones"; RULES.md would also let an essential plug protect itself at ≥ 100 %,
which we leave to a person). The edge's own interlock (125 % for 10 s) works with the uplink down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from server.domain.site import Device, DeviceKind, Site

STRIP_TARGET = 0.80
"""Cut until the strip is below this share of its rating (the catalog's continuous-load level)."""


@dataclass(frozen=True, slots=True)
class CutPlan:
    devices: tuple[str, ...]
    reason: str
    short_by_a: float = 0.0
    """Current still above the target after every cuttable plug is off (essential loads remain)."""


def cuttable(device: Device) -> bool:
    return device.kind is DeviceKind.SMART_PLUG and device.cuttable and not device.essential


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

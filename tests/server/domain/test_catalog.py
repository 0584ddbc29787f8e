"""Every rule of RULES.md §2.1–§2.7: one row that RAISES it and one that CLEARS it; `STAGE_ROWS` raise a
further severity of a rule (the paging table routes what they raise, test_rule_reference checks it is declared).

Rows whose rule cannot clear say why in `no_clear` (a one-off record, or a latching fire alarm whose
engine condition re-arms while the alarm itself stays until a person closes it: see test_alarms.py).
Numbers come from the catalog: e.g. elec.strip_load_high is 80 % of rated for 5 min, clears under 75 %.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from gateway.contract import EventType, Severity
from server.domain.catalog import CATALOG, Measure, Place, Worse, with_unit
from server.domain.findings import Finding
from server.domain.rules import Approval, RuleEngine
from server.domain.rules.controls import all_clear, relay_reenable
from server.domain.rules.supervision import OFFLINE_RULES
from server.domain.thresholds import CONTROLS, DEFAULTS
from tests.server.domain.harness import EVENING, EXAMPLE, Floor, load_site

Step = Callable[[Floor], object]


def own_edge(device: str, supervise: bool = True) -> Floor:
    """A floor where `device` is alone behind its own edge, so its silence is not an edge outage."""
    text = EXAMPLE.read_text(encoding="utf-8")
    marker = f"{{id: {device}, "
    start = text.index(marker)
    line_end = text.index("}", start)
    chunk = (
        text[start:line_end]
        .replace("edge: edge-f1", "edge: edge-solo")
        .replace("edge: edge-mr", "edge: edge-solo")
    )
    return Floor(site=load_site(text[:start] + chunk + text[line_end:]), supervise=supervise)


def with_text(old: str, new: str) -> Floor:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    return Floor(site=load_site(text.replace(old, new)))


@dataclass
class Row:
    rule: str
    subject: str
    raise_: Step
    clear: Step | None = None
    no_clear: str = ""
    setup: Callable[[], Floor] = Floor
    severity: Severity | None = None

    def __str__(self) -> str:
        return self.rule


def confirm_two(f: Floor) -> None:
    f.read("smoke-a1", smoke=True)
    f.read("smoke-a2", smoke=True)


def visitor_in(f: Floor, door: str = "door-main") -> None:
    f.event(door, EventType.ACCESS_GRANTED, badge="V9001", direction="in")


ROWS: list[Row] = [
    # ---- §2.1 electrical
    Row(
        "elec.strip_load_high",
        "strip-a1",
        lambda f: f.hold("strip-a1", 310, current_a=8.5),
        lambda f: f.hold("strip-a1", 310, current_a=7.0),
        severity=Severity.WARNING,
    ),
    Row(
        "elec.strip_continuous_high",
        "strip-a1",
        lambda f: f.hold("strip-a1", 3 * 3600 + 60, every=60, current_a=8.2),
        lambda f: f.hold("strip-a1", 310, current_a=7.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "elec.strip_overload",
        "strip-a1",
        lambda f: f.hold("strip-a1", 61, current_a=10.5),
        lambda f: f.hold("strip-a1", 61, current_a=9.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "elec.plug_overcurrent",
        "plug-s002",
        lambda f: f.hold("plug-s002", 61, current_a=8.5),
        lambda f: f.hold("plug-s002", 61, current_a=5.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "elec.high_power_appliance",
        "plug-s002",
        lambda f: (f.hold("plug-s002", 60, power_w=120.0), f.hold("plug-s002", 31, every=1, power_w=1300.0)),
        lambda f: f.hold("plug-s002", 31, every=1, power_w=120.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "elec.unmetered_load",
        "strip-a1",
        lambda f: (
            f.read("plug-s001", current_a=1.0),
            f.read("plug-s002", current_a=1.0),
            f.read("plug-prn1", current_a=0.5),
            f.hold("strip-a1", 601, every=30, current_a=4.0),
        ),
        lambda f: f.hold("strip-a1", 601, every=30, current_a=2.7),
        severity=Severity.WARNING,
    ),
    Row(
        "elec.strip_cascade",
        "strip-b1",
        lambda f: None,
        None,
        setup=lambda: with_text(
            "{id: strip-b1, kind: strip_meter, zone: ops-b, edge: edge-f1}",
            "{id: strip-b1, kind: strip_meter, zone: ops-b, edge: edge-f1, upstream: strip-a1}",
        ),
        no_clear="cleared when the site file no longer has the cascade: test_cascade_clears_after_fix",
        severity=Severity.MAJOR,
    ),
    Row(
        "elec.voltage_out_of_range",
        "f1",
        lambda f: [
            f.hold(p, 61, voltage_v=190.0) for p in ("plug-s001", "plug-s002", "plug-prn1", "plug-s003")
        ],
        lambda f: [
            f.hold(p, 61, voltage_v=220.0) for p in ("plug-s001", "plug-s002", "plug-prn1", "plug-s003")
        ],
        severity=Severity.MAJOR,
    ),
    Row(
        "elec.relay_mismatch",
        "plug-s002",
        lambda f: (
            f.call(f.engine.on_relay_command("plug-s002", False, f.now)),
            f.hold("plug-s002", 6, every=1, relay_on=True, power_w=90.0),
        ),
        lambda f: f.hold("plug-s002", 6, every=1, relay_on=False, power_w=0.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "elec.continuous_runtime",
        "plug-prn1",
        lambda f: (f.read("plug-prn1", power_w=5.0), f.hold("plug-prn1", 3601, every=60, power_w=300.0)),
        lambda f: f.hold("plug-prn1", 301, every=10, power_w=5.0),
        severity=Severity.WARNING,
    ),
    Row(
        "elec.after_shift_load",
        "plug-s001",
        lambda f: f.hold("plug-s001", 1801, every=60, power_w=100.0),
        lambda f: f.hold("plug-s001", 301, every=10, power_w=5.0),
        setup=lambda: Floor(EVENING),
        severity=Severity.MINOR,
    ),
    Row(
        "elec.plug_unplugged",
        "plug-s001",
        lambda f: (f.read("plug-s001", power_w=80.0), f.advance(301, step=5)),
        lambda f: f.read("plug-s001", power_w=80.0),
        setup=lambda: own_edge("plug-s001"),
        severity=Severity.MINOR,
    ),
    Row(
        "elec.residual_current",
        "strip-a1",
        lambda f: f.hold("strip-a1", 11, every=1, residual_ma=40.0),
        lambda f: f.hold("strip-a1", 11, every=1, residual_ma=10.0),
        setup=lambda: with_text(
            "  devices:\n    strip-b1:",
            "  devices:\n    strip-a1:\n      elec.residual_current: {limit_ma: 30}\n    strip-b1:",
        ),
        severity=Severity.MAJOR,
    ),
    # ---- §2.2 fire
    Row(
        "fire.smoke_alarm",
        "smoke-b1",
        lambda f: f.read("smoke-b1", smoke=True),
        lambda f: f.read("smoke-b1", smoke=False),
        severity=Severity.CRITICAL,
    ),
    Row(
        "fire.confirmed",
        "ops-a",
        confirm_two,
        lambda f: (f.read("smoke-a1", smoke=False), f.read("smoke-a2", smoke=False)),
        severity=Severity.CRITICAL,
    ),
    Row(
        "fire.manual_report",
        "mcp-a1",
        lambda f: f.event("mcp-a1", EventType.MANUAL_CALL_POINT),
        lambda f: f.call(f.engine.reset_zone("ops-a", f.now)),
        severity=Severity.CRITICAL,
    ),
    Row(
        "fire.false_alarm_close",
        "ops-b",
        lambda f: (
            f.read("smoke-b1", smoke=True),
            f.call(f.engine.acknowledge_fire("ops-b", f.now)),
            f.call(f.engine.fire_verdict("ops-b", False, "smoking", f.now)),
        ),
        no_clear="a record of a human verdict (GB 25201 5.3 ②), closed by a person",
        severity=Severity.MINOR,
    ),
    Row(
        "fire.short_smoke_event",
        "smoke-wc1",
        lambda f: (f.read("smoke-wc1", smoke=True), f.advance(20), f.read("smoke-wc1", smoke=False)),
        no_clear="a tag on a smoke event that is already over (疑似吸烟)",
        severity=Severity.MINOR,
    ),
    Row(
        "fire.heat_prewarn",
        "temp-a2",
        lambda f: (
            f.read("temp-a2", temperature_c=35.0),
            f.advance(30),
            f.read("temp-a2", temperature_c=46.0),
        ),
        lambda f: f.hold("temp-a2", 61, temperature_c=40.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "fire.heat_alarm",
        "temp-a2",
        lambda f: (
            f.read("temp-a2", temperature_c=45.0),
            f.advance(30),
            f.read("temp-a2", temperature_c=55.0),
        ),
        lambda f: f.hold("temp-a2", 61, temperature_c=45.0),
        severity=Severity.CRITICAL,
    ),
    Row(
        "fire.detector_fault",
        "smoke-b1",
        lambda f: f.read("smoke-b1", detector_fault=True),
        lambda f: f.read("smoke-b1", detector_fault=False),
        severity=Severity.MAJOR,
    ),
    Row(
        "fire.detector_disabled",
        "smoke-b1",
        lambda f: (
            f.call(f.engine.set_detector_disabled("smoke-b1", True, f.now, f.now + timedelta(hours=1))),
            f.advance(3601, step=60),
        ),
        lambda f: f.call(f.engine.set_detector_disabled("smoke-b1", False, f.now)),
        severity=Severity.MAJOR,
    ),
    Row(
        "fire.battery_low",
        "smoke-b1",
        lambda f: f.read("smoke-b1", battery_low=True),
        lambda f: f.read("smoke-b1", battery_low=False),
        severity=Severity.MINOR,
    ),
    Row(
        "evac.notice",
        "f1",
        confirm_two,
        lambda f: f.call(f.engine.all_clear("f1", ["on_site_command"], f.now)),
        severity=Severity.CRITICAL,
    ),
    # ---- §2.3 doors
    Row(
        "door.fire_release_zone",
        "door-main",
        lambda f: (f.read("door-main", door_locked=True), f.read("smoke-a1", smoke=True), f.advance(11)),
        lambda f: f.read("door-main", door_locked=False),
        severity=Severity.CRITICAL,
    ),
    Row(
        "door.fire_release_floor",
        "door-exit-b",
        lambda f: (f.read("door-exit-b", door_locked=True), confirm_two(f), f.advance(11)),
        lambda f: f.read("door-exit-b", door_locked=False),
        severity=Severity.CRITICAL,
    ),
    Row(
        "door.egress_controller_offline",
        "door-main",
        lambda f: (f.read("door-main", door_open=False), f.advance(201)),
        lambda f: f.read("door-main", door_open=False),
        setup=lambda: own_edge("door-main"),
        severity=Severity.MAJOR,
    ),
    Row(
        "door.held_open",
        "door-b",
        lambda f: f.hold("door-b", 31, every=1, door_open=True),
        lambda f: f.read("door-b", door_open=False),
        severity=Severity.WARNING,
    ),
    Row(
        "door.fire_door_held_open",
        "door-fire1",
        lambda f: f.hold("door-fire1", 301, every=10, door_open=True),
        lambda f: f.read("door-fire1", door_open=False),
        severity=Severity.MAJOR,
    ),
    Row(
        "door.forced_open",
        "door-b",
        # Raised once the 1 s grant tolerance has passed with no grant (doors.py ForcedOpen).
        lambda f: (f.read("door-b", door_locked=True), f.read("door-b", door_open=True), f.advance(1)),
        lambda f: f.read("door-b", door_open=False),
        severity=Severity.MAJOR,
    ),
    Row(
        "door.tamper",
        "door-b",
        lambda f: f.read("door-b", tamper=True),
        lambda f: f.read("door-b", tamper=False),
        severity=Severity.MAJOR,
    ),
    # ---- §2.4 access
    Row(
        "access.denied_repeat",
        "door-b",
        lambda f: [
            (f.event("door-b", EventType.ACCESS_DENIED, badge="X777"), f.advance(30)) for _ in range(3)
        ],
        lambda f: f.advance(301, step=5),
        severity=Severity.MINOR,
    ),
    Row(
        "access.revoked_badge_used",
        "p-zhao",
        lambda f: (
            f.call(f.engine.on_hr_feed({"p-zhao": f.now - timedelta(days=1)}, {"B1002"}, f.now)),
            f.event("door-main", EventType.ACCESS_GRANTED, badge="B1002"),
        ),
        no_clear="a record of one presentation of a revoked card; a person closes it",
        severity=Severity.MAJOR,
    ),
    Row(
        "access.leaver_badge_active",
        "p-zhao",
        lambda f: f.call(f.engine.on_hr_feed({"p-zhao": f.now - timedelta(hours=2)}, {"B1002"}, f.now)),
        lambda f: f.call(f.engine.on_hr_feed({"p-zhao": f.now - timedelta(hours=2)}, set(), f.now)),
        severity=Severity.MAJOR,
    ),
    Row(
        "access.visitor_unapproved",
        "v-guest",
        visitor_in,
        lambda f: f.call(
            f.engine.on_approvals(
                [Approval("v-guest", f.now - timedelta(hours=1), f.now + timedelta(hours=1))], f.now
            )
        ),
        severity=Severity.MAJOR,
    ),
    Row(
        "access.visitor_unescorted",
        "v-guest",
        lambda f: (visitor_in(f), f.advance(31)),
        lambda f: f.event("door-main", EventType.ACCESS_GRANTED, badge="B1004", direction="in"),
        severity=Severity.MAJOR,
    ),
    Row(
        "access.visitor_overstay",
        "v-guest",
        lambda f: (
            f.call(
                f.engine.on_approvals(
                    [Approval("v-guest", f.now - timedelta(hours=1), f.now + timedelta(hours=1))], f.now
                )
            ),
            f.event("door-main", EventType.ACCESS_GRANTED, badge="B1004", direction="in"),
            visitor_in(f),
            f.advance(3600 + 901, step=60),
        ),
        lambda f: f.event("door-main", EventType.ACCESS_GRANTED, badge="V9001", direction="out"),
        severity=Severity.MINOR,
    ),
    Row(
        "access.mr_unlisted",
        "p-wang",
        lambda f: f.event("door-mr", EventType.ACCESS_GRANTED, badge="B1001"),
        no_clear="a record of one entry by a person not on the machine-room list",
        severity=Severity.MAJOR,
    ),
    Row(
        "access.mr_entry_notice",
        "p-sun",
        lambda f: f.event("door-mr", EventType.ACCESS_GRANTED, badge="B1006"),
        lambda f: None,
        severity=None,
    ),  # informational: raised and cleared by the same event
    # ---- §2.5 machine room
    Row(
        "mr.temp_high",
        "mr-probe1",
        lambda f: f.hold("mr-probe1", 601, every=30, temperature_c=27.5),
        lambda f: f.hold("mr-probe1", 601, every=30, temperature_c=25.0),
        severity=Severity.WARNING,
    ),
    Row(
        "mr.temp_low",
        "mr-probe1",
        lambda f: f.hold("mr-probe1", 1801, every=60, temperature_c=16.5),
        lambda f: f.hold("mr-probe1", 601, every=60, temperature_c=19.5),
        severity=Severity.WARNING,
    ),
    Row(
        "mr.temp_rate",
        "mr-probe1",
        lambda f: [(f.read("mr-probe1", temperature_c=22.0 + i * 0.6), f.advance(60)) for i in range(10)],
        lambda f: f.hold("mr-probe1", 960, every=60, temperature_c=27.4),
        severity=Severity.MAJOR,
    ),
    Row(
        "mr.humidity_high",
        "mr-probe1",
        lambda f: f.hold("mr-probe1", 1801, every=60, temperature_c=22.0, humidity_pct=65.0),
        lambda f: f.hold("mr-probe1", 601, every=60, temperature_c=22.0, humidity_pct=45.0),
        severity=Severity.WARNING,
    ),
    Row(
        "mr.humidity_low",
        "mr-probe1",
        lambda f: f.hold("mr-probe1", 61, every=10, temperature_c=22.0, humidity_pct=25.0),
        lambda f: f.hold("mr-probe1", 601, every=60, temperature_c=22.0, humidity_pct=45.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "mr.leak",
        "leak-mr1",
        lambda f: f.hold("leak-mr1", 6, every=1, water_leak=True),
        lambda f: f.hold("leak-mr1", 6, every=1, water_leak=False),
        severity=Severity.CRITICAL,
    ),
    Row(
        "mr.smoke",
        "mr-probe1",
        lambda f: f.read("mr-probe1", smoke=True),
        lambda f: f.read("mr-probe1", smoke=False),
        severity=Severity.CRITICAL,
    ),
    # ---- §2.6 floor environment
    Row(
        "env.office_temp",
        "temp-a2",
        lambda f: f.hold("temp-a2", 1801, every=60, temperature_c=29.0),
        lambda f: f.hold("temp-a2", 301, every=60, temperature_c=27.0),
        severity=Severity.WARNING,
    ),
    Row(
        "env.office_rh",
        "temp-a2",
        lambda f: f.hold("temp-a2", 3601, every=60, humidity_pct=85.0),
        lambda f: f.hold("temp-a2", 301, every=60, humidity_pct=60.0),
        severity=Severity.WARNING,
    ),
    Row(
        "env.equipment_hotspot",
        "temp-a3",
        lambda f: f.hold("temp-a3", 30, every=30, temperature_c=41.0),
        lambda f: f.read("temp-a3", temperature_c=30.0),
        severity=Severity.MAJOR,
    ),
    # ---- §2.7 supervision and plausibility
    Row(
        "sup.smoke_offline",
        "smoke-b1",
        lambda f: (f.read("smoke-b1", smoke=False), f.advance(201)),
        lambda f: f.read("smoke-b1", smoke=False),
        setup=lambda: own_edge("smoke-b1"),
        severity=Severity.MAJOR,
    ),
    Row(
        "sup.smoke_offline_lpwan",
        "smoke-lp1",
        lambda f: (f.read("smoke-lp1", smoke=False), f.advance(3901, step=10)),
        lambda f: f.read("smoke-lp1", smoke=False),
        setup=lambda: own_edge("smoke-lp1"),
        severity=Severity.MAJOR,
    ),
    Row(
        "sup.probe_offline",
        "mr-probe1",
        lambda f: (f.read("mr-probe1", temperature_c=22.0), f.advance(201)),
        lambda f: f.read("mr-probe1", temperature_c=22.0),
        setup=lambda: own_edge("mr-probe1"),
        severity=Severity.MAJOR,
    ),
    Row(
        "sup.sensor_offline",
        "temp-b1",
        lambda f: (f.read("temp-b1", temperature_c=22.0), f.advance(901, step=5)),
        lambda f: f.read("temp-b1", temperature_c=22.0),
        setup=lambda: own_edge("temp-b1"),
        severity=Severity.MINOR,
    ),
    Row(
        "sup.gateway_offline",
        "edge-f1",
        lambda f: f.call(f.engine.on_edge_status("edge-f1", False, f.now)),
        lambda f: f.call(f.engine.on_edge_status("edge-f1", True, f.now)),
        setup=lambda: Floor(supervise=True),
        severity=Severity.MAJOR,
    ),
    Row(
        "sup.notify_channel",
        "wecom",
        lambda f: [f.call(f.engine.on_notify_result("wecom", False, f.now)) for _ in range(3)],
        lambda f: f.call(f.engine.on_notify_result("wecom", True, f.now)),
        severity=Severity.MAJOR,
    ),
    Row(
        "sensor.temp_sentinel",
        "temp-a2",
        lambda f: f.read("temp-a2", temperature_c=85.0),
        lambda f: f.read("temp-a2", temperature_c=24.0),
        severity=Severity.MINOR,
    ),
    Row(
        "sensor.temp_jump",
        "temp-a2",
        lambda f: (
            [f.read(d, temperature_c=24.0) for d in ("temp-a1", "temp-a2", "temp-a3")],
            f.advance(30),
            [f.read(d, temperature_c=24.2) for d in ("temp-a1", "temp-a3")],
            f.read("temp-a2", temperature_c=50.0),
        ),
        lambda f: f.call(f.engine.sensor_checked("temp-a2", f.now)),
        severity=Severity.MAJOR,
    ),
    Row(
        "sensor.temp_out_of_range",
        "temp-a2",
        lambda f: f.read("temp-a2", temperature_c=130.0),
        lambda f: f.read("temp-a2", temperature_c=24.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "sensor.stuck",
        "temp-b1",
        lambda f: f.hold("temp-b1", 6 * 3600, every=600, temperature_c=21.5),
        lambda f: f.read("temp-b1", temperature_c=21.9),
        severity=Severity.MINOR,
    ),
    Row(
        "sensor.rh_implausible",
        "temp-a2",
        lambda f: f.read("temp-a2", humidity_pct=101.0),
        lambda f: f.read("temp-a2", humidity_pct=50.0),
        severity=Severity.MINOR,
    ),
    Row(
        "sensor.tamper",
        "leak-mr1",
        lambda f: f.read("leak-mr1", tamper=True),
        lambda f: f.read("leak-mr1", tamper=False),
        severity=Severity.MAJOR,
    ),
]


def unmetered_for(f: Floor, seconds: float, strip_a: float) -> None:
    """strip-a1 reads `strip_a` while its three plugs read 2.5 A in all, every 10 min for `seconds`."""
    for _ in range(int(seconds // 600) + 1):
        f.read("plug-s001", current_a=1.0)
        f.read("plug-s002", current_a=1.0)
        f.read("plug-prn1", current_a=0.5)
        f.read("strip-a1", current_a=strip_a)
        f.advance(600, step=60)


STAGE_ROWS: list[Row] = [
    Row(
        "elec.strip_overload",
        "strip-a1",
        lambda f: f.hold("strip-a1", 10, every=1, current_a=12.6),  # >= 125 % for 10 s
        lambda f: f.hold("strip-a1", 61, current_a=9.0),
        severity=Severity.CRITICAL,
    ),
    Row(
        "elec.plug_overcurrent",
        "plug-s002",
        lambda f: f.hold("plug-s002", 10, every=1, current_a=10.0),  # at its rating for 10 s
        lambda f: f.hold("plug-s002", 61, current_a=5.0),
        severity=Severity.CRITICAL,
    ),
    Row(
        "elec.unmetered_load",
        "strip-a1",
        lambda f: unmetered_for(f, 86400 + 1200, 4.0),  # a warning for 24 h
        lambda f: unmetered_for(f, 1200, 2.7),
        severity=Severity.MAJOR,
    ),
    Row(
        "elec.voltage_out_of_range",
        "f1",
        lambda f: (  # one plug of four: not more than 25 %
            [f.read(p, voltage_v=220.0) for p in ("plug-s002", "plug-prn1", "plug-s003")],
            f.hold("plug-s001", 61, voltage_v=190.0),
        ),
        lambda f: f.hold("plug-s001", 61, voltage_v=220.0),
        severity=Severity.WARNING,
    ),
    Row(
        "door.egress_controller_offline",
        "door-main",
        lambda f: (f.read("door-main", door_open=False), f.read("smoke-a1", smoke=True), f.advance(201)),
        lambda f: f.read("door-main", door_open=False),
        setup=lambda: own_edge("door-main"),
        severity=Severity.CRITICAL,
    ),
    Row(
        "door.held_open",
        "door-mr",
        lambda f: f.hold("door-mr", 31, every=1, door_open=True),
        lambda f: f.read("door-mr", door_open=False),
        severity=Severity.MAJOR,
    ),
    Row(
        "door.forced_open",
        "door-mr",
        lambda f: (f.read("door-mr", door_locked=True), f.event("door-mr", EventType.DOOR_FORCED)),
        lambda f: f.read("door-mr", door_open=False),
        severity=Severity.CRITICAL,
    ),
    Row(
        "access.denied_repeat",
        "door-mr",
        lambda f: [
            (f.event("door-mr", EventType.ACCESS_DENIED, badge="X777"), f.advance(30)) for _ in range(3)
        ],
        lambda f: f.advance(301, step=5),
        severity=Severity.MAJOR,
    ),
    Row(
        "mr.temp_high",
        "mr-probe1",
        lambda f: f.hold("mr-probe1", 301, every=30, temperature_c=30.5),
        lambda f: f.hold("mr-probe1", 601, every=30, temperature_c=25.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "mr.temp_high",
        "mr-probe1",
        lambda f: f.hold("mr-probe1", 301, every=30, temperature_c=32.5),
        lambda f: f.hold("mr-probe1", 601, every=30, temperature_c=25.0),
        severity=Severity.CRITICAL,
    ),
    Row(
        "mr.humidity_high",
        "mr-probe1",
        lambda f: f.hold("mr-probe1", 61, every=10, temperature_c=22.0, humidity_pct=85.0),
        lambda f: f.hold("mr-probe1", 601, every=60, temperature_c=22.0, humidity_pct=45.0),
        severity=Severity.MAJOR,
    ),
    Row(
        "mr.humidity_low",
        "mr-probe1",
        # dew point about 4.6 °C: under 5.5 °C for an hour, RH above the major 30 %
        lambda f: f.hold("mr-probe1", 3601, every=60, temperature_c=22.0, humidity_pct=32.0),
        lambda f: f.hold("mr-probe1", 601, every=60, temperature_c=22.0, humidity_pct=45.0),
        severity=Severity.WARNING,
    ),
    Row(
        "env.equipment_hotspot",
        "temp-a3",
        lambda f: f.hold("temp-a3", 25 * 3600, every=3600, temperature_c=36.0),  # 24 h mean > 35 °C
        lambda f: f.hold("temp-a3", 13 * 3600, every=3600, temperature_c=30.0),
        severity=Severity.MINOR,
    ),
    Row(
        "sup.smoke_offline",
        "smoke-b1",
        # ops-a is adjacent to ops-b
        lambda f: (f.read("smoke-b1", smoke=False), f.read("smoke-a1", smoke=True), f.advance(201)),
        lambda f: f.read("smoke-b1", smoke=False),
        setup=lambda: own_edge("smoke-b1"),
        severity=Severity.CRITICAL,
    ),
    Row(
        "sup.smoke_offline_lpwan",
        "smoke-lp1",
        # smoke-b1 is in smoke-lp1's own zone, ops-b
        lambda f: (f.read("smoke-lp1", smoke=False), f.read("smoke-b1", smoke=True), f.advance(3901, step=10)),
        lambda f: f.read("smoke-lp1", smoke=False),
        setup=lambda: own_edge("smoke-lp1"),
        severity=Severity.CRITICAL,
    ),
]
"""A row for every other severity the engine raises a rule at (test_rule_reference: every declared severity of
a rule judged from readings is raised by a row), e.g. a detector lost while its zone or an adjacent one is in
alarm is critical."""


@functools.cache
def played() -> tuple[tuple[Row, tuple[Finding, ...]], ...]:
    """Every row of ROWS and STAGE_ROWS played once: the row, and every finding of its floor after its raise step
    (other rules' too: a smoke alarm in a stage row also confirms the fire)."""
    out = []
    for row in [*ROWS, *STAGE_ROWS]:
        floor = row.setup()
        row.raise_(floor)
        out.append((row, tuple(floor.findings)))
    return tuple(out)


def stage_id(row: Row) -> str:
    return f"{row.rule}-{row.severity.value if row.severity else 'any'}"


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_rule_raises(row: Row) -> None:
    f = row.setup()
    row.raise_(f)
    raised = f.raised(row.rule, row.subject)
    assert raised, (
        f"{row.rule} was not raised for {row.subject}; got {[(x.rule, x.subject) for x in f.findings]}"
    )
    if row.severity is not None:
        assert raised[0].severity is row.severity
    assert raised[0].site == "hq"


@pytest.mark.parametrize("row", STAGE_ROWS, ids=stage_id)
def test_rule_raises_at_its_further_severity_and_clears(row: Row) -> None:
    f = row.setup()
    row.raise_(f)
    raised = f.raised(row.rule, row.subject)
    assert raised and raised[-1].severity is row.severity, [x.severity for x in raised]  # the latest stage
    test_rule_clears(row)


@pytest.mark.parametrize("row", [r for r in ROWS if r.clear is not None], ids=str)
def test_rule_clears(row: Row) -> None:
    f = row.setup()
    row.raise_(f)
    assert f.raised(row.rule, row.subject)
    assert row.clear is not None
    row.clear(f)
    assert f.cleared(row.rule, row.subject), f"{row.rule} did not clear for {row.subject}"
    assert not f.is_open(row.rule, row.subject)


@pytest.mark.parametrize("row", [r for r in ROWS if r.clear is None], ids=str)
def test_rule_that_cannot_clear_says_why(row: Row) -> None:
    assert row.no_clear, f"{row.rule}: a row without a clear step must say why it cannot clear"


def test_every_alarm_is_raised_where_the_catalog_says() -> None:
    """`RuleSpec.raised_in` routes the paging table's rows (RULES.md §4: a machine room pages 机房值班): every alarm
    the rows raise is in a place its rule declares for that severity, and every machine-room place declared is
    one a row raises in (each machine-room-only severity is raised by a row)."""
    raised: set[tuple[str, Severity, Place]] = set()
    for row, findings in played():
        site = row.setup().site
        for f in findings:
            if f.is_raise and f.zone in site.zones:
                assert f.zone is not None
                raised.add((f.rule, f.severity, Place.MACHINE_ROOM if site.is_machine_room(f.zone) else Place.FLOOR))
    undeclared = sorted((r, s.value, p.value) for r, s, p in raised if p not in CATALOG[r].places(s))
    assert not undeclared, f"raised where the catalog's raised_in does not say: {undeclared}"
    declared = {(spec.id, s, Place.MACHINE_ROOM) for spec in CATALOG.values() for s in spec.severities
                if spec.places(s) == (Place.MACHINE_ROOM,)}
    unraised = sorted((r, s.value) for r, s, _ in declared - raised)
    assert not unraised, f"declared in a machine room, but no row raises it there: {unraised}"


def test_every_catalog_rule_has_a_row() -> None:
    rows = {r.rule for r in ROWS} | CONTROLS
    assert set(DEFAULTS) | CONTROLS == rows
    import re

    from tests.catalog import rules_md_text

    text = rules_md_text()
    section = text[text.index("### 2.1") : text.index("### 2.8")]
    ids = set(re.findall(r"^\| ((?:elec|fire|evac|door|access|mr|env|sup|sensor)\.[a-z_]+)", section, re.M))
    ids.add("door.fire_release_floor")
    assert ids == rows


# ---- rows with more than one path -----------------------------------------------------------------


def test_strip_overload_stages_and_value_is_current() -> None:
    f = Floor()
    f.hold("strip-a1", 61, current_a=10.5)
    assert f.severity("elec.strip_overload", "strip-a1") is Severity.MAJOR
    assert f.raised("elec.strip_overload")[0].value == 10.5
    f.hold("strip-a1", 240, current_a=10.5)
    assert f.severity("elec.strip_overload", "strip-a1") is Severity.CRITICAL  # > 100 % for 5 min
    g = Floor()
    g.hold("strip-a1", 10, every=1, current_a=12.6)  # >= 125 % for 10 s
    assert [x.severity for x in g.raised("elec.strip_overload")] == [Severity.CRITICAL]


def test_duration_runs_out_on_tick_without_new_reading() -> None:
    f = Floor()
    f.read("strip-a1", current_a=8.5)
    assert not f.advance(299)
    assert [x.rule for x in f.advance(2) if x.rule == "elec.strip_load_high"] == ["elec.strip_load_high"]


def test_after_shift_grace_and_rostered_seat() -> None:
    f = Floor()  # day shift: s-001 is rostered
    f.hold("plug-s001", 3600, every=60, power_w=100.0)
    assert not f.raised("elec.after_shift_load")


def test_fire_confirmed_paths() -> None:
    smoke_heat = Floor()
    smoke_heat.read("temp-a2", temperature_c=45.0)
    smoke_heat.read("smoke-a1", smoke=True)
    smoke_heat.advance(30)
    smoke_heat.read("temp-a2", temperature_c=55.0)
    assert smoke_heat.raised("fire.confirmed", "ops-a")

    no_ack = Floor()
    no_ack.read("smoke-b1", smoke=True)
    no_ack.advance(59)
    assert not no_ack.raised("fire.confirmed")
    no_ack.advance(2)
    assert no_ack.raised("fire.confirmed", "ops-b")

    no_verdict = Floor()
    no_verdict.read("smoke-b1", smoke=True)
    no_verdict.call(no_verdict.engine.acknowledge_fire("ops-b", no_verdict.now))
    no_verdict.advance(170)
    assert not no_verdict.raised("fire.confirmed")
    no_verdict.advance(15)
    assert no_verdict.raised("fire.confirmed", "ops-b")

    false_alarm = Floor()
    false_alarm.read("smoke-b1", smoke=True)
    false_alarm.call(false_alarm.engine.acknowledge_fire("ops-b", false_alarm.now))
    false_alarm.call(false_alarm.engine.fire_verdict("ops-b", False, "dust", false_alarm.now))
    false_alarm.advance(300, step=5)
    assert not false_alarm.raised("fire.confirmed")

    staff = Floor()
    staff.call(staff.engine.report_fire("ops-b", staff.now))
    assert staff.raised("fire.manual_report", "ops-b") and staff.raised("fire.confirmed", "ops-b")
    assert staff.raised("evac.notice", "f1")[0].message_zh.startswith("Operations B区域发生火情")


def test_smoke_is_never_suppressed_by_short_event() -> None:
    f = Floor()
    f.read("smoke-wc1", smoke=True)
    assert f.raised("fire.smoke_alarm", "smoke-wc1")[0].message_zh.endswith("核实中")
    f.advance(20)
    f.read("smoke-wc1", smoke=False)
    assert f.raised("fire.short_smoke_event")[0].message_zh == "疑似吸烟"
    office = Floor()
    office.read("smoke-b1", smoke=True)
    office.advance(20)
    office.read("smoke-b1", smoke=False)
    assert not office.raised("fire.short_smoke_event")  # only restrooms and stairwells


def test_sentinel_is_never_fire() -> None:
    f = Floor()
    for value in (85.0, -127.0, -252.0):
        f.read("temp-a2", temperature_c=value)
    assert not f.raised("fire.heat_alarm") and not f.raised("fire.heat_prewarn")
    assert f.raised("sensor.temp_sentinel", "temp-a2")


def test_jump_suppresses_heat_for_that_sensor_until_smoke_corroborates() -> None:
    f = Floor()
    for d in ("temp-a1", "temp-a2", "temp-a3"):
        f.read(d, temperature_c=24.0)
    f.advance(30)
    f.read("temp-a2", temperature_c=60.0)
    assert f.raised("sensor.temp_jump") and not f.raised("fire.heat_alarm")
    f.read("smoke-a1", smoke=True)
    assert f.raised("fire.heat_alarm", "temp-a2")  # corroborated: real
    assert f.cleared("sensor.temp_jump", "temp-a2")
    assert f.raised("fire.confirmed", "ops-a")  # smoke + heat


def test_out_of_range_with_smoke_is_fire() -> None:
    f = Floor()
    f.read("smoke-a1", smoke=True)
    f.read("temp-a2", temperature_c=130.0)
    assert f.raised("fire.heat_alarm", "temp-a2") and not f.raised("sensor.temp_out_of_range")


def test_door_release_readback_in_time_raises_nothing() -> None:
    f = Floor()
    f.read("door-main", door_locked=True)
    f.read("smoke-a1", smoke=True)
    f.advance(3)
    f.read("door-main", door_locked=False)
    f.advance(20)
    assert not f.raised("door.fire_release_zone")


def test_forced_open_not_after_grant_and_critical_in_machine_room() -> None:
    f = Floor()
    f.read("door-b", door_locked=True)
    f.event("door-b", EventType.ACCESS_GRANTED, badge="B1004")
    f.read("door-b", door_open=True)
    assert not f.raised("door.forced_open")
    f.event("door-mr", EventType.DOOR_FORCED)
    assert f.severity("door.forced_open", "door-mr") is Severity.CRITICAL


def test_mr_temp_high_stages() -> None:
    f = Floor()
    f.hold("mr-probe1", 301, every=30, temperature_c=32.5)
    assert f.severity("mr.temp_high", "mr-probe1") is Severity.CRITICAL
    # Clears 1 °C lower after 10 min: 31.5 °C is between, nothing changes.
    f.hold("mr-probe1", 900, every=30, temperature_c=31.5)
    assert f.is_open("mr.temp_high", "mr-probe1")


@pytest.mark.parametrize(("rule", "detector", "silent_s"), [
    ("sup.smoke_offline", "smoke-b1", 201),
    ("sup.smoke_offline_lpwan", "smoke-lp1", 3901),  # heartbeat_s 1800: 2 x 1800 + 300 s
])
def test_an_offline_detector_becomes_critical_when_smoke_comes_in_its_zone(rule: str, detector: str,
                                                                            silent_s: float) -> None:
    f = own_edge(detector)
    f.read(detector, smoke=False)
    f.advance(silent_s, step=10)
    assert f.severity(rule, detector) is Severity.MAJOR
    f.read("smoke-b1" if detector != "smoke-b1" else "smoke-a1", smoke=True)  # ops-b, or ops-a next to it
    assert f.severity(rule, detector) is Severity.CRITICAL
    assert [x.severity for x in f.raised(rule, detector)] == [Severity.MAJOR, Severity.CRITICAL]


def test_edge_silence_is_one_gateway_alert_with_smoke_per_zone() -> None:
    f = Floor(supervise=True)
    f.advance(1000, step=5)
    assert f.raised("sup.gateway_offline", "edge-f1")
    assert not f.raised("sup.sensor_offline")  # folded into the gateway alert
    assert f.is_open("sup.smoke_offline", "ops-a")  # smoke detectors: one per zone
    assert not f.is_open("sup.smoke_offline", "smoke-a1")
    f.read("temp-a1", temperature_c=22.0)
    assert f.cleared("sup.gateway_offline", "edge-f1")


def test_a_device_that_keeps_reporting_clears_the_edge_alert_once_and_the_silent_ones_stand_alone() -> None:
    """Most of an edge's devices fall silent (a tripped floor circuit) while one keeps reporting through it.
    The first report after the mass silence clears the edge alert (the edge is up); the still-silent devices
    are then judged alone, never regrouped into a new edge alert at the next report."""
    f = Floor(supervise=True)
    f.advance(1000, step=5)
    assert len(f.raised("sup.gateway_offline", "edge-f1")) == 1
    for _ in range(20):  # temp-a1 reports every 30 s for 10 minutes
        f.read("temp-a1", temperature_c=22.0)
        f.advance(30, step=5)
    assert len(f.raised("sup.gateway_offline", "edge-f1")) == 1, "the edge alert was raised again"
    assert not f.is_open("sup.gateway_offline", "edge-f1")
    assert f.is_open("sup.smoke_offline", "smoke-a1"), "a silent detector stands alone once the edge is back"
    assert not f.is_open("sup.sensor_offline", "temp-a1")
    open_now = {subject for (rule, subject) in f.engine.open_conditions() if rule in OFFLINE_RULES}
    short_silent = {d.id for d in f.site.devices_of_edge("edge-f1")  # slow reporters are not due yet
                    if d.id != "temp-a1" and d.reporting_interval_s < 600 and d.heartbeat_s <= 60}
    assert short_silent <= open_now, f"silent devices without their own alarm: {sorted(short_silent - open_now)}"


def test_a_whole_edge_outage_after_staggered_reports_is_still_one_edge_alert() -> None:
    """The edge dies after its devices last reported at their own moments: most within the last minute,
    a quarter 250 s before (slow reporters). Still one edge alert, and smoke detectors one alarm per zone."""
    f = Floor(supervise=True)
    devices = [d.id for d in f.site.devices_of_edge("edge-f1")]
    slow = devices[::4]
    for device in slow:
        f.read(device, rssi_dbm=-50.0)
    f.advance(200, step=5)
    for i, device in enumerate(d for d in devices if d not in slow):
        f.read(device, rssi_dbm=-50.0)
        if i % 3 == 2:
            f.advance(10, step=5)  # the rest spread over about a minute
    assert not f.is_open("sup.gateway_offline", "edge-f1")
    before = len(f.raised("sup.gateway_offline", "edge-f1"))  # the start's silence (nothing heard yet) raised one
    f.advance(2000, step=5)
    assert len(f.raised("sup.gateway_offline", "edge-f1")) == before + 1
    assert f.is_open("sup.gateway_offline", "edge-f1")
    assert f.is_open("sup.smoke_offline", "ops-a") and not f.is_open("sup.smoke_offline", "smoke-a1")


def test_cascade_clears_after_fix() -> None:
    broken = with_text(
        "{id: strip-b1, kind: strip_meter, zone: ops-b, edge: edge-f1}",
        "{id: strip-b1, kind: strip_meter, zone: ops-b, edge: edge-f1, upstream: strip-a1}",
    )
    assert broken.raised("elec.strip_cascade", "strip-b1")
    fixed = RuleEngine(load_site())
    fixed.restore(broken.engine.snapshot())
    found = fixed.tick(broken.now)
    assert [(x.rule, x.transition.value) for x in found if x.rule == "elec.strip_cascade"] == [
        ("elec.strip_cascade", "clear")
    ]


def test_office_temp_needs_occupied_zone() -> None:
    f = Floor(EVENING)  # ops-b has nobody rostered in the evening
    f.hold("temp-b1", 3600, every=60, temperature_c=30.0)
    assert not f.raised("env.office_temp")


def test_mr_entry_notice_raises_and_clears_at_once() -> None:
    f = Floor()
    f.event("door-mr", EventType.ACCESS_GRANTED, badge="B1006")
    assert f.raised("access.mr_entry_notice", "p-sun") and f.cleared("access.mr_entry_notice", "p-sun")
    assert not f.raised("access.mr_unlisted")
    assert f.raised("access.mr_entry_notice")[0].message_zh.startswith("机房禁止")


def test_a_badge_is_matched_whatever_its_case() -> None:
    """esp-rfid sends a card's hex in lower case; the site file has it as printed."""
    f = Floor()
    f.event("door-mr", EventType.ACCESS_GRANTED, badge="b1006")
    assert f.raised("access.mr_entry_notice", "p-sun")
    assert not f.raised("access.mr_unlisted")


def test_unknown_badge_never_appears_in_findings() -> None:
    f = Floor()
    for _ in range(3):
        f.event("door-mr", EventType.ACCESS_DENIED, badge="SECRET-123")
    assert f.findings and all("SECRET-123" not in (x.subject + x.message) for x in f.findings)


def test_controls() -> None:
    assert not relay_reenable(["operator"], "fixed", "elec.plug_overcurrent", False, False).allowed
    assert not relay_reenable(["shift_lead"], "", "elec.plug_overcurrent", False, False).allowed
    assert relay_reenable(["shift_lead"], "kettle removed", "elec.high_power_appliance", False, False).allowed
    assert not relay_reenable(["supervisor"], "ok", "elec.strip_overload", True, False).allowed
    assert relay_reenable(["supervisor"], "ok", "elec.strip_overload", True, True).allowed
    assert all_clear(["emergency_command"]).allowed and not all_clear(["supervisor"]).allowed
    f = Floor()
    confirm_two(f)
    with pytest.raises(PermissionError):
        f.engine.all_clear("f1", ["shift_lead"], f.now)


def test_zone_rearms_after_a_fire_and_confirms_a_new_one_once() -> None:
    f = Floor()
    confirm_two(f)
    f.read("smoke-a1", smoke=False)
    f.read("smoke-a2", smoke=False)
    assert f.cleared("fire.confirmed", "ops-a")
    f.read("temp-a1", temperature_c=22.0)  # unrelated traffic must not re-confirm the old fire
    f.advance(400, step=5)
    assert len(f.raised("fire.confirmed", "ops-a")) == 1
    confirm_two(f)
    assert len(f.raised("fire.confirmed", "ops-a")) == 2


def test_false_alarm_ends_the_sequence_and_a_later_alarm_starts_a_new_one() -> None:
    f = Floor()
    f.read("smoke-b1", smoke=True)
    f.call(f.engine.acknowledge_fire("ops-b", f.now))
    f.call(f.engine.fire_verdict("ops-b", False, "steam", f.now))
    f.read("smoke-b1", smoke=False)
    f.advance(600, step=10)
    assert not f.raised("fire.confirmed")
    f.read("smoke-b1", smoke=True)
    f.advance(61)
    assert f.raised("fire.confirmed", "ops-b")  # nobody acknowledged the new alarm


def test_a_rule_that_declares_no_measure_raises_no_value() -> None:
    """The page and the pushes show an alarm's value with its catalog unit; a value of a rule with no `Measure`
    (a detector's 1/0 flag) would read "raised at 1" with no unit and no meaning."""
    valued = sorted({f.rule for _, findings in played() for f in findings
                     if f.value is not None and f.rule in CATALOG and CATALOG[f.rule].measure is None})
    assert not valued, f"these rules raise a value but declare no Measure in the catalog: {valued}"


def test_every_gauge_says_its_unit_and_is_worse_the_way_it_trips() -> None:
    for spec in CATALOG.values():
        if spec.gauge is None:
            continue
        assert spec.measure is not None and spec.measure.unit, f"{spec.id}: a gauge's value has a unit"
        assert spec.measure.worse is (Worse.HIGHER if spec.gauge.rising else Worse.LOWER), spec.id


def test_a_change_is_not_shown_as_a_temperature() -> None:
    # mr.temp_rate's value is the change within its window: "5.2 °C" would read as the room's temperature.
    assert with_unit("mr.temp_rate", 5.2) == "5.2 °C change"
    assert with_unit("mr.temp_high", 29.5) == "29.5 °C"


def test_the_worst_of_values_follows_the_rules_direction() -> None:
    assert Measure("A").worst(12.56, None, 14.2, 3.6) == 14.2
    assert Measure("°C", Worse.LOWER).worst(17.5, 15.5, None) == 15.5
    assert Measure("V", Worse.EITHER).worst(198.0, 250.0) is None
    assert Measure("A").worst(None) is None

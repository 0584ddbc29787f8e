"""RULES.md §2.3 egress and doors (`door.*`): one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from gateway.contract import Severity
from server.domain.catalog.spec import AlarmDoc, Check, Param, Place, RuleSpec, paged_at_any_severity
from server.domain.catalog.supervision import silent_device

FIRE_RELEASE_ZONE = RuleSpec(
    "door.fire_release_zone",
    "2.3",
    "Egress door did not release (zone)",
    "疏散门未解锁(区域)",
    (Severity.CRITICAL,),
    (
        "GB 50116 4.10.3 [R7]; GB 55024 5.3.6 (release centrally *and* locally) [R21]; GB 50396 9.0.1(2) and "
        "3.0.4 [R20]; GB 50166 4.1.3 linkage start ≤ 3 s [R11]"
    ),
    Check.READINGS,
    params={
        "readback_s": Param(10, "s"),
    },
    life_safety=True,
    pages=paged_at_any_severity("security_evacuation", "supervisor"),
    doc=AlarmDoc(
        subject="egress door_controller id that did not read back unlocked within 10 s",
        zone="the door's zone",
        ends="the door reads back unlocked, or a person resets the release",
    ),
)
"""The floor-wide release is judged the same way: it differs only in id and title."""

RULES: tuple[RuleSpec, ...] = (
    FIRE_RELEASE_ZONE,
    replace(
        FIRE_RELEASE_ZONE,
        id="door.fire_release_floor",
        title="Egress door did not release (floor)",
        title_zh="疏散门未解锁(楼层)",
        doc=AlarmDoc(
            subject="egress door_controller id (floor release)",
            zone="the door's zone",
            ends="as above",
        ),
    ),
    silent_device(
        "door.egress_controller_offline",
        "2.3",
        "Egress door controller offline",
        "疏散门控制器离线",
        (Severity.MAJOR, Severity.CRITICAL),
        (
            "GB 50396 [R20]; practice: door power on UPS with fire linkage; separate lock power from controller "
            "power; glass-break release button on the escape side [R22]"
        ),
        "supervisor",
        "facilities",
        life_safety=True,
        doc=AlarmDoc(
            subject="egress door_controller id",
            zone="the door's zone",
            ends="the controller reports again",
            severity="major → critical during a fire",
        ),
    ),
    RuleSpec(
        "door.held_open",
        "2.3",
        "Door held open",
        "门长时间未关",
        (Severity.WARNING, Severity.MAJOR),
        (
            "Vendor defaults vary: Axis example OpenTooLongTime 10 s with PreAlarmTime 5 s; BACnet-objects "
            "DOOR_OPEN_TOO_LONG default 30 s; Hikvision door-sensor alarm timeout configurable 0–255 s [R23]"
        ),
        Check.READINGS,
        params={
            "hold_s": Param(30, "s"),
        },
        pages={"warning": ("shift_lead",), "major": ("mr_duty", "supervisor")},
        raised_in={Severity.MAJOR.value: (Place.MACHINE_ROOM,)},
        push_delay=timedelta(seconds=90),
        doc=AlarmDoc(
            subject="door_controller id (not a fire door)",
            zone="the door's zone",
            ends="the door closes",
            severity="warning; major at a machine-room door",
        ),
    ),
    RuleSpec(
        "door.fire_door_held_open",
        "2.3",
        "Fire door held open",
        "防火门未关闭",
        (Severity.MAJOR,),
        (
            "61号令 Art.25(4) (patrol checks that normally closed fire doors are shut) and Art.31(5) (correct on the "
            "spot) [R15]"
        ),
        Check.READINGS,
        params={
            "hold_s": Param(300, "s"),
        },
        life_safety=True,
        pages=paged_at_any_severity("shift_lead"),
        doc=AlarmDoc(
            subject="door_controller id (`door_type: fire_door`)",
            zone="the door's zone",
            ends="the door closes",
        ),
    ),
    RuleSpec(
        "door.forced_open",
        "2.3",
        "Door forced open",
        "门被强行打开",
        (Severity.MAJOR, Severity.CRITICAL),
        'BACnet FORCED_OPEN state [R23]; D6 "防盗" (theft prevention)',
        Check.READINGS,
        security=True,
        params={
            "access_window_s": Param(10, "s"),
            "grant_tolerance_s": Param(1, "s"),
        },
        pages=paged_at_any_severity("shift_lead", "supervisor"),
        inspect_within=timedelta(hours=1),
        doc=AlarmDoc(
            subject="door_controller id",
            zone="the door's zone",
            ends="the door closes",
            severity="major; critical at a machine-room door or in an unstaffed zone",
        ),
    ),
    RuleSpec(
        "door.tamper",
        "2.3",
        "Door controller tampered with",
        "门禁被破坏",
        (Severity.MAJOR,),
        "BACnet TAMPER state [R23]",
        Check.READINGS,
        security=True,
        pages=paged_at_any_severity("supervisor", "facilities"),
        inspect_within=timedelta(hours=1),
        doc=AlarmDoc(
            subject="door_controller id",
            zone="the door's zone",
            ends="the tamper flag goes away",
        ),
    ),
)

"""RULES.md §2.2 fire detection and response (`fire.*`, `evac.*`): one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from datetime import timedelta

from gateway.contract import Severity
from server.domain.catalog.spec import (
    AlarmDoc,
    Check,
    Measure,
    Param,
    RuleSpec,
    Worse,
    control,
    evacuating,
    paged_at_any_severity,
)


def _heat_params(static_c: float, rate_min_c: float, clear_c: float) -> dict[str, Param]:
    """A heat threshold: static, or a 4 °C/min rise above `rate_min_c` (the A1 algorithm's switch, [R9])."""
    return {
        "static_c": Param(static_c, "°C"),
        "rate_c_per_min": Param(4, "°C/min"),
        "rate_min_c": Param(rate_min_c, "°C"),
        "clear_c": Param(clear_c, "°C"),
        "clear_hold_s": Param(60, "s"),
    }


RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "fire.smoke_alarm",
        "2.2",
        "Smoke alarm",
        "烟感报警",
        (Severity.CRITICAL,),
        (
            'S07, S18; GB 25201 5.3 ① "接到火灾报警信息后,应以最快方式确认" '
            "(confirm by the fastest means on receiving a fire alarm) [R18]; "
            "NFPA 72 positive alarm sequence (ack 15 s / investigate ≤ 180 s) [R14]; "
            "local practice: nearby staff confirm within 1 min, response team on site within 3 min [R19]"
        ),
        Check.READINGS,
        latching=True,
        life_safety=True,
        inspect_within=timedelta(hours=1),
        starts_verification=True,
        inhibited_by_fire=True,
        doc=AlarmDoc(
            subject="smoke_detector id",
            zone="the detector's zone",
            ends="a person closes it",
        ),
    ),
    evacuating(
        "fire.confirmed",
        "2.2",
        "Fire confirmed",
        "火警已确认",
        (
            'GB 50116 4.1.6: linkage needs an "与" (AND) of two independent devices [R7]. GB 50116 4.10.1 '
            "commentary: ordinary power, AC, recreation and kitchen loads may be cut immediately after "
            "confirmation; normal lighting and security systems should not be [R7]. GB 25201 5.3 ③: call "
            "119 on confirmation [R18]."
        ),
        params={
            "ack_s": Param(60, "s"),
            "verdict_s": Param(180, "s"),
        },
        inspect_within=timedelta(hours=1),
        doc=AlarmDoc(
            subject="zone id",
            zone="that zone",
            ends="a person closes it",
        ),
    ),
    evacuating(
        "fire.manual_report",
        "2.2",
        "Fire reported by staff",
        "人员报火警",
        'S18 ("发现火情,应立即报警")',
        doc=AlarmDoc(
            subject="manual call point (device id); zone id for the app's report button",
            zone="the zone",
            ends="a person closes it",
        ),
    ),
    RuleSpec(
        "fire.false_alarm_close",
        "2.2",
        "False fire alarm recorded",
        "误报记录",
        (Severity.MINOR,),
        "GB 25201 5.3 ②: record false alarms [R18]",
        Check.READINGS,
        doc=AlarmDoc(
            subject="zone id",
            zone="that zone",
            ends="a person closes it",
            severity="minor, one-off",
        ),
    ),
    RuleSpec(
        "fire.short_smoke_event",
        "2.2",
        "Short smoke event (suspected smoking)",
        "短时烟雾(疑似吸烟)",
        (Severity.MINOR,),
        "S07",
        Check.READINGS,
        params={
            "max_s": Param(60, "s"),
            "heat_rise_c": Param(2.0, "°C"),
        },
        doc=AlarmDoc(
            subject="smoke_detector id (restroom or stairwell)",
            zone="the detector's zone",
            ends="a person closes it",
            severity="minor, one-off",
        ),
    ),
    RuleSpec(
        "fire.heat_prewarn",
        "2.2",
        "Heat pre-warning",
        "温度预警",
        (Severity.MAJOR,),
        (
            'Panasonic EBL128 "Class A1" algorithm: pre-warning 46 °C (rise < 4 °C/min) or 36 °C (rise > '
            "4 °C/min) [R9]. A1 maximum application temperature 50 °C [R9]."
        ),
        Check.READINGS,
        params=_heat_params(static_c=45, rate_min_c=36, clear_c=43),
        life_safety=True,
        pages=paged_at_any_severity("shift_lead", "supervisor"),
        inhibited_by_fire=True,
        measure=Measure("°C"),
        doc=AlarmDoc(
            subject="temp_sensor or mr_probe id",
            zone="the device's zone",
            ends="below 43 °C for 60 s",
        ),
    ),
    RuleSpec(
        "fire.heat_alarm",
        "2.2",
        "Heat alarm",
        "温度火警",
        (Severity.CRITICAL,),
        (
            "EN 54-5 / GB 4716 class A1 static response 54–65 °C, A2 54–70 °C [R9]; Panasonic alarm levels 56 °C / 46"
            " °C [R9]"
        ),
        Check.READINGS,
        params=_heat_params(static_c=54, rate_min_c=46, clear_c=50),
        life_safety=True,
        inspect_within=timedelta(hours=1),
        starts_verification=True,
        inhibited_by_fire=True,
        measure=Measure("°C"),
        doc=AlarmDoc(
            subject="temp_sensor or mr_probe id",
            zone="the device's zone",
            ends="below 50 °C for 60 s",
        ),
    ),
    RuleSpec(
        "fire.detector_fault",
        "2.2",
        "Smoke detector fault",
        "烟感故障",
        (Severity.MAJOR,),
        (
            "Wired loop faults must show at the panel within 100 s (GB 4717 via GB 50166 commissioning) [R11]; EN "
            "54-5: head removal must give a fault [R9]"
        ),
        Check.READINGS,
        life_safety=True,
        pages=paged_at_any_severity("shift_lead", "facilities"),
        inspect_within=timedelta(hours=24),
        degrades_life_safety=True,
        doc=AlarmDoc(
            subject="smoke_detector id",
            zone="the detector's zone",
            ends="the fault flag goes away",
        ),
    ),
    RuleSpec(
        "fire.detector_disabled",
        "2.2",
        "Smoke detector disabled",
        "烟感被停用",
        (Severity.MAJOR,),
        (
            '61号令 Art.31(7) "违章关闭消防设施" (shutting off fire facilities against the rules) must be corrected'
            " on the spot [R15]"
        ),
        Check.READINGS,
        params={
            "max_s": Param(28800, "s"),
        },
        life_safety=True,
        pages=paged_at_any_severity("supervisor"),
        inspect_within=timedelta(hours=24),
        degrades_life_safety=True,
        doc=AlarmDoc(
            subject="smoke_detector id",
            zone="the detector's zone",
            ends="the detector is enabled again",
        ),
    ),
    RuleSpec(
        "fire.battery_low",
        "2.2",
        "Smoke detector battery low",
        "烟感电量低",
        (Severity.MINOR,),
        (
            "Wireless detectors report low battery with ≥ 7 days of operation left [R30]; NFPA 72-2013: depletion "
            "trouble re-sounds ≤ every 4 h [R14]; GB 20517-2025: battery checked at least every 24 h [R13]"
        ),
        Check.READINGS,
        measure=Measure("%", Worse.LOWER),
        doc=AlarmDoc(
            subject="smoke_detector id",
            zone="the detector's zone",
            ends="battery flag goes away",
        ),
    ),
    evacuating(
        "evac.notice",
        "2.2",
        "Evacuation",
        "疏散通知",
        "S18; D7 四5; GB 25506 / GB 25201 duty procedure [R18, R19]",
        latching=False,
        doc=AlarmDoc(
            subject="floor id; the machine-room zone id after `mr.smoke`",
            zone="the fire zone",
            ends="all clear by on-site or emergency command",
        ),
    ),
    control("evac.all_clear", "2.2", "D7 四"),
)

"""RULES.md §2.1 electrical (`elec.*`): one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from datetime import timedelta

from gateway.contract import DeviceKind, Severity
from server.domain.catalog.spec import (
    AlarmDoc,
    Check,
    Gauge,
    Measure,
    Param,
    RuleSpec,
    Stage,
    Worse,
    control,
    paged_at_any_severity,
)

STRIP = frozenset({DeviceKind.STRIP_METER})
PLUG = frozenset({DeviceKind.SMART_PLUG})


def _rated_current_gauge(kinds: frozenset[DeviceKind], *stages: Stage) -> Gauge:
    """The device's current judged as a fraction of its rated current."""
    return Gauge(kinds, "current_a", stages, of_rating=True)


def _strip_high(
    rule: str,
    title: str,
    title_zh: str,
    severity: Severity,
    source: str,
    *,
    hold_s: float,
    paged: tuple[str, ...],
    message: str,
    message_zh: str,
    doc: AlarmDoc,
    inspect_within: timedelta | None = None,
) -> RuleSpec:
    """A strip at 80 % of its rating for `hold_s` is raised at `severity`, cleared below 75 % held 5 min (NEC's
    continuous-load margin); `paged` are paged at any severity."""
    return RuleSpec(
        rule,
        "2.1",
        title,
        title_zh,
        (severity,),
        source,
        Check.READINGS,
        params={
            "raise_ratio": Param(0.8, "× rated_a"),
            "hold_s": Param(hold_s, "s"),
            "clear_ratio": Param(0.75, "× rated_a"),
            "clear_hold_s": Param(300, "s"),
        },
        pages=paged_at_any_severity(*paged),
        inspect_within=inspect_within,
        gauge=_rated_current_gauge(STRIP, Stage(severity, "raise_ratio", "clear_ratio", "hold_s", "clear_hold_s")),
        measure=Measure("A"),
        message=message,
        message_zh=message_zh,
        doc=doc,
    )


RULES: tuple[RuleSpec, ...] = (
    _strip_high(
        "elec.strip_load_high",
        "Strip near its rating",
        "插线板接近额定负荷",
        Severity.WARNING,
        "S03; NEC 210.19(A)(1)/210.20(A) 125 % continuous ⇒ 80 % [R4]; GB/T 2099.7 scope ≤ 16 A [R1]",
        hold_s=300,
        paged=("strip_operators", "shift_lead"),
        inspect_within=timedelta(hours=4),
        message="Strip near its rated load",
        message_zh="插线板接近额定负荷,请勿再接入电器",
        doc=AlarmDoc(
            subject="strip_meter id",
            zone="the strip's zone",
            ends="load < 75 % for 5 min",
        ),
    ),
    _strip_high(
        "elec.strip_continuous_high",
        "Strip loaded high for hours",
        "插线板长时间高负荷",
        Severity.MAJOR,
        "[R4]",
        hold_s=10800,
        paged=("shift_lead", "supervisor"),
        message="Strip at 80 % of its rating for 3 h or more: redistribute loads or add a circuit",
        message_zh="插线板连续3小时以上处于额定负荷80%：请分散负载或增设回路",
        doc=AlarmDoc(
            subject="strip_meter id",
            zone="the strip's zone",
            ends="load < 75 % for 5 min",
        ),
    ),
    RuleSpec(
        "elec.strip_overload",
        "2.1",
        "Strip overloaded",
        "插线板过载",
        (Severity.MAJOR, Severity.CRITICAL),
        "S03, S05; rating per GB/T 2099.7 [R1]; 10 A strip ≈ 2 200 W at 220 V (2 500 W at 250 V) [R3]",
        Check.READINGS,
        params={
            "major_ratio": Param(1.0, "× rated_a"),
            "major_hold_s": Param(60, "s"),
            "critical_hold_s": Param(300, "s"),
            "surge_ratio": Param(1.25, "× rated_a"),
            "surge_hold_s": Param(10, "s"),
            "clear_ratio": Param(0.95, "× rated_a"),
            "clear_hold_s": Param(60, "s", "ours: clear below 95 % held 60 s"),
        },
        pages=paged_at_any_severity("shift_lead", "supervisor"),
        inspect_within=timedelta(hours=4),
        cuts_relay=True,
        gauge=_rated_current_gauge(
            STRIP,
            Stage(Severity.MAJOR, "major_ratio", "clear_ratio", "major_hold_s", "clear_hold_s", strict=True),
            Stage(Severity.CRITICAL, "major_ratio", "clear_ratio", "critical_hold_s", "clear_hold_s", strict=True),
            Stage(Severity.CRITICAL, "surge_ratio", "clear_ratio", "surge_hold_s", "clear_hold_s"),
        ),
        message="Strip overloaded",
        message_zh="插线板过载",
        measure=Measure("A"),
        doc=AlarmDoc(
            subject="strip_meter id",
            zone="the strip's zone",
            ends=(
                "load < 95 % for 60 s; critical switches off the strip's cuttable, non-essential plugs, "
                "largest first, until it is under 80 %"
            ),
        ),
    ),
    RuleSpec(
        "elec.plug_overcurrent",
        "2.1",
        "Plug over its current rating",
        "插座过流",
        (Severity.MAJOR, Severity.CRITICAL),
        "S03, S05",
        Check.READINGS,
        params={
            "major_ratio": Param(0.8, "× rated_a"),
            "major_hold_s": Param(60, "s"),
            "critical_ratio": Param(1.0, "× rated_a"),
            "critical_hold_s": Param(10, "s"),
            "clear_ratio": Param(0.75, "× rated_a"),
            "clear_hold_s": Param(60, "s", "ours"),
        },
        pages={"critical": ("shift_lead", "supervisor", "facilities"), "major": ("shift_lead",)},
        inspect_within=timedelta(hours=4),
        cuts_relay=True,
        gauge=_rated_current_gauge(
            PLUG,
            Stage(Severity.MAJOR, "major_ratio", "clear_ratio", "major_hold_s", "clear_hold_s"),
            Stage(Severity.CRITICAL, "critical_ratio", "clear_ratio", "critical_hold_s", "clear_hold_s"),
        ),
        message="Plug over its rated current",
        message_zh="插座电流超过额定值",
        measure=Measure("A"),
        doc=AlarmDoc(
            subject="smart_plug id",
            zone="the plug's zone",
            ends="current < 75 % for 60 s",
        ),
    ),
    RuleSpec(
        "elec.high_power_appliance",
        "2.1",
        "High-power appliance plugged in",
        "疑似私接大功率电器",
        (Severity.MAJOR,),
        (
            "S02, S03; office PC idle 50–100 W (range 30–170 W), PC + monitor 150–400 W [R28]; kettle and hair-dryer "
            "1 000–1 500 W [R3]"
        ),
        Check.READINGS,
        params={
            "step_w": Param(800, "W"),
            "hold_s": Param(30, "s"),
            "clear_step_w": Param(400, "W"),
            "clear_hold_s": Param(30, "s"),
            "cut_delay_s": Param(60, "s", "relay off this long after the raise unless the shift lead holds it"),
        },
        pages=paged_at_any_severity("shift_lead", "seat_operator"),
        measure=Measure("W"),
        doc=AlarmDoc(
            subject="smart_plug id (a plug with a `seat`)",
            zone="the plug's zone",
            ends="step < 400 W for 30 s; the plug is cut 60 s after the raise unless a lead holds it",
        ),
    ),
    RuleSpec(
        "elec.unmetered_load",
        "2.1",
        "Unmetered load on a strip",
        "插线板存在未登记负载",
        (Severity.WARNING, Severity.MAJOR),
        "S02",
        Check.READINGS,
        params={
            "residual_a": Param(1.0, "A"),
            "hold_s": Param(600, "s"),
            "major_after_s": Param(86400, "s"),
            "clear_residual_a": Param(0.5, "A"),
            "clear_hold_s": Param(600, "s", "ours"),
        },
        pages=paged_at_any_severity("shift_lead"),
        measure=Measure("A"),
        doc=AlarmDoc(
            subject="strip_meter id",
            zone="the strip's zone",
            ends="residual < 0.5 A for 10 min",
            severity="warning → major (24 h)",
        ),
    ),
    RuleSpec(
        "elec.strip_cascade",
        "2.1",
        "Daisy-chained strip or unknown device",
        "插线板串接或未登记设备",
        (Severity.MAJOR,),
        "S02; do not daisy-chain strips [R3]",
        Check.READINGS,
        pages=paged_at_any_severity("shift_lead", "supervisor"),
        inspect_within=timedelta(hours=4),
        doc=AlarmDoc(
            subject=(
                "strip_meter id fed from a strip (`upstream`); `<edge>/<device>` for an unknown device seen "
                "on an edge's floor broker"
            ),
            zone="the strip's zone; none for an unknown device",
            ends="the site file no longer has the cascade; an unknown device: a person closes it",
        ),
    ),
    RuleSpec(
        "elec.voltage_out_of_range",
        "2.1",
        "Supply voltage out of range",
        "供电电压异常",
        (Severity.WARNING, Severity.MAJOR),
        "GB/T 12325: 220 V single-phase +7 % / −10 % [R5]",
        Check.READINGS,
        params={
            "low_v": Param(198.0, "V"),
            "high_v": Param(235.4, "V"),
            "hold_s": Param(60, "s"),
            "major_after_s": Param(900, "s"),
            "major_fraction": Param(0.25, "fraction"),
            "clear_hold_s": Param(60, "s"),
        },
        site_wide=frozenset(["clear_hold_s", "hold_s", "major_after_s", "major_fraction"]),
        pages=paged_at_any_severity("facilities"),
        measure=Measure("V", Worse.EITHER),
        doc=AlarmDoc(
            subject="floor id",
            zone="none",
            ends="the floor's plugs back in 198–235.4 V for 60 s",
        ),
    ),
    RuleSpec(
        "elec.relay_mismatch",
        "2.1",
        "Plug relay does not follow its command",
        "插座继电器状态不符",
        (Severity.MAJOR,),
        "S05",
        Check.READINGS,
        params={
            "power_w": Param(5.0, "W"),
            "hold_s": Param(5, "s"),
        },
        pages=paged_at_any_severity("shift_lead"),
        measure=Measure("W"),
        doc=AlarmDoc(
            subject="smart_plug id",
            zone="the plug's zone",
            ends="the plug follows its command",
        ),
    ),
    RuleSpec(
        "elec.continuous_runtime",
        "2.1",
        "Appliance running for a long time",
        "电器长时间连续工作",
        (Severity.WARNING,),
        "S04",
        Check.READINGS,
        params={
            "active_above_idle_w": Param(50, "W"),
            "hold_s": Param(3600, "s"),
            "clear_hold_s": Param(300, "s"),
        },
        pages=paged_at_any_severity("seat_operator", "shift_lead"),
        measure=Measure("W"),
        doc=AlarmDoc(
            subject="smart_plug id (`class: printer` or `non_essential`)",
            zone="the plug's zone",
            ends="idle for 5 min",
        ),
    ),
    RuleSpec(
        "elec.after_shift_load",
        "2.1",
        "Power drawn after the shift",
        "下班后仍在用电",
        (Severity.MINOR,),
        "S17; off/standby 2–13.5 W, idle desktop 30–100 W [R28]",
        Check.READINGS,
        params={
            "power_w": Param(15, "W"),
            "grace_s": Param(1800, "s"),
            "hold_s": Param(1800, "s"),
            "clear_hold_s": Param(300, "s"),
        },
        measure=Measure("W"),
        doc=AlarmDoc(
            subject="smart_plug id (a plug with a `seat`)",
            zone="the plug's zone",
            ends="load gone, or the seat rostered again",
        ),
    ),
    RuleSpec(
        "elec.plug_unplugged",
        "2.1",
        "Seat plug offline during the shift",
        "当班座位插座离线",
        (Severity.MINOR,),
        "S02",
        Check.READINGS,
        params={
            "offline_s": Param(300, "s"),
        },
        device_offline=True,
        doc=AlarmDoc(
            subject="smart_plug id (a plug with a `seat`)",
            zone="the plug's zone",
            ends="the plug reports again",
        ),
    ),
    RuleSpec(
        "elec.residual_current",
        "2.1",
        "Residual current on a strip",
        "插线板剩余电流",
        (Severity.MAJOR,),
        "GB 50116-2013 9.2.3 [R6]",
        Check.READINGS,
        params={
            "limit_ma": Param(0, "mA", "0 = disabled (RULES.md §7 item 12)"),
            "hold_s": Param(10, "s"),
        },
        inspect_within=timedelta(hours=1),
        measure=Measure("mA"),
        doc=AlarmDoc(
            subject="strip_meter id (only with a `limit_ma` override)",
            zone="the strip's zone",
            ends="residual current under the limit",
        ),
    ),
    control("elec.relay_reenable_guard", "2.1", "S05, S06 (D12 电工证; D15 维修需主管批准)"),
)

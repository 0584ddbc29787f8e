"""RULES.md §2.5 machine-room environment (`mr.*`): one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from gateway.contract import DeviceKind, Severity
from server.domain.catalog.spec import (
    IN_MACHINE_ROOM,
    AlarmDoc,
    Check,
    Gauge,
    Measure,
    Param,
    RuleSpec,
    Stage,
    Worse,
    evacuating,
    paged_at_any_severity,
)

PROBE = frozenset({DeviceKind.MR_PROBE})

HUMIDITY_MAJOR_AND_CLEAR: dict[str, Param] = {
    "major_hold_s": Param(60, "s"),
    "clear_margin_pct": Param(2, "% RH"),
    "clear_margin_c": Param(0.5, "°C"),
    "clear_hold_s": Param(600, "s"),
}
"""Both humidity rules: major held 60 s, cleared 2 % RH / 0.5 °C back inside the band for 10 min."""

HUMIDITY_DOC = AlarmDoc(
    subject="mr_probe id", zone="the probe's zone (its machine room)", ends="back inside the band for 10 min"
)
"""Both humidity rules' row in docs/alarms.md."""

RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "mr.temp_high",
        "2.5",
        "Machine room too hot",
        "机房温度过高",
        (Severity.WARNING, Severity.MAJOR, Severity.CRITICAL),
        (
            "GB 50174-2017: 18–27 °C is the strictest inlet requirement among vendors [R24]; ASHRAE recommended 18–27"
            " °C, class A1 allowable up to 32 °C (89.6 °F) [R25]; telecom practice: start emergency cooling above 30 "
            "°C [R26]"
        ),
        Check.READINGS,
        params={
            "warning_c": Param(27, "°C"),
            "warning_hold_s": Param(600, "s"),
            "major_c": Param(30, "°C"),
            "major_hold_s": Param(300, "s"),
            "critical_c": Param(32, "°C"),
            "critical_hold_s": Param(300, "s"),
            "clear_delta_c": Param(1.0, "°C"),
            "clear_hold_s": Param(600, "s"),
        },
        pages={
            "warning": ("mr_duty",),
            "major": ("mr_duty", "supervisor"),
            "critical": ("mr_duty", "supervisor", "emergency_command", "on_site_command", "logistics"),
        },
        raised_in=IN_MACHINE_ROOM,
        convenes_command=True,
        measure=Measure("°C"),
        doc=AlarmDoc(
            subject="mr_probe id",
            zone="the probe's zone (its machine room)",
            ends="1 °C under the stage for 10 min",
        ),
    ),
    RuleSpec(
        "mr.temp_low",
        "2.5",
        "Machine room too cold",
        "机房温度过低",
        (Severity.WARNING,),
        "[R24, R25]",
        Check.READINGS,
        params={
            "low_c": Param(18, "°C"),
            "hold_s": Param(1800, "s"),
            "clear_c": Param(19, "°C"),
            "clear_hold_s": Param(600, "s"),
        },
        pages=paged_at_any_severity("mr_duty"),
        raised_in=IN_MACHINE_ROOM,
        gauge=Gauge(
            PROBE,
            "temperature_c",
            (Stage(Severity.WARNING, "low_c", "clear_c", "hold_s", "clear_hold_s", strict=True),),
            rising=False,
        ),
        message="Machine-room inlet temperature low",
        message_zh="机房进风温度过低",
        measure=Measure("°C", Worse.LOWER),
        doc=AlarmDoc(
            subject="mr_probe id",
            zone="the probe's zone (its machine room)",
            ends="19 °C or more for 10 min",
        ),
    ),
    RuleSpec(
        "mr.temp_rate",
        "2.5",
        "Machine-room temperature changing fast",
        "机房温度变化过快",
        (Severity.MAJOR,),
        "ASHRAE: ≤ 5 °C per 15 min; GB 50174: ≤ 20 °C/h for disk, ≤ 5 °C/h for tape [R25]",
        Check.READINGS,
        params={
            "delta_c": Param(5, "°C"),
            "window_s": Param(900, "s"),
        },
        pages=paged_at_any_severity("mr_duty", "supervisor"),
        raised_in=IN_MACHINE_ROOM,
        # The value is the largest change within the rule's window (window_s, settable per site),
        # not a temperature: its unit says so and leaves the window out, which a site may change.
        measure=Measure("°C change"),
        doc=AlarmDoc(
            subject="mr_probe id",
            zone="the probe's zone (its machine room)",
            ends="change < 5 °C within 15 min",
        ),
    ),
    RuleSpec(
        "mr.humidity_high",
        "2.5",
        "Machine room too humid",
        "机房湿度过高",
        (Severity.WARNING, Severity.MAJOR),
        "GB 50174-2017 / ASHRAE 2008: dew point 5.5–15 °C and RH ≤ 60 % [R25] (GB table itself **unverified**, see §8)",
        Check.READINGS,
        params={
            "rh_pct": Param(60, "% RH"),
            "dew_point_c": Param(15, "°C"),
            "hold_s": Param(1800, "s"),
            "major_rh_pct": Param(80, "% RH"),
            **HUMIDITY_MAJOR_AND_CLEAR,
        },
        pages=paged_at_any_severity("mr_duty"),
        raised_in=IN_MACHINE_ROOM,
        measure=Measure("% RH"),
        doc=HUMIDITY_DOC,
    ),
    RuleSpec(
        "mr.humidity_low",
        "2.5",
        "Machine room too dry",
        "机房湿度过低",
        (Severity.WARNING, Severity.MAJOR),
        "GB 50174-2017 lower dew point [R25]; below 30 % RH, static discharge becomes critical [R26]",
        Check.READINGS,
        params={
            "dew_point_c": Param(5.5, "°C"),
            "hold_s": Param(3600, "s"),
            "major_rh_pct": Param(30, "% RH"),
            **HUMIDITY_MAJOR_AND_CLEAR,
        },
        pages=paged_at_any_severity("mr_duty"),
        raised_in=IN_MACHINE_ROOM,
        measure=Measure("% RH", Worse.LOWER),
        doc=HUMIDITY_DOC,
    ),
    RuleSpec(
        "mr.leak",
        "2.5",
        "Water leak in the machine room",
        "机房漏水",
        (Severity.CRITICAL,),
        "S09 (drinks ban); practice: leak sensors at UPS batteries, AC humidifier feed/drain and fire water [R34]",
        Check.READINGS,
        params={
            "debounce_s": Param(5, "s"),
        },
        pages=paged_at_any_severity("mr_duty", "supervisor", "facilities", "logistics", "emergency_command"),
        raised_in=IN_MACHINE_ROOM,
        convenes_command=True,
        doc=AlarmDoc(
            subject="leak_sensor or mr_probe id (in a machine room)",
            zone="the machine room",
            ends="the leak flag goes away",
        ),
    ),
    evacuating(
        "mr.smoke",
        "2.5",
        "Smoke in the machine room",
        "机房烟雾报警",
        "S10; GB 50174 13.1: MR needs a fire-alarm system and gas/water-mist (or sprinkler) suppression [R24]",
        starts_verification=True,
        raised_in=IN_MACHINE_ROOM,
        doc=AlarmDoc(
            subject="mr_probe id",
            zone="the probe's zone (its machine room)",
            ends="a person closes it",
        ),
    ),
)

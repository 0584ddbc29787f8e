"""RULES.md §2.6 floor environment (`env.*`): one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from gateway.contract import Severity
from server.domain.catalog.spec import AlarmDoc, Check, Measure, Param, RuleSpec, Worse, paged_at_any_severity

RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "env.office_temp",
        "2.6",
        "Office temperature out of range",
        "办公区温度异常",
        (Severity.WARNING,),
        "GB/T 18883-2002: summer 22–28 °C, winter 16–24 °C [R27]",
        Check.READINGS,
        params={
            "hold_s": Param(1800, "s"),
            "hysteresis_c": Param(0.5, "°C"),
            "clear_hold_s": Param(300, "s"),
        },
        pages=paged_at_any_severity("facilities", "supervisor"),
        measure=Measure("°C", Worse.EITHER),
        doc=AlarmDoc(
            subject="temp_sensor id (`location_type` desk, ceiling or none; not in a machine room)",
            zone="the sensor's zone",
            ends="back in the band (by `hvac_mode`) for 5 min",
        ),
    ),
    RuleSpec(
        "env.office_rh",
        "2.6",
        "Office humidity out of range",
        "办公区湿度异常",
        (Severity.WARNING,),
        "GB/T 18883-2002 [R27]",
        Check.READINGS,
        params={
            "hold_s": Param(3600, "s"),
            "hysteresis_pct": Param(2, "% RH"),
            "clear_hold_s": Param(300, "s"),
        },
        pages=paged_at_any_severity("facilities"),
        measure=Measure("% RH", Worse.EITHER),
        doc=AlarmDoc(
            subject="temp_sensor id (as above)",
            zone="the sensor's zone",
            ends="back in the band for 5 min",
        ),
    ),
    RuleSpec(
        "env.equipment_hotspot",
        "2.6",
        "Equipment hot spot",
        "设备局部过热",
        (Severity.MINOR, Severity.MAJOR),
        (
            "GB/T 2099.1-2021 / 2099.7: accessories rated for ambient normally ≤ 40 °C and ≤ 35 °C averaged over 24 h"
            " [R1, R2]"
        ),
        Check.READINGS,
        params={
            "hot_c": Param(40, "°C"),
            "samples": Param(2, "count"),
            "clear_c": Param(38, "°C"),
            "mean_c": Param(35, "°C"),
            "mean_window_s": Param(86400, "s"),
        },
        pages=paged_at_any_severity("shift_lead", "facilities"),
        measure=Measure("°C"),
        doc=AlarmDoc(
            subject="temp_sensor id (`location_type` strip, printer or desk)",
            zone="the sensor's zone",
            ends="under 38 °C and the mean under 35 °C",
            severity="minor (24 h mean) → major (> 40 °C)",
        ),
    ),
)

"""The Floorwatch boards. Queries are InfluxQL only; every threshold comes from `dashboards.thresholds`.

Measurements, tags and fields are those `server.adapters.timeseries` writes (see dashboards/SCHEMA.md);
tests/dashboards checks each query against that schema and runs it against a real InfluxDB.
"""

from __future__ import annotations

from dashboards import thresholds as th
from dashboards.builder import (
    BLUE,
    GREEN,
    LIGHT_YELLOW,
    ORANGE,
    RED,
    YELLOW,
    Dashboard,
    Panel,
    Row,
    Target,
    q,
    standard_variables,
    steps,
    tag_filter,
)

TF = "$timeFilter"
GB_INTERVAL = "GROUP BY time($__interval)"
DEVICE_FILTER = tag_filter()  # site, floor and zone
SITE_ZONE_FILTER = tag_filter(floor=False)  # alarm and inspection points carry no floor tag


def eq(tag: str, value: str) -> str:
    return f"{q(tag)} = '{value}'"


def where(*conditions: str, filters: str = DEVICE_FILTER) -> str:
    return "WHERE " + " AND ".join([*conditions, filters, TF])


def per_interval(
    select: str, measurement: str, by: str, *conditions: str, filters: str = DEVICE_FILTER, alias: str = ""
) -> Target:
    """One series per value of the tag `by`: `select` from `measurement` over each interval."""
    return Target(
        f"SELECT {select} FROM {q(measurement)} {where(*conditions, filters=filters)} "
        f"{GB_INTERVAL}, {q(by)} fill(none)",
        alias=alias or f"$tag_{by}",
    )


def samples_where(field: str, measurement: str, by: str, value: bool = True, alias: str = "") -> Target:
    """Per interval and value of the tag `by`: how many samples of `measurement` report the boolean `field` as
    `value` (smoke, a leak, a relay off)."""
    return per_interval(
        f"count({q(field)})", measurement, by, f"{q(field)} = {str(value).lower()}", alias=alias
    )


ANY_IS_RED = steps(GREEN, (1, RED))
"""Red from the first one: an active alarm, a smoke or leak sample, a forced door."""
STRIP_LOAD_STEPS = steps(
    GREEN, (th.STRIP_LOAD_HIGH_PCT, YELLOW), (th.STRIP_OVERLOAD_PCT, ORANGE),
    (th.STRIP_OVERLOAD_CRITICAL_PCT, RED),
)
MR_TEMP_STEPS = steps(
    BLUE, (th.MR_TEMP_LOW_C, GREEN), (th.MR_TEMP_WARNING_C, YELLOW), (th.MR_TEMP_MAJOR_C, ORANGE),
    (th.MR_TEMP_CRITICAL_C, RED),
)
MR_RH_STEPS = steps(RED, (th.MR_RH_LOW_PCT, GREEN), (th.MR_RH_HIGH_PCT, YELLOW), (th.MR_RH_MAJOR_PCT, RED))
MR_DEW_STEPS = steps(YELLOW, (th.MR_DEW_POINT_MIN_C, GREEN), (th.MR_DEW_POINT_MAX_C, YELLOW))
# GB/T 18883 seasonal bands as steps: green where both seasons agree, light yellow where only one does.
_WINTER_T, _SUMMER_T = th.OFFICE_TEMP_WINTER_C, th.OFFICE_TEMP_SUMMER_C
OFFICE_TEMP_STEPS = steps(
    BLUE, (_WINTER_T[0], LIGHT_YELLOW), (_SUMMER_T[0], GREEN), (_WINTER_T[1], LIGHT_YELLOW),
    (_SUMMER_T[1], RED),
)
_WINTER_RH, _SUMMER_RH = th.OFFICE_RH_WINTER_PCT, th.OFFICE_RH_SUMMER_PCT
OFFICE_RH_STEPS = steps(
    RED, (_WINTER_RH[0], LIGHT_YELLOW), (_SUMMER_RH[0], GREEN), (_WINTER_RH[1], LIGHT_YELLOW),
    (_SUMMER_RH[1], RED),
)
HEAT_STEPS = steps(
    GREEN, (th.EQUIPMENT_HOTSPOT_C, YELLOW), (th.HEAT_PREWARN_C, ORANGE), (th.HEAT_ALARM_C, RED)
)
SEAT_POWER_STEPS = steps(GREEN, (th.SEAT_POWER_NORMAL_MAX_W, YELLOW), (th.HIGH_POWER_STEP_W, RED))
COMPLIANCE_STEPS = steps(
    RED, (th.INSPECTION_COMPLIANCE_POOR_PCT, YELLOW), (th.INSPECTION_COMPLIANCE_TARGET_PCT, GREEN)
)
BARS = {"drawStyle": "bars", "fillOpacity": 80}


ALARM_GROUPS = f"GROUP BY {q('rule')}, {q('severity')}, {q('zone')}, {q('device')}"


def active_alarms_subquery(*conditions: str) -> str:
    """The last state of each alarm series in the range; `active` is 1 while raised."""
    return (
        f"SELECT last({q('active')}) AS {q('active')}, last({q('value')}) AS {q('value')} FROM {q('alarm')} "
        f"{where(*conditions, filters=SITE_ZONE_FILTER)} "
        f"{ALARM_GROUPS}"
    )


def floor_overview() -> Dashboard:
    return Dashboard(
        uid="fw-floor-overview",
        title="Floorwatch / Floor overview",
        description="Active alarms, power per zone, strips near their rating.",
        rows=[
            Row("Alarms", [
                Panel(
                    "Active alarms", kind="stat", width=6, height=6,
                    targets=[Target(
                        f"SELECT sum({q('active')}) AS {q('active alarms')} FROM ({active_alarms_subquery()})"
                    )],
                    thresholds=ANY_IS_RED,
                    description="Alarms whose last state in the time range is raised (alarm.active = 1).",
                ),
                Panel(
                    "Active alarms by severity", kind="bargauge", width=6, height=6,
                    targets=[Target(
                        f"SELECT sum({q('active')}) AS {q('active')} FROM ({active_alarms_subquery()}) "
                        f"GROUP BY {q('severity')}",
                        alias="$tag_severity",
                    )],
                    thresholds=steps(GREEN, (1, ORANGE)),
                ),
                Panel(
                    "Active alarm list", kind="table", width=12, height=6,
                    targets=[Target(
                        f"SELECT {q('active')}, {q('value')} FROM ({active_alarms_subquery()}) "
                        f"WHERE {q('active')} = 1 {ALARM_GROUPS}",
                        table=True,
                    )],
                ),
            ]),
            Row("Electrical", [
                Panel(
                    "Seat power per zone", unit="watt", width=12,
                    targets=[Target(
                        f"SELECT sum({q('power_w')}) FROM (SELECT mean({q('power_w')}) AS {q('power_w')} "
                        f"FROM {q('smart_plug')} {where()} {GB_INTERVAL}, {q('device')}, {q('zone')}) "
                        f"WHERE {TF} {GB_INTERVAL}, {q('zone')} fill(none)",
                        alias="$tag_zone",
                    )],
                    description="Sum over the smart plugs of each zone (mean per plug per interval).",
                ),
                Panel(
                    "Strips: load % of rating (latest)", kind="bargauge", unit="percent", width=12,
                    targets=[Target(
                        f"SELECT last({q('load_pct')}) FROM {q('strip_meter')} {where()} "
                        f"GROUP BY {q('device')}, {q('zone')}",
                        alias="$tag_zone / $tag_device",
                    )],
                    thresholds=STRIP_LOAD_STEPS, min=0, max=th.STRIP_OVERLOAD_CRITICAL_PCT,
                    description=(
                        f"Warning at {th.STRIP_LOAD_HIGH_PCT:g} %, overload at {th.STRIP_OVERLOAD_PCT:g} %, "
                        f"critical at {th.STRIP_OVERLOAD_CRITICAL_PCT:g} % of the strip's rated current."
                    ),
                ),
            ]),
        ],
    )


def electrical() -> Dashboard:
    return Dashboard(
        uid="fw-electrical",
        title="Floorwatch / Electrical",
        description="Strip load against rating, top seats, after-shift load, cut-offs, supply voltage.",
        rows=[
            Row("Strips", [
                Panel(
                    "Strip load % of rating", unit="percent", width=24, threshold_style="line+area",
                    thresholds=STRIP_LOAD_STEPS, min=0,
                    targets=[per_interval(f"mean({q('load_pct')})", "strip_meter", "device")],
                ),
            ]),
            Row("Seats", [
                Panel(
                    "Top seats by power", kind="table", width=12, unit="watt",
                    targets=[Target(
                        f"SELECT mean({q('power_w')}) AS {q('mean_w')}, max({q('power_w')}) AS {q('max_w')} "
                        f"FROM {q('smart_plug')} {where()} GROUP BY {q('device')}, {q('zone')}",
                        table=True,
                    )],
                    thresholds=SEAT_POWER_STEPS,
                    transformations=[
                        {"id": "merge", "options": {}},
                        {"id": "sortBy", "options": {"sort": [{"field": "mean_w", "desc": True}]}},
                        {"id": "limit", "options": {"limitField": 10}},
                    ],
                    custom={"cellOptions": {"type": "color-background"}},
                ),
                Panel(
                    "After-shift load alarms", width=12, kind="timeseries",
                    custom=BARS,
                    targets=[per_interval(
                        f"sum({q('active')})", "alarm", "zone", eq("rule", "elec.after_shift_load"),
                        filters=SITE_ZONE_FILTER,
                    )],
                    description=(
                        f"Seats not rostered drawing more than {th.AFTER_SHIFT_LOAD_W:g} W after the shift "
                        "(elec.after_shift_load raises)."
                    ),
                ),
            ]),
            Row("Cut-offs and supply", [
                Panel(
                    "Cut-offs", width=12, custom=BARS,
                    targets=[
                        per_interval(
                            f"sum({q('n')})", "event", "zone", eq("type", "interlock_tripped"),
                            alias="interlock $tag_zone",
                        ),
                        samples_where("relay_on", "smart_plug", "zone", False, alias="relay off $tag_zone"),
                    ],
                    description="Edge interlock trips (events) and plug samples reporting the relay off.",
                ),
                Panel(
                    "Supply voltage (median of plugs)", unit="volt", width=12, threshold_style="line",
                    thresholds=steps(RED, (th.VOLTAGE_MIN_V, GREEN), (th.VOLTAGE_MAX_V, RED)),
                    targets=[per_interval(f"median({q('voltage_v')})", "smart_plug", "floor")],
                ),
            ]),
        ],
    )


def fire_environment() -> Dashboard:
    return Dashboard(
        uid="fw-fire-environment",
        title="Floorwatch / Fire & environment",
        description="Smoke and heat per zone; floor temperature and humidity against GB/T 18883.",
        rows=[
            Row("Fire", [
                Panel(
                    "Smoke alarms per zone", width=8, custom=BARS,
                    thresholds=ANY_IS_RED,
                    targets=[samples_where("smoke", "smoke_detector", "zone")],
                    description="Detector samples reporting smoke. Never suppressed.",
                ),
                Panel(
                    "Detector faults", width=8, custom=BARS,
                    targets=[samples_where("detector_fault", "smoke_detector", "zone")],
                ),
                Panel(
                    "Heat per zone (max)", unit="celsius", width=8, threshold_style="line",
                    thresholds=HEAT_STEPS,
                    targets=[per_interval(f"max({q('temperature_c')})", "temp_sensor", "zone")],
                    description=(
                        f"Pre-warning {th.HEAT_PREWARN_C:g} °C, alarm {th.HEAT_ALARM_C:g} °C: corroboration "
                        "only, these sensors are not listed heat detectors."
                    ),
                ),
            ]),
            Row("Floor environment (GB/T 18883)", [
                Panel(
                    "Floor temperature", unit="celsius", width=12, threshold_style="area",
                    thresholds=OFFICE_TEMP_STEPS,
                    targets=[per_interval(f"mean({q('temperature_c')})", "temp_sensor", "zone")],
                    description=(
                        f"Summer {_SUMMER_T[0]:g}–{_SUMMER_T[1]:g} °C, "
                        f"winter {_WINTER_T[0]:g}–{_WINTER_T[1]:g} °C: "
                        "green suits both seasons, light yellow only one."
                    ),
                ),
                Panel(
                    "Floor relative humidity", unit="humidity", width=12, threshold_style="area",
                    thresholds=OFFICE_RH_STEPS, min=0, max=100,
                    targets=[per_interval(f"mean({q('humidity_pct')})", "temp_sensor", "zone")],
                    description=(
                        f"Summer {_SUMMER_RH[0]:g}–{_SUMMER_RH[1]:g} %, "
                        f"winter {_WINTER_RH[0]:g}–{_WINTER_RH[1]:g} %."
                    ),
                ),
            ]),
        ],
    )


def machine_room() -> Dashboard:
    return Dashboard(
        uid="fw-machine-room",
        title="Floorwatch / Machine room",
        description="Inlet temperature tiers, humidity and dew point, leaks, rate of change.",
        rows=[
            Row("Temperature", [
                Panel(
                    "Inlet temperature", unit="celsius", width=12, threshold_style="line+area",
                    thresholds=MR_TEMP_STEPS,
                    targets=[per_interval(f"mean({q('temperature_c')})", "mr_probe", "device")],
                    description=(
                        f"Cold aisle / inlet: warning {th.MR_TEMP_WARNING_C:g} °C, "
                        f"major {th.MR_TEMP_MAJOR_C:g} °C, "
                        f"critical {th.MR_TEMP_CRITICAL_C:g} °C; low below {th.MR_TEMP_LOW_C:g} °C."
                    ),
                ),
                Panel(
                    f"Temperature change per {th.MR_TEMP_RATE_WINDOW}", unit="celsius", width=12,
                    threshold_style="line",
                    thresholds=steps(RED, (-th.MR_TEMP_RATE_C, GREEN), (th.MR_TEMP_RATE_C, RED)),
                    targets=[per_interval(
                        f"derivative(mean({q('temperature_c')}), {th.MR_TEMP_RATE_WINDOW})", "mr_probe", "device"
                    )],
                    description=(
                        f"mr.temp_rate: a change of {th.MR_TEMP_RATE_C:g} °C within {th.MR_TEMP_RATE_WINDOW}."
                    ),
                ),
            ]),
            Row("Humidity and water", [
                Panel(
                    "Relative humidity", unit="humidity", width=8, threshold_style="line+area",
                    thresholds=MR_RH_STEPS, min=0, max=100,
                    targets=[per_interval(f"mean({q('humidity_pct')})", "mr_probe", "device")],
                ),
                Panel(
                    "Dew point", unit="celsius", width=8, threshold_style="line+area",
                    thresholds=MR_DEW_STEPS,
                    targets=[per_interval(f"mean({q('dew_point_c')})", "mr_probe", "device")],
                    description=f"Keep between {th.MR_DEW_POINT_MIN_C:g} and {th.MR_DEW_POINT_MAX_C:g} °C.",
                ),
                Panel(
                    "Water leak", width=8, custom=BARS,
                    thresholds=ANY_IS_RED,
                    targets=[
                        samples_where("water_leak", measurement, "device")
                        for measurement in ("mr_probe", "leak_sensor")
                    ],
                ),
            ]),
        ],
    )


def access() -> Dashboard:
    ev = q("event")
    door = eq("kind", "door_controller")
    return Dashboard(
        uid="fw-access",
        title="Floorwatch / Access",
        description="Door events, forced and held-open doors, denied badges.",
        rows=[
            Row("Doors", [
                Panel(
                    "Door events", width=12, custom={**BARS, "stacking": {"mode": "normal"}},
                    targets=[per_interval(f"sum({q('n')})", "event", "type", door)],
                ),
                Panel(
                    "Forced and held-open doors", width=12, custom=BARS,
                    thresholds=ANY_IS_RED,
                    targets=[Target(
                        f"SELECT sum({q('n')}) FROM {ev} "
                        f"{where(q('type') + ' =~ /^(door_forced|door_held_open)$/')} "
                        f"{GB_INTERVAL}, {q('device')}, {q('type')} fill(none)",
                        alias="$tag_device $tag_type",
                    )],
                ),
                Panel(
                    "Doors open now", kind="table", width=12,
                    targets=[Target(
                        f"SELECT last({q('door_open')}) AS {q('open')} FROM {q('door_controller')} {where()} "
                        f"GROUP BY {q('device')}, {q('zone')}",
                        table=True,
                    )],
                ),
                Panel(
                    "Denied badges", width=12, custom=BARS,
                    threshold_style="line",
                    thresholds=steps(GREEN, (th.ACCESS_DENIED_REPEAT, RED)),
                    targets=[Target(
                        f"SELECT sum({q('n')}) FROM {ev} {where(eq('type', 'access_denied'))} "
                        f"GROUP BY time({th.ACCESS_DENIED_WINDOW}), {q('device')} fill(none)",
                        alias="$tag_device",
                    )],
                    description=(
                        f"Denials per door per {th.ACCESS_DENIED_WINDOW}; access.denied_repeat raises at "
                        f"{th.ACCESS_DENIED_REPEAT}. Badge numbers are never stored in the time series."
                    ),
                ),
            ]),
        ],
    )


def inspections() -> Dashboard:
    ins = q("inspection")
    flt = SITE_ZONE_FILTER
    return Dashboard(
        uid="fw-inspections",
        title="Floorwatch / Inspections",
        description="Inspection compliance per zone and month.",
        time_from="now-1y",
        refresh="1h",
        variables=standard_variables(floor=False),
        rows=[
            Row("Compliance", [
                Panel(
                    "Compliance per zone and month", kind="barchart", unit="percent", width=24,
                    min=0, max=100, thresholds=COMPLIANCE_STEPS,
                    targets=[Target(
                        f"SELECT sum({q('on_time')}) * 100 / "
                        f"(sum({q('on_time')}) + sum({q('late')}) + sum({q('missed')})) "
                        f"AS {q('compliance')} FROM {ins} {where(filters=flt)} "
                        f"GROUP BY time(1d), {q('zone')} fill(none)",
                        alias="$tag_zone",
                    )],
                    options={"xTickLabelSpacing": 100},
                    description=(
                        "On-time share of the inspections due in each month: on time ÷ (on time + late + "
                        "missed); failed checklist items are in the table below (one point per zone, schedule "
                        "and month, at the month's start)."
                    ),
                ),
                Panel(
                    "Late, missed and failed by zone and schedule", kind="table", width=24,
                    targets=[Target(
                        f"SELECT sum({q('on_time')}) AS {q('on_time')}, sum({q('late')}) AS {q('late')}, "
                        f"sum({q('missed')}) AS {q('missed')}, sum({q('failed')}) AS {q('failed')} "
                        f"FROM {ins} {where(filters=flt)} GROUP BY {q('zone')}, {q('schedule')}",
                        table=True,
                    )],
                ),
            ]),
        ],
    )


BOARDS = (floor_overview, electrical, fire_environment, machine_room, access, inspections)


def all_boards() -> list[Dashboard]:
    return [make() for make in BOARDS]

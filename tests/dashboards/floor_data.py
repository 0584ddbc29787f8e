"""A small floor's last hour, written with the project's own line-protocol serializer (part A)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.contract import Event, EventType, Reading
from server.adapters.timeseries import (
    DeviceMeta,
    PointIn,
    alarm_point,
    event_point,
    inspection_point,
    point_to_line,
    reading_to_line,
)

SITES = {"hq": {"f3": ["f3-z1", "f3-z2", "mr-1"], "f4": ["f4-z1"]}, "branch": {"b1": ["b1-z1"]}}
OFFICE_ZONES = [
    ("hq", "f3", "f3-z1"), ("hq", "f3", "f3-z2"), ("hq", "f4", "f4-z1"), ("branch", "b1", "b1-z1"),
]
ALL_ZONES = [z for floors in SITES.values() for zones in floors.values() for z in zones]
ALL_FLOORS = [f for floors in SITES.values() for f in floors]
MINUTES = 60


def month_start(ts: datetime, back: int = 0) -> datetime:
    y, m = ts.year, ts.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return datetime(y, m, 1, tzinfo=UTC)


def floor_lines(now: datetime) -> list[str]:
    lines: list[str] = []
    points: list[PointIn] = []
    start = now - timedelta(minutes=MINUTES)

    def add(device: str, meta: DeviceMeta, ts: datetime, **metrics: float | bool) -> None:
        lines.append(reading_to_line(Reading(device=device, ts=ts, metrics=metrics), meta))

    for minute in range(MINUTES):
        ts = start + timedelta(minutes=minute, seconds=7)
        for site, floor, zone in OFFICE_ZONES:
            for seat in range(2):
                add(f"plug-{zone}-s{seat}", DeviceMeta(site, zone, "smart_plug", floor, rated_a=10.0), ts,
                    power_w=100.0 + 50 * seat + minute, current_a=0.5 + seat * 0.2, voltage_v=220.0 + seat,
                    relay_on=not (zone == "f3-z1" and seat == 1 and minute > 50))
            add(f"strip-{zone}", DeviceMeta(site, zone, "strip_meter", floor, rated_a=10.0), ts,
                current_a=5.0 + minute / 10, power_w=1100.0 + minute * 20, voltage_v=220.0)
            add(f"smoke-{zone}", DeviceMeta(site, zone, "smoke_detector", floor), ts,
                smoke=zone == "f3-z2" and 30 <= minute <= 32, detector_fault=zone == "f4-z1" and minute == 10,
                battery_pct=90)
            add(f"temp-{zone}", DeviceMeta(site, zone, "temp_sensor", floor), ts,
                temperature_c=23.0 + (minute % 5) / 2, humidity_pct=45.0 + minute % 10)
            add(f"door-{zone}", DeviceMeta(site, zone, "door_controller", floor), ts,
                door_open=minute % 3 == 0, door_locked=minute % 3 != 0)
        for probe in range(2):
            add(f"mr-probe-{probe}", DeviceMeta("hq", "mr-1", "mr_probe", "f3"), ts,
                temperature_c=22.0 + minute / 10 + probe, humidity_pct=50.0, water_leak=minute == 40)
        add("leak-mr-1", DeviceMeta("hq", "mr-1", "leak_sensor", "f3"), ts, water_leak=minute == 45)

    door = DeviceMeta("hq", "f3-z1", "door_controller", "f3")
    for minute in range(0, MINUTES, 5):
        ts = start + timedelta(minutes=minute, seconds=11)
        points.append(event_point(Event(device="door-f3-z1", ts=ts, type=EventType.ACCESS_GRANTED,
                                        badge="B1", direction="in"), door))
    for i in range(4):
        points.append(event_point(Event(device="door-f3-z1", ts=start + timedelta(minutes=20, seconds=i * 20),
                                        type=EventType.ACCESS_DENIED, badge="B9"), door))
    points.append(event_point(Event(device="door-f3-z1", ts=start + timedelta(minutes=25),
                                    type=EventType.DOOR_FORCED), door))
    points.append(event_point(Event(device="door-f3-z1", ts=start + timedelta(minutes=35),
                                    type=EventType.DOOR_HELD_OPEN), door))
    points.append(event_point(Event(device="plug-f3-z1-s1", ts=start + timedelta(minutes=51),
                                    type=EventType.INTERLOCK_TRIPPED),
                              DeviceMeta("hq", "f3-z1", "smart_plug", "f3", rated_a=10.0)))

    points += [
        alarm_point(site="hq", zone="f3-z1", rule="elec.strip_load_high", severity="warning", active=True,
                    value=8.2, device="strip-f3-z1", ts=start + timedelta(minutes=33)),
        alarm_point(site="hq", zone="f3-z2", rule="elec.after_shift_load", severity="minor", active=True,
                    value=120.0, device="plug-f3-z2-s0", ts=start + timedelta(minutes=40)),
        alarm_point(site="hq", zone="f3-z2", rule="fire.smoke_alarm", severity="critical", active=True,
                    device="smoke-f3-z2", ts=start + timedelta(minutes=30)),
        alarm_point(site="hq", zone="f3-z2", rule="fire.smoke_alarm", severity="critical", active=False,
                    device="smoke-f3-z2", ts=start + timedelta(minutes=34)),
    ]
    for back in (0, 1, 2):
        for site, _floor, zone in OFFICE_ZONES:
            points.append(inspection_point(site=site, zone=zone, schedule="weekly-electrical",
                                           period_start=month_start(now, back),
                                           on_time=4 - back, late=back, missed=1 if zone == "f4-z1" else 0,
                                           failed=0))
    lines += [line for line in map(point_to_line, points) if line is not None]
    return lines

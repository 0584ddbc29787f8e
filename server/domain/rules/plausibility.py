"""Plausibility of sensor values, RULES.md §2.7 (`sensor.*`).

These rules run before the heat rules of the same device (the engine keeps rule order) and mark a
temperature sample as bad (`TempCheck.bad`) or the sensor as under suspicion (`TempCheck.suppressed`),
so fire.heat_* never fire on a sentinel or on an uncorroborated jump. They never touch smoke: a smoke
alarm is never suppressed (RULES.md §0.5 item 3).

sensor.temp_sentinel: -127 °C, -251..-254 °C and <= -40 °C indoors always; exactly 85.0 °C when it is
the first sample after a gap of more than 5 min (power-up) or a jump of >= 15 °C from the previous one.
sensor.temp_jump: >= 15 °C between samples <= 60 s apart with no smoke in the zone and every same-zone
neighbour changed < 2 °C (nor rising >= 4 °C/min) and no plug trip nearby in the last 5 min. The heat
rules stay suppressed for that sensor until `RuleEngine.sensor_checked` (a person looked) or smoke
corroborates it (then fire.heat_alarm is raised for it if the jump was upward, see fire.py).
sensor.temp_out_of_range: outside `range_c` of the device; with smoke in the zone an over-range value is
a fire (fire.heat_alarm), otherwise a fault. Each clears on the next plausible sample.
Picks made here ("ours"): sensor.stuck compares within 0.01 (1 LSB); sensor.rh_implausible's
"conditioned room" is a zone with a known HVAC mode or a machine room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import ClassVar

from gateway.contract import Severity
from server.domain.rules.base import Ctx, DeviceState, Rule
from server.domain.rules.blocks import Threshold
from server.domain.rules.fire import raise_heat
from server.domain.rules.generic import One, TamperRule
from server.domain.site import Device, DeviceKind, HvacMode, Site, ZoneKind

TEMP = frozenset({DeviceKind.TEMP_SENSOR, DeviceKind.MR_PROBE})
POWER_ON_GAP = timedelta(minutes=5)
TRIP_WINDOW = timedelta(minutes=5)


@dataclass(slots=True)
class TempCheck:
    prev: tuple[datetime, float] | None = None
    before: tuple[datetime, float] | None = None
    """The sample before `prev`, so neighbours can tell how much this sensor just changed."""
    bad: bool = False
    suppressed: bool = False
    jump_up: bool = False
    STATE: ClassVar[tuple[str, ...]] = ("prev", "before", "bad", "suppressed", "jump_up")

    def change(self) -> tuple[float, float]:
        """(last change in °C, rate in °C/min) between the last two plausible samples."""
        if self.prev is None or self.before is None:
            return 0.0, 0.0
        seconds = (self.prev[0] - self.before[0]).total_seconds()
        delta = self.prev[1] - self.before[1]
        return delta, (delta * 60.0 / seconds if seconds > 0 else 0.0)


class TempPlausibility(Rule):
    """sensor.temp_sentinel, sensor.temp_jump and sensor.temp_out_of_range, in one pass per sample."""

    id = "sensor.temp"
    kinds = TEMP
    metrics = frozenset({"temperature_c"})

    def new_state(self, dev: DeviceState) -> TempCheck:
        return TempCheck()

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        temp = dev.last.get("temperature_c")
        if temp is None or not sample:
            return
        st: TempCheck = dev.state[self.id]
        zone = dev.zone

        def report(rule: str, severity: Severity | None, message: str, message_zh: str = "") -> None:
            """This sample's finding of `rule`: every one is about this device, zone, value and time."""
            ctx.set(rule, dev.id, severity, zone, temp, now, message, message_zh)

        if self._sentinel(dev, st, temp, now):
            st.bad = True
            report(
                "sensor.temp_sentinel",
                Severity.MINOR,
                f"Temperature sensor fault value {temp:g} °C (not a fire)",
                f"温度传感器故障值 {temp:g} °C(非火警)",
            )
            return
        report("sensor.temp_sentinel", None, "Plausible reading again")
        low, high = dev.device.range_c
        smoke = bool(ctx.zone_fire(zone).smoke)
        if not low <= temp <= high:
            st.bad = True
            if smoke and temp > high:
                raise_heat(ctx, dev, now, "over the sensor's range with smoke in the zone")
            else:
                report(
                    "sensor.temp_out_of_range",
                    Severity.MAJOR,
                    f"Temperature {temp:g} °C outside the sensor's range: check within 15 min",
                    f"温度 {temp:g} °C 超出传感器量程：15分钟内检查",
                )
            return
        report("sensor.temp_out_of_range", None, "Back in range")
        st.bad = False
        if st.prev is not None and not st.suppressed:
            gap = now - st.prev[0]
            jump = temp - st.prev[1]
            if (
                gap <= timedelta(seconds=dev.p("sensor.temp_jump", "max_gap_s"))
                and abs(jump) >= dev.p("sensor.temp_jump", "jump_c")
                and not self._corroborated(ctx, dev, smoke, now)
            ):
                st.suppressed, st.jump_up = True, jump > 0
                report(
                    "sensor.temp_jump",
                    Severity.MAJOR,
                    f"Temperature jumped {jump:+g} °C with nothing nearby changing: suspected sensor fault",
                    "疑似传感器故障",
                )
        st.before, st.prev = st.prev, (now, temp)

    def _sentinel(self, dev: DeviceState, st: TempCheck, temp: float, now: datetime) -> bool:
        p = partial(dev.p, "sensor.temp_sentinel")
        if temp == -127.0 or -254.0 <= temp <= -251.0 or temp <= p("indoor_min_c"):
            return True
        if temp == p("power_on_c"):
            fresh = st.prev is None or now - st.prev[0] > POWER_ON_GAP
            return fresh or abs(temp - st.prev[1]) >= dev.p("sensor.temp_jump", "jump_c")  # type: ignore[index]
        return False

    def _corroborated(self, ctx: Ctx, dev: DeviceState, smoke: bool, now: datetime) -> bool:
        zf = ctx.zone_fire(dev.zone)
        if smoke or (zf.tripped_at is not None and now - zf.tripped_at <= TRIP_WINDOW):
            return True
        limit = dev.p("sensor.temp_jump", "neighbour_c")
        for other in ctx.site.devices_in_zone(dev.zone):
            if other.id == dev.id or other.kind not in TEMP:
                continue
            check = ctx.devices[other.id].state.get(self.id)
            if check is None:
                continue
            delta, rate = check.change()
            if abs(delta) >= limit or rate >= dev.p("fire.heat_prewarn", "rate_c_per_min"):
                return True
        return False


def sensor_checked(ctx: Ctx, device: str, now: datetime) -> None:
    """A person checked a sensor after sensor.temp_jump: its heat rules are live again."""
    dev = ctx.devices[device]
    check = dev.state.get(TempPlausibility.id)
    if isinstance(check, TempCheck):
        check.suppressed = False
    ctx.set("sensor.temp_jump", device, None, dev.zone, None, now, "Checked by a person")


@dataclass(slots=True)
class Stuck:
    ref: dict[str, float] = field(default_factory=dict)
    since: dict[str, datetime] = field(default_factory=dict)
    STATE: ClassVar[tuple[str, ...]] = ("ref", "since")


class SensorStuck(Rule):
    """Identical within 1 LSB for >= 6 h (temperature, RH) or >= 24 h (plug voltage)."""

    id = "sensor.stuck"
    kinds = TEMP | frozenset({DeviceKind.SMART_PLUG})
    metrics = frozenset({"temperature_c", "humidity_pct", "voltage_v"})

    def new_state(self, dev: DeviceState) -> Stuck:
        return Stuck()

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        if not sample:
            return
        st: Stuck = dev.state[self.id]
        lsb = dev.p(self.id, "lsb")
        stuck_for: list[str] = []
        for metric in ("temperature_c", "humidity_pct", "voltage_v"):
            value = dev.last.get(metric)
            if value is None:
                continue
            ref = st.ref.get(metric)
            if ref is None or abs(value - ref) > lsb:
                st.ref[metric], st.since[metric] = value, now
                continue
            limit = dev.p(self.id, "voltage_s" if metric == "voltage_v" else "temp_s")
            if now - st.since[metric] >= timedelta(seconds=limit):
                stuck_for.append(metric)
        self.set(
            ctx,
            dev,
            Severity.MINOR if stuck_for else None,
            now,
            message=f"Sensor value not changing ({', '.join(stuck_for)}): failed sensor?",
            message_zh=f"传感器读数长时间不变({', '.join(stuck_for)})：疑似故障",
        )


class RhImplausible(Rule):
    id = "sensor.rh_implausible"
    kinds = TEMP
    metrics = frozenset({"humidity_pct"})
    message = "Implausible humidity reading"
    message_zh = "湿度读数不合理"

    def new_state(self, dev: DeviceState) -> One:
        high = dev.p(self.id, "high_pct")
        return One(Threshold(high, high, dev.p(self.id, "hold_s"), 0.0))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        rh = dev.last.get("humidity_pct")
        if rh is None:
            return
        st: One = dev.state[self.id]
        zone = ctx.site.zones[dev.zone]
        conditioned = zone.hvac_mode is not HvacMode.UNKNOWN or zone.kind is ZoneKind.MACHINE_ROOM
        st.t.step(rh if conditioned else None, now)
        bad = rh < 0 or rh > 100 or st.t.active
        self.set(ctx, dev, Severity.MINOR if bad else None, now, rh)


class SensorTamper(TamperRule):
    """Tamper or removed flag on any device that has no more specific rule (detectors, doors do)."""

    id = "sensor.tamper"
    kinds = frozenset(DeviceKind)
    message = "Device tampered with or removed"
    message_zh = "设备被拆动或移除"

    def applies(self, device: Device, site: Site) -> bool:
        return device.kind not in (DeviceKind.SMOKE_DETECTOR, DeviceKind.DOOR_CONTROLLER)


RULES: tuple[Rule, ...] = (TempPlausibility(), SensorStuck(), RhImplausible(), SensorTamper())

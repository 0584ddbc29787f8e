"""Machine-room and floor environment, RULES.md §2.5 (`mr.*`, except mr.smoke in fire.py) and §2.6 (`env.*`).
mr.temp_low is only a threshold: its catalog declaration runs it through `rules.generic`.

The dew point is computed from the probe's latest temperature and humidity (server/domain/dew.py).
Picks made here ("ours"): mr.humidity_high / mr.humidity_low major levels need 60 s; they clear 2 % RH
and 0.5 °C dew point inside the limit after 10 min; mr.temp_low clears at 19 °C after 10 min;
mr.leak clears after 5 s dry; env.office_rh band when the HVAC mode is unknown is 30–80 %; the
env.* rules clear after 5 min back inside the band (less the hysteresis) or when the zone is unoccupied;
env.equipment_hotspot's ">40 °C" part clears on a sample at or below 38 °C, and its 24 h mean is only
judged once 24 h of samples exist. A leak sensor outside a machine room has no catalog rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import ClassVar

from gateway.contract import Event, EventType, Severity
from server.domain.dew import dew_point
from server.domain.rules.base import Ctx, DeviceState, Rule
from server.domain.rules.blocks import RollingMean, Staged, Threshold, WindowSpread, earliest, flag
from server.domain.rules.generic import Levels, One
from server.domain.site import Device, DeviceKind, HvacMode, LocationType, Site, ZoneKind

PROBE = frozenset({DeviceKind.MR_PROBE})
TEMP = frozenset({DeviceKind.TEMP_SENSOR})


class MrTempHigh(Rule):
    id = "mr.temp_high"
    kinds = PROBE
    metrics = frozenset({"temperature_c"})
    message = "Machine-room inlet temperature high"
    message_zh = "机房进风温度过高"

    def new_state(self, dev: DeviceState) -> Levels:
        p = partial(dev.p, self.id)
        delta, clear_hold = p("clear_delta_c"), p("clear_hold_s")
        stages = [
            Threshold(p(f"{lvl}_c"), p(f"{lvl}_c") - delta, p(f"{lvl}_hold_s"), clear_hold)
            for lvl in ("warning", "major", "critical")
        ]
        return Levels(Staged(stages, [Severity.WARNING, Severity.MAJOR, Severity.CRITICAL]))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: Levels = dev.state[self.id]
        temp = dev.last.get("temperature_c")
        level = st.s.step(temp, now)
        urgent = level in (Severity.MAJOR, Severity.CRITICAL)
        message, message_zh = ("Start emergency cooling", "启动应急降温") if urgent else (self.message, self.message_zh)
        self.set(ctx, dev, level, now, temp, message, message_zh=message_zh)


@dataclass(slots=True)
class Spread:
    w: WindowSpread
    STATE: ClassVar[tuple[str, ...]] = ("w",)

    def due(self) -> datetime | None:
        return self.w.due()


class MrTempRate(Rule):
    """A change of >= 5 °C within any 15-min window (ASHRAE; = GB 50174 20 °C/h for disk)."""

    id = "mr.temp_rate"
    kinds = PROBE
    metrics = frozenset({"temperature_c"})
    message = "Machine-room temperature changing fast: suspect AC failure"
    message_zh = "机房温度变化过快：疑似空调故障"

    def new_state(self, dev: DeviceState) -> Spread:
        return Spread(WindowSpread(dev.p(self.id, "window_s")))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: Spread = dev.state[self.id]
        spread = st.w.step(dev.last.get("temperature_c") if sample else None, now)
        self.set(ctx, dev, Severity.MAJOR if spread >= dev.p(self.id, "delta_c") else None, now, spread)


@dataclass(slots=True)
class Humid:
    warn: Threshold
    major: Threshold
    STATE: ClassVar[tuple[str, ...]] = ("warn", "major")

    def due(self) -> datetime | None:
        return earliest([self.warn.due(), self.major.due()])


class MrHumidityHigh(Rule):
    """RH > 60 % or dew point > 15 °C for 30 min: warning. RH > 80 %: major."""

    id = "mr.humidity_high"
    kinds = PROBE
    metrics = frozenset({"humidity_pct", "temperature_c"})
    message = "Machine-room humidity high"
    message_zh = "机房湿度过高"
    high = True

    def new_state(self, dev: DeviceState) -> Humid:
        p = partial(dev.p, self.id)
        # The warning signal is "how far past the nearer limit" (0 at a limit), so one threshold
        # watches both RH and dew point; hysteresis is the clear margin, back inside the band.
        major, margin = p("major_rh_pct"), p("clear_margin_pct")
        major_clear = major - margin if self.high else major + margin
        return Humid(
            Threshold(0.0, -p("clear_margin_c"), p("hold_s"), p("clear_hold_s"), strict=True),
            Threshold(
                major,
                major_clear,
                p("major_hold_s"),
                p("clear_hold_s"),
                rising=self.high,
                strict=True,
            ),
        )

    def signal(self, dev: DeviceState, rh: float, dp: float) -> float:
        p = partial(dev.p, self.id)
        # RH excess is scaled to the dew-point margin so one clear margin fits both.
        rh_part = (rh - p("rh_pct")) * p("clear_margin_c") / p("clear_margin_pct")
        return max(rh_part, dp - p("dew_point_c"))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        rh, temp = dev.last.get("humidity_pct"), dev.last.get("temperature_c")
        if rh is None:
            return
        st: Humid = dev.state[self.id]
        dp = dew_point(temp, rh) if temp is not None else None
        st.warn.step(self.signal(dev, rh, dp) if dp is not None else None, now)
        st.major.step(rh, now)
        level = Severity.MAJOR if st.major.active else (Severity.WARNING if st.warn.active else None)
        self.set(ctx, dev, level, now, rh)


class MrHumidityLow(MrHumidityHigh):
    """Dew point < 5.5 °C for 60 min: warning. RH < 30 %: major (static discharge)."""

    id = "mr.humidity_low"
    message = "Machine-room humidity low"
    message_zh = "机房湿度过低"
    high = False

    def signal(self, dev: DeviceState, rh: float, dp: float) -> float:
        return dev.p(self.id, "dew_point_c") - dp


class MrLeak(Rule):
    """Water under the raised floor: true, debounced 5 s (probe `water_leak`, leak sensors in the MR)."""

    id = "mr.leak"
    kinds = PROBE | frozenset({DeviceKind.LEAK_SENSOR})
    metrics = frozenset({"water_leak"})
    events = frozenset({EventType.WATER_LEAK, EventType.WATER_LEAK_CLEAR})
    message = "Water leak in the machine room"
    message_zh = "机房漏水"

    def applies(self, device: Device, site: Site) -> bool:
        return site.is_machine_room(device.zone)

    def new_state(self, dev: DeviceState) -> One:
        hold = dev.p(self.id, "debounce_s")
        return One(flag(hold, hold))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: One = dev.state[self.id]
        st.t.step(1.0 if dev.flag("water_leak") else 0.0, now)
        self.set(ctx, dev, Severity.CRITICAL if st.t.active else None, now)

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        self.flag_event(ctx, dev, now, "water_leak", event.type is EventType.WATER_LEAK)


# --------------------------------------------------------------------------------------------------
# §2.6 floor environment
# --------------------------------------------------------------------------------------------------

TEMP_BANDS = {HvacMode.COOLING: (22.0, 28.0), HvacMode.HEATING: (16.0, 24.0), HvacMode.UNKNOWN: (16.0, 28.0)}
RH_BANDS = {HvacMode.COOLING: (40.0, 80.0), HvacMode.HEATING: (30.0, 60.0), HvacMode.UNKNOWN: (30.0, 80.0)}


class OfficeTemp(Rule):
    """Outside the seasonal band (GB/T 18883) for 30 min while the zone is occupied (roster)."""

    id = "env.office_temp"
    kinds = TEMP
    metrics = frozenset({"temperature_c"})
    metric: ClassVar[str] = "temperature_c"
    bands: ClassVar[dict[HvacMode, tuple[float, float]]] = TEMP_BANDS
    hysteresis: ClassVar[str] = "hysteresis_c"
    message = "Office temperature outside the comfort band"
    message_zh = "办公区温度超出舒适范围"

    def applies(self, device: Device, site: Site) -> bool:
        return site.zones[device.zone].kind is not ZoneKind.MACHINE_ROOM and device.location_type in (
            None,
            LocationType.DESK,
            LocationType.CEILING,
        )

    def new_state(self, dev: DeviceState) -> One:
        # Signal: how far outside the band (negative inside); clear once back inside by the hysteresis.
        return One(
            Threshold(
                0.0,
                -dev.p(self.id, self.hysteresis),
                dev.p(self.id, "hold_s"),
                dev.p(self.id, "clear_hold_s"),
                strict=True,
            )
        )

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: One = dev.state[self.id]
        value = dev.last.get(self.metric)
        occupied = bool(ctx.site.on_duty_in_zone(dev.zone, now))
        low, high = self.bands[ctx.site.zones[dev.zone].hvac_mode]
        outside = None if value is None or not occupied else max(low - value, value - high)
        st.t.step(outside, now)
        self.set(ctx, dev, Severity.WARNING if st.t.active else None, now, value)


class OfficeRh(OfficeTemp):
    id = "env.office_rh"
    metrics = frozenset({"humidity_pct"})
    metric = "humidity_pct"
    bands = RH_BANDS
    hysteresis = "hysteresis_pct"
    message = "Office humidity outside the comfort band"
    message_zh = "办公区湿度超出舒适范围"


@dataclass(slots=True)
class Hotspot:
    hot: int
    t: Threshold
    mean: RollingMean
    STATE: ClassVar[tuple[str, ...]] = ("hot", "t", "mean")


class EquipmentHotspot(Rule):
    """> 40 °C on 2 consecutive samples: major. 24 h mean > 35 °C: minor (GB/T 2099 ambient limits)."""

    id = "env.equipment_hotspot"
    kinds = TEMP
    metrics = frozenset({"temperature_c"})
    message = "Equipment hot spot: check ventilation and load"
    message_zh = "设备局部过热：检查通风与负载"

    def applies(self, device: Device, site: Site) -> bool:
        return device.location_type in (LocationType.STRIP, LocationType.PRINTER, LocationType.DESK)

    def new_state(self, dev: DeviceState) -> Hotspot:
        p = partial(dev.p, self.id)
        return Hotspot(0, Threshold(p("hot_c"), p("clear_c"), strict=True), RollingMean(p("mean_window_s")))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        temp = dev.last.get("temperature_c")
        plaus = dev.state.get("sensor.temp")
        if temp is None or not sample or (plaus is not None and plaus.bad):
            return
        st: Hotspot = dev.state[self.id]
        st.hot = st.hot + 1 if temp > dev.p(self.id, "hot_c") else 0
        st.t.step(temp if st.hot >= dev.p(self.id, "samples") or st.t.active else 0.0, now)
        mean = st.mean.step(temp, now)
        warm = st.mean.span() >= st.mean.window and mean > dev.p(self.id, "mean_c")
        level = Severity.MAJOR if st.t.active else (Severity.MINOR if warm else None)
        self.set(ctx, dev, level, now, temp)


RULES: tuple[Rule, ...] = (
    MrTempHigh(),
    MrTempRate(),
    MrHumidityHigh(),
    MrHumidityLow(),
    MrLeak(),
    OfficeTemp(),
    OfficeRh(),
    EquipmentHotspot(),
)

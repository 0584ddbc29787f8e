"""Electrical rules, RULES.md §2.1 (`elec.*`). strip_load_high, strip_continuous_high, strip_overload and
plug_overcurrent are only thresholds on current / rated_a: their catalog declarations
(server/domain/catalog/electrical.py) run them through `rules.generic`.

Picks made here where RULES.md gives no number ("ours"): strip_overload clears below 95 % held 60 s;
plug_overcurrent clears below 75 % held 60 s; unmetered_load clears below 0.5 A held 10 min;
high_power_appliance clears when the step falls under 400 W for 30 s; continuous_runtime clears after
5 min idle and learns "idle" as the lowest power the plug has shown; after_shift_load clears after 5 min
at or under 15 W or when the seat is rostered again; residual_current is major when enabled.

Inputs from outside the readings: `RuleEngine.on_relay_command` feeds elec.relay_mismatch (what the
server commanded). elec.strip_cascade reads the topology of the site file at start. The auto-cut
actions (which relays to open) are the services' job; the findings say which rule and subject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import ClassVar

from gateway.contract import Severity
from server.domain.findings import Finding, Transition
from server.domain.rules.base import Ctx, DeviceState, Rule, handles_timers, shared_table
from server.domain.rules.blocks import Staged, Threshold, earliest, flag
from server.domain.rules.generic import Levels, One
from server.domain.site import Device, DeviceKind, PlugClass, Site
from server.domain.thresholds import param

STRIP = frozenset({DeviceKind.STRIP_METER})
PLUG = frozenset({DeviceKind.SMART_PLUG})


def _over(dev: DeviceState, rule: str, limit: str) -> Threshold:
    """Strictly over the rule's parameter `limit` for its `hold_s` raises; at or under it for its
    `clear_hold_s` clears."""
    p = partial(dev.p, rule)
    return Threshold(p(limit), p(limit), p("hold_s"), p("clear_hold_s"), strict=True)


@dataclass(slots=True)
class StepState(One):
    baseline: float | None = None
    STATE: ClassVar[tuple[str, ...]] = ("t", "baseline")


class HighPowerAppliance(Rule):
    """A step of >= +800 W over the plug's own recent level, held 30 s, on a seat plug."""

    id = "elec.high_power_appliance"
    kinds = PLUG
    metrics = frozenset({"power_w"})
    message = "Suspected high-power appliance (kettle, heater) on a seat plug"
    message_zh = "疑似私接大功率电器(电热水壶/取暖器等)"

    def applies(self, device: Device, site: Site) -> bool:
        return device.seat is not None

    def new_state(self, dev: DeviceState) -> StepState:
        p = partial(dev.p, self.id)
        return StepState(Threshold(p("step_w"), p("clear_step_w"), p("hold_s"), p("clear_hold_s")))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: StepState = dev.state[self.id]
        power = dev.last.get("power_w")
        if power is None:
            return
        if st.baseline is None:
            st.baseline = power
        step = power - st.baseline
        st.t.step(step, now)
        if not st.t.active and st.t.since is None:
            st.baseline = power  # no step pending: the baseline follows slow changes
        self.set(ctx, dev, Severity.MAJOR if st.t.active else None, now, power)


@dataclass(slots=True)
class StripSum:
    """Latest current of each registered plug of one strip (shared between the plugs and the strip)."""

    currents: dict[str, float] = field(default_factory=dict)
    STATE: ClassVar[tuple[str, ...]] = ("currents",)


shared_table("elec.unmetered_load", StripSum)


class UnmeteredLoad(Rule):
    """Strip current minus the registered plugs' currents: load the register does not explain."""

    id = "elec.unmetered_load"
    kinds = STRIP | PLUG
    metrics = frozenset({"current_a"})
    message = "Strip carries load its registered plugs do not explain: check for unauthorised wiring"
    message_zh = "检查私拉乱接"

    def applies(self, device: Device, site: Site) -> bool:
        return device.kind is DeviceKind.STRIP_METER or device.strip is not None

    def new_state(self, dev: DeviceState) -> Levels | None:
        if dev.device.kind is not DeviceKind.STRIP_METER:
            return None
        p = partial(dev.p, self.id)
        clear, clear_hold = p("clear_residual_a"), p("clear_hold_s")
        return Levels(
            Staged(
                [
                    Threshold(p("residual_a"), clear, p("hold_s"), clear_hold),
                    Threshold(p("residual_a"), clear, p("major_after_s"), clear_hold),
                ],
                [Severity.WARNING, Severity.MAJOR],
            )
        )

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        sums: dict[str, StripSum] = ctx.shared.setdefault(self.id, {})
        current = dev.last.get("current_a")
        if dev.device.strip is not None:  # a plug: update its strip's table, O(1)
            if current is not None:
                sums.setdefault(dev.device.strip, StripSum()).currents[dev.id] = current
            return
        st: Levels = dev.state[self.id]
        plugs = sums.get(dev.id)
        residual = None if current is None else current - (sum(plugs.currents.values()) if plugs else 0.0)
        self.set(ctx, dev, st.s.step(residual, now), now, residual)


def check_topology(ctx: Ctx, now: datetime) -> None:
    """elec.strip_cascade: a strip fed from another strip (from the register; checked at start).

    An open cascade whose strip no longer has an upstream (after a restore with a corrected site
    file) is cleared here. Unknown devices on the network: `unknown_device` below.
    """
    rule = "elec.strip_cascade"
    for device in ctx.site.devices.values():
        if device.kind is DeviceKind.STRIP_METER and device.upstream is not None:
            ctx.set(
                rule,
                device.id,
                Severity.MAJOR,
                device.zone,
                None,
                now,
                f"Strip {device.id} is fed from strip {device.upstream} (daisy chain): remove the cascade",
                f"插线板 {device.id} 串接在插线板 {device.upstream} 上：禁止串接，请拆除",
            )
    for r, subject in list(ctx.open):
        known = ctx.site.devices.get(subject)
        if r == rule and (known is None or known.upstream is None):
            ctx.set(rule, subject, None, known.zone if known else None, None, now, "Cascade removed")


def unknown_device(site: str, edge: str, device: str, detail: str | None, ts: datetime) -> Finding:
    """elec.strip_cascade's second clause: a device that is in no configuration appeared on an edge's
    floor broker (a private metering strip plugged into a registered one, an unregistered plug).

    The subject is `<edge>/<device>`: a "/" can't occur in a device id, so it never collides with a
    registered strip's cascade, and topology checks leave it alone. The edge reports it once per run;
    the alarm stays until a person closes it (device removed, or registered in the site file)."""
    where = f": {detail}" if detail else ""
    return Finding(
        rule="elec.strip_cascade",
        transition=Transition.RAISE,
        severity=Severity.MAJOR,
        subject=f"{edge}/{device}",
        zone=None,
        site=site,
        value=None,
        message=f"Unknown device {device} on the floor network of edge {edge}{where}. "
                "Find it and remove it, or register it (no ad-hoc wiring)",
        message_zh=f"边缘网关 {edge} 发现未登记设备 {device}：禁止私拉乱接电线，请现场检查",
        ts=ts,
    )


@dataclass(slots=True)
class FloorVoltage:
    """Per floor: which plugs are below / above the band, so the median test is O(1) per reading."""

    median: Staged
    spread: Threshold
    status: dict[str, int] = field(default_factory=dict)
    low: int = 0
    high: int = 0
    STATE: ClassVar[tuple[str, ...]] = ("status", "low", "high", "median", "spread")

    @classmethod
    def new(cls) -> FloorVoltage:
        """A floor-level rule: its durations are the site-wide defaults, not one plug's overrides."""
        p = partial(param, "elec.voltage_out_of_range")
        hold, clear = p("hold_s"), p("clear_hold_s")
        return cls(
            Staged([flag(hold, clear), flag(p("major_after_s"), clear)], [Severity.WARNING, Severity.MAJOR]),
            flag(hold, clear),
        )


shared_table("elec.voltage_out_of_range", FloorVoltage)


class VoltageOutOfRange(Rule):
    """Plug voltage outside 198–235.4 V (GB/T 12325), judged per floor (subject: the floor id).

    Reading of the catalog row: warning when plugs of the floor are out of the band for 60 s; major
    when that lasts 15 min, or when more than 25 % of the floor's plugs are out (a supply problem, e.g.
    one sagging phase). The floor median is out of the band exactly when more than half of the plugs
    are, so the 25 % clause covers it; counting plugs below / above the band keeps this O(1) per reading
    (no sorting).
    """

    id = "elec.voltage_out_of_range"
    kinds = PLUG
    metrics = frozenset({"voltage_v"})
    message = "Supply voltage out of range on the floor (GB/T 12325 198–235.4 V)"
    message_zh = "楼层供电电压超出范围(GB/T 12325 198–235.4 V)"

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        volts = dev.last.get("voltage_v")
        if volts is None:
            return
        floor = ctx.site.floor_of(dev.device)
        st = self._floor(ctx, dev, floor)
        status = -1 if volts < dev.p(self.id, "low_v") else (1 if volts > dev.p(self.id, "high_v") else 0)
        old = st.status.get(dev.id, 0)
        st.status[dev.id] = status
        st.low += (status == -1) - (old == -1)
        st.high += (status == 1) - (old == 1)
        self.judge(ctx, floor, now, volts)

    def _floor(self, ctx: Ctx, dev: DeviceState, floor: str) -> FloorVoltage:
        floors: dict[str, FloorVoltage] = ctx.shared.setdefault(self.id, {})
        st = floors.get(floor)
        if st is None:
            st = floors[floor] = FloorVoltage.new()
        return st

    def judge(self, ctx: Ctx, floor: str, now: datetime, value: float | None = None) -> None:
        floors: dict[str, FloorVoltage] = ctx.shared.setdefault(self.id, {})
        st = floors[floor]
        n = len(st.status)
        fraction = (st.low + st.high) / n if n else 0.0
        level = st.median.step(1.0 if fraction > 0 else 0.0, now)
        st.spread.step(1.0 if fraction > param(self.id, "major_fraction") else 0.0, now)
        if st.spread.active:  # > 25 % of the plugs (the floor median out is > 50 %)
            level = Severity.MAJOR
        ctx.set(self.id, floor, level, None, value, now, self.message, self.message_zh)
        ctx.wake(earliest([st.median.due(), st.spread.due()]), self.id, floor)


@dataclass(slots=True)
class Command:
    on: bool
    at: datetime
    STATE: ClassVar[tuple[str, ...]] = ("on", "at")


shared_table("elec.relay_mismatch", Command)


class RelayMismatch(Rule):
    """The relay does not do what it was told: commanded OFF but power flows, or read-back disagrees."""

    id = "elec.relay_mismatch"
    kinds = PLUG
    metrics = frozenset({"relay_on", "power_w"})
    message = "Relay state disagrees with its command: the plug cannot be relied on to cut"
    message_zh = "继电器状态与指令不符：该插座无法可靠断电"

    def new_state(self, dev: DeviceState) -> One:
        hold = dev.p(self.id, "hold_s")
        return One(flag(hold, hold))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: One = dev.state[self.id]
        commands: dict[str, Command] = ctx.shared.setdefault(self.id, {})
        cmd = commands.get(dev.id)
        reported = None if "relay_on" not in dev.last else dev.flag("relay_on")
        expected_off = (cmd is not None and not cmd.on) or (cmd is None and reported is False)
        power = dev.last.get("power_w", 0.0)
        mismatch = (cmd is not None and reported is not None and reported != cmd.on) or (
            expected_off and power > dev.p(self.id, "power_w")
        )
        st.t.step(1.0 if mismatch else 0.0, now)
        self.set(ctx, dev, Severity.MAJOR if st.t.active else None, now, power)


@dataclass(slots=True)
class Runtime(One):
    idle: float | None = None
    STATE: ClassVar[tuple[str, ...]] = ("t", "idle")


class ContinuousRuntime(Rule):
    """Printers and other non-PC loads active (above learned idle + 50 W) for 60 min (S04)."""

    id = "elec.continuous_runtime"
    kinds = PLUG
    metrics = frozenset({"power_w"})
    message = "Long continuous operation, mind cooling"
    message_zh = "长时间连续工作,注意散热"

    def applies(self, device: Device, site: Site) -> bool:
        return device.plug_class in (PlugClass.PRINTER, PlugClass.NON_ESSENTIAL)

    def new_state(self, dev: DeviceState) -> Runtime:
        return Runtime(_over(dev, self.id, "active_above_idle_w"))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: Runtime = dev.state[self.id]
        power = dev.last.get("power_w")
        if power is None:
            return
        if st.idle is None or power < st.idle:
            st.idle = power
        st.t.step(power - st.idle, now)
        self.set(ctx, dev, Severity.WARNING if st.t.active else None, now, power)


class AfterShiftLoad(Rule):
    """A seat that is not rostered (and past the 30 min grace) still draws > 15 W for 30 min (S17)."""

    id = "elec.after_shift_load"
    kinds = PLUG
    metrics = frozenset({"power_w"})
    message = "Seat not rostered but its equipment is still on"
    message_zh = "座席无人排班但设备仍在用电"

    def applies(self, device: Device, site: Site) -> bool:
        return device.seat is not None

    def new_state(self, dev: DeviceState) -> One:
        return One(_over(dev, self.id, "power_w"))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: One = dev.state[self.id]
        seat = dev.device.seat
        assert seat is not None  # applies() guarantees it
        grace = timedelta(seconds=dev.p(self.id, "grace_s"))
        after_shift = ctx.site.on_duty_at_seat(seat, now) is None and not ctx.site.seat_shift_ended_within(
            seat, now, grace
        )
        power = dev.last.get("power_w")
        st.t.step(power if after_shift else None, now)
        self.set(ctx, dev, Severity.MINOR if st.t.active else None, now, power)


class ResidualCurrent(Rule):
    """Disabled by default (RULES.md §7 item 12): a site enables it with `limit_ma` > 0 per strip."""

    id = "elec.residual_current"
    kinds = STRIP
    metrics = frozenset({"residual_ma"})
    message = "Residual current on a strip over its configured limit"
    message_zh = "插线板剩余电流超过设定限值"

    def applies(self, device: Device, site: Site) -> bool:
        return site.overrides(device).get(self.id, {}).get("limit_ma", 0) > 0

    def new_state(self, dev: DeviceState) -> One:
        limit, hold = dev.p(self.id, "limit_ma"), dev.p(self.id, "hold_s")
        return One(Threshold(limit, limit * 0.8, hold, hold))

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: One = dev.state[self.id]
        st.t.step(dev.last.get("residual_ma"), now)
        self.set(ctx, dev, Severity.MAJOR if st.t.active else None, now, dev.last.get("residual_ma"))


VOLTAGE = VoltageOutOfRange()
handles_timers(VOLTAGE.id)(VOLTAGE.judge)  # the floor's verdict when its hold runs out, keyed by floor

RULES: tuple[Rule, ...] = (
    HighPowerAppliance(),
    UnmeteredLoad(),
    VOLTAGE,
    RelayMismatch(),
    ContinuousRuntime(),
    AfterShiftLoad(),
    ResidualCurrent(),
)

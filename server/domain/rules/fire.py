"""Fire detection and response, RULES.md §2.2 (`fire.*`, `evac.*`), §2.5 mr.smoke and the §3 sequence.

Zone correlation lives here: every smoke or heat alarm updates the zone's `ZoneFire`, and
`zone_update` decides fire.confirmed (≥ 2 detectors in the zone, smoke + heat, a manual call point or
an app report, or a §3 timer that ran out: not acknowledged within 60 s, no verdict within 180 s),
evac.notice for the floor, and the egress-door releases (zone on the first alarm, floor on confirmation).

Inputs from people (through `RuleEngine`): `acknowledge_fire` (someone took the page), `fire_verdict`
(real fire or false alarm with a cause: fire.false_alarm_close), `report_fire` (the app's 报火警 button),
`set_detector_disabled` (fire.detector_disabled), `reset_zone` after the incident is closed.

Never suppress a smoke alarm (RULES.md §0.5 item 3): fire.short_smoke_event only adds a minor record
after the smoke alarm is over; plausibility rules only ever touch temperature readings.
fire.confirmed re-arms (CLEAR) when the zone has no smoke, heat or manual input left; the alarm itself
latches in `alarms` until a person closes it. Picks made here ("ours"): heat_prewarn clears under
43 °C and heat_alarm under 50 °C, each held 60 s; a manual call point stays an input until `reset_zone`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import ClassVar

from gateway.contract import Event, EventType, Severity
from server.domain.evacuation import DRILL_EN, DRILL_ZH, MR_EVAC_EN, MR_EVAC_ZH
from server.domain.rules import doors
from server.domain.rules.base import Ctx, DeviceState, Rule, handles_timers, shared_table
from server.domain.rules.blocks import RateOfRise, Threshold
from server.domain.rules.generic import One
from server.domain.site import Device, DeviceKind, Site, ZoneKind

SMOKE = frozenset({DeviceKind.SMOKE_DETECTOR})
TEMP = frozenset({DeviceKind.TEMP_SENSOR, DeviceKind.MR_PROBE})
EVAC_ZH = "{zone}区域发生火情,请立即从最近的安全出口有序撤离,勿乘电梯"
VERIFY_ZH = "{zone}区域火灾报警,核实中"
CAUSE_ZH = {"smoking": "吸烟", "dust": "粉尘", "steam": "水汽", "test": "测试", "cooking": "烹饪", "unknown": "不明"}
"""The usual false-alarm causes (free text otherwise, shown as given)."""


def _zone_name(ctx: Ctx, zone: str) -> str:
    return ctx.site.zones[zone].name or zone


DRILL_KEY = "drill_floors"
"""`ctx.shared[DRILL_KEY]`: floor -> True while a drill runs there (set by the evacuation service)."""


def set_drill(ctx: Ctx, floor: str, on: bool) -> None:
    _mark(ctx, DRILL_KEY, floor, on)


def _mark(ctx: Ctx, key: str, name: str, on: bool) -> None:
    """Add `name` to (or drop it from) the set of floors or zones that `ctx.shared[key]` keeps."""
    marked: dict[str, bool] = ctx.shared.setdefault(key, {})
    if on:
        marked[name] = True
    else:
        marked.pop(name, None)


DRILL_CONFIRMED_KEY = "drill_confirmed"
"""`ctx.shared[DRILL_CONFIRMED_KEY]`: zone -> True while its fire.confirmed is a drill's (marked, no 119)."""


def _drill_confirmed(ctx: Ctx, zone: str) -> bool:
    return zone in ctx.shared.get(DRILL_CONFIRMED_KEY, {})


def _mark_drill_confirmed(ctx: Ctx, zone: str, on: bool) -> None:
    _mark(ctx, DRILL_CONFIRMED_KEY, zone, on)


def _drill(ctx: Ctx, zone: str) -> bool:
    """A manual input in this zone is part of a drill: one runs on its floor and no detector on the floor
    sees smoke or heat (a detector's alarm during a drill is a real fire, with its 119 prompt, and a call
    point pressed beside it reports that fire)."""
    floor = ctx.site.zones[zone].floor
    if floor not in ctx.shared.get(DRILL_KEY, {}):
        return False
    return not any((zf := ctx.fire.get(z.id)) is not None and zf.alarmed for z in ctx.site.zones_on_floor(floor))


# --------------------------------------------------------------------------------------------------
# Zone correlation and the §3 sequence
# --------------------------------------------------------------------------------------------------


@handles_timers("fire.confirmed")
def zone_update(ctx: Ctx, zone: str, now: datetime) -> None:
    """Re-judge one zone after any fire input changed, or when a §3 timer fired."""
    zf = ctx.zone_fire(zone)
    quiet = not zf.alarmed and not zf.manual
    if zf.confirmed:
        if quiet:  # re-arm; the latched alarm stays open until a person closes it
            zf.confirmed, zf.alarm_at, zf.acknowledged, zf.verdict = False, None, False, False
            _mark_drill_confirmed(ctx, zone, False)
            ctx.set("fire.confirmed", zone, None, zone, None, now, "Fire inputs in the zone are clear")
            return
        if not (zf.alarmed and _drill_confirmed(ctx, zone)):
            return
        # A drill's confirmation that a detector now backs is a real fire: confirmed again, unmarked.
    if quiet and zf.verdict:  # a false alarm whose inputs are gone: that sequence is over
        zf.alarm_at, zf.acknowledged, zf.verdict = None, False, False
    if zf.alarmed and zf.alarm_at is None:
        zf.alarm_at, zf.acknowledged, zf.verdict = now, False, False
        doors.release(ctx, ctx.site.egress_doors(zone), "door.fire_release_zone", now)
        _escalate_supervision(ctx, zone, now)
        _corroborate_jumps(ctx, zone, now)
    reason = None
    if len(zf.smoke) >= 2:
        reason = "two detectors in the zone"
    elif zf.smoke and zf.heat:
        reason = "smoke and heat"
    elif zf.confirmed:
        reason = "a detector in alarm during a drill"
    elif zf.manual:
        reason = "manual report"
    elif zf.alarm_at is not None and not zf.verdict:
        ack, verdict = (
            timedelta(seconds=ctx.zone_param(zone, "fire.confirmed", n)) for n in ("ack_s", "verdict_s")
        )
        if not zf.acknowledged and now >= zf.alarm_at + ack:
            reason = "not acknowledged within 60 s"
        elif now >= zf.alarm_at + verdict:
            reason = "no verdict within 180 s"
        else:
            ctx.wake(zf.alarm_at + (verdict if zf.acknowledged else ack), "fire.confirmed", zone)
    if reason is not None:
        confirm(ctx, zone, reason, now)


def confirm(ctx: Ctx, zone: str, reason: str, now: datetime) -> None:
    """fire.confirmed and the floor's evac.notice. A real fire on a floor in a drill ends the drill there:
    the drill's open alarms are raised again unmarked, so they page as a real fire, with 119."""
    zf = ctx.zone_fire(zone)
    name = _zone_name(ctx, zone)
    floor = ctx.site.zones[zone].floor
    drill = _drill(ctx, zone)
    ends_drill = not drill and floor in ctx.shared.get(DRILL_KEY, {})
    if drill:  # marked, and no prompt to call the fire brigade
        en = f"{DRILL_EN}Fire confirmed in {name} ({reason}): evacuate the floor"
        zh = f"{DRILL_ZH}{name}区域火警确认,按演练疏散"
    else:
        en, zh = f"Fire confirmed in {name} ({reason}): evacuate the floor, call 119", "立即拨打119"
        set_drill(ctx, floor, False)
    _raise(ctx, "fire.confirmed", zone, zone, now, en, zh, anew=_drill_confirmed(ctx, zone) and not drill)
    zf.confirmed = True
    _mark_drill_confirmed(ctx, zone, drill)
    _raise(
        ctx,
        "evac.notice",
        floor,
        zone,
        now,
        f"Fire in {name}: leave calmly by the nearest safe exit; do not use the lifts",
        EVAC_ZH.format(zone=name),
        anew=ends_drill,
    )
    doors.release(ctx, ctx.site.egress_doors_on_floor(floor), "door.fire_release_floor", now)


def _raise(ctx: Ctx, rule: str, subject: str, zone: str, now: datetime, en: str, zh: str, anew: bool) -> None:
    """Raise a critical condition; `anew` raises it again while open (ctx.set would stay silent), so
    the open alarm takes the new words: a drill's alarm that became a real fire."""
    if anew and ctx.is_open(rule, subject):
        ctx.pulse(rule, subject, Severity.CRITICAL, zone, None, now, en, zh)
    else:
        ctx.set(rule, subject, Severity.CRITICAL, zone, None, now, en, zh)


def _escalate_supervision(ctx: Ctx, zone: str, now: datetime) -> None:
    """A fire started: offline detectors nearby and offline egress controllers become critical."""
    near = {zone, *ctx.site.zones[zone].adjacent}
    for key, severity in list(ctx.open.items()):
        rule, subject = key
        if severity is Severity.CRITICAL:
            continue
        device = ctx.site.devices.get(subject)
        if rule in ("sup.smoke_offline", "sup.smoke_offline_lpwan") and (
            subject in near or (device is not None and device.zone in near)
        ):
            ctx.set(
                rule,
                subject,
                Severity.CRITICAL,
                device.zone if device else subject,
                None,
                now,
                "Detector offline while a zone next to it is in alarm",
                "相邻区域报警时探测器离线",
            )
        elif rule == "door.egress_controller_offline" and device is not None:
            ctx.set(
                rule,
                subject,
                Severity.CRITICAL,
                device.zone,
                None,
                now,
                "Egress door controller offline during a fire alarm",
                "火警期间疏散门控制器离线：请人工开启疏散门",
            )


def _corroborate_jumps(ctx: Ctx, zone: str, now: datetime) -> None:
    """Smoke in the zone makes a temperature jump real (sensor.temp_jump → fire.heat_alarm)."""
    zf = ctx.zone_fire(zone)
    if not zf.smoke:
        return
    for device in ctx.site.devices_in_zone(zone):
        plaus = ctx.devices[device.id].state.get("sensor.temp")
        if plaus is not None and plaus.suppressed:
            plaus.suppressed = False
            ctx.set("sensor.temp_jump", device.id, None, zone, None, now, "Jump corroborated by smoke")
            if plaus.jump_up:
                raise_heat(ctx, ctx.devices[device.id], now, "temperature jump corroborated by smoke")


def raise_heat(ctx: Ctx, dev: DeviceState, now: datetime, why: str) -> None:
    ctx.set(
        "fire.heat_alarm",
        dev.id,
        Severity.CRITICAL,
        dev.zone,
        dev.last.get("temperature_c"),
        now,
        f"Heat alarm ({why})",
        "感温报警：请立即现场确认",
    )
    ctx.zone_fire(dev.zone).heat.add(dev.id)
    zone_update(ctx, dev.zone, now)


def acknowledge(ctx: Ctx, zone: str, now: datetime) -> None:
    zf = ctx.zone_fire(zone)
    if zf.alarm_at is not None:
        zf.acknowledged = True
        zone_update(ctx, zone, now)


def verdict(ctx: Ctx, zone: str, real: bool, cause: str, now: datetime) -> None:
    """A person at the detector says real fire, or false alarm with its cause (GB 25201 5.3 ②)."""
    zf = ctx.zone_fire(zone)
    if real:
        confirm(ctx, zone, "confirmed by staff", now)
        return
    zf.verdict, zf.acknowledged = True, True
    follow_up = " 领班 follow-up (S07)." if cause == "smoking" else ""
    ctx.pulse(
        "fire.false_alarm_close",
        zone,
        Severity.MINOR,
        zone,
        None,
        now,
        f"False alarm in {_zone_name(ctx, zone)}, cause: {cause or 'not given'}.{follow_up}",
        f"{_zone_name(ctx, zone)} 误报，原因：{CAUSE_ZH.get(cause, cause) or '未说明'}。"
        + ("由领班跟进(S07)。" if cause == "smoking" else ""),
    )
    if not zf.alarmed:
        zf.alarm_at = None


def report(ctx: Ctx, zone: str, subject: str, now: datetime, what: str) -> None:
    """fire.manual_report: a manual call point or the app's 报火警 button; treated as fire.confirmed."""
    mark_en, mark_zh = (DRILL_EN, DRILL_ZH) if _drill(ctx, zone) else ("", "")
    ctx.set(
        "fire.manual_report",
        subject,
        Severity.CRITICAL,
        zone,
        None,
        now,
        f"{mark_en}Fire reported by {what} in {_zone_name(ctx, zone)}",
        f"{mark_zh}报火警",
    )
    zf = ctx.zone_fire(zone)
    zf.manual = True
    zone_update(ctx, zone, now)


def reset_zone(ctx: Ctx, zone: str, now: datetime) -> None:
    """After a person closed the incident: manual inputs go and the zone re-arms."""
    zf = ctx.zone_fire(zone)
    zf.manual = False
    for key in [k for k in ctx.open if k[0] == "fire.manual_report"]:
        device = ctx.site.devices.get(key[1])
        if key[1] == zone or (device is not None and device.zone == zone):
            ctx.set("fire.manual_report", key[1], None, zone, None, now, "Reset by a person")
    if not zf.alarmed:
        zf.alarm_at = None
    zone_update(ctx, zone, now)


# --------------------------------------------------------------------------------------------------
# Device rules
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SmokeState:
    since: datetime | None = None
    STATE: ClassVar[tuple[str, ...]] = ("since",)


class SmokeAlarm(Rule):
    """fire.smoke_alarm (smoke detectors, floor or MR) and mr.smoke (machine-room probes)."""

    id = "fire.smoke_alarm"
    kinds = SMOKE | frozenset({DeviceKind.MR_PROBE})
    metrics = frozenset({"smoke"})
    events = frozenset({EventType.DETECTOR_ALARM, EventType.DETECTOR_CLEAR})

    def new_state(self, dev: DeviceState) -> SmokeState:
        return SmokeState()

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: SmokeState = dev.state[self.id]
        zf = ctx.zone_fire(dev.zone)
        smoke = dev.flag("smoke")
        probe = dev.device.kind is DeviceKind.MR_PROBE
        rule = "mr.smoke" if probe else self.id
        name = _zone_name(ctx, dev.zone)
        if smoke:
            new = st.since is None
            if new:
                st.since = now
            ctx.set(
                rule,
                dev.id,
                Severity.CRITICAL,
                dev.zone,
                None,  # a detector's alarm is a flag: "value 1" would mean nothing to the person paged
                now,
                f"Smoke alarm in {name}, being checked",
                VERIFY_ZH.format(zone=name),
            )
            # the MR is evacuated at once (its gas or mist suppression may discharge), once per smoke: the
            # probe's next report of the same smoke after an all-clear is no new fire
            if probe and new:
                # smoke in a machine room is never a drill's: the floor's drill ends here, so a call point
                # pressed once the probe reads clear again reports this fire, with its 119 prompt
                set_drill(ctx, ctx.site.zones[dev.zone].floor, False)
                ctx.set(
                    "evac.notice",
                    dev.zone,
                    Severity.CRITICAL,
                    dev.zone,
                    None,
                    now,
                    MR_EVAC_EN.format(zone=name),
                    MR_EVAC_ZH.format(zone=name),
                )
            zf.smoke.add(dev.id)
        else:
            ctx.set(rule, dev.id, None, dev.zone, None, now, "Detector back to normal")
            if dev.id in zf.smoke and st.since is not None:
                self._short_event(ctx, dev, st.since, now)
            zf.smoke.discard(dev.id)
            st.since = None
        zone_update(ctx, dev.zone, now)

    def _short_event(self, ctx: Ctx, dev: DeviceState, since: datetime, now: datetime) -> None:
        """fire.short_smoke_event: < 60 s, no heat rise, restroom or stairwell: tag suspected smoking."""
        zone = ctx.site.zones[dev.zone]
        short = now - since < timedelta(seconds=dev.p("fire.short_smoke_event", "max_s"))
        no_heat = not ctx.zone_fire(dev.zone).heat and not any(
            ctx.is_open("fire.heat_prewarn", d.id) for d in ctx.site.devices_in_zone(dev.zone)
        )
        if short and no_heat and zone.kind in (ZoneKind.RESTROOM, ZoneKind.STAIRWELL):
            ctx.pulse(
                "fire.short_smoke_event",
                dev.id,
                Severity.MINOR,
                dev.zone,
                None,
                now,
                "Short smoke event, suspected smoking",
                "疑似吸烟",
            )

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        self.flag_event(ctx, dev, now, "smoke", event.type is EventType.DETECTOR_ALARM)


class ManualCallPoint(Rule):
    id = "fire.manual_report"
    kinds = frozenset(DeviceKind)
    events = frozenset({EventType.MANUAL_CALL_POINT})

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        report(ctx, dev.zone, dev.id, now, "manual call point")


@dataclass(slots=True)
class HeatState(One):
    rate: RateOfRise
    STATE: ClassVar[tuple[str, ...]] = ("t", "rate")


class HeatPrewarn(Rule):
    """T >= 45 °C, or a rise >= 4 °C/min over >= 2 samples with T >= 36 °C (after plausibility)."""

    id = "fire.heat_prewarn"
    kinds = TEMP
    metrics = frozenset({"temperature_c"})
    severity: ClassVar[Severity] = Severity.MAJOR
    message = "Heat pre-warning: verify on site"
    message_zh = "温度预警：请现场确认"

    def new_state(self, dev: DeviceState) -> HeatState:
        # Synthetic level: 2 = raise condition, 1 = between, 0 = clear condition (hysteresis).
        return HeatState(
            Threshold(2, 1, 0, dev.p(self.id, "clear_hold_s")), RateOfRise(dev.p(self.id, "rate_c_per_min"))
        )

    def level(self, dev: DeviceState, temp: float, rising: bool) -> float:
        p = partial(dev.p, self.id)
        if temp >= p("static_c") or (rising and temp >= p("rate_min_c")):
            return 2.0
        return 0.0 if temp < p("clear_c") and not rising else 1.0

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        plaus = dev.state.get("sensor.temp")
        temp = dev.last.get("temperature_c")
        if temp is None or (plaus is not None and (plaus.bad or plaus.suppressed)):
            return  # an implausible reading or a sensor under suspicion never feeds heat rules
        st: HeatState = dev.state[self.id]
        rising = st.rate.step(temp, now) if sample else st.rate.rising()
        st.t.step(self.level(dev, temp, rising), now)
        self.changed(ctx, dev, st.t.active, now, temp)

    def changed(self, ctx: Ctx, dev: DeviceState, active: bool, now: datetime, temp: float) -> None:
        self.set(ctx, dev, self.severity if active else None, now, temp)


class HeatAlarm(HeatPrewarn):
    """T >= 54 °C, or >= 4 °C/min with T >= 46 °C. Counts as the second device for fire.confirmed."""

    id = "fire.heat_alarm"
    severity = Severity.CRITICAL
    message = "Heat alarm"
    message_zh = "感温报警"

    def changed(self, ctx: Ctx, dev: DeviceState, active: bool, now: datetime, temp: float) -> None:
        zf = ctx.zone_fire(dev.zone)
        if active and dev.id not in zf.heat:
            raise_heat(ctx, dev, now, f"{temp:g} °C")
        elif not active and dev.id in zf.heat:
            zf.heat.discard(dev.id)
            self.set(ctx, dev, None, now, temp)
            zone_update(ctx, dev.zone, now)


class DetectorFault(Rule):
    """Fault, dirty or tamper (head removed) flag on a smoke detector; clears when all flags are off."""

    id = "fire.detector_fault"
    kinds = SMOKE
    metrics = frozenset({"detector_fault", "tamper", "dirty"})
    events = frozenset({EventType.DETECTOR_FAULT, EventType.TAMPER})
    message = "Smoke detector fault: zone has reduced protection"
    message_zh = "烟感故障：该区域保护降低"

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        faulty = any(dev.flag(m) for m in self.metrics)
        self.set(ctx, dev, Severity.MAJOR if faulty else None, now)

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        self.flag_event(ctx, dev, now, "tamper" if event.type is EventType.TAMPER else "detector_fault", True)


@dataclass(slots=True)
class Disabled:
    """A detector disabled or muted in this system, with its approved maintenance window if any."""

    since: datetime
    until: datetime | None
    STATE: ClassVar[tuple[str, ...]] = ("since", "until")


shared_table("fire.detector_disabled", Disabled)


def set_disabled(ctx: Ctx, device: str, disabled: bool, until: datetime | None, now: datetime) -> None:
    table: dict[str, Disabled] = ctx.shared.setdefault("fire.detector_disabled", {})
    if disabled:
        table.setdefault(device, Disabled(now, until)).until = until
    else:
        table.pop(device, None)
    check_disabled(ctx, device, now)


@handles_timers("fire.detector_disabled")
def check_disabled(ctx: Ctx, device: str, now: datetime) -> None:
    """fire.detector_disabled: disabled > 8 h, or disabled outside an approved maintenance window."""
    rule = "fire.detector_disabled"
    entry = ctx.shared.setdefault(rule, {}).get(device)
    dev = ctx.devices[device]
    if entry is None:
        ctx.set(rule, device, None, dev.zone, None, now, "Detector enabled again")
        return
    limit = entry.since + timedelta(seconds=dev.p(rule, "max_s"))
    outside = entry.until is None or now >= entry.until
    if outside or now >= limit:
        ctx.set(
            rule,
            device,
            Severity.MAJOR,
            dev.zone,
            None,
            now,
            "Detector disabled outside a maintenance window or for more than 8 h: correct on the spot",
            "探测器在维护时段外或超过8小时被停用：当场纠正",
        )
    else:
        ctx.wake(min(limit, entry.until) if entry.until else limit, rule, device)


class BatteryLow(Rule):
    id = "fire.battery_low"
    kinds = SMOKE
    metrics = frozenset({"battery_low"})
    message = "Smoke detector battery low: replace within 7 days"
    message_zh = "烟感电池电量低：7天内更换"

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        self.set(
            ctx, dev, Severity.MINOR if dev.flag("battery_low") else None, now, dev.last.get("battery_pct")
        )


class InterlockTrip(Rule):
    """Not a catalog rule: records a plug trip in the zone, corroboration for sensor.temp_jump."""

    id = "fire.interlock_seen"
    kinds = frozenset(DeviceKind)
    events = frozenset({EventType.INTERLOCK_TRIPPED})

    def applies(self, device: Device, site: Site) -> bool:
        return device.kind in (DeviceKind.SMART_PLUG, DeviceKind.STRIP_METER)

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        ctx.zone_fire(dev.zone).tripped_at = now


RULES: tuple[Rule, ...] = (
    SmokeAlarm(),
    ManualCallPoint(),
    HeatPrewarn(),
    HeatAlarm(),
    DetectorFault(),
    BatteryLow(),
    InterlockTrip(),
)

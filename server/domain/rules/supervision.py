"""Supervision, RULES.md §2.7 (`sup.*`), door.egress_controller_offline (§2.3), elec.plug_unplugged (§2.1).

A fire device that stops reporting is a fault, never "no news": every registered device is supervised
from the engine's first tick, seen or not. Limits (seconds of silence, server time):
- smoke_detector, heartbeat H <= 60 s: sup.smoke_offline at 200 s; critical if its zone or an adjacent
  zone is in alarm. H > 60 s (LPWAN): sup.smoke_offline_lpwan at 2H + 5 min (H > 1 h is a site warning,
  "reduced supervision", see `Site.warnings`).
- mr_probe: sup.probe_offline at 200 s. Egress door controller: door.egress_controller_offline at 200 s
  (critical while any fire condition is active).
- everything else: sup.sensor_offline at 3 x reporting interval, at least 15 min.
- a seat plug: elec.plug_unplugged at 5 min while its seat is rostered (re-checked every 5 min).
A device's `offline_after_s` in the site file replaces its limit (not the seat plug's 5 min); the table of
kinds, limits and sources is in docs/supervision.md.

The edge's device_offline event (its own count of silent reporting intervals, or a vendor's Last Will)
is a hint, not the decision: it makes the device's limit be checked now, against the time the server
last heard from it. An edge counting 3 x 30 s for a probe must not call it offline after 90 s when the
catalog says 200 s; a device silent past its limit is offline whether or not the edge said so.
The "> 1 h escalate to the supervisor" of sup.smoke_offline is an escalation of the open alarm by age
(RULES.md §4), done by the notification service, not a new finding.

sup.gateway_offline: the edge says it is offline (status / Last Will), or >= 50 % of the devices behind
one edge fell silent within 60 s of each other. Then one alert: per-device offline findings of that edge
are cleared and not raised while it lasts, except fire devices (`FIRE_DEVICES`: smoke detectors, and
machine-room probes, whose `smoke` is mr.smoke), which become one sup.smoke_offline per zone (subject: the
zone id). It clears when the edge reports online or any device behind it reports;
devices still silent then are judged alone (a device heard after the silence began shows the edge is up),
so only a new silence of most devices together raises it again.
A Zigbee bridge behind an edge that goes offline is the same, keyed `<edge>/<bridge>` (`bridge_state`):
a device leaves it when it reports or the bridge is back, and is then judged by its own timer at once.

sup.notify_channel: fed by `RuleEngine.on_notify_result` (the notifier's delivery result per channel):
3 consecutive failures of one channel is major; a success clears it. The 60 s SMS fallback for an
unacknowledged critical page is the notification service's timer, not a finding.

Timers are lazy: a reading only records `seen`; one timer per device sits in the heap and, when it
fires, either raises or re-schedules itself from the latest `seen`. Per-reading cost stays O(1).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.contract import Severity
from server.domain.rules.base import Ctx, DeviceState, handles_timers
from server.domain.site import Device, DeviceKind, offline_rule
from server.domain.thresholds import param

TIMER = "sup"
FIRE_DEVICES = frozenset({DeviceKind.SMOKE_DETECTOR, DeviceKind.MR_PROBE})
"""Devices that sense smoke (RULES.md §2.7 "fire devices" behind a down edge or bridge): a machine-room
probe's `smoke` is mr.smoke, so a silent probe leaves its machine room as blind as a silent detector."""
RECHECK = timedelta(minutes=5)
OFFLINE_RULES = (
    "sup.smoke_offline",
    "sup.smoke_offline_lpwan",
    "sup.probe_offline",
    "sup.sensor_offline",
    "door.egress_controller_offline",
    "elec.plug_unplugged",
)
MESSAGES = {
    "sup.smoke_offline": ("Smoke detector offline = fault: zone unprotected", "探测器离线=故障"),
    "sup.smoke_offline_lpwan": (
        "Battery detector missed its heartbeats: zone unprotected",
        "探测器离线=故障",
    ),
    "sup.probe_offline": ("Machine-room probe offline: the machine room is blind", "机房探头离线：机房失去监测"),
    "sup.sensor_offline": ("Device offline", "设备离线"),
    "door.egress_controller_offline": (
        "Egress door controller offline: verify fail-safe release by hand",
        "疏散门控制器离线：请人工确认断电释放",
    ),
    "elec.plug_unplugged": ("Seat plug offline while the seat is rostered: check for private rewiring",
                            "排班座席的插座离线：检查是否私拉乱接"),
}


def limits(device: Device, dev: DeviceState) -> list[tuple[float, str]]:
    """(seconds of silence, rule) for one device, shortest first."""
    p = dev.p
    out: list[tuple[float, str]] = []
    rule = offline_rule(device)
    if rule == "sup.smoke_offline_lpwan":
        limit = 2 * device.heartbeat_s + p(rule, "extra_s")
    elif rule == "sup.sensor_offline":
        limit = max(p(rule, "intervals") * device.reporting_interval_s, p(rule, "min_s"))
    else:
        limit = p(rule, "offline_s")
    out.append((device.offline_after_s or limit, rule))
    if device.kind is DeviceKind.SMART_PLUG and device.seat is not None:
        out.append((p("elec.plug_unplugged", "offline_s"), "elec.plug_unplugged"))
    return sorted(out)


def start(ctx: Ctx, now: datetime) -> None:
    """First tick: devices never heard from start their silence now."""
    for dev in ctx.devices.values():
        if dev.seen is None:
            dev.seen = now
        ctx.wake(dev.seen + timedelta(seconds=dev.limits[0][0]), TIMER, dev.id)


def heard(ctx: Ctx, dev: DeviceState, now: datetime) -> None:
    """The device said something: it is alive. O(1) unless it was offline."""
    dev.seen = now
    was_offline = dev.offline
    if dev.offline or ctx.is_open("elec.plug_unplugged", dev.id):
        dev.offline = False
        for _, rule in dev.limits:
            ctx.set(rule, dev.id, None, dev.zone, None, now, "Device reporting again")
    if ctx.shared.get(BRIDGES):  # a scan only while a bridge is down
        _off_bridge(ctx, dev, now)
    if ctx.is_open("sup.gateway_offline", dev.device.edge):
        gateway_back(ctx, dev.device.edge, now)
    elif was_offline:
        _zone_back(ctx, dev.zone, now, "Detectors of the zone reporting again")
    ctx.wake(now + timedelta(seconds=dev.limits[0][0]), TIMER, dev.id)


def hint(ctx: Ctx, dev: DeviceState, now: datetime) -> None:
    """The edge says the device is offline: judge its silence by its own limits now (not `heard`)."""
    if not dev.offline:
        check(ctx, dev.id, now)


@handles_timers(TIMER)
def check(ctx: Ctx, device: str, now: datetime) -> None:
    """Timer: has this device been silent past one of its limits?"""
    dev = ctx.devices[device]
    if dev.seen is None:
        return
    silent = (now - dev.seen).total_seconds()
    next_due: datetime | None = None
    for limit, rule in dev.limits:
        if silent < limit:
            due = dev.seen + timedelta(seconds=limit)
            next_due = due if next_due is None else min(next_due, due)
        elif rule == "elec.plug_unplugged":
            seat = dev.device.seat
            if ctx.is_open("sup.gateway_offline", dev.device.edge):
                continue  # folded into the one gateway alert
            if seat is not None and ctx.site.on_duty_at_seat(seat, now) is not None:
                _raise(ctx, dev, rule, Severity.MINOR, now)
            else:
                next_due = now + RECHECK if next_due is None else min(next_due, now + RECHECK)
        else:
            offline(ctx, dev, rule, now)
    ctx.wake(next_due, TIMER, device)


def _raise(ctx: Ctx, dev: DeviceState, rule: str, severity: Severity, now: datetime) -> None:
    en, zh = MESSAGES[rule]
    ctx.set(rule, dev.id, severity, dev.zone, None, now, en, zh)


def _smoke_severity(ctx: Ctx, zone: str) -> Severity:
    near = (zone, *ctx.site.zones[zone].adjacent)
    return Severity.CRITICAL if any(ctx.fire_in_zone(z) for z in near) else Severity.MAJOR


def offline(ctx: Ctx, dev: DeviceState, rule: str, now: datetime) -> None:
    dev.offline = True
    edge = dev.device.edge
    bridge = behind_down_bridge(ctx, dev.id)
    if bridge is not None:
        if dev.device.kind in FIRE_DEVICES:
            _zone_out(ctx, dev.zone, f"Zigbee bridge {bridge}", now)
        return  # folded into the bridge's one alert
    if not ctx.is_open("sup.gateway_offline", edge) and _edge_silent(ctx, edge, dev, now):
        gateway_down(ctx, edge, now, "most devices behind the edge fell silent together")
    if ctx.is_open("sup.gateway_offline", edge):
        if dev.device.kind in FIRE_DEVICES:
            _zone_out(ctx, dev.zone, f"edge {edge}", now)
        return  # one gateway alert instead of one per device
    if rule in ("sup.smoke_offline", "sup.smoke_offline_lpwan"):
        severity = _smoke_severity(ctx, dev.zone)
    elif rule == "door.egress_controller_offline":
        severity = Severity.CRITICAL if ctx.fire_anywhere() else Severity.MAJOR
    elif rule == "sup.probe_offline":
        severity = Severity.MAJOR
    else:
        severity = Severity.MINOR
    _raise(ctx, dev, rule, severity, now)


def _zone_out(ctx: Ctx, zone: str, behind: str, now: datetime) -> None:
    """One sup.smoke_offline per zone (subject: the zone id) for its detectors lost behind an edge or bridge."""
    en, zh = MESSAGES["sup.smoke_offline"]
    ctx.set("sup.smoke_offline", zone, _smoke_severity(ctx, zone), zone, None, now,
            f"Detectors of the zone offline behind {behind}: " + en, zh)


def _zone_back(ctx: Ctx, zone: str, now: datetime, why: str) -> None:
    """Clear the zone's sup.smoke_offline unless one of its detectors is still offline behind a down bridge."""
    if not ctx.is_open("sup.smoke_offline", zone):
        return
    for device in ctx.site.devices_in_zone(zone):
        if (device.kind in FIRE_DEVICES and ctx.devices[device.id].offline
                and behind_down_bridge(ctx, device.id) is not None):
            return
    ctx.set("sup.smoke_offline", zone, None, zone, None, now, why)


def _edge_silent(ctx: Ctx, edge: str, dev: DeviceState, now: datetime) -> bool:
    """>= 50 % of the edge's devices went silent within 60 s of this one (and are still silent), and none
    was heard more than 60 s after it: a device heard later shows the edge is up, so the silent ones are
    judged alone, and the report that cleared the edge alert does not lead to a new one."""
    devices = ctx.site.devices_of_edge(edge)
    if len(devices) < 2 or dev.seen is None:
        return False
    window = timedelta(seconds=param("sup.gateway_offline", "window_s"))
    together = 0
    for device in devices:
        seen = ctx.devices[device.id].seen
        if seen is None:
            continue
        if seen - dev.seen > window:
            return False
        if now - seen >= window and abs(seen - dev.seen) <= window:
            together += 1
    return together >= param("sup.gateway_offline", "fraction") * len(devices)


def gateway_down(ctx: Ctx, edge: str, now: datetime, why: str) -> None:
    ctx.set("sup.gateway_offline", edge, Severity.MAJOR, None, None, now, f"Edge {edge} offline: {why}",
            f"边缘网关 {edge} 离线：检查网关供电与网络")
    for device in ctx.site.devices_of_edge(edge):
        dev = ctx.devices[device.id]
        for rule in OFFLINE_RULES:
            if ctx.is_open(rule, device.id):
                ctx.set(rule, device.id, None, device.zone, None, now, f"Folded into edge {edge} offline")
                if device.kind in FIRE_DEVICES:
                    offline(ctx, dev, rule, now)


def gateway_back(ctx: Ctx, edge: str, now: datetime) -> None:
    ctx.set("sup.gateway_offline", edge, None, None, None, now, f"Edge {edge} back")
    zones = {d.zone for d in ctx.site.devices_of_edge(edge)}
    for zone in zones:
        _zone_back(ctx, zone, now, "Edge back")
    for device in ctx.site.devices_of_edge(edge):
        dev = ctx.devices[device.id]
        if dev.offline:
            ctx.wake(now, TIMER, device.id)  # still silent ones are judged on their own again


def notify_result(ctx: Ctx, channel: str, ok: bool, now: datetime) -> None:
    rule = "sup.notify_channel"
    failures: dict[str, int] = ctx.shared.setdefault(rule, {})
    if ok:
        failures.pop(channel, None)
        ctx.set(rule, channel, None, None, 0, now, "Channel delivering again")
        return
    failures[channel] = failures.get(channel, 0) + 1
    if failures[channel] >= param(rule, "failures"):
        ctx.set(
            rule,
            channel,
            Severity.MAJOR,
            None,
            failures[channel],
            now,
            f"Notification channel {channel} failed {failures[channel]} times in a row",
            f"通知渠道 {channel} 连续 {failures[channel]} 次发送失败",
        )


BRIDGE_RULE = "sup.gateway_offline"
BRIDGES = "bridges_down"
"""Shared state: the devices behind each offline bridge, by `<edge>/<bridge>` (not a rule id)."""


def behind_down_bridge(ctx: Ctx, device: str) -> str | None:
    """The down bridge (`<edge>/<bridge>`) the device is behind, if any."""
    for subject, devices in ctx.shared.get(BRIDGES, {}).items():
        if device in devices:
            return str(subject)
    return None


def _off_bridge(ctx: Ctx, dev: DeviceState, now: datetime) -> None:
    """The device reported: it is no longer lost behind its bridge, so its own timer supervises it again.
    All of a bridge's devices reporting means the bridge is back."""
    down: dict[str, list[str]] = ctx.shared[BRIDGES]
    for subject, devices in list(down.items()):
        if dev.id in devices:
            devices.remove(dev.id)
            if not devices:
                del down[subject]
                ctx.set(BRIDGE_RULE, subject, None, None, None, now, f"Zigbee bridge {subject}: all its devices report")


def bridge_state(ctx: Ctx, edge: str, bridge: str, devices: list[str], total: int, online: bool,
                 now: datetime) -> None:
    """A Zigbee2MQTT bridge (coordinator) behind an edge went offline or came back, with the devices behind
    it (a long list comes in parts): one sup.gateway_offline for the bridge (subject `<edge>/<bridge>`,
    never a fire) naming them; their own offline findings are folded into it while it lasts, except smoke
    detectors, which become one sup.smoke_offline per zone as behind a down edge."""
    subject = f"{edge}/{bridge}"
    down: dict[str, list[str]] = ctx.shared.setdefault(BRIDGES, {})
    folded = down.get(subject, [])
    if online:
        back = [d for d in folded if d in devices]
        down[subject] = [d for d in folded if d not in devices]
        if not down[subject]:
            down.pop(subject, None)
            ctx.set(BRIDGE_RULE, subject, None, None, None, now, f"Zigbee bridge {bridge} on edge {edge} back")
        for zone in {ctx.devices[d].zone for d in back}:
            _zone_back(ctx, zone, now, f"Zigbee bridge {bridge} on edge {edge} back")
        for device in back:
            check(ctx, device, now)  # still silent past its limit: its own alarm; else its timer again
        return
    down[subject] = folded
    folded += [d for d in devices if d not in folded]
    for device in devices:
        dev = ctx.devices[device]
        for rule in OFFLINE_RULES:
            if ctx.is_open(rule, device):
                ctx.set(rule, device, None, dev.zone, None, now, f"Folded into Zigbee bridge {bridge} offline")
        if dev.offline:
            offline(ctx, dev, offline_rule(dev.device), now)  # a detector: its zone's one alarm
    shown = ", ".join(devices[:20])
    more = f"; {total} devices in all" if total > len(devices[:20]) else ""
    ctx.set(BRIDGE_RULE, subject, Severity.MAJOR, None, float(total), now,
            f"Zigbee bridge {bridge} on edge {edge} offline: its devices are unsupervised ({shown}{more})",
            f"Zigbee 网关 {bridge} 离线：其设备失去监控")

"""The rule engine: routes readings, events and timers to the rules of one site.

Cost. At construction every device gets the list of rules that apply to it (indexed by device kind,
then filtered by `Rule.applies`), split by the metrics and events that wake each rule. A reading runs
only the rules of its device that watch one of its metrics: the work per reading does not depend on
how many devices the site has, nor on rules for other kinds. Timers (a hold that runs out with no new
reading, supervision limits) sit in one heap; `tick` pops only what is due.

Time. The domain never reads a clock: `now` is the server's time, passed in. A reading's own `ts` is
used for durations when it is sane, but it is clamped: a `ts` later than `now` counts as `now` (a
device clock is never trusted past the server's), and a `ts` earlier than the device's previous
reading counts as that previous time, so durations never run backwards. Supervision ("last seen")
always uses `now`: a replayed old reading still proves the device is alive now.

Findings are made in one place (`Ctx.set`) against the table of open conditions, so a condition
already open is never raised twice, including after `restore`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, ItemsView, Iterable, Mapping, ValuesView
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.contract import Event, EventType, Severity
from server.domain.findings import Finding
from server.domain.rules import access, doors, electrical, environment, fire, plausibility, supervision
from server.domain.rules.access import Approval
from server.domain.rules.base import SHARED_OBJECTS, SHARED_TABLES, TIMER_HANDLERS, Ctx, DeviceState, Rule, ZoneFire
from server.domain.rules.blocks import dump, load_into, undump
from server.domain.rules.controls import all_clear
from server.domain.rules.generic import gauge_rules
from server.domain.site import DeviceKind, Site

# Plausibility first: it marks a temperature sample bad before the heat rules of the same reading look.
RULES: tuple[Rule, ...] = (
    *plausibility.RULES,
    *fire.RULES,
    *electrical.RULES,
    *doors.RULES,
    *access.RULES,
    *environment.RULES,
    *gauge_rules(),
)

SNAPSHOT_VERSION = 1


class _Touched(dict[str, DeviceState]):
    """`ctx.devices` that remembers which devices were looked up: rules reach a device's state only
    through this map, so a device nobody looked up since the last checkpoint has not changed."""

    __slots__ = ("all", "touched")

    def __init__(self) -> None:
        super().__init__()
        self.touched: set[str] = set()
        self.all = False

    def __getitem__(self, key: str) -> DeviceState:
        self.touched.add(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self.touched.add(key)
        return dict.get(self, key, default)

    def values(self) -> ValuesView[DeviceState]:  # type: ignore[override]
        self.all = True
        return dict.values(self)

    def items(self) -> ItemsView[str, DeviceState]:  # type: ignore[override]
        self.all = True
        return dict.items(self)

    def reset(self) -> None:
        self.touched = set()
        self.all = False


@dataclass(slots=True)
class StateDelta:
    """What changed since the last saved checkpoint, as rows: per device, and per site-wide part
    (`open`, `timers`, `fire:<zone>`, `shared:<key>`, and for a shared map of per-item objects one
    `entry:<key>:<name>` per item, its `shared:<key>` row then only saying that the map exists).
    Saved with `RuleEngine.saved(delta)` after its transaction committed; until then the next `delta()`
    still contains it."""

    site: str
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed_devices: list[str] = field(default_factory=list)
    parts: dict[str, Any] = field(default_factory=dict)
    removed_parts: list[str] = field(default_factory=list)
    due: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """Every pending timer at the delta (the baseline of the next one)."""
    open: dict[tuple[str, str], Severity] = field(default_factory=dict)
    full: bool = False
    """Every row is in this delta (the first one after a restore from a single-blob snapshot)."""
    device_json: dict[str, str] = field(default_factory=dict)
    """Each row of `devices` as JSON text (`json.dumps`, as the database adapter would write it): the
    delta serializes a row to compare it, and the adapter writes that text instead of serializing again."""
    device_digests: dict[str, bytes] = field(default_factory=dict)
    """`json_digest` of each row in `devices`: what `saved` keeps to compare the next delta against."""

    def __bool__(self) -> bool:
        return bool(self.devices or self.removed_devices or self.parts or self.removed_parts)


class RuleEngine:
    """Pure rule evaluation for one site. Every method returns the findings it produced."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.ctx = Ctx(site)
        self._devices = self.ctx.devices = _Touched()
        self._started = False
        self._rules = {rule.id: rule for rule in RULES}
        by_kind: dict[DeviceKind, list[Rule]] = {kind: [] for kind in DeviceKind}
        for rule in RULES:
            for kind in rule.kinds:
                by_kind[kind].append(rule)
        for device in site.devices.values():
            rules = [r for r in by_kind[device.kind] if r.applies(device, site)]
            by_metric: dict[str, list[Rule]] = {}
            by_event: dict[EventType, list[Rule]] = {}
            for rule in rules:
                for metric in rule.metrics:
                    by_metric.setdefault(metric, []).append(rule)
                for event_type in rule.events:
                    by_event.setdefault(event_type, []).append(rule)
            dev = DeviceState(device, site.overrides(device), rules, by_metric, by_event)
            dev.limits = supervision.limits(device, dev)
            for rule in rules:
                state = rule.new_state(dev)
                if state is not None:
                    dev.state[rule.id] = state
            self._devices[device.id] = dev
        # Incremental checkpoints: a device is dumped again only when looked up since the last save
        # (`_Touched`) or when its timers changed, and its row is written only when it differs from the
        # one last saved. Saved rows are kept as digests, not as dumps: 16 bytes instead of ~4 KB a device.
        self._all_stale = True
        """Every device may have changed (start, restore, or `ctx` changed from outside)."""
        self._saved: dict[str, bytes] = {}
        """`json_digest` of each device row as last saved (the dump plus the device's timers)."""
        self._saved_parts: dict[str, Any] = {}
        """Site-wide rows as last saved: a few per zone, strip and floor, so kept whole (comparing them
        is cheaper than serializing every one at every checkpoint)."""
        self._saved_due: dict[tuple[str, str], datetime] = {}
        self._saved_open: dict[tuple[str, str], Severity] = {}
        self._unsaved: set[str] | None = None
        """Devices looked up since the last save (None: all of them)."""
        self._timer_index: dict[str, set[str]] = {}
        """Timer key -> rules with a pending timer for it, as of `_index_due`."""
        self._index_due: dict[tuple[str, str], datetime] = {}
        self._legacy = False
        """Restored from a single-blob snapshot: the next delta writes every row."""

    @property
    def evaluations(self) -> int:
        """Rule evaluations run so far (a structural cost measure, see tests/server/domain/test_engine.py)."""
        return self.ctx.evaluations

    def rules_of(self, device: str) -> list[str]:
        """Ids of the rules that apply to one device (for the device page and for tests)."""
        dev = self.ctx.devices.get(device)
        return [r.id for r in dev.rules] if dev else []

    # ---- inputs --------------------------------------------------------------------------------

    def _clock(self, dev: DeviceState, ts: datetime, now: datetime) -> datetime:
        t = min(ts, now)
        if dev.clock is not None and t < dev.clock:
            t = dev.clock
        dev.clock = t
        return t

    def _run(self, dev: DeviceState, rule: Rule, now: datetime, sample: bool) -> None:
        self.ctx.evaluations += 1
        rule.evaluate(self.ctx, dev, now, sample)
        self._wake_when_due(dev, rule.id)

    def _wake_when_due(self, dev: DeviceState, rule: str) -> None:
        """Ask for the rule again when its state for the device says it is next due (if it keeps a deadline)."""
        due = getattr(dev.state.get(rule), "due", None)
        if due is not None:
            self.ctx.wake(due(), rule, dev.id)

    def on_reading(
        self, device: str, ts: datetime, metrics: Mapping[str, bool | int | float], now: datetime
    ) -> list[Finding]:
        dev = self.ctx.devices.get(device)
        if dev is None:
            return []  # unknown device: the caller counts it
        t = self._clock(dev, ts, now)
        supervision.heard(self.ctx, dev, now)
        due: list[Rule] = []
        for name, value in metrics.items():
            dev.last[name] = float(value)
            for rule in dev.by_metric.get(name, ()):
                if rule not in due:
                    due.append(rule)
        for rule in due:
            self._run(dev, rule, t, True)
        return self.ctx.take()

    def invalidate_snapshot(self) -> None:
        """Someone changed `ctx` directly (not through these methods): the next delta compares every device."""
        self._all_stale = True

    def on_event(self, event: Event, now: datetime) -> list[Finding]:
        dev = self.ctx.devices.get(event.device)
        if dev is None:
            return []
        t = self._clock(dev, event.ts, now)
        if event.type is EventType.DEVICE_OFFLINE:
            supervision.hint(self.ctx, dev, t)  # the catalog's limit since last heard decides, not the edge
            return self.ctx.take()
        supervision.heard(self.ctx, dev, now)
        for handler in dev.by_event.get(event.type, ()):
            self.ctx.evaluations += 1
            handler.on_event(self.ctx, dev, event, t)
            self._wake_when_due(dev, handler.id)
        return self.ctx.take()

    def on_bridge(self, edge: str, bridge: str, devices: list[str], total: int, online: bool,
                  now: datetime) -> list[Finding]:
        """A Zigbee2MQTT bridge's state with (some of) the devices behind it (supervision.bridge_state)."""
        known = [d for d in devices if d in self.ctx.devices]
        supervision.bridge_state(self.ctx, edge, bridge, known, max(total, len(known)), online, now)
        return self.ctx.take()

    def on_edge_status(self, edge: str, online: bool, now: datetime) -> list[Finding]:
        if not self.site.devices_of_edge(edge):
            return []
        if online:
            if self.ctx.is_open("sup.gateway_offline", edge):
                supervision.gateway_back(self.ctx, edge, now)
        else:
            supervision.gateway_down(self.ctx, edge, now, "the edge reported offline")
        return self.ctx.take()

    def tick(self, now: datetime) -> list[Finding]:
        """Run what is due: holds that ran out with no new reading, supervision limits, §3 timers."""
        if not self._started:
            self._started = True
            supervision.start(self.ctx, now)
            electrical.check_topology(self.ctx, now)
        for rule_id, key in self.ctx.due_timers(now):
            handler = TIMER_HANDLERS.get(rule_id)
            if handler is not None:
                handler(self.ctx, key, now)
                continue
            dev = self.ctx.devices.get(key)
            rule = self._rules.get(rule_id)
            if dev is not None and rule is not None and rule in dev.rules:
                self._run(dev, rule, now, False)
        return self.ctx.take()

    # ---- inputs from people and other services -------------------------------------------------

    def on_relay_command(self, device: str, on: bool, now: datetime) -> list[Finding]:
        """The server commanded a relay (elec.relay_mismatch compares the plug against it)."""
        dev = self.ctx.devices.get(device)
        if dev is None:
            return []
        self.ctx.shared.setdefault("elec.relay_mismatch", {})[device] = electrical.Command(on, now)
        rule = self._rules["elec.relay_mismatch"]
        if rule in dev.rules:
            self._run(dev, rule, now, False)
        return self.ctx.take()

    def acknowledge_fire(self, zone: str, now: datetime) -> list[Finding]:
        """Someone acknowledged the fire page of `zone` (§3: within 60 s, else confirmed)."""
        if zone in self.site.zones:
            fire.acknowledge(self.ctx, zone, now)
        return self.ctx.take()

    def fire_verdict(self, zone: str, real: bool, cause: str, now: datetime) -> list[Finding]:
        """A person at the detector: real fire (confirm) or false alarm with its cause."""
        if zone in self.site.zones:
            fire.verdict(self.ctx, zone, real, cause, now)
        return self.ctx.take()

    def report_fire(self, zone: str, now: datetime) -> list[Finding]:
        """The app's 报火警 button (fire.manual_report, treated as fire.confirmed)."""
        if zone in self.site.zones:
            fire.report(self.ctx, zone, zone, now, "staff (app)")
        return self.ctx.take()

    def reset_zone(self, zone: str, now: datetime) -> list[Finding]:
        """After a person closed the fire incident of `zone`: manual inputs cleared, zone re-armed."""
        if zone in self.site.zones:
            fire.reset_zone(self.ctx, zone, now)
        return self.ctx.take()

    def all_clear(self, floor: str, roles: Collection[str], now: datetime) -> list[Finding]:
        """evac.all_clear: ends an evacuation (CLEAR of evac.notice for `floor`, a floor id, or the
        machine-room zone id after mr.smoke). PermissionError unless a role is on_site_command,
        emergency_command or admin (PERMISSIONS[all_clear]). Egress doors stay released until `reset_door_release`."""
        decision = all_clear(roles)
        if not decision.allowed:
            raise PermissionError(decision.reason)
        self.ctx.set("evac.notice", floor, None, None, None, now, "All clear")
        # The manual reports of the floor are over with it (their latched alarms stay until closed): a call
        # point pressed after the all-clear is a new fire, raised and paged again, not a no-op.
        for zone in self.site.zones_on_floor(floor) if floor in self.site.floors else ():
            if self.ctx.zone_fire(zone.id).manual:
                fire.reset_zone(self.ctx, zone.id, now)
        return self.ctx.take()

    def reset_door_release(self, door: str, now: datetime) -> list[Finding]:
        doors.reset_release(self.ctx, door, now)
        return self.ctx.take()

    def set_detector_disabled(
        self, device: str, disabled: bool, now: datetime, window_until: datetime | None = None
    ) -> list[Finding]:
        """A detector disabled / muted / in test in this system, with its maintenance window end."""
        if device in self.ctx.devices:
            fire.set_disabled(self.ctx, device, disabled, window_until, now)
        return self.ctx.take()

    def sensor_checked(self, device: str, now: datetime) -> list[Finding]:
        if device in self.ctx.devices:
            plausibility.sensor_checked(self.ctx, device, now)
        return self.ctx.take()

    def on_approvals(self, approvals: Iterable[Approval], now: datetime) -> list[Finding]:
        access.on_approvals(self.ctx, approvals, now)
        return self.ctx.take()

    def on_hr_feed(
        self, leavers: Mapping[str, datetime], active_badges: Collection[str], now: datetime
    ) -> list[Finding]:
        access.on_hr_feed(self.ctx, leavers, active_badges, now)
        return self.ctx.take()

    def on_notify_result(self, channel: str, ok: bool, now: datetime) -> list[Finding]:
        supervision.notify_result(self.ctx, channel, ok, now)
        return self.ctx.take()

    # ---- queries -------------------------------------------------------------------------------

    def open_conditions(self) -> dict[tuple[str, str], Severity]:
        return dict(self.ctx.open)

    def zone_fire(self, zone: str) -> ZoneFire:
        return self.ctx.zone_fire(zone)

    # ---- persistence ---------------------------------------------------------------------------

    def _collect(self) -> None:
        """Take the devices looked up since the last call into `_unsaved` (all of them when `_all_stale`)."""
        devices = self._devices
        if self._all_stale or devices.all:
            self._unsaved = None
        elif self._unsaved is not None:
            self._unsaved |= devices.touched
        devices.reset()  # a lookup from elsewhere from now on counts for the next delta
        self._all_stale = False

    def _dump_device(self, device: str) -> dict[str, Any] | None:
        """The device's state as saved (None: never heard of, nothing to keep)."""
        dev = dict.get(self._devices, device)
        if dev is None or (dev.seen is None and dev.clock is None):
            return None
        return {
            "last": dict(dev.last),
            "clock": dump(dev.clock),
            "seen": dump(dev.seen),
            "offline": dev.offline,
            "state": {k: dump(v) for k, v in dev.state.items()},
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole pending state as one JSON-able dict: open conditions, timers, per-device state,
        zone fire state (for tests and tools; the server saves `delta()` rows). Dumps every device."""
        ctx = self.ctx
        dumps = {device: self._dump_device(device) for device in dict.keys(self._devices)}
        return {
            "version": SNAPSHOT_VERSION,
            "site": self.site.id,
            "open": [[rule, subject, str(sev)] for (rule, subject), sev in ctx.open.items()],
            # Only live timers (one per rule and key); stale heap entries are not worth keeping.
            "timers": [[dump(due), rule, key] for (rule, key), due in sorted(ctx.pending_timers().items())],
            "devices": {device: data for device, data in dumps.items() if data is not None},
            "fire": {zone: dump(zf) for zone, zf in ctx.fire.items()},
            "shared": {key: dump(value) for key, value in ctx.shared.items()},
        }

    def delta(self) -> StateDelta:
        """The rows that differ from the last saved checkpoint: one per changed device (its dump and
        its timers), and the changed site-wide parts. Pure: nothing counts as saved until `saved`."""
        self._collect()
        ctx = self.ctx
        due = ctx.pending_timers()
        index = self._timer_index
        for (rule, key), _ in due.items() ^ self._index_due.items():
            if (rule, key) in due:
                index.setdefault(key, set()).add(rule)
            elif key in index:
                index[key].discard(rule)
                if not index[key]:
                    del index[key]
        self._index_due = due
        changed_keys = {key for (_, key), _ in due.items() ^ self._saved_due.items()}
        devices = self._devices
        out = StateDelta(self.site.id, due=due, open=dict(ctx.open), full=self._legacy)
        if self._unsaved is None or self._legacy:
            candidates: Iterable[str] = set(dict.keys(devices)) | set(self._saved)
        else:
            candidates = self._unsaved | (changed_keys & devices.keys())
        for device in candidates:
            row = self._row(device, due)
            if row is None:
                if device in self._saved:
                    out.removed_devices.append(device)
                continue
            text = json.dumps(row)
            digest = json_digest(text)
            if self._legacy or self._saved.get(device) != digest:
                out.devices[device] = row
                out.device_json[device] = text
                out.device_digests[device] = digest
        parts: dict[str, Any] = {}
        if self._legacy or out.open != self._saved_open:
            parts["open"] = [[rule, subject, str(sev)] for (rule, subject), sev in sorted(ctx.open.items())]
        if self._legacy or any(key not in devices for key in changed_keys) or "timers" not in self._saved_parts:
            site_timers = sorted((due[(rule, key)], rule, key)
                                 for key, rules in index.items() if key not in devices for rule in rules)
            parts["timers"] = [[dump(when), rule, key] for when, rule, key in site_timers]
        for zone, zf in ctx.fire.items():
            parts[f"fire:{zone}"] = dump(zf)
        for key, value in ctx.shared.items():
            data = dump(value)
            if key in SHARED_TABLES and isinstance(data, dict):
                # A map with an item per strip, plug, door...: a row per item, so one change is one small row.
                parts[f"shared:{key}"] = {}
                for name, item in data.items():
                    parts[f"entry:{key}:{name}"] = item
            else:
                parts[f"shared:{key}"] = data
        saved = self._saved_parts
        out.parts = {name: data for name, data in parts.items() if self._legacy or saved.get(name) != data}
        out.removed_parts = [name for name in saved
                             if name not in parts and name.startswith(("fire:", "shared:", "entry:"))]
        return out

    def _row(self, device: str, due: dict[tuple[str, str], datetime]) -> dict[str, Any] | None:
        rules = self._timer_index.get(device)
        data = self._dump_device(device)
        if data is None and not rules:
            return None
        timers = {rule: dump(due[(rule, device)]) for rule in sorted(rules)} if rules else {}
        return {"dump": data, "timers": timers}

    def saved(self, delta: StateDelta) -> None:
        """`delta` is committed: it is the baseline of the next one."""
        self._saved.update(delta.device_digests)
        for device in delta.removed_devices:
            self._saved.pop(device, None)
        self._saved_parts.update(delta.parts)
        for name in delta.removed_parts:
            self._saved_parts.pop(name, None)
        self._saved_due, self._saved_open = delta.due, delta.open
        self._unsaved = set()
        self._legacy = False

    def restore(self, state: dict[str, Any]) -> None:
        """Put a snapshot back after a restart. Pending durations keep their start; open conditions
        stay open, so nothing is raised twice. Parameters come from the (possibly edited) site file.
        Nothing counts as saved afterwards: the next `delta()` holds every row (`full`)."""
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {state.get('version')!r} is not {SNAPSHOT_VERSION}")
        ctx = self.ctx
        ctx.open = {(rule, subject): Severity(sev) for rule, subject, sev in state["open"]}
        ctx.clear_timers()
        for due, rule, key in state["timers"]:
            ctx.wake(undump(due), rule, key)
        devices = self._devices
        for device_id, data in state["devices"].items():
            dev = dict.get(devices, device_id)
            if dev is None:
                continue  # removed from the site file
            dev.last = {k: float(v) for k, v in data["last"].items()}
            dev.clock, dev.seen = undump(data["clock"]), undump(data["seen"])
            dev.offline = bool(data["offline"])
            for rule_id, rule_state in data["state"].items():
                if rule_id in dev.state:
                    load_into(dev.state[rule_id], rule_state)
        for zone, data in state["fire"].items():
            if zone in self.site.zones:
                load_into(ctx.zone_fire(zone), data)
        for key, data in state["shared"].items():
            ctx.shared[key] = _rebuild_shared(key, data)
        # The first tick after a restore re-runs the start-up checks (topology may have changed).
        self._started = False
        self._all_stale = True
        self._saved, self._saved_parts, self._saved_due, self._saved_open = {}, {}, {}, {}
        self._index_due, self._timer_index = {}, {}
        self._legacy = True

    def restore_rows(self, devices: Mapping[str, dict[str, Any]], parts: Mapping[str, Any]) -> None:
        """Put back the rows `delta()` made (as `saved` them): the same state as `restore`, and those
        rows become the baseline, so only what differs from them is written again."""
        timers: list[list[Any]] = list(parts.get("timers", []))
        for device, row in devices.items():
            if dict.get(self._devices, device) is not None:
                timers += [[when, rule, device] for rule, when in row["timers"].items()]
        self.restore({
            "version": SNAPSHOT_VERSION, "site": self.site.id, "open": parts.get("open", []), "timers": timers,
            "devices": {device: row["dump"] for device, row in devices.items() if row["dump"] is not None},
            "fire": {name[5:]: data for name, data in parts.items() if name.startswith("fire:")},
            "shared": _shared_of(parts),
        })
        self._saved = {device: json_digest(json.dumps(row)) for device, row in devices.items()}
        self._saved_parts = dict(parts)
        self._saved_due = self._index_due = self.ctx.pending_timers()
        for rule, key in self._saved_due:
            self._timer_index.setdefault(key, set()).add(rule)
        self._saved_open = dict(self.ctx.open)
        self._legacy = False


def json_digest(text: str) -> bytes:
    """A checkpoint row's compact form to compare against: a hash of its JSON text (`json.dumps`, as
    the database adapter writes it). A dump's dict order follows the state's, which a restore keeps,
    so an unchanged row hashes the same after a restart."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _shared_of(parts: Mapping[str, Any]) -> dict[str, Any]:
    """`ctx.shared` in snapshot form from the site-wide rows: whole values, and maps split in entries."""
    shared: dict[str, Any] = {name[7:]: dict(data) if isinstance(data, dict) else data  # entries go in the copy
                              for name, data in parts.items() if name.startswith("shared:")}
    for name, data in parts.items():
        if name.startswith("entry:"):
            _, key, item = name.split(":", 2)
            target = shared.setdefault(key, {})
            if isinstance(target, dict):
                target[item] = data
    return shared


def _rebuild_shared(key: str, data: Any) -> Any:
    whole = SHARED_OBJECTS.get(key)
    if whole is not None:
        obj = whole()
        load_into(obj, data)
        return obj
    cls = SHARED_TABLES.get(key)
    if cls is None:
        return undump(data)
    out: dict[str, Any] = {}
    for name, item in data.items():
        factory = getattr(cls, "new", None)
        if factory is not None:
            obj = factory()
            load_into(obj, item)
        else:
            obj = cls(**{field: undump(value) for field, value in item.items()})
        out[name] = obj
    return out

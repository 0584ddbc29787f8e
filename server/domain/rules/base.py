"""What every rule shares: the per-device state, the rule base class and the engine context.

A rule is a small object with the kinds it applies to, the metrics and events that wake it, and
`evaluate`. It never emits a Finding itself: it says "this condition is now at severity S" (or None)
through `Ctx.set`, and the context turns level changes into RAISE / CLEAR findings against the one
table of open conditions. That table is what makes findings idempotent: a condition already open is
not raised again (after a restore too), and only a worse severity re-raises (an escalation).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from gateway.contract import Event, EventType, Severity
from server.domain.catalog import measure_of
from server.domain.findings import SEVERITY_RANK, Finding, Transition
from server.domain.site import Device, DeviceKind, Overrides, Site
from server.domain.thresholds import param

Metrics = Mapping[str, bool | int | float]


@dataclass(slots=True)
class DeviceState:
    """Everything the engine keeps for one device: small and independent of other devices."""

    device: Device
    overrides: Overrides
    rules: list[Rule]
    by_metric: dict[str, list[Rule]]
    by_event: dict[EventType, list[Rule]]
    limits: list[tuple[float, str]] = field(default_factory=list)
    """Supervision: (seconds of silence, rule), shortest first (see supervision.py)."""
    last: dict[str, float] = field(default_factory=dict)
    """Last value of each metric (booleans as 1.0 / 0.0)."""
    clock: datetime | None = None
    """Effective time of the last reading: never later than the server's `now`, never going back."""
    seen: datetime | None = None
    """When the server last heard from the device (server time: a device clock is not trusted)."""
    offline: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    """Per-rule state objects, by rule id."""

    @property
    def id(self) -> str:
        return self.device.id

    @property
    def zone(self) -> str:
        return self.device.zone

    def p(self, rule: str, name: str) -> float:
        return param(rule, name, self.overrides)

    def flag(self, metric: str) -> bool:
        return self.last.get(metric, 0.0) >= 0.5


class Rule:
    """Base of a device rule. Subclasses set the class attributes and override `evaluate`."""

    id: ClassVar[str]
    kinds: ClassVar[frozenset[DeviceKind]]
    metrics: ClassVar[frozenset[str]] = frozenset()
    events: ClassVar[frozenset[EventType]] = frozenset()
    message: ClassVar[str] = ""
    message_zh: ClassVar[str] = ""

    def applies(self, device: Device, site: Site) -> bool:
        return True

    def new_state(self, dev: DeviceState) -> Any:
        """A fresh state object (a dataclass with STATE), or None for a stateless rule."""
        return None

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        """Look at the device's latest values. `sample` is False when a timer, not a reading, woke it."""

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        """React to an event of one of `events`."""

    def flag_event(self, ctx: Ctx, dev: DeviceState, now: datetime, metric: str, on: bool) -> None:
        """An event that says a boolean metric (a door opened, smoke, a leak): it stands as the device's latest
        value until the next reading, and the rule judges at once."""
        dev.last[metric] = 1.0 if on else 0.0
        self.evaluate(ctx, dev, now, True)

    def set(
        self,
        ctx: Ctx,
        dev: DeviceState,
        severity: Severity | None,
        now: datetime,
        value: float | None = None,
        message: str = "",
        subject: str | None = None,
        message_zh: str = "",
    ) -> None:
        """Shortcut for `ctx.set` with this rule's id, the device as subject and its zone."""
        ctx.set(
            self.id,
            subject or dev.id,
            severity,
            dev.zone,
            value,
            now,
            message or self.message,
            message_zh or self.message_zh,
        )


TimerHandler = Callable[["Ctx", str, datetime], None]
"""Runs a due timer: (context, the timer's key, now)."""

TIMER_HANDLERS: dict[str, TimerHandler] = {}
"""Timer name (a rule id) -> what runs its due timers, each registered beside its rule
(`handles_timers`). A timer without a handler re-evaluates its rule on the device it is keyed by."""

SHARED_TABLES: dict[str, type[Any]] = {}
"""`ctx.shared` key -> type of each item of that table (strip, floor, plug, door...), registered beside
the rule that owns it (`shared_table`): a checkpoint writes a row per item and a restore rebuilds them."""

SHARED_OBJECTS: dict[str, type[Any]] = {}
"""`ctx.shared` key -> type of a state object kept whole (built empty, then loaded by its STATE)."""


def handles_timers(*names: str) -> Callable[[TimerHandler], TimerHandler]:
    """Register the decorated function as the handler of the timers of `names`."""

    def register(handler: TimerHandler) -> TimerHandler:
        for name in names:
            if name in TIMER_HANDLERS:
                raise ValueError(f"timer {name} already has a handler")
            TIMER_HANDLERS[name] = handler
        return handler

    return register


def shared_table(key: str, item: type[Any]) -> None:
    """Declare `ctx.shared[key]` a table of `item`s (a dict by strip, floor, plug or door)."""
    SHARED_TABLES[key] = item


def shared_object(key: str, kind: type[Any]) -> None:
    """Declare `ctx.shared[key]` one state object of `kind`."""
    SHARED_OBJECTS[key] = kind


@dataclass(slots=True)
class ZoneFire:
    """Fire state of one zone: which detectors and heat sensors are in alarm, and the §3 timers."""

    smoke: set[str] = field(default_factory=set)
    heat: set[str] = field(default_factory=set)
    confirmed: bool = False
    manual: bool = False
    """A manual call point or an app report: an input until a person resets the zone."""
    alarm_at: datetime | None = None
    """When the §3 verification sequence started (first smoke or heat alarm)."""
    acknowledged: bool = False
    verdict: bool = False
    tripped_at: datetime | None = None
    """Last interlock trip (a plug cut itself) in the zone: corroboration for a temperature jump."""
    STATE: ClassVar[tuple[str, ...]] = (
        "smoke",
        "heat",
        "confirmed",
        "manual",
        "alarm_at",
        "acknowledged",
        "verdict",
        "tripped_at",
    )

    @property
    def alarmed(self) -> bool:
        return bool(self.smoke or self.heat)


class Ctx:
    """The engine's shared state that rules may read and the one place findings are made."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.open: dict[tuple[str, str], Severity] = {}
        """Open conditions: (rule, subject) -> severity. Persisted by snapshot."""
        self.peaks: dict[tuple[str, str], float] = {}
        """Open conditions -> their worst value so far. Not in the snapshot: after a restart it starts again
        from the next reading, and the alarm keeps the worst it was told before."""
        self.out: list[Finding] = []
        self.timers: list[tuple[datetime, int, str, str]] = []
        """Heap of (due, seq, rule id, key)."""
        self._due: dict[tuple[str, str], datetime] = {}
        self._seq = 0
        self.fire: dict[str, ZoneFire] = {}
        self.devices: dict[str, DeviceState] = {}
        self.shared: dict[str, Any] = {}
        """Cross-device state owned by one rule family (strip sums, floor voltage counts, access book)."""
        self.evaluations = 0
        """How many rule evaluations ran: a structural cost measure for tests."""

    # ---- findings ------------------------------------------------------------------------------

    def set(
        self,
        rule: str,
        subject: str,
        severity: Severity | None,
        zone: str | None,
        value: float | None,
        now: datetime,
        message: str,
        message_zh: str = "",
    ) -> None:
        """Declare the level of a condition; emits RAISE on open or worsening, CLEAR on close."""
        key = (rule, subject)
        current = self.open.get(key)
        if severity is None:
            if current is not None:
                del self.open[key]
                peak = self.peaks.pop(key, None)
                self._emit(rule, Transition.CLEAR, current, subject, zone, value, now, message, message_zh, peak)
            return
        peak = self._worst(key, None if current is None else self.peaks.get(key), value)
        if current is None or SEVERITY_RANK[severity] > SEVERITY_RANK[current]:
            self.open[key] = severity
            self._emit(rule, Transition.RAISE, severity, subject, zone, value, now, message, message_zh, peak)

    def _worst(self, key: tuple[str, str], before: float | None, value: float | None) -> float | None:
        """Keep the worst value of an open condition (a rule whose catalog `Measure` has one)."""
        measure = measure_of(key[0])
        peak = measure.worst(before, value) if measure is not None else None
        if peak is not None:
            self.peaks[key] = peak
        return peak

    def pulse(
        self,
        rule: str,
        subject: str,
        severity: Severity,
        zone: str | None,
        value: float | None,
        now: datetime,
        message: str,
        message_zh: str = "",
    ) -> None:
        """A one-off record (an event, not a condition): RAISE every time, nothing left open."""
        self._emit(rule, Transition.RAISE, severity, subject, zone, value, now, message, message_zh)

    def _emit(
        self,
        rule: str,
        transition: Transition,
        severity: Severity,
        subject: str,
        zone: str | None,
        value: float | None,
        now: datetime,
        message: str,
        message_zh: str,
        peak: float | None = None,
    ) -> None:
        finding = Finding(rule, transition, severity, subject, zone, self.site.id, value, message, now, message_zh,
                          peak)
        self.out.append(finding)

    def is_open(self, rule: str, subject: str) -> bool:
        return (rule, subject) in self.open

    def take(self) -> list[Finding]:
        out, self.out = self.out, []
        return out

    def zone_param(self, zone: str, rule: str, name: str) -> float:
        return param(rule, name, self.site.zone_overrides(zone))

    # ---- timers --------------------------------------------------------------------------------

    def wake(self, due: datetime | None, rule: str, key: str) -> None:
        """Ask for `rule` to be evaluated for `key` at `due` even if nothing arrives (one pending per key)."""
        if due is None:
            return
        slot = (rule, key)
        pending = self._due.get(slot)
        if pending is not None and pending <= due:
            return  # an earlier wake-up is already queued; it will re-schedule if still needed
        self._due[slot] = due
        self._seq += 1
        heapq.heappush(self.timers, (due, self._seq, rule, key))

    def pending_timers(self) -> dict[tuple[str, str], datetime]:
        """(rule, key) -> when it is due, one per slot (for snapshots)."""
        return dict(self._due)

    def clear_timers(self) -> None:
        self.timers, self._due, self._seq = [], {}, 0

    def due_timers(self, now: datetime) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        while self.timers and self.timers[0][0] <= now:
            due, _, rule, key = heapq.heappop(self.timers)
            if self._due.get((rule, key)) == due:
                del self._due[(rule, key)]
                out.append((rule, key))
        return out

    # ---- fire state ----------------------------------------------------------------------------

    def zone_fire(self, zone: str) -> ZoneFire:
        state = self.fire.get(zone)
        if state is None:
            state = self.fire[zone] = ZoneFire()
        return state

    def fire_in_zone(self, zone: str) -> bool:
        state = self.fire.get(zone)
        return state is not None and (state.alarmed or state.confirmed)

    def fire_anywhere(self) -> bool:
        return any(s.alarmed or s.confirmed for s in self.fire.values())

    def evacuating(self, floor: str) -> bool:
        return self.is_open("evac.notice", floor)

"""Egress and door rules, RULES.md §2.3 (`door.*`).

door.fire_release_zone / door.fire_release_floor: the fire rules call `release` with the egress doors
to unlock; the services send the unlock commands (they read `Site.egress_doors` /
`Site.egress_doors_on_floor`). This module watches the read-back: a door that does not report
unlocked (reading `door_locked=false` or event `door_unlocked`, heard after the release, or at most
RECENT_UNLOCK before it from a controller online: the fire panel dropped the maglocks just before; an older
"unlocked" proves nothing) within 10 s raises the rule, critical,
with "疏散门未释放,立即人工开启". Doors stay released until `RuleEngine.reset_door_release`.

door.egress_controller_offline is supervision (see `supervision.py`). Picks made here ("ours"):
door.forced_open from readings uses a 10 s access window before the door opened, a 1 s grant tolerance
after it (see `ForcedOpen`) and clears when the door closes; door.held_open and door.forced_open are not
raised while the door is fire-released.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from gateway.contract import Event, EventType, Severity
from server.domain.rules.base import Ctx, DeviceState, Rule, handles_timers, shared_table
from server.domain.rules.blocks import flag
from server.domain.rules.generic import One, TamperRule
from server.domain.site import Device, DeviceKind, DoorType, Site
from server.domain.staffing import floor_staffed

DOOR = frozenset({DeviceKind.DOOR_CONTROLLER})
RELEASE_ZH = "疏散门未释放,立即人工开启"
RECENT_UNLOCK = timedelta(seconds=10)
"""An "unlocked" report this recent at the release confirms it (the fire panel dropped the maglocks
seconds before the smoke alarm reached us, and the controller reports only changes)."""


@dataclass(slots=True)
class Release:
    """One egress door that a fire rule asked to unlock."""

    rule: str
    at: datetime
    unlocked: bool = False
    STATE: ClassVar[tuple[str, ...]] = ("rule", "at", "unlocked")


shared_table("door.release", Release)


def releases(ctx: Ctx) -> dict[str, Release]:
    table: dict[str, Release] = ctx.shared.setdefault("door.release", {})
    return table


def released(ctx: Ctx, door: str) -> bool:
    return door in ctx.shared.get("door.release", {})


def release(ctx: Ctx, doors: list[Device], rule: str, now: datetime) -> None:
    """Start watching the read-back of `doors` (the services send the unlock commands)."""
    table = releases(ctx)
    for door in doors:
        if door.id in table:
            continue  # already released (zone first, then floor): one read-back is enough
        dev = ctx.devices[door.id]
        # A report heard after the release confirms it (as the edge confirms its command), or one from just
        # before it: an older "unlocked" may be a badge's, the door may have locked since, its controller
        # be offline.
        table[door.id] = Release(rule, now, _unlocked_just_now(dev, now))
        ctx.wake(now + timedelta(seconds=dev.p(rule, "readback_s")), rule, door.id)


@handles_timers("door.fire_release_zone", "door.fire_release_floor")
def check_release(ctx: Ctx, door: str, now: datetime) -> None:
    """Timer: the read-back deadline of one door has passed."""
    entry = releases(ctx).get(door)
    if entry is None or entry.unlocked:
        return
    device = ctx.site.devices[door]
    ctx.set(
        entry.rule,
        door,
        Severity.CRITICAL,
        device.zone,
        None,
        now,
        f"Egress door {door} did not release: open it by hand now",
        RELEASE_ZH,
    )


def reset_release(ctx: Ctx, door: str, now: datetime) -> None:
    """A person reset the door after the evacuation (doors relock only by manual reset)."""
    entry = releases(ctx).pop(door, None)
    if entry is not None:
        device = ctx.site.devices[door]
        ctx.set(entry.rule, door, None, device.zone, None, now, "Door release reset by hand")


@dataclass(slots=True)
class ReadBack:
    unlocked_at: datetime | None = None
    """When the controller last reported unlocked; None once it reported locked."""
    STATE: ClassVar[tuple[str, ...]] = ("unlocked_at",)


def _unlocked_just_now(dev: DeviceState, now: datetime) -> bool:
    """The door's controller, online, reported unlocked at most RECENT_UNLOCK ago and not locked since."""
    st = dev.state.get(ReleaseReadBack.id)
    at = st.unlocked_at if isinstance(st, ReadBack) else None
    return (at is not None and not dev.offline and not dev.flag("door_locked")
            and timedelta(0) <= now - at <= RECENT_UNLOCK)


class ReleaseReadBack(Rule):
    id = "door.fire_release_zone"
    kinds = DOOR
    metrics = frozenset({"door_locked"})
    events = frozenset({EventType.DOOR_UNLOCKED, EventType.DOOR_LOCKED})

    def applies(self, device: Device, site: Site) -> bool:
        return device.door_type is DoorType.EGRESS

    def new_state(self, dev: DeviceState) -> ReadBack:
        return ReadBack()

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        if "door_locked" not in dev.last:
            return
        st: ReadBack = dev.state[self.id]
        st.unlocked_at = None if dev.flag("door_locked") else now
        entry = releases(ctx).get(dev.id)
        if entry is None:
            return
        entry.unlocked = not dev.flag("door_locked")
        deadline = entry.at + timedelta(seconds=dev.p(entry.rule, "readback_s"))
        if entry.unlocked:
            ctx.set(entry.rule, dev.id, None, dev.zone, None, now, "Egress door released")
        elif now >= deadline:
            check_release(ctx, dev.id, now)
        else:  # locked again before the deadline (an unlock seen at the release was a badge's): judge it then
            ctx.wake(deadline, entry.rule, dev.id)

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        self.flag_event(ctx, dev, now, "door_locked", event.type is EventType.DOOR_LOCKED)


def _is_mr_door(ctx: Ctx, dev: DeviceState) -> bool:
    return dev.device.door_type is DoorType.MACHINE_ROOM or ctx.site.is_machine_room(dev.zone)


@dataclass(slots=True)
class Held(One):
    forced: bool = False
    STATE: ClassVar[tuple[str, ...]] = ("t", "forced")


class _OpenTooLong(Rule):
    """A door open for longer than the rule's `hold_s`, from the door sensor or the controller's events."""

    kinds = DOOR
    metrics = frozenset({"door_open"})
    events = frozenset({EventType.DOOR_OPENED, EventType.DOOR_CLOSED, EventType.DOOR_HELD_OPEN})

    def new_state(self, dev: DeviceState) -> Held:
        return Held(flag(dev.p(self.id, "hold_s")))

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        self.flag_event(ctx, dev, now, "door_open", event.type is not EventType.DOOR_CLOSED)


class HeldOpen(_OpenTooLong):
    id = "door.held_open"
    message = "Door held open"
    message_zh = "门长时间未关闭"

    def applies(self, device: Device, site: Site) -> bool:
        return device.door_type is not DoorType.FIRE_DOOR

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: Held = dev.state[self.id]
        is_open = dev.flag("door_open") and not released(ctx, dev.id)
        if not is_open:
            st.forced = False
        st.t.step(1.0 if is_open else 0.0, now)
        active = st.t.active or (st.forced and is_open)
        severity = Severity.MAJOR if _is_mr_door(ctx, dev) else Severity.WARNING
        self.set(ctx, dev, severity if active else None, now)

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        if event.type is EventType.DOOR_HELD_OPEN:
            dev.state[self.id].forced = True  # the controller's own timer ran out: trust it
        super().on_event(ctx, dev, event, now)


class FireDoorHeldOpen(_OpenTooLong):
    id = "door.fire_door_held_open"
    message = "Normally closed fire door held open"
    message_zh = "常闭防火门未关闭"

    def applies(self, device: Device, site: Site) -> bool:
        return device.door_type is DoorType.FIRE_DOOR

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: Held = dev.state[self.id]
        evacuating = ctx.evacuating(ctx.site.floor_of(dev.device))
        st.t.step(1.0 if dev.flag("door_open") and not evacuating else 0.0, now)
        self.set(ctx, dev, Severity.MAJOR if st.t.active else None, now)


@dataclass(slots=True)
class Forced:
    last_access: datetime | None = None
    was_open: bool = False
    undecided_until: datetime | None = None
    """An open with no grant yet: server time until which a grant reported late still counts."""
    STATE: ClassVar[tuple[str, ...]] = ("last_access", "was_open", "undecided_until")

    def due(self) -> datetime | None:
        return self.undecided_until


class ForcedOpen(Rule):
    """door.forced_open: the door opened while locked with no grant or request-to-exit within the access
    window before it (10 s, ours), or the controller itself said `door_forced` (raised at once: the panel
    knows its own grants). Major; critical on a machine-room door or while the door's FLOOR is unstaffed
    (RULES.md §2.3 "while floor unstaffed": anyone rostered in any zone of the floor, `staffing.py`),
    never the door's own zone. Clears when the door closes; suppressed while the door is fire-released.

    Grant tolerance (ours, `grant_tolerance_s`, 1 s). A controller may report the door open before the
    grant that let the person in (same instant, two MQTT topics), and an older edge sent readings before
    events. The edge now keeps each device's order and ingest applies a drain's items in time order, but
    an open reported first can still come a drain ahead of its grant. Like an access panel's entry delay,
    an open with no grant is decided `grant_tolerance_s` of server time after it was heard: a grant or
    exit request heard by then makes it a normal entry, otherwise the alarm is raised then (and cleared
    at once if the door has shut meanwhile: a forced door that closed again is still a forced door).
    Server time, not the devices' timestamps, so that a skewed edge clock neither shortens nor stretches
    the tolerance. The cost: a forced door with no `door_forced` of its own is raised up to the tolerance
    plus one engine tick (1 s) after it opened, instead of at once.
    """

    id = "door.forced_open"
    kinds = DOOR
    metrics = frozenset({"door_open"})
    events = frozenset(
        {
            EventType.DOOR_FORCED,
            EventType.ACCESS_GRANTED,
            EventType.REQUEST_TO_EXIT,
            EventType.DOOR_OPENED,
            EventType.DOOR_CLOSED,
        }
    )
    message = "Door forced open"
    message_zh = "门被强行打开"

    def new_state(self, dev: DeviceState) -> Forced:
        return Forced()

    def _severity(self, ctx: Ctx, dev: DeviceState, now: datetime) -> Severity:
        unstaffed = not floor_staffed(ctx.site, ctx.site.floor_of(dev.device), now)
        return Severity.CRITICAL if _is_mr_door(ctx, dev) or unstaffed else Severity.MAJOR

    def evaluate(self, ctx: Ctx, dev: DeviceState, now: datetime, sample: bool) -> None:
        st: Forced = dev.state[self.id]
        heard = max(now, dev.seen or now)  # server time: `now` is the device's time on a reading
        is_open = dev.flag("door_open")
        if is_open and not st.was_open and dev.flag("door_locked") and not released(ctx, dev.id):
            window = timedelta(seconds=dev.p(self.id, "access_window_s"))
            if st.last_access is None or now - st.last_access > window:
                st.undecided_until = heard + timedelta(seconds=dev.p(self.id, "grant_tolerance_s"))
        if st.undecided_until is not None and heard >= st.undecided_until:
            st.undecided_until = None
            if not released(ctx, dev.id):
                self.set(ctx, dev, self._severity(ctx, dev, now), now)
        if not is_open:
            self.set(ctx, dev, None, now)
        st.was_open = is_open

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        st: Forced = dev.state[self.id]
        if event.type in (EventType.ACCESS_GRANTED, EventType.REQUEST_TO_EXIT):
            st.last_access = now
            if st.undecided_until is not None and (dev.seen or now) <= st.undecided_until:
                st.undecided_until = None  # the grant came with the open, reported a moment late
        elif event.type is EventType.DOOR_FORCED:
            st.was_open = True
            st.undecided_until = None
            dev.last["door_open"] = 1.0
            if not released(ctx, dev.id):
                self.set(ctx, dev, self._severity(ctx, dev, now), now)
        else:
            dev.last["door_open"] = 1.0 if event.type is EventType.DOOR_OPENED else 0.0
            self.evaluate(ctx, dev, now, True)


class DoorTamper(TamperRule):
    id = "door.tamper"
    kinds = DOOR
    message = "Door controller tamper"
    message_zh = "门禁控制器被拆动"


RULES: tuple[Rule, ...] = (ReleaseReadBack(), HeldOpen(), FireDoorHeldOpen(), ForcedOpen(), DoorTamper())

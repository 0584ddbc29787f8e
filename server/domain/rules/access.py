"""Access and badge rules, RULES.md §2.4 (`access.*`), evaluated on door-controller events.

Inputs the server gets elsewhere, passed in through `RuleEngine`:
- `on_hr_feed(leavers, active_badges, now)`: the HR leaver feed (person id -> effective leave time)
  and the access system's list of active badges. Feeds access.leaver_badge_active and the revoked list
  of access.revoked_badge_used (a leaver's badge after the leave time).
- `on_approvals(approvals, now)`: visitor and machine-room approvals (`Approval`). Feeds
  access.visitor_unapproved, access.visitor_overstay and access.mr_unlisted.

Subjects are person ids, or for an unknown card a short hash ("card-1a2b3c4d5e6f"): badge numbers
never appear in findings. Event-like rules (revoked_badge_used, mr_unlisted) are one-off records
(a RAISE per presentation, nothing to clear: a person closes them). access.mr_entry_notice is an
informational warning that clears itself at once (RAISE then CLEAR), so the entrant gets one push.
Picks made here ("ours"): visitor_unescorted counts the visitor's host, or anyone with the role
`reception`, granted at the same door within 30 s before or after (an entry: a grant with direction `out`
is that person leaving, never an escort); it clears when that escort arrives later or when the visitor
leaves. Its 30 s run in server time from when the visitor's grant was heard (a controller's lagging
clock must not shorten them). visitor_overstay is judged at the end of the approval that covers the
entry, also when that approval was extended after the entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from gateway.contract import Event, EventType, Severity
from server.domain.rules.base import Ctx, DeviceState, Rule, TimerHandler, handles_timers, shared_object
from server.domain.site import DeviceKind, DoorType, Person, badge_key
from server.domain.thresholds import param

DOOR = frozenset({DeviceKind.DOOR_CONTROLLER})


@dataclass(frozen=True, slots=True)
class Approval:
    """An approved visit, or an approved machine-room entry, for one person in [start, end)."""

    person: str
    start: datetime
    end: datetime
    machine_room: bool = False


@dataclass(slots=True)
class Book:
    """Cross-door access state: recent denials, grants, visitors inside, approvals, leavers."""

    denials: dict[str, list[datetime]] = field(default_factory=dict)
    """Card key or "door:<id>" -> times of recent denials."""
    grants: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)
    """Door -> recent (time, person id) grants, for escort pairing."""
    pending_escort: dict[str, list[str | datetime]] = field(default_factory=dict)
    """Visitor -> [door, granted at] waiting for an escort."""
    inside: dict[str, datetime] = field(default_factory=dict)
    """Visitor -> when they entered."""
    approvals: list[tuple[str, datetime, datetime, bool]] = field(default_factory=list)
    leavers: dict[str, datetime] = field(default_factory=dict)
    STATE: ClassVar[tuple[str, ...]] = (
        "denials",
        "grants",
        "pending_escort",
        "inside",
        "approvals",
        "leavers",
    )

    def approved(self, person: str, at: datetime, machine_room: bool) -> bool:
        return any(p == person and s <= at < e and (m or not machine_room) for p, s, e, m in self.approvals)

    def approval_end(self, person: str, at: datetime) -> datetime | None:
        ends = [e for p, s, e, _ in self.approvals if p == person and s <= at < e]
        return max(ends) if ends else None


shared_object("access", Book)


def book(ctx: Ctx) -> Book:
    found = ctx.shared.get("access")
    if found is None:
        found = ctx.shared["access"] = Book()
    assert isinstance(found, Book)
    return found


def card_key(badge: str) -> str:
    """A stable, non-reversible name for a card that is not in the site file."""
    return "card-" + hashlib.sha256(badge_key(badge).encode()).hexdigest()[:12]


class Access(Rule):
    """All §2.4 rules that react to one badge event at a door (one pass, one lookup of the person)."""

    id = "access.events"
    kinds = DOOR
    events = frozenset({EventType.ACCESS_GRANTED, EventType.ACCESS_DENIED})

    def on_event(self, ctx: Ctx, dev: DeviceState, event: Event, now: datetime) -> None:
        if event.badge is None:
            return
        person = ctx.site.person_with_badge(event.badge)
        who = person.id if person is not None else card_key(event.badge)
        b = book(ctx)
        mr_door = dev.device.door_type is DoorType.MACHINE_ROOM or ctx.site.is_machine_room(dev.zone)
        leave = b.leavers.get(person.id) if person is not None else None
        if leave is not None and leave <= now:
            ctx.pulse(
                "access.revoked_badge_used",
                who,
                Severity.MAJOR,
                dev.zone,
                None,
                now,
                f"Revoked badge presented at {dev.id}: retain the card",
                f"已注销的工作牌在 {dev.id} 刷卡：扣留该卡",
            )
        if event.type is EventType.ACCESS_DENIED:
            self._denied(ctx, dev, who, mr_door, now)
            return
        if person is not None and person.is_visitor:
            self._visitor(ctx, dev, person, event, now)
        elif person is not None and event.direction != "out":
            self._escort(ctx, dev, person, now)  # a host badging out is leaving, not escorting anyone in
        if mr_door and event.direction != "out":
            if person is None or not (person.mr_access or b.approved(person.id, now, machine_room=True)):
                ctx.pulse(
                    "access.mr_unlisted",
                    who,
                    Severity.MAJOR,
                    dev.zone,
                    None,
                    now,
                    "Machine-room entry by a person not on the machine-room list",
                    "非机房准入名单人员进入机房",
                )
            ctx.set(
                "access.mr_entry_notice",
                who,
                Severity.WARNING,
                dev.zone,
                None,
                now,
                "No food, drinks or flammable items in the machine room",
                "机房禁止携带食品、饮品及易燃易爆物品",
            )
            ctx.set("access.mr_entry_notice", who, None, dev.zone, None, now, "Notice delivered")

    def _denied(self, ctx: Ctx, dev: DeviceState, who: str, mr_door: bool, now: datetime) -> None:
        rule = "access.denied_repeat"
        window = timedelta(seconds=dev.p(rule, "window_s"))
        limit = dev.p(rule, "count")
        b = book(ctx)
        for key, subject in ((who, who), ("door:" + dev.id, dev.id)):
            times = [t for t in b.denials.get(key, []) if now - t < window] + [now]
            b.denials[key] = times
            if len(times) >= limit:
                ctx.set(
                    rule,
                    subject,
                    Severity.MAJOR if mr_door else Severity.MINOR,
                    dev.zone,
                    len(times),
                    now,
                    f"{len(times)} access denials within {window.seconds // 60} min",
                    f"{window.seconds // 60} 分钟内门禁拒绝 {len(times)} 次",
                )
            ctx.wake(times[0] + window, rule, key)

    def _visitor(self, ctx: Ctx, dev: DeviceState, visitor: Person, event: Event, now: datetime) -> None:
        b = book(ctx)
        if event.direction == "out":
            b.inside.pop(visitor.id, None)
            b.pending_escort.pop(visitor.id, None)
            ctx.set("access.visitor_unescorted", visitor.id, None, dev.zone, None, now, "Visitor left")
            ctx.set("access.visitor_overstay", visitor.id, None, dev.zone, None, now, "Visitor left")
            return
        if not b.approved(visitor.id, now, machine_room=False):
            ctx.set(
                "access.visitor_unapproved",
                visitor.id,
                Severity.MAJOR,
                dev.zone,
                None,
                now,
                "Visitor granted entry without an approval from the department head",
                "需经部门负责人批准",
            )
        b.inside[visitor.id] = now
        end = b.approval_end(visitor.id, now)
        if end is not None:
            ctx.wake(
                end + timedelta(seconds=dev.p("access.visitor_overstay", "grace_s")),
                "access.visitor_overstay",
                visitor.id,
            )
        escort_s = timedelta(seconds=dev.p("access.visitor_unescorted", "escort_s"))
        recent = [p for t, p in b.grants.get(dev.id, []) if now - t <= escort_s]
        if not any(_escorts(ctx, p, visitor) for p in recent):
            b.pending_escort[visitor.id] = [dev.id, now]
            # server time (when the grant was heard), not the controller's: a lagging controller clock
            # would put the deadline in the past and raise the alarm before the escort could badge in
            heard = max(now, dev.seen or now)
            ctx.wake(heard + escort_s, "access.visitor_unescorted", visitor.id)

    def _escort(self, ctx: Ctx, dev: DeviceState, person: Person, now: datetime) -> None:
        b = book(ctx)
        escort_s = timedelta(seconds=dev.p("access.visitor_unescorted", "escort_s"))
        grants = [(t, p) for t, p in b.grants.get(dev.id, []) if now - t <= escort_s]
        b.grants[dev.id] = [*grants, (now, person.id)]
        for visitor_id, (door, _) in list(b.pending_escort.items()):
            if door == dev.id and _escorts(ctx, person.id, ctx.site.people[visitor_id]):
                del b.pending_escort[visitor_id]
                ctx.set("access.visitor_unescorted", visitor_id, None, dev.zone, None, now, "Escort arrived")


def _escorts(ctx: Ctx, person_id: str, visitor: Person) -> bool:
    return person_id == visitor.host or "reception" in ctx.site.people[person_id].roles


def timer(ctx: Ctx, rule: str, key: str, now: datetime) -> None:
    """Timers of the access rules (keys are card keys, "door:<id>", or visitor ids)."""
    b = book(ctx)
    if rule == "access.denied_repeat":
        subject = key.removeprefix("door:")
        door = ctx.devices.get(subject)
        window = timedelta(seconds=door.p(rule, "window_s") if door else param(rule, "window_s"))
        limit = door.p(rule, "count") if door else param(rule, "count")
        times = [t for t in b.denials.get(key, []) if now - t < window]
        if times:
            b.denials[key] = times
        else:
            b.denials.pop(key, None)
        if len(times) < limit:
            ctx.set(rule, subject, None, None, len(times), now, "Denials fell below the limit")
        else:
            ctx.wake(times[0] + window, rule, key)
    elif rule == "access.visitor_unescorted":
        pending = b.pending_escort.get(key)
        if pending is not None:
            where = ctx.site.devices[str(pending[0])]
            ctx.set(
                rule,
                key,
                Severity.MAJOR,
                where.zone,
                None,
                now,
                "Visitor entered without an escort",
                "由接待人员陪同",
            )
    elif rule == "access.visitor_overstay":
        entered = b.inside.get(key)
        if entered is None:
            return
        end = b.approval_end(key, entered)
        grace = timedelta(seconds=param(rule, "grace_s"))
        if end is None or now >= end + grace:
            ctx.set(
                rule, key, Severity.MINOR, None, None, now, "Visitor still inside after the approved window",
                "访客超出批准时段仍在场内",
            )
        else:  # the visit was extended after the entry: judge it at the new end
            ctx.wake(end + grace, rule, key)


def _timer_of(rule: str) -> TimerHandler:
    def run(ctx: Ctx, key: str, now: datetime) -> None:
        timer(ctx, rule, key, now)

    return run


for _rule in ("access.denied_repeat", "access.visitor_unescorted", "access.visitor_overstay"):
    handles_timers(_rule)(_timer_of(_rule))


def on_approvals(ctx: Ctx, approvals: Iterable[Approval], now: datetime) -> None:
    b = book(ctx)
    b.approvals = [(a.person, a.start, a.end, a.machine_room) for a in approvals]
    for rule, subject in list(ctx.open):
        if rule == "access.visitor_unapproved" and b.approved(subject, now, machine_room=False):
            ctx.set(rule, subject, None, None, None, now, "Approval recorded")


def on_hr_feed(
    ctx: Ctx, leavers: Mapping[str, datetime], active_badges: Collection[str], now: datetime
) -> None:
    """access.leaver_badge_active: a leaver's badge still active after the effective leave time."""
    rule = "access.leaver_badge_active"
    b = book(ctx)
    b.leavers = {p: t for p, t in leavers.items() if p in ctx.site.people}
    active = set(active_badges)
    still = set()
    for person_id, leave in b.leavers.items():
        badge = ctx.site.people[person_id].badge
        if leave <= now and badge is not None and badge in active:
            still.add(person_id)
            ctx.set(
                rule,
                person_id,
                Severity.MAJOR,
                _home_zone(ctx, person_id),
                None,
                now,
                "Leaver's badge still active: revoke it; the department head collects the badge",
                "工作牌交回部门负责人",
            )
    for r, subject in list(ctx.open):
        if r == rule and subject not in still:
            ctx.set(rule, subject, None, None, None, now, "Badge revoked")


def _home_zone(ctx: Ctx, person_id: str) -> str | None:
    """The zone a person is rostered in (the first entry), so the alarm reaches that zone's lead; None if unrostered."""
    return next((entry.zone for entry in ctx.site.config.roster if entry.person == person_id), None)


RULES: tuple[Rule, ...] = (Access(),)

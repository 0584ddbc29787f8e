"""Evacuations: triggers, effects, roll call, all-clear, drill report (RULES.md §2.2, §2.3, §3, §5).

Triggers: an evac.notice alarm from the rule engine (fire.confirmed, mr.smoke; a manual call point
goes through fire.manual_report -> fire.confirmed), or `start(...)` from `POST /api/evacuations`
(manual or drill). A fire.smoke_alarm releases the egress doors of its zone (door.fire_release_zone).

Effects of `start`, in this order:
1. the evacuation row (id `ev-N`), then the retained EvacuationNotice on
   `floorwatch/v1/{site}/notices/evacuation` (floor displays, sirens, door controllers);
2. for manual and drill starts, the engine's evac.notice and floor door release are set through
   `Ingest.call` (fire starts already did it), so the engine's 10 s read-back watch covers every door:
   a door not reported unlocked in 10 s is a critical door.fire_release_* alarm of its own;
3. door_release Commands (30 s expiry) to every egress door on the floor;
4. on a real fire (not a drill): relay_off to every cuttable, non-essential plug of the fire zone;
5. pushes: everyone on the floor (rostered now, or inside by badge) gets the notice; emergency command
   and the four groups get it with their tasks (§5); the 119 prompt only when it is not a drill.
Doors stay released after the all-clear until a person secures them (`secure_door`).

Under a lease (several workers) every write here runs the lease's fence first in its transaction, and
the notice is published only after that commit: a worker whose lease was taken neither starts nor ends
an evacuation (LeaseLost; the API answers 503); its door commands are fenced by CommandService.

The roll call reads the access log that server/services/access_log.py writes; the access log tells
`on_access` of each batch, so a person who badges in to an evacuated machine room is told to leave it.
A machine room whose probe still reads smoke or is offline since stays not clear after the floor's
all-clear (server/domain/machine_room.py): the all-clear says so and its people keep the instruction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from gateway import contract
from server.domain import alarms as domain
from server.domain import evacuation as evac
from server.domain import machine_room
from server.domain import notify as routing
from server.domain.findings import Finding
from server.domain.policy import Permission, holds
from server.domain.rules import RuleEngine
from server.domain.rules import doors as door_rules
from server.domain.rules import fire as fire_rules
from server.domain.site import Site
from server.services.commands import CommandService, EngineCaller
from server.services.fire_verification import FIRE_PAGES
from server.services.notify import NotificationService, Push
from server.services.ports import EvacuationStore

log = logging.getLogger(__name__)

WITHDRAW_TRIES = 10
WITHDRAW_BACKOFF_MAX_S = 30.0
"""The all-clear's withdrawal of unsent notices, when it fails: tried again 1, 2, 4 … s later, at most this."""


class EvacuationError(ValueError):
    pass


def is_drill_alarm(alarm: domain.Alarm) -> bool:
    """Whether an alarm's pages are a drill's: its current words carry the drill mark. Everything a
    drill raises is marked (the engine's fire.manual_report and fire.confirmed, the drill's evac.notice);
    a real fire raises the same alarm again unmarked (server/domain/alarms.py takes the new words), so
    an unmarked alarm is real even on a floor whose evacuation is still a drill."""
    return evac.is_drill_text(alarm.message_zh, alarm.message)


class EvacuationService:
    def __init__(self, store: EvacuationStore, site: Site, clock: Callable[[], datetime],
                 commands: CommandService, notify: NotificationService | None,
                 publish_notice: Callable[[contract.EvacuationNotice], None],
                 engine_call: EngineCaller | None, base_url: str = "http://localhost:8000",
                 open_alarms: Callable[[], Iterable[domain.Alarm]] = tuple) -> None:
        self.store = store
        """Its transactions run the partition lease's check first (when the process holds a lease): those
        that start, end or mark an evacuation."""
        self.site = site
        self.clock = clock
        self.commands = commands
        self.notify = notify
        self.publish_notice = publish_notice
        self.engine_call = engine_call
        self.base_url = base_url
        self.open_alarms = open_alarms
        """The open alarms: whether a machine room is clear after its smoke (server/domain/machine_room.py)."""
        self._lock = threading.RLock()
        self._first_fire_at: dict[str, datetime] = {}
        """Zone -> when its first fire alarm was raised: t=0 of the §3 sequence, for time to notice."""

    # -- triggers --------------------------------------------------------------------------------------

    def on_alarm(self, alarm: domain.Alarm) -> None:
        """AlarmService listener (ingest thread, after commit). Idempotent: a transition dispatched again
        after a crash (services/recovery.py) starts no second evacuation and sends no door release twice."""
        if alarm.state is not domain.AlarmState.ACTIVE:
            return
        if alarm.rule == "evac.notice" and self._notice_floor(alarm) is not None and not is_drill_alarm(alarm):
            self._real_fire_ends_drill(alarm)  # before the one-raise check: the drill's notice raised again
        if alarm.rule == "evac.notice":
            zone = alarm.zone if alarm.zone in self.site.zones else None
            floor = self._notice_floor(alarm)
            # Raised again (occurrences > 1): the notice came back after an all-clear cleared it, before
            # anyone acknowledged that alarm: a new evacuation, unless one is active (`start` joins it).
            if floor is None or (alarm.occurrences == 1 and self._started_for(floor, alarm)):
                return
            # a machine room's own notice (mr.smoke) says "leave the machine room": the floor gets its own
            # words, the people in the machine room that instruction (`_push`)
            own = alarm.subject in self.site.zones and self.site.is_machine_room(alarm.subject)
            self.start(floor, zone, drill=False, trigger=alarm.rule, reason=alarm.message, who="system",
                       engine_done=True, message=None if own else (alarm.message_zh, alarm.message),
                       triggered_at=self._triggered_at(alarm, zone))
        elif alarm.rule in FIRE_PAGES and alarm.zone in self.site.zones:
            # a latched alarm still open from a previous sequence keeps its first raise: then t=0 is now
            self._first_fire_at.setdefault(alarm.zone, alarm.raised_at if alarm.occurrences == 1 else self.clock())
            # this raise's releases only: a latched alarm raised again (a new episode) releases again
            released = {c["device"] for c in self.commands.commands(ref=f"alarm:{alarm.id}")
                        if c["issued_at"] >= alarm.raised_at}
            for door in self.site.egress_doors(alarm.zone):
                if door.id in released and not self._secured(door.id):
                    continue
                self.commands.send(door.id, contract.Action.DOOR_RELEASE,
                                   f"door.fire_release_zone {alarm.rule} alarm {alarm.id}", "system",
                                   ref=f"alarm:{alarm.id}")

    def _notice_floor(self, alarm: domain.Alarm) -> str | None:
        """The floor an evac.notice evacuates: its subject (a floor), or the floor of its subject zone (a
        machine room's own notice, mr.smoke)."""
        if alarm.subject in self.site.floors:
            return alarm.subject
        return self.site.zones[alarm.subject].floor if alarm.subject in self.site.zones else None

    def _real_fire_ends_drill(self, alarm: domain.Alarm) -> None:
        """A real fire's evac.notice on a floor in a drill (the floor's, or a machine room's: smoke there is
        never a drill's): the drill ends there (its row is all clear, by "system: real fire", no all-clear
        notice) and a real evacuation starts with the fire's words, its plug cuts, its pushes (the machine
        room told to leave it) and the 119 prompt. Idempotent: afterwards the floor's evacuation is real."""
        floor = self._notice_floor(alarm)
        if floor is None:
            return
        with self._lock:
            current = self.active(floor)
            if current is None or not current["drill"]:
                return
            self._end_drill(current, "system: real fire", {"alarm": alarm.id})
        zone = alarm.zone if alarm.zone in self.site.zones else None
        own = alarm.subject in self.site.zones  # a machine room's notice: the floor gets the floor's words
        self.start(floor, zone, drill=False, trigger=alarm.rule, reason=alarm.message, who="system",
                   engine_done=True, message=None if own else (alarm.message_zh, alarm.message),
                   triggered_at=self._triggered_at(alarm, zone))

    def _triggered_at(self, alarm: domain.Alarm, zone: str | None) -> datetime:
        """t=0 of an evac.notice's sequence: the zone's first fire alarm since the last all-clear, else the
        notice's raise. A notice raised again from cleared_unacked keeps its first raise (docs/alarms.md:
        the same alarm, one more occurrence), which belongs to the previous evacuation: then now."""
        first = self._first_fire_at.get(zone) if zone is not None else None
        raised = alarm.raised_at if alarm.occurrences == 1 else self.clock()
        return min(first, raised) if first is not None else raised

    def _secured(self, door: str) -> bool:
        """Whether a person secured the door after its last release: a latched alarm that nobody acknowledged
        keeps its raise while its detector resets (the door may be secured then) and its smoke comes back."""
        last = self.commands.commands(device=door, limit=1)
        return bool(last) and last[0]["action"] == contract.Action.DOOR_SECURE.value

    def _end_drill(self, ev: dict[str, Any], by: str, detail: dict[str, Any]) -> None:
        """A real fire or a real evacuation on a floor in a drill: the drill's row is all clear (no all-clear
        notice: the real evacuation's notice replaces it)."""
        now = self.clock()
        with self.store.transaction() as tx:
            tx.end(ev["id"], now, by)
            tx.audit("system", "evacuation.drill_ended_by_fire", ev["id"], {"floor": ev["floor"], **detail}, now)
        # a drill notice still waiting for its retry would reach people during the real evacuation; withdrawn
        # in the background, as the caller holds the lock the real evacuation's start waits for
        threading.Thread(target=self._withdraw, args=(ev["id"], f"not sent: drill {ev['id']} ended by {by}"),
                         name=f"withdraw-{ev['id']}", daemon=True).start()

    def _started_for(self, floor: str, alarm: domain.Alarm) -> bool:
        """Whether this evac.notice alarm already has its evacuation: one of its floor started by
        evac.notice at or after the alarm's raise (an earlier alarm's evacuation was issued before it)."""
        return self.store.started_since(floor, "evac.notice", alarm.raised_at)

    def active(self, floor: str) -> dict[str, Any] | None:
        current = self.store.active_on(floor)
        return _row(current) if current is not None else None

    def start(self, floor: str, fire_zone: str | None, *, drill: bool, trigger: str, reason: str, who: str,
              engine_done: bool = False, message: tuple[str, str] | None = None,
              triggered_at: datetime | None = None) -> dict[str, Any]:
        if floor not in self.site.floors:
            raise EvacuationError(f"unknown floor {floor!r}")
        if fire_zone is not None and fire_zone not in self.site.zones:
            raise EvacuationError(f"unknown zone {fire_zone!r}")
        took_over = False
        with self._lock:
            current = self.active(floor)
            if current is not None and current["drill"] and not drill and trigger != "evac.notice":
                # a person's real evacuation asked for during a drill (a real fire seen): never joined to the
                # drill. An evac.notice joins: the drill's own notice is marked, a real fire's already ended
                # the drill (`_real_fire_ends_drill`).
                self._end_drill(current, f"{who}: real evacuation", {"trigger": trigger, "reason": reason})
                current, took_over = None, True
            if current is not None:
                # one evacuation per floor: a fire confirmed during a manual one joins it; smoke in a machine
                # room joins it too, but whoever is in that room is told to leave it now
                if (fire_zone is not None and not drill and not current["drill"]
                        and self.site.is_machine_room(fire_zone)):
                    self._tell_machine_room(current, fire_zone)
                return current
            now = self.clock()
            zh, en = evac.notice_text(self.site, floor, fire_zone, drill)
            if message is not None and message[0] and not drill:
                zh, en = message
            zones = [z.id for z in self.site.zones_on_floor(floor)]
            with self.store.transaction() as tx:
                ev_id = f"ev-{tx.count() + 1}"
                tx.add(evac.EvacuationRecord(ev_id, self.site.id, floor, tuple(zones), fire_zone, drill, "active",
                                             trigger, reason[:500], triggered_at or now, now, who, zh, en))
                tx.audit(who, "evacuation.start", ev_id,
                         {"floor": floor, "drill": drill, "trigger": trigger, "reason": reason}, now)
            ev = self.get(ev_id)
            self._publish(ev)
        self._effects(ev, engine_done, who, publish=False, took_over_drill=took_over)
        return self.get(ev_id)

    def resume(self) -> int:
        """At start-up: a crash inside `start` (its row committed, its effects not all out) must not leave
        an evacuation without its notice, doors, cuts or pushes. Every active evacuation's effects again,
        each only where missing: the retained notice (the same one), door releases and cuts not yet
        commanded under its id, pushes by their outbox keys. Returns how many evacuations were active."""
        active = [_row(r) for r in self.store.active()]
        for ev in active:
            self._effects(ev, engine_done=ev["trigger"] == "evac.notice", who="system")
        return len(active)

    def _publish(self, ev: dict[str, Any]) -> None:
        self.publish_notice(contract.EvacuationNotice(
            id=ev["id"], site=self.site.id, zones=ev["zones"], state=contract.EvacuationState.ACTIVE,
            drill=ev["drill"], reason=ev["reason"], issued_at=ev["issued_at"],
            message=contract.Message(zh=ev["message"]["zh"], en=ev["message"]["en"])))

    def _effects(self, ev: dict[str, Any], engine_done: bool, who: str, publish: bool = True,
                 took_over_drill: bool = False) -> None:
        """What an evacuation does, each part skipped where it was done before (see `resume`).
        `took_over_drill`: a real evacuation that ended the floor's drill (its notice is raised again, real)."""
        ev_id, floor, fire_zone, drill = ev["id"], ev["floor"], ev["fire_zone"], ev["drill"]
        zh, en = ev["message"]["zh"], ev["message"]["en"]
        if publish:
            self._publish(ev)
        egress = self.site.egress_doors_on_floor(floor)
        if not engine_done and self.engine_call is not None:
            def engine_side(engine: RuleEngine, t: datetime) -> list[Finding]:
                # the floor's manual fire inputs are the drill's until its all-clear; a real one ends that
                fire_rules.set_drill(engine.ctx, floor, drill)
                if took_over_drill and engine.ctx.is_open("evac.notice", floor):
                    # the drill's open notice takes the real evacuation's words (raised again, unmarked)
                    engine.ctx.pulse("evac.notice", floor, contract.Severity.CRITICAL, fire_zone, None, t, en, zh)
                else:
                    engine.ctx.set("evac.notice", floor, contract.Severity.CRITICAL, fire_zone, None, t, en, zh)
                door_rules.release(engine.ctx, egress, "door.fire_release_floor", t)
                return engine.ctx.take()

            self.engine_call(engine_side)
        commanded = {c["device"] for c in self.commands.commands(ref=ev_id, limit=10_000)}
        for door in egress:
            if door.id not in commanded:
                self.commands.send(door.id, contract.Action.DOOR_RELEASE, f"door.fire_release_floor {ev_id}", who,
                                   ref=ev_id)
        if fire_zone is not None and not drill:
            plugs = [d.id for d in self.site.devices_in_zone(fire_zone) if d.id not in commanded]
            self.commands.safety_cut(plugs, f"fire.confirmed critical: non-essential loads in {fire_zone} ({ev_id})",
                                     ref=ev_id)
        self._push(ev_id, floor, fire_zone, drill, engine_done, zh, en, ev["issued_at"])

    def _push(self, ev_id: str, floor: str, fire_zone: str | None, drill: bool, alarm_started: bool, zh: str,
              en: str, now: datetime) -> None:
        """The evacuation's one message per channel: emergency command and its groups with their tasks,
        then everyone on the floor. When a fire alarm started it, the people that alarm pages at once
        (lead, supervisor, safety officer) already have their page, so they are not sent this too."""
        if self.notify is None:
            return
        people: set[str] = set()
        for zone in self.site.zones_on_floor(floor):
            people.update(e.person for e in self.site.on_duty_in_zone(zone.id, now))
        people.update(e.person for e in self.roll_call(ev_id) if e.status == "inside")
        link = f"{self.base_url.rstrip('/')}/#evacuation={ev_id}"
        pushes: list[Push] = []
        seen: set[str] = set()
        if alarm_started and fire_zone is not None:
            rule = "mr.smoke" if self.site.is_machine_room(fire_zone) else "fire.confirmed"
            paging = routing.AlarmInfo(0, rule, contract.Severity.CRITICAL, fire_zone, fire_zone, self.site.id,
                                       None, "")
            first = routing.plan(paging, self.site)[0].recipients
            seen.update(d.url for d in routing.page(paging, self.site, first, now, self.base_url))
        title = f"{routing.DRILL_PREFIX if drill else ''}[紧急/critical] 疏散 evacuation {ev_id}"

        def add(recipient: str, body: str) -> None:
            for url in routing.channels(recipient, self.site):
                if url in seen:
                    continue
                seen.add(url)
                pushes.append(Push(f"ev/{ev_id}/{recipient}/{routing.url_hash(url)}", None, ev_id, recipient, url,
                                   contract.Severity.CRITICAL, routing.Text(title, body), []))

        # groups first: a member who is also on the floor gets the message that carries their task
        for group, (task_zh, task_en) in routing.group_tasks("evac.notice", drill).items():
            recipients = routing.resolve(group, _dummy(self.site.id), self.site, now)
            prefix = routing.DRILL_PREFIX if drill else ""
            call = "" if drill or group != "information_reporting" else f"\n{evac.CALL_119_ZH} / {evac.CALL_119_EN}"
            for r in recipients:
                add(r, f"{zh}\n{en}\n{prefix}{task_zh}\n{task_en}{call}\n{link}")
        if fire_zone is not None and self.site.is_machine_room(fire_zone) and not drill:
            mr = self._machine_room_pushes(ev_id, fire_zone, title, f"{zh}\n{en}\n{link}", now)
            seen.update(p.url for p in mr)  # the floor's words are in this message: not sent to them again
            pushes.extend(mr)
        for pid in sorted(people):
            add(f"person:{pid}", f"{zh}\n{en}\n{link}")
        self.notify.enqueue(pushes)

    def _machine_room_pushes(self, ev_id: str, room: str, title: str, tail: str, now: datetime,
                             only: Sequence[str] | None = None, kind: str = "mr", ref: str | None = None
                             ) -> list[Push]:
        """Smoke in a machine room: whoever is in it leaves it now (its suppression may discharge), also
        those its alarm paged already ("being checked"), and the machine-room duty; `tail` (the floor's
        words and the link) follows the instruction. Keyed by evacuation and `kind`, so telling them twice
        sends once. `only`: these people alone (a badge-in); `ref`: the rows' ref (default the evacuation's)."""
        mr_zh, mr_en = evac.machine_room_text(self.site, room)
        if only is not None:
            recipients = [f"person:{p}" for p in only]
        else:
            in_room = {e.person for e in self.site.on_duty_in_zone(room, now)}
            in_room.update(e.person for e in self.roll_call(ev_id) if e.status == "inside" and e.zone == room)
            paging = routing.AlarmInfo(0, "mr.smoke", contract.Severity.CRITICAL, room, room, self.site.id, None, "")
            recipients = [*routing.resolve("mr_duty", paging, self.site, now),
                          *(f"person:{p}" for p in sorted(in_room))]
        told: set[str] = set()
        pushes: list[Push] = []
        for r in recipients:
            for url in routing.channels(r, self.site):
                if url in told:
                    continue
                told.add(url)
                pushes.append(Push(f"ev/{ev_id}/{kind}/{r}/{routing.url_hash(url)}", None, ref or ev_id, r, url,
                                   contract.Severity.CRITICAL, routing.Text(title, f"{mr_zh}\n{mr_en}\n{tail}"), []))
        return pushes

    def _tell_machine_room(self, ev: dict[str, Any], room: str) -> None:
        """Smoke in a machine room on a floor already evacuating: the evacuation goes on as it is, and the
        people in that room and its duty get the instruction to leave it now."""
        if self.notify is None:
            return
        link = f"{self.base_url.rstrip('/')}/#evacuation={ev['id']}"
        title = f"[紧急/critical] 疏散 evacuation {ev['id']}"
        tail = f"{ev['message']['zh']}\n{ev['message']['en']}\n{link}"
        self.notify.enqueue(self._machine_room_pushes(ev["id"], room, title, tail, self.clock()))

    def machine_rooms_not_clear(self, floor: str) -> list[machine_room.Hold]:
        """The machine rooms of `floor` that are not clear after their smoke (server/domain/machine_room.py)."""
        holds = machine_room.not_clear(self.site, self.open_alarms())
        return [hold for room, hold in sorted(holds.items()) if self.site.zones[room].floor == floor]

    def on_access(self, events: Iterable[evac.Access]) -> None:
        """AccessLog listener (its thread, once the events are written): a person who badges in to a machine
        room while it is evacuated (a real evacuation its smoke started) or not clear after its smoke gets
        the instruction to leave it now, once per evacuation (the key of the evacuation's own machine-room
        message), in both languages, through the outbox. The roll call reads them inside that room. Someone
        with no channel (a visitor, a contractor) cannot be told: the machine-room duty and the on-site
        command are told who went in instead."""
        if self.notify is None:
            return
        for event in events:
            door = self.site.devices.get(event.door)
            if event.direction == "out" or door is None or not self.site.is_machine_room(door.zone):
                continue
            room, floor = door.zone, self.site.zones[door.zone].floor
            hold = next((h for h in self.machine_rooms_not_clear(floor) if h.room == room), None)
            current = self.active(floor)
            if current is not None and not current["drill"] and (current["fire_zone"] == room or hold is not None):
                if event.ts < current["issued_at"]:
                    continue
                ev_id, ref, kind = current["id"], None, "mr"
                link = f"{self.base_url.rstrip('/')}/#evacuation={ev_id}"
                tail = f"{current['message']['zh']}\n{current['message']['en']}\n{link}"
            elif hold is not None:
                last = next((e for e in self.history(50) if e["floor"] == floor and not e["drill"]), None)
                if last is None or event.ts < last["issued_at"]:
                    continue
                zh, en = hold.text(self.site)
                # its own ref (the evacuation's end withdraws none of it) and key: told to leave during the
                # evacuation, a person who comes back after the all-clear is told again that it is not clear
                ev_id, ref, kind = last["id"], f"{last['id']}/mr", "mr-not-clear"
                tail = f"{zh}\n{en}\n{self.base_url.rstrip('/')}/#evacuation={ev_id}"
            else:
                continue
            title = f"[紧急/critical] 疏散 evacuation {ev_id}"
            if not routing.channels(f"person:{event.person}", self.site):
                self.notify.enqueue(self._unreachable_in_room(ev_id, room, event.person, title, self.clock()))
                continue
            self.notify.enqueue(self._machine_room_pushes(ev_id, room, title, tail, self.clock(), only=[event.person],
                                                          kind=kind, ref=ref))

    def _unreachable_in_room(self, ev_id: str, room: str, person: str, title: str, now: datetime) -> list[Push]:
        """Someone nobody can tell to leave (no channel: a visitor, a contractor) badged in to the evacuated
        machine room: its duty and the on-site command are told who, once per person and evacuation (the
        key), with a ref of their own so the evacuation's end withdraws none of it."""
        zh, en = evac.unreachable_in_room_text(self.site, room, person)
        body = f"{zh}\n{en}\n{self.base_url.rstrip('/')}/#evacuation={ev_id}"
        paging = routing.AlarmInfo(0, "mr.smoke", contract.Severity.CRITICAL, room, room, self.site.id, None, "")
        told: set[str] = set()
        pushes: list[Push] = []
        for group in ("mr_duty", "on_site_command"):
            for r in routing.resolve(group, paging, self.site, now):
                for url in routing.channels(r, self.site):
                    if url not in told:
                        told.add(url)
                        pushes.append(Push(f"ev/{ev_id}/mr-unreachable/{person}/{r}/{routing.url_hash(url)}", None,
                                           f"{ev_id}/mr", r, url, contract.Severity.CRITICAL,
                                           routing.Text(title, body), []))
        return pushes

    # -- people's actions ------------------------------------------------------------------------------

    def all_clear(self, ev_id: str, who: str, roles: set[str]) -> dict[str, Any]:
        ev = self.get(ev_id)
        if ev["state"] != "active":
            raise EvacuationError(f"{ev_id} is not active")
        floor = ev["floor"]
        if self.engine_call is not None:
            def end(engine: RuleEngine, t: datetime) -> list[Finding]:
                # asked again here, in turn with the readings: a real fire that ended this drill while the
                # call waited must not have its evacuation cleared in the rules by the drill's all-clear
                if self.get(ev_id)["state"] != "active":
                    raise EvacuationError(f"{ev_id} is not active")
                findings = engine.all_clear(floor, roles, t)  # PermissionError passes up
                for zone in ev["zones"]:  # a machine room's own notice (mr.smoke) ends with the floor's
                    findings += engine.all_clear(zone, roles, t)
                fire_rules.set_drill(engine.ctx, floor, False)
                return findings

            self.engine_call(end)
        elif not holds(roles, Permission.ALL_CLEAR):
            raise PermissionError("only the on-site command group, emergency command or admin may end an evacuation")
        now = self.clock()
        zh, en = evac.clear_text(self.site, floor, ev["drill"])
        kept = self.machine_rooms_not_clear(floor)
        for hold in kept:  # the floor's all-clear stands; the displays say which machine room it leaves out
            hold_zh, hold_en = hold.text(self.site)
            zh, en = f"{zh};{hold_zh}", f"{en}; {hold_en}"
        with self._lock:  # ordered with a real evacuation that ends a drill (`start`)
            if self.get(ev_id)["state"] != "active":
                raise EvacuationError(f"{ev_id} is not active")
            with self.store.transaction() as tx:
                tx.end(ev_id, now, who)
                tx.audit(who, "evacuation.all_clear", ev_id, {"floor": floor}, now)
        for zone in {*ev["zones"], ev["fire_zone"]}:  # the fire zone: a machine room is not among `zones`
            self._first_fire_at.pop(zone, None)  # the next fire starts its own sequence
        # the all-clear first: the end is committed, so displays and sirens must not keep EVACUATE because
        # the outbox is slow or failing (a retry of this call is refused: the evacuation is over)
        self.publish_notice(contract.EvacuationNotice(
            id=ev_id, site=self.site.id, zones=ev["zones"], state=contract.EvacuationState.ALL_CLEAR,
            drill=ev["drill"], reason=f"all clear by {who}", issued_at=now, message=contract.Message(zh=zh, en=en)))
        # a notice still waiting for its retry would send people out again
        self._withdraw(ev_id, f"not sent: {ev_id} all clear at {now.isoformat()} by {who}")
        self._keep_out(ev_id, kept, now)
        return {**self.get(ev_id), "machine_rooms_not_clear": [h.as_dict(self.site) for h in kept]}

    def _keep_out(self, ev_id: str, holds: Sequence[machine_room.Hold], now: datetime) -> None:
        """The all-clear given while a machine room is not clear: the people in it and its duty keep the
        instruction to leave it, told that the floor's all-clear leaves that room out (their own ref, so
        the evacuation's end withdraws none of it)."""
        if self.notify is None:
            return
        link = f"{self.base_url.rstrip('/')}/#evacuation={ev_id}"
        for hold in holds:
            zh, en = hold.text(self.site)
            self.notify.enqueue(self._machine_room_pushes(
                ev_id, hold.room, f"[紧急/critical] 机房未解除 machine room not clear {ev_id}", f"{zh}\n{en}\n{link}",
                now, kind="mr-not-clear", ref=f"{ev_id}/mr"))

    def _withdraw(self, ev_id: str, reason: str, attempt: int = 0) -> None:
        """Withdraw the evacuation's unsent notices; a failure (database locked or down) is logged and tried
        again in the background, WITHDRAW_TRIES times in all, backing off to WITHDRAW_BACKOFF_MAX_S. Those
        tries die with the process: the outbox itself withdraws what is left of an evacuation that is over
        before it claims or sends a row (Outbox.withdraw_ended), so none is sent after its end anyway."""
        if self.notify is None:
            return
        try:
            self.notify.withdraw(ev_id, reason)
        except Exception as exc:
            if attempt + 1 >= WITHDRAW_TRIES:
                log.error("could not withdraw the unsent notices of %s after %d tries (%s): check the delivery "
                          "log (GET /api/notifications?evacuation=%s)", ev_id, attempt + 1, exc, ev_id)
                return
            delay = min(WITHDRAW_BACKOFF_MAX_S, 2.0 ** attempt)
            log.warning("withdrawing the unsent notices of %s failed (%s): trying again in %.0f s", ev_id, exc, delay)
            retry = threading.Timer(delay, self._withdraw, (ev_id, reason, attempt + 1))
            retry.daemon = True
            retry.start()

    def secure_door(self, door: str, who: str, reason: str) -> contract.Command:
        """A person re-locks an egress door after the evacuation (doors relock only by manual reset). Refused
        (EvacuationError) while the door's floor is evacuating or a zone that leaves by it is in fire alarm."""
        if door not in self.site.devices:
            raise KeyError(door)
        floor = self.site.floor_of(self.site.devices[door])
        egress = {d.id for d in self.site.egress_doors_on_floor(floor)}
        if door in egress and self.active(floor) is not None:
            raise EvacuationError(f"{door} stays released: floor {floor} is evacuating; secure it after the all-clear")
        if self.engine_call is not None:
            def reset(engine: RuleEngine, t: datetime) -> list[Finding]:
                burning = [z.id for z in self.site.zones_on_floor(floor) if engine.ctx.fire_in_zone(z.id)
                           and door in {d.id for d in self.site.egress_doors(z.id)}]
                if burning:
                    raise EvacuationError(f"{door} stays released: fire alarm in {', '.join(burning)}, which "
                                          "leaves by it; secure it once the alarm is over")
                return engine.reset_door_release(door, t)

            self.engine_call(reset)
        return self.commands.send(door, contract.Action.DOOR_SECURE, reason or "manual reset", who)

    def mark_safe(self, ev_id: str, person: str, by: str, note: str = "") -> None:
        self.get(ev_id)
        if person not in self.site.people:
            raise KeyError(person)
        line = next((e for e in self.roll_call(ev_id) if e.person == person), None)
        with self.store.transaction() as tx:
            if tx.marked(ev_id, person):
                if line is None or line.status == "safe":
                    return  # marked already: the first mark's time is when they were accounted for
                # seen inside again after the mark (a badge in): this mark is the one that counts now
                tx.renew_mark(ev_id, person, by, self.clock(), note)
            else:
                tx.add_mark(ev_id, person, by, self.clock(), note)
            tx.audit(by, "evacuation.mark_safe", ev_id, {"person": person, "note": note}, self.clock())

    # -- queries ---------------------------------------------------------------------------------------

    def get(self, ev_id: str) -> dict[str, Any]:
        ev = self.store.get(ev_id)
        if ev is None:
            raise KeyError(ev_id)
        return _row(ev)

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        return [_row(r) for r in self.store.history(limit)]

    def roll_call(self, ev_id: str) -> list[evac.Entry]:
        ev = self.get(ev_id)
        issued: datetime = ev["issued_at"]
        floor_zones = set(ev["zones"])
        logged, marks = self.store.roll_call(ev_id)
        events = [e for e in logged if e.door in self.site.devices and self.site.devices[e.door].zone in floor_zones]
        egress = {d.id for d in self.site.egress_doors_on_floor(ev["floor"])}
        # who the roster has on the floor at the notice: their zone, and "unknown" if they never badged
        rostered = {e.person: zone for zone in ev["zones"] for e in self.site.on_duty_in_zone(zone, issued)}
        return evac.roll_call(self.site, events, issued, egress, marks, rostered)

    def report(self, ev_id: str) -> dict[str, Any]:
        """The drill (or incident) report; durations run until the all-clear, or now while active."""
        ev = self.get(ev_id)
        until = ev["all_clear_at"] or self.clock()
        return {"id": ev_id, "drill": ev["drill"], "state": ev["state"],
                **evac.report(ev["triggered_at"], ev["issued_at"], self.roll_call(ev_id), until)}


def _dummy(site: str) -> routing.AlarmInfo:
    return routing.AlarmInfo(0, "evac.notice", contract.Severity.CRITICAL, "", None, site, None, "")


def _row(r: evac.EvacuationRecord) -> dict[str, Any]:
    return {"id": r.id, "site": r.site, "floor": r.floor, "zones": list(r.zones), "fire_zone": r.fire_zone,
            "drill": r.drill, "state": r.state, "trigger": r.trigger, "reason": r.reason,
            "triggered_at": r.triggered_at, "issued_at": r.issued_at, "started_by": r.started_by,
            "message": {"zh": r.message_zh, "en": r.message_en}, "all_clear_at": r.all_clear_at,
            "all_clear_by": r.all_clear_by}

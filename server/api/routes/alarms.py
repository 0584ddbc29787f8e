"""Alarms: list, acknowledge, shelve, close, and a server-sent-events stream of changes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from server.adapters.sql.repository import AlarmRepository
from server.api.audit import AuditTrail, audit_change
from server.api.deps import (
    ActorDep,
    ActorUnchangedDep,
    AlarmsDep,
    AlarmStoreDep,
    AuditDep,
    ClockDep,
    CommandsDep,
    CutsDep,
    RunsSiteDep,
    SiteDep,
)
from server.api.minimise import Redactor, RedactorDep
from server.api.schemas import AlarmAck, AlarmClose, AlarmPublic, AlarmShelve, CutPublic, RowId
from server.domain import alarms as domain
from server.domain import machine_room
from server.domain.commands import CommandRecord
from server.domain.policy import Actor, can_acknowledge, can_close_latched, can_shelve
from server.domain.power import HIGH_POWER, ScheduledCut
from server.domain.site import Site
from server.services.alarms import AlarmError
from server.services.commands import CommandService
from server.services.delayed_cuts import DelayedCutService
from server.services.overload_cut import OVERLOAD_RULES

router = APIRouter(prefix="/alarms", tags=["alarms"])

KEEP_ALIVE_S = 15.0
"""A quiet stream sends a comment this often, so proxies and the standby's read timeout keep it open."""
CHECK_S = 1.0
"""How often a quiet stream looks whether its reader left or this server lost the site."""
TOKEN_CHECK_S = 5.0
"""How often an open stream asks whether its token still stands for the same reader (one indexed query)."""


@dataclass(frozen=True)
class Cuts:
    """The cuts of a whole list of alarms, read at once (two queries, not two per alarm)."""

    delayed: dict[int, ScheduledCut]
    automatic: dict[int, list[CommandRecord]]


class AlarmViews:
    """An alarm as the API shows it: with its device when the site has it, its delayed cut and the plugs its
    critical overload cut automatically."""

    def __init__(self, site: Site, cuts: DelayedCutService, commands: CommandService,
                 clock: Callable[[], datetime], open_alarms: Callable[[], Iterable[domain.Alarm]] = tuple) -> None:
        self.site = site
        self.cuts = cuts
        self.commands = commands
        self.clock = clock
        self.open_alarms = open_alarms
        """For a machine room's smoke alarm: whether the room is clear (server/domain/machine_room.py)."""

    def cuts_of(self, alarms: Iterable[domain.Alarm]) -> Cuts:
        listed = [(a.id, a.rule) for a in alarms if a.id is not None]
        return Cuts(self.cuts.cuts_of(i for i, rule in listed if rule == HIGH_POWER),
                    self.commands.automatic_cuts(i for i, rule in listed if rule in OVERLOAD_RULES))

    def public(self, alarm: domain.Alarm, cuts: Cuts | None = None) -> AlarmPublic:
        """`cuts`: the cuts of a whole list, read at once; None reads this alarm's own."""
        public = AlarmPublic.of(alarm, self.site.devices.keys() if self.site else frozenset())  # type: ignore[arg-type]
        if alarm.rule == machine_room.SMOKE and alarm.is_open:
            public = self._not_clear(alarm, public)
        if alarm.id is None or (alarm.rule != HIGH_POWER and alarm.rule not in OVERLOAD_RULES):
            return public  # no query for a rule that never cuts
        found = cuts if cuts is not None else self.cuts_of([alarm])
        delayed = found.delayed.get(alarm.id)
        # the delayed cut's own command has the same ref: shown as the delayed cut, not twice
        automatic = [] if alarm.rule == HIGH_POWER else found.automatic.get(alarm.id, [])
        now = self.clock()
        return public.model_copy(update={"cut": CutPublic.of(delayed) if delayed is not None else None,
                                         "auto_cut": [CutPublic.of_command(c, now) for c in automatic]})

    def _not_clear(self, alarm: domain.Alarm, public: AlarmPublic) -> AlarmPublic:
        """A machine room's smoke alarm says, in its card's own words, that the room is not clear (its probe
        still reads smoke, or is offline since), also after the floor's all-clear."""
        hold = machine_room.not_clear(self.site, self.open_alarms()).get(alarm.zone or "")
        if hold is None:
            return public
        zh, en = hold.text(self.site)
        return public.model_copy(update={"message": f"{public.message} · {en}",
                                         "message_zh": f"{public.message_zh} · {zh}"})


class _ChangeView:
    """The public view of the alarm change the listeners are being told of, computed once for every open
    stream (each reader only redacts it): N readers cost one cut query on the ingest thread, not N. Kept
    for the one change being dispatched (the same object to every listener) and at most FRESH_S."""

    FRESH_S = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[domain.Alarm, AlarmPublic, float] | None = None

    def of(self, alarm: domain.Alarm, views: AlarmViews) -> AlarmPublic:
        with self._lock:
            last = self._last
        if last is not None and last[0] is alarm and time.monotonic() - last[2] < self.FRESH_S:
            return last[1]
        public = views.public(alarm)
        with self._lock:
            self._last = (alarm, public, time.monotonic())
        return public


_CHANGE_VIEW = _ChangeView()


def _views(site: SiteDep, cuts: CutsDep, commands: CommandsDep, clock: ClockDep, alarms: AlarmsDep) -> AlarmViews:
    return AlarmViews(site, cuts, commands, clock, alarms.open_alarms)


ViewsDep = Annotated[AlarmViews, Depends(_views)]


def _shown(red: Redactor, alarm: AlarmPublic) -> AlarmPublic:
    """The alarm as this reader may see it: the redactor's fields, and who held its cut (a person)."""
    shown = red.alarm(alarm)
    if shown.cut is None and not shown.auto_cut:
        return shown
    cut = None if shown.cut is None else shown.cut.model_copy(
        update={"held_by": red.person(shown.cut.held_by, shown.zone), "why": red.text(shown.cut.why)})
    auto = [c.model_copy(update={"why": red.text(c.why)}) for c in shown.auto_cut]
    return shown.model_copy(update={"cut": cut, "auto_cut": auto})


def _find(store: AlarmRepository, alarm_id: int) -> domain.Alarm:
    alarm = store.get(alarm_id)
    if alarm is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alarm {alarm_id} does not exist")
    return alarm


@router.get("", response_model=list[AlarmPublic])
def list_alarms(
    store: AlarmStoreDep,
    views: ViewsDep,
    actor: ActorDep,
    red: RedactorDep,
    state: Annotated[str | None, Query(description="active, acknowledged, cleared, ... or 'open'")] = None,
    zone: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AlarmPublic]:
    if state == "open":
        alarms = store.query(open_only=True, zone=zone, limit=limit)
    else:
        alarms = store.query(state=state, zone=zone, limit=limit)
    cuts = views.cuts_of(alarms)
    return [_shown(red, views.public(a, cuts)) for a in alarms]


@router.get("/stream")
async def stream(request: Request, alarm_service: AlarmsDep, views: ViewsDep, actor: ActorDep,
                 red: RedactorDep, runs_site: RunsSiteDep, unchanged: ActorUnchangedDep) -> StreamingResponse:
    """Server-sent events: one `alarm` event per change, as the AlarmPublic JSON (redacted for the reader).
    The stream ends once this server lost the site's lease: no change comes here any more, and the page
    reconnects (through a standby, to the new owner). It also ends within TOKEN_CHECK_S of a logout, a
    revoked token or a change of the reader's roles or zones: the reconnect meets 401 or the new redaction."""
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
    loop = asyncio.get_running_loop()

    def listener(alarm: domain.Alarm) -> None:
        data = _shown(red, _CHANGE_VIEW.of(alarm, views)).model_dump_json()

        def enqueue() -> None:
            if not queue.full():  # a reader that stopped reading loses old news, never the server
                queue.put_nowait(data)

        loop.call_soon_threadsafe(enqueue)

    async def events() -> AsyncIterator[str]:
        # copy, never mutate: the service iterates the list on another thread, and removing a reader that
        # hung up mid-iteration shifted the list under it, so the next reader missed that change (found by
        # tests/security/test_data_minimisation.py with three readers)
        alarm_service.listeners = [*alarm_service.listeners, listener]
        try:
            yield "retry: 2000\n\n"
            quiet_s = 0.0
            token_checked = loop.time()
            while runs_site() and not await request.is_disconnected():
                if loop.time() - token_checked >= TOKEN_CHECK_S:
                    if not await asyncio.to_thread(unchanged):
                        break
                    token_checked = loop.time()
                try:
                    data = await asyncio.wait_for(queue.get(), timeout=CHECK_S)
                    yield f"event: alarm\ndata: {data}\n\n"
                    quiet_s = 0.0
                except TimeoutError:
                    quiet_s += CHECK_S
                    if quiet_s >= KEEP_ALIVE_S:
                        yield ": keep-alive\n\n"
                        quiet_s = 0.0
        finally:
            alarm_service.listeners = [x for x in alarm_service.listeners if x is not listener]

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{alarm_id}", response_model=AlarmPublic)
def get_alarm(alarm_id: RowId, store: AlarmStoreDep, views: ViewsDep, actor: ActorDep, red: RedactorDep
              ) -> AlarmPublic:
    return _shown(red, views.public(_find(store, alarm_id)))


@router.get("/{alarm_id}/audit")
def alarm_audit(alarm_id: RowId, store: AlarmStoreDep, actor: ActorDep, red: RedactorDep
                ) -> list[dict[str, object]]:
    _find(store, alarm_id)
    rows = [{"at": r.at, "who": r.who, "action": r.action, "from_state": r.from_state, "to_state": r.to_state,
             "why": r.why} for r in store.audit(alarm_id)]
    return [red.value(row) for row in json.loads(json.dumps(rows, default=str))]


@router.post("/{alarm_id}/ack", response_model=AlarmPublic)
def acknowledge(alarm_id: RowId, body: AlarmAck, request: Request, alarms: AlarmsDep, store: AlarmStoreDep,
                views: ViewsDep, audit: AuditDep, clock: ClockDep, actor: ActorDep, red: RedactorDep) -> AlarmPublic:
    alarm = _find(store, alarm_id)
    if not can_acknowledge(actor, alarm.severity, alarm.zone):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{actor.name} may not acknowledge a {alarm.severity.value} alarm in zone {alarm.zone}")
    return _applied(lambda: alarms.acknowledge(alarm_id, actor.name, body.note, clock()),
                    body.note, alarm, request, views, audit, actor, red)


@router.post("/{alarm_id}/shelve", response_model=AlarmPublic)
def shelve(alarm_id: RowId, body: AlarmShelve, request: Request, alarms: AlarmsDep, store: AlarmStoreDep,
           views: ViewsDep, audit: AuditDep, clock: ClockDep, actor: ActorDep, red: RedactorDep) -> AlarmPublic:
    alarm = _find(store, alarm_id)
    if not can_shelve(actor, alarm.severity):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "shelving needs a supervisor and a non-critical alarm")
    if body.until <= clock():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until must be in the future")
    return _applied(lambda: alarms.shelve(alarm_id, actor.name, body.until, body.reason, clock()),
                    body.reason, alarm, request, views, audit, actor, red)


@router.post("/{alarm_id}/close", response_model=AlarmPublic)
def close(alarm_id: RowId, body: AlarmClose, request: Request, alarms: AlarmsDep, store: AlarmStoreDep,
          views: ViewsDep, audit: AuditDep, clock: ClockDep, actor: ActorDep, red: RedactorDep) -> AlarmPublic:
    alarm = _find(store, alarm_id)
    if not can_close_latched(actor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{actor.name} may not close alarms")
    return _applied(lambda: alarms.close(alarm.id or alarm_id, actor.name, body.reason, clock()),
                    body.reason, alarm, request, views, audit, actor, red)


def _applied(change: Callable[[], domain.Alarm], why: str, before: domain.Alarm, request: Request,
             views: AlarmViews, audit: AuditTrail, actor: Actor, red: Redactor) -> AlarmPublic:
    """A person's change of `before`, shown as the person may see it: refused by the alarm's state is a 409,
    done is audited with `why`."""
    try:
        after = views.public(change())
    except AlarmError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _shown(red, _audited(audit, views, actor, request, before, after, why))


def _audited(audit: AuditTrail, views: AlarmViews, actor: Actor, request: Request, before: domain.Alarm,
             after: AlarmPublic, why: str) -> AlarmPublic:
    audit_change(audit, actor, request, f"alarm:{after.id}", views.public(before).model_dump(mode="json"),
                 after.model_dump(mode="json"), {"why": why})
    return after

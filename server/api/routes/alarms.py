"""Alarms: list, acknowledge, shelve, close, and a server-sent-events stream of changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from server.api.audit import audit_change
from server.api.deps import ActorDep, RuntimeDep
from server.api.minimise import RedactorDep
from server.api.schemas import AlarmAck, AlarmClose, AlarmPublic, AlarmShelve, RowId
from server.domain import alarms as domain
from server.domain.policy import Actor, can_acknowledge, can_close_latched, can_shelve
from server.services.alarms import AlarmError

router = APIRouter(prefix="/alarms", tags=["alarms"])


def _public(runtime: RuntimeDep, alarm: domain.Alarm) -> AlarmPublic:
    return AlarmPublic.of(alarm, runtime.site.devices.keys() if runtime.site else frozenset())  # type: ignore[arg-type]


def _find(runtime: RuntimeDep, alarm_id: int) -> domain.Alarm:
    alarm = runtime.repository.get(alarm_id)
    if alarm is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alarm {alarm_id} does not exist")
    return alarm


@router.get("", response_model=list[AlarmPublic])
def list_alarms(
    runtime: RuntimeDep,
    actor: ActorDep,
    red: RedactorDep,
    state: Annotated[str | None, Query(description="active, acknowledged, cleared, ... or 'open'")] = None,
    zone: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AlarmPublic]:
    if state == "open":
        alarms = runtime.repository.query(open_only=True, zone=zone, limit=limit)
    else:
        alarms = runtime.repository.query(state=state, zone=zone, limit=limit)
    return [red.alarm(_public(runtime, a)) for a in alarms]


@router.get("/stream")
async def stream(request: Request, runtime: RuntimeDep, actor: ActorDep, red: RedactorDep) -> StreamingResponse:
    """Server-sent events: one `alarm` event per change, as the AlarmPublic JSON (redacted for the reader)."""
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
    loop = asyncio.get_running_loop()

    def listener(alarm: domain.Alarm) -> None:
        data = red.alarm(_public(runtime, alarm)).model_dump_json()

        def enqueue() -> None:
            if not queue.full():  # a reader that stopped reading loses old news, never the server
                queue.put_nowait(data)

        loop.call_soon_threadsafe(enqueue)

    async def events() -> AsyncIterator[str]:
        # copy, never mutate: the service iterates the list on another thread, and removing a reader that
        # hung up mid-iteration shifted the list under it, so the next reader missed that change (found by
        # tests/security/test_data_minimisation.py with three readers)
        runtime.alarms.listeners = [*runtime.alarms.listeners, listener]
        try:
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                try:
                    data = await asyncio.wait_for(queue.get(), timeout=15)
                    yield f"event: alarm\ndata: {data}\n\n"
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            runtime.alarms.listeners = [x for x in runtime.alarms.listeners if x is not listener]

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{alarm_id}", response_model=AlarmPublic)
def get_alarm(alarm_id: RowId, runtime: RuntimeDep, actor: ActorDep, red: RedactorDep) -> AlarmPublic:
    return red.alarm(_public(runtime, _find(runtime, alarm_id)))


@router.get("/{alarm_id}/audit")
def alarm_audit(alarm_id: RowId, runtime: RuntimeDep, actor: ActorDep, red: RedactorDep) -> list[dict[str, object]]:
    _find(runtime, alarm_id)
    rows = [{"at": r.at, "who": r.who, "action": r.action, "from_state": r.from_state, "to_state": r.to_state,
             "why": r.why} for r in runtime.repository.audit(alarm_id)]
    return [red.value(row) for row in json.loads(json.dumps(rows, default=str))]


@router.post("/{alarm_id}/ack", response_model=AlarmPublic)
def acknowledge(alarm_id: RowId, body: AlarmAck, request: Request, runtime: RuntimeDep,
                actor: ActorDep, red: RedactorDep) -> AlarmPublic:
    alarm = _find(runtime, alarm_id)
    if not can_acknowledge(actor, alarm.severity, alarm.zone):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{actor.name} may not acknowledge a {alarm.severity.value} alarm in zone {alarm.zone}")
    try:
        after = _public(runtime, runtime.alarms.acknowledge(alarm_id, actor.name, body.note, runtime.clock()))
    except AlarmError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return red.alarm(_audited(runtime, actor, request, alarm, after, body.note))


@router.post("/{alarm_id}/shelve", response_model=AlarmPublic)
def shelve(alarm_id: RowId, body: AlarmShelve, request: Request, runtime: RuntimeDep, actor: ActorDep,
           red: RedactorDep) -> AlarmPublic:
    alarm = _find(runtime, alarm_id)
    if not can_shelve(actor, alarm.severity):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "shelving needs a supervisor and a non-critical alarm")
    if body.until <= runtime.clock():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until must be in the future")
    try:
        after = _public(runtime, runtime.alarms.shelve(alarm_id, actor.name, body.until, body.reason, runtime.clock()))
    except AlarmError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return red.alarm(_audited(runtime, actor, request, alarm, after, body.reason))


@router.post("/{alarm_id}/close", response_model=AlarmPublic)
def close(alarm_id: RowId, body: AlarmClose, request: Request, runtime: RuntimeDep, actor: ActorDep,
          red: RedactorDep) -> AlarmPublic:
    alarm = _find(runtime, alarm_id)
    if not can_close_latched(actor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{actor.name} may not close alarms")
    try:
        after = _public(runtime, runtime.alarms.close(alarm.id or alarm_id, actor.name, body.reason, runtime.clock()))
    except AlarmError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return red.alarm(_audited(runtime, actor, request, alarm, after, body.reason))


def _audited(runtime: RuntimeDep, actor: Actor, request: Request, before: domain.Alarm, after: AlarmPublic,
             why: str) -> AlarmPublic:
    audit_change(runtime, actor, request, f"alarm:{after.id}", _public(runtime, before).model_dump(mode="json"),
                 after.model_dump(mode="json"), {"why": why})
    return after

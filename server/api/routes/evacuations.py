"""Evacuations (contract-v1.md §5): list, start (manual or drill), all-clear, roll call, drill report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from server.api.audit import audit_change
from server.api.deps import ActorDep, AuditDep, CommandsDep, EvacuationsDep, LiveDep, SiteDep, require
from server.api.minimise import Redactor, RedactorDep
from server.api.routes.relays import device_state
from server.domain.policy import PERMISSIONS, Actor, Permission
from server.services.evacuation import EvacuationError, EvacuationService

router = APIRouter(prefix="/evacuations", tags=["evacuations"])

STARTERS = PERMISSIONS[Permission.START_EVACUATION]
"""Who may start an evacuation or a drill by hand (the authorization table's start_evacuation)."""


class EvacuationStart(BaseModel):
    floor: str
    zone: str | None = Field(None, description="the fire zone, if known (its cuttable plugs are cut)")
    drill: bool = False
    reason: str = Field("", max_length=500)


class MarkSafe(BaseModel):
    note: str = Field("", max_length=300)


class DoorSecure(BaseModel):
    reason: str = Field("", max_length=300)


def _get(evacuations: EvacuationService, ev_id: str) -> dict[str, Any]:
    try:
        return evacuations.get(ev_id)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"evacuation {ev_id} does not exist") from None


@router.get("")
def list_evacuations(evacuations: EvacuationsDep, actor: ActorDep, red: RedactorDep) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = red.value(evacuations.history())  # reasons are free text
    return history


@router.post("", status_code=status.HTTP_201_CREATED)
def start(body: EvacuationStart, request: Request, evacuations: EvacuationsDep, audit: AuditDep,
          actor: Annotated[Actor, Depends(require(Permission.START_EVACUATION))]) -> dict[str, Any]:
    try:
        ev = evacuations.start(body.floor, body.zone, drill=body.drill,
                                         trigger="drill" if body.drill else "manual",
                                         reason=body.reason or ("drill" if body.drill else "manual evacuation"),
                                         who=actor.name)
    except EvacuationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    audit_change(audit, actor, request, f"evacuation:{ev['id']}", None, ev)
    return ev


@router.get("/{ev_id}")
def detail(ev_id: str, evacuations: EvacuationsDep, command_service: CommandsDep, actor: ActorDep,
           red: RedactorDep) -> dict[str, Any]:
    ev = _get(evacuations, ev_id)
    ev["commands"] = command_service.commands(ref=ev_id)
    shown: dict[str, Any] = red.value(ev)
    return shown


@router.post("/{ev_id}/all-clear")
def all_clear(ev_id: str, request: Request, evacuations: EvacuationsDep, audit: AuditDep,
              actor: ActorDep) -> dict[str, Any]:
    before = _get(evacuations, ev_id)
    try:
        after = evacuations.all_clear(ev_id, actor.name, {r.value for r in actor.roles})
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except EvacuationError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    audit_change(audit, actor, request, f"evacuation:{ev_id}", before, after)
    return after


@router.get("/{ev_id}/roll-call")
def roll_call(ev_id: str, evacuations: EvacuationsDep, actor: Annotated[Actor, Depends(require(Permission.RESPOND))],
              red: RedactorDep) -> dict[str, Any]:
    """Everyone inside at the notice; a lead or supervisor limited to zones sees their people's names,
    the others counted with "(hidden)" in place of name and id."""
    _get(evacuations, ev_id)
    entries = [red.entry(e.as_dict()) for e in evacuations.roll_call(ev_id)]
    return {"id": ev_id, "inside": [e for e in entries if e["status"] == "inside"],
            "visitors_inside": [e for e in entries if e["status"] == "inside" and e["is_visitor"]],
            "unknown_on_roster": [e for e in entries if e["status"] == "unknown"],
            "people": entries}


@router.post("/{ev_id}/roll-call/{person}")
def mark_safe(ev_id: str, person: str, body: MarkSafe, request: Request, evacuations: EvacuationsDep, audit: AuditDep,
              actor: Annotated[Actor, Depends(require(Permission.RESPOND))], red: RedactorDep) -> dict[str, Any]:
    _get(evacuations, ev_id)
    before = _entry(evacuations, ev_id, person)
    try:
        evacuations.mark_safe(ev_id, person, actor.name, body.note)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"person {person} is not in the site file") from None
    audit_change(audit, actor, request, f"evacuation:{ev_id}/person:{person}", before,
                 _entry(evacuations, ev_id, person), {"note": body.note})
    return roll_call(ev_id, evacuations, actor, red)


def _entry(evacuations: EvacuationService, ev_id: str, person: str) -> dict[str, object] | None:
    """The person's roll-call line (None: not on the roll call)."""
    return next((e.as_dict() for e in evacuations.roll_call(ev_id) if e.person == person), None)


@router.get("/{ev_id}/report")
def report(ev_id: str, evacuations: EvacuationsDep, actor: ActorDep, red: RedactorDep) -> dict[str, Any]:
    """Open to all signed in: the figures (times, counts) are; the names of the unaccounted only to the
    roles that need them (policy.PEOPLE_SCOPE)."""
    _get(evacuations, ev_id)
    return _report(evacuations.report(ev_id), red)


def _report(report: dict[str, Any], red: Redactor) -> dict[str, Any]:
    return {**report, **{key: [red.entry(e) for e in report[key]] for key in ("unaccounted", "accounted", "unknown")
                         if key in report}}


@router.post("/doors/{door}/secure")
def secure_door(door: str, body: DoorSecure, request: Request, site: SiteDep, live_state: LiveDep,
                command_service: CommandsDep, evacuations: EvacuationsDep, audit: AuditDep,
                actor: Annotated[Actor, Depends(require(Permission.RESPOND))]) -> dict[str, Any]:
    """Re-lock an egress door after the evacuation (doors stay released until a person does this)."""
    if door not in site.devices:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {door} does not exist")
    before = device_state(live_state, command_service, door)
    try:
        command = evacuations.secure_door(door, actor.name, body.reason)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {door} does not exist") from None
    except EvacuationError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    after = command.model_dump(mode="json")
    audit_change(audit, actor, request, f"device:{door}", before, {**device_state(live_state, command_service, door),
                 "command": after},
                 {"reason": body.reason})
    return after

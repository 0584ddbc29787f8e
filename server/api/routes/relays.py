"""Relay cut and restore for smart plugs (RULES.md §2.1 power-cut policy, elec.relay_reenable_guard),
and the shift lead's hold of elec.high_power_appliance's delayed cut."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from server.api.audit import audit_change
from server.api.deps import ActorDep, AuditDep, CommandsDep, CutsDep, LiveDep, SiteDep, require
from server.domain.policy import Actor, Permission
from server.domain.site import Site
from server.services.commands import CommandError, CommandService
from server.services.live import LiveState

router = APIRouter(prefix="/devices", tags=["devices"])


class RelayIn(BaseModel):
    on: bool
    reason: str = Field(..., max_length=500)
    electrician_signoff: bool = False
    """Required to restore after a critical overload cut (a licensed electrician checked the circuit)."""


def check_zone(site: Site, actor: Actor, device: str) -> None:
    """404 for a device the site does not have, 403 naming its zone when the actor does not answer for it (an
    account without zones, a supervisor's or an admin's, answers for every zone): a shift lead switches and
    holds the cuts of the plugs of their own zones only."""
    dev = site.devices.get(device)
    if dev is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device} does not exist")
    if not actor.covers(dev.zone):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{actor.name} does not answer for zone {dev.zone} "
                                                       f"(device {device})")


@router.post("/{device}/relay", status_code=status.HTTP_202_ACCEPTED)
def relay(device: str, body: RelayIn, request: Request, site: SiteDep, live_state: LiveDep,
          command_service: CommandsDep, audit: AuditDep, actor: ActorDep) -> dict[str, Any]:
    check_zone(site, actor, device)
    roles = {r.value for r in actor.roles}
    before = device_state(live_state, command_service, device)
    try:
        command = command_service.relay(device, body.on, body.reason, actor.name, roles, body.electrician_signoff)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device} does not exist") from None
    except CommandError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    after = command.model_dump(mode="json")
    audit_change(audit, actor, request, f"device:{device}", before,
                 {**device_state(live_state, command_service, device), "command": after},
                 {"reason": body.reason, "electrician_signoff": body.electrician_signoff})
    return after


def device_state(live_state: LiveState, command_service: CommandService, device: str) -> dict[str, Any]:
    """What the server knows of a device before and after a command: live state and its last command."""
    live = live_state.devices().get(device)
    last = command_service.commands(device=device)[:1]
    return {"online": live.online if live else None, "metrics": dict(live.metrics) if live else {},
            "last_command": last[0] if last else None}


@router.get("/{device}/commands")
def commands(device: str, command_service: CommandsDep, actor: ActorDep) -> list[dict[str, Any]]:
    """The device's commands with who sent them and why, and their results (audit)."""
    return command_service.commands(device=device)


class HoldCutIn(BaseModel):
    reason: str = Field(..., min_length=1, max_length=500)
    until: datetime | None = None
    """Also hold cuts scheduled before this time (the kettle is allowed today); None: only the pending ones."""


@router.post("/{device}/hold-cut")
def hold_cut(device: str, body: HoldCutIn, request: Request, site: SiteDep, cuts: CutsDep, audit: AuditDep,
             actor: Annotated[Actor, Depends(require(Permission.HOLD_CUT))]) -> dict[str, Any]:
    """The shift lead (or above) overrides the plug's delayed cut (elec.high_power_appliance, RULES.md §2.1)."""
    check_zone(site, actor, device)
    before = cuts.state(device)
    try:
        held = cuts.hold(device, actor.name, body.reason, body.until)
    except CommandError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    after = {**cuts.state(device), "device": device, "held": held}
    audit_change(audit, actor, request, f"device:{device}", before, after,
                 {"reason": body.reason, "until": body.until.isoformat() if body.until else None})
    return after

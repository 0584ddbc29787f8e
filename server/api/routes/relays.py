"""Relay cut and restore for smart plugs (RULES.md §2.1 power-cut policy, elec.relay_reenable_guard)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from server.api.deps import ActorDep, RuntimeDep
from server.domain.policy import Role
from server.services.commands import CommandError

router = APIRouter(prefix="/devices", tags=["devices"])


class RelayIn(BaseModel):
    on: bool
    reason: str = Field(..., max_length=500)
    electrician_signoff: bool = False
    """Required to restore after a critical overload cut (a licensed electrician checked the circuit)."""


@router.post("/{device}/relay", status_code=status.HTTP_202_ACCEPTED)
def relay(device: str, body: RelayIn, runtime: RuntimeDep, actor: ActorDep) -> dict[str, Any]:
    roles = {r.value for r in actor.roles}
    if Role.ADMIN in actor.roles:
        roles.add("manager")
    try:
        command = runtime.commands.relay(device, body.on, body.reason, actor.name, roles, body.electrician_signoff)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device} does not exist") from None
    except CommandError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    return command.model_dump(mode="json")


@router.get("/{device}/commands")
def commands(device: str, runtime: RuntimeDep, actor: ActorDep) -> list[dict[str, Any]]:
    """The device's commands with who sent them and why, and their results (audit)."""
    return runtime.commands.commands(device=device)

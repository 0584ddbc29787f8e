"""Notification delivery log and silences."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, Field

from server.api.audit import audit_change
from server.api.deps import ActorDep, AuditDep, NotifyDep, require
from server.api.minimise import RedactorDep
from server.api.schemas import RowIdQuery
from server.domain.notify import SilenceRefused
from server.domain.policy import Actor, Permission

router = APIRouter(prefix="/notifications", tags=["notifications"])


class SilenceIn(BaseModel):
    ends_at: AwareDatetime
    rule: str = ""
    zone: str = ""
    subject: str = ""
    reason: str = Field(..., min_length=1, max_length=300)


@router.get("")
def log(notify: NotifyDep, actor: ActorDep, red: RedactorDep, alarm: RowIdQuery = None, evacuation: str | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[dict[str, Any]]:
    """Every queued push with its attempts (channel shown as a hash: URLs may hold tokens). Recipients
    ("person:<id>") and texts are redacted to what the caller may see of people."""
    rows: list[dict[str, Any]] = red.value(notify.log_of(alarm_id=alarm, ref=evacuation, limit=limit))
    return rows


@router.post("/silences", status_code=status.HTTP_201_CREATED)
def silence(body: SilenceIn, request: Request, notify: NotifyDep, audit: AuditDep,
            actor: Annotated[Actor, Depends(require(Permission.SILENCE_NOTIFICATIONS))]) -> dict[str, Any]:
    """Silence matching pushes until `ends_at`, at most 12 h ahead (never life-safety or critical alarms)."""
    try:
        sid = notify.add_silence(body.rule, body.zone, body.subject, body.ends_at, actor.name, body.reason)
    except SilenceRefused as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    audit_change(audit, actor, request, f"silence:{sid}", None, {"id": sid, **body.model_dump(mode="json")})
    return {"id": sid}

"""The audit trail: every change made through the API (and the services' own rows), newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from server.adapters.sql.repository import audit_rows
from server.api.deps import AlarmStoreDep, require
from server.api.minimise import RedactorDep
from server.domain.policy import PERMISSIONS, Actor, Permission
from server.domain.utc import as_utc

router = APIRouter(tags=["audit"])

AUDITORS = PERMISSIONS[Permission.READ_AUDIT]
"""Managers answer for what was done on the floor (admin too, as always). Rows name people, so not
every signed-in account sees them."""


class AuditOut(BaseModel):
    id: int
    at: datetime
    who: str
    action: str
    target: str
    detail: dict[str, Any]
    before: Any
    after: Any


@router.get("/audit", response_model=list[AuditOut])
def audit(store: AlarmStoreDep, actor: Annotated[Actor, Depends(require(Permission.READ_AUDIT))], red: RedactorDep,
          who: str | None = None, action: str | None = None, target: str | None = None,
          since: datetime | None = None, limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[AuditOut]:
    with store.sessions() as session:
        rows = audit_rows(session, who=who, action=action, target=target, since=since, limit=limit)
        # SQLite returns naive times (stored as UTC): the API promises aware ones
        # a roll-call mark names the person (target, before/after): redacted like everywhere else
        return [AuditOut(id=r.id, at=as_utc(r.at), who=r.who, action=r.action, target=red.text(r.target),
                         detail=red.value(r.detail or {}), before=red.value(r.before), after=red.value(r.after))
                for r in rows]

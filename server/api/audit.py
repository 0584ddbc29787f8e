"""One audit row per state-changing API call: who, when, which route, on what, the state before and after.

The action is the route itself ("POST /api/alarms/{alarm_id}/ack"), so every route names its rows the
same way and a test can check them all. Services keep writing their own domain rows (relay.off,
evacuation.start ...), which also cover what the server does on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request

from server.adapters.sql.repository import AlarmRepository, record_audit
from server.domain.policy import Actor


def route_action(request: Request) -> str:
    path = getattr(request.scope.get("route"), "path", request.url.path)
    # FastAPI ≥ 0.16x keeps the include prefix out of the matched route's path; every router is under /api
    if not path.startswith("/api/"):
        path = "/api" + path
    return f"{request.method} {path}"


class AuditTrail:
    """Where the routes' audit rows go: the alarm store's database, stamped by the server's clock."""

    def __init__(self, store: AlarmRepository, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock


def audit_change(trail: AuditTrail, actor: Actor | str, request: Request, target: str, before: Any, after: Any,
                 detail: dict[str, Any] | None = None) -> None:
    who = actor if isinstance(actor, str) else actor.name
    with trail.store.sessions.begin() as session:
        record_audit(session, who, route_action(request), target, detail or {}, trail.clock(),
                     before=before, after=after)

"""Fire verification (RULES.md §3): the verdict of a person at the detector, and staff reporting a fire.

Acknowledging a fire page is the ordinary alarm acknowledgement (`POST /api/alarms/{id}/ack`); the
runtime passes it on to the zone's 60 s timer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from server.api.audit import audit_change
from server.api.deps import ActorDep, AlarmsDep, AuditDep, IngestDep, SiteDep, require
from server.domain.policy import Actor, Permission
from server.domain.site import Site
from server.services.alarms import AlarmService

router = APIRouter(prefix="/fire", tags=["fire"])
ResponderDep = Annotated[Actor, Depends(require(Permission.RESPOND))]


class Verdict(BaseModel):
    real: bool
    """True: a real fire (confirms it now). False: a false alarm, with its cause."""
    cause: str = Field("", max_length=200)
    """For a false alarm: smoking, dust, steam, test, cooking, unknown ... (GB 25201 5.3 ②)."""


class Report(BaseModel):
    note: str = Field("", max_length=500)


def _zone(site: Site, zone: str) -> str:
    if zone not in site.zones:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown zone {zone!r}")
    return zone


def _fire_state(alarm_service: AlarmService, zone: str) -> dict[str, str]:
    """The zone's open fire alarms, rule → state (what a verdict or a report changes)."""
    return {a.rule: a.state.value for a in alarm_service.open_alarms()
            if a.zone == zone and a.rule.startswith("fire.")}


@router.post("/{zone}/verdict")
def verdict(zone: str, body: Verdict, request: Request, site: SiteDep, alarm_service: AlarmsDep, ingest: IngestDep,
            audit: AuditDep, actor: ResponderDep) -> dict[str, object]:
    zone = _zone(site, zone)
    if not body.real and not body.cause.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a false alarm needs its cause")
    before = _fire_state(alarm_service, zone)
    findings = ingest.call(lambda engine, now: engine.fire_verdict(zone, body.real, body.cause, now))
    audit_change(audit, actor, request, f"zone:{zone}", before, _fire_state(alarm_service, zone),
                 {"real": body.real, "cause": body.cause})
    return {"zone": zone, "real": body.real, "findings": [f"{f.rule} {f.transition.value}" for f in findings]}


@router.post("/{zone}/report")
def report(zone: str, body: Report, request: Request, site: SiteDep, alarm_service: AlarmsDep, ingest: IngestDep,
           audit: AuditDep, actor: ActorDep) -> dict[str, object]:
    """The 报火警 button: anyone signed in may report a fire; it counts as confirmed (fire.manual_report)."""
    zone = _zone(site, zone)
    before = _fire_state(alarm_service, zone)
    findings = ingest.call(lambda engine, now: engine.report_fire(zone, now))
    audit_change(audit, actor, request, f"zone:{zone}", before, _fire_state(alarm_service, zone), {"note": body.note})
    return {"zone": zone, "findings": [f"{f.rule} {f.transition.value}" for f in findings]}

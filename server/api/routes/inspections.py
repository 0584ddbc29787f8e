"""Inspections (RULES.md §6, contract-v1.md §5): due tasks, completion, photos, history (CSV), compliance.

The service and its APScheduler jobs (SQL job store on the same database) belong to the runtime.
Listing calls the idempotent `create_due` first, so tasks are current even between scheduler ticks.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from server.api.audit import audit_change
from server.api.deps import ActorDep, AuditDep, InspectionsDep
from server.api.minimise import Redactor, RedactorDep
from server.api.schemas import RowId
from server.domain.inspections import CATALOG, CompleterView, InspectionError
from server.domain.policy import Actor
from server.services.inspections import MAX_PHOTO_BYTES, HistoryQuery, InspectionService, TaskView

router = APIRouter(prefix="/inspections", tags=["inspections"])

_ERROR_STATUS = {"not_found": status.HTTP_404_NOT_FOUND, "not_allowed": status.HTTP_403_FORBIDDEN,
                 "already_completed": status.HTTP_409_CONFLICT, "photo_too_large": status.HTTP_413_CONTENT_TOO_LARGE}


def _http(error: InspectionError, red: Redactor | None = None) -> HTTPException:
    """`red`: a message that may name a person (a refusal names the task's assignee) is minimised as the
    task's own fields are."""
    code = _ERROR_STATUS.get(error.code, status.HTTP_422_UNPROCESSABLE_CONTENT)
    return HTTPException(code, {"code": error.code, "message": red.text(error.message) if red else error.message})


def completer(actor: Actor, service: InspectionService) -> CompleterView:
    """The actor's policy roles plus the site roles of the person whose id is the actor's name."""
    roles = {r.value for r in actor.roles}
    person = service.site.people.get(actor.name)
    if person is not None:
        roles.update(person.roles)
        roles.update(r for r in service.site.config.roles if actor.name in service.site.config.roles[r])
    return CompleterView(actor.name, frozenset(roles))


# ---- schemas -------------------------------------------------------------------------------------


class ItemOut(BaseModel):
    id: str
    text: str
    text_zh: str
    prefill: str | None
    on_the_spot: bool
    result: str | None
    note: str
    suggested: str | None = None
    """The pre-fill's suggestion (pass, fail, unknown); live for an open task, as signed for a done one."""
    evidence: list[str] = Field(default_factory=list)
    overridden: bool = False


class TaskOut(BaseModel):
    id: int
    schedule: str
    what: str
    what_zh: str
    subject: str
    zone: str | None
    seat: str | None
    device: str | None
    assignee: str | None
    role: str
    trigger: str | None
    run_at: datetime
    due_at: datetime
    status: str
    overdue: bool
    completed_at: datetime | None
    completed_by: str | None
    note: str
    items: list[ItemOut] = Field(default_factory=list)
    photos: list[int] = Field(default_factory=list)

    @classmethod
    def of(cls, t: TaskView) -> TaskOut:
        return cls(id=t.id, schedule=t.schedule_id, what=t.what, what_zh=t.what_zh, subject=t.subject, zone=t.zone,
                   seat=t.seat, device=t.device, assignee=t.assignee, role=t.role, trigger=t.trigger,
                   run_at=t.run_at, due_at=t.due_at, status=t.status, overdue=t.overdue,
                   completed_at=t.completed_at, completed_by=t.completed_by, note=t.note,
                   items=[ItemOut(id=i.id, text=i.text, text_zh=i.text_zh, prefill=i.prefill,
                                  on_the_spot=i.on_the_spot, result=i.outcome, note=i.note, suggested=i.suggested,
                                  evidence=list(i.evidence), overridden=i.overridden) for i in t.items],
                   photos=list(t.photos))

    def shown(self, red: Redactor) -> TaskOut:
        """Seat tasks name their person (subject `seat:<seat>:<person>`, assignee, signer, notes):
        redacted to what the caller may see of people."""
        return TaskOut.model_validate(red.value(self.model_dump()))


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    result: Literal["pass", "fail", "not_applicable"]
    note: str = ""


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ItemIn]
    note: str = ""


class CompleteOut(BaseModel):
    task: TaskOut
    on_time: bool
    failed: list[str]
    hazards: list[str]


class PhotoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data_base64: str = Field(max_length=(MAX_PHOTO_BYTES * 4) // 3 + 8)
    item_id: str | None = None


class PhotoOut(BaseModel):
    id: int
    task_id: int


class ComplianceOut(BaseModel):
    zone: str
    month: str
    on_time: int
    late: int
    missed: int
    open: int
    failed_items: int


class FindingOut(BaseModel):
    rule: str
    severity: str
    subject: str
    zone: str | None
    since: datetime
    task_id: int | None
    notify: list[str]


class ScheduleOut(BaseModel):
    id: str
    what: str
    what_zh: str
    role: str
    cadence: str
    items: list[str]
    overdue_rule: str | None


# ---- routes --------------------------------------------------------------------------------------


@router.get("", response_model=list[TaskOut])
def list_tasks(service: InspectionsDep, actor: ActorDep, red: RedactorDep,
               status_: Annotated[Literal["due", "overdue", "done", "missed", "open"],
                                  Query(alias="status")] = "due",
               zone: str | None = None, assignee: str | None = None,
               limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[TaskOut]:
    try:
        service.create_due()
        return [TaskOut.of(t).shown(red) for t in service.tasks(status_, zone=zone, assignee=assignee, limit=limit)]
    except InspectionError as error:
        raise _http(error) from None


@router.get("/schedules", response_model=list[ScheduleOut])
def schedules(actor: ActorDep) -> list[ScheduleOut]:
    return [ScheduleOut(id=s.id, what=s.what, what_zh=s.what_zh, role=s.role, cadence=s.cadence.kind.value,
                        items=[i.id for i in s.items], overdue_rule=s.overdue_rule) for s in CATALOG.values()]


@router.get("/findings", response_model=list[FindingOut])
def findings(service: InspectionsDep, actor: ActorDep, red: RedactorDep) -> list[FindingOut]:
    """Active §2.9 overdue findings with whom they have reached on the escalation chain."""
    return [FindingOut(rule=f.rule, severity=f.severity.value, subject=red.text(red.subject(f.subject, f.zone)),
                       zone=f.zone, since=f.since, task_id=f.task_id, notify=red.value(list(f.notify)))
            for f in service.overdue()]


@router.get("/history", response_model=None,
            responses={200: {"content": {"application/json": {}, "text/csv": {}, "text/html": {}}}})
def history(service: InspectionsDep, actor: ActorDep, red: RedactorDep, zone: str | None = None,
            device: str | None = None,
            item: str | None = None, result: str | None = None, person: str | None = None,
            schedule: str | None = None, since: datetime | None = None, until: datetime | None = None,
            format: Literal["csv", "json", "html"] = "json") -> Response | list[dict[str, object]]:
    """One row per item; format=csv for spreadsheets, format=html for a printable report (compliance per
    zone and month, tasks with items, suggestions and overrides, who signed, hazards)."""
    try:
        query = HistoryQuery(zone=zone, device=device, item=item, result=result, person=person,
                             schedule=schedule, since=since, until=until)
        if format == "html":
            return Response(red.text(service.report_html(query)), media_type="text/html; charset=utf-8")
        if format == "csv":
            csv = red.text(service.history_csv(query).decode("utf-8")).encode("utf-8")  # the BOM stays
            return Response(csv, media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="inspections.csv"'})
        rows: list[dict[str, object]] = red.value([{k: getattr(r, k) for k in r.__slots__}
                                                   for r in service.history(query)])
        return rows
    except InspectionError as error:
        raise _http(error) from None


@router.get("/compliance", response_model=list[ComplianceOut])
def compliance(service: InspectionsDep, actor: ActorDep,
               month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")]) -> list[ComplianceOut]:
    try:
        return [ComplianceOut(**vars(c)) for c in service.compliance(month)]
    except InspectionError as error:
        raise _http(error) from None


@router.get("/{task_id}", response_model=TaskOut)
def get_task(task_id: RowId, service: InspectionsDep, actor: ActorDep, red: RedactorDep) -> TaskOut:
    try:
        return TaskOut.of(service.get(task_id)).shown(red)
    except InspectionError as error:
        raise _http(error) from None


@router.post("/{task_id}/complete", response_model=CompleteOut)
def complete(task_id: RowId, body: CompleteIn, request: Request, audit: AuditDep, service: InspectionsDep,
             actor: ActorDep, red: RedactorDep) -> CompleteOut:
    ids = [i.id for i in body.items]
    if len(ids) != len(set(ids)):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            {"code": "duplicate_item", "message": "an item appears more than once"})
    try:
        before = TaskOut.of(service.get(task_id)).model_dump(mode="json")
        done = service.complete(task_id, completer(actor, service), {i.id: (i.result, i.note) for i in body.items},
                                body.note)
        out = CompleteOut(task=TaskOut.of(service.get(task_id)), on_time=done.on_time, failed=list(done.failed),
                          hazards=list(done.hazards))
    except InspectionError as error:
        raise _http(error, red) from None
    audit_change(audit, actor, request, f"inspection:{task_id}", before, out.task.model_dump(mode="json"))
    return out.model_copy(update={"task": out.task.shown(red), "failed": red.value(out.failed),
                                  "hazards": red.value(out.hazards)})


@router.post("/{task_id}/photos", response_model=PhotoOut, status_code=status.HTTP_201_CREATED)
def add_photo(task_id: RowId, body: PhotoIn, request: Request, audit: AuditDep, service: InspectionsDep,
              actor: ActorDep, red: RedactorDep) -> PhotoOut:
    """A PNG or JPEG (≤ 5 MB) as base64 in JSON."""
    try:
        data = base64.b64decode(body.data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            {"code": "bad_photo", "message": "data_base64 is not valid base64"}) from None
    try:
        before = list(service.get(task_id).photos)
        out = PhotoOut(id=service.add_photo(task_id, completer(actor, service), data, body.item_id), task_id=task_id)
    except InspectionError as error:
        raise _http(error, red) from None
    audit_change(audit, actor, request, f"inspection:{task_id}", {"photos": before},
                 {"photos": list(service.get(task_id).photos)}, {"bytes": len(data), "item": body.item_id})
    return out


@router.get("/{task_id}/photos/{photo_id}")
def get_photo(task_id: RowId, photo_id: RowId, service: InspectionsDep, actor: ActorDep) -> Response:
    try:
        content_type, data = service.photo(task_id, photo_id)
    except InspectionError as error:
        raise _http(error) from None
    return Response(data, media_type=content_type)

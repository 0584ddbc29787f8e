"""Public API shapes (what the API promises), separate from the domain's own types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, Field

from server.domain import alarms as domain
from server.domain.catalog import unit_of
from server.domain.commands import CommandRecord
from server.domain.evacuation import is_drill_text
from server.domain.power import ScheduledCut

MAX_ROW_ID = 2**31 - 1
"""Row ids are SQL INTEGER (32-bit on PostgreSQL, 64-bit on SQLite): a larger number cannot name a row,
and passed to the driver it overflows (a 500 found by schemathesis); refused as a 422 instead."""
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]


CUT_STATES = {"cut": "cutting"}
"""A stored cut's status -> the state the API shows; the others are shown as they are stored."""
COMMAND_CUT_STATES = {"sent": "cutting", "ok": "done", "failed": "failed"}
"""An automatic cut's command status -> the same states as a delayed cut's."""


class CutPublic(BaseModel):
    """A plug's cut for an alarm (RULES.md §2.1): elec.high_power_appliance's delayed cut, or one plug of the
    automatic cut a critical overload sent at once (`automatic`)."""

    device: str
    state: str
    """pending, held, cutting (command sent, no result yet), done (the edge confirmed), failed, cancelled;
    an automatic cut is only cutting, done or failed."""
    due_at: datetime
    """When the cut is (or was) due; for an automatic cut, when its command was sent."""
    held_by: str | None
    """Who held it: a person, hidden like other person fields for a reader who may not see them."""
    why: str
    """The hold's reason, or why the cut was cancelled or failed."""
    at: datetime | None
    """When it was held, done, failed or cancelled."""
    automatic: bool = False
    """Sent by the rule the moment its alarm turned critical (the overload cut): nobody can hold it."""

    @classmethod
    def of(cls, cut: ScheduledCut) -> CutPublic:
        return cls(device=cut.device, state=CUT_STATES.get(cut.status, cut.status), due_at=cut.due_at,
                   held_by=cut.by or None, why=cut.why, at=cut.done_at)

    @classmethod
    def of_command(cls, command: CommandRecord, now: datetime) -> CutPublic:
        """One plug of an automatic cut, from its relay_off command; a failure says the edge's reason. A
        command still unanswered when it expired (the edge refuses it after that) has failed: "waiting for
        the plug" would otherwise stand as long as the alarm."""
        if command.status == "sent" and command.expires_at <= now:
            return cls(device=command.device, state="failed", due_at=command.issued_at, held_by=None,
                       automatic=True, at=command.expires_at,
                       why="no answer from the edge before the command expired: check the plug by hand")
        failed = command.status == "failed"
        return cls(device=command.device, state=COMMAND_CUT_STATES.get(command.status, command.status),
                   due_at=command.issued_at, held_by=None, automatic=True, at=command.result_at,
                   why=(command.error or "the edge reported the command failed") if failed else "")


class AlarmPublic(BaseModel):
    id: int
    rule: str
    severity: str
    state: str
    subject: str
    device: str | None
    zone: str | None
    site: str
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    shelved_until: datetime | None
    value: float | None
    """The latest value a finding carried: once cleared, the value it cleared at."""
    raised_value: float | None = None
    """The value it was raised at."""
    peak_value: float | None = None
    """The worst value as of the alarm's last change (raise, escalation, clear), not of every reading since;
    null for a rule with no single worse direction."""
    unit: str = ""
    """The unit of value, raised_value and peak_value ("" for a count or no value)."""
    last_raised_at: datetime | None = None
    """When it last became worse (escalated) or came back after its condition cleared; `raised_at` when
    neither happened. `raised_at` stays the first raise."""
    message: str
    message_zh: str
    occurrences: int
    latching: bool
    drill: bool = False
    """Caused by a drill (RULES.md §3 drill mode): its words carry the drill mark, its pages no 119 prompt."""
    cut: CutPublic | None = None
    """The delayed cut this alarm scheduled, if any (elec.high_power_appliance only)."""
    auto_cut: list[CutPublic] = Field(default_factory=list)
    """The plugs its critical overload switched off at once (rules that cut power, e.g. elec.strip_overload,
    elec.plug_overcurrent), one per plug in the order they were sent; empty when it cut nothing."""

    @classmethod
    def of(cls, alarm: domain.Alarm, device_ids: set[str] | frozenset[str] = frozenset()) -> AlarmPublic:
        assert alarm.id is not None
        return cls(
            id=alarm.id, rule=alarm.rule, severity=alarm.severity.value, state=alarm.state.value,
            subject=alarm.subject, device=alarm.subject if alarm.subject in device_ids else None,
            zone=alarm.zone, site=alarm.site, raised_at=alarm.raised_at, acknowledged_at=alarm.acknowledged_at,
            acknowledged_by=alarm.acknowledged_by, cleared_at=alarm.cleared_at, shelved_until=alarm.shelved_until,
            value=alarm.value, raised_value=alarm.raised_value, peak_value=alarm.peak_value,
            unit=unit_of(alarm.rule), last_raised_at=alarm.latest_raise, message=alarm.message,
            message_zh=alarm.message_zh,
            occurrences=alarm.occurrences, latching=alarm.latching,
            drill=is_drill_text(alarm.message_zh, alarm.message),
        )


class AlarmAck(BaseModel):
    note: str = Field("", max_length=2000)


class AlarmShelve(BaseModel):
    until: datetime
    reason: str = Field(min_length=1, max_length=2000)


class AlarmClose(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class DeadLetterPublic(BaseModel):
    id: int
    received_at: datetime
    topic: str
    source: str
    reason: str
    payload: str


class DevicePublic(BaseModel):
    id: str
    kind: str
    zone: str
    edge: str
    name: str
    rated_a: float | None
    essential: bool
    cuttable: bool
    door_type: str | None
    online: bool | None
    last_seen: datetime | None
    metrics: dict[str, Any]


class ReadingPublic(BaseModel):
    ts: datetime
    value: float | bool | None


class Health(BaseModel):
    status: str
    """ok when every dependency is up, degraded otherwise."""
    dependencies: dict[str, dict[str, Any]]
    ingest: dict[str, Any]


class ErrorOut(BaseModel):
    """Every refusal: `detail` is a sentence, a list of field errors (request validation), or
    `{code, message}` (inspections)."""

    detail: str | list[dict[str, Any]] | dict[str, Any]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 413, 422, 429)}
"""Documented on every /api router, so the OpenAPI description matches what the API answers."""

"""What the notification service queues: one message for one recipient through one channel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.contract import Severity
from server.domain import alarms as domain
from server.domain import notify as routing
from server.domain.findings import Finding

NotifyResult = Callable[[str, bool], None]
Commit = Callable[[Sequence[Finding], datetime], object]


@dataclass(frozen=True, slots=True)
class Push:
    """What to queue: one message for one recipient through one channel."""

    dedupe_key: str
    alarm_id: int | None
    ref: str
    recipient: str
    url: str
    severity: Severity
    text: routing.Text
    items: list[routing.Item]
    group_key: str | None = None
    fallback: bool = False
    hold: timedelta = timedelta(0)
    suppressed: str | None = None


def info_of(alarm: domain.Alarm, drill: bool = False) -> routing.AlarmInfo:
    assert alarm.id is not None
    return routing.AlarmInfo(alarm.id, alarm.rule, alarm.severity, alarm.subject, alarm.zone, alarm.site,
                             alarm.value, alarm.message, alarm.message_zh, drill, raised_at=alarm.latest_raise)

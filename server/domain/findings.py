"""What a rule says: a condition was raised or cleared for one subject.

A `Finding` is an edge, not a level: the engine emits RAISE when a condition starts (or worsens to a
higher severity: staged severity, the same alarm escalated), and CLEAR when it ends. The alarm state
machine (`alarms.apply`) turns findings into alarms; one alarm per (rule, subject).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.contract import Severity

SEVERITY_RANK: dict[Severity, int] = {
    Severity.WARNING: 0,
    Severity.MINOR: 1,
    Severity.MAJOR: 2,
    Severity.CRITICAL: 3,
}
"""Order of severities (the enum's own order is alphabetical, not by danger)."""


def worse(a: Severity, b: Severity) -> Severity:
    """The more severe of two severities."""
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


class Transition(StrEnum):
    RAISE = "raise"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule transition for one subject.

    `subject` is the device id for device rules, the zone id for zone rules (fire.confirmed, env.*),
    the floor id for floor rules (elec.voltage_out_of_range, evac.notice), the edge id for
    sup.gateway_offline, the person id for person rules (access.*), the channel for sup.notify_channel.
    `value` is the measured value that matters (for elec.strip_overload: the current in A).
    `message_zh` carries the Chinese text RULES.md quotes for the rule, when it quotes one.
    `peak` is the worst value while the condition held (the catalog's `Measure` says which way is worse),
    on a CLEAR and on a worsening RAISE; None when the rule keeps none.
    """

    rule: str
    transition: Transition
    severity: Severity
    subject: str
    zone: str | None
    site: str
    value: float | None
    message: str
    ts: datetime
    message_zh: str = ""
    peak: float | None = None

    @property
    def is_raise(self) -> bool:
        return self.transition is Transition.RAISE

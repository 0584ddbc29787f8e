"""Overdue duties (inspections, drills, training, ...) as alarms like any other (RULES.md §2.9)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from server.domain.catalog import CATALOG, Check
from server.domain.findings import Finding, Transition
from server.domain.inspections import OVERDUE_BY_ID, OverdueFinding
from server.domain.site import Site
from server.services.alarms import AlarmService

DUTY_RULE_PREFIXES = frozenset(
    spec.family for spec in CATALOG.values() if spec.check is Check.SCHEDULE and spec.section == "2.9"
)


class OverdueDuties:
    """Called with each pass's overdue findings (the inspection scheduler): raises theirs, clears done ones."""

    def __init__(self, site: Site, alarms: AlarmService, clock: Callable[[], datetime]) -> None:
        self.site = site
        self.alarms = alarms
        self.clock = clock

    def __call__(self, overdue: Sequence[OverdueFinding]) -> None:
        now = self.clock()
        findings = []
        for o in overdue:
            en, zh = o.messages(self.site.tz)
            findings.append(Finding(o.rule, Transition.RAISE, o.severity, o.subject, o.zone, self.site.id, None,
                                    en, now, zh))
        current = {(o.rule, o.subject) for o in overdue}
        findings += [Finding(a.rule, Transition.CLEAR, a.severity, a.subject, a.zone, self.site.id, None,
                             "duty done", now)
                     for a in self.alarms.open_alarms()
                     if (a.rule.split(".")[0] in DUTY_RULE_PREFIXES or a.rule in OVERDUE_BY_ID)
                     and (a.rule, a.subject) not in current]
        self.alarms.commit(findings, now)

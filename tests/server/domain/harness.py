"""A fake floor for rule tests: the example site, a rule engine and a clock that only moves when told."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.contract import Event, EventType, Severity
from server.domain.findings import Finding, Transition
from server.domain.rules import RuleEngine
from server.domain.rules.supervision import OFFLINE_RULES
from server.domain.site import Site, parse_site

EXAMPLE = Path(__file__).resolve().parents[3] / "server" / "domain" / "examples" / "site-small.yaml"
# Monday 2026-11-30 10:00 in Shanghai (02:00 UTC): the day shift (08:00-20:00 local) is on duty.
DAY = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
# Monday 2026-11-30 21:00 local (13:00 UTC): the day shift ended an hour ago; s-001 is not rostered.
EVENING = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


def load_site(text: str | None = None) -> Site:
    return parse_site(text if text is not None else EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))


class Floor:
    """Drives a RuleEngine with a fake clock and keeps every finding it produced."""

    def __init__(self, start: datetime = DAY, site: Site | None = None, *, supervise: bool = False) -> None:
        self.site = site or load_site()
        self.engine = RuleEngine(self.site)
        self.now = start
        self.findings: list[Finding] = []
        self.supervise = supervise
        self._collect(self.engine.tick(self.now))

    def _collect(self, found: Iterable[Finding]) -> list[Finding]:
        found = list(found)
        if not self.supervise:
            # Most tests are about one rule; silence alarms of other devices would be noise.
            found = [f for f in found if f.rule not in (*OFFLINE_RULES, "sup.gateway_offline")]
        self.findings += found
        return found

    def read(self, device: str, **metrics: bool | float) -> list[Finding]:
        return self._collect(self.engine.on_reading(device, self.now, metrics, self.now))

    def event(self, device: str, type: EventType, **fields: object) -> list[Finding]:
        event = Event(device=device, ts=self.now, type=type, **fields)  # type: ignore[arg-type]
        return self._collect(self.engine.on_event(event, self.now))

    def advance(self, seconds: float, step: float = 1.0) -> list[Finding]:
        """Move the clock, ticking every `step` seconds as the server does."""
        out: list[Finding] = []
        end = self.now + timedelta(seconds=seconds)
        while self.now < end:
            self.now = min(self.now + timedelta(seconds=step), end)
            out += self._collect(self.engine.tick(self.now))
        return out

    def hold(
        self, device: str, seconds: float, every: float = 10.0, **metrics: bool | float
    ) -> list[Finding]:
        """Report the same values every `every` seconds for `seconds`, ticking in between."""
        out = self.read(device, **metrics)
        elapsed = 0.0
        while elapsed < seconds:
            out += self.advance(every)
            elapsed += every
            out += self.read(device, **metrics)
        return out

    def call(self, found: list[Finding]) -> list[Finding]:
        return self._collect(found)

    # ---- assertions ----------------------------------------------------------------------------

    def raised(self, rule: str, subject: str | None = None) -> list[Finding]:
        return [
            f
            for f in self.findings
            if f.rule == rule
            and f.transition is Transition.RAISE
            and (subject is None or f.subject == subject)
        ]

    def cleared(self, rule: str, subject: str | None = None) -> list[Finding]:
        return [
            f
            for f in self.findings
            if f.rule == rule
            and f.transition is Transition.CLEAR
            and (subject is None or f.subject == subject)
        ]

    def severity(self, rule: str, subject: str) -> Severity | None:
        return self.engine.open_conditions().get((rule, subject))

    def is_open(self, rule: str, subject: str) -> bool:
        return (rule, subject) in self.engine.open_conditions()

"""Wiring for the response tests: alarm, notification, command and evacuation services on one database."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway import contract
from gateway.contract import Severity
from server.adapters.notify import AppriseSender
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.evacuations import EvacuationRepository
from server.adapters.sql.leases import LeaseStore
from server.adapters.sql.notifications import NotifyRepository
from server.adapters.sql.silences import SilenceRepository
from server.domain import alarms as domain
from server.domain.findings import Finding, Transition
from server.domain.rules import RuleEngine
from server.domain.site import Site
from server.services.alarms import AlarmService
from server.services.commands import CommandService
from server.services.evacuation import EvacuationService
from server.services.lease import LeaseKeeper
from server.services.live import LiveState
from server.services.notify import NotificationService
from server.services.overload_cut import OverloadCut
from tests.server.services.conftest import BASE_URL, FakeClock


def by_id(alarms: AlarmService):  # type: ignore[no-untyped-def]
    return lambda alarm_id: next((a for a in alarms.open_alarms() if a.id == alarm_id), None)


def wire(sessions: sessionmaker[Session], site: Site, clock: FakeClock, worker: str = "w1",
         **kw) -> tuple[AlarmService, NotificationService]:  # type: ignore[no-untyped-def]
    alarms = AlarmService(AlarmWriter(sessions), [])
    kw.setdefault("commit", alarms.commit)  # the warning -> minor escalation goes back through the alarms
    svc = NotificationService(NotifyRepository(sessions), site, clock, AppriseSender(),
                              silences=SilenceRepository(sessions), base_url=BASE_URL, worker_id=worker,
                              open_alarms=alarms.open_alarms, alarm_by_id=by_id(alarms), **kw)
    alarms.listeners.append(svc.on_alarm)
    return alarms, svc


def leased(engine: Engine, owner: str) -> LeaseKeeper:
    """`owner` holds site r1's lease; renewals every 100 s, so only its own commits notice a takeover."""
    keeper = LeaseKeeper(LeaseStore(engine), "r1", owner, ttl_s=300, renew_s=100, site_hash="h")
    keeper.on_lost = lambda _reason: None
    assert keeper.acquire(threading.Event()) is not None, f"{owner} did not get the lease"
    return keeper


def raise_alarm(alarms: AlarmService, rule: str, subject: str, zone: str | None, severity: Severity,
                now: datetime, message: str = "", zh: str = "", value: float | None = None) -> domain.Alarm:
    changed = alarms.commit([Finding(rule, Transition.RAISE, severity, subject, zone, "r1", value,
                                     message or f"{rule} on {subject}", now, zh)], now)
    return next(a for a in changed if a.rule == rule and a.subject == subject)


@dataclass
class Response:
    """The rule engine, command and evacuation services on one database (what the fire response drives)."""

    engine: RuleEngine
    call: Callable[[Callable[[RuleEngine, datetime], list[Finding]]], list[Finding]]
    """Ingest.call: runs an engine input now and commits what it found (when there is an alarm service)."""
    commands: CommandService
    evac: EvacuationService
    sent: list[contract.Command] = field(default_factory=list)
    """Every command sent to an edge, in order."""
    notices: list[contract.EvacuationNotice] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    """Every finding the engine made through `call`, in order."""


def response(sessions: sessionmaker[Session], site: Site, clock: FakeClock, alarms: AlarmService | None = None,
             notify: NotificationService | None = None) -> Response:
    """Wire the response services; with `alarms`, engine findings are committed and the evacuation listens."""
    engine = RuleEngine(site)
    sent: list[contract.Command] = []
    notices: list[contract.EvacuationNotice] = []
    findings: list[Finding] = []

    def call(fn: Callable[[RuleEngine, datetime], list[Finding]]) -> list[Finding]:
        made = fn(engine, clock())
        findings.extend(made)
        if alarms is not None:
            alarms.commit(made, clock())
        return made

    commands = CommandService(CommandRepository(sessions), site, clock, lambda _t, c: sent.append(c), call)
    evac = EvacuationService(EvacuationRepository(sessions), site, clock, commands, notify, notices.append, call)
    if alarms is not None:
        alarms.listeners.append(evac.on_alarm)
    return Response(engine, call, commands, evac, sent, notices, findings)


def overload_cuts(sessions: sessionmaker[Session], site: Site,
                  clock: FakeClock) -> tuple[AlarmService, LiveState, list[contract.Command]]:
    """The alarm service with the critical overload's cut listening (OverloadCut, started an hour ago), the
    live state it reads plug loads from, and the commands it publishes."""
    alarms = AlarmService(AlarmWriter(sessions), [])
    sent: list[contract.Command] = []
    commands = CommandService(CommandRepository(sessions), site, clock, lambda _t, c: sent.append(c),
                              lambda fn: fn(None, clock()))
    live = LiveState()
    alarms.listeners.append(OverloadCut(site, commands, live, alarms.by_id, clock() - timedelta(hours=1)).on_alarm)
    return alarms, live, sent

"""Alarms persisted through SQLAlchemy on SQLite and on a real PostgreSQL: they survive a restart,
the database keeps one open alarm per (rule, subject), and every transition has an audit row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from gateway.contract import Severity
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.models import AlarmRow
from server.adapters.sql.repository import AlarmRepository
from server.domain.alarms import AlarmState
from server.domain.findings import Finding, Transition
from server.services.alarms import AlarmError, AlarmService

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def finding(transition: Transition = Transition.RAISE, severity: Severity = Severity.MAJOR,
            value: float = 11.0, at: datetime = T0) -> Finding:
    return Finding("elec.strip_overload", transition, severity, "strip-1", "z1", "hq", value,
                   "strip over its rating", at)


def service(url: str) -> tuple[AlarmService, AlarmRepository]:
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    repository = AlarmRepository(sessions)
    return AlarmService(AlarmWriter(sessions), repository.open_alarms()), repository


def test_an_alarm_survives_a_restart_and_a_retrigger_updates_it(database_url: str) -> None:
    first, _ = service(database_url)
    [raised] = first.commit([finding()], T0)
    assert raised.id is not None and raised.state is AlarmState.ACTIVE

    again, repository = service(database_url)  # a new process on the same database
    assert [a.id for a in again.open_alarms()] == [raised.id]
    [updated] = again.commit([finding(severity=Severity.CRITICAL, value=13.0, at=T0 + timedelta(minutes=5))],
                             T0 + timedelta(minutes=5))
    assert (updated.id, updated.severity, updated.occurrences) == (raised.id, Severity.CRITICAL, 2)
    assert len(repository.query()) == 1
    actions = [row.action for row in repository.audit(raised.id)]
    assert actions == ["raise", "escalate"]


def test_acknowledge_then_clear_closes_and_records_who(database_url: str) -> None:
    alarms, repository = service(database_url)
    [raised] = alarms.commit([finding()], T0)
    assert raised.id is not None
    acked = alarms.acknowledge(raised.id, "lead-li", "checking the strip", T0 + timedelta(seconds=30))
    assert acked.acknowledged_by == "lead-li"
    alarms.commit([finding(Transition.CLEAR, at=T0 + timedelta(minutes=2))], T0 + timedelta(minutes=2))
    stored = repository.get(raised.id)
    assert stored is not None and stored.state is AlarmState.CLEARED
    assert alarms.open_alarms() == []
    with pytest.raises(AlarmError):
        alarms.acknowledge(raised.id, "lead-li", "again", T0 + timedelta(minutes=3))
    audit = repository.audit(raised.id)
    assert [(r.who, r.action) for r in audit] == [("system", "raise"), ("lead-li", "acknowledge"),
                                                   ("system", "clear")]


def test_the_database_refuses_a_second_open_alarm_for_the_same_rule_and_subject(database_url: str) -> None:
    alarms, repository = service(database_url)
    [raised] = alarms.commit([finding()], T0)
    with repository.sessions.begin() as session, pytest.raises(IntegrityError):
        session.add(AlarmRow(site="hq", rule=raised.rule, subject=raised.subject, zone="z1", severity="major",
                             state="active", is_open=True, raised_at=T0, updated_at=T0, value=1.0, message="",
                             message_zh="", occurrences=1, flap_count=0, latching=False, extra={}))
        session.flush()


def test_instants_from_a_clock_in_another_zone_come_back_as_the_same_instant(database_url: str) -> None:
    from zoneinfo import ZoneInfo

    alarms, repository = service(database_url)
    shanghai = T0.astimezone(ZoneInfo("Asia/Shanghai"))
    [raised] = alarms.commit([finding(at=shanghai)], shanghai)
    assert raised.id is not None
    stored = repository.get(raised.id)
    assert stored is not None and stored.raised_at == T0 and stored.raised_at.utcoffset() == timedelta(0)


def test_a_cleared_alarm_keeps_its_raise_and_peak_values_across_a_restart(database_url: str) -> None:
    first, _ = service(database_url)
    [raised] = first.commit([finding(value=12.56)], T0)
    clear = Finding("elec.strip_overload", Transition.CLEAR, Severity.MAJOR, "strip-1", "z1", "hq", 3.674,
                    "strip back under its rating", T0 + timedelta(minutes=3), peak=14.2)
    first.commit([clear], T0 + timedelta(minutes=3))

    _, repository = service(database_url)  # a new process on the same database
    assert raised.id is not None
    stored = repository.get(raised.id)
    assert stored is not None
    assert (stored.value, stored.raised_value, stored.peak_value) == (3.674, 12.56, 14.2)


def test_an_alarm_raised_by_an_older_version_reads_its_value_as_the_raised_one(database_url: str) -> None:
    # A rolling upgrade: the older worker stored no raised_value (nor peak_value) in the extras.
    _, repository = service(database_url)
    with repository.sessions.begin() as session:
        for subject, is_open, active in (("strip-1", True, True), ("strip-2", False, False)):
            session.add(AlarmRow(site="hq", rule="elec.strip_overload", subject=subject, zone="z1",
                                 severity="major", state="active" if is_open else "cleared", is_open=is_open,
                                 raised_at=T0, updated_at=T0, value=12.5, message="", message_zh="",
                                 occurrences=1, flap_count=0, latching=False,
                                 extra={"condition_active": active}))
    by_subject = {a.subject: a for a in repository.query()}
    assert by_subject["strip-1"].raised_value == 12.5  # still holding: its value is one it held at
    assert by_subject["strip-2"].raised_value is None  # cleared: its value is the clearing one
    assert by_subject["strip-1"].peak_value is None


def test_a_limited_list_of_open_alarms_drops_the_least_urgent_never_a_critical(database_url: str) -> None:
    """A floor in an outage raises hundreds of minor alarms after a critical one: a client asking for the open
    alarms with a limit (the live page, 500 by default) must get the critical, not only the newest."""
    alarms, repository = service(database_url)
    [critical] = alarms.commit([finding(severity=Severity.CRITICAL, value=13.0)], T0)
    later = T0 + timedelta(minutes=1)
    minors = alarms.commit([Finding("sup.sensor_offline", Transition.RAISE, Severity.MINOR, f"plug-{n}", "z1", "hq",
                                    None, "offline", later) for n in range(3)], later)
    assert len(minors) == 3
    shown = repository.query(open_only=True, limit=2)
    assert [a.severity for a in shown] == [Severity.CRITICAL, Severity.MINOR]
    assert shown[0].id == critical.id
    # among equals, the newest first, as before
    newest_minors = sorted((m.id for m in minors if m.id is not None), reverse=True)
    assert [a.id for a in repository.query(open_only=True)] == [critical.id, *newest_minors]

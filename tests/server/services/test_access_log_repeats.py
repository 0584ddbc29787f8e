"""The access log that roll call reads keeps one row per badge event however often the broker hands the event
over (issue 15): a redelivery after a crash, the next owner after a takeover getting what the old one did
not acknowledge, and the old owner writing it too before it noticed the loss. The roll call reads the
same as from one delivery. Real SQLite and PostgreSQL, migrated to head (the table's key comes from
migration 0011); two AccessLogs on one database stand for the old and the new owner.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from gateway import contract
from gateway.mqtt import Incoming
from server.adapters.sql.access_log import AccessLogRepository
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.database import session_factory
from server.adapters.sql.evacuations import EvacuationRepository
from server.adapters.sql.response_models import AccessLogRow
from server.domain.site import Site
from server.services.access_log import AccessLog
from server.services.commands import CommandService
from server.services.evacuation import EvacuationService
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml


def badges(seq: int, *events: tuple[str, str, str, datetime]) -> Incoming:
    """An event batch of edge e1: (badge, door, direction, time) access grants."""
    body = {"v": 1, "edge": "e1", "seq": seq, "sent_at": T0.isoformat(),
            "events": [{"device": door, "ts": ts.isoformat(), "type": "access_granted", "badge": badge,
                        "direction": direction} for badge, door, direction, ts in events]}
    return Incoming(topic=contract.edge_topic("r1", "e1", contract.Channel.EVENTS),
                    payload=json.dumps(body).encode(), qos=1, retain=False, dup=False, mid=seq)


def owner(sessions: object, site: Site, clock: FakeClock) -> tuple[AccessLog, EvacuationService]:
    """One worker's access log and evacuations."""
    commands = CommandService(CommandRepository(sessions), site, clock,  # type: ignore[arg-type]
                              lambda _topic, _command: None)
    return (AccessLog(AccessLogRepository(sessions), site),  # type: ignore[arg-type]
            EvacuationService(EvacuationRepository(sessions), site, clock, commands, None,  # type: ignore[arg-type]
                              lambda _notice: None, None))


def test_a_badge_event_handed_over_again_is_one_row_and_the_roll_call_reads_as_from_one_delivery(
    engine: Engine, tmp_path: Path,
) -> None:
    sessions = session_factory(engine)
    site = make_site(site_yaml(2525, 8080), tmp_path)
    clock = FakeClock(T0)
    (old, _), (new, evacuations) = owner(sessions, site, clock), owner(sessions, site, clock)
    arrived = badges(1, ("B11", "door-z1-exit", "in", T0 - timedelta(hours=1)),
                     ("B12", "door-z2-exit", "in", T0 - timedelta(hours=1)))
    left = badges(2, ("B11", "door-z1-exit", "out", T0 + timedelta(minutes=2)))

    assert old.record(arrived) == 2
    assert old.record(arrived) == 0, "a redelivery to the same owner wrote the events again"
    ev = evacuations.start("f1", "z1", drill=True, trigger="manual", reason="drill", who="sup")
    clock.advance(timedelta(minutes=3))
    assert new.record(arrived) == 0, "the next owner wrote again what the old one had written"
    assert old.record(left) == 1  # the old owner, not yet aware of the takeover
    assert new.record(left) == 0
    assert new.record(badges(2, ("B11", "door-z1-exit", "out", T0 + timedelta(minutes=2)),
                             ("B11", "door-z1-exit", "out", T0 + timedelta(minutes=2)))) == 0

    with sessions() as session:
        stored = session.scalar(select(func.count()).select_from(AccessLogRow))
    roll = {e.person: (e.status, e.accounted_at) for e in evacuations.roll_call(ev["id"])}

    assert stored == 3, f"{stored} access_log rows for 3 badge events"
    assert roll["p-op1"] == ("out", T0 + timedelta(minutes=2)), roll
    assert roll["p-op2"] == ("inside", None), roll
    assert roll["p-lead"] == ("unknown", None), roll
    assert set(roll) == {"p-op1", "p-op2", "p-lead"}, roll


def test_a_card_read_in_another_case_than_the_site_file_counts_for_its_person(engine: Engine, tmp_path: Path) -> None:
    """esp-rfid writes a card's hex in lower case, Tasmota's readers and the printed badge in upper case: the
    site file's `B11` read as `b11` (or with a blank around it) is still p-op1 in the roll call."""
    sessions = session_factory(engine)
    site = make_site(site_yaml(2526, 8081), tmp_path)
    log, evacuations = owner(sessions, site, FakeClock(T0))
    assert log.record(badges(1, ("b11", "door-z1-exit", "in", T0 - timedelta(hours=1)),
                             (" b12 ", "door-z2-exit", "in", T0 - timedelta(hours=1)))) == 2
    ev = evacuations.start("f1", "z1", drill=True, trigger="manual", reason="drill", who="sup")
    assert log.record(badges(2, ("b11", "door-z1-exit", "out", T0 + timedelta(minutes=1)))) == 1
    roll = {e.person: e.status for e in evacuations.roll_call(ev["id"])}
    assert roll == {"p-op1": "out", "p-op2": "inside", "p-lead": "unknown"}, roll

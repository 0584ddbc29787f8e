"""elec.relay_reenable_guard after the edge's own overload interlock (RULES.md §2.1): a plug the edge switched
off at 125 % of its rating for 10 s (a critical overload, cut with the uplink up or down) is switched on again
only by a shift lead or above, with a reason and a licensed electrician's sign-off, as after the server's own
critical overload cut. The trip reaches the server as an `interlock_tripped` event; no command of the
server's cut the plug, so the guard used to find nothing and let any signed-in person restore it.

A restore that the edge did not carry out (failed, or never answered) leaves the guard in place.

Real parts: PostgreSQL, Ingest (the edge's event batch as it comes off the broker), CommandService and
the rule engine. The MQTT publish is a list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from gateway import contract
from gateway.mqtt import Incoming
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.models import AuditRow
from server.adapters.timeseries import SqliteSeriesStore
from server.domain.rules.engine import RuleEngine
from server.services.alarms import AlarmService
from server.services.commands import CommandError, CommandService
from server.services.ingest import Ingest
from server.services.live import LiveState
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml

PLUG = "plug-z1-kettle"


class Floor:
    """The test floor's command service and ingest on PostgreSQL; `sent`: what went to the edges."""

    def __init__(self, sessions: sessionmaker[Session], tmp_path: Path) -> None:
        site = make_site(site_yaml(2525, 8080), tmp_path)
        self.clock = FakeClock(T0)
        self.sent: list[contract.Command] = []
        self.commands = CommandService(CommandRepository(sessions), site, self.clock,
                                       lambda _topic, command: self.sent.append(command),
                                       lambda fn: self.ingest.call(fn))
        self.series = SqliteSeriesStore(tmp_path / "series.sqlite")
        self.ingest = Ingest(site, RuleEngine(site), AlarmService(AlarmWriter(sessions), []), self.series,
                             LiveState(), clock=self.clock, on_command_result=self.commands.on_result,
                             on_interlock=self.commands.on_interlock, tick_s=3600)
        self.seq = 0

    def trip(self, edge_behind: timedelta = timedelta(0)) -> None:
        """The edge's `interlock_tripped` for the kettle's plug, stamped by an edge clock `edge_behind` late."""
        self.seq += 1
        ts = (self.clock() - edge_behind).isoformat().replace("+00:00", "Z")
        batch = {"v": 1, "edge": "e1", "seq": self.seq, "sent_at": ts, "events": [{
            "device": PLUG, "ts": ts, "type": "interlock_tripped",
            "detail": "12.80 A >= 12.50 A for 10 s; relay switched off by the edge"}]}
        self.ingest.process([Incoming(topic=contract.edge_topic("r1", "e1", contract.Channel.EVENTS),
                                      payload=json.dumps(batch).encode(), qos=1, retain=False, dup=False,
                                      mid=self.seq)])


@pytest.fixture
def floor(pg_db: tuple[Engine, sessionmaker[Session]], tmp_path: Path) -> Iterator[Floor]:
    built = Floor(pg_db[1], tmp_path)
    try:
        yield built
    finally:
        built.series.close()


def test_a_plug_the_edge_interlock_cut_needs_the_lead_and_an_electrician_to_come_back_on(floor: Floor) -> None:
    commands, sent, clock = floor.commands, floor.sent, floor.clock
    floor.trip()

    with pytest.raises(CommandError, match="shift lead"):
        commands.relay(PLUG, True, "need my kettle", "op", {"operator"})
    with pytest.raises(CommandError, match="electrician"):
        commands.relay(PLUG, True, "checked", "lead", {"shift_lead"})
    assert not sent, "the interlock's plug was switched on again without the guard"
    history = commands.commands(device=PLUG)
    assert [(c["action"], c["who"], c["status"]) for c in history] == [("relay_off", "edge", "ok")]

    # the lead's restore that the edge refused leaves the plug off: the guard still holds
    clock.advance(timedelta(seconds=5))
    restore = commands.relay(PLUG, True, "electrician checked", "lead", {"shift_lead"}, True)
    commands.on_result("e1", contract.CommandResult(id=restore.id, ok=False, ts=clock(), error="plug offline"))
    clock.advance(timedelta(seconds=5))
    with pytest.raises(CommandError, match="shift lead"):
        commands.relay(PLUG, True, "need my kettle", "op", {"operator"})


def test_a_trip_after_a_restore_guards_the_plug_when_the_edge_clock_runs_behind(floor: Floor) -> None:
    """The edge's clock is 2 min behind: its second trip, after a restore that worked, is stamped before
    that restore. Stored at the edge's time it sorted behind the restore, and the guard was gone."""
    commands = floor.commands
    floor.trip(edge_behind=timedelta(minutes=2))
    floor.clock.advance(timedelta(seconds=5))
    restore = commands.relay(PLUG, True, "electrician checked", "lead", {"shift_lead"}, True)
    commands.on_result("e1", contract.CommandResult(id=restore.id, ok=True, ts=floor.clock()))
    floor.clock.advance(timedelta(seconds=60))
    floor.trip(edge_behind=timedelta(minutes=2))  # stamped 55 s before the restore, by the edge's clock
    with pytest.raises(CommandError, match="shift lead"):
        commands.relay(PLUG, True, "need my kettle", "op", {"operator"})
    assert [c.action for c in floor.sent] == ["relay_on"], "only the lead's restore went out"
    latest = commands.commands(device=PLUG)[0]
    assert (latest["who"], latest["issued_at"]) == ("edge", floor.clock())
    edge_at = (floor.clock() - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert f"at {edge_at}" in latest["reason"], "the edge's own time of the trip is in the reason"


def test_a_redelivered_trip_is_recorded_once(floor: Floor, pg_db: tuple[Engine, sessionmaker[Session]]) -> None:
    """The broker delivers the edge's trip again (QoS 1): one command and one audit row, not two."""
    event = contract.Event(device=PLUG, ts=floor.clock(), type=contract.EventType.INTERLOCK_TRIPPED,
                           detail="12.80 A >= 12.50 A for 10 s; relay switched off by the edge")
    floor.commands.on_interlock("e1", event)
    floor.clock.advance(timedelta(seconds=3))
    floor.commands.on_interlock("e1", event)
    assert [(c["action"], c["who"]) for c in floor.commands.commands(device=PLUG)] == [("relay_off", "edge")]
    with pg_db[1]() as session:
        audit = session.scalars(select(AuditRow).where(AuditRow.action == "relay.off")).all()
    assert [a.who for a in audit] == ["edge"]

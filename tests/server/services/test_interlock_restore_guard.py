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
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway import contract
from gateway.mqtt import Incoming
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.commands import CommandRepository
from server.adapters.timeseries import SqliteSeriesStore
from server.domain.rules.engine import RuleEngine
from server.services.alarms import AlarmService
from server.services.commands import CommandError, CommandService
from server.services.ingest import Ingest
from server.services.live import LiveState
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml


def test_a_plug_the_edge_interlock_cut_needs_the_lead_and_an_electrician_to_come_back_on(
    pg_db: tuple[Engine, sessionmaker[Session]], tmp_path: Path,
) -> None:
    _, sessions = pg_db
    site = make_site(site_yaml(2525, 8080), tmp_path)
    clock = FakeClock(T0)
    series = SqliteSeriesStore(tmp_path / "series.sqlite")
    sent: list[contract.Command] = []
    ingest: Ingest
    commands = CommandService(CommandRepository(sessions), site, clock,
                              lambda _topic, command: sent.append(command), lambda fn: ingest.call(fn))
    ingest = Ingest(site, RuleEngine(site), AlarmService(AlarmWriter(sessions), []), series, LiveState(),
                    clock=clock, on_command_result=commands.on_result, on_interlock=commands.on_interlock,
                    tick_s=3600)
    ts = clock().isoformat().replace("+00:00", "Z")
    trip = {"v": 1, "edge": "e1", "seq": 1, "sent_at": ts, "events": [{
        "device": "plug-z1-kettle", "ts": ts, "type": "interlock_tripped",
        "detail": "12.80 A >= 12.50 A for 10 s; relay switched off by the edge"}]}
    try:
        ingest.process([Incoming(topic=contract.edge_topic("r1", "e1", contract.Channel.EVENTS),
                                 payload=json.dumps(trip).encode(), qos=1, retain=False, dup=False, mid=1)])
    finally:
        series.close()

    with pytest.raises(CommandError, match="shift lead"):
        commands.relay("plug-z1-kettle", True, "need my kettle", "op", {"operator"})
    with pytest.raises(CommandError, match="electrician"):
        commands.relay("plug-z1-kettle", True, "checked", "lead", {"shift_lead"})
    assert not sent, "the interlock's plug was switched on again without the guard"
    history = commands.commands(device="plug-z1-kettle")
    assert [(c["action"], c["who"], c["status"]) for c in history] == [("relay_off", "edge", "ok")]

    # the lead's restore that the edge refused leaves the plug off: the guard still holds
    clock.advance(timedelta(seconds=5))
    restore = commands.relay("plug-z1-kettle", True, "electrician checked", "lead", {"shift_lead"}, True)
    commands.on_result("e1", contract.CommandResult(id=restore.id, ok=False, ts=clock(), error="plug offline"))
    clock.advance(timedelta(seconds=5))
    with pytest.raises(CommandError, match="shift lead"):
        commands.relay("plug-z1-kettle", True, "need my kettle", "op", {"operator"})

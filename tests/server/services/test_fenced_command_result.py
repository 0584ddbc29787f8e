"""A command result that reaches an old owner after the takeover (issue 15): its fence fails the ingest
drain, and a call that drain took from the inbox (a relay request's engine input, which the API waits for)
gets LeaseLost at once, so the API answers 503, instead of waiting out its 10 s timeout for a 500. Nothing
is committed: the command's row keeps the status `sent` for the next owner's record.

Real parts: PostgreSQL (the lease row and the fence's UPDATE), the real LeaseKeeper, CommandService and
Ingest with its worker thread, and the embedded SQLite series store, its file locked by a second
connection so that it holds the ingest thread (back-pressure) while the result and the call queue up
behind it in one drain. The MQTT publish is a list.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from gateway import contract
from gateway.mqtt import Incoming
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.response_models import CommandRow
from server.adapters.timeseries import SqliteSeriesStore
from server.domain.findings import Finding
from server.domain.leases import LeaseLost
from server.domain.rules.engine import RuleEngine
from server.services.alarms import AlarmService
from server.services.commands import CommandService
from server.services.ingest import Ingest
from server.services.live import LiveState
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import leased
from tests.support.wait import wait_until

CALL_TIMEOUT_S = 10.0
"""Ingest.call's default: what the API call waited before it failed with a 500."""


def incoming(channel: contract.Channel, body: dict[str, object], mid: int) -> Incoming:
    return Incoming(topic=contract.edge_topic("r1", "e1", channel), payload=json.dumps(body).encode(), qos=1,
                    retain=False, dup=False, mid=mid)


def test_a_command_result_after_the_takeover_fails_the_waiting_call_with_lease_lost_at_once(
    pg_db: tuple[Engine, sessionmaker[Session]], tmp_path: Path,
) -> None:
    engine, sessions = pg_db
    keeper = leased(engine, "a")
    fence = keeper.fencer()
    site = make_site(site_yaml(2525, 8080), tmp_path)
    clock = FakeClock(T0)
    series = SqliteSeriesStore(tmp_path / "series.sqlite", max_buffer=1, hold_s=60)
    sent: list[contract.Command] = []
    ingest: Ingest
    commands = CommandService(CommandRepository(sessions, fence), site, clock,
                              lambda _topic, command: sent.append(command), lambda fn: ingest.call(fn))
    ingest = Ingest(site, RuleEngine(site), AlarmService(AlarmWriter(sessions, fence), []), series, LiveState(),
                    clock=clock, on_command_result=commands.on_result, tick_s=3600)
    held = sqlite3.connect(tmp_path / "series.sqlite", timeout=30, isolation_level=None)
    ingest.start()
    try:
        # while it owns the lease: the cut is committed, published, and its engine input taken
        command = commands.relay("plug-z1-kettle", False, "smells hot", "lead", {"shift_lead"})
        assert [c.id for c in sent] == [command.id]

        # a full series store holds the ingest thread in a drain of plug readings (a drain with no alarm
        # change and no call: it commits nothing, so it cannot notice the loss itself)
        held.execute("BEGIN IMMEDIATE")
        ts = clock().isoformat().replace("+00:00", "Z")
        plug = {"power_w": 60.0, "current_a": 0.3, "voltage_v": 220.0, "relay": True}
        for seq in (1, 2):
            ingest.submit(incoming(contract.Channel.TELEMETRY, {
                "v": 1, "edge": "e1", "seq": seq, "sent_at": ts,
                "readings": [{"device": "plug-z1-pc", "ts": ts, "metrics": plug}]}, seq))
        assert wait_until(lambda: series.stats().held >= 1, 20), "the full store never held ingest"

        # another worker takes the lease; this one's renewals have not run
        with engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET owner = 'b', epoch = epoch + 1,"
                                    " expires_at = clock_timestamp() + interval '1 hour'"))
        # the edge's result comes in, and a relay request's engine input behind it (the API call waits)
        ingest.submit(incoming(contract.Channel.COMMAND_RESULT, {
            "v": 1, "id": command.id, "ok": True, "ts": ts, "device": "plug-z1-kettle"}, 3))
        waiting: Future[list[Finding]] = Future()

        def api_call() -> None:
            try:
                waiting.set_result(ingest.call(lambda eng, t: eng.on_relay_command("plug-z1-heater", False, t)))
            except BaseException as exc:  # handed to the test thread
                waiting.set_exception(exc)

        caller = threading.Thread(target=api_call, daemon=True)
        caller.start()
        assert wait_until(lambda: ingest._inbox.qsize() >= 2, 10), "the call never queued behind the result"
        assert keeper.state == "owner", "the worker noticed the steal before the result: not a test of it"

        released = time.monotonic()
        held.execute("ROLLBACK")
        with pytest.raises(LeaseLost):
            waiting.result(CALL_TIMEOUT_S + 5)
        answered_s = time.monotonic() - released
        caller.join(5)
    finally:
        held.close()
        ingest.stop()
        series.close()

    assert answered_s < CALL_TIMEOUT_S / 2, f"the waiting call answered after {answered_s:.1f} s"
    assert keeper.state == "lost" and keeper.lost_reason is not None
    assert keeper.lost_reason.startswith("a commit found the lease taken"), keeper.lost_reason
    assert ingest.fenced
    with sessions() as session:
        row = session.get(CommandRow, command.id)
        assert row is not None and row.status == "sent" and row.result_at is None, "a fenced result was recorded"

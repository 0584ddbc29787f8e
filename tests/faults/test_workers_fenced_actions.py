"""Fault 4 (issue 15), fencing of actions: a worker whose lease was taken, and that has not noticed yet (no
renewal came, ingest had nothing to commit), neither starts an evacuation nor sends a relay command through
its API; the badge events it still writes to the access log, which the next owner gets again from the
broker, are one row each. Real parts as in test_workers.py: the server as a real process on PostgreSQL with
FLOORWATCH_FAILOVER=1, a private Mosquitto; the test subscribes where edge e1 and the floor displays listen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from tests.faults.conftest import Record
from tests.faults.test_crash_fire import NOTICE, Receiver, fire_site, receiver  # noqa: F401  (the fixture)
from tests.faults.test_workers import sequences as sequences_of
from tests.faults.test_workers import worker
from tests.support.server import ServerProcess
from tests.support.wait import wait_until

COMMANDS = contract.edge_topic("r1", "e1", contract.Channel.COMMANDS)
MARKER = b'{"marker": "after the refused calls"}'


def start_evacuation(a: ServerProcess) -> httpx.Response:
    return a.api.post("/api/evacuations", json={"floor": "f1", "zone": "z1", "reason": "smoke seen"})


def cut_relay(a: ServerProcess) -> httpx.Response:
    return a.api.post("/api/devices/plug-z1-kettle/relay", json={"on": False, "reason": "smells hot"})


def rows(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)
                    for table in ("evacuations", "commands")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("first", [start_evacuation, cut_relay], ids=["evacuation-first", "relay-first"])
def test_a_worker_whose_lease_was_taken_starts_no_evacuation_and_sends_no_command_before_it_noticed(
    first: Callable[[ServerProcess], httpx.Response], mosquitto: EmbeddedBroker, postgres_schema: str,
    receiver: Receiver, tmp_path: Path, record: Record,  # noqa: F811
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    # `a` renews only every 100 s and no edge speaks: nothing but the calls below can find the lease taken
    a = worker("a", mosquitto, postgres_schema, site_file, tmp_path, ttl_s=300, renew_s=100)
    heard: list[tuple[str, bytes]] = []
    edge = MqttClient(mosquitto.client_settings(), "fenced-edge-e1",
                      on_message=lambda m: heard.append((m.topic, m.payload)))
    edge.subscribe(COMMANDS)
    edge.subscribe(NOTICE)
    try:
        a.start()
        edge.start()
        assert edge.wait_connected(10) and edge.wait_subscribed(10)
        engine = create_engine(postgres_schema)
        with engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET owner = 'thief', epoch = epoch + 1,"
                                    " expires_at = clock_timestamp() + interval '1 hour'"))
        engine.dispose()
        before = a.health()["dependencies"]["lease"]
        asked = time.monotonic()
        answers = [first(a)]
        refused_s = time.monotonic() - asked
        after = a.health()["dependencies"]["lease"]
        answers += [call(a) for call in (start_evacuation, cut_relay) if call is not first]
        # Barrier: once `a` is off the broker, whatever it published is ahead of the marker at the edge.
        assert wait_until(lambda: not a.health()["dependencies"]["broker"]["up"], 15), a.health()
        off_broker_s = time.monotonic() - asked
        edge.publish(COMMANDS, MARKER)
        assert wait_until(lambda: (COMMANDS, MARKER) in heard, 10)
        stored = rows(postgres_schema)
        health = a.health()
    finally:
        edge.stop()
        a.stop()

    record(f"workers-fenced-{first.__name__}", {"first_call_refused_s": round(refused_s, 3),
                                                "off_broker_s": round(off_broker_s, 2),
                                                "statuses": [r.status_code for r in answers], **stored,
                                                "heard_on_edge_topics": len(heard)})
    assert before["state"] == "owner", "the worker noticed the steal before the call: not a test of the fence"
    assert [r.status_code for r in answers] == [503, 503], [(r.status_code, r.text) for r in answers]
    assert "lost the site's lease" in json.loads(answers[0].text)["detail"]
    assert after["state"] == "lost" and after["lost_reason"].startswith("a commit found the lease taken"), after
    assert stored == {"evacuations": 0, "commands": 0}, stored
    assert heard == [(COMMANDS, MARKER)], heard
    assert health["dependencies"]["lease"]["state"] == "lost" and health["status"] == "degraded", health


def access_rows(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [(r.person, r.direction) for r in connection.execute(
                text("SELECT person, direction FROM access_log ORDER BY id"))]
    finally:
        engine.dispose()


def test_badge_events_an_old_owner_wrote_and_the_next_owner_gets_again_are_one_row_each_and_the_roll_call_is_right(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
    record: Record,
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    a = worker("a", mosquitto, postgres_schema, site_file, tmp_path, ttl_s=300, renew_s=100)
    b = worker("b", mosquitto, postgres_schema, site_file, tmp_path)
    events = contract.edge_topic("r1", "e1", contract.Channel.EVENTS)
    edge = MqttClient(mosquitto.client_settings(), "access-edge-e1")

    def badges(seq: int, *items: tuple[str, str, str, datetime]) -> contract.EventBatch:
        return contract.EventBatch(edge="e1", seq=seq, sent_at=datetime.now(UTC), events=[
            contract.Event(device=door, ts=ts, type=contract.EventType.ACCESS_GRANTED, badge=badge,
                           direction=direction) for badge, door, direction, ts in items])

    try:
        a.start()
        edge.start()
        assert edge.wait_connected(10)
        engine = create_engine(postgres_schema)
        with engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET owner = 'thief', epoch = epoch + 1,"
                                    " expires_at = clock_timestamp() + interval '1 hour'"))
        # `a` has not noticed: it writes the badge events to its access log, then its checkpoint's fence
        # finds the lease taken and it leaves the broker without acknowledging them
        came_in = datetime.now(UTC) - timedelta(minutes=10)
        edge.publish_payload(events, badges(1, ("B11", "door-z1-exit", "in", came_in),
                                            ("B12", "door-z2-exit", "in", came_in)))
        assert wait_until(lambda: len(access_rows(postgres_schema)) == 2, 15), access_rows(postgres_schema)
        assert wait_until(lambda: not a.health()["dependencies"]["broker"]["up"], 15), a.health()
        lost = a.health()["dependencies"]["lease"]
        with engine.begin() as connection:  # the thief is gone: `b` takes the site and gets batch 1 again
            connection.execute(text("UPDATE partition_leases SET expires_at = clock_timestamp() - interval '1 s'"))
        engine.dispose()
        b.start()
        started = b.api.post("/api/evacuations", json={"floor": "f1", "zone": "z1", "reason": "drill"})
        assert started.status_code == 201, started.text
        edge.publish_payload(events, badges(2, ("B11", "door-z1-exit", "out", datetime.now(UTC))))
        # the access log is written in arrival order: once batch 2's row is there, batch 1's repeat was handled
        assert wait_until(lambda: ("p-op1", "out") in access_rows(postgres_schema), 20), access_rows(postgres_schema)
        stored = access_rows(postgres_schema)
        roll = b.api.get(f"/api/evacuations/{started.json()['id']}/roll-call")
        applied = wait_until(lambda: sequences_of(postgres_schema).get("e1", {}).get("next_seq", 0) >= 3, 20)
    finally:
        edge.stop()
        a.stop()
        b.stop()

    record("workers-access-log-repeats", {"rows": len(stored), "events": 3})
    assert lost["state"] == "lost", lost
    assert applied, "b's checkpoint never covered both batches"
    assert sorted(stored) == [("p-op1", "in"), ("p-op1", "out"), ("p-op2", "in")], stored
    assert roll.status_code == 200, roll.text
    status = {e["person"]: e["status"] for e in roll.json()["people"]}
    assert status["p-op1"] == "out" and status["p-op2"] == "inside", status

"""Store-and-forward through real brokers: an uplink outage under load, the bound and its accounting,
a restart with a full buffer, and a throughput figure.

The uplink broker here is an EmbeddedBroker with a data directory that outlives a stop (the `mosquitto`
fixture deletes its directory on stop). Mosquitto's own persistence then keeps the test collector's
session across the restart, so the collector cannot miss what the edge replays in the moment before
the collector is back: what is measured is the edge, not a race in the test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from gateway.broker import EmbeddedBroker
from gateway.contract import EventType, TelemetryBatch
from tests.conftest import persistent_mosquitto
from tests.edge.conftest import Collector, Devices, edge_config, start_agent
from tests.support.wait import wait_until


def sensor(n: int) -> bytes:
    """A Tasmota SENSOR message whose Power carries a sequence number, to check order and loss."""
    return json.dumps({"Time": "2026-11-29T11:00:00",
                       "ENERGY": {"Total": 3.262, "Power": n, "Voltage": 229, "Current": 0.5, "Factor": 0.9}}).encode()


@pytest.fixture
def uplink() -> Iterator[EmbeddedBroker]:
    """The edge's uplink broker, restartable with its sessions kept."""
    yield from persistent_mosquitto("fw-edge-uplink-")


@pytest.fixture
def agents() -> Iterator[list[EdgeAgent]]:
    started: list[EdgeAgent] = []
    yield started
    for agent in started:
        if agent._worker is not None:
            agent.stop(drain_s=0.5)


def unique_batches(collector: Collector) -> list[TelemetryBatch]:
    """De-duplicated by seq, as the server does: QoS 1 is at-least-once across a broker restart."""
    with collector.lock:
        return sorted({b.seq: b for b in collector.telemetry}.values(), key=lambda b: b.seq)


def strip_powers(batches: list[TelemetryBatch]) -> list[float]:
    return [r.metrics["power_w"] for b in batches for r in b.readings if r.device == "strip-f3-01"]


def test_uplink_outage_under_load_loses_nothing(uplink: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices,
                                                agents: list[EdgeAgent], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    collector = Collector(uplink.client_settings(), name="outage", persistent=True)
    agent = start_agent(agents, edge_config(uplink.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                                            batch={"max_readings": 50, "max_age_ms": 100}))
    total = 3000
    peak = [0]

    def load() -> None:  # the floor keeps talking at ~1000 messages/s through the whole outage
        for n in range(total):
            devices.publish("tele/strip-f3-01/SENSOR", sensor(n))
            if n % 10 == 0:
                peak[0] = max(peak[0], len(agent.outbox or []))
                time.sleep(0.01)

    publisher = threading.Thread(target=load)
    publisher.start()
    assert wait_until(lambda: strip_powers(unique_batches(collector)), 10), "readings flowing before the outage"
    uplink.stop()  # the uplink goes away under load ...
    time.sleep(1.5)  # the scenario: how long the uplink is away
    uplink.start()  # ... and comes back on the same port
    publisher.join()
    done = wait_until(lambda: len(strip_powers(unique_batches(collector))) >= total, 20)
    batches = unique_batches(collector)
    powers = strip_powers(batches)
    assert done, f"{len(powers)} of {total} readings arrived"
    assert powers == list(range(total))  # every reading once, in order, none lost
    seqs = [b.seq for b in batches]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap in seq
    assert peak[0] > 0  # the outage really was buffered on disk
    assert wait_until(lambda: len(agent.outbox or []) == 0, 5)
    with capsys.disabled():
        dupes = len(collector.telemetry) - len(batches)
        print(f"\n[outage] {total} readings in {len(seqs)} batches; peak buffered {peak[0]} messages; "
              f"{dupes} re-deliveries removed by seq")
    collector.stop()


def test_overflow_drops_oldest_and_says_how_many(uplink: EmbeddedBroker, floor: EmbeddedBroker,
                                                 devices: Devices, agents: list[EdgeAgent], tmp_path: Path) -> None:
    collector = Collector(uplink.client_settings(), name="overflow", persistent=True)
    collector.client.stop()  # its session (and subscriptions) stay on the broker
    uplink.stop()
    agent = start_agent(agents, edge_config(uplink.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                                            buffer={"max_messages": 10}, batch={"max_readings": 1}), uplink_down=True)
    for n in range(25):
        devices.publish("tele/strip-f3-01/SENSOR", sensor(n))
    assert wait_until(lambda: agent.outbox is not None and agent.outbox.next_seq == 25, 10)
    assert len(agent.outbox or []) == 10
    uplink.start()
    collector = Collector(uplink.client_settings(), name="overflow", persistent=True)
    overflow = wait_until(lambda: [e for e in collector.all_events() if e.type is EventType.BUFFER_OVERFLOW], 10)
    assert wait_until(lambda: len(strip_powers(unique_batches(collector))) >= 10, 10)
    batches = unique_batches(collector)
    assert strip_powers(batches) == list(range(15, 25))  # the newest 10 survived, the oldest 15 were dropped
    assert [b.seq for b in batches] == list(range(15, 25))  # with their original seq
    assert [e.count for e in overflow] == [15] and overflow[0].device == "edge-f3"
    collector.stop()


def test_buffer_and_seq_survive_a_crash(uplink: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices,
                                        agents: list[EdgeAgent], tmp_path: Path) -> None:
    collector = Collector(uplink.client_settings(), name="restart", persistent=True)
    collector.client.stop()
    uplink.stop()
    config = edge_config(uplink.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                         batch={"max_readings": 1})
    first = start_agent(agents, config, uplink_down=True)
    for n in range(5):
        devices.publish("tele/strip-f3-01/SENSOR", sensor(n))
    assert wait_until(lambda: first.outbox is not None and first.outbox.next_seq == 5, 10)
    first.kill()  # a crash with five messages on disk and the uplink down
    uplink.start()
    collector = Collector(uplink.client_settings(), name="restart", persistent=True)
    start_agent(agents, config)
    for n in range(5, 8):
        devices.publish("tele/strip-f3-01/SENSOR", sensor(n))
    assert wait_until(lambda: len(strip_powers(unique_batches(collector))) >= 8, 10)
    batches = unique_batches(collector)
    assert [b.seq for b in batches] == list(range(8)) and strip_powers(batches) == list(range(8))
    collector.stop()


def test_throughput(mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, agents: list[EdgeAgent],
                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    collector = Collector(mosquitto.client_settings(), name="throughput")
    start_agent(agents, edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite"))
    total = 10_000
    started = time.monotonic()
    for n in range(total):
        devices.publish("tele/strip-f3-01/SENSOR", sensor(n))
    published = time.monotonic() - started
    assert wait_until(lambda: len(collector.readings()) >= total, 30)
    elapsed = time.monotonic() - started
    assert [r.metrics["power_w"] for r in collector.readings()] == list(range(total))
    with capsys.disabled():
        print(f"\n[throughput] {total} vendor messages -> {total} readings in {len(collector.telemetry)} batches: "
              f"{total / elapsed:,.0f} readings/s end to end (publishing took {published:.2f} s)")
    collector.stop()

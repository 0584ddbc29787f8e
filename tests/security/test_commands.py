"""Commands, edge side, against a real edge agent whose uplink is the production-configured broker
(auth + site ACL): expiry, replay, and commands from anyone but the server's identity.

MQTT does not tell a subscriber who published a message, so the edge cannot check the sender
itself. The guarantee is the broker's ACL: only the server user may write `.../commands`. These tests
show it end to end: a forged command published by another edge or by the display user is dropped by
the broker, never reaches the edge, is never run on a device and never answered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.contract import Action, Channel, Command
from tests.edge.conftest import Collector, Devices, edge_config
from tests.security.conftest import DISPLAY, EDGES, SERVER, SITE, Peer, SecureBroker, connect
from tests.support.wait import wait_until

pytestmark = pytest.mark.mosquitto

EDGE = EDGES[0]
PLUG = "plug-f3-s001"
PLUG_RPC = "shellyplugsg3-a1b2c3/rpc"
COMMANDS = contract.edge_topic(SITE, EDGE, Channel.COMMANDS)


def command(cid: str, *, ttl_s: float = 30, action: Action = Action.RELAY_OFF) -> Command:
    now = datetime.now(UTC)
    return Command(id=cid, device=PLUG, action=action, reason="test", issued_at=now,
                   expires_at=now + timedelta(seconds=ttl_s))


@pytest.fixture
def edge_setup(secure_broker: SecureBroker, floor: EmbeddedBroker, devices: Devices,
               tmp_path: Path) -> Iterator[tuple[Collector, Devices]]:
    def shelly_plug(request: bytes) -> None:  # the plug does what it is told and reports its state
        on = json.loads(request)["params"]["on"]
        status = {"id": 0, "output": on, "apower": 0.0, "voltage": 221.0, "current": 0.0}
        devices.publish("shellyplugsg3-a1b2c3/status/switch:0", json.dumps(status))

    devices.listen(PLUG_RPC, shelly_plug)
    collector = Collector(secure_broker.settings(SERVER), "sec-server")  # the server's identity
    agent = EdgeAgent(edge_config(secure_broker.settings(EDGE), floor.client_settings(), tmp_path / "b.sqlite",
                                  commands={"confirm_timeout_s": 2}))
    agent.start()
    assert agent.uplink is not None and agent.uplink.wait_connected(10), secure_broker.log()
    assert agent.floor is not None and agent.floor.wait_connected(10)
    # The edge's command subscription is in place once a probe command is answered.
    probe = command("probe-0", action=Action.RELAY_ON)
    assert wait_until(lambda: collector.client.publish_payload(COMMANDS, probe) is not None
                      and "probe-0" in result_ids(collector), 15), "the edge never answered a probe command"
    yield collector, devices
    agent.stop(drain_s=0.5)
    collector.stop()


def result_ids(collector: Collector) -> list[str]:
    with collector.lock:
        return [r.id for r in collector.results]


def send_and_settle(collector: Collector, *commands: Command) -> None:
    """Publish commands as the server, then a marker command; return once the marker is answered (the
    edge handles its inbox in order, so every earlier command has been handled by then)."""
    for cmd in commands:
        collector.client.publish_payload(COMMANDS, cmd)
    marker = command(f"marker-{len(result_ids(collector))}", action=Action.RELAY_ON)
    collector.client.publish_payload(COMMANDS, marker)
    assert wait_until(lambda: marker.id in result_ids(collector), 15), result_ids(collector)


def rpc_count(devices: Devices) -> int:
    return len(devices.on(PLUG_RPC))


def test_an_expired_command_is_refused_and_not_run(edge_setup: tuple[Collector, Devices]) -> None:
    collector, devices = edge_setup
    before = rpc_count(devices)
    send_and_settle(collector, command("c-expired", ttl_s=-1))
    [result] = [r for r in collector.results if r.id == "c-expired"]
    assert (result.ok, result.error) == (False, "expired")
    assert rpc_count(devices) == before + 1  # only the marker reached the plug


def test_a_replayed_command_id_is_answered_once_and_run_once(edge_setup: tuple[Collector, Devices]) -> None:
    collector, devices = edge_setup
    original = command("c-once")
    send_and_settle(collector, original)
    assert wait_until(lambda: "c-once" in result_ids(collector), 10)
    runs = rpc_count(devices)
    # The same id again: verbatim, and re-issued with fresh times and another action.
    send_and_settle(collector, original, original, command("c-once", action=Action.RELAY_ON))
    assert result_ids(collector).count("c-once") == 1
    assert rpc_count(devices) == runs + 1  # only the marker


@pytest.mark.parametrize("forger", [EDGES[1], EDGE, DISPLAY])
def test_a_command_from_anyone_but_the_server_never_reaches_the_edge(
        edge_setup: tuple[Collector, Devices], secure_broker: SecureBroker, forger: str) -> None:
    collector, devices = edge_setup
    intruder: Peer = connect(secure_broker, forger, client_id=f"forger-{forger}")
    try:
        before = rpc_count(devices)
        forged = command(f"forged-by-{forger}")
        assert intruder.publish_acked(COMMANDS, contract.encode(forged))  # the broker took it and dropped it
        send_and_settle(collector)
        assert f"forged-by-{forger}" not in result_ids(collector)
        assert rpc_count(devices) == before + 1  # only the server's marker reached the plug
    finally:
        intruder.client.stop()

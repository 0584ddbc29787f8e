"""The production broker configuration, enforced by a real Mosquitto: authentication and the ACL.

Broker: `render_conf(anonymous=False, password_file=..., acl_file=...)` with `render_password_file`
(`$7$` PBKDF2-SHA512) and `render_acl` for two sites, on a free 127.0.0.1 port (see conftest.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway import contract
from gateway.broker import free_port
from gateway.contract import Action, Channel, Command, EvacuationNotice, EvacuationState, Message, SiteChannel
from gateway.mqtt import MqttClient, MqttSettings
from server import cli
from tests.security.conftest import (
    DISPLAY,
    EDGES,
    OTHER_EDGE,
    OTHER_SERVER,
    OTHER_SITE,
    SERVER,
    SITE,
    ClientLog,
    Peer,
    SecureBroker,
    barrier,
    connect,
    server_topic,
    wait_until,
)

pytestmark = pytest.mark.mosquitto

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
EVACUATION = contract.site_topic(SITE, SiteChannel.EVACUATION)


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.client.stop()


def telemetry(edge: str, seq: int) -> bytes:
    batch = contract.TelemetryBatch(edge=edge, seq=seq, sent_at=NOW, readings=[
        contract.Reading(device="plug-1", ts=NOW, metrics={"power_w": 10.0})])
    return contract.encode(batch)


def notice() -> bytes:
    return contract.encode(EvacuationNotice(id=f"evac-{secrets.token_hex(3)}", site=SITE, zones=["f3-z1"],
                                            state=EvacuationState.ACTIVE, issued_at=NOW,
                                            message=Message(zh="请疏散", en="Evacuate")))


def command_payload(cid: str) -> bytes:
    return contract.encode(Command(id=cid, device="plug-1", action=Action.RELAY_OFF, issued_at=NOW,
                                   expires_at=NOW + timedelta(days=3650)))


def refused(settings: MqttSettings, client_id: str) -> list[str]:
    """Connect with these settings and return the broker's refusal(s), waiting (bounded) for the first."""
    handler = ClientLog(client_id)
    logger = logging.getLogger("gateway.mqtt")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    client = MqttClient(settings, client_id)
    try:
        client.start()
        reasons = wait_until(handler.refusals, 10)
        assert not client.connected
        return list(reasons)
    finally:
        client.stop()
        logger.removeHandler(handler)
        logger.setLevel(previous)


# --------------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------------


def test_anonymous_connection_is_refused(secure_broker: SecureBroker) -> None:
    reasons = refused(secure_broker.settings(None), "sec-anonymous")
    assert reasons and "Not authorized" in reasons[0], reasons


def test_wrong_password_is_refused(secure_broker: SecureBroker) -> None:
    reasons = refused(secure_broker.settings(EDGES[0], "not-the-password"), "sec-wrong-password")
    assert reasons and ("Bad user name or password" in reasons[0] or "Not authorized" in reasons[0]), reasons


def test_a_refusal_and_an_unreachable_broker_say_what_to_check(secure_broker: SecureBroker) -> None:
    """The installer reads the log: a refused password names the settings that hold it, and a broker that
    does not answer at all (a wrong port) is said too, not left silent."""
    handler = ClientLog("sec-hint")
    logger = logging.getLogger("gateway.mqtt")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    clients = [MqttClient(secure_broker.settings(EDGES[0], "not-the-password"), "sec-hint-password",
                          credentials_from="uplink.username and uplink.password of the edge file"),
               MqttClient(MqttSettings(host="127.0.0.1", port=free_port(), reconnect_min_s=1, reconnect_max_s=1),
                          "sec-hint-nobody")]
    try:
        for client in clients:
            client.start()

        def messages() -> list[str]:
            return [r.getMessage() for r in handler.records]

        assert wait_until(lambda: any("sec-hint-password refused by" in m for m in messages())
                          and any("sec-hint-nobody cannot reach" in m for m in messages()), 15), messages()
        [refusal] = {m for m in messages() if "sec-hint-password refused by" in m}
        assert "check the user name and password (uplink.username and uplink.password of the edge file)" in refusal
        assert f"user {EDGES[0]!r}" in refusal and "credentials.txt" in refusal
        assert not [m for m in messages() if "sec-hint-password lost its connection" in m], \
            "a refused CONNECT reported as a lost connection"
        [unreachable] = {m.split(" (")[0] for m in messages() if "sec-hint-nobody cannot reach" in m}
        assert unreachable.startswith("MQTT sec-hint-nobody cannot reach 127.0.0.1:")
    finally:
        for client in clients:
            client.stop()
        logger.removeHandler(handler)
        logger.setLevel(previous)


def test_unknown_user_is_refused(secure_broker: SecureBroker) -> None:
    reasons = refused(secure_broker.settings("edge-intruder", "whatever"), "sec-unknown-user")
    assert reasons, "an unknown user must be refused"


def test_right_password_connects(secure_broker: SecureBroker, peers: list[Peer]) -> None:
    peers.append(connect(secure_broker, EDGES[0]))  # connect() asserts the CONNACK succeeded


# --------------------------------------------------------------------------------------------------
# ACL: what an edge may write
# --------------------------------------------------------------------------------------------------


def test_edge_publishes_its_own_telemetry_and_the_server_receives_it(secure_broker: SecureBroker,
                                                                     peers: list[Peer]) -> None:
    server = connect(secure_broker, SERVER, contract.edge_filter(Channel.TELEMETRY, SITE))
    edge = connect(secure_broker, EDGES[0])
    peers += [server, edge]
    topic = server_topic(Channel.TELEMETRY)
    payload = telemetry(EDGES[0], 1)
    # Retry until the server's subscription is in place; each try is acked by the broker.
    assert wait_until(lambda: edge.publish_acked(topic, payload) and server.on(topic), 10)
    assert contract.decode(topic, server.on(topic)[0])[1].edge == EDGES[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("what", ["other edge's telemetry", "other edge's events", "other edge's status",
                                  "evacuation notice", "a command", "own commands", "another site",
                                  "outside the contract"])
def test_edge_cannot_publish_outside_its_own_topics(secure_broker: SecureBroker, peers: list[Peer],
                                                    what: str) -> None:
    attacker, victim = EDGES
    forbidden = {
        "other edge's telemetry": (server_topic(Channel.TELEMETRY, victim), telemetry(victim, 7)),
        "other edge's events": (server_topic(Channel.EVENTS, victim), b'{"forged":true}'),
        "other edge's status": (server_topic(Channel.STATUS, victim), b'{"forged":true}'),
        "evacuation notice": (EVACUATION, notice()),
        "a command": (server_topic(Channel.COMMANDS, victim), command_payload("forged-1")),
        "own commands": (server_topic(Channel.COMMANDS, attacker), command_payload("forged-2")),
        "another site": (contract.edge_topic(OTHER_SITE, OTHER_EDGE, Channel.TELEMETRY), telemetry(OTHER_EDGE, 1)),
        "outside the contract": (f"{contract.ROOT}/{SITE}/{attacker}/config", b"x"),
    }[what]
    topic, payload = forbidden
    server = connect(secure_broker, SERVER, f"{contract.ROOT}/{SITE}/#")
    other_server = connect(secure_broker, OTHER_SERVER, f"{contract.ROOT}/{OTHER_SITE}/#")
    edge = connect(secure_broker, attacker)
    peers += [server, other_server, edge]
    own = server_topic(Channel.TELEMETRY, attacker)
    assert barrier(edge, server, own), "the server never received the edge's own telemetry"
    assert edge.publish_acked(topic, payload), "the broker did not acknowledge the attempt"
    # Sentinels published after the forbidden message, on the same connection, arrive at both servers:
    assert barrier(edge, server, own)
    assert barrier(other_server, other_server, contract.edge_topic(OTHER_SITE, OTHER_EDGE, Channel.COMMANDS))
    assert payload not in server.on(topic) and payload not in other_server.on(topic), f"{what} got through"
    assert topic not in server.topics() and topic not in other_server.topics()


# --------------------------------------------------------------------------------------------------
# ACL: what an edge and the display may read
# --------------------------------------------------------------------------------------------------


def test_edge_cannot_read_another_sites_or_edges_topics(secure_broker: SecureBroker, peers: list[Peer]) -> None:
    edge = connect(secure_broker, EDGES[0], "floorwatch/v1/#", f"{contract.ROOT}/{OTHER_SITE}/#",
                   server_topic(Channel.COMMANDS, EDGES[1]), server_topic(Channel.TELEMETRY, EDGES[1]))
    # The edge's own commands are readable: they are the sentinel channel.
    edge.client.subscribe(server_topic(Channel.COMMANDS, EDGES[0]), 1)
    server = connect(secure_broker, SERVER)
    other_server = connect(secure_broker, OTHER_SERVER)
    other_edge = connect(secure_broker, OTHER_EDGE, contract.edge_topic(OTHER_SITE, OTHER_EDGE, Channel.COMMANDS))
    neighbour = connect(secure_broker, EDGES[1])
    peers += [edge, server, other_server, other_edge, neighbour]
    own_commands = server_topic(Channel.COMMANDS, EDGES[0])
    assert barrier(server, edge, own_commands)  # the edge's subscriptions are all processed
    branch_commands = contract.edge_topic(OTHER_SITE, OTHER_EDGE, Channel.COMMANDS)
    secret_command = command_payload("branch-secret")
    assert other_server.publish_acked(branch_commands, secret_command)
    assert server.publish_acked(server_topic(Channel.COMMANDS, EDGES[1]), command_payload("neighbour-secret"))
    assert neighbour.publish_acked(server_topic(Channel.TELEMETRY, EDGES[1]), telemetry(EDGES[1], 3))
    assert barrier(server, edge, own_commands)
    # Positive control: the branch edge did get its command (the message was really published).
    assert wait_until(lambda: secret_command in other_edge.on(branch_commands), 10)
    leaked = [t for t in edge.topics() if t != own_commands]
    assert leaked == [], f"edge {EDGES[0]} read {leaked}"


def test_display_reads_notices_but_cannot_publish_them(secure_broker: SecureBroker, peers: list[Peer]) -> None:
    display = connect(secure_broker, DISPLAY, EVACUATION)
    server = connect(secure_broker, SERVER, EVACUATION)
    peers += [display, server]
    real = notice()
    assert wait_until(lambda: server.publish_acked(EVACUATION, real) and real in display.on(EVACUATION), 10)
    forged = notice()
    assert display.publish_acked(EVACUATION, forged)
    assert barrier(server, display, EVACUATION)
    assert barrier(server, server, EVACUATION)
    assert forged not in server.on(EVACUATION) and forged not in display.on(EVACUATION)


def test_display_cannot_publish_commands_or_telemetry(secure_broker: SecureBroker, peers: list[Peer]) -> None:
    server = connect(secure_broker, SERVER, f"{contract.ROOT}/{SITE}/#")
    display = connect(secure_broker, DISPLAY)
    edge = connect(secure_broker, EDGES[0], server_topic(Channel.COMMANDS))
    peers += [server, display, edge]
    forged_command = command_payload("display-forged")
    assert display.publish_acked(server_topic(Channel.COMMANDS), forged_command)
    assert display.publish_acked(server_topic(Channel.TELEMETRY), telemetry(EDGES[0], 9))
    assert barrier(server, edge, server_topic(Channel.COMMANDS))
    assert forged_command not in edge.on(server_topic(Channel.COMMANDS))
    assert telemetry(EDGES[0], 9) not in server.on(server_topic(Channel.TELEMETRY))


def test_broker_session_with_a_refused_password_names_the_server_variables(
        secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for name, value in {"FLOORWATCH_MQTT__HOST": "127.0.0.1", "FLOORWATCH_MQTT__PORT": str(secure_broker.port),
                        "FLOORWATCH_MQTT__USERNAME": SERVER, "FLOORWATCH_MQTT__PASSWORD": "not-the-password",
                        "FLOORWATCH_MQTT_CLIENT_ID": "sec-session-hint"}.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="gateway.mqtt"):
        assert cli.main(["broker", "session", "--timeout", "3"]) == 1
    assert any("sec-session-hint refused by" in r.message and
               "(FLOORWATCH_MQTT__USERNAME and FLOORWATCH_MQTT__PASSWORD)" in r.message for r in caplog.records), \
        [r.message for r in caplog.records]

"""TLS on the production configuration: a CA and a server certificate made at test time with the
openssl CLI, a Mosquitto TLS listener (`Listener(tls_cert, tls_key, tls_ca)`), and the project's client
(`MqttSettings(tls=True, ca_file=...)`): the right CA connects, a wrong CA never does."""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path

import pytest

from gateway import contract
from gateway.contract import Channel
from gateway.mqtt import MqttClient
from tests.security.conftest import EDGES, SERVER, SITE, ClientLog, SecureBroker, make_certificates
from tests.support.wait import wait_until

pytestmark = pytest.mark.mosquitto


def test_tls_with_the_right_ca_connects_and_carries_messages(tls_broker: SecureBroker) -> None:
    received: list[bytes] = []
    topic = contract.edge_topic(SITE, EDGES[0], Channel.TELEMETRY)
    server = MqttClient(tls_broker.settings(SERVER, tls=True), "tls-server",
                        on_message=lambda m: received.append(m.payload))
    server.subscribe(topic, 1)
    edge = MqttClient(tls_broker.settings(EDGES[0], tls=True), "tls-edge")
    try:
        server.start()
        edge.start()
        assert server.wait_connected(10) and edge.wait_connected(10), tls_broker.log()
        assert wait_until(lambda: edge.publish(topic, b"over-tls") is not None and b"over-tls" in received, 10)
    finally:
        edge.stop()
        server.stop()


def test_tls_with_a_wrong_ca_never_connects(tls_broker: SecureBroker, tmp_path: Path) -> None:
    rogue_ca, _, _ = make_certificates(tmp_path, "rogue")
    # The reason, shown directly: the server's chain does not verify against the rogue CA.
    context = ssl.create_default_context(cafile=str(rogue_ca))
    assert tls_broker.tls_port is not None
    with socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=5) as raw, \
            pytest.raises(ssl.SSLCertVerificationError):
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    # And the project's client with that CA: every attempt fails in the handshake, none connects.
    handler = ClientLog("tls-rogue")
    logger = logging.getLogger("gateway.mqtt")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    client = MqttClient(tls_broker.settings(EDGES[0], tls=True, ca_file=str(rogue_ca)), "tls-rogue")
    try:
        client.start()
        assert wait_until(lambda: handler.failed_attempts() >= 2, 15), "expected repeated failed attempts"
        assert not client.connected and client.connects == 0
    finally:
        client.stop()
        logger.removeHandler(handler)
        logger.setLevel(previous)


def test_plaintext_client_on_the_tls_port_gets_nothing(tls_broker: SecureBroker) -> None:
    settings = tls_broker.settings(EDGES[0]).model_copy(update={"port": tls_broker.tls_port})
    client = MqttClient(settings, "tls-plaintext")
    handler = ClientLog("tls-plaintext")
    logger = logging.getLogger("gateway.mqtt")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        client.start()
        # The broker drops the non-TLS bytes; the client sees its connection lost, never a CONNACK.
        def dropped() -> bool:
            with handler._guard:
                return any(word in r.getMessage() for r in handler.records
                           for word in ("failed to receive", "lost its connection", "Connection failed"))

        assert wait_until(dropped, 15), [r.getMessage() for r in handler.records]
        assert not client.connected and client.connects == 0
    finally:
        client.stop()
        logger.removeHandler(handler)
        logger.setLevel(previous)

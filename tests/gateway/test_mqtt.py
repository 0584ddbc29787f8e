"""The MQTT wrapper against real brokers: persistent sessions, Last Will, reconnects."""

from __future__ import annotations

import logging
import threading

import pytest

from gateway.broker import EmbeddedBroker
from gateway.mqtt import Incoming, MqttClient, Will
from tests.support.wait import wait_until

SENTINEL = b"sentinel"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Incoming] = []
        self._lock = threading.Lock()

    def __call__(self, message: Incoming) -> None:
        with self._lock:
            self.messages.append(message)

    def __len__(self) -> int:
        return len(self.messages)


def consumer(broker: EmbeddedBroker, inbox: Inbox, topic: str = "test/#") -> MqttClient:
    client = MqttClient(broker.client_settings(), "test-consumer", on_message=inbox, persistent_session=True)
    client.subscribe(topic)
    client.start()
    assert client.wait_connected(10)
    return client


def test_ten_thousand_qos1_messages_published_while_the_consumer_is_down_arrive_exactly_once(
    mosquitto: EmbeddedBroker,
) -> None:
    inbox = Inbox()
    first = consumer(mosquitto, inbox)
    assert wait_until(lambda: first.connects == 1, 30)
    assert first.wait_subscribed(10), "the SUBACK before the session goes offline"
    first.stop()

    published: set[int] = set()
    producer = MqttClient(mosquitto.client_settings(), "test-producer", on_published=published.add)
    producer.start()
    assert producer.wait_connected(10)
    mids = [producer.publish("test/load", str(i).encode(), qos=1) for i in range(10_000)]
    assert wait_until(lambda: len(published) == len(mids), 60), f"broker acked {len(published)} of 10000"

    second = consumer(mosquitto, inbox)
    assert wait_until(lambda: len(inbox) >= 10_000, 60), f"received {len(inbox)}"
    # the session delivers in order: a duplicate queued before this sentinel arrives before it
    producer.publish("test/load", SENTINEL, qos=1)
    assert wait_until(lambda: inbox.messages[-1].payload == SENTINEL, 10), "the sentinel after the 10,000"
    payloads = [int(m.payload) for m in inbox.messages[:-1]]
    assert len(payloads) == 10_000
    assert sorted(payloads) == list(range(10_000))
    assert payloads == sorted(payloads), "QoS 1 from one publisher keeps its order"
    second.stop()
    producer.stop()


def test_persistent_session_over_mqtt_311_with_the_pure_python_broker(amqtt_broker: EmbeddedBroker) -> None:
    assert amqtt_broker.protocol == "3.1.1"
    inbox = Inbox()
    first = consumer(amqtt_broker, inbox)
    assert first.wait_subscribed(10)
    first.stop()
    published: set[int] = set()
    producer = MqttClient(amqtt_broker.client_settings(), "test-producer", on_published=published.add)
    producer.start()
    assert producer.wait_connected(10)
    for i in range(500):
        producer.publish("test/x", str(i).encode())
    assert wait_until(lambda: len(published) == 500, 30), f"broker acked {len(published)} of 500"
    second = consumer(amqtt_broker, inbox)
    assert wait_until(lambda: len(inbox) >= 500, 30)
    assert sorted(int(m.payload) for m in inbox.messages) == list(range(500))
    second.stop()
    producer.stop()


def test_last_will_is_published_when_a_client_dies_without_disconnecting(any_broker: EmbeddedBroker) -> None:
    inbox = Inbox()
    watcher = consumer(any_broker, inbox, "status/#")
    settings = any_broker.client_settings().model_copy(update={"keepalive_s": 5})
    dying = MqttClient(settings, "dying-edge", will=Will("status/dying", b"offline", qos=1, retain=True))
    dying.start()
    assert dying.wait_connected(10)
    dying.publish("status/dying", b"online", retain=True)
    assert wait_until(lambda: any(m.payload == b"online" for m in inbox.messages), 10)
    dying.kill()
    assert wait_until(lambda: any(m.payload == b"offline" for m in inbox.messages), 20)
    watcher.stop()


def test_a_clean_stop_does_not_fire_the_will_but_can_publish_a_final_status(mosquitto: EmbeddedBroker) -> None:
    inbox = Inbox()
    watcher = consumer(mosquitto, inbox, "status/#")
    edge = MqttClient(mosquitto.client_settings(), "leaving-edge", will=Will("status/leaving", b"died"))
    edge.start()
    assert edge.wait_connected(10)
    edge.stop(final=("status/leaving", b"offline", 1, True))
    assert wait_until(lambda: any(m.payload == b"offline" for m in inbox.messages), 10)
    # a Will goes out when the broker drops the connection, before a client that connects after it publishes
    late = MqttClient(mosquitto.client_settings(), "sentinel")
    late.start()
    assert late.wait_connected(10)
    late.publish("status/sentinel", SENTINEL)
    assert wait_until(lambda: any(m.payload == SENTINEL for m in inbox.messages), 10)
    late.stop()
    assert not any(m.payload == b"died" for m in inbox.messages)
    watcher.stop()


def test_clients_reconnect_by_themselves_after_the_broker_restarts(mosquitto: EmbeddedBroker) -> None:
    inbox = Inbox()
    sub = consumer(mosquitto, inbox)
    pub = MqttClient(mosquitto.client_settings(), "restart-producer")
    pub.start()
    assert pub.wait_connected(10)
    mosquitto.kill()
    assert wait_until(lambda: not sub.connected and not pub.connected, 15)
    mosquitto.start()  # same port, same persistence directory
    assert wait_until(lambda: sub.connected and pub.connected, 30), "clients did not reconnect"
    assert sub.connects == 2 and pub.connects == 2
    pub.publish("test/after-restart", b"hello")
    assert wait_until(lambda: any(m.payload == b"hello" for m in inbox.messages), 10)
    sub.stop()
    pub.stop()


def test_manual_ack_redelivers_what_the_consumer_never_acknowledged(mosquitto: EmbeddedBroker) -> None:
    """A consumer that crashes before acking gets the message again: nothing handed off is lost."""
    inbox = Inbox()
    crashing = MqttClient(mosquitto.client_settings(), "acking-consumer", on_message=inbox,
                          persistent_session=True, manual_ack=True)
    crashing.subscribe("test/#")
    crashing.start()
    assert crashing.wait_connected(10)
    assert crashing.wait_subscribed(10)
    pub = MqttClient(mosquitto.client_settings(), "ack-producer")
    pub.start()
    assert pub.wait_connected(10)
    pub.publish("test/a", b"must-survive")
    assert wait_until(lambda: len(inbox) == 1, 10)
    crashing.kill()  # never acked

    again = Inbox()
    restarted = MqttClient(mosquitto.client_settings(), "acking-consumer", on_message=again,
                           persistent_session=True, manual_ack=True)
    restarted.subscribe("test/#")
    restarted.start()
    assert wait_until(lambda: len(again) == 1, 15)
    assert again.messages[0].payload == b"must-survive"
    restarted.ack(again.messages[0])
    restarted.stop()
    pub.stop()


def test_messages_queued_for_an_offline_session_survive_a_broker_restart(mosquitto: EmbeddedBroker) -> None:
    """Persistence is on and the folder is the broker's own (as root it runs as `mosquitto`)."""
    inbox = Inbox()
    first = consumer(mosquitto, inbox)
    assert first.wait_subscribed(10)
    first.stop()
    published: set[int] = set()
    producer = MqttClient(mosquitto.client_settings(), "restart-queue-producer", on_published=published.add)
    producer.start()
    assert producer.wait_connected(10)
    for i in range(1000):
        producer.publish("test/q", str(i).encode())
    assert wait_until(lambda: len(published) == 1000, 30)
    producer.stop()
    mosquitto.restart()
    second = consumer(mosquitto, inbox)
    assert wait_until(lambda: len(inbox) >= 1000, 30), f"received {len(inbox)} of 1000 after the restart"
    assert sorted(int(m.payload) for m in inbox.messages) == list(range(1000))
    second.stop()


def test_two_clients_with_one_client_id_are_named_as_the_likely_cause(
        mosquitto: EmbeddedBroker, caplog: pytest.LogCaptureFixture) -> None:
    """Two edge agents started with the same `edge:` take the broker session from each other every second;
    the log said only 'lost its connection (Unspecified error)'."""
    settings = mosquitto.client_settings().model_copy(update={"reconnect_min_s": 1, "reconnect_max_s": 1})
    first, second = MqttClient(settings, "fw-edge-twin-uplink"), MqttClient(settings, "fw-edge-twin-uplink")
    with caplog.at_level(logging.WARNING, logger="gateway.mqtt"):
        first.start()
        assert first.wait_connected(10)
        second.start()
        try:
            assert wait_until(lambda: any("another client most likely connects with the same client id" in r.message
                                          for r in caplog.records), 20), [r.message for r in caplog.records]
        finally:
            first.stop()
            second.stop()
    [hint] = {r.message for r in caplog.records if "same client id" in r.message}
    assert hint.startswith("MQTT fw-edge-twin-uplink: the broker at ") and "a second edge agent" in hint

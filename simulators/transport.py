"""Where simulated devices publish: the floor broker (through gateway.mqtt, the project's one MQTT
client) or nowhere (a dry run that only computes the injected log)."""

from __future__ import annotations

import os
import queue
from typing import Protocol

from gateway.mqtt import Incoming, MqttClient, MqttSettings
from simulators import presence
from simulators.vendors.base import Publication

# Command topics of every modelled dialect; the runner routes each message to its device (and ignores
# the rest, such as our own Shelly replies on `<src>/rpc`, which `+/rpc` also matches).
COMMAND_FILTERS = ("+/rpc", "cmnd/#", "zigbee2mqtt/+/set", "access/+/cmd")


class Transport(Protocol):
    commands: queue.Queue[tuple[str, bytes]]

    def publish(self, pub: Publication) -> None: ...

    def close(self) -> None: ...


class NullTransport:
    """A dry run: nothing leaves the process, no commands arrive."""

    def __init__(self) -> None:
        self.commands: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.sent = 0

    def publish(self, pub: Publication) -> None:
        self.sent += 1

    def close(self) -> None:
        return None


class MqttTransport:
    """One connection for the whole virtual floor (thousands of per-device connections would measure the
    simulator, not the edge). Last Wills are published explicitly when a scenario kills a device."""

    def __init__(self, settings: MqttSettings, client_id: str | None = None, timeout_s: float = 10.0, *,
                 announce: tuple[str, str] | None = None) -> None:
        """`announce`: (floor, scenario) to hold `simulators.presence`'s retained message for while it runs."""
        self.commands: queue.Queue[tuple[str, bytes]] = queue.Queue()
        client_id = client_id or f"floorwatch-sim-{os.getpid()}"
        self._presence = presence.topic(announce[0]) if announce else None
        self.client = MqttClient(settings, client_id, on_message=self._on_message,
                                 will=presence.will(announce[0]) if announce else None)
        for topic_filter in COMMAND_FILTERS:
            self.client.subscribe(topic_filter, qos=1)
        self.client.start()
        if not self.client.wait_connected(timeout_s):
            self.client.stop()
            raise ConnectionError(f"no MQTT broker at {settings.host}:{settings.port}")
        if announce is not None:
            self.client.publish(*presence.announcement(announce[0], announce[1], client_id), qos=1, retain=True)

    def _on_message(self, message: Incoming) -> None:
        self.commands.put((message.topic, message.payload))  # paho's thread only hands off

    def publish(self, pub: Publication) -> None:
        self.client.publish(pub.topic, pub.payload, pub.qos, pub.retain)

    def close(self) -> None:
        self.client.stop(final=(self._presence, b"", 1, True) if self._presence else None)

"""Where simulated devices publish: the floor broker (through gateway.mqtt, the project's one MQTT
client) or nowhere (a dry run that only computes the injected log)."""

from __future__ import annotations

import os
import queue
from typing import Protocol

from gateway.mqtt import Incoming, MqttClient, MqttSettings, topic_matches
from simulators import presence
from simulators.vendors.base import Publication

# Command topics of every modelled dialect; the runner routes each message to its device (and ignores
# the rest, such as our own Shelly replies on `<src>/rpc`, which `+/rpc` also matches). A device whose
# command topic none of these matches (a Zigbee2MQTT name with `/`) is listened to by its own (`listen`).
COMMAND_FILTERS = ("+/rpc", "cmnd/#", "zigbee2mqtt/+/set", "access/+/cmd")


class Transport(Protocol):
    commands: queue.Queue[tuple[str, bytes]]

    def publish(self, pub: Publication) -> None: ...

    def listen(self, topics: list[str]) -> None: ...

    def close(self) -> None: ...


class NullTransport:
    """A dry run: nothing leaves the process, no commands arrive."""

    def __init__(self) -> None:
        self.commands: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.sent = 0

    def publish(self, pub: Publication) -> None:
        self.sent += 1

    def listen(self, topics: list[str]) -> None:
        return None

    def close(self) -> None:
        return None


class MqttTransport:
    """One connection for the whole virtual floor (thousands of per-device connections would measure the
    simulator, not the edge). Last Wills are published explicitly when a scenario kills a device."""

    def __init__(self, settings: MqttSettings, client_id: str | None = None, timeout_s: float = 10.0, *,
                 announce: tuple[str, str] | None = None) -> None:
        """`announce`: (floor, scenario) to hold `simulators.presence`'s retained message for while it runs;
        raises `presence.FloorTaken` when another simulator announced that floor first."""
        self.commands: queue.Queue[tuple[str, bytes]] = queue.Queue()
        client_id = client_id or f"floorwatch-sim-{os.getpid()}"
        self._presence = presence.topic(announce[0]) if announce else None
        self._own = presence.own_topic(announce[0], client_id) if announce else None
        self._first: queue.Queue[bytes] = queue.Queue()
        self.client = MqttClient(settings, client_id, on_message=self._on_message,
                                 will=presence.will(announce[0], client_id) if announce else None)
        for topic_filter in COMMAND_FILTERS:
            self.client.subscribe(topic_filter, qos=1)
        if self._presence is not None:
            self.client.subscribe(self._presence, qos=1)  # before announcing: see who announced first
        self.client.start()
        if not self.client.wait_connected(timeout_s) or not self.client.wait_subscribed(timeout_s):
            self.client.stop()
            raise ConnectionError(f"no MQTT broker at {settings.host}:{settings.port}")
        if announce is not None:
            self._claim(announce[0], announce[1], client_id, timeout_s)

    def _claim(self, floor: str, scenario: str, client_id: str, timeout_s: float) -> None:
        topic, mine = presence.announcement(floor, scenario, client_id)
        self.client.publish(topic, mine, qos=1, retain=True)
        try:
            first = self._first.get(timeout=timeout_s)
        except queue.Empty:
            self.client.stop(final=(topic, b"", 1, True))  # a clean stop sends no Will: clear it ourselves
            raise ConnectionError(f"the broker did not hand back this simulator's announcement on {topic} "
                                  f"within {timeout_s:g} s") from None
        if first == mine:
            return
        # Another came first: take ours back; the first one's topic is its own to clear.
        self.client.stop(final=(topic, b"", 1, True))
        raise presence.FloorTaken(presence.parse(first, floor))

    def _on_message(self, message: Incoming) -> None:
        if self._presence is not None and topic_matches(self._presence, message.topic):
            if message.payload and self._first.empty():
                self._first.put(message.payload)  # who announced first: only the first counts
            return
        self.commands.put((message.topic, message.payload))  # paho's thread only hands off

    def publish(self, pub: Publication) -> None:
        self.client.publish(pub.topic, pub.payload, pub.qos, pub.retain)

    def listen(self, topics: list[str], timeout_s: float = 10.0) -> None:
        """Also subscribe the command topics no filter of COMMAND_FILTERS matches (none twice: overlapping
        subscriptions could hand a command over twice), granted before this returns."""
        extra = [t for t in topics if not any(topic_matches(f, t) for f in COMMAND_FILTERS)]
        for topic in extra:
            self.client.subscribe(topic, qos=1)
        if extra and not self.client.wait_subscribed(timeout_s):
            settings = self.client.settings
            raise ConnectionError(f"the MQTT broker at {settings.host}:{settings.port} did not grant the command "
                                  f"topics {extra[:3]} within {timeout_s:g} s: check that it runs and that this "
                                  "user may subscribe them")

    def close(self) -> None:
        self.client.stop(final=(self._own, b"", 1, True) if self._own else None)

"""Which simulator plays a floor on a broker: one at a time.

A simulator that announces itself (the demo's own, and `floorwatch simulate`) holds a retained message
on `floorwatch-sim/<floor>/running` while it runs; its clean stop clears it, and its Last Will (an empty
retained message) clears it when the connection drops without one. A second simulator on the same
devices would contradict the first: a plug the server cut reports off from one and on from the other,
so the server raises `elec.relay_mismatch` on a floor that is fine. `running_on` reads the message
before a run, so `floorwatch simulate` can refuse with what to do instead.

Two simulators started at the same moment both read nothing before either announces, so the announcement
is also a claim (`claim`): each subscribes before it announces and plays only if the first announcement
the broker hands it is its own. The broker orders the announcements of one topic, so of two claims every
subscriber sees the same one first; the one that lost puts the winner's announcement back and stops
before it publishes anything else.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import UTC, datetime
from typing import Any

from gateway.mqtt import Incoming, MqttClient, MqttSettings, Will

TOPIC = "floorwatch-sim/{floor}/running"


def topic(floor: str) -> str:
    return TOPIC.format(floor=floor)


def announcement(floor: str, scenario: str, client_id: str) -> tuple[str, bytes]:
    """(topic, retained payload) that says this process plays `scenario` on `floor`."""
    body = {"floor": floor, "scenario": scenario, "client_id": client_id, "host": socket.gethostname(),
            "pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
    return topic(floor), json.dumps(body).encode("utf-8")


class FloorTaken(Exception):
    """Another simulator announced itself on this floor first; `live` is its announcement."""

    def __init__(self, live: dict[str, Any]) -> None:
        super().__init__(f"a simulator already plays floor {live.get('floor', '?')}: {live.get('client_id', '?')}")
        self.live = live


def parse(payload: bytes, floor: str) -> dict[str, Any]:
    """An announcement's body (the raw text of one that is not a JSON object)."""
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {"floor": floor, "raw": payload.decode("utf-8", "replace")}


def will(floor: str) -> Will:
    """Clears the announcement when the simulator's connection drops without a clean stop."""
    return Will(topic(floor), b"", qos=1, retain=True)


def running_on(settings: MqttSettings, floor: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The announcement of the simulator that plays `floor` on this broker now, or None.

    The broker sends a retained message right after granting the subscription; a message this client
    publishes after the grant comes back after it, so its echo is the point where nothing retained is
    left to come. Raises ConnectionError when the broker cannot be reached."""
    found: dict[str, bytes] = {}
    done = threading.Event()
    probe = f"{topic(floor)}/probe-{os.getpid()}"

    def on_message(message: Incoming) -> None:
        if message.topic == probe:
            done.set()
        elif message.payload:
            found[message.topic] = message.payload

    client = MqttClient(settings, f"floorwatch-sim-probe-{os.getpid()}", on_message=on_message)
    client.subscribe(topic(floor), qos=1)
    client.subscribe(probe, qos=1)
    client.start()
    try:
        if not client.wait_connected(timeout_s) or not client.wait_subscribed(timeout_s):
            raise ConnectionError(f"no MQTT broker at {settings.host}:{settings.port}")
        client.publish(probe, b"", qos=1, retain=False)
        done.wait(timeout_s)
    finally:
        client.stop()
    payload = found.get(topic(floor))
    return None if payload is None else parse(payload, floor)

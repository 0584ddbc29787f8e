"""Which simulator plays a floor on a broker: one at a time.

A simulator that announces itself (the demo's own, and `floorwatch simulate`) holds a retained message
on its own topic `floorwatch-sim/<floor>/running/<client id>` while it runs; its clean stop clears it, and
its Last Will (an empty retained message) clears it when the connection drops without one. Only its owner
ever writes that topic, so no announcement outlives its simulator. A second simulator on the same
devices would contradict the first: a plug the server cut reports off from one and on from the other,
so the server raises `elec.relay_mismatch` on a floor that is fine. `running_on` reads the floor's
announcements before a run, so `floorwatch simulate` can refuse with what to do instead.

Two simulators started at the same moment both read nothing before either announces, so the announcement
is also a claim: each subscribes to the floor's announcements (`topic`) before it announces and plays
only if the first announcement the broker hands it is its own (the broker hands every subscriber the
announcements in the order it took them, and the ones it retains before any new one). The one that
lost clears its own announcement and stops before it publishes anything else: the winner's stays as the
winner left it.
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
    """The filter of every announcement on `floor`."""
    return TOPIC.format(floor=floor) + "/+"


def own_topic(floor: str, client_id: str) -> str:
    """The topic of one simulator's announcement (a client id's `/`, `+` and `#` would make it another level
    or a wildcard)."""
    level = "".join("_" if c in "/+#" else c for c in client_id)
    return f"{TOPIC.format(floor=floor)}/{level}"


def announcement(floor: str, scenario: str, client_id: str) -> tuple[str, bytes]:
    """(topic, retained payload) that says this process plays `scenario` on `floor`."""
    body = {"floor": floor, "scenario": scenario, "client_id": client_id, "host": socket.gethostname(),
            "pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
    return own_topic(floor, client_id), json.dumps(body).encode("utf-8")


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


def will(floor: str, client_id: str) -> Will:
    """Clears the simulator's announcement when its connection drops without a clean stop."""
    return Will(own_topic(floor, client_id), b"", qos=1, retain=True)


def running_on(settings: MqttSettings, floor: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The announcement of the simulator that plays `floor` on this broker now, or None.

    The broker sends a retained message right after granting the subscription; a message this client
    publishes after the grant comes back after it, so its echo is the point where nothing retained is
    left to come. Raises ConnectionError when the broker cannot be reached."""
    found: dict[str, bytes] = {}
    done = threading.Event()
    probe = f"{TOPIC.format(floor=floor)}-probe/{os.getpid()}"  # outside `topic(floor)`

    def on_message(message: Incoming) -> None:
        if message.topic == probe:
            done.set()
        elif message.payload and message.topic not in found:
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
    payload = next(iter(found.values()), None)  # the first handed over
    return None if payload is None else parse(payload, floor)

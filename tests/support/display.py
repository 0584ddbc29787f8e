"""What a floor display sees: the retained message of a topic, as one that connects now gets it."""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from tests.support.wait import wait_until


def retained(broker: EmbeddedBroker, topic: str, timeout: float = 10.0) -> dict[str, Any] | None:
    """The last message retained on `topic` as JSON, from a new subscriber; None when nothing came in `timeout`."""
    got: list[bytes] = []
    sub = MqttClient(broker.client_settings(), f"display-{time.monotonic_ns()}",
                     on_message=lambda m: got.append(m.payload))
    sub.subscribe(topic)
    sub.start()
    try:
        wait_until(lambda: got, timeout)
    finally:
        sub.stop()
    data: dict[str, Any] | None = json.loads(got[-1]) if got else None
    return data

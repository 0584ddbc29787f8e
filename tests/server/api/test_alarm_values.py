"""An alarm in the API keeps what it was raised at and the worst it got, with the unit, after it clears:
a strip overload raised at 12 A, worse at 12.4 A, then back at 3.5 A, on a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway import contract
from gateway.mqtt import MqttClient
from tests.server.api.api_server import Api, server_on_mosquitto
from tests.support.wait import wait_until


@pytest.fixture
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with server_on_mosquitto(tmp_path_factory.mktemp("values")) as server:
        yield server


def test_a_cleared_overload_shows_its_raise_value_peak_and_unit(api: Api) -> None:
    raised = api.overload_strip()  # 12.0 A on the 10 A strip-z1-01 until the alarm is open
    assert (raised["raised_value"], raised["unit"]) == (12.0, "A")
    device = MqttClient(api.broker.client_settings(), f"edge-e1-values-{time.monotonic_ns()}")
    device.start()
    assert device.wait_connected(10)
    seq = [1_000]  # above overload_strip's, which shares the edge's sequence

    def send(amps: float) -> None:
        seq[0] += 1
        now = datetime.now(UTC)
        batch = contract.TelemetryBatch(edge="e1", seq=seq[0], sent_at=now, readings=[contract.Reading(
            device="strip-z1-01", ts=now, metrics={"current_a": amps})])
        device.publish(contract.edge_topic("sec", "e1", contract.Channel.TELEMETRY), contract.encode(batch), qos=1)

    def alarm() -> dict[str, Any]:
        got = api.admin.get(f"/api/alarms/{raised['id']}")
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    def back_under_rating() -> bool:
        send(3.5)
        return bool(alarm()["state"] != "active")

    try:
        send(12.4)  # worse, still under the 125 % surge stage: no escalation, no new finding
        # the site holds a clear 1 s (api_server.site_yaml): 3.5 A until the alarm is no longer active
        assert wait_until(back_under_rating, timeout=30, step=0.5), alarm()
    finally:
        device.stop()
    cleared = alarm()
    assert cleared["state"] == "cleared_unacked"
    assert (cleared["value"], cleared["raised_value"], cleared["peak_value"], cleared["unit"]) == (3.5, 12.0, 12.4, "A")

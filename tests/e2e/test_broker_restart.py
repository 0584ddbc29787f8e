"""Issue 9, fault 3: the broker restarts (graceful, persistence on) while a strip reports steadily and
an evacuation is active. Measured: every reading the strip published reaches the series store exactly
once, nothing counted as lost by the sequence tracker, server and edge reconnect by themselves, and a
floor display that connects after the restart still gets the evacuation notice (retained, persisted)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

from gateway.mqtt import MqttClient
from simulators.vendors.tasmota import ChannelEnergy, TasmotaState, encode_sensor
from tests.e2e.conftest import Stack
from tests.support.wait import wait_until

NOTICE = "floorwatch/v1/e2e/notices/evacuation"


def retained_notice(stack: Stack) -> dict[str, object]:
    got: list[bytes] = []
    display = MqttClient(stack.broker.client_settings(), f"display-{time.monotonic_ns()}",
                         on_message=lambda m: got.append(m.payload))
    display.subscribe(NOTICE)
    display.start()
    try:
        assert wait_until(lambda: bool(got), 15), "no retained evacuation notice"
    finally:
        display.stop()
    notice: dict[str, object] = json.loads(got[-1])
    return notice


def test_broker_restart_loses_no_reading_and_keeps_the_evacuation_notice(stack: Stack) -> None:
    started = datetime.now(UTC)
    r = stack.client.post("/api/evacuations", json={"floor": "f1", "reason": "broker restart test"})
    assert r.status_code == 201, r.text
    assert retained_notice(stack)["state"] == "active"

    # The strip reports every 50 ms at QoS 1, its power counting up, across the restart: what it
    # publishes while the broker is away waits in its client and goes out after the reconnect.
    device = MqttClient(stack.broker.client_settings(), "tasmota-strip-z1-01", persistent_session=True)
    device.start()
    assert device.wait_connected(10)
    sent: list[int] = []
    stop = threading.Event()

    def report() -> None:
        n = 0
        while not stop.is_set():
            state = TasmotaState(channels=[ChannelEnergy(power_w=float(n), current_a=0.5)])
            sensor = encode_sensor("strip-z1-01", state, datetime.now(UTC))
            device.publish(sensor.topic, sensor.payload, qos=1)
            sent.append(n)
            n += 1
            time.sleep(0.05)  # steady telemetry: a reading every 50 ms

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    assert wait_until(lambda: len(sent) >= 40, 10)
    down_at = time.monotonic()
    stack.broker.restart()  # SIGTERM: Mosquitto saves retained messages and sessions, then starts again
    restarted_s = time.monotonic() - down_at
    assert wait_until(lambda: stack.agent.uplink is not None and stack.agent.uplink.connected and device.connected,
                      30), "edge or device did not reconnect"
    assert wait_until(lambda: stack.client.get("/api/health").json()["dependencies"]["broker"]["up"], 30), \
        "the server did not reconnect"
    reconnected_s = time.monotonic() - down_at
    assert wait_until(lambda: len(sent) >= 40 + 60, 15)
    stop.set()
    reporter.join(5)
    total = len(sent)

    def stored() -> list[float]:
        rows = stack.client.get("/api/readings", params={
            "device": "strip-z1-01", "metric": "power_w", "since": (started - timedelta(minutes=1)).isoformat(),
            "limit": 50_000}).json()
        return [row["value"] for row in rows]

    wait_until(lambda: len(stored()) >= total, 30)
    values = stored()
    missing = sorted(set(range(total)) - {int(v) for v in values})
    twice = sorted({v for v in values if values.count(v) > 1})
    assert sorted(values) == [float(n) for n in range(total)], f"each reading once; missing {missing}, twice {twice}"
    health = stack.client.get("/api/health").json()
    assert health["ingest"]["lost"] == 0
    assert not [a for a in stack.client.get("/api/alarms").json() if a["rule"] == "sup.message_loss"]
    notice = retained_notice(stack)
    assert notice["state"] == "active" and notice["id"] == r.json()["id"]
    print(f"[broker restart] restart took {restarted_s:.2f} s, all clients back after {reconnected_s:.2f} s; "
          f"{total} readings published, {len(values)} stored, 0 lost, 0 twice; "
          f"duplicates discarded by seq: {health['ingest']['duplicates']}; notice still retained")
    device.stop()

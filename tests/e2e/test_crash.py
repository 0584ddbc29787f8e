"""SIGKILL the server in the middle of an overload, start it again: exactly one alarm, in the right
state, raised when the rule's duration ran out counted from the condition's start (the pending
duration was restored), not from the restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from gateway import contract
from gateway.broker import EmbeddedBroker, free_port
from gateway.mqtt import MqttClient

HOLD_S = 20
SITE = f"""
site: {{id: crash, name: Crash floor, timezone: Asia/Shanghai}}
floors: [{{id: f1, name: 1F}}]
zones: [{{id: z1, name: Zone 1, floor: f1, kind: office, polygon: [[0, 0], [10, 0], [10, 10], [0, 10]]}}]
devices: [{{id: strip-1, kind: strip_meter, zone: z1, edge: edge-c, rated_a: 10}}]
thresholds:
  devices:
    strip-1:
      elec.strip_overload: {{major_hold_s: {HOLD_S}, critical_hold_s: 3600, surge_ratio: 5.0}}
"""
TOKEN = "crash-admin-token"


class Server:
    def __init__(self, broker: EmbeddedBroker, data: Path) -> None:
        self.port = free_port()
        settings = broker.client_settings()
        self.env = {**os.environ, "FLOORWATCH_SITE_FILE": str(data / "site.yaml"),
                    "FLOORWATCH_DATA_DIR": str(data), "FLOORWATCH_ADMIN_TOKEN": TOKEN,
                    "FLOORWATCH_HTTP_PORT": str(self.port), "FLOORWATCH_MQTT__HOST": settings.host,
                    "FLOORWATCH_MQTT__PORT": str(settings.port), "FLOORWATCH_MQTT__USERNAME": str(settings.username),
                    "FLOORWATCH_MQTT__PROTOCOL": settings.protocol}
        self.process: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.port}",
                                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "server.cli", "server"], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.api.get("/api/health").json()["dependencies"]["broker"]["up"]:
                    return
            except (httpx.HTTPError, KeyError):
                pass
            time.sleep(0.2)
        raise AssertionError("the server did not come up")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def overloads(self) -> list[dict[str, object]]:
        return [a for a in self.api.get("/api/alarms").json() if a["rule"] == "elec.strip_overload"]


class Strip:
    """Speaks for edge-c directly, so the test controls seq and timestamps."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.client = MqttClient(broker.client_settings(), "crash-edge")
        self.client.start()
        assert self.client.wait_connected(10)
        self.seq = 0
        self.topic = contract.edge_topic("crash", "edge-c", contract.Channel.TELEMETRY)

    def report(self, amps: float) -> None:
        now = datetime.now(UTC)
        self.client.publish_payload(self.topic, contract.TelemetryBatch(edge="edge-c", seq=self.seq, sent_at=now,
                                    readings=[contract.Reading(device="strip-1", ts=now,
                                                               metrics={"current_a": amps})]))
        self.seq += 1

    def report_for(self, amps: float, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.report(amps)
            time.sleep(0.5)


def test_sigkill_during_a_pending_duration_and_after_the_raise_leaves_one_alarm(
    mosquitto: EmbeddedBroker, tmp_path: Path,
) -> None:
    (tmp_path / "site.yaml").write_text(SITE)
    server = Server(mosquitto, tmp_path)
    server.start()
    strip = Strip(mosquitto)
    try:
        overload_start = datetime.now(UTC)
        strip.report_for(12.0, 8)  # 8 s into a 20 s hold
        time.sleep(1.5)  # the engine's state is saved every second with the drain
        server.kill()
        strip.report_for(12.0, 2)  # the overload goes on while the server is down (the broker queues)
        server.start()
        strip.report_for(12.0, 16)  # past the hold counted from the start, short of one counted from restart
        alarms = server.overloads()
        assert len(alarms) == 1, alarms
        raised_at = datetime.fromisoformat(str(alarms[0]["raised_at"]))
        late_by = (raised_at - overload_start).total_seconds() - HOLD_S
        assert -1 < late_by < 5, f"raised {late_by:.1f} s after the hold ran out: the pending duration was lost"
        alarm_id = alarms[0]["id"]

        server.kill()  # now with the alarm raised and the overload still on
        strip.report_for(12.0, 2)
        server.start()
        strip.report_for(12.0, 2)
        alarms = server.overloads()
        assert [(a["id"], a["state"]) for a in alarms] == [(alarm_id, "active")]
        assert server.api.get("/api/health").json()["ingest"]["lost"] == 0
    finally:
        strip.client.stop()
        server.stop()

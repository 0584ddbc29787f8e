"""The very first start loses nothing: `floorwatch broker session` makes the server's persistent MQTT session
on a fresh Mosquitto before any edge runs, so what an edge publishes before the server exists waits in the
broker and is applied once the server starts. Without that step the broker acknowledges and drops it
(nobody is subscribed), and the edge, holding a PUBACK, forgets it. Health says `subscribed` once the broker
granted the server's subscriptions."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient, MqttSettings, create_session
from server.api.routes.system import health
from server.runtime import Runtime, server_filters
from server.settings import Settings
from tests.support.wait import wait_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BATCHES = 200
"""Telemetry batches the edge sends: the first half before the server process exists, the rest while it starts."""


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOORWATCH_")}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def _server_env(mqtt: MqttSettings, data_dir: Path) -> dict[str, str]:
    env = {"FLOORWATCH_SITE_FILE": str(HERE / "site.yaml"), "FLOORWATCH_DATA_DIR": str(data_dir),
           "FLOORWATCH_MQTT__HOST": mqtt.host, "FLOORWATCH_MQTT__PORT": str(mqtt.port)}
    if mqtt.username is not None:
        env["FLOORWATCH_MQTT__USERNAME"] = mqtt.username
    return env


def test_a_cold_start_applies_every_reading_published_before_the_server_was_up(
    mosquitto: EmbeddedBroker, tmp_path: Path,
) -> None:
    mqtt = mosquitto.client_settings()
    made = _cli("broker", "session", env=_server_env(mqtt, tmp_path / "server"))
    assert made.returncode == 0, made.stderr
    assert "session floorwatch-server" in made.stdout and "created" in made.stdout, made.stdout

    acked: list[int] = []
    edge = MqttClient(mqtt, "first-start-edge", on_published=acked.append)
    edge.start()
    topic = contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY)

    def send(seqs: range) -> None:
        for seq in seqs:
            now = datetime.now(UTC)
            edge.publish_payload(topic, contract.TelemetryBatch(edge="edge-e2e", seq=seq, sent_at=now, readings=[
                contract.Reading(device="strip-z1-01", ts=now, metrics={"current_a": 2.0 + seq / 1000})]))

    runtime: Runtime | None = None
    try:
        # From the edge's first instant: paho queues until CONNACK, the broker acks into the server's session.
        send(range(1, BATCHES // 2 + 1))
        assert wait_until(lambda: len(acked) == BATCHES // 2, 30), f"{len(acked)} PUBACKs"
        rest = threading.Thread(target=send, args=(range(BATCHES // 2 + 1, BATCHES + 1),), name="edge-rest")
        rest.start()  # the second half races the server's start-up
        settings = Settings(site_file=HERE / "site.yaml", data_dir=tmp_path / "server", mqtt=mqtt,
                            admin_token=SecretStr("t"))
        runtime = Runtime(settings)
        runtime.start()
        rest.join(30)
        assert wait_until(lambda: len(acked) == BATCHES, 30), f"{len(acked)} of {BATCHES} PUBACKs"
        stats = runtime.ingest.stats
        assert wait_until(lambda: stats.readings == BATCHES, 60), f"{stats.readings} of {BATCHES} applied"
        assert (stats.messages, stats.lost, stats.duplicates, stats.invalid, stats.unknown_devices) == (
            BATCHES, 0, 0, 0, 0)
        assert runtime.repository.dead_letters(10, None) == []
        assert not [a for a in runtime.alarms.open_alarms() if a.rule == "sup.message_loss"]
        assert runtime.mqtt is not None and runtime.mqtt.session_present, "the server resumed the made session"
        broker = health(runtime).dependencies["broker"]
        assert broker["subscribed"] is True and broker["subscribe_refused"] is None
        print(f"[first start] {BATCHES} batches, {BATCHES // 2} before the server existed: "
              f"{stats.readings} applied, {stats.lost} lost")
    finally:
        edge.stop()
        if runtime is not None:
            runtime.stop()


def test_making_the_session_again_keeps_what_is_queued(mosquitto: EmbeddedBroker, tmp_path: Path) -> None:
    """Run twice (a redeploy): the second run finds the session and acknowledges nothing it is handed."""
    mqtt = mosquitto.client_settings()
    filters = server_filters("e2e")
    assert create_session(mqtt, "floorwatch-server", filters) is False
    acked: list[int] = []
    edge = MqttClient(mqtt, "requeue-edge", on_published=acked.append)
    edge.start()
    now = datetime.now(UTC)
    try:
        edge.publish_payload(contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY),
                             contract.TelemetryBatch(edge="edge-e2e", seq=1, sent_at=now, readings=[
                                 contract.Reading(device="strip-z1-01", ts=now, metrics={"current_a": 1.5})]))
        assert wait_until(lambda: acked, 10)
        assert create_session(mqtt, "floorwatch-server", filters) is True
        runtime = Runtime(Settings(site_file=HERE / "site.yaml", data_dir=tmp_path / "server", mqtt=mqtt,
                                   admin_token=SecretStr("t")))
        runtime.start()
        try:
            assert wait_until(lambda: runtime.ingest.stats.readings == 1, 30), "the queued reading was lost"
            assert runtime.ingest.stats.lost == 0
        finally:
            runtime.stop()
    finally:
        edge.stop()


def test_subscribed_means_the_broker_routes_to_the_client(mosquitto: EmbeddedBroker) -> None:
    """`subscribed` follows the SUBACKs: at start, for a filter added while connected, and off at a stop."""
    mqtt = mosquitto.client_settings()
    got: list[str] = []
    probe = MqttClient(mqtt, "suback-probe", on_message=lambda m: got.append(m.topic))
    sender = MqttClient(mqtt, "suback-sender")
    probe.subscribe("probe/a")
    assert not probe.subscribed
    probe.start()
    sender.start()
    try:
        assert probe.wait_subscribed(10) and sender.wait_connected(10)
        probe.subscribe("probe/b")
        assert probe.wait_subscribed(10)
        sender.publish("probe/a", b"1")
        sender.publish("probe/b", b"2")
        assert wait_until(lambda: sorted(got) == ["probe/a", "probe/b"], 10), got
    finally:
        sender.stop()
        probe.stop()
    assert not probe.subscribed


def test_broker_session_says_what_is_wrong(tmp_path: Path) -> None:
    unset = _cli("broker", "session", env={"FLOORWATCH_SITE_FILE": str(HERE / "site.yaml")})
    assert unset.returncode == 2 and "FLOORWATCH_MQTT__HOST is not set" in unset.stderr, unset.stderr
    assert "Traceback" not in unset.stderr
    nobody = MqttSettings(host="127.0.0.1", port=_closed_port())
    down = _cli("broker", "session", "--timeout", "2", env=_server_env(nobody, tmp_path))
    assert down.returncode == 1, down.stderr
    assert f"no SUBACK from the broker at 127.0.0.1:{nobody.port}" in down.stderr and "Traceback" not in down.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

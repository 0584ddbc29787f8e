"""The server's time-series path into a real server that speaks the InfluxDB v2 write API
(VictoriaMetrics, started for the test): a reading published on the canonical topic arrives as a point
of measurement `strip_meter`, field `current_a`, tagged with site, zone and device."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from server.runtime import Runtime
from server.settings import InfluxSettings, Settings
from tests.server.adapters.timeseries.services import VictoriaMetrics
from tests.support.wait import wait_until

HERE = Path(__file__).resolve().parent


def test_readings_reach_the_influx_write_api(mosquitto: EmbeddedBroker, victoria_metrics: VictoriaMetrics,
                                             tmp_path: Path) -> None:
    settings = Settings(site_file=HERE / "site.yaml", data_dir=tmp_path, mqtt=mosquitto.client_settings(),
                        admin_token=SecretStr("t"), influx=InfluxSettings(url=victoria_metrics.url))
    runtime = Runtime(settings)
    runtime.start()
    edge = MqttClient(mosquitto.client_settings(), "influx-path-edge")
    edge.start()
    try:
        # The edge publishes once the server's subscriptions are granted (health: broker.subscribed).
        assert edge.wait_connected(10) and runtime.mqtt is not None and runtime.mqtt.wait_subscribed(10)
        sent = datetime.now(UTC).replace(microsecond=123_000)
        edge.publish_payload(contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY),
                             contract.TelemetryBatch(edge="edge-e2e", seq=1, sent_at=sent, readings=[
                                 contract.Reading(device="strip-z1-01", ts=sent, metrics={"current_a": 7.25})]))
        assert wait_until(lambda: runtime.ingest.stats.readings == 1, 30), "the reading was not applied"
        series: dict[str, dict[int, float]] = {}

        def exported() -> bool:
            nonlocal series
            runtime.series.flush(5)
            series = victoria_metrics.export('strip_meter_current_a{device="strip-z1-01"}')
            return bool(series)

        wait_until(exported, 30, 0.2)
        assert series, "no point arrived"
        [(name, points)] = series.items()
        assert "zone=z1" in name and "site=e2e" in name and "kind=strip_meter" in name
        assert points == {int(sent.timestamp() * 1000): 7.25}
        assert runtime.series.stats().dropped == 0
    finally:
        edge.stop()
        runtime.stop()

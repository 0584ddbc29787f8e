"""What a running server writes is what the boards read: a real runtime (Mosquitto, ingest, SQLite, the
embedded series store) gets a floor's readings and events from an "edge", raises an alarm and plans its
inspections; then every board query's measurement, fields and event types are in the series store.

(`test_queries_influxdb.py` runs every query on InfluxDB against data written by the serializer; this
test is the other half: that the server writes that data at all.)"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from dashboards.build import build
from dashboards.schema_check import _ALIAS, _FIELD_CMP, _FROM, _FUNC_ARG, queries
from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from server.runtime import Runtime
from server.settings import Settings
from tests.support.inspections import EXAMPLE
from tests.support.wait import wait_until

_TYPE_IS = re.compile(r'"type"\s*=\s*\'(\w+)\'')
_TYPE_IN = re.compile(r'"type"\s*=~\s*/\^\(([\w|]+)\)\$/')


@pytest.fixture
def served(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[Runtime, MqttClient, Path]]:
    shutil.copy(EXAMPLE, tmp_path / "site.yaml")
    settings = Settings(site_file=tmp_path / "site.yaml", data_dir=tmp_path / "var", mqtt=mosquitto.client_settings(),
                        admin_token=SecretStr("t"), mqtt_client_id="boards-server")
    runtime = Runtime(settings)
    runtime.start()
    edge = MqttClient(mosquitto.client_settings(), "boards-edge")
    edge.start()
    try:
        assert edge.wait_connected(10) and runtime.mqtt is not None and runtime.mqtt.wait_subscribed(10)
        yield runtime, edge, tmp_path / "var" / "series.sqlite"
    finally:
        edge.stop()
        runtime.stop()


def _stored(path: Path) -> tuple[set[tuple[str, str]], set[str]]:
    """(measurement, field) pairs with samples, and the `type` tags of the event series."""
    with sqlite3.connect(path) as db:
        fields = set(db.execute("SELECT DISTINCT s.measurement, f.field FROM samples f JOIN series s "
                                "ON s.id = f.series_id").fetchall())
        types = {json.loads(tags).get("type", "") for (tags,) in
                 db.execute("SELECT tags FROM series WHERE measurement = 'event'")}
    return fields, types


def test_every_board_query_finds_what_the_server_wrote(served: tuple[Runtime, MqttClient, Path]) -> None:
    runtime, edge, series = served
    now = datetime.now(UTC)
    readings = [
        ("strip-a1", {"current_a": 6.5, "power_w": 1450.0, "voltage_v": 221.0}),
        ("plug-s001", {"power_w": 180.0, "current_a": 0.8, "voltage_v": 221.0, "relay_on": True}),
        ("plug-s002", {"power_w": 0.0, "current_a": 0.0, "voltage_v": 220.0, "relay_on": False}),
        ("smoke-a1", {"smoke": False, "detector_fault": False, "battery_pct": 90.0}),
        ("temp-a1", {"temperature_c": 24.5, "humidity_pct": 45.0}),
        ("door-main", {"door_open": False}),
    ]
    edge.publish_payload(contract.edge_topic("hq", "edge-f1", contract.Channel.TELEMETRY), contract.TelemetryBatch(
        edge="edge-f1", seq=1, sent_at=now, readings=[contract.Reading(device=d, ts=now, metrics=m)
                                                      for d, m in readings]))
    edge.publish_payload(contract.edge_topic("hq", "edge-mr", contract.Channel.TELEMETRY), contract.TelemetryBatch(
        edge="edge-mr", seq=1, sent_at=now, readings=[
            contract.Reading(device="mr-probe1", ts=now,
                             metrics={"temperature_c": 23.0, "humidity_pct": 45.0, "water_leak": False}),
            contract.Reading(device="leak-mr1", ts=now, metrics={"water_leak": False})]))
    edge.publish_payload(contract.edge_topic("hq", "edge-f1", contract.Channel.EVENTS), contract.EventBatch(
        edge="edge-f1", seq=2, sent_at=now, events=[
            contract.Event(device="door-b", ts=now, type=contract.EventType.ACCESS_DENIED, badge="B-999"),
            contract.Event(device="door-main", ts=now, type=contract.EventType.DOOR_FORCED),
            contract.Event(device="door-b", ts=now, type=contract.EventType.DOOR_HELD_OPEN),
            contract.Event(device="plug-s001", ts=now, type=contract.EventType.INTERLOCK_TRIPPED)]))
    assert wait_until(lambda: any(a.rule == "door.forced_open" for a in runtime.alarms.open_alarms()), timeout=30), \
        "the forced door raised no alarm"
    runtime.inspections.create_due()
    assert runtime.inspections.record_counts() > 0
    assert runtime.series.flush(10.0) and runtime.history_series.flush(10.0), "the series store did not flush"

    fields, types = _stored(series)
    missing = []
    for board in build().values():
        for where, query in queries(board):
            if query.lstrip().upper().startswith("SHOW"):
                continue
            (measurement,) = _FROM.findall(query)
            aliases = set(_ALIAS.findall(query))
            for name in set(_FUNC_ARG.findall(query) + _FIELD_CMP.findall(query)) - aliases:
                if (measurement, name) not in fields:
                    missing.append(f"{where}: {measurement}.{name}")
            wanted = set(_TYPE_IS.findall(query)) | {t for group in _TYPE_IN.findall(query) for t in group.split("|")}
            missing += [f"{where}: event type {t}" for t in sorted(wanted - types)]
    assert missing == []

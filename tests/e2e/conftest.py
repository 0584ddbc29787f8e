"""A whole Floorwatch on one machine: broker, server (HTTP on a free port), edge agent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from edge.agent import EdgeAgent
from edge.config import parse_config
from gateway.broker import EmbeddedBroker, free_port
from gateway.mqtt import MqttSettings
from server.app import create_app
from server.settings import Settings

HERE = Path(__file__).resolve().parent
ADMIN_TOKEN = "e2e-admin-token"


@dataclass
class Stack:
    url: str
    client: httpx.Client
    broker: EmbeddedBroker
    agent: EdgeAgent
    server: uvicorn.Server

    def wait_for(self, path: str, predicate, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        """Poll an API path until `predicate(json)` holds (bounded); returns the last JSON."""
        deadline = time.monotonic() + timeout
        body = None
        while time.monotonic() < deadline:
            body = self.client.get(path).json()
            if predicate(body):
                return body
            time.sleep(0.1)
        raise AssertionError(f"{path} never satisfied the condition; last: {body}")


def edge_config(broker: MqttSettings, buffer: Path) -> str:
    endpoint = (f"{{host: {broker.host}, port: {broker.port}, username: {broker.username}, "
                f"protocol: '{broker.protocol}'}}")
    return f"""
site: e2e
edge: edge-e2e
uplink: {endpoint}
floor_broker: {endpoint}
buffer: {{path: {buffer}, max_messages: 10000}}
batch: {{max_readings: 200, max_age_ms: 200}}
devices:
  - {{id: strip-z1-01, kind: strip_meter, zone: z1, vendor: tasmota, address: strip-z1-01, rated_a: 10,
      reporting_interval_s: 10}}
"""


@pytest.fixture
def stack(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[Stack]:
    broker_settings = mosquitto.client_settings()
    settings = Settings(site_file=HERE / "site.yaml", data_dir=tmp_path / "server", mqtt=broker_settings,
                        admin_token=ADMIN_TOKEN, http_port=free_port(), gap_window_s=2)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.http_port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.http_port}"
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    agent = EdgeAgent(parse_config(edge_config(broker_settings, tmp_path / "edge-buffer.sqlite")))
    agent.start()
    yield Stack(url, client, mosquitto, agent, server)
    agent.stop()
    server.should_exit = True
    thread.join(15)
    client.close()

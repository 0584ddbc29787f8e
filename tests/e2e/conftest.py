"""A whole Floorwatch on one machine: broker, server (HTTP on a free port), edge agent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from edge.agent import EdgeAgent
from gateway.broker import EmbeddedBroker, free_port
from server.settings import Settings
from tests.server.adapters.timeseries.conftest import victoria_metrics  # noqa: F401  (re-exported pytest fixture)
from tests.server.services.conftest import hook, smtp  # noqa: F401  (re-exported pytest fixtures: mail and webhook receivers)
from tests.support.edge import edge_config
from tests.support.server import serve
from tests.support.wait import wait_until

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
        last: list[Any] = [None]

        def holds() -> bool:
            last[0] = self.client.get(path).json()
            return bool(predicate(last[0]))

        if not wait_until(holds, timeout, step=0.1):
            raise AssertionError(f"{path} never satisfied the condition; last: {last[0]}")
        return last[0]


DEVICES = [{"id": "strip-z1-01", "kind": "strip_meter", "zone": "z1", "vendor": "tasmota", "address": "strip-z1-01",
            "rated_a": 10, "reporting_interval_s": 10}]


@pytest.fixture
def stack(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[Stack]:
    broker_settings = mosquitto.client_settings()
    settings = Settings(site_file=HERE / "site.yaml", data_dir=tmp_path / "server", mqtt=broker_settings,
                        admin_token=ADMIN_TOKEN, http_port=free_port(), gap_window_s=2)
    with serve(settings) as running:
        client = running.client(ADMIN_TOKEN)
        agent = EdgeAgent(edge_config("e2e", "edge-e2e", broker_settings, tmp_path / "edge-buffer.sqlite", DEVICES))
        agent.start()
        yield Stack(running.url, client, mosquitto, agent, running.server)
        agent.stop()
    client.close()

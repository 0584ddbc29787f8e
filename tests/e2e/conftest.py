"""A whole Floorwatch on one machine: broker, server (HTTP on a free port), edge agent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    # A browser's live stream (SSE) stays open until its page closes: don't wait on it at shutdown.
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.http_port,
                                           log_level="warning", timeout_graceful_shutdown=2))
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


class ServerProcess:
    """The real server (`python -m server.cli server`: HTTP, ingest, notifications) as a child process,
    so that a test can SIGKILL it and start it again on the same data folder (SQLite) and broker.
    Its log goes to `<data>/server.log` (appended across restarts)."""

    def __init__(self, broker: MqttSettings, data: Path, site_file: Path, token: str = "e2e-admin-token",
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.data = data
        data.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "FLOORWATCH_SITE_FILE": str(site_file), "FLOORWATCH_DATA_DIR": str(data),
                    "FLOORWATCH_ADMIN_TOKEN": token, "FLOORWATCH_HTTP_PORT": str(self.port),
                    "FLOORWATCH_MQTT__HOST": broker.host, "FLOORWATCH_MQTT__PORT": str(broker.port),
                    "FLOORWATCH_MQTT__USERNAME": str(broker.username), "FLOORWATCH_MQTT__PROTOCOL": broker.protocol,
                    **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.port}",
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait until its health says its broker subscriptions are granted; returns the seconds that took."""
        started = time.monotonic()
        self.spawn()
        return self.wait_subscribed(timeout, started)

    def spawn(self) -> None:
        """Start the process without waiting (a standby worker opens its port only once it owns the site)."""
        with (self.data / "server.log").open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "server.cli", "server"], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)

    def wait_subscribed(self, timeout: float = 60.0, started: float | None = None) -> float:
        """Wait until its health says its broker subscriptions are granted; returns the seconds since `started`."""
        assert self.process is not None
        started = time.monotonic() if started is None else started
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}; see {self.data}/server.log")
            try:
                if self.health()["dependencies"]["broker"]["subscribed"]:
                    return time.monotonic() - started
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server did not come up in {timeout} s; see {self.data}/server.log")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (no flush, no clean MQTT disconnect)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.api.close()

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get("/api/health").json()
        return body

    def alarms(self, rule: str | None = None) -> list[dict[str, Any]]:
        every: list[dict[str, Any]] = self.api.get("/api/alarms").json()
        return [a for a in every if rule is None or a["rule"] == rule]

    def rss_kb(self) -> int:
        """VmRSS of the server process now (kB), from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

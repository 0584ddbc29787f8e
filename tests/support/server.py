"""One way to run the real Floorwatch server in a test: in this process (uvicorn on a thread, so a test
can reach the app and a fake clock) or as a child process (`ServerProcess`, so a test can SIGKILL it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from gateway.broker import free_port
from gateway.mqtt import MqttSettings
from server.app import create_app
from server.settings import Settings
from tests.support.wait import wait_until


@dataclass
class RunningServer:
    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    settings: Settings

    def client(self, token: str, timeout: float = 10) -> httpx.Client:
        """An API client with a bearer token (the caller closes it)."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)


@contextmanager
def serve(settings: Settings, *, clock: Callable[[], datetime] | None = None, log_level: str = "warning",
          start_timeout: float = 30.0, graceful_shutdown_s: int | None = 2) -> Iterator[RunningServer]:
    """The server app on 127.0.0.1:`settings.http_port`, until the block ends.
    `graceful_shutdown_s`: a browser's live stream (SSE) stays open until its page closes, so shutdown
    does not wait on open connections longer than that (None: uvicorn's default, wait for them)."""
    app = create_app(settings) if clock is None else create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_level=log_level,
                                           timeout_graceful_shutdown=graceful_shutdown_s))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), start_timeout)
        assert server.started, "the server did not start"
        yield RunningServer(f"http://127.0.0.1:{settings.http_port}", app, server, thread, settings)
    finally:
        server.should_exit = True
        thread.join(15)


def stop_process(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM (its shutdown code runs), SIGKILL after 30 s; returns its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


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
        """Start the process without waiting (a standby's health says `standby` until it owns the site)."""
        with (self.data / "server.log").open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "server.cli", "server"], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)

    def wait_subscribed(self, timeout: float = 60.0, started: float | None = None) -> float:
        """Wait until its health says its broker subscriptions are granted; returns the seconds since `started`."""
        process = self.process
        assert process is not None
        started = time.monotonic() if started is None else started

        def subscribed_or_exited() -> bool:
            if process.poll() is not None:
                return True
            try:
                return bool(self.health()["dependencies"]["broker"]["subscribed"])
            except (httpx.HTTPError, KeyError, ValueError):
                return False

        came_up = wait_until(subscribed_or_exited, timeout, 0.2)
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}; see {self.data}/server.log")
        if not came_up:
            raise AssertionError(f"the server did not come up in {timeout} s; see {self.data}/server.log")
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (no flush, no clean MQTT disconnect)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
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


class WorkerProcess:
    """`floorwatch worker` (no HTTP) as a child process; what it does is read from the database and its log."""

    def __init__(self, name: str, env: dict[str, str], data: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.log = data / "worker.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"],
                                            env={**env, "FLOORWATCH_WORKER_NAME": name,
                                                 "FLOORWATCH_DATA_DIR": str(data)},
                                            stdout=out, stderr=subprocess.STDOUT)

    def status(self) -> dict[str, Any]:
        """What it wrote last into its status file (its lease state, every 5 s)."""
        body: dict[str, Any] = json.loads((self.log.parent / "worker-status.json").read_text(encoding="utf-8"))
        return body

    def says(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def stop(self) -> int:
        return stop_process(self.process)

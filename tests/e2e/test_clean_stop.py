"""A clean stop (SIGTERM) of a server with a live page open: the page's alarm stream stays open until the page
closes, so the stop must not wait for it, or a rolling restart, a supervisor's stop or a failover hand-back would
hang for as long as any phone keeps the page open."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import httpx

from gateway.broker import EmbeddedBroker
from server.app import GRACEFUL_STOP_S
from tests.support.server import ServerProcess

TOKEN = "clean-stop-admin-token"
SITE = """
site: {id: stop, name: Stop floor, timezone: Asia/Shanghai}
floors: [{id: f1, name: 1F}]
zones: [{id: z1, name: Zone 1, floor: f1, kind: office, polygon: [[0, 0], [10, 0], [10, 10], [0, 10]]}]
devices: [{id: strip-1, kind: strip_meter, zone: z1, edge: edge-s, rated_a: 10}]
"""


def test_sigterm_with_a_live_alarm_stream_open_stops_the_server(mosquitto: EmbeddedBroker, tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(SITE, encoding="utf-8")
    server = ServerProcess(mosquitto.client_settings(), tmp_path / "server", tmp_path / "site.yaml", TOKEN)
    server.start()
    opened = threading.Event()
    ended = threading.Event()

    def read_stream() -> None:  # a phone with the page open: reads the stream until the server ends it
        try:
            with httpx.Client(base_url=server.api.base_url, headers={"Authorization": f"Bearer {TOKEN}"},
                              timeout=httpx.Timeout(10, read=None)) as client, \
                    client.stream("GET", "/api/alarms/stream") as response:
                for _chunk in response.iter_text():
                    opened.set()
        except httpx.HTTPError:
            pass
        finally:
            ended.set()

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    try:
        assert opened.wait(15), "the alarm stream did not open"
        assert server.process is not None
        server.process.terminate()
        try:
            code = server.process.wait(GRACEFUL_STOP_S + 20)
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGTERM did not stop the server while a page's alarm stream was open") from None
        # uvicorn re-raises the SIGTERM it handled once its shutdown is done: -15 is a clean stop
        assert code in (0, -signal.SIGTERM), f"the server exited with {code}; see {server.data}/server.log"
        assert "Application shutdown complete" in (server.data / "server.log").read_text(errors="replace")
        assert ended.wait(10), "the stream was not ended by the stop"
    finally:
        server.stop()

"""`floorwatch demo`: the whole system on embedded defaults, on one machine, with nothing installed.

An embedded broker on 127.0.0.1, the server (SQLite for alarms and readings), the edge agent of the
demo floor, and the virtual floor playing a scenario in the vendors' own dialects. Ctrl-C stops it.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from edge.agent import EdgeAgent
from edge.config import load_config
from gateway.broker import EmbeddedBroker
from server.app import create_app
from server.settings import DEMO_SITE, Settings

log = logging.getLogger(__name__)
DEMO_EDGE = DEMO_SITE.parent / "edge-f3.yaml"
DEMO_DAY_S = 8 * 3600.0


def run_demo(*, scenario: str, speed: float, port: int, data_dir: Path, fresh: bool = True) -> int:
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    broker = EmbeddedBroker(data_dir=data_dir / "broker")
    broker.start()
    mqtt = broker.client_settings()
    token = secrets.token_urlsafe(18)
    settings = Settings(site_file=DEMO_SITE, data_dir=data_dir / "server", mqtt=mqtt, http_port=port,
                        admin_token=SecretStr(token))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=settings.http_host, port=port,
                                           log_level="warning"))
    server_thread = threading.Thread(target=server.run, name="http", daemon=True)
    server_thread.start()
    while not server.started:
        if not server_thread.is_alive():
            broker.stop()
            print(f"the server could not start (is port {port} free? try --port)")
            return 1
        time.sleep(0.05)

    edge_config = load_config(DEMO_EDGE).model_copy(update={"uplink": mqtt, "floor_broker": mqtt})
    edge_config = edge_config.model_copy(update={"buffer": edge_config.buffer.model_copy(
        update={"path": data_dir / "edge-f3-buffer.sqlite"})})
    agent = EdgeAgent(edge_config)
    agent.start()

    inbox = _start_inbox()
    url = f"http://{settings.http_host}:{port}/#token={token}"
    print("\nFloorwatch demo is running.")
    print(f"  live page:  {url}")
    print(f"  API:        http://{settings.http_host}:{port}/docs   (bearer token: {token})")
    print(f"  broker:     {broker.kind} on {broker.host}:{broker.port} (MQTT {broker.protocol})")
    print(f"  data:       {data_dir}/")
    pushes = "printed here as they arrive (demo inbox on 127.0.0.1:8099)" if inbox else (
        "port 8099 is busy, so pushes fail and retry; see /api/notifications")
    print(f"  pushes:     {pushes}")
    if scenario != "none":
        print(f"  scenario:   {scenario} at {speed}x — watch the page; Ctrl-C stops everything\n")
        threading.Thread(target=_play, args=(scenario, speed, broker, f"http://127.0.0.1:{port}", token),
                         name="scenario", daemon=True).start()
    else:
        print("  no scenario; Ctrl-C stops everything\n")
    try:
        while server_thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…")
    agent.stop()
    server.should_exit = True
    server_thread.join(10)
    broker.stop()
    if inbox is not None:
        inbox.shutdown()
    return 0


class _Inbox(BaseHTTPRequestHandler):
    """The demo floor's contacts are `json://127.0.0.1:8099/<role>`: pushes land here and are printed."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        try:
            push = json.loads(body)
            text = f"{push.get('title', '')} {push.get('message', '')}".strip().replace("\n", " | ")
        except ValueError:
            text = body.decode("utf-8", "replace")
        print(f"[push → {self.path.strip('/')}] {text[:300]}", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _start_inbox() -> ThreadingHTTPServer | None:
    try:
        inbox = ThreadingHTTPServer(("127.0.0.1", 8099), _Inbox)
    except OSError:
        return None
    threading.Thread(target=inbox.serve_forever, name="demo-inbox", daemon=True).start()
    return inbox


def _play(name: str, speed: float, broker: EmbeddedBroker, server_url: str, token: str) -> None:
    from simulators.model import load_floor
    from simulators.operator import OperatorApi
    from simulators.runner import ScenarioRun, StepError, dump_log
    from simulators.scenario import Background, floor_dir, load_scenario
    from simulators.transport import MqttTransport

    probe = load_scenario(name)
    floor = load_floor(floor_dir(probe.floor))
    scenario = load_scenario(name, floor)
    # The demo keeps the whole floor alive, and for a working day, not only the scenario's corner
    # for its few minutes: otherwise every silent device would soon (rightly) be reported offline.
    scenario = scenario.model_copy(update={
        "background": Background(scope="floor"),
        "duration": max(scenario.duration, DEMO_DAY_S),
    })
    transport = MqttTransport(broker.client_settings(), client_id=f"floorwatch-demo-{scenario.name}")
    try:  # the scenario's operator steps (a drill's start, the all-clear) go through the server's API
        result = ScenarioRun(scenario, floor, transport, seed=1, speed=speed,
                             operator=OperatorApi(server_url, token).perform).run()
    except StepError as exc:
        print(f"scenario {name} stopped: {exc}", flush=True)
        return
    finally:
        transport.close()
    log.info("scenario %s finished: %d messages injected", name, len(dump_log(result)))
    print(f"scenario {name} finished; the system keeps running (Ctrl-C stops it)")

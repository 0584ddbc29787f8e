"""`floorwatch demo`: the whole system on embedded defaults, on one machine, with nothing installed.

An embedded broker on 127.0.0.1, the server (SQLite for alarms and readings), the edge agent of the
demo floor, and the virtual floor playing a scenario in the vendors' own dialects. The floor's roster
and HR data are moved onto the wall clock (`server.demo_floor`), so the only alarms are the scenario's.

Every demo has its own broker port, push inbox port and data folder (locked while it runs), so two
demos on one machine never see each other's messages. Ctrl-C, SIGTERM and SIGHUP stop it in order:
the simulated floor, the edge, the server, then the broker (a child in its own session, so the
terminal's Ctrl-C reaches it only through us, after its clients have gone).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import uvicorn
from pydantic import SecretStr

from edge.agent import EdgeAgent
from edge.config import load_config
from gateway.broker import EmbeddedBroker
from gateway.yamlfile import YamlFileError
from server.app import GRACEFUL_STOP_S, create_app
from server.credentials import new_token
from server.demo_floor import write_demo_floor
from server.runtime import Runtime
from server.settings import DEMO_SITE, Settings

log = logging.getLogger(__name__)
DEMO_EDGE = DEMO_SITE.parent / "edge-f3.yaml"
DEMO_DAY_S = 8 * 3600.0
DEFAULT_PORT = 8000
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DemoError(RuntimeError):
    """The demo cannot start; the message says why and what to do."""


class DemoRefused(DemoError):
    """Refused for a setting the user changes (its port, its data folder): exit 2, as a bad argument."""


def run_demo(*, scenario: str, speed: float, port: int, data_dir: Path, fresh: bool = True,
             host: str = "127.0.0.1", source_site: Path = DEMO_SITE) -> int:
    """Run until a stop signal; 0 after a clean stop, 2 when refused for its port or data folder (a setting to
    change), 1 when the demo could not start. `source_site`: the floor the demo's copy is written from (its
    hr.yaml beside it)."""
    try:
        with _data_dir_lock(data_dir):
            return _run(scenario=scenario, speed=speed, host=host, port=port, data_dir=data_dir, fresh=fresh,
                        source_site=source_site)
    except DemoError as exc:
        print(f"floorwatch demo: {exc}", flush=True)
        return 2 if isinstance(exc, DemoRefused) else 1


def _run(*, scenario: str, speed: float, host: str, port: int, data_dir: Path, fresh: bool,
         source_site: Path) -> int:
    _check_port_free(host, port)
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}

    inbox = _start_inbox()
    inbox_port = int(inbox.server_address[1])
    try:
        site_file = write_demo_floor(source_site, data_dir / "floor", inbox_port=inbox_port,
                                     now=datetime.now(UTC), scenario_start=_scenario_start(scenario))
    except YamlFileError as exc:
        inbox.shutdown()
        inbox.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise DemoError(f"cannot write the demo floor from {source_site}:\n{exc}") from None
    broker = EmbeddedBroker(data_dir=data_dir / "broker", own_session=True)
    broker.start()
    mqtt = broker.client_settings()
    token = new_token(18)
    settings = Settings(site_file=site_file, data_dir=data_dir / "server", mqtt=mqtt, http_host=host,
                        http_port=port, admin_token=SecretStr(token))
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           timeout_graceful_shutdown=GRACEFUL_STOP_S))
    server_thread = threading.Thread(target=server.run, name="http", daemon=True)
    server_thread.start()
    while not server.started:
        if not server_thread.is_alive():
            broker.stop()
            inbox.shutdown()
            raise DemoError(f"the server could not start on {host}:{port} (see the lines above)")
        time.sleep(0.05)
    _admit(app.state.runtime, token)
    # The edge starts only once the server's session holds its subscriptions: before that SUBACK the
    # broker would acknowledge and drop what the edge publishes.
    if not app.state.runtime.mqtt.wait_subscribed(30):
        server.should_exit = True
        server_thread.join(10)
        broker.stop()
        inbox.shutdown()
        raise DemoError("the server's subscriptions on the embedded broker were not granted within 30 s")

    edge_config = load_config(DEMO_EDGE).model_copy(update={"uplink": mqtt, "floor_broker": mqtt})
    edge_config = edge_config.model_copy(update={"buffer": edge_config.buffer.model_copy(
        update={"path": data_dir / "edge-f3-buffer.sqlite"})})
    agent = EdgeAgent(edge_config)
    agent.start()

    _print_banner(host, port, token, broker, data_dir, inbox_port)
    player: _Player | None = None
    if scenario != "none":
        say(f"  scenario:   {scenario} at {speed}x — watch the page; Ctrl-C stops everything", "")
        player = _Player(scenario, speed, broker, f"http://127.0.0.1:{port}", token)
        player.start()
    else:
        say("  no scenario; Ctrl-C stops everything", "")
    while server_thread.is_alive() and not stop.wait(0.5):
        pass
    print("\nstopping…", flush=True)
    if player is not None:
        player.stop()
    agent.stop()
    server.should_exit = True
    server_thread.join(15)
    broker.stop()
    inbox.shutdown()
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    print("stopped", flush=True)
    return 0


def _admit(runtime: Runtime, token: str) -> None:
    """Make this run's printed token the demo admin's. On a fresh data folder the server's first start did
    (Settings.admin_token); with --keep the accounts are the earlier run's and the first start registers
    nothing, so the printed link would open the sign-in box and a scenario's operator steps would get 401."""
    now = datetime.now(UTC)
    if runtime.users.by_token(token, now) is not None:
        return
    admin = runtime.users.save("admin", ["admin"], now)  # creates or re-activates the demo's admin
    runtime.users.add_token(admin.id, token, now, "floorwatch demo")


def _scenario_start(name: str) -> datetime | None:
    """Where the scenario's clock starts (its floor day is moved so that this is now), if there is one."""
    if name == "none":
        return None
    from simulators.scenario import load_scenario

    return load_scenario(name).start


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DemoRefused(f"cannot listen on {host}:{port} ({exc.strerror}): choose another port with "
                            f"--port N, FLOORWATCH_HTTP_PORT=N or `make demo PORT=N`") from None


@contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One demo per data folder: a second one would wipe or share the first one's stores."""
    lock_path = data_dir.parent / f".{data_dir.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = lock_path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise DemoRefused(f"another demo (pid {handle.read().strip() or '?'}) is running on {data_dir}: "
                            f"give this one its own --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def lan_address() -> str | None:
    """The address other machines reach this one at (the route to a public address; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect only picks the outgoing interface
            return str(probe.getsockname()[0])
        except OSError:
            return None


def say(*lines: str) -> None:
    """Print whole lines in one write: the log's lines (stderr, from other threads) go to the same terminal
    or pipe, and a print's text and its newline are two writes, so a log line could land inside the link."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


def _print_banner(host: str, port: int, token: str, broker: EmbeddedBroker, data_dir: Path, inbox_port: int) -> None:
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = lan_address() or "127.0.0.1"
    lines = ["", "Floorwatch demo is running.",
             f"  live page:  http://{shown}:{port}/#token={token}",
             f"  API:        http://{shown}:{port}/docs   (bearer token: {token})"]
    if shown != "127.0.0.1":
        lines.append("              the token is an admin's: anyone on this network who has the link can act as admin")
    lines += [f"  broker:     {broker.kind} on {broker.host}:{broker.port} (MQTT {broker.protocol})",
              f"  data:       {data_dir}/   (the database: {data_dir}/server/floorwatch.sqlite)",
              f"  pushes:     printed here as they arrive (demo inbox on 127.0.0.1:{inbox_port})"]
    say(*lines)


class _Inbox(BaseHTTPRequestHandler):
    """The demo floor's contacts point here (`json://127.0.0.1:<inbox port>/<role>`); pushes are printed."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        try:
            push = json.loads(body)
            text = f"{push.get('title', '')} {push.get('message', '')}".strip().replace("\n", " | ")
        except ValueError:
            text = body.decode("utf-8", "replace")
        say(f"[push → {self.path.strip('/')}] {text[:2000]}")
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _start_inbox() -> ThreadingHTTPServer:
    inbox = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    threading.Thread(target=inbox.serve_forever, name="demo-inbox", daemon=True).start()
    return inbox


class _Player:
    """The scenario on the virtual floor, in a thread; `stop()` closes its connection before the broker goes."""

    def __init__(self, name: str, speed: float, broker: EmbeddedBroker, server_url: str, token: str) -> None:
        self.name, self.speed, self.broker = name, speed, broker
        self.server_url, self.token = server_url, token
        self._stopping = threading.Event()
        self._transport: object | None = None
        self._thread = threading.Thread(target=self._play, name="scenario", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        close = getattr(self._transport, "close", None)
        if close is not None:
            close()
        # The run loop is asleep until its next event; it is a daemon and publishes nothing once stopping.

    def _play(self) -> None:
        from simulators import presence
        from simulators.model import load_floor
        from simulators.operator import OperatorApi
        from simulators.runner import ScenarioRun, StepError, dump_log
        from simulators.scenario import Background, floor_dir, load_scenario
        from simulators.transport import MqttTransport

        probe = load_scenario(self.name)
        floor = load_floor(floor_dir(probe.floor))
        scenario = load_scenario(self.name, floor)
        # The demo keeps the whole floor alive, and for a working day, not only the scenario's corner
        # for its few minutes: otherwise every silent device would soon (rightly) be reported offline.
        scenario = scenario.model_copy(update={
            "background": Background(scope="floor"),
            "duration": max(scenario.duration, DEMO_DAY_S),
        })
        # announced on the broker, so that a `floorwatch simulate` of the same floor is refused, not doubled
        try:
            transport = MqttTransport(self.broker.client_settings(), client_id=f"floorwatch-demo-{scenario.name}",
                                      announce=(floor.directory.name, scenario.name))
        except presence.FloorTaken as taken:  # a `floorwatch simulate` on the demo's broker came first
            print(f"scenario {self.name} not played: {taken.live.get('client_id', '?')} (pid "
                  f"{taken.live.get('pid', '?')}) already plays floor {floor.directory.name} on the demo's broker",
                  flush=True)
            return
        self._transport = transport
        try:  # the scenario's operator steps (a drill's start, the all-clear) go through the server's API
            result = ScenarioRun(scenario, floor, transport, seed=1, speed=self.speed,
                                 operator=OperatorApi(self.server_url, self.token).perform).run()
        except StepError as exc:
            print(f"scenario {self.name} stopped: {exc}", flush=True)
            return
        except Exception:
            if self._stopping.is_set():
                return  # its connection was closed under it on purpose
            raise
        finally:
            transport.close()
        log.info("scenario %s finished: %d messages injected", self.name, len(dump_log(result)))
        print(f"scenario {self.name} finished; the system keeps running (Ctrl-C stops it)", flush=True)

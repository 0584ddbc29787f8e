"""An embedded MQTT broker for the default run: Mosquitto as a child process when it is installed,
otherwise amqtt (pure Python, MQTT 3.1.1 only) in a thread. Always bound to 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

from gateway.broker_config import Listener, render_conf
from gateway.mqtt import MqttSettings

log = logging.getLogger(__name__)

Kind = Literal["mosquitto", "amqtt"]
LOCAL_USER = "floorwatch-local"
"""The user name clients give the embedded broker (it is bound to loopback; no password)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_listening(host: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


def _hand_to_mosquitto_user(path: Path) -> None:
    """Started as root, Mosquitto drops to the `mosquitto` user: it must own its persistence folder,
    or it silently keeps nothing across a restart (and loses offline sessions' queues)."""
    if os.geteuid() != 0:
        return
    try:
        account = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for item in (path, *path.iterdir()):
        os.chown(item, account.pw_uid, account.pw_gid)


class EmbeddedBroker:
    """Start with `start()`, stop with `stop()`; `protocol` says which MQTT version clients must use."""

    host = "127.0.0.1"

    def __init__(self, port: int | None = None, data_dir: Path | None = None, kind: Kind | None = None,
                 *, own_session: bool = False) -> None:
        self.port = port or free_port()
        self.own_session = own_session
        """Start a Mosquitto child in its own session: a terminal's Ctrl-C then reaches only its parent,
        which stops it after its clients (else they all log the lost connection first)."""
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="floorwatch-broker-"))
        self.kind: Kind = kind or ("mosquitto" if mosquitto_binary() else "amqtt")
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._amqtt: Any = None

    def client_settings(self) -> MqttSettings:
        """How a client connects to this broker."""
        return MqttSettings(host=self.host, port=self.port, protocol=self.protocol, username=LOCAL_USER)

    @property
    def protocol(self) -> Literal["5", "3.1.1"]:
        return "5" if self.kind == "mosquitto" else "3.1.1"

    def start(self) -> None:
        if self.kind == "mosquitto":
            self._start_mosquitto()
        else:
            self._start_amqtt()
        if not wait_listening(self.host, self.port):
            self.stop()
            raise RuntimeError(f"embedded {self.kind} broker did not listen on {self.host}:{self.port}")
        log.info("embedded %s broker on %s:%s", self.kind, self.host, self.port)

    def _start_mosquitto(self) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _hand_to_mosquitto_user(self.data_dir)
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(render_conf([Listener(self.port)], self.data_dir, anonymous=True,
                                    log_file=str(self.data_dir / "mosquitto.log")))
        self._process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=self.own_session)

    def _start_amqtt(self) -> None:
        from amqtt.broker import Broker  # optional dependency: floorwatch[broker]

        # amqtt logs every protocol hiccup (a probe connection, a late PUBACK) at error level.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 1000}},
            # amqtt keeps no offline messages for anonymous sessions, so clients must give a user name
            # (any: `LOCAL_USER`); with allow_anonymous off, the plugin accepts any named user.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
        }
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._amqtt = Broker(config, loop=loop)
            loop.run_until_complete(self._amqtt.start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None
        if self._loop is not None and self._amqtt is not None:
            future = asyncio.run_coroutine_threadsafe(self._amqtt.shutdown(), self._loop)
            try:
                future.result(5)
            except Exception:  # shutting down: report, never raise
                log.exception("amqtt shutdown")
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(5)
            self._loop = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop a Mosquitto child gracefully (it saves its queues) and start it again, same port and folder."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None
        self.start()

    def kill(self) -> None:
        """SIGKILL a Mosquitto child (tests of broker crashes); its persistence file survives."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

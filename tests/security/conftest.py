"""A real Mosquitto started with the production-style configuration (no anonymous access, a `$7$`
password file, the site ACL from `render_acl`), and MQTT peers that record what they see.

Every wait is bounded and ends on an observed fact (a CONNACK refusal logged by the client, a sentinel
message arriving), never on the wall clock alone.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway import contract
from gateway.broker import free_port, mosquitto_binary, wait_listening
from gateway.broker_config import Listener, render_acl, render_conf, render_password_file
from gateway.mqtt import Incoming, MqttClient, MqttSettings
from tests.conftest import require_service
from tests.edge.conftest import Devices, devices  # noqa: F401 - the simulated plugs, as in tests/edge
from tests.support.wait import wait_until

SITE = "hq"
EDGES = ("edge-f3", "edge-f4")
OTHER_SITE = "branch"
OTHER_EDGE = "edge-b1"
SERVER = "floorwatch-server"
OTHER_SERVER = "floorwatch-server-branch"
DISPLAY = "display"


def hand_to_mosquitto(*paths: Path) -> None:
    """Mosquitto started as root drops to `mosquitto`: it must be able to read its files."""
    if os.geteuid() != 0:
        return
    try:
        account = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)


@dataclass
class SecureBroker:
    """A running Mosquitto with auth and ACLs; `settings(user)` gives a client's connection settings."""

    directory: Path
    port: int
    passwords: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    tls_port: int | None = None
    ca_file: str | None = None

    def settings(self, user: str | None, password: str | None = None, *, tls: bool = False,
                 ca_file: str | None = None) -> MqttSettings:
        secret = password if password is not None else (self.passwords.get(user) if user else None)
        data: dict[str, Any] = {"host": "127.0.0.1", "port": self.tls_port if tls else self.port,
                                "username": user, "password": secret, "reconnect_min_s": 1, "reconnect_max_s": 2}
        if tls:
            data.update(tls=True, ca_file=ca_file or self.ca_file)
        return MqttSettings.model_validate(data)

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""


def make_certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it, with the openssl CLI."""
    ca_key, ca_crt = directory / f"{name}-ca.key", directory / f"{name}-ca.crt"
    key, csr, crt = directory / f"{name}-server.key", directory / f"{name}-server.csr", directory / f"{name}-server.crt"
    ext = directory / f"{name}-ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
        "-days", "2", "-subj", f"/CN=Floorwatch test CA {name}")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca_crt, crt, key


def start_secure_broker(directory: Path, *, tls: bool = False) -> SecureBroker:
    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    binary = mosquitto_binary()
    assert binary is not None
    users = [SERVER, OTHER_SERVER, DISPLAY, *EDGES, OTHER_EDGE]
    passwords = {user: secrets.token_urlsafe(18) for user in users}
    passwd, acl = directory / "passwd", directory / "acl"
    passwd.write_text(render_password_file(passwords))
    passwd.chmod(0o600)
    # Two sites on one broker: hq (two edges) and branch (one edge, its own server identity).
    acl.write_text(render_acl(SITE, EDGES, SERVER) + "\n" + render_acl(OTHER_SITE, [OTHER_EDGE], OTHER_SERVER))
    acl.chmod(0o600)
    broker = SecureBroker(directory, free_port(), passwords)
    listeners = [Listener(broker.port)]
    owned = [directory, passwd, acl]
    if tls:
        require_service(subprocess.run(["which", "openssl"], capture_output=True).returncode == 0, "openssl CLI")
        ca_crt, crt, key = make_certificates(directory, "good")
        key.chmod(0o600)
        owned += [crt, key, ca_crt]
        broker.tls_port = free_port()
        broker.ca_file = str(ca_crt)
        listeners.append(Listener(broker.tls_port, "127.0.0.1", str(crt), str(key), str(ca_crt)))
    conf = directory / "mosquitto.conf"
    conf.write_text(render_conf(listeners, None, anonymous=False, password_file=str(passwd), acl_file=str(acl),
                                log_file=str(directory / "mosquitto.log")))
    (directory / "mosquitto.log").touch()
    owned += [conf, directory / "mosquitto.log"]
    hand_to_mosquitto(*owned)
    broker.process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
    ports = [broker.port] + ([broker.tls_port] if broker.tls_port else [])
    if not all(wait_listening("127.0.0.1", port) for port in ports):
        broker.process.kill()
        _, err = broker.process.communicate(timeout=5)
        raise RuntimeError(f"secured mosquitto did not start: {err.decode(errors='replace')}\n{broker.log()}")
    return broker


def stop_secure_broker(broker: SecureBroker) -> None:
    if broker.process is not None:
        broker.process.terminate()
        try:
            broker.process.wait(5)
        except subprocess.TimeoutExpired:
            broker.process.kill()
            broker.process.wait()


@pytest.fixture
def secure_broker() -> Iterator[SecureBroker]:
    with tempfile.TemporaryDirectory(prefix="floorwatch-secure-") as folder:
        directory = Path(folder)
        directory.chmod(0o755)
        broker = start_secure_broker(directory)
        yield broker
        stop_secure_broker(broker)


@pytest.fixture
def tls_broker() -> Iterator[SecureBroker]:
    with tempfile.TemporaryDirectory(prefix="floorwatch-tls-") as folder:
        directory = Path(folder)
        directory.chmod(0o755)
        broker = start_secure_broker(directory, tls=True)
        yield broker
        stop_secure_broker(broker)


class ClientLog(logging.Handler):
    """Records what `gateway.mqtt` logs about one client id (CONNACK refusals, failed attempts)."""

    def __init__(self, client_id: str) -> None:
        super().__init__(logging.DEBUG)
        self.client_id = client_id
        self.records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._guard:
            self.records.append(record)

    def refusals(self) -> list[str]:
        with self._guard:
            return [r.getMessage() for r in self.records
                    if "refused by" in r.getMessage() and self.client_id in r.getMessage()]

    def failed_attempts(self) -> int:
        with self._guard:
            return sum("Connection failed" in r.getMessage() for r in self.records)


@dataclass
class Peer:
    """One MQTT identity on the secured broker: what it received, which of its publishes were acked."""

    name: str
    client: MqttClient
    received: list[Incoming] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [m.payload for m in self.received if m.topic == topic]

    def topics(self) -> list[str]:
        with self.lock:
            return [m.topic for m in self.received]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        return self.client.publish(topic, payload, 1, retain)

    def publish_acked(self, topic: str, payload: bytes, timeout: float = 10.0) -> bool:
        """Publish at QoS 1 and wait for the broker's PUBACK (an ACL refusal is acked too, MQTT 5
        with reason code 0x87 'not authorised': the broker has processed the message either way)."""
        mid = self.publish(topic, payload)
        return bool(wait_until(lambda: mid in self.acked, timeout))


def connect(broker: SecureBroker, user: str, *subscriptions: str, client_id: str | None = None) -> Peer:
    holder: list[Peer] = []

    def on_message(message: Incoming) -> None:
        with holder[0].lock:
            holder[0].received.append(message)

    def on_published(mid: int) -> None:
        with holder[0].lock:
            holder[0].acked.add(mid)

    client = MqttClient(broker.settings(user), client_id or f"sec-{user}-{secrets.token_hex(3)}",
                        on_message=on_message, on_published=on_published)
    peer = Peer(user, client)
    holder.append(peer)
    for topic in subscriptions:
        client.subscribe(topic, 1)
    client.start()
    assert client.wait_connected(10), f"{user} could not connect:\n{broker.log()}"
    return peer


def barrier(sender: Peer, receiver: Peer, topic: str, timeout: float = 10.0) -> bool:
    """Publish sentinels on `topic` (which `receiver` may read) until one arrives at `receiver`.

    Mosquitto delivers to one subscriber in the order it processed the messages, so once a sentinel
    sent after a forbidden message has arrived, the forbidden one would have arrived before it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        token = f"sentinel-{secrets.token_hex(4)}".encode()
        sender.publish_acked(topic, token)
        if wait_until(lambda t=token: t in receiver.on(topic), 1.0):
            return True
    return False


def server_topic(channel: contract.Channel, edge: str = EDGES[0], site: str = SITE) -> str:
    return contract.edge_topic(site, edge, channel)



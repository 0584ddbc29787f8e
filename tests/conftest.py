"""Shared fixtures: real services, found or started, never mocked.

A test that needs a service it cannot get FAILS when CI=true (so CI never passes by skipping) and is
skipped with a visible reason otherwise (`require_service`).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import gateway.broker
from gateway.broker import EmbeddedBroker, mosquitto_binary
from gateway.mqtt import MqttSettings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Ports for the servers and brokers tests start. `gateway.broker.free_port` asks the kernel for any free
# port, which is right for one process; with tests run side by side (pytest-xdist), a port handed out
# and not yet bound (a server subprocess takes seconds to bind) could be handed to another worker or
# taken by an outgoing connection, both of which draw from the kernel's ephemeral range. So each worker
# counts through its own slice of 20000-32767, below the ephemeral range (32768-60999 here), checking
# that each port is free, from a random place in it (another test run on the same machine may count
# through the same slice). Set here, before any test module imports `free_port` by name. One process
# (no xdist) keeps the kernel's choice.
_PORTS_LOW, _PORTS_HIGH = 20000, 32768


def _worker_ports() -> Iterator[int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    size = (_PORTS_HIGH - _PORTS_LOW) // count
    first = _PORTS_LOW + index * size
    offset = random.SystemRandom().randrange(size)
    while True:
        yield from range(first + offset, first + size)
        offset = 0


_next_port = _worker_ports()


def worker_free_port(host: str = "127.0.0.1") -> int:
    """The next port of this worker's slice that nothing holds now."""
    for _ in range(_PORTS_HIGH - _PORTS_LOW):
        port = next(_next_port)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port left in {_PORTS_LOW}-{_PORTS_HIGH - 1}")


if os.environ.get("PYTEST_XDIST_WORKER"):
    gateway.broker.free_port = worker_free_port
TESTS = Path(__file__).resolve().parent

# Each test's tier, by its folder (tests/README.md); `make unit` runs `-m unit`. Anything else is `integration`.
FOLDER_TIERS = {"server/domain": "unit", "e2e": "e2e", "web": "e2e", "faults": "fault", "scenarios": "scenario",
                "fuzz": "fuzz", "deploy": "deploy", "bench": "bench"}
TIERS = ("unit", "integration", *sorted(set(FOLDER_TIERS.values()) - {"unit"}))
# Modules with no service, network or subprocess in folders that also test real services.
PURE_MODULES = {
    "gateway/test_contract.py", "gateway/test_signing.py", "gateway/test_yamlfile.py",
    "edge/test_logic.py", "edge/test_config.py", "edge/test_drivers.py", "edge/test_firmware_setups.py",
    "server/adapters/test_hr_file.py", "server/adapters/timeseries/test_line_protocol.py",
    "simulators/test_vendors.py", "simulators/test_vendor_setups.py", "simulators/test_roster.py", "test_tiers.py",
}


def tier_of(path: Path) -> str:
    """The tier of the tests in the module at `path` (a file below tests/)."""
    relative = path.resolve().relative_to(TESTS).as_posix()
    if relative in PURE_MODULES:
        return "unit"
    return next((tier for folder, tier in FOLDER_TIERS.items() if relative.startswith(f"{folder}/")), "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier_of(item.path))


class ImpureUnitTest(AssertionError):
    """A `unit` test reached for the network or a subprocess: it belongs in an integration folder."""


def _guarded(original: Callable[..., Any], what: str, others: frozenset[threading.Thread]) -> Callable[..., Any]:
    def guarded(*args: object, **kwargs: object) -> Any:
        if threading.current_thread() in others:  # a thread an earlier test left running, not this test's doing
            return original(*args, **kwargs)
        raise ImpureUnitTest(f"a unit test may not {what}; move it to an integration folder (tests/README.md)")
    return guarded


@pytest.fixture(autouse=True)
def unit_tests_stay_pure(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that opens a connection or starts a process, itself or from a thread it starts, fails,
    so the fast tier stays fast and needs no service."""
    if request.node.get_closest_marker("unit") is None:
        return
    others = frozenset(t for t in threading.enumerate() if t is not threading.current_thread())
    for cls, name, what in [(socket.socket, "connect", "open a network connection"),
                            (socket.socket, "connect_ex", "open a network connection"),
                            (subprocess.Popen, "__init__", "start a subprocess")]:
        monkeypatch.setattr(cls, name, _guarded(getattr(cls, name), what, others))


POSTGRES_URL = os.environ.get("FLOORWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require_service(available: bool, what: str) -> None:
    """Fail in CI, skip elsewhere, when a real service a test needs is missing."""
    if available:
        return
    message = f"{what} is required but not available"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service fails the run)")
    pytest.skip(f"{message} (skipped outside CI; CI requires it)")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def private_mosquitto() -> Iterator[EmbeddedBroker]:
    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    broker = EmbeddedBroker(kind="mosquitto")
    broker.start()
    yield broker
    broker.stop()


def persistent_mosquitto(prefix: str) -> Iterator[EmbeddedBroker]:
    """A private Mosquitto whose data folder outlives `stop()`, so a stop and start on the same port keeps
    persistent sessions and retained messages, as a real restart does."""
    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    # Not under tmp_path: started as root, Mosquitto drops to the `mosquitto` user, who must reach and
    # write its folder, or persistence silently does nothing (tmp_path lives under a 0700 folder).
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    data_dir.chmod(0o777)
    # Its port stays free while the broker is down: one below the kernel's ephemeral range, which an
    # outgoing connection of any test could take meanwhile (the restart then finds it in use).
    broker = EmbeddedBroker(port=worker_free_port(), data_dir=data_dir, kind="mosquitto")
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def mosquitto() -> Iterator[EmbeddedBroker]:
    """A private Mosquitto on a free port, started with the project's own configuration."""
    yield from private_mosquitto()


@pytest.fixture
def floor() -> Iterator[EmbeddedBroker]:
    """A second private Mosquitto: the edge's floor broker, where devices speak their vendor dialects."""
    yield from private_mosquitto()


@pytest.fixture
def amqtt_broker() -> Iterator[EmbeddedBroker]:
    """The pure-Python fallback broker (MQTT 3.1.1 only)."""
    broker = EmbeddedBroker(kind="amqtt")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(params=["mosquitto", "amqtt"])
def any_broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    """Each embedded broker kind in turn: the wrapper must work over MQTT 5 and 3.1.1."""
    if request.param == "mosquitto":
        require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    broker = EmbeddedBroker(kind=request.param)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def system_mosquitto() -> MqttSettings:
    """The machine's own Mosquitto on 127.0.0.1:1883 (started before the session on these machines)."""
    require_service(port_open("127.0.0.1", 1883), "Mosquitto on 127.0.0.1:1883")
    return MqttSettings(host="127.0.0.1", port=1883)


@pytest.fixture
def postgres_url() -> str:
    """PostgreSQL on 127.0.0.1:5432, trust auth, database `test`."""
    require_service(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    return POSTGRES_URL


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A URL of the real PostgreSQL whose search path is a schema of this test's own, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests leave things for people to look at (screenshots, reports)."""
    path = Path(__file__).resolve().parent.parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path

"""Shared fixtures: real services, found or started, never mocked.

A test that needs a service it cannot get FAILS when CI=true (so CI never passes by skipping) and is
skipped with a visible reason otherwise (`require_service`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.broker import EmbeddedBroker, mosquitto_binary
from gateway.mqtt import MqttSettings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
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


@pytest.fixture
def mosquitto() -> Iterator[EmbeddedBroker]:
    """A private Mosquitto on a free port, started with the project's own configuration."""
    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    broker = EmbeddedBroker(kind="mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def floor() -> Iterator[EmbeddedBroker]:
    """A second private Mosquitto: the edge's floor broker, where devices speak their vendor dialects."""
    require_service(mosquitto_binary() is not None, "mosquitto (apt-get install mosquitto)")
    broker = EmbeddedBroker(kind="mosquitto")
    broker.start()
    yield broker
    broker.stop()


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
def artifacts_dir() -> Path:
    """Where tests leave things for people to look at (screenshots, reports)."""
    path = Path(__file__).resolve().parent.parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path

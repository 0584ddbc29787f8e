"""Every test has one tier, given by its folder, and a unit test can reach no service."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import TESTS, TIERS, ImpureUnitTest, tier_of


@pytest.mark.parametrize(("module", "tier"), [
    ("server/domain/test_alarms.py", "unit"),
    ("gateway/test_contract.py", "unit"),
    ("gateway/test_mqtt.py", "integration"),
    ("server/services/test_notify.py", "integration"),
    ("e2e/test_skeleton.py", "e2e"),
    ("faults/test_flood.py", "fault"),
    ("scenarios/test_oracle.py", "scenario"),
])
def test_a_module_s_tier_follows_its_folder(module: str, tier: str) -> None:
    assert (TESTS / module).is_file()
    assert tier_of(TESTS / module) == tier


def test_this_test_has_exactly_one_tier(request: pytest.FixtureRequest) -> None:
    assert [mark.name for mark in request.node.iter_markers() if mark.name in TIERS] == ["unit"]


def test_a_unit_test_cannot_open_a_connection() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(ImpureUnitTest, match="network"):
        sock.connect(("127.0.0.1", 1883))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(ImpureUnitTest, match="network"):
        sock.connect_ex(("127.0.0.1", 1883))


def test_a_unit_test_cannot_start_a_process() -> None:
    with pytest.raises(ImpureUnitTest, match="subprocess"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


def connect_in_a_thread(started: threading.Event, go: threading.Event, outcome: list[BaseException]) -> None:
    started.set()
    go.wait(10)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.connect(("127.0.0.1", 1))  # nothing listens on port 1: refused, or refused by the guard
    except BaseException as exc:  # what it raised is what the test looks at
        outcome.append(exc)


@pytest.fixture(scope="module")
def earlier_thread() -> Iterator[Callable[[], BaseException]]:
    """A thread running before the test starts, as a client another test left behind would be."""
    started, go, outcome = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=connect_in_a_thread, args=(started, go, outcome), daemon=True)
    thread.start()
    assert started.wait(10)

    def attempt() -> BaseException:
        go.set()
        thread.join(10)
        return outcome[0]

    yield attempt


def test_a_thread_the_unit_test_starts_cannot_open_a_connection() -> None:
    started, go, outcome = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=connect_in_a_thread, args=(started, go, outcome))
    thread.start()
    go.set()
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], ImpureUnitTest), outcome


def test_a_thread_from_before_the_test_is_not_its_doing(earlier_thread: Callable[[], BaseException]) -> None:
    failure = earlier_thread()
    assert isinstance(failure, ConnectionRefusedError), failure

"""Every test has one tier, given by its folder, and a unit test can reach no service."""

from __future__ import annotations

import socket
import subprocess
import sys

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

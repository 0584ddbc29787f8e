"""Fixtures that start real time-series servers for the test and stop them after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.adapters.timeseries.services import Influxd16, VictoriaMetrics, require_binary


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A private VictoriaMetrics on a free port with its data in a temp dir (restartable in place)."""
    binary = require_binary("victoria-metrics", "victoria-metrics")
    vm = VictoriaMetrics(binary, tmp_path / "vm")
    vm.start()
    try:
        yield vm
    finally:
        vm.stop()


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd16]:
    """A private InfluxDB 1.6 on a free port (reporting disabled, bound to 127.0.0.1, temp data)."""
    binary = require_binary("influxd", "influxdb")
    server = Influxd16(binary, tmp_path / "influxd")
    server.start()
    try:
        yield server
    finally:
        server.stop()

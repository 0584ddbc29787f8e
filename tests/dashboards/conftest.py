"""A real InfluxDB 1.6 holding a floor's last hour, shared by the board-query tests of this module."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.dashboards.floor_data import floor_lines
from tests.server.adapters.timeseries.services import Influxd16, require_binary

DATABASE = "floorwatch"


@pytest.fixture(scope="module")
def loaded_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Influxd16, datetime]]:
    """(server, now): InfluxDB 1.6 on a free port, database `floorwatch` with the last hour of data."""
    binary = require_binary("influxd", "influxdb")
    server = Influxd16(binary, tmp_path_factory.mktemp("influxd"))
    server.start()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        server.create_database(DATABASE)
        server.write_lines(DATABASE, floor_lines(now))
        yield server, now
    finally:
        server.stop()

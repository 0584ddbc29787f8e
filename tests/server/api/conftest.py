"""The API tests' server: the real app on a private Mosquitto, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.api.api_server import Api, server_on_mosquitto


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with server_on_mosquitto(tmp_path_factory.mktemp("api")) as server:
        yield server

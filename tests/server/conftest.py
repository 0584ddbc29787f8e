"""A database per test on SQLite and on the real PostgreSQL (a schema of its own, dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.inspections import site  # noqa: F401  (the example site: inspection tests in every layer)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alarms.sqlite'}"
        return
    yield request.getfixturevalue("postgres_schema")

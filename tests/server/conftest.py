"""A database per test on SQLite and on the real PostgreSQL (a schema of its own, dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from server.adapters.sql.database import make_engine, migrate
from tests.support.inspections import site  # noqa: F401  (the example site: inspection tests in every layer)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alarms.sqlite'}"
        return
    yield request.getfixturevalue("postgres_schema")


def migrated(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The schema migrated on each database in turn."""
    yield from migrated(database_url)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """The schema migrated on SQLite only."""
    yield from migrated(f"sqlite:///{tmp_path / 'fw.sqlite'}")

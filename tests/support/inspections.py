"""Fixtures for the inspection tests: the example site and a fake clock (never the wall clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.domain.site import Site, parse_site

EXAMPLE = Path(__file__).resolve().parents[2] / "server" / "domain" / "examples" / "site-small.yaml"


@pytest.fixture(scope="session")
def site() -> Site:
    return parse_site(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))


def local(site: Site, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A site-local wall time as a UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=site.tz).astimezone(UTC)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

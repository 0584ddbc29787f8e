"""`as_utc`: every time inside the server is UTC; a naive one (as SQLite hands it back) is taken as UTC."""

from datetime import UTC, datetime, timedelta, timezone

from server.domain.utc import as_utc


def test_a_naive_time_is_taken_as_utc() -> None:
    stored = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    naive = stored.replace(tzinfo=None)
    assert as_utc(naive) == stored and as_utc(naive).tzinfo is UTC


def test_an_aware_time_is_converted_to_utc() -> None:
    local = datetime(2026, 11, 29, 11, 0, tzinfo=timezone(timedelta(hours=8)))
    converted = as_utc(local)
    assert converted == local and converted.tzinfo is UTC and converted.hour == 3

"""Silences have a time limit (server/domain/notify.py MAX_SILENCE) on SQLite and on a real PostgreSQL: a
longer one is refused, and one stored before the limit existed (an empty matcher until 2099) ends at the
limit after it was set instead of muting pages for ever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.response_models import SilenceRow
from server.adapters.sql.silences import SilenceRepository
from server.domain.notify import MAX_SILENCE, Silence, SilenceRefused, check_silence

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def repository(url: str) -> SilenceRepository:
    engine = make_engine(url)
    migrate(engine)
    return SilenceRepository(session_factory(engine))


def test_a_silence_stored_without_a_limit_ends_at_the_limit(database_url: str) -> None:
    silences = repository(database_url)
    with silences.sessions.begin() as session:  # as an earlier version stored it: everything until 2099
        session.add(SilenceRow(rule="", zone="", subject="", ends_at=datetime(2099, 1, 1, tzinfo=UTC), by="sup",
                               reason="planned works", created_at=T0))
    [active] = silences.active(T0 + timedelta(hours=1))
    assert active.ends_at == T0 + MAX_SILENCE
    assert silences.active(T0 + MAX_SILENCE) == []
    assert silences.active(T0 + timedelta(days=30)) == []


def test_a_silence_within_the_limit_keeps_its_own_end(database_url: str) -> None:
    silences = repository(database_url)
    silences.add(Silence(T0 + timedelta(hours=2), rule="elec.strip_*", by="sup", reason="strip swap"), T0)
    [active] = silences.active(T0 + timedelta(hours=1))
    assert active.ends_at == T0 + timedelta(hours=2)
    assert silences.active(T0 + timedelta(hours=2)) == []


def test_a_silence_longer_than_one_shift_or_already_over_is_refused() -> None:
    check_silence(T0 + MAX_SILENCE, T0)
    until = r"\(until 2026-11-29T15:00:00\+00:00\)"
    with pytest.raises(SilenceRefused, match=rf"^ends_at may be at most 12 h ahead {until}"):
        check_silence(datetime(2099, 1, 1, tzinfo=UTC), T0)
    with pytest.raises(SilenceRefused, match=r"^ends_at .* is not in the future"):
        check_silence(T0, T0)

"""The site as far as inspections need it (server.domain.site.Site satisfies it), and its roster as duties."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from server.domain import roster
from server.domain.roster import Duty, EntryLike, ShiftLike, days_between


class RosterEntry(EntryLike, Protocol):
    @property
    def person(self) -> str: ...
    @property
    def seat(self) -> str | None: ...
    @property
    def zone(self) -> str: ...
    @property
    def lead(self) -> bool: ...


class _Person(Protocol):
    @property
    def id(self) -> str: ...


class _ZoneLike(Protocol):
    @property
    def kind(self) -> str: ...


class _Config(Protocol):
    @property
    def roster(self) -> Sequence[RosterEntry]: ...


class SiteView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def tz(self) -> tzinfo: ...
    @property
    def config(self) -> _Config: ...
    @property
    def shifts(self) -> Mapping[str, ShiftLike]: ...
    @property
    def zones(self) -> Mapping[str, _ZoneLike]: ...
    def shift_lead(self, zone: str, at: datetime) -> _Person | None: ...
    def people_with_role(self, role: str) -> Sequence[_Person]: ...


def duties(site: SiteView, since: datetime, until: datetime) -> list[Duty[RosterEntry]]:
    """Roster entries resolved to intervals that overlap (since - 1 d, until], oldest start first."""
    days = days_between(since.astimezone(site.tz).date() - timedelta(days=2), until.astimezone(site.tz).date())
    out = roster.duties(site.config.roster, site.shifts, site.tz, days)
    out.sort(key=lambda d: (d.start, d.entry.person))
    return out

"""Roster entries resolved to duties: one expansion of "who works which shift on which day" into
intervals in time, for the rules (server.domain.site) and the inspection schedules (server.domain.inspections)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Generic, Protocol, TypeVar

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class EntryLike(Protocol):
    @property
    def shift(self) -> str: ...
    @property
    def days(self) -> Sequence[str]: ...
    @property
    def dates(self) -> Sequence[date]: ...


class ShiftLike(Protocol):
    @property
    def start(self) -> time: ...
    @property
    def end(self) -> time: ...


E = TypeVar("E", bound=EntryLike)


@dataclass(frozen=True, slots=True)
class Duty(Generic[E]):
    """One roster entry resolved to an interval in time (UTC)."""

    entry: E
    start: datetime
    end: datetime


def works_on(entry: EntryLike, day: date) -> bool:
    """The entry's shift starts on `day`: its dates (if any) and its weekdays (if any) allow it; neither means daily."""
    return (not entry.dates or day in entry.dates) and (not entry.days or WEEKDAYS[day.weekday()] in entry.days)


def duties(entries: Iterable[E], shifts: Mapping[str, ShiftLike], tz: tzinfo, days: Sequence[date]) -> list[Duty[E]]:
    """The duties of `entries` whose shift starts on one of `days` (local dates), entry by entry, day by day.
    A shift whose end is not after its start ends the next day."""
    out: list[Duty[E]] = []
    for entry in entries:
        shift = shifts[entry.shift]
        for day in days:
            if works_on(entry, day):
                end_day = day if shift.end > shift.start else day + timedelta(days=1)
                out.append(Duty(entry, datetime.combine(day, shift.start, tz).astimezone(UTC),
                                datetime.combine(end_day, shift.end, tz).astimezone(UTC)))
    return out


def days_between(first: date, last: date) -> list[date]:
    """Every local date from `first` to `last`, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]

"""The simulator's roster gives the same duties as the server's: weekdays and dates limit an entry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from server.domain.roster import WEEKDAYS
from simulators.model import load_floor

SITE = """\
site: {id: s1, timezone: "+08:00"}
shifts:
  - {id: day, start: "09:00", end: "18:00"}
  - {id: night, start: "22:00", end: "06:00"}
roster:
  - {person: p-daily, shift: day, seat: s1, zone: z1}
  - {person: p-weekend, shift: day, seat: s2, zone: z1, days: [sat, sun]}
  - {person: p-once, shift: night, seat: s3, zone: z1, dates: [2026-12-09]}
"""


def test_weekdays_and_dates_limit_a_roster_entry_and_a_night_shift_ends_the_next_day(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(SITE, encoding="utf-8")
    floor = load_floor(tmp_path)
    windows = list(floor.duty_windows(datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 13, tzinfo=UTC)))
    starts = {(duty.person, begin.date()) for duty, begin, _ in windows}
    daily = {day for person, day in starts if person == "p-daily"}
    assert daily == {date(2026, 12, d) for d in range(6, 14)}
    weekend = {day for person, day in starts if person == "p-weekend"}
    assert weekend == {date(2026, 12, 6), date(2026, 12, 12), date(2026, 12, 13)}
    assert all(WEEKDAYS[day.weekday()] in ("sat", "sun") for day in weekend)
    (once,) = [(begin, end) for duty, begin, end in windows if duty.person == "p-once"]
    assert once[0].isoformat() == "2026-12-09T22:00:00+08:00" and once[1].isoformat() == "2026-12-10T06:00:00+08:00"

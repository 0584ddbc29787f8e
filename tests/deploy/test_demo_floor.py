"""The demo's floor copy on the wall clock (`server.demo_floor`): over the hours a demo runs, the
inspection planner owes no shift duty (only today's fire patrol, at the site's midnight) and no leaver's
badge is active; the source files, read as they are, owe end-of-shift self-checks at once. Real SQLite,
the real planner and HR reader, a stepped clock."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.broker import free_port
from gateway.yamlfile import YamlFileError
from server.adapters.hr_file import load_hr
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.inspections import InspectionRepository
from server.demo import run_demo
from server.demo_floor import QUIET_MARGIN, write_demo_floor
from server.domain.site import Site, parse_site
from server.services.inspections import InspectionService
from server.settings import DEMO_SITE

SHIFT = timedelta(hours=8)


def seats_of(site: Site, shift: str) -> int:
    return sum(1 for entry in site.config.roster if entry.shift == shift and entry.seat is not None)


def overdue_over_time(site: Site, tmp: Path, start: datetime, hours: float) -> dict[float, Counter[str]]:
    """Plan and look for overdue duties every 10 min from `start` (a server started then, fresh)."""
    engine = make_engine(f"sqlite:///{tmp / 'db.sqlite'}")
    migrate(engine)
    now = start
    service = InspectionService(InspectionRepository(session_factory(engine)), site, lambda: now,
                                grace=timedelta(hours=2))
    seen: dict[float, Counter[str]] = {}
    while now <= start + timedelta(hours=hours):
        service.create_due(now)
        seen[(now - start).total_seconds() / 3600] = Counter(f.rule for f in service.overdue(now))
        now += timedelta(minutes=10)
    engine.dispose()
    return seen


def test_the_demo_floor_owes_no_duty_until_its_day_shift_ends(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    site_file = write_demo_floor(DEMO_SITE, tmp_path / "floor", inbox_port=40123, now=start)
    site = parse_site(site_file.read_text(encoding="utf-8"), str(site_file))
    assert all("127.0.0.1:40123/" in url for role in ("shift_lead", "supervisor") for url in site.contacts_of(role))
    (tmp_path / "db").mkdir()
    seen = overdue_over_time(site, tmp_path / "db", start, 7.0)
    quiet_for = (SHIFT - QUIET_MARGIN).total_seconds() / 3600 + 0.5  # the day shift's end + the 30 min window
    # The calendar duties run on the site's real clock: today's fire patrol is open from the start and,
    # undone, is overdue at the site's next midnight (if the demo is still running then); nothing else is.
    patrol_late = datetime.combine(start.astimezone(site.tz).date() + timedelta(days=1), time(0), site.tz)
    owed = Counter({"insp.fire_patrol_overdue": 1})
    noisy = {h: c for h, c in seen.items()
             if h < quiet_for - 1 / 6 and c != (owed if start + timedelta(hours=h) >= patrol_late else Counter())}
    assert not noisy, noisy
    # The day shift's end is real: its seats' self-checks fall due, and nobody in the demo does them.
    assert seen[max(seen)]["insp.end_of_shift_missing"] == seats_of(site, "day") > 0


def test_the_source_floor_read_as_it_is_owes_self_checks_soon_after_a_shift_change(tmp_path: Path) -> None:
    site = parse_site(DEMO_SITE.read_text(encoding="utf-8"), str(DEMO_SITE))
    shift_end = datetime(2026, 11, 30, 16, 0, tzinfo=site.tz).astimezone(UTC)  # the day shift's end
    seen = overdue_over_time(site, tmp_path, shift_end + timedelta(minutes=20), 0.5)
    assert max(c["insp.end_of_shift_missing"] for c in seen.values()) == seats_of(site, "day") > 0


def test_the_demo_floors_leavers_handed_their_badges_in(tmp_path: Path) -> None:
    start = datetime.now(UTC)
    site_file = write_demo_floor(DEMO_SITE, tmp_path, inbox_port=40123, now=start)
    site = parse_site(site_file.read_text(encoding="utf-8"), str(site_file))
    hr = load_hr(tmp_path / "hr.yaml")
    source = load_hr(DEMO_SITE.parent / "hr.yaml")
    leavers = hr.leave_times(site.tz)
    assert leavers and set(leavers) == set(source.leave_times(site.tz))
    assert all(left < start for left in leavers.values())  # they have left: their cards are revoked ones
    active = hr.active_badges(site)
    assert not any(site.people[p].badge in active for p in leavers)
    assert any(site.people[p].badge in source.active_badges(site) for p in leavers)  # the source's problem
    # Visitor approvals moved with the day: they fall within a day of the demo's start.
    assert all(abs(a.start - start) < timedelta(days=1) for a in hr.approvals(site.tz))


def test_a_kept_demo_keeps_its_floor_day(tmp_path: Path) -> None:
    first = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)
    write_demo_floor(DEMO_SITE, tmp_path, inbox_port=1, now=first)
    shifts = (tmp_path / "site.yaml").read_text(encoding="utf-8").split("shifts:")[1].split("roster:")[0]
    write_demo_floor(DEMO_SITE, tmp_path, inbox_port=2, now=first + timedelta(hours=3))
    text = (tmp_path / "site.yaml").read_text(encoding="utf-8")
    assert text.split("shifts:")[1].split("roster:")[0] == shifts
    assert "127.0.0.1:2/" in text and "127.0.0.1:1/" not in text


def shifts_of(site_file: Path) -> dict[str, tuple[str, str]]:
    site = parse_site(site_file.read_text(encoding="utf-8"), str(site_file))
    return {s.id: (s.start.strftime("%H:%M"), s.end.strftime("%H:%M")) for s in site.config.shifts}


def test_the_floor_day_follows_the_scenarios_clock(tmp_path: Path) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 12, 7, 3, 7, 40, tzinfo=tz)
    # after-shift-load starts 15:40, 20 min before the day shift ends: so does the demo.
    story = write_demo_floor(DEMO_SITE, tmp_path / "a", inbox_port=1, now=now,
                             scenario_start=datetime(2026, 11, 30, 15, 40, tzinfo=tz))
    assert shifts_of(story)["day"] == ("19:27", "03:27")
    # strip-overload starts 10:00, 2 h into the day shift: inside the planner's catch-up window, so its floor
    # day runs QUIET_MARGIN - 2 h = 5 min behind the scenario's clock.
    overload = write_demo_floor(DEMO_SITE, tmp_path / "b", inbox_port=1, now=now,
                                scenario_start=datetime(2026, 11, 30, 10, 0, tzinfo=tz))
    assert shifts_of(overload)["day"] == ("01:02", "09:02")
    site = parse_site(overload.read_text(encoding="utf-8"), str(overload))
    (tmp_path / "db").mkdir()
    seen = overdue_over_time(site, tmp_path / "db", now.astimezone(UTC), 6.0)
    assert not {h: c for h, c in seen.items() if c}


def test_a_duplicate_key_in_the_source_site_file_is_refused_not_dropped_from_the_copy(tmp_path: Path) -> None:
    # the copy is written from the parsed data: a key YAML silently collapsed would vanish before the server
    # could refuse it
    source = tmp_path / "source" / "site.yaml"
    source.parent.mkdir()
    text = DEMO_SITE.read_text(encoding="utf-8")
    key_line = "  timezone: Asia/Shanghai"
    source.write_text(text.replace(key_line + "\n", key_line + "\n" + key_line + "\n", 1), encoding="utf-8")
    line = text.splitlines().index(key_line) + 2
    with pytest.raises(YamlFileError) as info:
        write_demo_floor(source, tmp_path / "floor", inbox_port=40123, now=datetime.now(UTC))
    assert info.value.problems == [f"{source}:{line}: site.timezone: key appears twice; keep one (YAML would "
                                   "silently use the last)"]
    assert not (tmp_path / "floor" / "site.yaml").exists()


def test_a_comments_only_hr_file_is_copied_as_an_empty_one_as_the_server_reads_it(tmp_path: Path) -> None:
    source = tmp_path / "source" / "site.yaml"
    source.parent.mkdir()
    source.write_text(DEMO_SITE.read_text(encoding="utf-8"), encoding="utf-8")
    (source.parent / "hr.yaml").write_text("# the HR export: nothing in it yet\n\n   \n", encoding="utf-8")
    assert load_hr(source.parent / "hr.yaml").leavers == []  # the server's reader takes it on purpose

    write_demo_floor(source, tmp_path / "floor", inbox_port=40123, now=datetime.now(UTC))
    copied = load_hr(tmp_path / "floor" / "hr.yaml")
    assert (copied.leavers, copied.visitor_approvals, copied.training, copied.new_staff) == ([], [], None, [])


def test_a_demo_floor_file_that_cannot_be_read_is_the_demos_one_line_refusal_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "source" / "site.yaml"
    source.parent.mkdir()
    source.write_text("site:\n  id: f3\n  id: f4\n", encoding="utf-8")
    code = run_demo(scenario="none", speed=1.0, port=free_port(), data_dir=tmp_path / "demo", source_site=source)
    out = capsys.readouterr().out
    assert code == 1
    assert out == (f"floorwatch demo: cannot write the demo floor from {source}:\n"
                   f"{source}:3: site.id: key appears twice; keep one (YAML would silently use the last)\n")


def test_every_inspection_of_the_demo_floor_has_someone_to_do_it_and_its_overdue_page_a_channel() -> None:
    """Maintenance opening the demo finds each clock-made task assigned (nobody holding a schedule's role
    leaves it to 'anyone with the role', of whom there is none), and every overdue rule reaches a channel."""
    from server.domain.inspections import OVERDUE_RULES, SCHEDULES, TRIGGERED_ONLY
    from server.domain.notify import channels

    site = parse_site(DEMO_SITE.read_text(encoding="utf-8"), str(DEMO_SITE))
    unassigned = sorted(s.id for s in SCHEDULES if s.id not in TRIGGERED_ONLY and not site.people_with_role(s.role))
    assert unassigned == []
    unreached = sorted({f"{r.id} → {role}" for r in OVERDUE_RULES for role in r.notify if not channels(role, site)})
    assert unreached == []

"""The drill report (server/domain/evacuation.py `report`) when the roll call is the wardens' marks: on a
floor whose egress doors are released nobody badges out, and people seated since before the access log
began never badged in, so a rostered person marked safe at the assembly point must count as accounted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.domain.evacuation import MR_STAY, Access, Entry, report, roll_call
from tests.server.domain.harness import load_site

TRIGGER = datetime(2026, 11, 30, 2, 0, 30, tzinfo=UTC)
NOTICE = TRIGGER + timedelta(seconds=2)
ALL_CLEAR = NOTICE + timedelta(minutes=10)


def entry(person: str, status: str, zone: str, *, door: str = "", accounted_s: float | None = None) -> Entry:
    accounted = NOTICE + timedelta(seconds=accounted_s) if accounted_s is not None else None
    return Entry(person, person.upper(), status, zone, door, NOTICE, accounted, False, None, None)


def test_rostered_people_marked_safe_are_accounted_and_clear_their_zone() -> None:
    entries = [
        entry("p-1", "safe", "z1", accounted_s=120),  # rostered, never badged, marked at the assembly point
        entry("p-2", "safe", "z1", accounted_s=300),
        entry("p-3", "safe", "z2", accounted_s=200),
        entry("p-4", "unknown", "z2"),  # rostered, never badged, never marked
        entry("p-5", "inside", "z3", door="door-main"),  # badged in, neither out nor marked
        entry("p-6", "out", "z3", door="door-main", accounted_s=90),
    ]
    got = report(TRIGGER, NOTICE, entries, ALL_CLEAR)
    assert got["time_to_notice_s"] == 2.0
    assert got["zone_clear_s"] == {"z1": 300.0, "z2": None, "z3": None}  # z2: p-4 not found yet
    assert got["zone_known_clear_s"] == {"z1": 300.0, "z2": 200.0, "z3": None}  # the people it knows
    assert sorted((a["person"], a["status"], a["unaccounted_s"]) for a in got["accounted"]) == [  # type: ignore[attr-defined]
        ("p-1", "safe", 120.0), ("p-2", "safe", 300.0), ("p-3", "safe", 200.0), ("p-6", "out", 90.0)]
    assert [(u["person"], u["unaccounted_s"]) for u in got["unaccounted"]] == [("p-5", 600.0)]  # type: ignore[attr-defined]
    assert got["unknown_on_roster"] == 1
    assert [(u["person"], u["zone"], u["unaccounted_s"]) for u in got["unknown"]] == [("p-4", "z2", 600.0)]  # type: ignore[attr-defined]
    assert got["people"] == 5 == len(got["accounted"]) + len(got["unaccounted"])  # type: ignore[arg-type]


def test_a_roll_call_nobody_marked_has_only_unknown_people() -> None:
    got = report(TRIGGER, NOTICE, [entry("p-1", "unknown", "z1"), entry("p-2", "unknown", "z2")], ALL_CLEAR)
    assert (got["people"], got["accounted"], got["unaccounted"], got["unknown_on_roster"]) == (0, [], [], 2)
    assert got["zone_clear_s"] == {"z1": None, "z2": None}


# The roll call itself (`roll_call`), on the example floor: door-main is an egress door, door-b an office door.

def _access(person: str, door: str, direction: str | None, after_notice_s: float) -> Access:
    return Access(person, door, direction, NOTICE + timedelta(seconds=after_notice_s), "access_granted")


def _status(events: list[Access], rostered: dict[str, str] | None = None,
            marks: dict[str, float] | None = None) -> dict[str, str]:
    marked = {person: NOTICE + timedelta(seconds=s) for person, s in (marks or {}).items()}
    entries = roll_call(load_site(), events, NOTICE, {"door-main", "door-exit-b"}, marked, rostered)
    return {e.person: e.status for e in entries}


def test_going_back_in_through_an_egress_door_after_the_notice_is_inside_not_out() -> None:
    events = [_access("p-wang", "door-b", "in", -600),
              _access("p-wang", "door-main", "out", 30),  # out through the egress door
              _access("p-wang", "door-main", "in", 90)]  # and back in through it: inside again
    assert _status(events) == {"p-wang": "inside"}


def test_an_exit_without_a_direction_at_an_egress_door_is_out() -> None:
    events = [_access("p-wang", "door-b", "in", -600), _access("p-wang", "door-main", None, 30)]
    assert _status(events) == {"p-wang": "out"}


def test_a_rostered_person_never_badged_in_who_badges_out_after_the_notice_is_out_not_dropped() -> None:
    # seated since before the access log began (no badge in), leaves by badging at the egress door
    events = [_access("p-zhao", "door-main", "out", 45)]
    assert _status(events, rostered={"p-zhao": "ops-a", "p-li": "ops-a"}) == {"p-zhao": "out", "p-li": "unknown"}


def test_someone_who_left_before_the_notice_is_not_on_the_roll_call() -> None:
    events = [_access("p-wang", "door-b", "in", -3600), _access("p-wang", "door-main", "out", -600)]
    assert _status(events) == {}


def test_a_mark_counts_until_the_person_is_seen_inside_again() -> None:
    events = [_access("p-wang", "door-b", "in", -600), _access("p-wang", "door-main", None, 30)]
    assert _status(events, marks={"p-wang": 120}) == {"p-wang": "safe"}
    back_in = [*events, _access("p-wang", "door-main", "in", 300)]  # marked at +2 min, back in at +5 min
    assert _status(back_in, marks={"p-wang": 120}) == {"p-wang": "inside"}
    out_again = [*back_in, _access("p-wang", "door-main", None, 420)]
    assert _status(out_again, marks={"p-wang": 120}) == {"p-wang": "out"}


def test_a_badge_at_an_inner_door_after_the_notice_shows_a_rostered_person_inside() -> None:
    # never badged in (seated before the log began), then seen at an office door while the floor empties
    events = [_access("p-li", "door-b", None, 60)]
    assert _status(events, rostered={"p-li": "ops-b"}) == {"p-li": "inside"}


def test_a_rostered_person_whose_only_badge_has_no_direction_is_unknown_not_dropped() -> None:
    events = [_access("p-li", "door-b", None, -600)]
    assert _status(events, rostered={"p-li": "ops-b"}) == {"p-li": "unknown"}
    left = [_access("p-li", "door-main", "out", -600)]  # badged out before the notice: not in the building
    assert _status(left, rostered={"p-li": "ops-b"}) == {}


def test_someone_rostered_elsewhere_last_seen_going_in_to_the_machine_room_is_in_the_machine_room() -> None:
    """The machine room's instruction goes to whoever is in it (RULES.md §2.5): a person rostered at a seat
    who badged in at the machine room's door, before or after the notice, is in the machine room."""
    site = load_site()
    for at in (-600, 60):
        entries = roll_call(site, [_access("p-li", "door-mr", "in", at)], NOTICE, {"door-main", "door-exit-b"}, {},
                            {"p-li": "ops-b"})
        assert [(e.person, e.status, e.zone) for e in entries] == [("p-li", "inside", "mr")], (at, entries)
    back = [_access("p-li", "door-mr", "in", -600), _access("p-li", "door-b", "in", 60)]
    entries = roll_call(site, back, NOTICE, {"door-main", "door-exit-b"}, {}, {"p-li": "ops-b"})
    assert [(e.status, e.zone) for e in entries] == [("inside", "ops-b")], "back at the seats after it"


def test_a_badge_in_to_the_machine_room_long_before_the_notice_leaves_a_rostered_person_at_their_seat() -> None:
    """Machine rooms usually let people out without a badge: an entry there hours before the notice says
    nothing about where the person is now, so a rostered person is then in their rostered zone. Up to
    MR_STAY before the notice (or after it) they are in the machine room."""
    site = load_site()
    window = int(MR_STAY.total_seconds())

    def zone(at: int) -> str | None:
        entries = roll_call(site, [_access("p-li", "door-mr", "in", at)], NOTICE, {"door-main", "door-exit-b"}, {},
                            {"p-li": "ops-b"})
        assert [(e.person, e.status) for e in entries] == [("p-li", "inside")], (at, entries)
        return entries[0].zone

    assert zone(-window) == "mr", "inside the window: in the machine room"
    assert zone(-window - 1) == "ops-b", "an entry older than the window: at their rostered seat"
    assert zone(-3 * 3600) == "ops-b", "hours before the notice"
    assert zone(60) == "mr", "after the notice: in the machine room"

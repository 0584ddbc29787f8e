"""Every rule whose outcome depends on who is present reads the scope RULES.md §2 names (issue 13 item 5).

RULES.md §2, every "while ... staffed / unstaffed / occupied / rostered" and every severity that depends
on who is present or where:
- door.forced_open: critical "while floor unstaffed" (floor), critical on a machine-room door;
- env.office_temp: "while the zone is occupied" (zone);
- elec.after_shift_load: "Seat not rostered" (seat); elec.plug_unplugged: "while the seat is rostered" (seat);
- door.held_open: warning (floor) / major (machine room), and access.denied_repeat: minor (floor) / major
  (MR): by where the door is, never by who is present.
(fire.battery_low's re-notify "while the floor is staffed" is a notification cadence, not built yet.)

One floor, one evening (21:00 local), one roster per column, all driven through the real rule engine.
A second floor (f2, zone ops-c) holds people who are NOT on the door's floor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from gateway.contract import EventType, Severity
from server.domain.site import Site
from tests.server.domain.harness import EVENING, EXAMPLE, Floor, load_site

ROSTERS: dict[str, list[str]] = {
    "nobody": [],
    # The door's zone (ops-b) has someone; so has the floor.
    "door zone": ["{person: p-chen, shift: night, seat: s-003, zone: ops-b}"],
    # The lobby case: people on duty on the floor (ops-a), none in the door's zone (ops-b).
    "floor only": ["{person: p-zhao, shift: night, seat: s-002, zone: ops-a}",
                   "{person: p-li, shift: night, zone: ops-a, lead: true}"],
    # Only the machine-room duty on the floor: the machine room is part of the floor.
    "machine room only": ["{person: p-sun, shift: night, zone: mr}"],
    # Someone rostered at seat s-001 (zone ops-a).
    "seat s-001": ["{person: p-wang, shift: night, seat: s-001, zone: ops-a}"],
    # People on duty, but on another floor: the door's floor is unstaffed.
    "other floor only": ["{person: p-zhou, shift: night, zone: ops-c}"],
}

SECOND_FLOOR = """  - id: f2
    name: 2F
"""
OPS_C = """  - id: ops-c
    name: Operations C
    floor: f2
    kind: office
    polygon: [[0, 20], [20, 20], [20, 30], [0, 30]]
"""


def site(roster: str, solo: str | None = None) -> Site:
    """The example site with a second floor, one of ROSTERS, and optionally `solo` alone behind its edge."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("    name: 1F\n", "    name: 1F\n" + SECOND_FLOOR, 1)
    text = text.replace("\ndevices:\n", "\n" + OPS_C + "\ndevices:\n", 1)
    start, end = text.index("roster:\n"), text.index("\nthresholds:")
    lines = "".join(f"  - {line}\n" for line in ROSTERS[roster])
    text = text[:start] + ("roster:\n" + lines if lines else "roster: []\n") + text[end:]
    if solo is not None:
        begin = text.index(f"{{id: {solo}, ")
        close = text.index("}", begin)
        text = text[:begin] + text[begin:close].replace("edge: edge-f1", "edge: edge-solo") + text[close:]
    return load_site(text)


def forced(door: str) -> Callable[[Floor], object]:
    return lambda f: (f.read(door, door_locked=True, door_open=False), f.read(door, door_open=True), f.advance(2))


def held(door: str) -> Callable[[Floor], object]:
    return lambda f: f.hold(door, 31, every=1, door_open=True, door_locked=False)


def denied(door: str) -> Callable[[Floor], object]:
    return lambda f: [(f.event(door, EventType.ACCESS_DENIED, badge="X777"), f.advance(30)) for _ in range(3)]


@dataclass(frozen=True)
class Rule:
    rule: str
    subject: str
    drive: Callable[[Floor], object]
    expect: dict[str, Severity | None]
    """Roster name -> severity the condition is open at after `drive` (None: not raised at all)."""
    solo: bool = False
    """Put the subject alone behind its own edge and supervise (offline rules)."""


CRIT, MAJ, MIN, WARN = Severity.CRITICAL, Severity.MAJOR, Severity.MINOR, Severity.WARNING

TABLE = [
    # Floor scope: critical only when nobody at all is rostered on the door's floor.
    Rule("door.forced_open", "door-b", forced("door-b"),
         {"nobody": CRIT, "door zone": MAJ, "floor only": MAJ, "machine room only": MAJ, "seat s-001": MAJ,
          "other floor only": CRIT}),
    Rule("door.forced_open", "door-main", forced("door-main"),
         {"nobody": CRIT, "door zone": MAJ, "floor only": MAJ, "machine room only": MAJ, "seat s-001": MAJ,
          "other floor only": CRIT}),
    # A machine-room door is critical whoever is present.
    Rule("door.forced_open", "door-mr", forced("door-mr"), dict.fromkeys(ROSTERS, CRIT)),
    # By where the door is, never by who is present.
    Rule("door.held_open", "door-b", held("door-b"), dict.fromkeys(ROSTERS, WARN)),
    Rule("door.held_open", "door-mr", held("door-mr"), dict.fromkeys(ROSTERS, MAJ)),
    Rule("access.denied_repeat", "door-b", denied("door-b"), dict.fromkeys(ROSTERS, MIN)),
    Rule("access.denied_repeat", "door-mr", denied("door-mr"), dict.fromkeys(ROSTERS, MAJ)),
    # Zone scope: temp-b1 is in ops-b (heating season band 16-24 °C); only people in ops-b count.
    Rule("env.office_temp", "temp-b1", lambda f: f.hold("temp-b1", 1801, every=60, temperature_c=30.0),
         {"nobody": None, "door zone": WARN, "floor only": None, "machine room only": None, "seat s-001": None,
          "other floor only": None}),
    # Seat scope: plug-s001 is at seat s-001 (zone ops-a); people elsewhere in ops-a do not count.
    Rule("elec.after_shift_load", "plug-s001", lambda f: f.hold("plug-s001", 1801, every=60, power_w=100.0),
         {"nobody": MIN, "door zone": MIN, "floor only": MIN, "machine room only": MIN, "seat s-001": None,
          "other floor only": MIN}),
    Rule("elec.plug_unplugged", "plug-s001", lambda f: (f.read("plug-s001", power_w=80.0), f.advance(301, step=5)),
         {"nobody": None, "door zone": None, "floor only": None, "machine room only": None, "seat s-001": MIN,
          "other floor only": None}, solo=True),
]

CASES = [(row, roster) for row in TABLE for roster in ROSTERS]


@pytest.mark.parametrize(("row", "roster"), CASES, ids=[f"{r.rule}-{r.subject}-{n}" for r, n in CASES])
def test_rule_reads_the_catalogs_scope(row: Rule, roster: str) -> None:
    f = Floor(EVENING, site=site(roster, row.subject if row.solo else None), supervise=row.solo)
    row.drive(f)
    expected = row.expect[roster]
    got = f.severity(row.rule, row.subject)
    assert got is expected, f"{row.rule} on {row.subject} with roster {roster!r}: {got} (want {expected})"
    if expected is None:
        assert not f.raised(row.rule, row.subject)


def test_every_roster_column_is_in_every_row() -> None:
    assert all(set(row.expect) == set(ROSTERS) for row in TABLE)

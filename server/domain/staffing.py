"""Who is present, read in the scope the catalog names (RULES.md §0.5-4: always the roster, never the clock).

RULES.md §2 makes a rule depend on who is present in one of three scopes, and reading a narrower or a
wider one than the catalog's gives the wrong answer: a forced lobby door at night with 27 people on
duty elsewhere on the floor is major (the floor is staffed), not critical (its own zone has nobody).

| rule | catalog's words | scope |
|---|---|---|
| door.forced_open | critical "while floor unstaffed" | floor |
| fire.battery_low | re-notify every 4 h "while the floor is staffed" | floor (not built yet: see docs) |
| env.office_temp | "while the zone is occupied" | zone |
| elec.after_shift_load | "Seat not rostered" | seat |
| elec.plug_unplugged | "while the seat is rostered" | seat |

door.held_open and access.denied_repeat change severity with where the door is (floor or machine
room), not with who is present. The machine room counts as part of its floor: the person on machine-room
duty is on the floor.
"""

from __future__ import annotations

from datetime import datetime

from server.domain.site import Site


def floor_staffed(site: Site, floor: str, at: datetime) -> bool:
    """Anyone rostered in any zone of `floor` at `at` (the zone scope is `Site.on_duty_in_zone`, the
    seat scope `Site.on_duty_at_seat`)."""
    return any(site.on_duty_in_zone(zone.id, at) for zone in site.zones_on_floor(floor))

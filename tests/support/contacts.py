"""Site files for the tests of roles nobody can be reached as (server/domain/reach.py)."""

from __future__ import annotations

from server.domain.site import ROLE_NAMES

MACHINE_ROOM_FLOOR = """\
site: {id: hq}
floors: [{id: f1}]
zones: [{id: z1, floor: f1}, {id: mr1, floor: f1, kind: machine_room}]
devices:
  - {id: smoke-1, kind: smoke_detector, zone: z1, edge: e1}
  - {id: probe-1, kind: mr_probe, zone: mr1, edge: e1}
people:
  - {id: p-safety, roles: [safety_officer]}
"""
"""An office zone and a machine room, and a safety officer with no channel of their own."""


def every_role_reachable(*left_out: str) -> str:
    """A `contacts:` section with a channel for every role but `left_out`."""
    return "contacts:\n" + "".join(f"  {role}: ['json://127.0.0.1:9/{role}']\n" for role in sorted(ROLE_NAMES)
                                   if role not in left_out)

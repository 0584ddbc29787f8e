"""Roles the rules page that nobody can be reached as (server/domain/reach.py): a person's own contact
reaches their role, a group with no members is paged through the role standing in for it, and only a
site with a machine room is asked for 机房值班."""

from __future__ import annotations

from server.domain.reach import unreachable_roles
from server.domain.site import ROLE_NAMES, parse_site

FLOOR = """\
site: {id: hq}
floors: [{id: f1}]
zones: [{id: z1, floor: f1}, {id: mr1, floor: f1, kind: machine_room}]
devices:
  - {id: smoke-1, kind: smoke_detector, zone: z1, edge: e1}
people:
  - {id: p-safety, roles: [safety_officer]}
"""


def contacts(*left_out: str) -> str:
    return "contacts:\n" + "".join(f"  {role}: ['json://127.0.0.1:9/{role}']\n" for role in sorted(ROLE_NAMES)
                                   if role not in left_out)


def test_a_role_with_no_channel_is_named_with_its_rules_and_a_persons_own_contact_reaches_it() -> None:
    site = parse_site(FLOOR + contacts("mr_duty", "safety_officer", "security_evacuation", "hr"), "site.yaml")
    found = {u.role: u for u in unreachable_roles(site)}
    # security_evacuation has no members: paged through safety_officer, who has no channel either
    assert set(found) == {"mr_duty", "safety_officer", "security_evacuation", "hr"}
    assert found["mr_duty"].urgent and found["mr_duty"].rules[0] == "sup.probe_offline"
    assert {"mr.leak", "mr.smoke"} <= set(found["mr_duty"].rules)
    assert found["hr"].rules == ("train.new_staff",) and not found["hr"].urgent
    assert "door.fire_release_zone" in found["security_evacuation"].rules
    own = FLOOR.replace("[safety_officer]}", "[safety_officer]}\n") + contacts(
        "mr_duty", "safety_officer", "security_evacuation", "hr") + "  p-safety: ['json://127.0.0.1:9/p']\n"
    assert {u.role for u in unreachable_roles(parse_site(own, "site.yaml"))} == {"mr_duty", "hr"}


def test_without_a_machine_room_nobody_is_asked_for_mr_duty() -> None:
    office_only = FLOOR.replace(", {id: mr1, floor: f1, kind: machine_room}", "")
    assert unreachable_roles(parse_site(office_only + contacts("mr_duty"), "site.yaml")) == []

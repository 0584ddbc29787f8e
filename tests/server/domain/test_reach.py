"""Roles the rules page that nobody can be reached as (server/domain/reach.py): a person's own contact
reaches their role, a group with no members is paged through the role standing in for it, and only a
site with a machine room is asked for 机房值班."""

from __future__ import annotations

from server.domain.reach import unreachable_roles, unreachable_warnings
from server.domain.site import parse_site
from tests.support.contacts import MACHINE_ROOM_FLOOR, every_role_reachable


def test_a_role_with_no_channel_is_named_with_its_rules_and_a_persons_own_contact_reaches_it() -> None:
    left_out = ("mr_duty", "safety_officer", "security_evacuation", "hr")
    site = parse_site(MACHINE_ROOM_FLOOR + every_role_reachable(*left_out), "site.yaml")
    found = {u.role: u for u in unreachable_roles(site)}
    # security_evacuation has no members: paged through safety_officer, who has no channel either
    assert set(found) == {"mr_duty", "safety_officer", "security_evacuation", "hr"}
    assert found["mr_duty"].urgent and found["mr_duty"].rules[0] == "sup.probe_offline"
    assert {"mr.leak", "mr.smoke"} <= set(found["mr_duty"].rules)
    assert found["hr"].rules == ("train.new_staff",) and not found["hr"].urgent
    assert "door.fire_release_zone" in found["security_evacuation"].rules
    own = MACHINE_ROOM_FLOOR + every_role_reachable(*left_out) + "  p-safety: ['json://127.0.0.1:9/p']\n"
    assert {u.role for u in unreachable_roles(parse_site(own, "site.yaml"))} == {"mr_duty", "hr"}


def test_without_a_machine_room_nobody_is_asked_for_mr_duty() -> None:
    office_only = MACHINE_ROOM_FLOOR.replace(", {id: mr1, floor: f1, kind: machine_room}", "").replace(
        "  - {id: probe-1, kind: mr_probe, zone: mr1, edge: e1}\n", "")
    assert unreachable_roles(parse_site(office_only + every_role_reachable("mr_duty"), "site.yaml")) == []


def test_a_site_file_with_no_contacts_gets_one_line_saying_so_not_one_per_role() -> None:
    lines = unreachable_warnings(parse_site(MACHINE_ROOM_FLOOR, "site.yaml"))
    assert len(lines) == 1 and lines[0].startswith("site.yaml: contacts: none, so every page would reach nobody")
    assert "mr_duty" in lines[0] and "add a `contacts:` section" in lines[0]
    one_missing = unreachable_warnings(parse_site(MACHINE_ROOM_FLOOR + every_role_reachable("mr_duty"), "site.yaml"))
    assert len(one_missing) == 1 and "nobody can be reached as 'mr_duty'" in one_missing[0]

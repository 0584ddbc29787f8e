"""One authorization table: the routes (through `may`) and the rules' controls (through `holds`, with role
names) answer from PERMISSIONS alone, in one vocabulary, the account roles of `Role`."""

from __future__ import annotations

import pytest

from gateway.contract import Severity
from server.domain.policy import PERMISSIONS, Actor, Permission, Role, can_acknowledge, holds, may
from server.domain.rules.controls import all_clear, relay_reenable


@pytest.mark.parametrize("role", list(Role))
def test_holds_with_role_names_answers_like_may_with_an_actor(role: Role) -> None:
    actor = Actor(f"acct-{role}", frozenset({role}))
    for permission in Permission:
        assert holds([role.value], permission) == may(actor, permission) == (
            role is Role.ADMIN or role in PERMISSIONS[permission]), (role, permission)


@pytest.mark.parametrize("role", list(Role))
def test_the_controls_of_the_rules_follow_the_table(role: Role) -> None:
    restores = relay_reenable([role.value], "kettle removed", "elec.high_power_appliance", False, False).allowed
    assert restores == (role is Role.ADMIN or role in PERMISSIONS[Permission.RESTORE_POWER]), role
    assert all_clear([role.value]).allowed == (role is Role.ADMIN or role in PERMISSIONS[Permission.ALL_CLEAR]), role


def test_the_restore_refusal_names_exactly_who_holds_restore_power() -> None:
    # the words of relay_reenable's refusal: a change of the table must change them too
    assert PERMISSIONS[Permission.RESTORE_POWER] == (Role.SHIFT_LEAD, Role.SUPERVISOR)
    refused = relay_reenable(["operator"], "kettle removed", "elec.high_power_appliance", False, False)
    assert (refused.allowed, refused.reason) == (False, "needs a shift lead (领班), a supervisor or admin")


def test_no_second_vocabulary_a_site_role_name_grants_nothing() -> None:
    # `manager` is a site-file role for paging and inspection duties, never an account role
    assert "manager" not in {r.value for r in Role}
    assert not any(holds(["manager"], p) for p in Permission)
    assert not relay_reenable(["manager"], "fixed", "elec.plug_overcurrent", False, False).allowed
    assert relay_reenable(["admin"], "fixed", "elec.plug_overcurrent", False, False).allowed
    assert all_clear(["admin"]).allowed and not all_clear(["manager", "supervisor"]).allowed


def test_an_operator_acknowledges_only_non_critical_alarms_of_their_own_zones() -> None:
    operator = Actor("op", frozenset({Role.OPERATOR}), frozenset({"z1"}))
    assert can_acknowledge(operator, Severity.MAJOR, "z1")
    assert not can_acknowledge(operator, Severity.CRITICAL, "z1")
    assert not can_acknowledge(operator, Severity.MAJOR, "z2")
    assert not can_acknowledge(Actor("op", frozenset({Role.OPERATOR})), Severity.MINOR, "z1")  # no zones of its own
    assert can_acknowledge(Actor("lead", frozenset({Role.SHIFT_LEAD})), Severity.CRITICAL, "z2")
    assert not can_acknowledge(Actor("fm", frozenset({Role.FACILITY_MANAGER})), Severity.MINOR, "z1")

"""elec.relay_reenable_guard (RULES.md §2.1): after a critical overload cut, switching the plug on again needs
a licensed electrician's sign-off, also when a later safety cut (the fire zone's cut of non-essential loads)
switched the same plug off again before anyone restored it. Real SQLite, the real command and evacuation
services."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway import contract
from server.domain.power import plan_cut
from server.services.commands import CommandError
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import response


def test_a_fire_cut_after_a_critical_overload_cut_keeps_the_electrician_sign_off(db, tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(2525, 8080), tmp_path)
    clock = FakeClock(T0)
    r = response(sessions, site, clock)
    plan = plan_cut("elec.plug_overcurrent", "plug-z1-kettle", 10.6, site, {})
    assert plan is not None
    r.commands.safety_cut(list(plan.devices), plan.reason, ref="alarm 7")  # as OverloadCut does
    clock.advance(timedelta(minutes=3))  # the overloaded kettle's strip smoulders: a fire in z1
    r.evac.start("f1", "z1", drill=False, trigger="manual", reason="fire in z1", who="p-safe")
    assert [c.action for c in r.sent if c.device == "plug-z1-kettle"] == [contract.Action.RELAY_OFF] * 2
    clock.advance(timedelta(minutes=30))
    with pytest.raises(CommandError, match="electrician"):
        r.commands.relay("plug-z1-kettle", True, "fire over", "lead", {"shift_lead"})
    r.commands.relay("plug-z1-kettle", True, "checked by electrician", "lead", {"shift_lead"},
                     electrician_signoff=True)
    assert r.sent[-1].action is contract.Action.RELAY_ON
    # the edge switched it on (a restore it refused or never answered would leave the guard in place)
    r.commands.on_result("e1", contract.CommandResult(id=r.sent[-1].id, ok=True, ts=clock()))
    clock.advance(timedelta(minutes=1))
    r.commands.relay("plug-z1-kettle", False, "leaving", "lead", {"shift_lead"})
    clock.advance(timedelta(minutes=1))
    r.commands.relay("plug-z1-kettle", True, "back", "lead", {"shift_lead"})  # restored since: no guard left


def test_a_persons_cut_after_a_critical_overload_cut_keeps_the_electrician_sign_off(db, tmp_path: Path) -> None:
    _, sessions = db
    clock = FakeClock(T0)
    r = response(sessions, make_site(site_yaml(2525, 8080), tmp_path), clock)
    r.commands.safety_cut(["plug-z1-kettle"], "elec.plug_overcurrent critical: plug-z1-kettle over its 10 A rating")
    clock.advance(timedelta(minutes=1))
    r.commands.relay("plug-z1-kettle", False, "keep it off", "lead", {"shift_lead"})
    clock.advance(timedelta(minutes=10))
    with pytest.raises(CommandError, match="electrician"):
        r.commands.relay("plug-z1-kettle", True, "looks fine", "lead", {"shift_lead"})

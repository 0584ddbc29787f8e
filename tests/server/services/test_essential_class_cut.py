"""The fire zone's plug cut (fire.confirmed, RULES.md §2.2) goes through CommandService.safety_cut: a plug
of `class: essential` (the seat's PC) is never switched off, also when the site file marks it cuttable.
Real SQLite, the real command and evacuation services."""

from __future__ import annotations

from pathlib import Path

from gateway import contract
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import response

PC = ("  - {id: plug-z1-pc2, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: essential, cuttable: true,"
      " seat: s1}\n")


def test_a_real_fire_evacuation_cuts_no_plug_of_class_essential(db, tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(2525, 8080).replace("people:\n", PC + "people:\n", 1), tmp_path)
    r = response(sessions, site, FakeClock(T0))
    r.evac.start("f1", "z1", drill=False, trigger="manual", reason="fire in z1", who="p-safe")
    cut = {c.device for c in r.sent if c.action is contract.Action.RELAY_OFF}
    assert cut == {"plug-z1-kettle"}, cut

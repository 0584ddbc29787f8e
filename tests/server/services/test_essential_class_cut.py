"""The fire zone's plug cut (fire.confirmed, RULES.md §2.2) goes through CommandService.safety_cut: a plug
of `class: essential` (the seat's PC) is never switched off, also when the site file marks it cuttable.
Real SQLite, the real command and evacuation services."""

from __future__ import annotations

from pathlib import Path

from gateway import contract
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.evacuations import EvacuationRepository
from server.domain.rules import RuleEngine
from server.services.commands import CommandService
from server.services.evacuation import EvacuationService
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml

PC = ("  - {id: plug-z1-pc2, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: essential, cuttable: true,"
      " seat: s1}\n")


def test_a_real_fire_evacuation_cuts_no_plug_of_class_essential(db, tmp_path: Path) -> None:
    _, sessions = db
    text = site_yaml(2525, 8080).replace("people:\n", PC + "people:\n", 1)
    site = make_site(text, tmp_path)
    clock = FakeClock(T0)
    engine = RuleEngine(site)
    sent: list[contract.Command] = []

    def call(fn):  # type: ignore[no-untyped-def]
        return fn(engine, clock())

    commands = CommandService(CommandRepository(sessions), site, clock, lambda _t, c: sent.append(c), call)
    evac = EvacuationService(EvacuationRepository(sessions), site, clock, commands, None, lambda _n: None, call)
    evac.start("f1", "z1", drill=False, trigger="manual", reason="fire in z1", who="p-safe")
    cut = {c.device for c in sent if c.action is contract.Action.RELAY_OFF}
    assert cut == {"plug-z1-kettle"}, cut

"""Power cut policy and relay read-back (RULES.md §2.1), all-clear permission, with a real database
and the real rule engine (its inputs given the way `Ingest.call` gives them)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway import contract
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.evacuations import EvacuationRepository
from server.adapters.sql.models import AuditRow
from server.domain.findings import Finding
from server.domain.rules import RuleEngine
from server.services.commands import CommandError, CommandService
from server.services.evacuation import EvacuationService
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml


class EngineHost:
    """Runs engine inputs in the caller's thread and keeps the findings (what Ingest.call commits)."""

    def __init__(self, engine: RuleEngine, clock: FakeClock) -> None:
        self.engine, self.clock, self.findings = engine, clock, []  # type: ignore[var-annotated]

    def __call__(self, fn):  # type: ignore[no-untyped-def]
        made: list[Finding] = fn(self.engine, self.clock())
        self.findings += made
        return made


def setup(db, tmp_path: Path):  # type: ignore[no-untyped-def]
    _, sessions = db
    site = make_site(site_yaml(2525, 8080), tmp_path)
    clock = FakeClock(T0)
    engine = RuleEngine(site)
    host = EngineHost(engine, clock)
    sent: list[tuple[str, contract.Command]] = []
    commands = CommandService(CommandRepository(sessions), site, clock, lambda topic, c: sent.append((topic, c)), host)
    return sessions, site, clock, engine, host, sent, commands


def test_safety_cut_only_cuttable_with_expiry_and_relay_mismatch_when_power_stays(db, tmp_path: Path) -> None:
    sessions, _site, clock, engine, host, sent, commands = setup(db, tmp_path)
    cut = commands.safety_cut(["plug-z1-kettle", "plug-z1-pc", "door-z1-exit"], "fire.confirmed critical: z1")
    assert cut == ["plug-z1-kettle"], "essential plugs and non-plugs are never cut by a rule"
    topic, command = sent[0]
    assert topic == "floorwatch/v1/r1/e1/commands"
    assert command.action is contract.Action.RELAY_OFF and command.expires_at > command.issued_at

    # the plug keeps drawing power after the cut: elec.relay_mismatch (5 W, 5 s)
    t = clock()
    for s in range(0, 12, 2):
        host.findings += engine.on_reading("plug-z1-kettle", t + timedelta(seconds=s),
                                           {"power_w": 900.0, "relay_on": False}, t + timedelta(seconds=s))
        host.findings += engine.tick(t + timedelta(seconds=s))
    assert any(f.rule == "elec.relay_mismatch" and f.subject == "plug-z1-kettle" and f.is_raise
               for f in host.findings)

    commands.on_result("e1", contract.CommandResult(id=command.id, ok=True, ts=clock()))
    assert commands.commands(device="plug-z1-kettle")[0]["status"] == "ok"
    with sessions() as session:
        audit = session.scalars(select(AuditRow).where(AuditRow.action == "relay.off")).all()
        assert audit and audit[0].who == "system" and "fire.confirmed" in audit[0].detail["reason"]


def test_a_cut_that_works_raises_no_mismatch(db, tmp_path: Path) -> None:
    _, _, clock, engine, host, _, commands = setup(db, tmp_path)
    commands.safety_cut(["plug-z1-kettle"], "fire.confirmed critical: z1")
    t = clock()
    for s in range(0, 12, 2):
        at = t + timedelta(seconds=s)
        host.findings += engine.on_reading("plug-z1-kettle", at, {"power_w": 0.4, "relay_on": False}, at)
        host.findings += engine.tick(at)
    assert not [f for f in host.findings if f.rule == "elec.relay_mismatch"]


def test_manual_relay_needs_roles_and_restore_after_safety_cut_is_guarded(db, tmp_path: Path) -> None:
    sessions, _, _, _, _, sent, commands = setup(db, tmp_path)
    with pytest.raises(CommandError, match="shift lead"):
        commands.relay("plug-z1-pc", False, "smells hot", "op", {"operator"})
    commands.relay("plug-z1-pc", False, "smells hot", "lead", {"shift_lead"})  # one-tap manual cut of essential
    with pytest.raises(CommandError, match="reason"):
        commands.relay("plug-z1-kettle", True, " ", "lead", {"shift_lead"})

    commands.safety_cut(["plug-z1-kettle"], "elec.plug_overcurrent critical 10.5 A")
    with pytest.raises(CommandError, match="relay_reenable"):
        commands.relay("plug-z1-kettle", True, "checked", "op", {"operator"})
    with pytest.raises(CommandError, match="electrician"):
        commands.relay("plug-z1-kettle", True, "checked", "lead", {"shift_lead"})
    commands.relay("plug-z1-kettle", True, "checked by electrician", "lead", {"shift_lead"}, electrician_signoff=True)
    assert sent[-1][1].action is contract.Action.RELAY_ON
    with sessions() as session:
        actions = [(a.who, a.action) for a in session.scalars(select(AuditRow).order_by(AuditRow.id)).all()]
    assert actions == [("lead", "relay.off"), ("system", "relay.off"), ("lead", "relay.on")]


def test_all_clear_only_by_command_roles_and_doors_stay_released(db, tmp_path: Path) -> None:
    sessions, site, clock, engine, host, sent, commands = setup(db, tmp_path)
    notices: list[contract.EvacuationNotice] = []
    evac = EvacuationService(EvacuationRepository(sessions), site, clock, commands, None, notices.append, host)
    ev = evac.start("f1", None, drill=True, trigger="drill", reason="drill", who="sup")
    assert notices[-1].state is contract.EvacuationState.ACTIVE and notices[-1].message.zh.startswith("【演练】")
    assert {c.device for _, c in sent if c.action is contract.Action.DOOR_RELEASE} == {"door-z1-exit",
                                                                                        "door-z2-exit"}
    assert any(f.rule == "evac.notice" and f.is_raise for f in host.findings)
    # no read-back within 10 s: the engine raises the door alarm (critical) for both doors
    host.findings += engine.tick(clock.advance(timedelta(seconds=11)))
    failed = {f.subject for f in host.findings if f.rule == "door.fire_release_floor" and f.is_raise}
    assert failed == {"door-z1-exit", "door-z2-exit"}
    assert all(f.severity is contract.Severity.CRITICAL for f in host.findings
               if f.rule == "door.fire_release_floor" and f.is_raise)

    with pytest.raises(PermissionError):
        evac.all_clear(ev["id"], "sup", {"supervisor"})
    done = evac.all_clear(ev["id"], "chief", {"emergency_command"})
    assert done["state"] == "all_clear" and notices[-1].state is contract.EvacuationState.ALL_CLEAR
    assert any(f.rule == "evac.notice" and not f.is_raise for f in host.findings)
    assert not [c for _, c in sent if c.action is contract.Action.DOOR_SECURE], "doors stay released"
    with sessions() as session:
        audit = [(a.who, a.target) for a in session.scalars(select(AuditRow).where(
            AuditRow.action == "evacuation.all_clear")).all()]
    assert audit == [("chief", ev["id"])], "the all-clear is audited once, in its own transaction"




def test_a_plug_the_lead_switched_off_by_hand_comes_back_on_only_by_a_lead(db, tmp_path: Path) -> None:
    """The one-tap manual cut is the power-cut policy's safety action for an essential plug (RULES.md §2.1:
    the server never cuts one itself): the operator at the seat must not undo it; a shift lead or above
    does, with a reason (elec.relay_reenable_guard)."""
    _, _, _, _, _, sent, commands = setup(db, tmp_path)
    commands.relay("plug-z1-pc", False, "smells hot", "lead", {"shift_lead"})
    with pytest.raises(CommandError, match="shift lead"):
        commands.relay("plug-z1-pc", True, "need my PC", "op", {"operator"})
    assert [c.action for _, c in sent] == [contract.Action.RELAY_OFF]
    commands.relay("plug-z1-pc", True, "cord replaced", "lead", {"shift_lead"})
    assert sent[-1][1].action is contract.Action.RELAY_ON

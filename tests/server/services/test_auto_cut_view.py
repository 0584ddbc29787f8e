"""The automatic cut of a critical overload on the API's alarm (`auto_cut`): read from the commands the alarm
sent (ref "alarm <id>"), one entry per plug, sent -> cutting, ok -> done, failed -> failed with the edge's
reason. On a real database with a fake clock; the page's side is tests/web/test_cut_card.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from gateway import contract
from gateway.contract import Severity
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.delayed_cuts import DelayedCutRepository
from server.api.routes.alarms import AlarmViews
from server.services.alarms import AlarmService
from server.services.commands import CommandService, alarm_ref
from server.services.delayed_cuts import DelayedCutService
from tests.server.services.conftest import T0, FakeClock, make_site
from tests.server.services.helpers import by_id, raise_alarm
from tests.server.services.test_delayed_cut import cut_site


def test_the_alarm_shows_each_plug_its_overload_cut_with_the_edges_result(
        db: tuple[str, sessionmaker[Session]], tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(cut_site(1, delay_s=60), tmp_path)
    clock = FakeClock(T0)
    sent: list[contract.Command] = []
    alarms = AlarmService(AlarmWriter(sessions), [])
    commands = CommandService(CommandRepository(sessions), site, clock, lambda _t, c: sent.append(c))
    views = AlarmViews(site, DelayedCutService(DelayedCutRepository(sessions), site, clock, commands,
                                               lambda _d: None, by_id(alarms)), commands, clock)
    strip = raise_alarm(alarms, "elec.strip_overload", "strip-z1-01", "z1", Severity.CRITICAL, clock(), value=12.5)
    quiet = raise_alarm(alarms, "elec.plug_overcurrent", "plug-s2-heater", "z1", Severity.MAJOR, clock(), value=8.2)
    assert strip.id is not None and quiet.id is not None
    assert views.public(strip).auto_cut == [], "nothing sent yet"

    # the path OverloadCut takes; the essential pc is never cut, a person's cut of another plug is not the alarm's
    cut = commands.safety_cut(["plug-s4-spare", "plug-s3-pc", "plug-s1-kettle"], "elec.strip_overload critical",
                              ref=alarm_ref(strip.id))
    assert cut == ["plug-s4-spare", "plug-s1-kettle"]
    commands.relay("plug-s2-heater", False, "lead's own cut", "lead-wang", {"shift_lead"})
    waiting = views.public(strip).auto_cut
    assert [(c.device, c.state, c.automatic, c.at) for c in waiting] == [  # sent at one instant: by plug id
        ("plug-s1-kettle", "cutting", True, None), ("plug-s4-spare", "cutting", True, None)]
    assert all(c.due_at == T0 and c.held_by is None and c.why == "" for c in waiting), "sent at T0, no result"

    # the edge's results: one done, one failed with its reason
    clock.advance(timedelta(seconds=2))
    spare, kettle = (next(c for c in sent if c.device == d) for d in ("plug-s4-spare", "plug-s1-kettle"))
    commands.on_result("e1", contract.CommandResult(id=spare.id, ok=True, ts=clock()))
    commands.on_result("e1", contract.CommandResult(id=kettle.id, ok=False, ts=clock(),
                                                    error="relay did not switch within 3 s"))
    failed, done = views.public(strip).auto_cut
    assert (done.device, done.state, done.at, done.why) == ("plug-s4-spare", "done", clock(), "")
    assert (failed.device, failed.state, failed.at) == ("plug-s1-kettle", "failed", clock())
    assert failed.why == "relay did not switch within 3 s"

    # the list reads every alarm's cut at once and shows the same; the other alarm has none
    listed = views.cuts_of([strip, quiet])
    assert views.public(strip, listed).auto_cut == [failed, done]
    assert views.public(quiet, listed).auto_cut == [] and views.public(quiet).cut is None
    # a cut sent again for the same plug (a restarted server): the plug's latest command, once, in sent order
    clock.advance(timedelta(seconds=1))
    again = commands.safety_cut(["plug-s1-kettle"], "elec.strip_overload critical", ref=alarm_ref(strip.id))
    assert again == ["plug-s1-kettle"]
    assert [(c.device, c.state) for c in views.public(strip).auto_cut] == [("plug-s4-spare", "done"),
                                                                          ("plug-s1-kettle", "cutting")]
    # no answer from the edge (offline) until the command expired: failed, not "waiting" for ever
    (unanswered,) = [c for c in sent if c.device == "plug-s1-kettle"][-1:]
    clock.advance(unanswered.expires_at - clock())
    expired = views.public(strip).auto_cut[-1]
    assert (expired.device, expired.state, expired.at) == ("plug-s1-kettle", "failed", unanswered.expires_at)
    assert "no answer from the edge" in expired.why


def test_a_delayed_cut_is_shown_once_as_the_delayed_cut(db: tuple[str, sessionmaker[Session]], tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(cut_site(1, delay_s=60), tmp_path)
    clock = FakeClock(T0)
    alarms = AlarmService(AlarmWriter(sessions), [])
    commands = CommandService(CommandRepository(sessions), site, clock, lambda _t, _c: None)
    cuts = DelayedCutService(DelayedCutRepository(sessions), site, clock, commands, lambda _d: None, by_id(alarms))
    alarms.listeners.append(cuts.on_alarm)
    views = AlarmViews(site, cuts, commands, clock)
    kettle = raise_alarm(alarms, "elec.high_power_appliance", "plug-s1-kettle", "z1", Severity.MAJOR, clock())
    clock.advance(timedelta(seconds=60))
    assert len(cuts.run_due(clock())) == 1
    shown = views.public(kettle)
    assert shown.cut is not None and shown.cut.state == "cutting" and not shown.cut.automatic
    assert shown.auto_cut == [], "its command (same ref) is the delayed cut's, not a second, automatic one"

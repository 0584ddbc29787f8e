"""The critical strip overload's cut (RULES.md §2.1: open the strip's non-essential plugs, largest load
first) also reaches a plug that reports its power but no current, as a Shelly Gen1 Plug S does
(`relay/<n>/power` only, docs/devices.md). Its load is its power at the nominal 220 V; read as no load, the
heater drawing most of the strip was never cut. Real SQLite, the real alarm, command and overload-cut
services."""

from __future__ import annotations

from pathlib import Path

from gateway import contract
from gateway.contract import Severity
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import overload_cuts, raise_alarm


def test_a_strip_overload_cuts_the_heater_on_a_plug_that_reports_power_only(db, tmp_path: Path) -> None:
    _, sessions = db
    text = site_yaml(2525, 8080)
    for plug in ("plug-z1-kettle", "plug-z1-pc"):
        text = text.replace(f"{{id: {plug}, kind: smart_plug,", f"{{id: {plug}, kind: smart_plug, strip: strip-z1-00,")
    site = make_site(text, tmp_path)
    assert [p.id for p in site.plugs_of_strip("strip-z1-00")] == ["plug-z1-kettle", "plug-z1-pc"]
    clock = FakeClock(T0)
    alarms, live, sent = overload_cuts(sessions, site, clock)

    live.reading("plug-z1-kettle", clock(), {"power_w": 2400.0, "relay_on": True}, clock())  # Gen1: no current
    live.reading("plug-z1-pc", clock(), {"power_w": 300.0, "current_a": 1.6}, clock())
    raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.CRITICAL, clock(), value=12.9)
    assert [(c.device, c.action) for c in sent] == [("plug-z1-kettle", contract.Action.RELAY_OFF)], \
        "the heater on a power-only plug was read as idle and left on"

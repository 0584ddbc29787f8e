"""The delayed cut on the live page's alarm card (issue #5), in Debian's chromium against the real stack of
tests/server/services/test_delayed_cut.py (Mosquitto, the edge agent with simulated Shelly plugs, the server).

A kettle and a heater on two seat plugs. The heater's cut is 60 s away: its card says "relay OFF at
HH:MM:SS unless held", the shift lead's page offers "Hold cut" and the operator's does not; the lead holds
it on the page and the card shows who held it and why (the holder hidden from the operator, a person). The
kettle's cut (6 s) goes through: its card turns to "relay OFF at ..., confirmed" without a reload.

The automatic cut of a critical strip overload: a strip meter (a simulated Shelly) over its 10 A with a kettle
and a heater on it; the alarm's card says which plug the rule switched off and that the edge confirmed it,
in en and 中文."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.broker import EmbeddedBroker
from tests.server.services.conftest import Hook
from tests.server.services.test_delayed_cut import PLUGS, SITE_TZ, cut_site, running_floor
from tests.support.wait import wait_for
from tests.web.test_live_page import DESKTOP, PHONE, open_page

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture says when it is missing
    from playwright.sync_api import Browser, expect

KETTLE_DELAY_S = 6
TZ = "Asia/Shanghai"
"""The browser's timezone, the site's: the card's times read as the pages' do."""


def local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(SITE_TZ).strftime("%H:%M:%S")


def test_the_card_shows_the_pending_cut_the_lead_holds_it_on_the_page_and_the_kettle_cut_is_confirmed(
        browser: Browser, mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path, artifacts_dir: Path) -> None:
    site = cut_site(hook.port, delay_s=60, device_delays={"plug-s1-kettle": KETTLE_DELAY_S})
    with running_floor(mosquitto, hook, tmp_path, site) as floor:
        started = time.monotonic()
        lead = open_page(browser, floor, DESKTOP, "en-GB", mobile=False,
                         token=floor.token_for("lead-wang", ["shift_lead"]), timezone=TZ)
        operator = open_page(browser, floor, PHONE, "en-GB", mobile=True,
                             token=floor.token_for("op-one", ["operator"]), timezone=TZ)
        for device in ("plug-s1-kettle", "plug-s2-heater"):
            floor.plugs.plug_in(PLUGS[device], 2000.0)

        def alarms() -> dict[str, dict[str, Any]] | None:
            found = {a["device"]: a for a in floor.api.get("/api/alarms?state=open").json()
                     if a["rule"] == "elec.high_power_appliance"}
            # the cut row is written by a listener after the alarm's commit: wait for both, not just the alarms
            return found if len(found) == 2 and all(a["cut"] for a in found.values()) else None

        raised = wait_for(alarms, timeout=30, what="two high-power alarms")
        heater, kettle = raised["plug-s2-heater"], raised["plug-s1-kettle"]
        assert heater["cut"]["state"] == "pending"

        # the two alarms (one rule, one zone) are one row on each page: opened to work through them
        for page in (lead, operator):
            group = page.locator('#alarms li.alarm-group[data-rule="elec.high_power_appliance"]')
            expect(group).to_have_attribute("data-count", "2", timeout=15_000)
            expect(group.locator(".group-toggle .cut")).to_have_attribute("data-cut-state", "pending")
            group.locator("button.group-toggle").click()
        # the pending cut and its time on both pages; the hold button only for a role the route accepts
        card = lead.locator(f'#alarms li.alarm[data-id="{heater["id"]}"]')
        expect(card.locator(".cut")).to_have_attribute("data-cut-state", "pending", timeout=15_000)
        expect(card.locator(".cut")).to_have_text(f"relay OFF at {local(heater['cut']['due_at'])} unless held")
        expect(card.locator("button.hold-cut")).to_be_visible()
        op_card = operator.locator(f'#alarms li.alarm[data-id="{heater["id"]}"]')
        expect(op_card.locator(".cut")).to_have_attribute("data-cut-state", "pending", timeout=15_000)
        expect(op_card.locator("button.hold-cut")).to_have_count(0)
        # acknowledging too: the lead may (acknowledge_any), an operator without zones has no alarm of their own
        expect(card.locator("button.ack")).to_be_visible()
        expect(op_card.locator("button.ack")).to_have_count(0)
        lead.screenshot(path=str(artifacts_dir / "live-page-cut-pending.png"), full_page=True)

        # the lead holds it on the page: a reason is required, then the card shows who and why
        card.locator("button.hold-cut").click()
        dialog = lead.locator("#action-dialog")
        expect(dialog).to_be_visible()
        dialog.locator("#action-submit").click()
        expect(dialog.locator("#action-dialog-error")).to_have_text("A reason is required")
        dialog.locator("#action-reason").fill("medical heater, allowed")
        dialog.locator("#action-submit").click()
        expect(dialog).to_be_hidden()
        expect(card.locator(".cut")).to_have_attribute("data-cut-state", "held")
        expect(card.locator(".cut")).to_have_text("cut held by lead-wang: medical heater, allowed")
        expect(card.locator("button.hold-cut")).to_have_count(0)
        held = floor.api.get(f"/api/alarms/{heater['id']}").json()["cut"]
        assert held["state"] == "held" and held["held_by"] == "lead-wang"
        # the operator's page follows by its poll (a hold changes no alarm, so no stream event)
        expect(op_card.locator(".cut")).to_have_text("cut held by (hidden): medical heater, allowed",
                                                     timeout=15_000)

        # the kettle's cut goes through: confirmed by the edge, shown on the card without a reload
        k_card = lead.locator(f'#alarms li.alarm[data-id="{kettle["id"]}"]')
        expect(k_card.locator(".cut")).to_have_attribute("data-cut-state", "done", timeout=30_000)
        done = floor.api.get(f"/api/alarms/{kettle['id']}").json()["cut"]
        expect(k_card.locator(".cut")).to_have_text(f"relay OFF at {local(done['at'])}, confirmed")
        lead.screenshot(path=str(artifacts_dir / "live-page-cut-held-done.png"), full_page=True)
        operator.screenshot(path=str(artifacts_dir / "live-page-cut-operator.png"), full_page=True)
        assert lead.errors == [] and operator.errors == []  # type: ignore[attr-defined]
        print(f"\nkettle cut done at {local(done['at'])} (due {local(kettle['cut']['due_at'])}); "
              f"page test body {time.monotonic() - started:.1f} s")
        for page in (lead, operator):  # the pages' live streams end before the server stops
            page.context.close()


STRIP_FLOOR = {"strip-z1-01": ("strip_meter", "shellystrip-z1-01"),
               **{dev: ("smart_plug", addr) for dev, addr in PLUGS.items()}}
"""The edge's simulated Shelly devices: the strip meter and the three plugs fed from it."""


def strip_entry(device: str) -> str:
    """A 10 A strip meter of zone z1 on edge e1, as a site file's `devices:` entry."""
    return f"\n  - {{id: {device}, kind: strip_meter, zone: z1, edge: e1, rated_a: 10}}"


def plug_entry(device: str, strip: str, edge: str = "e1", essential: bool = False) -> str:
    """A 16 A plug of zone z1 fed from `strip`: non-essential and cuttable, or essential."""
    kind = "class: essential, essential: true" if essential else "class: non_essential, cuttable: true"
    return f"\n  - {{id: {device}, kind: smart_plug, zone: z1, edge: {edge}, rated_a: 16, {kind}, strip: {strip}}}"


STRIP_DEVICES = (strip_entry("strip-z1-01") + plug_entry("plug-s1-kettle", "strip-z1-01")
                 + plug_entry("plug-s2-heater", "strip-z1-01")
                 + plug_entry("plug-s3-pc", "strip-z1-01", essential=True))
"""Three plugs without a seat (no delayed cut) on a 10 A strip."""


def strip_site(hook_port: int, devices: str = STRIP_DEVICES) -> str:
    """`devices` (the site file's entries) in zone z1, whose strip overload turns critical after 2 s."""
    j = f"json://127.0.0.1:{hook_port}"
    return f"""
site: {{id: r1, name: Strip cut floor, timezone: Asia/Shanghai}}
floors: [{{id: f1, name: 1F}}]
zones:
  - {{id: z1, name: 坐席区一, floor: f1, kind: office}}
devices:{devices}
thresholds:
  zones:
    z1:
      elec.strip_overload: {{major_hold_s: 1, critical_hold_s: 2}}
people:
  - {{id: p-lead, name: 王领班, badge: B1, roles: [shift_lead]}}
contacts:
  p-lead: ['{j}/lead']
  supervisor: ['{j}/supervisor']
  fallback: ['{j}/fallback']
shifts:
  - {{id: all, start: '00:00', end: '00:00'}}
roster:
  - {{person: p-lead, shift: all, zone: z1, lead: true}}
"""


def test_the_card_says_which_plug_a_critical_strip_overload_cut_and_that_the_edge_confirmed_it(
        browser: Browser, mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path, artifacts_dir: Path) -> None:
    with running_floor(mosquitto, hook, tmp_path, strip_site(hook.port), STRIP_FLOOR) as floor:
        started = time.monotonic()
        token = floor.token_for("lead-wang", ["shift_lead"])
        en = open_page(browser, floor, DESKTOP, "en-GB", mobile=False, token=token, timezone=TZ)
        zh = open_page(browser, floor, PHONE, "zh-CN", mobile=True, token=token, timezone=TZ)
        # 2.0 kW kettle + 0.3 kW heater + the pc: the strip reads 2.6 kW (over its 10 A); the kettle is the
        # largest load, and cutting it alone brings the strip under 80 %
        floor.plugs.plug_in(PLUGS["plug-s1-kettle"], 2000.0)
        floor.plugs.plug_in(PLUGS["plug-s2-heater"], 300.0)
        floor.plugs.plug_in(STRIP_FLOOR["strip-z1-01"][1], 2600.0)

        def cut_done() -> dict[str, Any] | None:
            found = [a for a in floor.api.get("/api/alarms?state=open").json()
                     if a["rule"] == "elec.strip_overload" and a["severity"] == "critical"]
            return found[0] if found and found[0]["auto_cut"] and all(
                c["state"] == "done" for c in found[0]["auto_cut"]) else None

        alarm = wait_for(cut_done, timeout=60, what="the strip's critical alarm with its cut confirmed")
        assert [(c["device"], c["automatic"], c["why"]) for c in alarm["auto_cut"]] == [
            ("plug-s1-kettle", True, "")], "only the largest load, the kettle"
        assert alarm["cut"] is None, "no delayed cut: nobody could have held this one"
        assert [c for c in floor.commands("plug-s2-heater") + floor.commands("plug-s3-pc")
                if c["action"] == "relay_off"] == [], "the heater is not needed, the pc is essential"
        done_at = local(alarm["auto_cut"][0]["at"])

        # both pages were open before the overload: the card follows without a reload
        for page, text in ((en, f"Power cut automatically: plug plug-s1-kettle — done {done_at}"),
                           (zh, f"自动断电:插座 plug-s1-kettle — 已于 {done_at} 断开")):
            card = page.locator(f'#alarms li.alarm[data-id="{alarm["id"]}"]')
            cut = card.locator(".auto-cut")
            expect(cut).to_have_count(1, timeout=15_000)
            expect(cut).to_have_attribute("data-device", "plug-s1-kettle")
            expect(cut).to_have_attribute("data-cut-state", "done", timeout=15_000)
            expect(cut).to_have_text(text)
            expect(card.locator("button.hold-cut")).to_have_count(0)
        en.screenshot(path=str(artifacts_dir / "live-page-auto-cut.png"), full_page=True)
        zh.screenshot(path=str(artifacts_dir / "live-page-auto-cut-zh.png"), full_page=True)
        assert en.errors == [] and zh.errors == []  # type: ignore[attr-defined]
        print(f"\nstrip cut done at {done_at} (alarm raised {local(alarm['raised_at'])}); "
              f"page test body {time.monotonic() - started:.1f} s")
        for page in (en, zh):
            page.context.close()

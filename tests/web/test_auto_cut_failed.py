"""A failed automatic cut on the live page, in Debian's chromium against the real stack of
tests/server/services/test_delayed_cut.py (Mosquitto, the edge agent with simulated Shelly devices, the server).

Two strips of one zone go critical: one's cut is confirmed by the edge, the other's plug has a welded relay, so
the edge answers that the device never confirmed. The two alarms are one folded row, and that row says
"power cut: 1 FAILED, 1 done" (a supervisor must see the failure without unfolding it, also on a 360 px
phone, in en and 中文); unfolded, the card gives the edge's reason. A command the edge never answers (its edge
is offline) reads FAILED "no answer from the edge" once it expired, not "waiting"."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway import contract
from gateway.broker import EmbeddedBroker
from server.services.commands import alarm_ref
from tests.server.services.conftest import Hook
from tests.server.services.test_delayed_cut import PLUGS, Floor, running_floor
from tests.support.wait import wait_for
from tests.web.test_cut_card import TZ, local, plug_entry, strip_entry, strip_site
from tests.web.test_live_page import DESKTOP, open_page

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture says when it is missing
    from playwright.sync_api import Browser, Page, expect

NARROW = {"width": 360, "height": 780}
"""The narrowest phone the page is made for."""
KETTLE, HEATER = PLUGS["plug-s1-kettle"], PLUGS["plug-s2-heater"]
TWO_STRIPS = {"strip-z1-01": ("strip_meter", "shellystrip-z1-01"), "strip-z1-02": ("strip_meter", "shellystrip-z1-02"),
              "plug-s1-kettle": ("smart_plug", KETTLE), "plug-s2-heater": ("smart_plug", HEATER)}
"""The edge's simulated Shelly devices: two strip meters, the kettle on the first and the heater on the second."""


TWO_STRIP_DEVICES = (strip_entry("strip-z1-01") + strip_entry("strip-z1-02")
                     + plug_entry("plug-s1-kettle", "strip-z1-01") + plug_entry("plug-s2-heater", "strip-z1-02")
                     + plug_entry("plug-e2-fan", "strip-z1-01", edge="e2"))
"""Two 10 A strips, one non-essential plug on each; plug-e2-fan sits on edge e2, which never comes online."""


def two_strip_site(hook_port: int) -> str:
    return strip_site(hook_port, TWO_STRIP_DEVICES)


def critical_strips(floor: Floor, settled: set[str]) -> dict[str, dict[str, Any]] | None:
    """The critical strip alarms by strip, once each one's cut reached a state of `settled`."""
    found = {a["subject"]: a for a in floor.api.get("/api/alarms?state=open").json()
             if a["rule"] == "elec.strip_overload" and a["severity"] == "critical"}
    return found if len(found) == 2 and all(
        a["auto_cut"] and all(c["state"] in settled for c in a["auto_cut"]) for a in found.values()) else None


def no_sideways_scroll(page: Page) -> None:
    """Nothing of the row is cut off or pushes the page wider than the phone."""
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    summary = page.locator("#alarms li.alarm-group .auto-cut-summary")
    assert summary.evaluate("e => e.scrollWidth <= e.clientWidth")
    box = summary.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"]


def test_the_folded_row_says_a_cut_failed_and_the_card_gives_the_edges_reason(
        browser: Browser, mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path, artifacts_dir: Path) -> None:
    with running_floor(mosquitto, hook, tmp_path, two_strip_site(hook.port), TWO_STRIPS) as floor:
        token = floor.token_for("lead-wang", ["shift_lead"])
        en = open_page(browser, floor, NARROW, "en-GB", mobile=True, token=token, timezone=TZ)
        zh = open_page(browser, floor, NARROW, "zh-CN", mobile=True, token=token, timezone=TZ)
        floor.plugs.welded.add(HEATER)  # the heater's relay does not open: the edge reports the cut failed
        floor.plugs.plug_in(KETTLE, 2000.0)
        floor.plugs.plug_in(HEATER, 2000.0)
        for strip in ("shellystrip-z1-01", "shellystrip-z1-02"):
            floor.plugs.plug_in(strip, 2600.0)

        alarms = wait_for(lambda: critical_strips(floor, {"done", "failed"}), timeout=60,
                          what="both strips critical, each cut answered by the edge")
        kettle_cut, = alarms["strip-z1-01"]["auto_cut"]
        heater_cut, = alarms["strip-z1-02"]["auto_cut"]
        assert (kettle_cut["device"], kettle_cut["state"]) == ("plug-s1-kettle", "done")
        assert (heater_cut["device"], heater_cut["state"]) == ("plug-s2-heater", "failed")
        assert heater_cut["why"] == "no confirmation from device", "the edge's own reason"

        # folded: one row for the two alarms, and it says that one cut failed
        for page, text in ((en, "power cut: 1 FAILED, 1 done"), (zh, "自动断电:1 个失败,1 个已断开")):
            group = page.locator('#alarms li.alarm-group[data-rule="elec.strip_overload"]')
            expect(group).to_have_attribute("data-count", "2", timeout=15_000)
            summary = group.locator(".group-toggle .auto-cut-summary")
            expect(summary).to_have_attribute("data-cut-state", "failed", timeout=15_000)
            expect(summary).to_have_text(text)
            expect(summary).to_have_attribute("data-failed", "1")
            expect(group.locator("li.alarm")).to_have_count(0)
            no_sideways_scroll(page)
        en.screenshot(path=str(artifacts_dir / "live-page-auto-cut-group-failed.png"), full_page=True)
        zh.screenshot(path=str(artifacts_dir / "live-page-auto-cut-group-failed-zh.png"), full_page=True)

        # unfolded: the failed card names the plug and gives the edge's reason, the other its confirmation
        heater_id, kettle_id = alarms["strip-z1-02"]["id"], alarms["strip-z1-01"]["id"]
        for page, failed, done in (
                (en, "Power cut automatically: plug plug-s2-heater — FAILED: no confirmation from device",
                 f"Power cut automatically: plug plug-s1-kettle — done {local(kettle_cut['at'])}"),
                (zh, "自动断电:插座 plug-s2-heater — 失败:插座未确认断开",
                 f"自动断电:插座 plug-s1-kettle — 已于 {local(kettle_cut['at'])} 断开")):
            page.locator('#alarms li.alarm-group[data-rule="elec.strip_overload"] button.group-toggle').click()
            cut = page.locator(f'#alarms li.alarm[data-id="{heater_id}"] .auto-cut')
            expect(cut).to_have_attribute("data-cut-state", "failed")
            expect(cut).to_have_attribute("data-device", "plug-s2-heater")
            expect(cut).to_have_text(failed)
            expect(page.locator(f'#alarms li.alarm[data-id="{kettle_id}"] .auto-cut')).to_have_text(done)
        assert en.errors == [] and zh.errors == []  # type: ignore[attr-defined]
        for page in (en, zh):
            page.context.close()


def test_a_cut_the_edge_never_answered_reads_failed_once_it_expired(
        browser: Browser, mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path) -> None:
    with running_floor(mosquitto, hook, tmp_path, two_strip_site(hook.port), TWO_STRIPS) as floor:
        assert floor.server is not None
        token = floor.token_for("lead-wang", ["shift_lead"])
        en = open_page(browser, floor, DESKTOP, "en-GB", mobile=False, token=token, timezone=TZ)
        floor.plugs.plug_in(KETTLE, 2000.0)
        floor.plugs.plug_in(HEATER, 2000.0)
        for strip in ("shellystrip-z1-01", "shellystrip-z1-02"):
            floor.plugs.plug_in(strip, 2600.0)
        alarms = wait_for(lambda: critical_strips(floor, {"done"}), timeout=60,
                          what="both strips critical, each cut confirmed by the edge")
        strip = alarms["strip-z1-01"]

        # the fan's cut goes to edge e2, which is offline: sent as OverloadCut sends one (safety, the alarm's
        # ref), with a short life so that it expires within the test
        commands = floor.server.app.state.runtime.commands
        sent = commands.send("plug-e2-fan", contract.Action.RELAY_OFF, "elec.strip_overload critical", "system",
                             safety=True, ref=alarm_ref(strip["id"]), ttl=timedelta(seconds=3))
        cut = en.locator(f'#alarms li.alarm[data-id="{strip["id"]}"] .auto-cut[data-device="plug-e2-fan"]')
        en.locator('#alarms li.alarm-group[data-rule="elec.strip_overload"] button.group-toggle').click()
        expect(cut).to_have_attribute("data-cut-state", "cutting", timeout=15_000)
        sent_at = local(sent.issued_at.isoformat())
        expect(cut).to_have_text(f"Power cut automatically: plug plug-e2-fan — waiting for the plug (sent {sent_at})")
        # nobody answers: once the command expired the card says so, on the page's poll
        expect(cut).to_have_attribute("data-cut-state", "failed", timeout=20_000)
        expect(cut).to_have_text("Power cut automatically: plug plug-e2-fan — FAILED: no answer from the edge "
                                 "before the command expired: check the plug by hand")
        assert [c["status"] for c in floor.commands("plug-e2-fan")] == ["sent"], "never answered"
        # folded again, the row carries it
        en.locator('#alarms li.alarm-group[data-rule="elec.strip_overload"] button.group-toggle').click()
        expect(en.locator("#alarms li.alarm-group .auto-cut-summary")).to_have_text("power cut: 1 FAILED, 2 done")
        zh = open_page(browser, floor, NARROW, "zh-CN", mobile=True, token=token, timezone=TZ)
        zh.locator('#alarms li.alarm-group[data-rule="elec.strip_overload"] button.group-toggle').click()
        zh_cut = zh.locator(f'#alarms li.alarm[data-id="{strip["id"]}"] .auto-cut[data-device="plug-e2-fan"]')
        expect(zh_cut).to_have_text("自动断电:插座 plug-e2-fan — 失败:网关在指令过期前未应答,请到现场检查插座")
        assert en.errors == [] and zh.errors == []  # type: ignore[attr-defined]
        en.context.close()
        zh.context.close()

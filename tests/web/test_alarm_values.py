"""An alarm's values on the live page, in Debian's chromium against the whole stack (real broker, server, edge):
a strip overload raised at 12 A that reached 12.4 A and then cleared at 3.6 A shows all three with the unit,
labelled, in both languages, instead of a bare "value 3.6" that would read as if the strip was never over."""

from __future__ import annotations

import contextlib
from pathlib import Path

from tests.e2e.conftest import Stack
from tests.e2e.test_skeleton import publish_strip
from tests.web.test_live_page import PHONE, open_page

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture says when it is missing
    from playwright.sync_api import Browser, expect


def test_a_cleared_overload_shows_its_raised_worst_and_clearing_value_with_the_unit(
        browser: Browser, stack: Stack, artifacts_dir: Path) -> None:
    page = open_page(browser, stack, PHONE, "en-GB", mobile=True)
    # raised at 120 % of the 10 A strip (the shortened 3 s hold), worse at 124 % (under the 125 % surge that
    # would make it critical), then under the 95 % clear line past the shortened 2 s clear hold
    publish_strip(stack, amps=12.0, seconds=5)
    alarm = stack.wait_for("/api/alarms?state=open", lambda body: any(
        a["rule"] == "elec.strip_overload" for a in body), timeout=20)
    alarm_id = next(a["id"] for a in alarm if a["rule"] == "elec.strip_overload")
    publish_strip(stack, amps=12.4, seconds=3)
    publish_strip(stack, amps=3.6, seconds=4)
    cleared = stack.wait_for(f"/api/alarms/{alarm_id}", lambda a: a["state"] == "cleared_unacked", timeout=20)
    assert (cleared["raised_value"], cleared["peak_value"], cleared["value"], cleared["unit"]) == (12.0, 12.4, 3.6, "A")

    row = page.locator(f'#alarms li.alarm[data-id="{alarm_id}"]')
    expect(row).to_have_attribute("data-state", "cleared_unacked", timeout=15_000)
    values = row.locator(".values")
    expect(values.locator('[data-value="raised"]')).to_have_text("raised at 12 A")
    expect(values.locator('[data-value="peak"]')).to_have_text("worst 12.4 A")
    expect(values.locator('[data-value="cleared"]')).to_have_text("cleared at 3.6 A")
    expect(values.locator(".value")).to_have_count(3)  # no bare "value 3.6" beside them
    assert "3.6" not in (row.locator(".meta").text_content() or "")
    # the three stay on the row's own line, under the heading, on a phone
    box = values.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "alarm-values-cleared-phone.png"), full_page=True)

    page.locator("#lang").click()
    expect(values.locator('[data-value="raised"]')).to_have_text("触发值 12 A")
    expect(values.locator('[data-value="peak"]')).to_have_text("最严重 12.4 A")
    expect(values.locator('[data-value="cleared"]')).to_have_text("恢复时 3.6 A")
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_overload_that_turned_critical_shows_when_it_turned_not_only_its_first_raise(
        browser: Browser, stack: Stack, artifacts_dir: Path) -> None:
    """An alarm that escalated (or came back) is the same alarm with its first raise time: a supervisor who
    opens the page from the critical push must see when it turned critical, with the first raise beside it."""
    page = open_page(browser, stack, PHONE, "en-GB", mobile=True)
    publish_strip(stack, amps=12.0, seconds=5)  # major past the shortened 3 s hold, under the 125 % surge
    alarms = stack.wait_for("/api/alarms?state=open", lambda body: any(
        a["rule"] == "elec.strip_overload" for a in body), timeout=20)
    alarm_id = next(a["id"] for a in alarms if a["rule"] == "elec.strip_overload")
    publish_strip(stack, amps=13.0, seconds=13)  # 130 %: past the 125 % surge held 10 s, critical
    alarm = stack.wait_for(f"/api/alarms/{alarm_id}", lambda a: a["severity"] == "critical", timeout=20)
    assert alarm["last_raised_at"] and alarm["last_raised_at"] > alarm["raised_at"]  # what the page must say

    row = page.locator(f'#alarms li.alarm[data-id="{alarm_id}"]')
    expect(row).to_have_attribute("data-severity", "critical", timeout=15_000)
    again, first = (page.evaluate("iso => time(iso)", alarm[k]) for k in ("last_raised_at", "raised_at"))
    assert again != first  # seconds apart at least: the test can tell them
    raised = row.locator(".raised")
    expect(raised).to_have_text(f"raised again {again} (first {first})")
    expect(raised).to_have_attribute("data-at", alarm["last_raised_at"])
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "alarm-raised-again-phone.png"), full_page=True)
    page.locator("#lang").click()
    expect(raised).to_have_text(f"再次触发 {again}(首次 {first})")
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()  # its live stream ends before the server stops

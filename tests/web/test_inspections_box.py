"""The live page's "Inspections due today" box in a real browser against the whole stack (tests/e2e): maintenance
opening the page finds today's duties in the site's days, whatever the phone's time zone. The daily fire patrol
is due by the site's midnight (00:00 of the next day) and is today's; a check due tomorrow morning is not. A
site-wide task says so in the page's language, never the bare id "site"."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.broker import EmbeddedBroker
from tests.e2e.conftest import Stack
from tests.server.services.conftest import Hook
from tests.web.floors import DEMO, running_floor
from tests.web.test_live_page import PHONE, open_page

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture (conftest) says so
    from playwright.sync_api import Browser, expect

SITE_TZ = ZoneInfo("Asia/Shanghai")
"""tests/e2e/site.yaml's time zone."""


def site_day(iso: str) -> str:
    """The site's day a deadline belongs to: one at 00:00 ends the day before."""
    return (datetime.fromisoformat(iso) - timedelta(milliseconds=1)).astimezone(SITE_TZ).date().isoformat()


def test_the_box_lists_todays_duties_by_the_sites_day_with_the_patrol_due_at_midnight(
        browser: Browser, stack: Stack) -> None:
    due = stack.client.get("/api/inspections?status=due").json()
    today = datetime.now(UTC).astimezone(SITE_TZ).date().isoformat()
    expected = sorted(str(t["id"]) for t in due if site_day(t["due_at"]) <= today)
    patrol = next(t for t in due if t["schedule"] == "fire_patrol")
    assert datetime.fromisoformat(patrol["due_at"]).astimezone(SITE_TZ).time().isoformat() == "00:00:00"
    assert str(patrol["id"]) in expected, "today's patrol, due by the site's midnight"
    assert len(expected) < len(due), "the stack holds duties of later days too (this week's, this month's)"

    # a phone in the site's zone and one set to California (15 or 16 h behind): the same list
    for locale, tz, whole_site in (("zh-CN", "Asia/Shanghai", "全场"), ("en-GB", "America/Los_Angeles", "whole site")):
        page = open_page(browser, stack, PHONE, locale, mobile=True, timezone=tz)
        box = page.locator("#inspections")
        expect(box.locator("li[data-task]").first).to_be_visible(timeout=15_000)
        assert sorted(box.locator("li[data-task]").evaluate_all("els => els.map(e => e.dataset.task)")) == expected
        shown = box.locator(f'li[data-task="{patrol["id"]}"] .meta')
        expect(shown).to_contain_text(f" · {whole_site} · ")
        expect(box).not_to_contain_text(" · site · ")
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()



def test_the_box_names_a_task_without_assignee_by_its_role_in_the_pages_language(
        browser: Browser, stack: Stack) -> None:
    due = stack.client.get("/api/inspections?status=due").json()
    page = open_page(browser, stack, PHONE, "zh-CN", mobile=True, timezone="Asia/Shanghai")
    box = page.locator("#inspections")
    expect(box.locator("li[data-task]").first).to_be_visible(timeout=15_000)
    assert any(t["assignee"] is None and t["role"] == "it" for t in due), "the backup check, IT's"
    for task in due:  # a site without people: nobody is assigned, the role is
        shown = box.locator(f'li[data-task="{task["id"]}"] .meta')
        if task["assignee"] is None and shown.count():
            expect(shown).not_to_contain_text(f" · {task['role']}")
    expect(box).to_contain_text(" · 信息系统")
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_a_name_the_account_may_not_see_reads_hidden_in_the_pages_language(
        browser: Browser, mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path) -> None:
    with running_floor(mosquitto, hook.port, tmp_path, DEMO, offline_plugs=0) as floor:
        made = floor.api.put("/api/users/fm-li", json={"roles": ["facility_manager"], "service_token": True})
        assert made.status_code == 200, made.text
        token = made.json()["token"]
        due = floor.api.get("/api/inspections?status=due", headers={"Authorization": f"Bearer {token}"}).json()
        assert any(t["assignee"] == "(hidden)" for t in due), "the API hides the assignees from a facility manager"

        page = open_page(browser, floor, PHONE, "zh-CN", mobile=True, token=token, timezone="Asia/Shanghai")
        box = page.locator("#inspections")
        expect(box).to_contain_text("(已隐藏)", timeout=15_000)
        page.locator("#history-open").click()
        expect(page.locator("#history-list")).to_contain_text("(已隐藏)")
        for part in (box, page.locator("#history-list")):
            expect(part).not_to_contain_text("(hidden)")
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()

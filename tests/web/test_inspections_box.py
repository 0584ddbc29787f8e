"""The live page's "Inspections due today" box in a real browser against the whole stack (tests/e2e): maintenance
opening the page finds today's duties in the site's days, whatever the phone's time zone. The daily fire patrol
is due by the site's midnight (00:00 of the next day) and is today's; a check due tomorrow morning is not. A
site-wide task says so in the page's language, never the bare id "site"."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.e2e.conftest import Stack
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

"""The live page's inspection history in a real browser against the whole stack: a maintenance user on a phone
opens it from the inspections box, sees a task completed through the API, downloads its CSV and opens its
printable report, both fetched with the bearer token (never in an address). Screenshots go to artifacts."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from gateway.broker import EmbeddedBroker, free_port
from server.runtime import utc_now
from server.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN, DEVICES, HERE, Stack
from tests.e2e.test_skeleton import publish_strip
from tests.support.edge import edge_config
from tests.support.server import serve
from tests.web.test_live_page import FILL, PHONE, open_page

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture (conftest) says so
    from playwright.sync_api import Browser, expect

FINDING = "cable cover cracked by desk 3"


class LaterClock:
    """The server's clock, moved on by the test: a task's deadline passes without waiting for it."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utc_now() + self.ahead


@pytest.fixture
def later(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[Stack, LaterClock]]:
    """The e2e stack (tests/e2e/conftest.py) with a server clock the test moves on."""
    clock = LaterClock()
    broker_settings = mosquitto.client_settings()
    settings = Settings(site_file=HERE / "site.yaml", data_dir=tmp_path / "server", mqtt=broker_settings,
                        admin_token=ADMIN_TOKEN, http_port=free_port(), gap_window_s=2)
    with serve(settings, clock=clock) as running:
        client = running.client(ADMIN_TOKEN)
        agent = EdgeAgent(edge_config("e2e", "edge-e2e", broker_settings, tmp_path / "edge-buffer.sqlite", DEVICES))
        agent.start()
        yield Stack(running.url, client, mosquitto, agent, running.server), clock
        agent.stop()
    client.close()


def open_task(stack: Stack) -> dict[str, Any]:
    """The inspection an overload owes once its alarm has ended (server/domain/inspections/triggers.py),
    left open; the task as the API lists it."""
    publish_strip(stack, amps=12.4, seconds=5)  # past the (shortened) 3 s hold of a 10 A strip
    alarms = stack.wait_for("/api/alarms?state=open", lambda body: any(
        a["rule"] == "elec.strip_overload" for a in body), timeout=20)
    alarm = next(a for a in alarms if a["rule"] == "elec.strip_overload")
    publish_strip(stack, amps=1.0, seconds=3)  # back under the limit past the 2 s clear hold
    closed = stack.client.post(f"/api/alarms/{alarm['id']}/close", json={"reason": "heater removed"})
    assert closed.status_code == 200, closed.text
    tasks = stack.wait_for("/api/inspections?status=open", lambda body: any(
        t["device"] == "strip-z1-01" for t in body), timeout=20)
    task: dict[str, Any] = next(t for t in tasks if t["device"] == "strip-z1-01")
    return task


def complete_a_task(stack: Stack) -> dict[str, Any]:
    """The inspection an overload owes once its alarm has ended (server/domain/inspections/triggers.py),
    completed through the API (as admin) with one failed item; the task as the API answers."""
    publish_strip(stack, amps=12.4, seconds=5)  # past the (shortened) 3 s hold of a 10 A strip
    alarms = stack.wait_for("/api/alarms?state=open", lambda body: any(
        a["rule"] == "elec.strip_overload" for a in body), timeout=20)
    alarm = next(a for a in alarms if a["rule"] == "elec.strip_overload")
    publish_strip(stack, amps=1.0, seconds=3)  # back under the limit past the 2 s clear hold
    closed = stack.client.post(f"/api/alarms/{alarm['id']}/close", json={"reason": "heater removed"})
    assert closed.status_code == 200, closed.text
    tasks = stack.wait_for("/api/inspections?status=open", lambda body: any(
        t["device"] == "strip-z1-01" for t in body), timeout=20)
    task = next(t for t in tasks if t["device"] == "strip-z1-01")
    items = stack.client.get(f"/api/inspections/{task['id']}").json()["items"]
    results = [{"id": item["id"], "result": "pass", "note": ""} for item in items]
    results[0] = {"id": items[0]["id"], "result": "fail", "note": FINDING}
    done = stack.client.post(f"/api/inspections/{task['id']}/complete", json={"items": results, "note": "walked"})
    assert done.status_code == 200, done.text
    completed: dict[str, Any] = done.json()["task"]
    assert completed["status"] == "done"
    return completed


def test_maintenance_reads_the_history_downloads_its_csv_and_opens_the_report_on_a_phone(
        browser: Browser, stack: Stack, artifacts_dir: Path) -> None:
    task = complete_a_task(stack)
    made = stack.client.put("/api/users/maint-1", json={"roles": ["maintenance"], "service_token": True})
    assert made.status_code == 200, made.text
    token = made.json()["token"]

    page = open_page(browser, stack, PHONE, "zh-CN", mobile=True, token=token)
    addresses: list[str] = []
    page.context.on("request", lambda r: addresses.append(r.url))
    entry = page.locator("#history-open")
    expect(entry).to_have_text("巡检记录")
    expect(page.locator("#history")).to_be_hidden()
    entry.click()
    row = page.locator(f'#history-list li[data-task="{task["id"]}"]')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "done")
    expect(row).to_contain_text(task["what_zh"] or task["what"])
    expect(row).to_contain_text("admin")  # who signed
    expect(row.locator(".failed")).to_have_text("1 项不合格")
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "live-page-phone-history.png"), full_page=True)
    # readable on a phone: nothing in the panel is wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    with page.expect_download() as download_info:
        page.locator("#history-csv").click()
    download = download_info.value
    assert download.suggested_filename == "inspections.csv"
    csv = Path(download.path()).read_text(encoding="utf-8-sig")
    assert csv.startswith("task_id,schedule,")
    assert any(line.startswith(f"{task['id']},") and FINDING in line for line in csv.splitlines())

    with page.context.expect_page() as tab_info:
        page.locator("#history-report").click()
    report = tab_info.value
    # opened blank within the tap (a phone's popup blocker), then sent to the report's blob
    report.wait_for_url(lambda address: address.startswith("blob:"))
    expect(report.locator("body")).to_contain_text(FINDING)
    expect(report.locator("body")).to_contain_text(task["what"])
    report.screenshot(path=str(artifacts_dir / "live-page-phone-history-report.png"))
    report.close()

    # The token went in headers only: no address the page asked for carries it.
    assert addresses and not [a for a in addresses if token in a]

    page.locator("#lang").click()
    expect(entry).to_have_text("Inspection history")
    expect(page.locator("#history-title")).to_have_text("Inspection history (last 30 days)")
    expect(row.locator(".failed")).to_have_text("1 failed")
    page.locator("#history-close").click()
    expect(page.locator("#history")).to_be_hidden()
    expect(entry).to_have_attribute("aria-expanded", "false")
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_overdue_task_reads_overdue_in_the_history_not_open(
        browser: Browser, later: tuple[Stack, LaterClock], artifacts_dir: Path) -> None:
    """An open task past its deadline is what a supervisor must chase: the API says `overdue`
    (docs/inspections.md), and the history row must say so in both languages, marked apart from "open"."""
    stack, clock = later
    task = open_task(stack)
    clock.ahead = datetime.fromisoformat(task["due_at"]) - utc_now() + timedelta(minutes=5)
    history = stack.client.get("/api/inspections/history").json()
    assert [r["overdue"] for r in history if r["task_id"] == task["id"]] == [True]  # what the page must say

    page = open_page(browser, stack, PHONE, "en-GB", mobile=True)
    page.locator("#history-open").click()
    row = page.locator(f'#history-list li[data-task="{task["id"]}"]')
    expect(row).to_have_attribute("data-status", "open")
    expect(row).to_have_attribute("data-overdue", "true")
    status = row.locator(".task-status")
    expect(status).to_have_text("overdue, not signed")
    expect(status).to_have_class("task-status overdue")
    # nobody signed it: no "no failed items", which would read as checked and passed
    expect(row).not_to_contain_text("no failed items")
    # the time of an unsigned task is its deadline, and says so (a bare date read as when it was done)
    expect(row.locator(".meta").first).to_have_text(re.compile(r"^due \d\d/\d\d/\d{4}, \d\d:\d\d · "))
    # drawn apart from an open row: the critical red of the inspections box's overdue tasks, not the meta grey
    assert status.evaluate("e => getComputedStyle(e).color") == FILL["critical"]
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "live-page-phone-history-overdue.png"), full_page=True)
    page.locator("#lang").click()
    expect(status).to_have_text("逾期未完成")
    expect(row.locator(".meta").first).to_have_text(re.compile(r"^截止 \d{4}/\d\d/\d\d \d\d:\d\d · "))
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()  # its live stream ends before the server stops


def test_the_history_entry_is_not_there_without_a_valid_sign_in(browser: Browser, stack: Stack) -> None:
    # GET /api/inspections/history is for every signed-in role (docs/api.md); a page whose token the server
    # refuses shows the sign-in and no way to the history.
    context = browser.new_context(viewport={"width": PHONE["width"], "height": PHONE["height"]}, locale="en-GB",
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(f"{stack.url}/#token=not-a-token")
    expect(page.locator("#login")).to_be_visible(timeout=15_000)
    expect(page.locator("#history-open")).to_be_hidden()
    expect(page.locator("#history")).to_be_hidden()
    assert "/api/me" in " ".join(asked)  # the page did ask, and was refused
    assert not [a for a in asked if "/api/inspections/history" in a]
    context.close()

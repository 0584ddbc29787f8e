"""The live page's "unknown devices" panel in Debian's chromium against the real stack: a Tasmota plug
the edge does not know announces itself on the floor broker, and the page (no reload) lists it with the
edge and site entries that adopt it, the same text the API gives; a device that names itself with HTML
is shown as text. The panel is hidden while there is nothing to adopt, and follows the language switch."""

from __future__ import annotations

import contextlib
from pathlib import Path

from gateway.mqtt import MqttClient
from simulators.vendors import tasmota
from tests.e2e.conftest import Stack
from tests.support.wait import wait_until
from tests.web.test_live_page import DESKTOP, open_page

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture says when it is missing
    from playwright.sync_api import Browser, expect

HOSTILE = "x<img src=x onerror=document.title='owned'>"
"""A Tasmota topic is whatever the device's owner typed: the page must never read it as HTML."""


def test_the_page_lists_unknown_devices_with_their_drafts(browser: Browser, stack: Stack, artifacts_dir: Path) -> None:
    page = open_page(browser, stack, DESKTOP, "en-GB", mobile=False)
    expect(page.locator("#unknown-card")).to_be_hidden()

    client = MqttClient(stack.broker.client_settings(), "sim-strangers")
    client.start()
    assert client.wait_connected(10)
    try:
        for topic in ("athom-S009", HOSTILE):
            item = tasmota.encode_lwt(topic, True)
            client.publish(item.topic, item.payload, 1, True)
        api = wait_until(lambda: (d := stack.client.get("/api/unknown-devices").json()) and len(d) == 2 and d,
                         timeout=30)
    finally:
        client.stop()
    assert api, "the edge's unknown_device reports never reached the API"
    plug = next(d for d in api if d["address"] == "athom-S009")

    card = page.locator("#unknown-card")
    expect(card).to_be_visible(timeout=15_000)  # by the panel's poll: no reload
    expect(card.locator("#unknown-title-text")).to_have_text("Unknown devices")
    expect(card.locator("#unknown-count")).to_have_text("(2)")
    item = card.locator('li[data-device="tasmota.athom-s009"]')
    expect(item.locator("strong")).to_have_text("athom-S009")
    expect(item).to_contain_text("edge edge-e2e")
    expect(item).to_contain_text("announced on tele/athom-S009/LWT")
    item.locator("summary").click()
    drafts = item.locator("pre.adopt-yaml")
    expect(drafts).to_have_count(2)
    assert drafts.nth(0).text_content() == plug["edge_yaml"]
    assert drafts.nth(1).text_content() == plug["site_yaml"]
    expect(item.locator(".meta").filter(has_text="edge file (edge edge-e2e), under devices:")).to_have_count(1)
    expect(item.locator(".adopt-guess")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "live-page-unknown-devices.png"), full_page=True)

    # The hostile name is text: no element made from it, no script run.
    hostile = card.locator("li.unknown-device").filter(has_text="onerror")
    expect(hostile.locator("strong")).to_have_text(HOSTILE)
    expect(card.locator("img")).to_have_count(0)
    assert page.title() != "owned"

    # The language switch re-renders the panel; the opened drafts stay open across the poll's re-render.
    page.locator("#lang").click()
    expect(card.locator("#unknown-title-text")).to_have_text("未登记设备")
    expect(item.locator("details")).to_have_attribute("open", "")
    assert page.errors == []  # type: ignore[attr-defined]

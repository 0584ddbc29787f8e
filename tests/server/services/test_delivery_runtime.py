"""The server's wiring of delivery: outcomes reach the rule engine without a delivering thread waiting
for the ingest thread. Real Runtime (embedded broker, SQLite, the ingest thread), an SMTP server and
a webhook receiver on 127.0.0.1, and a safety officer's channel on a port nobody listens on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from gateway.broker import free_port
from gateway.contract import Severity
from server.domain.findings import Finding, Transition
from server.domain.notify import url_hash
from server.runtime import Runtime
from server.settings import Settings
from tests.server.services.conftest import Hook, Smtp, site_yaml
from tests.support.wait import wait_for


def test_three_failed_pushes_on_one_channel_raise_sup_notify_channel_through_the_running_server(
        smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """RULES.md §2.7 sup.notify_channel: 3 consecutive failures of one channel. Three critical alarms
    each page the dead channel once; the outcomes are posted to the ingest thread and the alarm is
    raised for that channel, while every other channel's pages were sent."""
    dead = free_port()
    (tmp_path / "site.yaml").write_text(site_yaml(smtp.port, hook.port, dead_port=dead), encoding="utf-8")
    settings = Settings(site_file=tmp_path / "site.yaml", data_dir=tmp_path / "var", admin_token=SecretStr("t"),
                        mqtt_client_id="delivery-runtime")
    runtime = Runtime(settings)
    runtime.start()
    try:
        now = datetime.now(UTC)
        runtime.alarms.commit([
            Finding("fire.smoke_alarm", Transition.RAISE, Severity.CRITICAL, "smoke-z1-01", "z1", "r1", None,
                    "smoke", now),
            Finding("elec.strip_overload", Transition.RAISE, Severity.CRITICAL, "strip-z1-00", "z1", "r1", 13.0,
                    "Strip overloaded at 130 %", now),
            Finding("elec.plug_overcurrent", Transition.RAISE, Severity.CRITICAL, "plug-z1-pc", "z1", "r1", 17.0,
                    "Plug over 16 A", now),
        ], now)
        channel = url_hash(f"json://127.0.0.1:{dead}/dead")
        raised = wait_for(lambda: [a for a in runtime.alarms.open_alarms() if a.rule == "sup.notify_channel"],
                      timeout=30, what="sup.notify_channel")
        wait_for(lambda: len(hook.at("/supervisor")) >= 3, timeout=10, what="the supervisor's pages")
        # the failed critical pages go to the fallback channel too, on its own lane: wait until it answered
        wait_for(lambda: any(r["recipient"] == "fallback" and r["status"] == "sent" for r in runtime.notify.log_of()),
             timeout=30, what="the fallback channel's page")
        rows = runtime.notify.log_of()
    finally:
        runtime.stop()
    assert [(a.subject, a.severity) for a in raised] == [(channel, Severity.MAJOR)], raised
    dead_rows = [r for r in rows if r["channel"] == channel and not r["fallback"]]
    assert len(dead_rows) == 3 and all(r["attempts"] >= 1 and r["status"] == "queued" for r in dead_rows)
    assert all(not d["ok"] for r in dead_rows for d in r["deliveries"])
    sent = [r for r in rows if r["status"] == "sent"]
    assert {r["recipient"] for r in sent} >= {"supervisor", "fallback"}, {r["recipient"] for r in sent}

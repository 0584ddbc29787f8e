"""The hourly HR pass reads the feed again (RULES.md: reconcile hourly): a leaver entered after the server
started is an alarm at the next pass, in PostgreSQL, without a restart. A feed that turns unreadable or
suddenly empty keeps the last good data, says so in the log and in /api/health, and the next good read
recovers. Real parts: a server runtime on PostgreSQL and Mosquitto; the pass is driven by hand."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.broker import EmbeddedBroker
from server.api.routes.system import health
from server.domain.rules.access import book
from server.runtime import Runtime
from server.settings import Settings
from tests.e2e.conftest import HERE

RULE = "access.leaver_badge_active"


@pytest.fixture
def served(mosquitto: EmbeddedBroker, postgres_schema: str, tmp_path: Path) -> Iterator[Runtime]:
    site = tmp_path / "site.yaml"
    shutil.copy(HERE / "site.yaml", site)
    with site.open("a", encoding="utf-8") as out:
        out.write("people:\n  - {id: p-zhao, badge: B1002, roles: [operator]}\n"
                  "  - {id: v-guest, is_visitor: true, host: p-zhao}\n")
    (tmp_path / "hr.yaml").write_text("leavers: []\n", encoding="utf-8")
    settings = Settings(site_file=site, data_dir=tmp_path / "var", mqtt=mosquitto.client_settings(),
                        database_url=postgres_schema, admin_token=SecretStr("t"), mqtt_client_id="hr-server")
    before = set(threading.enumerate())
    runtime = Runtime(settings)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()
        # The inspection scheduler's first plan may still be writing (its shutdown does not wait): let the
        # threads the runtime started end before the schema is dropped under them.
        for thread in set(threading.enumerate()) - before:
            thread.join(30)


def _leaver_alarms(runtime: Runtime) -> list[str]:
    """Subjects of the raised (not cleared) leaver alarms, as PostgreSQL has them."""
    return [a.subject for a in runtime.repository.open_alarms() if a.rule == RULE and a.cleared_at is None]


def _hr(runtime: Runtime) -> dict[str, object]:
    return health(runtime).dependencies["hr"]


def _when(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_hourly_pass_reads_the_feed_again_and_keeps_the_last_good_one(
    served: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    runtime, hr_file = served, tmp_path / "hr.yaml"
    assert runtime.hr_sync is not None
    runtime.hr_sync.sync()
    assert _leaver_alarms(runtime) == []

    # HR enters today's leaver after the server started: the next pass sees it, no restart.
    hr_file.write_text(f"leavers:\n  - {{person: p-zhao, left_at: '{_when(-timedelta(hours=2))}'}}\n",
                       encoding="utf-8")
    runtime.hr_sync.sync()
    assert _leaver_alarms(runtime) == ["p-zhao"], "a leaver entered after start was not seen by the hourly pass"
    assert _hr(runtime)["up"] is True

    # A broken upload: the leaver stays a leaver (last good data), one line names file, line and field.
    hr_file.write_text("leavers:\n  - {person: p-zhao, left_at: 'last tuesday'}\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="server.services.hr_sync"):
        runtime.hr_sync.sync()
    assert _leaver_alarms(runtime) == ["p-zhao"]
    state = _hr(runtime)
    assert state["up"] is False and health(runtime).status == "degraded"
    error = str(state["error"])
    assert error.startswith(f"{hr_file}:2: leavers[0].left_at: ") and "\n" not in error
    assert "kept the last good feed" in error
    assert [r.getMessage() for r in caplog.records] == [f"hr: {error}"]

    # A truncated upload (the file is empty): the leavers keep their last value, not a wholesale wipe;
    # health says so as a warning, the feed is up.
    hr_file.write_text("", encoding="utf-8")
    runtime.hr_sync.sync()
    assert _leaver_alarms(runtime) == ["p-zhao"]
    state = _hr(runtime)
    assert state["up"] is True and state["error"] is None
    assert state["kept"] == [f"{hr_file}:1: leavers: missing, but the last good feed listed 1: kept those (a "
                             "truncated upload?); restore the section, or write `leavers: []` to clear it on purpose"]

    # The next good read recovers: the badge came back, the alarm clears, health is up again.
    hr_file.write_text(f"leavers:\n  - {{person: p-zhao, left_at: '{_when(-timedelta(hours=2))}', "
                       "badge_collected: true}\n", encoding="utf-8")
    runtime.hr_sync.sync()
    assert _leaver_alarms(runtime) == []
    assert _hr(runtime) == {"up": True, "unknown_leavers": 0, "error": None, "kept": []}


def test_a_withdrawn_or_extended_visitor_approval_is_seen_at_the_next_pass(served: Runtime, tmp_path: Path) -> None:
    runtime, hr_file = served, tmp_path / "hr.yaml"
    assert runtime.hr_sync is not None

    def approvals() -> list[tuple[str, datetime, datetime, bool]]:
        seen: list[tuple[str, datetime, datetime, bool]] = []
        runtime.ingest.call(lambda engine, _now: seen.extend(book(engine.ctx).approvals) or [])
        return seen

    start, until = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
    hr_file.write_text("visitor_approvals:\n"
                       f"  - {{visitor: v-guest, approved_by: p-zhao, from: '{start:%Y-%m-%dT%H:%M:%SZ}', "
                       f"until: '{until:%Y-%m-%dT%H:%M:%SZ}'}}\n", encoding="utf-8")
    runtime.hr_sync.sync()
    assert [a[0] for a in approvals()] == ["v-guest"], "an approval entered after start was not seen"

    longer = until + timedelta(hours=3)
    hr_file.write_text(hr_file.read_text(encoding="utf-8").replace(f"{until:%Y-%m-%dT%H:%M:%SZ}",
                                                                    f"{longer:%Y-%m-%dT%H:%M:%SZ}"), encoding="utf-8")
    runtime.hr_sync.sync()
    assert [a[2] for a in approvals()] == [longer.replace(microsecond=0)]

    hr_file.write_text("visitor_approvals: []\n", encoding="utf-8")  # withdrawn on purpose: applied
    runtime.hr_sync.sync()
    assert approvals() == []

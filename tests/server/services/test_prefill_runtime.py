"""Pre-fill on real parts: a real server runtime (Mosquitto, ingest, SQLite, the embedded series store),
readings published by an "edge" over MQTT, then the checklist's suggestions and what the person signed."""

from __future__ import annotations

import csv
import io
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from server.domain.inspections import CompleterView
from server.runtime import Runtime
from server.services.inspections import CSV_HEADER, HistoryQuery
from server.services.live import DeviceLive
from server.settings import Settings
from tests.support.inspections import EXAMPLE, FakeClock
from tests.support.wait import wait_until


@pytest.fixture
def served(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[Runtime, MqttClient, FakeClock]]:
    shutil.copy(EXAMPLE, tmp_path / "site.yaml")
    # Yesterday 20:05 on the site (UTC+8): p-wang's and p-li's day shift ended five minutes ago.
    day = (datetime.now(UTC).astimezone(_tz()) - timedelta(days=1)).date()
    clock = FakeClock(datetime(day.year, day.month, day.day, 20, 5, tzinfo=_tz()).astimezone(UTC))
    settings = Settings(site_file=tmp_path / "site.yaml", data_dir=tmp_path / "var", mqtt=mosquitto.client_settings(),
                        admin_token=SecretStr("t"), mqtt_client_id="prefill-server")
    runtime = Runtime(settings, clock=clock)
    runtime.start()
    edge = MqttClient(mosquitto.client_settings(), "prefill-edge")
    edge.start()
    try:
        # The edge publishes once the server's subscriptions are granted (health: broker.subscribed).
        assert edge.wait_connected(10) and runtime.mqtt is not None and runtime.mqtt.wait_subscribed(10)
        yield runtime, edge, clock
    finally:
        edge.stop()
        runtime.stop()


def _tz() -> ZoneInfo:
    return ZoneInfo("Asia/Shanghai")


def _local(clock: FakeClock, hour: int, minute: int) -> datetime:
    day = clock.now.astimezone(_tz()).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=_tz()).astimezone(UTC)


def _publish(edge: MqttClient, name: str, seq: int, readings: list[tuple[str, datetime, dict[str, float | bool]]]
             ) -> None:
    sent = max(ts for _, ts, _ in readings)
    edge.publish_payload(contract.edge_topic("hq", name, contract.Channel.TELEMETRY), contract.TelemetryBatch(
        edge=name, seq=seq, sent_at=sent,
        readings=[contract.Reading(device=d, ts=ts, metrics=m) for d, ts, m in readings]))


def test_checklist_is_prefilled_from_published_readings(served: tuple[Runtime, MqttClient, FakeClock]) -> None:
    runtime, edge, clock = served

    def t(hour: int, minute: int) -> datetime:
        return _local(clock, hour, minute)

    def publish_all() -> None:
        _publish(edge, "edge-f1", 1, [("plug-s001", t(14, 2), {"power_w": 1840.0}),
                                      ("plug-s001", t(14, 10), {"power_w": 60.0})])
        _publish(edge, "edge-f1", 2, [("door-fire1", t(19, 55), {"door_open": True}),
                                      ("plug-s001", t(20, 4), {"power_w": 8.0})])
        _publish(edge, "edge-mr", 1, [("door-mr", t(20, 0), {"door_open": False})])

    def arrived() -> bool:
        return ((runtime.live.device("plug-s001") or _none()).metrics.get("power_w") == 8.0
                and runtime.live.device("door-mr") is not None)

    publish_all()
    assert wait_until(arrived, timeout=30), "the readings never arrived"
    assert runtime.ingest.stats.readings == 5 and runtime.ingest.stats.duplicates == 0
    assert wait_until(lambda: runtime.series.stats().buffered == 0, timeout=10), "series not flushed"

    runtime.inspections.create_due()
    tasks = runtime.inspections.tasks("due")
    (eos,) = [x for x in tasks if x.schedule_id == "eos_self_check" and x.assignee == "p-wang"]
    (lead,) = [x for x in tasks if x.schedule_id == "lead_round" and x.assignee == "p-li"]

    started = time.perf_counter()
    view = runtime.inspections.get(eos.id)
    print(f"opening a pre-filled task took {(time.perf_counter() - started) * 1000:.1f} ms")
    items = {i.id: i for i in view.items}
    since = (eos.run_at - timedelta(hours=24)).astimezone(_tz()).strftime("%Y-%m-%d %H:%M")
    assert items["devices_off"].suggested == "pass"
    assert items["devices_off"].evidence == ("plug-s001 8 W at 20:04 (standby ≤ 20 W)",)
    assert items["no_private_appliance"].suggested == "fail"
    assert f"plug-s001 max 1,840 W at 14:02 since last check {since}" in items["no_private_appliance"].evidence
    assert items["cords_intact"].suggested is None  # no sensor knows this

    round_items = {i.id: i for i in runtime.inspections.get(lead.id).items}
    assert round_items["fire_doors_shut"].suggested == "fail"
    assert round_items["fire_doors_shut"].evidence[0] == "door-fire1 reported open at 19:55"
    assert round_items["mr_door_closed"].suggested == "pass"
    assert round_items["mr_door_closed"].evidence == ("door-mr closed (reported 20:00)",)

    # The person corrects the suggestion: the result keeps both, and the override shows in history.
    # Signed a minute later: the suggestion is taken again at signing (the plug's 20:04 reading is still
    # fresh, < 3 × its 60 s interval), and that is what the result stores.
    clock.advance(timedelta(minutes=1))
    answers = {i.id: ("pass", "") for i in view.items}
    answers["no_private_appliance"] = ("pass", "kettle belonged to the cleaner, removed")
    done = runtime.inspections.complete(eos.id, CompleterView("p-wang", frozenset({"operator"})), answers)
    assert done.on_time
    after = {i.id: i for i in runtime.inspections.get(eos.id).items}
    assert (after["no_private_appliance"].outcome, after["no_private_appliance"].suggested,
            after["no_private_appliance"].overridden) == ("pass", "fail", True)
    assert (after["devices_off"].suggested, after["devices_off"].overridden) == ("pass", False)
    assert after["no_private_appliance"].evidence == items["no_private_appliance"].evidence

    data = runtime.inspections.history_csv(HistoryQuery(person="p-wang"))
    rows = [dict(zip(CSV_HEADER, r, strict=True)) for r in csv.reader(io.StringIO(data.decode("utf-8-sig")))][1:]
    (row,) = [r for r in rows if r["item"] == "no_private_appliance"]
    assert (row["result"], row["suggested"], row["overridden"]) == ("pass", "fail", "yes")
    assert "plug-s001 max 1,840 W at 14:02" in row["evidence"]


def _none() -> DeviceLive:
    return DeviceLive()

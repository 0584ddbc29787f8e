"""Calls through the running Ingest (another thread's input: a person's check of a sensor, a latency probe
put back, a delivery outcome) are checkpointed with the call, on SQLite and PostgreSQL: a restart restores
the device state each call changed, though the call no longer re-dumps the whole site. A call an alarm
listener makes while a checkpoint commits is saved by the next one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from benchmarks.floor import make_floor
from server.domain.alarms import Alarm
from server.domain.site import DeviceKind, parse_site
from tests.server.services.test_rule_checkpoint import NORMAL, Server
from tests.support.wait import wait_until


def test_a_restart_after_calls_restores_the_devices_the_calls_changed(database_url: str, tmp_path: Path) -> None:
    floor = make_floor(300, tmp_path / "floor")
    site = parse_site(floor.site_file.read_text(encoding="utf-8"), str(floor.site_file))
    probe = next(d for d in site.devices.values() if d.kind is DeviceKind.SMOKE_DETECTOR)
    sensor = next(d for d in site.devices.values() if d.kind is DeviceKind.TEMP_SENSOR and d.zone != probe.zone)
    first = Server(site, database_url, tmp_path)
    try:
        first.checkpoint([first.batch(sensor.edge, [(sensor.id, DeviceKind.TEMP_SENSOR)])])
        first.now += timedelta(seconds=30)
        first.checkpoint([
            first.batch(sensor.edge, [(sensor.id, DeviceKind.TEMP_SENSOR)],
                        {**NORMAL[DeviceKind.TEMP_SENSOR], "temperature_c": 40.0}),  # a jump alone: suppressed
            first.batch(probe.edge, [(probe.id, DeviceKind.SMOKE_DETECTOR)], {"smoke": True, "battery_pct": 90.0}),
        ])
        suspected = first.engine.snapshot()["devices"][sensor.id]["state"]["sensor.temp"]
        assert suspected["suppressed"] is True
        checkpoints = first.ingest.stats.checkpoints

        first.ingest.start()
        try:
            first.now += timedelta(seconds=1)
            first.ingest.call(lambda engine, now: engine.sensor_checked(sensor.id, now))
            first.ingest.call(lambda engine, now: engine.on_reading(probe.id, now, {"smoke": False}, now))
            first.ingest.call(lambda engine, now: engine.on_notify_result("wecom", False, now))
        finally:
            first.ingest.stop()
        assert first.ingest.stats.checkpoints >= checkpoints + 3, "every call is checkpointed before it returns"
        live = first.engine.snapshot()
    finally:
        first.close()

    second = Server(site, database_url, tmp_path)
    try:
        assert second.restored == "rows"
        restored = second.engine.snapshot()
        assert restored["devices"][sensor.id]["state"]["sensor.temp"]["suppressed"] is False
        assert restored["devices"][probe.id]["last"]["smoke"] == 0.0
        assert restored["shared"]["sup.notify_channel"] == {"wecom": 1}
        assert restored["devices"] == live["devices"]
        assert restored["fire"] == live["fire"]
    finally:
        second.close()


def test_an_engine_call_made_by_an_alarm_listener_during_a_checkpoint_is_saved_by_the_next(
        database_url: str, tmp_path: Path) -> None:
    floor = make_floor(300, tmp_path / "floor")
    site = parse_site(floor.site_file.read_text(encoding="utf-8"), str(floor.site_file))
    plug = next(d for d in site.devices.values() if d.kind is DeviceKind.SMART_PLUG)
    first = Server(site, database_url, tmp_path)
    try:
        first.checkpoint([first.batch(plug.edge, [(plug.id, DeviceKind.SMART_PLUG)])])

        def cut(alarm: Alarm) -> None:  # as the overload cut does: a raise commands a relay, on the ingest thread
            if alarm.rule == "fire.manual_report":
                first.ingest.call(lambda engine, now: engine.on_relay_command(plug.id, False, now))

        first.ingest.alarms.listeners.append(cut)
        first.ingest.start()
        try:
            # A call's drain checkpoints; its findings commit with that checkpoint, and the listener's relay
            # command comes after the delta was taken: only a later checkpoint can save it.
            first.ingest.call(lambda engine, now: engine.report_fire(plug.zone, now))
            after = first.ingest.stats.checkpoints
            assert wait_until(lambda: first.ingest.stats.checkpoints > after, 10), "the relay command is never saved"
        finally:
            first.ingest.stop()
        assert plug.id in first.engine.snapshot()["shared"]["elec.relay_mismatch"]
    finally:
        first.close()

    second = Server(site, database_url, tmp_path)
    try:
        assert plug.id in second.engine.snapshot()["shared"]["elec.relay_mismatch"]
    finally:
        second.close()

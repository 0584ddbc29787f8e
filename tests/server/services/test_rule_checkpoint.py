"""The incremental checkpoint on SQLite and on a real PostgreSQL: the real Ingest path (encoded batches,
the rule engine, AlarmService's transaction, acks) writes a row only for each device whose state
changed since the checkpoint before; a restart restores exactly the state that was saved; an older
version's single-blob snapshot restores once and is then rewritten as rows; the migration goes down
(back to the blob) and up again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from benchmarks.floor import make_floor
from gateway import contract
from gateway.mqtt import Incoming
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.database import alembic_config, make_engine, migrate, session_factory
from server.adapters.sql.models import EngineStateRow, RuleDeviceStateRow, RuleSiteStateRow
from server.adapters.sql.repository import LEGACY_RULES_KEY, AlarmRepository, save_state
from server.adapters.timeseries import SqliteSeriesStore
from server.domain.rules import RuleEngine
from server.domain.site import DeviceKind, Site, parse_site
from server.services.alarms import AlarmService
from server.services.ingest import Ingest
from server.services.live import LiveState
from server.services.recovery import restore_rules
from tests.support.wait import wait_until

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
NORMAL: dict[DeviceKind, dict[str, bool | int | float]] = {
    DeviceKind.SMART_PLUG: {"power_w": 60.0, "current_a": 0.3, "relay_on": True},
    DeviceKind.STRIP_METER: {"power_w": 300.0, "current_a": 1.4, "voltage_v": 221.0},
    DeviceKind.SMOKE_DETECTOR: {"smoke": False, "battery_pct": 90.0},
    DeviceKind.TEMP_SENSOR: {"temperature_c": 23.5, "humidity_pct": 45.0},
}


class Server:
    """The server's checkpoint path without the network: Ingest, the rule engine, AlarmService on SQL."""

    def __init__(self, site: Site, url: str, tmp: Path) -> None:
        self.now = T0
        self.sql = make_engine(url)
        migrate(self.sql)
        sessions = session_factory(self.sql)
        self.repository = AlarmRepository(sessions)
        self.engine = RuleEngine(site)
        self.restored = restore_rules(self.repository, self.engine)
        self.series = SqliteSeriesStore(tmp / f"series-{id(self)}.sqlite")
        self.acked: list[Incoming] = []
        self.ingest = Ingest(site, self.engine, AlarmService(AlarmWriter(sessions), self.repository.open_alarms()),
                             self.series, LiveState(), clock=lambda: self.now, ack=self.acked.append)
        self.seq: dict[str, int] = {}

    def batch(self, edge: str, devices: list[tuple[str, DeviceKind]],
              metrics: dict[str, bool | int | float] | None = None) -> Incoming:
        seq = self.seq.get(edge, 0)
        self.seq[edge] = seq + 1
        payload = contract.encode(contract.TelemetryBatch(
            edge=edge, seq=seq, sent_at=self.now,
            readings=[contract.Reading(device=d, ts=self.now, metrics=metrics or NORMAL[kind]) for d, kind in devices]))
        return Incoming(contract.edge_topic(self.engine.site.id, edge, contract.Channel.TELEMETRY), payload, 1,
                        False, False, seq)

    def checkpoint(self, messages: list[Incoming]) -> int:
        """Process `messages`, then tick until a checkpoint covered them; the rows it wrote."""
        before = self.ingest.stats.checkpoints
        self.ingest.process(messages)
        assert wait_until(lambda: self.ingest.process([], tick=True) or self.ingest.stats.checkpoints > before, 30)
        assert self.ingest.stats.checkpoints == before + 1
        return self.ingest.stats.last_checkpoint_rows

    def device_rows_at(self, at: datetime) -> set[str]:
        with self.sql.connect() as connection:
            return set(connection.scalars(select(RuleDeviceStateRow.device)
                                          .where(RuleDeviceStateRow.updated_at == at)))

    def count(self, table: Any) -> int:
        with self.sql.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(table)) or 0)

    def close(self) -> None:
        self.series.close()
        self.sql.dispose()


def _site(tmp: Path) -> Site:
    floor = make_floor(300, tmp / "floor")
    return parse_site(floor.site_file.read_text(encoding="utf-8"), str(floor.site_file))


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.loads(json.dumps(a, sort_keys=True)) == json.loads(json.dumps(b, sort_keys=True))


def test_a_checkpoint_writes_only_the_changed_devices_and_a_restart_restores_the_same_state(
        database_url: str, tmp_path: Path) -> None:
    site = _site(tmp_path)
    first = Server(site, database_url, tmp_path)
    try:
        assert first.restored == "none"
        # The first checkpoint (every device starts its silence at the first tick) writes every device.
        any_plug = next(d for d in site.devices.values() if d.kind is DeviceKind.SMART_PLUG)
        first.checkpoint([first.batch(any_plug.edge, [(any_plug.id, DeviceKind.SMART_PLUG)])])
        everyone = {d for d in site.devices}
        assert first.device_rows_at(T0) == everyone
        assert first.count(RuleDeviceStateRow) == len(everyone)

        # Ten devices of four kinds report (fire and sensor readings used to re-dump the whole site).
        by_kind: dict[DeviceKind, list[str]] = {}
        for device in site.devices.values():
            by_kind.setdefault(device.kind, []).append(device.id)
        chosen = [(d, kind) for kind in NORMAL for d in by_kind[kind][1:(5 if kind is DeviceKind.SMART_PLUG else 3)]]
        first.now = T0 + timedelta(seconds=5)
        messages = [first.batch(site.devices[d].edge, [(d, kind)]) for d, kind in chosen]
        rows = first.checkpoint(messages)
        written = first.device_rows_at(first.now)
        assert written == {d for d, _ in chosen}, f"{len(written)} device rows written for {len(chosen)} readings"
        parts = rows - len(written)
        assert 0 <= parts <= 3, f"{parts} site-wide rows for normal readings (expected the strip sums at most)"
        assert len(first.acked) == 1 + len(messages), "acknowledged only once the checkpoint committed"

        # Nothing new: the next checkpoint writes nothing at all.
        assert first.engine.delta().devices == {}

        before = first.engine.snapshot()
    finally:
        first.close()

    # A restart (as after a SIGKILL after that commit): the same state, and nothing to write again.
    second = Server(site, database_url, tmp_path)
    try:
        assert second.restored == "rows"
        assert _same(second.engine.snapshot(), before)
        second.engine.tick(T0 + timedelta(seconds=6))  # the start-up checks run again after a restore
        assert second.engine.delta().devices == {}
        # A reading after the restart is a row of that device only.
        second.now = T0 + timedelta(seconds=7)
        plug = chosen[0][0]
        second.seq = {site.devices[plug].edge: 1000}
        second.checkpoint([second.batch(site.devices[plug].edge, [(plug, DeviceKind.SMART_PLUG)])])
        assert second.device_rows_at(second.now) == {plug}
    finally:
        second.close()


def test_site_wide_timers_of_two_zones_on_fire_are_saved_and_restored(database_url: str, tmp_path: Path) -> None:
    site = _site(tmp_path)
    zones: dict[str, str] = {}
    for device in site.devices.values():
        if device.kind is DeviceKind.SMOKE_DETECTOR and device.zone not in zones and len(zones) < 2:
            zones[device.zone] = device.id
    first = Server(site, database_url, tmp_path)
    try:
        for d in zones.values():  # two seconds apart: timers due at different times
            first.checkpoint([first.batch(site.devices[d].edge, [(d, DeviceKind.SMOKE_DETECTOR)],
                                          {"smoke": True, "battery_pct": 90.0})])
            first.now += timedelta(seconds=2)
        before = first.engine.snapshot()
        site_timers = [t for t in before["timers"] if t[2] not in site.devices]
        assert len(site_timers) >= 2, f"expected a §3 timer per zone on fire, got {site_timers}"
    finally:
        first.close()
    second = Server(site, database_url, tmp_path)
    try:
        assert second.restored == "rows"
        assert _same(second.engine.snapshot(), before)
    finally:
        second.close()


def test_an_older_single_blob_snapshot_restores_once_and_is_rewritten_as_rows(
        database_url: str, tmp_path: Path) -> None:
    site = _site(tmp_path)
    old = RuleEngine(site)
    old.tick(T0)
    plug = next(d.id for d in site.devices.values() if d.kind is DeviceKind.STRIP_METER)
    old.on_reading(plug, T0, {"current_a": 13.0, "power_w": 2900.0}, T0)  # an overload's hold pending
    blob = old.snapshot()
    assert blob["devices"][plug]["state"]["elec.strip_overload"]["s"]["stages"][0]["since"] is not None

    sql = make_engine(database_url)
    migrate(sql)
    with session_factory(sql).begin() as session:
        save_state(session, LEGACY_RULES_KEY, blob, T0)  # what the previous version left
    sql.dispose()

    server = Server(site, database_url, tmp_path)
    try:
        assert server.restored == "blob"
        assert _same(server.engine.snapshot(), blob)
        server.now = T0 + timedelta(seconds=1)
        other = next(d for d in site.devices.values() if d.kind is DeviceKind.SMART_PLUG)
        rows = server.checkpoint([server.batch(other.edge, [(other.id, DeviceKind.SMART_PLUG)])])
        assert server.count(RuleDeviceStateRow) == len(site.devices)
        assert rows >= len(site.devices) + server.count(RuleSiteStateRow)
        with server.sql.connect() as connection:
            blobs = connection.scalar(select(func.count()).where(EngineStateRow.key == LEGACY_RULES_KEY))
        assert blobs == 0, "the blob is deleted by the checkpoint that wrote the rows"
        after = server.engine.snapshot()
    finally:
        server.close()

    again = Server(site, database_url, tmp_path)
    try:
        assert again.restored == "rows"
        assert _same(again.engine.snapshot(), after)
        pending = again.engine.snapshot()["devices"][plug]["state"]["elec.strip_overload"]["s"]["stages"][0]["since"]
        assert pending == blob["devices"][plug]["state"]["elec.strip_overload"]["s"]["stages"][0]["since"]
    finally:
        again.close()


def test_the_migration_is_the_one_head_and_its_downgrade_gives_the_blob_back(
        database_url: str, tmp_path: Path) -> None:
    config = alembic_config(database_url)
    assert ScriptDirectory.from_config(config).get_heads() == ["0013_command_ref_index"]
    site = _site(tmp_path)
    server = Server(site, database_url, tmp_path)
    try:
        plug = next(d for d in site.devices.values() if d.kind is DeviceKind.SMART_PLUG)
        server.checkpoint([server.batch(plug.edge, [(plug.id, DeviceKind.SMART_PLUG)])])
        server.now = T0 + timedelta(seconds=2)
        server.checkpoint([server.batch(plug.edge, [(plug.id, DeviceKind.SMART_PLUG)])])
        state = server.engine.snapshot()
    finally:
        server.close()

    sql = make_engine(database_url)
    with sql.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008_delayed_cuts")
    repository = AlarmRepository(session_factory(sql))
    blob = repository.load_state(LEGACY_RULES_KEY)
    assert blob is not None
    older = RuleEngine(site)
    older.restore(blob)
    assert _same(older.snapshot(), state)
    with sql.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
    sql.dispose()
    back = Server(site, database_url, tmp_path)
    try:
        assert back.restored == "blob"
        assert _same(back.engine.snapshot(), state)
    finally:
        back.close()


def test_a_message_not_yet_ackable_is_offered_again_at_the_next_checkpoint_and_ingest_goes_on(
        database_url: str, tmp_path: Path) -> None:
    """The runtime's ack answers False for an event batch whose badge events are not in the access log yet:
    ingest keeps it, checkpoints on, and asks again at its next checkpoint (it never waits for it)."""
    site = _site(tmp_path)
    server = Server(site, database_url, tmp_path)
    held: set[int] = set()
    offered: list[int] = []

    def ack(message: Incoming) -> bool:
        offered.append(message.mid)
        if message.mid in held:
            return False
        server.acked.append(message)
        return True

    server.ingest.ack = ack
    try:
        plug = next(d for d in site.devices.values() if d.kind is DeviceKind.SMART_PLUG)
        first, second = (server.batch(plug.edge, [(plug.id, DeviceKind.SMART_PLUG)]) for _ in range(2))
        held.add(first.mid)
        server.checkpoint([first, second])
        assert [m.mid for m in server.acked] == [second.mid], "only the ackable message was acknowledged"
        held.clear()
        server.now += timedelta(seconds=2)
        server.checkpoint([])  # nothing new: the held message alone makes the next tick checkpoint
        assert [m.mid for m in server.acked] == [second.mid, first.mid]
        assert offered.count(first.mid) == 2 and offered.count(second.mid) == 1
    finally:
        server.close()

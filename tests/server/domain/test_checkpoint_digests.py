"""The incremental checkpoint compares each row with a digest of the row last saved instead of keeping
the saved rows: a row is written exactly when its JSON differs from the saved one, a restart from the
saved rows writes nothing until something changes, and what the engine keeps per device after a
checkpoint is a digest, not the device's dump (on the 50,000-device site the dumps were ~4 KB a device)."""

from __future__ import annotations

import gc
import json
from datetime import timedelta
from typing import Any

from server.domain.rules import RuleEngine
from server.domain.rules.engine import StateDelta
from tests.server.domain.harness import Floor


def _heard_everything() -> Floor:
    """Every device of the example site read once (so every device has a row), checkpointed."""
    f = Floor(supervise=True)
    for device in f.site.devices:
        f.read(device, rssi_dbm=-60.0)
    f.advance(5)
    f.engine.saved(f.engine.delta())
    return f


def _as_saved(delta: StateDelta) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The rows as the database gives them back (JSON)."""
    return json.loads(json.dumps(delta.devices)), json.loads(json.dumps(delta.parts))


def test_a_device_row_is_written_when_its_state_changed_and_not_when_only_looked_up() -> None:
    f = _heard_everything()
    f.engine.ctx.devices["temp-a1"]  # a lookup changes nothing: compared again, not written
    f.engine.invalidate_snapshot()  # and every device compared with its saved digest
    assert not f.engine.delta().devices
    f.read("temp-a1", temperature_c=25.0)
    assert set(f.engine.delta().devices) == {"temp-a1"}


def test_a_restart_from_the_saved_rows_writes_nothing_until_something_changes() -> None:
    f = Floor(supervise=True)
    for device in f.site.devices:
        f.read(device, rssi_dbm=-60.0)
    f.read("temp-a1", temperature_c=24.0, humidity_pct=45.0)
    f.read("plug-s001", power_w=900.0, current_a=4.0, relay_on=True, voltage_v=221.0)
    f.read("smoke-a1", smoke=True)
    f.advance(5)
    first = f.engine.delta()
    assert first.full is False and len(first.devices) == len(f.site.devices)

    restarted = RuleEngine(f.site)
    restarted.restore_rows(*_as_saved(first))
    again = restarted.delta()
    assert not again.devices and not again.removed_devices
    restarted.on_reading("temp-a1", f.now + timedelta(seconds=1), {"temperature_c": 26.0}, f.now + timedelta(seconds=1))
    assert set(restarted.delta().devices) == {"temp-a1"}


def test_a_checkpoint_keeps_no_dump_of_a_device() -> None:
    f = Floor(supervise=True)
    for device in f.site.devices:
        f.read(device, rssi_dbm=-60.0)
    f.advance(5)
    delta = f.engine.delta()
    rows = len(delta.devices)
    f.engine.saved(delta)
    del delta
    gc.collect()
    # A device's dump is a dict of these keys, its times {"$dt": iso} dicts: none is alive after the save.
    dumps = [o for o in gc.get_objects() if type(o) is dict and (o.keys() == DUMP_KEYS or o.keys() == {"$dt"})]
    assert rows == len(f.site.devices)
    assert dumps == [], f"{len(dumps)} dumped dicts kept after saving {rows} device rows"


DUMP_KEYS = {"last", "clock", "seen", "offline", "state"}

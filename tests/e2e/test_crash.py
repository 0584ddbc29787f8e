"""SIGKILL the server in the middle of an overload, start it again: exactly one alarm, in the right
state, raised when the rule's duration ran out counted from the condition's start (the pending
duration was restored), not from the restart."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from tests.support.server import ServerProcess
from tests.support.wait import wait_until

HOLD_S = 20
SITE = f"""
site: {{id: crash, name: Crash floor, timezone: Asia/Shanghai}}
floors: [{{id: f1, name: 1F}}]
zones: [{{id: z1, name: Zone 1, floor: f1, kind: office, polygon: [[0, 0], [10, 0], [10, 10], [0, 10]]}}]
devices: [{{id: strip-1, kind: strip_meter, zone: z1, edge: edge-c, rated_a: 10}}]
thresholds:
  devices:
    strip-1:
      elec.strip_overload: {{major_hold_s: {HOLD_S}, critical_hold_s: 3600, surge_ratio: 5.0}}
"""
TOKEN = "crash-admin-token"


def checkpointed_seq(db: Path, edge: str) -> int:
    """The next seq of `edge` in the server's last checkpoint (0 before the first)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        row = connection.execute("SELECT state FROM engine_state WHERE key = 'sequences'").fetchone()
    return int(json.loads(row[0]).get(edge, {}).get("next_seq", 0)) if row else 0


class Strip:
    """Speaks for edge-c directly, so the test controls seq and timestamps."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.client = MqttClient(broker.client_settings(), "crash-edge")
        self.client.start()
        assert self.client.wait_connected(10)
        self.seq = 0
        self.topic = contract.edge_topic("crash", "edge-c", contract.Channel.TELEMETRY)

    def report(self, amps: float) -> None:
        now = datetime.now(UTC)
        self.client.publish_payload(self.topic, contract.TelemetryBatch(edge="edge-c", seq=self.seq, sent_at=now,
                                    readings=[contract.Reading(device="strip-1", ts=now,
                                                               metrics={"current_a": amps})]))
        self.seq += 1

    def report_for(self, amps: float, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.report(amps)
            time.sleep(0.5)  # the strip's report interval


def test_sigkill_during_a_pending_duration_and_after_the_raise_leaves_one_alarm(
    mosquitto: EmbeddedBroker, tmp_path: Path,
) -> None:
    (tmp_path / "site.yaml").write_text(SITE)
    server = ServerProcess(mosquitto.client_settings(), tmp_path, tmp_path / "site.yaml", TOKEN)
    server.start()
    strip = Strip(mosquitto)
    try:
        overload_start = datetime.now(UTC)
        strip.report_for(12.0, 8)  # 8 s into a 20 s hold
        # the engine's state is checkpointed with the sequences: wait until the last report is in one
        assert wait_until(lambda: checkpointed_seq(tmp_path / "floorwatch.sqlite", "edge-c") >= strip.seq, 10), \
            "no checkpoint with the last report"
        server.kill()
        strip.report_for(12.0, 2)  # the overload goes on while the server is down (the broker queues)
        server.start()
        restarted_at = datetime.now(UTC)
        strip.report_for(12.0, 16)  # past the hold counted from the start, short of one counted from restart
        alarms = server.alarms("elec.strip_overload")
        assert len(alarms) == 1, alarms
        raised_at = datetime.fromisoformat(str(alarms[0]["raised_at"]))
        # Due when the hold counted from the start ran out, or, if the server was still coming back then
        # (a slow start on a busy machine), as soon as it was back: never a hold after the restart.
        due = max(overload_start + timedelta(seconds=HOLD_S), restarted_at)
        assert (raised_at - overload_start).total_seconds() > HOLD_S - 1, "raised before the hold ran out"
        late_by = (raised_at - due).total_seconds()
        assert late_by < 5, f"raised {late_by:.1f} s after it was due: the pending duration was lost"
        alarm_id = alarms[0]["id"]

        server.kill()  # now with the alarm raised and the overload still on
        strip.report_for(12.0, 2)
        server.start()
        strip.report_for(12.0, 2)
        alarms = server.alarms("elec.strip_overload")
        assert [(a["id"], a["state"]) for a in alarms] == [(alarm_id, "active")]
        assert server.api.get("/api/health").json()["ingest"]["lost"] == 0
    finally:
        strip.client.stop()
        server.stop()

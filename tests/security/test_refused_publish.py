"""An edge whose broker user may not publish under its edge id (the ACL from `floorwatch broker files`
allows user X only `floorwatch/v1/{site}/X/...`): the broker acknowledges each batch with MQTT 5 reason
0x87 "Not authorized" and drops it. The edge must keep those batches in its disk buffer, say so, and
deliver them once it runs with the right identity, never count the refusal as a delivery.

Installer's mistake this covers: an edge file copied from another edge with `edge:` changed but not its
uplink credentials (or the reverse).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.outbox import Outbox
from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.contract import TelemetryBatch
from tests.edge.conftest import Collector, Devices, edge_config
from tests.security.conftest import EDGES, SERVER, SecureBroker
from tests.support.wait import wait_until

pytestmark = pytest.mark.mosquitto

EDGE, OTHER = EDGES  # the agent's id is EDGE; the refused run connects as OTHER's user
PLUG_STATUS = "shellyplugsg3-a1b2c3/status/switch:0"


def _plug_reading(watts: float) -> str:
    return json.dumps({"id": 0, "output": True, "apower": watts, "voltage": 229.0, "current": round(watts / 229, 3)})


def _buffered(path: Path) -> int:
    outbox = Outbox(path, 100_000)
    try:
        return len(outbox)
    finally:
        outbox.close()


def _buffered_powers(path: Path) -> set[float]:
    outbox = Outbox(path, 100_000)
    try:
        batches = [contract.decode(row.topic, row.payload)[1] for row in outbox.after(0, 100_000)]
    finally:
        outbox.close()
    return {r.metrics["power_w"] for b in batches if isinstance(b, TelemetryBatch) for r in b.readings}


def test_batches_the_broker_refuses_stay_buffered_and_are_delivered_later(
        secure_broker: SecureBroker, floor: EmbeddedBroker, devices: Devices, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    buffer = tmp_path / "buffer.sqlite"
    collector = Collector(secure_broker.settings(SERVER), "refused-server")
    wrong_user = secure_broker.settings(OTHER)
    agent = EdgeAgent(edge_config(wrong_user, floor.client_settings(), buffer))
    agent.start()
    try:
        assert agent.uplink is not None and agent.uplink.wait_connected(10), secure_broker.log()
        assert agent.floor is not None and agent.floor.wait_subscribed(10)
        with caplog.at_level(logging.ERROR, logger="gateway.mqtt"):
            for watts in (101.0, 102.0, 103.0):
                devices.publish(PLUG_STATUS, _plug_reading(watts))
            assert wait_until(lambda: agent.uplink is not None and agent.uplink.refused_publishes >= 3, 15), \
                "the broker never refused the edge's messages"
        assert any("refused a message" in r.getMessage() and OTHER in r.getMessage() for r in caplog.records), \
            "the refusal was not logged with the user to check"
    finally:
        agent.stop(drain_s=0.5)
    assert collector.readings() == [], "the broker let a refused batch through"
    assert _buffered(buffer) >= 1, "refused batches were deleted from the buffer as if delivered"

    # The installer fixes the credentials and restarts the edge: the kept batches arrive.
    fixed = EdgeAgent(edge_config(secure_broker.settings(EDGE), floor.client_settings(), buffer))
    fixed.start()
    try:
        powers = lambda: sorted(r.metrics.get("power_w") for r in collector.readings()  # noqa: E731
                                if r.device == "plug-f3-s001")
        assert wait_until(lambda: {101.0, 102.0, 103.0} <= set(powers()), 15), powers()
    finally:
        fixed.stop(drain_s=0.5)
        collector.stop()


def test_a_refused_window_does_not_block_later_messages_and_refusals_are_retried(
        secure_broker: SecureBroker, floor: EmbeddedBroker, devices: Devices, tmp_path: Path) -> None:
    window = 2
    # One status on connecting, no more: the refusals counted below are the buffered batches.
    config = edge_config(secure_broker.settings(OTHER), floor.client_settings(), tmp_path / "buffer.sqlite",
                         supervision={"status_interval_s": 3600})
    agent = EdgeAgent(config, window=window)
    agent.refused_retry_s = 0.5
    agent.start()
    try:
        assert agent.uplink is not None and agent.uplink.wait_connected(10), secure_broker.log()
        assert agent.floor is not None and agent.floor.wait_subscribed(10)
        uplink = agent.uplink
        assert wait_until(lambda: uplink.refused_publishes >= 1, 10), "the online status was not refused"
        batches = 2 * window + 2
        for n in range(batches):  # one batch each: the batcher sends after 100 ms
            before = uplink.refused_publishes
            devices.publish(PLUG_STATUS, _plug_reading(110.0 + n))
            assert wait_until(lambda before=before: uplink.refused_publishes > before, 10), \
                f"message {n + 1} was never sent: {window} refusals filled the window ({before} refused)"
        sent, since = uplink.refused_publishes, time.monotonic()
        assert sent >= batches + 1
        # Nothing new arrives, yet the edge offers a refused row again on this connection: one per retry,
        # not the whole backlog each time.
        assert wait_until(lambda: uplink.refused_publishes >= sent + 2, 10), "refused rows were never retried"
        time.sleep(1.0)
        retries = uplink.refused_publishes - sent
        assert retries <= (time.monotonic() - since) / agent.refused_retry_s + 1, retries
    finally:
        agent.stop(drain_s=0.5)
    kept = _buffered_powers(tmp_path / "buffer.sqlite")
    assert {110.0 + n for n in range(batches)} <= kept, f"refused batches were deleted from the buffer: {kept}"

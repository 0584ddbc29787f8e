"""The running server ends shelves on its own tick: a shelved alarm comes back when `shelved_until` passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway import contract
from tests.e2e.conftest import Stack
from tests.e2e.test_ingest import batch, canonical_publisher


def test_a_shelved_alarm_is_active_again_when_its_shelf_ends(stack: Stack) -> None:
    stack.agent.stop()
    client = canonical_publisher(stack)
    topic = contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY)
    for seq in (30_000, 30_003):  # 30_001..30_002 never arrive: sup.message_loss (major)
        client.publish_payload(topic, batch(seq, 1.0))
    alarms = stack.wait_for("/api/alarms?state=active",
                            lambda b: any(a["rule"] == "sup.message_loss" for a in b), timeout=20)
    loss = next(a for a in alarms if a["rule"] == "sup.message_loss")
    until = datetime.now(UTC) + timedelta(seconds=3)
    shelved = stack.client.post(f"/api/alarms/{loss['id']}/shelve",
                                json={"until": until.isoformat(), "reason": "edge link being replaced"})
    assert shelved.status_code == 200, shelved.text
    assert shelved.json()["state"] == "shelved"
    back = stack.wait_for("/api/alarms?state=open", lambda b: any(
        a["id"] == loss["id"] and a["state"] == "active" for a in b), timeout=30)
    alarm = next(a for a in back if a["id"] == loss["id"])
    assert alarm["shelved_until"] is None
    assert datetime.now(UTC) >= until
    audit = stack.client.get(f"/api/alarms/{loss['id']}/audit").json()
    assert [a["action"] for a in audit][-2:] == ["shelve", "unshelve"]
    client.stop()

"""The machine room end to end with real parts: Mosquitto, the server over HTTP (its own wiring of the access
log to the evacuation, and of the open alarms to the machine room's state), a webhook receiver for the
pushes. An edge's batches are published on the contract's topics as an edge publishes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import contract
from gateway.broker import EmbeddedBroker, free_port
from gateway.mqtt import MqttClient
from server.settings import Settings
from tests.server.services.conftest import Hook, Smtp, site_yaml
from tests.support.server import serve
from tests.support.wait import wait_for

TOKEN = "machine-room-admin-token"
EXTRA = ("  - {id: probe-mr, kind: mr_probe, zone: mr, edge: e1}\n"
         "  - {id: door-mr, kind: door_controller, zone: mr, door_type: machine_room, edge: e1}\n")


def _batch(edge: MqttClient, channel: contract.Channel, seq: int, items: str, body: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC).isoformat()
    payload = {"v": 1, "edge": "e1", "seq": seq, "sent_at": now, items: [{**b, "ts": now} for b in body]}
    edge.publish(contract.edge_topic("r1", "e1", channel), json.dumps(payload).encode(), qos=1)


def test_a_badge_in_to_the_smoking_machine_room_is_told_to_leave_and_the_all_clear_leaves_the_room_out(
        mosquitto: EmbeddedBroker, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    text = site_yaml(smtp.port, hook.port).replace("people:\n", EXTRA + "people:\n", 1)
    text = text.replace("contacts:\n", f"contacts:\n  p-op3: ['json://127.0.0.1:{hook.port}/op3']\n", 1)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(text, encoding="utf-8")
    settings = Settings(site_file=site_file, data_dir=tmp_path / "server", mqtt=mosquitto.client_settings(),
                        admin_token=TOKEN, http_port=free_port(), gap_window_s=2)
    edge = MqttClient(mosquitto.client_settings(), "edge-e1-test")
    edge.start()
    assert edge.wait_connected(10)
    with serve(settings, graceful_shutdown_s=None) as server, server.client(TOKEN) as client:
        _batch(edge, contract.Channel.TELEMETRY, 1, "readings", [{"device": "probe-mr", "metrics": {"smoke": True}}])
        ev = wait_for(lambda: next((e for e in client.get("/api/evacuations").json() if e["state"] == "active"), None),
                      timeout=20, what="the machine room's evacuation")
        assert ev["fire_zone"] == "mr", ev

        _batch(edge, contract.Channel.EVENTS, 2, "events",
               [{"device": "door-mr", "type": "access_granted", "badge": "B13", "direction": "in"}])
        # (the machine room's entry notice, access.mr_entry_notice, reaches them too)
        told = wait_for(lambda: [b for b in hook.at("/op3") if "leave the machine room now" in b["message"]],
                        timeout=20, what="the instruction to the person who badged in")
        assert len(told) == 1 and "撤离机房" in told[0]["message"] and ev["id"] in told[0]["title"], told

        done = client.post(f"/api/evacuations/{ev['id']}/all-clear")
        assert done.status_code == 200, done.text
        assert [h["zone"] for h in done.json()["machine_rooms_not_clear"]] == ["mr"], done.json()
        smoke = next(a for a in client.get("/api/alarms?state=open").json() if a["rule"] == "mr.smoke")
        assert "is not clear" in smoke["message"] and "未解除" in smoke["message_zh"], smoke
    edge.stop()
